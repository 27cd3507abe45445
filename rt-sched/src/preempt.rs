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
//! A goroutine the signal finds blocked in the kernel (a `read(2)` on a
//! pipe, a `std::sync::Mutex` waiting in `FUTEX_WAIT`, a sleep: see
//! `arch::blocked_in_syscall`) is not suspended: it gives up its P and
//! goes back to the kernel without one (Go's `entersyscall` plus sysmon's
//! `retake` of a P in a system call, done at once by the handler). The
//! handler detaches the P lock-free and puts it on a list for sysmon,
//! which hands it off (`handoffp`); the call restarts, or returns `EINTR`
//! for calls the kernel never restarts (so, as in Go, code that calls raw
//! libc must retry on `EINTR`). The goroutine, now `GSYSCALL` on a P-less
//! M, takes a P again at its next runtime entry ([`reacquire`], Go's
//! `exitsyscall`): an idle one at once, else it waits on its own M, as a
//! suspended goroutine does. One that keeps running user code without a
//! P instead is found by sysmon through its thread's user CPU clock and
//! suspended in place once it has used the preemption interval.
//!
//! sysmon finds blocked Ms without any help from the goroutine: a P whose
//! `schedtick` and whose M's thread CPU clock both stood still between two
//! of its looks, while other work waits for a P (Go's rule for Ps in
//! system calls), gets a probe ([`REQ_PROBE`]): a SIGURG that hands off
//! the P if the thread is in a blocking call and does nothing otherwise.
//! `blocking()` stays the cheap explicit path: no signal, no wait for
//! sysmon.

use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, Ordering};

use crate::proc::{current_m, for_each_p, getg, gs_tls_in_use};
use crate::runtime2::*;

/// Preemption is on (`GODEBUG=asyncpreemptoff=1` turns it off).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Ms whose goroutine a handler suspended, waiting for sysmon.
static SERVICE: AtomicPtr<M> = AtomicPtr::new(null_mut());

/// Ps that goroutines blocked in the kernel gave up, for sysmon to hand
/// off (linked through `P::handofflink`). A P on it is held by nobody and
/// cannot be pushed twice.
static HANDOFF: AtomicPtr<P> = AtomicPtr::new(null_mut());

/// `M::preempt_req`: nothing asked.
pub(crate) const REQ_NONE: u8 = 0;
/// `M::preempt_req`: stop the goroutine (it ran for the interval, with a
/// P or without one); one blocked in the kernel gives up its P instead.
pub(crate) const REQ_PREEMPT: u8 = 1;
/// `M::preempt_req`: give up the P if blocked in the kernel, else nothing
/// (sysmon saw the thread's CPU clock stand still).
pub(crate) const REQ_PROBE: u8 = 2;
/// `M::preempt_req`: the goroutine ran the interval of user CPU time
/// without a P; it waits for one. Ignored if it has taken one back since
/// (and [`REQ_PREEMPT`], meant for a goroutine holding a P, is ignored by
/// one running without).
pub(crate) const REQ_PLESS: u8 = 3;

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
    /// Per P: the `schedtick` and the M's thread CPU time at the last look
    /// that found the tick unchanged (a probe needs both to stand still).
    still: Vec<Option<(u32, *mut M, i64)>>,
    /// Per M id: the hand-off generation and the thread's user CPU time
    /// when sysmon first saw it without a P.
    pless: Vec<(u32, i64)>,
    /// When sysmon last timed the P-less Ms.
    last_pless: i64,
    /// When sysmon last looked.
    last_look: i64,
}

