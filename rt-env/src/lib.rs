//! rt-env — Go's start-up parsing of the process's outside inputs: `goargs`,
//! `goenvs`, `parsedebugvars`, `GOTRACEBACK`, `GOMAXPROCS`, and the CPU count
//! that `GOMAXPROCS` defaults to (affinity, lowered by a cgroup CPU limit as
//! in Go 1.25).
//!
//! Everything here is pure parsing with Go's exact rules, usable on its own
//! in any Rust program, and total: no input makes it panic. Where Go ignores a
//! malformed value, so does this crate.
//!
//! Map:
//!
//! | module        | Go counterpart                                   | entry points |
//! |---------------|--------------------------------------------------|--------------|
//! | [`mod@atoi`]  | `atoi64`, `atoi`, `atoi32` (string.go)           | [`atoi32`] |
//! | `env`         | `goargs`, `goenvs`, `gogetenv`, `syscall.Getenv` | [`goargs`], [`args`], [`goenvs`], [`envs`], [`getenv`], [`gogetenv`], [`Env`] |
//! | `debugvars`   | `dbgvars`, `parsedebugvars` (runtime1.go)        | [`DebugVars`], [`parse_godebug`], [`debugvars_from_env`] |
//! | `traceback`   | `setTraceback`, `gotraceback` (runtime1.go)      | [`Traceback`], [`parse_gotraceback`] |
//! | `procs`       | `getproccount`, `defaultGOMAXPROCS`, `schedinit` | [`affinity_cpus`], [`default_procs`], [`gomaxprocs`] |
//! | `cgroup`      | `internal/runtime/cgroup` (Go 1.25)              | [`cgroup_cpu_limit`], [`cgroup_cpu_limit_at`], [`CpuCgroup`] |
//! | `report`      | —                                                | [`debugvars_report`] |
//!
//! Boot order (what `schedinit` calls, in Go 1.17's order):
//!
//! 1. `osinit`: `ncpu = affinity_cpus()`;
//! 2. [`goargs`] (argv, no copy) and [`goenvs`] (envp, copied);
//! 3. `parsedebugvars`: `dv = debugvars_from_env()` and
//!    `tb = parse_gotraceback(gogetenv(b"GOTRACEBACK"))`;
//! 4. `procresize(gomaxprocs(gogetenv(b"GOMAXPROCS"),
//!    default_procs(ncpu, cgroup_cpu_limit(), &dv)))`.
//!
//! Two process-wide stores exist (arguments and environment); both are
//! written once and then only read, so every reference they hand out is
//! `'static`. Everything else is a pure function of its arguments.
//!
//! # Example
//!
//! ```
//! use rt_env::{default_procs, gomaxprocs, parse_godebug, parse_gotraceback, Env};
//!
//! let env = Env::new([
//!     &b"GODEBUG=gctrace=1,schedtrace=bad,inittrace=1,inittrace=0"[..],
//!     b"GOTRACEBACK=crash",
//!     b"GOMAXPROCS=+4",
//!     b"GODEBUG=ignored,because=the first entry wins",
//! ]);
//! let get = |k: &[u8]| env.runtime_get(k).map(|v| v.as_encoded_bytes());
//!
//! let dv = parse_godebug(get(b"GODEBUG").unwrap_or(b""));
//! assert_eq!(dv.gctrace, 1);
//! assert_eq!(dv.schedtrace, 0); // malformed value: ignored
//! assert_eq!(dv.inittrace, 0); // the last valid setting wins
//! assert_eq!(dv.madvdontneed, 1); // Go's linux default
//!
//! let tb = parse_gotraceback(get(b"GOTRACEBACK"));
//! assert_eq!((tb.level, tb.all, tb.crash), (2, true, true));
//! assert_eq!(tb.bits(), 2 << 2 | 2 | 1);
//!
//! // "+4" is not a number to Go's atoi32, so the default stands; with a
//! // cgroup limit of 1.5 CPUs on an 8-CPU mask that default is 2.
//! let default = default_procs(8, Some(1.5), &dv);
//! assert_eq!(default, 2);
//! assert_eq!(gomaxprocs(get(b"GOMAXPROCS"), default), 2);
//! assert_eq!(gomaxprocs(Some(b"16"), default), 16);
//! ```

#![warn(missing_docs)]

pub mod atoi;
mod cgroup;
mod debugvars;
mod env;
pub mod phase;
mod procs;
mod report;
mod traceback;

pub use atoi::{atoi, atoi32, atoi64};
pub use cgroup::{cgroup_cpu_limit, cgroup_cpu_limit_at, CgroupVersion, CpuCgroup};
pub use debugvars::{debugvars_from_env, parse_godebug, DebugVars, DEFAULT_MEMPROFILERATE};
pub use env::{args, envs, getenv, goargs, goenvs, gogetenv, process_env, Env};
pub use procs::{affinity_cpus, default_procs, gomaxprocs};
pub use report::debugvars_report;
pub use traceback::{parse_gotraceback, set_traceback, Traceback};
