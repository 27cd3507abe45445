//! The runtime's mutex (Go's `lock_futex.go`), shared with the allocator:
//! see [`rt_sys::Lock`]. Blocks the thread, not the goroutine: only for short
//! critical sections inside the scheduler and the primitives built on it.
//!
//! Under `--cfg loom` it is replaced by a lock built on loom's mutex, so the
//! channel model (`chan::loom_tests`) sees every acquire and release.

#[cfg(not(loom))]
pub(crate) use rt_sys::Lock;

#[cfg(loom)]
pub(crate) use model::Lock;

#[cfg(loom)]
mod model {
    use core::cell::UnsafeCell;
    use loom::sync::{Mutex, MutexGuard};
    use std::sync::OnceLock;

    /// The model's stand-in for [`rt_sys::Lock`]: a loom mutex whose guard is
    /// parked in the lock between `lock` and `unlock`, because the channel
    /// code and `Waiter::park_all` lock and unlock in separate calls. Like
    /// the futex lock it is an acquire on `lock` and a release on `unlock`,
    /// nothing more, and a thread that finds it held is blocked (not
    /// runnable) for loom until the holder unlocks. (A spin lock that
    /// yields would let loom explore unfair schedules in which two spinning
    /// threads take turns forever while the holder never runs.)
    ///
    /// `new` stays a `const fn` because the scheduler's statics are built from
    /// it (they are compiled under loom but never run there). Loom objects
    /// cannot be made in a constant, so they are created on first touch.
    /// Owners shared between model threads call [`init`](Lock::init) right
    /// after construction, so the objects are made by the owner's creator,
    /// before any other thread can see the lock, rather than by whichever
    /// thread happens to lock it first.
    pub struct Lock {
        state: OnceLock<State>,
    }

    struct State {
        mutex: Mutex<()>,
        /// The holder's guard (`None` while the lock is free). Its lifetime
        /// is widened to `'static`: see `Lock::lock`.
        guard: UnsafeCell<Option<MutexGuard<'static, ()>>>,
    }

    // SAFETY: `guard` is only touched by the thread holding `mutex` (and
    // model threads run one at a time on the test's OS thread, so the guard
    // never really changes OS threads).
    unsafe impl Send for State {}
    // SAFETY: as above.
    unsafe impl Sync for State {}

    impl core::fmt::Debug for Lock {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Lock").finish_non_exhaustive()
        }
    }

    impl Default for Lock {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Lock {
        /// An unlocked lock (its loom objects are made by
        /// [`init`](Self::init) or the first operation).
        pub const fn new() -> Lock {
            Lock {
                state: OnceLock::new(),
            }
        }

        /// Creates the loom objects now, on the calling model thread.
        pub fn init(&self) {
            let _ = self.state();
        }

        fn state(&self) -> &State {
            self.state.get_or_init(|| State {
                mutex: Mutex::new(()),
                guard: UnsafeCell::new(None),
            })
        }

        /// Acquires the lock, blocking while another model thread holds it.
        pub fn lock(&self) {
            let st = self.state();
            let g = st.mutex.lock().unwrap();
            // The guard borrows `st.mutex`, which stays in place until the
            // guard is dropped by `unlock`: a runtime lock is neither moved
            // nor dropped while it is held.
            // SAFETY: the mutex outlives the guard (see above).
            let g: MutexGuard<'static, ()> = unsafe { core::mem::transmute(g) };
            // SAFETY: we hold the mutex, so the slot is ours.
            unsafe { *st.guard.get() = Some(g) };
        }

        /// Releases the lock; releasing a free lock is a model failure.
        pub fn unlock(&self) {
            let st = self.state();
            // SAFETY: the caller holds the lock, so the slot is ours.
            let g = unsafe { (*st.guard.get()).take() };
            assert!(g.is_some(), "unlock of an unlocked Lock");
            drop(g);
        }

        /// Tries to acquire without blocking.
        pub fn try_lock(&self) -> bool {
            let st = self.state();
            match st.mutex.try_lock() {
                Ok(g) => {
                    // SAFETY: as in `lock`.
                    let g: MutexGuard<'static, ()> = unsafe { core::mem::transmute(g) };
                    // SAFETY: as in `lock`.
                    unsafe { *st.guard.get() = Some(g) };
                    true
                }
                Err(_) => false,
            }
        }
    }
}
