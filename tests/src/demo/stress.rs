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
