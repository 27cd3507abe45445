//! rt-env
