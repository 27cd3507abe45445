//! Asynchronous preemption: move the P, never the G.
//!
//! Go stops a goroutine that runs too long by making the interrupted code
//! call into the scheduler (`asyncPreempt`) and may resume it on another
//! thread. Rust code cannot be treated so: a leaf function may use the red
//! zone below the stack pointer, and any code may hold thread-affine state
//! (std's stdout lock, a futex mutex, a `thread_local!` address in a
//! register). So rt never moves a goroutine that was stopped by a signal:
//!
//! 1. sysmon sees a P whose `schedtick` has not moved for 10 ms
//!    (`GODEBUG=preemptinterval` sets another interval) and sends
//!    SIGURG to its M (Go's `retake`/`preemptone`), marking the request on
//!    the M so that a stale or foreign SIGURG does nothing.
//! 2. The handler ([`on_signal`]) acts only on an M running a user
//!    goroutine on that goroutine's own stack, holding a P, outside any
//!    runtime section (`rt_sys::tls::runtime_enter`: every runtime lock and
//!    every P-affine path). Inside one, it marks the preemption pending and
//!    the section's exit takes it (synchronously, [`suspend`] outside a
//!    handler).
//! 3. It suspends the goroutine in place: the goroutine becomes
//!    `GPREEMPTED` and locked to its M, the P is detached from the M
//!    (lock-free), and the M is put on a lock-free list for sysmon, which
//!    is woken. The handler then waits on the M's note, with the signals
//!    the interrupted code had unblocked (SIGURG aside) deliverable.
//! 4. sysmon (a thread not in a handler) does the locked work: gives the P
//!    another allocator cache (the old one stays with the thread, which may
//!    have been stopped inside an allocation), queues the goroutine on the
//!    global run queue, and hands the P to an idle M. It never creates a
//!    thread itself (the suspended goroutine may hold a lock that
//!    `pthread_create` takes): a creator thread does, and with no M idle
//!    the P goes straight to a goroutine waiting for its locked M, or back
//!    to this one (`proc::run_locked_waiter`). Whoever schedules the
//!    goroutine sees it locked to its M and hands that M a P
//!    (`startlockedm`); the handler wakes, takes the P, and returns: the
//!    goroutine continues on the same thread, with the kernel's saved
//!    register and FPU state. The thread's cache becomes the new P's, and
//!    the P's unused one is set aside for the next detached P, so caches
//!    are traded, never created per preemption.
//!
//! A goroutine stopped inside a blocking system call is suspended the same
//! way; the call restarts (or returns `EINTR`, for calls the kernel never
//! restarts) when the handler returns. So, as in Go, code that calls raw
//! libc must retry on `EINTR`.

use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, Ordering};

use crate::proc::{current_m, for_each_p, getg, gs_tls_in_use};
use crate::runtime2::*;

/// Preemption is on (`GODEBUG=asyncpreemptoff=1` turns it off).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Ms whose goroutine a handler suspended, waiting for sysmon.
static SERVICE: AtomicPtr<M> = AtomicPtr::new(null_mut());

/// How long a P may run one goroutine before it is preempted (Go's
/// `forcePreemptNS`), unless `GODEBUG=preemptinterval` says otherwise.
pub const FORCE_PREEMPT_NS: i64 = 10_000_000;

/// The shortest interval [`set_interval`] accepts: below it a suspended
/// goroutine could be preempted again before its handler has returned.
pub const MIN_PREEMPT_NS: i64 = 100_000;

/// The interval in force (see [`FORCE_PREEMPT_NS`]).
static FORCE_PREEMPT: AtomicI64 = AtomicI64::new(FORCE_PREEMPT_NS);

/// Sets how long a P may run one goroutine before it is preempted (at
/// boot, from `GODEBUG=preemptinterval`), at least [`MIN_PREEMPT_NS`].
pub fn set_interval(ns: i64) {
    FORCE_PREEMPT.store(ns.max(MIN_PREEMPT_NS), Ordering::Relaxed);
}

/// The interval in force.
fn interval() -> i64 {
    FORCE_PREEMPT.load(Ordering::Relaxed)
}

