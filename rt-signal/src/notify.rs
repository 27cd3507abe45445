//! Signal delivery to the program, in the manner of Go's os/signal
//! (os/signal/signal.go over runtime/sigqueue.go).
//!
//! Actors: the handler (any thread, any moment) and receivers blocked in
//! [`Notifier::recv`].
//!
//! Data: a fixed array of [`SLOTS`] notifier slots. Each slot has
//!
//! * `state`: free / in use (claimed with a CAS by [`notify`]);
//! * `wanted`: the signals this notifier asked for (bit `sig - 1`);
//! * `pending`: signals received and not yet taken by `recv`;
//! * `seq`: a futex word bumped on every delivery, which `recv` sleeps on.
//!
//! Hot path (the handler, [`sigsend`]): for every in-use slot whose `wanted`
//! has the bit, `pending |= bit` (one atomic OR), `seq += 1`, `futex_wake`.
//! No allocation, no lock. Like Go's queue, a signal that arrives again
//! before the receiver took it is coalesced: `recv` reports each signal
//! number once per batch, lowest number first.
//!
//! Receive path: `recv` reads `seq`, takes the lowest pending bit with a
//! CAS, and if there is none waits on the futex for `seq` to move (so a
//! delivery between the check and the wait is never missed).
//!
//! Changes of which signals are wanted ([`notify`], [`Notifier::stop`],
//! [`ignore`], [`reset`]) run outside handlers under `install::CHANGE` and
//! turn the runtime's handling of a signal on when its first notifier
//! appears and off when the last one leaves, as os/signal does.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::install::{self, CHANGE, IGNORED};
use crate::os::sigbit;
use crate::table::NSIG;

/// How many notifiers can exist at once.
pub const SLOTS: usize = 64;

struct Slot {
    state: AtomicU32,
    wanted: AtomicU64,
    pending: AtomicU64,
    seq: AtomicU32,
}

#[allow(clippy::declare_interior_mutable_const)]
const SLOT_INIT: Slot = Slot {
    state: AtomicU32::new(0),
    wanted: AtomicU64::new(0),
    pending: AtomicU64::new(0),
    seq: AtomicU32::new(0),
};

static SLOT: [Slot; SLOTS] = [SLOT_INIT; SLOTS];

/// Delivers `sig` to every notifier that wants it (Go's `sigsend`). Returns
/// false when nobody does. Called from the handler; async-signal-safe.
pub fn sigsend(sig: i32) -> bool {
    if !(1..=64).contains(&sig) {
        return false;
    }
    let bit = sigbit(sig);
    let mut delivered = false;
    for s in SLOT.iter() {
        if s.state.load(Ordering::Acquire) == 1 && s.wanted.load(Ordering::Acquire) & bit != 0 {
            // Pairs with the Acquire in `take`: the bit is visible before
            // the bumped sequence wakes the receiver.
            s.pending.fetch_or(bit, Ordering::Release);
            s.seq.fetch_add(1, Ordering::Release);
            rt_sys::futex_wake(&s.seq, i32::MAX);
            delivered = true;
        }
    }
    delivered
}

/// The signals named by `sigs`, or every one for an empty list (Go's
/// Notify/Ignore/Reset with no arguments). Numbers outside 1..=64 are
/// dropped, as os/signal drops signals the system does not have.
fn set_of(sigs: &[i32]) -> u64 {
    if sigs.is_empty() {
        return !0;
    }
    sigs.iter()
        .filter(|s| (1..=64).contains(*s))
        .fold(0, |m, &s| m | sigbit(s))
}

/// The union of what the live notifiers other than `except` want.
fn wanted_by_others(except: Option<usize>) -> u64 {
    SLOT.iter()
        .enumerate()
        .filter(|&(i, s)| Some(i) != except && s.state.load(Ordering::Acquire) == 1)
        .fold(0, |m, (_, s)| m | s.wanted.load(Ordering::Acquire))
}

fn sigs_in(set: u64) -> impl Iterator<Item = i32> {
    (1..NSIG as i32).filter(move |&s| set & sigbit(s) != 0)
}

/// A receiver of signals, made by [`notify`]. Dropping it is [`stop`](Notifier::stop).
#[derive(Debug)]
pub struct Notifier {
    slot: usize,
}

