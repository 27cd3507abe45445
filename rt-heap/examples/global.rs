//! An ordinary Rust program using rt-heap as its global allocator:
//! collections, strings, threads handing data to each other, then the
//! heap statistics.
//!
//! Run: `cargo run -p rt-heap --example global --release`

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::thread;

#[global_allocator]
static A: rt_heap::RtHeap = rt_heap::RtHeap;

fn main() {
    let info = rt_heap::mallocinit().expect("mallocinit");
    println!("mallocinit: {info:?}");

    let mut words: HashMap<String, usize> = HashMap::new();
    for i in 0..100_000u32 {
        *words.entry(format!("w{}", i % 5000)).or_default() += 1;
    }
    let ordered: BTreeMap<_, _> = words.iter().map(|(k, v)| (v, k.clone())).collect();
    println!(
        "distinct words {}, ordered buckets {}",
        words.len(),
        ordered.len()
    );

    // Producer threads allocate, the main thread frees (cross-thread frees).
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let producers: Vec<_> = (0..4u8)
        .map(|t| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..10_000usize {
                    let len = 1 + (i * 37 + t as usize * 11) % 40_000;
                    tx.send(vec![t; len]).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut bytes = 0usize;
    for v in rx {
        assert!(v.iter().all(|&b| b == v[0]));
        bytes += v.len();
    }
    for p in producers {
        p.join().unwrap();
    }
    println!("received {bytes} bytes from 4 threads");

    let big = vec![1u8; 64 << 20];
    println!(
        "big buffer sum {}",
        big.iter().map(|&b| b as usize).sum::<usize>()
    );
    drop(big);

    let s = rt_heap::memstats();
    println!(
        "HeapAlloc={} HeapSys={} HeapIdle={} HeapInuse={} HeapReleased={} Mallocs={} Frees={}",
        s.heap_alloc, s.heap_sys, s.heap_idle, s.heap_inuse, s.heap_released, s.mallocs, s.frees
    );
}
