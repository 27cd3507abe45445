//! Scheduler torture scenarios: each once hung or crashed the runtime (lost
//! wake-ups around locked goroutines, a torn `allp`, concurrent
//! stop-the-world, blocking calls from locked goroutines, goroutines readied
//! by plain threads, contended selects). Each prints one `ok` line when
//! its checks pass; the scenarios that check more than completion print a
//! `FAILED` line saying what was wrong, and exit 1, otherwise.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rt_sched::Chan;

/// A goroutine locked to its thread ping-pongs with an unlocked one.
pub fn lockpp(n: u64) -> i32 {
    let a = Chan::<u64>::new(0);
    let b = Chan::<u64>::new(0);
    let (a2, b2) = (a.clone(), b.clone());
    rt_sched::go(move || {
        while let Some(v) = a2.recv() {
            b2.send(v + 1);
        }
    });
    let h = rt_sched::spawn(move || {
        rt_sched::lock_os_thread();
        for i in 0..n {
            a.send(i);
            assert_eq!(b.recv(), Some(i + 1));
        }
        a.close();
        rt_sched::unlock_os_thread();
    });
    h.join().expect("locked ping-pong");
    println!("lockpp ok {n}");
    0
}

/// GOMAXPROCS cycles 1..=4 while goroutines sleep on timers. Checks that
/// every sleeper woke from its timer at least once while the changes were
/// going on (each counts those wake-ups) and once more to see the stop
/// flag and finish (a timer lost in a change is a hang, which the tests
/// bound), that each change returned the value set before it, and that
/// the final GOMAXPROCS is the last value set. Prints how many changes
/// returned the expected value.
pub fn gmptimer(n: u64) -> i32 {
    const SLEEPERS: usize = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let started = rt_sched::WaitGroup::new();
    let finished = rt_sched::WaitGroup::new();
    let wakes: Arc<Vec<AtomicU64>> = Arc::new((0..SLEEPERS).map(|_| AtomicU64::new(0)).collect());
    for k in 0..SLEEPERS {
        let (st, wakes, started, finished) = (
            stop.clone(),
            wakes.clone(),
            started.clone(),
            finished.clone(),
        );
        started.add(1);
        finished.add(1);
        rt_sched::go(move || {
            started.done();
            loop {
                rt_sched::sleep(Duration::from_micros(20));
                if st.load(Ordering::Relaxed) {
                    break;
                }
                wakes[k].fetch_add(1, Ordering::Relaxed);
            }
            finished.done();
        });
    }
    // Every sleeper has started before the first change, so each sleeps
    // on its timers while GOMAXPROCS changes.
    started.wait();
    let mut prev = rt_sched::gomaxprocs();
    let mut matched = 0u64;
    let mut last = prev;
    for i in 0..n {
        last = 1 + (i % 4) as i32;
        let old = rt_sched::set_gomaxprocs(last);
        if old == prev {
            matched += 1;
        } else {
            eprintln!("gmptimer: change {i} to {last} returned {old}, not {prev}");
        }
        prev = last;
        rt_sched::sleep(Duration::from_micros(30));
    }
    stop.store(true, Ordering::Relaxed);
    finished.wait();
    let wakes: Vec<u64> = wakes.iter().map(|w| w.load(Ordering::Relaxed)).collect();
    let now = rt_sched::gomaxprocs();
    if matched == n && now == last && wakes.iter().all(|&w| w > 0) {
        println!("gmptimer ok {matched}");
        0
    } else {
        println!(
            "gmptimer FAILED changes_as_expected={matched}/{n} gomaxprocs={now} (last set {last}) wakes={wakes:?}"
        );
        1
    }
}