/// A thread's CPU clock of `kind` ([`CPUCLOCK_SCHED`], [`CPUCLOCK_VIRT`])
/// in ns, or `None` when the thread has none (not started yet). The clock
/// id is the kernel's encoding for a thread's clock (`MAKE_THREAD_CPUCLOCK`
/// in linux/posix-timers.h: the complement of the tid, shifted by 3, the
/// per-thread bit 4 and the kind), the one `pthread_getcpuclockid` builds
/// for the scheduler clock.
///
/// # Safety
/// `mp` is a live M.
unsafe fn thread_cpu(mp: *mut M, kind: libc::clockid_t) -> Option<i64> {
    // SAFETY: caller contract; `procid` is set once by `minit`.
    let tid = unsafe { (*mp).procid.load(Ordering::Relaxed) };
    if tid == 0 {
        return None;
    }
    let clk = (!tid << 3) | 4 | kind;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: an out-pointer to a local; a bad clock id only fails.
    if unsafe { libc::clock_gettime(clk, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
}

/// True unless thread `tid` is known not to be asleep in the kernel: the
/// state in `/proc/self/task/<tid>/stat` is `S` (an interruptible wait),
/// or the file cannot be read. Without allocating (sysmon must not wait
/// for an allocator lock a suspended goroutine may hold).
fn thread_sleeps(tid: i32) -> bool {
    const PREFIX: &[u8] = b"/proc/self/task/";
    const SUFFIX: &[u8] = b"/stat\0";
    let mut path = [0u8; 48];
    path[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 12];
    let mut n = 0;
    let mut t = tid.unsigned_abs();
    loop {
        digits[n] = b'0' + (t % 10) as u8;
        n += 1;
        t /= 10;
        if t == 0 {
            break;
        }
    }
    let mut at = PREFIX.len();
    for i in (0..n).rev() {
        path[at] = digits[i];
        at += 1;
    }
    path[at..at + SUFFIX.len()].copy_from_slice(SUFFIX);
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return true;
    }
    let mut buf = [0u8; 512];
    // SAFETY: `buf` is valid for its length; `fd` is ours and closed once.
    let got = unsafe {
        let got = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        got
    };
    if got <= 0 {
        return true;
    }
    let stat = &buf[..got as usize];
    // `tid (comm) S …`: the name may hold spaces and parentheses, so the
    // state follows the last `)`.
    match stat.iter().rposition(|&b| b == b')') {
        Some(i) if i + 2 < stat.len() => stat[i + 2] == b'S',
        _ => true,
    }
}

/// The thread clock of all the time it ran (`sum_exec_runtime`, exact):
/// it stands still exactly while the thread waits.
const CPUCLOCK_SCHED: libc::clockid_t = 2;
/// The thread clock of its time in user mode (sampled at each tick): what
/// it spent running code that would need a P, system calls left out.
const CPUCLOCK_VIRT: libc::clockid_t = 1;

/// Whether `mp` runs its user goroutine outside the runtime, as far as
/// another thread can tell from its TLS block (a hint: the M's own thread
/// changes these words with single instructions). A thread asleep in a
/// runtime lock or on g0 is not worth a probe: the handler would do
/// nothing.
///
/// # Safety
/// `mp` is a live M.
unsafe fn in_user_code(mp: *mut M) -> bool {
    use core::sync::atomic::AtomicUsize;
    use rt_sys::tls::{LOCKS_PENDING, TLS_G, TLS_LOCKS};
    // SAFETY: caller contract; the words are usize-aligned and live as
    // long as the M, and an atomic view of them reads whole values.
    unsafe {
        let word = |i: usize| {
            (*(core::ptr::addr_of!((*mp).tls[i]) as *const AtomicUsize)).load(Ordering::Relaxed)
        };
        let g = word(TLS_G) as *mut G;
        let locks = word(TLS_LOCKS) as u32 & !LOCKS_PENDING;
        !g.is_null() && g == (*mp).curg && locks == 0
    }
}

/// True when `pp`'s M (if any) runs a goroutine's own code right now.
fn runs_user_code(pp: *mut P) -> bool {
    // SAFETY: Ps and Ms are never freed; `m` is an atomic.
    unsafe {
        let mp = (*pp).m.load(Ordering::Acquire);
        !mp.is_null() && !(*mp).system && in_user_code(mp)
    }
}

/// Work that waits for a P other than `pp`'s running goroutine: Go's
/// condition for taking a P from a system call early (its run queue is
/// not empty, or no P is idle and no M looks for work).
///
/// # Safety
/// `pp` is a live P.
unsafe fn work_waiting(pp: *mut P) -> bool {
    // SAFETY: caller contract; the queue's length is read through its
    // stealer handle, as any thread may.
    let local = unsafe { !crate::runq::runqempty(pp) };
    local
        || SCHED.runqsize.load(Ordering::Relaxed) > 0
        || (SCHED.npidle.load(Ordering::Relaxed) == 0
            && SCHED.nmspinning.load(Ordering::Relaxed) == 0)
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
            if self.still.len() <= id {
                self.still.resize(id + 1, None);
            }
            if tick == last && now - since < force {
                // The same goroutine since the last look: blocked in the
                // kernel if its thread used no CPU since the look before.
                // SAFETY: Ps and Ms are never freed.
                asked |= unsafe { self.probe(pp, id, tick) };
            } else {
                self.still[id] = None;
            }
            if tick != last {
                // It changed since the last look: the goroutine may have
                // started right after it, so time it from then.
                self.seen[id] = (tick, self.last_look.max(now - force / 2));
            } else if now - since >= force {
                self.seen[id].1 = now;
                crate::proc::start_creator();
                asked |= preemptone(pp);
            } else if now - since >= force / 2 && runs_user_code(pp) {
                // Likely to be preempted soon: have the creator (and a
                // spare M) ready by then. Not for a P whose M runs runtime
                // code on g0 (the boot, before the main goroutine): that
                // is never preempted.
                crate::proc::start_creator();
            }
            let left = self.seen[id].1 + force - now;
            next = Some(next.map_or(left, |n: i64| n.min(left)));
        });
        self.last_look = now;
        if let Some(left) = self.time_pless(now, force) {
            asked = true;
            next = Some(next.map_or(left, |n: i64| n.min(left)));
        } else if ANY_PLESS.load(Ordering::Relaxed) {
            let left = force / 2;
            next = Some(next.map_or(left, |n: i64| n.min(left)));
        }
        (next, asked)
    }

    /// A look at running P `pp` (index `id`) whose `schedtick` is `tick`
    /// as at the last look: probes its M when its thread CPU clock stood
    /// still too and other work waits. True when it sent a probe.
    ///
    /// # Safety
    /// `pp` is a live P.
    unsafe fn probe(&mut self, pp: *mut P, id: usize, tick: u32) -> bool {
        // SAFETY: caller contract; Ms are never freed.
        unsafe {
            let mp = (*pp).m.load(Ordering::Acquire);
            if mp.is_null() || (*mp).system || !work_waiting(pp) || !in_user_code(mp) {
                self.still[id] = None;
                return false;
            }
            let Some(cpu) = thread_cpu(mp, CPUCLOCK_SCHED) else {
                return false;
            };
            let was = self.still[id].replace((tick, mp, cpu));
            if was != Some((tick, mp, cpu)) {
                return false;
            }
            self.still[id] = None;
            // A thread that waits for a CPU (more runnable threads than
            // cores) has a still clock too; probing it costs a signal and
            // keeps sysmon at its fastest pace for nothing.
            if !thread_sleeps((*mp).procid.load(Ordering::Relaxed)) {
                return false;
            }
            // The P it may give up is handed off from here: thread
            // creation goes through the creator from now on.
            crate::proc::start_creator();
            signal(mp, REQ_PROBE)
        }
    }

    /// Times the Ms running goroutines without a P (at most once a
    /// millisecond) and asks each that used the interval of user CPU time
    /// since it gave up its P to wait for one. Time in system calls does
    /// not count, as in Go, where only code between calls needs a P: a
    /// goroutine that goes from one blocking call to the next keeps running
    /// without one. Returns when to look again when it
    /// asked, `None` otherwise.
    fn time_pless(&mut self, now: i64, force: i64) -> Option<i64> {
        if !ANY_PLESS.load(Ordering::Relaxed) || now - self.last_pless < 1_000_000 {
            return None;
        }
        self.last_pless = now;
        // Cleared before the walk: a hand-off during it either shows its M
        // to the walk or sets the flag again (it sets `detached` first).
        ANY_PLESS.store(false, Ordering::SeqCst);
        let mut any = false;
        let mut asked = false;
        let mut mp = crate::runtime2::ALLM.load(Ordering::Acquire);
        while !mp.is_null() {
            // SAFETY: Ms are never freed; the fields read are atomics or
            // set once.
            unsafe {
                if (*mp).detached.load(Ordering::SeqCst) {
                    any = true;
                    let id = (*mp).id as usize;
                    if self.pless.len() <= id {
                        self.pless.resize(id + 1, (u32::MAX, 0));
                    }
                    let gen = (*mp).detachgen.load(Ordering::Relaxed);
                    if let Some(cpu) = thread_cpu(mp, CPUCLOCK_VIRT) {
                        let (g, base) = self.pless[id];
                        if g != gen {
                            self.pless[id] = (gen, cpu);
                        } else if cpu - base >= force {
                            self.pless[id].1 = cpu;
                            asked |= signal(mp, REQ_PLESS);
                        }
                    }
                }
                mp = (*mp).alllink;
            }
        }
        if any {
            ANY_PLESS.store(true, Ordering::Relaxed);
        }
        asked.then_some(force / 2)
    }
}

