//! Goroutine reports: the `goroutine N [status]:` sections that fatal errors,
//! crashes and SIGQUIT print, and Go's `SCHED` trace lines.
//!
//! Nothing here takes the scheduler lock, and the stack walks neither
//! allocate nor lock, so the reports work from a signal handler and after a
//! fatal error; they read racy snapshots. Symbolizing the frames allocates
//! (see `rt_traceback`): goroutine sections are printed on dying paths only.

use crate::proc::for_each_p;
use crate::runtime2::*;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use rt_traceback::{Frame, Regs, MAX_FRAMES};

/// `gp`'s goid, or -1 for none (Go's trace convention).
fn goid_or_minus1(gp: *mut G) -> i64 {
    if gp.is_null() {
        return -1;
    }
    // SAFETY: Gs are never freed; goid is set before a G is published.
    unsafe { (*gp).goid }
}

/// `mp`'s id, or -1 for none.
fn mid_or_minus1(mp: *mut M) -> i64 {
    if mp.is_null() {
        return -1;
    }
    // SAFETY: Ms are never freed; id is set before an M is published.
    unsafe { (*mp).id }
}

/// Go's name for a status in `goroutine N [<status>]:`.
pub(crate) fn status_string(gp: &G) -> &'static str {
    match gp.atomicstatus.load(Ordering::Relaxed) {
        GIDLE => "idle",
        GRUNNABLE => "runnable",
        GRUNNING => "running",
        GSYSCALL => "syscall",
        GPREEMPTED => "preempted",
        GWAITING => {
            if gp.waitreason.is_empty() {
                "waiting"
            } else {
                gp.waitreason
            }
        }
        GDEAD => "dead",
        _ => "???",
    }
}

/// Traceback level of the current `GOTRACEBACK` (set at boot).
static TRACEBACK: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(1 << 2);

/// Records the `GOTRACEBACK` setting in Go's encoding (`level<<2 | all<<1 | crash`).
pub fn set_traceback_bits(bits: u32) {
    TRACEBACK.store(bits, Ordering::Relaxed);
}

/// Writes the section of one goroutine (header, frames, `created by`).
pub(crate) fn write_goroutine(w: &mut dyn Write, gp: *mut G, level: u32) {
    // SAFETY: Gs are never freed; fields are read as a racy snapshot.
    let g = unsafe { &*gp };
    write_section(w, g, status_string(g), None, level);
}

/// Go's section header: `goroutine 7 [chan receive, 2 minutes, locked to
/// thread]:`. The wait shows in whole minutes once it reaches one, and only
/// for a goroutine whose wait start is known (`since` ≠ 0).
fn write_header(w: &mut dyn Write, goid: i64, status: &str, since: i64, now: i64, locked: bool) {
    let _ = write!(w, "goroutine {} [{}", goid, status);
    if since != 0 {
        let minutes = (now - since) / 60_000_000_000;
        if minutes >= 1 {
            let _ = write!(w, ", {} minutes", minutes);
        }
    }
    if locked {
        let _ = write!(w, ", locked to thread");
    }
    let _ = writeln!(w, "]:");
}

