//! The allocator workloads beyond the `malloc` ring, run through whatever `#[global_allocator]`
//! the calling `malloc-*` binary installed. Each exercises one thing a per-thread cache design
//! can get wrong:
//!
//! - [`xthread`]: producer/consumer pairs; every object is allocated on one thread and freed on
//!   another (the free path for remote objects, and whether memory flows back to the producer).
//! - [`larson`]: Larson & Krishnan's server model; threads replace random slots of an array of
//!   live objects of random sizes, and each round hands every array to a fresh thread, so most
//!   objects die on a thread that did not allocate them.
//! - [`cscratch`]: cache-scratch (Berger et al., Hoard); each thread frees one small object the
//!   main thread allocated beside the others' and then mallocs, writes and frees small objects
//!   in a loop. An allocator that hands the freed neighbour back to that thread makes the
//!   threads write to one cache line (false sharing).
//! - [`realloc_grow`]: buffers grown 64 bytes at a time with `reserve_exact`, one reallocation
//!   per step (in-place growth, copying).
//! - [`json`]: a program's mix: a `serde_json` document of maps, arrays and strings built,
//!   printed, parsed back, indexed into a `HashMap` and walked, then dropped.
//!
//! Sizes and choices come from a seeded xorshift, identical for every allocator. Each kernel
//! returns the wall time from a common start to the last thread's end; [`peak_rss_kib`] is the
//! process's resident high-water mark for the `rss=1` variants.

use std::alloc::{alloc, dealloc, Layout};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// One object handed between threads: address and size (alignment 16).
type Obj = (usize, usize);

fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Allocates `size` bytes at alignment 16 and writes its first byte; fails the run on null.
fn get(size: usize, tag: u8) -> Obj {
    let Ok(layout) = Layout::from_size_align(size, 16) else {
        crate::proto::fail("bad layout");
    };
    // SAFETY: the layout has a non-zero size (callers ask for at least 8 bytes).
    let p = unsafe { alloc(layout) };
    if p.is_null() {
        crate::proto::fail("allocation failed");
    }
    // SAFETY: p points to at least one writable byte.
    unsafe { p.write_volatile(tag) };
    (p as usize, size)
}

/// Frees an object from [`get`].
fn put((p, size): Obj) {
    // SAFETY: (p, size) came from `get` with this size at alignment 16 and is freed once.
    unsafe { dealloc(p as *mut u8, Layout::from_size_align_unchecked(size, 16)) };
}

