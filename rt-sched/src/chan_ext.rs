//! What Rust code expects of a channel type, on [`Chan`]: `try_recv`,
//! `recv_timeout`, `is_closed`, `capacity`, a `Debug` that shows the state,
//! owning and non-blocking iterators, and error types shaped like
//! crossbeam-channel's (Display + `std::error::Error`).
//!
//! rt's channels are Go's, so the errors speak of a *closed* channel where
//! crossbeam says *disconnected*: a receive on a closed channel fails only
//! once the buffer is drained, and a send on one is Go's panic for
//! [`Chan::send`] and for a send case that fires ([`Select`], `select!`);
//! only the non-blocking [`Chan::try_send`] hands the value back instead
//! ([`TrySendError::Closed`]).
//!
//! ## Timeouts
//! [`Chan::recv_timeout`] and `select!`'s `default(timeout)` wait on a
//! one-element channel that a shared timer list fills at the deadline
//! ([`Deadline`]). The list is served by sleepers: a goroutine (a plain
//! thread before the runtime runs `main`) that sleeps until the earliest
//! deadline, fires what is due and sleeps again while deadlines remain that
//! no earlier sleeper covers. A wait that ends first takes its deadline off
//! the list, so nothing outlives it but a sleeper that was already asleep,
//! which wakes at its time, finds nothing due and exits; a steady stream of
//! waits with the same timeout keeps one sleeper. While a sleeper sleeps it
//! counts in `num_goroutine` and, as a pending timer does in Go, keeps the
//! deadlock check from firing.

use crate::chan::{Chan, Select, TrySendError};
use crate::lock::Lock;
use core::cell::{Cell, OnceCell, UnsafeCell};
use core::fmt;
use core::sync::atomic::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

// ---------------------------------------------------------------------------
// errors

/// A receive failed because the channel is closed and drained (the `Err` of
/// a `select!` receive case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel")
    }
}

impl std::error::Error for RecvError {}

/// A send failed because the channel is closed; the value comes back.
///
/// A send case of `select!` has a `Result<(), SendError<T>>`, in
/// crossbeam's form, but a send case that finds its channel closed panics
/// (`send on closed channel`), as Go, [`Chan::send`] and [`Select`] do, so
/// the result a case body sees is `Ok(())`. `Debug` does not show the
/// value, so `unwrap` works for any `T`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why [`Chan::try_recv`] returned no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing to receive now: the buffer is empty and no sender waits.
    Empty,
    /// The channel is closed and drained.
    #[doc(alias = "Disconnected")]
    Closed,
}

impl TryRecvError {
    /// True for [`TryRecvError::Empty`].
    pub fn is_empty(&self) -> bool {
        *self == TryRecvError::Empty
    }

    /// True for [`TryRecvError::Closed`].
    #[doc(alias = "is_disconnected")]
    pub fn is_closed(&self) -> bool {
        *self == TryRecvError::Closed
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "receiving on an empty channel",
            TryRecvError::Closed => "receiving on a closed channel",
        })
    }
}

impl std::error::Error for TryRecvError {}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> TryRecvError {
        TryRecvError::Closed
    }
}

/// Why [`Chan::recv_timeout`] returned no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the timeout.
    Timeout,
    /// The channel is closed and drained.
    #[doc(alias = "Disconnected")]
    Closed,
}

impl RecvTimeoutError {
    /// True for [`RecvTimeoutError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        *self == RecvTimeoutError::Timeout
    }

    /// True for [`RecvTimeoutError::Closed`].
    #[doc(alias = "is_disconnected")]
    pub fn is_closed(&self) -> bool {
        *self == RecvTimeoutError::Closed
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out waiting on a receive",
            RecvTimeoutError::Closed => "receiving on a closed channel",
        })
    }
}

impl std::error::Error for RecvTimeoutError {}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> RecvTimeoutError {
        RecvTimeoutError::Closed
    }
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// True for [`TrySendError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// True for [`TrySendError::Closed`].
    #[doc(alias = "is_disconnected")]
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "sending on a full channel",
            TrySendError::Closed(_) => "sending on a closed channel",
        })
    }
}

impl<T: fmt::Debug> std::error::Error for TrySendError<T> {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> TrySendError<T> {
        TrySendError::Closed(e.0)
    }
}

// ---------------------------------------------------------------------------
// Chan

