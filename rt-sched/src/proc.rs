//! Goroutine scheduling: Go's `proc.go` for rt.
//!
//! The bootstrap sequence is the one Go's comment gives: `osinit`,
//! `schedinit`, make and queue the main G (`newproc`), `mstart`. This module
//! owns the scheduler's part of it — `mcommoninit`, `procresize`, `newproc`,
//! `mstart` — and everything that happens after: `schedule` →
//! `findrunnable` → `execute` → `gogo`.
//!
//! ## Worker parking (Go's spinning protocol, kept)
//! An M that runs out of work becomes *spinning* (`m.spinning`,
//! `sched.nmspinning`) while it looks for Gs to steal, but only while fewer
//! than half the busy Ps have a spinning M. Whoever makes a G runnable calls
//! `wakep`, which starts (or unparks) one more spinning M only when there is an
//! idle P and *no* spinning M: a spinning M will find the new G anyway. The
//! last spinning M to find work calls `wakep` again, so a burst of new Gs
//! ramps up Ms one by one without a thundering herd. An M that gives up
//! releases its P, re-checks every run queue (the new G may have been
//! submitted between its last look and its `nmspinning` decrement — the
//! StoreLoad pairing Go describes), and parks on its note.
//!
//! ## Stacks are not copied
//! rt goroutines run Rust code that keeps pointers into its stack, so stacks
//! are fixed-size (lazily committed virtual memory with a guard page below,
//! from `rt-stack`); `stackguard0` is kept for the scheduler trace and never
//! drives a growth check.

use crate::arch;
use crate::runtime2::*;
use core::cell::Cell;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::io::Write;

/// Bytes between `stack.lo` and `stackguard0` (Go's `_StackGuard` on amd64).
pub const STACK_GUARD: usize = 928;
/// Size of each M's signal stack (`gsignal`; "Linux wants >= 2K").
pub const GSIGNAL_STACK: usize = 32 * 1024;
/// Goids are handed to Ps in batches of this many (`_GoidCacheBatch`).
pub const GOID_CACHE_BATCH: u64 = 16;
/// Bytes of OS stack an M's g0 gets (Go gives 8 KiB when not using cgo; the
/// scheduler here is Rust code that formats and allocates, so it gets more).
pub const G0_STACK: usize = 256 * 1024;
/// Bytes of m0's OS stack that rt0_go grants g0 (`64 KiB − 104`, as Go).
pub const G0_BOOT_STACK: usize = 64 * 1024 - 104;
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

thread_local! {
    /// The M this OS thread is, or null for threads the runtime did not
    /// create. A thread spawned from a goroutine inherits its creator's GS
    /// base but not this slot, which is why `getg_checked` consults it first.
    /// Code inlined into goroutines may read it through a stale address
    /// (`rt_sys::tls`), so on those paths only its null-ness is used: that
    /// is the same on every M, and Ms never exit. The M itself is read
    /// through GS.
    static CURRENT_M: Cell<*mut M> = const { Cell::new(null_mut()) };
    /// The goroutine slot when the kernel refused `ARCH_SET_GS`; read and
    /// written only out of line (`fallback_getg`).
    static FALLBACK_G: Cell<*mut G> = const { Cell::new(null_mut()) };
}

/// False when `ARCH_SET_GS` failed at boot and the goroutine slot lives in a
/// `thread_local!` instead (reported in the boot trace).
static GS_TLS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

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

// ---------------------------------------------------------------------------
// getg / setg

/// The running goroutine (g0 while in the scheduler). One GS-relative load.
///
/// Only valid on an M; code reachable from other threads uses
/// [`getg_checked`].
#[inline(always)]
pub fn getg() -> *mut G {
    if GS_TLS.load(Ordering::Relaxed) {
        // SAFETY: every M points its GS base at its TLS block in `minit`
        // before running any goroutine; callers are on an M.
        unsafe { arch::getg_raw() }
    } else {
        fallback_getg()
    }
}

/// The goroutine slot without a GS block. Out of line: a thread-local's
/// address computed before a park would name the previous M's slot after
/// the goroutine resumed elsewhere (`rt_sys::tls`), and a call is
/// re-executed where it is written.
#[inline(never)]
fn fallback_getg() -> *mut G {
    FALLBACK_G.with(|g| g.get())
}

/// This thread's M from its thread-local, read out of line (see
/// [`fallback_getg`]).
#[inline(never)]
fn current_m_fresh() -> *mut M {
    CURRENT_M.with(|m| m.get())
}

/// The running goroutine, or null when the calling thread is not an M (a
/// thread the runtime did not create, even one that inherited an M's GS
/// base from its creator).
#[inline]
pub fn getg_checked() -> *mut G {
    if CURRENT_M.with(|m| m.get()).is_null() {
        return null_mut();
    }
    getg()
}

/// The calling thread's M, or null.
///
/// The thread-local only answers "is this thread an M?"; the M itself is
/// read through the GS base. A goroutine can resume on another M after any
/// call that may park it, and the compiler may keep a thread-local's
/// address in a register across such a call: that address would still name
/// the previous thread's slot, while `%gs:8` is read afresh.
#[inline]
pub fn current_m() -> *mut M {
    let m = CURRENT_M.with(|m| m.get());
    if m.is_null() {
        return m;
    }
    if !GS_TLS.load(Ordering::Relaxed) {
        return current_m_fresh();
    }
    // SAFETY: the thread is an M (stale or not, the flag is the same on
    // every M), so GS points at an M's TLS block whose word 1 is that M.
    unsafe { arch::getm_raw() as *mut M }
}

/// Sets the goroutine slot.
#[inline(always)]
fn setg(g: *mut G) {
    if GS_TLS.load(Ordering::Relaxed) {
        // SAFETY: as in `getg`: only called on Ms whose GS base is set.
        unsafe { arch::setg_raw(g) }
    } else {
        fallback_setg(g);
    }
}

/// Writes the goroutine slot without a GS block, out of line (see
/// [`fallback_getg`]).
#[inline(never)]
fn fallback_setg(g: *mut G) {
    FALLBACK_G.with(|c| c.set(g));
}

/// Go's `settls` + the `0x123` check for an M other than m0 (m0's is done
/// in rt0_go): points GS at `mp.tls`, proves the slot round-trips, binds g0.
///
/// # Safety
/// `mp` must be a live, leaked M owned by the calling thread.
pub unsafe fn minit_tls(mp: *mut M) {
    // SAFETY: mp is live and ours (caller).
    unsafe {
        let tls = (*mp).tls.as_mut_ptr();
        if GS_TLS.load(Ordering::Relaxed) {
            if arch::settls(tls).is_err() {
                rt_sys::throw("settls: arch_prctl(ARCH_SET_GS) failed on a new M");
            }
            arch::setg_raw(0x123 as *mut G);
            if (*mp).tls[TLS_G] != 0x123 {
                rt_sys::throw("settls: goroutine slot does not round-trip");
            }
        }
        (*mp).tls[TLS_M] = mp as usize;
    }
}

/// Records that the kernel refused `ARCH_SET_GS`: the goroutine slot is a
/// `thread_local!` from now on.
pub fn use_tls_fallback() {
    GS_TLS.store(false, Ordering::Relaxed);
}

/// True when the goroutine slot is in the GS base (the normal case).
pub fn gs_tls_in_use() -> bool {
    GS_TLS.load(Ordering::Relaxed)
}

/// Binds the calling thread to `mp` (its goroutine slot then names g0).
///
/// # Safety
/// `mp` must be live with a g0, and the calling thread must be its thread.
pub unsafe fn bind_thread(mp: *mut M) {
    // SAFETY: mp is live (caller); tls[1] is what `current_m` reads via GS.
    unsafe { (*mp).tls[TLS_M] = mp as usize };
    CURRENT_M.with(|c| c.set(mp));
    // SAFETY: mp is live (caller).
    unsafe {
        (*mp).procid.store(rt_sys::gettid(), Ordering::Relaxed);
        (*mp).thread = libc::pthread_self() as usize;
        setg((*mp).g0);
        // The allocator's cache moves into this M's block (or out of line
        // without one): Ms never exit and keep their GS base for life.
        rt_heap::register_m_thread(GS_TLS.load(Ordering::Relaxed));
    }
}

