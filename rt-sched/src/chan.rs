//! Channels (Go's `hchan`): unbuffered and buffered, with close and select.
//!
//! A channel is a lock and two FIFO wait queues of blocked senders and
//! receivers (`sudog`s), plus, when buffered, a ring of `cap` elements
//! ([`crate::chan_ring`]) that sends and receives use without the lock.
//!
//! Unbuffered, a send to a channel with a waiting receiver hands the value
//! straight to it and readies it (the receiver runs next on this P,
//! inheriting the time slice — Go's behaviour, and what makes ping-pong
//! cheap); otherwise it parks with its value until a receiver takes it.
//! Buffered, a send fills the ring and wakes a queued receiver if the ring
//! says one may wait; with the ring full it queues and sleeps until a
//! receive makes room (and wakes it), then tries again; receives mirror
//! that. Closing wakes everybody: receivers get `None` once the buffer is
//! drained, blocked senders panic (`send on closed channel`).
//!
//! ## select
//! [`Select`] follows Go's `selectgo`: the cases are polled in a random order
//! with every channel involved locked (in address order, so two selects never
//! deadlock on each other); the first ready case fires. With none ready,
//! `try_select` returns (the `default` case), and `select` queues one sudog on
//! every channel and parks once. Whoever dequeues one of those sudogs must
//! first win the select's `done` flag (a CAS): sudogs of a select that
//! already fired are skipped. The woken goroutine then relocks the channels
//! and takes its other sudogs off their queues.
//!
//! ## Model checking
//! Under `--cfg loom` the same code runs on loom's threads and primitives
//! (`Arc`, the `done` flag, the lock and the waiter's words are loom's; the
//! lock-protected state and the sudogs' elements sit in loom cells, so an
//! access that the lock or a wake-up does not order is reported). Two
//! choices that are random or address-based in real builds are made
//! deterministic there, as loom needs: the select poll order and the
//! channel lock order. `loom_tests` at the end holds the models.

use crate::chan_ring::{Pop, Push, Ring};
use crate::lock::Lock;
use crate::park::Waiter;
#[cfg(not(loom))]
use core::cell::{Cell, UnsafeCell};
#[cfg(not(loom))]
use core::sync::atomic::{AtomicU32, Ordering};
#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(loom)]
use loom::sync::Arc;
#[cfg(loom)]
use model_cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
#[cfg(not(loom))]
use std::sync::Arc;

/// Looks at the ring a blocked send or receive takes before it parks, and
/// the pause instructions before each (see [`spin_before_park`]).
const SPIN_ROUNDS: u32 = 4;
const SPIN_PAUSES: u32 = 30;

/// A buffered send that found the ring full, or a receive that found it
/// empty, waits a little and looks again before it parks, while
/// rounds remain and [`crate::proc::can_spin`] allows it (another P runs,
/// this P has nothing else to run). When the other side runs on another P the
/// ring usually changes within a microsecond, and the look saves a park
/// and its wake-up (`goready`, a steal of the woken goroutine by the
/// other P, and the run queue lines both Ps then write). Measured on the
/// 2-core VM, `fanout` (producer → 4 workers → collector, rings of 128),
/// medians of 7 interleaved runs: GOMAXPROCS=2 60.2 → 40.0 ns per message,
/// 4: 68.1 → 47.9, 8: 61.1 → 49.7; GOMAXPROCS=1 unchanged (43.5, 43.6:
/// no other P, no spin). Go's mutex parameters (4 rounds of 30 pauses)
/// did better than 8 rounds (+11%) or 10 pauses (+46%).
#[inline]
fn spin_before_park(round: &mut u32) -> bool {
    if *round >= SPIN_ROUNDS || !crate::proc::can_spin() {
        return false;
    }
    *round += 1;
    for _ in 0..SPIN_PAUSES {
        core::hint::spin_loop();
    }
    true
}

/// `core::cell::UnsafeCell`'s and `Cell`'s methods used here, over loom's
/// cell: every access is recorded for the calling model thread, and loom
/// fails the model when two threads' accesses (one of them a write) are not
/// ordered by happens-before.
#[cfg(loom)]
mod model_cell {
    #[derive(Debug)]
    pub(super) struct UnsafeCell<T>(loom::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(super) fn new(v: T) -> UnsafeCell<T> {
            UnsafeCell(loom::cell::UnsafeCell::new(v))
        }

        /// Recorded as a write: the callers may write through the pointer.
        pub(super) fn get(&self) -> *mut T {
            self.0.with_mut(|p| p)
        }
    }

    #[derive(Debug)]
    pub(super) struct Cell<T>(loom::cell::UnsafeCell<T>);

    impl<T: Copy> Cell<T> {
        pub(super) fn new(v: T) -> Cell<T> {
            Cell(loom::cell::UnsafeCell::new(v))
        }

        pub(super) fn get(&self) -> T {
            // SAFETY: loom checks that this read is ordered with every write;
            // the model threads run one at a time.
            self.0.with(|p| unsafe { *p })
        }

        pub(super) fn set(&self, v: T) {
            // SAFETY: as in `get`, for a write.
            self.0.with_mut(|p| unsafe { *p = v })
        }
    }
}

/// A waiting sender or receiver.
struct Sudog<T> {
    /// Who to wake (shared by all sudogs of one select).
    w: *const Waiter,
    /// The select's `done` flag, or null for a plain send/receive.
    sel: *const AtomicU32,
    /// The select case this sudog belongs to.
    case: usize,
    /// The value being sent, or the slot a receiver gets.
    elem: UnsafeCell<Option<T>>,
    /// Set by the waker: the operation happened (false: channel closed).
    success: Cell<bool>,
}

impl<T> Sudog<T> {
    fn new(w: *const Waiter, sel: *const AtomicU32, case: usize, elem: Option<T>) -> Sudog<T> {
        Sudog {
            w,
            sel,
            case,
            elem: UnsafeCell::new(elem),
            success: Cell::new(false),
        }
    }
}

struct Inner<T> {
    closed: bool,
    recvq: VecDeque<*const Sudog<T>>,
    sendq: VecDeque<*const Sudog<T>>,
}

impl<T> Inner<T> {
    /// The queue of waiting senders (or receivers).
    fn queue(&mut self, senders: bool) -> &mut VecDeque<*const Sudog<T>> {
        if senders {
            &mut self.sendq
        } else {
            &mut self.recvq
        }
    }
}

/// Pops the first sudog that may still be woken: plain ones always, select
/// ones only if this dequeue wins their select (Go's `dequeue` +
/// `selectDone`).
fn dequeue<T>(q: &mut VecDeque<*const Sudog<T>>) -> Option<*const Sudog<T>> {
    while let Some(sg) = q.pop_front() {
        // SAFETY: queued sudogs are live until woken or dequeued by their owner.
        let sel = unsafe { (*sg).sel };
        if !sel.is_null()
            // SAFETY: a select's done flag lives as long as its sudogs.
            && unsafe { (*sel).compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire) }
                .is_err()
        {
            continue;
        }
        return Some(sg);
    }
    None
}

/// Wakes a dequeued sudog, telling its waiter which case fired.
///
/// # Safety
/// `sg` was dequeued under the channel lock by the caller, who won it.
unsafe fn wake<T>(sg: *const Sudog<T>, success: bool) {
    // SAFETY: caller contract: sg is live and ours to wake.
    unsafe {
        (*sg).success.set(success);
        (*(*sg).w).fired.store((*sg).case, Ordering::Relaxed);
        Waiter::wake((*sg).w);
    }
}

