//! `WaitGroup`: wait for a collection of goroutines to finish (Go's
//! `sync.WaitGroup`). The counter is an atomic; waiters queue under a lock
//! and are all woken when the counter drops to zero.

use crate::lock::Lock;
use crate::park::Waiter;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

struct Inner {
    count: AtomicI64,
    lock: Lock,
    waiters: UnsafeCell<Vec<*const Waiter>>,
}

// SAFETY: `waiters` is only touched with `lock` held.
unsafe impl Sync for Inner {}
// SAFETY: as above.
unsafe impl Send for Inner {}

/// A Go-style wait group; clones share the counter.
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WaitGroup").field("count", &self.inner.count.load(Ordering::Relaxed)).finish()
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitGroup {
    /// A group with a zero counter.
    pub fn new() -> WaitGroup {
        WaitGroup { inner: Arc::new(Inner { count: AtomicI64::new(0), lock: Lock::new(), waiters: UnsafeCell::new(Vec::new()) }) }
    }

    /// Adds `delta` to the counter.
    ///
    /// # Panics
    /// `sync: negative WaitGroup counter`, as Go.
    pub fn add(&self, delta: i64) {
        let n = self.inner.count.fetch_add(delta, Ordering::AcqRel) + delta;
        if n < 0 {
            panic!("sync: negative WaitGroup counter");
        }
        if n == 0 {
            self.inner.lock.lock();
            // SAFETY: lock held.
            let ws = core::mem::take(unsafe { &mut *self.inner.waiters.get() });
            self.inner.lock.unlock();
            for w in ws {
                // SAFETY: dequeued under the lock; each waiter woken once.
                unsafe { Waiter::wake(w) };
            }
        }
    }

    /// Decrements the counter.
    pub fn done(&self) {
        self.add(-1);
    }

    /// Blocks until the counter is zero.
    pub fn wait(&self) {
        if self.inner.count.load(Ordering::Acquire) == 0 {
            return;
        }
        self.inner.lock.lock();
        if self.inner.count.load(Ordering::Acquire) == 0 {
            self.inner.lock.unlock();
            return;
        }
        let w = Waiter::new();
        // SAFETY: lock held.
        unsafe { (*self.inner.waiters.get()).push(&w) };
        // SAFETY: lock held; w lives on this stack until woken.
        unsafe { w.park(&self.inner.lock, "semacquire") };
    }
}