impl<T: Send> Chan<T> {
    /// Receives without blocking: [`TryRecvError::Empty`] when nothing is
    /// ready, [`TryRecvError::Closed`] once the channel is closed and
    /// drained (Go's `v, ok := <-ch` inside a `select` with a `default`).
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match self.recv_nonblocking() {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(TryRecvError::Closed),
            Err(()) => Err(TryRecvError::Empty),
        }
    }

    /// The buffer capacity (0: unbuffered; rt's channels are always
    /// bounded). The same as [`cap`](Chan::cap).
    pub fn capacity(&self) -> usize {
        self.snapshot().1
    }

    /// True once the channel is closed (values may still be buffered).
    #[doc(alias = "is_disconnected")]
    pub fn is_closed(&self) -> bool {
        self.snapshot().2
    }

    /// True when the buffer holds `capacity` elements (always, for an
    /// unbuffered channel).
    pub fn is_full(&self) -> bool {
        let (len, cap, _) = self.snapshot();
        len == cap
    }

    /// Receives what is ready now, stopping when a receive would block or
    /// the channel is closed and drained.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { ch: self }
    }
}

impl<T: Send + 'static> Chan<T> {
    /// Receives a value, waiting at most `timeout` for one:
    /// [`RecvTimeoutError::Timeout`] when none came,
    /// [`RecvTimeoutError::Closed`] once the channel is closed and drained.
    /// A value that is ready is taken even with a zero timeout.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let deadline = Deadline::after(timeout);
        match self.try_recv() {
            Ok(v) => return Ok(v),
            Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
            Err(TryRecvError::Empty) => {}
        }
        if deadline.expired() {
            return Err(RecvTimeoutError::Timeout);
        }
        let mut s = Select::new();
        let t = s.recv(self);
        let _ = s.recv(deadline.arm());
        if s.select() == t.index {
            s.received(t).ok_or(RecvTimeoutError::Closed)
        } else {
            Err(RecvTimeoutError::Timeout)
        }
    }
}

impl<T> fmt::Debug for Chan<T> {
    /// `Chan { len: 1, cap: 4, closed: false }`, read under the lock.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (len, cap, closed) = self.snapshot();
        f.debug_struct("Chan")
            .field("len", &len)
            .field("cap", &cap)
            .field("closed", &closed)
            .finish()
    }
}

/// The iterator of [`Chan::try_iter`].
pub struct TryIter<'a, T> {
    ch: &'a Chan<T>,
}

impl<T: Send> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.ch.try_recv().ok()
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter").field("ch", self.ch).finish()
    }
}

/// The owning iterator of a [`Chan`] (`for v in ch`): receives until the
/// channel is closed and drained.
pub struct IntoIter<T> {
    ch: Chan<T>,
}

impl<T: Send> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.ch.recv()
    }
}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").field("ch", &self.ch).finish()
    }
}

impl<T: Send> IntoIterator for Chan<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { ch: self }
    }
}

// ---------------------------------------------------------------------------
// deadlines

/// Key of a pending deadline: (monotonic time, registration number).
type Key = (i64, u64);

struct TimerState {
    seq: u64,
    /// Pending deadlines and the channel each fills.
    pending: BTreeMap<Key, Chan<()>>,
    /// The wake-up times of the sleepers, with how many sleep until each.
    sleepers: BTreeMap<i64, usize>,
}

struct Timers {
    lock: Lock,
    st: UnsafeCell<TimerState>,
}

// SAFETY: `st` is only touched with `lock` held; the channels in it are
// `Chan<()>`, which may be used from any thread.
unsafe impl Sync for Timers {}

static TIMERS: Timers = Timers {
    lock: Lock::new(),
    st: UnsafeCell::new(TimerState {
        seq: 0,
        pending: BTreeMap::new(),
        sleepers: BTreeMap::new(),
    }),
};

impl Timers {
    /// Runs `f` on the state with the lock held.
    fn with<R>(&self, f: impl FnOnce(&mut TimerState) -> R) -> R {
        self.lock.lock();
        // SAFETY: lock held; the reference does not outlive `f`.
        let r = f(unsafe { &mut *self.st.get() });
        self.lock.unlock();
        r
    }
}

impl TimerState {
    /// True when a sleeper wakes at or before `when`.
    fn covered(&self, when: i64) -> bool {
        self.sleepers
            .first_key_value()
            .is_some_and(|(&t, _)| t <= when)
    }

    fn add_sleeper(&mut self, when: i64) {
        *self.sleepers.entry(when).or_insert(0) += 1;
    }

    fn remove_sleeper(&mut self, when: i64) {
        if let Some(n) = self.sleepers.get_mut(&when) {
            *n -= 1;
            if *n == 0 {
                self.sleepers.remove(&when);
            }
        }
    }
}

