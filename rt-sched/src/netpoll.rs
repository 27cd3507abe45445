//! The network poller (Go's `netpoll.go`): goroutines wait for a file
//! descriptor to become readable or writable without holding an M.
//!
//! Each registered descriptor has a `PollDesc`, carved from a pool and never
//! freed (the kernel may still report an event for it after it was
//! closed). A descriptor is registered once, edge-triggered, for reading and
//! writing ([`crate::netpoll_epoll`]); the event data carries the
//! `PollDesc`'s address and a 16-bit tag of its open generation, so an
//! event left over from a previous use of the same `PollDesc` is dropped.
//!
//! ## Waiting without losing a wake-up
//! `rg`/`wg` are binary semaphores holding `NIL`, `READY`, `WAIT` or the
//! parked goroutine. A reader that got `EAGAIN` calls [`PollFd::wait`]:
//! it consumes `READY` if readiness arrived since its syscall, else swaps
//! `NIL` for `WAIT` and parks; the park's commit (on g0, once the
//! goroutine's context is saved) swaps `WAIT` for the goroutine. The poller
//! swaps in `READY` and readies whatever goroutine it replaced; if it came
//! between `WAIT` and the commit, the commit fails and the goroutine does
//! not park at all. Deadlines and close swap in `NIL` instead and wake the
//! waiter with an error; they publish their state (the `closing` flag, the
//! deadline) before looking at the semaphore, and the waiter re-checks that
//! state after setting `WAIT`, so one side always sees the other.
//!
//! ## The scheduler's side
//! `findrunnable` polls without blocking before it steals (when goroutines
//! wait), and an M that finds nothing to do becomes *the* poller: it gives
//! up its P and blocks in `epoll_wait` until an event, the next timer, or a
//! break (an earlier timer was added). sysmon polls when nobody has for
//! 10 ms. Goroutines readied by a poll go on the poller's P or, without
//! one, on the global queue with an M woken for them.

use core::ptr::null_mut;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering,
};

use crate::lock::Lock;
use crate::netpoll_epoll as sys;
use crate::proc::{current_m, getg_checked, gopark, goready};
use crate::runtime2::G;
use crate::time::{Action, TimerFn};

/// Semaphore states; anything above `WAIT` is a parked goroutine.
const NIL: usize = 0;
const READY: usize = 1;
const WAIT: usize = 2;

/// Which half of a descriptor a wait or deadline concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Readable (or the peer hung up, or an error is pending).
    Read,
    /// Writable (or an error is pending).
    Write,
}

/// Why a wait ended without readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollError {
    /// The descriptor is being closed ([`PollFd::evict`]).
    Closing,
    /// The deadline for this direction has passed.
    TimedOut,
}

/// The poller's record of one descriptor.
pub(crate) struct PollDesc {
    /// Free-list link (under `POOL`'s lock).
    link: AtomicPtr<PollDesc>,
    fd: AtomicI32,
    /// Bumped at every registration and close; its low 16 bits tag events.
    fdseq: AtomicU64,
    closing: AtomicBool,
    rg: AtomicUsize,
    wg: AtomicUsize,
    /// The poller saw the peer's end of the stream, a hang-up or an error
    /// (`EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`): a read returns without
    /// waiting from then on, whatever the semaphore says. Unlike readiness,
    /// `prepare` never clears it, so it survives a read that took the data
    /// in front of the end of file.
    rclosed: AtomicBool,
    /// Deadlines: 0 none, -1 passed, else monotonic ns.
    rd: AtomicI64,
    wd: AtomicI64,
    /// Deadline timer generations: a timer fires only if its generation is
    /// still current.
    rgen: AtomicU64,
    wgen: AtomicU64,
    /// A deadline timer of this generation is in some timer heap.
    rtimer: AtomicBool,
    wtimer: AtomicBool,
    /// Serializes deadline changes and close.
    lock: Lock,
}

