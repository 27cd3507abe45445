//! `malloc-glibc`: the `glibc` impl of the `malloc` workload — glibc malloc (the System allocator) as the
//! process's global allocator, driven by [`rt_bench::kernels::malloc_ring`].
//!
//! `malloc n=<ops per thread> threads=<k>` prints ns per alloc+free per thread; the same
//! binary runs the other allocator workloads (`xthread`, `larson`, `cscratch`, `realloc`, `json`, see
//! [`rt_bench::allocs`]) and, with `rss=1`, prints the peak resident set instead.

// No #[global_allocator]: Rust's System allocator, i.e. glibc malloc/free.

fn main() {
    rt_bench::kernels::malloc_main("malloc-glibc");
}
