//! Blocking calls and thread locking (Go's `entersyscallblock`,
//! `exitsyscall`, `LockOSThread`).

use super::*;

/// Wires the calling goroutine to its current OS thread (Go's
/// `runtime.LockOSThread`): until as many `unlock_os_thread` calls, it runs
/// only on this M, and this M runs nothing else. Nests. A goroutine that
/// exits while locked releases the thread.
pub fn lock_os_thread() {
    let _in = crate::preempt::InRuntime::enter();
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
    let _in = crate::preempt::InRuntime::enter();
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

/// Before a call that blocks the OS thread (a blocking system call, a futex
/// wait in a non-runtime primitive): the goroutine keeps its M but gives up
/// its P, which goes to another M if there is work (Go's
/// `entersyscallblock`). Returns false (and does nothing) when not on a
/// goroutine holding a P.
pub(crate) fn entersyscallblock(regs: rt_traceback::Regs) -> bool {
    let gp = current_g();
    let mp = current_m();
    // SAFETY: reading our own M.
    if gp.is_null() || unsafe { (*mp).p.load(Ordering::Relaxed) }.is_null() {
        return false;
    }
    crate::sysmon::wanted();
    // SAFETY: gp runs on mp, which holds a P.
    unsafe {
        (*gp).syscallregs = regs;
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
pub(crate) fn exitsyscall() {
    let gp = current_g();
    if gp.is_null() {
        return;
    }
    let pp = {
        let mut s = SCHED.lock();
        if SCHED.gcwaiting.load(Ordering::Acquire) {
            null_mut()
        } else {
            pidleget(&mut s)
        }
    };
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
        let mut s = SCHED.lock();
        let pp = if SCHED.gcwaiting.load(Ordering::Acquire) {
            null_mut()
        } else {
            pidleget(&mut s)
        };
        if pp.is_null() {
            // Under the lock, so an M going idle sees it (findrunnable
            // re-checks the global queue under this lock before parking).
            s.runq.push_back(gp);
            s.runqsize_add(1);
        }
        drop(s);
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
