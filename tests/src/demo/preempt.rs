//! Asynchronous preemption scenarios (`rt_sched::preempt`).
//!
//! * `hog`: a goroutine spins without ever entering the runtime while the
//!   main goroutine ticks 100 times, 1 ms apart. Every tick must come within
//!   30 ms of the previous one (the hog is preempted after 10 ms), and the
//!   hog must have stayed on its thread: the same `gettid()` and the same
//!   `thread_local!` address before and after.
//! * `stdoutlock`: a goroutine holds `std::io::stdout().lock()` and spins
//!   (preempted while holding a thread-affine lock) while others `println!`:
//!   no deadlock and no torn line.

use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

std::thread_local! {
    static MARK: Cell<u64> = const { Cell::new(0) };
}

fn tls_addr() -> usize {
    MARK.with(|m| m as *const Cell<u64> as usize)
}

/// Spins until `stop`, entering no runtime code; returns the iterations.
#[inline(never)]
fn spin(stop: &AtomicBool) -> u64 {
    let mut x = 0u64;
    while !stop.load(Ordering::Relaxed) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

pub fn hog() -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let (s2, st2) = (stop.clone(), started.clone());
    let h = rt_sched::spawn(move || {
        let (tid0, tls0) = (rt_sys::gettid(), tls_addr());
        st2.store(true, Ordering::Release);
        std::hint::black_box(spin(&s2));
        (tid0 == rt_sys::gettid(), tls0 == tls_addr())
    });
    while !started.load(Ordering::Acquire) {
        rt_sched::sleep(Duration::from_millis(1));
    }
    let mut max_gap = Duration::ZERO;
    let mut last = Instant::now();
    for _ in 0..100 {
        rt_sched::sleep(Duration::from_millis(1));
        let now = Instant::now();
        max_gap = max_gap.max(now - last);
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let (same_tid, same_tls) = h.join().unwrap_or((false, false));
    let ok = max_gap < Duration::from_millis(30) && same_tid && same_tls;
    println!(
        "hog {} ticks=100 gap<30ms={} same_tid={same_tid} same_tls={same_tls}",
        if ok { "ok" } else { "FAILED" },
        max_gap < Duration::from_millis(30)
    );
    if !ok {
        eprintln!("hog: longest gap {max_gap:?}");
    }
    i32::from(!ok)
}

pub fn stdoutlock() -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let locked = Arc::new(AtomicBool::new(false));
    let (s2, l2) = (stop.clone(), locked.clone());
    let holder = rt_sched::spawn(move || {
        let out = std::io::stdout();
        let mut l = out.lock();
        let _ = writeln!(l, "holder has the lock");
        l2.store(true, Ordering::Release);
        // Spin while holding it, long enough to be preempted several times.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(60) {
            std::hint::black_box(spin_for(&s2, 10_000));
        }
        let _ = writeln!(l, "holder lets go");
    });
    while !locked.load(Ordering::Acquire) {
        rt_sched::gosched();
    }
    let lines = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();
    for i in 0..4 {
        let lines = lines.clone();
        hs.push(rt_sched::spawn(move || {
            for j in 0..5 {
                println!("printer {i} line {j} {}", "x".repeat(40));
                lines.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let _ = holder.join();
    for h in hs {
        let _ = h.join();
    }
    stop.store(true, Ordering::Relaxed);
    println!("stdoutlock ok lines={}", lines.load(Ordering::Relaxed));
    0
}

/// Spins `n` rounds (or until `stop`).
#[inline(never)]
fn spin_for(stop: &AtomicBool, n: u64) -> u64 {
    let mut x = 0u64;
    for _ in 0..n {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        x = std::hint::black_box(x.wrapping_add(1));
    }
    x
}