/// Two goroutines change GOMAXPROCS at the same time: changer 0 sets 1 or
/// 2, changer 1 sets 2 or 3, in turns. Every value a change returns must be
/// the starting value or one some changer set; once both are done,
/// GOMAXPROCS must be the last value one of them set. Prints the number of
/// changes each made (both make `n`).
pub fn gmp2(n: u64) -> i32 {
    let initial = rt_sched::gomaxprocs();
    let value = |k: u64, i: u64| 1 + ((i + k) % 2) as i32 + k as i32;
    let hs: Vec<_> = (0..2u64)
        .map(|k| {
            rt_sched::spawn(move || {
                let (mut made, mut strange) = (0u64, Vec::new());
                for i in 0..n {
                    let old = rt_sched::set_gomaxprocs(value(k, i));
                    made += 1;
                    if !(old == initial || (1..=3).contains(&old)) && strange.len() < 8 {
                        strange.push(old);
                    }
                    rt_sched::gosched();
                }
                (made, strange)
            })
        })
        .collect();
    let results: Vec<_> = hs
        .into_iter()
        .map(|h| h.join().expect("GOMAXPROCS changer"))
        .collect();
    let now = rt_sched::gomaxprocs();
    let finals = [value(0, n.saturating_sub(1)), value(1, n.saturating_sub(1))];
    let counts_ok = results.iter().all(|(made, _)| *made == n);
    let strange: Vec<i32> = results.iter().flat_map(|(_, s)| s.clone()).collect();
    let final_ok = n == 0 || finals.contains(&now);
    if counts_ok && strange.is_empty() && final_ok {
        println!("gmp2 ok {}", results[0].0);
        0
    } else {
        println!(
            "gmp2 FAILED changes={:?} unexpected_old_values={strange:?} gomaxprocs={now} (want one of {finals:?})",
            results.iter().map(|(m, _)| *m).collect::<Vec<_>>()
        );
        1
    }
}

/// A locked goroutine makes blocking calls while others keep every P busy.
pub fn lockblock(n: u64) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let wg = rt_sched::WaitGroup::new();
    for _ in 0..4 {
        let (stop, wg) = (stop.clone(), wg.clone());
        wg.add(1);
        rt_sched::go(move || {
            while !stop.load(Ordering::Relaxed) {
                rt_sched::gosched();
            }
            wg.done();
        });
    }
    let cnt = Arc::new(AtomicU64::new(0));
    let c2 = cnt.clone();
    let h = rt_sched::spawn(move || {
        rt_sched::lock_os_thread();
        let me = rt_sched::mid();
        for _ in 0..n {
            rt_sched::blocking(|| std::thread::sleep(Duration::from_micros(200)));
            assert_eq!(rt_sched::mid(), me, "locked goroutine moved");
            c2.fetch_add(1, Ordering::Relaxed);
        }
        rt_sched::unlock_os_thread();
    });
    h.join().expect("locked blocking goroutine");
    stop.store(true, Ordering::Relaxed);
    wg.wait();
    println!("lockblock ok {}", cnt.load(Ordering::Relaxed));
    0
}

/// A plain std thread ping-pongs with a goroutine: it sends `i`, the
/// goroutine answers `i + 1`. A sleeping goroutine keeps a timer pending,
/// so a lost wake-up of either side shows up as a stall until the timer
/// fires rather than as a deadlock report; a wake-up lost for good is a
/// hang (the tests bound every run). Prints how many answers were right.
/// The slowest round trip goes to stderr for information only.
pub fn foreignlat(n: u64) -> i32 {
    rt_sched::go(|| loop {
        rt_sched::sleep(Duration::from_secs(1));
    });
    let c = Chan::<u64>::new(0);
    let r = Chan::<u64>::new(0);
    let (c2, r2) = (c.clone(), r.clone());
    let t = std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        let mut right = 0u64;
        for i in 0..n {
            let t0 = std::time::Instant::now();
            c2.send(i);
            if r2.recv() == Some(i + 1) {
                right += 1;
            }
            worst = worst.max(t0.elapsed());
        }
        (right, worst)
    });
    let mut answered = 0u64;
    for _ in 0..n {
        let v = c.recv().expect("value");
        r.send(v + 1);
        answered += 1;
    }
    let (right, worst) = t.join().expect("foreign thread");
    eprintln!("foreignlat: slowest round trip {worst:?}");
    if right == n && answered == n {
        println!("foreignlat ok {right}");
        0
    } else {
        println!("foreignlat FAILED right_answers={right} answered={answered} of {n}");
        1
    }
}

/// Marks value `v` (1-based) in `seen`; false if it was already there.
fn mark_once(seen: &[AtomicU64], v: u64) -> bool {
    let bit = 1u64 << (v % 64);
    seen[(v / 64) as usize].fetch_or(bit, Ordering::Relaxed) & bit == 0
}

