//! rt-heap
