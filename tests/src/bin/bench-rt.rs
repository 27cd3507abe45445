//! `bench-rt`: rt's side of the scheduler workloads for `cargo xtask bench`.
//!
//! `bench-rt <workload> [n=N] [gomaxprocs=P]` does the work once and prints
//! `value=<x> unit=<u>` (the harness sets GOMAXPROCS in the environment).
//! Entered at `_rt0_amd64`, like rt-demo.
#![no_main]

use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn arg(name: &str, default: u64) -> u64 {
    for a in rt_entry::args().iter().skip(2) {
        let a = a.as_bytes();
        if let Some(v) = a
            .strip_prefix(name.as_bytes())
            .and_then(|r| r.strip_prefix(b"="))
        {
            if let Some(n) = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()) {
                return n;
            }
        }
    }
    default
}

fn report(ns: f64, unit: &str) -> i32 {
    println!("value={ns:.2} unit={unit}");
    0
}

/// Go's program, line for line: each goroutine bumps a shared counter and
/// the last one closes a channel the main goroutine waits on. The counter
/// and channel live for the whole process (Go's closures capture pointers;
/// no reference counting per goroutine).
fn spawn(n: u64) -> i32 {
    let count: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let done: &'static rt_sched::Chan<()> = Box::leak(Box::new(rt_sched::Chan::new(0)));
    let t0 = Instant::now();
    for _ in 0..n {
        rt_sched::go(move || {
            if count.fetch_add(1, Ordering::AcqRel) + 1 == n {
                done.close();
            }
        });
    }
    done.recv();
    let el = t0.elapsed().as_nanos() as f64;
    assert_eq!(count.load(Ordering::Relaxed), n);
    report(el / n as f64, "ns")
}

fn pingpong(n: u64) -> i32 {
    let ping = rt_sched::Chan::<u64>::new(0);
    let pong = rt_sched::Chan::<u64>::new(0);
    let (pi, po) = (ping.clone(), pong.clone());
    rt_sched::go(move || {
        while let Some(v) = pi.recv() {
            po.send(v);
        }
    });
    let t0 = Instant::now();
    for i in 0..n {
        ping.send(i);
        pong.recv();
    }
    let el = t0.elapsed().as_nanos() as f64;
    ping.close();
    report(el / n as f64, "ns")
}

fn yield_(n: u64) -> i32 {
    let wg = rt_sched::WaitGroup::new();
    wg.add(2);
    let t0 = Instant::now();
    for _ in 0..2 {
        let wg = wg.clone();
        rt_sched::go(move || {
            for _ in 0..n {
                rt_sched::gosched();
            }
            wg.done();
        });
    }
    wg.wait();
    let el = t0.elapsed().as_nanos() as f64;
    report(el / (2 * n) as f64, "ns")
}

/// Two goroutines handing the M back and forth with `yield_to`: one inline
/// save-and-jump per switch (no trip through g0), no queues, no locks.
///
/// B parks itself (in no queue); A waits until B is parked, then A and B
/// switch straight to each other `n` times each.
fn switch(n: u64) -> i32 {
    use std::sync::atomic::AtomicPtr;
    static GB: AtomicPtr<rt_sched::boot::G> = AtomicPtr::new(std::ptr::null_mut());
    static GA: AtomicPtr<rt_sched::boot::G> = AtomicPtr::new(std::ptr::null_mut());
    let done = rt_sched::Chan::<f64>::new(1);
    rt_sched::go(move || {
        rt_tests::park_for_yield_to(&GB, "switch bench");
        for _ in 0..n {
            // SAFETY: A is suspended in yield_to and waits for exactly this.
            unsafe { rt_sched::boot::yield_to(GA.load(Ordering::Acquire)) };
        }
        // Left runnable in no queue; the process exits after A reports.
    });
    let d = done.clone();
    rt_sched::go(move || {
        GA.store(rt_sched::boot::current_g(), Ordering::Release);
        let b = rt_tests::wait_parked(&GB);
        let t0 = Instant::now();
        for _ in 0..n {
            // SAFETY: B is parked (first time) or suspended in yield_to.
            unsafe { rt_sched::boot::yield_to(b) };
        }
        d.send(t0.elapsed().as_nanos() as f64);
    });
    let el = done.recv().unwrap_or(0.0);
    report(el / (2 * n) as f64, "ns")
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn parked(n: u64) -> i32 {
    let release = rt_sched::Chan::<()>::new(0);
    let parked = Arc::new(AtomicU64::new(0));
    let wg = rt_sched::WaitGroup::new();
    let before = rss_bytes();
    for _ in 0..n {
        wg.add(1);
        let (r, p, wg) = (release.clone(), parked.clone(), wg.clone());
        rt_sched::go(move || {
            p.fetch_add(1, Ordering::Relaxed);
            r.recv();
            wg.done();
        });
    }
    while parked.load(Ordering::Relaxed) < n {
        rt_sched::sleep(std::time::Duration::from_millis(1));
    }
    // Every goroutine is parked in recv (or about to be): let them settle.
    rt_sched::sleep(std::time::Duration::from_millis(20));
    let after = rss_bytes();
    release.close();
    wg.wait();
    report(after.saturating_sub(before) as f64 / n as f64, "B")
}

fn main() -> i32 {
    let args = rt_entry::args();
    let w = args.get(1).map(|a| a.as_bytes()).unwrap_or(b"");
    match w {
        b"boot" => {
            println!("hello, world");
            0
        }
        b"spawn" => spawn(arg("n", 1_000_000)),
        b"pingpong" => pingpong(arg("n", 1_000_000)),
        b"yield" => yield_(arg("n", 1_000_000)),
        b"switch" => switch(arg("n", 1_000_000)),
        b"parked" => parked(arg("n", 100_000)),
        _ => {
            println!(
                "value=none reason=unknown workload {:?}",
                String::from_utf8_lossy(w)
            );
            2
        }
    }
}

rt_entry::main!(main);