/// Puts `ch` on the list to receive `()` at `when`; returns its key.
fn register(when: i64, ch: Chan<()>) -> Key {
    let (key, spawn) = TIMERS.with(|st| {
        st.seq += 1;
        let key = (when, st.seq);
        st.pending.insert(key, ch);
        let spawn = !st.covered(when);
        if spawn {
            st.add_sleeper(when);
        }
        (key, spawn)
    });
    if spawn {
        start_sleeper(when);
    }
    key
}

/// Takes a deadline off the list (no-op once it fired).
fn cancel(key: Key) {
    let ch = TIMERS.with(|st| st.pending.remove(&key));
    drop(ch);
}

/// A sleeper waking at `when`: a goroutine once the runtime runs, a plain
/// thread before (or in a program that never boots it), where a goroutine
/// would never be scheduled.
fn start_sleeper(when: i64) {
    if crate::runtime2::SCHED.main_started.load(Ordering::Relaxed) {
        crate::go(move || sleeper(when));
    } else {
        std::thread::spawn(move || sleeper(when));
    }
}

/// Sleeps until `when`, fills every channel that is due, and sleeps again
/// until the next deadline unless another sleeper wakes by then.
fn sleeper(mut when: i64) {
    loop {
        crate::proc::sleep_until(when);
        let now = rt_sys::nanotime();
        let (due, next) = TIMERS.with(|st| {
            st.remove_sleeper(when);
            let mut due = Vec::new();
            while let Some(e) = st.pending.first_entry() {
                if e.key().0 > now {
                    break;
                }
                due.push(e.remove());
            }
            let next = match st.pending.first_key_value() {
                Some((&(t, _), _)) if !st.covered(t) => {
                    st.add_sleeper(t);
                    Some(t)
                }
                _ => None,
            };
            (due, next)
        });
        for ch in due {
            // Capacity 1 and this is its only send: it cannot be full.
            let _ = ch.try_send(());
        }
        match next {
            Some(t) => when = t,
            None => return,
        }
    }
}

/// A deadline for a timed wait (`select!`'s `default(timeout)`,
/// [`Chan::recv_timeout`]): `after` only reads the clock; [`arm`] puts a
/// one-element channel on the timer list, which receives `()` at the
/// deadline; dropping the `Deadline` takes it off again.
///
/// [`arm`]: Deadline::arm
pub struct Deadline {
    when: i64,
    ch: OnceCell<Chan<()>>,
    key: Cell<Option<Key>>,
}

