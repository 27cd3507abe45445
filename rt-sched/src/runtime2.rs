//! The runtime's data structures: G, M, P, the scheduler's global state.
//!
//! Who writes what, in short (Go's rules, kept):
//! * a **G** is owned by whoever holds it: the M running it, the queue it sits
//!   in, or the wait queue it is parked on; its `atomicstatus` is the only field
//!   read concurrently;
//! * an **M** is written only by its own thread, except `park`/`nextp`/
//!   `spinning`, which a waker sets before `notewakeup` while the M is asleep;
//! * a **P** belongs to the M that acquired it; other Ms touch only its run
//!   queue's head and `runnext` (stealing) and its `status` (read-only).

use crate::runq::RunQueue;
use core::cell::UnsafeCell;
use core::ptr::null_mut;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
};
use crossbeam_utils::CachePadded;
pub use rt_stack::Stack;
use rt_sys::lock::{Mutex, MutexGuard};

// --- G status (Go's values, so `scheddetail` output reads the same) ---
/// Just allocated, not yet initialised.
pub const GIDLE: u32 = 0;
/// On a run queue, not running.
pub const GRUNNABLE: u32 = 1;
/// Running on an M with a P.
pub const GRUNNING: u32 = 2;
/// In a blocking system call: owns an M, not a P.
pub const GSYSCALL: u32 = 3;
/// Parked (channel, lock, join, sleep…); `waitreason` says why.
pub const GWAITING: u32 = 4;
/// Exited, or not yet started; on a free list.
pub const GDEAD: u32 = 6;
/// Stopped by a preemption signal in the middle of its own code, waiting on
/// its thread (inside the signal handler) for a P; queued meanwhile, locked
/// to its M (Go's `_Gpreempted`).
pub const GPREEMPTED: u32 = 9;

/// Whether the runtime's self-checks are compiled in: always in debug
/// builds, in release builds with the `rtcheck` feature (HACKING.md,
/// "Self-checks").
pub(crate) const CHECKS: bool = cfg!(any(debug_assertions, feature = "rtcheck"));

/// The G status changes the scheduler makes (Go's `casgstatus` table, less
/// the states rt has no use for: copystack, preempted, scan).
pub(crate) const fn legal_transition(from: u32, to: u32) -> bool {
    matches!(
        (from, to),
        (GIDLE, GDEAD)                      // malg: a fresh G is dead until used
            | (GDEAD, GRUNNABLE)            // newproc
            | (GRUNNABLE, GRUNNING)         // execute, yield_to
            | (GWAITING, GRUNNING)          // yield_to a goroutine parked for it
            | (GRUNNING, GRUNNABLE)         // gosched, yield_to
            | (GRUNNING, GWAITING)          // gopark
            | (GWAITING, GRUNNABLE)         // goready, timers, a park that gives up
            | (GRUNNING, GSYSCALL)          // entersyscallblock
            | (GSYSCALL, GRUNNING)          // exitsyscall with a P
            | (GSYSCALL, GRUNNABLE)         // exitsyscall0: queued for later
            | (GRUNNING, GPREEMPTED)        // preempt: suspended in place
            | (GPREEMPTED, GRUNNING)        // preempt: resumed with a P
            | (GSYSCALL, GPREEMPTED)        // preempt: a P-less goroutine waits for a P
            | (GRUNNING, GDEAD) // goexit
    )
}

/// Moves `gp` from status `from` to `to` (Go's `casgstatus`). With the
/// self-checks a compare-and-swap that ends the program when the G was not
/// in `from` or the change is not in [`legal_transition`]'s table; without
/// them a plain release store.
///
/// # Safety
/// `gp` is a live G that the caller may change the status of.
#[inline(always)]
pub(crate) unsafe fn casgstatus(gp: *mut G, from: u32, to: u32) {
    if CHECKS {
        // SAFETY: forwarded caller contract.
        unsafe { casgstatus_checked(gp, from, to) }
    } else {
        // SAFETY: forwarded caller contract.
        unsafe {
            (*gp)
                .atomicstatus
                .store(to, core::sync::atomic::Ordering::Release)
        }
    }
}

