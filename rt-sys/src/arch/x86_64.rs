//! The runtime-section counter in the M block (`crate::tls::TLS_LOCKS`),
//! read and written GS-relative, one instruction each: a signal arrives
//! between instructions, so the M's own signal handler always sees a whole
//! update, and no atomic (locked) instruction is needed. Each `asm!` is a
//! compiler barrier (no `nomem`), so runtime work is not moved across it.
//!
//! ```text
//!   GS base → ┌──────────┐ +0  goroutine
//!             │          │ +8  M
//!             │          │ +16 allocator cache
//!             │ locks    │ +24 low 32 bits: count | bit 31: preemption pending
//!             └──────────┘
//! ```

use core::arch::asm;

use crate::tls::{slot_offset, TLS_LOCKS};

const LOCKS_OFF: usize = slot_offset(TLS_LOCKS);
const _: () = assert!(LOCKS_OFF == 24);

/// Raises the count.
///
/// # Safety
/// The calling thread's GS base points at its live M block.
#[inline(always)]
pub(crate) unsafe fn locks_inc() {
    // SAFETY: the caller guarantees GS names a live M block with the slot.
    unsafe { asm!("inc dword ptr gs:[{off}]", off = const LOCKS_OFF, options(nostack)) };
}

/// Lowers the count and returns the new word.
///
/// # Safety
/// As [`locks_inc`].
#[inline(always)]
pub(crate) unsafe fn locks_dec() -> u32 {
    let v: u32;
    // SAFETY: as in `locks_inc`.
    unsafe {
        asm!(
            "dec dword ptr gs:[{off}]",
            "mov {v:e}, dword ptr gs:[{off}]",
            off = const LOCKS_OFF,
            v = out(reg) v,
            options(nostack)
        )
    };
    v
}

/// Reads the word.
///
/// # Safety
/// As [`locks_inc`].
#[inline(always)]
pub(crate) unsafe fn locks_get() -> u32 {
    let v: u32;
    // SAFETY: as in `locks_inc`.
    unsafe {
        asm!("mov {v:e}, dword ptr gs:[{off}]", off = const LOCKS_OFF, v = out(reg) v, options(nostack, readonly))
    };
    v
}

/// Sets bits in the word.
///
/// # Safety
/// As [`locks_inc`].
#[inline(always)]
pub(crate) unsafe fn locks_or(bits: u32) {
    // SAFETY: as in `locks_inc`.
    unsafe {
        asm!("or dword ptr gs:[{off}], {b:e}", off = const LOCKS_OFF, b = in(reg) bits, options(nostack))
    };
}

/// Clears bits in the word.
///
/// # Safety
/// As [`locks_inc`].
#[inline(always)]
pub(crate) unsafe fn locks_and(mask: u32) {
    // SAFETY: as in `locks_inc`.
    unsafe {
        asm!("and dword ptr gs:[{off}], {m:e}", off = const LOCKS_OFF, m = in(reg) mask, options(nostack))
    };
}
