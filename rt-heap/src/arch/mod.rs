//! The one place `rt-heap` selects an architecture: the GS-relative access
//! to the allocator cache slot of an M's block (`rt_sys::tls`).

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::*;
