//! Reducing the runs of one impl to the numbers the report quotes.

/// Median, minimum and maximum of a set of runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest run.
    pub min: f64,
    /// The largest run.
    pub max: f64,
    /// How many runs went in.
    pub runs: usize,
}

/// Summarises `runs`; `None` for an empty set or one holding a non-finite value.
pub fn summarize(runs: &[f64]) -> Option<Summary> {
    if runs.is_empty() || runs.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut v = runs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Summary {
        median,
        min: v[0],
        max: v[n - 1],
        runs: n,
    })
}

/// The ratio `rt / peer`, `None` when the peer's value is not positive.
pub fn ratio(rt: f64, peer: f64) -> Option<f64> {
    if peer > 0.0 && rt.is_finite() && peer.is_finite() {
        Some(rt / peer)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn odd_and_even_medians() {
        assert_eq!(summarize(&[3.0, 1.0, 2.0]).unwrap().median, 2.0);
        assert_eq!(summarize(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        let s = summarize(&[5.0, 9.0, 1.0, 7.0, 3.0]).unwrap();
        assert_eq!((s.min, s.max, s.runs), (1.0, 9.0, 5));
    }

    #[test]
    fn empty_and_nan_have_no_summary() {
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn ratio_needs_a_positive_peer() {
        assert_eq!(ratio(2.0, 4.0), Some(0.5));
        assert_eq!(ratio(2.0, 0.0), None);
        assert_eq!(ratio(2.0, -1.0), None);
    }

    proptest! {
        #[test]
        fn median_lies_between_min_and_max(v in proptest::collection::vec(-1e9f64..1e9, 1..50)) {
            let s = summarize(&v).unwrap();
            prop_assert!(s.min <= s.median && s.median <= s.max);
            prop_assert_eq!(s.runs, v.len());
            prop_assert!(v.iter().all(|x| *x >= s.min && *x <= s.max));
        }

        #[test]
        fn median_is_order_independent(mut v in proptest::collection::vec(0f64..1e6, 1..30)) {
            let a = summarize(&v).unwrap();
            v.reverse();
            prop_assert_eq!(summarize(&v).unwrap(), a);
        }
    }
}
