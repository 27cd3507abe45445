//! The Rust side of `rt0_go`: `check`, `args`, `osinit`, `schedinit`,
//! `newproc(main)`, `mstart`, and `runtime.main`.
//!
//! The bootstrap sequence is Go's: `osinit`, `schedinit`, make and queue the
//! main goroutine, `mstart`. Each function here is called exactly once, by
//! `rt0_go`, on m0's g0 (the initial thread's OS stack), in that order.

use crate::args::{self, AuxInfo};
use crate::cpu;
use crate::inittrace::{self, Trace};
use crate::phase::{self, Ctx, Row};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Process start (first Rust code), the inittrace time base.
static BOOT_START: AtomicI64 = AtomicI64::new(0);
/// `ncpu` from `osinit`.
static NCPU: AtomicI32 = AtomicI32::new(1);

/// Everything boot learned, for the trace and for `rt-demo`.
#[derive(Debug, Default, Clone)]
pub struct BootState {
    /// From `args`.
    pub aux: AuxInfo,
    /// The parsed GODEBUG.
    pub debug: Option<rt_env::DebugVars>,
    /// The parsed GOTRACEBACK.
    pub traceback: Option<rt_env::Traceback>,
    /// GOMAXPROCS chosen.
    pub procs: i32,
    /// CPU features after GODEBUG.
    pub features: cpu::X86Features,
    /// The goroutine slot is a `thread_local!` (kernel refused ARCH_SET_GS).
    pub tls_fallback: bool,
}

static STATE: Mutex<Option<BootState>> = Mutex::new(None);

fn with_state<R>(f: impl FnOnce(&mut BootState) -> R) -> R {
    let mut g = STATE.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(BootState::default))
}

/// A copy of what boot learned.
pub fn state() -> BootState {
    let mut st = with_state(|s| s.clone());
    // Kept by the crates that settled them.
    st.features = cpu::features();
    if let Some((dv, tb)) = rt_env::phase::settled() {
        st.debug = Some(dv);
        st.traceback = Some(tb);
    }
    st
}

/// `ncpu` as `osinit` counted it.
pub fn ncpu() -> i32 {
    NCPU.load(Ordering::Relaxed)
}

/// `runtime·abort`: crash at once (rt0_go's fallback for impossible states).
pub(crate) extern "C" fn rt_abort() -> ! {
    rt_sys::write_stderr(b"fatal error: runtime: abort\n");
    // SAFETY: abort(3) has no preconditions.
    unsafe { libc::abort() }
}

/// Called by rt0_go when `arch_prctl(ARCH_SET_GS)` failed.
pub(crate) extern "C" fn rt0_tls_fallback() {
    // SAFETY: called by rt0_go on the initial thread, before any goroutine
    // slot was written through the GS base.
    unsafe { rt_sched::boot::use_tls_fallback() };
    with_state(|s| s.tls_fallback = true);
}

/// After `fatal error: <msg>`: flush what Rust buffered on stdout (nothing
/// is lost), then the goroutine report `GOTRACEBACK` asks for and exit 2
/// (or SIGABRT for `crash`), through the signal crate.
fn fatal_hook(msg: &str) -> ! {
    // Only once boot has made stdout: creating it allocates, and a fatal
    // error may come from inside the allocator (and before that point no
    // program code can have written to it).
    if STDOUT_READY.load(Ordering::Acquire) {
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }
    rt_signal::fatal_hook(msg)
}

/// Set once `schedinit` has created std's stdout, so that flushing it never
/// allocates.
static STDOUT_READY: AtomicBool = AtomicBool::new(false);

/// After an unrecovered goroutine panic's report: SIGABRT for
/// `GOTRACEBACK=crash`, else status 2.
fn panic_exit() -> ! {
    if rt_signal::traceback().crash {
        rt_signal::crash()
    }
    rt_sys::exit_now(2)
}

/// What the signal handler asks the scheduler and the stack pool. Each is
/// async-signal-safe: atomics, const thread-locals and `try_lock` only.
static SIGNAL_HOOKS: rt_signal::Hooks = rt_signal::Hooks {
    current_goroutine,
    stack_guard,
    dump_goroutines: rt_sched::boot::write_report,
    current_m: rt_sched::mid,
};

fn current_goroutine() -> Option<rt_signal::GoroutineInfo> {
    let gp = rt_sched::boot::getg_checked();
    if gp.is_null() {
        return None;
    }
    // SAFETY: gp is the goroutine (or g0) running on this thread; Gs are
    // never freed and these fields are plain words.
    let g = unsafe { &*gp };
    Some(rt_signal::GoroutineInfo {
        goid: g.goid,
        stack_lo: g.stack.lo,
        stack_hi: g.stack.hi,
        system: g.goid == 0,
    })
}

