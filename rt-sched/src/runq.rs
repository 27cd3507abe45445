//! The run queues: each P's `runnext` and 256-slot ring (Go's `runq`), the
//! global queue under `sched.lock`, and the functions the scheduler moves
//! Gs between them with (`runqput`, `runqget`, `globrunqput`,
//! `globrunqget`).
//!
//! A ring is reached through two handles, as tokio's work-stealing queue
//! is: [`Local`], the owner's (only the M holding the P makes one, which
//! its `unsafe` constructor makes the caller promise), and [`Steal`],
//! anyone's. Stealing moves Gs from a `Steal` into the thief's own `Local`.
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
//! plus the new G to an [`Overflow`] sink (`runqputslow`, 129 Gs), which is
//! the global queue: the batch is copied to the pusher's stack and then,
//! as pointers, into the global queue's ring (one copy each way, no G read).

use crate::runtime2::{SchedLocked, SchedStats, G, P, SCHED};
use core::ptr::null_mut;
#[cfg(not(loom))]
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use crossbeam_utils::Backoff;
#[cfg(loom)]
use loom::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// Capacity of a local run queue. Under the loom model it is 4, so the
/// model reaches the full-queue and wrap-around cases in a few steps (as
/// tokio's model of its queue does).
#[cfg(not(loom))]
pub(crate) const RUNQ_SIZE: usize = 256;
/// Capacity of a local run queue (shrunk for the loom model).
#[cfg(loom)]
pub(crate) const RUNQ_SIZE: usize = 4;

/// A P's local run queue. Reached only through its two handles: the
/// owner's [`Local`] (the M holding the P: push, pop, be stolen into) and
/// anyone's [`Steal`] (take half, read the length).
pub(crate) struct RunQueue {
    /// Consumer end; moved by the owner and by stealers (CAS).
    head: AtomicU32,
    /// Producer end; written only by the owner.
    tail: AtomicU32,
    /// The ring.
    buf: [AtomicPtr<G>; RUNQ_SIZE],
}

impl core::fmt::Debug for RunQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RunQueue")
            .field("len", &self.len())
            .finish()
    }
}

/// The owner's handle on a [`RunQueue`]: the only way to add Gs, or to take
/// them from the head one at a time.
pub(crate) struct Local<'a> {
    q: &'a RunQueue,
}

/// Any M's handle on a [`RunQueue`]: steal half of it, or look at its length.
#[derive(Clone, Copy)]
pub(crate) struct Steal<'a> {
    q: &'a RunQueue,
}

/// Where [`Local::push`] sends what does not fit: half of a full ring plus
/// the new G, in queue order (Go's `runqputslow` hands them to the global
/// queue). The batch lives on the pusher's stack.
pub(crate) trait Overflow {
    /// Takes ownership of the Gs in `batch`.
    fn push_batch(&mut self, batch: &[*mut G]);
}

/// Length of an overflow batch: half the ring and the G being pushed.
pub(crate) const OVERFLOW_BATCH: usize = RUNQ_SIZE / 2 + 1;

impl RunQueue {
    /// An empty queue.
    pub(crate) fn new() -> RunQueue {
        RunQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            buf: core::array::from_fn(|_| AtomicPtr::new(null_mut())),
        }
    }

    /// The owner's handle.
    ///
    /// # Safety
    /// While the handle lives, the caller is the queue's only owner: it
    /// holds the P (or the world is stopped and the P is held by no M), and
    /// no other `Local` for this queue exists.
    #[inline(always)]
    pub(crate) unsafe fn local(&self) -> Local<'_> {
        Local { q: self }
    }

    /// A stealer's handle (any thread).
    #[inline(always)]
    pub(crate) fn stealer(&self) -> Steal<'_> {
        Steal { q: self }
    }

    /// Number of queued Gs (a snapshot when called by a non-owner).
    fn len(&self) -> u32 {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            // Re-read head: if it moved we may have a torn view.
            if self.head.load(Ordering::Acquire) == h {
                return t.wrapping_sub(h);
            }
        }
    }
}