struct HChan<T> {
    lock: Lock,
    inner: UnsafeCell<Inner<T>>,
    /// The buffer; `None` for an unbuffered channel.
    ring: Option<Ring<T>>,
    /// The model's lock order: channels in creation order (addresses may
    /// differ from one explored execution to the next).
    #[cfg(loom)]
    serial: usize,
}

// SAFETY: `inner` is only touched with `lock` held; elements move between
// threads, hence `T: Send`.
unsafe impl<T: Send> Sync for HChan<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for HChan<T> {}

/// A channel of `T`; clones are handles to the same channel (as Go's `chan T`).
pub struct Chan<T> {
    h: Arc<HChan<T>>,
}

impl<T> Clone for Chan<T> {
    fn clone(&self) -> Self {
        Chan { h: self.h.clone() }
    }
}

/// Why a non-blocking send failed.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// No receiver waiting and no room in the buffer.
    Full(T),
    /// The channel is closed.
    Closed(T),
}

/// Outcome of trying one operation with the lock held.
enum Now<T> {
    /// Done; for a receive, the value (None: closed and drained).
    Done(Option<T>),
    /// Would block; the value to send is handed back.
    Block(Option<T>),
    /// Send on a closed channel; the value is handed back.
    Closed(T),
}

impl<T: Send> Chan<T> {
    /// A channel with room for `cap` elements (0: unbuffered).
    pub fn new(cap: usize) -> Chan<T> {
        let c = Chan {
            h: Arc::new(HChan {
                lock: Lock::new(),
                inner: UnsafeCell::new(Inner {
                    closed: false,
                    recvq: VecDeque::new(),
                    sendq: VecDeque::new(),
                }),
                ring: (cap > 0).then(|| Ring::new(cap)),
                #[cfg(loom)]
                serial: {
                    static NEXT: std::sync::atomic::AtomicUsize =
                        std::sync::atomic::AtomicUsize::new(0);
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                },
            }),
        };
        // The model lock makes its loom objects here, on the creating thread.
        #[cfg(loom)]
        c.h.lock.init();
        c
    }

    /// The lock-protected state.
    ///
    /// # Safety
    /// `lock` must be held and the reference dropped before unlocking.
    #[allow(clippy::mut_from_ref)]
    unsafe fn inner(&self) -> &mut Inner<T> {
        // SAFETY: caller holds the lock.
        unsafe { &mut *self.h.inner.get() }
    }

    #[cfg(not(loom))]
    fn id(&self) -> usize {
        Arc::as_ptr(&self.h) as usize
    }

    #[cfg(loom)]
    fn id(&self) -> usize {
        self.h.serial
    }

    /// Unbuffered, with the lock held: send `v` now if a receiver waits. The
    /// caller wakes the receiver it is handed in `woken`.
    ///
    /// # Safety
    /// The lock must be held.
    unsafe fn send_now(&self, v: T, woken: &mut Option<*const Sudog<T>>) -> Now<T> {
        // SAFETY: lock held (caller).
        let c = unsafe { self.inner() };
        if c.closed {
            return Now::Closed(v);
        }
        if let Some(sg) = dequeue(&mut c.recvq) {
            // SAFETY: we won sg; its elem is ours to fill until it is woken.
            unsafe { *(*sg).elem.get() = Some(v) };
            *woken = Some(sg);
            return Now::Done(None);
        }
        Now::Block(Some(v))
    }

    /// Unbuffered, with the lock held: receive now if a sender waits or the
    /// channel is closed.
    ///
    /// # Safety
    /// The lock must be held.
    unsafe fn recv_now(&self, woken: &mut Option<*const Sudog<T>>) -> Now<T> {
        // SAFETY: lock held (caller).
        let c = unsafe { self.inner() };
        if let Some(sg) = dequeue(&mut c.sendq) {
            // SAFETY: we won sg; its value is ours to take.
            let sv = unsafe { (*(*sg).elem.get()).take() }.expect("sender without value");
            *woken = Some(sg);
            return Now::Done(Some(sv));
        }
        if c.closed {
            return Now::Done(None);
        }
        Now::Block(None)
    }

    /// Sends `v`, blocking until a receiver takes it or buffer room frees up.
    ///
    /// # Panics
    /// `send on closed channel`, as Go.
    pub fn send(&self, v: T) {
        if let Err(TrySendError::Closed(_)) = self.send_impl(v, true) {
            panic!("send on closed channel");
        }
    }

