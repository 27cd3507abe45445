//! `malloc-mimalloc`: the `mimalloc` impl of the `malloc` workload — mimalloc (`mimalloc::MiMalloc`) as the
//! process's global allocator, driven by [`rt_bench::kernels::malloc_ring`].
//!
//! `malloc n=<ops per thread> threads=<k>` prints ns per alloc+free per thread.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    rt_bench::kernels::malloc_main("malloc-mimalloc");
}