/// Set when a goroutine gives up its P in the kernel; cleared by sysmon
/// when it finds no P-less M, so it walks the Ms only while some may be.
static ANY_PLESS: AtomicBool = AtomicBool::new(false);

/// Whether a goroutine may be running without a P (see [`ANY_PLESS`]).
pub(crate) fn any_pless() -> bool {
    ANY_PLESS.load(Ordering::SeqCst)
}

/// Sends `req` to `mp` with SIGURG (a probe never replaces a pending
/// preemption); false when there is no thread to signal.
///
/// # Safety
/// `mp` is a live M.
unsafe fn signal(mp: *mut M, req: u8) -> bool {
    // SAFETY: caller contract; the fields read are atomics.
    unsafe {
        let tid = (*mp).procid.load(Ordering::Relaxed);
        if tid == 0 {
            return false;
        }
        if req == REQ_PROBE {
            if (*mp)
                .preempt_req
                .compare_exchange(REQ_NONE, REQ_PROBE, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                return false;
            }
        } else {
            (*mp).preempt_req.store(req, Ordering::Release);
        }
        libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGURG);
        true
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
        signal(mp, REQ_PREEMPT)
    }
}

/// The SIGURG handler's part (see the module docs): `regs` is the
/// interrupted state, `sigmask` the signal mask the interrupted code ran
/// with, `ax` its rax. Lock-free; allocates nothing.
pub fn on_signal(regs: rt_traceback::Regs, sigmask: u64, ax: usize) {
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
    let req = unsafe { (*mp).preempt_req.swap(REQ_NONE, Ordering::AcqRel) };
    if req == REQ_NONE {
        return;
    }
    let gp = getg();
    // SAFETY: our own M and the goroutine it runs; the handler runs on the
    // same thread, so the interrupted code is frozen while we look.
    unsafe {
        if !user_goroutine(mp, gp) || regs.sp < (*gp).stack.lo || regs.sp >= (*gp).stack.hi {
            return;
        }
        let in_runtime = rt_sys::tls::runtime_locks() & !rt_sys::tls::LOCKS_PENDING != 0;
        if (*mp).detached.load(Ordering::Relaxed) {
            // Running without a P since a blocking call: sysmon saw it use
            // the interval of CPU time. Back in the kernel, it needs none.
            if req != REQ_PLESS
                || (*gp).atomicstatus.load(Ordering::Relaxed) != GSYSCALL
                || crate::arch::blocked_in_syscall(regs.pc, ax)
            {
                return;
            }
            if in_runtime {
                rt_sys::tls::set_preemption_pending();
                return;
            }
            wait_detached(mp, gp, &regs, sigmask);
            return;
        }
        if req == REQ_PLESS || !running_user_code(mp, gp) {
            return;
        }
        if in_runtime {
            // Inside the runtime: the section's exit takes it.
            if req == REQ_PREEMPT {
                rt_sys::tls::set_preemption_pending();
            }
            return;
        }
        if crate::arch::blocked_in_syscall(regs.pc, ax) {
            handoff(mp, gp, &regs);
        } else if req == REQ_PREEMPT {
            suspend(mp, gp, &regs, Some(sigmask));
        }
    }
}

