//! Running one impl process and reading its result.
//!
//! [`run`] starts the program with piped stdout/stderr, reads both to the end, waits for the
//! child with `waitid(WNOWAIT)` (the end of the wall-time window; the child stays a zombie so
//! its pid cannot be reused) and then reaps it with `wait4` (its `ru_maxrss` is kept in the
//! [`Outcome`] but see below). A watchdog thread kills the child with
//! SIGKILL if it outlives its timeout; it only ever signals a pid that has not been reaped.
//!
//! `ru_maxrss` is not the peak of the program alone: at `exec` the kernel folds the peak of the
//! image being replaced (the harness's, for a vfork/fork child) into it, so every small program
//! would show the harness's own size. [`peak_rss`] therefore runs the program once more under
//! `ptrace` with `PTRACE_O_TRACEEXIT` and reads `VmHWM` from `/proc/<pid>/status` when the
//! main thread stops on its way out: the peak of the final image only (after every `exec`).
//!
//! [`interpret`] turns an [`Outcome`] into a number or a reason: a failed process is never
//! given a value.

use crate::proto::Line;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Normal exit with this status.
    Code(i32),
    /// Killed by this signal (not by the watchdog).
    Signal(i32),
    /// Killed by the watchdog after the timeout.
    TimedOut,
}

/// Everything observed about one child process.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// From just before spawning until the kernel reported its exit.
    pub wall: Duration,
    /// `ru_maxrss` in KiB: at least the spawning process's own peak (see the module doc).
    pub maxrss_kib: u64,
    /// How it ended.
    pub exit: Exit,
}

/// Gives `cmd` an impl's environment: the harness's own without `GOMAXPROCS` (only a variant
/// that sets it in `env` runs with it, every other one with each runtime's default), plus
/// `env`. A `GODEBUG` in `env` is added after the harness's own `GODEBUG` keys (see
/// [`godebug`]) instead of replacing them.
pub fn set_env(cmd: &mut Command, env: &[(String, String)]) {
    cmd.env_remove("GOMAXPROCS");
    let inherited = std::env::var("GODEBUG").ok();
    for (k, v) in env {
        if k == "GODEBUG" {
            cmd.env(k, godebug(inherited.as_deref(), v));
        } else {
            cmd.env(k, v);
        }
    }
}

/// The `GODEBUG` of a child whose variant sets `keys` while the harness runs with `inherited`:
/// both, the variant's last. Go and rt apply the keys in order and the last setting of a key
/// wins, so the variant changes the keys it names and keeps the others.
pub fn godebug(inherited: Option<&str>, keys: &str) -> String {
    match inherited {
        Some(h) if !h.is_empty() => format!("{h},{keys}"),
        _ => keys.to_string(),
    }
}

