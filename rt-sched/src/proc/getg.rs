//! The goroutine and M slots (Go's `getg`, `setg`, `settls`, the TLS half
//! of `minit`): one GS-relative load on an M, or a `thread_local!` when the
//! kernel refused `ARCH_SET_GS`.

use super::*;

thread_local! {
    /// The M this OS thread is, or null for threads the runtime did not
    /// create. A thread spawned from a goroutine inherits its creator's GS
    /// base but not this slot, which is why `getg_checked` consults it first.
    /// Code inlined into goroutines may read it through a stale address
    /// (`rt_sys::tls`), so on those paths only its null-ness is used: that
    /// is the same on every M, and Ms never exit. The M itself is read
    /// through GS.
    static CURRENT_M: Cell<*mut M> = const { Cell::new(null_mut()) };
    /// The goroutine slot when the kernel refused `ARCH_SET_GS`; read and
    /// written only out of line (`fallback_getg`).
    static FALLBACK_G: Cell<*mut G> = const { Cell::new(null_mut()) };
}

/// False when `ARCH_SET_GS` failed at boot and the goroutine slot lives in a
/// `thread_local!` instead (reported in the boot trace).
pub(crate) static GS_TLS: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(true);

/// The running goroutine (g0 while in the scheduler). One GS-relative load.
///
/// Only valid on an M; code reachable from other threads uses
/// [`getg_checked`].
#[inline(always)]
pub(crate) fn getg() -> *mut G {
    if GS_TLS.load(Ordering::Relaxed) {
        // SAFETY: every M points its GS base at its TLS block in `minit`
        // before running any goroutine; callers are on an M.
        unsafe { arch::getg_raw() }
    } else {
        fallback_getg()
    }
}

/// The goroutine slot without a GS block. Out of line: a thread-local's
/// address computed before a park would name the previous M's slot after
/// the goroutine resumed elsewhere (`rt_sys::tls`), and a call is
/// re-executed where it is written.
#[inline(never)]
pub(crate) fn fallback_getg() -> *mut G {
    FALLBACK_G.with(|g| g.get())
}

/// This thread's M from its thread-local, read out of line (see
/// [`fallback_getg`]).
#[inline(never)]
fn current_m_fresh() -> *mut M {
    CURRENT_M.with(|m| m.get())
}

/// The running goroutine, or null when the calling thread is not an M (a
/// thread the runtime did not create, even one that inherited an M's GS
/// base from its creator).
#[inline]
pub fn getg_checked() -> *mut G {
    if CURRENT_M.with(|m| m.get()).is_null() {
        return null_mut();
    }
    getg()
}

/// The calling thread's M, or null.
///
/// The thread-local only answers "is this thread an M?"; the M itself is
/// read through the GS base. A goroutine can resume on another M after any
/// call that may park it, and the compiler may keep a thread-local's
/// address in a register across such a call: that address would still name
/// the previous thread's slot, while `%gs:8` is read afresh.
#[inline]
pub(crate) fn current_m() -> *mut M {
    let m = CURRENT_M.with(|m| m.get());
    if m.is_null() {
        return m;
    }
    if !GS_TLS.load(Ordering::Relaxed) {
        return current_m_fresh();
    }
    // SAFETY: the thread is an M (stale or not, the flag is the same on
    // every M), so GS points at an M's TLS block whose word 1 is that M.
    unsafe { arch::getm_raw() as *mut M }
}

/// Sets the goroutine slot.
#[inline(always)]
pub(crate) fn setg(g: *mut G) {
    if GS_TLS.load(Ordering::Relaxed) {
        // SAFETY: as in `getg`: only called on Ms whose GS base is set.
        unsafe { arch::setg_raw(g) }
    } else {
        fallback_setg(g);
    }
}

/// Writes the goroutine slot without a GS block, out of line (see
/// [`fallback_getg`]).
#[inline(never)]
pub(crate) fn fallback_setg(g: *mut G) {
    FALLBACK_G.with(|c| c.set(g));
}

/// Go's `settls` + the `0x123` check for an M other than m0 (m0's is done
/// in rt0_go): points GS at `mp.tls`, proves the slot round-trips, binds g0.
///
/// # Safety
/// `mp` must be a live, leaked M owned by the calling thread.
pub(crate) unsafe fn minit_tls(mp: *mut M) {
    // SAFETY: mp is live and ours (caller).
    unsafe {
        let tls = (*mp).tls.as_mut_ptr();
        if GS_TLS.load(Ordering::Relaxed) {
            if arch::settls(tls).is_err() {
                rt_sys::throw("settls: arch_prctl(ARCH_SET_GS) failed on a new M");
            }
            arch::setg_raw(0x123 as *mut G);
            if (*mp).tls[TLS_G] != 0x123 {
                rt_sys::throw("settls: goroutine slot does not round-trip");
            }
        }
        (*mp).tls[TLS_M] = mp as usize;
    }
}

/// Records that the kernel refused `ARCH_SET_GS`: the goroutine slot is a
/// `thread_local!` from now on.
///
/// # Safety
/// Only on the initial thread during boot (rt0_go), before any goroutine
/// slot was written through the GS base: every later `getg` reads the
/// thread-local slot instead.
pub unsafe fn use_tls_fallback() {
    GS_TLS.store(false, Ordering::Relaxed);
}

/// True when the goroutine slot is in the GS base (the normal case).
pub fn gs_tls_in_use() -> bool {
    GS_TLS.load(Ordering::Relaxed)
}

/// Binds the calling thread to `mp` (its goroutine slot then names g0).
///
/// # Safety
/// `mp` must be live with a g0, and the calling thread must be its thread.
pub(crate) unsafe fn bind_thread(mp: *mut M) {
    // SAFETY: mp is live (caller); tls[1] is what `current_m` reads via GS.
    unsafe { (*mp).tls[TLS_M] = mp as usize };
    CURRENT_M.with(|c| c.set(mp));
    // SAFETY: mp is live (caller).
    unsafe {
        (*mp).procid.store(rt_sys::gettid(), Ordering::Relaxed);
        (*mp).thread = libc::pthread_self() as usize;
        setg((*mp).g0);
        if GS_TLS.load(Ordering::Relaxed) {
            // Runtime sections are counted in the block from now on.
            rt_sys::tls::mark_gs_thread();
        }
        // The allocator's cache moves into this M's block (or out of line
        // without one): Ms never exit and keep their GS base for life.
        rt_heap::register_m_thread(GS_TLS.load(Ordering::Relaxed));
    }
}

/// The running goroutine (null when not on one).
pub fn current_g() -> *mut G {
    let gp = getg_checked();
    // SAFETY: reading our own goroutine's goid.
    if gp.is_null() || unsafe { (*gp).goid } == 0 {
        null_mut()
    } else {
        gp
    }
}

/// Binds the initial thread to m0 early in `schedinit` (Go's `getg().m` is
/// m0 from rt0_go on), so boot code that asks for the current M or P sees
/// m0. Idempotent.
///
/// # Safety
/// Only on the initial thread, after rt0_go bound m0 and g0.
pub unsafe fn bind_m0() {
    // SAFETY: boot contract.
    unsafe { bind_thread(M0.get()) }
}

/// True when the caller runs on its M's g0 (the scheduler stack).
pub fn on_g0() -> bool {
    let gp = getg_checked();
    // SAFETY: reading our own M's g0 pointer.
    !gp.is_null() && unsafe { (*(*gp).m).g0 == gp }
}