/// True when `mp` (non-null) runs the user goroutine `gp` on it.
///
/// # Safety
/// `mp` is the calling thread's M and `gp` the goroutine slot's value.
unsafe fn user_goroutine(mp: *mut M, gp: *mut G) -> bool {
    // SAFETY: caller contract.
    unsafe { !gp.is_null() && (*mp).curg == gp && !(*gp).system && (*gp).goid != 0 }
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
        user_goroutine(mp, gp)
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
        if (*mp).detached.load(Ordering::Relaxed) && user_goroutine(mp, gp) {
            reacquire(mp);
            return;
        }
        if !running_user_code(mp, gp) {
            return;
        }
        let regs = rt_traceback::Regs::here();
        suspend(mp, gp, &regs, None);
    }
}

/// The handler found `gp` blocked in the kernel: it gives up its P and
/// goes back to the call without one (see the module docs). Lock-free.
///
/// # Safety
/// `mp` is the calling thread's M, running `gp` with a P, outside every
/// runtime section.
unsafe fn handoff(mp: *mut M, gp: *mut G, regs: &rt_traceback::Regs) {
    // SAFETY: caller contract: these fields are ours to change.
    unsafe {
        (*gp).syscallregs = *regs;
        casgstatus(gp, GRUNNING, GSYSCALL);
        // The thread keeps the P's allocator cache (the call may be a wait
        // for a heap lock inside an allocation); the P gets the M's spare,
        // or sysmon gives it a fresh one.
        let pp = (*mp).p.swap(null_mut(), Ordering::AcqRel);
        (*pp).m.store(null_mut(), Ordering::Relaxed);
        (*pp).syscalltick.fetch_add(1, Ordering::Relaxed);
        set_pstatus(pp, PRUNNING, PIDLE);
        (*pp).handoffcache.store(
            (*mp).spare.swap(null_mut(), Ordering::AcqRel),
            Ordering::Relaxed,
        );
        (*mp).detachgen.fetch_add(1, Ordering::Relaxed);
        (*mp).detached.store(true, Ordering::SeqCst);
        ANY_PLESS.store(true, Ordering::SeqCst);
        push_for_sysmon(&HANDOFF, pp, &(*pp).handofflink);
    }
}