    /// Sends without blocking.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.send_impl(v, false)
    }

    fn send_impl(&self, v: T, block: bool) -> Result<(), TrySendError<T>> {
        if let Some(ring) = &self.h.ring {
            return self.send_ring(ring, v, block);
        }
        let mut woken = None;
        self.h.lock.lock();
        // SAFETY: lock held.
        let r = unsafe { self.send_now(v, &mut woken) };
        let v = match r {
            Now::Done(_) => {
                self.h.lock.unlock();
                if let Some(sg) = woken {
                    // SAFETY: dequeued and won under the lock.
                    unsafe { wake(sg, true) };
                }
                return Ok(());
            }
            Now::Closed(v) => {
                self.h.lock.unlock();
                return Err(TrySendError::Closed(v));
            }
            Now::Block(v) => v.expect("value handed back"),
        };
        if !block {
            self.h.lock.unlock();
            return Err(TrySendError::Full(v));
        }
        let w = Waiter::new();
        let sg = Sudog::new(&w, core::ptr::null(), 0, Some(v));
        // SAFETY: lock held.
        unsafe { self.inner().sendq.push_back(&sg) };
        // SAFETY: lock held; sg and w stay on this stack until we are woken.
        unsafe { w.park(&self.h.lock, "chan send") };
        if sg.success.get() {
            Ok(())
        } else {
            // SAFETY: woken by close: nobody touches sg any more.
            let v = unsafe { (*sg.elem.get()).take() }.expect("unsent value");
            Err(TrySendError::Closed(v))
        }
    }

    /// Receives a value, blocking until one is sent; `None` once the channel
    /// is closed and drained.
    pub fn recv(&self) -> Option<T> {
        self.recv_impl(true).unwrap_or(None)
    }

    fn recv_impl(&self, block: bool) -> Result<Option<T>, ()> {
        if let Some(ring) = &self.h.ring {
            return self.recv_ring(ring, block);
        }
        let mut woken = None;
        self.h.lock.lock();
        // SAFETY: lock held.
        if let Now::Done(v) = unsafe { self.recv_now(&mut woken) } {
            self.h.lock.unlock();
            if let Some(sg) = woken {
                // SAFETY: dequeued and won under the lock.
                unsafe { wake(sg, true) };
            }
            return Ok(v);
        }
        if !block {
            self.h.lock.unlock();
            return Err(());
        }
        let w = Waiter::new();
        let sg = Sudog::new(&w, core::ptr::null(), 0, None);
        // SAFETY: lock held.
        unsafe { self.inner().recvq.push_back(&sg) };
        // SAFETY: lock held; sg and w stay on this stack until we are woken.
        unsafe { w.park(&self.h.lock, "chan receive") };
        // SAFETY: woken: nobody touches sg any more.
        Ok(unsafe { (*sg.elem.get()).take() })
    }

    /// Buffered send: into the ring, or queue and sleep until a receive
    /// makes room, then try again.
    fn send_ring(&self, ring: &Ring<T>, mut v: T, block: bool) -> Result<(), TrySendError<T>> {
        let mut spins = 0;
        loop {
            match ring.push(v) {
                Push::Sent(wake) => {
                    if wake {
                        self.lock_and_wake(true);
                    }
                    return Ok(());
                }
                Push::Closed(back) => return Err(TrySendError::Closed(back)),
                Push::Full(back) if !block => return Err(TrySendError::Full(back)),
                Push::Full(back) => v = back,
            }
            if spin_before_park(&mut spins) {
                continue;
            }
            self.wait_ring(ring, true);
        }
    }

    /// Buffered receive: from the ring, or queue and sleep until a send
    /// fills it, then try again.
    fn recv_ring(&self, ring: &Ring<T>, block: bool) -> Result<Option<T>, ()> {
        let mut spins = 0;
        loop {
            match ring.pop() {
                Pop::Got(v, wake) => {
                    if wake {
                        self.lock_and_wake(false);
                    }
                    return Ok(Some(v));
                }
                Pop::Closed => return Ok(None),
                Pop::Empty if !block => return Err(()),
                Pop::Empty => {}
            }
            if spin_before_park(&mut spins) {
                continue;
            }
            self.wait_ring(ring, false);
        }
    }

    /// Buffered: queues a sender (or a receiver) and sleeps until a
    /// receive makes room (a send fills the ring) or the close, unless that
    /// happened between the caller's try and the queueing. Either way the
    /// caller tries again.
    fn wait_ring(&self, ring: &Ring<T>, sender: bool) {
        self.h.lock.lock();
        let w = Waiter::new();
        let sg = Sudog::new(&w, core::ptr::null(), 0, None);
        // SAFETY: lock held.
        let c = unsafe { self.inner() };
        let q = c.queue(sender);
        q.push_back(&sg);
        let may_sleep = if sender {
            ring.send_may_sleep()
        } else {
            ring.recv_may_sleep()
        };
        if !may_sleep {
            remove(q, &sg);
            if q.is_empty() {
                ring.clear_waiting(sender);
            }
            self.h.lock.unlock();
            return;
        }
        let reason = if sender { "chan send" } else { "chan receive" };
        // SAFETY: lock held; sg and w stay on this stack until we are woken.
        unsafe { w.park(&self.h.lock, reason) };
    }

    /// Buffered: wakes one queued receiver (`receivers`) or sender, which
    /// tries its operation again.
    #[cold]
    fn lock_and_wake(&self, receivers: bool) {
        self.h.lock.lock();
        // SAFETY: lock held.
        let sg = unsafe { self.wake_one_locked(receivers) };
        self.h.lock.unlock();
        if let Some(sg) = sg {
            // SAFETY: dequeued and won under the lock.
            unsafe { wake(sg, true) };
        }
    }

    /// Buffered, lock held: takes one queued receiver (or sender) to wake,
    /// clearing the ring's flag when its queue ends empty.
    ///
    /// # Safety
    /// The lock must be held.
    unsafe fn wake_one_locked(&self, receivers: bool) -> Option<*const Sudog<T>> {
        let ring = self.h.ring.as_ref().expect("buffered channel");
        // SAFETY: lock held (caller).
        let q = unsafe { self.inner() }.queue(!receivers);
        let sg = dequeue(q);
        if q.is_empty() {
            ring.clear_waiting(!receivers);
        }
        sg
    }

    /// Buffered, lock held (a select's): wakes one queued receiver (or
    /// sender), which tries its operation again.
    ///
    /// # Safety
    /// The lock must be held.
    unsafe fn wake_locked(&self, receivers: bool) {
        // SAFETY: lock held (caller).
        if let Some(sg) = unsafe { self.wake_one_locked(receivers) } {
            // Waking with the lock held is fine: wake only queues the
            // goroutine (or bumps a futex); it takes no channel lock.
            // SAFETY: dequeued and won under the lock.
            unsafe { wake(sg, true) };
        }
    }

    /// Closes the channel (Go's `close`).
    ///
    /// # Panics
    /// `close of closed channel`, as Go.
    pub fn close(&self) {
        self.h.lock.lock();
        // SAFETY: lock held.
        let c = unsafe { self.inner() };
        if c.closed {
            self.h.lock.unlock();
            panic!("close of closed channel");
        }
        c.closed = true;
        let mut waiters = Vec::new();
        while let Some(sg) = dequeue(&mut c.recvq) {
            waiters.push(sg);
        }
        while let Some(sg) = dequeue(&mut c.sendq) {
            waiters.push(sg);
        }
        if let Some(ring) = &self.h.ring {
            // Both queues are empty now: no waiter flags stay behind.
            ring.close();
            ring.clear_waiting(false);
            ring.clear_waiting(true);
        }
        self.h.lock.unlock();
        for sg in waiters {
            // SAFETY: dequeued and won under the lock; success = false.
            unsafe { wake(sg, false) };
        }
    }

    /// Elements in the buffer.
    pub fn len(&self) -> usize {
        self.h.ring.as_ref().map_or(0, Ring::len)
    }

    /// True when the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buffer capacity.
    pub fn cap(&self) -> usize {
        self.h.ring.as_ref().map_or(0, Ring::capacity)
    }

    /// Receives until the channel is closed and drained (`for v := range ch`).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        core::iter::from_fn(move || self.recv())
    }
}

impl<'a, T: Send> IntoIterator for &'a Chan<T> {
    type Item = T;
    type IntoIter = Box<dyn Iterator<Item = T> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

// ---------------------------------------------------------------------------
// select

/// One case of a [`Select`], with its element type erased.
trait SelCase {
    fn id(&self) -> usize;
    fn lock(&self) -> &Lock;
    /// Lock held: fire now if ready. Returns false when it would block.
    fn try_fire(&mut self) -> bool;
    /// Lock held: queue a sudog for the parked select. False when the
    /// select must not sleep after all: a buffered channel became ready
    /// between the poll and the queueing.
    fn enqueue(&mut self, w: *const Waiter, sel: *const AtomicU32, idx: usize) -> bool;
    /// Lock held: take our sudog back off the queue (select fired elsewhere).
    fn dequeue_self(&mut self);
    /// After waking with this case fired: settle the result. False for a
    /// buffered channel, whose waker only says "try again".
    fn complete(&mut self) -> bool;
    /// Send case whose channel turned out closed.
    fn closed_send(&self) -> bool;
    /// For a receive case, the element type (checked by `received`).
    fn recv_type(&self) -> Option<core::any::TypeId>;
    /// Lock held, a buffered case whose wake-up this select took and then
    /// did not use (another case fired): wakes the next waiter of the same
    /// side, which tries again in its stead.
    fn pass_wake(&self);
}

struct RecvCase<'a, T> {
    ch: &'a Chan<T>,
    sg: Option<Box<Sudog<T>>>,
    got: Option<Option<T>>,
}

struct SendCase<'a, T> {
    ch: &'a Chan<T>,
    v: Option<T>,
    sg: Option<Box<Sudog<T>>>,
    closed: bool,
}

fn remove<T>(q: &mut VecDeque<*const Sudog<T>>, sg: *const Sudog<T>) {
    if let Some(i) = q.iter().position(|x| *x == sg) {
        q.remove(i);
    }
}

