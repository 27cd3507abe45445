//! The OS floor every rt crate stands on.
//!
//! Every phase crate depends on this one. `rt-heap`, `rt-signal` and
//! `rt-env` depend on nothing else of rt; `rt-stack` reads `GODEBUG` through
//! `rt-env`'s parser; `rt-sched` builds on `rt-stack`, `rt-heap` and
//! `rt-env` too, and `rt-entry` composes them all.
//! What they all need is small and lives here:
//!
//! * [`write_fd`] / [`StackBuf`]: output that neither allocates nor locks, so it
//!   works inside the allocator, on a signal stack and after memory ran out;
//! * [`throw`] / [`fatal!`]: Go's `throw` — `fatal error: <msg>` on fd 2, the
//!   goroutine report the installed [`FatalHook`] prints (the scheduler wires
//!   it at boot), and exit status 2;
//! * [`futex_wait`] / [`futex_wake`]: the parking primitive under `note`s;
//! * [`lock`]: the runtime's futex [`Lock`] and the [`lock::Mutex`] that
//!   guards a value with it (scheduler and allocator);
//! * [`hook`]: slots for function pointers that one crate calls and a
//!   later one installs (the fatal hook, the scheduler's start and tick
//!   hooks);
//! * [`sigprocmask`]: the calling thread's signal mask, by raw system call;
//! * [`tls`]: the layout of the per-M block the GS base points at, which the
//!   scheduler and the allocator both read;
//! * [`phase`]: the trait each crate implements for the `schedinit` phases
//!   it owns, and the boot facts handed to them.
//!
//! Nothing here allocates, except a phase's trace detail, which is built
//! only when the trace prints it.

#![warn(missing_docs)]

use core::fmt;
mod arch;
pub mod hook;
pub mod lock;
pub mod phase;
pub mod tls;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};
pub use lock::Lock;

/// Writes all of `bytes` to `fd` with raw `write(2)` calls, retrying on
/// `EINTR` and short writes. Errors are dropped: this is the path of last
/// resort and has nobody to report to. Async-signal-safe.
pub fn write_fd(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a live slice; write(2) reads at most `len` bytes from it.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            // SAFETY: errno is thread-local and always readable.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Writes `bytes` to standard error. Async-signal-safe.
pub fn write_stderr(bytes: &[u8]) {
    write_fd(2, bytes);
}

/// A fixed-capacity text buffer on the stack implementing [`fmt::Write`], so
/// runtime code can format numbers where allocating is not allowed (signal
/// handlers, the allocator, fatal paths). Text past the capacity is dropped
/// and `overflowed` is set.
pub struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// True when some text did not fit and was dropped.
    pub overflowed: bool,
}

impl<const N: usize> StackBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
            overflowed: false,
        }
    }
    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    /// The text written so far (always valid UTF-8 up to a dropped tail,
    /// since only whole `&str` pieces are appended).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
    /// Forgets the contents.
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }
    /// Writes the contents to `fd` and clears the buffer.
    pub fn flush_to(&mut self, fd: i32) {
        write_fd(fd, self.as_bytes());
        self.clear();
    }
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for StackBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackBuf")
            .field("text", &self.as_str())
            .finish()
    }
}

impl<const N: usize> fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        if s.len() > room {
            // Keep whole characters only so `as_str` stays valid.
            let mut cut = room;
            while cut > 0 && !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.buf[self.len..self.len + cut].copy_from_slice(&s.as_bytes()[..cut]);
            self.len += cut;
            self.overflowed = true;
            return Ok(());
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// A [`fmt::Write`] that sends every piece straight to a file descriptor.
/// Used for long reports (goroutine dumps) that must not allocate.
#[derive(Debug, Clone, Copy)]
pub struct FdWriter(pub i32);

impl fmt::Write for FdWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_fd(self.0, s.as_bytes());
        Ok(())
    }
}

/// What the runtime prints after a `fatal error:` line and how it ends the
/// process. The scheduler installs one at boot that prints the goroutine
/// report `GOTRACEBACK` asks for and, for `GOTRACEBACK=crash`, re-raises
/// `SIGABRT`. It must not return.
pub type FatalHook = fn(msg: &str) -> !;

static FATAL_HOOK: hook::Hook<FatalHook> = hook::Hook::new();
static THROWING: AtomicU32 = AtomicU32::new(0);

