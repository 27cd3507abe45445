//! How many Ps: the CPU count (`getproccount` in os_linux.go), Go 1.25's
//! cgroup-aware default (`defaultGOMAXPROCS`), and the `GOMAXPROCS`
//! override (`schedinit`).
//!
//! Order at boot: `ncpu = affinity_cpus()` in `osinit`; after
//! `parsedebugvars`, `default_procs(ncpu, cgroup_cpu_limit(), &dv)`; then
//! `gomaxprocs(GOMAXPROCS, default)` decides what `procresize` gets.

use crate::atoi::atoi32;
use crate::debugvars::DebugVars;

/// Size of the affinity mask Go asks the kernel for: 8192 bytes, room for
/// 65536 CPUs.
const AFFINITY_MASK_BYTES: usize = 8192;

/// The number of CPUs this thread may run on: the population count of the
/// `sched_getaffinity` mask (as much of the 8192-byte mask as the kernel
/// filled). 1 when the call fails or reports no CPU, so never below 1.
pub fn affinity_cpus() -> i32 {
    let mut mask = [0u64; AFFINITY_MASK_BYTES / 8];
    // The raw form is used because it returns the number of bytes written
    // (glibc's wrapper returns 0).
    // SAFETY: writes at most `AFFINITY_MASK_BYTES` bytes into `mask`, which is exactly that large.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            0 as libc::pid_t,
            AFFINITY_MASK_BYTES,
            mask.as_mut_ptr(),
        )
    };
    if r <= 0 {
        return 1;
    }
    let filled = (r as usize).min(AFFINITY_MASK_BYTES);
    // Counted in place: `osinit` calls this before the heap exists.
    let n: u32 = mask
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .take(filled)
        .map(|b| b.count_ones())
        .sum();
    i32::try_from(n).unwrap_or(i32::MAX).max(1)
}

/// The default `GOMAXPROCS` when the variable is not set (Go 1.25): the
/// affinity count, lowered to the cgroup CPU limit when there is one and
/// `containermaxprocs` allows it. The limit is rounded up to a whole CPU and
/// raised to at least 2 before the comparison, so a 0.5-CPU container still
/// gets 2 Ps (when it has 2 CPUs to run on) and the result never exceeds
/// `affinity`.
///
/// Go converts the rounded limit to `int32` without a range check; a limit
/// beyond `i32::MAX` CPUs (impossible with the kernel's caps on quota and
/// period) is treated here as no limit instead of wrapping. A non-finite
/// limit is also no limit.
pub fn default_procs(affinity: i32, limit: Option<f64>, dv: &DebugVars) -> i32 {
    let procs = affinity;
    if !dv.container_aware() {
        return procs;
    }
    let Some(limit) = limit.filter(|l| l.is_finite()) else {
        return procs;
    };
    let limit = limit.ceil().max(2.0);
    if limit < f64::from(procs) {
        // In range: 2 <= limit < procs <= i32::MAX.
        limit as i32
    } else {
        procs
    }
}

/// `GOMAXPROCS` as `schedinit` reads it: the value when Go's `atoi32`
/// accepts it and it is above 0, else `default_procs`. There is no upper
/// clamp here (Go caps only later calls of `runtime.GOMAXPROCS(n)`).
pub fn gomaxprocs(env: Option<&[u8]>, default_procs: i32) -> i32 {
    match env.and_then(atoi32) {
        Some(n) if n > 0 => n,
        _ => default_procs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debugvars::parse_godebug;
    use proptest::prelude::*;

    #[test]
    fn affinity_matches_std() {
        // std's available_parallelism also reads the affinity mask (and
        // cgroup quotas, so it can only be lower).
        let n = affinity_cpus();
        assert!(n >= 1);
        if let Ok(std_n) = std::thread::available_parallelism() {
            assert!(std_n.get() as i32 <= n);
        }
        // Cross-check with glibc's CPU_COUNT on a cpu_set_t (1024 CPUs).
        // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `set` is a live cpu_set_t of `size` bytes.
        let r = unsafe { libc::sched_getaffinity(0, size, &mut set) };
        if r == 0 {
            // SAFETY: `set` was filled by the kernel and is only read.
            let count = unsafe { libc::CPU_COUNT(&set) };
            assert_eq!(count, n);
        }
    }

    #[test]
    fn gomaxprocs_table() {
        let d = 7;
        for (s, want) in [
            (&b"4"[..], 4),
            (b"1", 1),
            (b"0", d),
            (b"-1", d),
            (b"-", d),
            (b"-0", d),
            (b"+3", d),
            (b" 3", d),
            (b"3 ", d),
            (b"", d),
            (b"abc", d),
            (b"0x10", d),
            (b"1e3", d),
            (b"1_0", d),
            (b"007", 7),
            (b"2147483647", i32::MAX),
            (b"2147483648", d),
            (b"99999", 99999),
        ] {
            assert_eq!(
                gomaxprocs(Some(s), d),
                want,
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
        assert_eq!(gomaxprocs(None, d), d);
    }

    #[test]
    fn default_procs_rules() {
        let on = DebugVars::default();
        let off = parse_godebug(b"containermaxprocs=0");
        assert_eq!(default_procs(8, None, &on), 8);
        assert_eq!(default_procs(8, Some(1.5), &on), 2);
        assert_eq!(default_procs(8, Some(2.01), &on), 3);
        assert_eq!(default_procs(8, Some(0.1), &on), 2);
        assert_eq!(default_procs(8, Some(-3.0), &on), 2);
        assert_eq!(default_procs(1, Some(0.5), &on), 1, "never above affinity");
        assert_eq!(default_procs(4, Some(16.0), &on), 4);
        assert_eq!(default_procs(4, Some(4.0), &on), 4);
        assert_eq!(default_procs(8, Some(1.5), &off), 8);
        assert_eq!(default_procs(8, Some(f64::INFINITY), &on), 8);
        assert_eq!(default_procs(8, Some(f64::NAN), &on), 8);
        assert_eq!(default_procs(8, Some(1e300), &on), 8);
    }

    proptest! {
        #[test]
        fn gomaxprocs_never_panics_and_is_positive_given_positive_default(
            s in proptest::collection::vec(any::<u8>(), 0..16), d in 1..i32::MAX) {
            prop_assert!(gomaxprocs(Some(&s), d) >= 1);
        }

        #[test]
        fn default_is_within_bounds(aff in 1..4096i32, limit in proptest::option::of(-1e6f64..1e6)) {
            let p = default_procs(aff, limit, &DebugVars::default());
            prop_assert!(p <= aff);
            prop_assert!(p >= aff.min(2));
            if let Some(l) = limit {
                if l.ceil() >= 2.0 && l.ceil() < f64::from(aff) {
                    prop_assert_eq!(p, l.ceil() as i32);
                }
            } else {
                prop_assert_eq!(p, aff);
            }
        }
    }
}
