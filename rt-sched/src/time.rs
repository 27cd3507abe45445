//! Timers: `sleep` parks the goroutine with a timer in its P's heap.
//!
//! Each P has a min-heap of (when, goroutine) under a small lock (Go's
//! `p.timers` + `timersLock`). The scheduler runs expired timers of every P
//! before it considers stopping (`check_timers`), and an M with nothing to do
//! sleeps on its note no longer than until the earliest timer of any P, so a
//! sleeping goroutine wakes on time even when every M is idle.

use crate::lock::Lock;
use crate::runtime2::{G, SCHED};
use core::cell::UnsafeCell;
use core::cmp::Reverse;
use core::sync::atomic::Ordering;
use std::collections::BinaryHeap;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    when: i64,
    seq: u64,
    g: usize,
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
        self.lock.lock();
        // SAFETY: lock held.
        unsafe {
            let seq = &mut *self.seq.get();
            *seq += 1;
            (*self.heap.get()).push(Reverse(Timer {
                when,
                seq: *seq,
                g: gp as usize,
            }));
        }
        self.lock.unlock();
        SCHED.ntimers.fetch_add(1, Ordering::AcqRel);
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

    /// Removes every timer due at `now` and appends `(deadline, goroutine)`
    /// in deadline order (ties in insertion order). Skips the heap if its
    /// lock is busy (its owner is handling it).
    pub fn take_expired(&self, now: i64, out: &mut Vec<(i64, *mut G)>) {
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
            out.push((t.0.when, t.0.g as *mut G));
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
            dst.add(t.when, t.g as *mut G);
        }
    }
}