/// One goroutine's section. `current` is the registers of the goroutine
/// the report is about when it is running on the reporting thread (from
/// the signal context or the reporting call); every other goroutine is
/// walked from what it left behind: the context it switched out with, or
/// for one in a blocking call the registers where it entered it. A
/// goroutine running on another thread cannot be walked.
fn write_section(w: &mut dyn Write, g: &G, status: &str, current: Option<&Regs>, level: u32) {
    let st = g.atomicstatus.load(Ordering::Relaxed);
    let since = if st == GWAITING { g.waitsince } else { 0 };
    write_header(
        w,
        g.goid,
        status,
        since,
        rt_sys::nanotime(),
        !g.lockedm.is_null(),
    );
    let (lo, hi) = (g.stack.lo, g.stack.hi);
    let start = match current {
        Some(r) => Some((*r, true)),
        None if lo == 0 => None,
        None => match st {
            GRUNNING => {
                let _ = writeln!(w, "\tgoroutine running on other thread; stack unavailable");
                None
            }
            GSYSCALL if g.syscallregs.pc != 0 => Some((g.syscallregs, true)),
            GPREEMPTED => Some((g.preemptregs, true)),
            // SAFETY: the goroutine is parked or queued, so its gobuf is
            // its switched-out context; reads stay inside its stack.
            GWAITING | GRUNNABLE => unsafe { crate::arch::saved_regs(&g.sched, lo, hi) },
            _ => None,
        },
    };
    if let Some((regs, exact)) = start {
        let mut frames = [Frame::default(); MAX_FRAMES];
        let n = walk_goroutine(regs, exact, lo, hi, &mut frames);
        rt_traceback::print_frames(w, &frames[..n], n == MAX_FRAMES, level);
    } else if lo == 0 {
        // Lazy binding: a goroutine that never ran has no stack yet.
        let _ = writeln!(w, "\t(not started: no stack yet)");
    }
    rt_traceback::print_created_by(w, g.gopc, g.parentgoid, level);
}

/// Walks a goroutine's stack (see `rt_traceback::walk`), ending at its
/// first frame: the return address into `rt_goexit` is where every
/// goroutine's stack begins, whatever a symbolizer would make of it.
pub(crate) fn walk_goroutine(
    regs: Regs,
    exact: bool,
    lo: usize,
    hi: usize,
    out: &mut [Frame],
) -> usize {
    let n = rt_traceback::walk(regs, exact, lo, hi, out);
    let bottom = crate::arch::goexit_pc();
    out[..n].iter().position(|f| f.pc == bottom).unwrap_or(n)
}

/// Writes every user goroutine except `skip` (GOTRACEBACK=all and above);
/// with `level >= 2` runtime goroutines too.
pub fn write_all(w: &mut dyn Write, skip_goid: i64, level: u32) {
    rt_traceback::on_report_stack(|| write_all_here(w, skip_goid, level));
}

fn write_all_here(w: &mut dyn Write, skip_goid: i64, level: u32) {
    // A crash may happen while ALLGS is locked by the crashing thread itself;
    // never block on it.
    let Ok(all) = ALLGS.try_lock() else {
        let _ = writeln!(w, "(goroutine list busy)");
        return;
    };
    for &g in all.iter() {
        let gp = g as *mut G;
        // SAFETY: Gs are never freed.
        let gr = unsafe { &*gp };
        let st = gr.atomicstatus.load(Ordering::Relaxed);
        if st == GDEAD || st == GIDLE || gr.goid == skip_goid {
            continue;
        }
        if gr.system && level < 2 {
            continue;
        }
        let _ = writeln!(w);
        write_goroutine(w, gp, level);
    }
}

/// The `GOTRACEBACK` level (0 for `none`).
pub(crate) fn traceback_level() -> u32 {
    TRACEBACK.load(Ordering::Relaxed) >> 2
}

/// After an unrecovered panic: the other goroutines, if GOTRACEBACK asks.
pub(crate) fn dump_others(gp: *mut G) {
    let bits = TRACEBACK.load(Ordering::Relaxed);
    // Go's dopanic_m: other goroutines only with `all`, and nothing at
    // level 0 (GOTRACEBACK=none, or a bad value, which sets `all` alone).
    if bits >> 2 > 0 && bits & 2 != 0 {
        // write_all puts the blank line before each section.
        let mut w = rt_sys::FdWriter(2);
        // SAFETY: gp is live.
        write_all(&mut w, unsafe { (*gp).goid }, bits >> 2);
    }
}

