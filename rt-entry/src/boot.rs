//! The Rust side of `rt0_go`: `check`, `args`, `osinit`, `schedinit`,
//! `newproc(main)`, `mstart`, and `runtime.main`.
//!
//! The bootstrap sequence is Go's: `osinit`, `schedinit`, make and queue the
//! main goroutine, `mstart`. Each function here is called exactly once, by
//! `rt0_go`, on m0's g0 (the initial thread's OS stack), in that order.

use crate::args::{self, AuxInfo};
use crate::cpu;
use crate::inittrace::{self, Trace};
use crate::phase::{self, Boot, Phase};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Process start (first Rust code), the inittrace time base.
static BOOT_START: AtomicI64 = AtomicI64::new(0);
/// `ncpu` from `osinit`.
static NCPU: AtomicI32 = AtomicI32::new(1);
/// `physHugePageSize` from `osinit`.
static HUGE_PAGE: AtomicUsize = AtomicUsize::new(0);

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
    with_state(|s| s.clone())
}

/// `ncpu` as `osinit` counted it.
pub fn ncpu() -> i32 {
    NCPU.load(Ordering::Relaxed)
}

/// `runtime·abort`: crash at once (rt0_go's fallback for impossible states).
pub extern "C" fn rt_abort() -> ! {
    rt_sys::write_stderr(b"fatal error: runtime: abort\n");
    // SAFETY: abort(3) has no preconditions.
    unsafe { libc::abort() }
}

