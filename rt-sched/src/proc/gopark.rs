//! How a goroutine leaves its stack (Go's `mcall`, `gopark`, `goready`,
//! `Gosched`) and the direct switch `yield_to`; sleeping on a timer.

use super::*;

/// Saves the running goroutine and runs `f(gp)` on g0.
pub(crate) fn mcall(f: extern "C" fn(*mut G) -> !) {
    let gp = getg();
    // SAFETY: we run on gp (a user goroutine) of this M; g0's saved sp is the
    // top of its unused stack (set in mstart1).
    unsafe {
        let mp = (*gp).m;
        // The scheduler needs a P (one given up in the kernel comes back).
        if crate::preempt::reacquire_if_detached(mp)
            && CHECKS
            && !crate::preempt::park_ok_pless(
                mp,
                core::ptr::fn_addr_eq(f, park_m as extern "C" fn(*mut G) -> !),
            )
        {
            rt_sys::throw("runtime: mcall without a P after a hand-off");
        }
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
        (*gp).waitsince = crate::sysmon::coarse_now();
    }
    mcall(park_m);
}

/// Sets the status of the goroutine that just left this M and detaches it
/// (Go's `casgstatus` + `dropg`).
///
/// # Safety
/// On g0 of the M `mp` that was running `gp`; `gp`'s context is saved.
pub(crate) unsafe fn dropg(mp: *mut M, gp: *mut G, from: u32, status: u32) {
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
                if (*mp).p.load(Ordering::Relaxed).is_null() {
                    // Parked without a P (`preempt::reacquire_at_entry`):
                    // whoever has one runs it.
                    globrunqput(gp);
                    wakep();
                } else {
                    execute(gp, true);
                }
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
    // The caller's P's run queue: no preemption in between.
    let _in = crate::preempt::InRuntime::enter();
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
/// the raw cost of a goroutine switch (one inline `arch::switch`, no trip
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
        crate::preempt::reacquire_for_p(mp);
        if (*next).sched.sp == 0 {
            // The P's stack cache: no preemption in between.
            let _in = crate::preempt::InRuntime::enter();
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

/// Yields the processor (Go's `Gosched`): the goroutine goes to the back
/// of the run queue and the M schedules another.
///
/// Go always queues a yielding goroutine on the global queue. rt does so
/// only while that queue holds goroutines (they must not be overtaken);
/// when it is empty, the goroutine joins the tail of its own P's local
/// queue instead, behind everything queued there, without `sched.lock`.
/// Nothing waits longer for it: a P whose local queue is empty would take
/// the goroutine straight back from the global queue (Go's `findrunnable`
/// steals only when both are empty), and a thief may still steal it from
/// the local queue. On a 2-core Xeon VM, the bench's `yield` (two
/// goroutines calling `gosched` in a loop) spent 41% of its samples at
/// GOMAXPROCS=2 in the contended `sched.lock`, two lock rounds per yield.
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
    // SAFETY: on g0; gp saved, now runnable and in no queue.
    unsafe {
        dropg(mp, gp, GRUNNING, GRUNNABLE);
        if SCHED.runqsize.load(Ordering::Relaxed) == 0 {
            runqput((*mp).p.load(Ordering::Relaxed), gp, false);
        } else {
            globrunqput(gp);
        }
    }
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
    crate::sysmon::wanted();
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
