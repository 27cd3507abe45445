//! `parsedebugvars`: the `GODEBUG` knobs, with Go 1.17's keys and defaults
//! plus the keys this runtime adds.
//!
//! Data structure: [`DebugVars`], one `i32` field per key (Go keeps them all
//! as `int32`) and `memprofilerate` as `i64` (Go's `int`). One table, built by
//! the `debug_vars!` macro below, gives each key its name, field and default,
//! so parsing, [`DebugVars::entries`] and [`DebugVars::render`] cannot drift
//! apart.
//!
//! Parsing (Go's rules, kept exactly):
//!
//! 1. split the string on `,`; a field without `=` (including the empty
//!    field from `,,` or a trailing `,`) is skipped;
//! 2. the key is the text before the field's first `=`, the value everything
//!    after it (so `gctrace=1=2` has the value `1=2`, which is malformed);
//! 3. keys are compared byte for byte: ` gctrace` (with a space) and
//!    `GCTRACE` are unknown keys, and unknown keys are ignored;
//! 4. the value is parsed with [`atoi32`] (`memprofilerate` with [`atoi`]);
//!    a malformed value — empty (`gctrace=`), signed with `+`, padded with a
//!    space, out of range — is ignored and the field keeps what it had;
//!    note that a lone `-` is *not* malformed: it parses as 0;
//! 5. fields are applied left to right, so of several valid settings of one
//!    key the last wins.
//!
//! `memprofilerate`: Go writes `runtime.MemProfileRate` here only when the
//! key is given. In Go 1.17–1.19 the package initialiser of
//! `runtime.MemProfileRate` runs after `parsedebugvars` and overwrites the
//! value again (golang/go#55100), so the setting has no effect there; this
//! crate records the documented meaning (the parsed rate) and leaves it to
//! the heap to honour it.

use crate::atoi::{atoi, atoi32};

/// `runtime.MemProfileRate`'s default: one sample per 512 KiB allocated.
pub const DEFAULT_MEMPROFILERATE: i64 = 512 * 1024;