/// Installs the hook [`throw`] runs after printing its line.
pub fn set_fatal_hook(hook: FatalHook) {
    FATAL_HOOK.set(hook);
}

/// Go's `throw`: prints `fatal error: <msg>` to fd 2, runs the installed
/// [`FatalHook`] (goroutine report), and exits with status 2.
///
/// Never allocates. A second throw while one is in progress (a fault inside
/// the report) skips the hook and exits at once, so a broken report cannot
/// hide the first line.
#[cold]
#[inline(never)]
pub fn throw(msg: &str) -> ! {
    enter_fatal();
    write_stderr(b"fatal error: ");
    write_stderr(msg.as_bytes());
    write_stderr(b"\n");
    finish_fatal(msg)
}

/// [`throw`] with a formatted message, built in a stack buffer.
#[cold]
#[inline(never)]
pub fn throw_fmt(args: fmt::Arguments<'_>) -> ! {
    let mut buf = StackBuf::<512>::new();
    let _ = fmt::write(&mut buf, args);
    throw(buf.as_str())
}

/// Prints a `fatal error:` line built from format arguments and exits with
/// status 2 (see [`throw`]).
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => { $crate::throw_fmt(format_args!($($arg)*)) };
}

/// The thread that is printing a fatal report (its tid), or 0.
static FATAL_THREAD: AtomicU32 = AtomicU32::new(0);

/// Claims the right to print a fatal report (Go's `startpanic_m`). Only
/// one thread reports: another thread that fails while a report is being
/// printed waits here forever (the process is about to exit), so reports
/// never interleave. A second failure on the reporting thread itself (a
/// fault inside the report) returns, and the hook is skipped.
pub fn enter_fatal() {
    let me = gettid() as u32;
    match FATAL_THREAD.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(t) if t == me => {}
        Err(_) => loop {
            let never = AtomicU32::new(0);
            futex_wait(&never, 0, None);
        },
    }
}

/// Runs the fatal hook once (if installed) and exits with status 2. For
/// callers that printed their own first line (e.g. `panic: …`).
#[cold]
pub fn finish_fatal(msg: &str) -> ! {
    enter_fatal();
    if THROWING.fetch_add(1, Ordering::AcqRel) == 0 {
        if let Some(hook) = FATAL_HOOK.get() {
            hook(msg);
        }
    }
    exit_now(2)
}

/// Ends the process with `code` without running atexit handlers or Rust
/// destructors (`_exit(2)`): the fatal path must not depend on state that
/// may be broken. Use [`std::process::exit`] after flushing for normal exits.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// Blocks while `*word == expected`, for at most `timeout_ns` nanoseconds when
/// given. Returns on wake-up, time-out, signal or a changed word; callers
/// re-check their condition. Private futex: the word is not shared across
/// processes.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: Option<u64>) {
    let ts;
    let tsp = match timeout_ns {
        Some(ns) => {
            ts = libc::timespec {
                tv_sec: (ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns % 1_000_000_000) as libc::c_long,
            };
            &ts as *const libc::timespec
        }
        None => core::ptr::null(),
    };
    // SAFETY: `word` is a live, aligned u32 for the duration of the call;
    // FUTEX_WAIT only reads it; `tsp` is null or points at a live timespec.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            tsp,
        );
    }
}

/// Wakes up to `n` threads blocked in [`futex_wait`] on `word`.
pub fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not access memory
    // beyond identifying the futex by address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        );
    }
}

/// Monotonic clock in nanoseconds (`nanotime`). Goes through the vDSO via libc.
pub fn nanotime() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec that clock_gettime fills in.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Thread id of the last thread an allocation failed on (0: none).
static ALLOC_FAILED_ON: AtomicI32 = AtomicI32::new(0);

/// Notes that an allocation just failed on this thread for want of memory.
/// Rust turns an unhandled failure into `abort()` (after its own message);
/// the SIGABRT handler asks [`alloc_failed_here`] to report that abort as
/// Go's `fatal error: out of memory` with status 2. A failure the program
/// handles (`try_reserve`) leaves only this note behind.
pub fn note_alloc_failure() {
    ALLOC_FAILED_ON.store(gettid(), Ordering::Relaxed);
}

/// True when the last failed allocation was on the calling thread: an
/// abort raised here now is the one Rust makes of it. (A program that
/// handled such a failure and later calls `abort()` itself on the same
/// thread would be misreported; nothing else is.)
pub fn alloc_failed_here() -> bool {
    ALLOC_FAILED_ON.load(Ordering::Relaxed) == gettid()
}