/// Starts delivering `sigs` (all notifiable signals when empty) to a new
/// [`Notifier`], as `signal.Notify` does: for each signal no one wanted
/// before, the runtime's handler takes it over (also undoing an earlier
/// [`ignore`]; an inherited-ignored SIGHUP/SIGINT becomes deliverable).
/// SIGKILL and SIGSTOP cannot be caught; SIGPROF is never taken from the
/// profiler; the synchronous faults are only delivered when sent by kill(2).
///
/// It works with or without [`initsig`](crate::initsig) having run: without
/// it only the notified signals are taken over.
///
/// More than [`SLOTS`] live notifiers at once is a fatal error.
pub fn notify(sigs: &[i32]) -> Notifier {
    let _g = CHANGE.lock().unwrap_or_else(|e| e.into_inner());
    let set = set_of(sigs);
    let Some(slot) = SLOT.iter().position(|s| {
        s.state
            .compare_exchange(0, 2, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }) else {
        rt_sys::throw("signal: too many notifiers");
    };
    let others = wanted_by_others(None);
    let s = &SLOT[slot];
    s.pending.store(0, Ordering::Relaxed);
    // Wanted before the handler goes in, so the first signal is not lost.
    s.wanted.store(set, Ordering::Release);
    s.state.store(1, Ordering::Release);
    for sig in sigs_in(set & !others) {
        IGNORED.fetch_and(!sigbit(sig), Ordering::AcqRel);
        install::sigenable(sig);
    }
    Notifier { slot }
}

impl Notifier {
    fn slot(&self) -> &'static Slot {
        &SLOT[self.slot]
    }

    /// Takes the lowest pending signal, if any.
    fn take(&self) -> Option<i32> {
        let s = self.slot();
        let mut p = s.pending.load(Ordering::Acquire);
        while p != 0 {
            let bit = p & p.wrapping_neg();
            match s
                .pending
                .compare_exchange(p, p & !bit, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(bit.trailing_zeros() as i32 + 1),
                Err(now) => p = now,
            }
        }
        None
    }

    /// Waits for a signal and returns its number.
    ///
    /// Blocks the calling OS thread in `futex(2)`: from a goroutine this
    /// behaves like a blocking system call (its M stays with it), so call it
    /// from a goroutine or thread dedicated to receiving, as Go's os/signal
    /// dedicates one to `signal_recv`. After [`stop`](Notifier::stop) it
    /// returns only what was already pending, then waits for ever.
    pub fn recv(&self) -> i32 {
        let s = self.slot();
        loop {
            let seq = s.seq.load(Ordering::Acquire);
            if let Some(sig) = self.take() {
                return sig;
            }
            rt_sys::futex_wait(&s.seq, seq, None);
        }
    }

    /// Returns a pending signal without waiting, or `None`.
    pub fn try_recv(&self) -> Option<i32> {
        self.take()
    }

    /// Adds `sigs` (all when empty) to what this notifier receives.
    pub fn add(&self, sigs: &[i32]) {
        let _g = CHANGE.lock().unwrap_or_else(|e| e.into_inner());
        let s = self.slot();
        let before = wanted_by_others(None);
        let set = set_of(sigs);
        s.wanted.fetch_or(set, Ordering::Release);
        for sig in sigs_in(set & !before) {
            IGNORED.fetch_and(!sigbit(sig), Ordering::AcqRel);
            install::sigenable(sig);
        }
    }

    /// Stops delivery to this notifier (`signal.Stop`): signals it wanted
    /// that no other notifier wants go back to the runtime's default
    /// handling. Signals already pending stay readable with `try_recv`.
    pub fn stop(&self) {
        let _g = CHANGE.lock().unwrap_or_else(|e| e.into_inner());
        let s = self.slot();
        let had = s.wanted.swap(0, Ordering::AcqRel);
        let others = wanted_by_others(Some(self.slot));
        for sig in sigs_in(had & !others) {
            install::sigdisable(sig);
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop();
        let s = self.slot();
        s.pending.store(0, Ordering::Relaxed);
        s.state.store(0, Ordering::Release);
    }
}

/// Removes `set` from every notifier.
fn cancel(set: u64) {
    for s in SLOT.iter() {
        if s.state.load(Ordering::Acquire) != 0 {
            s.wanted.fetch_and(!set, Ordering::AcqRel);
        }
    }
}

/// `signal.Ignore`: stops delivering `sigs` (all when empty) to every
/// notifier and sets them to `SIG_IGN`. A later [`notify`] undoes it.
pub fn ignore(sigs: &[i32]) {
    let _g = CHANGE.lock().unwrap_or_else(|e| e.into_inner());
    let set = set_of(sigs);
    cancel(set);
    IGNORED.fetch_or(set, Ordering::AcqRel);
    for sig in sigs_in(set) {
        install::sigignore(sig);
    }
}

/// `signal.Reset`: undoes [`notify`] for `sigs` (all when empty): no
/// notifier receives them and the runtime's default handling applies again
/// (an inherited-ignored SIGHUP/SIGINT is ignored again). As in Go, it
/// does not undo [`ignore`].
pub fn reset(sigs: &[i32]) {
    let _g = CHANGE.lock().unwrap_or_else(|e| e.into_inner());
    let set = set_of(sigs);
    cancel(set);
    for sig in sigs_in(set) {
        install::sigdisable(sig);
    }
}

/// Whether `sig` was ignored through [`ignore`] (`signal.Ignored` reports
/// this for signals ignored by the program).
pub fn ignored(sig: i32) -> bool {
    (1..=64).contains(&sig) && IGNORED.load(Ordering::Acquire) & sigbit(sig) != 0
}
