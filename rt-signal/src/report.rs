//! Crash reports in Go's format (panic.go `dopanic_m`, signal_unix.go
//! `sigpanic`/`sighandler`, traceback.go), printed from inside the signal
//! handler.
//!
//! Async-signal-safety: everything here runs on the faulting thread's signal
//! stack with all signals blocked. It never allocates and never takes a
//! lock: text goes out through `rt_sys::FdWriter` (one `write(2)` per piece)
//! and numbers are formatted by `core::fmt` on the stack. The
//! [`Hooks`] the runtime installs must keep to the same rules.
//!
//! The report forms, chosen in this order for a synchronous fault
//! (SIGSEGV/SIGBUS/SIGFPE raised by the faulting instruction):
//!
//! 1. the fault address lies in a stack guard page (`Hooks::stack_guard`,
//!    or the page just below the current goroutine's `stack_lo`):
//!    `runtime: goroutine stack exceeds N-byte limit` / `runtime: sp=… stack=[lo, hi]`
//!    / `fatal error: stack overflow`;
//! 2. the thread was in runtime code (`GoroutineInfo::system`, or no
//!    goroutine at all while hooks are installed):
//!    `fatal error: unexpected signal during runtime execution` + `[signal …]`;
//! 3. goroutine code: Go's run-time panic, `panic: runtime error: …` +
//!    `[signal …]` (or `unexpected fault address` + `fatal error: fault` for
//!    a wild address). Rust cannot unwind out of a signal handler, so unlike
//!    Go the panic cannot be recovered: the program ends here.
//!
//! Asynchronous fatal signals (`THROW` in the table: SIGQUIT, SIGABRT, …, or
//! a fault signal sent with kill(2)) print `SIGQUIT: quit` and
//! `PC=… m=… sigcode=…`, every goroutine, and the registers.
//!
//! After the first lines come the goroutine sections `GOTRACEBACK` asks for
//! (printed by `Hooks::dump_goroutines`), then the process exits with status
//! 2, or for `GOTRACEBACK=crash` dies by SIGABRT with its default action so
//! the kernel can write a core file.

use core::fmt::Write;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use rt_sys::FdWriter;

use crate::arch::SigCtxt;
use crate::os;
use crate::table;

/// A decoded `GOTRACEBACK` setting (parsed by `rt-env`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceback {
    /// 0: no goroutine sections; 1: user frames; ≥ 2: runtime frames too.
    pub level: u32,
    /// List every goroutine, not only the one that failed.
    pub all: bool,
    /// End by dying of SIGABRT (core dump) instead of exit status 2.
    pub crash: bool,
}

impl Traceback {
    /// `GOTRACEBACK=single`, the default: the failing goroutine only.
    pub const SINGLE: Traceback = Traceback {
        level: 1,
        all: false,
        crash: false,
    };

    fn encode(self) -> u32 {
        (self.level.min(u32::MAX >> 2) << 2) | (self.all as u32) << 1 | self.crash as u32
    }
    fn decode(v: u32) -> Traceback {
        Traceback {
            level: v >> 2,
            all: v & 2 != 0,
            crash: v & 1 != 0,
        }
    }
}

/// Go's `traceback_cache`, in Go's encoding (`level << 2 | all << 1 | crash`).
static TRACEBACK: AtomicU32 = AtomicU32::new(1 << 2);

/// Sets what reports print (from `GOTRACEBACK`).
pub fn set_traceback(tb: Traceback) {
    TRACEBACK.store(tb.encode(), Ordering::Relaxed);
}

/// The setting reports use now ([`Traceback::SINGLE`] until set).
pub fn traceback() -> Traceback {
    Traceback::decode(TRACEBACK.load(Ordering::Relaxed))
}

/// What the scheduler knows about the goroutine running on this thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoroutineInfo {
    /// Its goroutine id (0 for g0 / gsignal, as in Go).
    pub goid: i64,
    /// Lowest usable address of its stack.
    pub stack_lo: usize,
    /// One past the highest address of its stack.
    pub stack_hi: usize,
    /// True on g0 or gsignal, i.e. while runtime code runs.
    pub system: bool,
}

/// The runtime's answers to the questions a report asks. `rt-entry` fills
/// one at boot ([`set_hooks`]); without it reports print less, but everything
/// works. Every function must be async-signal-safe: no allocation, no lock,
/// and valid on any thread, including threads the runtime did not create.
#[derive(Debug)]
pub struct Hooks {
    /// The goroutine running on the calling thread, or `None` when the
    /// thread runs no goroutine (not a runtime thread, or an idle M). A
    /// fault with `None` is forwarded to the handler that was installed
    /// before the runtime's, if there was one.
    pub current_goroutine: fn() -> Option<GoroutineInfo>,
    /// If `addr` lies in a stack guard page: that stack's `(lo, hi)`.
    pub stack_guard: fn(addr: usize) -> Option<(usize, usize)>,
    /// Prints goroutine sections to `w`, each starting with
    /// `goroutine N [status]:` and separated by blank lines as Go does:
    /// first `current_goid` (if ≥ 0) as `[running]`, its stack walked from
    /// `current` (the interrupted or the reporting code's registers), then,
    /// if `all`, every other goroutine. `level` ≥ 2 asks for runtime frames
    /// too. Runs only on the way to exit: it may allocate to symbolize.
    pub dump_goroutines: fn(
        w: &mut dyn core::fmt::Write,
        current: Option<&rt_traceback::Regs>,
        current_goid: i64,
        all: bool,
        level: u32,
    ),
    /// The id of the M running on the calling thread (`m=` in reports), or
    /// -1 when the thread is not an M.
    pub current_m: fn() -> i64,
}

