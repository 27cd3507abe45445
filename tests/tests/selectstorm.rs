//! The program of the P0 report (eight senders, six receivers selecting
//! over shared channels, with timers, select sends, a mutex, sleeps,
//! GOMAXPROCS changes and environment reads mixed in). With the allocator's
//! cache reached through a thread-local address kept across a park, it
//! crashed or hung in most runs at GOMAXPROCS=2. Every value must arrive
//! exactly once; the printed count and sum say so.

mod common;
use common::*;

const WANT: &str = "selectstorm ok 120000 1440060000\n";

fn storm(features: &str, procs: &str, runs: usize) {
    for bin in ENTRIES {
        for run in 0..runs {
            let (code, out, err) = run_bounded(
                bin,
                &["selectstorm", features],
                &[("GOMAXPROCS", procs)],
                120,
            );
            assert!(
                code == 0 && out == WANT,
                "{bin} selectstorm {features:?} GOMAXPROCS={procs} run {run}: status {code} \
                 (-1 = hung)\nstdout: {out}\nstderr: {err}"
            );
        }
    }
}

#[test]
fn selectstorm_plain() {
    for procs in ["1", "2", "4"] {
        storm("", procs, 2);
    }
}

#[test]
fn selectstorm_every_feature() {
    for procs in ["1", "2", "4"] {
        storm("all", procs, 1);
    }
}
