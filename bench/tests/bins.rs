//! Runs every impl binary of the crate (and the Go program, when `go` is installed) once on a
//! tiny size and checks the protocol: exactly one `value=` line with a positive number and the
//! expected unit, `value=none` for workloads that do not apply, and exit status 2 with a
//! `value=none` line for bad arguments. No timing is asserted.

use rt_bench::proto::Line;
use std::process::Command;

fn run(bin: &str, args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

fn value(bin: &str, args: &[&str], unit: &str) -> f64 {
    let (code, out) = run(bin, args);
    assert_eq!(code, Some(0), "{bin} {args:?}: {out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("value=")).count(),
        1,
        "{out}"
    );
    match Line::parse_output(&out) {
        Some(Line::Value { value, unit: u }) => {
            assert_eq!(u, unit, "{bin} {args:?}");
            assert!(value > 0.0, "{bin} {args:?}: {value}");
            value
        }
        other => panic!("{bin} {args:?}: {other:?} from {out:?}"),
    }
}

fn not_applicable(bin: &str, workload: &str) {
    let (code, out) = run(bin, &[workload]);
    assert_eq!(code, Some(0));
    assert!(
        matches!(Line::parse_output(&out), Some(Line::None { .. })),
        "{out}"
    );
}

fn bad_args(bin: &str, args: &[&str]) {
    let (code, out) = run(bin, args);
    assert_eq!(code, Some(2), "{bin} {args:?}: {out}");
    assert!(
        matches!(Line::parse_output(&out), Some(Line::None { .. })),
        "{out}"
    );
}

#[test]
fn std_thread_peer() {
    let b = env!("CARGO_BIN_EXE_peer-std");
    value(b, &["spawn", "n=50", "gomaxprocs=1"], "ns");
    value(b, &["pingpong", "n=50"], "ns");
    value(b, &["yield", "n=50", "gomaxprocs=1"], "ns");
    let (code, out) = run(b, &["boot"]);
    assert_eq!((code, out.trim()), (Some(0), "hello from std"));
    not_applicable(b, "malloc");
    bad_args(b, &["spawn", "n=0"]);
    bad_args(b, &["spawn", "n"]);
    bad_args(b, &[]);
}

#[test]
fn tokio_peer() {
    let b = env!("CARGO_BIN_EXE_peer-tokio");
    value(b, &["spawn", "n=100", "gomaxprocs=1"], "ns");
    value(b, &["spawn", "n=100", "gomaxprocs=2"], "ns");
    value(b, &["pingpong", "n=100"], "ns");
    value(b, &["yield", "n=100"], "ns");
    // 2000 parked tasks grow the RSS by at least one page.
    value(b, &["parked", "n=2000"], "B");
    for p in ["gomaxprocs=1", "gomaxprocs=2"] {
        value(b, &["tree", "n=1000", p], "ns");
        value(b, &["fanout", "n=10000", "workers=4", "cap=128", p], "ns");
    }
    value(b, &["tree", "n=1"], "ns");
    not_applicable(b, "switch");
    bad_args(b, &["yield", "n=-3"]);
    bad_args(b, &["tree", "n=20"]);
    bad_args(b, &["tree", "n=1000000000"]);
    bad_args(b, &["fanout", "n=10", "workers=2000"]);
    bad_args(b, &["fanout", "n=10", "cap=0"]);
}

#[test]
fn may_peer() {
    let b = env!("CARGO_BIN_EXE_peer-may");
    value(b, &["spawn", "n=100", "gomaxprocs=1"], "ns");
    value(b, &["pingpong", "n=100"], "ns");
    value(b, &["yield", "n=100", "gomaxprocs=1"], "ns");
    value(b, &["parked", "n=500"], "B");
    for p in ["gomaxprocs=1", "gomaxprocs=2"] {
        value(b, &["tree", "n=1000", p], "ns");
        value(b, &["fanout", "n=10000", "workers=4", "cap=128", p], "ns");
    }
    not_applicable(b, "stack");
    bad_args(b, &["tree", "n=99"]);
    bad_args(b, &["fanout", "n=10", "cap=2000000"]);
}

#[test]
fn corosensei_peer() {
    let b = env!("CARGO_BIN_EXE_peer-corosensei");
    value(b, &["switch", "n=1000"], "ns");
    value(b, &["stack", "n=10", "size=65536"], "ns");
    bad_args(b, &["stack", "size=x"]);
}

/// Every allocator workload on `b` (a `malloc-*` binary), at one and two threads, timed and
/// with `rss=1`.
fn allocator_workloads(b: &str) {
    value(b, &["malloc", "n=5000", "threads=1"], "ns");
    value(b, &["malloc", "n=5000", "threads=2"], "ns");
    for w in ["xthread", "larson", "cscratch", "realloc", "json"] {
        let n = if w == "json" { "n=20" } else { "n=2000" };
        value(b, &[w, n, "threads=2"], "ns");
        let kib = value(b, &[w, n, "threads=1", "rss=1"], "KiB");
        assert!(kib >= 100.0, "{b} {w}: {kib} KiB");
    }
    bad_args(b, &["larson", "n=0"]);
    not_applicable(b, "spawn");
}

#[test]
fn malloc_bins() {
    for b in [
        env!("CARGO_BIN_EXE_malloc-glibc"),
        env!("CARGO_BIN_EXE_malloc-mimalloc"),
        env!("CARGO_BIN_EXE_malloc-jemalloc"),
    ] {
        allocator_workloads(b);
        bad_args(b, &["malloc", "threads=100000"]);
    }
}

#[test]
fn mmap_stack_bin() {
    let b = env!("CARGO_BIN_EXE_stack-mmap");
    value(b, &["stack", "n=100", "size=65536"], "ns");
    bad_args(b, &["stack", "n=1", "size=0"]);
}

#[test]
fn go_program_when_go_is_installed() {
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("go not installed: skipping the Go program check");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rt-bench-go-{}", std::process::id()));
    let bin = dir.join("rtbench");
    let st = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/go"))
        .status()
        .unwrap();
    assert!(st.success());
    let b = bin.to_str().unwrap();
    value(b, &["spawn", "n=100", "gomaxprocs=1"], "ns");
    value(b, &["pingpong", "n=100"], "ns");
    value(b, &["yield", "n=100", "gomaxprocs=1"], "ns");
    value(b, &["parked", "n=1000"], "B");
    for p in ["gomaxprocs=1", "gomaxprocs=2"] {
        value(b, &["tree", "n=1000", p], "ns");
        value(b, &["fanout", "n=10000", "workers=4", "cap=128", p], "ns");
    }
    for p in ["gomaxprocs=1", "gomaxprocs=2"] {
        // Two tagged lines; a tick's lateness may round to 0 ns, every other value is positive.
        let (code, out) = run(b, &["preempt", "n=3", p]);
        assert_eq!(code, Some(0), "preempt {p}: {out}");
        assert_eq!(out.lines().count(), 2, "preempt {p}: {out}");
        for stat in ["p50", "p99"] {
            assert!(
                matches!(Line::parse_stat(&out, stat), Some(Line::Value { value, unit })
                    if value >= 0.0 && unit == "ns"),
                "preempt {p}: {out}"
            );
        }
        value(b, &["blockcall", "n=1000", "readers=8", p], "ns");
        value(b, &["blockpipe", "n=20", "pairs=4", p], "ns");
    }
    not_applicable(b, "malloc");
    bad_args(b, &["preempt", "n=2000000"]);
    bad_args(b, &["blockcall", "n=10", "readers=2000"]);
    bad_args(b, &["blockcall", "n=10", "readers=x"]);
    bad_args(b, &["blockpipe", "n=10", "pairs=2000"]);
    bad_args(b, &["spawn", "n=abc"]);
    bad_args(b, &["tree", "n=30"]);
    bad_args(b, &["fanout", "n=10", "workers=5000"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "rt")]
#[test]
fn rt_heap_malloc_bin() {
    allocator_workloads(env!("CARGO_BIN_EXE_malloc-rt"));
}

#[cfg(feature = "rt")]
#[test]
fn rt_stack_bin() {
    let b = env!("CARGO_BIN_EXE_stack-rt");
    let size = value(b, &["stack-size"], "B");
    assert!(size >= 4096.0 && (size as u64) & 4095 == 0, "{size}");
    value(b, &["stack", "n=1000"], "ns");
    value(b, &["stack", "n=1000", "size=65536"], "ns");
    bad_args(b, &["stack", "n=0"]);
    not_applicable(b, "malloc");
}