impl Local<'_> {
    /// Appends `gp`. When the ring is full, takes half of it plus `gp` out
    /// and hands them to `overflow` (Go's `runqputslow`).
    #[inline]
    pub(crate) fn push(&mut self, gp: *mut G, overflow: &mut impl Overflow) {
        let q = self.q;
        loop {
            let h = q.head.load(Ordering::Acquire);
            // Only the owner writes tail, so a relaxed read of our own value is exact.
            let t = q.tail.load(Ordering::Relaxed);
            if t.wrapping_sub(h) < RUNQ_SIZE as u32 {
                q.buf[t as usize % RUNQ_SIZE].store(gp, Ordering::Relaxed);
                // Release: publishes the slot to stealers that Acquire-load tail.
                q.tail.store(t.wrapping_add(1), Ordering::Release);
                return;
            }
            if self.push_overflow(gp, h, t, overflow) {
                return;
            }
            // A stealer moved head: there is room again; retry.
        }
    }

    #[cold]
    #[inline(never)]
    fn push_overflow(&mut self, gp: *mut G, h: u32, t: u32, overflow: &mut impl Overflow) -> bool {
        let q = self.q;
        let n = t.wrapping_sub(h) / 2;
        debug_assert_eq!(n as usize, RUNQ_SIZE / 2, "runqputslow: queue is not full");
        let mut batch = [null_mut(); OVERFLOW_BATCH];
        for (i, slot) in batch.iter_mut().take(n as usize).enumerate() {
            *slot = q.buf[h.wrapping_add(i as u32) as usize % RUNQ_SIZE].load(Ordering::Relaxed);
        }
        // Claim the copied half; fails if a stealer got there first.
        if q.head
            .compare_exchange(h, h.wrapping_add(n), Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        batch[n as usize] = gp;
        overflow.push_batch(&batch);
        true
    }

    /// The G at the head, left in the queue (null when empty); a thief may
    /// take it at any time.
    #[inline]
    pub(crate) fn peek(&self) -> *mut G {
        let q = self.q;
        let h = q.head.load(Ordering::Acquire);
        if q.tail.load(Ordering::Relaxed) == h {
            return null_mut();
        }
        q.buf[h as usize % RUNQ_SIZE].load(Ordering::Relaxed)
    }

    /// Takes the G at the head, or null.
    #[inline]
    pub(crate) fn pop(&mut self) -> *mut G {
        let q = self.q;
        loop {
            let h = q.head.load(Ordering::Acquire);
            let t = q.tail.load(Ordering::Relaxed);
            if t == h {
                return null_mut();
            }
            let gp = q.buf[h as usize % RUNQ_SIZE].load(Ordering::Relaxed);
            // Release on success: our read of the slot happens before the
            // owner may reuse it after seeing the new head.
            if q.head
                .compare_exchange(h, h.wrapping_add(1), Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                // The Gs after this one run next unless they are stolen:
                // start loading the one after next while this one runs (a
                // stale slot only costs a useless prefetch). Two ahead: by
                // the next pop its fields are cached, and `runqget` can
                // read them to fetch its stack in turn.
                if t.wrapping_sub(h) > 2 {
                    crate::arch::prefetch_write(
                        q.buf[h.wrapping_add(2) as usize % RUNQ_SIZE]
                            .load(Ordering::Relaxed)
                            .cast(),
                    );
                }
                return gp;
            }
        }
    }
}

