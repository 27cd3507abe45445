//! The `schedinit` phases the scheduler owns: `maxmcount`, `fastrandinit`,
//! `mcommoninit(m0)` and `procresize`.

use crate::proc;
use crate::runtime2::M0;
use rt_sys::phase::{Ctx, Phase};

/// Go's `sched.maxmcount = 10000`: the thread cap.
#[derive(Debug, Clone, Copy)]
pub struct Maxmcount;

/// The thread cap Go starts with.
pub const MAX_THREADS: i32 = 10000;

impl Phase for Maxmcount {
    unsafe fn run(&self, cx: &mut Ctx) {
        proc::set_max_threads(MAX_THREADS);
        cx.detail(|| format!("maxmcount={MAX_THREADS}"));
    }
}

/// Go's `fastrandinit`: the seed every M's generator starts from.
#[derive(Debug, Clone, Copy)]
pub struct Fastrandinit;

/// Where a seed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedSource {
    /// The kernel's `AT_RANDOM` bytes.
    AtRandom,
    /// `getrandom(2)`, when the kernel passed no `AT_RANDOM`.
    Getrandom,
}

/// `n` (≤ 16) random bytes: the first `n` of `AT_RANDOM` when the kernel
/// passed them (Go's `startupRandomData`), else from `getrandom(2)`. A
/// process that can get neither cannot seed its hash or its scheduler, and
/// ends with a fatal error, as Go's `fastrandinit` does.
pub fn startup_random(at_random: Option<[u8; 16]>) -> ([u8; 16], SeedSource) {
    if let Some(b) = at_random {
        return (b, SeedSource::AtRandom);
    }
    let mut b = [0u8; 16];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: getrandom writes at most `len - got` bytes at `b[got..]`,
        // which is in bounds.
        let n = unsafe { libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
        if n > 0 {
            got += n as usize;
            continue;
        }
        // SAFETY: errno is thread-local and always readable.
        if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
            continue;
        }
        rt_sys::throw("fastrandinit: no AT_RANDOM and getrandom failed");
    }
    (b, SeedSource::Getrandom)
}

impl Phase for Fastrandinit {
    unsafe fn run(&self, cx: &mut Ctx) {
        let (bytes, source) = startup_random(cx.random());
        let seed = u64::from_le_bytes(bytes[..8].try_into().expect("8 of 16 bytes"));
        proc::fastrandinit(seed);
        cx.detail(|| {
            format!(
                "seed from {}",
                match source {
                    SeedSource::AtRandom => "AT_RANDOM",
                    SeedSource::Getrandom => "getrandom",
                }
            )
        });
    }
}

/// Go's `mcommoninit(m0)`: m0's id, generator state and signal goroutine,
/// and m0 on `allm`.
#[derive(Debug, Clone, Copy)]
pub struct Mcommoninit;

impl Phase for Mcommoninit {
    unsafe fn run(&self, cx: &mut Ctx) {
        // SAFETY: schedinit runs this once on the initial thread, which rt0_go
        // bound to m0 and g0 (the trait's contract); m0 is not yet registered.
        unsafe {
            proc::bind_m0();
            proc::mcommoninit(M0.get(), 0);
        }
        cx.detail(|| {
            // SAFETY: m0 and its gsignal were just set up and are never freed.
            let (m0, gs) = unsafe { (&*M0.get(), &*(*M0.get()).gsignal) };
            format!(
                "m0 id={} fastrand={:#x},{:#x} gsignal=[{:#x}, {:#x}) ({} KiB)",
                m0.id,
                m0.fastrand[0],
                m0.fastrand[1],
                gs.stack.lo,
                gs.stack.hi,
                (gs.stack.hi - gs.stack.lo) / 1024
            )
        });
    }
}

/// Go's `procresize(GOMAXPROCS)` at boot: `GOMAXPROCS` Ps, each with an
/// allocator cache and a stack cache, P0 bound to m0, the rest idle. The
/// count is [`rt_env::phase::startup_procs`]'s choice, with the `GODEBUG`
/// settings `parsedebugvars` settled.
#[derive(Debug, Clone, Copy)]
pub struct Procresize;

impl Phase for Procresize {
    unsafe fn run(&self, cx: &mut Ctx) {
        let dv = rt_env::phase::debugvars();
        let choice = rt_env::phase::startup_procs(cx.ncpu(), &dv);
        proc::configure(proc::SchedConfig {
            stack_size: rt_stack::default_stack_size(),
            schedtrace: dv.schedtrace,
            scheddetail: dv.scheddetail,
            lazy_stacks: rt_stack::stack_info().guard
                == rt_stack::GuardMechanism::MadviseGuardInstall,
        });
        // SAFETY: boot, on m0, once; the world is stopped (only m0 exists).
        unsafe { proc::procresize_boot(choice.procs) };
        cx.detail(|| {
            format!(
                "gomaxprocs={} (ncpu={}, cgroup limit={}) P0 running on m0, {} idle",
                choice.procs,
                choice.ncpu,
                choice
                    .cgroup_limit
                    .map(|l| format!("{l}"))
                    .unwrap_or_else(|| "none".into()),
                choice.procs - 1
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_random_is_used_as_given() {
        let b = [7u8; 16];
        assert_eq!(startup_random(Some(b)), (b, SeedSource::AtRandom));
    }

    #[test]
    fn without_at_random_the_kernel_supplies_fresh_bytes() {
        let (a, sa) = startup_random(None);
        let (b, _) = startup_random(None);
        assert_eq!(sa, SeedSource::Getrandom);
        // Two 128-bit draws agree with probability 2^-128.
        assert_ne!(a, b);
    }
}