// ---------------------------------------------------------------------------
// PRNG

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
pub fn fastrand() -> u32 {
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

// ---------------------------------------------------------------------------
// mcommoninit

/// Registers a new M (Go's `mcommoninit`): id (`id >= 0` given, else the
/// next one), the thread cap, a non-zero PRNG state, a 32 KiB `gsignal`
/// stack, and the `allm` list.
///
/// # Safety
/// `mp` must be live and not yet registered.
pub unsafe fn mcommoninit(mp: *mut M, id: i64) {
    SCHED.lock.lock();
    // SAFETY: lock held; mp exclusively ours until published on allm.
    unsafe {
        let s = SCHED.locked();
        (*mp).id = if id >= 0 {
            id
        } else {
            let id = s.mnext;
            s.mnext += 1;
            id
        };
        if id >= 0 && s.mnext <= id {
            s.mnext = id + 1;
        }
        let count = SCHED.mcount.fetch_add(1, Ordering::Relaxed) + 1;
        if count > s.maxmcount {
            let max = s.maxmcount;
            SCHED.lock.unlock();
            rt_sys::enter_fatal();
            let mut b = rt_sys::StackBuf::<96>::new();
            let _ = core::fmt::write(
                &mut b,
                format_args!("runtime: program exceeds {max}-thread limit\n"),
            );
            rt_sys::write_stderr(b.as_bytes());
            rt_sys::throw("thread exhaustion");
        }
        let seed = FASTRAND_SEED.load(Ordering::Relaxed);
        let a = mix64(((*mp).id as u64) ^ seed);
        let b = mix64(rt_sys::nanotime() as u64 ^ !seed);
        (*mp).fastrand = [a as u32, b as u32];
        if (*mp).fastrand == [0, 0] {
            (*mp).fastrand[1] = 1;
        }
    }
    SCHED.lock.unlock();
    // mpreinit: the signal goroutine and its stack.
    let gs = malg_system(GSIGNAL_STACK);
    // SAFETY: gs and mp are live and not yet shared.
    unsafe {
        (*gs).m = mp;
        (*gs).stackguard1 = (*gs).stack.lo + STACK_GUARD;
        (*mp).gsignal = gs;
        // Publish on allm: a Release CAS so readers walking the list see a
        // fully initialised M.
        let mut head = ALLM.load(Ordering::Relaxed);
        loop {
            (*mp).alllink = head;
            match ALLM.compare_exchange_weak(head, mp, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
    }
}

/// Sets the thread cap (`debug.SetMaxThreads`); returns the old one.
pub fn set_max_threads(n: i32) -> i32 {
    SCHED.lock.lock();
    // SAFETY: lock held.
    let old = unsafe {
        let s = SCHED.locked();
        core::mem::replace(&mut s.maxmcount, n)
    };
    SCHED.lock.unlock();
    old
}

// ---------------------------------------------------------------------------
// G allocation

fn alloc_g() -> *mut G {
    leak_or_throw(G::new())
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

fn allgadd(gp: *mut G) {
    let mut all = ALLGS.lock().unwrap_or_else(|e| e.into_inner());
    all.push(gp as usize);
    // SAFETY: gp is live; in_allgs is only written here.
    unsafe { (*gp).in_allgs = true };
}

/// A G with a stack of `size` bytes from the global pool, for runtime use
/// (gsignal). Not on `allgs`.
fn malg_system(size: usize) -> *mut G {
    let gp = alloc_g();
    let st = match rt_stack::stackalloc(None, size) {
        Ok(s) => s,
        Err(e) => rt_sys::fatal!(
            "runtime: cannot allocate a {} byte system stack: {}",
            size,
            e
        ),
    };
    // SAFETY: gp is fresh.
    unsafe {
        set_stack(gp, st);
        (*gp).system = true;
        casgstatus(gp, GIDLE, GDEAD);
    }
    gp
}

/// A new user G (Go's `malg`) with a stack from the P's stack cache, or
/// none yet with lazy binding.
fn malg(pp: *mut P) -> Result<*mut G, SpawnError> {
    if lazy_stacks() {
        let gp = alloc_g();
        // SAFETY: gp is fresh.
        unsafe { casgstatus(gp, GIDLE, GDEAD) };
        allgadd(gp);
        return Ok(gp);
    }
    let size = stack_size();
    let cache = if pp.is_null() {
        None
    } else {
        // SAFETY: pp is held by this M, so its stack cache is ours.
        Some(unsafe { p_stackcache(pp) })
    };
    let st = rt_stack::stackalloc(cache, size).map_err(|e| SpawnError::Stack(e.to_string()))?;
    let gp = alloc_g();
    // SAFETY: gp is fresh.
    unsafe {
        set_stack(gp, st);
        casgstatus(gp, GIDLE, GDEAD);
    }
    allgadd(gp);
    Ok(gp)
}

/// Why a goroutine could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnError {
    /// No stack could be had (address space, `vm.max_map_count`, memory).
    Stack(String),
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpawnError::Stack(e) => write!(f, "cannot allocate goroutine stack: {e}"),
        }
    }
}

impl std::error::Error for SpawnError {}

/// Gives `gp` the stack `st`, with Go's guards: `stackguard0` at
/// `lo + STACK_GUARD`, `stackguard1` poisoned for user code.
///
/// # Safety
/// `gp` must be a G nobody else is touching (fresh, dead, or about to run).
unsafe fn set_stack(gp: *mut G, st: rt_stack::Stack) {
    // SAFETY: caller contract.
    unsafe {
        (*gp).stack = Stack {
            lo: st.lo,
            hi: st.hi,
        };
        (*gp).stackguard0 = st.lo + STACK_GUARD;
        (*gp).stackguard1 = usize::MAX;
        if CHECKS {
            check_stack_poison(&(*gp).stack);
        }
    }
}

/// `pp`'s stack cache, which only the M holding `pp` may use. The
/// self-checks end the program when another M reaches for it (a P used
/// after it was handed on).
///
/// # Safety
/// `pp` is held by the calling M; the reference is not kept past that.
#[inline(always)]
unsafe fn p_stackcache<'a>(pp: *mut P) -> &'a mut rt_stack::StackCache {
    if CHECKS {
        // SAFETY: Ps are never freed; `m` is an atomic snapshot.
        let holder = unsafe { (*pp).m.load(Ordering::Relaxed) };
        if holder != current_m() {
            rt_sys::throw("P's stack cache used by an M that does not hold the P");
        }
    }
    // SAFETY: caller contract: the calling M holds pp.
    unsafe { &mut (*pp).stackcache }
}

/// Bytes at the top of a freed stack that the self-checks poison: where a
/// goroutine's first frames (and so its sudogs, waiters and selects) live.
const STACK_POISON_BYTES: usize = 4096;
/// The last word of a poisoned stack: tells poison from a stack the pool
/// released to the OS (which comes back zeroed) or one never used.
const STACK_POISON_MAGIC: u64 = 0x5ac4_f7ee_5ac4_f7ee;
const STACK_POISON_BYTE: u8 = 0xd5;

/// Self-check on `stackfree`: poisons the top of a dead goroutine's stack,
/// so that a write into it while it is free (a waker touching a sudog of a
/// goroutine that already left, a goroutine resumed after it exited) is
/// found when the stack is handed out again.
///
/// # Safety
/// `st` is a dead goroutine's stack, not yet freed.
#[cold]
#[inline(never)]
unsafe fn poison_stack(st: &Stack) {
    if st.hi - st.lo < 2 * STACK_POISON_BYTES {
        return;
    }
    let lo = st.hi - STACK_POISON_BYTES;
    // SAFETY: the top of the stack is mapped and committed (the goroutine's
    // first frames were there), and nothing runs on it any more.
    unsafe {
        core::ptr::write_bytes(lo as *mut u8, STACK_POISON_BYTE, STACK_POISON_BYTES - 8);
        *((st.hi - 8) as *mut u64) = STACK_POISON_MAGIC;
    }
}

/// Self-check on `stackalloc`: a poisoned stack must be intact.
///
/// # Safety
/// `st` was just handed out by the pool and is not in use yet.
#[cold]
#[inline(never)]
unsafe fn check_stack_poison(st: &Stack) {
    if st.hi - st.lo < 2 * STACK_POISON_BYTES {
        return;
    }
    let lo = st.hi - STACK_POISON_BYTES;
    // SAFETY: the stack is ours; reading its top commits at most one page.
    unsafe {
        let magic = (st.hi - 8) as *mut u64;
        if *magic != STACK_POISON_MAGIC {
            return;
        }
        let body = core::slice::from_raw_parts(lo as *const u8, STACK_POISON_BYTES - 8);
        if body.iter().any(|&b| b != STACK_POISON_BYTE) {
            rt_sys::throw(
                "write to a freed goroutine stack (its poison changed while it was free)",
            );
        }
        *magic = 0;
    }
}

/// Returns `gp`'s stack to `pp`'s stack cache and leaves `gp` stackless.
///
/// # Safety
/// `gp` must be dead with a stack; `pp` held by this M.
unsafe fn free_stack(pp: *mut P, gp: *mut G) {
    // SAFETY: caller contract.
    unsafe {
        let st = rt_stack::Stack {
            lo: (*gp).stack.lo,
            hi: (*gp).stack.hi,
        };
        if CHECKS {
            poison_stack(&(*gp).stack);
        }
        rt_stack::stackfree(Some(p_stackcache(pp)), st);
        (*gp).stack = Stack::default();
    }
}

/// Puts a dead G on the P's free list (`gfput`); spills half to the global
/// list when the local one reaches 64.
///
/// # Safety
/// `gp` must be dead and owned by the caller; `pp` held by this M.
unsafe fn gfput(pp: *mut P, gp: *mut G) {
    // SAFETY: caller contract.
    unsafe {
        if (*gp).stack.lo != 0 && (*gp).stack.hi - (*gp).stack.lo != stack_size() {
            // Not the default size: give the stack back instead of caching it.
            free_stack(pp, gp);
        }
        (*gp).schedlink = (*pp).gfree;
        (*pp).gfree = gp;
        (*pp).gfreecnt += 1;
        if (*pp).gfreecnt >= 64 {
            SCHED.lock.lock();
            let s = SCHED.locked();
            while (*pp).gfreecnt >= 32 {
                let g = (*pp).gfree;
                (*pp).gfree = (*g).schedlink;
                (*pp).gfreecnt -= 1;
                (*g).schedlink = s.gfree;
                s.gfree = g;
                s.ngfree += 1;
            }
            SCHED.lock.unlock();
        }
    }
}

/// Takes a dead G from the P's free list, refilling it from the global one
/// (`gfget`). Gs without a stack get a fresh one.
///
/// # Safety
/// `pp` must be held by this M.
unsafe fn gfget(pp: *mut P) -> *mut G {
    // SAFETY: caller contract.
    unsafe {
        if (*pp).gfree.is_null() {
            SCHED.lock.lock();
            let s = SCHED.locked();
            while (*pp).gfreecnt < 32 && !s.gfree.is_null() {
                let g = s.gfree;
                s.gfree = (*g).schedlink;
                s.ngfree -= 1;
                (*g).schedlink = (*pp).gfree;
                (*pp).gfree = g;
                (*pp).gfreecnt += 1;
            }
            SCHED.lock.unlock();
        }
        let gp = (*pp).gfree;
        if gp.is_null() {
            return null_mut();
        }
        (*pp).gfree = (*gp).schedlink;
        (*pp).gfreecnt -= 1;
        if (*gp).stack.lo == 0 && !lazy_stacks() {
            match rt_stack::stackalloc(Some(p_stackcache(pp)), stack_size()) {
                Ok(st) => set_stack(gp, st),
                Err(_) => {
                    // Put it back stackless; the caller falls back to malg,
                    // which reports the error.
                    (*gp).schedlink = (*pp).gfree;
                    (*pp).gfree = gp;
                    (*pp).gfreecnt += 1;
                    return null_mut();
                }
            }
        }
        gp
    }
}

// ---------------------------------------------------------------------------
// newproc

/// Creates a goroutine running `f` and queues it (Go's `newproc`): into
/// `runnext` of the calling M's P, or the global queue from a thread that
/// is not an M. Returns the new G.
pub fn newproc(f: Box<dyn FnOnce() + Send + 'static>) -> Result<*mut G, SpawnError> {
    let gp0 = getg_checked();
    let mp = current_m();
    let pp = if mp.is_null() {
        null_mut()
    } else {
        // SAFETY: our own M.
        unsafe { (*mp).p.load(Ordering::Relaxed) }
    };
    let _ = gp0;
    let mut newg = if pp.is_null() {
        null_mut()
    } else {
        // SAFETY: pp is held by this M.
        unsafe { gfget(pp) }
    };
    if newg.is_null() {
        newg = malg(pp)?;
    }
    // SAFETY: newg is dead and exclusively ours until queued.
    unsafe {
        let g = &mut *newg;
        g.entry = Some(f);
        g.system = false;
        g.panicking = false;
        g.waitreason = "";
        g.param = 0;
        g.lockedm = null_mut();
        g.sched = Gobuf {
            sp: 0,
            pc: arch::gostart_pc(),
            g: newg,
        };
        // A new goroutine starts in its creator's floating-point control
        // state, as a new thread does (only read when goroutines own it).
        g.fpenv = if arch::fp_per_g() {
            arch::fp_env_current()
        } else {
            arch::FpEnv::DEFAULT
        };
        if g.stack.lo != 0 {
            init_stack_top(g);
        }
        g.goid = if pp.is_null() {
            SCHED.goidgen.fetch_add(1, Ordering::Relaxed) as i64 + 1
        } else {
            let p = &mut *pp;
            if p.goidcache == p.goidcacheend {
                let start = SCHED.goidgen.fetch_add(GOID_CACHE_BATCH, Ordering::Relaxed) + 1;
                p.goidcache = start;
                p.goidcacheend = start + GOID_CACHE_BATCH;
            }
            let id = p.goidcache;
            p.goidcache += 1;
            id as i64
        };
        SCHED.ngoroutines.fetch_add(1, Ordering::Relaxed);
        casgstatus(newg, GDEAD, GRUNNABLE);
        if pp.is_null() {
            globrunqput(newg);
        } else {
            runqput(pp, newg, true);
        }
    }
    if SCHED.main_started.load(Ordering::Relaxed) {
        wakep();
    }
    Ok(newg)
}

/// Bytes kept free above a fresh goroutine's fake return address: the
/// caller's outgoing-argument area as seen by the entry function. A
/// function may read there — libc's variadic `syscall(2)` wrapper always
/// loads its sixth argument from `8(%rsp)`, and the entry function can
/// tail-call it — and right above `hi` lies the next stack's guard page
/// (Go reserves `4*8` bytes here for the same reason).
const STACK_TOP_RESERVE: usize = 64;

/// Lays out a fresh goroutine's stack top: 16-byte aligned `hi`, a zeroed
/// reserve, the fake return address into `rt_goexit` and the FP slot, so
/// that `rt_gostart` enters the entry function with rsp ≡ 8 (mod 16), as
/// after a call.
fn init_stack_top(g: &mut G) {
    // SAFETY: [lo, hi) is this G's own stack, unused until it first runs,
    // and far larger than the reserve plus two words.
    g.sched.sp = unsafe { arch::init_fresh_stack(g.stack.hi & !15, STACK_TOP_RESERVE, g.fpenv) };
}

/// Binds a stack from `pp`'s cache to a goroutine about to run for the
/// first time (lazy binding). Exhaustion here has no caller to report to:
/// it is a fatal error.
///
/// # Safety
/// `gp` must be a fresh goroutine without a stack; `pp` held by this M.
unsafe fn bind_stack(pp: *mut P, gp: *mut G) {
    // SAFETY: caller contract.
    unsafe {
        match rt_stack::stackalloc(Some(p_stackcache(pp)), stack_size()) {
            Ok(st) => {
                set_stack(gp, st);
                init_stack_top(&mut *gp);
            }
            Err(e) => rt_sys::fatal!(
                "runtime: cannot allocate a stack for goroutine {}: {}",
                (*gp).goid,
                e
            ),
        }
    }
}

/// The first Rust frame of every goroutine. Entered from `rt_gostart` on
/// the fresh stack; returns into `rt_goexit`, which calls [`goexit1`].
pub(crate) extern "C" fn goroutine_entry() {
    let gp = getg();
    // SAFETY: gp is the running goroutine; only it touches `entry` now.
    let f = unsafe { (*gp).entry.take() };
    if let Some(f) = f {
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            crate::panic::unrecovered(gp, payload);
        }
    }
}

