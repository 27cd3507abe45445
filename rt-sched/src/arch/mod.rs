//! The one place `rt-sched` selects an architecture. Everything above this
//! module is portable; everything in it is amd64 System V assembly.
//!
//! Surface (all `unsafe`, see each item):
//! * [`settls`] — point this thread's GS base at an M's TLS block;
//! * [`getg_raw`] / [`setg_raw`] — the goroutine slot, one GS-relative move;
//! * [`gogo`] — resume a saved [`Gobuf`](crate::Gobuf), never returns;
//! * [`mcall`] — save the current goroutine and call a function on g0;
//! * [`switch`] — save the current goroutine and resume another directly;
//! * [`FpEnv`], [`set_fp_per_g`], [`fp_env_current`], [`fp_env_set`] — who
//!   owns MXCSR and the x87 control word (`GODEBUG=fpenv`);
//! * [`init_fresh_stack`] / [`gostart_pc`] — a new goroutine's first frame;
//! * [`goexit_pc`] — the address a goroutine's entry function returns to;
//! * [`current_sp`] — the caller's stack pointer.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("rt-sched supports linux/amd64 only");