impl Deadline {
    /// The deadline `timeout` from now (a timeout too long for the clock
    /// waits about 146 years, as [`sleep`](crate::sleep) does).
    pub fn after(timeout: Duration) -> Deadline {
        let ns = i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX / 2);
        Deadline {
            when: rt_sys::nanotime().saturating_add(ns.min(i64::MAX / 2)),
            ch: OnceCell::new(),
            key: Cell::new(None),
        }
    }

    /// True once the deadline has passed.
    pub fn expired(&self) -> bool {
        rt_sys::nanotime() >= self.when
    }

    /// The channel that receives `()` at the deadline, put on the timer
    /// list on the first call.
    pub fn arm(&self) -> &Chan<()> {
        let ch = self.ch.get_or_init(|| Chan::new(1));
        if self.key.get().is_none() {
            self.key.set(Some(register(self.when, ch.clone())));
        }
        ch
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            cancel(key);
        }
    }
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("when", &self.when)
            .field("armed", &self.key.get().is_some())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    // Plain threads, no runtime: blocking uses the futex path and the
    // deadline sleepers are threads.

    fn pending(key: Key) -> bool {
        TIMERS.with(|st| st.pending.contains_key(&key))
    }

    #[test]
    fn try_recv_reports_empty_then_closed() {
        let c = Chan::<u8>::new(2);
        assert_eq!(c.try_recv(), Err(TryRecvError::Empty));
        c.send(1);
        c.close();
        assert_eq!(c.try_recv(), Ok(1));
        assert_eq!(c.try_recv(), Err(TryRecvError::Closed));
        assert!(TryRecvError::Closed.is_closed() && TryRecvError::Empty.is_empty());
    }

    #[test]
    fn try_send_errors_give_the_value_back() {
        let c = Chan::<String>::new(1);
        c.try_send("a".into()).unwrap();
        let e = c.try_send("b".into()).unwrap_err();
        assert!(e.is_full() && !e.is_closed());
        assert_eq!(e.to_string(), "sending on a full channel");
        assert_eq!(e.into_inner(), "b");
        c.close();
        let e = c.try_send("c".into()).unwrap_err();
        assert!(e.is_closed());
        assert_eq!(e.to_string(), "sending on a closed channel");
        let as_dyn: Box<dyn std::error::Error> = Box::new(e);
        assert_eq!(as_dyn.to_string(), "sending on a closed channel");
        let back: TrySendError<u8> = SendError(3).into();
        assert_eq!(back, TrySendError::Closed(3));
    }

    #[test]
    fn errors_display_and_convert() {
        assert_eq!(RecvError.to_string(), "receiving on a closed channel");
        assert_eq!(TryRecvError::from(RecvError), TryRecvError::Closed);
        assert_eq!(RecvTimeoutError::from(RecvError), RecvTimeoutError::Closed);
        assert_eq!(
            RecvTimeoutError::Timeout.to_string(),
            "timed out waiting on a receive"
        );
        assert!(RecvTimeoutError::Timeout.is_timeout());
        // Debug without `T: Debug`, so `unwrap` works on any payload.
        struct Opaque;
        let e = SendError(Opaque);
        assert_eq!(format!("{e:?}"), "SendError(..)");
        assert_eq!(e.to_string(), "sending on a closed channel");
    }

    #[test]
    fn state_queries_and_debug() {
        let c = Chan::<u32>::new(2);
        assert_eq!(format!("{c:?}"), "Chan { len: 0, cap: 2, closed: false }");
        c.send(1);
        c.send(2);
        assert!(c.is_full());
        assert_eq!((c.len(), c.capacity(), c.is_closed()), (2, 2, false));
        c.close();
        assert!(c.is_closed());
        assert_eq!(format!("{c:?}"), "Chan { len: 2, cap: 2, closed: true }");
        let u = Chan::<()>::new(0);
        assert!(u.is_full() && u.is_empty());
        assert_eq!(u.capacity(), 0);
    }

    #[test]
    fn iterators() {
        let c = Chan::<u32>::new(4);
        c.send(1);
        c.send(2);
        // try_iter stops when a receive would block; the channel stays open.
        assert_eq!(c.try_iter().collect::<Vec<_>>(), [1, 2]);
        c.send(3);
        c.close();
        let mut sum = 0;
        for v in &c {
            sum += v;
        }
        assert_eq!(sum, 3);
        let d = Chan::<u32>::new(3);
        let tx = d.clone();
        let t = std::thread::spawn(move || {
            for i in 0..10 {
                tx.send(i);
            }
            tx.close();
        });
        assert_eq!(d.into_iter().sum::<u32>(), 45);
        t.join().unwrap();
    }

    #[test]
    fn recv_timeout_value_closed_and_timeout() {
        let c = Chan::<u32>::new(1);
        c.send(5);
        assert_eq!(c.recv_timeout(Duration::ZERO), Ok(5));
        assert_eq!(
            c.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
        assert_eq!(
            c.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        let tx = c.clone();
        let t = std::thread::spawn(move || tx.send(9));
        assert_eq!(c.recv_timeout(Duration::from_secs(600)), Ok(9));
        t.join().unwrap();
        c.close();
        assert_eq!(
            c.recv_timeout(Duration::from_secs(600)),
            Err(RecvTimeoutError::Closed)
        );
    }

    #[test]
    fn a_dropped_deadline_leaves_the_list() {
        let d = Deadline::after(Duration::from_secs(3600));
        assert!(!d.expired());
        let ch = d.arm().clone();
        let key = d.key.get().expect("armed");
        assert!(pending(key));
        drop(d);
        assert!(!pending(key), "a cancelled deadline stayed on the list");
        // Only the caller's handle is left: the list let go of its clone.
        assert_eq!(ch.handles(), 1);
    }

    #[test]
    fn a_deadline_fires_once_and_leaves_the_list() {
        let d = Deadline::after(Duration::from_millis(5));
        let ch = d.arm();
        let key = d.key.get().expect("armed");
        assert_eq!(ch.recv(), Some(()));
        assert!(d.expired());
        assert!(!pending(key));
        assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn an_earlier_deadline_is_not_held_up_by_a_later_sleeper() {
        let late = Deadline::after(Duration::from_secs(3600));
        late.arm();
        let early = Deadline::after(Duration::from_millis(5));
        assert_eq!(early.arm().recv(), Some(()));
        assert!(!late.expired());
    }
}