/// Turns asynchronous preemption on or off (at boot, from `GODEBUG`).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Release);
    if on {
        rt_sys::tls::set_preempt_hook(preempt_pending);
    }
}

/// True when asynchronous preemption is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// A P-affine runtime section on the current M (see the module docs):
/// preemption waits until it is dropped.
pub(crate) struct InRuntime(());

impl InRuntime {
    #[inline(always)]
    pub(crate) fn enter() -> InRuntime {
        rt_sys::tls::runtime_enter();
        InRuntime(())
    }
}

impl Drop for InRuntime {
    #[inline(always)]
    fn drop(&mut self) {
        rt_sys::tls::runtime_exit();
    }
}

/// sysmon's view of each P: the `schedtick` it last saw and since when.
#[derive(Debug, Default)]
pub(crate) struct Retake {
    seen: Vec<(u32, i64)>,
    /// When sysmon last looked.
    last_look: i64,
}

impl Retake {
    /// Go's `retake` for running Ps: requests a preemption of each P that
    /// has run the same goroutine for the interval in force
    /// ([`FORCE_PREEMPT_NS`] by default). Returns how
    /// long until the next P could reach that, so sysmon can look again
    /// right then instead of after its idle back-off, and whether it asked
    /// for a preemption.
    pub(crate) fn run(&mut self, now: i64) -> (Option<i64>, bool) {
        if !enabled() {
            return (None, false);
        }
        let force = interval();
        let mut next: Option<i64> = None;
        let mut asked = false;
        for_each_p(|pp| {
            // SAFETY: Ps are never freed; the fields read are atomics.
            let p = unsafe { &*pp };
            let id = p.id as usize;
            if self.seen.len() <= id {
                self.seen.resize(id + 1, (u32::MAX, now));
            }
            if p.status.load(Ordering::Acquire) != PRUNNING {
                self.seen[id] = (u32::MAX, now);
                return;
            }
            let tick = p.schedtick.load(Ordering::Relaxed);
            let (last, since) = self.seen[id];
            if tick != last {
                // It changed since the last look: the goroutine may have
                // started right after it, so time it from then.
                self.seen[id] = (tick, self.last_look.max(now - force / 2));
            } else if now - since >= force {
                self.seen[id].1 = now;
                crate::proc::start_creator();
                asked |= preemptone(pp);
            } else if now - since >= force / 2 {
                // Likely to be preempted soon: have the creator (and a
                // spare M) ready by then.
                crate::proc::start_creator();
            }
            let left = self.seen[id].1 + force - now;
            next = Some(next.map_or(left, |n: i64| n.min(left)));
        });
        self.last_look = now;
        (next, asked)
    }
}

/// Asks the M running `pp` to stop its goroutine (Go's `preemptone`);
/// false when there is no M to ask.
fn preemptone(pp: *mut P) -> bool {
    // SAFETY: Ps and Ms are never freed; the fields read are atomics or
    // set once.
    unsafe {
        let mp = (*pp).m.load(Ordering::Acquire);
        if mp.is_null() || (*mp).system {
            return false;
        }
        let tid = (*mp).procid.load(Ordering::Relaxed);
        if tid == 0 {
            return false;
        }
        (*mp).preempt_req.store(true, Ordering::Release);
        libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGURG);
        true
    }
}

/// The SIGURG handler's part (see the module docs): `regs` is the
/// interrupted state, `sigmask` the signal mask the interrupted code ran
/// with. Lock-free; allocates nothing.
pub fn on_signal(regs: rt_traceback::Regs, sigmask: u64) {
    // Never on the way out: sysmon stops placing Ps once exit(3) runs, so a
    // goroutine suspended in an exit handler would wait for ever.
    if !enabled() || !gs_tls_in_use() || SCHED.exiting.load(Ordering::Relaxed) {
        return;
    }
    let mp = current_m();
    if mp.is_null() {
        return;
    }
    // SAFETY: our own M; a request is consumed once.
    if unsafe { !(*mp).preempt_req.swap(false, Ordering::AcqRel) } {
        return;
    }
    let gp = getg();
    // SAFETY: our own M and the goroutine it runs; the handler runs on the
    // same thread, so the interrupted code is frozen while we look.
    unsafe {
        if !running_user_code(mp, gp) || regs.sp < (*gp).stack.lo || regs.sp >= (*gp).stack.hi {
            return;
        }
        if rt_sys::tls::runtime_locks() & !rt_sys::tls::LOCKS_PENDING != 0 {
            // Inside the runtime: the section's exit takes it.
            rt_sys::tls::set_preemption_pending();
            return;
        }
        suspend(mp, gp, &regs, Some(sigmask));
    }
}

