//! The process-wide lookups (`debugvars_from_env`, `gogetenv`, `getenv`)
//! against a real process environment: the test binary re-executes itself
//! with a chosen environment and the child prints what it parsed.

use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use rt_env::{
    debugvars_from_env, debugvars_report, getenv, gogetenv, gomaxprocs, parse_gotraceback,
};

const CHILD: &str = "RT_ENV_PROCESS_ENV_CHILD";

/// In the child: print the boot-time report and the GOMAXPROCS decision.
#[test]
fn child_report() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let dv = debugvars_from_env();
    let tb = parse_gotraceback(gogetenv(b"GOTRACEBACK").map(|v| v.as_bytes()));
    print!("{}", debugvars_report(&dv, &tb));
    println!(
        "procs={}",
        gomaxprocs(gogetenv(b"GOMAXPROCS").map(|v| v.as_bytes()), 5)
    );
    println!("plain={:?}", getenv(b"RT_ENV_PLAIN"));
}

#[test]
fn parses_the_real_environment() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_report", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("GODEBUG", "gctrace=3,schedtrace=x,stacksize=65536,bogus=1")
        .env("GOTRACEBACK", "system")
        .env("GOMAXPROCS", "12")
        .env("RT_ENV_PLAIN", "a=b")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    for want in [
        "gctrace=3\n",
        "schedtrace=0\n",
        "stacksize=65536\n",
        "madvdontneed=1\n",
        "gotraceback.level=2\n",
        "gotraceback.all=1\n",
        "gotraceback.crash=0\n",
        "procs=12\n",
        "plain=Some(\"a=b\")\n",
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
}
