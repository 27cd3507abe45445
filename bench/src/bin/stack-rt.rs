//! `stack-rt`: the `rt` impl of the `stack` workload — `rt_stack::stackalloc` + `stackfree`
//! through a warm per-P [`StackCache`], as a goroutine's exit and the next `newproc` would.
//!
//! Workloads: `stack n=<pairs> [size=<bytes>]` prints ns per alloc+free pair (size defaults to
//! rt's default stack size); `stack-size` prints that default in bytes (unit `B`), so the
//! harness runs the peers with the same size.

use rt_bench::proto::{emit, fail, not_applicable, Args};
use rt_stack::{
    default_stack_size, stackalloc, stackcache_clear, stackfree, stackinit, StackCache, StackConfig,
};
use std::time::Instant;

/// Pairs run before timing so the cache holds stacks of the measured order.
const WARM_PAIRS: u64 = 64;

fn main() {
    let a = Args::from_env();
    if let Err(e) = stackinit(StackConfig::default()) {
        fail(&format!("stackinit: {e}"));
    }
    match a.workload.as_str() {
        "stack-size" => emit(default_stack_size() as f64, "B"),
        "stack" => {
            let n = a.count_or_exit("n", 1_000_000);
            let size = match a.keys.get("size") {
                None => default_stack_size(),
                Some(_) => usize::try_from(a.count_or_exit("size", 1))
                    .unwrap_or_else(|_| fail("size too large")),
            };
            let mut cache = StackCache::new();
            let pair = |cache: &mut StackCache| match stackalloc(Some(cache), size) {
                Ok(s) => stackfree(Some(cache), std::hint::black_box(s)),
                Err(e) => fail(&format!("stackalloc({size}): {e}")),
            };
            for _ in 0..WARM_PAIRS {
                pair(&mut cache);
            }
            let t0 = Instant::now();
            for _ in 0..n {
                pair(&mut cache);
            }
            let el = t0.elapsed();
            stackcache_clear(&mut cache);
            emit(el.as_nanos() as f64 / n as f64, "ns");
        }
        w => not_applicable(w, "stack-rt"),
    }
}