/// The checked half of [`casgstatus`].
///
/// # Safety
/// As [`casgstatus`].
#[cold]
#[inline(never)]
unsafe fn casgstatus_checked(gp: *mut G, from: u32, to: u32) {
    use core::sync::atomic::Ordering;
    if !legal_transition(from, to) {
        rt_sys::fatal!("casgstatus: bad transition {from} -> {to}");
    }
    // SAFETY: gp is live (caller).
    let r = unsafe {
        (*gp)
            .atomicstatus
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
    };
    if let Err(cur) = r {
        // SAFETY: as above.
        let goid = unsafe { (*gp).goid };
        rt_sys::fatal!("casgstatus: goroutine {goid} has status {cur}, not {from} (to {to})");
    }
}

// --- P status ---
/// Not used by any M; on the idle list.
pub(crate) const PIDLE: u32 = 0;
/// Owned by an M running user code or the scheduler.
pub(crate) const PRUNNING: u32 = 1;
// 2 is Go's `_Psyscall`, unused here: a goroutine entering a blocking call
// releases its P (`entersyscallblock`), so no P stays attached to an M in a
// system call.
/// Stopped for stop-the-world (also the state of a fresh P).
pub(crate) const PGCSTOP: u32 = 3;
/// No longer used (GOMAXPROCS shrank).
pub(crate) const PDEAD: u32 = 4;

/// The P status changes the scheduler makes.
pub(crate) const fn legal_ptransition(from: u32, to: u32) -> bool {
    matches!(
        (from, to),
        (PIDLE, PRUNNING)                   // acquirep of an idle P
            | (PGCSTOP, PRUNNING)           // acquirep of a fresh or stopped P
            | (PRUNNING, PIDLE)             // releasep
            | (PGCSTOP, PIDLE)              // procresize, startTheWorld
            | (PIDLE, PGCSTOP)              // stopTheWorld, gcstopm, handoffp
            | (PRUNNING, PGCSTOP)           // stopTheWorld: the stopper's own P
            | (PGCSTOP, PDEAD) // procresize shrinks allp
    )
}

/// Moves `pp` from status `from` to `to`. With the self-checks a
/// compare-and-swap that ends the program when the P was not in `from` or
/// the change is not in [`legal_ptransition`]'s table; without them a plain
/// release store.
///
/// # Safety
/// `pp` is a live P whose status the caller may change (it holds the P,
/// the P came off the idle list for it, or the world is stopped).
#[inline(always)]
pub(crate) unsafe fn set_pstatus(pp: *mut P, from: u32, to: u32) {
    use core::sync::atomic::Ordering;
    if CHECKS {
        if !legal_ptransition(from, to) {
            rt_sys::fatal!("P status: bad transition {from} -> {to}");
        }
        // SAFETY: pp is live (caller).
        let r = unsafe {
            (*pp)
                .status
                .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
        };
        if let Err(cur) = r {
            // SAFETY: as above.
            let id = unsafe { (*pp).id };
            rt_sys::fatal!("P status: P{id} has status {cur}, not {from} (to {to})");
        }
    } else {
        // SAFETY: pp is live (caller).
        unsafe { (*pp).status.store(to, Ordering::Release) }
    }
}

/// A suspended context (Go's `gobuf`). Read and written by the `arch` switch
/// routines through `offset_of!`, so the layout is `repr(C)`.
#[repr(C)]
#[derive(Debug)]
pub struct Gobuf {
    /// Stack pointer to resume with.
    pub sp: usize,
    /// Address to jump to.
    pub pc: usize,
    /// The goroutine this context belongs to.
    pub g: *mut G,
}

