//! The process-wide lookups (`debugvars_from_env`, `gogetenv`, `getenv`)
//! against a real process environment: the test binary re-executes itself
//! with a chosen environment and the child prints what it parsed.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rt_env::{
    debugvars_from_env, debugvars_report, getenv, gogetenv, gomaxprocs, parse_gotraceback,
};

const CHILD: &str = "RT_ENV_PROCESS_ENV_CHILD";

/// The line the child half prints first, so the parent knows its report
/// came from `child_report` and not from some other test.
const MARK: &str = "child_report: begin";

/// The child half of [`parses_the_real_environment`]: prints the boot-time
/// report and the GOMAXPROCS decision for the environment the parent chose.
/// Ignored in normal runs (the parent runs it with `--ignored`); run by
/// hand without the parent's environment, it does the parent's whole check.
#[test]
#[ignore = "child half of parses_the_real_environment, which runs it"]
fn child_report() {
    if std::env::var_os(CHILD).is_none() {
        check_child_report();
        return;
    }
    println!("{MARK}");
    let dv = debugvars_from_env();
    let tb = parse_gotraceback(gogetenv(b"GOTRACEBACK").map(|v| v.as_bytes()));
    print!("{}", debugvars_report(&dv, &tb));
    println!(
        "procs={}",
        gomaxprocs(gogetenv(b"GOMAXPROCS").map(|v| v.as_bytes()), 5)
    );
    println!("plain={:?}", getenv(b"RT_ENV_PLAIN"));
}

/// Runs `c` with stdout and stderr captured; a child still running after
/// `secs` seconds is killed and the test fails as a hang.
fn output_bounded(mut c: Command, secs: u64) -> (std::process::ExitStatus, String, String) {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn the test binary");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for the child") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(st) => (st, out, err),
        None => panic!("hung: the child ran longer than {secs} s\nstdout: {out}\nstderr: {err}"),
    }
}

#[test]
fn parses_the_real_environment() {
    check_child_report();
}

/// Runs `child_report` in a child with a chosen environment and checks
/// what it printed.
fn check_child_report() {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_report",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, "1")
    .env("GODEBUG", "gctrace=3,schedtrace=x,stacksize=65536,bogus=1")
    .env("GOTRACEBACK", "system")
    .env("GOMAXPROCS", "12")
    .env("RT_ENV_PLAIN", "a=b");
    let (status, s, e) = output_bounded(c, 120);
    assert!(status.success(), "{e}\n{s}");
    // The report is everything after the mark (the harness may print
    // `test child_report ... ` in front of it), up to the harness's own
    // summary; each expected line must be one of its lines exactly.
    let report: Vec<&str> = s
        .lines()
        .skip_while(|l| !l.ends_with(MARK))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(!report.is_empty(), "child_report did not run:\n{s}");
    for want in [
        "gctrace=3",
        "schedtrace=0",
        "stacksize=65536",
        "madvdontneed=1",
        "gotraceback.level=2",
        "gotraceback.all=1",
        "gotraceback.crash=0",
        "procs=12",
        "plain=Some(\"a=b\")",
    ] {
        assert!(report.contains(&want), "missing {want:?} in:\n{s}");
    }
    assert!(
        s.contains("test result: ok. 1 passed"),
        "exactly child_report should have run:\n{s}"
    );
}
