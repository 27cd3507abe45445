//! Measured loops shared by several impl binaries.
//!
//! - [`malloc_ring`]: the `malloc` workload, run through whatever `#[global_allocator]` the
//!   calling binary installed (glibc, mimalloc, jemalloc or rt-heap).
//! - [`mmap_stack_pairs`]: the `stack` workload for the `mmap` impl, a fresh mapping with a
//!   guard page per stack, the baseline a pooled stack allocator should beat.
//! - [`limit_cpus`]: restricts the calling thread (and threads it creates later) to the first
//!   `k` CPUs it may run on, the OS-thread analogue of `GOMAXPROCS=k`.
//! - [`tree_nodes`], [`tree_sum`]: the shape and expected result of the `tree` workload (Skynet:
//!   a tree of `leaves` tasks, [`TREE_FANOUT`] children per node).
//! - [`fanout_op`], [`fanout_sum`]: the `fanout` workload's per-message operation and the
//!   collector's expected total.

use std::alloc::{alloc, dealloc, Layout};
use std::time::{Duration, Instant};

/// Number of live allocations each malloc thread keeps.
pub const RING: usize = 64;
/// Number of distinct sizes: 16, 32, ..., 1024 bytes.
pub const SIZES: u64 = 64;

/// The request size of operation `i`: sizes cycle through 16…1024 B in 16-byte steps, shifted
/// by one step on every pass over the ring so a slot does not always see the same size.
pub fn malloc_size(i: u64) -> usize {
    let idx = (i % SIZES + i / RING as u64) % SIZES;
    16 * (idx as usize + 1)
}

/// Runs `ops` allocate+free operations on each of `threads` threads and returns the wall time
/// from the common start until the last thread finishes. Each thread keeps a ring of
/// [`RING`] live blocks: operation `i` frees the block in slot `i % RING` (if any) and puts a
/// fresh block of [`malloc_size`]`(i)` there, touching its first byte.
pub fn malloc_ring(ops: u64, threads: u64) -> Duration {
    crate::allocs::timed(threads, move |_| malloc_ring_thread(ops))
}

fn malloc_ring_thread(ops: u64) {
    let mut ring: [(*mut u8, usize); RING] = [(std::ptr::null_mut(), 0); RING];
    for i in 0..ops {
        let slot = &mut ring[(i % RING as u64) as usize];
        if !slot.0.is_null() {
            // SAFETY: slot.0 was returned by `alloc` with the layout rebuilt here from the
            // same size and alignment, and it is freed exactly once before being replaced.
            unsafe { dealloc(slot.0, Layout::from_size_align_unchecked(slot.1, 16)) };
        }
        let size = malloc_size(i);
        let Ok(layout) = Layout::from_size_align(size, 16) else {
            crate::proto::fail("bad malloc layout");
        };
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc(layout) };
        if p.is_null() {
            crate::proto::fail("allocation failed");
        }
        // SAFETY: p points to at least `size` (>= 16) writable bytes.
        unsafe { p.write_volatile(i as u8) };
        *slot = (p, size);
    }
    for (p, size) in ring {
        if !p.is_null() {
            // SAFETY: as above; each live block is freed once.
            unsafe { dealloc(p, Layout::from_size_align_unchecked(size, 16)) };
        }
    }
}

