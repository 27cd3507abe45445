//! The heap's lock: a value guarded by the runtime's futex lock
//! ([`rt_sys::Lock`], Go's `mutex`). Never allocates, so it is usable inside
//! the allocator. Only the slow paths (refill/flush of a cache, the page
//! heap) take it.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

/// A value guarded by a futex lock.
pub struct Mutex<T> {
    lock: rt_sys::Lock,
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
            lock: rt_sys::Lock::new(),
            value: UnsafeCell::new(v),
        }
    }

    /// Acquires the lock, sleeping on the futex when it stays contended.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.lock.lock();
        MutexGuard { m: self }
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
    use super::*;

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
