//! `malloc-mimalloc`: the `mimalloc` impl of the `malloc` workload — mimalloc (`mimalloc::MiMalloc`) as the
//! process's global allocator, driven by [`rt_bench::kernels::malloc_ring`].
//!
//! `malloc n=<ops per thread> threads=<k>` prints ns per alloc+free per thread; the same
//! binary runs the other allocator workloads (`xthread`, `larson`, `cscratch`, `realloc`, `json`, see
//! [`rt_bench::allocs`]) and, with `rss=1`, prints the peak resident set instead.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    rt_bench::kernels::malloc_main("malloc-mimalloc");
}