/// Goroutine exit, reached when the entry function returns (Go's
/// `goexit1`): switches to g0 and finishes there.
pub extern "C" fn goexit1() -> ! {
    mcall(goexit0);
    rt_sys::throw("goexit1: dead goroutine resumed")
}

extern "C" fn goexit0(gp: *mut G) -> ! {
    let mp = current_m();
    // SAFETY: gp is the goroutine that just left; we are on g0 of its M.
    unsafe {
        dropg(mp, gp, GRUNNING, GDEAD);
        (*gp).entry = None;
        if (*gp).panic_recorded {
            crate::panic::forget_report(gp);
        }
        if (*gp).lockedm == mp {
            (*gp).lockedm = null_mut();
            (*gp).lockedcount = 0;
            (*mp).lockedg.store(null_mut(), Ordering::Relaxed);
        }
        SCHED.ngoroutines.fetch_sub(1, Ordering::Relaxed);
        let pp = (*mp).p.load(Ordering::Relaxed);
        if lazy_stacks() && (*gp).stack.lo != 0 {
            // Back to the P's cache (LIFO): the next goroutine to start on
            // this P runs on the same, already-committed stack.
            free_stack(pp, gp);
        }
        gfput(pp, gp);
    }
    schedule()
}

// ---------------------------------------------------------------------------
// mcall wrappers: the only ways a goroutine leaves its stack

/// Saves the running goroutine and runs `f(gp)` on g0.
fn mcall(f: extern "C" fn(*mut G) -> !) {
    let gp = getg();
    // SAFETY: we run on gp (a user goroutine) of this M; g0's saved sp is the
    // top of its unused stack (set in mstart1).
    unsafe {
        let mp = (*gp).m;
        let g0 = (*mp).g0;
        if gp == g0 {
            rt_sys::throw("runtime: mcall called on m->g0 stack");
        }
        setg(g0);
        arch::mcall(&mut (*gp).sched, (*g0).sched.sp, f, gp);
    }
}

/// Parks the running goroutine (Go's `gopark`): it becomes `GWAITING` with
/// `reason`; then `unlockf(gp, arg)` runs on g0 — if it returns false the
/// goroutine is made runnable again at once. Returns when someone calls
/// [`goready`].
///
/// Only a goroutine can park: on a thread the runtime did not create, or on
/// g0, this is a fatal error (use a blocking primitive instead).
pub fn gopark(unlockf: Option<fn(*mut G, usize) -> bool>, arg: usize, reason: &'static str) {
    let gp = current_g();
    if gp.is_null() {
        rt_sys::throw("gopark: not on a goroutine");
    }
    // SAFETY: gp is running on this M; the wait fields are ours.
    unsafe {
        let mp = (*gp).m;
        (*mp).waitunlockf = unlockf;
        (*mp).waitarg = arg;
        (*gp).waitreason = reason;
    }
    mcall(park_m);
}

/// Sets the status of the goroutine that just left this M and detaches it
/// (Go's `casgstatus` + `dropg`).
///
/// # Safety
/// On g0 of the M `mp` that was running `gp`; `gp`'s context is saved.
unsafe fn dropg(mp: *mut M, gp: *mut G, from: u32, status: u32) {
    // SAFETY: caller contract.
    unsafe {
        casgstatus(gp, from, status);
        (*gp).m = null_mut();
        (*mp).curg = null_mut();
    }
}

extern "C" fn park_m(gp: *mut G) -> ! {
    let mp = current_m();
    // SAFETY: on g0 of gp's M; gp's context is saved.
    unsafe {
        dropg(mp, gp, GRUNNING, GWAITING);
        if let Some(f) = (*mp).waitunlockf.take() {
            let arg = core::mem::take(&mut (*mp).waitarg);
            if !f(gp, arg) {
                casgstatus(gp, GWAITING, GRUNNABLE);
                execute(gp, true);
            }
        }
    }
    schedule()
}

/// Makes a parked goroutine runnable (Go's `goready`): into `runnext` of the
/// caller's P, so the woken goroutine runs next and inherits the time slice.
///
/// # Safety
/// `gp` must be a goroutine parked with [`gopark`] that nobody else readies.
pub unsafe fn goready(gp: *mut G) {
    // SAFETY: caller contract: gp is parked and ours to wake.
    unsafe {
        if (*gp)
            .atomicstatus
            .compare_exchange(GWAITING, GRUNNABLE, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            rt_sys::fatal!(
                "goready: bad g status {}",
                (*gp).atomicstatus.load(Ordering::Relaxed)
            );
        }
        let mp = current_m();
        let pp = if mp.is_null() {
            null_mut()
        } else {
            (*mp).p.load(Ordering::Relaxed)
        };
        if pp.is_null() {
            globrunqput(gp);
        } else {
            runqput(pp, gp, true);
        }
    }
    wakep();
}

/// Switches straight from the running goroutine to `next`, bypassing the
/// run queues: the caller is left runnable but in no queue, so something
/// must switch back to it (or `goready`-style code must queue it). This is
/// the raw cost of a goroutine switch (one inline [`arch::switch`], no trip
/// through g0), the floor the `switch` benchmark measures.
///
/// # Safety
/// `next` must be a goroutine left by `yield_to` (or fresh from `newproc`
/// and taken out of every queue) that nobody else will run; the caller must
/// make sure it is itself resumed later.
///
/// Inlined into the caller on purpose: the switch must not sit inside a
/// call that returns on the other goroutine's stack, or every switch costs
/// a return-address misprediction (the `ret` would pop the other side's
/// return address).
#[inline(always)]
pub unsafe fn yield_to(next: *mut G) {
    // One look at the slot's kind serves both the read and the write.
    let gs = GS_TLS.load(Ordering::Relaxed);
    let gp = if gs {
        // SAFETY: as in `getg`.
        unsafe { arch::getg_raw() }
    } else {
        fallback_getg()
    };
    // SAFETY: gp runs on this M (caller contract for next).
    unsafe {
        let mp = (*gp).m;
        if (*next).sched.sp == 0 {
            bind_stack((*mp).p.load(Ordering::Relaxed), next);
        }
        casgstatus(gp, GRUNNING, GRUNNABLE);
        (*gp).m = null_mut();
        (*mp).curg = next;
        (*next).m = mp;
        let from = if CHECKS {
            (*next).atomicstatus.load(Ordering::Acquire)
        } else {
            GRUNNABLE
        };
        casgstatus(next, from, GRUNNING);
        if gs {
            arch::setg_raw(next);
        } else {
            fallback_setg(next);
        }
        arch::switch(&mut (*gp).sched, &(*next).sched);
    }
}

/// The running goroutine (null when not on one).
pub fn current_g() -> *mut G {
    let gp = getg_checked();
    // SAFETY: reading our own goroutine's goid.
    if gp.is_null() || unsafe { (*gp).goid } == 0 {
        null_mut()
    } else {
        gp
    }
}