/// True when `mp` (non-null) runs the user goroutine `gp` with a running P:
/// the state a preemption may suspend.
///
/// # Safety
/// `mp` is the calling thread's M and `gp` the goroutine slot's value.
unsafe fn running_user_code(mp: *mut M, gp: *mut G) -> bool {
    // SAFETY: caller contract; Ps are never freed.
    unsafe {
        let pp = (*mp).p.load(Ordering::Relaxed);
        !gp.is_null()
            && (*mp).curg == gp
            && !(*gp).system
            && (*gp).goid != 0
            && !pp.is_null()
            && (*pp).status.load(Ordering::Relaxed) == PRUNNING
            && (*gp).atomicstatus.load(Ordering::Relaxed) == GRUNNING
    }
}

/// A runtime section ended with a preemption pending: take it here, if
/// this is still the user goroutine it was meant for.
fn preempt_pending() {
    if SCHED.exiting.load(Ordering::Relaxed) {
        return;
    }
    let mp = current_m();
    if mp.is_null() {
        return;
    }
    let gp = getg();
    // SAFETY: our own M and goroutine.
    unsafe {
        if !running_user_code(mp, gp) {
            return;
        }
        let regs = rt_traceback::Regs::here();
        suspend(mp, gp, &regs, None);
    }
}

