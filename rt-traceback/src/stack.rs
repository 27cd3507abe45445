//! A stack of its own for reports. Crash reports run on a thread's 32 KiB
//! signal stack or on a goroutine's; reading DWARF for symbols needs more
//! than either can be trusted to have, so the printing part of a report
//! runs on a stack mapped the first time one is needed.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::arch::call_on_stack;

/// Size of the report stack, a guard page below it not included.
const REPORT_STACK: usize = 4 << 20;

static TOP: AtomicUsize = AtomicUsize::new(0);
static BUSY: AtomicBool = AtomicBool::new(false);

fn top() -> Option<usize> {
    let t = TOP.load(Ordering::Acquire);
    if t != 0 {
        return Some(t);
    }
    let page = 4096;
    // SAFETY: a fresh anonymous mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            REPORT_STACK + page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the lowest page of the mapping just made becomes its guard.
    unsafe { libc::mprotect(p, page, libc::PROT_NONE) };
    let t = p as usize + page + REPORT_STACK;
    match TOP.compare_exchange(0, t, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(t),
        Err(other) => {
            // SAFETY: our mapping lost the race and nobody saw it.
            unsafe { libc::munmap(p, REPORT_STACK + page) };
            Some(other)
        }
    }
}

extern "C" fn run<F: FnOnce()>(arg: *mut u8) {
    // SAFETY: `arg` is the `Option<F>` on_report_stack passed, live for the call.
    let slot = unsafe { &mut *(arg as *mut Option<F>) };
    if let Some(f) = slot.take() {
        // A panic must not unwind into the stack switch.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    }
}

/// Runs `f` on the report stack (on the current stack when the report
/// stack cannot be mapped or another thread is using it). A panic in `f`
/// is caught and dropped.
pub fn on_report_stack<F: FnOnce()>(f: F) {
    let mut slot = Some(f);
    let t = top();
    match t {
        Some(t) if !BUSY.swap(true, Ordering::Acquire) => {
            // `run` catches panics, so nothing unwinds through the switch.
            // SAFETY: `t` is the aligned top of the report stack, which BUSY gives to this call alone.
            unsafe { call_on_stack(t, run::<F>, &mut slot as *mut Option<F> as *mut u8) };
            BUSY.store(false, Ordering::Release);
        }
        // Safe to call directly: `run` only reads the slot it is given.
        _ => run::<F>(&mut slot as *mut Option<F> as *mut u8),
    }
}
