//! `cargo xtask stress`: the torture suites, run many times.
//!
//! Concurrency bugs show up as a small fraction of runs, so one green run
//! proves little. Each suite is a list of `rt-demo` invocations with the
//! output a correct runtime prints; the driver runs every invocation many
//! times at several GOMAXPROCS values, two processes at a time (one per
//! core), each killed after a time bound (a hang is a failure), and ends with
//! one line `stress: N passed, M failed`.
//!
//! `rt-demo` is built twice in release, and the runs alternate between the
//! builds: once plain (the code users run) and once with the `rtcheck`
//! feature, where the runtime's self-checks (P-cache ownership, poisoned
//! frees, G status transitions, single wake-ups) are on, so a bug tends to
//! stop at its cause with a `fatal error:` instead of corrupting something
//! far away.
//!
//! Suites:
//! * `chan` — Go's channel, select and scheduler tests rewritten for rt
//!   (`rt-demo gochan list`), plus `selectstorm` with and without every
//!   feature, also pinned to one CPU (`taskset -c 0`);
//! * `sched` — the scheduler torture scenarios of `demo/stress.rs`, the
//!   network poller's `pollfd`, and preemption's `hog` (and, one run in
//!   ten, `hogidle`: `hog` after sysmon slept until woken), `stdoutlock`,
//!   `stdmutex`, `blockcalls`, `setuid`, `handoff`, `blockchan`, `hogresize` and `preemptstress` (the last
//!   under `GODEBUG=preemptinterval=1000`);
//! * `torture` — seeded random programs (`rt-demo torture SEED`), seeds
//!   `0..--seeds`, GOMAXPROCS rotating with the seed.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One child run and what it must print.
#[derive(Clone, Debug)]
struct Job {
    /// `rt-demo` arguments.
    args: Vec<String>,
    /// GOMAXPROCS for the child.
    procs: u32,
    /// GODEBUG for the child (empty: unset).
    godebug: String,
    /// Run under `taskset -c 0` (one CPU for every thread).
    pinned: bool,
    /// What stdout must be, exactly, or start with (`prefix`).
    want: String,
    prefix: bool,
    /// Which build runs it: 0 plain release, 1 release with self-checks.
    build: usize,
}

impl Job {
    fn new(args: &[&str], procs: u32, want: &str) -> Job {
        Job {
            args: args.iter().map(|s| s.to_string()).collect(),
            procs,
            godebug: String::new(),
            pinned: false,
            want: want.to_string(),
            prefix: false,
            build: 1,
        }
    }

    fn describe(&self) -> String {
        format!(
            "GOMAXPROCS={}{}{} rt-demo{} {}",
            self.procs,
            if self.godebug.is_empty() {
                String::new()
            } else {
                format!(" GODEBUG={}", self.godebug)
            },
            if self.pinned { " taskset -c 0" } else { "" },
            if self.build == 1 { "(rtcheck)" } else { "" },
            self.args.join(" ")
        )
    }
}

struct Options {
    suites: Vec<String>,
    runs: u32,
    procs: Vec<u32>,
    seeds: u64,
    jobs: usize,
    timeout: Duration,
}

const USAGE: &str = "usage: cargo xtask stress [chan|sched|torture|all ...] [--runs N] \
[--procs 1,2,4] [--seeds N] [--jobs J] [--timeout SECS]\n\
       cargo xtask stress stacks [N]";