impl PollDesc {
    const fn new() -> PollDesc {
        PollDesc {
            link: AtomicPtr::new(null_mut()),
            fd: AtomicI32::new(-1),
            fdseq: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            rg: AtomicUsize::new(NIL),
            rclosed: AtomicBool::new(false),
            wg: AtomicUsize::new(NIL),
            rd: AtomicI64::new(0),
            wd: AtomicI64::new(0),
            rgen: AtomicU64::new(0),
            wgen: AtomicU64::new(0),
            rtimer: AtomicBool::new(false),
            wtimer: AtomicBool::new(false),
            lock: Lock::new(),
        }
    }

    fn sem(&self, mode: Mode) -> &AtomicUsize {
        match mode {
            Mode::Read => &self.rg,
            Mode::Write => &self.wg,
        }
    }

    fn deadline(&self, mode: Mode) -> &AtomicI64 {
        match mode {
            Mode::Read => &self.rd,
            Mode::Write => &self.wd,
        }
    }

    fn gen(&self, mode: Mode) -> &AtomicU64 {
        match mode {
            Mode::Read => &self.rgen,
            Mode::Write => &self.wgen,
        }
    }

    fn timer_pending(&self, mode: Mode) -> &AtomicBool {
        match mode {
            Mode::Read => &self.rtimer,
            Mode::Write => &self.wtimer,
        }
    }

    /// The error a wait in `mode` would end with now, if any.
    fn check(&self, mode: Mode) -> Result<(), PollError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(PollError::Closing);
        }
        if self.deadline(mode).load(Ordering::SeqCst) < 0 {
            return Err(PollError::TimedOut);
        }
        Ok(())
    }

    /// The epoll tag of the current registration.
    fn tag(&self) -> u16 {
        self.fdseq.load(Ordering::Acquire) as u16
    }
}

// SAFETY: every field is atomic or guarded by `lock`.
unsafe impl Sync for PollDesc {}

/// The never-freed pool of `PollDesc`s.
struct Pool {
    lock: Lock,
    free: AtomicPtr<PollDesc>,
}

static POOL: Pool = Pool {
    lock: Lock::new(),
    free: AtomicPtr::new(null_mut()),
};

fn pd_alloc() -> *mut PollDesc {
    POOL.lock.lock();
    let pd = POOL.free.load(Ordering::Relaxed);
    if !pd.is_null() {
        // SAFETY: pool entries are live, never-freed PollDescs.
        POOL.free.store(
            unsafe { (*pd).link.load(Ordering::Relaxed) },
            Ordering::Relaxed,
        );
        POOL.lock.unlock();
        return pd;
    }
    POOL.lock.unlock();
    // Carved in blocks that are never freed, as Go's persistentalloc.
    let block: &'static mut [PollDesc] = Box::leak(
        (0..64)
            .map(|_| PollDesc::new())
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let (first, rest) = block.split_first_mut().expect("64 entries");
    POOL.lock.lock();
    for pd in rest {
        pd.link
            .store(POOL.free.load(Ordering::Relaxed), Ordering::Relaxed);
        POOL.free.store(pd, Ordering::Relaxed);
    }
    POOL.lock.unlock();
    first
}

fn pd_free(pd: *mut PollDesc) {
    POOL.lock.lock();
    // SAFETY: pd is a live PollDesc no one else refers to any more (its
    // fd is unregistered; stale events are dropped by the tag).
    unsafe {
        (*pd)
            .link
            .store(POOL.free.load(Ordering::Relaxed), Ordering::Relaxed)
    };
    POOL.free.store(pd, Ordering::Relaxed);
    POOL.lock.unlock();
}

/// Goroutines parked in [`PollFd::wait`] (Go's `netpollWaiters`).
static WAITERS: AtomicI32 = AtomicI32::new(0);
/// An M is blocked in `epoll_wait` (Go's `sched.lastpoll == 0`).
static POLLING: AtomicBool = AtomicBool::new(false);
/// When the blocked poller wakes by itself (`i64::MAX` for never).
static POLL_UNTIL: AtomicI64 = AtomicI64::new(0);
/// When the last poll ran (for sysmon's 10 ms rule).
static LAST_POLL: AtomicI64 = AtomicI64::new(0);

