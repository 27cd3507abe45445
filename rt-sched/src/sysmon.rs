//! `sysmon`: the runtime's monitor, on its own M without a P.
//!
//! Each cycle it sleeps 20 µs, doubling after 50 idle cycles up to 10 ms
//! (Go's back-off). What it does here: prints Go's `SCHED` trace every
//! `GODEBUG=schedtrace` ms, and gives free heap pages back to the OS through
//! the allocator's scavenger. rt has no preemption of running goroutines
//! (Rust code cannot be stopped at arbitrary points safely), so Go's
//! `retake` of long-running Gs is not done.

use crate::dump::schedtrace;
use crate::runtime2::SCHED;
use core::sync::atomic::Ordering;
use rt_sys::hook::Hook;

/// Hook sysmon calls about every 10 ms (the heap scavenger); wired at boot.
static TICK_HOOK: Hook<fn()> = Hook::new();

/// Installs the periodic hook.
pub fn set_tick_hook(f: fn()) {
    TICK_HOOK.set(f);
}

/// Starts sysmon on a new M (from `runtime.main`).
pub fn start() {
    crate::proc::newm(core::ptr::null_mut(), false, Some(sysmon));
}

fn sysmon() {
    let (trace, detail) = crate::proc::trace_config();
    let start = rt_sys::nanotime();
    let mut last_trace = i64::MIN;
    let mut last_tick = start;
    let mut idle = 0u32;
    let mut delay_us = 20u64;
    loop {
        if idle == 0 {
            delay_us = 20;
        } else if idle > 50 {
            delay_us = (delay_us * 2).min(10_000);
        }
        std::thread::sleep(std::time::Duration::from_micros(delay_us));
        if SCHED.exiting.load(Ordering::Relaxed) {
            // The process is on its way out through exit(3): stay out of
            // its way until it is gone.
            loop {
                std::thread::park();
            }
        }
        let now = rt_sys::nanotime();
        if trace > 0 && (last_trace == i64::MIN || now - last_trace >= trace as i64 * 1_000_000) {
            last_trace = now;
            let mut w = rt_sys::FdWriter(2);
            schedtrace(&mut w, (now - start) / 1_000_000, detail > 0);
            // Tracing keeps sysmon awake, as in Go.
            idle = 0;
            continue;
        }
        if now - last_tick >= 10_000_000 {
            last_tick = now;
            if let Some(f) = TICK_HOOK.get() {
                f();
            }
        }
        idle += 1;
    }
}