/// Yields the processor (Go's `Gosched`): the goroutine goes to the global
/// run queue and the M schedules another.
pub fn gosched() {
    let gp = getg_checked();
    // SAFETY: reading our own goroutine's fields.
    if gp.is_null() || unsafe { (*(*gp).m).g0 } == gp {
        std::thread::yield_now();
        return;
    }
    mcall(gosched_m);
}

extern "C" fn gosched_m(gp: *mut G) -> ! {
    let mp = current_m();
    // SAFETY: on g0; gp saved.
    unsafe { dropg(mp, gp, GRUNNING, GRUNNABLE) };
    globrunqput(gp);
    schedule()
}

/// Parks the running goroutine until monotonic time `when` (ns).
pub fn sleep_until(when: i64) {
    let gp = getg_checked();
    // SAFETY: reading our own goroutine's fields.
    if gp.is_null() || unsafe { (*(*gp).m).g0 } == gp {
        let d = when - rt_sys::nanotime();
        if d > 0 {
            std::thread::sleep(std::time::Duration::from_nanos(d as u64));
        }
        return;
    }
    if when <= rt_sys::nanotime() {
        gosched();
        return;
    }
    gopark(Some(add_timer_unlock), when as usize, "sleep");
}

fn add_timer_unlock(gp: *mut G, when: usize) -> bool {
    let mp = current_m();
    // SAFETY: on g0 with a P.
    unsafe {
        let pp = (*mp).p.load(Ordering::Relaxed);
        (*pp).timers.add(when as i64, gp);
    }
    true
}

// ---------------------------------------------------------------------------
// run queues

/// Puts `gp` on `pp`'s local queue (`next`: into `runnext`, kicking the old
/// occupant to the tail). Overflow goes to the global queue.
///
/// # Safety
/// `pp` must be held by the calling M; `gp` runnable and in no queue.
pub unsafe fn runqput(pp: *mut P, gp: *mut G, next: bool) {
    // SAFETY: caller contract.
    let p = unsafe { &*pp };
    let mut gp = gp;
    if next {
        let old = p.runnext.swap(gp, Ordering::AcqRel);
        if old.is_null() {
            return;
        }
        gp = old;
    }
    if let Some(o) = p.runq.put(gp) {
        // Link the batch and hand it to the global queue in one lock.
        SCHED.lock.lock();
        // SAFETY: lock held; the batch Gs are ours.
        unsafe {
            let s = SCHED.locked();
            for &g in o.batch.iter() {
                s.runq.push_back(g);
            }
        }
        SCHED
            .runqsize
            .fetch_add(o.batch.len() as i32, Ordering::Relaxed);
        SCHED.lock.unlock();
    }
}

