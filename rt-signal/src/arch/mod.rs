//! The one place that knows the machine: how to read the interrupted
//! registers out of the `ucontext_t` the kernel hands a handler. Every other
//! file sees only [`SigCtxt`]. Other architectures are a compile error.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("rt-signal supports linux/amd64 only");