/// Spawns `threads` workers running `f(thread index)` after a common barrier; returns the time
/// from the barrier until the last one finished. A worker that panics fails the run.
pub fn timed<F>(threads: u64, f: F) -> Duration
where
    F: Fn(u64) + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let start = Arc::new(Barrier::new(threads as usize + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (start, f) = (Arc::clone(&start), Arc::clone(&f));
            std::thread::spawn(move || {
                start.wait();
                f(t);
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    for w in workers {
        if w.join().is_err() {
            crate::proto::fail("allocator worker thread panicked");
        }
    }
    t0.elapsed()
}

/// Objects per batch a producer hands to its consumer in [`xthread`].
pub const XTHREAD_BATCH: usize = 256;

/// `pairs` producer/consumer pairs; each producer allocates `ops` objects (16…1024 bytes, in
/// batches of [`XTHREAD_BATCH`]) and its consumer frees them. Batches travel over a bounded
/// channel of 4 and come back empty for reuse, so the channel allocates nothing per object.
pub fn xthread(ops: u64, pairs: u64) -> Duration {
    timed(pairs, move |t| {
        let (to_cons, from_prod) = sync_channel::<Vec<Obj>>(4);
        let (to_prod, from_cons) = sync_channel::<Vec<Obj>>(8);
        for _ in 0..6 {
            let _ = to_prod.send(Vec::with_capacity(XTHREAD_BATCH));
        }
        let consumer = std::thread::spawn(move || {
            while let Ok(mut b) = from_prod.recv() {
                for o in b.drain(..) {
                    put(o);
                }
                let _ = to_prod.send(b);
            }
        });
        let mut s = 0x9e37_79b9_7f4a_7c15 ^ (t + 1);
        let mut left = ops;
        while left > 0 {
            let Ok(mut b) = from_cons.recv() else {
                crate::proto::fail("xthread consumer ended early");
            };
            let n = left.min(XTHREAD_BATCH as u64);
            for _ in 0..n {
                b.push(get(16 * (1 + (next(&mut s) % 64) as usize), 1));
            }
            left -= n;
            if to_cons.send(b).is_err() {
                crate::proto::fail("xthread consumer ended early");
            }
        }
        drop(to_cons);
        if consumer.join().is_err() {
            crate::proto::fail("xthread consumer panicked");
        }
    })
}

/// Live objects per thread in [`larson`].
pub const LARSON_SLOTS: usize = 1000;
/// Rounds in [`larson`]: each hands every thread's objects to a new thread.
pub const LARSON_ROUNDS: u64 = 10;

/// Larson: `threads` arrays of [`LARSON_SLOTS`] live objects (8…1024 bytes); `ops` random
/// replacements per array, spread over [`LARSON_ROUNDS`] rounds, each round run by fresh
/// threads that free what the previous round's threads allocated. Thread creation is inside
/// the timing, as in the original (threads there end and are replaced all the time).
pub fn larson(ops: u64, threads: u64) -> Duration {
    let per_round = ops.div_ceil(LARSON_ROUNDS);
    let mut arrays: Vec<Vec<Obj>> = (0..threads)
        .map(|t| {
            let mut s = 0x2545_f491_4f6c_dd1d ^ t;
            (0..LARSON_SLOTS)
                .map(|_| get(8 + (next(&mut s) % 1017) as usize, 2))
                .collect()
        })
        .collect();
    let t0 = Instant::now();
    for round in 0..LARSON_ROUNDS {
        let hs: Vec<_> = arrays
            .into_iter()
            .enumerate()
            .map(|(t, mut a)| {
                std::thread::spawn(move || {
                    let mut s = 0x9e37_79b9_7f4a_7c15 ^ ((round << 32) | t as u64);
                    for _ in 0..per_round {
                        let r = next(&mut s);
                        let slot = &mut a[(r % LARSON_SLOTS as u64) as usize];
                        put(*slot);
                        *slot = get(8 + ((r >> 20) % 1017) as usize, 3);
                    }
                    a
                })
            })
            .collect();
        arrays = hs
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| crate::proto::fail("larson worker panicked"))
            })
            .collect();
    }
    let el = t0.elapsed();
    for o in arrays.into_iter().flatten() {
        put(o);
    }
    el
}

/// Writes to each object in [`cscratch`] between its allocation and its free.
pub const CSCRATCH_WRITES: u64 = 50;

/// Cache-scratch: the main thread allocates one 8-byte object per thread (neighbours in
/// memory for most allocators); each of `threads` threads frees its object, then `ops` times
/// allocates 8 bytes, writes it [`CSCRATCH_WRITES`] times and frees it.
pub fn cscratch(ops: u64, threads: u64) -> Duration {
    let seeds: Vec<Obj> = (0..threads).map(|_| get(8, 4)).collect();
    let seeds = Arc::new(seeds);
    timed(threads, move |t| {
        put(seeds[t as usize]);
        for i in 0..ops {
            let (p, size) = get(8, 5);
            let q = p as *mut u64;
            for w in 0..CSCRATCH_WRITES {
                // SAFETY: q points to the 8-byte object just allocated.
                unsafe { q.write_volatile(i ^ w) };
            }
            put((p, size));
        }
    })
}

/// Growth step of [`realloc_grow`].
pub const REALLOC_STEP: usize = 64;

