//! Go's signal table for linux (sigtab_linux_generic.go): for each of the
//! 65 signal numbers, what the runtime does with it and the name printed in
//! reports.
//!
//! The flags drive every decision elsewhere in the crate:
//! `initsig` installs the handler where the flags allow it, `minit_signals`
//! keeps the `UNBLOCK` (and, in an executable, `KILL`/`THROW`) signals out of
//! every thread's mask, and the handler picks notify / die / ignore / panic /
//! throw from them.

/// Deliverable to a [`Notifier`](crate::Notifier) (`_SigNotify`).
pub const NOTIFY: u8 = 1 << 0;
/// Die quietly (by the signal itself) when nobody is notified (`_SigKill`).
pub const KILL: u8 = 1 << 1;
/// Print `SIGxxx: …`, the goroutines, and exit 2 (`_SigThrow`).
pub const THROW: u8 = 1 << 2;
/// A synchronous fault in goroutine code: Go's run-time panic (`_SigPanic`).
pub const PANIC: u8 = 1 << 3;
/// Never blocked in a thread's mask (`_SigUnblock`).
pub const UNBLOCK: u8 = 1 << 4;
/// Ignored when nobody is notified (`_SigIgn`).
pub const IGN: u8 = 1 << 5;
/// Left at its default action unless somebody is notified (`_SigDefault`).
pub const DEFAULT: u8 = 1 << 6;
/// Owned by libc; the runtime only adds `SA_ONSTACK` (`_SigSetStack`).
pub const SET_STACK: u8 = 1 << 7;

/// Number of signal numbers the table covers (`_NSIG`): 0 ..= 64.
pub const NSIG: usize = 65;

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct SigTab {
    /// A combination of the flag constants above.
    pub flags: u8,
    /// The text Go prints for the signal, e.g. `SIGSEGV: segmentation violation`.
    pub name: &'static str,
}

const fn t(flags: u8, name: &'static str) -> SigTab {
    SigTab { flags, name }
}

const N: u8 = NOTIFY;
const K: u8 = KILL;
const T: u8 = THROW;
const P: u8 = PANIC;
const U: u8 = UNBLOCK;
const I: u8 = IGN;
const D: u8 = DEFAULT;
const S: u8 = SET_STACK;

/// The table, indexed by signal number.
pub static SIGTABLE: [SigTab; NSIG] = [
    t(0, "SIGNONE: no trap"),
    t(N | K, "SIGHUP: terminal line hangup"),
    t(N | K, "SIGINT: interrupt"),
    t(N | T, "SIGQUIT: quit"),
    t(T | U, "SIGILL: illegal instruction"),
    t(T | U, "SIGTRAP: trace trap"),
    t(N | T, "SIGABRT: abort"),
    t(P | U, "SIGBUS: bus error"),
    t(P | U, "SIGFPE: floating-point exception"),
    t(0, "SIGKILL: kill"),
    t(N, "SIGUSR1: user-defined signal 1"),
    t(P | U, "SIGSEGV: segmentation violation"),
    t(N, "SIGUSR2: user-defined signal 2"),
    t(N, "SIGPIPE: write to broken pipe"),
    t(N, "SIGALRM: alarm clock"),
    t(N | K, "SIGTERM: termination"),
    t(T | U, "SIGSTKFLT: stack fault"),
    t(N | U | I, "SIGCHLD: child status has changed"),
    t(N | D | I, "SIGCONT: continue"),
    t(0, "SIGSTOP: stop, unblockable"),
    t(N | D | I, "SIGTSTP: keyboard stop"),
    t(N | D | I, "SIGTTIN: background read from tty"),
    t(N | D | I, "SIGTTOU: background write to tty"),
    t(N | I, "SIGURG: urgent condition on socket"),
    t(N, "SIGXCPU: cpu limit exceeded"),
    t(N, "SIGXFSZ: file size limit exceeded"),
    t(N, "SIGVTALRM: virtual alarm clock"),
    t(N | U, "SIGPROF: profiling alarm clock"),
    t(N | I, "SIGWINCH: window size change"),
    t(N, "SIGIO: i/o now possible"),
    t(N, "SIGPWR: power failure restart"),
    t(T, "SIGSYS: bad system call"),
    // 32: glibc's SIGCANCEL, 33: glibc's SIGSETXID, 34: musl's SIGSYNCCALL.
    t(S | U, "signal 32"),
    t(S | U, "signal 33"),
    t(S | U, "signal 34"),
    t(N, "signal 35"),
    t(N, "signal 36"),
    t(N, "signal 37"),
    t(N, "signal 38"),
    t(N, "signal 39"),
    t(N, "signal 40"),
    t(N, "signal 41"),
    t(N, "signal 42"),
    t(N, "signal 43"),
    t(N, "signal 44"),
    t(N, "signal 45"),
    t(N, "signal 46"),
    t(N, "signal 47"),
    t(N, "signal 48"),
    t(N, "signal 49"),
    t(N, "signal 50"),
    t(N, "signal 51"),
    t(N, "signal 52"),
    t(N, "signal 53"),
    t(N, "signal 54"),
    t(N, "signal 55"),
    t(N, "signal 56"),
    t(N, "signal 57"),
    t(N, "signal 58"),
    t(N, "signal 59"),
    t(N, "signal 60"),
    t(N, "signal 61"),
    t(N, "signal 62"),
    t(N, "signal 63"),
    t(N, "signal 64"),
];

