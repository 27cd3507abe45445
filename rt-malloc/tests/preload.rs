//! Real programs on `librt_malloc.so`: each runs twice, on glibc's malloc
//! and with the library in `LD_PRELOAD`, and the two runs must agree
//! (status and standard output). Under the preload `RT_MALLOC_STATS`
//! names a file and the library's exit line there must show the program's allocations
//! went through rt-heap, so a preload that silently did not take cannot
//! pass.
//!
//! The library is the `cdylib` cargo builds for this package before its
//! tests, found beside the test binary in `deps/`. The C
//! programs (`tests/c/`) are compiled here with `cc`; `python3`, `sort`
//! and `git` come from the machine (`.ci/run` installs them when missing).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The `librt_malloc.so` cargo built for this test run. With the rlib
/// beside it, cargo builds the library in `deps/`, next to this test's
/// executable, before running the tests (the copy one level up is only
/// refreshed by a `cargo build` of the library itself).
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let lib = exe
        .parent()
        .expect("test executable in target/<profile>/deps")
        .join("librt_malloc.so");
    assert!(
        lib.is_file(),
        "{} is missing: cargo builds it with this package's tests",
        lib.display()
    );
    lib
}

/// Runs `cmd` as built, returning its output; a program that cannot be
/// started fails the test with its name.
fn output(mut cmd: Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed?)"))
}

/// The number after `key` (`"mallocs="`) in one of the library's exit lines.
fn stat_field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}<count> in {line:?}"))
}

/// Allocation counts from the library's exit lines, one per process that
/// exited normally.
fn stats_mallocs(stats: &str) -> Vec<u64> {
    stats
        .lines()
        .filter(|l| l.starts_with("rt-malloc: pid="))
        .map(|l| stat_field(l, "mallocs="))
        .collect()
}

/// Runs `make(false)` on glibc and `make(true)` under the preload; asserts
/// both succeed with the same standard output and that some process of the
/// preloaded run made at least `min_mallocs` allocations through rt-heap.
/// Returns the preloaded run's standard output and its statistics lines.
fn same_with_and_without(make: impl Fn(bool) -> Command, min_mallocs: u64) -> (String, String) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let stats = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "rt-malloc-stats-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&stats);
    let plain = output(make(false));
    let mut c = make(true);
    // A file rather than standard error: some programs (coreutils) close
    // standard error before they exit.
    c.env("LD_PRELOAD", library())
        .env("RT_MALLOC_STATS", &stats);
    let pre = output(c);
    let pre_err = String::from_utf8_lossy(&pre.stderr).into_owned();
    let stats = std::fs::read_to_string(&stats).unwrap_or_default();
    let what = format!("{:?}", make(true));
    assert!(
        plain.status.success(),
        "{what} failed without the preload: {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert!(
        pre.status.success(),
        "{what} failed under the preload ({}): {pre_err}",
        pre.status
    );
    assert_eq!(
        String::from_utf8_lossy(&pre.stdout),
        String::from_utf8_lossy(&plain.stdout),
        "{what}: output differs under the preload"
    );
    let counts = stats_mallocs(&stats);
    assert!(
        counts.iter().any(|&n| n >= min_mallocs),
        "{what}: no process made {min_mallocs} allocations through rt-malloc: {stats:?}"
    );
    (String::from_utf8_lossy(&pre.stdout).into_owned(), stats)
}

/// The real interpreter behind `python3` (not a version manager's shim
/// script, whose own processes would run under the preload too).
fn python() -> PathBuf {
    let o = output({
        let mut c = Command::new("python3");
        c.args(["-c", "import sys; print(sys.executable)"]);
        c
    });
    assert!(o.status.success(), "python3 does not run");
    PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
}

#[test]
fn python_dicts_lists_and_strings() {
    // PYTHONMALLOC=malloc sends every object through malloc (not
    // pymalloc's arenas), so this is a few million C allocations of
    // mixed sizes, most freed by the garbage collector and refcounting.
    const SCRIPT: &str = r#"
import zlib
d = {}
rows = []
for i in range(150000):
    k = "key-%d-%s" % (i, "x" * (i % 37))
    d[k] = [i, str(i * 7), (i, i + 1), {"n": i}]
    if i % 3 == 0:
        rows.append(k.upper() * (1 + i % 5))
    if i % 5 == 0 and rows:
        rows.pop(0)
for k in list(d)[::2]:
    del d[k]
big = ",".join(sorted(rows))
crc = zlib.crc32(big.encode())
for k, v in d.items():
    crc = zlib.crc32(k.encode() + v[1].encode(), crc)
print(len(d), len(rows), len(big), crc)
"#;
    let py = python();
    let (out, _) = same_with_and_without(
        |_| {
            let mut c = Command::new(&py);
            c.args(["-c", SCRIPT]).env("PYTHONMALLOC", "malloc");
            c
        },
        1_000_000,
    );
    // The script ran to its end (same output on glibc was checked).
    assert_eq!(out.split_whitespace().count(), 4, "{out}");
}