/// A goroutine.
#[repr(C)]
pub struct G {
    /// Where to resume this goroutine. First, so that a G pointer is also
    /// its gobuf's (the switch path computes no offset).
    pub sched: Gobuf,
    /// Stack bounds; `lo` is the first byte above the guard page.
    pub stack: Stack,
    /// Go's split-stack guard. rt stacks never grow: it stays
    /// `stack.lo + STACK_GUARD` and is reported, not checked.
    pub stackguard0: usize,
    /// The C/system-stack guard (`!0` for user goroutines, as in Go).
    pub stackguard1: usize,
    /// The M running it (null unless running or in a syscall).
    pub m: *mut M,
    /// One of the `G*` status values.
    pub atomicstatus: AtomicU32,
    /// Made runnable by the network poller and not run since: its stack
    /// has likely left the caches, so the run queue fetches it ahead
    /// (`runq::Local::pop`). Next to `sched` and `stack`, whose words that
    /// fetch reads.
    pub(crate) polled: AtomicBool,
    /// Goroutine id; 0 for g0 and gsignal.
    pub goid: i64,
    /// Link in a run queue, free list or wait queue.
    pub(crate) schedlink: *mut G,
    /// Why it is waiting (`GWAITING`), e.g. "chan receive".
    pub(crate) waitreason: &'static str,
    /// The M this goroutine is locked to (`lock_os_thread`), or null.
    pub(crate) lockedm: *mut M,
    /// The function to run; taken when the goroutine starts.
    pub(crate) entry: Option<Box<dyn FnOnce() + Send + 'static>>,
    /// A runtime-internal goroutine (not counted by `num_goroutine`).
    pub(crate) system: bool,
    /// True while the G sits in `allgs` (it never leaves).
    pub(crate) in_allgs: bool,
    /// For `gsignal` and `g0`: the stack is not ours to free.
    pub(crate) foreign_stack: bool,
    /// The panic message of a goroutine that died by panicking.
    pub(crate) panicking: bool,
    /// Nesting depth of `lock_os_thread`.
    pub(crate) lockedcount: u32,
    /// The panic hook recorded a message and location for this goroutine
    /// (`crate::panic`, keyed by goid; removed when the G exits).
    pub(crate) panic_recorded: bool,
    /// The floating-point control state a fresh goroutine starts with (its
    /// creator's, see [`crate::arch::FpEnv`]); written into the stack's
    /// FP slot when the stack is laid out.
    pub(crate) fpenv: crate::arch::FpEnv,
    /// The PC of the `go` statement that created it (Go's `gopc`), 0 for
    /// goroutines the runtime starts; printed as `created by`.
    pub(crate) gopc: usize,
    /// The goid of the goroutine that created it (0 for none).
    pub(crate) parentgoid: i64,
    /// When it started waiting (`coarse_now` at park, 0 if unknown): the
    /// `, N minutes` of a goroutine report.
    pub(crate) waitsince: i64,
    /// Its registers where it called [`crate::blocking`]: a goroutine in
    /// `GSYSCALL` keeps running on its thread, and its frames above that
    /// call stay as they were until the call returns, so reports walk its
    /// stack from here.
    pub(crate) syscallregs: rt_traceback::Regs,
    /// Its registers where a preemption signal stopped it (`GPREEMPTED`):
    /// reports walk its stack from here.
    pub(crate) preemptregs: rt_traceback::Regs,
    /// The preemption locked it to its M (it was not locked already); undone
    /// when it resumes.
    pub(crate) preemptlocked: bool,
    /// On the shared free list ([`GFREE`]), in the G that heads a batch:
    /// the head of the next batch.
    pub(crate) gfnext: *mut G,
    /// In the G that heads a free batch: the batch's length.
    pub(crate) gfn: i32,
}

// `yield_to` relies on this: a G pointer is its gobuf's.
const _: () = assert!(core::mem::offset_of!(G, sched) == 0);

// SAFETY: a G is handed between threads only through the scheduler's queues,
// whose publication orderings make the hand-over a happens-before edge.
unsafe impl Send for G {}

impl G {
    /// A zeroed, dead G.
    pub const fn new() -> G {
        G {
            stack: Stack { lo: 0, hi: 0 },
            stackguard0: 0,
            stackguard1: 0,
            sched: Gobuf {
                sp: 0,
                pc: 0,
                g: null_mut(),
            },
            m: null_mut(),
            atomicstatus: AtomicU32::new(GIDLE),
            polled: AtomicBool::new(false),
            goid: 0,
            schedlink: null_mut(),
            waitreason: "",
            lockedm: null_mut(),
            entry: None,
            system: false,
            in_allgs: false,
            foreign_stack: false,
            panicking: false,
            lockedcount: 0,
            panic_recorded: false,
            fpenv: crate::arch::FpEnv::DEFAULT,
            gopc: 0,
            parentgoid: 0,
            waitsince: 0,
            syscallregs: rt_traceback::Regs::ZERO,
            preemptregs: rt_traceback::Regs::ZERO,
            preemptlocked: false,
            gfnext: null_mut(),
            gfn: 0,
        }
    }
}

impl Default for G {
    fn default() -> Self {
        G::new()
    }
}

impl core::fmt::Debug for G {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("G")
            .field("goid", &self.goid)
            .field("status", &self.atomicstatus)
            .field("stack", &self.stack)
            .finish_non_exhaustive()
    }
}

/// A one-shot sleep/wake-up event (Go's `note`), on a futex.
#[derive(Debug, Default)]
pub(crate) struct Note {
    key: AtomicU32,
}

