//! Ps (Go's `acquirep`, `releasep`, `pidleput`/`pidleget`, `procresize`):
//! `allp`, the idle list, stop-the-world and `GOMAXPROCS` at run time.

use super::*;

/// Acquires `pp` for the calling M (`acquirep`) and binds its allocator cache.
///
/// # Safety
/// `pp` must be idle, fresh or stopped, and not held by any M; the calling
/// M holds no P.
pub(crate) unsafe fn acquirep(pp: *mut P) {
    let mp = current_m();
    // SAFETY: caller contract; mp is ours.
    unsafe {
        let from = (*pp).status.load(Ordering::Relaxed);
        if CHECKS
            && (!(*pp).m.load(Ordering::Relaxed).is_null()
                || !(*mp).p.load(Ordering::Relaxed).is_null())
        {
            rt_sys::throw("acquirep: P already held, or the M already holds one");
        }
        (*mp).p.store(pp, Ordering::Relaxed);
        (*pp).m.store(mp, Ordering::Relaxed);
        set_pstatus(pp, from, PRUNNING);
        rt_heap::bind_thread_cache((*pp).mcache);
    }
}

/// Releases the calling M's P (`releasep`).
///
/// # Safety
/// The M must hold a P.
pub(crate) unsafe fn releasep() -> *mut P {
    let mp = current_m();
    // SAFETY: caller contract.
    unsafe {
        let pp = (*mp).p.swap(null_mut(), Ordering::Relaxed);
        if CHECKS && (pp.is_null() || (*pp).m.load(Ordering::Relaxed) != mp) {
            rt_sys::throw("releasep: the M does not hold its P");
        }
        (*pp).m.store(null_mut(), Ordering::Relaxed);
        // Running, or stopped while held by a world-stopper.
        let from = (*pp).status.load(Ordering::Relaxed);
        set_pstatus(pp, from, PIDLE);
        rt_heap::unbind_thread_cache();
        pp
    }
}

/// Puts an idle P on the idle list.
///
/// # Safety
/// `pp` must be idle (`PIDLE`), held by no M, and owned by the caller.
pub(crate) unsafe fn pidleput(s: &mut SchedLocked, pp: *mut P) {
    // SAFETY: pp is idle and ours (caller); the list is guarded by `s`.
    unsafe {
        if CHECKS && (*pp).status.load(Ordering::Relaxed) != PIDLE {
            rt_sys::throw("pidleput: P is not idle");
        }
        (*pp).link = s.pidle;
        s.pidle = pp;
        SCHED
            .idlepmask
            .fetch_or(1usize.wrapping_shl((*pp).id as u32 % 64), Ordering::Relaxed);
    }
    SCHED.npidle.fetch_add(1, Ordering::AcqRel);
}

/// Takes an idle P.
pub(crate) fn pidleget(s: &mut SchedLocked) -> *mut P {
    // SAFETY: Ps on the idle list are live (Ps are never freed) and their
    // links are guarded by `s`.
    unsafe {
        let pp = s.pidle;
        if !pp.is_null() {
            s.pidle = (*pp).link;
            SCHED.idlepmask.fetch_and(
                !1usize.wrapping_shl((*pp).id as u32 % 64),
                Ordering::Relaxed,
            );
            SCHED.npidle.fetch_sub(1, Ordering::AcqRel);
            crate::sysmon::wake_if_deep();
        }
        pp
    }
}

/// Calls `f` for every P in `allp`.
pub(crate) fn for_each_p(mut f: impl FnMut(*mut P)) {
    for &p in allp() {
        f(p);
    }
}

/// The current `allp`: one atomic load of a published, never-freed slice,
/// so its length and contents always belong together even while
/// `set_gomaxprocs` replaces it.
pub(crate) fn allp() -> &'static [*mut P] {
    let a = ALLP.load(Ordering::Acquire);
    if a.is_null() {
        return &[];
    }
    // SAFETY: published by `publish_allp` from a leaked box, never freed.
    unsafe { &(*a).ps }
}