/// Values `1..=count` marked in `seen`.
fn all_marked(seen: &[AtomicU64], count: u64) -> bool {
    (1..=count).all(|v| seen[(v / 64) as usize].load(Ordering::Relaxed) & (1u64 << (v % 64)) != 0)
}

fn bitset(count: u64) -> Arc<Vec<AtomicU64>> {
    Arc::new((0..count / 64 + 1).map(|_| AtomicU64::new(0)).collect())
}

/// Contended selects, in two phases, each over six channels with a sender
/// on each sending `n` distinct values (`1..=6n` in all):
///
/// 1. one goroutine selects over all six (receive cases only);
/// 2. three forwarders select at once over the same six (three unbuffered,
///    three buffered) plus, while holding a value, a send case on an
///    unbuffered output channel, and a short timer; senders close their
///    channel when done, a forwarder stops once it has seen all six
///    closed, and the output is closed after the last forwarder; two
///    collectors drain the output until it is closed.
///
/// In both phases every value must be received exactly once (a bit per
/// value). Prints the number of values each phase accounted for.
pub fn selstress(n: u64) -> i32 {
    let one = selstress_one(n);
    let fwd = selstress_forward(n);
    if one == 6 * n && fwd == 6 * n {
        println!("selstress ok {one}");
        0
    } else {
        println!(
            "selstress FAILED one_selector={one} forwarders={fwd} want={}",
            6 * n
        );
        1
    }
}

/// Phase 1 of [`selstress`]: one selector, receive cases only. Returns the
/// number of distinct values received (0 if any arrived twice).
fn selstress_one(n: u64) -> u64 {
    let chans: Vec<Chan<u64>> = (0..6).map(|_| Chan::new(0)).collect();
    let wg = rt_sched::WaitGroup::new();
    for (k, c) in chans.iter().cloned().enumerate() {
        let wg = wg.clone();
        wg.add(1);
        rt_sched::go(move || {
            for i in 0..n {
                c.send(k as u64 * n + i + 1);
            }
            wg.done();
        });
    }
    let seen = bitset(6 * n);
    let (chs, sn) = (chans.clone(), seen.clone());
    let h = rt_sched::spawn(move || {
        let (mut got, mut twice) = (0u64, 0u64);
        while got < 6 * n {
            let mut s = rt_sched::Select::new();
            let toks: Vec<_> = chs.iter().map(|c| s.recv(c)).collect();
            let i = s.select();
            match s.received(toks[i]) {
                Some(v) if mark_once(&sn, v) => got += 1,
                _ => twice += 1,
            }
            if twice > 0 {
                break;
            }
        }
        got
    });
    let got = h.join().expect("selecting goroutine");
    wg.wait();
    if got == 6 * n && all_marked(&seen, 6 * n) {
        got
    } else {
        eprintln!(
            "selstress: one selector got {got} distinct values of {}",
            6 * n
        );
        0
    }
}

