//! What [`select!`](crate::select!) expands to: one [`Select`] with a case
//! per arm, and these per-case handles, which give every arm the same
//! shape (`fired`, then `take` the arm's result).
//!
//! Malformed arms are compile errors naming the mistake, e.g. a receive
//! case without its binding:
//!
//! ```compile_fail
//! let a = rt_sched::Chan::<u8>::new(1);
//! rt_sched::select! { recv(a) => () }
//! ```
//!
//! two defaults:
//!
//! ```compile_fail
//! let a = rt_sched::Chan::<u8>::new(1);
//! rt_sched::select! { recv(a) -> _ => 1, default => 2, default => 3 }
//! ```
//!
//! a missing comma after a body that is not in braces:
//!
//! ```compile_fail
//! let a = rt_sched::Chan::<u8>::new(1);
//! rt_sched::select! { recv(a) -> _ => 1 default => 2 }
//! ```
//!
//! or a case that is not one:
//!
//! ```compile_fail
//! let a = rt_sched::Chan::<u8>::new(1);
//! rt_sched::select! { close(a) -> _ => 1 }
//! ```
//!
//! while the same arms written correctly compile:
//!
//! ```
//! let a = rt_sched::Chan::<u8>::new(1);
//! let v = rt_sched::select! { recv(a) -> _ => 1, default => 2 };
//! assert_eq!(v, 2);
//! ```
#![doc(hidden)]

use crate::chan::{Chan, RecvError, RecvToken, Select, SendError};
use core::marker::PhantomData;

pub use crate::chan_ext::Deadline;

/// A receive arm: `recv(ch) -> res => body`.
#[derive(Debug)]
pub struct RecvCase<T> {
    tok: RecvToken<T>,
}

impl<T: Send + 'static> RecvCase<T> {
    /// Adds the case to `sel`.
    pub fn new<'a>(sel: &mut Select<'a>, ch: &'a Chan<T>) -> RecvCase<T> {
        RecvCase { tok: sel.recv(ch) }
    }

    /// True when `fired` names this case.
    pub fn fired(&self, fired: Option<usize>) -> bool {
        fired == Some(self.tok.index)
    }

    /// The value received, or [`RecvError`] for a closed channel.
    pub fn take(self, sel: &mut Select<'_>) -> Result<T, RecvError> {
        sel.received(self.tok).ok_or(RecvError)
    }
}

/// A send arm: `send(ch, v) -> res => body`.
#[derive(Debug)]
pub struct SendCase<T> {
    index: usize,
    _t: PhantomData<fn(T)>,
}

impl<T: Send + 'static> SendCase<T> {
    /// Adds the case to `sel`.
    pub fn new<'a>(sel: &mut Select<'a>, ch: &'a Chan<T>, v: T) -> SendCase<T> {
        SendCase {
            index: sel.send(ch, v),
            _t: PhantomData,
        }
    }

    /// True when `fired` names this case.
    pub fn fired(&self, fired: Option<usize>) -> bool {
        fired == Some(self.index)
    }

    /// `Ok(())`: a send case that fired sent its value (one that found its
    /// channel closed panicked inside the select).
    pub fn take(self, _sel: &mut Select<'_>) -> Result<(), SendError<T>> {
        Ok(())
    }
}

/// `default(timeout)`: a case that is ready now, else the first to become
/// ready before `deadline` (`None`: the deadline passed first).
pub fn select_until<'a>(sel: &mut Select<'a>, deadline: &'a Deadline) -> Option<usize> {
    if let Some(i) = sel.try_select() {
        return Some(i);
    }
    if deadline.expired() {
        return None;
    }
    let t = sel.recv(deadline.arm());
    let i = sel.select();
    (i != t.index).then_some(i)
}