/// On each of `threads` threads, `ops` buffers grown [`REALLOC_STEP`] bytes at a time (one
/// `reserve_exact`, so one reallocation, per step) to 256 B … 16 KiB (cycling), the new bytes
/// written each step.
pub fn realloc_grow(ops: u64, threads: u64) -> Duration {
    timed(threads, move |_| {
        for i in 0..ops {
            let target = 256usize << (i % 7);
            let mut v: Vec<u8> = Vec::new();
            while v.len() < target {
                v.reserve_exact(REALLOC_STEP);
                v.resize(v.len() + REALLOC_STEP, i as u8);
            }
            std::hint::black_box(&v);
        }
    })
}

/// Records per document in [`json`].
pub const JSON_RECORDS: u64 = 64;

/// Builds document `i` of [`json`]: an object holding an array of [`JSON_RECORDS`] records
/// (strings, numbers, a nested array and map of varying sizes). The one float is a multiple of
/// 1/8 with few digits, which prints and parses back exactly.
pub fn json_document(i: u64) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let records: Vec<Value> = (0..JSON_RECORDS)
        .map(|r| {
            let k = i.wrapping_mul(31).wrapping_add(r);
            let mut attrs = Map::new();
            for a in 0..(k % 8) {
                attrs.insert(format!("attr{a}"), Value::from(format!("v{}", k ^ a)));
            }
            json!({
                "id": k,
                "name": format!("record-{k}-{}", "x".repeat((k % 40) as usize)),
                "score": (k % 1000) as f64 / 8.0,
                "tags": (0..(k % 6)).map(|t| format!("t{t}")).collect::<Vec<_>>(),
                "attrs": attrs,
            })
        })
        .collect();
    json!({ "batch": i, "records": records })
}

/// On each of `threads` threads, `ops` documents ([`json_document`]) printed to a string,
/// parsed back, indexed by name into a `HashMap` and summed over; fails the run if the parsed
/// document differs from the built one.
pub fn json(ops: u64, threads: u64) -> Duration {
    timed(threads, move |t| {
        let mut sum = 0u64;
        for i in 0..ops {
            let doc = json_document(i ^ (t << 40));
            let text = doc.to_string();
            let back: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| crate::proto::fail(&format!("json parse: {e}")));
            if back != doc {
                crate::proto::fail("json round trip changed the document");
            }
            let mut by_name = std::collections::HashMap::new();
            if let Some(rs) = back["records"].as_array() {
                for r in rs {
                    if let Some(n) = r["name"].as_str() {
                        by_name.insert(n.to_string(), r["id"].as_u64().unwrap_or(0));
                    }
                }
            }
            sum = sum.wrapping_add(by_name.values().sum::<u64>());
        }
        std::hint::black_box(sum);
    })
}

/// The process's peak resident set (`VmHWM`, KiB).
pub fn peak_rss_kib() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    crate::runner::parse_vmhwm(&s).ok_or_else(|| "no VmHWM in /proc/self/status".into())
}

/// Runs allocator workload `workload` (`xthread`, `larson`, `cscratch`, `realloc`, `json`)
/// with `ops` and `threads`, or None for another name.
pub fn run(workload: &str, ops: u64, threads: u64) -> Option<Duration> {
    Some(match workload {
        "xthread" => xthread(ops, threads),
        "larson" => larson(ops, threads),
        "cscratch" => cscratch(ops, threads),
        "realloc" => realloc_grow(ops, threads),
        "json" => json(ops, threads),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_runs_on_one_and_two_threads() {
        for w in ["xthread", "larson", "cscratch", "realloc", "json"] {
            for t in [1, 2] {
                let n = if w == "json" { 20 } else { 2_000 };
                assert!(run(w, n, t).is_some(), "{w}");
            }
        }
        assert!(run("malloc", 10, 1).is_none());
    }

    #[test]
    fn json_documents_differ_and_have_every_record() {
        let (a, b) = (json_document(1), json_document(2));
        assert_ne!(a, b);
        assert_eq!(a["records"].as_array().unwrap().len() as u64, JSON_RECORDS);
        assert_eq!(a["batch"], 1);
    }

    #[test]
    fn peak_rss_is_read() {
        assert!(peak_rss_kib().unwrap() > 0);
    }
}