/// Pushes `node` on one of sysmon's lock-free lists (`head`, linked
/// through `link`, the node's own link field) and wakes sysmon, which takes
/// the whole list at once. Async-signal-safe.
fn push_for_sysmon<T>(head: &AtomicPtr<T>, node: *mut T, link: &AtomicPtr<T>) {
    let mut h = head.load(Ordering::Acquire);
    loop {
        link.store(h, Ordering::Relaxed);
        match head.compare_exchange(h, node, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(now) => h = now,
        }
    }
    crate::sysmon::wake();
}

/// The check at each runtime entry that needs a P (parking, spawning,
/// switching, resizing): a goroutine that gave up its P in the kernel
/// takes one again first ([`reacquire`]). One load on the common path.
/// True when the M was detached (it may still be P-less, see
/// [`reacquire_for_p`]).
#[inline(always)]
pub(crate) fn reacquire_if_detached(mp: *mut M) -> bool {
    // SAFETY: a non-null `mp` is the calling thread's M.
    let detached = !mp.is_null() && unsafe { (*mp).detached.load(Ordering::Relaxed) };
    if detached {
        reacquire_at_entry(mp);
    }
    detached
}

/// [`reacquire_if_detached`] for an entry that goes on with a P: all but a
/// park. With runtime locks held [`reacquire_at_entry`] may leave the M
/// without one, which only a park handles (see [`park_ok_pless`]); the
/// self-checks stop any other entry that would go on P-less.
pub(crate) fn reacquire_for_p(mp: *mut M) {
    // SAFETY: a detached `mp` is the calling thread's M.
    if reacquire_if_detached(mp) && CHECKS && unsafe { (*mp).p.load(Ordering::Relaxed) }.is_null() {
        rt_sys::throw("runtime: a runtime entry without a P after a hand-off");
    }
}

