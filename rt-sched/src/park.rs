//! Waiting for an event from a goroutine or from a plain thread.
//!
//! Runtime primitives (channels, `WaitGroup`, join handles) queue a
//! [`Waiter`] while holding their own [`Lock`], then call [`Waiter::park`],
//! which releases that lock only once the waiter can no longer miss its
//! wake-up: on a goroutine the lock is dropped on g0 after the goroutine's
//! context is saved (`gopark`'s unlock function); on a thread that is not a
//! goroutine it sleeps on a futex word.
//!
//! Under `--cfg loom` (the channel model, `chan::loom_tests`) there are no
//! goroutines: every waiter is a thread waiter, its words are loom atomics
//! and it sleeps on a loom `Notify` in place of the futex. The wake-up
//! self-checks are always on there.

use crate::lock::Lock;
use crate::proc::{getg_checked, gopark, goready};
use crate::runtime2::{CHECKS, G};
use core::ptr::null_mut;
#[cfg(not(loom))]
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// One blocked goroutine or thread (Go's `sudog`, minus the element).
#[derive(Debug)]
pub(crate) struct Waiter {
    g: *mut G,
    futex: AtomicU32,
    /// Set by the waker of a select: which case fired.
    pub fired: AtomicUsize,
    /// Self-checks: `NEW`, `ARMED` (parking, reachable by a waker),
    /// `WOKEN`, `RETIRED` (the park returned; nobody may wake it again).
    state: AtomicU32,
    /// The model's stand-in for the futex wait queue. Shared, so that the
    /// waker can still notify after the store that lets the waiter return.
    #[cfg(loom)]
    notify: loom::sync::Arc<loom::sync::Notify>,
}

const NEW: u32 = 0;
const ARMED: u32 = 1;
const WOKEN: u32 = 2;
const RETIRED: u32 = 3;

/// Whether `arm`/`retire`/`wake` track the waiter's state: the runtime's
/// self-checks, and always in the loom model.
const WAKE_CHECKS: bool = CHECKS || cfg!(loom);

/// Self-check: a waiter is woken once, while it is parked.
#[cold]
#[inline(never)]
fn bad_wake(state: u32) -> ! {
    #[cfg(not(loom))]
    match state {
        WOKEN => rt_sys::throw("waiter woken twice"),
        RETIRED => rt_sys::throw("waiter woken after its wait returned"),
        _ => rt_sys::throw("waiter woken before it parked"),
    }
    // In the model a failed check panics, so loom fails the model.
    #[cfg(loom)]
    match state {
        WOKEN => panic!("waiter woken twice"),
        RETIRED => panic!("waiter woken after its wait returned"),
        _ => panic!("waiter woken before it parked"),
    }
}

/// Orderings of the self-check's `state` operations. In the model they are
/// relaxed: the checks must not add happens-before edges that builds
/// without them lack (the waiter's data must be published by the futex
/// word alone). Read-modify-writes still see the latest state.
#[cfg(not(loom))]
const STATE_ACQREL: Ordering = Ordering::AcqRel;
#[cfg(not(loom))]
const STATE_ACQUIRE: Ordering = Ordering::Acquire;
#[cfg(loom)]
const STATE_ACQREL: Ordering = Ordering::Relaxed;
#[cfg(loom)]
const STATE_ACQUIRE: Ordering = Ordering::Relaxed;

impl Default for Waiter {
    fn default() -> Self {
        Self::new()
    }
}

fn unlock_arg(_gp: *mut G, lock: usize) -> bool {
    // SAFETY: `park` passes the address of the caller's live, held Lock.
    unsafe { (*(lock as *const Lock)).unlock() };
    true
}

fn unlock_all_arg(_gp: *mut G, arg: usize) -> bool {
    // SAFETY: `park_all` passes the address of a live `&[&Lock]` whose locks
    // it holds; nothing can wake the goroutine before the first unlock.
    let locks: &[&Lock] = unsafe { *(arg as *const &[&Lock]) };
    // Copy the lock addresses onto g0's stack (or heap) first: after the
    // first unlock the goroutine may be woken, resume on another M and free
    // the slice while this loop still runs.
    let mut small = [core::ptr::null::<Lock>(); 16];
    let mut big = Vec::new();
    let copy: &[*const Lock] = if locks.len() <= small.len() {
        for (d, l) in small.iter_mut().zip(locks) {
            *d = *l;
        }
        &small[..locks.len()]
    } else {
        big.extend(locks.iter().map(|l| *l as *const Lock));
        &big
    };
    for &l in copy.iter().rev() {
        // Each lock lives in its channel, which the parked select keeps alive
        // (it holds a reference to every channel) until it has re-locked them
        // after waking — which needs these unlocks first.
        // SAFETY: so `l` points at a live, held lock.
        unsafe { (*l).unlock() };
    }
    true
}

/// True when the caller runs on a user goroutine (not g0, not a foreign thread).
#[cfg(not(loom))]
pub(crate) fn on_goroutine() -> bool {
    let gp = getg_checked();
    // SAFETY: reading the running goroutine's own fields.
    !gp.is_null() && unsafe { (*gp).goid != 0 }
}

