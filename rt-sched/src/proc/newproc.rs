//! Goroutine creation and exit (Go's `newproc`, `malg`, `gfput`/`gfget`,
//! `goexit`): Gs, their stacks and the free lists that recycle both.

use super::*;

pub(crate) fn alloc_g() -> *mut G {
    leak_or_throw(G::new())
}

fn allgadd(gp: *mut G) {
    let mut all = ALLGS.lock().unwrap_or_else(|e| e.into_inner());
    all.push(gp as usize);
    // SAFETY: gp is live; in_allgs is only written here.
    unsafe { (*gp).in_allgs = true };
}

/// A G with a stack of `size` bytes from the global pool, for runtime use
/// (gsignal). Not on `allgs`.
pub(crate) fn malg_system(size: usize) -> *mut G {
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
    let st = rt_stack::stackalloc(cache, size).map_err(SpawnError::Stack)?;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// No stack could be had (address space, `vm.max_map_count`, memory):
    /// the stack pool's own error, also given as the
    /// [`source`](std::error::Error::source).
    Stack(rt_stack::StackError),
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpawnError::Stack(e) => write!(f, "cannot allocate goroutine stack: {e}"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Stack(e) => Some(e),
        }
    }
}

/// Gives `gp` the stack `st`, with Go's guards: `stackguard0` at
/// `lo + STACK_GUARD`, `stackguard1` poisoned for user code.
///
/// # Safety
/// `gp` must be a G nobody else is touching (fresh, dead, or about to run).
unsafe fn set_stack(gp: *mut G, st: Stack) {
    // SAFETY: caller contract.
    unsafe {
        (*gp).stack = st;
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
        let st = (*gp).stack;
        if CHECKS {
            poison_stack(&(*gp).stack);
        }
        rt_stack::stackfree(Some(p_stackcache(pp)), st);
        (*gp).stack = Stack { lo: 0, hi: 0 };
    }
}

/// Puts a dead G on the P's free list (`gfput`). The local cache holds up
/// to two batches: `gfree`, filling, and `gfull`, one full batch kept back.
/// When `gfree` fills while `gfull` is taken, `gfull` goes to the shared
/// list ([`GFREE`]) and `gfree` takes its place, so moving Gs between Ps
/// costs one lock round per [`GFREE_BATCH`] Gs and never a walk.
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
        let p = &mut *pp;
        (*gp).schedlink = p.gfree;
        p.gfree = gp;
        p.gfreecnt += 1;
        if p.gfreecnt < GFREE_BATCH {
            return;
        }
        let full = p.gfree;
        (*full).gfn = p.gfreecnt;
        p.gfree = null_mut();
        p.gfreecnt = 0;
        let spill = core::mem::replace(&mut p.gfull, full);
        if !spill.is_null() {
            gfree_push(spill);
        }
    }
}

/// Pushes one batch (its head carrying `gfn`) on the shared list.
///
/// # Safety
/// `batch` heads a chain of `gfn` dead Gs owned by the caller.
unsafe fn gfree_push(batch: *mut G) {
    let mut f = GFREE.lock();
    // SAFETY: caller contract; the batch becomes the list's under the lock.
    unsafe {
        (*batch).gfnext = f.head;
        f.n += i64::from((*batch).gfn);
    }
    f.head = batch;
}

/// Takes a dead G from the P's free list (`gfget`), refilling it with the
/// kept-back batch or a batch from the shared list. Gs without a stack get
/// a fresh one.
///
/// # Safety
/// `pp` must be held by this M.
unsafe fn gfget(pp: *mut P) -> *mut G {
    // SAFETY: caller contract.
    unsafe {
        let p = &mut *pp;
        if p.gfree.is_null() {
            let batch = if !p.gfull.is_null() {
                core::mem::replace(&mut p.gfull, null_mut())
            } else {
                let mut f = GFREE.lock();
                let b = f.head;
                if !b.is_null() {
                    f.head = (*b).gfnext;
                    f.n -= i64::from((*b).gfn);
                }
                b
            };
            if batch.is_null() {
                return null_mut();
            }
            p.gfree = batch;
            p.gfreecnt = (*batch).gfn;
        }
        let gp = p.gfree;
        p.gfree = (*gp).schedlink;
        p.gfreecnt -= 1;
        // The next spawn on this P takes the next G: start loading its lines
        // now (they were last written by whichever core freed it).
        arch::prefetch_write(p.gfree.cast());
        if (*gp).stack.lo == 0 && !lazy_stacks() {
            match rt_stack::stackalloc(Some(p_stackcache(pp)), stack_size()) {
                Ok(st) => set_stack(gp, st),
                Err(_) => {
                    // Put it back stackless; the caller falls back to malg,
                    // which reports the error.
                    (*gp).schedlink = p.gfree;
                    p.gfree = gp;
                    p.gfreecnt += 1;
                    return null_mut();
                }
            }
        }
        gp
    }
}