/// True when an `mcall` of `f` may run on an M that was detached and may
/// have been left P-less by [`reacquire_at_entry`]: only a park, whose
/// unlock runs on g0 and whose `schedule` stops the M until it is handed a
/// P. (An M in a blocking call, `exitsyscall`, is P-less by design and was
/// never detached.)
pub(crate) fn park_ok_pless(mp: *mut M, is_park: bool) -> bool {
    // SAFETY: `mp` is the calling thread's M.
    is_park || unsafe { !(*mp).p.load(Ordering::Relaxed).is_null() }
}

#[cold]
#[inline(never)]
fn reacquire_at_entry(mp: *mut M) {
    // SAFETY: a detached M is a goroutine thread with its GS block.
    if unsafe { rt_sys::tls::runtime_locks() } & !rt_sys::tls::LOCKS_PENDING == 0 {
        reacquire(mp);
        return;
    }
    // A park with runtime locks held (a channel's, a select's): waiting
    // here for a P could wait on the M that holds the only P while it
    // waits for one of these locks. Take an idle P if there is one, else
    // park without one: the unlock runs on g0 as always, and `schedule`
    // stops the P-less M until it is handed a P.
    let gp = getg();
    // SAFETY: `mp` is ours and runs `gp`, P-less since the hand-off; the
    // locks held defer any preemption signal.
    unsafe {
        if !(*mp).detached.swap(false, Ordering::Relaxed) {
            return;
        }
        let pp = idle_p();
        casgstatus(gp, GSYSCALL, GRUNNING);
        if !pp.is_null() {
            take_p(mp, pp);
        }
    }
}

/// An idle P for a goroutine coming back from the kernel (Go's
/// `exitsyscall` fast path), or null (none idle, or the world is stopping).
fn idle_p() -> *mut P {
    let mut s = SCHED.lock();
    if SCHED.gcwaiting.load(Ordering::Acquire) {
        null_mut()
    } else {
        crate::proc::pidleget(&mut s)
    }
}

/// Go's `exitsyscall` for a call the handler detached: an idle P at once,
/// else the goroutine waits on its own M for one, as a suspended goroutine
/// does (it never moves to another thread here: the caller may be in the
/// middle of runtime code that read the M).
///
/// Never with a runtime lock held (see [`reacquire_at_entry`]).
#[cold]
#[inline(never)]
pub(crate) fn reacquire(mp: *mut M) {
    // A signal meanwhile only marks a preemption pending.
    let _in = InRuntime::enter();
    let gp = getg();
    // SAFETY: `mp` is ours and runs `gp`, P-less since the hand-off.
    unsafe {
        // Checked again inside the section: a signal between the caller's
        // look and the section's start may have made the goroutine wait
        // for a P in the handler and given it one.
        if !(*mp).detached.swap(false, Ordering::Relaxed) {
            return;
        }
        let pp = idle_p();
        if !pp.is_null() {
            take_p(mp, pp);
            casgstatus(gp, GSYSCALL, GRUNNING);
            return;
        }
        (*gp).preemptregs = rt_traceback::Regs::here();
        lock_to(mp, gp);
        casgstatus(gp, GSYSCALL, GPREEMPTED);
        (*mp).blocked.store(true, Ordering::Relaxed);
        crate::proc::queue_for_locked_m(gp);
        wait_for_p(mp, gp, None);
    }
}

