//! The buffer of a buffered channel: a bounded ring that senders and
//! receivers use without the channel lock.
//!
//! Every element costs a channel one compare-exchange on the side it moves
//! (`tail` for a send, `head` for a receive) and a release store of the
//! slot's stamp; the lock-based buffer cost two locked instructions per
//! operation (the lock and its release) on a line every sender and
//! receiver wrote. A locked instruction is the bulk of a buffered
//! operation even on one core: on a 2-core Xeon VM, the bench's `fanout`
//! (10 M messages, producer → 4 workers → collector over two channels of
//! 128; medians of 7 interleaved runs) went from 96.7 to 79.1 ns per
//! message at GOMAXPROCS=1 and from 138.5 to 113.9 at 2.
//!
//! ## Positions and stamps
//! `head` and `tail` count positions as a lap and an index: the index is
//! the slot, the lap is a multiple of `one_lap` (the next power of two
//! above `cap`), so a position moves to `index + 1` in the same lap, or to
//! index 0 of the next lap after the last slot. Each slot's stamp says what
//! the slot is ready for: stamp == position means "empty, a send at this
//! position may fill it"; position + 1 means "full, a receive at this
//! position may take it"; after the receive the stamp moves one lap on
//! (empty for the send one lap later). A sender reserves its position by
//! advancing `tail` with a compare-exchange, writes the element, then
//! publishes it with the stamp (release); a receiver reserves by advancing
//! `head`, reads, then frees the slot with the stamp. Between the
//! reservation and the stamp the operation is in flight: the other side
//! waits for it (it cannot be preempted there: it is a runtime section).
//!
//! ## Waiting without losing a wake-up
//! Positions sit above two flag bits in `head` and `tail`. A receiver that
//! found the ring empty queues itself (channel lock held), then sets
//! [`RECV_WAITING`] in `tail` with a read-modify-write and looks again at
//! what that returned: if a send had reserved a position that no receive
//! has reserved, it does not sleep. Every send's reserving
//! compare-exchange is ordered with that read-modify-write (one location),
//! so a send either was seen by the look or sees the flag in the value it
//! replaced, and then wakes a queued receiver once its element is
//! published. Senders waiting for room use [`SEND_WAITING`] in `head` the
//! same way. The flags are set and cleared under the channel lock only, so
//! a flag is set exactly while its queue may hold a waiter. A woken waiter
//! tries again: the element or the room it was woken for may be taken by a
//! goroutine that did not sleep, in which case it queues again. A select
//! woken so may fire another of its cases instead and leave the element
//! (room) where it is: it then wakes the next waiter of that side in its
//! stead (`Select::select`), or that waiter would sleep beside it for ever.
//!
//! The close sets [`CLOSED`] in `tail`: sends reserve nothing after it,
//! receives drain what was sent before it, then see it.

