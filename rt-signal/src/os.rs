//! The kernel calls this crate makes, as raw system calls.
//!
//! glibc's wrappers are avoided where they would change the answer: its
//! `sigaction` refuses signals 32 and 33 (its own SIGCANCEL/SIGSETXID) and
//! its `sigprocmask` silently drops them from a mask, while the runtime must
//! see and set the kernel's state exactly. The one exception is installing
//! the runtime's own handler, which goes through `libc::sigaction` so glibc
//! supplies the `SA_RESTORER` trampoline (`__restore_rt`) the x86-64 kernel
//! needs to return from a handler.
//!
//! Everything here is async-signal-safe: plain system calls on caller-owned
//! memory.

use core::sync::atomic::{AtomicUsize, Ordering};

/// `SA_RESTORER`: the kernel returns through `sa_restorer` (x86-64 requires it).
pub const SA_RESTORER: u64 = 0x0400_0000;

/// The kernel's `struct sigaction` on x86-64 (not glibc's, whose mask is
/// 128 bytes): handler, flags, restorer, 64-bit mask.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KSigaction {
    /// `SIG_DFL` (0), `SIG_IGN` (1) or the handler's address.
    pub handler: usize,
    /// `SA_*` flags.
    pub flags: u64,
    /// The return trampoline used with `SA_RESTORER`.
    pub restorer: usize,
    /// Signals blocked while the handler runs, bit `sig - 1` per signal.
    pub mask: u64,
}

/// Reads the disposition of `sig` (`rt_sigaction(sig, NULL, &old)`), or
/// `None` when the kernel refuses the number.
pub fn getsig(sig: i32) -> Option<KSigaction> {
    let mut old = KSigaction::default();
    // SAFETY: `old` is a live, writable KSigaction of the kernel's layout;
    // the kernel writes at most size_of::<KSigaction>() bytes into it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            core::ptr::null::<KSigaction>(),
            &mut old as *mut KSigaction,
            8usize,
        )
    };
    (r == 0).then_some(old)
}

/// Sets the disposition of `sig` exactly as given
/// (`rt_sigaction(sig, &sa, NULL)`). Returns false when the kernel refuses.
/// A handler installed this way must carry its own working restorer.
pub fn setsig_raw(sig: i32, sa: &KSigaction) -> bool {
    // SAFETY: `sa` is a live KSigaction of the kernel's layout, only read.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            sa as *const KSigaction,
            core::ptr::null_mut::<KSigaction>(),
            8usize,
        )
    };
    r == 0
}

/// Sets `sig` to `SIG_DFL` or `SIG_IGN` (`handler` 0 or 1).
pub fn set_default_or_ignore(sig: i32, handler: usize) -> bool {
    debug_assert!(handler <= 1);
    setsig_raw(
        sig,
        &KSigaction {
            handler,
            flags: 0,
            restorer: 0,
            mask: 0,
        },
    )
}

/// The `SA_RESTORER` trampoline glibc put in the last handler installed with
/// `libc::sigaction`, kept so raw installs can reuse it. 0 until known.
static RESTORER: AtomicUsize = AtomicUsize::new(0);

/// Installs `handler` (an `extern "C" fn(i32, *mut siginfo_t, *mut c_void)`)
/// on `sig` with Go's flags: `SA_SIGINFO | SA_ONSTACK | SA_RESTART` plus the
/// `SA_RESTORER` glibc adds, and every signal in `sa_mask` (the kernel drops
/// KILL and STOP). Returns false when the kernel refuses.
pub fn setsig_handler(sig: i32, handler: usize) -> bool {
    let restorer = RESTORER.load(Ordering::Relaxed);
    if restorer != 0 {
        // Raw path: works for every number, including the ones glibc's
        // wrapper refuses.
        let sa = KSigaction {
            handler,
            flags: (libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART) as u64 | SA_RESTORER,
            restorer,
            mask: !0,
        };
        return setsig_raw(sig, &sa);
    }
    // SAFETY: an all-zero sigaction is a valid value of the C struct.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = handler;
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    // SAFETY: sa_mask is plain bytes; all ones is the full set (glibc's
    // sigfillset would leave out its internal signals 32 and 33).
    unsafe {
        core::ptr::write_bytes(
            &mut sa.sa_mask as *mut libc::sigset_t as *mut u8,
            0xff,
            core::mem::size_of::<libc::sigset_t>(),
        )
    };
    // SAFETY: `sa` is fully initialised; a null old-action pointer is allowed.
    let r = unsafe { libc::sigaction(sig, &sa, core::ptr::null_mut()) };
    if r != 0 {
        return false;
    }
    if let Some(now) = getsig(sig) {
        if now.flags & SA_RESTORER != 0 {
            RESTORER.store(now.restorer, Ordering::Relaxed);
        }
    }
    true
}

/// `rt_sigprocmask(how, set, &old)` on the calling thread, by raw system
/// call (see the module docs for why not glibc's): lives in `rt-sys` so the
/// scheduler's `newm` masks a new thread's signals the same way.
pub use rt_sys::sigprocmask;

#[cfg(test)]
/// Reads the calling thread's alternate signal stack.
pub fn sigaltstack_get() -> libc::stack_t {
    let mut old = libc::stack_t {
        ss_sp: core::ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // SAFETY: a null new stack only queries; `old` is live and writable.
    unsafe { libc::sigaltstack(core::ptr::null(), &mut old) };
    old
}

/// Sets the calling thread's alternate signal stack; false on failure
/// (too small, or the thread is running on the current one).
pub fn sigaltstack_set(st: &libc::stack_t) -> bool {
    // SAFETY: `st` is a live stack_t, only read; a null old pointer is allowed.
    unsafe { libc::sigaltstack(st, core::ptr::null_mut()) == 0 }
}

/// Sends `sig` to the calling thread (`tgkill(getpid(), gettid(), sig)`).
pub fn raise(sig: i32) {
    // SAFETY: getpid/gettid/tgkill have no memory arguments.
    unsafe {
        let pid = libc::getpid();
        libc::syscall(libc::SYS_tgkill, pid, rt_sys::gettid(), sig);
    }
}

/// Gives up the CPU once (`sched_yield`).
pub fn osyield() {
    // SAFETY: sched_yield has no arguments.
    unsafe { libc::sched_yield() };
}

/// The bit for `sig` in a kernel signal mask (`sig` in 1..=64).
pub const fn sigbit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}
