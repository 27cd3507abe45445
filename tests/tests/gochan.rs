//! Go's channel, select and scheduler tests as rewritten for rt
//! (`tests/src/demo/gochan.rs`): every test `rt-demo gochan list` names runs
//! once at GOMAXPROCS=1, 2 and 4, each in its own bounded child process.
//! This is the bounded CI subset; `cargo xtask stress chan` repeats them.

mod common;
use common::*;

/// Seconds after which a child's own watchdog aborts it with a goroutine
/// dump (each test normally takes well under a second).
const WATCHDOG: &str = "10";
/// Backstop: the child is killed after this many seconds.
const LIMIT: u64 = 20;

fn names() -> Vec<String> {
    let (code, out, err) = run_bounded(RT0, &["gochan", "list"], &[], LIMIT);
    assert_eq!(code, 0, "gochan list: status {code}\n{err}");
    let names: Vec<String> = out.lines().map(str::to_owned).collect();
    assert!(!names.is_empty(), "gochan list printed nothing");
    names
}

/// Runs every test at `procs`, then fails listing each one that failed.
fn run_all(procs: &str) {
    let (mut failed, mut failures) = (Vec::new(), Vec::new());
    for name in names() {
        let (code, out, err) = run_bounded(
            RT0,
            &["gochan", &name],
            &[("GOMAXPROCS", procs), ("GOCHAN_WATCHDOG", WATCHDOG)],
            LIMIT,
        );
        let want = format!("gochan {name} ok\n");
        if code != 0 || out != want {
            let status = if code == -1 {
                format!("killed after {LIMIT} s")
            } else {
                format!("status {code}")
            };
            // The panic message or the watchdog's goroutine list; not the
            // register dump after it.
            let err: String = err.lines().take(20).collect::<Vec<_>>().join("\n");
            failures.push(format!(
                "gochan {name} at GOMAXPROCS={procs}: {status}\nstdout: {out:?}\nstderr:\n{err}"
            ));
            failed.push(name);
        }
    }
    assert!(
        failures.is_empty(),
        "GOMAXPROCS={procs}: {} gochan test(s) failed: {}\n\n{}",
        failed.len(),
        failed.join(", "),
        failures.join("\n\n")
    );
}

#[test]
fn gochan_gomaxprocs_1() {
    run_all("1");
}

#[test]
fn gochan_gomaxprocs_2() {
    run_all("2");
}

#[test]
fn gochan_gomaxprocs_4() {
    run_all("4");
}