/// Phase 2 of [`selstress`]: several forwarders contending with receive
/// and send cases, a timer case and closes. Returns the number of distinct
/// values the collectors received (0 if any arrived twice).
fn selstress_forward(n: u64) -> u64 {
    const FORWARDERS: usize = 3;
    const COLLECTORS: usize = 2;
    let inputs: Vec<Chan<u64>> = (0..6)
        .map(|k| Chan::new(if k % 2 == 0 { 0 } else { 3 }))
        .collect();
    let out = Chan::<u64>::new(0);
    for (k, c) in inputs.iter().cloned().enumerate() {
        rt_sched::go(move || {
            for i in 0..n {
                c.send(k as u64 * n + i + 1);
            }
            c.close();
        });
    }
    let forwarders = rt_sched::WaitGroup::new();
    let timer_fires = Arc::new(AtomicU64::new(0));
    for f in 0..FORWARDERS {
        let (inputs, out, wg, fires) = (
            inputs.clone(),
            out.clone(),
            forwarders.clone(),
            timer_fires.clone(),
        );
        wg.add(1);
        rt_sched::go(move || {
            let mut open = [true; 6];
            let mut held: Option<u64> = None;
            let mut round = 0u64;
            while held.is_some() || open.iter().any(|&o| o) {
                round += 1;
                // A fresh short timer every few rounds: its case competes
                // with the channels and must never lose or invent a value.
                let timer =
                    (round % 4 == f as u64).then(|| rt_sched::after(Duration::from_micros(50)));
                let mut s = rt_sched::Select::new();
                // Take a new value only while not holding one.
                let recvs: Vec<_> = inputs
                    .iter()
                    .enumerate()
                    .map(|(k, c)| (held.is_none() && open[k]).then(|| s.recv(c)))
                    .collect();
                let send = held.map(|v| s.send(&out, v));
                let tick = timer.as_ref().map(|t| s.recv(t));
                let i = s.select();
                if send == Some(i) {
                    held = None;
                } else if tick.is_some_and(|t| t.index == i) {
                    fires.fetch_add(1, Ordering::Relaxed);
                } else if let Some((k, tok)) = recvs
                    .iter()
                    .enumerate()
                    .find_map(|(k, t)| t.filter(|t| t.index == i).map(|t| (k, t)))
                {
                    match s.received(tok) {
                        Some(v) => held = Some(v),
                        None => open[k] = false,
                    }
                }
            }
            wg.done();
        });
    }
    let seen = bitset(6 * n);
    let (count, twice) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let collectors = rt_sched::WaitGroup::new();
    for _ in 0..COLLECTORS {
        let (out, seen, count, twice, wg) = (
            out.clone(),
            seen.clone(),
            count.clone(),
            twice.clone(),
            collectors.clone(),
        );
        wg.add(1);
        rt_sched::go(move || {
            for v in out.iter() {
                if mark_once(&seen, v) {
                    count.fetch_add(1, Ordering::Relaxed);
                } else {
                    twice.fetch_add(1, Ordering::Relaxed);
                }
            }
            wg.done();
        });
    }
    forwarders.wait();
    out.close();
    collectors.wait();
    let (count, twice) = (count.load(Ordering::Relaxed), twice.load(Ordering::Relaxed));
    eprintln!(
        "selstress: forwarders' timer case fired {} times",
        timer_fires.load(Ordering::Relaxed)
    );
    if twice == 0 && count == 6 * n && all_marked(&seen, 6 * n) {
        count
    } else {
        eprintln!(
            "selstress: forwarders delivered {count} distinct values of {}, {twice} twice",
            6 * n
        );
        0
    }
}

/// Which extra operations `selectstorm` mixes in.
#[derive(Clone, Copy, Default)]
struct StormFeatures {
    /// Each receiver's select also waits on a fresh `after(2ms)`.
    after: bool,
    /// Senders send through a two-case select instead of plain sends.
    selsend: bool,
    /// Senders take a shared `Mutex` now and then and yield.
    mutex: bool,
    /// Senders sleep now and then.
    sleep: bool,
    /// A goroutine keeps changing GOMAXPROCS.
    flip: bool,
    /// Goroutines read the environment (std's lock, allocation).
    env: bool,
}

/// Eight senders and six receivers that select over an unbuffered channel,
/// a buffered one, a quit channel and a timer (or an idle channel), in five
/// rounds. Every value must arrive exactly once; the line printed is the
/// number of values and their sum. This was the program of the P0 report:
/// with the allocator's cache reached through a kept thread-local address it
/// crashed or hung in most runs at GOMAXPROCS=2.
pub fn selectstorm(args: &[&std::ffi::OsStr]) -> i32 {
    let mut f = StormFeatures::default();
    if let Some(list) = args.first().and_then(|a| a.to_str()) {
        for w in list.split(',').filter(|w| !w.is_empty()) {
            match w {
                "after" => f.after = true,
                "selsend" => f.selsend = true,
                "mutex" => f.mutex = true,
                "sleep" => f.sleep = true,
                "flip" => f.flip = true,
                "env" => f.env = true,
                "all" => {
                    f = StormFeatures {
                        after: true,
                        selsend: true,
                        mutex: true,
                        sleep: true,
                        flip: true,
                        env: true,
                    }
                }
                other => {
                    eprintln!("selectstorm: unknown feature {other:?}");
                    return 2;
                }
            }
        }
    }
    let (mut count, mut sum) = (0u64, 0u64);
    for round in 0..5 {
        let (c, s) = storm_round(f, round);
        count += c;
        sum += s;
    }
    println!("selectstorm ok {count} {sum}");
    0
}

