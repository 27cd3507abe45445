//! rt-heap as the `#[global_allocator]` of a whole test binary (the test
//! harness itself allocates through it), plus the behaviours that need a
//! process of their own, run as children (re-exec of this binary with
//! `RT_HEAP_CHILD` set): RSS coming back after 1 GiB is freed, `alloc`
//! returning null when the OS refuses memory, and runtime-internal
//! exhaustion ending in `fatal error: out of memory` with status 2.

// `usize::is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
#![allow(clippy::manual_is_multiple_of)]

use rt_heap::RtHeap;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::{BTreeMap, HashMap};
use std::process::Command;

#[global_allocator]
static A: RtHeap = RtHeap;

const CHILD_ENV: &str = "RT_HEAP_CHILD";

/// Runs test `name` of this binary in a child with `CHILD_ENV=name`.
fn run_child(name: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .unwrap()
}

fn in_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no pre-conditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

fn vm_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: sysconf has no pre-conditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

fn limit_address_space(bytes: usize) {
    let lim = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: lim is a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
}

#[test]
fn collections_and_threads_work() {
    let mut m: HashMap<String, Vec<u32>> = HashMap::new();
    for i in 0..20_000u32 {
        m.entry(format!("k{}", i % 777)).or_default().push(i);
    }
    let b: BTreeMap<_, _> = m.iter().map(|(k, v)| (k.clone(), v.len())).collect();
    assert_eq!(b.values().sum::<usize>(), 20_000);
    let hs: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let v: Vec<Box<[u8]>> = (0..2000).map(|i| vec![t as u8; i % 3000].into()).collect();
                v
            })
        })
        .collect();
    for (t, h) in hs.into_iter().enumerate() {
        // Freed here, on another thread than the one that allocated.
        for x in h.join().unwrap() {
            assert!(x.iter().all(|&b| b == t as u8));
        }
    }
    let s = rt_heap::memstats();
    assert!(s.mallocs >= s.frees && s.heap_alloc > 0 && s.ncaches >= 1);
}

#[test]
fn thread_counters_follow_allocations() {
    let (b0, n0) = rt_heap::thread_alloc_counters();
    let v: Vec<Vec<u8>> = (0..100).map(|_| Vec::with_capacity(100)).collect();
    let (b1, n1) = rt_heap::thread_alloc_counters();
    assert!(n1 >= n0 + 101, "{n0} -> {n1}");
    assert!(b1 >= b0 + 100 * 112, "{b0} -> {b1}");
    drop(v);
}

#[test]
fn odd_layouts_are_null_or_correct() {
    // SAFETY: every call below passes a valid Layout; results are checked
    // before use and freed with the same layout.
    unsafe {
        let z = Layout::from_size_align(0, 1).unwrap();
        let p = A.alloc(z);
        assert!(!p.is_null());
        A.dealloc(p, z);
        let huge = Layout::from_size_align(isize::MAX as usize - 7, 8).unwrap();
        assert!(A.alloc(huge).is_null());
        assert!(A.alloc_zeroed(huge).is_null());
        let wide = Layout::from_size_align(8, 1 << 40).unwrap();
        assert!(A.alloc(wide).is_null());
        for align in [16usize, 4096, 8192, 1 << 16, 4 << 20] {
            let l = Layout::from_size_align(100, align).unwrap();
            let p = A.alloc(l);
            assert!(!p.is_null() && p as usize % align == 0, "align {align}");
            p.write_bytes(0x5a, 100);
            // Growing to an impossible size fails and keeps the object.
            assert!(A.realloc(p, l, isize::MAX as usize - (align - 1)).is_null());
            assert_eq!(*p.add(99), 0x5a);
            A.dealloc(p, l);
        }
    }
}

#[test]
fn realloc_stays_in_place_within_a_class_or_large_span() {
    let l = Layout::from_size_align(100, 8).unwrap();
    // SAFETY: valid layouts; objects used within their sizes only.
    unsafe {
        let p = A.alloc(l);
        let q = A.realloc(p, l, 112); // same 112-byte class
        assert_eq!(p, q);
        let l2 = Layout::from_size_align(112, 8).unwrap();
        let r = A.realloc(q, l2, 200);
        assert!(!r.is_null());
        A.dealloc(r, Layout::from_size_align(200, 8).unwrap());
        let big = Layout::from_size_align(100_000, 8).unwrap();
        let p = A.alloc(big);
        let q = A.realloc(p, big, 100_100); // same 13-page span
        assert_eq!(p, q);
        A.dealloc(q, Layout::from_size_align(100_100, 8).unwrap());
    }
}

