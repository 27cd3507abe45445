//! Helpers shared by the `rt-demo` scenarios and `bench-rt`.

/// README.md, whose Rust program is built and run as a doc test of this
/// crate (`cargo test -p rt-tests --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeProgram;

use std::sync::atomic::{AtomicPtr, Ordering};

/// Publishes the running goroutine in `slot` and parks it in no queue:
/// only a [`rt_sched::boot::yield_to`] from the goroutine that finds it with
/// [`wait_parked`] resumes it.
pub fn park_for_yield_to(slot: &AtomicPtr<rt_sched::boot::G>, reason: &'static str) {
    slot.store(rt_sched::boot::current_g(), Ordering::Release);
    rt_sched::boot::gopark(None, 0, reason);
}

/// Waits, yielding the processor, until the goroutine published in `slot`
/// by [`park_for_yield_to`] is parked; returns it.
pub fn wait_parked(slot: &AtomicPtr<rt_sched::boot::G>) -> *mut rt_sched::boot::G {
    loop {
        let g = slot.load(Ordering::Acquire);
        if !g.is_null() {
            // SAFETY: Gs are never freed, so a published G can always be
            // read; the status is an atomic snapshot.
            let status = unsafe { (*g).atomicstatus.load(Ordering::Acquire) };
            if status == rt_sched::boot::GWAITING {
                return g;
            }
        }
        rt_sched::gosched();
    }
}