/// True once a descriptor was registered (the epoll instance exists).
#[inline]
pub(crate) fn inited() -> bool {
    sys::inited()
}

/// Goroutines waiting for I/O.
#[inline]
pub(crate) fn waiters() -> i32 {
    WAITERS.load(Ordering::Acquire)
}

/// A descriptor registered with the poller (Go's `pollDesc` as
/// `internal/poll` holds it). The descriptor must be non-blocking; its
/// owner closes it after dropping the `PollFd`.
#[derive(Debug)]
pub struct PollFd {
    pd: *mut PollDesc,
}

// SAFETY: the PollDesc is shared by design; all its state is atomic or
// under its lock.
unsafe impl Send for PollFd {}
// SAFETY: as above.
unsafe impl Sync for PollFd {}

impl PollFd {
    /// Registers `fd` (edge-triggered, for reading and writing).
    pub fn new(fd: i32) -> std::io::Result<PollFd> {
        sys::init()?;
        let pd = pd_alloc();
        // SAFETY: pd is ours until registered.
        let p = unsafe { &*pd };
        p.lock.lock();
        p.fd.store(fd, Ordering::Relaxed);
        p.closing.store(false, Ordering::Relaxed);
        p.rg.store(NIL, Ordering::Relaxed);
        p.wg.store(NIL, Ordering::Relaxed);
        p.rclosed.store(false, Ordering::Relaxed);
        p.rd.store(0, Ordering::Relaxed);
        p.wd.store(0, Ordering::Relaxed);
        p.rgen.fetch_add(1, Ordering::Relaxed);
        p.wgen.fetch_add(1, Ordering::Relaxed);
        let seq = p.fdseq.fetch_add(1, Ordering::AcqRel) + 1;
        p.lock.unlock();
        if let Err(e) = sys::register(fd, pd as usize, seq as u16) {
            pd_free(pd);
            return Err(e);
        }
        Ok(PollFd { pd })
    }

    fn pd(&self) -> &PollDesc {
        // SAFETY: PollDescs are never freed; this one is ours until drop.
        unsafe { &*self.pd }
    }

    /// The error a wait in `mode` would end with now (closing, or a passed
    /// deadline), checked before each attempt of the syscall; also forgets
    /// readiness seen before the syscall that is about to run.
    pub fn prepare(&self, mode: Mode) -> Result<(), PollError> {
        let pd = self.pd();
        pd.check(mode)?;
        // Readiness that arrived before this point is visible to the
        // syscall itself; only what arrives after it must wake the wait.
        let _ = pd
            .sem(mode)
            .compare_exchange(READY, NIL, Ordering::AcqRel, Ordering::Relaxed);
        Ok(())
    }

    /// True when readiness for `mode` arrived since the last
    /// [`prepare`](Self::prepare) and nobody has taken it yet, or (reading)
    /// the stream's end, a hang-up or an error was seen: a caller
    /// whose last syscall drained the descriptor (and that has not prepared
    /// since) knows from a false here that the next one would say `EAGAIN`.
    pub fn ready(&self, mode: Mode) -> bool {
        let pd = self.pd();
        (mode == Mode::Read && pd.rclosed.load(Ordering::Acquire))
            || pd.sem(mode).load(Ordering::Acquire) == READY
    }

    /// Waits until `mode` may make progress (after the syscall said
    /// `EAGAIN`), the deadline passes, or the descriptor is evicted. On a
    /// thread that is not a goroutine it blocks the thread in `poll(2)`.
    pub fn wait(&self, mode: Mode) -> Result<(), PollError> {
        let pd = self.pd();
        pd.check(mode)?;
        let gp = getg_checked();
        // SAFETY: reading the running goroutine's flags.
        let on_goroutine = !gp.is_null() && unsafe { !(*gp).system && (*gp).goid != 0 };
        if !on_goroutine {
            return self.wait_thread(mode);
        }
        let sem = pd.sem(mode);
        loop {
            if sem
                .compare_exchange(READY, NIL, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(());
            }
            match sem.compare_exchange(NIL, WAIT, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(READY) => continue,
                Err(_) => rt_sys::throw("netpoll: two goroutines wait in the same direction"),
            }
        }
        // Close and deadlines publish before they look at the semaphore:
        // re-check after announcing WAIT so one side sees the other.
        if pd.check(mode).is_ok() {
            gopark(Some(commit), sem as *const AtomicUsize as usize, "IO wait");
        }
        let old = sem.swap(NIL, Ordering::AcqRel);
        if old > WAIT {
            rt_sys::throw("netpoll: corrupted semaphore");
        }
        if old == READY {
            Ok(())
        } else {
            pd.check(mode)
        }
    }