/// Starts `program args...` with the environment [`set_env`] gives it, and waits for it (at
/// most `timeout`).
pub fn run(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Outcome, String> {
    let mut cmd = Command::new(program);
    set_env(&mut cmd, env);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let pid = child.id() as libc::pid_t;

    // Watchdog: kills the child after `timeout` unless told it has exited.
    let reaped = Arc::new(Mutex::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let (cancel, cancelled) = mpsc::channel::<()>();
    let watchdog = {
        let reaped = Arc::clone(&reaped);
        let timed_out = Arc::clone(&timed_out);
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(timeout) {
                let reaped = reaped.lock().unwrap_or_else(|p| p.into_inner());
                if !*reaped {
                    timed_out.store(true, Ordering::SeqCst);
                    // SAFETY: kill has no memory-safety preconditions; the pid is still ours
                    // (not reaped, guarded by the lock).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        })
    };

    let mut err_pipe = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    let mut out = Vec::new();
    if let Some(mut p) = child.stdout.take() {
        let _ = p.read_to_end(&mut out);
    }

    // Wait for exit without reaping: the pid stays valid for the watchdog.
    loop {
        // SAFETY: siginfo_t is plain data; all-zero is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t; pid is our unreaped child.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waitid: {e}"));
        }
    }
    let wall = t0.elapsed();
    {
        let mut reaped = reaped.lock().unwrap_or_else(|p| p.into_inner());
        *reaped = true;
    }
    let _ = cancel.send(());
    let _ = watchdog.join();

    let mut status = 0;
    // SAFETY: rusage is plain data; all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `ru` are valid, writable; pid is our child, exited and unreaped.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    let stderr = err_reader.join().unwrap_or_default();
    let exit = if timed_out.load(Ordering::SeqCst) {
        Exit::TimedOut
    } else if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else {
        Exit::Signal(libc::WTERMSIG(status))
    };
    Ok(Outcome {
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr,
        wall,
        maxrss_kib: ru.ru_maxrss.max(0) as u64,
        exit,
    })
}

/// Drops `program`'s pages from the page cache (after writing back any that are dirty), so
/// that the next `exec` fills it through the kernel's own read-ahead, as for any installed
/// program.
///
/// A program's file-backed resident set depends on how its pages sit in the page cache, not
/// only on which pages it touches: a fault maps the whole page-cache folio around the faulting
/// page. A binary just written by a copy (`bench-rt-static` is copied next to the harness)
/// sits in larger folios than one read in by `exec`. Measured on the development VM for the
/// same `bench-rt-static` bytes: peak RSS 1960 KiB as copied, 1700 KiB once evicted and
/// loaded by `exec`; Go's `rtbench`, written by its linker, gave 1784 KiB either way. The boot
/// workload therefore evicts every program before its warm-up round, so each is measured
/// from the same page-cache state.
pub fn evict_page_cache(program: &Path) -> Result<(), String> {
    let f = std::fs::File::open(program).map_err(|e| format!("{}: {e}", program.display()))?;
    f.sync_data()
        .map_err(|e| format!("{}: fdatasync: {e}", program.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call; fadvise only affects the
    // page cache of the file it names.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if r != 0 {
        return Err(format!(
            "{}: posix_fadvise: {}",
            program.display(),
            std::io::Error::from_raw_os_error(r)
        ));
    }
    Ok(())
}

/// `VmHWM` in KiB from a `/proc/<pid>/status` text.
pub fn parse_vmhwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Runs `program args...` traced and returns its exit and the peak RSS (KiB) of its final
/// image, read at the exit stop. All ptrace requests come from the calling thread, which is
/// the tracer because it is the one that forks.
pub fn peak_rss(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<(Exit, u64, String), String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    set_env(&mut cmd, env);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: the hook runs in the forked child before exec and only makes one
    // async-signal-safe system call.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {} traced: {e}", program.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut out_pipe = child.stdout.take();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    let deadline = Instant::now() + timeout;
    let mut hwm: Option<u64> = None;
    let mut options_set = false;
    let mut timed_out = false;
    let exit = loop {
        let mut st = 0;
        // SAFETY: `st` is a valid, writable int; pid is our child.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("waitpid: {e}"));
        }
        if r == 0 {
            if !timed_out && Instant::now() > deadline {
                timed_out = true;
                // SAFETY: kill has no memory-safety preconditions; pid is unreaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        if libc::WIFEXITED(st) {
            break Exit::Code(libc::WEXITSTATUS(st));
        }
        if libc::WIFSIGNALED(st) {
            break if timed_out {
                Exit::TimedOut
            } else {
                Exit::Signal(libc::WTERMSIG(st))
            };
        }
        if libc::WIFSTOPPED(st) {
            let sig = libc::WSTOPSIG(st);
            let event = (st >> 16) & 0xff;
            let mut deliver = 0;
            if sig == libc::SIGTRAP && event == libc::PTRACE_EVENT_EXIT {
                hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| parse_vmhwm(&s));
            } else if sig == libc::SIGTRAP && !options_set {
                // The stop after the first exec: ask for the exit stop from now on.
                options_set = true;
                let opts = libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_EXITKILL;
                // SAFETY: pid is our stopped tracee.
                unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts as libc::c_long) };
            } else if sig != libc::SIGTRAP {
                // Any other signal belongs to the program: pass it on.
                deliver = sig;
            }
            // SAFETY: pid is our stopped tracee.
            unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, deliver as libc::c_long) };
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    match hwm {
        Some(k) => Ok((exit, k, stdout)),
        None => Err("no VmHWM at the exit stop".into()),
    }
}

/// A short reason for a failed child: exit code or signal, and its last stderr or stdout line.
fn failure(o: &Outcome) -> String {
    let how = match o.exit {
        Exit::Code(c) => format!("exit status {c}"),
        Exit::Signal(s) => format!("killed by signal {s}"),
        Exit::TimedOut => "timed out".to_string(),
    };
    let last = |s: &str| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().chars().take(160).collect::<String>())
    };
    match last(&o.stderr).or_else(|| last(&o.stdout)) {
        Some(l) => format!("{how}: {l}"),
        None => how,
    }
}