#[test]
fn rss_falls_after_freeing_a_gigabyte() {
    const NAME: &str = "rss_falls_after_freeing_a_gigabyte";
    if in_child(NAME) {
        let base = rss_bytes();
        let small: Vec<Vec<u8>> = (0..(512 << 10)).map(|i| vec![i as u8; 1024]).collect();
        let large: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 2 << 20]).collect();
        let peak = rss_bytes();
        assert!(peak - base >= 1 << 30, "peak {peak} base {base}");
        drop(small);
        drop(large);
        let after = rss_bytes();
        let s = rt_heap::memstats();
        println!(
            "RSS base={base} peak={peak} after={after} released={}",
            s.heap_released
        );
        assert!(
            after * 10 < peak,
            "RSS {after} not below 10% of peak {peak}"
        );
        std::process::exit(0);
    }
    let out = run_child(NAME);
    assert!(
        out.status.success(),
        "child failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("RSS base="));
}

#[test]
fn alloc_returns_null_when_the_os_refuses() {
    const NAME: &str = "alloc_returns_null_when_the_os_refuses";
    if in_child(NAME) {
        rt_heap::mallocinit().unwrap();
        limit_address_space(vm_bytes() + (256 << 20));
        let l = Layout::from_size_align(1 << 30, 8).unwrap();
        // SAFETY: valid layout.
        let p = unsafe { A.alloc(l) };
        let ok = p.is_null();
        // Small allocations still work afterwards.
        let v = vec![7u8; 1000];
        std::process::exit(if ok && v[999] == 7 { 0 } else { 1 });
    }
    let out = run_child(NAME);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metadata_exhaustion_is_a_fatal_error() {
    const NAME: &str = "metadata_exhaustion_is_a_fatal_error";
    if in_child(NAME) {
        rt_heap::mallocinit().unwrap();
        limit_address_space(vm_bytes() + (1 << 20));
        loop {
            // Never freed: fixalloc must eventually fail to get memory.
            let _ = rt_heap::allocmcache();
        }
    }
    let out = run_child(NAME);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fatal error: out of memory"), "stderr: {err}");
}

#[test]
fn fork_child_can_allocate_while_threads_were_busy() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    let busy: Vec<_> = (0..2)
        .map(|t| {
            std::thread::spawn(move || {
                let mut ring: Vec<Vec<u8>> = Vec::new();
                let mut i = 0usize;
                while !STOP.load(Ordering::Relaxed) {
                    ring.push(vec![t as u8; 16 + (i * 97) % 70_000]);
                    if ring.len() > 64 {
                        ring.swap_remove(i % 64);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for _ in 0..20 {
        // SAFETY: fork has no pre-conditions; the child only allocates,
        // checks, and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // A deadlocked child is killed by SIGALRM instead of hanging.
            // SAFETY: alarm and _exit have no pre-conditions.
            unsafe { libc::alarm(20) };
            let v: Vec<Vec<u8>> = (0..1000).map(|i| vec![3u8; i * 50]).collect();
            let ok = v.iter().all(|x| x.iter().all(|&b| b == 3));
            // SAFETY: as above.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: pid is our child; status is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "status {status:#x}"
        );
    }
    STOP.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().unwrap();
    }
}

#[test]
fn a_heap_that_cannot_start_is_a_fatal_error() {
    // A fresh process (this binary again, no test selected) under an
    // address-space limit that leaves no room for the heap's first
    // reservations: its first allocation, made by Rust's start-up before
    // `main`, must end in Go's fatal error, not in Rust's abort.
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "no test has this name"]);
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 24 << 20,
                rlim_max: 24 << 20,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.starts_with("fatal error: mallocinit: out of memory"),
        "stderr: {err}"
    );
}