fn stack_guard(addr: usize) -> Option<(usize, usize)> {
    rt_stack::guard_fault(addr).map(|s| (s.lo, s.hi))
}

/// `check`: sanity checks before anything relies on them.
pub(crate) extern "C" fn rt_check() {
    BOOT_START.store(rt_sys::nanotime(), Ordering::Relaxed);
    rt_sys::set_fatal_hook(fatal_hook);
    rt_signal::set_hooks(&SIGNAL_HOOKS);
    rt_sched::boot::set_panic_exit_hook(panic_exit);
    // Before GOTRACEBACK is parsed, crashes show runtime detail (Go's
    // traceback_cache starts at level 2).
    rt_sched::boot::set_traceback_bits(2 << 2);
    rt_signal::set_traceback(rt_signal::Traceback {
        level: 2,
        all: false,
        crash: false,
    });
    let t0 = rt_sys::nanotime();
    if let Err(e) = crate::check::run() {
        rt_sys::throw(e.0);
    }
    // Recorded by `args`, once the trace level is known: nothing here
    // allocates.
    CHECK_SPAN[0].store(t0, Ordering::Relaxed);
    CHECK_SPAN[1].store(rt_sys::nanotime(), Ordering::Relaxed);
}

/// Start and end (monotonic ns) of `check`, for its trace record.
static CHECK_SPAN: [AtomicI64; 2] = [AtomicI64::new(0), AtomicI64::new(0)];

/// `args(argc, argv)`: records the vectors and reads the auxiliary vector.
/// Allocates nothing (unless the kernel passed no auxiliary vector and
/// `/proc/self/auxv` must be read), so the heap starts in `mallocinit`'s
/// row, not here.
///
/// # Safety
/// Called by rt0_go with the process's initial argument vector.
pub(crate) unsafe extern "C" fn rt_args(argc: usize, argv: *const *const u8) {
    let t0 = rt_sys::nanotime();
    // SAFETY: rt0_go passes the kernel's (or libc's, which is the same) argv.
    let aux = unsafe { args::args(argc, argv) };
    // The environment is known from here on: settle the trace level now
    // (parsedebugvars sets the same value again), so that untraced boots
    // skip the records and their details.
    inittrace::set_level(
        rt_env::parse_godebug(args::raw_getenv(b"GODEBUG").unwrap_or(b"")).inittrace,
    );
    inittrace::record(Trace::new(
        "check",
        CHECK_SPAN[0].load(Ordering::Relaxed),
        CHECK_SPAN[1].load(Ordering::Relaxed),
        (0, 0),
        inittrace::detail(|| "types, atomics, NaN rules".into()),
    ));
    let detail = inittrace::detail(|| {
        format!(
            "argc={} pagesize={} random={} vdso={:#x} hwcap={:#x} auxv={:?}",
            argc,
            aux.page_size,
            if aux.random.is_some() {
                "16 bytes"
            } else {
                "none"
            },
            aux.vdso,
            aux.hwcap,
            aux.source
        )
    });
    with_state(|s| s.aux = aux);
    inittrace::record(Trace::new("args", t0, rt_sys::nanotime(), (0, 0), detail));
}

/// `osinit`: CPU count and huge page size. Allocates nothing.
pub(crate) extern "C" fn rt_osinit() {
    let t0 = rt_sys::nanotime();
    let ncpu = rt_env::affinity_cpus();
    NCPU.store(ncpu, Ordering::Relaxed);
    // Read with raw calls into a stack buffer: osinit runs before mallocinit.
    let huge = rt_heap::sys::phys_huge_page_size();
    inittrace::record(Trace::new(
        "osinit",
        t0,
        rt_sys::nanotime(),
        (0, 0),
        inittrace::detail(|| format!("ncpu={ncpu} hugepage={huge}")),
    ));
}

/// The boot trace of `schedinit`: one record per row, with the bytes and
/// objects the phase allocated.
struct Tracer {
    t0: i64,
    /// The cache m0 allocates through when the phase starts, and its
    /// counters then.
    cache0: *mut rt_heap::MCache,
    alloc0: (u64, u64),
}

