//! `sigsave`, as a `schedinit` phase.

use rt_sys::phase::{Ctx, Phase};

/// Go's `sigsave(&m0.sigmask)`: the signal mask the process inherited,
/// kept as the mask every new M starts from.
#[derive(Debug, Clone, Copy)]
pub struct Sigsave;

impl Phase for Sigsave {
    unsafe fn run(&self, cx: &mut Ctx) {
        let mask = crate::sigsave();
        crate::set_initial_mask(mask);
        cx.detail(|| format!("inherited mask {mask:?}"));
    }
}
