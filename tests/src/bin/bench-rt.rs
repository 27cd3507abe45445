//! `bench-rt`: rt's side of the scheduler workloads for `cargo xtask bench`.
//!
//! `bench-rt <workload> [n=N] [gomaxprocs=P] [workers=W] [cap=C]` does the
//! work once and prints `value=<x> unit=<u>` (the harness sets GOMAXPROCS in
//! the environment; `workers` and `cap` are `fanout`'s).
//! `serve-echo` and `serve-http` are the network workloads' servers: the
//! rt-net examples' own code, on a free loopback port printed as
//! `listening=<addr>`, serving until killed.
//! Entered at `_rt0_amd64`, like rt-demo.
#![no_main]

#[path = "../../../rt-net/examples/echo/server.rs"]
mod echo_server;
#[path = "../../../rt-net/examples/http/server.rs"]
#[allow(dead_code)]
mod http_server;

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

/// Prints a `value=none` line for bad input; the status for `main`.
fn bad(reason: &str) -> i32 {
    println!("value=none reason={reason}");
    2
}

/// One Skynet node: a leaf sends its number; an inner node starts its ten
/// children on one unbuffered channel, sums what they send and sends the sum
/// up. Go's program, line for line.
fn skynet(up: rt_sched::Chan<u64>, num: u64, size: u64) {
    if size == 1 {
        up.send(num);
        return;
    }
    let rc = rt_sched::Chan::<u64>::new(0);
    let step = size / 10;
    for i in 0..10 {
        let rc = rc.clone();
        rt_sched::go(move || skynet(rc, num + i * step, step));
    }
    let mut sum = 0u64;
    for _ in 0..10 {
        sum += rc.recv().unwrap_or(0);
    }
    up.send(sum);
}

/// Skynet: a tree of `leaves` leaf goroutines (a power of ten), ten children
/// per node; ns per goroutine created (1 + 10 + … + leaves, root included).
fn tree(leaves: u64) -> i32 {
    // Powers of ten up to 10^8 leaves, as the other impls accept.
    let (mut level, mut nodes) = (1u64, 1u64);
    while level < leaves && level < 100_000_000 {
        level *= 10;
        nodes += level;
    }
    if level != leaves {
        return bad(&format!(
            "tree n={leaves} is not a power of 10 up to 100000000"
        ));
    }
    let c = rt_sched::Chan::<u64>::new(0);
    let t0 = Instant::now();
    let up = c.clone();
    rt_sched::go(move || skynet(up, 0, leaves));
    let sum = c.recv();
    let el = t0.elapsed().as_nanos() as f64;
    let want = leaves.wrapping_mul(leaves - 1) / 2;
    if sum != Some(want) {
        return bad(&format!("tree sum {sum:?}, expected {want}"));
    }
    report(el / nodes as f64, "ns")
}

/// One producer sends `0..n` over a channel of capacity `cap` to `workers`
/// goroutines, which send `2v + 1` on to the collector (the main goroutine)
/// over a second channel of the same capacity; ns per message.
fn fanout(n: u64, workers: u64, cap: u64) -> i32 {
    if workers == 0 || workers > 1024 || cap == 0 || cap > 1 << 20 {
        return bad("workers must be in 1..=1024 and cap in 1..=1048576");
    }
    let input = rt_sched::Chan::<u64>::new(cap as usize);
    let output = rt_sched::Chan::<u64>::new(cap as usize);
    let t0 = Instant::now();
    let tx = input.clone();
    rt_sched::go(move || {
        for i in 0..n {
            tx.send(i);
        }
        tx.close();
    });
    for _ in 0..workers {
        let (rx, tx) = (input.clone(), output.clone());
        rt_sched::go(move || {
            for v in &rx {
                tx.send(v.wrapping_mul(2).wrapping_add(1));
            }
        });
    }
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(output.recv().unwrap_or(0));
    }
    let el = t0.elapsed().as_nanos() as f64;
    if sum != n.wrapping_mul(n) {
        return bad(&format!("fanout sum {sum}, expected {}", n.wrapping_mul(n)));
    }
    report(el / n as f64, "ns")
}

/// Serves on a free loopback port with `serve` (an example's server).
fn serve(serve: fn(&rt_net::TcpListener) -> std::io::Result<()>) -> i32 {
    let l = match rt_net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => return bad(&format!("bind: {e}")),
    };
    match l.local_addr() {
        Ok(a) => println!("listening={a}"),
        Err(e) => return bad(&format!("local_addr: {e}")),
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    match serve(&l) {
        Ok(()) => 0,
        Err(e) => bad(&format!("serve: {e}")),
    }
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
        b"tree" => tree(arg("n", 1_000_000)),
        b"fanout" => fanout(arg("n", 10_000_000), arg("workers", 4), arg("cap", 128)),
        b"serve-echo" => serve(echo_server::serve),
        b"serve-http" => serve(http_server::serve),
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
