//! Multi-thread stress in the manner of mimalloc's `test-stress`: threads
//! allocate objects of random sizes (mostly small, some large), keep some,
//! free some, and swap others through a shared transfer array so that
//! objects are routinely freed by a thread other than the one that
//! allocated them. Every object carries its size and a cookie derived from
//! its address; contents are checked before each free. Deterministic PRNG,
//! fixed work per thread, several rounds of fresh threads (their caches are
//! flushed at thread exit).

// `usize::is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
#![allow(clippy::manual_is_multiple_of)]

use std::sync::atomic::{AtomicUsize, Ordering};

const THREADS: usize = 4;
const ROUNDS: usize = 3;
const ITERS: usize = 150_000;
const TRANSFERS: usize = 1000;

static TRANSFER: [AtomicUsize; TRANSFERS] = [const { AtomicUsize::new(0) }; TRANSFERS];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn cookie(p: usize) -> u64 {
    (p as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xbeef
}

fn alloc_items(r: &mut Rng) -> usize {
    let x = r.next() % 1000;
    let words = if x < 900 {
        2 + (r.next() % 64) as usize
    } else if x < 990 {
        64 + (r.next() % 4000) as usize
    } else {
        4000 + (r.next() % 40_000) as usize
    };
    let size = words * 8;
    let p = rt_heap::malloc(size, 8);
    assert!(!p.is_null());
    let w = p.cast::<u64>();
    let c = cookie(p as usize);
    // SAFETY: p is a fresh object of `words` words.
    unsafe {
        *w = size as u64;
        for i in 1..words {
            *w.add(i) = c ^ i as u64;
        }
    }
    p as usize
}

fn free_items(p: usize) {
    if p == 0 {
        return;
    }
    let w = p as *mut u64;
    // SAFETY: p is a live object written by alloc_items.
    unsafe {
        let size = *w as usize;
        assert!(size >= 16 && size % 8 == 0, "corrupt size {size} at {p:#x}");
        let c = cookie(p);
        for i in 1..size / 8 {
            assert_eq!(
                *w.add(i),
                c ^ i as u64,
                "corrupt word {i} of {p:#x} (size {size})"
            );
        }
        rt_heap::free(p as *mut u8, size, 8);
    }
}

/// The PRNG seed of thread `tid` in `round` (printed by the test).
fn seed(tid: usize, round: usize) -> u64 {
    (tid as u64 + 1) * 0x1234_5678 + round as u64
}

fn stress(tid: usize, round: usize) {
    let mut r = Rng(seed(tid, round));
    let mut mine: Vec<usize> = vec![0; 500];
    for _ in 0..ITERS {
        let k = (r.next() % 100) as usize;
        let i = (r.next() as usize) % mine.len();
        if k < 50 {
            // Replace an own object.
            free_items(mine[i]);
            mine[i] = alloc_items(&mut r);
        } else if k < 80 {
            free_items(mine[i]);
            mine[i] = 0;
        } else {
            // Swap with the shared array: free whatever another thread left.
            let t = (r.next() as usize) % TRANSFERS;
            let q = TRANSFER[t].swap(mine[i], Ordering::AcqRel);
            mine[i] = q;
            if r.next() % 2 == 0 {
                free_items(mine[i]);
                mine[i] = 0;
            }
        }
    }
    for p in mine {
        free_items(p);
    }
}

#[test]
fn cross_thread_stress_keeps_contents_and_balances_counts() {
    rt_heap::mallocinit().unwrap();
    let before = rt_heap::memstats();
    for round in 0..ROUNDS {
        let seeds: Vec<String> = (0..THREADS)
            .map(|t| format!("{:#x}", seed(t, round)))
            .collect();
        eprintln!(
            "rt-heap stress round {round}: thread seeds {}",
            seeds.join(" ")
        );
        let hs: Vec<_> = (0..THREADS)
            .map(|t| std::thread::spawn(move || stress(t, round)))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    }
    for slot in TRANSFER.iter() {
        free_items(slot.swap(0, Ordering::AcqRel));
    }
    rt_heap::check_heap().unwrap();
    let after = rt_heap::memstats();
    // Only this test allocates through rt_heap in this binary.
    assert!(after.mallocs > before.mallocs + (THREADS * ROUNDS * ITERS / 4) as u64);
    assert_eq!(after.mallocs - before.mallocs, after.frees - before.frees);
    assert_eq!(after.heap_alloc, before.heap_alloc);
    assert_eq!(after.heap_idle + after.heap_inuse, after.heap_sys);
}
