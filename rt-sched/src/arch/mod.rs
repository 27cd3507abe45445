//! The one place `rt-sched` selects an architecture. Everything above this
//! module is portable; everything in it is amd64 System V assembly.
//!
//! Surface. `unsafe` (see each item's `# Safety`):
//! * [`settls`] — point this thread's GS base at an M's TLS block;
//! * [`getg_raw`] / [`setg_raw`] / [`getm_raw`] — the goroutine and M
//!   slots, one GS-relative move each;
//! * [`gogo`] — resume a saved [`Gobuf`](crate::runtime2::Gobuf), never
//!   returns;
//! * [`mcall`] — save the current goroutine and call a function on g0;
//! * [`switch`] — save the current goroutine and resume another directly;
//! * [`fp_env_set`] — load MXCSR and the x87 control word;
//! * [`init_fresh_stack`] — lay out a new goroutine's first frame.
//!
//! Safe:
//! * [`FpEnv`], [`set_fp_per_g`], [`fp_per_g`], [`fp_env_current`],
//!   `fp_enter_g0` — who owns MXCSR and the x87 control word
//!   (`GODEBUG=fpenv`);
//! * [`gostart_pc`] / [`goexit_pc`] — where a new goroutine starts, and the
//!   address its entry function returns to;
//! * [`current_sp`] — the caller's stack pointer;
//! * [`prefetch_write`] — start loading two cache lines for writing;
//! * [`blocked_in_syscall`] — from a signal's saved pc and rax, whether the
//!   thread was waiting in a blocking system call.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("rt-sched supports linux/amd64 only");
