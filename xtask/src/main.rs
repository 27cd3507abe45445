//! `cargo xtask`: the project's tasks, one binary (see `.cargo/config.toml`).
//!
//! * `boot [--entry rt0|main] [-- ARGS]` — build `rt-demo` in release and run
//!   the full boot with the trace on (`GODEBUG=inittrace=2` added to the
//!   caller's GODEBUG); exits with the program's status.
//! * `test` — everything CI runs: the fence lint, the generated-code check,
//!   the workspace's tests and doc tests (without the bench-only crate),
//!   and the loom model check of the run queue.
//! * `codegen [--check]` — (re)generate `rt-heap`'s size-class table.
//! * `bench [--quick] [--only W,…]` — every workload beside Go and the Rust
//!   peers (`rt-bench`), writing `target/bench/report.md` and the chart.
//! * `stress stacks [N]` — N (default 1,000,000) live goroutine stacks.
//! * `lint-fences` — assembly only in `*/src/arch/`.

mod codegen;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
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
         \x20 stress stacks [N]                   N live goroutine stacks (default 1000000)\n\
         \x20 lint-fences                         assembly only in */src/arch/"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        return usage();
    };
    let rest = &args[1..];
    let r = match task.as_str() {
        "boot" => return boot(rest),
        "test" => test(),
        "codegen" => codegen::run(rest.iter().any(|a| a == "--check")),
        "bench" => bench(rest),
        "stress" => stress(rest),
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

fn boot(rest: &[String]) -> ExitCode {
    let mut entry = "rt0".to_string();
    let mut prog_args: Vec<String> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        match rest[i].as_str() {
            "--entry" if i + 1 < rest.len() => {
                entry = rest[i + 1].clone();
                i += 2;
            }
            "--" => {
                prog_args.extend(rest[i + 1..].iter().cloned());
                break;
            }
            a => {
                prog_args.push(a.to_string());
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
    let mut b = cargo();
    b.args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "rt-tests",
        "--bin",
        bin,
    ]);
    if let Err(e) = run(b) {
        eprintln!("xtask boot: {e}");
        return ExitCode::FAILURE;
    }
    let exe = root().join("target/release").join(bin);
    let godebug = match std::env::var("GODEBUG") {
        Ok(g) if !g.is_empty() => format!("inittrace=2,{g}"),
        _ => "inittrace=2".to_string(),
    };
    eprintln!(
        "xtask boot: {} (entry {}) with GODEBUG={godebug}",
        exe.display(),
        if bin == "rt-demo" {
            "_rt0_amd64"
        } else {
            "libc → main"
        }
    );
    let st = match Command::new(&exe)
        .args(&prog_args)
        .env("GODEBUG", godebug)
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
    // The run queue's model check: loom's atomics under `--cfg loom`, in a
    // target directory of its own so the normal build is not invalidated.
    let mut c = cargo();
    c.env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", root().join("target/loom"))
        .args([
            "test",
            "--release",
            "-p",
            "rt-sched",
            "--lib",
            "runq::loom_tests",
        ]);
    run(c)
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
    let mut h = Command::new(root().join("target/release/rt-bench"));
    h.current_dir(root()).args(rest);
    run(h)
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
        _ => Err("usage: cargo xtask stress stacks [N]".into()),
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