impl Note {
    /// A cleared note.
    pub const fn new() -> Note {
        Note {
            key: AtomicU32::new(0),
        }
    }
    /// Resets the note before the next sleep.
    pub fn clear(&self) {
        self.key.store(0, core::sync::atomic::Ordering::Relaxed);
    }
    /// Wakes the sleeper (at most one wake-up per clear).
    pub fn wakeup(&self) {
        if self.key.swap(1, core::sync::atomic::Ordering::Release) == 0 {
            rt_sys::futex_wake(&self.key, 1);
        }
    }
    /// Sleeps until [`wakeup`](Self::wakeup).
    pub fn sleep(&self) {
        while self.key.load(core::sync::atomic::Ordering::Acquire) == 0 {
            rt_sys::futex_wait(&self.key, 0, None);
        }
    }
    /// Sleeps until woken or `ns` nanoseconds passed; true when woken.
    pub fn sleep_timeout(&self, ns: i64) -> bool {
        let deadline = rt_sys::nanotime() + ns;
        loop {
            if self.key.load(core::sync::atomic::Ordering::Acquire) != 0 {
                return true;
            }
            let left = deadline - rt_sys::nanotime();
            if left <= 0 {
                return false;
            }
            rt_sys::futex_wait(&self.key, 0, Some(left as u64));
        }
    }
}

/// Slots of an M's TLS block, which the GS base points at: `tls[TLS_G]` the
/// current goroutine, `tls[TLS_M]` the M, `tls[TLS_MCACHE]` the allocator's
/// cache (see `rt_sys::tls` for why these live in GS and not in
/// thread-locals).
pub(crate) use rt_sys::tls::{TLS_G, TLS_M, TLS_SLOTS};

/// An OS thread that runs goroutines (Go's `m`).
#[repr(C)]
pub struct M {
    /// The TLS block the GS base points at: `[g, m, …]`.
    pub tls: [usize; TLS_SLOTS],
    /// The scheduling goroutine, running on this thread's own stack.
    pub g0: *mut G,
    /// The goroutine the signal handler runs as, on the 32 KiB signal stack.
    pub gsignal: *mut G,
    /// The user goroutine currently running, or null.
    pub(crate) curg: *mut G,
    /// The P held, or null.
    pub(crate) p: AtomicPtr<P>,
    /// The P to acquire when woken.
    pub(crate) nextp: AtomicPtr<P>,
    /// Id (m0 is 0).
    pub id: i64,
    /// Kernel thread id (`gettid`), set by `minit`.
    pub(crate) procid: AtomicI32,
    /// Per-M PRNG state (Go 1.17's xorshift pair), never both zero.
    pub fastrand: [u32; 2],
    /// Out of work and looking for some to steal.
    pub(crate) spinning: AtomicBool,
    /// Parked in `stopm`.
    pub(crate) blocked: AtomicBool,
    /// Where the M sleeps when idle.
    pub(crate) park: Note,
    /// Link in `allm`.
    pub(crate) alllink: *mut M,
    /// Link in the idle-M list.
    pub(crate) schedlink: *mut M,
    /// The goroutine locked to this M, or null.
    pub(crate) lockedg: AtomicPtr<G>,
    /// Function run by a new M before scheduling (e.g. sysmon).
    pub(crate) mstartfn: Option<fn()>,
    /// A runtime-internal M without a P (sysmon).
    pub(crate) system: bool,
    /// `gopark`'s unlock function, run on g0 once the goroutine is saved.
    pub(crate) waitunlockf: Option<fn(*mut G, usize) -> bool>,
    /// Argument for `waitunlockf`.
    pub(crate) waitarg: usize,
    /// Identity of the OS thread (its pthread id), set by `minit`.
    pub(crate) thread: usize,
    /// P-affine runtime sections in progress on this M (Go's `m.locks`): a
    /// preemption that arrives while it is non-zero waits until it drops to
    /// zero. Only the M's own thread (and its signal handler) touch it,
    /// with plain loads and stores between compiler fences.
    pub(crate) locks: AtomicU32,
    /// What sysmon asked of the running goroutine with its last SIGURG
    /// (`crate::preempt::REQ_*`; consumed by the signal handler, so a stale
    /// signal does nothing).
    pub(crate) preempt_req: AtomicU8,
    /// The goroutine gave up its P in a blocking system call (the handler
    /// saw it in the kernel) and runs without one until its next runtime
    /// entry takes one again (`crate::preempt::reacquire`). Written by the
    /// M's own thread; sysmon reads it.
    pub(crate) detached: AtomicBool,
    /// Incremented at every such hand-off, so sysmon can tell one P-less
    /// stretch from the next when it times them by the thread's CPU clock.
    pub(crate) detachgen: AtomicU32,
    /// A preemption waits for `locks` to drop to zero.
    pub(crate) preempt_pending: AtomicBool,
    /// The P a suspended goroutine's M gave up, for sysmon to place.
    pub(crate) preempt_p: AtomicPtr<P>,
    /// Link in sysmon's list of Ms whose goroutine was suspended.
    pub(crate) preemptlink: AtomicPtr<M>,
    /// An unused allocator cache this M set aside when a preemption ended
    /// (see `crate::preempt`), for sysmon to give the next P it detaches.
    pub(crate) spare: AtomicPtr<rt_heap::MCache>,
}

