//! `GODEBUG=inittrace=1`: one line per boot phase on stderr, in Go's format
//! `init <phase> @<start> ms, <clock> ms clock, <bytes> bytes, <allocs> allocs`.
//!
//! Go prints a line per package init; rt prints one per runtime phase
//! (`check`, `args`, `osinit`, each `schedinit` phase, `newproc`, `mstart`).
//! The `@` time is measured from the first Rust code `rt0_go` runs (Go's is
//! from `runtimeInitTime`, which comes after the runtime's own phases).
//! Bytes and allocs are what the phase allocated on this thread, from the
//! allocator's counters. Skipped phases print nothing at level 1 — like a Go
//! package with no init functions.
//!
//! `inittrace=2` (rt's extension) adds a `boot <phase>: …` line after each
//! phase, saying what it did, and lists skipped phases with the reason.
//!
//! Phases run before `parsedebugvars` knows the level, so lines are kept in a
//! fixed buffer and printed at the end of `schedinit`.

use core::fmt::Write;
use core::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

/// One traced phase.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Phase name.
    pub name: &'static str,
    /// Start (monotonic ns).
    pub start: i64,
    /// End (monotonic ns).
    pub end: i64,
    /// Bytes allocated.
    pub bytes: u64,
    /// Allocations.
    pub allocs: u64,
    /// What the phase did.
    pub detail: String,
    /// Skipped (no Rust meaning).
    pub skipped: bool,
    /// Owning crate.
    pub owner: &'static str,
}

impl Trace {
    /// A record.
    pub fn new(
        name: &'static str,
        start: i64,
        end: i64,
        (bytes, allocs): (u64, u64),
        detail: String,
    ) -> Trace {
        Trace {
            name,
            start,
            end,
            bytes,
            allocs,
            detail,
            skipped: false,
            owner: "rt-entry",
        }
    }
}

/// The `inittrace` level; [`UNKNOWN`] until `args` has found the
/// environment and read `GODEBUG` from it.
static LEVEL: AtomicI32 = AtomicI32::new(UNKNOWN);
const UNKNOWN: i32 = -1;
/// Records kept until the end of `schedinit`: a fixed table, so that keeping
/// one allocates nothing and the phases before `mallocinit` stay
/// allocation-free at `inittrace=1`.
static PENDING: Mutex<Pending> = Mutex::new(Pending {
    slots: [const { None }; MAX_PENDING],
    len: 0,
});
/// Records before the end of `schedinit`: check, args, osinit and every
/// phase of the table, with room for a program's own.
const MAX_PENDING: usize = 48;

struct Pending {
    slots: [Option<Trace>; MAX_PENDING],
    len: usize,
}

/// Sets the level from `GODEBUG=inittrace` (values below 0 mean off).
pub fn set_level(l: i32) {
    LEVEL.store(l.max(0), Ordering::Relaxed);
}

/// Keeps a record until the level is settled, or drops it when tracing is
/// off.
pub fn record(t: Trace) {
    if LEVEL.load(Ordering::Relaxed) != 0 {
        let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        // Past the table's room the record is dropped: the trace is a
        // diagnostic, and boot must not fail for it.
        if p.len < MAX_PENDING {
            let i = p.len;
            p.slots[i] = Some(t);
            p.len += 1;
        }
    }
}

/// A phase's `boot …` detail, built only when it can be printed
/// (`inittrace=2`, or before the level is known): otherwise an empty string,
/// so that untraced boots neither format nor allocate it, and the traced
/// `bytes`/`allocs` columns of level 1 do not count the tracing itself.
pub fn detail(f: impl FnOnce() -> String) -> String {
    if detailed() {
        f()
    } else {
        String::new()
    }
}

/// Whether phase details are built: at `inittrace=2`, or while the level is
/// not yet known.
pub fn detailed() -> bool {
    let l = LEVEL.load(Ordering::Relaxed);
    l >= 2 || l == UNKNOWN
}

/// Prints the kept records (end of `schedinit`).
pub fn flush(base: i64) {
    let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    let n = core::mem::take(&mut p.len);
    for slot in &mut p.slots[..n] {
        if let Some(t) = slot.take() {
            live(t, base);
        }
    }
}

/// Prints one record now, if tracing.
pub fn live(t: Trace, base: i64) {
    let level = LEVEL.load(Ordering::Relaxed);
    if level <= 0 {
        return;
    }
    let mut s = String::new();
    if !t.skipped {
        let _ = writeln!(
            s,
            "init {} @{} ms, {} ms clock, {} bytes, {} allocs",
            t.name,
            fmt_ns_as_ms((t.start - base).max(0) as u64),
            fmt_ns_as_ms((t.end - t.start).max(0) as u64),
            t.bytes,
            t.allocs
        );
    }
    if level >= 2 {
        let _ = writeln!(s, "boot {} [{}]: {}", t.name, t.owner, t.detail);
    }
    rt_sys::write_stderr(s.as_bytes());
}

/// Go's `fmtNSAsMS`: whole milliseconds at or above 10 ms, otherwise two
/// significant digits with at most three decimals; under 1 µs, `0`.
pub fn fmt_ns_as_ms(ns: u64) -> String {
    if ns >= 10_000_000 {
        return (ns / 1_000_000).to_string();
    }
    let mut x = ns / 1000;
    if x == 0 {
        return "0".into();
    }
    let mut dec = 3;
    while x >= 100 {
        x /= 10;
        dec -= 1;
    }
    // x has one or two digits; place the point `dec` digits from the right.
    let digits = x.to_string();
    if dec == 0 {
        return digits;
    }
    let padded = format!("{:0>width$}", digits, width = dec + 1);
    let (int, frac) = padded.split_at(padded.len() - dec);
    format!("{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_gos_samples() {
        assert_eq!(fmt_ns_as_ms(5_000), "0.005");
        assert_eq!(fmt_ns_as_ms(22_000), "0.022");
        assert_eq!(fmt_ns_as_ms(74_000), "0.074");
        assert_eq!(fmt_ns_as_ms(320_000), "0.32");
        assert_eq!(fmt_ns_as_ms(500_000), "0.50");
        assert_eq!(fmt_ns_as_ms(1_000_000), "1.0");
        assert_eq!(fmt_ns_as_ms(9_990_000), "9.9");
        assert_eq!(fmt_ns_as_ms(10_000_000), "10");
        assert_eq!(fmt_ns_as_ms(999), "0");
        assert_eq!(fmt_ns_as_ms(123_456_789), "123");
    }

    proptest! {
        /// The printed value never exceeds the true one and is within two
        /// significant digits of it (or whole ms at ≥ 10 ms).
        #[test]
        fn close_to_the_true_value(ns in 0u64..100_000_000_000) {
            let s = fmt_ns_as_ms(ns);
            let v: f64 = s.parse().unwrap();
            let ms = ns as f64 / 1e6;
            prop_assert!(v <= ms + 1e-9);
            if ns >= 10_000_000 {
                prop_assert!(ms - v < 1.0);
            } else if ns >= 1000 {
                prop_assert!((ms - v) / ms < 0.1 + 1e-9, "{} vs {}", s, ms);
                prop_assert!(s.len() <= 5);
            } else {
                prop_assert_eq!(s, "0");
            }
        }
    }
}
