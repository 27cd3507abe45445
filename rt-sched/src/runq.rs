//! The per-P local run queue (Go's `runq`): a 256-slot ring.
//!
//! * `tail` is written only by the owner (the M holding the P), with Release
//!   after the slot is filled, so a stealer that reads `tail` with Acquire sees
//!   the G in the slot.
//! * `head` is advanced by the owner and by stealers with a CAS (Release on
//!   success) — whoever wins the CAS owns the Gs between the old and new head.
//! * A stealer copies the slots *before* its CAS; if the CAS fails it throws
//!   the copies away. The owner never overwrites a slot a stealer may still be
//!   copying, because it only writes at `tail`, and `tail - head < 256`.
//!
//! The ring holds at most `RUNQ_SIZE` Gs; the owner moves half of a full ring
//! plus the new G to the global queue (`runqputslow`, 129 Gs).

use crate::runtime2::{G, P, SCHED};
use core::ptr::null_mut;
#[cfg(not(loom))]
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
#[cfg(loom)]
use loom::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// Capacity of a local run queue. Under the loom model it is 4, so the
/// model reaches the full-queue and wrap-around cases in a few steps (as
/// tokio's model of its queue does).
#[cfg(not(loom))]
pub const RUNQ_SIZE: usize = 256;
/// Capacity of a local run queue (shrunk for the loom model).
#[cfg(loom)]
pub const RUNQ_SIZE: usize = 4;

/// A P's local run queue.
pub struct RunQueue {
    /// Consumer end; moved by the owner and by stealers (CAS).
    pub head: AtomicU32,
    /// Producer end; written only by the owner.
    pub tail: AtomicU32,
    /// The ring.
    pub buf: [AtomicPtr<G>; RUNQ_SIZE],
}

impl core::fmt::Debug for RunQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RunQueue")
            .field("len", &self.len())
            .finish()
    }
}

impl Default for RunQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// What `put` could not fit: the batch for the global queue.
#[derive(Debug)]
pub struct Overflow {
    /// `RUNQ_SIZE / 2 + 1` Gs, in queue order, the new G last.
    pub batch: [*mut G; RUNQ_SIZE / 2 + 1],
}

