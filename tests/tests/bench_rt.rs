//! `bench-rt`'s protocol for the preemption workloads (`preempt`,
//! `blockcall`, `blockpipe`) and for the scheduler workloads run without
//! asynchronous preemption (the bench harness's `rt-apo` impl): exactly one
//! `value=<x> unit=ns` line and status 0 (for `preempt`, one line per
//! statistic, tagged `stat=p50` and `stat=p99`), or a `value=none` line and
//! status 2 for bad input. The numbers themselves are `cargo xtask bench`'s
//! business.

mod common;
use common::*;

const BENCH_RT: &str = env!("CARGO_BIN_EXE_bench-rt");

/// Runs `bench-rt args` with `env` and returns the value of its one
/// `value=<x> unit=ns` line.
fn value_ns(args: &[&str], env: &[(&str, &str)]) -> f64 {
    let o = run(BENCH_RT, args, env);
    let text = out(&o);
    assert_eq!(status(&o), 0, "{args:?} {env:?}: {text}{}", err(&o));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?} {env:?}: {text}");
    lines[0]
        .strip_prefix("value=")
        .and_then(|r| r.strip_suffix(" unit=ns"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{args:?} {env:?}: {text}"))
}

/// Runs `bench-rt preempt args` with `env` and returns the values of its
/// two lines, `value=<x> unit=ns stat=p50` and `value=<y> unit=ns stat=p99`.
fn p50_p99_ns(args: &[&str], env: &[(&str, &str)]) -> (f64, f64) {
    let o = run(BENCH_RT, args, env);
    let text = out(&o);
    assert_eq!(status(&o), 0, "{args:?} {env:?}: {text}{}", err(&o));
    let stat = |line: &str, tag: &str| -> f64 {
        line.strip_prefix("value=")
            .and_then(|r| r.strip_suffix(tag))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{args:?} {env:?}: {text}"))
    };
    match text.lines().collect::<Vec<_>>()[..] {
        [a, b] => (stat(a, " unit=ns stat=p50"), stat(b, " unit=ns stat=p99")),
        _ => panic!("{args:?} {env:?}: {text}"),
    }
}

#[test]
fn preempt_blockcall_and_blockpipe_print_their_values_at_one_and_two_procs() {
    for procs in ["1", "2"] {
        let env = [("GOMAXPROCS", procs)];
        let (p50, p99) = p50_p99_ns(&["preempt", "n=3"], &env);
        assert!(0.0 <= p50 && p50 <= p99, "GOMAXPROCS={procs}: {p50} {p99}");
        for args in [
            &["blockcall", "n=1000"][..],
            &["blockcall", "n=3", "readers=2"],
            &["blockpipe", "n=3", "pairs=2"],
        ] {
            let rtt = value_ns(args, &env);
            assert!(rtt > 0.0, "GOMAXPROCS={procs} {args:?}: {rtt}");
        }
    }
}

#[test]
fn scheduler_workloads_run_with_asyncpreemptoff() {
    for procs in ["1", "2"] {
        let env = [("GOMAXPROCS", procs), ("GODEBUG", "asyncpreemptoff=1")];
        for args in [
            &["spawn", "n=1000"][..],
            &["pingpong", "n=1000"],
            &["yield", "n=1000"],
            &["tree", "n=100"],
            &["fanout", "n=1000", "workers=4", "cap=128"],
        ] {
            let v = value_ns(args, &env);
            assert!(v > 0.0, "GOMAXPROCS={procs} {args:?}: {v}");
        }
    }
}

#[test]
fn bad_sizes_print_value_none_and_exit_2() {
    for args in [
        &["preempt", "n=0"][..],
        &["preempt", "n=2000000"],
        &["blockcall", "n=0"],
        &["blockcall", "n=3", "readers=0"],
        &["blockcall", "n=3", "readers=2000"],
        &["blockpipe", "n=0"],
        &["blockpipe", "n=3", "pairs=2000"],
        &["blockcall", "n=abc"],
        &["spawn", "n=-1"],
    ] {
        let o = run(BENCH_RT, args, &[]);
        let text = out(&o);
        assert_eq!(status(&o), 2, "{args:?}: {text}");
        assert!(text.starts_with("value=none reason="), "{args:?}: {text}");
    }
}