/// The flags of `sig`; a number outside the table gets `THROW`, as Go's
/// handler treats an unknown signal.
pub fn flags(sig: i32) -> u8 {
    match usize::try_from(sig) {
        Ok(i) if i < NSIG => SIGTABLE[i].flags,
        _ => THROW,
    }
}

/// Go's name for `sig` as printed in reports (`"SIGSEGV: segmentation
/// violation"`, `"signal 40"`), or `""` for a number outside 0..=64 (Go's
/// `signame` returns the empty string there too).
pub fn signal_name(sig: i32) -> &'static str {
    match usize::try_from(sig) {
        Ok(i) if i < NSIG => SIGTABLE[i].name,
        _ => "",
    }
}

/// The bare `SIGxxx` part of [`signal_name`] (`"SIGSEGV"`), or the whole name
/// when there is none (`"signal 40"`).
pub fn short_name(sig: i32) -> &'static str {
    let name = signal_name(sig);
    match name.find(':') {
        Some(i) => &name[..i],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_c_constants() {
        // The libc constants pin the row order: a shifted row would pair a
        // name with the wrong number.
        let pairs = [
            (libc::SIGHUP, "SIGHUP"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGQUIT, "SIGQUIT"),
            (libc::SIGILL, "SIGILL"),
            (libc::SIGTRAP, "SIGTRAP"),
            (libc::SIGABRT, "SIGABRT"),
            (libc::SIGBUS, "SIGBUS"),
            (libc::SIGFPE, "SIGFPE"),
            (libc::SIGKILL, "SIGKILL"),
            (libc::SIGUSR1, "SIGUSR1"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGUSR2, "SIGUSR2"),
            (libc::SIGPIPE, "SIGPIPE"),
            (libc::SIGALRM, "SIGALRM"),
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGSTKFLT, "SIGSTKFLT"),
            (libc::SIGCHLD, "SIGCHLD"),
            (libc::SIGCONT, "SIGCONT"),
            (libc::SIGSTOP, "SIGSTOP"),
            (libc::SIGTSTP, "SIGTSTP"),
            (libc::SIGTTIN, "SIGTTIN"),
            (libc::SIGTTOU, "SIGTTOU"),
            (libc::SIGURG, "SIGURG"),
            (libc::SIGXCPU, "SIGXCPU"),
            (libc::SIGXFSZ, "SIGXFSZ"),
            (libc::SIGVTALRM, "SIGVTALRM"),
            (libc::SIGPROF, "SIGPROF"),
            (libc::SIGWINCH, "SIGWINCH"),
            (libc::SIGIO, "SIGIO"),
            (libc::SIGPWR, "SIGPWR"),
            (libc::SIGSYS, "SIGSYS"),
        ];
        for (sig, short) in pairs {
            assert_eq!(short_name(sig), short, "signal {sig}");
        }
        for sig in 32..=64 {
            assert_eq!(signal_name(sig), format!("signal {sig}"));
        }
    }

    #[test]
    fn out_of_range_is_unnamed_and_throws() {
        for sig in [-1, 65, 1000, i32::MIN, i32::MAX] {
            assert_eq!(signal_name(sig), "");
            assert_eq!(flags(sig), THROW);
        }
    }

    #[test]
    fn table_shape_matches_go() {
        // Every signal but 0, KILL and STOP has some meaning.
        for (i, row) in SIGTABLE.iter().enumerate() {
            let none = i == 0 || i == 9 || i == 19;
            assert_eq!(row.flags == 0, none, "signal {i}");
        }
        // The synchronous faults are exactly BUS, FPE, SEGV.
        let panics: Vec<usize> = (0..NSIG)
            .filter(|&i| SIGTABLE[i].flags & PANIC != 0)
            .collect();
        assert_eq!(panics, vec![7, 8, 11]);
        // _SigKill: HUP, INT, TERM.
        let kills: Vec<usize> = (0..NSIG)
            .filter(|&i| SIGTABLE[i].flags & KILL != 0)
            .collect();
        assert_eq!(kills, vec![1, 2, 15]);
    }
}