static HOOKS: AtomicPtr<Hooks> = AtomicPtr::new(core::ptr::null_mut());

/// Installs the runtime's hooks (once at boot; a later call replaces them).
pub fn set_hooks(h: &'static Hooks) {
    HOOKS.store(h as *const Hooks as *mut Hooks, Ordering::Release);
}

/// The installed hooks, if any.
pub fn hooks() -> Option<&'static Hooks> {
    let p = HOOKS.load(Ordering::Acquire);
    // SAFETY: the pointer is null or came from a `&'static Hooks` in set_hooks.
    unsafe { p.as_ref() }
}

/// The current goroutine per the hooks (`None` without hooks).
pub fn current_goroutine() -> Option<GoroutineInfo> {
    hooks().and_then(|h| (h.current_goroutine)())
}

fn current_m() -> i64 {
    match hooks() {
        Some(h) => (h.current_m)(),
        // Without a scheduler the main thread is m0; others are unknown.
        // SAFETY: getpid has no preconditions.
        None if rt_sys::gettid() == unsafe { libc::getpid() } => 0,
        None => -1,
    }
}

static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

/// Reads the page size once, outside any handler (sysconf is not on the
/// async-signal-safe list).
pub fn cache_page_size() {
    // SAFETY: sysconf has no memory arguments.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        PAGE_SIZE.store(p as usize, Ordering::Relaxed);
    }
}

/// The thread printing a report (its tid), 0 when none: Go's `paniclk`
/// plus `m.dying`, without a lock — a second thread that fails while a
/// report is printed waits for the first to end the process.
static REPORTING: AtomicI32 = AtomicI32::new(0);

fn enter_report() {
    let me = rt_sys::gettid();
    match REPORTING.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(t) if t == me => {
            // The report itself failed.
            rt_sys::write_stderr(b"panic during panic\n");
            if traceback().crash {
                crash();
            }
            rt_sys::exit_now(2);
        }
        Err(_) => loop {
            // SAFETY: pause has no arguments; it returns on any signal.
            unsafe { libc::pause() };
        },
    }
    // A fault inside the report (say, in a hook) must reach the handler
    // again rather than kill the process silently: the synchronous signals
    // are blocked while the handler runs, so let them through.
    let sync = [
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGSEGV,
    ];
    let set = sync.iter().fold(0u64, |m, &s| m | os::sigbit(s));
    os::sigprocmask(libc::SIG_UNBLOCK, Some(set));
}

/// Which kind of failure a report ends, deciding whether every goroutine is
/// listed: a `fatal error:` (Go's throw) lists them all whatever
/// `GOTRACEBACK` says (unless its level is 0); a panic lists the failing
/// one unless `GOTRACEBACK` says `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fatal {
    /// A `fatal error:` line was printed.
    Throw,
    /// A `panic:` line was printed.
    Panic,
}

/// A `rt_sys::FatalHook`: after `fatal error: <msg>` (printed by `rt_sys`),
/// every goroutine per `GOTRACEBACK`, then exit 2 or, for
/// `GOTRACEBACK=crash`, SIGABRT with its default action. Install with
/// `rt_sys::set_fatal_hook(rt_signal::fatal_hook)`. Async-signal-safe.
pub fn fatal_hook(_msg: &str) -> ! {
    let here = rt_traceback::Regs::here();
    enter_report();
    let goid = current_goroutine().map_or(-1, |g| g.goid);
    finish(Fatal::Throw, goid, &here)
}

fn finish(kind: Fatal, goid: i64, regs: &rt_traceback::Regs) -> ! {
    let tb = traceback();
    if tb.level > 0 {
        if let Some(h) = hooks() {
            let mut w = FdWriter(2);
            let _ = w.write_str("\n");
            (h.dump_goroutines)(
                &mut w,
                Some(regs),
                goid,
                tb.all || kind == Fatal::Throw,
                tb.level,
            );
        }
    }
    if tb.crash {
        crash();
    }
    rt_sys::exit_now(2)
}

/// Go's `crash`: dies of SIGABRT with its default action, so the kernel
/// writes a core file (when `ulimit -c` allows).
pub fn crash() -> ! {
    crate::handler::die_from_signal(libc::SIGABRT)
}

fn signal_line(w: &mut FdWriter, sig: i32, c: &SigCtxt) {
    let name = table::signal_name(sig);
    let _ = if name.is_empty() {
        write!(w, "[signal {:#x}", sig)
    } else {
        write!(w, "[signal {}", name)
    };
    // Go prints the code as an unsigned word: negative codes show sign-extended.
    let code = c.sigcode() as i64 as u64;
    let _ = writeln!(
        w,
        " code={:#x} addr={:#x} pc={:#x}]",
        code,
        c.fault_addr(),
        c.pc()
    );
}