fn parse(rest: &[String]) -> Result<Options, String> {
    let mut o = Options {
        suites: Vec::new(),
        runs: 100,
        procs: vec![1, 2, 4],
        seeds: 10_000,
        jobs: 2,
        timeout: Duration::from_secs(120),
    };
    let mut i = 0;
    let num = |v: Option<&String>, what: &str| -> Result<u64, String> {
        v.and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{what} needs a number\n{USAGE}"))
    };
    while i < rest.len() {
        match rest[i].as_str() {
            "--runs" => o.runs = num(rest.get(i + 1), "--runs")? as u32,
            "--seeds" => o.seeds = num(rest.get(i + 1), "--seeds")?,
            "--jobs" => o.jobs = num(rest.get(i + 1), "--jobs")?.max(1) as usize,
            "--timeout" => o.timeout = Duration::from_secs(num(rest.get(i + 1), "--timeout")?),
            "--procs" => {
                let v = rest
                    .get(i + 1)
                    .ok_or_else(|| format!("--procs needs a list\n{USAGE}"))?;
                o.procs = v
                    .split(',')
                    .map(|p| {
                        p.trim()
                            .parse::<u32>()
                            .map_err(|_| format!("bad --procs {v:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            s @ ("chan" | "sched" | "torture") => {
                o.suites.push(s.to_string());
                i += 1;
                continue;
            }
            "all" => {
                o.suites
                    .extend(["chan", "sched", "torture"].map(String::from));
                i += 1;
                continue;
            }
            other => return Err(format!("unknown stress argument {other:?}\n{USAGE}")),
        }
        i += 2;
    }
    if o.suites.is_empty() {
        o.suites
            .extend(["chan", "sched", "torture"].map(String::from));
    }
    Ok(o)
}

/// The two builds every job alternates between: plain release (the code
/// users run) and release with the self-checks. Both are needed: the checks
/// add calls that change what the optimiser inlines and hoists, and the
/// bug of a thread-local address kept across a park showed only in the
/// plain build of some programs. The checked build goes to a directory of
/// its own inside cargo's target directory, so the two do not rebuild each
/// other.
fn build_demos() -> Result<[PathBuf; 2], String> {
    let plain = crate::release_bin("rt-tests", "rt-demo", &[])?;
    let dir = crate::target_dir()?.join("rtcheck");
    let mut c = crate::cargo();
    c.env("CARGO_TARGET_DIR", &dir).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "rt-tests",
        "--bin",
        "rt-demo",
        "--features",
        "rtcheck",
    ]);
    let checked = crate::built_executable(c, "rt-demo")?;
    Ok([plain, checked])
}

/// What `rt-demo pollfd` prints when every check holds.
const POLLFD_WANT: &str = "data wakes the reader: ok\npast deadline: ok\nfuture deadline: ok\n\
extended deadline: ok\ncleared deadline: ok\nevict wakes the reader: ok\nevicted stays closed: ok\n\
many waiters: ok\nplain thread: ok\n";

/// What `rt-demo hog` prints when every tick came in time on the same thread.
const HOG_WANT: &str = "hog ok ticks=100 gap<30ms=true same_tid=true same_tls=true\n";

/// How many allocations each `preemptstress` worker makes, and what it
/// prints then: 8 workers, every 8th allocation sent over the channel.
const PREEMPTSTRESS_ROUNDS: &str = "20000";
const PREEMPTSTRESS_WANT: &str =
    "preemptstress ok allocs=160000 checked=160000 sent=20000 received=20000\n";

/// The suite's jobs. `gochan list` is asked of the binary itself, so the
/// list never goes stale.
fn jobs_for(demo: &Path, suite: &str, o: &Options) -> Result<Vec<Job>, String> {
    let mut jobs = Vec::new();
    match suite {
        "chan" => {
            let out = Command::new(demo)
                .args(["gochan", "list"])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", demo.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "rt-demo gochan list failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            for _ in 0..o.runs {
                for &p in &o.procs {
                    for n in &names {
                        jobs.push(Job::new(&["gochan", n], p, &format!("gochan {n} ok\n")));
                    }
                }
            }
            let storm = "selectstorm ok 120000 1440060000\n";
            for _ in 0..o.runs {
                for &p in &o.procs {
                    jobs.push(Job::new(&["selectstorm"], p, storm));
                    jobs.push(Job::new(&["selectstorm", "all"], p, storm));
                }
                let mut pinned = Job::new(&["selectstorm"], 2, storm);
                pinned.pinned = true;
                jobs.push(pinned);
            }
        }
        "sched" => {
            let cases: [(&str, &str, &str); 6] = [
                ("lockpp", "20000", "lockpp ok 20000\n"),
                ("gmptimer", "2000", "gmptimer ok 2000\n"),
                ("gmp2", "500", "gmp2 ok 500\n"),
                ("lockblock", "100", "lockblock ok 100\n"),
                ("foreignlat", "20000", "foreignlat ok 20000\n"),
                ("selstress", "5000", "selstress ok 30000\n"),
            ];
            for run in 0..o.runs {
                for &p in &o.procs {
                    for (s, n, want) in cases {
                        jobs.push(Job::new(&[s, n], p, want));
                    }
                    // The network poller: waits ended by data, deadlines,
                    // eviction; many waiters beside a CPU-bound goroutine.
                    jobs.push(Job::new(&["pollfd"], p, POLLFD_WANT));
                    // Preemption: a goroutine that never enters the runtime,
                    // and one preempted while it holds stdout's lock.
                    jobs.push(Job::new(&["hog"], p, HOG_WANT));
                    // The same after sysmon slept through an idle spell (a
                    // second or more of waiting each, so one run in ten).
                    if run % 10 == 0 {
                        jobs.push(Job::new(
                            &["hogidle"],
                            p,
                            &format!("sysmon slept\n{HOG_WANT}"),
                        ));
                    }
                    let mut lock = Job::new(&["stdoutlock"], p, "holder has the lock\n");
                    lock.prefix = true;
                    jobs.push(lock);
                    // Preempted while holding a std Mutex others wait on;
                    // in blocking calls made without `blocking()`; while
                    // glibc's setxid broadcast visits every thread.
                    jobs.push(Job::new(
                        &["stdmutex"],
                        p,
                        "stdmutex ok count=4001 contended=4\n",
                    ));
                    jobs.push(Job::new(
                        &["blockcalls"],
                        p,
                        "blockcalls ok pipes=3 bytes=17331 ticks=10\n",
                    ));
                    jobs.push(Job::new(
                        &["setuid"],
                        p,
                        &format!("setuid ok calls=20 hogs={p}\n"),
                    ));
                    // A P given up in read(2), CPU without a P, the way back.
                    jobs.push(Job::new(
                        &["blockchan", "500"],
                        p,
                        "blockchan ok pairs=4 bytes=2000 wrote=true\n",
                    ));
                    jobs.push(Job::new(
                        &["handoff"],
                        p,
                        "handoff ok read=true wrote=true pingpong=true child=7 same_thread=true\n",
                    ));
                    jobs.push(Job::new(
                        &["hogresize"],
                        p,
                        &format!("hogresize ok changes=12 gomaxprocs={p}\n"),
                    ));
                    // The allocator and channels under 1 ms preemption.
                    let mut alloc = Job::new(
                        &["preemptstress", PREEMPTSTRESS_ROUNDS],
                        p,
                        PREEMPTSTRESS_WANT,
                    );
                    alloc.godebug = "preemptinterval=1000".into();
                    jobs.push(alloc);
                }
            }
        }
        "torture" => {
            for seed in 0..o.seeds {
                let p = o.procs[(seed % o.procs.len() as u64) as usize];
                let s = seed.to_string();
                let mut j = Job::new(&["torture", &s], p, &format!("torture ok seed={seed} "));
                j.prefix = true;
                jobs.push(j);
            }
        }
        other => return Err(format!("unknown suite {other:?}")),
    }
    Ok(jobs)
}

/// Outcome of one run: None when it passed, else what went wrong.
fn run_one(demo: &Path, j: &Job, timeout: Duration) -> Option<String> {
    let mut c = if j.pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(demo);
        c
    } else {
        Command::new(demo)
    };
    c.args(&j.args);
    if j.godebug.is_empty() {
        c.env_remove("GODEBUG");
    } else {
        c.env("GODEBUG", &j.godebug);
    }
    c.env_remove("GOTRACEBACK")
        .env("GOMAXPROCS", j.procs.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => return Some(format!("cannot start: {e}")),
    };
    // Drain both pipes on threads so a chatty child cannot block on a full
    // pipe while we wait for it.
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let to = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let te = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if t0.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Some(format!("wait failed: {e}")),
        }
    };
    let out = String::from_utf8_lossy(&to.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&te.join().unwrap_or_default()).into_owned();
    let tail = |s: &str| -> String {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    };
    let Some(st) = status else {
        return Some(format!(
            "hung: killed after {}s\n{}",
            timeout.as_secs(),
            tail(&format!("{out}{err}"))
        ));
    };
    let ok_out = if j.prefix {
        out.starts_with(&j.want)
    } else {
        out == j.want
    };
    if st.success() && ok_out {
        return None;
    }
    use std::os::unix::process::ExitStatusExt;
    let how = match (st.code(), st.signal()) {
        (Some(c), _) => format!("status {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown status".into(),
    };
    Some(format!(
        "{how}, {:.2}s, {}; stdout {:?} (want {}{:?}); full output in {}\n{}",
        t0.elapsed().as_secs_f64(),
        demo.display(),
        tail(&out),
        if j.prefix { "prefix " } else { "" },
        j.want,
        keep_output(j, &out, &err),
        tail(&err)
    ))
}

