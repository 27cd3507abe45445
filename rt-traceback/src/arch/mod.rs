//! Architecture-specific parts: the register set of a walk and the stack
//! switch for reports.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("rt-traceback supports linux/amd64 only");
