//! Goroutine panics, Go style.
//!
//! A Rust panic in a goroutine unwinds to the goroutine's first frame. When
//! the goroutine was spawned with a join handle, the payload is handed to
//! whoever joins (`JoinHandle::join` returns `Err`), like a recovered panic.
//! Otherwise nobody can recover it, and the program ends as an unrecovered Go
//! panic does: `panic: <message>`, a blank line, `goroutine N [running]:`,
//! the panic's location, and exit status 2.
//!
//! The panic hook installed by [`install_hook`] records the message,
//! location and stack (the frames, walked where the panic started, before
//! unwinding tears them down) of a panic on a goroutine instead of
//! printing Rust's `thread '…' panicked` line (a recovered Go panic prints
//! nothing); panics on threads that are not goroutines go to the previous
//! hook unchanged. The frames are symbolized only if nobody recovers.

use crate::proc::{getg_checked, goid_of};
use crate::runtime2::G;
use rt_traceback::{Frame, MAX_FRAMES};
use std::fmt::Write as _;

/// Installs the goroutine-aware panic hook (once, at boot).
pub fn install_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let gp = getg_checked();
        // SAFETY: reading the running goroutine's flags.
        let on_goroutine = !gp.is_null() && unsafe { !(*gp).system && (*gp).goid != 0 };
        if !on_goroutine {
            prev(info);
            return;
        }
        let here = rt_traceback::Regs::here();
        let msg = payload_str(info.payload());
        let loc = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        // SAFETY: gp is the running goroutine; its stack bounds are fixed
        // while it runs.
        let (lo, hi) = unsafe { ((*gp).stack.lo, (*gp).stack.hi) };
        let mut frames = [Frame::default(); MAX_FRAMES];
        let n = crate::dump::walk_goroutine(here, true, lo, hi, &mut frames);
        record_report(
            gp,
            Report {
                msg,
                loc,
                frames: frames[..n].to_vec(),
            },
        );
    }));
}

/// What the hook keeps of a goroutine's panic.
struct Report {
    msg: String,
    loc: String,
    /// The stack where the panic started, innermost first.
    frames: Vec<Frame>,
}

/// Message and location of the last panic of each goroutine that panicked
/// and has not exited yet, by goid. Not a thread-local: a destructor that
/// parks while the panic unwinds may move the goroutine to another M
/// before its report is printed. Not a field of the G either: only
/// panicking goroutines pay for it (a flag on the G says there is one).
static REPORTS: std::sync::Mutex<Vec<(i64, Report)>> = std::sync::Mutex::new(Vec::new());

fn record_report(gp: *mut G, report: Report) {
    // SAFETY: gp is the running goroutine; only it touches its flag.
    let goid = unsafe {
        (*gp).panic_recorded = true;
        (*gp).goid
    };
    let mut r = REPORTS.lock().unwrap_or_else(|e| e.into_inner());
    r.retain(|(g, _)| *g != goid);
    r.push((goid, report));
}

fn take_report(gp: *mut G) -> Option<Report> {
    // SAFETY: gp is the running goroutine.
    let goid = unsafe { (*gp).goid };
    let mut r = REPORTS.lock().unwrap_or_else(|e| e.into_inner());
    let i = r.iter().position(|(g, _)| *g == goid)?;
    Some(r.swap_remove(i).1)
}

/// Drops the report of a goroutine that exits (its panic was recovered
/// through a join handle, or nobody asked).
pub(crate) fn forget_report(gp: *mut G) {
    // SAFETY: gp is the goroutine that is exiting; we run on g0 of its M.
    unsafe { (*gp).panic_recorded = false };
    let _ = take_report(gp);
}

fn payload_str(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// The message of a panic payload, as a join handle reports it.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    payload_str(p)
}

/// Ends the program for a panic nobody recovered (see the module docs).
pub(crate) fn unrecovered(gp: *mut G, payload: Box<dyn std::any::Any + Send>) -> ! {
    // One report at a time: a second goroutine panicking meanwhile waits.
    rt_sys::enter_fatal();
    // SAFETY: gp is the running goroutine.
    unsafe { (*gp).panicking = true };
    let r = take_report(gp).unwrap_or_else(|| Report {
        msg: payload_str(&*payload),
        loc: String::new(),
        frames: Vec::new(),
    });
    let mut out = String::new();
    let _ = writeln!(out, "panic: {}", r.msg);
    // GOTRACEBACK=none (level 0) prints the panic line alone, as Go does.
    let level = crate::dump::traceback_level();
    if level > 0 {
        let _ = write!(out, "\ngoroutine {} [running]:\n", goid_of(gp));
        rt_traceback::on_report_stack(|| {
            let n = rt_traceback::print_frames(
                &mut out,
                &r.frames,
                r.frames.len() == MAX_FRAMES,
                level,
            );
            if n == 0 && !r.loc.is_empty() {
                // No frame of the program's own: the panic's location.
                let _ = writeln!(out, "\t{}", r.loc);
            }
            // SAFETY: gp is the running goroutine; these fields are fixed
            // while it lives.
            let (gopc, parent) = unsafe { ((*gp).gopc, (*gp).parentgoid) };
            rt_traceback::print_created_by(&mut out, gopc, parent, level);
        });
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    rt_sys::write_stderr(out.as_bytes());
    crate::dump::dump_others(gp);
    if let Some(f) = PANIC_EXIT.get() {
        f();
    }
    rt_sys::exit_now(2)
}

static PANIC_EXIT: rt_sys::hook::Hook<fn() -> !> = rt_sys::hook::Hook::new();

/// How the process ends after an unrecovered panic's report (default: exit
/// status 2). The runtime wires `GOTRACEBACK=crash` (die by SIGABRT) here.
pub fn set_panic_exit_hook(f: fn() -> !) {
    PANIC_EXIT.set(f);
}