/// Gives a dying P's free Gs to the shared list (`procresize`).
///
/// # Safety
/// The world must be stopped and `pp` held by no M.
pub(crate) unsafe fn gfpurge(pp: *mut P) {
    // SAFETY: caller contract: the stopper owns pp's caches.
    unsafe {
        let p = &mut *pp;
        if !p.gfree.is_null() {
            (*p.gfree).gfn = p.gfreecnt;
            gfree_push(p.gfree);
        }
        if !p.gfull.is_null() {
            gfree_push(p.gfull);
        }
        p.gfree = null_mut();
        p.gfreecnt = 0;
        p.gfull = null_mut();
    }
}

/// Adds `d` to the goroutine count kept on `pp` (or the shared one when
/// there is no P).
///
/// # Safety
/// `pp` is null or held by this M (only its owner writes `ngdelta`).
unsafe fn count_goroutines(pp: *mut P, d: i64) {
    if pp.is_null() {
        SCHED.ngoroutines.fetch_add(d, Ordering::Relaxed);
    } else {
        // SAFETY: caller contract: we are the only writer.
        let c = unsafe { &(*pp).ngdelta };
        c.store(c.load(Ordering::Relaxed) + d, Ordering::Relaxed);
    }
}

/// Live user goroutines: the shared count plus every live P's. A racy sum,
/// as Go's `gcount`: exact when nothing spawns or exits meanwhile.
pub(crate) fn gcount() -> i64 {
    let mut n = SCHED.ngoroutines.load(Ordering::Relaxed);
    for_each_p(|p| {
        // SAFETY: Ps are never freed; ngdelta is an atomic any thread may read.
        n += unsafe { (*p).ngdelta.load(Ordering::Relaxed) };
    });
    n
}

/// Creates a goroutine running `f` and queues it (Go's `newproc`): into
/// `runnext` of the calling M's P, or the global queue from a thread that
/// is not an M. Returns the new G. `gopc` is the `go` statement's PC (0
/// for goroutines the runtime starts), for `created by` lines.
pub fn newproc(f: Box<dyn FnOnce() + Send + 'static>, gopc: usize) -> Result<*mut G, SpawnError> {
    crate::preempt::reacquire_if_detached(current_m());
    // The P's G cache, goid cache and run queue: no preemption in between.
    let _in = crate::preempt::InRuntime::enter();
    let gp0 = getg_checked();
    let mp = current_m();
    let pp = if mp.is_null() {
        null_mut()
    } else {
        // SAFETY: our own M.
        unsafe { (*mp).p.load(Ordering::Relaxed) }
    };
    let parentgoid = if gp0.is_null() {
        0
    } else {
        // SAFETY: the running goroutine (or g0, goid 0) reads its own id.
        unsafe { (*gp0).goid }
    };
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
        g.waitsince = 0;
        g.gopc = gopc;
        g.parentgoid = parentgoid;
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
        count_goroutines(pp, 1);
        casgstatus(newg, GDEAD, GRUNNABLE);
        if pp.is_null() {
            globrunqput(newg);
        } else {
            runqput(pp, newg, true);
        }
    }
    if SCHED.main_started.load(Ordering::Relaxed) {
        wakep();
        crate::sysmon::wanted();
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
pub(crate) unsafe fn bind_stack(pp: *mut P, gp: *mut G) {
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
pub(crate) extern "C" fn goexit1() -> ! {
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
        let pp = (*mp).p.load(Ordering::Relaxed);
        count_goroutines(pp, -1);
        if lazy_stacks() && (*gp).stack.lo != 0 {
            // Back to the P's cache (LIFO): the next goroutine to start on
            // this P runs on the same, already-committed stack.
            free_stack(pp, gp);
        }
        gfput(pp, gp);
    }
    schedule()
}