impl phase::Observer for Tracer {
    fn before(&mut self, _r: &Row, cx: &mut Ctx) {
        cx.set_detailed(inittrace::detailed());
        self.t0 = rt_sys::nanotime();
        self.cache0 = rt_heap::current_cache();
        self.alloc0 = rt_heap::thread_alloc_counters();
        cx.take_detail();
    }
    fn after(&mut self, r: &Row, cx: &mut Ctx) {
        let c = rt_heap::current_cache();
        let mut delta = (0, 0);
        if !self.cache0.is_null() {
            // SAFETY: cache0 is m0's own cache or P0's, and boot frees
            // neither.
            let a = unsafe { rt_heap::cache_alloc_counters(self.cache0) };
            delta = (a.0 - self.alloc0.0, a.1 - self.alloc0.1);
        }
        if c != self.cache0 && !c.is_null() {
            // The phase bound a new cache to m0 (procresize gives it P0's,
            // created in the phase): everything in it was allocated since.
            // SAFETY: c is m0's current cache, live.
            let b = unsafe { rt_heap::cache_alloc_counters(c) };
            delta = (delta.0 + b.0, delta.1 + b.1);
        }
        let detail = match r.skipped {
            Some(why) => inittrace::detail(|| format!("skipped: {why}")),
            None => cx.take_detail(),
        };
        let mut t = Trace::new(r.go_name, self.t0, rt_sys::nanotime(), delta, detail);
        t.skipped = r.skipped.is_some();
        t.owner = r.owner;
        inittrace::record(t);
    }
}

/// What a program is: its main, as `main!` wraps it, and the `schedinit`
/// table it boots with (normally [`phase::SCHEDINIT`]). `main!` makes one
/// static `Program`; the entry trampolines hand its address to `rt0_go`.
#[derive(Debug)]
pub struct Program {
    /// The program's main, as `main!` wraps it.
    pub main: MainFn,
    /// The phases `schedinit` runs, in order.
    pub phases: &'static [Row],
}

/// The program `rt0_go` is booting, set by `schedinit`.
static PROGRAM: AtomicPtr<Program> = AtomicPtr::new(core::ptr::null_mut());

/// The table the program boots with ([`phase::SCHEDINIT`] before
/// `schedinit` starts).
pub fn program_phases() -> &'static [Row] {
    let p = PROGRAM.load(Ordering::Acquire);
    if p.is_null() {
        &phase::SCHEDINIT
    } else {
        // SAFETY: PROGRAM only ever holds the address of a `&'static Program`.
        unsafe { (*p).phases }
    }
}

/// `parsedebugvars`' wiring: the settled `GODEBUG` and `GOTRACEBACK` reach
/// the crates that act on them.
pub(crate) fn publish_debugvars() {
    let (dv, tb) = (rt_env::phase::debugvars(), rt_env::phase::traceback());
    rt_sched::boot::set_traceback_bits(tb.bits());
    rt_signal::set_traceback(rt_signal::Traceback {
        level: tb.level,
        all: tb.all,
        crash: tb.crash,
    });
    rt_signal::set_async_preempt_off(dv.asyncpreemptoff != 0);
    // Asynchronous preemption (rt_sched::preempt): sysmon's retake sends
    // SIGURG, whose handler suspends the goroutine in place.
    rt_sched::preempt::set_enabled(dv.asyncpreemptoff == 0);
    if let Some(ns) = dv.preempt_interval_ns() {
        rt_sched::preempt::set_interval(ns);
    }
    rt_signal::set_preempt_hook(rt_sched::preempt::on_signal);
    // No goroutine exists yet (newproc(main) comes after schedinit), so
    // the mode is always accepted here.
    if !rt_sched::boot::set_fp_per_g(dv.fp_per_goroutine()) {
        rt_sys::throw("parsedebugvars: fpenv set after the first goroutine");
    }
    inittrace::set_level(dv.inittrace);
}

/// `gcinit`'s wiring: the heap's scavenger runs on sysmon's tick, and
/// once more before sysmon sleeps through an idle spell.
pub(crate) fn scavenger_on_sysmon() {
    rt_sched::boot::set_tick_hook(scavenge_tick);
    rt_sched::boot::set_idle_hook(scavenge_idle);
}

/// Before sysmon sleeps until work comes back: the tick's fullest pass
/// (the parked batches drained, then the retention policy) and the stack
/// pool's policy, since no tick will come to finish the job.
fn scavenge_idle() {
    rt_heap::scavenge_background(true);
    rt_stack::scavenge();
}

/// sysmon's 10 ms tick: the heap's retention policy, and about once a
/// second the parked batches too. (Releasing every free page each tick
/// made a program that frees and reallocates the same memory fault it
/// back in every 10 ms.) Every tenth tick, the stack pool's retention
/// policy: free stacks unused for those 100 ms beyond its warm budget go
/// back to the OS.
fn scavenge_tick() {
    static TICKS: AtomicUsize = AtomicUsize::new(0);
    let n = TICKS.fetch_add(1, Ordering::Relaxed);
    rt_heap::scavenge_background(n % 100 == 0);
    if n % 10 == 0 {
        rt_stack::scavenge();
    }
}