/// Takes the next G from `pp`: `runnext` first (inheriting the time slice).
///
/// # Safety
/// `pp` must be held by the calling M.
unsafe fn runqget(pp: *mut P) -> (*mut G, bool) {
    // SAFETY: caller contract.
    let p = unsafe { &*pp };
    let next = p.runnext.load(Ordering::Relaxed);
    if !next.is_null()
        && p.runnext
            .compare_exchange(next, null_mut(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        return (next, true);
    }
    (p.runq.get(), false)
}

/// Puts `gp` on the global run queue.
pub(crate) fn globrunqput(gp: *mut G) {
    SCHED.lock.lock();
    // SAFETY: lock held; gp is runnable and in no queue.
    unsafe { SCHED.locked().runq.push_back(gp) };
    SCHED.runqsize.fetch_add(1, Ordering::Relaxed);
    SCHED.lock.unlock();
}

/// Takes a batch from the global queue (Go's `globrunqget`): its fair share
/// `size/gomaxprocs + 1`, at most `max` (if non-zero) and half a local
/// queue; returns one and moves the rest into `pp`'s local queue.
///
/// # Safety
/// `sched.lock` held; `pp` held by the calling M.
unsafe fn globrunqget(pp: *mut P, max: i32) -> *mut G {
    let size = SCHED.runqsize.load(Ordering::Relaxed);
    if size == 0 {
        return null_mut();
    }
    let procs = SCHED.gomaxprocs.load(Ordering::Relaxed).max(1);
    let mut n = (size / procs + 1).min(size);
    if max > 0 {
        n = n.min(max);
    }
    n = n.min(crate::runq::RUNQ_SIZE as i32 / 2);
    SCHED.runqsize.fetch_sub(n, Ordering::Relaxed);
    // SAFETY: lock held (caller).
    let s = unsafe { SCHED.locked() };
    // SAFETY: the queue holds live Gs.
    let gp = unsafe { s.runq.pop() };
    for _ in 1..n {
        // runqput would take sched.lock for an overflow, which we hold: put
        // straight into the ring and move an overflow batch ourselves.
        // SAFETY: lock held (caller); pp is ours; the queue holds live Gs.
        unsafe {
            let g = s.runq.pop();
            if let Some(o) = (*pp).runq.put(g) {
                for &g in o.batch.iter() {
                    s.runq.push_back(g);
                }
                SCHED
                    .runqsize
                    .fetch_add(o.batch.len() as i32, Ordering::Relaxed);
            }
        }
    }
    gp
}

// ---------------------------------------------------------------------------
// P and M management

/// Acquires `pp` for the calling M (`acquirep`) and binds its allocator cache.
///
/// # Safety
/// `pp` must be idle (or fresh) and not held by any M.
pub unsafe fn acquirep(pp: *mut P) {
    let mp = current_m();
    // SAFETY: caller contract; mp is ours.
    unsafe {
        (*mp).p.store(pp, Ordering::Relaxed);
        (*pp).m.store(mp, Ordering::Relaxed);
        (*pp).status.store(PRUNNING, Ordering::Release);
        rt_heap::bind_thread_cache((*pp).mcache);
    }
}

/// Releases the calling M's P (`releasep`).
///
/// # Safety
/// The M must hold a P.
pub unsafe fn releasep() -> *mut P {
    let mp = current_m();
    // SAFETY: caller contract.
    unsafe {
        let pp = (*mp).p.swap(null_mut(), Ordering::Relaxed);
        (*pp).m.store(null_mut(), Ordering::Relaxed);
        (*pp).status.store(PIDLE, Ordering::Release);
        rt_heap::unbind_thread_cache();
        pp
    }
}

/// Puts an idle P on the idle list.
///
/// # Safety
/// `sched.lock` must be held and `pp` idle, owned by the caller.
unsafe fn pidleput(pp: *mut P) {
    // SAFETY: lock held (caller); pp idle.
    unsafe {
        let s = SCHED.locked();
        (*pp).link = s.pidle;
        s.pidle = pp;
        SCHED
            .idlepmask
            .fetch_or(1usize.wrapping_shl((*pp).id as u32 % 64), Ordering::Relaxed);
    }
    SCHED.npidle.fetch_add(1, Ordering::AcqRel);
}

/// Takes an idle P.
///
/// # Safety
/// `sched.lock` must be held.
unsafe fn pidleget() -> *mut P {
    // SAFETY: lock held (caller).
    unsafe {
        let s = SCHED.locked();
        let pp = s.pidle;
        if !pp.is_null() {
            s.pidle = (*pp).link;
            SCHED.idlepmask.fetch_and(
                !1usize.wrapping_shl((*pp).id as u32 % 64),
                Ordering::Relaxed,
            );
            SCHED.npidle.fetch_sub(1, Ordering::AcqRel);
        }
        pp
    }
}

/// Puts the calling M on the idle list.
///
/// # Safety
/// `sched.lock` must be held; `mp` must be the caller's M, about to sleep.
unsafe fn mput(mp: *mut M) {
    // SAFETY: lock held (caller).
    unsafe {
        let s = SCHED.locked();
        (*mp).schedlink = s.midle;
        s.midle = mp;
        s.nmidle += 1;
    }
}

/// Takes an idle M.
///
/// # Safety
/// `sched.lock` must be held.
unsafe fn mget() -> *mut M {
    // SAFETY: lock held (caller).
    unsafe {
        let s = SCHED.locked();
        let mp = s.midle;
        if !mp.is_null() {
            s.midle = (*mp).schedlink;
            s.nmidle -= 1;
        }
        mp
    }
}

/// Starts one more spinning M if there is an idle P and nobody is spinning
/// (Go's `wakep`).
pub fn wakep() {
    if SCHED.npidle.load(Ordering::Acquire) == 0 {
        return;
    }
    // Be conservative about spinning threads: only one at a time.
    if SCHED.nmspinning.load(Ordering::Acquire) != 0
        || SCHED
            .nmspinning
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    startm(null_mut(), true);
}

/// Runs some M with `pp` (or any idle P), waking an idle M or creating one.
/// With `spinning`, the caller already counted the M in `nmspinning`.
fn startm(pp: *mut P, spinning: bool) {
    SCHED.lock.lock();
    let mut pp = pp;
    if pp.is_null() {
        // SAFETY: lock held.
        pp = unsafe { pidleget() };
        if pp.is_null() {
            SCHED.lock.unlock();
            if spinning {
                SCHED.nmspinning.fetch_sub(1, Ordering::AcqRel);
            }
            return;
        }
    }
    // SAFETY: lock held.
    let nmp = unsafe { mget() };
    SCHED.lock.unlock();
    if nmp.is_null() {
        newm(pp, spinning, None);
        return;
    }
    // SAFETY: nmp is idle, asleep on its note; we own its wake-up fields.
    unsafe {
        (*nmp).spinning.store(spinning, Ordering::Relaxed);
        (*nmp).nextp.store(pp, Ordering::Release);
        (*nmp).park.wakeup();
    }
}

/// Creates an M on a new OS thread that will run `pp` (Go's `newm`), or
/// `start` without a P.
pub fn newm(pp: *mut P, spinning: bool, start: Option<fn()>) {
    let mp = leak_or_throw(M::new());
    // SAFETY: mp is fresh and leaked for the life of the process.
    unsafe {
        mcommoninit(mp, -1);
        let g0 = alloc_g();
        (*g0).m = mp;
        (*g0).system = true;
        (*g0).foreign_stack = true;
        (*mp).g0 = g0;
        (*mp).nextp.store(pp, Ordering::Relaxed);
        (*mp).spinning.store(spinning, Ordering::Relaxed);
        (*mp).mstartfn = start;
        (*mp).system = start.is_some();
        if start.is_some() {
            // A system M (sysmon) never runs goroutines: count it out of the
            // deadlock check before its thread exists, so an M going idle
            // meanwhile does not mistake it for one that could.
            SCHED.lock.lock();
            SCHED.locked().nmsys += 1;
            checkdead();
            SCHED.lock.unlock();
        }
    }
    let id = {
        // SAFETY: id was set by mcommoninit.
        unsafe { (*mp).id }
    };
    let mpu = mp as usize;
    // The new thread starts with every signal blocked (it inherits our
    // mask) until its minit installs its signal stack and the saved mask:
    // a signal must never run the handler on a thread without its gsignal
    // stack (Go's newosproc does the same around clone).
    let mut all: libc::sigset_t = unsafe_zeroed_sigset();
    let mut old: libc::sigset_t = unsafe_zeroed_sigset();
    // SAFETY: both sets are live; sigfillset/pthread_sigmask only write them.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let r = std::thread::Builder::new()
        .name(format!("rt-m{id}"))
        .stack_size(G0_STACK)
        .spawn(move || {
            // The thread inherited its creator's floating-point control
            // state, which may be a goroutine's: g0 runs in the boot state
            // from its first instruction of runtime code.
            arch::fp_enter_g0();
            // SAFETY: the M was built above for this thread.
            unsafe { mstart_thread(mpu as *mut M) }
        });
    // SAFETY: restoring the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
    if let Err(e) = r {
        rt_sys::fatal!(
            "newosproc: runtime: failed to create new OS thread (have {} already; {})",
            SCHED.mcount.load(Ordering::Relaxed),
            e
        );
    }
}

/// Hook run by every M on its own thread before scheduling (`minit`'s
/// signal part: sigaltstack on `gsignal`, the thread mask). Wired at boot.
static MINIT_HOOK: AtomicPtr<()> = AtomicPtr::new(null_mut());
/// Hook run once on m0 before its first `schedule` (`mstartm0`: `initsig`).
static MSTARTM0_HOOK: AtomicPtr<()> = AtomicPtr::new(null_mut());

/// Installs the per-M start hook (`minitSignals`), called with the M.
pub fn set_minit_hook(f: fn(*mut M)) {
    MINIT_HOOK.store(f as *mut (), Ordering::Release);
}

/// Installs the hook m0 runs before its first `schedule` (`initsig`).
pub fn set_mstartm0_hook(f: fn()) {
    MSTARTM0_HOOK.store(f as *mut (), Ordering::Release);
}

fn run_minit_hook(mp: *mut M) {
    let h = MINIT_HOOK.load(Ordering::Acquire);
    if !h.is_null() {
        // SAFETY: stored from a `fn(*mut M)` by set_minit_hook.
        let f: fn(*mut M) = unsafe { core::mem::transmute::<*mut (), fn(*mut M)>(h) };
        f(mp);
    }
}

/// Entry of every M but m0 (Go's `mstart` on a `clone`d thread).
///
/// # Safety
/// `mp` must be a fresh M from `newm`.
unsafe fn mstart_thread(mp: *mut M) -> ! {
    // SAFETY: mp is ours (caller).
    unsafe {
        minit_tls(mp);
        bind_thread(mp);
        let g0 = (*mp).g0;
        // g0 runs on this thread's own stack: approximate its bounds from
        // where we are and the size we asked for.
        let sp = arch::current_sp();
        (*g0).stack = Stack {
            lo: sp.saturating_sub(G0_STACK - 16 * 1024),
            hi: sp + 1024,
        };
        (*g0).stackguard0 = (*g0).stack.lo + STACK_GUARD;
        (*g0).stackguard1 = (*g0).stackguard0;
        run_minit_hook(mp);
        mstart1(mp)
    }
}

/// m0's `mstart` (called from rt0_go after `newproc(main)`). Never returns.
///
/// # Safety
/// Must be called once, on the initial thread, with m0/g0 bound by rt0_go.
pub unsafe fn mstart_m0() -> ! {
    let mp = M0.get();
    // SAFETY: boot contract; m0 is ours.
    unsafe {
        bind_thread(mp);
        let g0 = (*mp).g0;
        // mstart0: re-arm the guard the way Go does (lo + _StackGuard
        // replaces rt0_go's lo).
        (*g0).stackguard0 = (*g0).stack.lo + STACK_GUARD;
        (*g0).stackguard1 = (*g0).stackguard0;
        run_minit_hook(mp);
        let h = MSTARTM0_HOOK.load(Ordering::Acquire);
        if !h.is_null() {
            // SAFETY: stored from a `fn()` by set_mstartm0_hook.
            let f: fn() = core::mem::transmute::<*mut (), fn()>(h);
            f();
        }
        mstart1(mp)
    }
}

/// Common M start (`mstart1`): remember g0's stack top for `mcall`, run the
/// start function or acquire the next P, and schedule.
///
/// # Safety
/// On `mp`'s own thread, on its g0, after `minit`.
unsafe fn mstart1(mp: *mut M) -> ! {
    // SAFETY: on mp's thread, on g0.
    unsafe {
        let g0 = (*mp).g0;
        // Frames above this point are never returned to; everything g0 runs
        // from now on starts afresh here.
        (*g0).sched.sp = (arch::current_sp() - 256) & !15;
        (*g0).sched.g = g0;
        if let Some(f) = (*mp).mstartfn {
            f();
            rt_sys::throw("mstart: system M start function returned");
        }
        let pp = (*mp).nextp.swap(null_mut(), Ordering::Acquire);
        if !pp.is_null() {
            acquirep(pp);
        }
    }
    schedule()
}

/// Parks the calling M until there is work (Go's `stopm`); returns holding a
/// P. An M with timers pending anywhere sleeps no longer than the earliest.
fn stopm() {
    let mp = current_m();
    loop {
        SCHED.lock.lock();
        // SAFETY: lock held; mp ours.
        unsafe {
            (*mp).park.clear();
            mput(mp);
        }
        checkdead();
        SCHED.lock.unlock();
        // SAFETY: mp ours.
        unsafe { (*mp).blocked.store(true, Ordering::Relaxed) };
        let next = next_timer();
        // SAFETY: mp ours.
        let woken = unsafe {
            match next {
                Some(when) => (*mp).park.sleep_timeout((when - rt_sys::nanotime()).max(1)),
                None => {
                    (*mp).park.sleep();
                    true
                }
            }
        };
        // SAFETY: mp ours.
        unsafe { (*mp).blocked.store(false, Ordering::Relaxed) };
        if woken {
            // Consume the wake-up. (After a time-out the note is left alone:
            // a waker that took us off the idle list may be setting it right
            // now, and clearing would lose that wake-up.)
            // SAFETY: mp ours.
            unsafe { (*mp).park.clear() };
            // SAFETY: the waker set nextp before waking us.
            let pp = unsafe { (*mp).nextp.swap(null_mut(), Ordering::Acquire) };
            if pp.is_null() {
                rt_sys::throw("stopm: woken without a P");
            }
            // SAFETY: pp was taken off the idle list for us.
            unsafe { acquirep(pp) };
            return;
        }
        // A timer is due: leave the idle list (unless someone is about to
        // wake us) and try to get a P to run it.
        SCHED.lock.lock();
        // SAFETY: lock held.
        unsafe {
            let s = SCHED.locked();
            let mut link: *mut *mut M = &mut s.midle;
            let mut found = false;
            while !(*link).is_null() {
                if *link == mp {
                    *link = (*mp).schedlink;
                    s.nmidle -= 1;
                    found = true;
                    break;
                }
                link = &mut (**link).schedlink;
            }
            if !found {
                // Someone took us off the list and is waking us with a P.
                SCHED.lock.unlock();
                (*mp).park.sleep();
                (*mp).park.clear();
                let pp = (*mp).nextp.swap(null_mut(), Ordering::Acquire);
                acquirep(pp);
                return;
            }
            let pp = pidleget();
            SCHED.lock.unlock();
            if !pp.is_null() {
                acquirep(pp);
                return;
            }
        }
    }
}

/// Earliest timer of any P.
fn next_timer() -> Option<i64> {
    if SCHED.ntimers.load(Ordering::Acquire) == 0 {
        return None;
    }
    let mut best: Option<i64> = None;
    for_each_p(|pp| {
        // SAFETY: Ps are never freed.
        if let Some(w) = unsafe { (*pp).timers.next_when() } {
            best = Some(best.map_or(w, |b: i64| b.min(w)));
        }
    });
    best
}

/// Calls `f` for every P in `allp`.
pub fn for_each_p(mut f: impl FnMut(*mut P)) {
    for &p in allp() {
        f(p);
    }
}

/// The current `allp`: one atomic load of a published, never-freed slice,
/// so its length and contents always belong together even while
/// `set_gomaxprocs` replaces it.
pub fn allp() -> &'static [*mut P] {
    let a = ALLP.load(Ordering::Acquire);
    if a.is_null() {
        return &[];
    }
    // SAFETY: published by `publish_allp` from a leaked box, never freed.
    unsafe { &(*a).ps }
}

/// Publishes a new `allp` (the old one is leaked: racy readers may still
/// walk it, and Ps are never freed).
fn publish_allp(v: Vec<*mut P>) {
    let a = leak_or_throw(AllP {
        ps: v.into_boxed_slice(),
    });
    ALLP.store(a, Ordering::Release);
}

/// Detects the state where no goroutine can ever run again (Go's
/// `checkdead`). Called with `sched.lock` held when an M goes idle.
fn checkdead() {
    // SAFETY: lock held by the caller.
    let s = unsafe { SCHED.locked() };
    let run = SCHED.mcount.load(Ordering::Relaxed) - s.nmidle - s.nmidlelocked - s.nmsys;
    if run > 0 || SCHED.exiting.load(Ordering::Relaxed) {
        return;
    }
    if run < 0 {
        SCHED.lock.unlock();
        rt_sys::fatal!(
            "checkdead: inconsistent counts mcount={} nmidle={} nmsys={}",
            SCHED.mcount.load(Ordering::Relaxed),
            s.nmidle,
            s.nmsys
        );
    }
    if !s.runq.is_empty() || SCHED.ntimers.load(Ordering::Acquire) > 0 {
        return;
    }
    let mut runnable = false;
    for_each_p(|pp| {
        // SAFETY: Ps are never freed; reading their queues is racy-safe.
        unsafe {
            if !(*pp).runq.is_empty() || !(*pp).runnext.load(Ordering::Acquire).is_null() {
                runnable = true;
            }
        }
    });
    if runnable || !SCHED.main_started.load(Ordering::Relaxed) {
        return;
    }
    SCHED.lock.unlock();
    rt_sys::throw("all goroutines are asleep - deadlock!");
}

// ---------------------------------------------------------------------------
// schedule

