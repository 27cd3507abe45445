//! `cargo xtask`: the project's tasks, one binary (see `.cargo/config.toml`).
//!
//! * `boot [--entry rt0|main] [-- ARGS]` — build `rt-demo` in release and run
//!   the full boot with the trace on (`GODEBUG=inittrace=2` added to the
//!   caller's GODEBUG); exits with the program's status.
//! * `test` — everything CI runs: the fence lint, the generated-code check,
//!   the workspace's tests and doc tests (without the bench-only crate), the
//!   integration tests again against release builds of `rt-demo`, and the
//!   loom model checks.
//! * `codegen [--check]` — (re)generate `rt-heap`'s size-class table.
//! * `bench [--quick] [--only W,…]` — every workload beside Go and the Rust
//!   peers (`rt-bench`), writing `bench/report.md` and the chart under
//!   cargo's target directory. The boot workload's rt column is
//!   `bench-rt-static`: `bench-rt` linked statically ([`STATIC_RUSTFLAGS`]),
//!   as Go links its binaries.
//! * `stress [chan|sched|torture|all] [--runs N] [--procs 1,2,4] [--seeds N]`
//!   — the torture suites, many times, under the runtime's self-checks
//!   (`stress.rs`); `stress stacks [N]` — N (default 1,000,000) live
//!   goroutine stacks.
//! * `boot-order` — trace `bench-rt boot` and rewrite
//!   `xtask/boot-order.txt`, the functions the static build packs together
//!   (`layout.rs`).
//! * `lint-fences` — assembly only in `*/src/arch/`.
//!
//! Built programs are found where cargo says it put them (its JSON
//! messages, `cargo metadata`), never by a path spelled here: the target
//! directory may be anywhere (`CARGO_TARGET_DIR`, `build.target-dir`).

