//! GS-relative access to the cache slot of an M's block (amd64).
//!
//! ```text
//!   GS base ──► M block (rt_sys::tls): [ g | m | mcache | … ]
//!                                              ▲ MCACHE_OFF bytes in
//! ```
//!
//! Neither asm block is `pure`, so the compiler executes each one where it
//! is written and never reuses an earlier result: a goroutine that resumed
//! on another M reads that M's slot. No stack, no flags, no other registers.

use crate::mcache::MCache;
use core::arch::asm;

/// Byte offset of the cache slot from the GS base.
const MCACHE_OFF: usize = rt_sys::tls::slot_offset(rt_sys::tls::TLS_MCACHE);

/// Reads the cache slot: `mov reg, gs:[MCACHE_OFF]`.
///
/// # Safety
/// The calling thread's GS base points at a live M block (`rt_sys::tls`).
#[inline(always)]
pub(crate) unsafe fn gs_mcache() -> *mut MCache {
    let c: *mut MCache;
    // SAFETY: the caller guarantees GS points at a live M block, whose
    // cache slot is a readable word.
    unsafe {
        asm!(
            "mov {c}, qword ptr gs:[{off}]",
            c = out(reg) c,
            off = const MCACHE_OFF,
            options(nostack, readonly, preserves_flags),
        )
    };
    c
}

/// Writes the cache slot: `mov gs:[MCACHE_OFF], reg`.
///
/// # Safety
/// The calling thread's GS base points at a live M block owned by the
/// calling thread.
#[inline(always)]
pub(crate) unsafe fn set_gs_mcache(c: *mut MCache) {
    // SAFETY: as above; the block is the calling thread's own.
    unsafe {
        asm!(
            "mov qword ptr gs:[{off}], {c}",
            c = in(reg) c,
            off = const MCACHE_OFF,
            options(nostack, preserves_flags),
        )
    };
}

/// The calling thread's identity for the self-checks: the thread pointer
/// libc keeps at `fs:0` (the TCB's pointer to itself), one load. Not `pure`,
/// so it is read where it is written, like the cache slot.
#[inline(always)]
pub(crate) fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: on x86-64 Linux, FS always points at the thread's TCB, whose
    // first word points at itself (the TLS ABI libc and the kernel follow).
    unsafe {
        asm!(
            "mov {tp}, qword ptr fs:[0]",
            tp = out(reg) tp,
            options(nostack, readonly, preserves_flags),
        )
    };
    tp
}