/// One round of scheduling (Go's `schedule`): find a runnable goroutine and
/// run it. Never returns.
pub fn schedule() -> ! {
    let mp = current_m();
    loop {
        if SCHED.exiting.load(Ordering::Relaxed) {
            // The process is exiting: park this M for good.
            loop {
                // SAFETY: sleeping on our own note that nobody wakes.
                unsafe { (*mp).park.clear() };
                // SAFETY: as above.
                unsafe { (*mp).park.sleep() };
            }
        }
        // SAFETY: mp is ours and holds a P here.
        let pp = unsafe { (*mp).p.load(Ordering::Relaxed) };
        if pp.is_null() {
            stopm();
            continue;
        }
        // An M locked to a goroutine runs only that goroutine: give the P
        // away and wait until the goroutine is runnable again. Checked
        // before the stop-the-world check, as in Go, so a locked M never
        // parks on the idle-M list.
        // SAFETY: mp is ours.
        let locked = unsafe { (*mp).lockedg.load(Ordering::Relaxed) };
        if !locked.is_null() {
            stoplockedm();
            execute(locked, false);
        }
        if SCHED.gcwaiting.load(Ordering::Acquire) {
            gcstopm();
            continue;
        }
        let mut gp = null_mut();
        let mut inherit = false;
        // SAFETY: pp is ours.
        let tick = unsafe { (*pp).schedtick.load(Ordering::Relaxed) };
        // A P that never runs out of work still runs due timers (Go's
        // checkTimers in schedule); every 8th tick keeps the cost of
        // scanning the heaps off the hot path.
        if tick % 8 == 0 && SCHED.ntimers.load(Ordering::Relaxed) > 0 {
            check_timers(pp);
        }
        if tick % GLOBAL_FAIRNESS == 0 && SCHED.runqsize.load(Ordering::Relaxed) > 0 {
            SCHED.lock.lock();
            // SAFETY: lock held, pp ours.
            gp = unsafe { globrunqget(pp, 1) };
            SCHED.lock.unlock();
        }
        if gp.is_null() {
            // SAFETY: pp ours.
            (gp, inherit) = unsafe { runqget(pp) };
            // SAFETY: pp ours.
            if inherit && unsafe { slice_over(pp) } {
                // The shared slice is over: this goroutine joins the tail,
                // due timers and the global queue go first, then the local
                // queue's head.
                // SAFETY: pp ours; gp came off its runnext.
                (gp, inherit) = unsafe { end_slice(pp, gp) };
            } else if !inherit {
                // SAFETY: pp ours.
                unsafe { (*pp).inheritstreak = 0 };
            }
        }
        if gp.is_null() {
            (gp, inherit) = findrunnable();
        }
        // SAFETY: mp ours.
        if unsafe { (*mp).spinning.load(Ordering::Relaxed) } {
            resetspinning();
        }
        // SAFETY: gp is runnable and ours.
        let lockedm = unsafe { (*gp).lockedm };
        if !lockedm.is_null() && lockedm != mp {
            // Only its own M may run a locked goroutine: hand it our P.
            startlockedm(gp);
            continue;
        }
        execute(gp, inherit);
    }
}

/// Counts a goroutine taken from `runnext` (it inherits the running time
/// slice) and says whether that shared slice is over. Go's `runnext`
/// hand-off lets a goroutine readied by the running one inherit its slice
/// (no `schedtick` step), and sysmon preempts the pair when the slice
/// passes 10 ms. rt does not preempt, so two goroutines that keep readying
/// each other (a ping-pong) would hold the P for ever: the local queue, the
/// global queue and the timers would wait (Go's TestTimerFairness and
/// TestPingPongHog hung at GOMAXPROCS=1). The clock is read when a streak
/// starts and once per `SLICE_CHECK_EVERY` inherited runs.
///
/// # Safety
/// `pp` is held by the calling M.
#[inline(always)]
unsafe fn slice_over(pp: *mut P) -> bool {
    // SAFETY: caller contract: the streak fields are the owner's.
    unsafe {
        let streak = (*pp).inheritstreak + 1;
        (*pp).inheritstreak = streak;
        if streak == 1 {
            (*pp).slicestart = rt_sys::nanotime();
            return false;
        }
        streak & (SLICE_CHECK_EVERY - 1) == 0 && slice_clock_over(pp)
    }
}

/// The clock half of [`slice_over`].
///
/// # Safety
/// As [`slice_over`].
#[cold]
#[inline(never)]
unsafe fn slice_clock_over(pp: *mut P) -> bool {
    // SAFETY: caller contract.
    unsafe { rt_sys::nanotime() - (*pp).slicestart >= TIME_SLICE_NS }
}

/// Ends a shared time slice: `gp` (just taken from `runnext`) joins the
/// local queue's tail, `schedtick` steps, due timers run, and the next
/// goroutine comes from the global queue or the local queue's head.
///
/// # Safety
/// `pp` is held by the calling M; `gp` came off its `runnext`.
#[cold]
#[inline(never)]
unsafe fn end_slice(pp: *mut P, gp: *mut G) -> (*mut G, bool) {
    // SAFETY: caller contract.
    unsafe {
        (*pp).inheritstreak = 0;
        (*pp).schedtick.fetch_add(1, Ordering::Relaxed);
        runqput(pp, gp, false);
        if SCHED.ntimers.load(Ordering::Relaxed) > 0 {
            check_timers(pp);
        }
        if SCHED.runqsize.load(Ordering::Relaxed) > 0 {
            SCHED.lock.lock();
            let g = globrunqget(pp, 1);
            SCHED.lock.unlock();
            if !g.is_null() {
                return (g, false);
            }
        }
        // The queue's head (gp itself when it was alone; a timer goroutine
        // readied above joined the tail).
        let (g, _) = runqget(pp);
        (g, false)
    }
}

/// Parks an M whose locked goroutine is not running, after handing its P
/// to someone else (Go's `stoplockedm`); returns holding the P that
/// `startlockedm` handed over with the goroutine.
fn stoplockedm() {
    let mp = current_m();
    // SAFETY: mp is ours.
    unsafe {
        // The note is not cleared here: `startlockedm` may already have
        // woken us (the goroutine can be readied as soon as it parked), and
        // clearing would lose that wake-up. Every sleeper clears its note
        // after waking instead.
        if !(*mp).p.load(Ordering::Relaxed).is_null() {
            let pp = releasep();
            handoffp(pp);
        }
        SCHED.lock.lock();
        // Undone by the waker (`startlockedm`) under the lock, before the
        // wake-up, so checkdead never sees a handed-over goroutine as
        // nobody's (Go's incidlelocked).
        SCHED.locked().nmidlelocked += 1;
        checkdead();
        SCHED.lock.unlock();
        (*mp).blocked.store(true, Ordering::Relaxed);
        (*mp).park.sleep();
        (*mp).park.clear();
        (*mp).blocked.store(false, Ordering::Relaxed);
        let pp = (*mp).nextp.swap(null_mut(), Ordering::Acquire);
        acquirep(pp);
    }
}

/// Hands the caller's P and the runnable `gp` to the M `gp` is locked to,
/// then parks the caller (Go's `startlockedm`).
fn startlockedm(gp: *mut G) {
    // SAFETY: gp is runnable and ours; its M is parked in stoplockedm.
    unsafe {
        let lm = (*gp).lockedm;
        SCHED.lock.lock();
        SCHED.locked().nmidlelocked -= 1;
        SCHED.lock.unlock();
        let pp = releasep();
        (*lm).nextp.store(pp, Ordering::Release);
        (*lm).park.wakeup();
    }
    stopm();
}

/// Gives a P that its M no longer uses to whoever can use it (Go's
/// `handoffp`): an M if there is work, else the idle list.
fn handoffp(pp: *mut P) {
    // SAFETY: pp was just released by the caller and is ours to place.
    let has_work =
        unsafe { !(*pp).runq.is_empty() || !(*pp).runnext.load(Ordering::Relaxed).is_null() }
            || SCHED.runqsize.load(Ordering::Relaxed) > 0;
    // A P with timers needs an M that knows when they are due: the idle
    // Ms computed their sleep before this P's timers were added (a locked
    // goroutine that sleeps hands its P off right after adding its timer),
    // so one is started to take the P, find nothing to run yet, and sleep
    // until the earliest timer (Go's handoffp wakes the poller for them).
    if has_work {
        startm(pp, false);
        return;
    }
    SCHED.lock.lock();
    if SCHED.gcwaiting.load(Ordering::Acquire) {
        // SAFETY: pp is ours; the stopper counts it as stopped.
        unsafe { (*pp).status.store(PGCSTOP, Ordering::Release) };
        if SCHED.stopwait.fetch_sub(1, Ordering::AcqRel) == 1 {
            SCHED.stopnote.wakeup();
        }
        SCHED.lock.unlock();
        return;
    }
    // SAFETY: pp is ours (caller); the heap has its own lock.
    if unsafe { !(*pp).timers.is_empty() } {
        SCHED.lock.unlock();
        startm(pp, false);
        return;
    }
    // SAFETY: lock held; pp idle.
    unsafe { pidleput(pp) };
    SCHED.lock.unlock();
}

/// Wires the calling goroutine to its current OS thread (Go's
/// `runtime.LockOSThread`): until as many `unlock_os_thread` calls, it runs
/// only on this M, and this M runs nothing else. Nests. A goroutine that
/// exits while locked releases the thread.
pub fn lock_os_thread() {
    let gp = current_g();
    if gp.is_null() {
        return;
    }
    // SAFETY: gp runs on its M; these fields are the running goroutine's.
    unsafe {
        let mp = (*gp).m;
        (*gp).lockedcount += 1;
        (*gp).lockedm = mp;
        (*mp).lockedg.store(gp, Ordering::Relaxed);
    }
}

/// Undoes one `lock_os_thread`.
pub fn unlock_os_thread() {
    let gp = current_g();
    if gp.is_null() {
        return;
    }
    // SAFETY: as in lock_os_thread.
    unsafe {
        if (*gp).lockedcount == 0 {
            return;
        }
        (*gp).lockedcount -= 1;
        if (*gp).lockedcount == 0 {
            let mp = (*gp).m;
            (*gp).lockedm = null_mut();
            (*mp).lockedg.store(null_mut(), Ordering::Relaxed);
        }
    }
}

