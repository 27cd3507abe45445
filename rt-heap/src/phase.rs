//! `mallocinit` and `gcinit`, as `schedinit` phases.

use crate::{gcinit, mallocinit, INIT, READY};
use core::sync::atomic::Ordering;
use rt_sys::phase::{Ctx, Phase};

/// Go's `mallocinit`: the page sizes and size-class table checked, the arena
/// index mapped, the arena hints laid out, and the first arena reserved, so
/// that a process without the address space for a heap ends here with a
/// fatal error rather than in its first allocation.
///
/// The heap also starts lazily, at the first allocation, if one comes
/// earlier (the boot trace's details at `inittrace=2`, or the
/// `/proc/self/auxv` fallback of `args` when the kernel passed no auxiliary
/// vector); this phase then finds it started and says so.
#[derive(Debug, Clone, Copy)]
pub struct Mallocinit;

impl Phase for Mallocinit {
    unsafe fn run(&self, cx: &mut Ctx) {
        let early = INIT.load(Ordering::Acquire) == READY;
        let info = match mallocinit() {
            Ok(info) => info,
            Err(e) => rt_sys::fatal!("mallocinit: {}", e),
        };
        cx.detail(|| {
            format!(
                "{info:?}{}",
                if early {
                    " (started earlier, by the first allocation)"
                } else {
                    ""
                }
            )
        });
    }
}

/// Go's `gcinit`, for a heap without a collector: the scavenger's retention
/// policy. (The scavenger itself runs on sysmon's tick.)
#[derive(Debug, Clone, Copy)]
pub struct Gcinit;

impl Phase for Gcinit {
    unsafe fn run(&self, cx: &mut Ctx) {
        gcinit(Default::default());
        cx.detail(|| {
            "no collector (Rust frees explicitly): heap statistics and the scavenger, run by sysmon"
                .into()
        });
    }
}
