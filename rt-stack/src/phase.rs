//! `stackinit`, as a `schedinit` phase.

use crate::{stackinit, GuardPolicy, StackConfig};
use rt_sys::phase::{Ctx, Phase};

impl StackConfig {
    /// The pool configuration `GODEBUG` asks for: `stacksize=N` sets the
    /// default goroutine stack size (values ≤ 0 keep the default),
    /// `guardpage=1` forces the `mprotect` guard pages.
    pub fn from_godebug(dv: &rt_env::DebugVars) -> StackConfig {
        let mut cfg = StackConfig::default();
        if let Some(n) = dv.stack_size() {
            cfg.default_size = n;
        }
        if dv.force_mprotect_guard() {
            cfg.guard = GuardPolicy::Mprotect;
        }
        cfg
    }
}

/// Go's `stackinit`: the stack pool, configured from the `GODEBUG` of the
/// initial environment (this phase runs before `goenvs`).
#[derive(Debug, Clone, Copy)]
pub struct Stackinit;

impl Phase for Stackinit {
    unsafe fn run(&self, cx: &mut Ctx) {
        let dv = rt_env::parse_godebug(cx.raw_getenv(b"GODEBUG").unwrap_or(b""));
        match stackinit(StackConfig::from_godebug(&dv)) {
            Ok(info) => cx.detail(|| info.to_string()),
            Err(e) => rt_sys::fatal!("stackinit: {}", e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn godebug_keys_map_to_the_pool_configuration() {
        let d = StackConfig::from_godebug(&rt_env::parse_godebug(b""));
        assert_eq!(d, StackConfig::default());
        let c = StackConfig::from_godebug(&rt_env::parse_godebug(b"stacksize=131072,guardpage=1"));
        assert_eq!(c.default_size, 131072);
        assert_eq!(c.guard, GuardPolicy::Mprotect);
        let z = StackConfig::from_godebug(&rt_env::parse_godebug(b"stacksize=0,guardpage=0"));
        assert_eq!(z, StackConfig::default());
    }
}
