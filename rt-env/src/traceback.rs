//! `GOTRACEBACK` (`setTraceback` in runtime1.go): how much a fatal error or
//! an unrecovered panic prints, and whether it ends in a core dump.
//!
//! Data structure: [`Traceback`], with Go's packed form available through
//! [`Traceback::bits`]: `level << 2 | all << 1 | crash` (Go's
//! `tracebackShift = 2`, `tracebackAll = 2`, `tracebackCrash = 1`).
//!
//! | `GOTRACEBACK`       | level | all | crash |
//! |---------------------|-------|-----|-------|
//! | `none`              | 0     | no  | no    |
//! | unset, ``, `single` | 1     | no  | no    |
//! | `all`               | 1     | yes | no    |
//! | `system`            | 2     | yes | no    |
//! | `crash`             | 2     | yes | yes   |
//! | a number N          | N     | yes | no    |
//! | anything else       | 0     | yes | no    |
//!
//! "A number" is what Go's `atoi` accepts *and* fits in a `uint32`
//! (0 ..= 4294967295), so `-1` or `4294967296` are "anything else". The level
//! is then shifted left by 2 inside a 32-bit word, so its top two bits are
//! lost: N = 2^30 + 1 reads back as level 1, N = 2^30 as level 0. The table
//! above is Go's, including that truncation. Words are case-sensitive (`ALL`
//! is "anything else").
//!
//! Levels: 0 prints no goroutine stacks; 1 prints user frames of the failing
//! goroutine (plus every user goroutine with `all`); 2 and above also print
//! runtime frames and runtime-internal goroutines.

use crate::atoi::atoi;

/// Go's `tracebackShift`.
const SHIFT: u32 = 2;
/// Go's `tracebackAll`.
const ALL: u32 = 2;
/// Go's `tracebackCrash`.
const CRASH: u32 = 1;

/// A decoded `GOTRACEBACK` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Traceback {
    /// 0: no stacks; 1: user frames; ≥ 2: runtime frames as well.
    pub level: u32,
    /// Print every goroutine, not only the failing one.
    pub all: bool,
    /// End with a core-dumping `SIGABRT` instead of exit status 2.
    pub crash: bool,
}

impl Traceback {
    /// The setting in force before `GOTRACEBACK` is read: Go starts its
    /// `traceback_cache` at level 2, so a crash during early boot shows
    /// runtime frames.
    pub const BOOT: Traceback = Traceback {
        level: 2,
        all: false,
        crash: false,
    };

    /// Go's packed form, `level << 2 | all << 1 | crash`, in 32 bits (the
    /// top two bits of `level` do not fit and are dropped, as in Go).
    pub fn bits(&self) -> u32 {
        (self.level << SHIFT) | if self.all { ALL } else { 0 } | if self.crash { CRASH } else { 0 }
    }

    /// Unpacks Go's packed form.
    pub fn from_bits(t: u32) -> Traceback {
        Traceback {
            level: t >> SHIFT,
            all: t & ALL != 0,
            crash: t & CRASH != 0,
        }
    }
}

/// Decodes a `GOTRACEBACK` value as Go's `setTraceback` does at start-up
/// (`None` — the variable is unset — behaves like the empty string).
pub fn parse_gotraceback(v: Option<&[u8]>) -> Traceback {
    let t = match v.unwrap_or(b"") {
        b"none" => 0,
        b"single" | b"" => 1 << SHIFT,
        b"all" => (1 << SHIFT) | ALL,
        b"system" => (2 << SHIFT) | ALL,
        b"crash" => (2 << SHIFT) | ALL | CRASH,
        other => match atoi(other).and_then(|n| u32::try_from(n).ok()) {
            Some(n) => ALL | (n << SHIFT),
            None => ALL,
        },
    };
    Traceback::from_bits(t)
}

/// `runtime/debug.SetTraceback(level)` after start-up: the new setting is
/// decoded as by [`parse_gotraceback`] and then OR-ed with the environment's
/// setting `env`, so a program can raise what `GOTRACEBACK` asked for but
/// never lower it.
pub fn set_traceback(level: &[u8], env: Traceback) -> Traceback {
    Traceback::from_bits(parse_gotraceback(Some(level)).bits() | env.bits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tb(level: u32, all: bool, crash: bool) -> Traceback {
        Traceback { level, all, crash }
    }

    #[test]
    fn the_table() {
        let p = |s: &[u8]| parse_gotraceback(Some(s));
        assert_eq!(p(b"none"), tb(0, false, false));
        assert_eq!(parse_gotraceback(None), tb(1, false, false));
        assert_eq!(p(b""), tb(1, false, false));
        assert_eq!(p(b"single"), tb(1, false, false));
        assert_eq!(p(b"all"), tb(1, true, false));
        assert_eq!(p(b"system"), tb(2, true, false));
        assert_eq!(p(b"crash"), tb(2, true, true));
        assert_eq!(p(b"0"), tb(0, true, false));
        assert_eq!(p(b"1"), tb(1, true, false));
        assert_eq!(p(b"5"), tb(5, true, false));
        assert_eq!(p(b"007"), tb(7, true, false));
        assert_eq!(p(b"-"), tb(0, true, false));
        for junk in [
            &b"-1"[..],
            b"+1",
            b" 1",
            b"ALL",
            b"crash ",
            b"x",
            b"4294967296",
        ] {
            assert_eq!(
                p(junk),
                tb(0, true, false),
                "{:?}",
                String::from_utf8_lossy(junk)
            );
        }
    }

    #[test]
    fn level_loses_its_top_two_bits() {
        let p = |s: &[u8]| parse_gotraceback(Some(s));
        assert_eq!(p(b"1073741823"), tb((1 << 30) - 1, true, false));
        assert_eq!(p(b"1073741824"), tb(0, true, false));
        assert_eq!(p(b"1073741825"), tb(1, true, false));
        assert_eq!(p(b"4294967295"), tb((1 << 30) - 1, true, false));
    }

    #[test]
    fn bits_are_gos_encoding() {
        assert_eq!(parse_gotraceback(Some(b"crash")).bits(), 2 << 2 | 2 | 1);
        assert_eq!(parse_gotraceback(Some(b"all")).bits(), 1 << 2 | 2);
        assert_eq!(parse_gotraceback(Some(b"none")).bits(), 0);
        assert_eq!(Traceback::BOOT.bits(), 2 << 2);
    }

    #[test]
    fn set_traceback_only_raises() {
        let env = parse_gotraceback(Some(b"all"));
        assert_eq!(set_traceback(b"none", env), env);
        assert_eq!(set_traceback(b"crash", env), tb(3, true, true));
    }

    proptest! {
        #[test]
        fn never_panics_and_bits_round_trip(s in proptest::collection::vec(any::<u8>(), 0..16)) {
            let t = parse_gotraceback(Some(&s));
            prop_assert_eq!(Traceback::from_bits(t.bits()), t);
            prop_assert!(t.level < 1 << 30);
        }

        #[test]
        fn numbers_mean_level_and_all(n in any::<u32>()) {
            let t = parse_gotraceback(Some(n.to_string().as_bytes()));
            prop_assert_eq!(t, tb(n & ((1 << 30) - 1), true, false));
        }
    }
}
