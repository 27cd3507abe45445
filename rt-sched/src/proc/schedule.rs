//! The scheduler loop (Go's `schedule`, `findrunnable`, `stealWork`,
//! `execute`, `wakep`, `checkdead`); see the module docs of [`super`] for
//! the spinning protocol.

use super::*;

/// Starts one more spinning M if there is an idle P and nobody is spinning
/// (Go's `wakep`).
pub(crate) fn wakep() {
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

/// Whether a goroutine about to park on a buffered channel may look again
/// first (Go's `sync_runtime_canSpin`, for its mutexes; the caller bounds
/// the rounds): only while another P is running (the other side may be on
/// it, about to fill or drain the ring) and nothing waits on this P's run
/// queue.
pub(crate) fn can_spin() -> bool {
    let procs = SCHED.gomaxprocs.load(Ordering::Relaxed) as u32;
    if procs <= SCHED.npidle.load(Ordering::Relaxed) + SCHED.nmspinning.load(Ordering::Relaxed) + 1
    {
        return false;
    }
    let mp = current_m();
    if mp.is_null() {
        return false;
    }
    // SAFETY: the calling thread's own M.
    let pp = unsafe { (*mp).p.load(Ordering::Relaxed) };
    // SAFETY: Ps are never freed.
    !pp.is_null() && unsafe { runqempty(pp) }
}

/// Earliest timer of any P.
pub(crate) fn next_timer() -> Option<i64> {
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

/// Detects the state where no goroutine can ever run again (Go's
/// `checkdead`). Called when an M goes idle, as the last step under
/// `sched.lock`: it releases the lock (before throwing, if it does).
pub(crate) fn checkdead(s: SchedGuard<'_>) {
    let run = SCHED.mcount.load(Ordering::Relaxed) - s.nmidle - s.nmidlelocked - s.nmsys;
    if run > 0 || SCHED.exiting.load(Ordering::Relaxed) {
        return;
    }
    if run < 0 {
        let (nmidle, nmsys) = (s.nmidle, s.nmsys);
        drop(s);
        rt_sys::fatal!(
            "checkdead: inconsistent counts mcount={} nmidle={} nmsys={}",
            SCHED.mcount.load(Ordering::Relaxed),
            nmidle,
            nmsys
        );
    }
    // Goroutines waiting for I/O may be readied by the poller (Go counts
    // the polling M as running; between two polls none may be).
    if !s.runq.is_empty()
        || SCHED.ntimers.load(Ordering::Acquire) > 0
        || crate::netpoll::waiters() > 0
    {
        return;
    }
    let mut runnable = false;
    for_each_p(|pp| {
        // SAFETY: Ps are never freed; reading their queues is racy-safe.
        unsafe {
            if !runqempty(pp) {
                runnable = true;
            }
        }
    });
    if runnable || !SCHED.main_started.load(Ordering::Relaxed) {
        return;
    }
    drop(s);
    rt_sys::throw("all goroutines are asleep - deadlock!");
}

/// One round of scheduling (Go's `schedule`): find a runnable goroutine and
/// run it. Never returns.
pub(crate) fn schedule() -> ! {
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
            // Only after a park without a P (`preempt::reacquire_at_entry`).
            // SAFETY: mp is ours, on g0, without a P.
            unsafe { crate::preempt::release_thread_cache(mp) };
            // SAFETY: mp is ours.
            let locked = unsafe { (*mp).lockedg.load(Ordering::Relaxed) };
            if !locked.is_null() {
                stoplockedm();
                execute(locked, false);
            }
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
        // Every 61st tick the global queue goes first (fairness), unless a
        // timer is overdue: its goroutine has waited longer still (with
        // preemption, the global queue holds the goroutine just preempted,
        // which would otherwise get a second slice before the timer's).
        if tick % GLOBAL_FAIRNESS == 0
            && SCHED.runqsize.load(Ordering::Relaxed) > 0
            && (SCHED.ntimers.load(Ordering::Relaxed) == 0 || check_timers(pp) == 0)
        {
            // SAFETY: pp ours.
            gp = unsafe { globrunqget(&mut SCHED.lock(), pp, 1) };
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
        (*pp).bump_schedtick();
        runqput(pp, gp, false);
        if SCHED.ntimers.load(Ordering::Relaxed) > 0 {
            check_timers(pp);
        }
        if SCHED.runqsize.load(Ordering::Relaxed) > 0 {
            let g = globrunqget(&mut SCHED.lock(), pp, 1);
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

/// Runs `gp` on the current M (Go's `execute`). Never returns.
pub(crate) fn execute(gp: *mut G, inherit: bool) -> ! {
    let mp = current_m();
    // SAFETY: gp is runnable and now ours; mp holds a P.
    unsafe {
        if (*gp).sched.sp == 0 {
            bind_stack((*mp).p.load(Ordering::Relaxed), gp);
        }
        (*mp).curg = gp;
        (*gp).m = mp;
        casgstatus(gp, GRUNNABLE, GRUNNING);
        (*gp).polled.store(false, Ordering::Relaxed);
        if !inherit {
            let pp = (*mp).p.load(Ordering::Relaxed);
            (*pp).bump_schedtick();
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
    let mut n = 0;
    for (_, action) in ready {
        let gp = crate::time::fire(action);
        if gp.is_null() {
            continue;
        }
        n += 1;
        // SAFETY: the goroutine is parked (a sleep, or an I/O wait whose
        // deadline passed) and only this timer readies it now.
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
            // SAFETY: pp ours.
            let gp = unsafe { globrunqget(&mut SCHED.lock(), pp, 0) };
            if !gp.is_null() {
                return (gp, false);
            }
        }
        // Goroutines waiting for I/O that is ready now come before stealing
        // (a non-blocking poll, unless an M is blocked in the poller).
        if crate::netpoll::inited() && crate::netpoll::waiters() > 0 && !crate::netpoll::polling() {
            let mut list = Vec::new();
            crate::netpoll::poll(0, &mut list);
            if let Some(gp) = list.pop() {
                crate::netpoll::inject(&mut list);
                // SAFETY: the poll handed this parked G out once.
                unsafe { casgstatus(gp, GWAITING, GRUNNABLE) };
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
        let mut s = SCHED.lock();
        if SCHED.gcwaiting.load(Ordering::Acquire) {
            drop(s);
            continue 'top;
        }
        if SCHED.runqsize.load(Ordering::Relaxed) != 0 {
            // SAFETY: pp ours.
            let gp = unsafe { globrunqget(&mut s, pp, 0) };
            return (gp, false);
        }
        // SAFETY: we hold pp; once released it is idle and ours to list.
        unsafe {
            releasep();
            pidleput(&mut s, pp);
        }
        drop(s);
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
            if unsafe { !runqempty(p2) } {
                work = true;
            }
        });
        if work {
            let pp = pidleget(&mut SCHED.lock());
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
        // Goroutines wait for I/O: become the poller, without a P, until an
        // event, the next timer or a break (Go's blocking `netpoll`).
        if crate::netpoll::inited() && crate::netpoll::waiters() > 0 {
            let until = next_timer().unwrap_or(i64::MAX);
            if crate::netpoll::begin_blocking(until) {
                let mut list = Vec::new();
                crate::netpoll::poll(if until == i64::MAX { -1 } else { until }, &mut list);
                crate::netpoll::end_blocking();
                let pp = pidleget(&mut SCHED.lock());
                if pp.is_null() {
                    crate::netpoll::inject(&mut list);
                } else {
                    // SAFETY: pp came off the idle list for us.
                    unsafe { acquirep(pp) };
                    if let Some(gp) = list.pop() {
                        crate::netpoll::inject(&mut list);
                        // SAFETY: the poll handed this parked G out once.
                        unsafe { casgstatus(gp, GWAITING, GRUNNABLE) };
                        return (gp, false);
                    }
                    continue 'top;
                }
            }
        }
        stopm();
    }
}

/// Tries to steal from every other P, in a random coprime order, four
/// times; `runnext` only on the last pass (Go's `stealWork`).
fn steal_work(pp: *mut P) -> *mut G {
    let Some(gen) = allp_gen() else {
        return null_mut();
    };
    let (all, order) = (&gen.ps, &gen.order);
    if all.len() <= 1 {
        return null_mut();
    }
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
                let gp = (*p2).runq.stealer().steal_into(&mut (*pp).runq.local());
                if !gp.is_null() {
                    SchedStats::bump(&SCHED.stats.steals);
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
                            SchedStats::bump(&SCHED.stats.runnext_steals);
                            return next;
                        }
                    }
                }
            }
        }
    }
    null_mut()
}
