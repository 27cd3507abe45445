//! Installing the runtime's handler: `initsig`, and the enable / disable /
//! ignore operations the notify API drives (signal_unix.go).
//!
//! State, one slot per signal number 0..=64, all atomics so the handler can
//! read them without a lock:
//!
//! * `FWD[sig]`: the disposition found before the runtime took the signal
//!   over (Go's `fwdSig`): where a signal the runtime does not handle
//!   itself is forwarded, and what `reset`/`stop` put back.
//! * `HANDLING[sig]`: 1 while the runtime's handler is installed and wants
//!   the signal (Go's `handlingSig`).
//!
//! Writers (initsig, enable/disable/ignore) run outside handlers and are
//! serialised by `CHANGE`; handlers only read.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::os::{self, KSigaction};
use crate::table::{self, NSIG};

/// `SIG_DFL` as a handler value.
pub const SIG_DFL: usize = 0;
/// `SIG_IGN` as a handler value.
pub const SIG_IGN: usize = 1;

/// The saved previous disposition of one signal.
pub struct Fwd {
    pub handler: AtomicUsize,
    pub flags: AtomicU64,
    pub restorer: AtomicUsize,
    pub mask: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const FWD_INIT: Fwd = Fwd {
    handler: AtomicUsize::new(SIG_DFL),
    flags: AtomicU64::new(0),
    restorer: AtomicUsize::new(0),
    mask: AtomicU64::new(0),
};
#[allow(clippy::declare_interior_mutable_const)]
const ZERO32: AtomicU32 = AtomicU32::new(0);

/// Go's `fwdSig`.
pub static FWD: [Fwd; NSIG] = [FWD_INIT; NSIG];
/// Go's `handlingSig`.
pub static HANDLING: [AtomicU32; NSIG] = [ZERO32; NSIG];
/// Go's `signalsOK`: set once `initsig` ran.
pub static SIGNALS_OK: AtomicBool = AtomicBool::new(false);
/// Signals the program asked to ignore through [`crate::ignore`] (Go's
/// `sig.ignored`): a signal sent by `kill` to an ignored signal is dropped.
pub static IGNORED: AtomicU64 = AtomicU64::new(0);

/// Serialises every change of dispositions made outside handlers.
pub static CHANGE: Mutex<()> = Mutex::new(());

impl Fwd {
    fn save(&self, sa: &KSigaction) {
        self.flags.store(sa.flags, Ordering::Relaxed);
        self.restorer.store(sa.restorer, Ordering::Relaxed);
        self.mask.store(sa.mask, Ordering::Relaxed);
        self.handler.store(sa.handler, Ordering::Release);
    }
    fn load(&self) -> KSigaction {
        KSigaction {
            handler: self.handler.load(Ordering::Acquire),
            flags: self.flags.load(Ordering::Relaxed),
            restorer: self.restorer.load(Ordering::Relaxed),
            mask: self.mask.load(Ordering::Relaxed),
        }
    }
}

/// The handler address the runtime installs.
pub fn go_handler() -> usize {
    let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) = crate::handler::sigtramp;
    f as usize
}

/// The previous handler of `sig` that the runtime forwards to: `SIG_DFL`
/// (0), `SIG_IGN` (1) or a function address; `None` outside 1..=64 or
/// before [`initsig`] looked at the signal.
pub fn forwarded_handler(sig: i32) -> Option<usize> {
    let i = usize::try_from(sig).ok().filter(|&i| i > 0 && i < NSIG)?;
    let f = table::SIGTABLE[i].flags;
    if !SIGNALS_OK.load(Ordering::Acquire) || f == 0 || f & table::DEFAULT != 0 {
        return None;
    }
    Some(FWD[i].handler.load(Ordering::Acquire))
}

/// Whether the runtime's handler currently handles `sig` itself.
pub fn handling(sig: i32) -> bool {
    usize::try_from(sig)
        .ok()
        .filter(|&i| i < NSIG)
        .is_some_and(|i| HANDLING[i].load(Ordering::Acquire) != 0)
}