/// Called by rt0_go when `arch_prctl(ARCH_SET_GS)` failed.
pub extern "C" fn rt0_tls_fallback() {
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
pub extern "C" fn rt_check() {
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

/// `args(argc, argv)`.
///
/// # Safety
/// Called by rt0_go with the process's initial argument vector.
pub unsafe extern "C" fn rt_args(argc: usize, argv: *const *const u8) {
    let t0 = rt_sys::nanotime();
    // The heap starts on the first allocation, which comes next (this
    // phase or osinit). Start it here instead, so that a heap that cannot
    // start (no address space) is a fatal error, not Rust's abort from
    // inside that allocation; schedinit's mallocinit then finds it done.
    if let Err(e) = rt_heap::mallocinit() {
        rt_sys::fatal!("mallocinit: {:?}: out of memory", e);
    }
    // The first object also reserves the first arena: ask for it directly,
    // where a failure can be reported, rather than through Rust's allocator
    // interface, which aborts (signal handlers are not installed yet).
    let probe = rt_heap::malloc(8, 8);
    if probe.is_null() {
        rt_sys::throw("out of memory");
    }
    // SAFETY: allocated just above with this size and alignment.
    unsafe { rt_heap::free(probe, 8, 8) };
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

/// `osinit`: CPU count and huge page size.
pub extern "C" fn rt_osinit() {
    let t0 = rt_sys::nanotime();
    let ncpu = rt_env::affinity_cpus();
    NCPU.store(ncpu, Ordering::Relaxed);
    let huge = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|n| n.is_power_of_two())
        .unwrap_or(0);
    HUGE_PAGE.store(huge, Ordering::Relaxed);
    inittrace::record(Trace::new(
        "osinit",
        t0,
        rt_sys::nanotime(),
        (0, 0),
        inittrace::detail(|| format!("ncpu={ncpu} hugepage={huge}")),
    ));
}

/// The real `schedinit`: each crate's phase, composed.
struct RealBoot {
    t0: i64,
    /// The cache m0 allocates through when the phase starts, and its
    /// counters then.
    cache0: *mut rt_heap::MCache,
    alloc0: (u64, u64),
    detail: String,
}

impl phase::StackPhases for RealBoot {
    fn stackinit(&mut self) {
        // stackinit runs before goenvs: read the stack keys straight from
        // the raw environment, as Go's cpuinit does for GODEBUG.
        let dv = rt_env::parse_godebug(args::raw_getenv(b"GODEBUG").unwrap_or(b""));
        let mut cfg = rt_stack::StackConfig::default();
        if let Some(n) = dv.stack_size() {
            cfg.default_size = n;
        }
        if dv.force_mprotect_guard() {
            cfg.guard = rt_stack::GuardPolicy::Mprotect;
        }
        match rt_stack::stackinit(cfg) {
            Ok(info) => self.detail = inittrace::detail(|| info.to_string()),
            Err(e) => rt_sys::fatal!("stackinit: {}", e),
        }
    }
}

impl phase::HeapPhases for RealBoot {
    fn mallocinit(&mut self) {
        match rt_heap::mallocinit() {
            Ok(info) => self.detail = inittrace::detail(|| format!("{info:?}")),
            Err(e) => rt_sys::fatal!("mallocinit: {:?}", e),
        }
    }
    fn gcinit(&mut self) {
        rt_heap::gcinit(Default::default());
        rt_sched::boot::set_tick_hook(scavenge_tick);
        self.detail = inittrace::detail(|| {
            "no collector (Rust frees explicitly): heap statistics and the scavenger, run by sysmon"
                .into()
        });
    }
}

/// sysmon's 10 ms tick: the heap's retention policy, and about once a
/// second the parked batches too. (Releasing every free page each tick
/// made a program that frees and reallocates the same memory fault it
/// back in every 10 ms.)
fn scavenge_tick() {
    static TICKS: AtomicUsize = AtomicUsize::new(0);
    let n = TICKS.fetch_add(1, Ordering::Relaxed);
    rt_heap::scavenge_background(n % 100 == 0);
}

impl phase::SchedPhases for RealBoot {
    fn maxmcount(&mut self) {
        rt_sched::set_max_threads(10000);
        self.detail = inittrace::detail(|| "maxmcount=10000".into());
    }
    fn fastrandinit(&mut self) {
        let r = with_state(|s| s.aux.random);
        let seed = match r {
            Some(b) => u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            None => {
                let mut b = [0u8; 8];
                // SAFETY: getrandom writes at most 8 bytes into b.
                unsafe { libc::getrandom(b.as_mut_ptr().cast(), 8, 0) };
                u64::from_le_bytes(b)
            }
        };
        rt_sched::boot::fastrandinit(seed);
        self.detail = inittrace::detail(|| {
            format!(
                "seed from {}",
                if r.is_some() {
                    "AT_RANDOM"
                } else {
                    "getrandom"
                }
            )
        });
    }
    fn mcommoninit(&mut self) {
        // SAFETY: boot, on m0, once.
        unsafe {
            rt_sched::boot::bind_m0();
            rt_sched::boot::mcommoninit(rt_sched::boot::M0.get(), 0);
            let m0 = &*rt_sched::boot::M0.get();
            let gs = &*m0.gsignal;
            self.detail = inittrace::detail(|| {
                format!(
                    "m0 id={} fastrand={:#x},{:#x} gsignal=[{:#x}, {:#x}) ({} KiB)",
                    m0.id,
                    m0.fastrand[0],
                    m0.fastrand[1],
                    gs.stack.lo,
                    gs.stack.hi,
                    (gs.stack.hi - gs.stack.lo) / 1024
                )
            });
        }
    }
    fn procresize(&mut self) {
        let (dv, ncpu) = (with_state(|s| s.debug).unwrap_or_default(), ncpu());
        let env = rt_env::gogetenv(b"GOMAXPROCS").map(std::os::unix::ffi::OsStrExt::as_bytes);
        // The cgroup files are read only when the default is needed: a valid
        // GOMAXPROCS, or GODEBUG=containermaxprocs=0, skips them.
        let explicit = env.and_then(rt_env::atoi32).filter(|&n| n > 0);
        let limit = if explicit.is_none() && dv.container_aware() {
            rt_env::cgroup_cpu_limit()
        } else {
            None
        };
        let procs = match explicit {
            Some(n) => n,
            None => rt_env::default_procs(ncpu, limit, &dv),
        };
        rt_sched::boot::configure(rt_sched::boot::SchedConfig {
            stack_size: rt_stack::default_stack_size(),
            schedtrace: dv.schedtrace,
            scheddetail: dv.scheddetail,
            lazy_stacks: rt_stack::stack_info().guard
                == rt_stack::GuardMechanism::MadviseGuardInstall,
        });
        // SAFETY: boot, on m0, once; the world is stopped (only m0 exists).
        unsafe { rt_sched::boot::procresize_boot(procs) };
        with_state(|s| s.procs = procs);
        self.detail = inittrace::detail(|| {
            format!(
                "gomaxprocs={} (ncpu={}, cgroup limit={}) P0 running on m0, {} idle",
                procs,
                ncpu,
                limit
                    .map(|l| format!("{l}"))
                    .unwrap_or_else(|| "none".into()),
                procs - 1
            )
        });
    }
}

impl phase::SignalPhases for RealBoot {
    fn sigsave(&mut self) {
        let mask = rt_signal::sigsave();
        rt_signal::set_initial_mask(mask);
        self.detail = inittrace::detail(|| format!("inherited mask {mask:?}"));
    }
}

impl phase::EnvPhases for RealBoot {
    fn goargs(&mut self) {
        // SAFETY: argc/argv recorded by `args` from the initial vector.
        unsafe { rt_env::goargs(args::argc(), args::argv()) };
        self.detail = inittrace::detail(|| format!("{} arguments", rt_env::args().len()));
    }
    fn goenvs(&mut self) {
        // SAFETY: envp recorded by `args`, NULL-terminated.
        unsafe { rt_env::goenvs(args::envp()) };
        self.detail = inittrace::detail(|| format!("{} entries", rt_env::envs().len()));
    }
    fn parsedebugvars(&mut self) {
        let dv = rt_env::debugvars_from_env();
        let tb = rt_env::parse_gotraceback(
            rt_env::gogetenv(b"GOTRACEBACK").map(std::os::unix::ffi::OsStrExt::as_bytes),
        );
        rt_sched::boot::set_traceback_bits(tb.bits());
        rt_signal::set_traceback(rt_signal::Traceback {
            level: tb.level,
            all: tb.all,
            crash: tb.crash,
        });
        rt_signal::set_async_preempt_off(dv.asyncpreemptoff != 0);
        // No goroutine exists yet (newproc(main) comes after schedinit), so
        // the mode is always accepted here.
        if !rt_sched::boot::set_fp_per_g(dv.fp_per_goroutine()) {
            rt_sys::throw("parsedebugvars: fpenv set after the first goroutine");
        }
        inittrace::set_level(dv.inittrace);
        self.detail = inittrace::detail(|| {
            format!(
                "inittrace={} schedtrace={} fpenv={} traceback level={} all={} crash={}",
                dv.inittrace,
                dv.schedtrace,
                dv.fp_per_goroutine() as u8,
                tb.level,
                tb.all,
                tb.crash
            )
        });
        with_state(|s| {
            s.debug = Some(dv);
            s.traceback = Some(tb);
        });
    }
}

impl phase::EntryPhases for RealBoot {
    fn moduledataverify(&mut self) {
        // The Rust meaning: the runtime's own static tables are well-formed.
        let order: Vec<phase::PhaseId> = phase::SCHEDINIT.iter().map(|p| p.id).collect();
        if let Err((p, d)) = phase::validate(&order) {
            rt_sys::fatal!(
                "moduledataverify: phase {:?} runs before its dependency {:?}",
                p,
                d
            );
        }
        self.detail = inittrace::detail(|| format!("phase table ({} phases) ordered", order.len()));
    }
    fn cpuinit(&mut self) {
        let f = cpu::cpuinit(args::raw_getenv(b"GODEBUG"));
        with_state(|s| s.features = f);
        self.detail = inittrace::detail(|| {
            let on: Vec<&str> = f
                .list()
                .iter()
                .filter(|(_, on)| *on)
                .map(|(n, _)| *n)
                .collect();
            format!(
                "vendor={} processorVersionInfo={:#x} features={}",
                if cpu::IS_INTEL.load(Ordering::Relaxed) {
                    "GenuineIntel"
                } else {
                    "other"
                },
                cpu::PROCESSOR_VERSION_INFO.load(Ordering::Relaxed),
                on.join(",")
            )
        });
    }
    fn alginit(&mut self) {
        let (f, r) = with_state(|s| (s.features, s.aux.random));
        let seed = match r {
            Some(b) => b,
            None => {
                let mut b = [0u8; 16];
                // SAFETY: getrandom writes at most 16 bytes into b.
                unsafe { libc::getrandom(b.as_mut_ptr().cast(), 16, 0) };
                b
            }
        };
        let kind = cpu::alginit(&f, &seed);
        self.detail = inittrace::detail(|| format!("hash={kind:?}"));
    }
}

impl Boot for RealBoot {
    fn before(&mut self, _p: &Phase) {
        self.t0 = rt_sys::nanotime();
        self.cache0 = rt_heap::current_cache();
        self.alloc0 = rt_heap::thread_alloc_counters();
        self.detail.clear();
    }
    fn after(&mut self, p: &Phase) {
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
        let detail = match p.skipped {
            Some(why) => inittrace::detail(|| format!("skipped: {why}")),
            None => core::mem::take(&mut self.detail),
        };
        let mut t = Trace::new(p.go_name, self.t0, rt_sys::nanotime(), delta, detail);
        t.skipped = p.skipped.is_some();
        t.owner = p.owner.crate_name();
        inittrace::record(t);
    }
}

/// `schedinit`.
pub extern "C" fn rt_schedinit() {
    let mut b = RealBoot {
        t0: 0,
        cache0: core::ptr::null_mut(),
        alloc0: (0, 0),
        detail: String::new(),
    };
    rt_sched::boot::install_panic_hook();
    phase::schedinit(&mut b);
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
type MainFn = extern "C-unwind" fn() -> i32;

/// `newproc(main)`: goroutine 1 will run `runtime.main`, which calls the
/// program's main.
pub extern "C" fn rt_newproc_main(main: MainFn) {
    let t0 = rt_sys::nanotime();
    let gp = match rt_sched::boot::newproc(Box::new(move || runtime_main(main))) {
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
pub extern "C" fn rt_mstart() -> ! {
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
    rt_sched::boot::start_sysmon();
    let code = main();
    rt_sched::boot::exit(code)
}
