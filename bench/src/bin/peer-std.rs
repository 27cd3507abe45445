//! `peer-std`: the `std-thread` impl — OS threads from `std::thread` standing in for goroutines.
//!
//! Workloads: `boot` (a plain Rust hello), `spawn` (threads that each bump an atomic; the last
//! one signals the main thread), `pingpong` (two threads over rendezvous channels), `yield`
//! (two threads calling `sched_yield` on one CPU). `gomaxprocs=k` limits the process to `k`
//! CPUs by affinity, the nearest OS-thread meaning of Go's knob.

use rt_bench::kernels::limit_cpus;
use rt_bench::proto::{emit, fail, not_applicable, Args};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Instant;

fn main() {
    let a = Args::from_env();
    if a.keys.contains_key("gomaxprocs") {
        let p = a.count_or_exit("gomaxprocs", 1);
        if let Err(e) = limit_cpus(p as usize) {
            fail(&e);
        }
    }
    match a.workload.as_str() {
        "boot" => println!("hello from std"),
        "spawn" => spawn(a.count_or_exit("n", 10_000)),
        "pingpong" => pingpong(a.count_or_exit("n", 50_000)),
        "yield" => {
            if let Err(e) = limit_cpus(1) {
                fail(&e);
            }
            yields(a.count_or_exit("n", 100_000))
        }
        w => not_applicable(w, "peer-std"),
    }
}

fn spawn(n: u64) {
    let count = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let t0 = Instant::now();
    for _ in 0..n {
        let count = Arc::clone(&count);
        let done = done_tx.clone();
        let r = std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || {
                if count.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    let _ = done.send(());
                }
            });
        if let Err(e) = r {
            fail(&format!("thread spawn failed: {e}"));
        }
    }
    if done_rx.recv().is_err() {
        fail("threads ended without signalling");
    }
    emit(t0.elapsed().as_nanos() as f64 / n as f64, "ns");
}

fn pingpong(n: u64) {
    let (ping_tx, ping_rx) = mpsc::sync_channel::<u64>(0);
    let (pong_tx, pong_rx) = mpsc::sync_channel::<u64>(0);
    let partner = std::thread::spawn(move || {
        while let Ok(v) = ping_rx.recv() {
            if pong_tx.send(v).is_err() {
                break;
            }
        }
    });
    let t0 = Instant::now();
    for i in 0..n {
        if ping_tx.send(i).is_err() || pong_rx.recv().is_err() {
            fail("partner thread went away");
        }
    }
    let el = t0.elapsed();
    drop(ping_tx);
    let _ = partner.join();
    emit(el.as_nanos() as f64 / n as f64, "ns");
}

fn yields(n: u64) {
    let gate = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                gate.wait();
                for _ in 0..n {
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    gate.wait();
    let t0 = Instant::now();
    for t in threads {
        if t.join().is_err() {
            fail("yield thread panicked");
        }
    }
    emit(t0.elapsed().as_nanos() as f64 / (2 * n) as f64, "ns");
}