/// Go's `schedtrace(detailed)`: one `SCHED` line, and with `detailed` the
/// per-P, per-M and per-G lines. After Go's fields and the run-queue
/// lengths, the `SCHED` line carries rt's counters since start (see
/// `SchedStats`): `steals=` (half-ring steals), `runnextsteals=`,
/// `overflows=` (local batches moved to the global queue), `wakeups=` (Ms
/// started or woken for an idle P), `parks=` (Ms that went to sleep) and
/// `preemptions=` (goroutines suspended in place by a preemption signal)
/// and `handoffs=` (Ps given up by goroutines a preemption signal found
/// blocked in the kernel).
/// Many wake-ups and parks per goroutine readied means Ms churn; many
/// overflows, that work funnels through the global queue.
pub fn schedtrace(w: &mut dyn Write, ms_since_start: i64, detailed: bool) {
    let gomaxprocs = SCHED.gomaxprocs.load(Ordering::Relaxed);
    let _ = write!(
        w,
        "SCHED {}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} idlethreads={} runqueue={}",
        ms_since_start,
        gomaxprocs,
        SCHED.npidle.load(Ordering::Relaxed),
        SCHED.mcount.load(Ordering::Relaxed),
        SCHED.nmspinning.load(Ordering::Relaxed),
        // SAFETY: a racy read of a counter, as Go's trace does.
        unsafe { (*SCHED.locked_racy()).nmidle },
        SCHED.runqsize.load(Ordering::Relaxed),
    );
    if detailed {
        let _ = write!(
            w,
            " gcwaiting={} nmidlelocked={} stopwait={} sysmonwait=0",
            SCHED.gcwaiting.load(Ordering::Relaxed) as u8,
            // SAFETY: a racy read of a counter, as Go's trace does.
            unsafe { (*SCHED.locked_racy()).nmidlelocked },
            SCHED.stopwait.load(Ordering::Relaxed)
        );
        write_counters(w);
        let _ = writeln!(w);
        for_each_p(|pp| {
            // SAFETY: Ps are never freed.
            let p = unsafe { &*pp };
            let m = p.m.load(Ordering::Relaxed);
            // SAFETY: Ms are never freed.
            let mid = if m.is_null() { -1 } else { unsafe { (*m).id } };
            let _ = writeln!(
                w,
                "  P{}: status={} schedtick={} syscalltick={} m={} runqsize={} gfreecnt={} timerslen={}",
                p.id,
                p.status.load(Ordering::Relaxed),
                p.schedtick.load(Ordering::Relaxed),
                p.syscalltick.load(Ordering::Relaxed),
                mid,
                p.runq.stealer().len(),
                p.gfreecnt,
                p.timers.len()
            );
        });
        let mut mp = ALLM.load(Ordering::Acquire);
        while !mp.is_null() {
            // SAFETY: Ms are never freed.
            let m = unsafe { &*mp };
            let p = m.p.load(Ordering::Relaxed);
            // SAFETY: Ps are never freed.
            let pid = if p.is_null() { -1 } else { unsafe { (*p).id } };
            let curg = goid_or_minus1(m.curg);
            let lockedg = goid_or_minus1(m.lockedg.load(Ordering::Relaxed));
            let _ = writeln!(
                w,
                "  M{}: p={} curg={} spinning={} blocked={} detached={} lockedg={}",
                m.id,
                pid,
                curg,
                m.spinning.load(Ordering::Relaxed),
                m.blocked.load(Ordering::Relaxed),
                m.detached.load(Ordering::Relaxed),
                lockedg
            );
            mp = m.alllink;
        }
        if let Ok(all) = ALLGS.try_lock() {
            for &g in all.iter() {
                // SAFETY: Gs are never freed.
                let g = unsafe { &*(g as *mut G) };
                let mid = mid_or_minus1(g.m);
                let lockedm = mid_or_minus1(g.lockedm);
                let _ = writeln!(
                    w,
                    "  G{}: status={}({}) m={} lockedm={}",
                    g.goid,
                    g.atomicstatus.load(Ordering::Relaxed),
                    if g.atomicstatus.load(Ordering::Relaxed) == GWAITING {
                        g.waitreason
                    } else {
                        ""
                    },
                    mid,
                    lockedm
                );
            }
        }
    } else {
        let _ = write!(w, " [");
        let mut first = true;
        for_each_p(|pp| {
            // SAFETY: Ps are never freed.
            let n = unsafe { (*pp).runq.stealer().len() };
            let _ = write!(w, "{}{}", if first { "" } else { " " }, n);
            first = false;
        });
        let _ = write!(w, "]");
        write_counters(w);
        let _ = writeln!(w);
    }
}