#[test]
fn sort_of_a_large_generated_file() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rt-malloc-sort");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.txt");
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    let mut lines = Vec::new();
    for i in 0..300_000u64 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let len = (s % 60) as usize;
        let word: String = (0..len)
            .map(|j| (b'a' + ((s >> (j % 60)) % 26) as u8) as char)
            .collect();
        lines.push(format!("{word} {i}"));
    }
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let (out, _) = same_with_and_without(
        |_| {
            let mut c = Command::new("sort");
            // Two threads, a small buffer: sort merges temporary runs.
            c.args(["--parallel=2", "-S", "4M", "-T"])
                .arg(&dir)
                .arg(&input)
                .env("LC_ALL", "C");
            c
        },
        1,
    );
    lines.sort();
    assert_eq!(out, lines.join("\n") + "\n");
}

/// The repository this workspace is checked out from.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn git_log_and_rev_list_on_this_repository() {
    let repo = repo();
    let (log, _) = same_with_and_without(
        |_| {
            let mut c = Command::new("git");
            c.arg("-C")
                .arg(&repo)
                .args(["log", "--stat", "--no-color", "-n", "200", "HEAD"])
                .env("GIT_PAGER", "cat")
                .env("GIT_CONFIG_NOSYSTEM", "1");
            c
        },
        100,
    );
    assert!(log.starts_with("commit "), "{log}");
    let (objects, _) = same_with_and_without(
        |_| {
            let mut c = Command::new("git");
            c.arg("-C")
                .arg(&repo)
                .args(["rev-list", "--objects", "HEAD"])
                .env("GIT_CONFIG_NOSYSTEM", "1");
            c
        },
        100,
    );
    assert!(objects.lines().count() > 10, "{objects}");
}

/// Compiles `tests/c/<name>.c` into this package's test scratch
/// directory, as an executable of the calling test's own (`tag`): tests
/// run in parallel, and one must not rewrite a program another is running.
fn compile(name: &str, tag: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rt-malloc-{name}-{tag}"));
    let o = output({
        let mut c = Command::new("cc");
        c.args(["-O2", "-Wall", "-pthread", "-o"])
            .arg(&exe)
            .arg(&src);
        c
    });
    assert!(
        o.status.success(),
        "cc {}: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    exe
}

#[test]
fn c_threads_stress_with_cross_thread_frees() {
    let exe = compile("stress", "stress");
    let (out, stats) = same_with_and_without(
        |preloaded| {
            let mut c = Command::new(&exe);
            // Each run checks, with dladdr, that malloc and friends come
            // from the expected object (exit 3 otherwise).
            let from = if preloaded {
                "librt_malloc.so"
            } else {
                "libc.so"
            };
            c.arg("30000").env("EXPECT_PRELOAD", from);
            c
        },
        8 * 10_000,
    );
    assert_eq!(out.lines().count(), 8, "{out}");
    // The books balance up to what libc keeps for itself (stdio buffers).
    let line = stats.lines().find(|l| l.starts_with("rt-malloc:")).unwrap();
    let (mallocs, frees) = (stat_field(line, "mallocs="), stat_field(line, "frees="));
    assert!(mallocs - frees < 100, "{line}");
}

#[test]
fn c_api_edge_cases_and_fork() {
    let exe = compile("api", "edge");
    let (out, _) = same_with_and_without(|_| Command::new(&exe), 100);
    assert_eq!(out, "api: ok\n");
}

#[test]
fn dlopened_objects_with_thread_locals() {
    // 30 copies of one shared object with a thread-local: more than glibc
    // keeps spare in a thread's dynamic thread vector.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rt-malloc-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/tlsmod.c");
    let first = dir.join("libtls1.so");
    let o = output({
        let mut c = Command::new("cc");
        c.args(["-O2", "-Wall", "-shared", "-fPIC", "-o"])
            .arg(&first)
            .arg(&src);
        c
    });
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    const N: usize = 30;
    for i in 2..=N {
        std::fs::copy(&first, dir.join(format!("libtls{i}.so"))).unwrap();
    }
    let exe = compile("dlopen_tls", "tls");
    let (out, _) = same_with_and_without(
        |_| {
            let mut c = Command::new(&exe);
            c.arg(&dir).arg(N.to_string());
            c
        },
        N as u64,
    );
    assert_eq!(out, format!("ok {N}\n"));
}

#[test]
fn freeing_a_pointer_the_heap_did_not_hand_out_is_a_fatal_error() {
    let exe = compile("api", "misuse");
    let o = output({
        let mut c = Command::new(&exe);
        c.arg("free-stack").env("LD_PRELOAD", library());
        c
    });
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("fatal error: free of invalid pointer"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}
