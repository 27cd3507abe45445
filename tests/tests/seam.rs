//! The `schedinit` seam: `rt-seam` boots with its `goenvs` replaced by a
//! recording double (a fixed three-entry environment) while every other
//! phase runs for real.

mod common;
use common::*;

const SEAM: &str = env!("CARGO_BIN_EXE_rt-seam");

#[test]
fn one_phase_replaced_the_rest_real() {
    // The process's own environment says GOMAXPROCS=1 and has HOME; the
    // double's says GOMAXPROCS=3 and has no HOME. Both trace the boot with
    // details (the level is read from the initial environment at `args`,
    // and again from the double's at parsedebugvars).
    let o = run(
        SEAM,
        ["x", "y"],
        &[
            ("GOMAXPROCS", "1"),
            ("HOME", "/nonexistent"),
            ("GODEBUG", "inittrace=2"),
        ],
    );
    assert_eq!(status(&o), 0, "{}", err(&o));
    let out = out(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "double ran 1 time(s)",
            // goargs, a real phase before it, had captured argv.
            "args seen by the double: 3",
            // parsedebugvars and procresize, real phases after it, acted on
            // the double's environment, not the process's.
            "gomaxprocs=3",
            "RT_SEAM=Some(\"from the double\") HOME=None",
            // Goroutines and channels run on the booted runtime.
            "sum=2016",
        ],
        "{}",
        err(&o)
    );
    let e = err(&o);
    assert!(
        e.contains("boot goenvs [rt-seam]: recording double: 3 fixed entries\n"),
        "{e}"
    );
    assert!(
        e.contains("boot procresize [rt-sched]: gomaxprocs=3 "),
        "{e}"
    );
    assert!(e.contains("boot mallocinit [rt-heap]: "), "{e}");
    // Every phase traced once, in the table's order, between the steps of
    // rt0_go around schedinit.
    let traced: Vec<&str> = e
        .lines()
        .filter_map(|l| l.strip_prefix("boot "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let table = rt_entry::phase::SCHEDINIT.map(|r| r.go_name);
    let want: Vec<&str> = ["check", "args", "osinit"]
        .into_iter()
        .chain(table)
        .chain(["newproc", "mstart"])
        .collect();
    assert_eq!(traced, want, "{e}");
}