impl RunQueue {
    /// An empty queue.
    pub fn new() -> RunQueue {
        RunQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            buf: core::array::from_fn(|_| AtomicPtr::new(null_mut())),
        }
    }

    /// Number of queued Gs (a snapshot when called by a non-owner).
    pub fn len(&self) -> u32 {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            // Re-read head: if it moved we may have a torn view.
            if self.head.load(Ordering::Acquire) == h {
                return t.wrapping_sub(h);
            }
        }
    }

    /// True when no G is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Owner: appends `gp`. When the ring is full, takes half of it plus `gp`
    /// out and returns them for the global queue (Go's `runqputslow`).
    pub fn put(&self, gp: *mut G) -> Option<Box<Overflow>> {
        loop {
            let h = self.head.load(Ordering::Acquire);
            // Only the owner writes tail, so a relaxed read of our own value is exact.
            let t = self.tail.load(Ordering::Relaxed);
            if t.wrapping_sub(h) < RUNQ_SIZE as u32 {
                self.buf[t as usize % RUNQ_SIZE].store(gp, Ordering::Relaxed);
                // Release: publishes the slot to stealers that Acquire-load tail.
                self.tail.store(t.wrapping_add(1), Ordering::Release);
                return None;
            }
            if let Some(o) = self.put_slow(gp, h, t) {
                return Some(o);
            }
            // A stealer moved head: there is room again; retry.
        }
    }

    fn put_slow(&self, gp: *mut G, h: u32, t: u32) -> Option<Box<Overflow>> {
        let n = t.wrapping_sub(h) / 2;
        debug_assert_eq!(n as usize, RUNQ_SIZE / 2, "runqputslow: queue is not full");
        let mut o = Box::new(Overflow {
            batch: [null_mut(); RUNQ_SIZE / 2 + 1],
        });
        for i in 0..n {
            o.batch[i as usize] =
                self.buf[h.wrapping_add(i) as usize % RUNQ_SIZE].load(Ordering::Relaxed);
        }
        // Claim the copied half; fails if a stealer got there first.
        if self
            .head
            .compare_exchange(h, h.wrapping_add(n), Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        o.batch[n as usize] = gp;
        Some(o)
    }

    /// Owner: takes the G at the head.
    pub fn get(&self) -> *mut G {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Relaxed);
            if t == h {
                return null_mut();
            }
            let gp = self.buf[h as usize % RUNQ_SIZE].load(Ordering::Relaxed);
            // Release on success: our read of the slot happens before the
            // owner may reuse it after seeing the new head.
            if self
                .head
                .compare_exchange(h, h.wrapping_add(1), Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return gp;
            }
        }
    }

    /// Stealer: moves half (rounded up) of this queue into `dst`, which must
    /// be the caller's own (owned) queue with room for `RUNQ_SIZE / 2` Gs.
    /// Returns one of the stolen Gs to run now, or null. Does not consider
    /// `runnext` (see `proc::runqsteal`).
    pub fn steal_into(&self, dst: &RunQueue) -> *mut G {
        let dt = dst.tail.load(Ordering::Relaxed);
        let n = self.grab(dst, dt);
        if n == 0 {
            return null_mut();
        }
        let n = n - 1;
        let gp = dst.buf[dt.wrapping_add(n) as usize % RUNQ_SIZE].load(Ordering::Relaxed);
        if n != 0 {
            // Publish the other stolen Gs in our own queue.
            dst.tail.store(dt.wrapping_add(n), Ordering::Release);
        }
        gp
    }

    /// Copies half of this queue into `dst` starting at `dst_tail` and claims
    /// them. Returns how many.
    fn grab(&self, dst: &RunQueue, dst_tail: u32) -> u32 {
        loop {
            let h = self.head.load(Ordering::Acquire);
            // Acquire: pairs with the owner's Release store of tail, so the
            // slots up to t are filled.
            let t = self.tail.load(Ordering::Acquire);
            let mut n = t.wrapping_sub(h);
            n -= n / 2;
            if n == 0 {
                return 0;
            }
            if n as usize > RUNQ_SIZE / 2 {
                // Read an inconsistent head/tail pair; try again.
                continue;
            }
            for i in 0..n {
                let g = self.buf[h.wrapping_add(i) as usize % RUNQ_SIZE].load(Ordering::Relaxed);
                dst.buf[dst_tail.wrapping_add(i) as usize % RUNQ_SIZE].store(g, Ordering::Relaxed);
            }
            if self
                .head
                .compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return n;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The run queues of the scheduler: a P's `runnext` and ring, the global queue

/// Puts `gp` on `pp`'s local queue (`next`: into `runnext`, kicking the old
/// occupant to the tail). Overflow goes to the global queue.
///
/// # Safety
/// `pp` must be held by the calling M; `gp` runnable and in no queue.
pub unsafe fn runqput(pp: *mut P, gp: *mut G, next: bool) {
    // SAFETY: caller contract.
    let p = unsafe { &*pp };
    let mut gp = gp;
    if next {
        let old = p.runnext.swap(gp, Ordering::AcqRel);
        if old.is_null() {
            return;
        }
        gp = old;
    }
    if let Some(o) = p.runq.put(gp) {
        // Link the batch and hand it to the global queue in one lock.
        SCHED.lock.lock();
        // SAFETY: lock held; the batch Gs are ours.
        unsafe {
            let s = SCHED.locked();
            for &g in o.batch.iter() {
                s.runq.push_back(g);
            }
        }
        SCHED
            .runqsize
            .fetch_add(o.batch.len() as i32, Ordering::Relaxed);
        SCHED.lock.unlock();
    }
}

/// Takes the next G from `pp`: `runnext` first (inheriting the time slice).
///
/// # Safety
/// `pp` must be held by the calling M.
pub(crate) unsafe fn runqget(pp: *mut P) -> (*mut G, bool) {
    // SAFETY: caller contract.
    let p = unsafe { &*pp };
    let next = p.runnext.load(Ordering::Relaxed);
    if !next.is_null()
        && p.runnext
            .compare_exchange(next, null_mut(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        return (next, true);
    }
    (p.runq.get(), false)
}

/// Puts `gp` on the global run queue.
pub(crate) fn globrunqput(gp: *mut G) {
    SCHED.lock.lock();
    // SAFETY: lock held; gp is runnable and in no queue.
    unsafe { SCHED.locked().runq.push_back(gp) };
    SCHED.runqsize.fetch_add(1, Ordering::Relaxed);
    SCHED.lock.unlock();
}

/// Takes a batch from the global queue (Go's `globrunqget`): its fair share
/// `size/gomaxprocs + 1`, at most `max` (if non-zero) and half a local
/// queue; returns one and moves the rest into `pp`'s local queue.
///
/// # Safety
/// `sched.lock` held; `pp` held by the calling M.
pub(crate) unsafe fn globrunqget(pp: *mut P, max: i32) -> *mut G {
    let size = SCHED.runqsize.load(Ordering::Relaxed);
    if size == 0 {
        return null_mut();
    }
    let procs = SCHED.gomaxprocs.load(Ordering::Relaxed).max(1);
    let mut n = (size / procs + 1).min(size);
    if max > 0 {
        n = n.min(max);
    }
    n = n.min(crate::runq::RUNQ_SIZE as i32 / 2);
    SCHED.runqsize.fetch_sub(n, Ordering::Relaxed);
    // SAFETY: lock held (caller).
    let s = unsafe { SCHED.locked() };
    // SAFETY: the queue holds live Gs.
    let gp = unsafe { s.runq.pop() };
    for _ in 1..n {
        // runqput would take sched.lock for an overflow, which we hold: put
        // straight into the ring and move an overflow batch ourselves.
        // SAFETY: lock held (caller); pp is ours; the queue holds live Gs.
        unsafe {
            let g = s.runq.pop();
            if let Some(o) = (*pp).runq.put(g) {
                for &g in o.batch.iter() {
                    s.runq.push_back(g);
                }
                SCHED
                    .runqsize
                    .fetch_add(o.batch.len() as i32, Ordering::Relaxed);
            }
        }
    }
    gp
}

/// Model checks of the owner/stealer protocol (`RUSTFLAGS="--cfg loom"
/// cargo test -p rt-sched --lib runq::loom_tests`, run by `cargo xtask test`):
/// loom explores every interleaving of the atomics (bounded preemptions) and
/// every G must come out exactly once.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn fake(i: usize) -> *mut G {
        (0x1000 + i * 8) as *mut G
    }

    fn drain(q: &RunQueue, out: &mut Vec<usize>) {
        loop {
            let g = q.get();
            if g.is_null() {
                break;
            }
            out.push(g as usize);
        }
    }

    fn check(mut got: Vec<usize>, n: usize) {
        got.sort_unstable();
        let want: Vec<usize> = (0..n).map(|i| fake(i) as usize).collect();
        assert_eq!(got, want, "a G was lost or duplicated");
    }

    /// The owner pushes past capacity (overflow to the "global queue") and
    /// pops while a stealer steals: nothing lost, nothing duplicated.
    #[test]
    fn owner_overflow_and_stealer() {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(2);
        b.check(|| {
            let q = Arc::new(RunQueue::new());
            let q2 = q.clone();
            let thief = thread::spawn(move || {
                let mine = RunQueue::new();
                let mut got = Vec::new();
                let g = q2.steal_into(&mine);
                if !g.is_null() {
                    got.push(g as usize);
                    drain(&mine, &mut got);
                }
                got
            });
            let n = RUNQ_SIZE + 2;
            let mut got = Vec::new();
            for i in 0..n {
                if let Some(o) = q.put(fake(i)) {
                    got.extend(o.batch.iter().map(|g| *g as usize));
                }
            }
            let g = q.get();
            if !g.is_null() {
                got.push(g as usize);
            }
            got.extend(thief.join().unwrap());
            drain(&q, &mut got);
            check(got, n);
        });
    }

    /// Two stealers race each other and the owner's get.
    #[test]
    fn two_stealers() {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(2);
        b.check(|| {
            let q = Arc::new(RunQueue::new());
            for i in 0..3 {
                assert!(q.put(fake(i)).is_none());
            }
            let ts: Vec<_> = (0..2)
                .map(|_| {
                    let q = q.clone();
                    thread::spawn(move || {
                        let mine = RunQueue::new();
                        let mut got = Vec::new();
                        let g = q.steal_into(&mine);
                        if !g.is_null() {
                            got.push(g as usize);
                            drain(&mine, &mut got);
                        }
                        got
                    })
                })
                .collect();
            let mut got = Vec::new();
            let g = q.get();
            if !g.is_null() {
                got.push(g as usize);
            }
            for t in ts {
                got.extend(t.join().unwrap());
            }
            drain(&q, &mut got);
            check(got, 3);
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn fake(i: usize) -> *mut G {
        // Distinct non-null tokens; never dereferenced by the queue.
        (0x1000 + i * 8) as *mut G
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put,
        Get,
        Steal,
    }

    proptest! {
        /// Single-threaded model: the queue behaves as a FIFO where put
        /// overflows 129 Gs in order and steal takes half rounded up, and
        /// no G is ever lost or duplicated.
        #[test]
        fn matches_fifo_model(ops in prop::collection::vec(prop_oneof![3 => Just(Op::Put), 1 => Just(Op::Get), 1 => Just(Op::Steal)], 0..2000)) {
            let q = RunQueue::new();
            let thief = RunQueue::new();
            let mut model: VecDeque<*mut G> = VecDeque::new();
            let mut next = 0usize;
            let mut seen_out = std::collections::HashSet::new();
            for op in ops {
                match op {
                    Op::Put => {
                        let g = fake(next);
                        next += 1;
                        match q.put(g) {
                            None => model.push_back(g),
                            Some(o) => {
                                prop_assert_eq!(model.len(), RUNQ_SIZE);
                                let moved: Vec<_> = model.drain(..RUNQ_SIZE / 2).collect();
                                prop_assert_eq!(&o.batch[..RUNQ_SIZE / 2], &moved[..]);
                                prop_assert_eq!(o.batch[RUNQ_SIZE / 2], g);
                                for g in o.batch.iter() { prop_assert!(seen_out.insert(*g as usize)); }
                            }
                        }
                    }
                    Op::Get => {
                        let g = q.get();
                        prop_assert_eq!(g, model.pop_front().unwrap_or(null_mut()));
                        if !g.is_null() { prop_assert!(seen_out.insert(g as usize)); }
                    }
                    Op::Steal => {
                        let n = model.len();
                        let want = n - n / 2;
                        let g = q.steal_into(&thief);
                        if want == 0 {
                            prop_assert!(g.is_null());
                        } else {
                            let taken: Vec<_> = model.drain(..want).collect();
                            prop_assert_eq!(g, taken[want - 1]);
                            let mut got = vec![g];
                            loop { let x = thief.get(); if x.is_null() { break } got.push(x); }
                            prop_assert_eq!(got.len(), want);
                            for x in got { prop_assert!(seen_out.insert(x as usize)); prop_assert!(taken.contains(&x)); }
                        }
                    }
                }
                prop_assert_eq!(q.len() as usize, model.len());
                prop_assert!(q.len() as usize <= RUNQ_SIZE);
            }
        }
    }

    /// Owner and stealers race; every G comes out exactly once.
    #[test]
    fn concurrent_steal_loses_and_duplicates_nothing() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        const N: usize = 200_000;
        let q = Arc::new(RunQueue::new());
        let done = Arc::new(AtomicBool::new(false));
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let mine = RunQueue::new();
                    let mut got = Vec::new();
                    while !done.load(Ordering::Acquire) || !q.is_empty() {
                        let g = q.steal_into(&mine);
                        if !g.is_null() {
                            got.push(g as usize);
                            loop {
                                let x = mine.get();
                                if x.is_null() {
                                    break;
                                }
                                got.push(x as usize);
                            }
                        }
                    }
                    got
                })
            })
            .collect();
        let mut got = Vec::new();
        let mut overflowed = Vec::new();
        for i in 0..N {
            if let Some(o) = q.put(fake(i)) {
                overflowed.extend(o.batch.iter().map(|g| *g as usize));
            }
            if i % 3 == 0 {
                let g = q.get();
                if !g.is_null() {
                    got.push(g as usize);
                }
            }
        }
        loop {
            let g = q.get();
            if g.is_null() {
                break;
            }
            got.push(g as usize);
        }
        done.store(true, Ordering::Release);
        for t in thieves {
            got.extend(t.join().unwrap());
        }
        got.extend(overflowed);
        got.sort_unstable();
        let want: Vec<usize> = (0..N).map(|i| fake(i) as usize).collect();
        assert_eq!(got, want);
    }
}
