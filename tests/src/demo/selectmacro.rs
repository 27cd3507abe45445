//! `selectmacro`: `select!` and the channel conventions (`try_recv`,
//! `recv_timeout`, `Debug`, `len`/`capacity`/`is_closed`, the error
//! types) on goroutines. Each check prints `ok NAME` and the program ends
//! with `selectmacro ok`; a failed check panics (status 2) saying what
//! went wrong. `tests/tests/selectmacro.rs` runs it at GOMAXPROCS 1 and 2.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rt_sched::{select, Chan, WaitGroup};
use rt_sched::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

/// A timeout that only a hang reaches.
const LONG: Duration = Duration::from_secs(120);

/// The checks, in the order they run.
const CHECKS: &[(&str, fn())] = &[
    ("fairness", fairness),
    ("closed", closed),
    ("send", send),
    ("default", default),
    ("timeout", timeout),
    ("ready-before-timeout", ready_before_timeout),
    ("no-sleeper-per-wait", no_sleeper_per_wait),
    ("five-arms", five_arms),
    ("goroutines", goroutines),
    ("nested", nested),
    ("send-on-closed", send_on_closed),
    ("conventions", conventions),
    ("recv-timeout", recv_timeout),
];

pub fn main() -> i32 {
    for (name, check) in CHECKS {
        check();
        println!("ok {name}");
    }
    println!("selectmacro ok");
    0
}

/// Two cases always ready: over 2000 selects each is picked at least 10% of
/// the time (a fair coin falls below 200 with probability far under
/// 10^-100).
fn fairness() {
    let a = Chan::<u32>::new(1);
    let b = Chan::<u32>::new(1);
    let (mut na, mut nb) = (0u32, 0u32);
    for i in 0..2000 {
        // Refill whichever was taken: both stay ready.
        let _ = a.try_send(i);
        let _ = b.try_send(i);
        select! {
            recv(a) -> v => { v.expect("a is open"); na += 1 }
            recv(b) -> v => { v.expect("b is open"); nb += 1 }
        }
    }
    assert_eq!(na + nb, 2000);
    assert!(na >= 200 && nb >= 200, "fairness: a {na}, b {nb} of 2000");
}

/// A receive case on a closed channel fires with `Err(RecvError)` — after
/// the buffered values — and keeps firing (a closed channel is ready).
fn closed() {
    let a = Chan::<u32>::new(2);
    a.send(1);
    a.close();
    let first = select! { recv(a) -> v => v, default => panic!("closed: a holds a value") };
    assert_eq!(first, Ok(1));
    for _ in 0..3 {
        let v = select! { recv(a) -> v => v, default => panic!("closed: a is ready") };
        assert_eq!(v, Err(RecvError));
    }
    // Blocking, with another channel that never becomes ready.
    let never = Chan::<u32>::new(0);
    let v = select! {
        recv(never) -> _ => panic!("closed: nobody sends on never"),
        recv(a) -> v => v,
    };
    assert_eq!(v, Err(RecvError));
}

/// A send case hands its value to a goroutine receiving on an unbuffered
/// channel; the receive case beside it, never ready, does not fire, and the
/// value meant for it is not sent.
fn send() {
    let out = Chan::<u64>::new(0);
    let idle = Chan::<u64>::new(0);
    let rx = out.clone();
    let h = rt_sched::spawn(move || {
        (0..100)
            .map(|_| rx.recv().expect("send: open"))
            .sum::<u64>()
    });
    for i in 0..100u64 {
        select! {
            send(out, i) -> res => assert_eq!(res, Ok::<(), SendError<u64>>(())),
            recv(idle) -> _ => panic!("send: nothing is sent on idle"),
        }
    }
    assert_eq!(h.join().expect("send: receiver"), 4950);
    assert_eq!(idle.try_recv(), Err(TryRecvError::Empty));
}

/// With nothing ready the default fires, and the select leaves no trace:
/// the values of its send cases stay unsent.
fn default() {
    let full = Chan::<u32>::new(1);
    full.send(0);
    let empty = Chan::<u32>::new(0);
    for _ in 0..100 {
        let d = select! {
            recv(empty) -> _ => false,
            send(full, 1) -> _ => false,
            send(empty, 2) -> _ => false,
            default => true,
        };
        assert!(d, "default: a case fired with nothing ready");
    }
    assert_eq!(full.len(), 1);
    assert_eq!(full.try_recv(), Ok(0));
}

/// `default(timeout)` fires when nothing becomes ready: the select waits
/// (it is parked, other goroutines run) and then returns the default.
fn timeout() {
    let never = Chan::<u32>::new(0);
    let never2 = never.clone();
    let blocked = rt_sched::spawn(move || {
        select! {
            recv(never2) -> _ => "case",
            default(Duration::from_millis(20)) => "timeout",
        }
    });
    assert_eq!(blocked.join().expect("timeout: goroutine"), "timeout");
    let r = select! {
        recv(never) -> _ => "case",
        send(never, 1) -> _ => "case",
        default(Duration::from_millis(5)) => "timeout",
    };
    assert_eq!(r, "timeout");
}

