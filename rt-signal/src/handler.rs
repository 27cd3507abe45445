//! The signal handler itself: `sigtramp` → forward-or-handle → the action
//! the table and the notify state pick (Go's `sigtrampgo`, `sigfwdgo`,
//! `sighandler`, `dieFromSignal`).
//!
//! Async-signal-safety: the handler and everything it calls use only
//! atomics, raw system calls and `core::fmt` into a file descriptor — no
//! allocation, no lock, no thread-local with lazy initialisation. It keeps
//! `errno` as it found it. It runs on the thread's alternate signal stack
//! (installed by `minit_signals`) with every signal blocked (`sa_mask`
//! full).
//!
//! Decision order for a delivered signal `sig`:
//!
//! 1. Forwarding (`sigfwd`): a signal the runtime is not handling goes to
//!    the disposition found at `initsig` (a handler is called, `SIG_IGN`
//!    drops it, `SIG_DFL` kills the process by that signal). A synchronous
//!    fault (or SIGPIPE) outside goroutine code is forwarded to a previous
//!    handler too, when there was one.
//! 2. SIGPROF: no profiler here; dropped.
//! 3. A synchronous fault in goroutine code: crash report ([`report::fault`]).
//! 4. A notifiable signal, or any signal sent by kill(2): delivered to the
//!    notifiers that want it, if any, and done.
//! 5. Sent by kill(2) to a signal the program ignores: dropped.
//! 6. `KILL` (HUP, INT, TERM): the process dies by the signal.
//! 7. Neither `THROW` nor `PANIC`: dropped (the `IGN` ones, USR1, ALRM …
//!    when nobody listens, as in Go).
//! 8. Otherwise a `SIGQUIT: quit`-style report ([`report::throw_signal`]).

use core::sync::atomic::Ordering;

use crate::arch::SigCtxt;
use crate::install::{self, FWD, HANDLING, IGNORED, SIG_DFL, SIG_IGN};
use crate::{notify, os, report, table};

/// `si_code` of a signal sent by kill(2).
const SI_USER: i32 = 0;

/// The entry the kernel calls (`SA_SIGINFO` convention).
pub extern "C" fn sigtramp(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is the calling thread's own variable, always readable.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: `info` and `ctx` are the kernel's arguments to this handler
    // and live until it returns; the SigCtxt does not outlive this call.
    let c = unsafe { SigCtxt::new(info, ctx) };
    if !sigfwd(sig, info, ctx, &c) {
        sighandler(sig, &c);
    }
    // SAFETY: errno is the calling thread's own variable, always writable.
    unsafe { *libc::__errno_location() = errno };
}

/// Whether the interrupted code counts as goroutine code. Without hooks the
/// whole program is the runtime's (the crate used on its own), so yes.
fn in_go_code() -> bool {
    match report::hooks() {
        None => true,
        Some(h) => (h.current_goroutine)().is_some(),
    }
}

/// Calls the saved previous handler of `sig`.
fn call_forward(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let i = sig as usize;
    let f = FWD[i].handler.load(Ordering::Acquire);
    if f == SIG_DFL || f == SIG_IGN || f == install::go_handler() {
        return;
    }
    if FWD[i].flags.load(Ordering::Relaxed) & libc::SA_SIGINFO as u64 != 0 {
        // `f` was read back from the kernel as the SA_SIGINFO handler
        // installed before the runtime's; it expects these arguments.
        let h: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
            // SAFETY: as just said, `f` is such a handler.
            unsafe { core::mem::transmute::<usize, _>(f) };
        h(sig, info, ctx);
    } else {
        // SAFETY: `f` was read back from the kernel as a plain sa_handler.
        let h: extern "C" fn(i32) = unsafe { core::mem::transmute::<usize, _>(f) };
        h(sig);
    }
}

/// Go's `sigfwdgo`: true when the signal was dealt with by forwarding.
fn sigfwd(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void, c: &SigCtxt) -> bool {
    let Ok(i) = usize::try_from(sig) else {
        return false;
    };
    if i == 0 || i >= table::NSIG {
        return false;
    }
    let fwd = FWD[i].handler.load(Ordering::Acquire);
    let flags = table::SIGTABLE[i].flags;

    if HANDLING[i].load(Ordering::Acquire) == 0 {
        if fwd == SIG_IGN || (fwd == SIG_DFL && flags & table::IGN != 0) {
            return true;
        }
        if fwd == SIG_DFL {
            // Nobody wants it: the default action, which for the signals
            // that reach here ends the process. The default goes in first
            // so the raise inside cannot come back here.
            os::set_default_or_ignore(sig, SIG_DFL);
            die_from_signal(sig);
        }
        call_forward(sig, info, ctx);
        return true;
    }
    if fwd == SIG_DFL {
        return false;
    }
    // Only synchronous faults and SIGPIPE raised outside goroutine code go
    // back to the previous handler.
    if (c.sigcode() == SI_USER || flags & table::PANIC == 0) && sig != libc::SIGPIPE {
        return false;
    }
    if in_go_code() {
        return false;
    }
    call_forward(sig, info, ctx);
    true
}

/// What SIGURG does for the scheduler (its asynchronous preemption),
/// before the signal's ordinary handling; installed at boot.
static PREEMPT: rt_sys::hook::Hook<fn(rt_traceback::Regs, u64, usize)> = rt_sys::hook::Hook::new();

/// Installs the scheduler's preemption step for SIGURG: called in the
/// handler with the interrupted registers, signal mask and rax (which,
/// with the bytes at the pc, tells a thread blocked in a system call). It
/// must be async-signal-safe.
pub fn set_preempt_hook(f: fn(rt_traceback::Regs, u64, usize)) {
    PREEMPT.set(f);
}

/// Go's `sighandler`, minus profiling.
fn sighandler(sig: i32, c: &SigCtxt) {
    if sig == libc::SIGPROF {
        return;
    }
    if sig == libc::SIGURG {
        // Go's doSigPreempt; SIGURG then goes on to notify, as in Go.
        if let Some(f) = PREEMPT.get() {
            f(c.walk_regs(), c.sigmask(), c.ax());
        }
    }
    let flags = table::flags(sig);
    let code = c.sigcode();
    if code != SI_USER && flags & table::PANIC != 0 {
        report::fault(sig, c);
    }
    if (code == SI_USER || flags & table::NOTIFY != 0) && notify::sigsend(sig) {
        return;
    }
    if code == SI_USER
        && (1..=64).contains(&sig)
        && IGNORED.load(Ordering::Acquire) & os::sigbit(sig) != 0
    {
        return;
    }
    if flags & table::KILL != 0 {
        die_from_signal(sig);
    }
    if flags & (table::THROW | table::PANIC) == 0 {
        return;
    }
    report::throw_signal(sig, c);
}

/// Go's `dieFromSignal`: ends the process by `sig` so the parent sees the
/// right status. The runtime stops handling `sig` and raises it: the
/// previous handler (if any) runs first, then the default action. If the
/// process is somehow still alive, exit status 2.
pub fn die_from_signal(sig: i32) -> ! {
    if (1..=64).contains(&sig) {
        os::sigprocmask(libc::SIG_UNBLOCK, Some(os::sigbit(sig)));
        if (sig as usize) < table::NSIG {
            HANDLING[sig as usize].store(0, Ordering::Release);
        }
        os::raise(sig);
        for _ in 0..3 {
            os::osyield();
        }
        os::set_default_or_ignore(sig, SIG_DFL);
        os::raise(sig);
        for _ in 0..3 {
            os::osyield();
        }
    }
    rt_sys::exit_now(2)
}