/// Runs `gp` on the current M (Go's `execute`). Never returns.
fn execute(gp: *mut G, inherit: bool) -> ! {
    let mp = current_m();
    // SAFETY: gp is runnable and now ours; mp holds a P.
    unsafe {
        if (*gp).sched.sp == 0 {
            bind_stack((*mp).p.load(Ordering::Relaxed), gp);
        }
        (*mp).curg = gp;
        (*gp).m = mp;
        casgstatus(gp, GRUNNABLE, GRUNNING);
        if !inherit {
            let pp = (*mp).p.load(Ordering::Relaxed);
            (*pp).schedtick.fetch_add(1, Ordering::Relaxed);
        }
        setg(gp);
        arch::gogo(&(*gp).sched)
    }
}

fn resetspinning() {
    let mp = current_m();
    // SAFETY: mp ours.
    unsafe { (*mp).spinning.store(false, Ordering::Relaxed) };
    let n = SCHED.nmspinning.fetch_sub(1, Ordering::AcqRel);
    if n == 0 {
        rt_sys::throw("findrunnable: negative nmspinning");
    }
    // The last spinning M found work: make sure somebody keeps looking.
    if n == 1 {
        wakep();
    }
}

/// Moves expired timers' goroutines to runnable. Returns how many.
fn check_timers(pp: *mut P) -> usize {
    if SCHED.ntimers.load(Ordering::Acquire) == 0 {
        return 0;
    }
    let now = rt_sys::nanotime();
    let mut ready = Vec::new();
    for_each_p(|p2| {
        // SAFETY: Ps are never freed.
        unsafe { (*p2).timers.take_expired(now, &mut ready) };
    });
    // Several Ps' heaps may have expired timers: wake their goroutines in
    // deadline order across all of them.
    ready.sort_by_key(|&(when, _)| when);
    let n = ready.len();
    for (_, gp) in ready {
        // SAFETY: timer goroutines are parked with reason "sleep" and only
        // the timer wakes them.
        unsafe {
            casgstatus(gp, GWAITING, GRUNNABLE);
            runqput(pp, gp, false);
        }
    }
    n
}

/// Blocks until a goroutine is runnable (Go's `findrunnable`): local queue,
/// global queue, timers, stealing; then gives the P up and parks the M.
fn findrunnable() -> (*mut G, bool) {
    let mp = current_m();
    'top: loop {
        if SCHED.gcwaiting.load(Ordering::Acquire) {
            gcstopm();
            continue 'top;
        }
        // SAFETY: the M holds a P at the top of every iteration.
        let pp = unsafe { (*mp).p.load(Ordering::Relaxed) };
        if check_timers(pp) > 0 {
            // SAFETY: pp ours.
            let (gp, inh) = unsafe { runqget(pp) };
            if !gp.is_null() {
                return (gp, inh);
            }
        }
        // SAFETY: pp ours.
        let (gp, inh) = unsafe { runqget(pp) };
        if !gp.is_null() {
            return (gp, inh);
        }
        if SCHED.runqsize.load(Ordering::Relaxed) != 0 {
            SCHED.lock.lock();
            // SAFETY: lock held.
            let gp = unsafe { globrunqget(pp, 0) };
            SCHED.lock.unlock();
            if !gp.is_null() {
                return (gp, false);
            }
        }
        // Steal, unless enough Ms are already spinning.
        let procs = SCHED.gomaxprocs.load(Ordering::Relaxed) as u32;
        // SAFETY: mp ours.
        let spinning = unsafe { (*mp).spinning.load(Ordering::Relaxed) };
        if spinning
            || 2 * SCHED.nmspinning.load(Ordering::Relaxed)
                < procs - SCHED.npidle.load(Ordering::Relaxed)
        {
            if !spinning {
                // SAFETY: mp ours.
                unsafe { (*mp).spinning.store(true, Ordering::Relaxed) };
                SCHED.nmspinning.fetch_add(1, Ordering::AcqRel);
            }
            let gp = steal_work(pp);
            if !gp.is_null() {
                return (gp, false);
            }
        }
        // Nothing: give up the P.
        SCHED.lock.lock();
        if SCHED.gcwaiting.load(Ordering::Acquire) {
            SCHED.lock.unlock();
            continue 'top;
        }
        if SCHED.runqsize.load(Ordering::Relaxed) != 0 {
            // SAFETY: lock held.
            let gp = unsafe { globrunqget(pp, 0) };
            SCHED.lock.unlock();
            return (gp, false);
        }
        // SAFETY: lock held; we hold pp.
        unsafe {
            releasep();
            pidleput(pp);
        }
        SCHED.lock.unlock();
        // SAFETY: mp ours.
        let was_spinning = unsafe { (*mp).spinning.swap(false, Ordering::Relaxed) };
        if was_spinning {
            SCHED.nmspinning.fetch_sub(1, Ordering::AcqRel);
        }
        // Re-check all run queues: a G submitted between our steal attempt
        // and the nmspinning decrement would otherwise wait for the next
        // wakep (the submitter saw us spinning and did not start an M).
        // Also the global queue (a thread that is not an M may have queued
        // a goroutine and seen us spinning) and every runnext.
        let mut work = SCHED.runqsize.load(Ordering::Acquire) > 0;
        for_each_p(|p2| {
            // SAFETY: Ps are never freed.
            if unsafe { !(*p2).runq.is_empty() || !(*p2).runnext.load(Ordering::Acquire).is_null() }
            {
                work = true;
            }
        });
        if work {
            SCHED.lock.lock();
            // SAFETY: lock held.
            let pp = unsafe { pidleget() };
            SCHED.lock.unlock();
            if !pp.is_null() {
                // SAFETY: pp came off the idle list for us.
                unsafe { acquirep(pp) };
                if was_spinning {
                    // SAFETY: mp ours.
                    unsafe { (*mp).spinning.store(true, Ordering::Relaxed) };
                    SCHED.nmspinning.fetch_add(1, Ordering::AcqRel);
                }
                continue 'top;
            }
        }
        stopm();
    }
}

/// Tries to steal from every other P, in a random coprime order, four
/// times; `runnext` only on the last pass (Go's `stealWork`).
fn steal_work(pp: *mut P) -> *mut G {
    let all = allp();
    let n = all.len() as u32;
    if n <= 1 {
        return null_mut();
    }
    let order = crate::steal::StealOrder::new(n);
    for i in 0..STEAL_TRIES {
        let last = i == STEAL_TRIES - 1;
        for idx in order.start(fastrand()) {
            let p2 = all[idx as usize];
            if p2 == pp {
                continue;
            }
            // SAFETY: Ps are never freed.
            unsafe {
                if (*p2).status.load(Ordering::Acquire) == PIDLE {
                    continue;
                }
                let gp = (*p2).runq.steal_into(&(*pp).runq);
                if !gp.is_null() {
                    return gp;
                }
                if last {
                    let next = (*p2).runnext.load(Ordering::Acquire);
                    if !next.is_null() {
                        if (*p2).status.load(Ordering::Relaxed) == PRUNNING {
                            // Give the owner a moment to run it itself
                            // (Go sleeps 3 µs here).
                            libc::usleep(3);
                        }
                        if (*p2)
                            .runnext
                            .compare_exchange(next, null_mut(), Ordering::AcqRel, Ordering::Relaxed)
                            .is_ok()
                        {
                            return next;
                        }
                    }
                }
            }
        }
    }
    null_mut()
}

// ---------------------------------------------------------------------------
// procresize

/// Boot-time `procresize`: creates `nprocs` Ps, gives P0 to the calling M
/// (m0) with `mcache0`, and puts the rest on the idle list. Requires the
/// world stopped (at boot there is only m0).
///
/// # Safety
/// Once, on m0 during schedinit.
pub unsafe fn procresize_boot(nprocs: i32) {
    if nprocs <= 0 {
        rt_sys::fatal!("procresize: invalid arg {}", nprocs);
    }
    let n = nprocs as usize;
    check_p_memory(n);
    let mut v: Vec<*mut P> = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        rt_sys::throw("out of memory");
    }
    for id in 0..n {
        v.push(new_p(id as i32));
    }
    publish_allp(v.clone());
    let arr = allp().as_ptr();
    SCHED.lock.lock();
    // SAFETY: boot, single-threaded: m0 takes P0; others idle, highest first
    // so that P1 ends up at the head of the idle list (as Go's walk does).
    unsafe {
        acquirep(*arr);
        for i in (1..n).rev() {
            let p = *arr.add(i);
            (*p).status.store(PIDLE, Ordering::Relaxed);
            pidleput(p);
        }
    }
    SCHED.lock.unlock();
    SCHED.gomaxprocs.store(nprocs, Ordering::Release);
}

/// Ends the program when `n` new Ps could not fit in the machine's memory
/// (`GOMAXPROCS=2147483647`): each is a few KiB once its caches exist, and
/// with overcommit every one of those allocations would succeed until the
/// kernel kills the process. Go fails such a request too (1.19 with a
/// slice-bounds error); here it is `fatal error: out of memory`.
fn check_p_memory(n: usize) {
    // The P, its pointer in allp, and at least a page for its caches.
    let per_p = core::mem::size_of::<P>() + core::mem::size_of::<*mut P>() + 4096;
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let phys = (pages.max(0) as usize).saturating_mul(page.max(0) as usize);
    let need = n.saturating_mul(per_p);
    if phys > 0 && need > phys {
        let _ = core::fmt::Write::write_fmt(
            &mut rt_sys::FdWriter(2),
            format_args!(
                "runtime: cannot allocate {n} Ps ({} MiB; the machine has {} MiB)\n",
                need >> 20,
                phys >> 20
            ),
        );
        rt_sys::throw("out of memory");
    }
}

fn new_p(id: i32) -> *mut P {
    leak_or_throw(P {
        id,
        status: core::sync::atomic::AtomicU32::new(PGCSTOP),
        link: null_mut(),
        schedtick: core::sync::atomic::AtomicU32::new(0),
        inheritstreak: 0,
        slicestart: 0,
        syscalltick: core::sync::atomic::AtomicU32::new(0),
        m: AtomicPtr::new(null_mut()),
        mcache: rt_heap::allocmcache(),
        stackcache: rt_stack::StackCache::new(),
        goidcache: 0,
        goidcacheend: 0,
        runq: crate::runq::RunQueue::new(),
        runnext: AtomicPtr::new(null_mut()),
        gfree: null_mut(),
        gfreecnt: 0,
        timers: crate::time::TimerHeap::new(),
    })
}

// ---------------------------------------------------------------------------
// runtime.main and exit

/// Marks `runtime.main` as started: from now on `newproc` wakes idle Ps.
pub fn set_main_started() {
    SCHED.main_started.store(true, Ordering::Release);
}

/// Binds the initial thread to m0 early in `schedinit` (Go's `getg().m` is
/// m0 from rt0_go on), so boot code that asks for the current M or P sees
/// m0. Idempotent.
///
/// # Safety
/// Only on the initial thread, after rt0_go bound m0 and g0.
pub unsafe fn bind_m0() {
    // SAFETY: boot contract.
    unsafe { bind_thread(M0.get()) }
}

