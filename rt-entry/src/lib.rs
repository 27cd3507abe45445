//! rt-entry