/// The handler's wait for a P of a goroutine that ran too long without
/// one: sysmon queues it, and it waits on its own M like a suspended one.
///
/// # Safety
/// `mp` is the calling thread's M, P-less, running `gp` (`GSYSCALL`)
/// outside every runtime section.
unsafe fn wait_detached(mp: *mut M, gp: *mut G, regs: &rt_traceback::Regs, sigmask: u64) {
    // SAFETY: caller contract.
    unsafe {
        (*gp).preemptregs = *regs;
        lock_to(mp, gp);
        casgstatus(gp, GSYSCALL, GPREEMPTED);
        (*mp).detached.store(false, Ordering::Relaxed);
        (*mp).preempt_p.store(null_mut(), Ordering::Release);
        (*mp).blocked.store(true, Ordering::Relaxed);
        publish(mp);
        wait_for_p(mp, gp, Some(sigmask));
    }
}

/// Locks `gp` to `mp` for the wait, unless the user already did.
///
/// # Safety
/// `mp` runs `gp`, which is stopped in place.
unsafe fn lock_to(mp: *mut M, gp: *mut G) {
    // SAFETY: caller contract.
    unsafe {
        (*gp).preemptlocked = (*gp).lockedm.is_null();
        if (*gp).preemptlocked {
            (*gp).lockedm = mp;
            (*mp).lockedg.store(gp, Ordering::Relaxed);
        }
    }
}

/// Puts `mp` (waiting in its handler) on sysmon's list and wakes sysmon.
///
/// # Safety
/// `mp` is the calling thread's M, not on the list.
unsafe fn publish(mp: *mut M) {
    // SAFETY: caller contract: Ms are never freed.
    push_for_sysmon(&SERVICE, mp, unsafe { &(*mp).preemptlink });
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
        lock_to(mp, gp);
        casgstatus(gp, GRUNNING, GPREEMPTED);
        // Detach the P but leave the thread on the P's allocator cache:
        // the interrupted code may be inside an allocation. sysmon gives
        // the P a fresh cache before anyone else can run it.
        let pp = (*mp).p.swap(null_mut(), Ordering::AcqRel);
        (*pp).m.store(null_mut(), Ordering::Relaxed);
        set_pstatus(pp, PRUNNING, PIDLE);
        (*mp).preempt_p.store(pp, Ordering::Release);
        (*mp).blocked.store(true, Ordering::Relaxed);
        publish(mp);
        wait_for_p(mp, gp, sigmask);
    }
}

/// The wait of a goroutine stopped in place (`GPREEMPTED`, locked to its
/// M, queued or about to be): until whoever schedules it hands its M a P.
/// Then the M takes that P and the goroutine runs on.
///
/// # Safety
/// `mp` is the calling thread's M, P-less, running `gp` stopped in place.
unsafe fn wait_for_p(mp: *mut M, gp: *mut G, sigmask: Option<u64>) {
    // SAFETY: caller contract.
    unsafe {
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
        take_p(mp, next);
        casgstatus(gp, GPREEMPTED, GRUNNING);
        if (*gp).preemptlocked {
            (*gp).preemptlocked = false;
            (*gp).lockedm = null_mut();
            (*mp).lockedg.store(null_mut(), Ordering::Relaxed);
        }
    }
}