/// A case that becomes ready while the select waits wins over a long
/// timeout; a zero timeout behaves as a plain default.
fn ready_before_timeout() {
    let a = Chan::<u32>::new(0);
    let a2 = a.clone();
    rt_sched::go(move || {
        rt_sched::sleep(Duration::from_millis(5));
        a2.send(7);
    });
    let r = select! {
        recv(a) -> v => v,
        default(LONG) => panic!("ready-before-timeout: timed out"),
    };
    assert_eq!(r, Ok(7));
    let r = select! {
        recv(a) -> _ => "case",
        default(Duration::ZERO) => "default",
    };
    assert_eq!(r, "default");
}

/// 1000 timed waits (`select!` and `recv_timeout`) whose value comes while
/// they wait leave at most one timer sleeper behind (a sleeper per wait, as `after` makes, would leave
/// a goroutine per select sleeping out its timeout).
fn no_sleeper_per_wait() {
    let req = Chan::<u32>::new(0);
    let rep = Chan::<u32>::new(0);
    let (req2, rep2) = (req.clone(), rep.clone());
    let echo = rt_sched::spawn(move || {
        for v in &req2 {
            // Reply once the waiter has had time to park: with nothing
            // else runnable it has, at GOMAXPROCS=1 always.
            rt_sched::sleep(Duration::from_micros(50));
            rep2.send(v + 1);
        }
    });
    let before = rt_sched::num_goroutine();
    for i in 0..1000 {
        req.send(i);
        let v = if i % 2 == 0 {
            select! {
                recv(rep) -> v => v.ok(),
                default(LONG) => panic!("no-sleeper-per-wait: timed out"),
            }
        } else {
            rep.recv_timeout(LONG).ok()
        };
        assert_eq!(v, Some(i + 1));
    }
    let after = rt_sched::num_goroutine();
    assert!(
        after <= before + 1,
        "no-sleeper-per-wait: {before} goroutines before, {after} after"
    );
    req.close();
    echo.join().expect("no-sleeper-per-wait: echo");
}

/// Four producers and a consumer around one five-arm select: every value
/// arrives once, every arm fires, and the consumer gets every sent value.
fn five_arms() {
    const N: u64 = 500;
    let ins: Vec<Chan<u64>> = (0..4).map(|_| Chan::new(0)).collect();
    for (k, c) in ins.iter().enumerate() {
        let c = c.clone();
        rt_sched::go(move || {
            for i in 0..N {
                c.send(k as u64 * N + i);
            }
            c.close();
        });
    }
    let out = Chan::<u64>::new(0);
    let rx = out.clone();
    let consumer = rt_sched::spawn(move || rx.iter().sum::<u64>());
    let (mut got, mut sum, mut fired) = (0u64, 0u64, [0u64; 4]);
    let mut open = [true; 4];
    let mut next_out = 0u64;
    let mut take = |k: usize, v: Result<u64, RecvError>, open: &mut [bool; 4]| match v {
        Ok(v) => {
            got += 1;
            sum += v;
            fired[k] += 1;
        }
        Err(RecvError) => open[k] = false,
    };
    while open.iter().any(|o| *o) || next_out < 100 {
        // A closed channel is always ready: once one is seen closed, a
        // fresh channel that never becomes ready takes its place.
        let idle = Chan::<u64>::new(0);
        let chs: [&Chan<u64>; 4] = std::array::from_fn(|k| if open[k] { &ins[k] } else { &idle });
        let out_case = if next_out < 100 { &out } else { &idle };
        select! {
            recv(chs[0]) -> v => take(0, v, &mut open),
            recv(chs[1]) -> v => take(1, v, &mut open),
            recv(chs[2]) -> v => take(2, v, &mut open),
            recv(chs[3]) -> v => take(3, v, &mut open),
            send(out_case, next_out) -> _ => { next_out += 1 }
        }
    }
    out.close();
    assert_eq!(got, 4 * N);
    assert_eq!(sum, (4 * N) * (4 * N - 1) / 2);
    assert_eq!(consumer.join().expect("five-arms: consumer"), 99 * 100 / 2);
    assert_eq!(fired, [N; 4], "five-arms: values per producer");
}