/// The number of an in-process run: `Ok((value, unit))`, or why there is none.
pub fn interpret(o: &Outcome) -> Result<(f64, String), String> {
    judge(o, Line::parse_output(&o.stdout), "")
}

/// The numbers of an in-process run that prints the statistics `stats` (see
/// [`Line::parse_stat`]): `(value, unit)` for each, in order, or why there are none. A run
/// missing any of them has none.
pub fn interpret_stats(o: &Outcome, stats: &[&str]) -> Result<Vec<(f64, String)>, String> {
    stats
        .iter()
        .map(|s| {
            judge(
                o,
                Line::parse_stat(&o.stdout, s),
                &format!(" with stat={s}"),
            )
        })
        .collect()
}

/// A run's number from its exit and its parsed `line`; `what` completes "no value= line" when
/// the line is missing.
fn judge(o: &Outcome, line: Option<Line>, what: &str) -> Result<(f64, String), String> {
    match (o.exit, line) {
        (_, Some(Line::None { reason })) => Err(reason),
        (Exit::Code(0), Some(Line::Value { value, unit })) => Ok((value, unit)),
        (Exit::Code(0), None) => Err(format!(
            "no value= line{what} in output: {:?}",
            o.stdout.chars().take(120).collect::<String>()
        )),
        _ => Err(failure(o)),
    }
}

/// The wall time (µs) of a boot run, or why there is none. The program must exit 0 and print
/// something.
pub fn interpret_boot(o: &Outcome) -> Result<f64, String> {
    if let Some(Line::None { reason }) = Line::parse_output(&o.stdout) {
        return Err(reason);
    }
    match o.exit {
        Exit::Code(0) if !o.stdout.trim().is_empty() => Ok(o.wall.as_secs_f64() * 1e6),
        Exit::Code(0) => Err("printed nothing".into()),
        _ => Err(failure(o)),
    }
}

