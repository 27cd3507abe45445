//! Go's runtime integer parsers: `atoi64`, `atoi` and `atoi32` (string.go).
//!
//! Every number the runtime reads from the environment (`GOMAXPROCS`, each
//! `GODEBUG` value, a numeric `GOTRACEBACK`) goes through these, so their
//! quirks are part of Go's observable behaviour and are kept exactly:
//!
//! * decimal digits only: no `+`, no spaces, no `0x`, no `_`, no exponent;
//! * one optional leading `-`;
//! * a lone `-` parses as **0** (the sign is stripped and the empty digit
//!   string is not rejected — only the empty *input* is);
//! * leading zeros are fine (`007` is 7, `-0` is 0);
//! * any overflow of the target width is a failure, never a wrap or a clamp.
//!
//! `atoi` is `int`, which is 64 bits on amd64, so it is the same as `atoi64`.

/// Parses `s` as Go's runtime `atoi64` does: an optional leading `-` followed
/// by decimal digits, exactly representable as an `i64`.
///
/// Returns `None` for the empty input, for any byte that is not a digit after
/// the optional sign, and on overflow. `"-"` alone yields `Some(0)`.
pub fn atoi64(s: &[u8]) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    // Accumulate the magnitude unsigned, so that -2^63 (whose magnitude does
    // not fit in i64) is representable until the sign is applied.
    let mut mag: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        mag = mag.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if mag > 1u64 << 63 {
            return None;
        }
        // 0 - mag in two's complement; for mag == 2^63 this is i64::MIN.
        Some((mag as i64).wrapping_neg())
    } else {
        i64::try_from(mag).ok()
    }
}

/// Go's runtime `atoi` on a 64-bit target (`int` is 64 bits): the same as
/// [`atoi64`].
pub fn atoi(s: &[u8]) -> Option<i64> {
    atoi64(s)
}

/// Go's runtime `atoi32`: [`atoi64`], then rejected unless the value fits in
/// an `i32` (so `2147483647` and `-2147483648` are accepted, one beyond
/// either is not).
pub fn atoi32(s: &[u8]) -> Option<i32> {
    atoi64(s).and_then(|n| i32::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_plain_and_signed_decimals() {
        assert_eq!(atoi32(b"0"), Some(0));
        assert_eq!(atoi32(b"42"), Some(42));
        assert_eq!(atoi32(b"-42"), Some(-42));
        assert_eq!(atoi32(b"007"), Some(7));
        assert_eq!(atoi32(b"-0"), Some(0));
    }

    #[test]
    fn lone_minus_is_zero() {
        assert_eq!(atoi64(b"-"), Some(0));
        assert_eq!(atoi32(b"-"), Some(0));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for s in [
            &b""[..],
            b"+3",
            b" 3",
            b"3 ",
            b"1e3",
            b"0x10",
            b"1_0",
            b"--1",
            b"-+1",
            b"abc",
            b"\xff",
        ] {
            assert_eq!(atoi64(s), None, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn width_edges() {
        assert_eq!(atoi32(b"2147483647"), Some(i32::MAX));
        assert_eq!(atoi32(b"-2147483648"), Some(i32::MIN));
        assert_eq!(atoi32(b"2147483648"), None);
        assert_eq!(atoi32(b"-2147483649"), None);
        assert_eq!(atoi64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(atoi64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(atoi64(b"9223372036854775808"), None);
        assert_eq!(atoi64(b"-9223372036854775809"), None);
        assert_eq!(atoi64(b"18446744073709551616"), None);
        assert_eq!(atoi64(b"99999999999999999999999"), None);
        assert_eq!(atoi64(b"000000000000000000000000000001"), Some(1));
    }

    /// An independent model of Go's rules: strip one '-', require only
    /// digits, then do the arithmetic in i128 (wide enough for any prefix
    /// that matters once leading zeros are dropped) and range-check.
    fn model(s: &[u8], lo: i128, hi: i128) -> Option<i128> {
        if s.is_empty() {
            return None;
        }
        let (neg, d) = if s[0] == b'-' {
            (true, &s[1..])
        } else {
            (false, s)
        };
        if !d.iter().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let d: Vec<u8> = d.iter().copied().skip_while(|&c| c == b'0').collect();
        if d.len() > 25 {
            return None;
        }
        let mut v: i128 = 0;
        for c in d {
            v = v * 10 + i128::from(c - b'0');
        }
        if neg {
            v = -v;
        }
        // atoi64 fails beyond the u64 range first, then beyond i64.
        if v < lo || v > hi {
            return None;
        }
        Some(v)
    }

    fn numberish() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..24),
            "-?[0-9]{0,22}".prop_map(String::into_bytes),
            "[-+ 0-9a-x_]{0,12}".prop_map(String::into_bytes),
            (any::<i64>()).prop_map(|n| n.to_string().into_bytes()),
            (any::<i32>(), -3i64..3).prop_map(|(n, d)| (i64::from(n) + d).to_string().into_bytes()),
            prop_oneof![Just(i64::from(i32::MAX)), Just(i64::from(i32::MIN))]
                .prop_flat_map(|e| (e - 2..e + 3).prop_map(|n| n.to_string().into_bytes())),
        ]
    }

    proptest! {
        #[test]
        fn atoi32_matches_model(s in numberish()) {
            let want = model(&s, i128::from(i32::MIN), i128::from(i32::MAX)).map(|v| v as i32);
            prop_assert_eq!(atoi32(&s), want);
        }

        #[test]
        fn atoi64_matches_model(s in numberish()) {
            let want = model(&s, i128::from(i64::MIN), i128::from(i64::MAX)).map(|v| v as i64);
            prop_assert_eq!(atoi64(&s), want);
        }

        #[test]
        fn round_trips_every_i32(n in any::<i32>()) {
            prop_assert_eq!(atoi32(n.to_string().as_bytes()), Some(n));
        }
    }
}
