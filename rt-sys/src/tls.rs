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

/// Byte offset of slot `i` from the GS base.
pub const fn slot_offset(i: usize) -> usize {
    i * core::mem::size_of::<usize>()
}

const _: () = assert!(TLS_G < TLS_SLOTS && TLS_M < TLS_SLOTS && TLS_MCACHE < TLS_SLOTS);
const _: () = assert!(TLS_G != TLS_M && TLS_M != TLS_MCACHE && TLS_G != TLS_MCACHE);
