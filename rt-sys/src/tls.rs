//! The per-M block that the GS base points at.
//!
//! Every M (an OS thread that runs goroutines) points its GS base at a small
//! block of words that it owns (`M.tls` in `rt-sched`). Its words are read
//! with one GS-relative `mov`, which the compiler cannot move across a call:
//! the asm is re-executed every time. That is the property a goroutine needs
//! of per-thread state, because a goroutine that parks (a channel operation,
//! a lock, a sleep) may resume on another M.
//!
//! A `thread_local!` does not have it. Rust computes a thread-local's
//! address from the thread pointer, and LLVM treats that address as fixed
//! for the whole function, so it may compute it once and keep it in a
//! register or stack slot across a call that parks. After the goroutine
//! resumed on another thread, the kept address still names the *previous*
//! thread's variable. Runtime state that code inlined into goroutines reads
//! per thread (the current goroutine, the M, the allocator's cache) is
//! therefore kept here, and a thread-local is consulted on those paths only
//! for facts that are the same on every M (see `rt_heap::mcache`).
//!
//! The slots are shared between crates that do not depend on each other
//! (the scheduler writes [`TLS_G`] and [`TLS_M`], the allocator
//! [`TLS_MCACHE`]), so their indices live here.

/// Words in an M's block.
pub const TLS_SLOTS: usize = 6;
/// Word 0: the running goroutine (`getg`).
pub const TLS_G: usize = 0;
/// Word 1: the M itself.
pub const TLS_M: usize = 1;
/// Word 2: the allocator cache this M allocates through: its P's cache while
/// it holds a P, else the thread's own cache (null until that exists).
/// Owned by `rt-heap`.
pub const TLS_MCACHE: usize = 2;
/// Word 3: the runtime-section count (Go's `m.locks`) in its low 31 bits,
/// and [`LOCKS_PENDING`]. Owned by this module (see [`runtime_enter`]).
pub const TLS_LOCKS: usize = 3;

/// Bit of the [`TLS_LOCKS`] word that says a preemption waits for the
/// count to drop to zero.
pub const LOCKS_PENDING: u32 = 1 << 31;

std::thread_local! {
    /// This thread's GS base points at an M block (set once, never
    /// cleared: Ms never exit). The same on every M, so a goroutine that
    /// moved between Ms reading a stale thread-local address still gets the
    /// right answer.
    static GS_M: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Records that the calling thread's GS base points at its own M block for
/// the rest of its life.
///
/// # Safety
/// As said: the block stays live and the GS base stays put.
pub unsafe fn mark_gs_thread() {
    GS_M.with(|c| c.set(true));
}

/// True on a thread whose GS base points at its M block.
#[inline(always)]
pub fn is_gs_thread() -> bool {
    GS_M.with(|c| c.get())
}

/// What a runtime-section exit runs when a preemption was waiting for it
/// (the scheduler's synchronous preemption); installed at boot.
static PREEMPT_HOOK: crate::hook::Hook<fn()> = crate::hook::Hook::new();

/// Installs the function [`runtime_exit`] calls when the count drops to
/// zero with a preemption pending.
pub fn set_preempt_hook(f: fn()) {
    PREEMPT_HOOK.set(f);
}

/// Enters a runtime section on an M (a runtime lock taken, a P-affine
/// path begun): preemption waits until the matching [`runtime_exit`]. Free
/// on threads that are not Ms.
#[inline(always)]
pub fn runtime_enter() {
    if is_gs_thread() {
        // SAFETY: the GS base points at this M's live block.
        unsafe { crate::arch::locks_inc() };
    }
}

/// Leaves a runtime section; the last one to leave takes a preemption that
/// arrived meanwhile.
#[inline(always)]
pub fn runtime_exit() {
    if is_gs_thread() {
        // SAFETY: the GS base points at this M's live block.
        let v = unsafe { crate::arch::locks_dec() };
        if v == LOCKS_PENDING {
            pending_preemption();
        } else if cfg!(debug_assertions) && v & !LOCKS_PENDING == !LOCKS_PENDING {
            // The count went below zero: an exit without its enter, or a
            // section that spanned a park and ended on another M.
            crate::throw("runtime section count below zero");
        }
    }
}

#[cold]
#[inline(never)]
fn pending_preemption() {
    // SAFETY: on an M (checked by the caller).
    unsafe { crate::arch::locks_and(!LOCKS_PENDING) };
    if let Some(f) = PREEMPT_HOOK.get() {
        f();
    }
}

/// The runtime-section word of the calling M (count and [`LOCKS_PENDING`]).
///
/// # Safety
/// The calling thread is an M with its GS block ([`is_gs_thread`]).
#[inline(always)]
pub unsafe fn runtime_locks() -> u32 {
    // SAFETY: forwarded.
    unsafe { crate::arch::locks_get() }
}

/// Marks a preemption as waiting for the count to drop to zero.
///
/// # Safety
/// As [`runtime_locks`]; called by the M's own thread (or its signal
/// handler).
pub unsafe fn set_preemption_pending() {
    // SAFETY: forwarded.
    unsafe { crate::arch::locks_or(LOCKS_PENDING) };
}

/// Byte offset of slot `i` from the GS base.
pub const fn slot_offset(i: usize) -> usize {
    i * core::mem::size_of::<usize>()
}

const _: () = assert!(
    TLS_G < TLS_SLOTS && TLS_M < TLS_SLOTS && TLS_MCACHE < TLS_SLOTS && TLS_LOCKS < TLS_SLOTS
);
const _: () = assert!(TLS_G != TLS_M && TLS_M != TLS_MCACHE && TLS_G != TLS_MCACHE);