/// Maps, guards and unmaps `n` stacks of `size` usable bytes (rounded up to pages) and returns
/// the time taken. Each stack is one fresh anonymous mapping of `size + page`, whose lowest page
/// is then made inaccessible as the guard; nothing is touched, as a pool would not touch it.
pub fn mmap_stack_pairs(n: u64, size: usize) -> Result<Duration, String> {
    let page = crate::mem::page_size() as usize;
    let usable = size.div_ceil(page).max(1) * page;
    let total = usable + page;
    let t0 = Instant::now();
    for _ in 0..n {
        // SAFETY: an anonymous private mapping at a kernel-chosen address aliases nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!("mmap failed: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: [base, base+page) lies inside the mapping just created and is not in use.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(format!(
                "mprotect failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        std::hint::black_box(base);
        // SAFETY: the whole mapping was created above and nothing refers to it any more.
        if unsafe { libc::munmap(base, total) } != 0 {
            return Err(format!(
                "munmap failed: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(t0.elapsed())
}

/// The whole `main` of a `malloc-*` binary: parses `<workload> n=<ops> threads=<k> [rss=1]`
/// for `malloc` ([`malloc_ring`]) or one of [`crate::allocs`]' workloads, runs it and prints
/// ns per operation (per thread or pair), or with `rss=1` the peak resident set in KiB. Other
/// workloads are not applicable.
pub fn malloc_main(bin: &str) {
    let a = crate::proto::Args::from_env();
    let ops = a.count_or_exit("n", 10_000_000);
    let threads = a.count_or_exit("threads", 1);
    let rss = a.count_or_exit("rss", 0) != 0;
    if threads > 1024 {
        crate::proto::fail("threads must be at most 1024");
    }
    if ops == 0 {
        crate::proto::fail("n must be at least 1");
    }
    let el = if a.workload == "malloc" {
        malloc_ring(ops, threads)
    } else {
        match crate::allocs::run(&a.workload, ops, threads) {
            Some(el) => el,
            None => {
                crate::proto::not_applicable(&a.workload, bin);
                return;
            }
        }
    };
    if rss {
        match crate::allocs::peak_rss_kib() {
            Ok(kib) => crate::proto::emit(kib as f64, "KiB"),
            Err(why) => crate::proto::fail(&why),
        }
    } else {
        crate::proto::emit(el.as_nanos() as f64 / ops as f64, "ns");
    }
}

/// Restricts the calling thread to the first `k` CPUs of its current affinity mask. Threads it
/// creates afterwards inherit the mask.
pub fn limit_cpus(k: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let sz = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a valid, writable cpu_set_t of `sz` bytes.
    if unsafe { libc::sched_getaffinity(0, sz, &mut set) } != 0 {
        return Err(format!(
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: as above.
    let mut keep: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let mut kept = 0;
    for cpu in 0..libc::CPU_SETSIZE as usize {
        if kept == k {
            break;
        }
        // SAFETY: cpu < CPU_SETSIZE, in range of both sets.
        if unsafe { libc::CPU_ISSET(cpu, &set) } {
            // SAFETY: as above.
            unsafe { libc::CPU_SET(cpu, &mut keep) };
            kept += 1;
        }
    }
    if kept < k {
        return Err(format!("only {kept} CPUs available, {k} asked"));
    }
    // SAFETY: `keep` is a valid cpu_set_t of `sz` bytes.
    if unsafe { libc::sched_setaffinity(0, sz, &keep) } != 0 {
        return Err(format!(
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Children per inner node of the `tree` workload (Skynet's `div`).
pub const TREE_FANOUT: u64 = 10;

/// Largest `tree` an impl accepts: 10⁸ leaves (111,111,111 tasks).
pub const TREE_MAX_LEAVES: u64 = 100_000_000;

/// The number of tasks a `tree` of `leaves` leaves creates, root included
/// (`1 + 10 + … + leaves`: 1,111,111 for a million leaves), or `None` unless `leaves` is a
/// power of [`TREE_FANOUT`] no larger than [`TREE_MAX_LEAVES`].
pub fn tree_nodes(leaves: u64) -> Option<u64> {
    let (mut level, mut total) = (1u64, 1u64);
    while level < leaves && level < TREE_MAX_LEAVES {
        level *= TREE_FANOUT;
        total += level;
    }
    (level == leaves).then_some(total)
}

/// What the root of a `tree` of `leaves` leaves receives: leaf `i` sends `i`, so the sum of
/// `0..leaves` (499,999,500,000 for a million leaves).
pub fn tree_sum(leaves: u64) -> u64 {
    leaves.wrapping_mul(leaves.wrapping_sub(1)) / 2
}

/// The operation a `fanout` worker applies to each message before forwarding it: `2v + 1`.
pub fn fanout_op(v: u64) -> u64 {
    v.wrapping_mul(2).wrapping_add(1)
}

/// Largest `workers=` a `fanout` impl accepts.
pub const FANOUT_MAX_WORKERS: u64 = 1024;
/// Largest `cap=` a `fanout` impl accepts.
pub const FANOUT_MAX_CAP: u64 = 1 << 20;

/// Checks a `fanout` impl's `workers=` and `cap=` against [`FANOUT_MAX_WORKERS`] and
/// [`FANOUT_MAX_CAP`] (both are positive already: `proto::Args::count` rejects 0).
pub fn check_fanout(workers: u64, cap: u64) -> Result<(), String> {
    if workers > FANOUT_MAX_WORKERS {
        return Err(format!("workers must be at most {FANOUT_MAX_WORKERS}"));
    }
    if cap > FANOUT_MAX_CAP {
        return Err(format!("cap must be at most {FANOUT_MAX_CAP}"));
    }
    Ok(())
}

/// The collector's total after [`fanout_op`] of `0..n`: `n²` (the sum of the first `n` odd
/// numbers), wrapping as the collector's own `u64` sum does.
pub fn fanout_sum(n: u64) -> u64 {
    n.wrapping_mul(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tree_shape_is_skynets() {
        assert_eq!(tree_nodes(1_000_000), Some(1_111_111));
        assert_eq!(tree_nodes(100_000), Some(111_111));
        assert_eq!(tree_nodes(10), Some(11));
        assert_eq!(tree_nodes(1), Some(1));
        assert_eq!(tree_nodes(0), None);
        assert_eq!(tree_nodes(20), None);
        assert_eq!(tree_nodes(999_999), None);
        assert_eq!(tree_nodes(u64::MAX), None);
        assert_eq!(tree_nodes(TREE_MAX_LEAVES), Some(111_111_111));
        assert_eq!(tree_nodes(TREE_MAX_LEAVES * 10), None);
        assert_eq!(tree_sum(1_000_000), 499_999_500_000);
        assert_eq!(tree_sum(10), 45);
    }

    #[test]
    fn fanout_sum_matches_the_loop() {
        for n in [1u64, 2, 7, 1000] {
            let s = (0..n).map(fanout_op).fold(0u64, u64::wrapping_add);
            assert_eq!(s, fanout_sum(n), "{n}");
        }
        assert_eq!(fanout_sum(10_000_000), 100_000_000_000_000);
    }

    #[test]
    fn fanout_limits() {
        assert!(check_fanout(4, 128).is_ok());
        assert!(check_fanout(FANOUT_MAX_WORKERS, FANOUT_MAX_CAP).is_ok());
        assert!(check_fanout(FANOUT_MAX_WORKERS + 1, 1).is_err());
        assert!(check_fanout(1, FANOUT_MAX_CAP + 1).is_err());
    }

    #[test]
    fn sizes_cover_16_to_1024() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..(RING as u64 * SIZES) {
            seen.insert(malloc_size(i));
        }
        assert_eq!(seen.len(), SIZES as usize);
        assert_eq!(seen.first(), Some(&16));
        assert_eq!(seen.last(), Some(&1024));
    }

    #[test]
    fn a_slot_sees_different_sizes_on_successive_passes() {
        let slot0: Vec<usize> = (0..4).map(|pass| malloc_size(pass * RING as u64)).collect();
        assert_eq!(slot0, vec![16, 32, 48, 64]);
    }

    #[test]
    fn malloc_ring_runs_on_two_threads() {
        let _ = malloc_ring(10_000, 2);
    }

    #[test]
    fn mmap_stacks_are_returned() {
        let maps = || {
            std::fs::read_to_string("/proc/self/maps")
                .unwrap()
                .lines()
                .count()
        };
        let before = maps();
        mmap_stack_pairs(1000, 64 << 10).unwrap();
        // Every pair unmaps what it mapped, so the map count does not grow by 1000.
        assert!(maps() < before + 100);
    }

    #[test]
    fn limit_cpus_rejects_more_cpus_than_exist() {
        // Run in a thread so the test runner's thread keeps its mask.
        std::thread::spawn(|| {
            assert!(limit_cpus(libc::CPU_SETSIZE as usize + 1).is_err());
            limit_cpus(1).unwrap();
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            assert!(cpu >= 0);
        })
        .join()
        .unwrap();
    }

    proptest! {
        #[test]
        fn sizes_are_multiples_of_16_in_range(i in any::<u64>()) {
            let s = malloc_size(i);
            prop_assert!(s & 15 == 0 && (16..=1024).contains(&s));
        }
    }
}
