//! The runtime's lock (Go's `lock_futex.go`) and a value guarded by it.
//!
//! [`Lock`] is a word that is 0 (unlocked), 1 (locked) or 2 (locked,
//! sleepers may exist). It spins briefly, then sleeps on the futex. It
//! blocks the thread, not the goroutine, and never allocates, so the
//! allocator and the scheduler share it. [`Mutex`] puts a value behind one,
//! reachable only through a [`MutexGuard`] that unlocks when dropped.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
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

    /// Acquires the lock. On an M the hold counts as a runtime section
    /// (`crate::tls::runtime_enter`): a preemption waits until the lock is
    /// released, so no goroutine is ever stopped holding a runtime lock.
    #[inline]
    pub fn lock(&self) {
        crate::tls::runtime_enter();
        // Acquire pairs with the Release in `unlock`: everything written
        // under the lock by the previous holder is visible to us.
        if self.try_take(LOCKED) {
            return;
        }
        self.lock_slow();
    }

    /// Takes the lock if it is free, leaving `word` in it (LOCKED, or
    /// SLEEPING once this thread has slept on it).
    #[inline(always)]
    fn try_take(&self, word: u32) -> bool {
        self.key
            .compare_exchange(UNLOCKED, word, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
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
                // Look before trying: a failed compare-exchange takes the
                // line from the holder, whose unlock then waits for it.
                if self.key.load(Ordering::Relaxed) == UNLOCKED && self.try_take(wait) {
                    return;
                }
            }
            // Then yield the CPU once (Go's osyield) before sleeping.
            std::thread::yield_now();
            if self.try_take(wait) {
                return;
            }
            if self.key.swap(SLEEPING, Ordering::Acquire) == UNLOCKED {
                return;
            }
            wait = SLEEPING;
            crate::futex_wait(&self.key, SLEEPING, None);
        }
    }

    /// Releases the lock.
    #[inline]
    pub fn unlock(&self) {
        if self.key.swap(UNLOCKED, Ordering::Release) == SLEEPING {
            crate::futex_wake(&self.key, 1);
        }
        crate::tls::runtime_exit();
    }

    /// Marks the lock free in a child process after `fork`, where the only
    /// thread is the one that forked while holding it.
    ///
    /// # Safety
    /// Only in a `fork` child handler, for a lock the forking thread held.
    pub unsafe fn reset_after_fork(&self) {
        self.key.store(UNLOCKED, Ordering::Relaxed);
    }

    /// Tries to acquire without blocking.
    pub fn try_lock(&self) -> bool {
        crate::tls::runtime_enter();
        let ok = self
            .key
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if !ok {
            crate::tls::runtime_exit();
        }
        ok
    }
}

/// A value guarded by a futex lock.
pub struct Mutex<T> {
    lock: Lock,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` only happens through a guard, and the lock makes
// guards exclusive, so sharing the mutex between threads is sound when T is Send.
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T> core::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mutex").field("lock", &self.lock).finish()
    }
}

/// Exclusive access to a [`Mutex`]'s value until dropped.
#[allow(missing_debug_implementations)]
pub struct MutexGuard<'a, T> {
    m: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex.
    pub const fn new(v: T) -> Self {
        Mutex {
            lock: Lock::new(),
            value: UnsafeCell::new(v),
        }
    }

    /// Acquires the lock, sleeping on the futex when it stays contended.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.lock.lock();
        MutexGuard { m: self }
    }

    /// Acquires the lock only if it is free.
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.lock.try_lock().then_some(MutexGuard { m: self })
    }

    /// A pointer to the value, for readers that accept a racy snapshot
    /// where taking the lock is not allowed (fatal reports). Reading
    /// through it is only sound with the lock held.
    pub const fn data_ptr(&self) -> *mut T {
        self.value.get()
    }

    /// Acquires the lock without a guard (for `fork` handlers, which lock in
    /// one callback and unlock in another).
    pub fn raw_lock(&self) {
        core::mem::forget(self.lock());
    }

    /// Releases a lock taken with [`Mutex::raw_lock`].
    ///
    /// # Safety
    /// The calling thread holds the lock through `raw_lock` and no guard.
    pub unsafe fn raw_unlock(&self) {
        drop(MutexGuard { m: self });
    }

    /// Marks the lock free in a child process after `fork`, where the only
    /// thread is the one that forked while holding it via `raw_lock`.
    ///
    /// # Safety
    /// Only for the `fork` child handler, with the lock held by `raw_lock`.
    pub unsafe fn reset_after_fork(&self) {
        // SAFETY: forwarded caller contract.
        unsafe { self.lock.reset_after_fork() };
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while the lock is held exclusively.
        unsafe { &*self.m.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while the lock is held exclusively.
        unsafe { &mut *self.m.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.m.lock.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::{Lock, Mutex};
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

    #[test]
    fn counts_under_contention() {
        static M: Mutex<u64> = Mutex::new(0);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..20_000 {
                        *M.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*M.lock(), 80_000);
    }
}