    /// [`wait`](Self::wait) for a plain thread: `poll(2)` until ready, the
    /// deadline, or (checked every 10 ms) eviction.
    fn wait_thread(&self, mode: Mode) -> Result<(), PollError> {
        let pd = self.pd();
        let events = match mode {
            Mode::Read => libc::POLLIN,
            Mode::Write => libc::POLLOUT,
        };
        loop {
            pd.check(mode)?;
            let d = pd.deadline(mode).load(Ordering::SeqCst);
            let mut ms = 10;
            if d > 0 {
                let left = d - rt_sys::nanotime();
                if left <= 0 {
                    return Err(PollError::TimedOut);
                }
                ms = ms.min((left / 1_000_000 + 1) as i32);
            }
            let mut p = libc::pollfd {
                fd: pd.fd.load(Ordering::Relaxed),
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut p, 1, ms) };
            if n > 0 {
                return Ok(());
            }
            if d > 0 && d <= rt_sys::nanotime() {
                pd.deadline(mode).store(-1, Ordering::SeqCst);
            }
        }
    }

    /// Sets the deadline of `mode` to monotonic time `when` (ns; `None`
    /// clears it). A deadline in the past wakes a waiter at once with
    /// [`PollError::TimedOut`]; a later one arms a timer.
    pub fn set_deadline(&self, mode: Mode, when: Option<i64>) {
        let pd = self.pd();
        pd.lock.lock();
        if pd.closing.load(Ordering::Relaxed) {
            pd.lock.unlock();
            return;
        }
        let gen = pd.gen(mode).fetch_add(1, Ordering::AcqRel) + 1;
        if pd.timer_pending(mode).swap(false, Ordering::AcqRel) {
            crate::time::note_stale();
        }
        let now = rt_sys::nanotime();
        let mut wake = null_mut();
        match when {
            None => pd.deadline(mode).store(0, Ordering::SeqCst),
            Some(w) if w <= now => {
                pd.deadline(mode).store(-1, Ordering::SeqCst);
                wake = unblock(pd, mode, false);
            }
            Some(w) => {
                pd.deadline(mode).store(w, Ordering::SeqCst);
                pd.timer_pending(mode).store(true, Ordering::Release);
                let arg = self.pd as usize | (mode == Mode::Write) as usize;
                add_timer(w, Action::Call(DEADLINE, arg, gen));
            }
        }
        pd.lock.unlock();
        if !wake.is_null() {
            // SAFETY: unblock handed us the parked waiter.
            unsafe { ready(wake) };
        }
    }

    /// Wakes both waiters with [`PollError::Closing`] and fails every later
    /// wait (Go's `pollUnblock`, done before the descriptor is closed).
    pub fn evict(&self) {
        let pd = self.pd();
        pd.lock.lock();
        pd.closing.store(true, Ordering::SeqCst);
        for mode in [Mode::Read, Mode::Write] {
            pd.gen(mode).fetch_add(1, Ordering::AcqRel);
            if pd.timer_pending(mode).swap(false, Ordering::AcqRel) {
                crate::time::note_stale();
            }
        }
        let r = unblock(pd, Mode::Read, false);
        let w = unblock(pd, Mode::Write, false);
        pd.lock.unlock();
        for g in [r, w] {
            if !g.is_null() {
                // SAFETY: unblock handed us the parked waiter.
                unsafe { ready(g) };
            }
        }
    }
}

