//! Goroutine scheduling: Go's `proc.go` for rt.
//!
//! The bootstrap sequence is the one Go's comment gives: `osinit`,
//! `schedinit`, make and queue the main G (`newproc`), `mstart`. This module
//! owns the scheduler's part of it — `mcommoninit`, `procresize`, `newproc`,
//! `mstart` — and everything that happens after: `schedule` →
//! `findrunnable` → `execute` → `gogo`.
//!
//! ## Where things are
//! * [`getg`](self::getg) — the goroutine and M slots of the GS block (or
//!   the thread-local fallback), `minit`'s TLS half, `bind_m0`.
//! * [`newproc`](self::newproc) — `newproc`, `malg`, the G free lists
//!   (`gfput`/`gfget`), stack binding and its self-checks, `goexit`.
//! * [`gopark`](self::gopark) — the ways a goroutine leaves its stack:
//!   `mcall`, `gopark`/`goready`, `gosched`, `yield_to`, sleeping.
//! * [`schedule`](self::schedule) — `schedule`, `findrunnable`, stealing,
//!   `execute`, `wakep`, the shared time slice, `checkdead`.
//! * [`mstart`](self::mstart) — M lifecycle: `mcommoninit`, `newm`,
//!   `mstart`, the per-M start hooks, `startm`/`stopm`/`handoffp`, locked Ms.
//! * [`procresize`](self::procresize) — Ps: `acquirep`/`releasep`, the idle
//!   list, `allp`, `procresize` at boot, stop-the-world and
//!   `set_gomaxprocs`.
//! * [`syscall`](self::syscall) — `entersyscallblock`/`exitsyscall`,
//!   `lock_os_thread`.
//! * The run queues (`runqput`, `runqget`, `globrunqput`, `globrunqget`)
//!   are in [`crate::runq`].
//!
//! ## Spinning Ms and `wakep`
//! Work is spread over per-P run queues, so no fast path can see whether
//! some M is idle while work waits, and no M can know whether a goroutine
//! is about to be readied. Go's answer, kept here: keep just enough Ms
//! *spinning* — out of local work and looking through the other Ps' queues
//! — that new work is found without a wake-up per goroutine.
//!
//! * An M becomes spinning in `findrunnable` after its local queue and the
//!   global queue came up empty (`m.spinning`, counted in
//!   `sched.nmspinning`), but only while `2 * nmspinning` is below the
//!   number of busy Ps: half of the busy Ps' worth of thieves is plenty.
//!   An M woken by `wakep` starts out spinning too (it is handed no
//!   goroutine, only a P).
//! * Whoever makes a goroutine runnable (`newproc`, `goready`) calls
//!   `wakep` afterwards (timers that fire are run by the M that checks
//!   them, which is already awake). It starts (or unparks, `startm`) one more
//!   spinning M only when there is an idle P *and* no M is spinning: a
//!   spinning M will find the new goroutine anyway. Starting an M per
//!   readied goroutine would make Ms wake just to find the work gone, and
//!   handing the goroutine straight to a new M would break the locality of
//!   goroutines that ready each other.
//! * A spinning M that finds work leaves the spinning state
//!   (`resetspinning`); if it was the last one it calls `wakep`, so a burst
//!   of new goroutines ramps the Ms up one at a time instead of all at once
//!   (no thundering herd), and eventually every idle P has an M.
//! * A spinning M that finds nothing must not lose a goroutine submitted
//!   while it was giving up. Both sides follow Go's pattern: the submitter
//!   publishes the goroutine, then reads `nmspinning` (in `wakep`); the
//!   spinner puts its P on the idle list, decrements `nmspinning`, then
//!   looks at every run queue, `runnext` and the global queue once more
//!   before parking. The submitter's `runnext` swap and the spinner's
//!   `fetch_sub` are read-modify-write operations (locked instructions on
//!   amd64, full fences), so at least one side sees the other: either the
//!   submitter sees no spinning M and wakes one, or the spinner sees the
//!   goroutine, takes an idle P back and spins again.
//! * The global run queue needs none of this: it is read and written under
//!   `sched.lock`, and `findrunnable` re-checks it under that lock before
//!   giving up its P.
//!
//! rt has no network poller, so the timer half of Go's protocol is simpler:
//! an M that parks sleeps no longer than the earliest timer of any P
//! (`stopm`), and `handoffp` starts an M for a P whose timers need one.
//!
//! ## Stacks are not copied
//! rt goroutines run Rust code that keeps pointers into its stack, so stacks
//! are fixed-size (lazily committed virtual memory with a guard page below,
//! from `rt-stack`); `stackguard0` is kept for the scheduler trace and never
//! drives a growth check.

