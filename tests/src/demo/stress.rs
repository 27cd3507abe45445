//! Scheduler torture scenarios: each once hung or crashed the runtime (lost
//! wake-ups around locked goroutines, a torn `allp`, concurrent
//! stop-the-world, blocking calls from locked goroutines, goroutines readied
//! by plain threads, contended selects). Each prints one `ok` line.

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

/// GOMAXPROCS cycles 1..=4 while goroutines sleep on timers.
pub fn gmptimer(n: u64) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..4 {
        let st = stop.clone();
        rt_sched::go(move || {
            while !st.load(Ordering::Relaxed) {
                rt_sched::sleep(Duration::from_micros(20));
            }
        });
    }
    for i in 0..n {
        rt_sched::set_gomaxprocs(1 + (i % 4) as i32);
        rt_sched::sleep(Duration::from_micros(30));
    }
    stop.store(true, Ordering::Relaxed);
    println!("gmptimer ok {n}");
    0
}

/// Two goroutines change GOMAXPROCS at the same time.
pub fn gmp2(n: u64) -> i32 {
    let wg = rt_sched::WaitGroup::new();
    for k in 0..2u64 {
        wg.add(1);
        let wg = wg.clone();
        rt_sched::go(move || {
            for i in 0..n {
                rt_sched::set_gomaxprocs(1 + ((i + k) % 2) as i32 + k as i32);
                rt_sched::gosched();
            }
            wg.done();
        });
    }
    wg.wait();
    println!("gmp2 ok {n}");
    0
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

/// A plain std thread ping-pongs with a goroutine; a sleeping goroutine
/// keeps a timer pending (so only a lost wake-up would make a round trip
/// last until the timer fires). Prints whether any round trip took that
/// long.
pub fn foreignlat(n: u64) -> i32 {
    rt_sched::go(|| loop {
        rt_sched::sleep(Duration::from_secs(1));
    });
    let c = Chan::<u64>::new(0);
    let r = Chan::<u64>::new(0);
    let (c2, r2) = (c.clone(), r.clone());
    let t = std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        for i in 0..n {
            let t0 = std::time::Instant::now();
            c2.send(i);
            r2.recv();
            worst = worst.max(t0.elapsed());
        }
        worst
    });
    for _ in 0..n {
        let v = c.recv().expect("value");
        r.send(v);
    }
    let worst = t.join().expect("foreign thread");
    println!(
        "foreignlat ok {n} stalled={}",
        worst >= Duration::from_millis(500)
    );
    0
}

/// Many selects over six channels with a contending sender on each.
pub fn selstress(n: u64) -> i32 {
    let chans: Vec<Chan<u64>> = (0..6).map(|_| Chan::new(0)).collect();
    let wg = rt_sched::WaitGroup::new();
    for c in chans.iter().cloned() {
        let wg = wg.clone();
        wg.add(1);
        rt_sched::go(move || {
            for i in 0..n {
                c.send(i);
            }
            wg.done();
        });
    }
    let chs = chans.clone();
    let h = rt_sched::spawn(move || {
        let mut got = 0u64;
        while got < 6 * n {
            let mut s = rt_sched::Select::new();
            let toks: Vec<_> = chs.iter().map(|c| s.recv(c)).collect();
            let i = s.select();
            let _ = s.received(toks[i]);
            got += 1;
        }
        got
    });
    let got = h.join().expect("selecting goroutine");
    wg.wait();
    println!("selstress ok {got}");
    0
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