/// In the loom model every caller is a plain thread.
#[cfg(loom)]
pub(crate) fn on_goroutine() -> bool {
    false
}

impl Waiter {
    /// A waiter for the calling goroutine or thread.
    pub fn new() -> Waiter {
        let gp = if on_goroutine() {
            getg_checked()
        } else {
            null_mut()
        };
        Waiter {
            g: gp,
            futex: AtomicU32::new(0),
            fired: AtomicUsize::new(0),
            state: AtomicU32::new(NEW),
            #[cfg(loom)]
            notify: loom::sync::Arc::new(loom::sync::Notify::new()),
        }
    }

    /// Releases `lock` and blocks until [`wake`](Self::wake). `reason` is the
    /// goroutine's wait reason in reports (e.g. "chan receive").
    ///
    /// # Safety
    /// `lock` must be held by the caller and `self` must be reachable by the
    /// waker only through state that `lock` guards; `self` must stay put until
    /// this returns.
    pub unsafe fn park(&self, lock: &Lock, reason: &'static str) {
        self.arm();
        // SAFETY: forwarded caller contract.
        unsafe { self.park_armed(lock, reason) };
        self.retire();
    }

    /// Self-checks: the waiter becomes wakeable (the caller still holds the
    /// lock that makes it reachable).
    fn arm(&self) {
        if WAKE_CHECKS {
            self.state.store(ARMED, Ordering::Relaxed);
        }
    }

    /// Self-checks: the wait returned; it must have been woken, and nobody
    /// may wake it again.
    fn retire(&self) {
        if WAKE_CHECKS {
            let s = self.state.swap(RETIRED, STATE_ACQREL);
            if s != WOKEN {
                #[cfg(loom)]
                panic!("waiter resumed without a wake-up (state {s})");
                #[cfg(not(loom))]
                rt_sys::fatal!("waiter resumed without a wake-up (state {s})");
            }
        }
    }

    /// [`park`](Self::park) after [`arm`](Self::arm).
    ///
    /// # Safety
    /// As `park`.
    unsafe fn park_armed(&self, lock: &Lock, reason: &'static str) {
        if !self.g.is_null() {
            gopark(Some(unlock_arg), lock as *const Lock as usize, reason);
        } else {
            lock.unlock();
            self.wait_word();
        }
    }

    /// [`park`](Self::park) releasing several locks (a select's channels).
    ///
    /// # Safety
    /// As `park`, for every lock in `locks`.
    pub unsafe fn park_all(&self, locks: &[&Lock], reason: &'static str) {
        self.arm();
        // SAFETY: forwarded caller contract.
        unsafe { self.park_all_armed(locks, reason) };
        self.retire();
    }

    /// [`park_all`](Self::park_all) after [`arm`](Self::arm).
    ///
    /// # Safety
    /// As `park_all`.
    unsafe fn park_all_armed(&self, locks: &[&Lock], reason: &'static str) {
        if !self.g.is_null() {
            // The fat slice reference lives in this frame, on the goroutine's
            // own stack, which stays intact while g0 runs the unlock.
            let r: &[&Lock] = locks;
            gopark(Some(unlock_all_arg), &r as *const &[&Lock] as usize, reason);
        } else {
            for l in locks.iter().rev() {
                l.unlock();
            }
            self.wait_word();
        }
    }

    /// A thread waiter's wait: until [`wake`](Self::wake) sets the word.
    fn wait_word(&self) {
        #[cfg(not(loom))]
        while self.futex.load(Ordering::Acquire) == 0 {
            rt_sys::futex_wait(&self.futex, 0, None);
        }
        // A notify that comes before the wait is kept, so no wake-up is
        // lost; loom also explores a spurious return, as from a futex wait.
        #[cfg(loom)]
        while self.futex.load(Ordering::Acquire) == 0 {
            self.notify.wait();
        }
    }

    /// Wakes the waiter. Call after dequeuing it under the lock; may be called
    /// after the lock is released.
    ///
    /// # Safety
    /// `w` must point at a parked waiter that nobody else wakes.
    pub unsafe fn wake(w: *const Waiter) {
        // SAFETY: caller contract: w is live until it observes the wake-up.
        unsafe {
            if WAKE_CHECKS {
                if let Err(s) =
                    (*w).state
                        .compare_exchange(ARMED, WOKEN, STATE_ACQREL, STATE_ACQUIRE)
                {
                    bad_wake(s);
                }
            }
            let g = (*w).g;
            if !g.is_null() {
                goready(g);
            } else {
                // Once the word is set the waiter may return and free `w`:
                // the futex wake only uses its address; the model takes its
                // own reference to the Notify first.
                #[cfg(loom)]
                let n = (*w).notify.clone();
                (*w).futex.store(1, Ordering::Release);
                #[cfg(not(loom))]
                rt_sys::futex_wake(&(*w).futex, 1);
                #[cfg(loom)]
                n.notify();
            }
        }
    }
}