mod codegen;
mod json;
mod layout;
mod messages;
mod stress;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(mut c: Command) -> Result<(), String> {
    eprintln!("xtask: running {c:?}");
    let st = c.status().map_err(|e| format!("cannot run {c:?}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{c:?} failed: {st}"))
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask <task>\n\
         \x20 boot [--entry rt0|main] [-- ARGS]   full boot run of rt-demo with the boot trace\n\
         \x20 test                                everything CI runs\n\
         \x20 codegen [--check]                   size-class table (check: fail when stale)\n\
         \x20 bench [--quick] [--only W,...]      workloads beside Go and the Rust peers\n\
         \x20 stress [chan|sched|torture|all] [--runs N] [--procs 1,2,4] [--seeds N]\n\
         \x20                                    the torture suites under the self-checks\n\
         \x20 stress stacks [N]                   N live goroutine stacks (default 1000000)\n\
         \x20 boot-order                          re-trace the boot path the static build packs\n\
         \x20 lint-fences                         assembly only in */src/arch/"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // Arguments as the OS gave them: `boot` passes them on to the program
    // byte for byte (they need not be UTF-8); the other tasks want text.
    let raw: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some(task) = raw.first().and_then(|t| t.to_str()).map(String::from) else {
        return usage();
    };
    if task == "boot" {
        return boot(&raw[1..]);
    }
    let mut args = Vec::new();
    for a in &raw[1..] {
        match a.to_str() {
            Some(s) => args.push(s.to_string()),
            None => {
                eprintln!("xtask {task}: argument {a:?} is not UTF-8");
                return ExitCode::from(2);
            }
        }
    }
    let rest = &args[..];
    let r = match task.as_str() {
        "test" => test(),
        "codegen" => match rest {
            [] => codegen::run(false),
            [c] if c == "--check" => codegen::run(true),
            _ => return usage(),
        },
        "bench" => bench(rest),
        "stress" => stress(rest),
        "boot-order" => boot_order(),
        "lint-fences" => lint_fences(),
        _ => return usage(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `c` (a `cargo build` of one binary) and returns the path cargo
/// reports for the executable named `bin`: wherever `CARGO_TARGET_DIR`,
/// `build.target-dir` or a target triple put it.
pub(crate) fn built_executable(mut c: Command, bin: &str) -> Result<PathBuf, String> {
    c.arg(MESSAGE_FORMAT);
    executable_of(c, bin)
}

/// Cargo's JSON messages on stdout; the compiler's diagnostics, rendered as
/// usual, go to the terminal.
const MESSAGE_FORMAT: &str = "--message-format=json-render-diagnostics";

/// [`built_executable`] for a command that already asks for
/// [`MESSAGE_FORMAT`] (a `cargo rustc` whose last arguments go to rustc).
fn executable_of(mut c: Command, bin: &str) -> Result<PathBuf, String> {
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    eprintln!("xtask: running {c:?}");
    let out = c.output().map_err(|e| format!("cannot run {c:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{c:?} failed: {}", out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    messages::executable(&stdout, bin)?
        .ok_or_else(|| format!("cargo did not report an executable for {bin}"))
}

/// Cargo's target directory for this workspace (`cargo metadata`), with
/// `CARGO_TARGET_DIR` and `build.target-dir` applied as cargo applies them.
pub(crate) fn target_dir() -> Result<PathBuf, String> {
    let mut c = cargo();
    c.args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(std::process::Stdio::inherit());
    let out = c.output().map_err(|e| format!("cannot run {c:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{c:?} failed: {}", out.status));
    }
    messages::target_directory(&String::from_utf8_lossy(&out.stdout))
}

/// Builds binary `bin` of package `pkg` in release (with `features`, if
/// any) and returns where cargo put it.
pub(crate) fn release_bin(pkg: &str, bin: &str, features: &[&str]) -> Result<PathBuf, String> {
    let mut c = cargo();
    c.args(["build", "--release", "--quiet", "-p", pkg, "--bin", bin]);
    if !features.is_empty() {
        c.args(["--features", &features.join(",")]);
    }
    built_executable(c, bin)
}

fn boot(rest: &[OsString]) -> ExitCode {
    let mut entry = "rt0".to_string();
    let mut prog_args: Vec<OsString> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        match rest[i].to_str() {
            Some("--entry") => {
                let Some(e) = rest.get(i + 1) else {
                    eprintln!("xtask boot: --entry needs rt0 or main");
                    return ExitCode::from(2);
                };
                entry = e.to_string_lossy().into_owned();
                i += 2;
            }
            Some(a) if a.starts_with("--entry=") => {
                entry = a["--entry=".len()..].to_string();
                i += 1;
            }
            Some("--") => {
                prog_args.extend(rest[i + 1..].iter().cloned());
                break;
            }
            _ => {
                prog_args.push(rest[i].clone());
                i += 1;
            }
        }
    }
    let bin = match entry.as_str() {
        "rt0" => "rt-demo",
        "main" => "rt-demo-libc",
        other => {
            eprintln!("xtask boot: --entry must be rt0 or main, not {other:?}");
            return ExitCode::from(2);
        }
    };
    let exe = match release_bin("rt-tests", bin, &[]) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask boot: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The caller's GODEBUG is kept byte for byte, after the trace key.
    let mut godebug = OsString::from("inittrace=2");
    if let Some(g) = std::env::var_os("GODEBUG").filter(|g| !g.is_empty()) {
        godebug.push(",");
        godebug.push(g);
    }
    eprintln!(
        "xtask boot: {} (entry {}) with GODEBUG={}",
        exe.display(),
        if bin == "rt-demo" {
            "_rt0_amd64"
        } else {
            "libc → main"
        },
        godebug.to_string_lossy()
    );
    let st = match Command::new(&exe)
        .args(&prog_args)
        .env("GODEBUG", &godebug)
        .status()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xtask boot: cannot run {}: {e}", exe.display());
            return ExitCode::FAILURE;
        }
    };
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => ExitCode::from(c as u8),
        (None, Some(sig)) => {
            eprintln!("xtask boot: rt-demo died by signal {sig}");
            ExitCode::from(128 + sig as u8)
        }
        _ => ExitCode::FAILURE,
    }
}

