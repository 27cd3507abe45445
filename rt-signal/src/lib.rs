//! rt-signal