impl Drop for PollFd {
    fn drop(&mut self) {
        self.evict();
        let pd = self.pd();
        sys::unregister(pd.fd.load(Ordering::Relaxed));
        // A new generation: events still in flight for the old one are dropped.
        pd.fdseq.fetch_add(1, Ordering::AcqRel);
        pd.fd.store(-1, Ordering::Relaxed);
        pd_free(self.pd);
    }
}

/// `gopark`'s commit: the goroutine is off its stack; publish it in the
/// semaphore unless readiness (or an error) came first.
fn commit(gp: *mut G, sem: usize) -> bool {
    // SAFETY: `sem` is the address of a semaphore of a never-freed PollDesc.
    let sem = unsafe { &*(sem as *const AtomicUsize) };
    let ok = sem
        .compare_exchange(WAIT, gp as usize, Ordering::AcqRel, Ordering::Acquire)
        .is_ok();
    if ok {
        WAITERS.fetch_add(1, Ordering::AcqRel);
    }
    ok
}

/// Ends a wait in `mode` (Go's `netpollunblock`): with `ioready` marks the
/// direction ready; returns the goroutine that was parked, still
/// `GWAITING`, for the caller to make runnable.
fn unblock(pd: &PollDesc, mode: Mode, ioready: bool) -> *mut G {
    let sem = pd.sem(mode);
    loop {
        let old = sem.load(Ordering::Acquire);
        if old == READY {
            return null_mut();
        }
        if old == NIL && !ioready {
            // Only readiness is remembered for a later wait.
            return null_mut();
        }
        let new = if ioready { READY } else { NIL };
        if sem
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            if old > WAIT {
                WAITERS.fetch_sub(1, Ordering::AcqRel);
                return old as *mut G;
            }
            return null_mut();
        }
    }
}

/// Makes a goroutine `unblock` returned runnable.
///
/// # Safety
/// `gp` came from [`unblock`], which hands each parked waiter out once.
unsafe fn ready(gp: *mut G) {
    // SAFETY: forwarded.
    unsafe { goready(gp) };
}

/// The deadline timer: `arg` is the PollDesc's address with the mode in
/// bit 0.
const DEADLINE: TimerFn = TimerFn {
    fire: deadline_fire,
    live: deadline_live,
};

fn deadline_parts(arg: usize) -> (&'static PollDesc, Mode) {
    let mode = if arg & 1 != 0 {
        Mode::Write
    } else {
        Mode::Read
    };
    // SAFETY: the address of a never-freed PollDesc.
    (unsafe { &*((arg & !1) as *const PollDesc) }, mode)
}

fn deadline_live(arg: usize, gen: u64) -> bool {
    let (pd, mode) = deadline_parts(arg);
    pd.gen(mode).load(Ordering::Acquire) == gen
}

fn deadline_fire(arg: usize, gen: u64) -> *mut G {
    let (pd, mode) = deadline_parts(arg);
    pd.lock.lock();
    if pd.gen(mode).load(Ordering::Acquire) != gen {
        pd.lock.unlock();
        return null_mut();
    }
    pd.timer_pending(mode).store(false, Ordering::Release);
    pd.deadline(mode).store(-1, Ordering::SeqCst);
    let gp = unblock(pd, mode, false);
    pd.lock.unlock();
    gp
}

/// Adds a timer to the calling M's P, or to the first P from a thread
/// without one.
fn add_timer(when: i64, action: Action) {
    let mp = current_m();
    let pp = if mp.is_null() {
        null_mut()
    } else {
        // SAFETY: our own M.
        unsafe { (*mp).p.load(Ordering::Relaxed) }
    };
    let pp = if pp.is_null() {
        crate::proc::allp().first().copied().unwrap_or(null_mut())
    } else {
        pp
    };
    if pp.is_null() {
        rt_sys::throw("netpoll: a deadline before the scheduler started");
    }
    // SAFETY: Ps are never freed; timer heaps are locked.
    unsafe { (*pp).timers.add_action(when, action) };
}