/// True when the caller runs on its M's g0 (the scheduler stack).
pub fn on_g0() -> bool {
    let gp = getg_checked();
    // SAFETY: reading our own M's g0 pointer.
    !gp.is_null() && unsafe { (*(*gp).m).g0 == gp }
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
pub fn trace_config() -> (i32, i32) {
    (
        SCHEDTRACE.load(Ordering::Relaxed),
        SCHEDDETAIL.load(Ordering::Relaxed),
    )
}

// ---------------------------------------------------------------------------
// stop the world, and procresize at run time

/// Gives this M's P up to a stopping world and parks (Go's `gcstopm`).
fn gcstopm() {
    let mp = current_m();
    // SAFETY: mp is ours and holds a P.
    unsafe {
        if (*mp).spinning.swap(false, Ordering::Relaxed) {
            SCHED.nmspinning.fetch_sub(1, Ordering::AcqRel);
        }
        let pp = releasep();
        SCHED.lock.lock();
        (*pp).status.store(PGCSTOP, Ordering::Release);
        if SCHED.stopwait.fetch_sub(1, Ordering::AcqRel) == 1 {
            SCHED.stopnote.wakeup();
        }
        SCHED.lock.unlock();
    }
    stopm();
}

/// Stops every P but the caller's (Go's `stopTheWorld`). Running
/// goroutines stop at their next scheduling point (a channel operation,
/// `gosched`, `sleep`, exit…); rt does not preempt, so a goroutine spinning
/// without one delays this until it reaches one.
///
/// # Safety
/// Must be called by a goroutine holding a P, not already stopping the world.
unsafe fn stop_the_world() {
    let mp = current_m();
    SCHED.lock.lock();
    SCHED.stopnote.clear();
    let procs = SCHED.gomaxprocs.load(Ordering::Relaxed);
    SCHED.stopwait.store(procs, Ordering::Release);
    SCHED.gcwaiting.store(true, Ordering::Release);
    // SAFETY: lock held; our P is ours.
    unsafe {
        let pp = (*mp).p.load(Ordering::Relaxed);
        (*pp).status.store(PGCSTOP, Ordering::Release);
        SCHED.stopwait.fetch_sub(1, Ordering::AcqRel);
        loop {
            let p = pidleget();
            if p.is_null() {
                break;
            }
            (*p).status.store(PGCSTOP, Ordering::Release);
            SCHED.stopwait.fetch_sub(1, Ordering::AcqRel);
        }
    }
    SCHED.lock.unlock();
    while SCHED.stopwait.load(Ordering::Acquire) > 0 {
        SCHED.stopnote.sleep_timeout(100_000);
    }
}

/// Restarts the world (Go's `startTheWorld`): Ps with work get an M, the
/// rest go idle.
///
/// # Safety
/// Only by the goroutine that stopped the world, holding its P.
unsafe fn start_the_world() {
    let mp = current_m();
    // SAFETY: mp is ours.
    let mine = unsafe { (*mp).p.load(Ordering::Relaxed) };
    let mut busy = Vec::new();
    SCHED.lock.lock();
    SCHED.gcwaiting.store(false, Ordering::Release);
    for_each_p(|p| {
        if p == mine {
            // SAFETY: our own P.
            unsafe { (*p).status.store(PRUNNING, Ordering::Release) };
            return;
        }
        // SAFETY: the world is stopped: every other P is ours to place.
        unsafe {
            if (*p).runq.is_empty() && (*p).runnext.load(Ordering::Relaxed).is_null() {
                (*p).status.store(PIDLE, Ordering::Release);
                pidleput(p);
            } else {
                (*p).status.store(PIDLE, Ordering::Release);
                busy.push(p as usize);
            }
        }
    });
    SCHED.lock.unlock();
    for p in busy {
        startm(p as *mut P, false);
    }
    wakep();
}

/// Moves everything a dying P holds to the living.
///
/// # Safety
/// The world must be stopped and `pp` held by no M; `heir` a live P.
unsafe fn destroy_p(pp: *mut P, heir: *mut P) {
    // SAFETY: world stopped; pp is not held by any M.
    unsafe {
        let p = &mut *pp;
        let next = p.runnext.swap(null_mut(), Ordering::AcqRel);
        if !next.is_null() {
            globrunqput(next);
        }
        loop {
            let g = p.runq.get();
            if g.is_null() {
                break;
            }
            globrunqput(g);
        }
        p.timers.move_to(&(*heir).timers);
        rt_stack::stackcache_clear(&mut p.stackcache);
        SCHED.lock.lock();
        let s = SCHED.locked();
        while !p.gfree.is_null() {
            let g = p.gfree;
            p.gfree = (*g).schedlink;
            p.gfreecnt -= 1;
            (*g).schedlink = s.gfree;
            s.gfree = g;
            s.ngfree += 1;
        }
        SCHED.lock.unlock();
        if !p.mcache.is_null() {
            rt_heap::freemcache(p.mcache);
            p.mcache = null_mut();
        }
        p.status.store(PDEAD, Ordering::Release);
    }
}

/// Changes GOMAXPROCS at run time (Go's `runtime.GOMAXPROCS(n)`): stops the
/// world, grows or shrinks `allp` (a removed P's run queue goes to the global
/// queue, its timers and free Gs to the living, its caches back to the
/// pools), restarts the world, and returns the previous value. `n <= 0`
/// only reports the current value.
///
/// Must be called from a goroutine.
pub fn set_gomaxprocs(n: i32) -> i32 {
    let old = SCHED.gomaxprocs.load(Ordering::Relaxed);
    if n <= 0 || n == old {
        return old;
    }
    let mp = current_m();
    // SAFETY: reading our own M.
    if mp.is_null() || unsafe { (*mp).p.load(Ordering::Relaxed) }.is_null() {
        rt_sys::throw("GOMAXPROCS: must be called from a goroutine");
    }
    // One world-stopper at a time (Go's worldsema): a second one parks here.
    let _world = WORLDSEMA.lock();
    let old = SCHED.gomaxprocs.load(Ordering::Relaxed);
    if n == old {
        return old;
    }
    let mp = current_m();
    // SAFETY: on a goroutine holding a P.
    unsafe { stop_the_world() };
    let old_all = allp();
    let oldarr = old_all.as_ptr();
    let oldn = old_all.len();
    let newn = n as usize;
    check_p_memory(newn.saturating_sub(oldn));
    let mut v: Vec<*mut P> = Vec::new();
    if v.try_reserve_exact(newn).is_err() {
        rt_sys::throw("out of memory");
    }
    for i in 0..newn {
        if i < oldn {
            // SAFETY: the old array holds oldn entries.
            v.push(unsafe { *oldarr.add(i) });
        } else {
            v.push(new_p(i as i32));
        }
    }
    let heir = v[0];
    // SAFETY: world stopped.
    unsafe {
        let mine = (*mp).p.load(Ordering::Relaxed);
        if (*mine).id as usize >= newn {
            // Our P goes away: move to P0.
            releasep();
            (*mine).status.store(PGCSTOP, Ordering::Release);
            acquirep(heir);
        }
        for i in newn..oldn {
            destroy_p(*oldarr.add(i), heir);
        }
    }
    publish_allp(v);
    SCHED.gomaxprocs.store(n, Ordering::Release);
    // SAFETY: world stopped by us.
    unsafe { start_the_world() };
    old
}

fn unsafe_zeroed_sigset() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; all-zero is the empty set.
    unsafe { core::mem::zeroed() }
}

// ---------------------------------------------------------------------------
// blocking calls (Go's entersyscallblock / exitsyscall)

/// Before a call that blocks the OS thread (a blocking system call, a futex
/// wait in a non-runtime primitive): the goroutine keeps its M but gives up
/// its P, which goes to another M if there is work (Go's
/// `entersyscallblock`). Returns false (and does nothing) when not on a
/// goroutine holding a P.
pub fn entersyscallblock() -> bool {
    let gp = current_g();
    let mp = current_m();
    // SAFETY: reading our own M.
    if gp.is_null() || unsafe { (*mp).p.load(Ordering::Relaxed) }.is_null() {
        return false;
    }
    // SAFETY: gp runs on mp, which holds a P.
    unsafe {
        casgstatus(gp, GRUNNING, GSYSCALL);
        let pp = releasep();
        (*pp).syscalltick.fetch_add(1, Ordering::Relaxed);
        handoffp(pp);
    }
    true
}

/// After the blocking call: take an idle P and carry on, or queue the
/// goroutine and park the M until the scheduler runs it again (Go's
/// `exitsyscall`).
pub fn exitsyscall() {
    let gp = current_g();
    if gp.is_null() {
        return;
    }
    SCHED.lock.lock();
    let pp = if SCHED.gcwaiting.load(Ordering::Acquire) {
        null_mut()
    } else {
        // SAFETY: lock held.
        unsafe { pidleget() }
    };
    SCHED.lock.unlock();
    if !pp.is_null() {
        // SAFETY: pp came off the idle list for us; gp runs on this M.
        unsafe {
            acquirep(pp);
            casgstatus(gp, GSYSCALL, GRUNNING);
        }
        return;
    }
    mcall(exitsyscall0);
}

extern "C" fn exitsyscall0(gp: *mut G) -> ! {
    let mp = current_m();
    // SAFETY: on g0 of the M that ran gp; gp's context is saved; the M has
    // no P.
    unsafe {
        dropg(mp, gp, GSYSCALL, GRUNNABLE);
        SCHED.lock.lock();
        let pp = if SCHED.gcwaiting.load(Ordering::Acquire) {
            null_mut()
        } else {
            pidleget()
        };
        if pp.is_null() {
            // Under the lock, so an M going idle sees it (findrunnable
            // re-checks the global queue under this lock before parking).
            SCHED.locked().runq.push_back(gp);
            SCHED.runqsize.fetch_add(1, Ordering::Relaxed);
        }
        SCHED.lock.unlock();
        if !pp.is_null() {
            acquirep(pp);
            execute(gp, false);
        }
        if (*gp).lockedm == mp {
            // Only this M may run gp: wait for whoever picks it off the
            // global queue to hand it back with a P (Go's exitsyscall0).
            stoplockedm();
            execute(gp, false);
        }
    }
    stopm();
    schedule()
}

/// Serialises stopping the world (Go's `worldsema`).
static WORLDSEMA: crate::sync::Mutex<()> = crate::sync::Mutex::new(());