#[cfg(not(loom))]
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
#[cfg(not(loom))]
use core::sync::atomic::{AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;
#[cfg(loom)]
use loom::cell::UnsafeCell;
#[cfg(loom)]
use loom::sync::atomic::{AtomicUsize, Ordering};

/// In `tail`: receivers may be queued on the channel.
pub(crate) const RECV_WAITING: usize = 1;
/// In `tail`: the channel is closed.
pub(crate) const CLOSED: usize = 2;
/// In `head`: senders may be queued on the channel.
pub(crate) const SEND_WAITING: usize = 1;
/// Flag bits below the position.
const FLAG_BITS: u32 = 2;
const FLAGS: usize = (1 << FLAG_BITS) - 1;
/// Positions are kept to the bits above the flags.
const POS_MASK: usize = usize::MAX >> FLAG_BITS;

struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// The two ends, each on its own line: senders write `tail`, receivers
/// `head`.
struct Ends {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
}

/// What a send found.
pub(crate) enum Push<T> {
    /// Sent; `true` when receivers may be waiting (wake one).
    Sent(bool),
    /// No room: the element is handed back.
    Full(T),
    /// The channel is closed: the element is handed back.
    Closed(T),
}

/// What a receive found.
pub(crate) enum Pop<T> {
    /// An element; `true` when senders may be waiting (wake one).
    Got(T, bool),
    /// Nothing buffered, the channel open.
    Empty,
    /// Nothing buffered, the channel closed.
    Closed,
}

/// A bounded ring of at least one slot.
pub(crate) struct Ring<T> {
    ends: Box<Ends>,
    slots: Box<[Slot<T>]>,
    cap: usize,
    one_lap: usize,
}

// SAFETY: elements move between threads through the slots, each owned by
// exactly one side at a time (the stamps say which), hence `T: Send`.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Ring<T> {}

/// Waits a little for an operation in flight on another thread.
#[inline]
fn spin(step: &mut u32) {
    #[cfg(loom)]
    {
        let _ = step;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        // The other side is in a runtime section, between two of its own
        // instructions: it cannot be preempted or park there, so it runs on
        // another thread and finishes at once unless that thread lost the
        // CPU. Spin briefly, then give the CPU away (the thread's, not the
        // goroutine's: a select calls this with channel locks held).
        if *step < 6 {
            for _ in 0..1u32 << *step {
                core::hint::spin_loop();
            }
            *step += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

impl<T> Ring<T> {
    /// A ring of `cap` slots (`cap` ≥ 1).
    pub(crate) fn new(cap: usize) -> Ring<T> {
        assert!(
            (1..POS_MASK / 4).contains(&cap),
            "makechan: size out of range"
        );
        let one_lap = (cap + 1).next_power_of_two();
        // A buffer the machine cannot hold ends the program as Go's
        // `make(chan T, n)` does (`fatal error: out of memory`), not with
        // std's allocation-failure abort.
        let mut slots = Vec::new();
        if slots.try_reserve_exact(cap).is_err() {
            rt_sys::throw("out of memory");
        }
        slots.extend((0..cap).map(|i| Slot {
            stamp: AtomicUsize::new(i),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }));
        Ring {
            ends: Box::new(Ends {
                head: CachePadded::new(AtomicUsize::new(0)),
                tail: CachePadded::new(AtomicUsize::new(0)),
            }),
            slots: slots.into_boxed_slice(),
            cap,
            one_lap,
        }
    }

    /// The position after `pos`.
    #[inline]
    fn next(&self, pos: usize) -> usize {
        let index = pos & (self.one_lap - 1);
        if index + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap) & POS_MASK
        }
    }

    /// Elements between the positions `head` and `tail` (`tail` at most one
    /// lap ahead).
    #[inline]
    fn count(&self, head: usize, tail: usize) -> usize {
        let mask = self.one_lap - 1;
        let (hi, ti) = (head & mask, tail & mask);
        if head & !mask == tail & !mask {
            ti.wrapping_sub(hi)
        } else {
            self.cap - hi + ti
        }
    }

    /// Sends `v` if there is room.
    #[inline]
    pub(crate) fn push(&self, v: T) -> Push<T> {
        let tail = &self.ends.tail;
        let mut step = 0;
        let mut w = tail.load(Ordering::Relaxed);
        loop {
            if w & CLOSED != 0 {
                return Push::Closed(v);
            }
            let pos = w >> FLAG_BITS;
            let slot = &self.slots[pos & (self.one_lap - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos {
                let new = (self.next(pos) << FLAG_BITS) | (w & FLAGS);
                // From the reservation to the stamp the send is in flight:
                // a preemption there would keep receivers of this slot
                // waiting for a goroutine that does not run.
                rt_sys::tls::runtime_enter();
                match tail.compare_exchange_weak(w, new, Ordering::AcqRel, Ordering::Relaxed) {
                    Ok(_) => {
                        // The reservation makes the empty slot ours until
                        // the stamp below hands it to receivers.
                        #[cfg(not(loom))]
                        {
                            // SAFETY: the slot is ours (reserved above).
                            unsafe { (*slot.value.get()).write(v) };
                        }
                        #[cfg(loom)]
                        {
                            // SAFETY: the slot is ours (reserved above).
                            slot.value.with_mut(|p| unsafe { (*p).write(v) });
                        }
                        slot.stamp.store(pos + 1, Ordering::Release);
                        rt_sys::tls::runtime_exit();
                        return Push::Sent(w & RECV_WAITING != 0);
                    }
                    Err(cur) => {
                        rt_sys::tls::runtime_exit();
                        w = cur;
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) & POS_MASK == pos + 1 {
                // The slot still holds the element of the previous lap:
                // full, unless a receive of it is in flight.
                let head = self.ends.head.load(Ordering::Acquire) >> FLAG_BITS;
                if head.wrapping_add(self.one_lap) & POS_MASK == pos {
                    return Push::Full(v);
                }
                spin(&mut step);
                w = tail.load(Ordering::Relaxed);
            } else {
                // Another send took this position meanwhile.
                spin(&mut step);
                w = tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Receives the oldest element, if any.
    #[inline]
    pub(crate) fn pop(&self) -> Pop<T> {
        let head = &self.ends.head;
        let mut step = 0;
        let mut w = head.load(Ordering::Relaxed);
        loop {
            let pos = w >> FLAG_BITS;
            let slot = &self.slots[pos & (self.one_lap - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos + 1 {
                let new = (self.next(pos) << FLAG_BITS) | (w & FLAGS);
                rt_sys::tls::runtime_enter();
                match head.compare_exchange_weak(w, new, Ordering::AcqRel, Ordering::Relaxed) {
                    Ok(_) => {
                        // The reservation makes the full slot ours until the
                        // stamp below hands it back to senders.
                        #[cfg(not(loom))]
                        // SAFETY: the slot is ours and holds an element.
                        let v = unsafe { (*slot.value.get()).assume_init_read() };
                        #[cfg(loom)]
                        // SAFETY: the slot is ours and holds an element.
                        let v = slot.value.with(|p| unsafe { (*p).assume_init_read() });
                        slot.stamp
                            .store(pos.wrapping_add(self.one_lap) & POS_MASK, Ordering::Release);
                        rt_sys::tls::runtime_exit();
                        return Pop::Got(v, w & SEND_WAITING != 0);
                    }
                    Err(cur) => {
                        rt_sys::tls::runtime_exit();
                        w = cur;
                    }
                }
            } else if stamp == pos {
                // The slot is empty: nothing sent, unless a send of it is
                // in flight.
                let t = self.ends.tail.load(Ordering::Acquire);
                if t >> FLAG_BITS == pos {
                    return if t & CLOSED != 0 {
                        Pop::Closed
                    } else {
                        Pop::Empty
                    };
                }
                spin(&mut step);
                w = head.load(Ordering::Relaxed);
            } else {
                // Another receive took this position meanwhile.
                spin(&mut step);
                w = head.load(Ordering::Relaxed);
            }
        }
    }

    /// Channel lock held, a receiver just queued: sets [`RECV_WAITING`] and
    /// says whether it may sleep (nothing sent that no receive has taken,
    /// and not closed).
    pub(crate) fn recv_may_sleep(&self) -> bool {
        let t = self.ends.tail.fetch_or(RECV_WAITING, Ordering::AcqRel);
        let h = self.ends.head.load(Ordering::Acquire);
        t & CLOSED == 0 && self.count(h >> FLAG_BITS, t >> FLAG_BITS) == 0
    }

    /// Channel lock held, a sender just queued: sets [`SEND_WAITING`] and
    /// says whether it may sleep (every slot reserved by a send that no
    /// receive has taken, and not closed).
    pub(crate) fn send_may_sleep(&self) -> bool {
        let h = self.ends.head.fetch_or(SEND_WAITING, Ordering::AcqRel);
        let t = self.ends.tail.load(Ordering::Acquire);
        t & CLOSED == 0 && self.count(h >> FLAG_BITS, t >> FLAG_BITS) == self.cap
    }

    /// Channel lock held, the send (`senders`) or receive queue empty: no
    /// sender (receiver) waits.
    pub(crate) fn clear_waiting(&self, senders: bool) {
        if senders {
            self.ends.head.fetch_and(!SEND_WAITING, Ordering::Relaxed);
        } else {
            self.ends.tail.fetch_and(!RECV_WAITING, Ordering::Relaxed);
        }
    }

    /// The number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Channel lock held: marks the ring closed.
    pub(crate) fn close(&self) {
        self.ends.tail.fetch_or(CLOSED, Ordering::AcqRel);
    }

    /// Elements buffered now (a snapshot).
    pub(crate) fn len(&self) -> usize {
        loop {
            let t = self.ends.tail.load(Ordering::Acquire);
            let h = self.ends.head.load(Ordering::Acquire);
            // A consistent pair: the tail did not move while the head was
            // read.
            if self.ends.tail.load(Ordering::Acquire) == t {
                return self.count(h >> FLAG_BITS, t >> FLAG_BITS);
            }
        }
    }

    /// The flags now (model checks: the queues are empty once everybody is
    /// done).
    #[cfg(all(test, loom))]
    pub(crate) fn waiting_flags(&self) -> (bool, bool) {
        (
            self.ends.tail.load(Ordering::Acquire) & RECV_WAITING != 0,
            self.ends.head.load(Ordering::Acquire) & SEND_WAITING != 0,
        )
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Nobody else holds the ring: drop what is still buffered.
        while let Pop::Got(v, _) = self.pop() {
            drop(v);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fills_drains_and_wraps_for_every_small_capacity() {
        for cap in 1..=9 {
            let r = Ring::<u64>::new(cap);
            let mut next_in = 0u64;
            let mut next_out = 0u64;
            for round in 0..5 {
                // Fill to the brim, then one more is refused.
                for _ in r.len()..cap {
                    assert!(matches!(r.push(next_in), Push::Sent(false)));
                    next_in += 1;
                }
                assert_eq!(r.len(), cap, "cap {cap} round {round}");
                assert!(matches!(r.push(999), Push::Full(999)));
                // Drain a varying share so the positions wrap at every index.
                for _ in 0..(round % cap) + 1 {
                    match r.pop() {
                        Pop::Got(v, false) => assert_eq!(v, next_out),
                        _ => panic!("cap {cap}: expected an element"),
                    }
                    next_out += 1;
                }
            }
            while let Pop::Got(v, _) = r.pop() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
            assert_eq!(next_out, next_in);
            assert!(matches!(r.pop(), Pop::Empty));
            assert_eq!(r.len(), 0);
        }
    }

    #[test]
    fn close_refuses_sends_and_drains_first() {
        let r = Ring::<String>::new(2);
        assert!(matches!(r.push("a".into()), Push::Sent(_)));
        r.close();
        assert!(matches!(r.push("b".into()), Push::Closed(s) if s == "b"));
        assert!(matches!(r.pop(), Pop::Got(s, _) if s == "a"));
        assert!(matches!(r.pop(), Pop::Closed));
    }

    #[test]
    fn waiting_flags_reach_the_other_side() {
        let r = Ring::<u8>::new(1);
        // An empty ring: a receiver may sleep, and the next send is told.
        assert!(r.recv_may_sleep());
        assert!(matches!(r.push(1), Push::Sent(true)));
        r.clear_waiting(false);
        // A full ring: a sender may sleep, and the next receive is told.
        assert!(r.send_may_sleep());
        assert!(matches!(r.pop(), Pop::Got(1, true)));
        r.clear_waiting(true);
        assert!(!r.send_may_sleep(), "room: the sender must not sleep");
        r.clear_waiting(true);
        assert!(matches!(r.push(2), Push::Sent(false)));
        assert!(
            !r.recv_may_sleep(),
            "an element: the receiver must not sleep"
        );
        r.clear_waiting(false);
        r.close();
        assert!(!r.send_may_sleep() && !r.recv_may_sleep());
    }

    #[test]
    fn buffered_elements_are_dropped_with_the_ring() {
        let v = std::sync::Arc::new(());
        {
            let r = Ring::new(3);
            for _ in 0..3 {
                assert!(matches!(r.push(v.clone()), Push::Sent(_)));
            }
            assert!(matches!(r.pop(), Pop::Got(_, _)));
            assert_eq!(std::sync::Arc::strong_count(&v), 3);
        }
        assert_eq!(std::sync::Arc::strong_count(&v), 1);
    }

    #[test]
    fn many_senders_and_receivers_move_every_element_once() {
        let r = std::sync::Arc::new(Ring::<u64>::new(4));
        const PER: u64 = 20_000;
        let senders: Vec<_> = (0..3u64)
            .map(|s| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for i in 0..PER {
                        let mut v = s * PER + i;
                        loop {
                            match r.push(v) {
                                Push::Sent(_) => break,
                                Push::Full(x) => {
                                    v = x;
                                    std::thread::yield_now();
                                }
                                Push::Closed(_) => panic!("closed"),
                            }
                        }
                    }
                })
            })
            .collect();
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match r.pop() {
                            Pop::Got(v, _) => got.push(v),
                            Pop::Empty => std::thread::yield_now(),
                            Pop::Closed => return got,
                        }
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        r.close();
        let mut all: Vec<u64> = receivers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..3 * PER).collect::<Vec<_>>());
    }
}