// SAFETY: Ms are shared between threads through the scheduler lock and the
// atomics documented on each field.
unsafe impl Send for M {}
// SAFETY: as above.
unsafe impl Sync for M {}

impl M {
    /// An M with nothing set yet.
    pub const fn new() -> M {
        M {
            tls: [0; TLS_SLOTS],
            g0: null_mut(),
            gsignal: null_mut(),
            curg: null_mut(),
            p: AtomicPtr::new(null_mut()),
            nextp: AtomicPtr::new(null_mut()),
            id: -1,
            procid: AtomicI32::new(0),
            fastrand: [0; 2],
            spinning: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            park: Note::new(),
            alllink: null_mut(),
            schedlink: null_mut(),
            lockedg: AtomicPtr::new(null_mut()),
            mstartfn: None,
            system: false,
            waitunlockf: None,
            waitarg: 0,
            thread: 0,
            locks: AtomicU32::new(0),
            preempt_req: AtomicU8::new(0),
            detached: AtomicBool::new(false),
            detachgen: AtomicU32::new(0),
            preempt_pending: AtomicBool::new(false),
            preempt_p: AtomicPtr::new(null_mut()),
            preemptlink: AtomicPtr::new(null_mut()),
            spare: AtomicPtr::new(null_mut()),
        }
    }
}

impl Default for M {
    fn default() -> Self {
        M::new()
    }
}

