//! The scheduler's low-level interface: what the runtime's entry
//! (`rt-entry`) calls while it boots the process, and what tests and
//! benchmarks use to drive goroutines directly. Programs use the crate
//! root (`go`, `spawn`, `Chan`, …) instead.
//!
//! The `schedinit` phases the scheduler owns are [`Maxmcount`],
//! [`Fastrandinit`], [`Mcommoninit`] and [`Procresize`] (each an
//! `rt_sys::phase::Phase`, a row of `rt-entry`'s table).
//!
//! Boot order (`rt-entry`'s phase table drives it): [`bind_m0`] and
//! [`mcommoninit`] for m0, [`configure`], [`procresize_boot`], [`newproc`]
//! for the main goroutine, the start hooks, then [`mstart_m0`], which never
//! returns. Goroutine 1 calls [`set_main_started`] and [`start_sysmon_when_needed`],
//! and ends the process with [`exit`].
//!
//! The types [`G`] and [`M`] and the statics [`G0`] and [`M0`] are public
//! because the entry assembly names them (`sym`) and reaches their fields
//! through `offset_of!`; their layout is `repr(C)`.

pub use crate::arch::{fp_env_current, fp_env_set, fp_per_g, set_fp_per_g, FpEnv};
pub use crate::dump::{schedtrace, set_traceback_bits, write_all, write_report};
pub use crate::panic::{install_hook as install_panic_hook, set_panic_exit_hook};
pub use crate::phase::{
    startup_random, Fastrandinit, Maxmcount, Mcommoninit, Procresize, SeedSource, MAX_THREADS,
};
pub use crate::proc::{
    bind_m0, configure, current_g, exit, fastrandinit, getg_checked, gopark, goready,
    gs_tls_in_use, mcommoninit, mstart_m0, newproc, on_g0, procresize_boot, set_main_started,
    set_minit_hook, set_mstartm0_hook, sleep_until, use_tls_fallback, yield_to, SchedConfig,
};
pub use crate::runtime2::{
    Gobuf, Static, G, G0, GDEAD, GIDLE, GRUNNABLE, GRUNNING, GSYSCALL, GWAITING, M, M0, P,
};
pub use crate::sysmon::{
    deep_sleeps as sysmon_deep_sleeps, set_idle_hook, set_tick_hook, start as start_sysmon,
    start_when_needed as start_sysmon_when_needed,
};
pub use rt_stack::Stack;
