//! Running rt-demo as a subprocess.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

/// The demo entered at `_rt0_amd64`.
pub const RT0: &str = env!("CARGO_BIN_EXE_rt-demo");
/// The demo entered through libc's start code and `main`.
pub const LIBC: &str = env!("CARGO_BIN_EXE_rt-demo-libc");
/// Both entries.
pub const ENTRIES: [&str; 2] = [RT0, LIBC];

/// Runs `bin` with `args` and extra environment, with a clean GODEBUG,
/// GOMAXPROCS and GOTRACEBACK unless given.
pub fn run<I, S>(bin: &str, args: I, env: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(bin);
    c.args(args)
        .env_remove("GODEBUG")
        .env_remove("GOMAXPROCS")
        .env_remove("GOTRACEBACK");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run rt-demo")
}

/// stdout as text.
pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code, or 128 + signal.
pub fn status(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0))
}

/// Runs `bin` like [`run`], killing it after `secs` seconds (a hang is a
/// failure, reported as status -1 with whatever it printed).
pub fn run_bounded(
    bin: &str,
    args: &[&str],
    env: &[(&str, &str)],
    secs: u64,
) -> (i32, String, String) {
    use std::io::Read;
    let mut c = Command::new(bin);
    c.args(args)
        .env_remove("GODEBUG")
        .env_remove("GOMAXPROCS")
        .env_remove("GOTRACEBACK")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("spawn rt-demo");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let st = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let (mut o, mut e) = (String::new(), String::new());
    let _ = child.stdout.take().unwrap().read_to_string(&mut o);
    let _ = child.stderr.take().unwrap().read_to_string(&mut e);
    let code = match st {
        Some(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        None => -1,
    };
    (code, o, e)
}