impl Steal<'_> {
    /// Moves half (rounded up) of this queue into `dst`, which has room for
    /// `RUNQ_SIZE / 2` Gs (the thief only steals when its own ring is
    /// empty). Returns one of the stolen Gs to run now, or null. `runnext`
    /// is not considered here (see `proc::schedule::steal_work`).
    pub(crate) fn steal_into(&self, dst: &mut Local<'_>) -> *mut G {
        let dq = dst.q;
        let dt = dq.tail.load(Ordering::Relaxed);
        let n = self.grab(dq, dt);
        if n == 0 {
            return null_mut();
        }
        let n = n - 1;
        let gp = dq.buf[dt.wrapping_add(n) as usize % RUNQ_SIZE].load(Ordering::Relaxed);
        if n != 0 {
            // Publish the other stolen Gs in our own queue.
            dq.tail.store(dt.wrapping_add(n), Ordering::Release);
        }
        gp
    }

    /// Copies half of this queue into `dst` starting at `dst_tail` and claims
    /// them. Returns how many.
    fn grab(&self, dst: &RunQueue, dst_tail: u32) -> u32 {
        let q = self.q;
        // Another thief (or the owner) moved head under us: back off a
        // little before the next attempt instead of hammering the line.
        let backoff = Backoff::new();
        loop {
            let h = q.head.load(Ordering::Acquire);
            // Acquire: pairs with the owner's Release store of tail, so the
            // slots up to t are filled.
            let t = q.tail.load(Ordering::Acquire);
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
                let g = q.buf[h.wrapping_add(i) as usize % RUNQ_SIZE].load(Ordering::Relaxed);
                dst.buf[dst_tail.wrapping_add(i) as usize % RUNQ_SIZE].store(g, Ordering::Relaxed);
            }
            if q.head
                .compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return n;
            }
            backoff.spin();
        }
    }

    /// Number of queued Gs (a snapshot).
    pub(crate) fn len(&self) -> u32 {
        self.q.len()
    }

    /// True when no G is queued (a snapshot).
    pub(crate) fn is_empty(&self) -> bool {
        self.q.len() == 0
    }
}

// ---------------------------------------------------------------------------
// The run queues of the scheduler: a P's `runnext` and ring, the global queue

/// The global run queue as an [`Overflow`] sink, while `sched.lock` is
/// held: the batch's pointers are appended to its ring.
impl Overflow for SchedLocked {
    fn push_batch(&mut self, batch: &[*mut G]) {
        // The batch's Gs were just taken out of a local queue, so they are
        // runnable, live and in no other queue.
        self.runq.push_slice(batch);
        self.runqsize_add(batch.len() as i32);
        SchedStats::bump(&SCHED.stats.overflows);
    }
}

/// The global run queue as an [`Overflow`] sink for a caller that does
/// not hold `sched.lock`: one lock round for the whole batch.
pub(crate) struct ToGlobal;

impl Overflow for ToGlobal {
    fn push_batch(&mut self, batch: &[*mut G]) {
        SCHED.lock().push_batch(batch);
    }
}

/// Puts `gp` on `pp`'s local queue (`next`: into `runnext`, kicking the old
/// occupant to the tail). Overflow goes to the global queue.
///
/// # Safety
/// `pp` must be held by the calling M; `gp` runnable and in no queue.
pub(crate) unsafe fn runqput(pp: *mut P, gp: *mut G, next: bool) {
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
    // SAFETY: the calling M holds pp (caller contract).
    unsafe { p.runq.local() }.push(gp, &mut ToGlobal);
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
    // SAFETY: the calling M holds pp (caller contract).
    let mut q = unsafe { p.runq.local() };
    let gp = q.pop();
    let next = q.peek();
    // The G that runs next, if the poller woke it: a goroutine back from
    // I/O among many others has usually left the caches, so fetch the top
    // of its stack while this one runs. `pop` fetched its fields one pop
    // ago. One woken by a channel is usually still cached: left alone.
    // SAFETY: a G of our queue (Gs are never freed; a thief may have taken
    // it since, which only makes the hint useless).
    if !next.is_null() && unsafe { (*next).polled.load(Ordering::Relaxed) } {
        crate::arch::prefetch_stack(next);
    }
    (gp, false)
}

/// True when `pp` has neither a queued G nor a `runnext` (a snapshot when
/// another M holds `pp`).
///
/// # Safety
/// `pp` is a P of `allp` (Ps are never freed).
pub(crate) unsafe fn runqempty(pp: *mut P) -> bool {
    // SAFETY: caller contract.
    let p = unsafe { &*pp };
    p.runq.stealer().is_empty() && p.runnext.load(Ordering::Acquire).is_null()
}

