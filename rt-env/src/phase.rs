//! `goargs`, `goenvs` and `parsedebugvars`, as `schedinit` phases, and the
//! `GOMAXPROCS` choice `procresize` makes at boot.

use crate::{
    args, cgroup_cpu_limit, default_procs, envs, goargs, goenvs, gogetenv, gomaxprocs,
    parse_godebug, parse_gotraceback, DebugVars, Traceback,
};
use rt_sys::phase::{Ctx, Phase};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

/// Go's `goargs`: the argument vector, as [`args`] hands it out.
#[derive(Debug, Clone, Copy)]
pub struct Goargs;

impl Phase for Goargs {
    unsafe fn run(&self, cx: &mut Ctx) {
        // SAFETY: the context's vectors are the process's initial ones, which
        // live unchanged for the rest of the process (`Ctx::new`'s contract).
        unsafe { goargs(cx.argc(), cx.argv()) };
        cx.detail(|| format!("{} arguments", args().len()));
    }
}

/// Go's `goenvs`: the environment, copied, as [`envs`] hands it out.
#[derive(Debug, Clone, Copy)]
pub struct Goenvs;

impl Phase for Goenvs {
    unsafe fn run(&self, cx: &mut Ctx) {
        // SAFETY: as for `Goargs`: envp is NULL or the initial, NULL-terminated
        // environment.
        unsafe { goenvs(cx.envp()) };
        cx.detail(|| format!("{} entries", envs().len()));
    }
}

/// What `parsedebugvars` settled.
static SETTLED: OnceLock<(DebugVars, Traceback)> = OnceLock::new();

/// Go's `parsedebugvars` (with `GOTRACEBACK`'s `setTraceback`): both read
/// from the environment `goenvs` captured, and kept for
/// [`debugvars`] and [`traceback`].
#[derive(Debug, Clone, Copy)]
pub struct Parsedebugvars;

impl Phase for Parsedebugvars {
    unsafe fn run(&self, cx: &mut Ctx) {
        let dv = parse_godebug(gogetenv(b"GODEBUG").map(OsStrExt::as_bytes).unwrap_or(b""));
        let tb = parse_gotraceback(gogetenv(b"GOTRACEBACK").map(OsStrExt::as_bytes));
        if SETTLED.set((dv, tb)).is_err() {
            rt_sys::throw("parsedebugvars: called twice");
        }
        cx.detail(|| {
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
    }
}

/// The `GODEBUG` and `GOTRACEBACK` settings, once `parsedebugvars` has run.
pub fn settled() -> Option<(DebugVars, Traceback)> {
    SETTLED.get().copied()
}

/// The `GODEBUG` settings `parsedebugvars` settled; Go's defaults before it
/// has run.
pub fn debugvars() -> DebugVars {
    SETTLED.get().map(|s| s.0).unwrap_or_default()
}

/// The `GOTRACEBACK` setting `parsedebugvars` settled; Go's default
/// (`single`) before it has run.
pub fn traceback() -> Traceback {
    SETTLED
        .get()
        .map(|s| s.1)
        .unwrap_or_else(|| parse_gotraceback(None))
}

/// The `GOMAXPROCS` `procresize` starts with, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcsChoice {
    /// The number of Ps.
    pub procs: i32,
    /// The CPUs this process may run on.
    pub ncpu: i32,
    /// The cgroup CPU limit, when it was read and there is one.
    pub cgroup_limit: Option<f64>,
}

/// The boot `GOMAXPROCS`: a valid `GOMAXPROCS` from the environment, else
/// the default of `ncpu` lowered by the cgroup CPU limit
/// (`GODEBUG=containermaxprocs=0` leaves the limit out). The cgroup files
/// are read only when the default is needed.
pub fn startup_procs(ncpu: i32, dv: &DebugVars) -> ProcsChoice {
    let env = gogetenv(b"GOMAXPROCS").map(OsStrExt::as_bytes);
    let explicit = gomaxprocs(env, 0);
    let cgroup_limit = if explicit <= 0 && dv.container_aware() {
        cgroup_cpu_limit()
    } else {
        None
    };
    let procs = if explicit > 0 {
        explicit
    } else {
        default_procs(ncpu, cgroup_limit, dv)
    };
    ProcsChoice {
        procs,
        ncpu,
        cgroup_limit,
    }
}
