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
        f.debug_struct("WaitGroup")
            .field("count", &self.inner.count.load(Ordering::Relaxed))
            .finish()
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
        WaitGroup {
            inner: Arc::new(Inner {
                count: AtomicI64::new(0),
                lock: Lock::new(),
                waiters: UnsafeCell::new(Vec::new()),
            }),
        }
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

/// A mutual-exclusion lock for goroutines (Go's `sync.Mutex`, with a
/// guard). A goroutine that finds it held parks instead of spinning the
/// thread; on unlock the lock is handed straight to the longest waiter
/// (FIFO hand-off), so no goroutine starves under contention — Go's
/// starvation mode, always on once anyone waits. Uncontended lock and
/// unlock are one CAS each.
pub struct Mutex<T: ?Sized> {
    /// 0 unlocked, 1 locked, 2 locked with waiters queued.
    state: core::sync::atomic::AtomicU32,
    waitlock: Lock,
    waiters: UnsafeCell<std::collections::VecDeque<*const Waiter>>,
    data: UnsafeCell<T>,
}

// SAFETY: the data is only reached through a guard, which exists for one
// holder at a time; `waiters` only under `waitlock`.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

impl<T: ?Sized> core::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mutex")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Access to a [`Mutex`]'s data; unlocks when dropped.
pub struct MutexGuard<'a, T: ?Sized> {
    m: &'a Mutex<T>,
}

impl<T: ?Sized> core::fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MutexGuard").finish_non_exhaustive()
    }
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `v`.
    pub const fn new(v: T) -> Mutex<T> {
        Mutex {
            state: core::sync::atomic::AtomicU32::new(0),
            waitlock: Lock::new(),
            waiters: UnsafeCell::new(std::collections::VecDeque::new()),
            data: UnsafeCell::new(v),
        }
    }

    /// The data, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the goroutine (or blocking the thread) while held.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        // Acquire pairs with the Release of the previous unlock.
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        MutexGuard { m: self }
    }

    /// Locks if free.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| MutexGuard { m: self })
    }

    #[cold]
    fn lock_slow(&self) {
        self.waitlock.lock();
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s == 0 {
                if self
                    .state
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    self.waitlock.unlock();
                    return;
                }
                continue;
            }
            // Mark "waiters queued" so the holder's unlock takes the slow path.
            if s == 2
                || self
                    .state
                    .compare_exchange(1, 2, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                break;
            }
        }
        let w = Waiter::new();
        // SAFETY: waitlock held.
        unsafe { (*self.waiters.get()).push_back(&w) };
        // Go 1.17–1.19 report a goroutine waiting for a sync.Mutex as
        // `[semacquire]` (its semaphore wait); the same here.
        // SAFETY: waitlock held; w stays on this stack until woken, and the
        // unlocker handed us the lock before waking us.
        unsafe { w.park(&self.waitlock, "semacquire") };
        core::sync::atomic::fence(Ordering::Acquire);
    }

    #[cold]
    fn unlock_slow(&self) {
        self.waitlock.lock();
        // SAFETY: waitlock held.
        let q = unsafe { &mut *self.waiters.get() };
        match q.pop_front() {
            Some(w) => {
                // Hand-off: the lock stays held, now by the woken waiter.
                if q.is_empty() {
                    self.state.store(1, Ordering::Release);
                }
                self.waitlock.unlock();
                // SAFETY: dequeued under waitlock; woken once.
                unsafe { Waiter::wake(w) };
            }
            None => {
                self.state.store(0, Ordering::Release);
                self.waitlock.unlock();
            }
        }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        if self
            .m
            .state
            .compare_exchange(1, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.m.unlock_slow();
        }
    }
}

impl<T: ?Sized> core::ops::Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard is the lock's only holder.
        unsafe { &*self.m.data.get() }
    }
}

impl<T: ?Sized> core::ops::DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard is the lock's only holder.
        unsafe { &mut *self.m.data.get() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutex_excludes_threads_and_hands_off() {
        let m = Arc::new(Mutex::new(0u64));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 40_000);
        assert!(m.try_lock().is_some());
    }

    #[test]
    fn waitgroup_on_threads() {
        // Each worker records its work before calling done(); once wait()
        // returns, every record must be visible. Many rounds, so both the
        // path where wait() finds the counter at zero and the one where it
        // sleeps until the last done() are taken. The waiter runs on a
        // thread of its own so that a wait that never ends fails the test
        // instead of hanging it.
        use core::sync::atomic::{AtomicBool, AtomicU64};
        const WORKERS: u64 = 4;
        const ROUNDS: u64 = 200;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            for round in 0..ROUNDS {
                let wg = WaitGroup::new();
                let go = Arc::new(AtomicBool::new(false));
                let done_before: Arc<Vec<AtomicU64>> =
                    Arc::new((0..WORKERS).map(|_| AtomicU64::new(0)).collect());
                wg.add(WORKERS as i64);
                let workers: Vec<_> = (0..WORKERS)
                    .map(|k| {
                        let (wg, go, done_before) = (wg.clone(), go.clone(), done_before.clone());
                        std::thread::spawn(move || {
                            while !go.load(Ordering::Acquire) {
                                std::thread::yield_now();
                            }
                            // Relaxed on purpose: only the WaitGroup orders
                            // this store before the waiter's load.
                            done_before[k as usize].store(round + 1, Ordering::Relaxed);
                            wg.done();
                        })
                    })
                    .collect();
                go.store(true, Ordering::Release);
                wg.wait();
                let seen: Vec<u64> = done_before
                    .iter()
                    .map(|d| d.load(Ordering::Relaxed))
                    .collect();
                if seen.iter().any(|&s| s != round + 1) {
                    bad.push((round, seen));
                }
                for w in workers {
                    w.join().unwrap();
                }
            }
            let _ = tx.send(bad);
        });
        let bad = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("WaitGroup::wait did not return within 60 s");
        assert!(
            bad.is_empty(),
            "wait() returned before these done() calls: {bad:?}"
        );
    }

    #[test]
    fn waitgroup_wait_blocks_until_the_last_done() {
        // The waiter is usually asleep in wait() before the first done();
        // the dones come one at a time, and wait() must not return before
        // the last, so it sees every one of them.
        let wg = WaitGroup::new();
        let finished = Arc::new(core::sync::atomic::AtomicU64::new(0));
        wg.add(3);
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (w2, f2) = (wg.clone(), finished.clone());
        std::thread::spawn(move || {
            let _ = ready_tx.send(());
            w2.wait();
            let _ = tx.send(f2.load(Ordering::Relaxed));
        });
        ready_rx.recv().unwrap();
        for _ in 0..3 {
            finished.fetch_add(1, Ordering::Relaxed);
            wg.done();
        }
        let seen = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("WaitGroup::wait did not return within 60 s");
        assert_eq!(seen, 3);
    }
}
