//! `malloc-rt`: the `rt` impl of the `malloc` workload — `rt_heap::RtHeap` (Go's size classes,
//! per-P mcache) as the process's global allocator, driven by
//! [`rt_bench::kernels::malloc_ring`].
//!
//! `malloc n=<ops per thread> threads=<k>` prints ns per alloc+free per thread.

#[global_allocator]
static GLOBAL: rt_heap::RtHeap = rt_heap::RtHeap;

fn main() {
    rt_bench::kernels::malloc_main("malloc-rt");
}
