//! `stack-mmap`: the `mmap` impl of the `stack` workload — a fresh mapping plus a guard page
//! per stack, unmapped at once ([`rt_bench::kernels::mmap_stack_pairs`]).
//!
//! `stack n=<pairs> size=<bytes>` prints ns per map+guard+unmap.

use rt_bench::kernels::mmap_stack_pairs;
use rt_bench::proto::{emit, fail, not_applicable, Args};

fn main() {
    let a = Args::from_env();
    if a.workload != "stack" {
        not_applicable(&a.workload, "stack-mmap");
        return;
    }
    let n = a.count_or_exit("n", 100_000);
    let Ok(size) = usize::try_from(a.count_or_exit("size", 64 << 10)) else {
        fail("size too large");
    };
    match mmap_stack_pairs(n, size) {
        Ok(el) => emit(el.as_nanos() as f64 / n as f64, "ns"),
        Err(e) => fail(&e),
    }
}