/// The peak RSS (KiB) of a traced boot run from [`peak_rss`], under the same success rule.
pub fn interpret_boot_rss(r: (Exit, u64, String)) -> Result<f64, String> {
    let (exit, kib, out) = r;
    match exit {
        Exit::Code(0) if !out.trim().is_empty() => Ok(kib as f64),
        Exit::Code(0) => Err("printed nothing (traced run)".into()),
        Exit::Code(c) => Err(format!("exit status {c} (traced run)")),
        Exit::Signal(s) => Err(format!("killed by signal {s} (traced run)")),
        Exit::TimedOut => Err("timed out (traced run)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> Outcome {
        run(
            Path::new("/bin/sh"),
            &["-c".to_string(), script.to_string()],
            &[("RTB_X".to_string(), "42".to_string())],
            timeout,
        )
        .unwrap()
    }

    #[test]
    fn evicting_keeps_the_program_runnable_and_names_a_missing_one() {
        evict_page_cache(Path::new("/bin/sh")).unwrap();
        assert_eq!(sh("exit 3", Duration::from_secs(10)).exit, Exit::Code(3));
        let e = evict_page_cache(Path::new("/nonexistent/rt-bench-program")).unwrap_err();
        assert!(e.contains("/nonexistent/rt-bench-program"), "{e}");
    }

    #[test]
    fn reads_value_line_and_environment() {
        let o = sh("echo value=$RTB_X unit=ns", Duration::from_secs(30));
        assert_eq!(o.exit, Exit::Code(0));
        assert_eq!(interpret(&o), Ok((42.0, "ns".to_string())));
        assert!(o.maxrss_kib > 0);
    }

    #[test]
    fn a_variant_godebug_follows_the_inherited_one() {
        assert_eq!(godebug(None, "asyncpreemptoff=1"), "asyncpreemptoff=1");
        assert_eq!(godebug(Some(""), "fpenv=0"), "fpenv=0");
        assert_eq!(
            godebug(Some("fpenv=0,inittrace=1"), "asyncpreemptoff=1"),
            "fpenv=0,inittrace=1,asyncpreemptoff=1"
        );
        let mut c = Command::new("/bin/true");
        set_env(
            &mut c,
            &[
                ("GOMAXPROCS".to_string(), "2".to_string()),
                ("RTB_Y".to_string(), "y".to_string()),
            ],
        );
        let envs: Vec<_> = c.get_envs().collect();
        assert!(envs.contains(&("GOMAXPROCS".as_ref(), Some("2".as_ref()))));
        assert!(envs.contains(&("RTB_Y".as_ref(), Some("y".as_ref()))));
    }

    #[test]
    fn nonzero_exit_has_no_value() {
        let o = sh(
            "echo value=1 unit=ns; echo boom >&2; exit 3",
            Duration::from_secs(30),
        );
        assert_eq!(o.exit, Exit::Code(3));
        let e = interpret(&o).unwrap_err();
        assert!(e.contains("exit status 3") && e.contains("boom"), "{e}");
    }

    #[test]
    fn every_statistic_comes_from_the_same_run() {
        let o = sh(
            "echo value=3 unit=ns stat=p50; echo value=$RTB_X unit=ns stat=p99",
            Duration::from_secs(30),
        );
        assert_eq!(
            interpret_stats(&o, &["p50", "p99"]),
            Ok(vec![(3.0, "ns".to_string()), (42.0, "ns".to_string())])
        );
        let e = interpret_stats(&o, &["p50", "p90"]).unwrap_err();
        assert!(e.contains("no value= line with stat=p90"), "{e}");
        let o = sh(
            "echo value=3 unit=ns stat=p50; exit 2",
            Duration::from_secs(30),
        );
        assert!(interpret_stats(&o, &["p50"])
            .unwrap_err()
            .contains("exit status 2"));
    }

    #[test]
    fn none_line_reason_is_kept() {
        let o = sh("echo value=none reason=not here", Duration::from_secs(30));
        assert_eq!(interpret(&o), Err("not here".to_string()));
        assert_eq!(interpret_boot(&o), Err("not here".to_string()));
    }

    #[test]
    fn signal_death_is_reported() {
        let o = sh("kill -SEGV $$", Duration::from_secs(30));
        assert_eq!(o.exit, Exit::Signal(libc::SIGSEGV));
        assert!(interpret(&o).unwrap_err().contains("signal 11"));
    }

    #[test]
    fn watchdog_kills_a_hung_child() {
        let o = sh("exec sleep 30", Duration::from_millis(200));
        assert_eq!(o.exit, Exit::TimedOut);
        assert!(interpret(&o).unwrap_err().contains("timed out"));
    }

    #[test]
    fn boot_needs_output_and_success() {
        let o = sh("echo hello", Duration::from_secs(30));
        let us = interpret_boot(&o).unwrap();
        assert!(us > 0.0);
        assert!(interpret_boot(&sh("true", Duration::from_secs(30))).is_err());
        assert!(interpret_boot(&sh("echo hi; exit 1", Duration::from_secs(30))).is_err());
    }

    #[test]
    fn vmhwm_is_parsed() {
        assert_eq!(
            parse_vmhwm("Name:\tx\nVmHWM:\t    2088 kB\nVmRSS: 1 kB\n"),
            Some(2088)
        );
        assert_eq!(parse_vmhwm("Name: x\n"), None);
    }

    #[test]
    fn traced_peak_is_the_programs_own() {
        // A program that touches 32 MiB peaks above it; `true` stays far below it, whatever
        // this test process weighs.
        let big = peak_rss(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "x=$(head -c 33554432 /dev/zero | tr '\\0' a); echo ${#x}".into(),
            ],
            &[],
            Duration::from_secs(60),
        );
        let small = peak_rss(Path::new("/bin/true"), &[], &[], Duration::from_secs(30)).unwrap();
        assert_eq!(small.0, Exit::Code(0));
        let (exit, kib, out) = big.unwrap();
        assert_eq!(exit, Exit::Code(0));
        assert_eq!(out.trim(), "33554432");
        assert!(kib > 32 * 1024, "{kib}");
        assert!(small.1 < 8 * 1024, "{}", small.1);
    }

    #[test]
    fn traced_signal_death_is_reported() {
        let (exit, _, _) = peak_rss(
            Path::new("/bin/sh"),
            &["-c".into(), "kill -TERM $$".into()],
            &[],
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(exit, Exit::Signal(libc::SIGTERM));
    }

    #[test]
    fn missing_program_is_an_error() {
        assert!(run(
            Path::new("/nonexistent/prog"),
            &[],
            &[],
            Duration::from_secs(1)
        )
        .is_err());
    }

    #[test]
    fn large_stderr_does_not_deadlock() {
        let o = sh(
            "i=0; while [ $i -lt 2000 ]; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx >&2; i=$((i+1)); done; echo value=1 unit=B",
            Duration::from_secs(60),
        );
        assert_eq!(interpret(&o), Ok((1.0, "B".to_string())));
    }
}
