//! The `debugvars` demo scenario's output: every setting the runtime parsed
//! at boot, one `key=value` line each, sorted by key (byte order).
//!
//! Lines: each [`DebugVars::entries`] key with its integer value, plus
//! `gotraceback.all` (0/1), `gotraceback.crash` (0/1) and
//! `gotraceback.level` (the level number) from the decoded `GOTRACEBACK`.

use crate::debugvars::DebugVars;
use crate::traceback::Traceback;

/// Renders `dv` and `tb` as sorted `key=value` lines, each ending in `\n`.
pub fn debugvars_report(dv: &DebugVars, tb: &Traceback) -> String {
    let mut lines: Vec<(&str, i64)> = dv.entries();
    lines.push(("gotraceback.all", i64::from(tb.all)));
    lines.push(("gotraceback.crash", i64::from(tb.crash)));
    lines.push(("gotraceback.level", i64::from(tb.level)));
    lines.sort_unstable_by_key(|&(k, _)| k);
    let mut out = String::new();
    for (k, v) in lines {
        out.push_str(k);
        out.push('=');
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_godebug, parse_gotraceback};

    #[test]
    fn sorted_complete_and_parsable() {
        let dv = parse_godebug(b"gctrace=3,schedtrace=-7");
        let tb = parse_gotraceback(Some(b"crash"));
        let r = debugvars_report(&dv, &tb);
        let keys: Vec<&str> = r.lines().map(|l| l.split_once('=').unwrap().0).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), dv.entries().len() + 3);
        // The report, minus the traceback lines, is a GODEBUG string that
        // parses back to the same settings.
        let godebug: Vec<&str> = r
            .lines()
            .filter(|l| !l.starts_with("gotraceback."))
            .collect();
        assert_eq!(parse_godebug(godebug.join(",").as_bytes()), dv);
        assert!(r.contains("gotraceback.level=2\n"));
        assert!(r.contains("gotraceback.all=1\n"));
        assert!(r.contains("gotraceback.crash=1\n"));
        assert!(r.contains("gctrace=3\n"));
        assert!(r.contains("schedtrace=-7\n"));
    }
}
