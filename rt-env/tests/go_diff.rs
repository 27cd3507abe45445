//! Differential tests against the real Go runtime.
//!
//! When `go` is on PATH, `tests/testdata/gomaxprocs.go` is built once into a
//! temporary directory (with its own GOCACHE and GOPATH) and run under many
//! tricky settings of `GOMAXPROCS`, `GOTRACEBACK`, `GODEBUG` and crafted
//! environment blocks; each observable result must equal what rt-env computes
//! for the same input. Without a working `go`, every test fails when the
//! environment variable `CI` is set (CI must not skip them silently);
//! elsewhere each one writes a line to stderr saying it was skipped, and
//! passes.
//!
//! Every child (`go version`, `go build`, the probe) runs with a time
//! bound: one that hangs is killed and fails the test.
//!
//! The installed Go (1.19) predates cgroup-aware defaults, so the
//! `GOMAXPROCS` comparisons use the affinity-only default
//! (`containermaxprocs=0`).

use std::ffi::{CString, OsStr};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rt_env::{
    affinity_cpus, default_procs, gomaxprocs, parse_godebug, parse_gotraceback, DebugVars, Env,
};

/// Seconds `go version` and each probe run may take.
const RUN_BOUND_SECS: u64 = 60;
/// Seconds `go build` may take (a cold cache builds the standard library).
const BUILD_BOUND_SECS: u64 = 600;

/// Runs `c` with stdin closed and stdout and stderr captured, killing it
/// after `secs` seconds; a child killed so fails the test as a hang.
fn output_bounded(mut c: Command, secs: u64) -> std::io::Result<Output> {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("{c:?}");
    let mut child = c.spawn()?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => panic!(
            "hung: {what} ran longer than {secs} s and was killed\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// Why there is no usable `go`, or `None` when `go version` works.
fn go_missing() -> Option<String> {
    let mut c = Command::new("go");
    c.arg("version");
    match output_bounded(c, RUN_BOUND_SECS) {
        Err(e) => Some(format!("cannot run `go version`: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "`go version` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim_end()
        )),
        Ok(_) => None,
    }
}

/// The probe binary, built once per test process; `Err` says why there is
/// no `go` to build it with.
fn probe() -> Result<&'static Path, &'static str> {
    static PROBE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            if let Some(why) = go_missing() {
                return Err(why);
            }
            remove_stale_build_dirs();
            let dir = std::env::temp_dir().join(format!("rt-env-go-diff-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/gomaxprocs.go");
            let bin = dir.join("probe");
            let mut c = Command::new("go");
            c.args(["build", "-o"])
                .arg(&bin)
                .arg(&src)
                .env("GOCACHE", dir.join("gocache"))
                .env("GOPATH", dir.join("gopath"))
                .env("GO111MODULE", "off")
                .env("CGO_ENABLED", "0")
                .env_remove("GOFLAGS");
            let out = output_bounded(c, BUILD_BOUND_SECS).expect("run go build");
            assert!(
                out.status.success(),
                "go build failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(bin)
        })
        .as_ref()
        .map(|p| p.as_path())
        .map_err(|why| why.as_str())
}

/// Whether this is a CI run (`CI` set to anything but empty, `0` or
/// `false`).
fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Removes build directories left by earlier test processes that have
/// exited (the directory name carries the owner's pid).
fn remove_stale_build_dirs() {
    let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("rt-env-go-diff-"))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The probe, or (without `go`) a failure in CI and a skip elsewhere. The
/// skip line goes straight to the process's stderr, past the test
/// harness's capture, so it shows in a passing run.
macro_rules! probe_or_skip {
    ($name:expr) => {
        match probe() {
            Ok(p) => p,
            Err(why) if in_ci() => panic!(
                "go_diff::{}: CI is set but Go is not usable ({why}); \
                 install it (apt-get install golang-go) or these differential tests do not run",
                $name
            ),
            Err(why) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "go_diff::{}: SKIPPED, not compared with Go: {why}",
                    $name
                );
                return;
            }
        }
    };
}

/// Runs the probe with a clean environment plus `vars` (a `None` value
/// leaves the variable unset), with core dumps disabled.
fn run(bin: &Path, args: &[&str], vars: &[(&str, Option<&[u8]>)]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args).env_clear();
    for (k, v) in vars {
        if let Some(v) = v {
            cmd.env(k, OsStr::from_bytes(v));
        }
    }
    cmd.current_dir(bin.parent().unwrap());
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe,
    // between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
    output_bounded(cmd, RUN_BOUND_SECS).expect("run probe")
}

fn no_cgroup() -> DebugVars {
    parse_godebug(b"containermaxprocs=0")
}

