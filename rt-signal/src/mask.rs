//! Signal masks and per-M signal stacks: `sigsave`, `initSigmask`,
//! `minitSignals` / `unminitSignals` (os_linux.go, signal_unix.go).
//!
//! 1. `schedinit` calls [`sigsave`] on m0 and stores the result with
//!    [`set_initial_mask`]: this is the mask the process inherited, and every
//!    M the runtime creates starts from it.
//! 2. Every M calls [`minit_signals`] as it starts: it installs the M's
//!    `gsignal` stack with `sigaltstack` (handlers run there, so a goroutine
//!    that overflowed its stack can still be reported) and sets the thread
//!    mask to the initial mask minus the signals the runtime must always
//!    receive ([`blockable`]).
//! 3. An M that exits calls [`unminit_signals`], which disables the
//!    alternate stack it installed before that memory is freed.

use core::cell::Cell;
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

/// Blocks every signal on the calling thread and returns the mask it had
/// (Go's `newosproc` does this around `clone`, so a new thread starts with
/// everything blocked until its `minit_signals`). Async-signal-safe.
pub fn block_all_signals() -> SigSet {
    SigSet(os::sigprocmask(libc::SIG_SETMASK, Some(!0)))
}

/// Sets the calling thread's mask to `m` exactly (the kernel never blocks
/// SIGKILL or SIGSTOP). Pairs with [`block_all_signals`]. Async-signal-safe.
pub fn set_thread_mask(m: SigSet) {
    os::sigprocmask(libc::SIG_SETMASK, Some(m.0));
}

thread_local! {
    /// The alternate stack this thread's `minit_signals` installed (its
    /// base), so `unminit_signals` disables only what it set up.
    static OWN_ALTSTACK: Cell<usize> = const { Cell::new(0) };
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
/// writable memory owned by this thread's M that stays mapped until
/// [`unminit_signals`] runs on this thread (or the thread exits).
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
        OWN_ALTSTACK.with(|c| c.set(altstack as usize));
    }
    let mask = initial_mask().0 & !unblockable_set().0;
    os::sigprocmask(libc::SIG_SETMASK, Some(mask));
}

/// Undoes [`minit_signals`] when an M exits (Go's `unminitSignals`): if the
/// thread's alternate stack is still the one `minit_signals` installed, it
/// is disabled so the memory can be freed. A stack adopted from elsewhere is
/// left alone.
pub fn unminit_signals() {
    let own = OWN_ALTSTACK.with(|c| c.replace(0));
    if own == 0 {
        return;
    }
    let cur = os::sigaltstack_get();
    if cur.ss_flags & libc::SS_DISABLE == 0 && cur.ss_sp as usize == own {
        let st = libc::stack_t {
            ss_sp: core::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        os::sigaltstack_set(&st);
    }
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

    #[test]
    fn block_all_then_restore_round_trips() {
        std::thread::spawn(|| {
            let start = os::sigbit(libc::SIGUSR2) | os::sigbit(50);
            set_thread_mask(SigSet(start));
            let old = block_all_signals();
            assert_eq!(old, SigSet(start));
            let kernel_never = os::sigbit(libc::SIGKILL) | os::sigbit(libc::SIGSTOP);
            assert_eq!(sigsave(), SigSet(!kernel_never));
            set_thread_mask(old);
            assert_eq!(sigsave(), SigSet(start));
        })
        .join()
        .unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// I30/I31: a fresh thread after `minit_signals` runs on the given
        /// alternate stack, with the saved mask minus the must-not-block
        /// signals (the kernel also never lets KILL and STOP be blocked).
        #[test]
        fn minit_sets_mask_and_altstack(inherited in any::<u64>()) {
            let _g = MASK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            set_initial_mask(SigSet(inherited));
            let (mask, st_sp, st_size, st_flags, base, after) = std::thread::spawn(|| {
                let mut stack = vec![0u8; GSIGNAL_STACK_SIZE];
                let base = stack.as_mut_ptr() as usize;
                // SAFETY: `stack` lives until after unminit_signals below.
                unsafe { minit_signals(stack.as_mut_ptr(), stack.len()) };
                let mask = sigsave().0;
                let st = os::sigaltstack_get();
                unminit_signals();
                let after = os::sigaltstack_get();
                drop(stack);
                (mask, st.ss_sp as usize, st.ss_size, st.ss_flags, base, after.ss_flags)
            })
            .join()
            .unwrap();
            let kernel_never = os::sigbit(libc::SIGKILL) | os::sigbit(libc::SIGSTOP);
            prop_assert_eq!(mask, inherited & !unblockable_set().0 & !kernel_never);
            prop_assert_eq!(st_sp, base);
            prop_assert_eq!(st_size, GSIGNAL_STACK_SIZE);
            prop_assert_eq!(st_flags & libc::SS_DISABLE, 0);
            prop_assert!(after & libc::SS_DISABLE != 0, "unminit_signals disables the stack");
        }
    }
}
