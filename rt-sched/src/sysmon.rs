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
//!
//! When every P has been idle, with no goroutine run anywhere, for
//! [`DEEP_SLEEP_AFTER`], sysmon gives the heap back once more and sleeps
//! until a P leaves the idle list ([`wake_if_deep`], from `pidleget`), as
//! Go's sysmon does on `sysmonnote`. An idle server then costs no wake-ups
//! at all, where the 10 ms back-off ceiling alone was 100 a second.

use crate::dump::schedtrace;
use crate::runtime2::{Note, SCHED};
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
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

/// Hook sysmon calls before a deep sleep (the heap and stack scavengers'
/// full pass); wired at boot.
static IDLE_HOOK: Hook<fn()> = Hook::new();

/// Installs the hook run before sysmon sleeps until work comes back.
pub fn set_idle_hook(f: fn()) {
    IDLE_HOOK.set(f);
}

/// How long every P must have been idle, with no `schedtick` moving, before
/// sysmon sleeps until a P leaves the idle list. Long enough that a server
/// handling a request every second or faster never pays the futex wake of
/// [`wake_if_deep`] on its way from idle to running; short enough that an
/// idle process settles within a couple of seconds.
pub(crate) const DEEP_SLEEP_AFTER: i64 = 1_000_000_000;

/// Set (under the scheduler lock) while sysmon sleeps until a P leaves the
/// idle list; cleared by whoever takes it and wakes sysmon.
static DEEP: AtomicBool = AtomicBool::new(false);

/// How many times sysmon went to sleep until a P left the idle list.
static DEEP_SLEEPS: AtomicU64 = AtomicU64::new(0);

/// How many times sysmon has gone to sleep until a P left the idle list
/// (every P idle for [`DEEP_SLEEP_AFTER`]); for tests and diagnostics.
pub fn deep_sleeps() -> u64 {
    DEEP_SLEEPS.load(Ordering::Relaxed)
}

/// Called by `pidleget` with the scheduler lock held, right after a P left
/// the idle list: wakes sysmon if it sleeps deeply. One relaxed load
/// otherwise. Sysmon decides to sleep under the same lock after seeing
/// every P idle, so a P taken after that decision sees the flag, and one
/// taken before it made sysmon stay up.
#[inline]
pub(crate) fn wake_if_deep() {
    if DEEP.load(Ordering::Relaxed) {
        wake_from_deep();
    }
}

#[cold]
#[inline(never)]
fn wake_from_deep() {
    DEEP.store(false, Ordering::Relaxed);
    // Goroutines that park before sysmon's first cycle stamp their wait
    // with the coarse clock: bring it up to date for them.
    COARSE_NOW.store(rt_sys::nanotime(), Ordering::Relaxed);
    WAKE.wakeup();
}

/// Sysmon's record of whether the Ps have stayed idle, one look per cycle.
#[derive(Debug, Default)]
struct IdleWatch {
    /// The sum of every P's `schedtick` at the last look.
    ticks: u64,
    /// Since when every look found every P idle and the ticks unchanged.
    since: Option<i64>,
}

impl IdleWatch {
    /// Records a look at `now`: `all_idle` when every P sat on the idle
    /// list with no P-less M about, `ticks` the sum of the Ps' `schedtick`.
    /// True when the Ps have been idle for [`DEEP_SLEEP_AFTER`] since.
    fn look(&mut self, now: i64, all_idle: bool, ticks: u64) -> bool {
        let moved = ticks != self.ticks;
        self.ticks = ticks;
        if !all_idle || moved {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        now - since >= DEEP_SLEEP_AFTER
    }
}

/// Whether every P is idle and no M runs a goroutine without one.
fn all_idle() -> bool {
    SCHED.npidle.load(Ordering::Acquire) as i32 == SCHED.gomaxprocs.load(Ordering::Acquire)
        && !crate::preempt::any_pless()
}

/// The sum of every P's `schedtick`.
fn schedticks() -> u64 {
    let mut sum = 0u64;
    crate::proc::for_each_p(|pp| {
        // SAFETY: Ps are never freed; schedtick is an atomic.
        sum += u64::from(unsafe { (*pp).schedtick.load(Ordering::Relaxed) });
    });
    sum
}

/// Sleeps until a P leaves the idle list, if every P is still idle under
/// the scheduler lock; returns whether it slept.
fn deep_sleep() -> bool {
    if let Some(f) = IDLE_HOOK.get() {
        f();
    }
    {
        let _s = SCHED.lock();
        if !all_idle() {
            return false;
        }
        DEEP.store(true, Ordering::Relaxed);
        DEEP_SLEEPS.fetch_add(1, Ordering::Relaxed);
    }
    WAKE.sleep();
    WAKE.clear();
    // A preemption signal's wake-up (a P-less M) also ends the sleep.
    DEEP.store(false, Ordering::Relaxed);
    true
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
    let mut watch = IdleWatch::default();
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
        if retake_in.is_none() && watch.look(now, all_idle(), schedticks()) && deep_sleep() {
            watch = IdleWatch::default();
            idle = 0;
            continue;
        }
        idle += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn sleeps_after_a_second_of_idle_looks_with_still_ticks() {
        let mut w = IdleWatch::default();
        assert!(
            !w.look(0, true, 5),
            "the first look sees the ticks move from 0"
        );
        assert!(!w.look(10 * MS, true, 5));
        assert!(!w.look(DEEP_SLEEP_AFTER + 9 * MS, true, 5));
        assert!(w.look(DEEP_SLEEP_AFTER + 10 * MS, true, 5));
    }

    #[test]
    fn a_run_or_a_busy_look_restarts_the_wait() {
        // A look that finds a P busy, or every P idle but the ticks moved
        // (a goroutine ran in between): the second of idle starts again
        // from the next look that sees neither.
        for (idle, ticks) in [(false, 1), (true, 2)] {
            let mut w = IdleWatch::default();
            w.look(0, true, 1);
            w.look(10 * MS, true, 1);
            assert!(!w.look(500 * MS, idle, ticks));
            assert!(!w.look(510 * MS, true, ticks));
            assert!(!w.look(DEEP_SLEEP_AFTER + 509 * MS, true, ticks));
            assert!(w.look(DEEP_SLEEP_AFTER + 510 * MS, true, ticks));
        }
    }

    #[test]
    fn tick_counter_wrap_counts_as_movement() {
        let mut w = IdleWatch::default();
        w.look(0, true, u64::from(u32::MAX));
        w.look(MS, true, u64::from(u32::MAX));
        assert!(!w.look(2 * DEEP_SLEEP_AFTER, true, 0));
    }
}
