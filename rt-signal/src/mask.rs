//! Signal masks and per-M signal stacks: `sigsave`, `initSigmask`,
//! `minitSignals` (os_linux.go, signal_unix.go).
//!
//! 1. `schedinit` calls [`sigsave`] on m0 and stores the result with
//!    [`set_initial_mask`]: this is the mask the process inherited, and every
//!    M the runtime creates starts from it.
//! 2. Every M calls [`minit_signals`] as it starts: it installs the M's
//!    `gsignal` stack with `sigaltstack` (handlers run there, so a goroutine
//!    that overflowed its stack can still be reported) and sets the thread
//!    mask to the initial mask minus the signals the runtime must always
//!    receive ([`blockable`]).
//!
//! rt's Ms never exit, so there is no `unminitSignals`: an M's `gsignal`
//! stack stays its alternate stack for the life of the process.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::os;
use crate::table::{self, NSIG};

/// Bytes of the per-M signal stack (`gsignal`), as in Go: 32 KiB.
pub const GSIGNAL_STACK_SIZE: usize = 32 * 1024;

/// The kernel's 64-bit `sigset_t`: bit `n - 1` stands for signal `n`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SigSet(pub u64);

impl SigSet {
    /// No signal.
    pub const EMPTY: SigSet = SigSet(0);
    /// Every signal 1..=64.
    pub const FULL: SigSet = SigSet(!0);

    /// Whether `sig` (1..=64) is in the set; false for other numbers.
    pub fn contains(self, sig: i32) -> bool {
        (1..=64).contains(&sig) && self.0 & os::sigbit(sig) != 0
    }
    /// Adds `sig`; numbers outside 1..=64 are ignored.
    pub fn add(&mut self, sig: i32) {
        if (1..=64).contains(&sig) {
            self.0 |= os::sigbit(sig);
        }
    }
    /// Removes `sig`; numbers outside 1..=64 are ignored.
    pub fn del(&mut self, sig: i32) {
        if (1..=64).contains(&sig) {
            self.0 &= !os::sigbit(sig);
        }
    }
}

impl core::fmt::Debug for SigSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SigSet({:#018x})", self.0)
    }
}

/// The calling thread's signal mask (`rt_sigprocmask(SIG_SETMASK, NULL,
/// &old)`): at boot on m0, the mask the process inherited. Async-signal-safe.
pub fn sigsave() -> SigSet {
    SigSet(os::sigprocmask(libc::SIG_SETMASK, None))
}

/// Go's `initSigmask`: the starting mask of every M the runtime creates.
static INIT_SIGMASK: AtomicU64 = AtomicU64::new(0);

/// Stores `m` (from [`sigsave`] on m0) as the mask every new M starts from.
pub fn set_initial_mask(m: SigSet) {
    INIT_SIGMASK.store(m.0, Ordering::Relaxed);
}

/// The mask stored by [`set_initial_mask`] (empty before it is called).
pub fn initial_mask() -> SigSet {
    SigSet(INIT_SIGMASK.load(Ordering::Relaxed))
}

/// `GODEBUG=asyncpreemptoff=1`: when set, SIGURG may be blocked like any
/// notify-only signal.
static ASYNC_PREEMPT_OFF: AtomicBool = AtomicBool::new(false);

/// Records `GODEBUG=asyncpreemptoff` (Go's `debug.asyncpreemptoff`): while
/// preemption by signal is on, its signal (SIGURG) is never blocked.
pub fn set_async_preempt_off(off: bool) {
    ASYNC_PREEMPT_OFF.store(off, Ordering::Relaxed);
}

/// The preemption signal (Go's `sigPreempt`).
pub const SIG_PREEMPT: i32 = libc::SIGURG;

/// Go's `blockableSig` for an executable: false for signals that must never
/// sit blocked in a runtime thread's mask — the `UNBLOCK` ones (synchronous
/// faults, SIGCHLD, SIGPROF, 32–34), the preemption signal while async
/// preemption is on, and the `KILL`/`THROW` ones (HUP, INT, QUIT, ILL, TRAP,
/// ABRT, TERM, STKFLT, SYS) so that they always reach a handler.
pub fn blockable(sig: i32) -> bool {
    let Ok(i) = usize::try_from(sig) else {
        return true;
    };
    if i >= NSIG {
        return true;
    }
    let flags = table::SIGTABLE[i].flags;
    if flags & table::UNBLOCK != 0 {
        return false;
    }
    if sig == SIG_PREEMPT && !ASYNC_PREEMPT_OFF.load(Ordering::Relaxed) {
        return false;
    }
    flags & (table::KILL | table::THROW) == 0
}

