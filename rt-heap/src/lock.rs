//! The heap's lock: a value guarded by the runtime's futex lock
//! ([`rt_sys::lock`], Go's `mutex`). Never allocates, so it is usable inside
//! the allocator. Only the slow paths (refill/flush of a cache, the page
//! heap) take it.

pub use rt_sys::lock::{Mutex, MutexGuard};