/// The current `allp` generation with its steal order, or `None` before
/// `procresize_boot`.
pub(crate) fn allp_gen() -> Option<&'static AllP> {
    let a = ALLP.load(Ordering::Acquire);
    // SAFETY: published by `publish_allp` from a leaked box, never freed.
    unsafe { a.as_ref() }
}

/// Publishes a new `allp` (the old one is leaked: racy readers may still
/// walk it, and Ps are never freed).
fn publish_allp(v: Vec<*mut P>) {
    let order = crate::steal::StealOrder::new(v.len() as u32);
    let a = leak_or_throw(AllP {
        ps: v.into_boxed_slice(),
        order,
    });
    ALLP.store(a, Ordering::Release);
}

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
    let mut s = SCHED.lock();
    // SAFETY: boot, single-threaded: m0 takes P0; others idle, highest first
    // so that P1 ends up at the head of the idle list (as Go's walk does).
    unsafe {
        acquirep(*arr);
        for i in (1..n).rev() {
            let p = *arr.add(i);
            set_pstatus(p, PGCSTOP, PIDLE);
            pidleput(&mut s, p);
        }
    }
    drop(s);
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
        runq: RunQueue::new(),
        runnext: AtomicPtr::new(null_mut()),
        gfree: null_mut(),
        gfreecnt: 0,
        gfull: null_mut(),
        ngdelta: core::sync::atomic::AtomicI64::new(0),
        timers: crate::time::TimerHeap::new(),
        handofflink: AtomicPtr::new(null_mut()),
        handoffcache: AtomicPtr::new(null_mut()),
    })
}

/// Gives this M's P up to a stopping world and parks (Go's `gcstopm`).
pub(crate) fn gcstopm() {
    let mp = current_m();
    // SAFETY: mp is ours and holds a P.
    unsafe {
        if (*mp).spinning.swap(false, Ordering::Relaxed) {
            SCHED.nmspinning.fetch_sub(1, Ordering::AcqRel);
        }
        let pp = releasep();
        let s = SCHED.lock();
        set_pstatus(pp, PIDLE, PGCSTOP);
        if SCHED.stopwait.fetch_sub(1, Ordering::AcqRel) == 1 {
            SCHED.stopnote.wakeup();
        }
        drop(s);
    }
    stopm();
}

/// While the world is being stopped, counts `pp`, just taken from the
/// suspended `gp`, as stopped and queues `gp` to wait for its locked M (as
/// `gcstopm` does for a P whose M reached a scheduling point); false, with
/// nothing changed, when no stop is under way.
///
/// # Safety
/// `pp` is idle and owned by the caller (sysmon serving a preemption);
/// `gp` is suspended in place on its locked M and in no queue.
pub(crate) unsafe fn gcstop_preempted(pp: *mut P, gp: *mut G) -> bool {
    let mut s = SCHED.lock();
    if !SCHED.gcwaiting.load(Ordering::Acquire) {
        return false;
    }
    // Undone by `startlockedm` when it hands gp's M a P.
    s.nmidlelocked += 1;
    s.runq.push_back(gp);
    s.runqsize_add(1);
    // SAFETY: caller contract: pp is idle and ours.
    unsafe { set_pstatus(pp, PIDLE, PGCSTOP) };
    if SCHED.stopwait.fetch_sub(1, Ordering::AcqRel) == 1 {
        SCHED.stopnote.wakeup();
    }
    true
}