/// Goroutines that all select over shared channels with sends, receives
/// and timeouts, leaving their loop from a select body: every value
/// arrives exactly once.
fn goroutines() {
    const WORKERS: u64 = 8;
    const PER: u64 = 400;
    let work = Chan::<u64>::new(4);
    let results = Chan::<u64>::new(4);
    let total = Arc::new(AtomicU64::new(0));
    let wg = WaitGroup::new();
    for w in 0..WORKERS {
        wg.add(1);
        let (work, results, wg) = (work.clone(), results.clone(), wg.clone());
        rt_sched::go(move || {
            loop {
                // Idle workers time out and look again.
                let v = select! {
                    recv(work) -> v => match v {
                        Ok(v) => v,
                        Err(RecvError) => break,
                    },
                    default(Duration::from_millis(1 + w % 3)) => continue,
                };
                select! {
                    send(results, v * 2) -> _ => {}
                    default(LONG) => panic!("goroutines: the collector stalled"),
                }
            }
            wg.done();
        });
    }
    let t = total.clone();
    let collector = rt_sched::spawn(move || {
        let mut n = 0;
        while let Some(v) = results.recv() {
            t.fetch_add(v, Ordering::Relaxed);
            n += 1;
            if n == WORKERS * PER {
                break;
            }
        }
        n
    });
    for i in 0..WORKERS * PER {
        select! {
            send(work, i) -> _ => {}
            default(LONG) => panic!("goroutines: no worker took work"),
        }
    }
    work.close();
    wg.wait();
    assert_eq!(
        collector.join().expect("goroutines: collector"),
        WORKERS * PER
    );
    let n = WORKERS * PER;
    assert_eq!(total.load(Ordering::Relaxed), n * (n - 1));
}

/// A select inside the body of another, in many goroutines at once.
fn nested() {
    let a = Chan::<u64>::new(0);
    let b = Chan::<u64>::new(0);
    let wg = WaitGroup::new();
    let sum = Arc::new(AtomicU64::new(0));
    for _ in 0..16 {
        wg.add(1);
        let (a, b, wg, sum) = (a.clone(), b.clone(), wg.clone(), sum.clone());
        rt_sched::go(move || {
            let x = select! {
                recv(a) -> x => select! {
                    recv(b) -> y => x.unwrap() + y.unwrap(),
                    default(LONG) => panic!("nested: b never came"),
                },
                default(LONG) => panic!("nested: a never came"),
            };
            sum.fetch_add(x, Ordering::Relaxed);
            wg.done();
        });
    }
    for i in 0..16 {
        a.send(i);
        b.send(100 * i);
    }
    wg.wait();
    assert_eq!(sum.load(Ordering::Relaxed), 101 * (15 * 16 / 2));
}

/// A send arm that fires on a closed channel panics, as Go's select does.
fn send_on_closed() {
    let c = Chan::<u32>::new(1);
    c.close();
    let c2 = c.clone();
    let h = rt_sched::spawn(move || {
        select! {
            send(c2, 1) -> _ => "sent",
            default => "default",
        }
    });
    let err = h.join().expect_err("send-on-closed: the select returned");
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert_eq!(msg, "send on closed channel");
}

/// `Debug`, `len`/`capacity`/`is_closed`/`is_full`, `try_recv`/`try_send`
/// and their errors, the iterators.
fn conventions() {
    let c = Chan::<u32>::new(3);
    assert_eq!(format!("{c:?}"), "Chan { len: 0, cap: 3, closed: false }");
    assert_eq!(c.try_recv(), Err(TryRecvError::Empty));
    c.try_send(1).expect("conventions: room");
    c.send(2);
    assert_eq!(
        (c.len(), c.capacity(), c.is_closed(), c.is_full()),
        (2, 3, false, false)
    );
    c.send(3);
    assert!(c.is_full());
    let e = c.try_send(4).expect_err("conventions: full");
    assert_eq!(e, TrySendError::Full(4));
    assert_eq!(e.to_string(), "sending on a full channel");
    c.close();
    assert_eq!(format!("{c:?}"), "Chan { len: 3, cap: 3, closed: true }");
    assert!(c.is_closed());
    assert_eq!(c.try_send(5), Err(TrySendError::Closed(5)));
    assert_eq!(c.try_recv(), Ok(1));
    assert_eq!(c.try_iter().collect::<Vec<_>>(), [2, 3]);
    assert_eq!(c.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(
        TryRecvError::Closed.to_string(),
        "receiving on a closed channel"
    );
    let u = Chan::<u32>::new(0);
    assert_eq!((u.len(), u.capacity(), u.is_full()), (0, 0, true));
    let tx = u.clone();
    rt_sched::go(move || {
        for i in 1..=10 {
            tx.send(i);
        }
        tx.close();
    });
    assert_eq!(u.into_iter().sum::<u32>(), 55);
}

/// `recv_timeout`: a value that comes in time, a timeout, a close.
fn recv_timeout() {
    let c = Chan::<u32>::new(0);
    assert_eq!(
        c.recv_timeout(Duration::from_millis(10)),
        Err(RecvTimeoutError::Timeout)
    );
    let tx = c.clone();
    rt_sched::go(move || {
        rt_sched::sleep(Duration::from_millis(2));
        tx.send(3);
        tx.close();
    });
    assert_eq!(c.recv_timeout(LONG), Ok(3));
    assert_eq!(c.recv_timeout(LONG), Err(RecvTimeoutError::Closed));
    assert_eq!(
        RecvTimeoutError::Timeout.to_string(),
        "timed out waiting on a receive"
    );
}
