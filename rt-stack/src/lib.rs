//! rt-stack