/// The set of signals [`blockable`] refuses.
pub fn unblockable_set() -> SigSet {
    let mut s = SigSet::EMPTY;
    for sig in 1..=64 {
        if !blockable(sig) {
            s.add(sig);
        }
    }
    s
}

/// Per-M signal set-up (Go's `minitSignals`), on the thread being started:
///
/// * installs `[altstack, altstack + size)` as the thread's alternate signal
///   stack (Go's gsignal stack; [`GSIGNAL_STACK_SIZE`] is the usual size).
///   A null `altstack` keeps whatever alternate stack the thread has, as Go
///   does for threads that arrive with one (cgo);
/// * sets the thread mask to [`initial_mask`] minus the signals that must
///   never be blocked ([`unblockable_set`]).
///
/// A stack the kernel refuses (smaller than `MINSIGSTKSZ`) is a fatal error,
/// as in Go.
///
/// # Safety
/// When `altstack` is not null, `[altstack, altstack + size)` must be
/// writable memory owned by this thread's M that stays mapped for as long
/// as the thread lives (rt's Ms never exit, and their `gsignal` stacks are
/// never freed), or until the thread installs another alternate stack.
pub unsafe fn minit_signals(altstack: *mut u8, size: usize) {
    if !altstack.is_null() {
        let st = libc::stack_t {
            ss_sp: altstack.cast(),
            ss_flags: 0,
            ss_size: size,
        };
        if !os::sigaltstack_set(&st) {
            rt_sys::throw("sigaltstack failed");
        }
    }
    let mask = initial_mask().0 & !unblockable_set().0;
    os::sigprocmask(libc::SIG_SETMASK, Some(mask));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Mutex;

    /// The initial mask is process-wide: tests that set it run one at a time.
    static MASK_LOCK: Mutex<()> = Mutex::new(());

    #[test]
    fn unblockable_set_is_gos() {
        let s = unblockable_set();
        for sig in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGABRT,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGSEGV,
            libc::SIGTERM,
            libc::SIGSTKFLT,
            libc::SIGCHLD,
            libc::SIGURG,
            libc::SIGPROF,
            libc::SIGSYS,
            32,
            33,
            34,
        ] {
            assert!(s.contains(sig), "{sig} must never be blocked");
        }
        for sig in [
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGPIPE,
            libc::SIGALRM,
            libc::SIGWINCH,
            35,
            64,
        ] {
            assert!(!s.contains(sig), "{sig} may be blocked");
        }
    }

    #[test]
    fn sigsave_reads_the_thread_mask() {
        std::thread::spawn(|| {
            let want = os::sigbit(libc::SIGUSR1) | os::sigbit(libc::SIGWINCH) | os::sigbit(40);
            os::sigprocmask(libc::SIG_SETMASK, Some(want));
            assert_eq!(sigsave(), SigSet(want));
        })
        .join()
        .unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Invariants I30 and I31 (HACKING.md): a fresh thread after
        /// `minit_signals` runs on the given alternate stack, with the saved
        /// mask minus the must-not-block signals (the kernel also never lets
        /// KILL and STOP be blocked).
        #[test]
        fn minit_sets_mask_and_altstack(inherited in any::<u64>()) {
            let _g = MASK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            set_initial_mask(SigSet(inherited));
            let (mask, st_sp, st_size, st_flags, base) = std::thread::spawn(|| {
                let mut stack = vec![0u8; GSIGNAL_STACK_SIZE];
                let base = stack.as_mut_ptr() as usize;
                // SAFETY: `stack` stays alive until the alternate stack is
                // disabled below.
                unsafe { minit_signals(stack.as_mut_ptr(), stack.len()) };
                let mask = sigsave().0;
                let st = os::sigaltstack_get();
                // Unlike an M, this thread's stack memory is freed before
                // the thread ends: take it out of use first.
                let off = libc::stack_t {
                    ss_sp: core::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                assert!(os::sigaltstack_set(&off), "disabling the alternate stack");
                drop(stack);
                (mask, st.ss_sp as usize, st.ss_size, st.ss_flags, base)
            })
            .join()
            .unwrap();
            let kernel_never = os::sigbit(libc::SIGKILL) | os::sigbit(libc::SIGSTOP);
            prop_assert_eq!(mask, inherited & !unblockable_set().0 & !kernel_never);
            prop_assert_eq!(st_sp, base);
            prop_assert_eq!(st_size, GSIGNAL_STACK_SIZE);
            prop_assert_eq!(st_flags & libc::SS_DISABLE, 0);
        }
    }
}
