//! Running rt-demo as a subprocess, always with a time bound: a child that
//! hangs is killed and the test fails saying so, instead of stalling CI.
//!
//! `RT_DEMO` and `RT_DEMO_LIBC` name other builds of the two demos (`cargo
//! xtask test` points them at release builds); every helper here maps the
//! default paths below to them.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The demo entered at `_rt0_amd64` (the default build; see [`program`]).
pub const RT0: &str = env!("CARGO_BIN_EXE_rt-demo");
/// The demo entered through libc's start code and `main` (the default
/// build; see [`program`]).
pub const LIBC: &str = env!("CARGO_BIN_EXE_rt-demo-libc");
/// Both entries.
pub const ENTRIES: [&str; 2] = [RT0, LIBC];

/// How long [`run`] lets a child run before it counts as hung. Generous:
/// only a hang should ever reach it. The slowest run (`spawn 1000000`, a
/// debug build) took 55 s on two cores shared with a load of 10.
pub const RUN_BOUND_SECS: u64 = 300;

/// The executable to start for `bin`: `$RT_DEMO` for [`RT0`] and
/// `$RT_DEMO_LIBC` for [`LIBC`] when set and not empty, else `bin` itself.
pub fn program(bin: &str) -> OsString {
    let var = if bin == RT0 {
        "RT_DEMO"
    } else if bin == LIBC {
        "RT_DEMO_LIBC"
    } else {
        return bin.into();
    };
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => p,
        _ => bin.into(),
    }
}

/// A command for `bin` (after [`program`]'s override) with GODEBUG,
/// GOMAXPROCS and GOTRACEBACK removed from the inherited environment and
/// stdin closed.
pub fn command(bin: &str) -> Command {
    let mut c = Command::new(program(bin));
    c.env_remove("GODEBUG")
        .env_remove("GOMAXPROCS")
        .env_remove("GOTRACEBACK")
        .stdin(Stdio::null());
    c
}

/// A short description of `c` for failure messages (long arguments cut).
fn describe(c: &Command) -> String {
    let mut s = format!("{c:?}");
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Reads all of `r` on a thread of its own, so a child that fills one pipe
/// never blocks while the other is being waited on.
fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Polls `child` until it exits or `secs` seconds have passed; then kills
/// it. Returns the exit status, or `None` when it had to be killed.
fn wait_within(child: &mut Child, secs: u64) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().expect("wait for rt-demo") {
            return Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `c` with stdout and stderr captured, killing it after `secs`
/// seconds. Returns its exit status (`None`: it hung and was killed) and
/// everything it wrote.
pub fn output_within(mut c: Command, secs: u64) -> (Option<ExitStatus>, Vec<u8>, Vec<u8>) {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", describe(&c)));
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let st = wait_within(&mut child, secs);
    // The child is gone (exited or killed), so both pipes reach end-of-file.
    let out = out.join().expect("stdout reader");
    let err = err.join().expect("stderr reader");
    (st, out, err)
}

/// Like `Command::output`, with a bound: a child still running after
/// `secs` seconds is killed and the calling test fails with what it
/// printed.
pub fn output_bounded(c: Command, secs: u64) -> Output {
    let what = describe(&c);
    match output_within(c, secs) {
        (Some(status), stdout, stderr) => Output {
            status,
            stdout,
            stderr,
        },
        (None, stdout, stderr) => panic!(
            "hung: {what} was still running after {secs} s and was killed\n\
             stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// Runs `bin` with `args` and extra environment, with a clean GODEBUG,
/// GOMAXPROCS and GOTRACEBACK unless given; a run longer than
/// [`RUN_BOUND_SECS`] is killed and fails the test as a hang.
pub fn run<I, S>(bin: &str, args: I, env: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = command(bin);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    output_bounded(c, RUN_BOUND_SECS)
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
    code_of(o.status)
}

fn code_of(s: ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// Runs `bin` like [`run`], killing it after `secs` seconds (a hang is a
/// failure, reported as status -1 with whatever it printed).
pub fn run_bounded(
    bin: &str,
    args: &[&str],
    env: &[(&str, &str)],
    secs: u64,
) -> (i32, String, String) {
    let mut c = command(bin);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let (st, o, e) = output_within(c, secs);
    (
        st.map_or(-1, code_of),
        String::from_utf8_lossy(&o).into_owned(),
        String::from_utf8_lossy(&e).into_owned(),
    )
}

/// A child the test talks to while it runs (signals, line by line
/// output), with every wait bounded. Dropping it kills a child that is
/// still running.
#[derive(Debug)]
pub struct Running {
    child: Child,
    what: String,
    lines: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    reaped: bool,
}

impl Running {
    /// Starts `c` with stdout read line by line and stderr collected.
    pub fn start(mut c: Command) -> Running {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let what = describe(&c);
        let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let mut rd = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || loop {
            let mut l = String::new();
            match rd.read_line(&mut l) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            }
        });
        let stderr = Some(drain(child.stderr.take().expect("piped stderr")));
        Running {
            child,
            what,
            lines,
            stderr,
            reaped: false,
        }
    }

    /// Sends `sig` to the child (which has not been waited for, so its pid
    /// is still its own).
    pub fn signal(&self, sig: i32) {
        assert!(!self.reaped, "signal after wait");
        // SAFETY: kill has no memory arguments; the pid is our unreaped child.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(r, 0, "kill {}", self.what);
    }

    /// The next line of stdout (with its newline; empty at end-of-file),
    /// waiting at most `secs` seconds for it.
    pub fn line(&mut self, secs: u64) -> String {
        match self.lines.recv_timeout(Duration::from_secs(secs)) {
            Ok(l) => l,
            Err(mpsc::RecvTimeoutError::Disconnected) => String::new(),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let e = self.kill_and_stderr();
                panic!(
                    "hung: {} printed no line within {secs} s and was killed\nstderr: {e}",
                    self.what
                )
            }
        }
    }

    /// Waits at most `secs` seconds for the child to exit; returns how it
    /// ended and its whole stderr. A child still running then is killed and
    /// the test fails as a hang.
    pub fn finish(mut self, secs: u64) -> (ExitStatus, String) {
        let st = wait_within(&mut self.child, secs);
        self.reaped = true;
        let e = self.take_stderr();
        match st {
            Some(st) => (st, e),
            None => panic!(
                "hung: {} was still running after {secs} s and was killed\nstderr: {e}",
                self.what
            ),
        }
    }

    fn take_stderr(&mut self) -> String {
        let v = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        String::from_utf8_lossy(&v).into_owned()
    }

    fn kill_and_stderr(&mut self) -> String {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
        self.take_stderr()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
