//! `peer-corosensei`: the `corosensei` impl — the raw stackful context switch and its stack.
//!
//! Workloads: `switch` (resume a coroutine that suspends at once, `n` times; a resume+suspend
//! pair is two switches, so the value is the pair time / 2) and `stack` (`DefaultStack::new`
//! of `size=` bytes and its drop, `n` times; a fresh mapping with a guard page each).

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use rt_bench::proto::{emit, fail, not_applicable, Args};
use std::time::Instant;

fn main() {
    let a = Args::from_env();
    match a.workload.as_str() {
        "switch" => switch(a.count_or_exit("n", 10_000_000)),
        "stack" => stack(
            a.count_or_exit("n", 100_000),
            a.count_or_exit("size", 64 << 10),
        ),
        w => not_applicable(w, "peer-corosensei"),
    }
}

fn switch(n: u64) {
    let mut co = Coroutine::new(|y: &Yielder<u64, u64>, mut v: u64| loop {
        v = y.suspend(v + 1);
    });
    // Warm the path once.
    if !matches!(co.resume(0), CoroutineResult::Yield(1)) {
        fail("coroutine did not yield");
    }
    let t0 = Instant::now();
    let mut acc = 0u64;
    for i in 0..n {
        match co.resume(i) {
            CoroutineResult::Yield(v) => acc = acc.wrapping_add(v),
            CoroutineResult::Return(()) => fail("coroutine returned"),
        }
    }
    let el = t0.elapsed();
    std::hint::black_box(acc);
    emit(el.as_nanos() as f64 / (2 * n) as f64, "ns");
}

fn stack(n: u64, size: u64) {
    let Ok(size) = usize::try_from(size) else {
        fail("size too large");
    };
    let t0 = Instant::now();
    for _ in 0..n {
        match DefaultStack::new(size) {
            Ok(s) => drop(std::hint::black_box(s)),
            Err(e) => fail(&format!("DefaultStack::new({size}): {e}")),
        }
    }
    emit(t0.elapsed().as_nanos() as f64 / n as f64, "ns");
}