/// Writes a failed run's whole stdout and stderr to a file of its own (the
/// message shows only their last lines) and returns its path.
fn keep_output(j: &Job, out: &str, err: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join("rt-stress");
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("fail-{}-{n}.log", std::process::id()));
    let text = format!("{}\n--- stdout\n{out}\n--- stderr\n{err}", j.describe());
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not kept: {e})"),
    }
}

pub fn run(rest: &[String]) -> Result<(), String> {
    let o = parse(rest)?;
    let demos = build_demos()?;
    let demo = demos[1].clone();
    let mut all = Vec::new();
    for s in &o.suites {
        let j = jobs_for(&demo, s, &o)?;
        eprintln!("stress: suite {s}: {} runs", j.len());
        all.extend(j);
    }
    // Every other run of each job (same arguments, GOMAXPROCS and pinning)
    // uses the plain build; a torture seed runs once, so seeds alternate.
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for j in all.iter_mut() {
        let n = seen.entry(j.describe()).or_default();
        j.build = *n % 2;
        *n += 1;
        if j.args.first().is_some_and(|a| a == "torture") {
            j.build = j
                .args
                .get(1)
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0)
                / 3
                % 2;
        }
    }
    let total = all.len();
    let queue = Arc::new(Mutex::new(VecDeque::from(all)));
    let failed: Arc<Mutex<Vec<(Job, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..o.jobs)
        .map(|_| {
            let (queue, failed, done, demo) =
                (queue.clone(), failed.clone(), done.clone(), demos.clone());
            let timeout = o.timeout;
            std::thread::spawn(move || loop {
                let Some(j) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                if let Some(why) = run_one(&demo[j.build], &j, timeout) {
                    eprintln!("stress: FAIL {}: {why}", j.describe());
                    failed.lock().expect("failures").push((j, why));
                }
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n % 1000 == 0 {
                    eprintln!(
                        "stress: {n}/{total} runs, {:.0}s",
                        t0.elapsed().as_secs_f64()
                    );
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let failed = failed.lock().expect("failures");
    if !failed.is_empty() {
        eprintln!("stress: failures (replay with the same GOMAXPROCS and arguments):");
        for (j, _) in failed.iter() {
            eprintln!("  {}", j.describe());
        }
    }
    println!(
        "stress: {} passed, {} failed ({:.0}s)",
        total - failed.len(),
        failed.len(),
        t0.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {total} runs failed", failed.len()))
    }
}
