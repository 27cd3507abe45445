//! rt-sched: Go's G-M-P scheduler for Rust.
//!
//! * **G** ([`boot::G`]) — a goroutine: a fixed-size, guard-paged stack from
//!   `rt-stack`, a saved context, a status.
//! * **M** ([`boot::M`]) — an OS thread running goroutines. Its TLS block is what
//!   the GS base points at, so `getg()` is a single `mov %gs:0`.
//! * **P** ([`boot::P`]) — the right to run goroutines: a local run queue
//!   (`runnext` + a 256-slot ring), an allocator cache (`rt-heap`), a stack
//!   cache (`rt-stack`), timers. `GOMAXPROCS` Ps exist.
//!
//! The hot paths, as in Go:
//! 1. `spawn` → `newproc`: take a dead G from the P's free list (its stack
//!    is kept), lay out a fresh stack top, hand out a goid from the P's batch,
//!    put the G in `runnext`, `wakep` if Ps are idle.
//! 2. `schedule`: every 61st tick one G from the global queue, else
//!    `runnext`, the local ring, `findrunnable` (global queue, timers,
//!    stealing half of a random victim's ring, then park the M).
//! 3. blocking (`Chan`, `WaitGroup`, `JoinHandle::join`, `sleep`):
//!    `gopark` saves the goroutine (callee-saved registers on its own stack)
//!    and runs the scheduler on g0; `goready` puts it in the waker's
//!    `runnext`.
//!
//! Boot (`rt-entry` drives it): `mcommoninit(m0)` → `procresize_boot` →
//! `newproc(main)` → `mstart_m0`.
//!
//! ## Thread-locals in goroutines
//!
//! A goroutine may resume on a different M (OS thread) after any blocking
//! call — `gosched`, a channel operation, `sleep`, `Mutex::lock`, `join`.
//! `thread_local!` values therefore belong to the M, not to the goroutine:
//! read them again after such a call, and never hold a reference to one
//! across it (the compiler may also keep a thread-local's address in a
//! register across the call). Pin a goroutine with [`lock_os_thread`] when it
//! needs one thread's state throughout. The runtime itself keeps per-M state
//! in the M (reached through the GS base) and re-reads it after every
//! switch.

#![warn(missing_docs)]

mod arch;
pub mod boot;
mod chan;
mod chan_ext;
mod chan_ring;
mod dump;
mod lock;
pub mod netpoll;
mod netpoll_epoll;
mod panic;
mod park;
mod phase;
pub mod preempt;
mod proc;
mod runq;
mod runtime2;
pub mod select_macro;
mod steal;
mod sync;
mod sysmon;
mod time;

pub use chan::{
    Chan, IntoIter, RecvError, RecvTimeoutError, RecvToken, Select, SendError, TryIter,
    TryRecvError, TrySendError,
};
pub use panic::panic_message;
pub use proc::{gosched, lock_os_thread, unlock_os_thread, SpawnError};
pub use rt_stack::StackError;
pub use sync::{Mutex, MutexGuard, WaitGroup};

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, Ordering};
use lock::Lock;
use park::Waiter;
use std::sync::Arc;

struct JoinInner<T> {
    lock: Lock,
    result: UnsafeCell<Option<std::thread::Result<T>>>,
    done: AtomicU32,
    waiter: UnsafeCell<*const Waiter>,
}

// SAFETY: `result` and `waiter` are only touched with `lock` held.
unsafe impl<T: Send> Sync for JoinInner<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for JoinInner<T> {}

/// Owned permission to wait for a goroutine and take its result.
pub struct JoinHandle<T> {
    inner: Arc<JoinInner<T>>,
    goid: i64,
}

impl<T> core::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("goid", &self.goid)
            .finish()
    }
}

impl<T: Send> JoinHandle<T> {
    /// Waits for the goroutine; `Err` carries its panic payload.
    pub fn join(self) -> std::thread::Result<T> {
        let j = &self.inner;
        j.lock.lock();
        if j.done.load(Ordering::Acquire) == 0 {
            let w = Waiter::new();
            // SAFETY: lock held.
            unsafe { *j.waiter.get() = &w };
            // SAFETY: lock held; w stays on this stack until woken.
            unsafe { w.park(&j.lock, "join") };
            j.lock.lock();
        }
        // SAFETY: lock held; done is set, so the result is there.
        let r = unsafe { (*j.result.get()).take() };
        j.lock.unlock();
        r.expect("joined goroutine left no result")
    }

    /// The goroutine's id.
    pub fn goid(&self) -> i64 {
        self.goid
    }

    /// True once the goroutine has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.done.load(Ordering::Acquire) != 0
    }
}