/// rt's counters on the `SCHED` line (see [`schedtrace`]).
fn write_counters(w: &mut dyn Write) {
    let st = &SCHED.stats;
    let _ = write!(
        w,
        " steals={} runnextsteals={} overflows={} wakeups={} parks={} preemptions={} handoffs={}",
        st.steals.load(Ordering::Relaxed),
        st.runnext_steals.load(Ordering::Relaxed),
        st.overflows.load(Ordering::Relaxed),
        st.wakeups.load(Ordering::Relaxed),
        st.parks.load(Ordering::Relaxed),
        st.preemptions.load(Ordering::Relaxed),
        st.handoffs.load(Ordering::Relaxed)
    );
}

/// The goroutine report for crash reports and fatal errors (the signal
/// crate's `dump_goroutines` hook): `current_goid` first as `[running]`
/// (when it names a goroutine), walked from `current` when given, then,
/// with `all`, every other user goroutine — runtime ones too at
/// `level >= 2`. Sections are separated by blank lines. The walks are
/// async-signal-safe; printing the frames symbolizes them, which
/// allocates, so this belongs on a dying path only. It runs on the report
/// stack.
pub fn write_report(
    w: &mut dyn Write,
    current: Option<&Regs>,
    current_goid: i64,
    all: bool,
    level: u32,
) {
    rt_traceback::on_report_stack(|| write_report_here(w, current, current_goid, all, level));
}

fn write_report_here(
    w: &mut dyn Write,
    current: Option<&Regs>,
    current_goid: i64,
    all: bool,
    level: u32,
) {
    let Ok(list) = ALLGS.try_lock() else {
        let _ = writeln!(w, "(goroutine list busy)");
        return;
    };
    let mut first = true;
    if current_goid > 0 {
        for &g in list.iter() {
            // SAFETY: Gs are never freed.
            let g = unsafe { &*(g as *mut G) };
            if g.goid == current_goid && g.atomicstatus.load(Ordering::Relaxed) != GDEAD {
                write_section(w, g, "running", current, level);
                first = false;
                break;
            }
        }
    }
    if !all {
        return;
    }
    for &g in list.iter() {
        // SAFETY: Gs are never freed.
        let gr = unsafe { &*(g as *mut G) };
        let st = gr.atomicstatus.load(Ordering::Relaxed);
        if st == GDEAD || st == GIDLE || gr.goid == current_goid || (gr.system && level < 2) {
            continue;
        }
        if !first {
            let _ = writeln!(w);
        }
        write_section(w, gr, status_string(gr), None, level);
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::write_header;

    fn header(status: &str, since: i64, now: i64, locked: bool) -> String {
        let mut s = String::new();
        write_header(&mut s, 7, status, since, now, locked);
        s
    }

    #[test]
    fn header_as_go_prints_it() {
        const MIN: i64 = 60_000_000_000;
        assert_eq!(
            header("chan receive", 0, 5 * MIN, false),
            "goroutine 7 [chan receive]:\n"
        );
        assert_eq!(
            header("chan receive", MIN, MIN + MIN - 1, false),
            "goroutine 7 [chan receive]:\n"
        );
        assert_eq!(
            header("chan receive", MIN, 3 * MIN + 5, false),
            "goroutine 7 [chan receive, 2 minutes]:\n"
        );
        assert_eq!(
            header("select", 1, 1 + MIN, true),
            "goroutine 7 [select, 1 minutes, locked to thread]:\n"
        );
        assert_eq!(
            header("running", 0, 0, true),
            "goroutine 7 [running, locked to thread]:\n"
        );
    }
}