const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;
const BUS_ADRERR: i32 = 2;
const FPE_INTDIV: i32 = 1;
const FPE_INTOVF: i32 = 2;

/// The report for a synchronous fault (`PANIC` signal with a kernel
/// `si_code`): Go's `sigpanic` and `dopanic_m`, decided in the handler.
pub fn fault(sig: i32, c: &SigCtxt) -> ! {
    enter_report();
    let mut w = FdWriter(2);
    let addr = c.fault_addr();
    let code = c.sigcode();
    let h = hooks();
    let g = h.and_then(|h| (h.current_goroutine)());
    let goid = g.map_or(-1, |g| g.goid);

    if let Some(h) = h {
        // The stack crate knows every guard page; failing that, the page
        // just below the current goroutine's stack is its guard.
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let below_own = g
            .filter(|g| addr < g.stack_lo && g.stack_lo - addr <= page)
            .map(|g| (g.stack_lo, g.stack_hi));
        if let Some((lo, hi)) = (h.stack_guard)(addr).or(below_own) {
            // rt stacks never grow, so the limit is the stack's own size.
            let _ = writeln!(
                w,
                "runtime: goroutine stack exceeds {}-byte limit",
                hi.wrapping_sub(lo)
            );
            let _ = writeln!(w, "runtime: sp={:#x} stack=[{:#x}, {:#x}]", c.sp(), lo, hi);
            let _ = w.write_str("fatal error: stack overflow\n");
            finish(Fatal::Throw, goid, &c.walk_regs());
        }
        if g.is_none_or(|g| g.system) {
            let _ = w.write_str("fatal error: unexpected signal during runtime execution\n");
            signal_line(&mut w, sig, c);
            finish(Fatal::Throw, goid, &c.walk_regs());
        }
    }

    let msg = match sig {
        libc::SIGBUS if code == BUS_ADRERR && addr < 0x1000 => None,
        libc::SIGSEGV if matches!(code, 0 | SEGV_MAPERR | SEGV_ACCERR) && addr < 0x1000 => None,
        libc::SIGBUS | libc::SIGSEGV => {
            let _ = writeln!(w, "unexpected fault address {:#x}", addr);
            let _ = w.write_str("fatal error: fault\n");
            signal_line(&mut w, sig, c);
            finish(Fatal::Throw, goid, &c.walk_regs());
        }
        libc::SIGFPE => Some(match code {
            FPE_INTDIV => "integer divide by zero",
            FPE_INTOVF => "integer overflow",
            _ => "floating point error",
        }),
        _ => Some(table::signal_name(sig)),
    };
    let msg = msg.unwrap_or("invalid memory address or nil pointer dereference");
    let _ = writeln!(w, "panic: runtime error: {}", msg);
    signal_line(&mut w, sig, c);
    finish(Fatal::Panic, goid, &c.walk_regs())
}

/// The report for a `THROW` signal, or a `PANIC` one sent by kill(2)
/// (Go's `sighandler` tail): name, `PC=… m=… sigcode=…`, the instruction
/// bytes for SIGILL/SIGFPE, every goroutine and the registers.
pub fn throw_signal(sig: i32, c: &SigCtxt) -> ! {
    if sig == libc::SIGABRT && rt_sys::alloc_failed_here() {
        // Rust's abort for an allocation that could not be backed (its
        // message is already out): Go's report for running out of memory.
        rt_sys::throw("out of memory");
    }
    enter_report();
    let mut w = FdWriter(2);
    let name = table::signal_name(sig);
    let _ = if name.is_empty() {
        writeln!(w, "Signal {}", sig)
    } else {
        writeln!(w, "{}", name)
    };
    let _ = writeln!(
        w,
        "PC={:#x} m={} sigcode={}",
        c.pc(),
        current_m(),
        c.sigcode()
    );
    if sig == libc::SIGILL || sig == libc::SIGFPE {
        // At most 16 bytes, never past the end of the page holding the PC.
        let pc = c.pc();
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let n = 16.min(page - pc % page);
        let _ = w.write_str("instruction bytes:");
        for i in 0..n {
            // SAFETY: the page holding the PC was just executed from, so it
            // is mapped; `n` keeps the reads inside it.
            let b = unsafe { core::ptr::read_volatile((pc + i) as *const u8) };
            let _ = write!(w, " {:#x}", b);
        }
        let _ = w.write_str("\n");
    }
    let _ = w.write_str("\n");
    let tb = traceback();
    if tb.level > 0 {
        if let Some(h) = hooks() {
            let goid = (h.current_goroutine)().map_or(-1, |g| g.goid);
            (h.dump_goroutines)(&mut w, Some(&c.walk_regs()), goid, true, tb.level);
            let _ = w.write_str("\n");
        }
        let _ = c.dump_regs(&mut w);
    }
    if tb.crash {
        crash();
    }
    rt_sys::exit_now(2)
}