/// `acquirep`, except for the allocator cache: the thread keeps the one it
/// was using (it may be inside an allocation on it), which becomes the new
/// P's; the P's own, unused since its last M let it go, is set aside for
/// sysmon's next detached P. So caches are traded, never created per
/// preemption.
///
/// # Safety
/// `mp` is the calling thread's M, P-less; `next` is idle and now ours.
unsafe fn take_p(mp: *mut M, next: *mut P) {
    // SAFETY: caller contract.
    unsafe {
        (*mp).p.store(next, Ordering::Relaxed);
        (*next).m.store(mp, Ordering::Relaxed);
        let from = (*next).status.load(Ordering::Relaxed);
        set_pstatus(next, from, PRUNNING);
        let unused = (*next).mcache;
        (*next).mcache = rt_heap::current_cache();
        if unused != (*next).mcache {
            set_aside(mp, unused);
        }
        (*next).bump_schedtick();
    }
}

/// A P-less M about to sleep in `schedule` after a park without a P
/// ([`reacquire_at_entry`]) still allocates through the cache of the P it
/// gave up in the kernel (that P has another since): the thread lets it go
/// and it is set aside for the next P sysmon places, rather than dropped
/// when the M is next handed a P.
///
/// # Safety
/// `mp` is the calling thread's M, holding no P, outside any allocation.
pub(crate) unsafe fn release_thread_cache(mp: *mut M) {
    let c = rt_heap::unbind_thread_cache();
    if !c.is_null() {
        // SAFETY: caller contract; `c` is unbound and used by nobody.
        unsafe { set_aside(mp, c) };
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

/// A cache for a P sysmon places: `c` (an M's spare) if not null, a
/// set-aside one, or new.
fn fresh_cache(c: *mut rt_heap::MCache) -> *mut rt_heap::MCache {
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
/// see `proc::mstart::CREATOR`). A goroutine that waits without having had
/// a P (it ran too long after a hand-off) is only queued. Then each P a
/// goroutine blocked in the kernel gave up is handed off (`handoffp`).
pub(crate) fn service() -> bool {
    let mut pp = HANDOFF.swap(null_mut(), Ordering::AcqRel);
    let mut any = !pp.is_null();
    while !pp.is_null() {
        // SAFETY: Ps are never freed; a P on the list is held by nobody and
        // its fields were published before it joined.
        unsafe {
            let next = (*pp).handofflink.load(Ordering::Relaxed);
            (*pp).mcache = fresh_cache((*pp).handoffcache.swap(null_mut(), Ordering::Acquire));
            SchedStats::bump(&SCHED.stats.handoffs);
            // With work waiting, an idle M or a goroutine waiting for its
            // locked M takes the P before a thread is asked for (Go's
            // handoffp would start one; see `proc::mstart::CREATOR`).
            let work = !crate::runq::runqempty(pp) || SCHED.runqsize.load(Ordering::Relaxed) > 0;
            if !work
                || SCHED.gcwaiting.load(Ordering::Acquire)
                || !(crate::proc::startm_idle(pp, null_mut())
                    || crate::proc::run_locked_waiter(pp, null_mut()))
            {
                crate::proc::handoffp(pp);
            }
            pp = next;
        }
    }
    let mut mp = SERVICE.swap(null_mut(), Ordering::AcqRel);
    any |= !mp.is_null();
    while !mp.is_null() {
        // SAFETY: Ms are never freed; the M waits in its handler and its
        // preemption fields were published before it joined the list.
        unsafe {
            let next = (*mp).preemptlink.load(Ordering::Relaxed);
            let pp = (*mp).preempt_p.swap(null_mut(), Ordering::Acquire);
            let gp = (*mp).curg;
            SchedStats::bump(&SCHED.stats.preemptions);
            if pp.is_null() {
                crate::proc::queue_for_locked_m(gp);
                mp = next;
                continue;
            }
            (*pp).mcache = fresh_cache((*mp).spare.swap(null_mut(), Ordering::AcqRel));
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