impl core::fmt::Debug for M {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("M")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A processor: the right to run Go code, with its local work (Go's `p`).
#[repr(C)]
pub struct P {
    /// Index in `allp`.
    pub(crate) id: i32,
    /// One of the `P*` status values.
    pub(crate) status: AtomicU32,
    /// Link in the idle-P list.
    pub(crate) link: *mut P,
    /// Incremented on every scheduler call (drives the 1-in-61 global check).
    pub(crate) schedtick: AtomicU32,
    /// Goroutines run in a row from `runnext`, each inheriting the time
    /// slice of the one that readied it (owner only).
    pub(crate) inheritstreak: u32,
    /// `nanotime` when that shared slice began (owner only).
    pub(crate) slicestart: i64,
    /// Incremented on every system call.
    pub(crate) syscalltick: AtomicU32,
    /// The M holding this P, or null.
    pub(crate) m: AtomicPtr<M>,
    /// The allocator cache bound to whichever M holds this P.
    pub(crate) mcache: *mut rt_heap::MCache,
    /// Free stacks cached for this P.
    pub(crate) stackcache: rt_stack::StackCache,
    /// Next goid to hand out from this P's batch, and the batch end.
    pub(crate) goidcache: u64,
    /// End of the batch.
    pub(crate) goidcacheend: u64,
    /// The local run queue (owner pushes, anyone steals).
    pub(crate) runq: RunQueue,
    /// The G to run next, ahead of `runq`; inherits the time slice.
    pub(crate) runnext: AtomicPtr<G>,
    /// Dead Gs ready for reuse by `newproc`, linked through `schedlink`
    /// (owner only).
    pub(crate) gfree: *mut G,
    /// Length of `gfree`.
    pub(crate) gfreecnt: i32,
    /// A full batch of [`GFREE_BATCH`] dead Gs kept back from `gfree`, or
    /// null: the second half of the local cache, moved to or from
    /// [`GFREE`] as one piece (owner only).
    pub(crate) gfull: *mut G,
    /// Goroutines created on this P minus those that exited on it (either
    /// may be negative); [`crate::num_goroutine`] sums it over the Ps.
    /// Written by the owner only, with a plain load and store, so a spawn
    /// does not bounce a shared counter between cores.
    pub(crate) ngdelta: AtomicI64,
    /// Pending timers (`sleep`).
    pub(crate) timers: crate::time::TimerHeap,
    /// Link in sysmon's list of Ps that a goroutine blocked in the kernel
    /// gave up (`crate::preempt`).
    pub(crate) handofflink: AtomicPtr<P>,
    /// The allocator cache that M set aside for this P on the way (sysmon
    /// gives the P a fresh one when this is null).
    pub(crate) handoffcache: AtomicPtr<rt_heap::MCache>,
}

impl P {
    /// Counts one more scheduler call. Only the M holding the P writes
    /// `schedtick` (sysmon only reads it), so a load and a store do instead
    /// of a locked increment on every goroutine switch.
    #[inline]
    pub(crate) fn bump_schedtick(&self) {
        use core::sync::atomic::Ordering::Relaxed;
        self.schedtick
            .store(self.schedtick.load(Relaxed).wrapping_add(1), Relaxed);
    }
}

// SAFETY: a P is used by one M at a time (the one in `p.m`); the fields other
// Ms touch are atomics.
unsafe impl Send for P {}
// SAFETY: as above.
unsafe impl Sync for P {}

impl core::fmt::Debug for P {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("P")
            .field("id", &self.id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// The global run queue: a FIFO of G pointers in a growable ring.
///
/// Go links its global queue through the Gs themselves. Here the queue
/// holds the pointers, so moving a batch in or out (an overflowing local
/// queue, `globrunqget`) copies pointers and reads no G. A linked queue
/// makes `globrunqget` chase one G after another under `sched.lock`, each
/// a cache miss when another core wrote the G or it left the cache long
/// ago: that chase was most of `schedule`'s time in the `spawn` workload.
/// The ring grows by doubling (allocated under the lock; the allocator's
/// locks never wait for `sched.lock`) and shrinks back when it drains.
#[derive(Debug)]
pub(crate) struct GQueue {
    ring: std::collections::VecDeque<*mut G>,
}

/// Capacity the global queue keeps when it drains (8 KiB of pointers).
const GQUEUE_KEEP: usize = 1024;

impl GQueue {
    /// The empty queue.
    pub const fn new() -> GQueue {
        GQueue {
            ring: std::collections::VecDeque::new(),
        }
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
    /// Appends `gp` (a live, runnable G in no other queue: the queue only
    /// stores the pointer).
    pub fn push_back(&mut self, gp: *mut G) {
        self.push_slice(&[gp]);
    }
    /// Appends every G of `gs`, in order (each as for [`Self::push_back`]).
    pub fn push_slice(&mut self, gs: &[*mut G]) {
        if self.ring.try_reserve(gs.len()).is_err() {
            rt_sys::fatal!("runtime: out of memory growing the global run queue");
        }
        self.ring.extend(gs.iter().copied());
    }
    /// Removes the first G for which `f` holds, or returns null.
    pub fn take_first(&mut self, f: impl Fn(*mut G) -> bool) -> *mut G {
        match self.ring.iter().position(|&g| f(g)) {
            Some(i) => self.ring.remove(i).unwrap_or(null_mut()),
            None => null_mut(),
        }
    }
    /// Removes the first G, or returns null.
    pub fn pop(&mut self) -> *mut G {
        let gp = self.ring.pop_front().unwrap_or(null_mut());
        if self.ring.is_empty() && self.ring.capacity() > GQUEUE_KEEP {
            self.ring.shrink_to(GQUEUE_KEEP);
        }
        gp
    }
}

impl Default for GQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// State guarded by `sched.lock`.
#[derive(Debug)]
pub(crate) struct SchedLocked {
    /// Idle Ms.
    pub midle: *mut M,
    /// Count of idle Ms.
    pub nmidle: i32,
    /// Next M id.
    pub mnext: i64,
    /// Maximum number of Ms (`SetMaxThreads`; 10000).
    pub maxmcount: i32,
    /// System Ms (sysmon) not counted for deadlock detection.
    pub nmsys: i32,
    /// Idle Ps.
    pub pidle: *mut P,
    /// The global run queue.
    pub runq: GQueue,
    /// Ms parked while locked to a goroutine that is not running.
    pub nmidlelocked: i32,
}

impl SchedLocked {
    /// Adds `n` (possibly negative) to [`Sched::runqsize`]. Every change
    /// happens under the lock (this borrow proves it held), so a load and a
    /// store do: a locked read-modify-write costs about 15 ns even
    /// uncontended on a 2-core Xeon VM, and every yield and every take from
    /// the global queue paid one.
    #[inline]
    pub(crate) fn runqsize_add(&mut self, n: i32) {
        use core::sync::atomic::Ordering::Relaxed;
        SCHED
            .runqsize
            .store(SCHED.runqsize.load(Relaxed) + n, Relaxed);
    }
}

/// The scheduler's global state (Go's `schedt`).
///
/// The lock word with the state it guards, and the goroutine count, are
/// written by every lock round and every spawn and exit; the counters
/// `wakep` and `findrunnable` poll without the lock (`npidle`,
/// `nmspinning`, `runqsize`, …) are mostly read. Each of the two written
/// groups sits on a cache line of its own, so those writes do not keep
/// invalidating the line the pollers read.
#[derive(Debug)]
pub(crate) struct Sched {
    /// The part guarded by `sched.lock`, reached through [`Sched::lock`].
    locked: CachePadded<Mutex<SchedLocked>>,
    /// Last goid handed out in batches.
    pub goidgen: AtomicU64,
    /// Count of idle Ps (read without the lock by `wakep`).
    pub npidle: AtomicU32,
    /// Count of spinning Ms.
    pub nmspinning: AtomicU32,
    /// Length of the global run queue (read without the lock).
    pub runqsize: AtomicI32,
    /// Ms created so far.
    pub mcount: AtomicI32,
    /// Live user goroutines created or ended off any P, plus the
    /// `ngdelta` of every P that `procresize` destroyed (for
    /// `num_goroutine`, which adds the live Ps' `ngdelta`).
    pub ngoroutines: CachePadded<AtomicI64>,
    /// Set once `runtime.main` runs: `newproc` may start Ms from then on.
    pub main_started: AtomicBool,
    /// Set when the process is exiting: Ms stop scheduling.
    pub exiting: AtomicBool,
    /// Goroutines parked on a timer (so the deadlock check waits for them).
    pub ntimers: AtomicI64,
    /// `allp` length, i.e. GOMAXPROCS.
    pub gomaxprocs: AtomicI32,
    /// Bitmask of idle Ps, one bit per P id (up to 64 words here).
    pub idlepmask: AtomicUsize,
    /// Set while the world is being stopped: Ms give up their Ps.
    pub gcwaiting: AtomicBool,
    /// Ps still to stop before the world is stopped.
    pub stopwait: AtomicI32,
    /// Where the stopper sleeps until `stopwait` reaches 0.
    pub stopnote: Note,
    /// Counts of the scheduler's slow-path events, for `schedtrace`.
    pub stats: CachePadded<SchedStats>,
}

/// What explains a run's scheduling cost, counted since start: each field
/// counts an event of a slow path (never of the spawn, switch or channel
/// fast paths), so relaxed increments on their own cache line cost nothing
/// measurable. `GODEBUG=schedtrace` prints them after Go's fields.
#[derive(Debug)]
pub(crate) struct SchedStats {
    /// Successful steals of half a victim's ring.
    pub steals: AtomicU64,
    /// Goroutines taken from a running victim's `runnext`.
    pub runnext_steals: AtomicU64,
    /// Batches a full local ring moved to the global queue.
    pub overflows: AtomicU64,
    /// Ms started or woken to run an idle P (`startm`).
    pub wakeups: AtomicU64,
    /// Ms that found no work and went to sleep (`stopm`).
    pub parks: AtomicU64,
    /// Goroutines suspended in place by a preemption signal.
    pub preemptions: AtomicU64,
    /// Ps given up by goroutines a preemption signal found blocked in the
    /// kernel.
    pub handoffs: AtomicU64,
}

impl SchedStats {
    /// Adds one to `c`.
    #[inline]
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    }
}

// SAFETY: the raw pointers in `SchedLocked` (idle Ms and Ps, queued and
// free Gs) are only followed with the lock held, and the objects they name
// are handed between threads through that lock.
unsafe impl Send for SchedLocked {}

/// `sched.lock` held: the lock-protected part of the scheduler's state,
/// unlocked when dropped.
pub(crate) type SchedGuard<'a> = MutexGuard<'a, SchedLocked>;

impl Sched {
    /// Takes `sched.lock` (Go's `lock(&sched.lock)`).
    #[inline]
    pub fn lock(&self) -> SchedGuard<'_> {
        self.locked.lock()
    }

    /// The lock-protected part without the lock, for the trace and the
    /// fatal report, which must not block on it.
    ///
    /// # Safety
    /// Only for racy reads of plain counters by a reporter that accepts a
    /// stale value; nothing may be written or followed through it.
    pub unsafe fn locked_racy(&self) -> *const SchedLocked {
        self.locked.data_ptr()
    }
}

/// The scheduler.
pub(crate) static SCHED: Sched = Sched {
    locked: CachePadded::new(Mutex::new(SchedLocked {
        midle: null_mut(),
        nmidle: 0,
        mnext: 0,
        maxmcount: 10000,
        nmsys: 0,
        pidle: null_mut(),
        runq: GQueue::new(),
        nmidlelocked: 0,
    })),
    goidgen: AtomicU64::new(0),
    npidle: AtomicU32::new(0),
    nmspinning: AtomicU32::new(0),
    runqsize: AtomicI32::new(0),
    mcount: AtomicI32::new(0),
    ngoroutines: CachePadded::new(AtomicI64::new(0)),
    main_started: AtomicBool::new(false),
    exiting: AtomicBool::new(false),
    ntimers: AtomicI64::new(0),
    gomaxprocs: AtomicI32::new(0),
    idlepmask: AtomicUsize::new(0),
    gcwaiting: AtomicBool::new(false),
    stopwait: AtomicI32::new(0),
    stopnote: Note::new(),
    stats: CachePadded::new(SchedStats {
        steals: AtomicU64::new(0),
        runnext_steals: AtomicU64::new(0),
        overflows: AtomicU64::new(0),
        wakeups: AtomicU64::new(0),
        parks: AtomicU64::new(0),
        preemptions: AtomicU64::new(0),
        handoffs: AtomicU64::new(0),
    }),
};

/// Gs a free batch holds: what a P hands to or takes from [`GFREE`] at once.
pub(crate) const GFREE_BATCH: i32 = 32;

/// Dead Gs shared by all Ps (Go's `sched.gFree`), as a stack of batches:
/// each batch is a `schedlink` chain whose head carries the batch's length
/// (`gfn`) and the next batch (`gfnext`). A P moves a whole batch with one
/// push or pop under the lock, without reading the Gs in it: a spawning P
/// and the P its goroutines exit on meet here, and walking the other
/// core's Gs under the lock was most of `newproc`'s time at GOMAXPROCS=2.
#[derive(Debug)]
pub(crate) struct GFreeBatches {
    /// The top batch, or null.
    pub head: *mut G,
    /// Gs in all batches.
    pub n: i64,
}

// SAFETY: the Gs are dead and reached only under the lock that guards this.
unsafe impl Send for GFreeBatches {}

/// The shared G free list, under a lock of its own (not `sched.lock`).
pub(crate) static GFREE: CachePadded<Mutex<GFreeBatches>> =
    CachePadded::new(Mutex::new(GFreeBatches {
        head: null_mut(),
        n: 0,
    }));

/// A cell for the runtime's bootstrap statics (`m0`, `g0`) whose addresses
/// the entry assembly takes. Access is single-threaded during boot and
/// owner-only afterwards, as for any M and G.
#[repr(transparent)]
#[derive(Debug)]
pub struct Static<T>(pub UnsafeCell<T>);

// SAFETY: see the type's doc: m0/g0 are touched by their own thread only
// (plus readers that go through the documented atomics).
unsafe impl<T> Sync for Static<T> {}

impl<T> Static<T> {
    /// Raw pointer to the value.
    pub const fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// m0: the M of the process's initial thread.
pub static M0: Static<M> = Static(UnsafeCell::new(M::new()));
/// g0 of m0: the scheduling goroutine on the initial thread's OS stack.
pub static G0: Static<G> = Static(UnsafeCell::new(G::new()));

/// Every G ever created (Go's `allgs`), for dumps and `num_goroutine`.
pub(crate) static ALLGS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Head of the list of all Ms, linked through `alllink` (Go's `allm`).
pub(crate) static ALLM: AtomicPtr<M> = AtomicPtr::new(null_mut());

/// One published generation of `allp`.
#[derive(Debug)]
pub(crate) struct AllP {
    /// The Ps, index = P id.
    pub ps: Box<[*mut P]>,
    /// The steal order for `ps.len()` Ps, built once per generation by
    /// `procresize` rather than on every steal.
    pub order: crate::steal::StealOrder,
}

/// The Ps: a leaked [`AllP`] that `procresize` replaces (read it through
/// `proc::allp()`, which keeps the length and the entries together).
pub(crate) static ALLP: AtomicPtr<AllP> = AtomicPtr::new(null_mut());