impl<T: Send + 'static> SelCase for RecvCase<'_, T> {
    fn id(&self) -> usize {
        self.ch.id()
    }
    fn lock(&self) -> &Lock {
        &self.ch.h.lock
    }
    fn try_fire(&mut self) -> bool {
        if let Some(ring) = &self.ch.h.ring {
            let (got, wake_sender) = match ring.pop() {
                Pop::Got(v, wake) => (Some(v), wake),
                Pop::Closed => (None, false),
                Pop::Empty => return false,
            };
            self.got = Some(got);
            if wake_sender {
                // SAFETY: the select holds the lock.
                unsafe { self.ch.wake_locked(false) };
            }
            return true;
        }
        let mut woken = None;
        // SAFETY: the select holds every case's lock.
        match unsafe { self.ch.recv_now(&mut woken) } {
            Now::Done(v) => {
                self.got = Some(v);
                if let Some(sg) = woken {
                    // Waking with the lock held is fine: wake only queues the
                    // goroutine (or bumps a futex); it takes no channel lock.
                    // SAFETY: dequeued and won under the lock.
                    unsafe { wake(sg, true) };
                }
                true
            }
            _ => false,
        }
    }
    fn enqueue(&mut self, w: *const Waiter, sel: *const AtomicU32, idx: usize) -> bool {
        let sg = Box::new(Sudog::new(w, sel, idx, None));
        // SAFETY: lock held by the select.
        unsafe { self.ch.inner().recvq.push_back(&*sg) };
        self.sg = Some(sg);
        self.ch.h.ring.as_ref().is_none_or(Ring::recv_may_sleep)
    }
    fn dequeue_self(&mut self) {
        if let Some(sg) = self.sg.take() {
            // SAFETY: lock held by the select.
            let q = unsafe { &mut self.ch.inner().recvq };
            remove(q, &*sg);
            if let (Some(ring), true) = (&self.ch.h.ring, q.is_empty()) {
                ring.clear_waiting(false);
            }
        }
    }
    fn complete(&mut self) -> bool {
        let sg = self.sg.take().expect("fired case has a sudog");
        if self.ch.h.ring.is_some() {
            return false;
        }
        // SAFETY: woken: nobody else touches the sudog.
        self.got = Some(unsafe { (*sg.elem.get()).take() });
        true
    }
    fn closed_send(&self) -> bool {
        false
    }
    fn recv_type(&self) -> Option<core::any::TypeId> {
        Some(core::any::TypeId::of::<T>())
    }
    fn pass_wake(&self) {
        // SAFETY: the select holds the lock.
        unsafe { self.ch.wake_locked(true) };
    }
}

impl<T: Send + 'static> SelCase for SendCase<'_, T> {
    fn id(&self) -> usize {
        self.ch.id()
    }
    fn lock(&self) -> &Lock {
        &self.ch.h.lock
    }
    fn try_fire(&mut self) -> bool {
        let Some(v) = self.v.take() else { return false };
        if let Some(ring) = &self.ch.h.ring {
            match ring.push(v) {
                Push::Sent(wake_receiver) => {
                    if wake_receiver {
                        // SAFETY: the select holds the lock.
                        unsafe { self.ch.wake_locked(true) };
                    }
                    return true;
                }
                Push::Closed(v) => {
                    self.v = Some(v);
                    self.closed = true;
                    return true;
                }
                Push::Full(v) => {
                    self.v = Some(v);
                    return false;
                }
            }
        }
        let mut woken = None;
        // SAFETY: the select holds every case's lock.
        match unsafe { self.ch.send_now(v, &mut woken) } {
            Now::Done(_) => {
                if let Some(sg) = woken {
                    // SAFETY: dequeued and won under the lock.
                    unsafe { wake(sg, true) };
                }
                true
            }
            Now::Closed(v) => {
                self.v = Some(v);
                self.closed = true;
                true
            }
            Now::Block(v) => {
                self.v = v;
                false
            }
        }
    }
    fn enqueue(&mut self, w: *const Waiter, sel: *const AtomicU32, idx: usize) -> bool {
        // Unbuffered, the sudog carries the value to the receiver;
        // buffered, the value stays here for the next try.
        let elem = if self.ch.h.ring.is_some() {
            None
        } else {
            self.v.take()
        };
        let sg = Box::new(Sudog::new(w, sel, idx, elem));
        // SAFETY: lock held by the select.
        unsafe { self.ch.inner().sendq.push_back(&*sg) };
        self.sg = Some(sg);
        self.ch.h.ring.as_ref().is_none_or(Ring::send_may_sleep)
    }
    fn dequeue_self(&mut self) {
        if let Some(sg) = self.sg.take() {
            // SAFETY: lock held by the select.
            let q = unsafe { &mut self.ch.inner().sendq };
            remove(q, &*sg);
            if let (Some(ring), true) = (&self.ch.h.ring, q.is_empty()) {
                ring.clear_waiting(true);
            }
            // The value was not sent: keep it (a buffered case kept it all
            // along).
            // SAFETY: off the queue: the sudog is ours again.
            if let Some(v) = unsafe { (*sg.elem.get()).take() } {
                self.v = Some(v);
            }
        }
    }
    fn complete(&mut self) -> bool {
        let sg = self.sg.take().expect("fired case has a sudog");
        if self.ch.h.ring.is_some() {
            return false;
        }
        if !sg.success.get() {
            self.closed = true;
            // SAFETY: woken: nobody else touches the sudog.
            self.v = unsafe { (*sg.elem.get()).take() };
        }
        true
    }
    fn closed_send(&self) -> bool {
        self.closed
    }
    fn recv_type(&self) -> Option<core::any::TypeId> {
        None
    }
    fn pass_wake(&self) {
        // SAFETY: the select holds the lock.
        unsafe { self.ch.wake_locked(false) };
    }
}

/// A receive case of a [`Select`]; redeem it with [`Select::received`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvToken<T> {
    /// The case index.
    pub index: usize,
    /// The `Select` that made it.
    select: u64,
    _t: core::marker::PhantomData<fn() -> T>,
}

/// Go's `select` over any number of send and receive cases.
///
/// ```ignore
/// let mut s = Select::new();
/// let a = s.recv(&ch_a);
/// let b = s.send(&ch_b, 42);
/// match s.select() {
///     i if i == a.index => println!("got {:?}", s.received(a)),
///     i if i == b => println!("sent"),
///     _ => unreachable!(),
/// }
/// ```
pub struct Select<'a> {
    id: u64,
    cases: Vec<Box<dyn SelCase + 'a>>,
    recv_values: Vec<Option<Box<dyn core::any::Any>>>,
    /// The model's poll order: cases from this index on, wrapping around.
    #[cfg(loom)]
    poll_first: usize,
}