fn storm_round(f: StormFeatures, seed: u64) -> (u64, u64) {
    use rt_sched::{Mutex, Select, WaitGroup};
    const N: u64 = 3000;
    const SENDERS: u64 = 8;
    let unbuf: Chan<u64> = Chan::new(0);
    let buf: Chan<u64> = Chan::new(17);
    let quit: Chan<()> = Chan::new(0);
    // One bit per value: set by the receiver that got it.
    let words = (SENDERS * N / 64 + 1) as usize;
    let mut bits = Vec::with_capacity(words);
    bits.resize_with(words, || AtomicU64::new(0));
    let seen: Arc<Vec<AtomicU64>> = Arc::new(bits);
    let count = Arc::new(AtomicU64::new(0));
    let sum = Arc::new(AtomicU64::new(0));
    let m = Arc::new(Mutex::new(0u64));
    let senders = WaitGroup::new();
    for p in 0..SENDERS {
        let (u, b, m) = (unbuf.clone(), buf.clone(), m.clone());
        senders.add(1);
        let done = senders.clone();
        rt_sched::go(move || {
            for i in 0..N {
                let v = p * N + i + 1;
                if f.env && std::env::var_os("RT_SELECTSTORM_UNSET").is_some() {
                    println!("?");
                }
                if f.selsend {
                    let mut s = Select::new();
                    s.send(&u, v);
                    s.send(&b, v);
                    s.select();
                } else if v % 2 == 0 {
                    u.send(v)
                } else {
                    b.send(v)
                }
                if f.mutex && (i + seed) % 97 == 0 {
                    *m.lock() += 1;
                    rt_sched::gosched();
                }
                if f.sleep && (i + seed) % 1009 == 0 {
                    rt_sched::sleep(Duration::from_micros(50));
                }
            }
            done.done();
        });
    }
    let cons = WaitGroup::new();
    for _ in 0..6 {
        cons.add(1);
        let (u, b, q) = (unbuf.clone(), buf.clone(), quit.clone());
        let (seen, count, sum, cons) = (seen.clone(), count.clone(), sum.clone(), cons.clone());
        rt_sched::go(move || {
            let keep: Chan<()> = Chan::new(0);
            loop {
                if f.env && std::env::var_os("RT_SELECTSTORM_UNSET").is_some() {
                    println!("?");
                }
                let t = if f.after {
                    rt_sched::after(Duration::from_millis(2))
                } else {
                    keep.clone()
                };
                let mut s = Select::new();
                let a = s.recv(&u);
                let b2 = s.recv(&b);
                let qq = s.recv(&q);
                let _tt = s.recv(&t);
                let i = s.select();
                let v = if i == a.index {
                    s.received(a)
                } else if i == b2.index {
                    s.received(b2)
                } else if i == qq.index {
                    break;
                } else {
                    continue;
                };
                let v = v.expect("senders never close their channels");
                let bit = 1u64 << (v % 64);
                let old = seen[(v / 64) as usize].fetch_or(bit, Ordering::Relaxed);
                assert!(old & bit == 0, "value {v} received twice");
                sum.fetch_add(v, Ordering::Relaxed);
                count.fetch_add(1, Ordering::Relaxed);
            }
            cons.done();
        });
    }
    let flipper = f.flip.then(|| {
        rt_sched::spawn(move || {
            let procs = rt_sched::gomaxprocs();
            for k in 0..20u64 {
                rt_sched::set_gomaxprocs(1 + ((k + seed) % 3) as i32);
                rt_sched::sleep(Duration::from_micros(200));
            }
            rt_sched::set_gomaxprocs(procs);
        })
    });
    senders.wait();
    // Every value was handed to a receiver (unbuffered) or is in the buffer;
    // the receivers drain the buffer before quit can win: quit is only
    // closed once the count is complete.
    while count.load(Ordering::Relaxed) < SENDERS * N {
        rt_sched::sleep(Duration::from_micros(100));
    }
    quit.close();
    cons.wait();
    if let Some(h) = flipper {
        h.join().expect("GOMAXPROCS flipper");
    }
    let total = SENDERS * N;
    assert_eq!(count.load(Ordering::Relaxed), total, "values lost");
    (total, sum.load(Ordering::Relaxed))
}
