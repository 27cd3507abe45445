//! The one-line protocol between the harness and an impl binary.
//!
//! An impl binary is invoked as `<bin> <workload> [key=value ...]` and prints exactly one line:
//! `value=<number> unit=<unit>` when it measured something, or `value=none reason=<text>` when
//! the workload does not apply to it or cannot run here. Bad arguments print a `value=none`
//! line too and exit with status 2, so the harness always has a reason to show.
//!
//! A workload that reports several statistics of one run (`preempt`'s p50 and p99) prints one
//! value line per statistic instead, each tagged at its end: `value=<number> unit=<unit>
//! stat=<name>` ([`Line::parse_stat`]); a `value=none` line stands for all of them.

use std::collections::BTreeMap;
use std::fmt;

/// A parsed command line: the workload name and its `key=value` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The workload name (first argument).
    pub workload: String,
    /// Options in the order-independent form `key=value`.
    pub keys: BTreeMap<String, String>,
}

/// Why a command line or an option was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// No workload argument.
    Missing,
    /// An option without `=` or with an empty key.
    NotKeyValue(String),
    /// A key that must be a positive integer was not.
    BadNumber { key: String, value: String },
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Missing => write!(f, "usage: <bin> <workload> [key=value ...]"),
            ArgError::NotKeyValue(a) => write!(f, "bad argument {a:?} (want key=value)"),
            ArgError::BadNumber { key, value } => {
                write!(f, "bad {key}={value:?} (want a positive integer)")
            }
        }
    }
}

impl Args {
    /// Parses `workload key=value ...` (without the program name).
    pub fn parse<I, S>(args: I) -> Result<Args, ArgError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut it = args.into_iter().map(Into::into);
        let workload = it.next().ok_or(ArgError::Missing)?;
        let mut keys = BTreeMap::new();
        for a in it {
            match a.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    keys.insert(k.to_string(), v.to_string());
                }
                _ => return Err(ArgError::NotKeyValue(a)),
            }
        }
        Ok(Args { workload, keys })
    }

    /// Parses the process's own arguments; on error prints the `value=none` line and exits 2.
    pub fn from_env() -> Args {
        let raw: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Args::parse(raw).unwrap_or_else(|e| fail(&e.to_string()))
    }

    /// A positive integer option, `default` when absent.
    pub fn count(&self, key: &str, default: u64) -> Result<u64, ArgError> {
        match self.keys.get(key) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(x) if x > 0 => Ok(x),
                _ => Err(ArgError::BadNumber {
                    key: key.to_string(),
                    value: v.clone(),
                }),
            },
        }
    }

    /// Like [`Args::count`], but prints the `value=none` line and exits 2 on a bad value.
    pub fn count_or_exit(&self, key: &str, default: u64) -> u64 {
        self.count(key, default)
            .unwrap_or_else(|e| fail(&e.to_string()))
    }
}

/// One result line as printed by an impl binary.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A measurement.
    Value { value: f64, unit: String },
    /// No measurement, and why.
    None { reason: String },
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Value { value, unit } => write!(f, "value={value:.3} unit={unit}"),
            Line::None { reason } => write!(f, "value=none reason={reason}"),
        }
    }
}

impl Line {
    /// Parses the last line of an impl's stdout that starts with `value=`.
    /// Returns `None` when no such line exists or it is malformed.
    pub fn parse_output(out: &str) -> Option<Line> {
        let line = out.lines().rev().find(|l| l.starts_with("value="))?;
        let rest = line.strip_prefix("value=")?;
        if let Some(reason) = rest.strip_prefix("none") {
            let reason = reason.trim_start();
            let reason = reason.strip_prefix("reason=").unwrap_or(reason).trim();
            let reason = if reason.is_empty() {
                "no reason given".to_string()
            } else {
                reason.to_string()
            };
            return Some(Line::None { reason });
        }
        let (num, tail) = rest.split_once(' ')?;
        let value: f64 = num.parse().ok()?;
        if !value.is_finite() {
            return None;
        }
        let unit = tail.trim().strip_prefix("unit=")?;
        if unit.is_empty() || unit.contains(' ') {
            return None;
        }
        Some(Line::Value {
            value,
            unit: unit.to_string(),
        })
    }

    /// Parses statistic `stat` from an impl's stdout: the last line that is either a
    /// `value=none` line or a value line ending in ` stat=<stat>`, parsed without that tag.
    /// Returns `None` when there is no such line or it is malformed.
    pub fn parse_stat(out: &str, stat: &str) -> Option<Line> {
        let tag = format!(" stat={stat}");
        let line = out.lines().rev().find(|l| {
            l.starts_with("value=none") || (l.starts_with("value=") && l.ends_with(&tag))
        })?;
        Line::parse_output(line.strip_suffix(tag.as_str()).unwrap_or(line))
    }
}