/// Go's `select` statement in crossbeam-channel's syntax.
///
/// ```text
/// select! {
///     recv(ch) -> pattern => body,
///     send(ch, value) -> pattern => body,
///     default => body,            // or: default(timeout) => body
/// }
/// ```
///
/// * `recv(ch) -> v` binds `v: Result<T, RecvError>`: `Ok(value)`, or
///   `Err(RecvError)` once `ch` is closed and drained (a closed channel is
///   always ready, as in Go).
/// * `send(ch, value) -> res` binds `res: Result<(), SendError<T>>`, which
///   a body only ever sees as `Ok(())`: a send case that fires on a closed
///   channel panics with `send on closed channel`, as Go's `select`,
///   [`Chan::send`](crate::Chan::send) and [`Select`](crate::Select) do
///   (crossbeam returns the `Err` instead).
/// * `default => body` runs when no case is ready now;
///   `default(timeout) => body` (a [`Duration`](std::time::Duration)) when
///   none becomes ready within `timeout`. At most one default; without one,
///   the select blocks until a case fires. `select! {}` blocks forever, as
///   Go's `select {}`.
///
/// `ch` is a [`Chan`](crate::Chan) or a reference to one (it is borrowed,
/// not moved; a temporary such as `rt_sched::after(d)` lives until the
/// select ends). Every channel and value expression is evaluated exactly
/// once, in source order, before any case is tried, as Go specifies; the
/// timeout after them. When several cases are ready one is chosen at
/// random (Go's order; crossbeam's too). Cases are separated by commas; the
/// comma after a body in braces may be left out, and a trailing comma is
/// allowed. Bodies may `break`, `continue` or `return` from the enclosing
/// function; every body (and the default) must have the same type, which is
/// the value of the `select!`. The channels are no longer borrowed when a
/// body runs.
///
/// It is built on [`Select`](crate::Select), which remains the way to
/// select over a list of cases built at run time. Outside a goroutine it
/// waits on a futex, like the rest of [`Chan`](crate::Chan).
///
/// ```
/// use rt_sched::{select, Chan};
/// use std::time::Duration;
///
/// let (a, b) = (Chan::<u32>::new(1), Chan::<&str>::new(1));
/// a.send(7);
/// // Only `a` is ready.
/// let got = select! {
///     recv(a) -> v => v.unwrap(),
///     recv(b) -> v => v.unwrap().len() as u32,
///     default => 0,
/// };
/// assert_eq!(got, 7);
/// // A send case; the buffer has room.
/// select! {
///     send(b, "hi") -> res => assert_eq!(res, Ok(())),
///     default(Duration::from_secs(5)) => panic!("b has room"),
/// }
/// assert_eq!(b.recv(), Some("hi"));
/// // Nothing is ready: the default fires once the timeout has passed.
/// let timed_out = select! {
///     recv(a) -> _ => false,
///     default(Duration::from_millis(10)) => true,
/// };
/// assert!(timed_out);
/// // A closed channel is ready, with `Err`.
/// a.close();
/// select! {
///     recv(a) -> v => assert_eq!(v, Err(rt_sched::RecvError)),
/// }
/// ```
#[macro_export]
macro_rules! select {
    // ---- one arm off the front: `kind(args) [-> pat] => body` ending in
    // a comma, in a body in braces, or in the end of the input.
    (@parse $st:tt default => $body:expr, $($tail:tt)*) => {
        $crate::select!(@case $st default () [] [$body] ($($tail)*))
    };
    (@parse $st:tt default => $body:block $($tail:tt)*) => {
        $crate::select!(@case $st default () [] [$body] ($($tail)*))
    };
    (@parse $st:tt default => $body:expr) => {
        $crate::select!(@case $st default () [] [$body] ())
    };
    (@parse $st:tt $kind:ident $args:tt $(-> $res:pat)? => $body:expr, $($tail:tt)*) => {
        $crate::select!(@case $st $kind $args [$($res)?] [$body] ($($tail)*))
    };
    (@parse $st:tt $kind:ident $args:tt $(-> $res:pat)? => $body:block $($tail:tt)*) => {
        $crate::select!(@case $st $kind $args [$($res)?] [$body] ($($tail)*))
    };
    (@parse $st:tt $kind:ident $args:tt $(-> $res:pat)? => $body:expr) => {
        $crate::select!(@case $st $kind $args [$($res)?] [$body] ())
    };

    // ---- the whole input taken: expand.
    (@parse (($sel:ident $dl:ident $fired:ident) [$($setup:tt)*] [$($reg:tt)*]
        [$(($t:ident [$res:pat] [$body:expr]))*] [])) => {{
        $($setup)*
        let mut $sel = $crate::Select::new();
        $($reg)*
        let $fired = ::core::option::Option::Some($sel.select());
        $(if $t.fired($fired) {
            let out = $t.take(&mut $sel);
            ::core::mem::drop($sel);
            let $res = out;
            $body
        } else)* {
            ::core::unreachable!("select!: no case fired")
        }
    }};
    (@parse (($sel:ident $dl:ident $fired:ident) [$($setup:tt)*] [$($reg:tt)*]
        [$(($t:ident [$res:pat] [$body:expr]))*] [now [$dbody:expr]])) => {{
        $($setup)*
        let mut $sel = $crate::Select::new();
        $($reg)*
        // Unused when the default is the only arm.
        #[allow(unused_variables)]
        let $fired = $sel.try_select();
        $(if $t.fired($fired) {
            let out = $t.take(&mut $sel);
            ::core::mem::drop($sel);
            let $res = out;
            $body
        } else)* {
            ::core::mem::drop($sel);
            $dbody
        }
    }};
    (@parse (($sel:ident $dl:ident $fired:ident) [$($setup:tt)*] [$($reg:tt)*]
        [$(($t:ident [$res:pat] [$body:expr]))*] [timeout ($d:expr) [$dbody:expr]])) => {{
        $($setup)*
        let $dl = $crate::select_macro::Deadline::after($d);
        let mut $sel = $crate::Select::new();
        $($reg)*
        // Unused when the default is the only arm.
        #[allow(unused_variables)]
        let $fired = $crate::select_macro::select_until(&mut $sel, &$dl);
        $(if $t.fired($fired) {
            let out = $t.take(&mut $sel);
            ::core::mem::drop($sel);
            ::core::mem::drop($dl);
            let $res = out;
            $body
        } else)* {
            ::core::mem::drop($sel);
            ::core::mem::drop($dl);
            $dbody
        }
    }};
    (@parse $st:tt $($rest:tt)+) => {
        ::core::compile_error!(::core::concat!(
            "select!: expected `recv(ch) -> pattern => body`, ",
            "`send(ch, value) -> pattern => body`, `default => body` or ",
            "`default(timeout) => body`, separated by commas; found `",
            ::core::stringify!($($rest)+), "`"
        ))
    };

    // ---- one arm into the state.
    (@case (($sel:ident $dl:ident $fired:ident) [$($setup:tt)*] [$($reg:tt)*] [$($cases:tt)*] $dflt:tt)
        recv ($r:expr) [$res:pat] [$body:expr] ($($tail:tt)*)) => {
        $crate::select!(@parse (($sel $dl $fired)
            [$($setup)* let ch: &$crate::Chan<_> = &$r;]
            [$($reg)* let case = $crate::select_macro::RecvCase::new(&mut $sel, ch);]
            [$($cases)* (case [$res] [$body])]
            $dflt) $($tail)*)
    };
    (@case (($sel:ident $dl:ident $fired:ident) [$($setup:tt)*] [$($reg:tt)*] [$($cases:tt)*] $dflt:tt)
        send ($s:expr, $v:expr) [$res:pat] [$body:expr] ($($tail:tt)*)) => {
        $crate::select!(@parse (($sel $dl $fired)
            [$($setup)* let ch: &$crate::Chan<_> = &$s; let v = $v;]
            [$($reg)* let case = $crate::select_macro::SendCase::new(&mut $sel, ch, v);]
            [$($cases)* (case [$res] [$body])]
            $dflt) $($tail)*)
    };
    (@case ($ids:tt $setup:tt $reg:tt $cases:tt []) default () [] [$body:expr] ($($tail:tt)*)) => {
        $crate::select!(@parse ($ids $setup $reg $cases [now [$body]]) $($tail)*)
    };
    (@case ($ids:tt $setup:tt $reg:tt $cases:tt []) default ($d:expr) [] [$body:expr] ($($tail:tt)*)) => {
        $crate::select!(@parse ($ids $setup $reg $cases [timeout ($d) [$body]]) $($tail)*)
    };
    (@case ($ids:tt $setup:tt $reg:tt $cases:tt [$($dflt:tt)+]) default $($rest:tt)*) => {
        ::core::compile_error!("select!: more than one `default` case")
    };
    (@case $st:tt recv $args:tt [] $($rest:tt)*) => {
        ::core::compile_error!("select!: a receive case binds its result: `recv(ch) -> v => body`")
    };
    (@case $st:tt send $args:tt [] $($rest:tt)*) => {
        ::core::compile_error!("select!: a send case binds its result: `send(ch, value) -> res => body`")
    };
    (@case $st:tt default $args:tt [$($res:tt)+] $($rest:tt)*) => {
        ::core::compile_error!("select!: a default case binds nothing: `default => body`")
    };
    (@case $st:tt $kind:ident $args:tt $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "select!: `", ::core::stringify!($kind $args),
            "` is not a case (expected `recv(ch)`, `send(ch, value)`, `default` or `default(timeout)`)"
        ))
    };

    // ---- entry.
    ($($tokens:tt)*) => {
        $crate::select!(@parse ((sel deadline fired) [] [] [] []) $($tokens)*)
    };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::chan::{Chan, RecvError};
    use std::cell::RefCell;
    use std::time::Duration;

    // Plain threads, no runtime: blocking uses the futex path and the
    // deadline sleepers are threads.

    #[test]
    fn recv_send_and_default() {
        let a = Chan::<u32>::new(1);
        let b = Chan::<u32>::new(1);
        let r = crate::select! {
            recv(a) -> v => v.map(|_| 'a'),
            recv(b) -> v => v.map(|_| 'b'),
            default => Ok('d'),
        };
        assert_eq!(r, Ok('d'));
        b.send(4);
        let r = crate::select! {
            recv(a) -> v => ('a', v),
            recv(b) -> v => ('b', v),
            default => ('d', Err(RecvError)),
        };
        assert_eq!(r, ('b', Ok(4)));
        crate::select! {
            send(a, 9) -> res => assert_eq!(res, Ok(())),
            default => panic!("a has room"),
        }
        assert_eq!(a.try_recv(), Ok(9));
    }

    #[test]
    fn blocking_select_waits_for_a_thread() {
        let a = Chan::<u32>::new(0);
        let b = Chan::<u32>::new(0);
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.send(11));
        let got = crate::select! {
            recv(a) -> _ => unreachable!("nobody sends on a"),
            recv(b) -> v => v,
        };
        assert_eq!(got, Ok(11));
        t.join().unwrap();
        // The select left nothing queued on `a`.
        assert!(a.try_send(1).is_err());
    }

    #[test]
    fn closed_channel_gives_err_and_is_always_ready() {
        let a = Chan::<u32>::new(0);
        a.close();
        for _ in 0..10 {
            let r = crate::select! {
                recv(a) -> v => v,
                default => Ok(0),
            };
            assert_eq!(r, Err(RecvError));
        }
    }

    #[test]
    #[should_panic(expected = "send on closed channel")]
    fn send_case_on_closed_channel_panics() {
        let a = Chan::<u32>::new(1);
        a.close();
        crate::select! {
            send(a, 1) -> _res => {}
        }
    }

    #[test]
    fn default_timeout_fires_or_yields_to_a_ready_case() {
        let a = Chan::<u32>::new(1);
        let fired = crate::select! {
            recv(a) -> _ => false,
            default(Duration::from_millis(10)) => true,
        };
        assert!(fired);
        // A zero timeout is a plain default.
        let fired = crate::select! {
            recv(a) -> _ => false,
            default(Duration::ZERO) => true,
        };
        assert!(fired);
        a.send(1);
        let fired = crate::select! {
            recv(a) -> v => { assert_eq!(v, Ok(1)); false }
            default(Duration::ZERO) => true,
        };
        assert!(!fired);
        // A case that becomes ready while the select waits wins over a long
        // timeout.
        let a2 = a.clone();
        let t = std::thread::spawn(move || a2.send(2));
        let got = crate::select! {
            recv(a) -> v => v,
            default(Duration::from_secs(600)) => panic!("timed out"),
        };
        assert_eq!(got, Ok(2));
        t.join().unwrap();
    }

    #[test]
    fn expressions_are_evaluated_once_in_source_order() {
        let log = RefCell::new(Vec::new());
        let a = Chan::<u32>::new(1);
        let b = Chan::<u32>::new(1);
        let ch = |name: &'static str, c: &Chan<u32>| {
            log.borrow_mut().push(name);
            c.clone()
        };
        let val = |v: u32| {
            log.borrow_mut().push("value");
            v
        };
        let timeout = || {
            log.borrow_mut().push("timeout");
            Duration::ZERO
        };
        crate::select! {
            recv(ch("a", &a)) -> _ => panic!("a is empty"),
            send(ch("b", &b), val(3)) -> res => res.unwrap(),
            default(timeout()) => panic!("b has room"),
        }
        assert_eq!(*log.borrow(), ["a", "b", "value", "timeout"]);
        assert_eq!(b.try_recv(), Ok(3));
    }

    #[test]
    fn references_temporaries_and_trailing_commas() {
        let a = Chan::<u32>::new(1);
        let r = &a;
        r.send(1);
        let v = crate::select! { recv(r) -> v => v.unwrap(), };
        assert_eq!(v, 1);
        let v = crate::select! { recv(&a) -> v => v, default => Ok(0) };
        assert_eq!(v, Ok(0));
        // A temporary channel lives until the select ends.
        let v = crate::select! {
            recv(Chan::<u32>::new(0)) -> _ => 1,
            default => 2
        };
        assert_eq!(v, 2);
        // A body in braces needs no comma.
        a.send(5);
        let v = crate::select! {
            recv(a) -> v => { v.unwrap() + 1 }
            default => { 0 }
        };
        assert_eq!(v, 6);
    }

    #[test]
    fn bodies_can_break_and_move_the_channels() {
        let a = Chan::<u32>::new(8);
        for i in 0..5 {
            a.send(i);
        }
        a.close();
        let mut sum = 0;
        loop {
            crate::select! {
                recv(a) -> v => match v {
                    Ok(v) => sum += v,
                    Err(_) => break,
                },
            }
        }
        assert_eq!(sum, 10);
        let b = Chan::<u32>::new(1);
        b.send(1);
        let moved = crate::select! {
            recv(b) -> _ => b,
            default => unreachable!(),
        };
        assert!(moved.is_empty());
    }

    #[test]
    fn five_cases_every_one_can_fire() {
        let chans: Vec<Chan<usize>> = (0..4).map(|_| Chan::new(1)).collect();
        let out = Chan::<usize>::new(1);
        // `out` is full, so the send case blocks until it is drained.
        out.send(usize::MAX);
        let mut last_sent = usize::MAX;
        let mut seen = [0u32; 5];
        for round in 0..500 {
            // Make one case ready; the rest stay blocked.
            let k = round % 5;
            if k < 4 {
                chans[k].send(k);
            } else {
                assert_eq!(out.try_recv(), Ok(last_sent));
            }
            let i = crate::select! {
                recv(chans[0]) -> v => v.unwrap(),
                recv(chans[1]) -> v => v.unwrap(),
                recv(chans[2]) -> v => v.unwrap(),
                recv(chans[3]) -> v => v.unwrap(),
                send(out, round) -> _ => 4,
            };
            assert_eq!(i, k);
            seen[i] += 1;
            if i == 4 {
                last_sent = round;
            }
        }
        assert_eq!(seen, [100; 5]);
    }

    #[test]
    fn ready_cases_are_picked_at_random() {
        let a = Chan::<u8>::new(1);
        let b = Chan::<u8>::new(1);
        let (mut na, mut nb) = (0, 0);
        for _ in 0..2000 {
            let _ = a.try_send(0);
            let _ = b.try_send(0);
            crate::select! {
                recv(a) -> _ => na += 1,
                recv(b) -> _ => nb += 1,
            }
        }
        // A fair coin gives each side far more than 200 of 2000.
        assert!(na > 200 && nb > 200, "a {na} b {nb}");
    }

    #[test]
    fn nested_select_in_a_body() {
        let a = Chan::<u32>::new(1);
        let b = Chan::<u32>::new(1);
        a.send(1);
        b.send(2);
        let v = crate::select! {
            recv(a) -> x => crate::select! {
                recv(b) -> y => x.unwrap() + y.unwrap(),
                default => 0,
            },
            default => 0,
        };
        assert_eq!(v, 3);
    }

    #[test]
    fn only_a_default() {
        let v = crate::select! { default => 5 };
        assert_eq!(v, 5);
        let v = crate::select! { default(Duration::from_millis(1)) => 6 };
        assert_eq!(v, 6);
    }
}