/// `schedinit`: the program's phase table, run in order.
pub(crate) extern "C" fn rt_schedinit(prog: &'static Program) {
    PROGRAM.store(prog as *const Program as *mut Program, Ordering::Release);
    let random = with_state(|s| s.aux.random);
    // SAFETY: args recorded the process's initial vectors, which live for
    // the process.
    let mut cx = unsafe { Ctx::new(args::argc(), args::argv(), args::envp(), random, ncpu()) };
    let mut tracer = Tracer {
        t0: 0,
        cache0: core::ptr::null_mut(),
        alloc0: (0, 0),
    };
    // moduledataverify, a row of every valid table, rejects a malformed one.
    // SAFETY: rt0_go calls this once, on m0/g0, before any goroutine or M.
    unsafe { phase::schedinit(prog.phases, &mut cx, &mut tracer) };
    // The panic hook is boxed: installed once the heap has started.
    rt_sched::boot::install_panic_hook();
    with_state(|s| s.procs = rt_sched::gomaxprocs());
    inittrace::flush(BOOT_START.load(Ordering::Relaxed));
    // Create stdout's buffer now, while nothing is locked: the fatal path
    // flushes it and must not be the one to allocate it.
    let _ = std::io::stdout();
    STDOUT_READY.store(true, Ordering::Release);
}

/// The program's main as `main!` wraps it. `C-unwind`: a panic in main
/// unwinds out of it to the goroutine's entry, which reports it as Go
/// reports a panic on goroutine 1 (a plain `extern "C"` boundary would
/// abort the process and lose the message).
pub type MainFn = extern "C-unwind" fn() -> i32;

/// `newproc(main)`: goroutine 1 will run `runtime.main`, which calls the
/// program's main.
pub(crate) extern "C" fn rt_newproc_main(prog: &'static Program) {
    let t0 = rt_sys::nanotime();
    let main = prog.main;
    let gp = match rt_sched::boot::newproc(Box::new(move || runtime_main(main)), 0) {
        Ok(gp) => gp,
        Err(e) => rt_sys::fatal!("newproc: {}", e),
    };
    // SAFETY: gp was just created and is queued but not yet running (only
    // m0 exists, and it is here).
    let (goid, st) = unsafe { ((*gp).goid, (*gp).stack) };
    inittrace::live(
        Trace::new(
            "newproc",
            t0,
            rt_sys::nanotime(),
            (0, 0),
            inittrace::detail(|| {
                if st.lo == 0 {
                    format!("main goroutine goid={goid} in P0.runnext; its stack is bound when it first runs")
                } else {
                    format!(
                        "main goroutine goid={} in P0.runnext, stack=[{:#x}, {:#x})",
                        goid, st.lo, st.hi
                    )
                }
            }),
        ),
        BOOT_START.load(Ordering::Relaxed),
    );
}

/// `mstart` on m0: hand the thread to the scheduler. Never returns.
pub(crate) extern "C" fn rt_mstart() -> ! {
    rt_sched::boot::set_mstartm0_hook(mstartm0);
    rt_sched::boot::set_minit_hook(minit_signals);
    inittrace::live(
        Trace::new(
            "mstart",
            rt_sys::nanotime(),
            rt_sys::nanotime(),
            (0, 0),
            inittrace::detail(|| {
                format!(
                    "m0 switches from g0 (getg()==g0: {}) to goroutine 1; goroutine slot in {}",
                    rt_sched::boot::on_g0(),
                    if rt_sched::boot::gs_tls_in_use() {
                        "GS base"
                    } else {
                        "thread_local fallback"
                    }
                )
            }),
        ),
        BOOT_START.load(Ordering::Relaxed),
    );
    // SAFETY: once, on the initial thread, with m0/g0 bound by rt0_go.
    unsafe { rt_sched::boot::mstart_m0() }
}

/// `mstartm0`: install the signal handlers (Go's `initsig(false)`).
fn mstartm0() {
    rt_signal::initsig();
}

/// `minit`'s signal part for every M: the alternate signal stack on the M's
/// `gsignal` stack, and the thread mask.
fn minit_signals(mp: *mut rt_sched::boot::M) {
    // SAFETY: called by the M's own thread with its live gsignal.
    unsafe {
        let gs = (*mp).gsignal;
        if !gs.is_null() {
            rt_signal::minit_signals((*gs).stack.lo as *mut u8, (*gs).stack.hi - (*gs).stack.lo);
        }
    }
}

/// `runtime.main`: goroutine 1.
fn runtime_main(main: MainFn) {
    rt_sched::boot::set_main_started();
    rt_sched::boot::start_sysmon_when_needed();
    let code = main();
    rt_sched::boot::exit(code)
}