/// Suspends `gp` in place (steps 3 and 4 of the module docs); returns when
/// its M holds a P again. `sigmask` is the interrupted code's signal mask
/// when called from the handler.
///
/// # Safety
/// `mp` is the calling thread's M, running `gp` with a P, outside every
/// runtime section.
unsafe fn suspend(mp: *mut M, gp: *mut G, regs: &rt_traceback::Regs, sigmask: Option<u64>) {
    // SAFETY: caller contract: these fields are ours to change while the
    // goroutine is stopped here.
    unsafe {
        (*gp).preemptregs = *regs;
        (*gp).preemptlocked = (*gp).lockedm.is_null();
        if (*gp).preemptlocked {
            (*gp).lockedm = mp;
            (*mp).lockedg.store(gp, Ordering::Relaxed);
        }
        casgstatus(gp, GRUNNING, GPREEMPTED);
        // Detach the P but leave the thread on the P's allocator cache:
        // the interrupted code may be inside an allocation. sysmon gives
        // the P a fresh cache before anyone else can run it.
        let pp = (*mp).p.swap(null_mut(), Ordering::AcqRel);
        (*pp).m.store(null_mut(), Ordering::Relaxed);
        set_pstatus(pp, PRUNNING, PIDLE);
        (*mp).preempt_p.store(pp, Ordering::Release);
        (*mp).blocked.store(true, Ordering::Relaxed);
        let mut head = SERVICE.load(Ordering::Acquire);
        loop {
            (*mp).preemptlink.store(head, Ordering::Relaxed);
            match SERVICE.compare_exchange(head, mp, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        crate::sysmon::wake();
        // While waiting, let through what the interrupted code allowed
        // (glibc's setxid signal, a crash, SIGQUIT), but not SIGURG.
        if let Some(mask) = sigmask {
            rt_sys::sigprocmask(libc::SIG_SETMASK, Some(mask | 1 << (libc::SIGURG - 1)));
        }
        let next = loop {
            (*mp).park.sleep();
            (*mp).park.clear();
            let pp = (*mp).nextp.swap(null_mut(), Ordering::Acquire);
            if !pp.is_null() {
                break pp;
            }
        };
        if sigmask.is_some() {
            rt_sys::sigprocmask(libc::SIG_SETMASK, Some(!0));
        }
        (*mp).blocked.store(false, Ordering::Relaxed);
        // acquirep, except for the allocator cache: the thread keeps the
        // one it was using (it may be inside an allocation on it), which
        // becomes the new P's; the P's own, unused since its last M let it
        // go, is set aside for sysmon's next detached P.
        (*mp).p.store(next, Ordering::Relaxed);
        (*next).m.store(mp, Ordering::Relaxed);
        let from = (*next).status.load(Ordering::Relaxed);
        set_pstatus(next, from, PRUNNING);
        let unused = (*next).mcache;
        (*next).mcache = rt_heap::current_cache();
        if unused != (*next).mcache {
            set_aside(mp, unused);
        }
        (*next).schedtick.fetch_add(1, Ordering::Relaxed);
        casgstatus(gp, GPREEMPTED, GRUNNING);
        if (*gp).preemptlocked {
            (*gp).preemptlocked = false;
            (*gp).lockedm = null_mut();
            (*mp).lockedg.store(null_mut(), Ordering::Relaxed);
        }
    }
}

/// Caches set aside by Ms whose own spare slot was taken (see [`set_aside`]).
static SPARES: [AtomicPtr<rt_heap::MCache>; 16] = [const { AtomicPtr::new(null_mut()) }; 16];

/// Keeps an unused cache for the next P sysmon detaches: in the M's slot,
/// else in [`SPARES`]. Lock-free; called in the handler.
///
/// # Safety
/// `c` is a live cache nobody uses.
unsafe fn set_aside(mp: *mut M, c: *mut rt_heap::MCache) {
    // SAFETY: mp is the calling thread's M.
    let old = unsafe { (*mp).spare.swap(c, Ordering::AcqRel) };
    if old.is_null() {
        return;
    }
    for s in &SPARES {
        if s.compare_exchange(null_mut(), old, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
    // Every slot full: sysmon takes from them at each suspension, so this
    // needs more concurrent preemptions than slots; the cache stays unused.
}

/// A cache for a P sysmon detaches: `mp`'s spare, a set-aside one, or new.
///
/// # Safety
/// `mp` is an M suspended in its handler.
unsafe fn fresh_cache(mp: *mut M) -> *mut rt_heap::MCache {
    // SAFETY: caller contract; the slot is shared through its atomic.
    let c = unsafe { (*mp).spare.swap(null_mut(), Ordering::AcqRel) };
    if !c.is_null() {
        return c;
    }
    for s in &SPARES {
        let c = s.swap(null_mut(), Ordering::AcqRel);
        if !c.is_null() {
            return c;
        }
    }
    rt_heap::allocmcache()
}

/// sysmon's half of a suspension (step 4): for each M a handler put on the
/// list, give its P a fresh cache, queue its goroutine and hand the P to an
/// idle M. With no M idle, the P goes to a goroutine waiting for its locked
/// M, or back to this one (a thread is created for next time, but not here:
/// see `proc::mstart::CREATOR`).
pub(crate) fn service() -> bool {
    let mut mp = SERVICE.swap(null_mut(), Ordering::AcqRel);
    let any = !mp.is_null();
    while !mp.is_null() {
        // SAFETY: Ms are never freed; the M waits in its handler and its
        // preemption fields were published before it joined the list.
        unsafe {
            let next = (*mp).preemptlink.load(Ordering::Relaxed);
            let pp = (*mp).preempt_p.swap(null_mut(), Ordering::Acquire);
            let gp = (*mp).curg;
            (*pp).mcache = fresh_cache(mp);
            SchedStats::bump(&SCHED.stats.preemptions);
            if crate::proc::gcstop_preempted(pp, gp) {
                // The world is being stopped: pp counts as stopped and gp
                // waits in the global queue, with no M to wake.
            } else if !crate::proc::startm_idle(pp, gp) {
                // The M that takes pp trades its cache for the fresh one,
                // which is set aside again.
                crate::proc::run_locked_waiter(pp, gp);
            }
            mp = next;
        }
    }
    any
}