/// `rt_sigprocmask(how, set, &old)` on the calling thread; `set` None only
/// reads. Returns the previous mask (the kernel's 64-bit `sigset_t`).
///
/// A raw system call, not glibc's `sigprocmask`/`pthread_sigmask`: those
/// silently drop signals 32 and 33 (glibc's SIGCANCEL/SIGSETXID) from the
/// mask, while the runtime must set the kernel's mask exactly (a new M
/// starts with every signal blocked). Async-signal-safe.
pub fn sigprocmask(how: i32, set: Option<u64>) -> u64 {
    let mut old: u64 = 0;
    let new = set.unwrap_or(0);
    let newp = if set.is_some() {
        &new as *const u64
    } else {
        core::ptr::null()
    };
    // SAFETY: `newp` is null or points at a live u64; `old` is a live u64;
    // sigsetsize 8 matches both.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            newp,
            &mut old as *mut u64,
            8usize,
        );
    }
    old
}

/// The kernel thread id of the calling thread (`gettid`).
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn stackbuf_truncates_on_char_boundary() {
        let mut b = StackBuf::<5>::new();
        write!(b, "ab").unwrap();
        write!(b, "cdé").unwrap(); // 'é' is 2 bytes and does not fit at offset 4
        assert_eq!(b.as_str(), "abcd");
        assert!(b.overflowed);
    }

    #[test]
    fn stackbuf_formats_numbers() {
        let mut b = StackBuf::<64>::new();
        let status = "running";
        write!(b, "goroutine {} [{status}]:", 17).unwrap();
        assert_eq!(b.as_str(), "goroutine 17 [running]:");
        assert!(!b.overflowed);
    }

    /// Runs `f` on a thread of its own and returns its result; fails the
    /// test if `f` has not returned within a minute (a wait that never
    /// ends would otherwise hang the test run).
    fn on_thread_bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("futex_wait did not return within 60 s")
    }

    /// Calls `futex_wait` and returns the errno the kernel left for it
    /// (futex_wait goes through libc's `syscall`, which reports the
    /// kernel's answer there), cleared beforehand.
    fn futex_wait_errno(w: &AtomicU32, expected: u32, timeout_ns: Option<u64>) -> i32 {
        // SAFETY: __errno_location returns this thread's errno slot, valid
        // for the life of the thread.
        unsafe { *libc::__errno_location() = 0 };
        futex_wait(w, expected, timeout_ns);
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    #[test]
    fn futex_wait_returns_when_word_differs() {
        // Nobody ever wakes this waiter: it can only return because the
        // word (1) is not the value it expects (0), which the kernel
        // reports as EAGAIN.
        let (errno, word) = on_thread_bounded(|| {
            let w = AtomicU32::new(1);
            (futex_wait_errno(&w, 0, None), w.load(Ordering::Relaxed))
        });
        assert_eq!(errno, libc::EAGAIN, "returned for another reason");
        assert_eq!(word, 1);
    }

    #[test]
    fn futex_wait_with_a_timeout_returns_with_the_word_unchanged() {
        // The word equals the expected value and nobody wakes the waiter:
        // only the timeout can end the wait, and the word is untouched.
        let (errno, word) = on_thread_bounded(|| {
            let w = AtomicU32::new(1);
            (
                futex_wait_errno(&w, 1, Some(1_000_000)),
                w.load(Ordering::Relaxed),
            )
        });
        assert_eq!(errno, libc::ETIMEDOUT, "returned for another reason");
        assert_eq!(word, 1);
    }

    #[test]
    fn futex_wake_ends_a_wait_on_an_unchanged_word() {
        // The waiter loops until it sees the word change, so it returns
        // whether the wake or the store reaches it first; a lost wake-up
        // would leave it asleep, and the bound would fail the test.
        let w = std::sync::Arc::new(AtomicU32::new(0));
        let w2 = w.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            while w2.load(Ordering::Acquire) == 0 {
                futex_wait(&w2, 0, None);
            }
            let _ = tx.send(w2.load(Ordering::Acquire));
        });
        w.store(7, Ordering::Release);
        futex_wake(&w, 1);
        let seen = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the waiter was not woken within 60 s");
        assert_eq!(seen, 7);
    }

    #[test]
    fn nanotime_is_monotonic() {
        let a = nanotime();
        let b = nanotime();
        assert!(b >= a && a > 0);
    }
}
