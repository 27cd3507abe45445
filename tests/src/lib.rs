//! Helpers shared by the `rt-demo` scenarios and `bench-rt`.

/// README.md, whose Rust program is built and run as a doc test of this
/// crate (`cargo test -p rt-tests --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeProgram;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

/// Publishes the running goroutine in `slot` and parks it in no queue:
/// only a [`rt_sched::boot::yield_to`] from the goroutine that finds it with
/// [`wait_parked`] resumes it.
pub fn park_for_yield_to(slot: &AtomicPtr<rt_sched::boot::G>, reason: &'static str) {
    slot.store(rt_sched::boot::current_g(), Ordering::Release);
    rt_sched::boot::gopark(None, 0, reason);
}

/// Waits, yielding the processor, until the goroutine published in `slot`
/// by [`park_for_yield_to`] is parked; returns it.
pub fn wait_parked(slot: &AtomicPtr<rt_sched::boot::G>) -> *mut rt_sched::boot::G {
    loop {
        let g = slot.load(Ordering::Acquire);
        if !g.is_null() {
            // SAFETY: Gs are never freed, so a published G can always be
            // read; the status is an atomic snapshot.
            let status = unsafe { (*g).atomicstatus.load(Ordering::Acquire) };
            if status == rt_sched::boot::GWAITING {
                return g;
            }
        }
        rt_sched::gosched();
    }
}

/// Spins until `stop`, entering no runtime code; returns the last value of
/// its arithmetic (kept by `black_box`, so the loop is not optimised away).
#[inline(never)]
pub fn spin(stop: &AtomicBool) -> u64 {
    let mut x = 0u64;
    while !stop.load(Ordering::Relaxed) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

/// Starts `n` goroutines that [`spin`] until the returned flag is set, and
/// returns once all of them run.
pub fn spawn_hogs(n: u64) -> (Arc<AtomicBool>, Vec<rt_sched::JoinHandle<u64>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicU64::new(0));
    let hs = (0..n)
        .map(|_| {
            let (stop, started) = (stop.clone(), started.clone());
            rt_sched::spawn(move || {
                started.fetch_add(1, Ordering::Release);
                spin(&stop)
            })
        })
        .collect();
    while started.load(Ordering::Acquire) < n {
        rt_sched::gosched();
    }
    (stop, hs)
}

/// The last OS error number.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `read(2)` into `buf`, retried on `EINTR` (the preemption signal may
/// interrupt a slow system call).
pub fn read_retry(fd: RawFd, buf: &mut [u8]) -> isize {
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 || errno() != libc::EINTR {
            return n;
        }
    }
}

/// Writes all of `data` to `fd`, retrying on `EINTR` and short writes;
/// false on an error.
pub fn write_all(fd: RawFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        // SAFETY: `data` is valid for `data.len()` bytes of reads.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        data = &data[n as usize..];
    }
    true
}