/// Stops every P but the caller's (Go's `stopTheWorld`). Running
/// goroutines stop at their next scheduling point (a channel operation,
/// `gosched`, `sleep`, exit…); one spinning without any is stopped by the
/// next asynchronous preemption (sysmon, within 10 ms), which gives its P
/// to the stopper ([`gcstop_preempted`]).
///
/// # Safety
/// Must be called by a goroutine holding a P, not already stopping the world.
unsafe fn stop_the_world() {
    let mp = current_m();
    let mut s = SCHED.lock();
    SCHED.stopnote.clear();
    let procs = SCHED.gomaxprocs.load(Ordering::Relaxed);
    SCHED.stopwait.store(procs, Ordering::Release);
    SCHED.gcwaiting.store(true, Ordering::Release);
    // SAFETY: our P is ours; idle Ps taken off the list are ours.
    unsafe {
        let pp = (*mp).p.load(Ordering::Relaxed);
        set_pstatus(pp, PRUNNING, PGCSTOP);
        SCHED.stopwait.fetch_sub(1, Ordering::AcqRel);
        loop {
            let p = pidleget(&mut s);
            if p.is_null() {
                break;
            }
            set_pstatus(p, PIDLE, PGCSTOP);
            SCHED.stopwait.fetch_sub(1, Ordering::AcqRel);
        }
    }
    drop(s);
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
    let mut s = SCHED.lock();
    SCHED.gcwaiting.store(false, Ordering::Release);
    for_each_p(|p| {
        if p == mine {
            // SAFETY: our own P: stopped by stop_the_world, or P0 acquired
            // afresh by set_gomaxprocs when ours went away.
            unsafe {
                if (*p).status.load(Ordering::Relaxed) == PGCSTOP {
                    set_pstatus(p, PGCSTOP, PRUNNING);
                }
            }
            return;
        }
        // SAFETY: the world is stopped: every other P is ours to place.
        unsafe {
            set_pstatus(p, PGCSTOP, PIDLE);
            if runqempty(p) {
                pidleput(&mut s, p);
            } else {
                busy.push(p as usize);
            }
        }
    });
    drop(s);
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
        // The world is stopped and no M holds pp: the stopper owns its queue.
        let mut local = p.runq.local();
        loop {
            let g = local.pop();
            if g.is_null() {
                break;
            }
            globrunqput(g);
        }
        p.timers.move_to(&(*heir).timers);
        rt_stack::stackcache_clear(&mut p.stackcache);
        super::newproc::gfpurge(pp);
        SCHED
            .ngoroutines
            .fetch_add(p.ngdelta.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        if !p.mcache.is_null() {
            rt_heap::freemcache(p.mcache);
            p.mcache = null_mut();
        }
        set_pstatus(pp, PGCSTOP, PDEAD);
    }
}

/// Changes GOMAXPROCS at run time (Go's `runtime.GOMAXPROCS(n)`): stops the
/// world, grows or shrinks `allp` (a removed P's run queue goes to the global
/// queue, its timers and free Gs to the living, its caches back to the
/// pools), restarts the world, and returns the previous value. `n <= 0`
/// only reports the current value.
///
/// Must be called from a goroutine.
pub(crate) fn set_gomaxprocs(n: i32) -> i32 {
    let old = SCHED.gomaxprocs.load(Ordering::Relaxed);
    if n <= 0 || n == old {
        return old;
    }
    let mp = current_m();
    crate::preempt::reacquire_if_detached(mp);
    // SAFETY: reading our own M.
    if mp.is_null() || unsafe { (*mp).p.load(Ordering::Relaxed) }.is_null() {
        rt_sys::throw("GOMAXPROCS: must be called from a goroutine");
    }
    // One world-stopper at a time (Go's worldsema): a second one parks here.
    let _world = WORLDSEMA.lock();
    // Stopping the world holds this M's P in PGCSTOP while it waits: no
    // preemption until the world runs again. (Taken after the park above:
    // a runtime section never spans a park, or it would stay open on the M
    // the goroutine left.)
    let _in = crate::preempt::InRuntime::enter();
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
            set_pstatus(mine, PIDLE, PGCSTOP);
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

/// Serialises stopping the world (Go's `worldsema`).
static WORLDSEMA: crate::sync::Mutex<()> = crate::sync::Mutex::new(());