/// Puts `gp` on the global run queue.
///
/// # Safety
/// `gp` is a live, runnable G in no queue, owned by the caller.
pub(crate) unsafe fn globrunqput(gp: *mut G) {
    let mut s = SCHED.lock();
    // gp is runnable and in no queue (caller contract).
    s.runq.push_back(gp);
    s.runqsize_add(1);
}

/// Takes a batch from the global queue (Go's `globrunqget`): its fair share
/// `size/gomaxprocs + 1`, at most `max` (if non-zero) and half a local
/// queue; returns one and moves the rest into `pp`'s local queue.
///
/// # Safety
/// `pp` is held by the calling M.
pub(crate) unsafe fn globrunqget(s: &mut SchedLocked, pp: *mut P, max: i32) -> *mut G {
    let size = SCHED.runqsize.load(Ordering::Relaxed);
    if size == 0 {
        return null_mut();
    }
    let procs = SCHED.gomaxprocs.load(Ordering::Relaxed).max(1);
    let mut n = (size / procs + 1).min(size);
    if max > 0 {
        n = n.min(max);
    }
    n = n.min(RUNQ_SIZE as i32 / 2);
    s.runqsize_add(-n);
    let gp = s.runq.pop();
    // SAFETY: pp is held by the calling M (caller contract).
    let mut local = unsafe { (*pp).runq.local() };
    for _ in 1..n {
        let g = s.runq.pop();
        // An overflow goes back onto the global queue under the lock we
        // already hold.
        local.push(g, s);
    }
    gp
}

/// A sink that keeps every overflow batch, for the tests.
#[cfg(test)]
impl Overflow for Vec<*mut G> {
    fn push_batch(&mut self, batch: &[*mut G]) {
        self.extend_from_slice(batch);
    }
}