/// Parses `gomaxprocs=N numcpu=M`.
fn procs_line(out: &Output) -> (i32, i32) {
    let s = String::from_utf8_lossy(&out.stdout);
    let mut it = s
        .split_whitespace()
        .map(|f| f.split_once('=').unwrap().1.parse::<i32>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[test]
fn gomaxprocs_matches_go() {
    let bin = probe_or_skip!("gomaxprocs_matches_go");
    let ncpu = affinity_cpus();
    let default = default_procs(ncpu, None, &no_cgroup());
    let values: &[Option<&[u8]>] = &[
        None,
        Some(b""),
        Some(b"abc"),
        Some(b"0"),
        Some(b"-1"),
        Some(b"-"),
        Some(b"-0"),
        Some(b"+3"),
        Some(b" 3"),
        Some(b"3 "),
        Some(b"3\t"),
        Some(b"1e3"),
        Some(b"0x10"),
        Some(b"1_0"),
        Some(b"3.0"),
        Some(b"007"),
        Some(b"1"),
        Some(b"2"),
        Some(b"3"),
        Some(b"17"),
        Some(b"64"),
        Some(b"256"),
        Some(b"2147483648"),
        Some(b"-2147483648"),
        Some(b"4294967297"),
        Some(b"9223372036854775807"),
        Some(b"18446744073709551617"),
        Some("\u{663}".as_bytes()),
        Some(b"\xff"),
    ];
    for v in values {
        let out = run(bin, &["procs"], &[("GOMAXPROCS", *v)]);
        assert!(
            out.status.success(),
            "{v:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (go_procs, go_ncpu) = procs_line(&out);
        assert_eq!(go_ncpu, ncpu, "NumCPU vs affinity_cpus");
        let ours = gomaxprocs(*v, default);
        assert_eq!(
            ours,
            go_procs,
            "GOMAXPROCS={:?}",
            v.map(String::from_utf8_lossy)
        );
    }
}

/// What a Go panic report shows, reduced to the four facts the traceback
/// setting controls.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    failing_goroutine: bool,
    other_goroutines: bool,
    runtime_frames: bool,
    sigabrt: bool,
}

#[test]
fn gotraceback_matches_go() {
    let bin = probe_or_skip!("gotraceback_matches_go");
    let values: &[Option<&[u8]>] = &[
        None,
        Some(b""),
        Some(b"none"),
        Some(b"single"),
        Some(b"all"),
        Some(b"system"),
        Some(b"crash"),
        Some(b"ALL"),
        Some(b"all "),
        Some(b"0"),
        Some(b"1"),
        Some(b"2"),
        Some(b"5"),
        Some(b"-"),
        Some(b"-1"),
        Some(b"+1"),
        Some(b"1073741823"),
        Some(b"1073741824"),
        Some(b"1073741825"),
        Some(b"4294967295"),
        Some(b"4294967296"),
        Some(b"garbage"),
    ];
    for v in values {
        let out = run(bin, &["panic"], &[("GOTRACEBACK", *v)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("panic: probe"), "{v:?}: {err}");
        let go = Shape {
            failing_goroutine: err.contains("goroutine 1 [running]:"),
            other_goroutines: err.contains("main.blocker("),
            runtime_frames: err.contains("runtime.main("),
            sigabrt: out.status.signal() == Some(libc::SIGABRT),
        };
        if !go.sigabrt {
            assert_eq!(out.status.code(), Some(2), "{v:?}");
        }
        let tb = parse_gotraceback(*v);
        let ours = Shape {
            failing_goroutine: tb.level > 0,
            other_goroutines: tb.level > 0 && tb.all,
            runtime_frames: tb.level >= 2,
            sigabrt: tb.crash,
        };
        assert_eq!(ours, go, "GOTRACEBACK={:?}", v.map(String::from_utf8_lossy));
    }
}

#[test]
fn godebug_inittrace_matches_go() {
    let bin = probe_or_skip!("godebug_inittrace_matches_go");
    let values: &[&[u8]] = &[
        b"",
        b"inittrace=1",
        b"inittrace=0",
        b"inittrace=-",
        b"inittrace=+1",
        b"inittrace= 1",
        b"inittrace=1 ",
        b"inittrace=",
        b"inittrace",
        b" inittrace=1",
        b"INITTRACE=1",
        b"inittrace=1=1",
        b"inittrace=1,",
        b",,inittrace=7,,",
        b"inittrace=1,inittrace=x",
        b"inittrace=1,inittrace=0",
        b"inittrace=1,inittrace=-",
        b"inittrace=0,inittrace=1",
        b"inittrace=2147483648",
        b"inittrace=-2147483648",
        b"gctrace=0,inittrace=0x1",
        b"nosuchkey=1,inittrace=1",
    ];
    for v in values {
        let out = run(bin, &["procs"], &[("GODEBUG", Some(v))]);
        assert!(out.status.success());
        let go_traced = String::from_utf8_lossy(&out.stderr)
            .lines()
            .any(|l| l.starts_with("init runtime @"));
        let ours = parse_godebug(v).inittrace != 0;
        assert_eq!(ours, go_traced, "GODEBUG={:?}", String::from_utf8_lossy(v));
    }
}

/// Starts the probe with exactly `envp` as its environment (duplicates,
/// entries without `=` and empty entries included, which `Command` cannot
/// express) and returns its stdout.
fn spawn_raw_env(bin: &Path, args: &[&[u8]], envp: &[&[u8]]) -> String {
    let out_path = bin
        .with_file_name(format!("out-{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    let c = |b: &[u8]| CString::new(b).unwrap();
    let prog = c(bin.as_os_str().as_bytes());
    let argv_c: Vec<CString> = std::iter::once(prog.clone())
        .chain(args.iter().map(|a| c(a)))
        .collect();
    let envp_c: Vec<CString> = envp.iter().map(|e| c(e)).collect();
    let mut argv: Vec<*mut libc::c_char> = argv_c.iter().map(|s| s.as_ptr() as *mut _).collect();
    argv.push(std::ptr::null_mut());
    let mut envv: Vec<*mut libc::c_char> = envp_c.iter().map(|s| s.as_ptr() as *mut _).collect();
    envv.push(std::ptr::null_mut());
    let out_c = c(out_path.as_os_str().as_bytes());
    // Every pointer passed below refers to a live, NUL-terminated CString or
    // a null-terminated pointer array built above, and the file actions
    // object is initialised before use and destroyed after.
    // SAFETY: live C strings and arrays, file actions initialised first.
    let pid = unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        assert_eq!(libc::posix_spawn_file_actions_init(&mut fa), 0);
        assert_eq!(
            libc::posix_spawn_file_actions_addopen(
                &mut fa,
                1,
                out_c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                0o600
            ),
            0
        );
        let mut pid: libc::pid_t = 0;
        let r = libc::posix_spawn(
            &mut pid,
            prog.as_ptr(),
            &fa,
            std::ptr::null(),
            argv.as_ptr(),
            envv.as_ptr(),
        );
        assert_eq!(r, 0, "posix_spawn");
        libc::posix_spawn_file_actions_destroy(&mut fa);
        pid
    };
    let status = wait_pid_bounded(pid, RUN_BOUND_SECS);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "probe status {status}"
    );
    let s = String::from_utf8(std::fs::read(&out_path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out_path);
    s
}

/// Waits for child `pid` without blocking (`WNOHANG`), polling until it
/// has exited or `secs` seconds have passed; then kills it, reaps it and
/// fails the test as a hang. Returns the wait status.
fn wait_pid_bounded(pid: libc::pid_t, secs: u64) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child, not yet reaped; `status` is a live int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return status;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            panic!("waitpid({pid}): {}", std::io::Error::last_os_error());
        }
        if Instant::now() >= deadline {
            // SAFETY: kill and waitpid on our own unreaped child; `status`
            // is a live int.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("hung: the probe ran longer than {secs} s and was killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn env_lookup_matches_go() {
    let bin = probe_or_skip!("env_lookup_matches_go");
    let envp: &[&[u8]] = &[
        b"A=1",
        b"A=2",
        b"NOEQ",
        b"",
        b"=x",
        b"=y",
        b"B=b=c",
        b"E=",
        b"\xff\xfe=\x80",
        b"NOEQ=late",
        b"C=3",
        b"",
        b"C=4",
    ];
    let keys: &[&[u8]] = &[
        b"A",
        b"B",
        b"C",
        b"E",
        b"NOEQ",
        b"",
        b"B=b",
        b"\xff\xfe",
        b"Z",
        b"a",
    ];
    let args: Vec<String> = std::iter::once("env".to_string())
        .chain(keys.iter().map(|k| hex(k)))
        .collect();
    let arg_bytes: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    let out = spawn_raw_env(bin, &arg_bytes, envp);
    let env = Env::new(envp);
    let mut want = String::new();
    for k in keys {
        match env.get(k) {
            Some(v) => want += &format!("{} 1 {}\n", hex(k), hex(v.as_bytes())),
            None => want += &format!("{} 0 \n", hex(k)),
        }
    }
    for e in env.environ() {
        want += &format!("environ {}\n", hex(e.as_bytes()));
    }
    assert_eq!(out, want);
}

#[test]
fn runtime_lookup_matches_go() {
    let bin = probe_or_skip!("runtime_lookup_matches_go");
    let ncpu = affinity_cpus();
    let default = default_procs(ncpu, None, &no_cgroup());
    let blocks: &[&[&[u8]]] = &[
        &[b"GOMAXPROCS=3", b"GOMAXPROCS=5"],
        &[b"GOMAXPROCS", b"GOMAXPROCS=abc", b"GOMAXPROCS=3"],
        &[b"GOMAXPROCSX=7", b"GOMAXPROCS=5"],
        &[b"", b"GOMAXPROCS=", b"GOMAXPROCS=4"],
        &[b"gomaxprocs=4"],
    ];
    for envp in blocks {
        let out = spawn_raw_env(bin, &[b"procs"], envp);
        let go_procs: i32 = out
            .split_whitespace()
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .parse()
            .unwrap();
        let env = Env::new(*envp);
        let ours = gomaxprocs(
            env.runtime_get(b"GOMAXPROCS").map(|v| v.as_bytes()),
            default,
        );
        assert_eq!(ours, go_procs, "{envp:?}");
    }
}