impl core::fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Select")
            .field("cases", &self.cases.len())
            .finish()
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Select<'a> {
    /// A select with no cases.
    pub fn new() -> Select<'a> {
        static NEXT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
        Select {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cases: Vec::new(),
            recv_values: Vec::new(),
            #[cfg(loom)]
            poll_first: 0,
        }
    }

    /// Model only: poll the cases starting at `first` (instead of at random).
    #[cfg(all(test, loom))]
    fn poll_from(&mut self, first: usize) {
        self.poll_first = first;
    }

    /// Adds a receive case.
    pub fn recv<T: Send + 'static>(&mut self, ch: &'a Chan<T>) -> RecvToken<T> {
        self.cases.push(Box::new(RecvCase {
            ch,
            sg: None,
            got: None,
        }));
        self.recv_values.push(None);
        RecvToken {
            index: self.cases.len() - 1,
            select: self.id,
            _t: core::marker::PhantomData,
        }
    }

    /// Adds a send case; returns its index.
    pub fn send<T: Send + 'static>(&mut self, ch: &'a Chan<T>, v: T) -> usize {
        self.cases.push(Box::new(SendCase {
            ch,
            v: Some(v),
            sg: None,
            closed: false,
        }));
        self.recv_values.push(None);
        self.cases.len() - 1
    }

    /// What a fired receive case got: `Some(v)`, or `None` for a closed
    /// channel. Panics if the case did not fire.
    pub fn received<T: Send + 'static>(&mut self, tok: RecvToken<T>) -> Option<T> {
        // A token from another Select, or for a case of another type, would
        // make the cast below unsound: refuse it.
        assert!(
            tok.select == self.id
                && self.cases[tok.index].recv_type() == Some(core::any::TypeId::of::<T>()),
            "select: receive token does not belong to this select"
        );
        let any = self.cases[tok.index].as_mut() as *mut (dyn SelCase + 'a);
        // SAFETY: the token was made by `recv` for this index with this T, so
        // the case is a RecvCase<T>.
        let rc = unsafe { &mut *(any as *mut RecvCase<'a, T>) };
        rc.got
            .take()
            .expect("select: this receive case did not fire")
    }

    /// Locks every channel once, in address order; returns the order.
    fn lock_all(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.cases.len()).collect();
        order.sort_by_key(|&i| self.cases[i].id());
        order.dedup_by_key(|i| self.cases[*i].id());
        for &i in &order {
            self.cases[i].lock().lock();
        }
        order
    }

    fn unlock_all(&self, order: &[usize]) {
        for &i in order.iter().rev() {
            self.cases[i].lock().unlock();
        }
    }

    /// Tries the cases in the poll order; returns the case that fired, or
    /// the order, which a select that has to wait queues its sudogs in.
    fn poll(&mut self) -> Result<usize, Vec<usize>> {
        let poll = self.pollorder();
        match poll.iter().copied().find(|&i| self.cases[i].try_fire()) {
            Some(i) => Ok(i),
            None => Err(poll),
        }
    }

    /// A random order of the cases (Go's pollorder), so no case is
    /// favoured.
    #[cfg(not(loom))]
    fn pollorder(&self) -> Vec<usize> {
        let n = self.cases.len();
        let mut poll: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = crate::proc::fastrand() as usize % (i + 1);
            poll.swap(i, j);
        }
        poll
    }

    /// The model's poll order: a fixed rotation (loom replays every
    /// execution, so the order may not change behind its back); the models
    /// run each select once per starting case.
    #[cfg(loom)]
    fn pollorder(&self) -> Vec<usize> {
        let n = self.cases.len();
        let first = self.poll_first;
        (0..n).map(|k| (first + k) % n).collect()
    }

    fn finish(&self, i: usize) -> usize {
        if self.cases[i].closed_send() {
            panic!("send on closed channel");
        }
        i
    }

    /// Fires a ready case now, or returns `None` (Go's `default`).
    pub fn try_select(&mut self) -> Option<usize> {
        if self.cases.is_empty() {
            return None;
        }
        let order = self.lock_all();
        let r = self.poll().ok();
        self.unlock_all(&order);
        r.map(|i| self.finish(i))
    }

    /// Blocks until one case fires; returns its index. A select with no
    /// cases blocks forever (`select {}`).
    pub fn select(&mut self) -> usize {
        if self.cases.is_empty() {
            let w = Waiter::new();
            let l = Lock::new();
            l.lock();
            // SAFETY: nobody can ever wake w: this parks for good, as Go's
            // `select {}` does.
            unsafe { w.park(&l, "select (no cases)") };
            unreachable!("empty select woke up");
        }
        // The buffered case whose wake-up sent this select round again: a
        // sender (receiver) woke it because the ring had room (an
        // element), and woke only this one of the waiters. If another case
        // fires instead, that room (element) is still there and the other
        // waiters sleep on: the wake-up is handed to the next of them.
        let mut woken_for: Option<usize> = None;
        loop {
            let order = self.lock_all();
            let pollorder = match self.poll() {
                Ok(i) => {
                    // (Another case on the same channel may be a send
                    // where the wake-up was for a receive: only the case
                    // itself surely used it; an extra wake-up is harmless.)
                    if let Some(j) = woken_for.filter(|&j| j != i) {
                        self.cases[j].pass_wake();
                    }
                    self.unlock_all(&order);
                    return self.finish(i);
                }
                Err(p) => p,
            };
            let w = Waiter::new();
            let done = AtomicU32::new(0);
            // Queue in the poll order: when several cases wait on one
            // channel, the counterpart that comes later takes whichever was
            // queued first, so a fixed order would always fire the same case
            // (Go's TestPseudoRandomSend).
            let mut may_sleep = true;
            for &i in &pollorder {
                may_sleep &= self.cases[i].enqueue(&w, &done, i);
            }
            if !may_sleep {
                // A buffered case became ready after the poll. Nobody can
                // have fired a sudog yet (every lock is still held).
                for c in self.cases.iter_mut() {
                    c.dequeue_self();
                }
                self.unlock_all(&order);
                continue;
            }
            let locks: Vec<&Lock> = order.iter().map(|&i| self.cases[i].lock()).collect();
            // SAFETY: every lock is held; w and done live on this stack
            // until we are woken and have taken our sudogs back.
            unsafe { w.park_all(&locks, "select") };
            drop(locks);
            let fired = w.fired.load(Ordering::Relaxed);
            let order = self.lock_all();
            for (i, c) in self.cases.iter_mut().enumerate() {
                if i != fired {
                    c.dequeue_self();
                }
            }
            self.unlock_all(&order);
            if self.cases[fired].complete() {
                return self.finish(fired);
            }
            // A buffered case was woken: poll again.
            woken_for = Some(fired);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    // These run on plain threads (no runtime): blocking uses the futex path.

    #[test]
    fn buffered_fifo_and_close() {
        let c = Chan::new(3);
        c.send(1);
        c.send(2);
        assert_eq!(c.len(), 2);
        c.close();
        assert_eq!(c.recv(), Some(1));
        assert_eq!(c.recv(), Some(2));
        assert_eq!(c.recv(), None);
        assert_eq!(c.try_send(5), Err(TrySendError::Closed(5)));
    }

    /// Plain threads hold no P: a blocked operation parks at once (a spin
    /// there would only delay the futex sleep).
    #[test]
    fn no_spin_off_a_p() {
        let mut round = 0;
        assert!(!spin_before_park(&mut round));
        assert_eq!(round, 0);
        assert!(!crate::proc::can_spin());
    }

    #[test]
    fn unbuffered_across_threads() {
        let c = Chan::new(0);
        let c2 = c.clone();
        let t = std::thread::spawn(move || (0..1000).map(|_| c2.recv().unwrap()).sum::<u64>());
        for i in 0..1000u64 {
            c.send(i);
        }
        assert_eq!(t.join().unwrap(), 499_500);
    }

    /// Senders (`senders`) or receivers queued on `c`, waited for until
    /// there are `n` (the lock taken for each look).
    fn wait_queued<T: Send>(c: &Chan<T>, senders: bool, n: usize) {
        loop {
            c.h.lock.lock();
            // SAFETY: lock held; the reference ends before the unlock.
            let have = unsafe { c.inner() }.queue(senders).len();
            c.h.lock.unlock();
            if have >= n {
                return;
            }
            std::thread::yield_now();
        }
    }

    /// Runs `rounds` and aborts the test binary with `what` if they take
    /// more than 20 s: a lost wake-up hangs a round instead of failing it.
    fn with_watchdog(what: &'static str, rounds: impl FnOnce()) {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let watchdog = std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            while !d2.load(Ordering::Acquire) {
                if t0.elapsed() > std::time::Duration::from_secs(20) {
                    eprintln!("{what}");
                    std::process::abort();
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
        rounds();
        done.store(true, Ordering::Release);
        watchdog.join().unwrap();
    }

    /// Runs, on a thread of its own, a select between sending 2 on `to`
    /// and receiving from `from` (the receive case registered first when
    /// `recv_first`): `None` when the send fired, else what it received.
    fn select_send_or_recv(
        to: &Chan<u32>,
        from: &Chan<u32>,
        recv_first: bool,
    ) -> std::thread::JoinHandle<Option<u32>> {
        let (to, from) = (to.clone(), from.clone());
        std::thread::spawn(move || {
            let mut s = Select::new();
            let (i_send, t_recv) = if recv_first {
                let t = s.recv(&from);
                (s.send(&to, 2), t)
            } else {
                let i = s.send(&to, 2);
                (i, s.recv(&from))
            };
            if s.select() == i_send {
                None
            } else {
                s.received(t_recv)
            }
        })
    }

    /// A select queued for room on a full channel ahead of a plain sender
    /// is woken by a receive, and finds its other case ready too. When that
    /// other case fires, the room must reach the plain sender: before the
    /// select handed such a wake-up on, the sender slept for ever beside
    /// an empty ring (the deadlock the torture suite found). Each round
    /// ends, or the watchdog fails the test after 20 s.
    #[test]
    fn select_hands_an_unused_wake_on_to_the_next_sender() {
        let mut other_case = 0;
        with_watchdog(
            "select_hands_an_unused_wake_on: a sender never woke",
            || {
                for _ in 0..300 {
                    let a = Chan::<u32>::new(1);
                    a.send(1);
                    let b = Chan::<u32>::new(1);
                    let x = select_send_or_recv(&a, &b, false);
                    wait_queued(&a, true, 1);
                    let a3 = a.clone();
                    let plain = std::thread::spawn(move || a3.send(3));
                    wait_queued(&a, true, 2);
                    // The room wakes the select; the element for its other case
                    // follows at once, most often before it polls again.
                    let mut got = vec![a.recv().unwrap()];
                    b.send(9);
                    let took = x.join().unwrap();
                    if took.is_some() {
                        other_case += 1;
                    }
                    for _ in 0..if took.is_some() { 1 } else { 2 } {
                        got.push(a.recv().unwrap());
                    }
                    plain.join().unwrap();
                    got.sort_unstable();
                    assert_eq!(
                        got,
                        if took.is_some() {
                            vec![1, 3]
                        } else {
                            vec![1, 2, 3]
                        }
                    );
                }
            },
        );
        // The rounds that matter happened (the poll order is random).
        assert!(other_case > 0, "the select never fired its other case");
    }

    /// The same for an element: a select queued to receive from an empty
    /// channel ahead of a plain receiver is woken by a send and fires its
    /// other case (a send that found room meanwhile); the element must
    /// reach the plain receiver.
    #[test]
    fn select_hands_an_unused_element_on_to_the_next_receiver() {
        let mut other_case = 0;
        with_watchdog(
            "select_hands_an_unused_element_on: a receiver never woke",
            || {
                for _ in 0..300 {
                    let a = Chan::<u32>::new(1);
                    let b = Chan::<u32>::new(1);
                    b.send(1);
                    let x = select_send_or_recv(&b, &a, true);
                    wait_queued(&a, false, 1);
                    let a3 = a.clone();
                    let plain = std::thread::spawn(move || a3.recv());
                    wait_queued(&a, false, 2);
                    a.send(5);
                    assert_eq!(b.recv(), Some(1));
                    let took = x.join().unwrap();
                    match took {
                        Some(v) => {
                            // The select took the element; the plain receiver gets
                            // the next one.
                            assert_eq!(v, 5);
                            a.send(6);
                            assert_eq!(plain.join().unwrap(), Some(6));
                        }
                        None => {
                            let theirs = plain.join().unwrap();
                            other_case += 1;
                            assert_eq!(theirs, Some(5));
                            assert_eq!(b.recv(), Some(2));
                        }
                    }
                }
            },
        );
        assert!(other_case > 0, "the select never fired its other case");
    }

    #[test]
    fn select_default_and_ready_cases() {
        let a = Chan::<u32>::new(1);
        let b = Chan::<u32>::new(1);
        {
            let mut s = Select::new();
            s.recv(&a);
            s.recv(&b);
            assert_eq!(s.try_select(), None);
        }
        b.send(7);
        let mut s = Select::new();
        let ta = s.recv(&a);
        let tb = s.recv(&b);
        assert_eq!(s.try_select(), Some(tb.index));
        assert_eq!(s.received(tb), Some(7));
        let _ = ta;
    }

    #[test]
    fn select_blocks_until_a_thread_sends() {
        let a = Chan::<u32>::new(0);
        let b = Chan::<u32>::new(0);
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.send(9));
        let mut s = Select::new();
        let _ta = s.recv(&a);
        let tb = s.recv(&b);
        assert_eq!(s.select(), tb.index);
        assert_eq!(s.received(tb), Some(9));
        t.join().unwrap();
        // a's queue must be empty again: a later send must not find a stale sudog.
        assert!(a.try_send(1).is_err());
    }

    #[test]
    fn select_send_case_and_closed_receive() {
        let a = Chan::<u32>::new(0);
        let a2 = a.clone();
        let t = std::thread::spawn(move || a2.recv());
        let mut s = Select::new();
        let i = s.send(&a, 5);
        assert_eq!(s.select(), i);
        assert_eq!(t.join().unwrap(), Some(5));
        let c = Chan::<u32>::new(0);
        c.close();
        let mut s = Select::new();
        let tc = s.recv(&c);
        assert_eq!(s.select(), tc.index);
        assert_eq!(s.received(tc), None);
    }

    #[test]
    #[should_panic(expected = "does not belong to this select")]
    fn a_token_from_another_select_is_refused() {
        let a = Chan::<u32>::new(1);
        let b = Chan::<String>::new(1);
        a.send(1);
        let mut s1 = Select::new();
        let t1 = s1.recv(&a);
        let mut s2 = Select::new();
        let _ = s2.recv(&b);
        s2.send(&b, String::new());
        let _ = s1.try_select();
        // Same index, other select (and another element type): refused.
        let _ = s2.received(t1);
    }

    #[test]
    fn select_picks_cases_at_random() {
        let a = Chan::<u32>::new(100);
        let b = Chan::<u32>::new(100);
        let (mut na, mut nb) = (0, 0);
        for _ in 0..100 {
            a.send(1);
            b.send(2);
        }
        for _ in 0..100 {
            let mut s = Select::new();
            let ta = s.recv(&a);
            let _tb = s.recv(&b);
            if s.select() == ta.index {
                na += 1
            } else {
                nb += 1
            }
        }
        // Both cases are always ready; a fair coin gives each well over 10.
        assert!(na > 10 && nb > 10, "{na} {nb}");
    }
}

/// Model checks of channels and select (`RUSTFLAGS="--cfg loom" cargo test
/// --release -p rt-sched --lib chan::loom_tests`): every waiter is a thread
/// waiter (no goroutines in the model), and loom explores the interleavings
/// of the channel locks, the select `done` flags and the waiters' words,
/// checking that values arrive exactly once, that every waiter is woken
/// exactly once while parked (`Waiter`'s self-checks, on in the model), and
/// that no sudog stays queued once everybody is done. A lost wake-up shows
/// up as loom's "deadlock", an unordered access to a sudog or to the
/// channel state as a "causality violation" on a loom cell.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::thread;

    impl<T: Send> Chan<T> {
        /// (buffered elements, queued receivers, queued senders).
        fn queue_lens(&self) -> (usize, usize, usize) {
            self.h.lock.lock();
            // SAFETY: lock held; the reference ends before the unlock.
            let c = unsafe { self.inner() };
            let r = (self.len(), c.recvq.len(), c.sendq.len());
            if let Some(ring) = &self.h.ring {
                assert_eq!(
                    ring.waiting_flags(),
                    (!c.recvq.is_empty(), !c.sendq.is_empty()),
                    "a waiter flag disagrees with its queue"
                );
            }
            self.h.lock.unlock();
            r
        }
    }

    /// Runs a model with at most `bound` preemptions per execution (`None`:
    /// every interleaving), unless `LOOM_MAX_PREEMPTIONS` asks for a bound.
    /// The bounds keep each model at a few seconds in `--release`.
    fn check(bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        if b.preemption_bound.is_none() {
            b.preemption_bound = bound;
        }
        b.check(f);
    }

    /// (1) Unbuffered: a blocking send meets a blocking receive; the value
    /// arrives once, whoever parks first.
    #[test]
    fn unbuffered_send_recv() {
        check(None, || {
            let c = Chan::<u32>::new(0);
            let c2 = c.clone();
            let t = thread::spawn(move || c2.send(7));
            assert_eq!(c.recv(), Some(7));
            t.join().unwrap();
            assert_eq!(
                c.try_recv(),
                Err(TryRecvError::Empty),
                "value delivered twice"
            );
            assert_eq!(c.queue_lens(), (0, 0, 0));
        });
    }

    /// (2) Capacity 1, two sends: the second send parks on a full buffer (or
    /// hands over to a parked receiver); the receiver gets 1 then 2.
    #[test]
    fn buffered_two_in_order() {
        // Bounded: every spin on an operation in flight is a yield, and
        // with unbounded preemptions the model does not end in minutes.
        check(Some(3), || {
            let c = Chan::<u32>::new(1);
            let c2 = c.clone();
            let t = thread::spawn(move || {
                c2.send(1);
                c2.send(2);
            });
            assert_eq!(c.recv(), Some(1));
            assert_eq!(c.recv(), Some(2));
            t.join().unwrap();
            assert_eq!(
                c.try_recv(),
                Err(TryRecvError::Empty),
                "value delivered twice"
            );
            assert_eq!(c.queue_lens(), (0, 0, 0));
        });
    }

    /// (2b) Capacity 1, two receivers that may both sleep on the empty
    /// ring and two sends: each receiver gets one value, whichever order
    /// the wake-ups and the retries take; the flags end with the queues.
    #[test]
    fn buffered_two_receivers_two_sends() {
        // One preemption: three threads, two wake-ups and their retries
        // (two already take longer than the whole suite).
        check(Some(1), || {
            let c = Chan::<u32>::new(1);
            let (c1, c2) = (c.clone(), c.clone());
            let r1 = thread::spawn(move || c1.recv());
            let r2 = thread::spawn(move || c2.recv());
            c.send(1);
            c.send(2);
            let mut got = [r1.join().unwrap(), r2.join().unwrap()];
            got.sort();
            assert_eq!(got, [Some(1), Some(2)]);
            assert_eq!(c.queue_lens(), (0, 0, 0));
        });
    }

    /// (2d) A select sending on a full buffered channel and receiving on an
    /// empty one, against a receive on the first and a send on the second:
    /// whichever case fires, every value ends in exactly one place.
    #[test]
    fn select_buffered_send_and_recv() {
        check(Some(3), || {
            let full = Chan::<u32>::new(1);
            full.send(10);
            let empty = Chan::<u32>::new(1);
            let (f2, e2) = (full.clone(), empty.clone());
            let r = thread::spawn(move || f2.recv());
            let w = thread::spawn(move || e2.send(20));
            let mut s = Select::new();
            let i_send = s.send(&full, 11);
            let t_recv = s.recv(&empty);
            let i = s.select();
            let first = r.join().unwrap();
            assert_eq!(first, Some(10));
            w.join().unwrap();
            if i == i_send {
                drop(s);
                assert_eq!(full.try_recv(), Ok(11));
                assert_eq!(empty.try_recv(), Ok(20));
            } else {
                assert_eq!(s.received(t_recv), Some(20));
                drop(s);
                assert_eq!(full.try_recv(), Err(TryRecvError::Empty));
            }
            assert_eq!(full.queue_lens(), (0, 0, 0));
            assert_eq!(empty.queue_lens(), (0, 0, 0));
        });
    }

    /// The value of model (3) ends in exactly one place.
    fn one_owner(sent: bool, got: Option<u32>, back: Option<u32>) {
        match (sent, got, back) {
            (true, Some(5), None) | (false, None, Some(5)) => {}
            other => panic!("value lost or duplicated: (sent, got, back) = {other:?}"),
        }
    }

    /// (3a) A non-blocking send, a blocking receive and a close race on an
    /// unbuffered channel: either the receiver got the value, or the sender
    /// kept it (Full or Closed) and the receiver saw the close.
    #[test]
    fn try_send_recv_close() {
        check(Some(5), || {
            let c = Chan::<u32>::new(0);
            let (cs, cc) = (c.clone(), c.clone());
            let s = thread::spawn(move || cs.try_send(5));
            let k = thread::spawn(move || cc.close());
            let got = c.recv();
            let back = match s.join().unwrap() {
                Ok(()) => None,
                Err(TrySendError::Full(v)) | Err(TrySendError::Closed(v)) => Some(v),
            };
            k.join().unwrap();
            one_owner(back.is_none(), got, back);
            assert_eq!(c.queue_lens(), (0, 0, 0));
        });
    }

    /// (3b) A blocking send (the internal form, which returns the value
    /// instead of panicking on close), a receive and a close, unbuffered and
    /// with capacity 1: a sender parked when the close comes gets its value
    /// back; a buffered value is still received after the close.
    #[test]
    fn blocking_send_recv_close() {
        for cap in [0, 1] {
            check(Some(if cap == 0 { 5 } else { 3 }), move || {
                let c = Chan::<u32>::new(cap);
                let (cs, cc) = (c.clone(), c.clone());
                let s = thread::spawn(move || cs.send_impl(5, true));
                let k = thread::spawn(move || cc.close());
                let got = c.recv();
                let back = match s.join().unwrap() {
                    Ok(()) => None,
                    Err(TrySendError::Closed(v)) => Some(v),
                    Err(TrySendError::Full(_)) => panic!("blocking send returned Full"),
                };
                k.join().unwrap();
                one_owner(back.is_none(), got, back);
                assert_eq!(c.queue_lens(), (0, 0, 0));
            });
        }
    }

    /// (3c) A sender blocked on an unbuffered channel that nobody receives
    /// from is woken by the close and gets its value back; a close that
    /// comes first makes the send fail at once.
    #[test]
    fn close_wakes_blocked_sender() {
        check(None, || {
            let c = Chan::<u32>::new(0);
            let cs = c.clone();
            let s = thread::spawn(move || cs.send_impl(5, true));
            c.close();
            assert_eq!(s.join().unwrap(), Err(TrySendError::Closed(5)));
            assert_eq!(c.recv(), None);
            assert_eq!(c.queue_lens(), (0, 0, 0));
        });
    }

    /// (4) A select receiving on `a` and `b` against a blocking sender on
    /// each: the select gets one value, from the channel it names; the
    /// other sender, which may have found (and skipped) the select's stale
    /// sudog, is then served by a plain receive. Every queue (and, buffered,
    /// every waiter flag) ends empty. Run once per poll order, unbuffered
    /// and with capacity 1 (where a woken select polls again).
    #[test]
    fn select_two_recvs_two_senders() {
        for (first, cap) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            check(Some(3), move || {
                let a = Chan::<u32>::new(cap);
                let b = Chan::<u32>::new(cap);
                let (a2, b2) = (a.clone(), b.clone());
                let sa = thread::spawn(move || a2.send(1));
                let sb = thread::spawn(move || b2.send(2));
                let mut s = Select::new();
                s.poll_from(first);
                let ta = s.recv(&a);
                let tb = s.recv(&b);
                let i = s.select();
                let rest = if i == ta.index {
                    assert_eq!(s.received(ta), Some(1));
                    b.recv()
                } else {
                    assert_eq!(i, tb.index);
                    assert_eq!(s.received(tb), Some(2));
                    a.recv()
                };
                drop(s);
                assert_eq!(rest, Some(if i == ta.index { 2 } else { 1 }));
                sa.join().unwrap();
                sb.join().unwrap();
                assert_eq!(a.queue_lens(), (0, 0, 0));
                assert_eq!(b.queue_lens(), (0, 0, 0));
            });
        }
    }

    /// (4b) The same select against non-blocking senders on channels of
    /// capacity 1: each value goes into a buffer or straight to the select.
    #[test]
    fn select_two_recvs_two_try_senders() {
        for first in [0, 1] {
            check(Some(3), move || {
                let a = Chan::<u32>::new(1);
                let b = Chan::<u32>::new(1);
                let (a2, b2) = (a.clone(), b.clone());
                let sa = thread::spawn(move || a2.try_send(1));
                let sb = thread::spawn(move || b2.try_send(2));
                let mut s = Select::new();
                s.poll_from(first);
                let ta = s.recv(&a);
                let tb = s.recv(&b);
                let i = s.select();
                let (got, rest) = if i == ta.index {
                    (s.received(ta), b.recv())
                } else {
                    (s.received(tb), a.recv())
                };
                drop(s);
                assert_eq!(sa.join().unwrap(), Ok(()));
                assert_eq!(sb.join().unwrap(), Ok(()));
                let want = if i == ta.index { (1, 2) } else { (2, 1) };
                assert_eq!((got, rest), (Some(want.0), Some(want.1)));
                assert_eq!(a.queue_lens(), (0, 0, 0));
                assert_eq!(b.queue_lens(), (0, 0, 0));
            });
        }
    }

    /// (5) A select that sends 10 on `a` or receives from `b` (both
    /// unbuffered) races a plain receiver on `a` and a plain sender of 20 on
    /// `b`. Whichever case fires, the main thread then serves the other
    /// thread with a plain operation; each value arrives once and every
    /// queue ends empty. Run once per poll order.
    #[test]
    fn select_send_and_recv_cases() {
        for first in [0, 1] {
            check(Some(3), move || {
                let a = Chan::<u32>::new(0);
                let b = Chan::<u32>::new(0);
                let (a2, b2) = (a.clone(), b.clone());
                let r = thread::spawn(move || a2.recv());
                let w = thread::spawn(move || b2.send(20));
                let mut s = Select::new();
                s.poll_from(first);
                let ia = s.send(&a, 10);
                let tb = s.recv(&b);
                let i = s.select();
                let from_b = if i == ia {
                    drop(s);
                    b.recv()
                } else {
                    assert_eq!(i, tb.index);
                    let v = s.received(tb);
                    drop(s);
                    a.send(10);
                    v
                };
                assert_eq!(from_b, Some(20));
                assert_eq!(r.join().unwrap(), Some(10));
                w.join().unwrap();
                assert_eq!(a.queue_lens(), (0, 0, 0));
                assert_eq!(b.queue_lens(), (0, 0, 0));
            });
        }
    }

    /// (6) A select receiving on `a` and `b` (unbuffered) against a thread
    /// closing `a` and a blocking sender of 7 on `b`: the select fires on
    /// the close (`None`) or on the value, then the main thread collects the
    /// other outcome with a plain receive. The close path must skip a
    /// select that already fired, and the value arrives exactly once.
    #[test]
    fn select_recv_vs_close_and_send() {
        for first in [0, 1] {
            check(Some(3), move || {
                let a = Chan::<u32>::new(0);
                let b = Chan::<u32>::new(0);
                let (a2, b2) = (a.clone(), b.clone());
                let k = thread::spawn(move || a2.close());
                let w = thread::spawn(move || b2.send(7));
                let mut s = Select::new();
                s.poll_from(first);
                let ta = s.recv(&a);
                let tb = s.recv(&b);
                let i = s.select();
                if i == ta.index {
                    assert_eq!(s.received(ta), None);
                    drop(s);
                    assert_eq!(b.recv(), Some(7));
                } else {
                    assert_eq!(i, tb.index);
                    assert_eq!(s.received(tb), Some(7));
                    drop(s);
                    assert_eq!(a.recv(), None);
                }
                k.join().unwrap();
                w.join().unwrap();
                assert_eq!(a.queue_lens(), (0, 0, 0));
                assert_eq!(b.queue_lens(), (0, 0, 0));
            });
        }
    }
}

// ---------------------------------------------------------------------------
// for `chan_ext` (try_recv, is_closed, Debug, …)

pub use crate::chan_ext::{
    IntoIter, RecvError, RecvTimeoutError, SendError, TryIter, TryRecvError,
};

impl<T> Chan<T> {
    /// (buffered elements, capacity, closed), read together under the lock.
    pub(crate) fn snapshot(&self) -> (usize, usize, bool) {
        self.h.lock.lock();
        // SAFETY: lock held; the reference ends before the unlock.
        let closed = unsafe { &*self.h.inner.get() }.closed;
        self.h.lock.unlock();
        (
            self.h.ring.as_ref().map_or(0, Ring::len),
            self.h.ring.as_ref().map_or(0, Ring::capacity),
            closed,
        )
    }

    /// Handles to this channel (its clones, this one included).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn handles(&self) -> usize {
        Arc::strong_count(&self.h)
    }
}

impl<T: Send> Chan<T> {
    /// A receive that does not block: `Err(())` when it would, `Ok(None)`
    /// when the channel is closed and drained.
    pub(crate) fn recv_nonblocking(&self) -> Result<Option<T>, ()> {
        self.recv_impl(false)
    }
}