/// Starts a goroutine running `f` and returns a handle to join it. A panic
/// in `f` is caught and returned by [`JoinHandle::join`].
///
/// # Panics
/// When no stack can be had for the goroutine (see [`try_spawn`]).
#[inline(always)]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Always inlined, so the PC is in the caller: its `created by` line.
    match try_spawn_at(f, rt_traceback::current_pc()) {
        Ok(h) => h,
        Err(e) => panic!("spawn: {e}"),
    }
}

/// [`spawn`] that reports a failure to create the goroutine.
#[inline(always)]
pub fn try_spawn<F, T>(f: F) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    try_spawn_at(f, rt_traceback::current_pc())
}

/// [`try_spawn`] for a `go` statement at `gopc`.
fn try_spawn_at<F, T>(f: F, gopc: usize) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let inner = Arc::new(JoinInner {
        lock: Lock::new(),
        result: UnsafeCell::new(None),
        done: AtomicU32::new(0),
        waiter: UnsafeCell::new(core::ptr::null()),
    });
    let theirs = inner.clone();
    let gp = proc::newproc(
        Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            theirs.lock.lock();
            // SAFETY: lock held.
            let w = unsafe {
                *theirs.result.get() = Some(r);
                core::mem::replace(&mut *theirs.waiter.get(), core::ptr::null())
            };
            theirs.done.store(1, Ordering::Release);
            theirs.lock.unlock();
            if !w.is_null() {
                // SAFETY: the joiner queued itself under the lock and waits.
                unsafe { Waiter::wake(w) };
            }
        }),
        gopc,
    )?;
    // SAFETY: the goid is written before the G is queued and never changes
    // while it lives; reading it races with nothing.
    let goid = unsafe { (*gp).goid };
    Ok(JoinHandle { inner, goid })
}

/// Starts a goroutine with no handle, like Go's `go f()`. A panic in it
/// that nobody recovers ends the program (`panic: …`, status 2).
///
/// # Panics
/// When no stack can be had for the goroutine.
#[inline(always)]
pub fn go<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    // Always inlined, so the PC is in the caller: its `created by` line.
    go_at(f, rt_traceback::current_pc())
}

fn go_at<F>(f: F, gopc: usize)
where
    F: FnOnce() + Send + 'static,
{
    if let Err(e) = proc::newproc(Box::new(f), gopc) {
        panic!("go: {e}");
    }
}

/// `go!(expr)` / `go!(move || …)`: start a goroutine, Go style.
#[macro_export]
macro_rules! go {
    ($($body:tt)*) => { $crate::go(move || { $($body)*; }) };
}

/// Parks the calling goroutine for `d` (Go's `time.Sleep`).
pub fn sleep(d: std::time::Duration) {
    let ns = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX / 2);
    proc::sleep_until(rt_sys::nanotime().saturating_add(ns));
}

/// Current `GOMAXPROCS`.
pub fn gomaxprocs() -> i32 {
    runtime2::SCHED.gomaxprocs.load(Ordering::Relaxed)
}

/// Sets `GOMAXPROCS` at run time and returns the previous value (Go's
/// `runtime.GOMAXPROCS(n)`; `n <= 0` only queries). Stops the world while
/// the Ps are resized.
pub fn set_gomaxprocs(n: i32) -> i32 {
    proc::set_gomaxprocs(n)
}

/// Sets the maximum number of OS threads the runtime may create and
/// returns the previous limit (Go's `debug.SetMaxThreads`; 10000 by
/// default). Exceeding it is `fatal error: thread exhaustion`.
pub fn set_max_threads(n: i32) -> i32 {
    proc::set_max_threads(n)
}

/// Runs `f`, which blocks the OS thread (a blocking system call, waiting on
/// a `Notifier`, a foreign lock…), without holding up other goroutines: the
/// goroutine's P is handed to another M for the duration, as Go does around
/// a blocking system call. Outside a goroutine it just runs `f`.
#[inline(always)]
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    // The frame that stays put while `f` runs: reports walk from here.
    let entered = proc::entersyscallblock(rt_traceback::Regs::here());
    let r = f();
    if entered {
        proc::exitsyscall();
    }
    r
}

/// Go's `time.After`: a channel that receives once after `d`.
pub fn after(d: std::time::Duration) -> Chan<()> {
    let ch = Chan::new(1);
    let tx = ch.clone();
    go(move || {
        sleep(d);
        let _ = tx.try_send(());
    });
    ch
}

/// Live user goroutines (Go's `runtime.NumGoroutine`).
pub fn num_goroutine() -> i64 {
    proc::gcount()
}

/// Id of the running goroutine, 0 when not on one.
pub fn goid() -> i64 {
    let gp = proc::getg_checked();
    if gp.is_null() {
        0
    } else {
        proc::goid_of(gp)
    }
}

/// Id of the calling thread's M, -1 when it is not an M.
pub fn mid() -> i64 {
    let mp = proc::current_m();
    if mp.is_null() {
        -1
    } else {
        // SAFETY: our own M.
        unsafe { (*mp).id }
    }
}
