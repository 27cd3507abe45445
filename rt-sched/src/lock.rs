//! The runtime's mutex (Go's `lock_futex.go`): a word that is 0 (unlocked),
//! 1 (locked) or 2 (locked, sleepers may exist). Spins briefly, then sleeps on
//! the futex. Blocks the thread, not the goroutine: only for short critical
//! sections inside the scheduler and the primitives built on it.

use core::sync::atomic::{AtomicU32, Ordering};

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const SLEEPING: u32 = 2;
const ACTIVE_SPIN: u32 = 4;

/// A futex-based runtime lock.
#[derive(Debug, Default)]
pub struct Lock {
    key: AtomicU32,
}

impl Lock {
    /// An unlocked lock.
    pub const fn new() -> Lock {
        Lock {
            key: AtomicU32::new(UNLOCKED),
        }
    }

    /// Acquires the lock.
    #[inline]
    pub fn lock(&self) {
        // Acquire pairs with the Release in `unlock`: everything written
        // under the lock by the previous holder is visible to us.
        if self
            .key
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.lock_slow();
    }

    #[cold]
    fn lock_slow(&self) {
        // Once we have gone to sleep the lock word must say "sleepers may
        // exist" whenever we take it, so unlock knows to wake somebody.
        let mut wait = LOCKED;
        loop {
            for _ in 0..ACTIVE_SPIN {
                for _ in 0..30 {
                    core::hint::spin_loop();
                }
                if self
                    .key
                    .compare_exchange(UNLOCKED, wait, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
            // SAFETY-free: sched_yield has no preconditions.
            std::thread::yield_now();
            if self
                .key
                .compare_exchange(UNLOCKED, wait, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            if self.key.swap(SLEEPING, Ordering::Acquire) == UNLOCKED {
                return;
            }
            wait = SLEEPING;
            rt_sys::futex_wait(&self.key, SLEEPING, None);
        }
    }

    /// Releases the lock.
    #[inline]
    pub fn unlock(&self) {
        if self.key.swap(UNLOCKED, Ordering::Release) == SLEEPING {
            rt_sys::futex_wake(&self.key, 1);
        }
    }

    /// Tries to acquire without blocking.
    pub fn try_lock(&self) -> bool {
        self.key
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn excludes_across_threads() {
        struct Shared {
            lock: Lock,
            n: core::cell::UnsafeCell<u64>,
        }
        // SAFETY: `n` is only touched with `lock` held.
        unsafe impl Sync for Shared {}
        let s = Arc::new(Shared {
            lock: Lock::new(),
            n: core::cell::UnsafeCell::new(0),
        });
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        s.lock.lock();
                        // SAFETY: the lock is held.
                        unsafe { *s.n.get() += 1 };
                        s.lock.unlock();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        // SAFETY: all threads joined.
        assert_eq!(unsafe { *s.n.get() }, 80_000);
    }
}
