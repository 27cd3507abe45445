//! Timers: `sleep` parks the goroutine with a timer in its P's heap; the
//! network poller's deadlines are timers that call a function.
//!
//! Each P has a min-heap of (when, action) under a small lock (Go's
//! `p.timers` + `timersLock`). An action wakes a goroutine, or calls a
//! [`TimerFn`] with an argument and a generation: the callee owns the
//! generation, so bumping it deletes or supersedes a pending timer without
//! touching the heap (Go's `timerDeleted`), and entries whose generation
//! went stale are swept out once they make up a quarter of all timers. The scheduler runs expired timers of every P
//! before it considers stopping (`check_timers`), and an M with nothing to do
//! sleeps on its note no longer than until the earliest timer of any P, so a
//! sleeping goroutine wakes on time even when every M is idle.

use crate::lock::Lock;
use crate::runtime2::{G, SCHED};
use core::cell::UnsafeCell;
use core::cmp::Reverse;
use core::sync::atomic::Ordering;
use std::collections::BinaryHeap;

/// A callback timer's function: `(arg, gen)` → a goroutine it made ready
/// to run (still `GWAITING`; the caller queues it), or null. `live(arg,
/// gen)` says whether the timer still matters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimerFn {
    pub fire: fn(usize, u64) -> *mut G,
    pub live: fn(usize, u64) -> bool,
}

impl PartialEq for TimerFn {
    fn eq(&self, other: &Self) -> bool {
        self.fire as usize == other.fire as usize
    }
}
impl Eq for TimerFn {}
impl PartialOrd for TimerFn {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimerFn {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (self.fire as usize).cmp(&(other.fire as usize))
    }
}

/// What a timer does when it fires.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
pub(crate) enum Action {
    /// Ready this parked goroutine.
    Wake(usize),
    /// Call the function with `(arg, gen)`.
    Call(TimerFn, usize, u64),
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    when: i64,
    seq: u64,
    action: Action,
}

/// Callback timers known to be stale (their generation moved on), over
/// every heap: when they are a quarter of all timers, the heaps are swept.
static STALE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Records that one pending callback timer no longer matters.
pub(crate) fn note_stale() {
    STALE.fetch_add(1, Ordering::Relaxed);
}

/// A P's timers.
#[derive(Debug)]
pub(crate) struct TimerHeap {
    lock: Lock,
    heap: UnsafeCell<BinaryHeap<Reverse<Timer>>>,
    seq: UnsafeCell<u64>,
}

// SAFETY: `heap` and `seq` are only touched with `lock` held.
unsafe impl Sync for TimerHeap {}
// SAFETY: as above; the G pointers are tokens handed to `goready`.
unsafe impl Send for TimerHeap {}

impl Default for TimerHeap {
    fn default() -> Self {
        Self::new()
    }
}

impl TimerHeap {
    /// No timers.
    pub const fn new() -> TimerHeap {
        TimerHeap {
            lock: Lock::new(),
            heap: UnsafeCell::new(BinaryHeap::new()),
            seq: UnsafeCell::new(0),
        }
    }

    /// Adds a timer waking `gp` at monotonic time `when`.
    pub fn add(&self, when: i64, gp: *mut G) {
        self.add_action(when, Action::Wake(gp as usize));
    }

    /// Adds a timer doing `action` at monotonic time `when`.
    pub fn add_action(&self, when: i64, action: Action) {
        self.lock.lock();
        // SAFETY: lock held.
        unsafe {
            let seq = &mut *self.seq.get();
            *seq += 1;
            (*self.heap.get()).push(Reverse(Timer {
                when,
                seq: *seq,
                action,
            }));
        }
        self.lock.unlock();
        let n = SCHED.ntimers.fetch_add(1, Ordering::AcqRel) + 1;
        let stale = STALE.load(Ordering::Relaxed);
        if stale >= 64 && stale * 4 >= n as usize {
            sweep_all();
        }
        crate::netpoll::timer_added(when);
    }

    /// Drops callback timers that no longer matter; returns how many.
    fn sweep(&self) -> usize {
        self.lock.lock();
        // SAFETY: lock held.
        let heap = unsafe { &mut *self.heap.get() };
        let before = heap.len();
        heap.retain(|t| match t.0.action {
            Action::Call(f, arg, gen) => (f.live)(arg, gen),
            Action::Wake(_) => true,
        });
        let gone = before - heap.len();
        self.lock.unlock();
        SCHED.ntimers.fetch_sub(gone as _, Ordering::AcqRel);
        gone
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.lock.lock();
        // SAFETY: lock held.
        let n = unsafe { (*self.heap.get()).len() };
        self.lock.unlock();
        n
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Earliest pending deadline.
    pub fn next_when(&self) -> Option<i64> {
        self.lock.lock();
        // SAFETY: lock held.
        let w = unsafe { (*self.heap.get()).peek().map(|t| t.0.when) };
        self.lock.unlock();
        w
    }

    /// Removes every timer due at `now` and appends `(deadline, action)`
    /// in deadline order (ties in insertion order). Skips the heap if its
    /// lock is busy (its owner is handling it).
    pub fn take_expired(&self, now: i64, out: &mut Vec<(i64, Action)>) {
        if !self.lock.try_lock() {
            return;
        }
        // SAFETY: lock held.
        let heap = unsafe { &mut *self.heap.get() };
        while let Some(t) = heap.peek() {
            if t.0.when > now {
                break;
            }
            let t = heap.pop().expect("peeked");
            out.push((t.0.when, t.0.action));
            SCHED.ntimers.fetch_sub(1, Ordering::AcqRel);
        }
        self.lock.unlock();
    }

    /// Moves every timer into `dst` (a P being destroyed).
    pub fn move_to(&self, dst: &TimerHeap) {
        self.lock.lock();
        // SAFETY: lock held.
        let all: Vec<_> = unsafe { (*self.heap.get()).drain().collect() };
        self.lock.unlock();
        for Reverse(t) in all {
            SCHED.ntimers.fetch_sub(1, Ordering::AcqRel);
            dst.add_action(t.when, t.action);
        }
    }
}

/// Sweeps stale callback timers out of every P's heap.
fn sweep_all() {
    // One sweeper at a time; the others carry on.
    static SWEEPING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if SWEEPING.swap(true, Ordering::Acquire) {
        return;
    }
    let mut gone = 0;
    crate::proc::for_each_p(|pp| {
        // SAFETY: Ps are never freed.
        gone += unsafe { (*pp).timers.sweep() };
    });
    let _ = STALE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
        Some(s.saturating_sub(gone))
    });
    SWEEPING.store(false, Ordering::Release);
}

/// Runs a fired timer's action: the goroutine it readies, if any (still
/// `GWAITING`; the caller makes it runnable).
pub(crate) fn fire(action: Action) -> *mut G {
    match action {
        Action::Wake(g) => g as *mut G,
        Action::Call(f, arg, gen) => {
            if !(f.live)(arg, gen) {
                let _ = STALE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                    Some(s.saturating_sub(1))
                });
            }
            (f.fire)(arg, gen)
        }
    }
}