mod getg;
mod gopark;
mod mstart;
mod newproc;
mod procresize;
mod schedule;
mod syscall;

pub use getg::*;
pub use gopark::*;
pub use mstart::*;
pub use newproc::*;
pub use procresize::*;
pub(crate) use schedule::*;
pub use syscall::*;

use crate::arch;
use crate::runq::*;
use crate::runtime2::*;
use core::cell::Cell;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::io::Write;

/// Bytes between `stack.lo` and `stackguard0` (Go's `_StackGuard` on amd64).
pub(crate) const STACK_GUARD: usize = 928;
/// Size of each M's signal stack (`gsignal`; "Linux wants >= 2K").
pub(crate) const GSIGNAL_STACK: usize = 32 * 1024;
/// Goids are handed to Ps in batches of this many (`_GoidCacheBatch`).
pub(crate) const GOID_CACHE_BATCH: u64 = 16;
/// Bytes of OS stack an M's g0 gets (Go gives 8 KiB when not using cgo; the
/// scheduler here is Rust code that formats and allocates, so it gets more).
pub(crate) const G0_STACK: usize = 256 * 1024;
/// Go's 1-in-61 check of the global queue, so local work cannot starve it.
const GLOBAL_FAIRNESS: u32 = 61;
/// Steal attempts over all Ps before giving up (`stealTries`).
const STEAL_TRIES: u32 = 4;
/// How long goroutines that ready each other through `runnext` may share
/// one time slice (Go's `forcePreemptNS`, 10 ms).
const TIME_SLICE_NS: i64 = 10_000_000;
/// The shared slice's clock is read once per this many inherited runs (a
/// power of two).
const SLICE_CHECK_EVERY: u32 = 64;
const _: () = assert!(SLICE_CHECK_EVERY.is_power_of_two());

/// Seed for every M's PRNG (`fastrandseed`), from AT_RANDOM.
static FASTRAND_SEED: AtomicU64 = AtomicU64::new(0);

/// Scheduler configuration fixed at boot.
#[derive(Debug, Clone, Copy)]
pub struct SchedConfig {
    /// Stack size of a new goroutine (bytes).
    pub stack_size: usize,
    /// `GODEBUG=schedtrace`: ms between `SCHED` lines, 0 = off.
    pub schedtrace: i32,
    /// `GODEBUG=scheddetail`.
    pub scheddetail: i32,
    /// Bind a stack when a goroutine first runs and return it to the P's
    /// stack cache when it exits, instead of at spawn/reuse (see
    /// `LAZY_STACKS`).
    pub lazy_stacks: bool,
}

/// Lazy stack binding. A goroutine waiting in a run queue has no use for a
/// stack, so with lazy binding `newproc` only makes the G, `execute` takes a
/// stack from the P's cache the first time the G runs, and `goexit` gives it
/// back. A burst of a million short goroutines spawned before any runs then
/// reuses one hot stack instead of faulting in a million (measured with
/// `cargo xtask bench`, workload `spawn`, gomaxprocs=1). It is used when
/// guard pages cost no mapping (`MADV_GUARD_INSTALL`); with the `mprotect`
/// fallback every stack costs VMAs, and stacks are bound at spawn so that
/// `newproc` can report exhaustion to its caller instead of failing later.
static LAZY_STACKS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

