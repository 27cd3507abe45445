//! The one place `rt-entry` selects an architecture: the entry trampolines,
//! `rt0_go`, and the CPUID reads of `cpuinit`.

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("rt-entry supports linux/amd64 only");