/// Prints a measurement line.
pub fn emit(value: f64, unit: &str) {
    println!(
        "{}",
        Line::Value {
            value,
            unit: unit.to_string()
        }
    );
}

/// Prints a `value=none` line for a workload this binary does not run, exit status 0.
pub fn not_applicable(workload: &str, bin: &str) {
    println!(
        "{}",
        Line::None {
            reason: format!("workload {workload} does not apply to {bin}")
        }
    );
}

/// Prints a `value=none` line and exits with status 2 (bad input or a failed set-up).
pub fn fail(reason: &str) -> ! {
    println!(
        "{}",
        Line::None {
            reason: reason.replace('\n', " ")
        }
    );
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_workload_and_keys() {
        let a = Args::parse(["spawn", "n=10", "gomaxprocs=2"]).unwrap();
        assert_eq!(a.workload, "spawn");
        assert_eq!(a.count("n", 5).unwrap(), 10);
        assert_eq!(a.count("gomaxprocs", 1).unwrap(), 2);
        assert_eq!(a.count("threads", 7).unwrap(), 7);
    }

    #[test]
    fn rejects_bad_arguments() {
        assert_eq!(Args::parse(Vec::<String>::new()), Err(ArgError::Missing));
        assert!(matches!(
            Args::parse(["spawn", "n"]),
            Err(ArgError::NotKeyValue(_))
        ));
        assert!(matches!(
            Args::parse(["spawn", "=3"]),
            Err(ArgError::NotKeyValue(_))
        ));
        for bad in ["n=0", "n=-1", "n=abc", "n=", "n=99999999999999999999999"] {
            let a = Args::parse(["spawn", bad]).unwrap();
            assert!(a.count("n", 1).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn parses_none_lines() {
        assert_eq!(
            Line::parse_output("value=none reason=no such thing here\n"),
            Some(Line::None {
                reason: "no such thing here".into()
            })
        );
        assert_eq!(
            Line::parse_output("value=none"),
            Some(Line::None {
                reason: "no reason given".into()
            })
        );
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "",
            "hello",
            "value=",
            "value=abc unit=ns",
            "value=1.0",
            "value=1.0 unit=",
            "value=NaN unit=ns",
            "value=inf unit=ns",
            "value=1.0 units=ns",
        ] {
            assert_eq!(Line::parse_output(bad), None, "{bad:?} accepted");
        }
    }

    #[test]
    fn last_value_line_wins() {
        let out = "noise\nvalue=1.000 unit=ns\nmore noise\nvalue=2.500 unit=B\n";
        assert_eq!(
            Line::parse_output(out),
            Some(Line::Value {
                value: 2.5,
                unit: "B".into()
            })
        );
    }

    #[test]
    fn tagged_lines_give_one_statistic_each() {
        let out = "value=10.000 unit=ns stat=p50\nvalue=90.000 unit=ns stat=p99\n";
        let v = |value: f64| {
            Some(Line::Value {
                value,
                unit: "ns".into(),
            })
        };
        assert_eq!(Line::parse_stat(out, "p50"), v(10.0));
        assert_eq!(Line::parse_stat(out, "p99"), v(90.0));
        assert_eq!(Line::parse_stat(out, "p9"), None);
        assert_eq!(Line::parse_stat(out, "p90"), None);
        // An untagged line is no statistic, and a tagged one no plain value.
        assert_eq!(Line::parse_stat("value=1.000 unit=ns\n", "p50"), None);
        assert_eq!(Line::parse_output("value=1.000 unit=ns stat=p50"), None);
        assert_eq!(Line::parse_stat("value=x unit=ns stat=p50", "p50"), None);
        // A none line answers for every statistic.
        let none = "value=10.000 unit=ns stat=p50\nvalue=none reason=tick lost\n";
        for stat in ["p50", "p99"] {
            assert_eq!(
                Line::parse_stat(none, stat),
                Some(Line::None {
                    reason: "tick lost".into()
                })
            );
        }
    }

    proptest! {
        #[test]
        fn printed_value_lines_parse_back(v in 0.0f64..1e12, unit in "[a-zA-Z/]{1,8}") {
            let line = Line::Value { value: v, unit: unit.clone() }.to_string();
            match Line::parse_output(&line) {
                Some(Line::Value { value, unit: u }) => {
                    prop_assert!((value - v).abs() <= 0.0005 + v * 1e-12);
                    prop_assert_eq!(u, unit);
                }
                other => prop_assert!(false, "parsed {:?}", other),
            }
        }

        #[test]
        fn key_value_args_round_trip(n in 1u64..u64::MAX, key in "[a-z]{1,10}") {
            let a = Args::parse(["w".to_string(), format!("{key}={n}")]).unwrap();
            prop_assert_eq!(a.count(&key, 1).unwrap(), n);
        }

        #[test]
        fn arbitrary_output_never_panics(s in ".*") {
            let _ = Line::parse_output(&s);
        }
    }
}
