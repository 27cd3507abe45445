//! `stacks_stress N [mprotect]`: allocates N default stacks through rt-stack's API (one per-P cache,
//! as a single P would), writes one byte into the top page of each (committing one page per
//! stack, as a goroutine that just started would), frees them all, and prints the VMA count
//! and resident memory before, at the peak and after, one `key=value` per line.
//!
//! With MADV_GUARD_INSTALL the VMA count stays near where it started (one mapping per chunk);
//! RSS at the peak is about N pages plus page tables; after freeing, the stacks beyond the
//! pool's warm budget have gone back to the OS.
//!
//! With `mprotect` the guards use the fallback path: each splits a mapping, and past the
//! budget derived from `vm.max_map_count` allocation stops with a `fatal error:` line
//! naming the limit (exit status 2) instead of the kernel's ENOMEM.

use rt_stack::{
    default_stack_size, stackalloc, stackcache_clear, stackfree, stackinit, stats, vma_count,
    GuardPolicy, Stack, StackCache, StackConfig,
};

/// `VmRSS` and `VmPTE` from /proc/self/status, in KiB (0 when missing).
fn mem_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmPTE:"))
}

fn report(phase: &str) {
    let (rss, pte) = mem_kib();
    println!("vmas_{phase}={}", vma_count());
    println!("rss_kib_{phase}={rss}");
    println!("pte_kib_{phase}={pte}");
}

fn main() {
    let arg = std::env::args().nth(1);
    let n: usize = match arg.as_deref().map(str::parse) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: stacks_stress N [mprotect]   (N: number of default stacks)");
            std::process::exit(2);
        }
    };
    let guard = match std::env::args().nth(2).as_deref() {
        None => GuardPolicy::Auto,
        Some("mprotect") => GuardPolicy::Mprotect,
        Some(other) => {
            eprintln!("stacks_stress: unknown guard mode {other:?} (want: mprotect)");
            std::process::exit(2);
        }
    };
    let cfg = StackConfig {
        guard,
        ..StackConfig::default()
    };
    let info = match stackinit(cfg) {
        Ok(i) => i,
        Err(e) => rt_sys::fatal!("stackinit: {}", e),
    };
    let size = default_stack_size();
    println!("n={n}");
    println!("stack_size={size}");
    println!("guard={}", info.guard);
    report("before");

    let mut cache = StackCache::new();
    let mut stacks: Vec<Stack> = Vec::with_capacity(n);
    for i in 0..n {
        match stackalloc(Some(&mut cache), size) {
            Ok(s) => {
                // SAFETY: hi - 1 is the top usable byte of a stack this loop just allocated.
                unsafe { core::ptr::write_volatile((s.hi - 1) as *mut u8, 1) };
                stacks.push(s);
            }
            Err(e) => rt_sys::fatal!("stackalloc of stack {} of {}: {}", i + 1, n, e),
        }
    }
    report("peak");
    let st = stats();
    println!("live_peak={}", st.live);
    println!("chunks={}", st.chunks);
    println!("bytes_reserved={}", st.bytes_reserved);

    for s in stacks.drain(..) {
        stackfree(Some(&mut cache), s);
    }
    stackcache_clear(&mut cache);
    drop(stacks);
    report("after");
    let st = stats();
    println!("live_after={}", st.live);
    println!("pooled_after={}", st.pooled);
    println!("pooled_released_after={}", st.pooled_released);
}