fn test() -> Result<(), String> {
    lint_fences()?;
    codegen::run(true)?;
    let mut c = cargo();
    c.args([
        "test",
        "--workspace",
        "--exclude",
        "rt-bench",
        "--no-fail-fast",
    ]);
    run(c)?;
    // The same integration tests again against release builds of rt-demo:
    // optimised scheduler and allocator code inlines differently, and some
    // bugs only show there (tests/tests/common.rs honours the overrides).
    let rt0 = release_bin("rt-tests", "rt-demo", &[])?;
    let libc_entry = release_bin("rt-tests", "rt-demo-libc", &[])?;
    let mut c = cargo();
    c.env("RT_DEMO", &rt0)
        .env("RT_DEMO_LIBC", &libc_entry)
        .args(["test", "-p", "rt-tests", "--tests", "--no-fail-fast"]);
    eprintln!(
        "xtask: rt-tests against release builds ({} and {})",
        rt0.display(),
        libc_entry.display()
    );
    run(c)?;
    // The model checks of the run queue and of the channel + select core:
    // loom's primitives under `--cfg loom`, in a directory of its own inside
    // cargo's target directory so the normal build is not invalidated.
    let loom_dir = target_dir()?.join("loom");
    let mut c = cargo();
    c.env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", &loom_dir)
        .args([
            "test",
            "--release",
            "-p",
            "rt-sched",
            "--lib",
            // runq::loom_tests (the run queue) and chan::loom_tests (the
            // channel and select core).
            "loom_tests",
        ]);
    run(c)
}

/// The static build of the libc entry: glibc linked in (`crt-static`) and
/// no position-independent code, so the kernel maps the program and jumps to
/// libc's start code with no dynamic loader and no relocations to apply (Go
/// links the same way). Measured on the development VM, `bench-rt boot`
/// from fork to exit (median of 400): 1.67 ms dynamic, 1.23 ms static-PIE,
/// 1.17 ms static (Go's hello: 1.40 ms).
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static -C relocation-model=static";
/// The host, named explicitly so that `STATIC_RUSTFLAGS` reach only the
/// target's crates (not build scripts and proc macros, which must stay
/// dynamic); the artifacts land in `target/<triple>/release/`.
const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// `cargo <sub> --release -p rt-tests --bin <bin>` for the static target,
/// with [`STATIC_RUSTFLAGS`].
fn static_cargo(sub: &str, bin: &str) -> Command {
    let mut c = cargo();
    c.env(
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
        STATIC_RUSTFLAGS,
    )
    .args([sub, "--release", "--quiet", "-p", "rt-tests", "--bin", bin])
    .args(["--target", STATIC_TARGET]);
    c
}

/// Builds `bin` of `rt-tests` with [`STATIC_RUSTFLAGS`] and returns its
/// path. When lld links it, the build is linked a second time with the
/// boot path's functions packed at the start of the text (`layout.rs`):
/// the committed list, resolved against this build's own symbols.
pub(crate) fn static_bin(bin: &str) -> Result<PathBuf, String> {
    let plain = built_executable(static_cargo("build", bin), bin)?;
    let data =
        std::fs::read(&plain).map_err(|e| format!("cannot read {}: {e}", plain.display()))?;
    if !layout::comment(&data)?.contains("LLD") {
        eprintln!("xtask: {bin} is not linked by lld: its boot path is not packed");
        return Ok(plain);
    }
    let list_path = root().join(layout::ORDER_FILE);
    let list = std::fs::read_to_string(&list_path)
        .map_err(|e| format!("cannot read {}: {e}", list_path.display()))?;
    let list = layout::entries(&list);
    let (order, found) = layout::resolve(&list, &layout::functions(&data)?);
    eprintln!(
        "xtask: boot order: {found} of the {} functions in {} are in {bin}",
        list.len(),
        layout::ORDER_FILE
    );
    if found * 10 < list.len() * 9 {
        eprintln!("xtask: the boot order is stale: `cargo xtask boot-order` traces it again");
    }
    let order_path = plain.with_extension("boot-order");
    std::fs::write(&order_path, order)
        .map_err(|e| format!("cannot write {}: {e}", order_path.display()))?;
    // `cargo rustc` gives the extra flags to this binary's link only, so the
    // dependencies are not rebuilt; they differ from the plain build's, so
    // cargo links again.
    let mut c = static_cargo("rustc", bin);
    c.args([MESSAGE_FORMAT, "--", "-C"])
        .arg(format!(
            "link-arg=-Wl,--symbol-ordering-file={}",
            order_path.display()
        ))
        .args(["-C", "link-arg=-Wl,--no-warn-symbol-ordering"]);
    executable_of(c, bin)
}