/// Go's `sigInstallGoHandler`: false for HUP and INT inherited as ignored
/// (so `nohup` works) and for the `SET_STACK` signals libc owns.
pub fn sig_install_go_handler(sig: i32) -> bool {
    let i = sig as usize;
    if (sig == libc::SIGHUP || sig == libc::SIGINT)
        && FWD[i].handler.load(Ordering::Acquire) == SIG_IGN
    {
        return false;
    }
    table::SIGTABLE[i].flags & table::SET_STACK == 0
}

/// Installs the runtime's handler on Go's set of signals (Go's `initsig`,
/// called once from `mstartm0` on m0, after `minit_signals`).
///
/// For every signal with table flags and without `DEFAULT`: the previous
/// disposition is remembered for forwarding; then the runtime's handler
/// goes in with `SA_SIGINFO | SA_ONSTACK | SA_RESTORER | SA_RESTART` and a
/// full `sa_mask` — except on a HUP/INT inherited as ignored (so `nohup`
/// works), which stays ignored, and on 32–34 (libc's own signals), where an
/// existing handler only gains `SA_ONSTACK` (it may run on a
/// goroutine-sized stack otherwise). KILL and STOP, and CONT/TSTP/TTIN/TTOU
/// (`DEFAULT`), are left as they are.
///
/// Calling it again is harmless: dispositions the runtime already owns are
/// not saved a second time.
pub fn initsig() {
    let _g = CHANGE.lock().unwrap_or_else(|e| e.into_inner());
    crate::report::cache_page_size();
    let ours = go_handler();
    for sig in 1..NSIG as i32 {
        let i = sig as usize;
        let flags = table::SIGTABLE[i].flags;
        if flags == 0 || flags & table::DEFAULT != 0 {
            continue;
        }
        let Some(old) = os::getsig(sig) else { continue };
        if old.handler != ours {
            FWD[i].save(&old);
        }
        if !sig_install_go_handler(sig) {
            if old.handler != SIG_DFL && old.handler != SIG_IGN {
                // Go's setsigstack: same handler, now on the signal stack.
                if old.flags & libc::SA_ONSTACK as u64 == 0 {
                    let mut sa = old;
                    sa.flags |= libc::SA_ONSTACK as u64;
                    os::setsig_raw(sig, &sa);
                }
            }
            continue;
        }
        HANDLING[i].store(1, Ordering::Release);
        if !os::setsig_handler(sig, ours) {
            HANDLING[i].store(0, Ordering::Release);
        }
    }
    SIGNALS_OK.store(true, Ordering::Release);
}

/// Go's `sigenable`: starts handling a notify signal (called when the first
/// notifier wants it). Caller holds `CHANGE`.
pub fn sigenable(sig: i32) {
    let i = sig as usize;
    if sig == libc::SIGPROF || table::SIGTABLE[i].flags & table::NOTIFY == 0 {
        return;
    }
    if HANDLING[i]
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        if let Some(old) = os::getsig(sig) {
            if old.handler != go_handler() {
                FWD[i].save(&old);
            }
        }
        if !os::setsig_handler(sig, go_handler()) {
            HANDLING[i].store(0, Ordering::Release);
        }
    }
}

/// Go's `sigdisable`: nobody wants `sig` any more. Signals the runtime
/// would not have taken at boot (an inherited-ignored HUP/INT, the
/// `DEFAULT` job-control signals) get their previous disposition back; the
/// others keep the runtime's handler, which applies the table's default.
/// Caller holds `CHANGE`.
pub fn sigdisable(sig: i32) {
    let i = sig as usize;
    let flags = table::SIGTABLE[i].flags;
    if sig == libc::SIGPROF || flags & table::NOTIFY == 0 {
        return;
    }
    if !sig_install_go_handler(sig) || flags & table::DEFAULT != 0 {
        HANDLING[i].store(0, Ordering::Release);
        let old = FWD[i].load();
        os::setsig_raw(sig, &old);
    }
}

/// Go's `sigignore`: sets a notify signal to `SIG_IGN`. Caller holds `CHANGE`.
pub fn sigignore(sig: i32) {
    let i = sig as usize;
    if sig == libc::SIGPROF || table::SIGTABLE[i].flags & table::NOTIFY == 0 {
        return;
    }
    HANDLING[i].store(0, Ordering::Release);
    os::set_default_or_ignore(sig, SIG_IGN);
}