static STACK_SIZE: AtomicUsize = AtomicUsize::new(0);
static SCHEDTRACE: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);
static SCHEDDETAIL: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);

/// Records the boot-time configuration.
pub fn configure(cfg: SchedConfig) {
    STACK_SIZE.store(cfg.stack_size, Ordering::Relaxed);
    SCHEDTRACE.store(cfg.schedtrace, Ordering::Relaxed);
    SCHEDDETAIL.store(cfg.scheddetail, Ordering::Relaxed);
    LAZY_STACKS.store(cfg.lazy_stacks, Ordering::Relaxed);
}

fn lazy_stacks() -> bool {
    LAZY_STACKS.load(Ordering::Relaxed)
}

fn stack_size() -> usize {
    match STACK_SIZE.load(Ordering::Relaxed) {
        0 => rt_stack::default_stack_size(),
        n => n,
    }
}

/// Seeds every M's PRNG (`fastrandinit`), from the kernel's AT_RANDOM bytes.
pub fn fastrandinit(seed: u64) {
    FASTRAND_SEED.store(seed, Ordering::Relaxed);
}

fn mix64(mut z: u64) -> u64 {
    // splitmix64's finaliser: a bijection that spreads every input bit.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// Go 1.17's per-M generator (xorshift-64 over two 32-bit words).
fn fastrand_step(s: &mut [u32; 2]) -> u32 {
    let (mut s1, s0) = (s[0], s[1]);
    s1 ^= s1 << 17;
    s1 = s1 ^ s0 ^ (s1 >> 7) ^ (s0 >> 16);
    s[0] = s0;
    s[1] = s1;
    s0.wrapping_add(s1)
}

/// A pseudo-random number from the calling M's generator (or a
/// thread-local one on non-M threads).
pub(crate) fn fastrand() -> u32 {
    let mp = current_m();
    if mp.is_null() {
        thread_local!(static S: Cell<[u32; 2]> = const { Cell::new([0x9e37_79b9, 0x7f4a_7c15]) });
        return S.with(|c| {
            let mut s = c.get();
            let r = fastrand_step(&mut s);
            c.set(s);
            r
        });
    }
    // SAFETY: the M's fastrand is only touched by its own thread.
    unsafe { fastrand_step(&mut (*mp).fastrand) }
}

/// Moves `v` to the heap for the life of the process. Runtime structures
/// (Gs, Ms, Ps) end in `fatal error: out of memory` when there is no memory
/// for them, as Go's do, instead of Rust's allocation-failure abort.
pub(crate) fn leak_or_throw<T>(v: T) -> *mut T {
    let layout = std::alloc::Layout::new::<T>();
    // SAFETY: G, M and P are not zero-sized.
    let p = unsafe { std::alloc::alloc(layout) }.cast::<T>();
    if p.is_null() {
        rt_sys::throw("out of memory");
    }
    // SAFETY: p is fresh, aligned and large enough for a T.
    unsafe { p.write(v) };
    p
}

/// Marks `runtime.main` as started: from now on `newproc` wakes idle Ps.
pub fn set_main_started() {
    SCHED.main_started.store(true, Ordering::Release);
}

/// Ends the process with `code` (Go's `exit` after `main.main` returns):
/// flushes what Rust buffered on stdout first, then `exit(3)` so C stdio
/// and atexit handlers run too. Other Ms stop scheduling.
pub fn exit(code: i32) -> ! {
    SCHED.exiting.store(true, Ordering::Release);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: exit(3) has no preconditions.
    unsafe { libc::exit(code) }
}

/// The goid of `gp`.
pub(crate) fn goid_of(gp: *mut G) -> i64 {
    // SAFETY: Gs are never freed; goid is written before publication.
    unsafe { (*gp).goid }
}

/// `(schedtrace, scheddetail)` from the boot configuration.
pub(crate) fn trace_config() -> (i32, i32) {
    (
        SCHEDTRACE.load(Ordering::Relaxed),
        SCHEDDETAIL.load(Ordering::Relaxed),
    )
}