/// `cargo xtask boot-order`: single-steps the plain static `bench-rt boot`
/// and writes the functions it ran, in first-run order, to
/// [`layout::ORDER_FILE`].
fn boot_order() -> Result<(), String> {
    let bin = built_executable(static_cargo("build", "bench-rt"), "bench-rt")?;
    let data = std::fs::read(&bin).map_err(|e| format!("cannot read {}: {e}", bin.display()))?;
    let funcs = layout::functions(&data)?;
    eprintln!(
        "xtask: single-stepping {} boot (some seconds)",
        bin.display()
    );
    let addrs = layout::trace(&bin, &["boot"])?;
    let keys = layout::first_touch(&addrs, &funcs);
    let size: u64 = funcs
        .iter()
        .filter(|f| keys.iter().any(|k| k == layout::key(&f.name)))
        .map(|f| f.size)
        .sum();
    let mut out = String::from(
        "# The functions `bench-rt boot` runs, in the order it first runs them\n\
         # (every thread single-stepped), names without their build hash.\n\
         # The static build links them side by side (xtask/src/layout.rs).\n\
         # Written by `cargo xtask boot-order`; do not edit.\n",
    );
    for k in &keys {
        out.push_str(k);
        out.push('\n');
    }
    let path = root().join(layout::ORDER_FILE);
    std::fs::write(&path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!(
        "xtask: {} distinct instructions, {} functions ({} KiB) written to {}",
        addrs.len(),
        keys.len(),
        size / 1024,
        layout::ORDER_FILE
    );
    Ok(())
}

fn bench(rest: &[String]) -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "rt-bench",
        "-p",
        "rt-tests",
        "--bins",
    ]);
    run(c)?;
    let harness = release_bin("rt-bench", "rt-bench", &[])?;
    // The harness finds its programs next to itself.
    let static_rt = static_bin("bench-rt")?;
    let dest = harness.with_file_name("bench-rt-static");
    std::fs::copy(&static_rt, &dest).map_err(|e| {
        format!(
            "cannot copy {} to {}: {e}",
            static_rt.display(),
            dest.display()
        )
    })?;
    ensure_wrk();
    let mut h = Command::new(harness);
    h.current_dir(root()).args(rest);
    run(h)
}

/// The HTTP workloads' load generator: installs Debian's `wrk` when it is
/// missing (and says so); without it those workloads report why.
fn ensure_wrk() {
    let have = |p: &str| {
        Command::new(p)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
    };
    if have("wrk") {
        return;
    }
    eprintln!("xtask: wrk is missing; installing the Debian package (apt-get install -y wrk)");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "wrk"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !have("wrk") {
        eprintln!("xtask: could not install wrk; the http and accept workloads will say so");
    }
}

fn stress(rest: &[String]) -> Result<(), String> {
    match rest.first().map(String::as_str) {
        Some("stacks") => {
            let n = rest.get(1).cloned().unwrap_or_else(|| "1000000".into());
            let mut c = cargo();
            c.args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "rt-stack",
                "--example",
                "stacks_stress",
                "--",
                &n,
            ]);
            run(c)
        }
        _ => stress::run(rest),
    }
}

/// Assembly (`asm!`, `global_asm!`) may appear only under a crate's
/// `src/arch/`, where the stack and register contracts are drawn.
fn lint_fences() -> Result<(), String> {
    let mut bad = Vec::new();
    let root = root();
    for krate in std::fs::read_dir(&root).map_err(|e| e.to_string())? {
        let krate = krate.map_err(|e| e.to_string())?.path();
        let src = krate.join("src");
        if src.is_dir()
            && krate
                .file_name()
                .is_some_and(|n| n != "target" && n != "bench")
        {
            scan(&src, &mut bad);
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "assembly outside an arch/ module:\n{}",
            bad.join("\n")
        ))
    }
}

fn scan(dir: &Path, bad: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "arch") {
                scan(&p, bad);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                // Matches `asm!(` and `global_asm!(`; spelled in two pieces so
                // this line does not match itself.
                if code.contains(concat!("asm", "!(")) {
                    bad.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                }
            }
        }
    }
}
