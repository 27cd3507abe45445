//! `sysmon`: the runtime's monitor, on its own M without a P.
//!
//! Each cycle it sleeps 20 µs, doubling after 50 idle cycles up to 10 ms
//! (Go's back-off), and at most 2 ms while a P runs a goroutine (so that
//! one running for 10 ms is seen in time). It starts when first needed
//! ([`start_when_needed`]). What it does: Go's `retake` of Ps that ran one
//! goroutine for 10 ms, and placing the P of a goroutine a preemption
//! signal suspended (`crate::preempt`); polling the network when nobody
//! did for 10 ms; Go's `SCHED` trace every `GODEBUG=schedtrace` ms; and
//! giving free heap pages back to the OS through the allocator's
//! scavenger.

use crate::dump::schedtrace;
use crate::runtime2::{Note, SCHED};
use core::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use rt_sys::hook::Hook;

/// Hook sysmon calls about every 10 ms (the heap scavenger); wired at boot.
static TICK_HOOK: Hook<fn()> = Hook::new();

/// Installs the periodic hook.
pub fn set_tick_hook(f: fn()) {
    TICK_HOOK.set(f);
}

/// `nanotime()` as of sysmon's last cycle (at most 10 ms old while it
/// runs; 0 before it starts). Parking goroutines stamp their wait with it
/// for `[chan receive, N minutes]` at the price of a load, where a clock
/// read would cost the park path ~20 ns.
static COARSE_NOW: AtomicI64 = AtomicI64::new(0);

/// The coarse clock (see [`COARSE_NOW`]).
#[inline]
pub(crate) fn coarse_now() -> i64 {
    COARSE_NOW.load(Ordering::Relaxed)
}

/// Where sysmon sleeps between cycles; a preemption signal handler wakes
/// it early to place the P it gave up.
static WAKE: Note = Note::new();

/// Wakes sysmon now (async-signal-safe: a store and a futex wake).
pub(crate) fn wake() {
    WAKE.wakeup();
}

/// Set once sysmon's M has been asked for.
static STARTED: AtomicBool = AtomicBool::new(false);
/// Set by [`start_when_needed`]: the next goroutine, sleep or blocking call
/// starts sysmon.
static ARMED: AtomicBool = AtomicBool::new(false);

/// Starts sysmon on a new M now (once; later calls do nothing).
pub fn start() {
    if !STARTED.swap(true, Ordering::AcqRel) {
        crate::proc::newm(core::ptr::null_mut(), false, Some(sysmon));
    }
}

/// Called by `runtime.main`: starts sysmon now when `GODEBUG=schedtrace`
/// wants its lines, else on the first occasion that gives it work — the
/// first goroutine started after main, the first sleep, the first
/// [`blocking`](crate::blocking) call. A program that stays on goroutine 1
/// and never sleeps or blocks (a short command-line tool, say) then never
/// pays for sysmon's thread: starting it cost 165 µs of a 1.34 ms
/// whole-process `hello` (`cargo xtask bench --only boot`, 1338 → 1173 µs
/// median). What such a program forgoes is the heap scavenger's periodic
/// release of free pages.
pub fn start_when_needed() {
    if crate::proc::trace_config().0 > 0 {
        start();
    } else {
        ARMED.store(true, Ordering::Release);
    }
}

/// The trigger points' check: one relaxed load while sysmon runs or before
/// `runtime.main` armed it.
#[inline]
pub(crate) fn wanted() {
    if ARMED.load(Ordering::Relaxed) && !STARTED.load(Ordering::Relaxed) {
        start_armed();
    }
}

#[cold]
#[inline(never)]
fn start_armed() {
    start();
}

fn sysmon() {
    let (trace, detail) = crate::proc::trace_config();
    let start = rt_sys::nanotime();
    let mut last_trace = i64::MIN;
    let mut last_tick = start;
    let mut idle = 0u32;
    let mut delay_us = 20u64;
    let mut retake = crate::preempt::Retake::default();
    // When the next running P could be due for preemption.
    let mut retake_in: Option<i64> = None;
    loop {
        if idle == 0 {
            delay_us = 20;
        } else if idle > 50 {
            delay_us = (delay_us * 2).min(10_000);
        }
        let mut sleep_ns = delay_us as i64 * 1000;
        if let Some(r) = retake_in {
            // A P is running: look at it at least every 5 ms, so that a
            // goroutine that started running since the last look is timed
            // from within 5 ms of its start (schedtick says only *that* it
            // changed; `Retake` dates it no earlier than half the interval
            // back either way), and preempted within 15 ms. Each look is a
            // wake-up that takes a core from a busy P for a moment: every
            // 2 ms, as before, was 500 a second on an echo server's core.
            sleep_ns = sleep_ns.min(r.clamp(20_000, 5_000_000));
        }
        WAKE.sleep_timeout(sleep_ns);
        WAKE.clear();
        if crate::preempt::service() {
            idle = 0;
        }
        if SCHED.exiting.load(Ordering::Relaxed) {
            // The process is on its way out through exit(3): stay out of
            // its way until it is gone.
            loop {
                std::thread::park();
            }
        }
        let now = rt_sys::nanotime();
        COARSE_NOW.store(now, Ordering::Relaxed);
        crate::netpoll::sysmon_poll(now);
        let asked;
        (retake_in, asked) = retake.run(now);
        if asked {
            // Go's sysmon: a cycle that preempted is not idle.
            idle = 0;
        }
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