/// Polls for ready descriptors (Go's `netpoll`): `until` < 0 blocks until
/// an event or a break, 0 returns at once, else it waits until that
/// monotonic time. Returns the goroutines readied, still `GWAITING`.
pub(crate) fn poll(until: i64, out: &mut Vec<*mut G>) {
    if !inited() {
        return;
    }
    let timeout_ms = if until < 0 {
        -1
    } else if until == 0 {
        0
    } else {
        let left = until - rt_sys::nanotime();
        if left <= 0 {
            0
        } else {
            // Round up: waking early would only poll again.
            ((left + 999_999) / 1_000_000).min(i32::MAX as i64) as i32
        }
    };
    sys::wait(timeout_ms, &mut |data, readable, writable, closed| {
        let pd_addr = (data & ((1 << 48) - 1)) as usize;
        let tag = (data >> 48) as u16;
        // SAFETY: the address registered with this event is a never-freed
        // PollDesc (the tag tells whether it still describes the same use).
        let pd = unsafe { &*(pd_addr as *const PollDesc) };
        if pd.tag() != tag {
            return;
        }
        if closed {
            // Before the readiness below, so a reader that takes that
            // readiness sees this too.
            pd.rclosed.store(true, Ordering::Release);
        }
        if readable {
            let g = unblock(pd, Mode::Read, true);
            if !g.is_null() {
                out.push(g);
            }
        }
        if writable {
            let g = unblock(pd, Mode::Write, true);
            if !g.is_null() {
                out.push(g);
            }
        }
    });
    LAST_POLL.store(rt_sys::nanotime(), Ordering::Relaxed);
}

/// True while an M is blocked in the poller.
#[inline]
pub(crate) fn polling() -> bool {
    POLLING.load(Ordering::Acquire)
}

/// Claims the role of the blocking poller (one M at a time), to wait until
/// `until` (`i64::MAX` for no timer). False when another M has it.
pub(crate) fn begin_blocking(until: i64) -> bool {
    if POLLING
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return false;
    }
    POLL_UNTIL.store(until, Ordering::Release);
    true
}

/// Gives the blocking poller role back.
pub(crate) fn end_blocking() {
    POLL_UNTIL.store(0, Ordering::Release);
    POLLING.store(false, Ordering::Release);
}

/// A timer was added for `when`: if the blocked poller would sleep past
/// it, break its wait so it re-reads the timers (Go's `wakeNetPoller`).
pub(crate) fn timer_added(when: i64) {
    if POLLING.load(Ordering::Acquire) && POLL_UNTIL.load(Ordering::Acquire) > when {
        sys::interrupt();
    }
}

/// Makes the goroutines of a poll runnable (Go's `injectglist`): on the
/// calling M's P when it has one, else on the global queue; then wakes an
/// M for them.
pub(crate) fn inject(list: &mut Vec<*mut G>) {
    if list.is_empty() {
        return;
    }
    let mp = current_m();
    let pp = if mp.is_null() {
        null_mut()
    } else {
        // SAFETY: our own M.
        unsafe { (*mp).p.load(Ordering::Relaxed) }
    };
    for gp in list.drain(..) {
        // SAFETY: each G was parked in an I/O wait and handed out once by
        // `unblock`.
        unsafe {
            crate::runtime2::casgstatus(gp, crate::runtime2::GWAITING, crate::runtime2::GRUNNABLE);
            (*gp).polled.store(true, Ordering::Relaxed);
            if pp.is_null() {
                crate::runq::globrunqput(gp);
            } else {
                crate::runq::runqput(pp, gp, false);
            }
        }
    }
    crate::proc::wakep();
}

/// sysmon's share: poll if goroutines wait and nobody polled for 10 ms.
pub(crate) fn sysmon_poll(now: i64) {
    if !inited() || waiters() == 0 || POLLING.load(Ordering::Acquire) {
        return;
    }
    if now - LAST_POLL.load(Ordering::Relaxed) < 10_000_000 {
        return;
    }
    let mut list = Vec::new();
    poll(0, &mut list);
    inject(&mut list);
}