/// Model checks of the owner/stealer protocol (`RUSTFLAGS="--cfg loom"
/// cargo test -p rt-sched --release loom_tests`, run by `cargo xtask test`):
/// loom explores every interleaving of the atomics (bounded preemptions) and
/// every G must come out exactly once. The model drives the real handles:
/// the owner through `Local`, thieves through `Steal` into their own
/// `Local`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn fake(i: usize) -> *mut G {
        (0x1000 + i * 8) as *mut G
    }

    fn drain(q: &mut Local<'_>, out: &mut Vec<usize>) {
        loop {
            let g = q.pop();
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

    /// A thief's attempt: steal into its own queue, then drain that queue.
    fn steal_all(victim: &RunQueue) -> Vec<usize> {
        let mine = RunQueue::new();
        // SAFETY: `mine` belongs to this model thread alone.
        let mut local = unsafe { mine.local() };
        let mut got = Vec::new();
        let g = victim.stealer().steal_into(&mut local);
        if !g.is_null() {
            got.push(g as usize);
            drain(&mut local, &mut got);
        }
        got
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
            let thief = thread::spawn(move || steal_all(&q2));
            let n = RUNQ_SIZE + 2;
            // SAFETY: this model thread is the queue's only owner.
            let mut local = unsafe { q.local() };
            let mut overflow: Vec<*mut G> = Vec::new();
            for i in 0..n {
                local.push(fake(i), &mut overflow);
            }
            let mut got: Vec<usize> = overflow.iter().map(|g| *g as usize).collect();
            let g = local.pop();
            if !g.is_null() {
                got.push(g as usize);
            }
            got.extend(thief.join().unwrap());
            drain(&mut local, &mut got);
            check(got, n);
        });
    }

    /// Two stealers race each other and the owner's pop.
    #[test]
    fn two_stealers() {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(2);
        b.check(|| {
            let q = Arc::new(RunQueue::new());
            // SAFETY: this model thread is the queue's only owner.
            let mut local = unsafe { q.local() };
            let mut overflow: Vec<*mut G> = Vec::new();
            for i in 0..3 {
                local.push(fake(i), &mut overflow);
            }
            assert!(overflow.is_empty());
            let ts: Vec<_> = (0..2)
                .map(|_| {
                    let q = q.clone();
                    thread::spawn(move || steal_all(&q))
                })
                .collect();
            let mut got = Vec::new();
            let g = local.pop();
            if !g.is_null() {
                got.push(g as usize);
            }
            for t in ts {
                got.extend(t.join().unwrap());
            }
            drain(&mut local, &mut got);
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
        /// Single-threaded model: the queue behaves as a FIFO where push
        /// overflows 129 Gs in order and steal takes half rounded up, and
        /// no G is ever lost or duplicated.
        #[test]
        fn matches_fifo_model(ops in prop::collection::vec(prop_oneof![3 => Just(Op::Put), 1 => Just(Op::Get), 1 => Just(Op::Steal)], 0..2000)) {
            let q = RunQueue::new();
            let thief = RunQueue::new();
            // SAFETY: both queues belong to this test thread alone.
            let (mut local, mut thief_local) = unsafe { (q.local(), thief.local()) };
            let mut model: VecDeque<*mut G> = VecDeque::new();
            let mut next = 0usize;
            let mut seen_out = std::collections::HashSet::new();
            for op in ops {
                match op {
                    Op::Put => {
                        let g = fake(next);
                        next += 1;
                        let mut o: Vec<*mut G> = Vec::new();
                        local.push(g, &mut o);
                        if o.is_empty() {
                            model.push_back(g);
                        } else {
                            prop_assert_eq!(model.len(), RUNQ_SIZE);
                            prop_assert_eq!(o.len(), OVERFLOW_BATCH);
                            let moved: Vec<_> = model.drain(..RUNQ_SIZE / 2).collect();
                            prop_assert_eq!(&o[..RUNQ_SIZE / 2], &moved[..]);
                            prop_assert_eq!(o[RUNQ_SIZE / 2], g);
                            for g in o.iter() { prop_assert!(seen_out.insert(*g as usize)); }
                        }
                    }
                    Op::Get => {
                        let g = local.pop();
                        prop_assert_eq!(g, model.pop_front().unwrap_or(null_mut()));
                        if !g.is_null() { prop_assert!(seen_out.insert(g as usize)); }
                    }
                    Op::Steal => {
                        let n = model.len();
                        let want = n - n / 2;
                        let g = q.stealer().steal_into(&mut thief_local);
                        if want == 0 {
                            prop_assert!(g.is_null());
                        } else {
                            let taken: Vec<_> = model.drain(..want).collect();
                            prop_assert_eq!(g, taken[want - 1]);
                            let mut got = vec![g];
                            loop { let x = thief_local.pop(); if x.is_null() { break } got.push(x); }
                            prop_assert_eq!(got.len(), want);
                            for x in got { prop_assert!(seen_out.insert(x as usize)); prop_assert!(taken.contains(&x)); }
                        }
                    }
                }
                prop_assert_eq!(q.stealer().len() as usize, model.len());
                prop_assert!(q.stealer().len() as usize <= RUNQ_SIZE);
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
                    // SAFETY: `mine` belongs to this thread alone.
                    let mut local = unsafe { mine.local() };
                    let mut got = Vec::new();
                    while !done.load(Ordering::Acquire) || !q.stealer().is_empty() {
                        let g = q.stealer().steal_into(&mut local);
                        if !g.is_null() {
                            got.push(g as usize);
                            loop {
                                let x = local.pop();
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
        // SAFETY: this thread is the queue's only owner.
        let mut local = unsafe { q.local() };
        let mut got = Vec::new();
        let mut overflowed: Vec<*mut G> = Vec::new();
        for i in 0..N {
            local.push(fake(i), &mut overflowed);
            if i % 3 == 0 {
                let g = local.pop();
                if !g.is_null() {
                    got.push(g as usize);
                }
            }
        }
        loop {
            let g = local.pop();
            if g.is_null() {
                break;
            }
            got.push(g as usize);
        }
        done.store(true, Ordering::Release);
        for t in thieves {
            got.extend(t.join().unwrap());
        }
        got.extend(overflowed.iter().map(|g| *g as usize));
        got.sort_unstable();
        let want: Vec<usize> = (0..N).map(|i| fake(i) as usize).collect();
        assert_eq!(got, want);
    }
}
