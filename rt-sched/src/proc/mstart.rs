//! M lifecycle (Go's `mcommoninit`, `newm`, `mstart`, `startm`, `stopm`,
//! `handoffp`, `startlockedm`/`stoplockedm`) and the hooks an M runs on its
//! own thread before scheduling.

use super::*;
use core::sync::atomic::AtomicBool;
use rt_sys::hook::Hook;

/// Registers a new M (Go's `mcommoninit`): id (`id >= 0` given, else the
/// next one), the thread cap, a non-zero PRNG state, a 32 KiB `gsignal`
/// stack, and the `allm` list.
///
/// # Safety
/// `mp` must be live and not yet registered.
pub unsafe fn mcommoninit(mp: *mut M, id: i64) {
    let mut s = SCHED.lock();
    // SAFETY: mp exclusively ours until published on allm.
    unsafe {
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
            drop(s);
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
    drop(s);
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
pub(crate) fn set_max_threads(n: i32) -> i32 {
    core::mem::replace(&mut SCHED.lock().maxmcount, n)
}

/// Puts the calling M on the idle list.
///
/// # Safety
/// `mp` must be the caller's M, about to sleep.
unsafe fn mput(s: &mut SchedLocked, mp: *mut M) {
    // SAFETY: mp is ours (caller); the list is guarded by `s`.
    unsafe {
        if CHECKS && (*mp).spinning.load(Ordering::Relaxed) {
            rt_sys::throw("mput: spinning M going idle");
        }
        (*mp).schedlink = s.midle;
        s.midle = mp;
        s.nmidle += 1;
    }
}

/// Takes an idle M.
fn mget(s: &mut SchedLocked) -> *mut M {
    let mp = s.midle;
    if !mp.is_null() {
        // SAFETY: Ms on the idle list are live (Ms are never freed), and
        // their `schedlink` is guarded by `s`.
        s.midle = unsafe { (*mp).schedlink };
        s.nmidle -= 1;
    }
    mp
}

/// Hands `pp` to an idle M, if there is one, to run the preempted `gp`
/// (queued on the global run queue, counted as waiting for its locked M
/// like `stoplockedm`'s; none when null) and whatever else is runnable;
/// false, with nothing changed, when no M is idle. Never creates a thread:
/// see [`CREATOR`]. When it took the last idle M, the creator makes a
/// spare one.
pub(crate) fn startm_idle(pp: *mut P, gp: *mut G) -> bool {
    let mut s = SCHED.lock();
    let nmp = mget(&mut s);
    if nmp.is_null() {
        return false;
    }
    if !gp.is_null() {
        // Undone by `startlockedm` when it hands gp's M a P.
        s.nmidlelocked += 1;
        s.runq.push_back(gp);
        s.runqsize_add(1);
    }
    let last = s.midle.is_null();
    drop(s);
    SchedStats::bump(&SCHED.stats.wakeups);
    // SAFETY: nmp is idle, asleep on its note; we own its wake-up fields.
    unsafe {
        (*nmp).spinning.store(false, Ordering::Relaxed);
        (*nmp).nextp.store(pp, Ordering::Release);
        (*nmp).park.wakeup();
    }
    if last {
        want_spare_m();
    }
    true
}

/// Queues `gp`, stopped in place and waiting on its locked M for a P, on
/// the global run queue, and wakes an idle P's M if there is one: whoever
/// schedules `gp` hands its M a P (`startlockedm`).
pub(crate) fn queue_for_locked_m(gp: *mut G) {
    {
        let mut s = SCHED.lock();
        // Undone by `startlockedm` when it hands gp's M a P.
        s.nmidlelocked += 1;
        s.runq.push_back(gp);
        s.runqsize_add(1);
    }
    wakep();
}

/// With no M idle to run `pp` (sysmon, for `gp` just suspended in place):
/// hands `pp` straight to the M of the first goroutine that waits for its
/// locked M — in `pp`'s local queue, else in the global queue — queueing
/// `gp` in its stead, or back to `gp`'s own M when none waits. A
/// goroutine suspended while it holds a lock the creator needs is such a
/// waiter, so it gets a P even while no thread can be created. Asks the
/// creator for a spare M for the next time. With `gp` null (a P given up
/// in the kernel), returns false, with nothing changed, when none waits.
///
/// # Safety
/// `pp` is detached from every M and owned by the caller; `gp` is null or
/// suspended in place on its locked M, in no queue.
pub(crate) unsafe fn run_locked_waiter(pp: *mut P, gp: *mut G) -> bool {
    want_spare_m();
    // SAFETY: the caller owns pp (no M holds it), so it is the local
    // queue's only owner; Gs in a run queue are live.
    let mut x = unsafe {
        let mut local = (*pp).runq.local();
        let mut rest = Vec::new();
        let mut x: *mut G = null_mut();
        loop {
            let g = local.pop();
            if g.is_null() {
                break;
            }
            if x.is_null() && !(*g).lockedm.is_null() {
                x = g;
            } else {
                rest.push(g);
            }
        }
        for g in rest {
            local.push(g, &mut ToGlobal);
        }
        x
    };
    let mut s = SCHED.lock();
    if x.is_null() {
        // SAFETY: Gs in the global queue are live.
        x = s.runq.take_first(|g| unsafe { !(*g).lockedm.is_null() });
        if !x.is_null() {
            s.runqsize_add(-1);
        }
    }
    if x.is_null() {
        if gp.is_null() {
            return false;
        }
        x = gp;
    } else if gp.is_null() {
        // x's wait for its M ends here, as in `startlockedm`.
        s.nmidlelocked -= 1;
    } else {
        // gp waits for its M like x did (the count `stoplockedm` and
        // `service` keep for checkdead moves from x to gp).
        s.runq.push_back(gp);
        s.runqsize_add(1);
    }
    drop(s);
    // The hand-over wakes x's M, as `startlockedm` does.
    // SAFETY: x is locked to an M parked waiting for a P (stoplockedm or its preemption handler).
    unsafe {
        let lm = (*x).lockedm;
        (*lm).nextp.store(pp, Ordering::Release);
        (*lm).park.wakeup();
    }
    true
}

/// Runs some M with `pp` (or any idle P), waking an idle M or creating one.
/// With `spinning`, the caller already counted the M in `nmspinning`.
pub(crate) fn startm(pp: *mut P, spinning: bool) {
    let mut s = SCHED.lock();
    let mut pp = pp;
    if pp.is_null() {
        pp = pidleget(&mut s);
        if pp.is_null() {
            drop(s);
            if spinning {
                SCHED.nmspinning.fetch_sub(1, Ordering::AcqRel);
            }
            return;
        }
    }
    let nmp = mget(&mut s);
    drop(s);
    SchedStats::bump(&SCHED.stats.wakeups);
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

/// glibc's internal signals, SIGCANCEL (32) and SIGSETXID (33), as a
/// signal mask.
const GLIBC_SIGNALS: u64 = 1 << (32 - 1) | 1 << (33 - 1);

/// Thread creation on sysmon's behalf (Go's template thread).
///
/// sysmon must never wait for a lock that a goroutine suspended by a
/// preemption signal may hold: the goroutine holds it until sysmon gives
/// its M a P again. `pthread_create` takes glibc's stack cache lock, which
/// `setuid` and friends hold while they wait for every thread, and which
/// `pthread_create` and thread exit hold briefly: a goroutine suspended
/// inside one of those made a sysmon that creates an M wait for ever. So
/// once preemption may suspend anyone, sysmon asks this thread (a plain
/// thread, not an M, with every signal but glibc's blocked) to create its
/// Ms, and places a suspended goroutine's P only on an idle M or on the M
/// of a goroutine that waits for its locked M ([`run_locked_waiter`]),
/// while this thread makes a spare.
static CREATOR: Note = Note::new();
/// Set once the creator thread was started.
static CREATOR_STARTED: AtomicBool = AtomicBool::new(false);
/// Ms the creator is asked for: (P to run or 0, spinning).
static CREATE: std::sync::Mutex<Vec<(usize, bool)>> = std::sync::Mutex::new(Vec::new());
/// A spare idle M was asked for and not made yet.
static SPARE_WANTED: AtomicBool = AtomicBool::new(false);

/// Starts the creator thread, once, with a spare M to make. sysmon calls it
/// before it first asks for a preemption, so the `pthread_create` here
/// cannot meet a suspended goroutine.
pub(crate) fn start_creator() {
    if CREATOR_STARTED.load(Ordering::Relaxed) {
        return;
    }
    // Its signals stay blocked (but glibc's) for life: it inherits them.
    let old = rt_sys::sigprocmask(libc::SIG_SETMASK, Some(!GLIBC_SIGNALS));
    let r = std::thread::Builder::new()
        .name("rt-newm".into())
        .stack_size(G0_STACK)
        .spawn(creator);
    rt_sys::sigprocmask(libc::SIG_SETMASK, Some(old));
    if let Err(e) = r {
        rt_sys::fatal!("newosproc: runtime: failed to create the thread creator ({e})");
    }
    CREATOR_STARTED.store(true, Ordering::Release);
    want_spare_m();
}

/// Asks the creator for an idle M (at most one pending request).
fn want_spare_m() {
    if !SPARE_WANTED.swap(true, Ordering::AcqRel) {
        creator_request(0, false);
    }
}

fn creator_request(pp: usize, spinning: bool) {
    CREATE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((pp, spinning));
    CREATOR.wakeup();
}

/// The creator thread's loop: the Ms asked for, one after the other.
fn creator() {
    loop {
        CREATOR.sleep();
        CREATOR.clear();
        let reqs = core::mem::take(&mut *CREATE.lock().unwrap_or_else(|e| e.into_inner()));
        for (pp, spinning) in reqs {
            if pp == 0 {
                SPARE_WANTED.store(false, Ordering::Release);
                // A spare is an extra: never past the thread limit.
                if SCHED.mcount.load(Ordering::Relaxed) >= SCHED.lock().maxmcount {
                    continue;
                }
            }
            newm(pp as *mut P, spinning, None);
        }
    }
}

/// True when the caller is sysmon and the creator runs: sysmon's `newm`
/// goes there.
fn on_sysmon_with_creator() -> bool {
    let mp = current_m();
    // SAFETY: our own M, when there is one; `system` is set once.
    !mp.is_null() && unsafe { (*mp).system } && CREATOR_STARTED.load(Ordering::Acquire)
}

/// Creates an M on a new OS thread that will run `pp` (Go's `newm`), or
/// `start` without a P. On sysmon, once the creator runs, it is asked to
/// do this instead.
pub(crate) fn newm(pp: *mut P, spinning: bool, start: Option<fn()>) {
    if start.is_none() && on_sysmon_with_creator() {
        creator_request(pp as usize, spinning);
        return;
    }
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
            let mut s = SCHED.lock();
            s.nmsys += 1;
            checkdead(s);
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
    // stack (Go's newosproc does the same around clone). Except glibc's own
    // signals, as its pthread_sigmask would leave them: their handlers are
    // glibc's and run on any stack, and SIGSETXID must get through here —
    // `setuid` and friends hold the lock pthread_create takes to allocate
    // the thread's stack while they wait for every thread to take that
    // signal, so blocking it while creating a thread deadlocks with them.
    let old = rt_sys::sigprocmask(libc::SIG_SETMASK, Some(!GLIBC_SIGNALS));
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
    rt_sys::sigprocmask(libc::SIG_SETMASK, Some(old));
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
static MINIT_HOOK: Hook<fn(*mut M)> = Hook::new();
/// Hook run once on m0 before its first `schedule` (`mstartm0`: `initsig`).
static MSTARTM0_HOOK: Hook<fn()> = Hook::new();

/// Installs the per-M start hook (`minitSignals`), called with the M.
pub fn set_minit_hook(f: fn(*mut M)) {
    MINIT_HOOK.set(f);
}

/// Installs the hook m0 runs before its first `schedule` (`initsig`).
pub fn set_mstartm0_hook(f: fn()) {
    MSTARTM0_HOOK.set(f);
}

fn run_minit_hook(mp: *mut M) {
    if let Some(f) = MINIT_HOOK.get() {
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
        if let Some(f) = MSTARTM0_HOOK.get() {
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
pub(crate) fn stopm() {
    let mp = current_m();
    SchedStats::bump(&SCHED.stats.parks);
    // How long to sleep for a timer that is already due while no P is free
    // to run it: doubling from 20 µs to 1 ms, instead of waking at once
    // again and again while every P is busy (a goroutine that runs long).
    let mut overdue_ns: i64 = 20_000;
    loop {
        let mut s = SCHED.lock();
        // SAFETY: mp ours.
        unsafe {
            (*mp).park.clear();
            mput(&mut s, mp);
        }
        checkdead(s);
        // SAFETY: mp ours.
        unsafe { (*mp).blocked.store(true, Ordering::Relaxed) };
        let next = next_timer();
        // SAFETY: mp ours.
        let woken = unsafe {
            match next {
                Some(when) => {
                    let left = when - rt_sys::nanotime();
                    if left > 0 {
                        (*mp).park.sleep_timeout(left)
                    } else {
                        let woken = (*mp).park.sleep_timeout(overdue_ns);
                        overdue_ns = (overdue_ns * 2).min(1_000_000);
                        woken
                    }
                }
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
        let mut s = SCHED.lock();
        // SAFETY: the idle list's Ms are live and their links guarded by
        // `s`; mp is ours.
        unsafe {
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
                drop(s);
                (*mp).park.sleep();
                (*mp).park.clear();
                let pp = (*mp).nextp.swap(null_mut(), Ordering::Acquire);
                acquirep(pp);
                return;
            }
            let pp = pidleget(&mut s);
            drop(s);
            if !pp.is_null() {
                acquirep(pp);
                return;
            }
        }
    }
}

/// Parks an M whose locked goroutine is not running, after handing its P
/// to someone else (Go's `stoplockedm`); returns holding the P that
/// `startlockedm` handed over with the goroutine.
pub(crate) fn stoplockedm() {
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
        let mut s = SCHED.lock();
        // Undone by the waker (`startlockedm`) under the lock, before the
        // wake-up, so checkdead never sees a handed-over goroutine as
        // nobody's (Go's incidlelocked).
        s.nmidlelocked += 1;
        checkdead(s);
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
pub(crate) fn startlockedm(gp: *mut G) {
    // SAFETY: gp is runnable and ours; its M is parked in stoplockedm.
    unsafe {
        let lm = (*gp).lockedm;
        SCHED.lock().nmidlelocked -= 1;
        let pp = releasep();
        (*lm).nextp.store(pp, Ordering::Release);
        (*lm).park.wakeup();
    }
    stopm();
}

/// Gives a P that its M no longer uses to whoever can use it (Go's
/// `handoffp`): an M if there is work, else the idle list.
pub(crate) fn handoffp(pp: *mut P) {
    // SAFETY: pp was just released by the caller and is ours to place.
    let has_work = unsafe { !runqempty(pp) } || SCHED.runqsize.load(Ordering::Relaxed) > 0;
    // A P with timers needs an M that knows when they are due: the idle
    // Ms computed their sleep before this P's timers were added (a locked
    // goroutine that sleeps hands its P off right after adding its timer),
    // so one is started to take the P, find nothing to run yet, and sleep
    // until the earliest timer (Go's handoffp wakes the poller for them).
    if has_work {
        startm(pp, false);
        return;
    }
    let mut s = SCHED.lock();
    if SCHED.gcwaiting.load(Ordering::Acquire) {
        // SAFETY: pp is ours; the stopper counts it as stopped.
        unsafe { set_pstatus(pp, PIDLE, PGCSTOP) };
        if SCHED.stopwait.fetch_sub(1, Ordering::AcqRel) == 1 {
            SCHED.stopnote.wakeup();
        }
        return;
    }
    // SAFETY: pp is ours (caller); the heap has its own lock.
    if unsafe { !(*pp).timers.is_empty() } {
        drop(s);
        startm(pp, false);
        return;
    }
    // SAFETY: pp is idle and ours.
    unsafe { pidleput(&mut s, pp) };
}