macro_rules! debug_vars {
    ($( $(#[$doc:meta])* $name:ident = $default:expr; )*) => {
        /// The parsed `GODEBUG` settings. Every field is documented with its
        /// Go meaning and its default; see [`DebugVars::default`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct DebugVars {
            $( $(#[$doc])* pub $name: i32, )*
            /// `memprofilerate=X`: the heap profiling sample rate in bytes
            /// (`runtime.MemProfileRate`); 0 turns memory profiling off.
            /// Parsed as Go's `int` (64 bits). Default 512 KiB.
            pub memprofilerate: i64,
        }

        impl Default for DebugVars {
            /// Go's defaults on linux: `cgocheck=1`, `invalidptr=1`,
            /// `madvdontneed=1`, `memprofilerate=524288`, and this runtime's
            /// `containermaxprocs=1`, `updatemaxprocs=1`; everything else 0.
            fn default() -> Self {
                DebugVars {
                    $( $name: $default, )*
                    memprofilerate: DEFAULT_MEMPROFILERATE,
                }
            }
        }

        impl DebugVars {
            /// Every `i32` key, in declaration (Go table) order.
            pub const INT_KEYS: &'static [&'static str] = &[$( stringify!($name), )*];

            fn field_mut(&mut self, key: &[u8]) -> Option<&mut i32> {
                $( if key == stringify!($name).as_bytes() { return Some(&mut self.$name); } )*
                None
            }

            fn unsorted_entries(&self) -> Vec<(&'static str, i64)> {
                let mut v = vec![$( (stringify!($name), i64::from(self.$name)), )*];
                v.push(("memprofilerate", self.memprofilerate));
                v
            }
        }
    };
}

debug_vars! {
    /// `allocfreetrace=1`: profile and trace every allocation and free.
    /// Default 0.
    allocfreetrace = 0;
    /// `clobberfree=1`: overwrite freed memory with bad content. Default 0.
    clobberfree = 0;
    /// `cgocheck`: checks on pointers passed to C (0 off, 1 cheap, 2
    /// expensive). Default 1.
    cgocheck = 1;
    /// `efence=1`: give every object its own pages and never recycle them.
    /// Default 0.
    efence = 0;
    /// `gccheckmark=1`: verify the collector's concurrent mark. Default 0.
    gccheckmark = 0;
    /// `gcpacertrace=1`: trace the collector's pacer. Default 0.
    gcpacertrace = 0;
    /// `gcshrinkstackoff=1`: never shrink goroutine stacks. Default 0.
    gcshrinkstackoff = 0;
    /// `gcstoptheworld`: 1 disables concurrent collection, 2 also
    /// concurrent sweeping. Default 0.
    gcstoptheworld = 0;
    /// `gctrace=1`: one line per collection on stderr. Default 0.
    gctrace = 0;
    /// `invalidptr=1`: crash on invalid pointer values in pointer-typed
    /// slots. Default 1.
    invalidptr = 1;
    /// `madvdontneed=1`: return memory with `MADV_DONTNEED` rather than
    /// `MADV_FREE`. Default 1 on linux (since Go 1.16).
    madvdontneed = 1;
    /// `sbrk=1`: a trivial never-freeing allocator. Default 0.
    sbrk = 0;
    /// `scavtrace=1`: one line per scavenger cycle on stderr. Default 0.
    scavtrace = 0;
    /// `scheddetail=1` (with `schedtrace`): per-P, per-M and per-G detail
    /// in each scheduler trace. Default 0.
    scheddetail = 0;
    /// `schedtrace=X`: a `SCHED` line on stderr every X milliseconds.
    /// Default 0 (off).
    schedtrace = 0;
    /// `tracebackancestors=N`: show the creation stacks of up to N ancestor
    /// goroutines in tracebacks. Default 0.
    tracebackancestors = 0;
    /// `asyncpreemptoff=1`: no signal-based goroutine preemption. Default 0.
    asyncpreemptoff = 0;
    /// `inittrace=1`: one `init …` line per initialisation phase on stderr.
    /// Default 0.
    inittrace = 0;
    /// rt's own key. `stacksize=N`: the default goroutine stack size in
    /// bytes; 0 (or any value ≤ 0) means the stack crate's default.
    /// Default 0.
    stacksize = 0;
    /// rt's own key. `guardpage`: 0 chooses automatically
    /// (`MADV_GUARD_INSTALL` when the kernel has it, else `mprotect`); any
    /// other value forces the `mprotect` fallback. Default 0.
    guardpage = 0;
    /// rt's own key. `fpenv=1`: each goroutine owns its MXCSR and x87
    /// control word across switches (System V callee-saved state), and a
    /// new goroutine starts with its creator's; 0 (or any value ≤ 0): they
    /// belong to the thread, as in Go, and a switch does not touch them.
    /// Default 1.
    fpenv = 1;
    /// Go 1.25's key. `containermaxprocs=1`: let the cgroup CPU bandwidth
    /// limit lower the default `GOMAXPROCS`; 0 (or any value ≤ 0): affinity
    /// only. Default 1.
    containermaxprocs = 1;
    /// Go 1.25's key. `updatemaxprocs=1` asks Go to re-derive the default
    /// `GOMAXPROCS` periodically at run time. Accepted and recorded; the
    /// default is computed once at boot here, so the value has no effect.
    /// Default 1.
    updatemaxprocs = 1;
    /// rt's own key. `preemptinterval=N`: a goroutine that has run N
    /// microseconds without yielding its P is preempted; 0 (or any value
    /// ≤ 0) keeps Go's 10 ms (`forcePreemptNS`). Default 0.
    preemptinterval = 0;
}

impl DebugVars {
    /// Applies the `GODEBUG` string `s` on top of the current values, with
    /// Go's rules (see the module docs). Never fails: bad fields are skipped.
    pub fn apply(&mut self, s: &[u8]) {
        for field in s.split(|&c| c == b',') {
            let Some(eq) = field.iter().position(|&c| c == b'=') else {
                continue;
            };
            let (key, value) = (&field[..eq], &field[eq + 1..]);
            if key == b"memprofilerate" {
                if let Some(n) = atoi(value) {
                    self.memprofilerate = n;
                }
            } else if let Some(slot) = self.field_mut(key) {
                if let Some(n) = atoi32(value) {
                    *slot = n;
                }
            }
        }
    }

    /// Every key and its value, sorted by key (byte order).
    pub fn entries(&self) -> Vec<(&'static str, i64)> {
        let mut v = self.unsorted_entries();
        v.sort_unstable_by_key(|&(k, _)| k);
        v
    }

    /// The settings as a `GODEBUG` string, `key=value` joined by `,`, every
    /// key present, sorted by key. [`parse_godebug`] of the result gives
    /// `self` back.
    pub fn render(&self) -> String {
        let parts: Vec<String> = self
            .entries()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.join(",")
    }

    /// Go's derived `debug.malloc`: the allocator must take its slow,
    /// instrumented path (`allocfreetrace`, `inittrace` or `sbrk` set).
    pub fn malloc(&self) -> bool {
        (self.allocfreetrace | self.inittrace | self.sbrk) != 0
    }

    /// The goroutine stack size asked for with `stacksize`, or `None` for the
    /// stack crate's default (`stacksize` ≤ 0).
    pub fn stack_size(&self) -> Option<usize> {
        usize::try_from(self.stacksize).ok().filter(|&n| n > 0)
    }

    /// True when `guardpage` forces the `mprotect` guard-page fallback.
    pub fn force_mprotect_guard(&self) -> bool {
        self.guardpage != 0
    }

    /// True when each goroutine owns its floating-point control state
    /// (`fpenv` > 0).
    pub fn fp_per_goroutine(&self) -> bool {
        self.fpenv > 0
    }

    /// How long a goroutine may run before it is preempted, in
    /// nanoseconds, when `preemptinterval` asks for something other than
    /// Go's 10 ms (`preemptinterval` > 0).
    pub fn preempt_interval_ns(&self) -> Option<i64> {
        (self.preemptinterval > 0).then(|| i64::from(self.preemptinterval) * 1000)
    }

    /// True when the cgroup CPU limit may lower the default `GOMAXPROCS`
    /// (`containermaxprocs` > 0, as Go 1.25 tests it).
    pub fn container_aware(&self) -> bool {
        self.containermaxprocs > 0
    }
}

/// Go's defaults with the `GODEBUG` string `s` applied.
pub fn parse_godebug(s: &[u8]) -> DebugVars {
    let mut dv = DebugVars::default();
    dv.apply(s);
    dv
}

/// [`parse_godebug`] of the process's `GODEBUG` variable, looked up as the
/// runtime does ([`crate::gogetenv`]); Go's defaults when it is unset.
pub fn debugvars_from_env() -> DebugVars {
    use std::os::unix::ffi::OsStrExt;
    parse_godebug(
        crate::gogetenv(b"GODEBUG")
            .map(|v| v.as_bytes())
            .unwrap_or(b""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_are_gos() {
        let d = DebugVars::default();
        assert_eq!(parse_godebug(b""), d);
        let nonzero: Vec<_> = d.entries().into_iter().filter(|&(_, v)| v != 0).collect();
        assert_eq!(
            nonzero,
            vec![
                ("cgocheck", 1),
                ("containermaxprocs", 1),
                ("fpenv", 1),
                ("invalidptr", 1),
                ("madvdontneed", 1),
                ("memprofilerate", 524288),
                ("updatemaxprocs", 1),
            ]
        );
        assert!(!d.malloc());
    }

    #[test]
    fn sets_known_keys() {
        let d = parse_godebug(b"gctrace=1,schedtrace=1000,scheddetail=1,cgocheck=0");
        assert_eq!(
            (d.gctrace, d.schedtrace, d.scheddetail, d.cgocheck),
            (1, 1000, 1, 0)
        );
        assert_eq!(
            parse_godebug(b"memprofilerate=-9223372036854775808").memprofilerate,
            i64::MIN
        );
        assert!(parse_godebug(b"inittrace=1").malloc());
    }

    #[test]
    fn go_quirks() {
        let d = DebugVars::default();
        // Empty value, spaces, '+', hex, a second '=': all malformed, ignored.
        for s in [
            &b"gctrace="[..],
            b"gctrace= 1",
            b"gctrace=1 ",
            b"gctrace=+1",
            b"gctrace=0x1",
            b"gctrace=1=2",
            b"gctrace=2147483648",
            b" gctrace=1",
            b"GCTRACE=1",
            b"gctrace",
            b",,,",
            b"=1",
            b"nosuchkey=1",
        ] {
            assert_eq!(parse_godebug(s), d, "{:?}", String::from_utf8_lossy(s));
        }
        // A lone '-' parses as 0.
        assert_eq!(parse_godebug(b"cgocheck=-").cgocheck, 0);
        // Malformed later values keep the earlier valid one.
        assert_eq!(parse_godebug(b"gctrace=2,gctrace=x").gctrace, 2);
        // The last valid value wins.
        assert_eq!(parse_godebug(b"gctrace=2,gctrace=3").gctrace, 3);
        // Trailing comma and empty fields are fine.
        assert_eq!(parse_godebug(b",gctrace=4,,").gctrace, 4);
    }

    #[test]
    fn apply_layers_on_current_values() {
        let mut d = parse_godebug(b"gctrace=1");
        d.apply(b"schedtrace=5,gctrace=bad");
        assert_eq!((d.gctrace, d.schedtrace), (1, 5));
    }

    #[test]
    fn runtime_keys() {
        let d = parse_godebug(b"stacksize=65536,guardpage=1,containermaxprocs=0,updatemaxprocs=0");
        assert_eq!(d.stack_size(), Some(65536));
        assert!(d.force_mprotect_guard());
        assert!(!d.container_aware());
        assert_eq!(d.updatemaxprocs, 0);
        assert_eq!(DebugVars::default().preempt_interval_ns(), None);
        assert_eq!(
            parse_godebug(b"preemptinterval=1000").preempt_interval_ns(),
            Some(1_000_000)
        );
        assert_eq!(
            parse_godebug(b"preemptinterval=-5").preempt_interval_ns(),
            None
        );
        assert_eq!(parse_godebug(b"stacksize=-1").stack_size(), None);
        assert!(!parse_godebug(b"containermaxprocs=-1").container_aware());
        assert!(DebugVars::default().fp_per_goroutine());
        assert!(!parse_godebug(b"fpenv=0").fp_per_goroutine());
        assert!(!parse_godebug(b"fpenv=-3").fp_per_goroutine());
        assert!(parse_godebug(b"fpenv=0,fpenv=2").fp_per_goroutine());
        assert!(parse_godebug(b"fpenv=x").fp_per_goroutine());
    }

    #[test]
    fn entries_are_sorted_and_complete() {
        let e = DebugVars::default().entries();
        assert!(e.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(e.len(), DebugVars::INT_KEYS.len() + 1);
    }

    fn any_vars() -> impl Strategy<Value = DebugVars> {
        (
            proptest::collection::vec(any::<i32>(), DebugVars::INT_KEYS.len()),
            any::<i64>(),
        )
            .prop_map(|(ints, mpr)| {
                let mut d = DebugVars::default();
                for (k, v) in DebugVars::INT_KEYS.iter().zip(ints) {
                    *d.field_mut(k.as_bytes()).unwrap() = v;
                }
                d.memprofilerate = mpr;
                d
            })
    }

    proptest! {
        #[test]
        fn never_panics(s in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_godebug(&s);
        }

        #[test]
        fn never_panics_on_near_misses(s in "[a-z=,0-9 +-]{0,40}") {
            let _ = parse_godebug(s.as_bytes());
        }

        #[test]
        fn render_round_trips(d in any_vars()) {
            prop_assert_eq!(parse_godebug(d.render().as_bytes()), d);
        }

        #[test]
        fn order_of_distinct_keys_does_not_matter(d in any_vars(), seed in any::<u64>()) {
            let mut parts: Vec<String> = d.entries().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            // A seeded Fisher–Yates shuffle.
            let mut x = seed | 1;
            for i in (1..parts.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                parts.swap(i, (x % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(parse_godebug(parts.join(",").as_bytes()), d);
        }

        #[test]
        fn last_valid_duplicate_wins(
            key_idx in 0..DebugVars::INT_KEYS.len(),
            vals in proptest::collection::vec(prop_oneof![
                any::<i32>().prop_map(|v| v.to_string()),
                "[a-z +]{0,3}",
            ], 1..6),
        ) {
            let key = DebugVars::INT_KEYS[key_idx];
            let s: Vec<String> = vals.iter().map(|v| format!("{key}={v}")).collect();
            let got = parse_godebug(s.join(",").as_bytes());
            let want = vals.iter().rev().find_map(|v| v.parse::<i32>().ok().filter(|_| !v.starts_with('+')));
            let default = DebugVars::default();
            let want = want.unwrap_or(default.entries().iter().find(|e| e.0 == key).unwrap().1 as i32);
            prop_assert_eq!(got.entries().iter().find(|e| e.0 == key).unwrap().1, i64::from(want));
        }
    }
}
