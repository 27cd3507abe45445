//! The runtime's mutex (Go's `lock_futex.go`), shared with the allocator:
//! see [`rt_sys::Lock`]. Blocks the thread, not the goroutine: only for short
//! critical sections inside the scheduler and the primitives built on it.

pub use rt_sys::Lock;
