//! `rt-bench [--quick] [--only W,...] [--out DIR]`: runs every workload for rt and its peers,
//! interleaved in one run, and reports medians and `rt/peer` ratios.
//!
//! Flow: find the sibling impl binaries next to this executable (cargo puts every bin of the
//! crate in one directory; `cargo xtask bench` builds them in release first), build the Go
//! program from `bench/go` into `<out>/go/` when `go` is installed, ask `stack-rt` for rt's
//! default stack size, then for each planned variant run one warm-up and `runs` measured rounds
//! of every impl in turn (rt, peer, peer, …, rt, …), print the result and ratio lines on
//! stdout, and finally write `<out>/report.md` and `<out>/ratios.svg`. `<out>` defaults to
//! `<cargo target dir>/bench`. Progress and notes go to stderr.
//!
//! A missing or failing impl never gets a number: it is reported as `value=none reason=…` and
//! dropped from the later rounds of that variant.

use rt_bench::chart;
use rt_bench::driver;
use rt_bench::machine::{self, Machine};
use rt_bench::plan::{self, Sizes};
use rt_bench::report::{self, Context};
use rt_bench::runner;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Stack size the `stack` workload uses when `stack-rt` cannot tell rt's default.
const FALLBACK_STACK_SIZE: usize = 64 << 10;

struct Options {
    quick: bool,
    only: Option<Vec<&'static str>>,
    out: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!("usage: rt-bench [--quick] [--only W,W,...] [--out DIR]");
    eprintln!("workloads: {}", plan::WORKLOADS.join(","));
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut o = Options {
        quick: false,
        only: None,
        out: None,
    };
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let a = a.to_string_lossy().into_owned();
        match a.as_str() {
            "--quick" => o.quick = true,
            "--only" => {
                let list = args.next().unwrap_or_else(|| usage());
                o.only = Some(
                    plan::parse_only(&list.to_string_lossy()).unwrap_or_else(|e| {
                        eprintln!("rt-bench: {e}");
                        usage()
                    }),
                );
            }
            "--out" => o.out = Some(PathBuf::from(args.next().unwrap_or_else(|| usage()))),
            "-h" | "--help" => usage(),
            _ => {
                if let Some(list) = a.strip_prefix("--only=") {
                    o.only = Some(plan::parse_only(list).unwrap_or_else(|e| {
                        eprintln!("rt-bench: {e}");
                        usage()
                    }));
                } else if let Some(dir) = a.strip_prefix("--out=") {
                    o.out = Some(PathBuf::from(dir));
                } else {
                    eprintln!("rt-bench: unknown argument {a:?}");
                    usage()
                }
            }
        }
    }
    o
}

/// Builds the Go program into `<out>/go/rtbench`; `Err` says why the Go column is empty.
fn build_go(out: &Path) -> Result<PathBuf, String> {
    let Some(version) = machine::tool_version("go", &["version"]) else {
        eprintln!(
            "note: `go` not found: the Go column was skipped (apt-get install golang-go gets it)"
        );
        return Err("go not installed (apt-get install golang-go)".into());
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("go");
    let dir = out.join("go");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let bin = dir.join("rtbench");
    eprintln!(
        "building Go workloads with {version} into {}",
        bin.display()
    );
    let mut go = Command::new("go");
    // `go build` needs a build cache; without HOME or XDG_CACHE_HOME it has no default one.
    let no_cache = ["GOCACHE", "XDG_CACHE_HOME", "HOME"]
        .iter()
        .all(|k| std::env::var_os(k).is_none_or(|v| v.is_empty()));
    if no_cache {
        go.env("GOCACHE", dir.join("cache"));
    }
    // Two programs from one source: the scheduler workloads, and the same
    // with the network servers (`-tags rtbench_net`, `rtbench-net`).
    for (tags, out) in [("", bin.clone()), ("rtbench_net", dir.join("rtbench-net"))] {
        let mut c = Command::new("go");
        c.envs(go.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
        let o = c
            .args(["build", "-tags", tags, "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(&src)
            .output()
            .map_err(|e| format!("cannot run go build: {e}"))?;
        if !o.status.success() {
            let msg = String::from_utf8_lossy(&o.stderr);
            let msg = msg.lines().next().unwrap_or("no message");
            return Err(format!("go build failed: {msg}"));
        }
    }
    Ok(bin)
}

/// rt's default stack size, asked from `stack-rt stack-size`.
fn rt_stack_size(bindir: &Path) -> Result<usize, String> {
    let bin = bindir.join("stack-rt");
    if !bin.exists() {
        return Err("stack-rt not built".into());
    }
    let o = runner::run(
        &bin,
        &["stack-size".to_string()],
        &[],
        Duration::from_secs(30),
    )?;
    let (v, unit) = runner::interpret(&o)?;
    if unit != "B" || v < 1.0 || v > (1u64 << 40) as f64 {
        return Err(format!("stack-rt stack-size said {v} {unit}"));
    }
    Ok(v as usize)
}

fn utc_now() -> String {
    machine::tool_version("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]).unwrap_or_else(|| {
        let s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("unix time {s}")
    })
}

fn main() {
    let opts = parse_options();
    let exe = std::env::current_exe().unwrap_or_else(|e| {
        eprintln!("rt-bench: cannot find own executable: {e}");
        std::process::exit(2)
    });
    let bindir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let out = opts.out.clone().unwrap_or_else(|| {
        bindir
            .parent()
            .map(|t| t.join("bench"))
            .unwrap_or_else(|| PathBuf::from("bench-out"))
    });
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("rt-bench: cannot create {}: {e}", out.display());
        std::process::exit(2)
    }
    let sizes = Sizes::new(opts.quick);
    let timeout = Duration::from_secs(if opts.quick { 30 } else { 300 });
    let wanted = |w: &str| opts.only.as_ref().is_none_or(|o| o.contains(&w));

    let needs_go = plan::WORKLOADS.iter().any(|w| {
        wanted(w) && !matches!(*w, "switch" | "stack") && !plan::ALLOCATOR_WORKLOADS.contains(w)
    });
    let go = if needs_go {
        build_go(&out)
    } else {
        Err("not needed".into())
    };
    let stack_size = match rt_stack_size(&bindir) {
        Ok(s) => s,
        Err(why) => {
            if wanted("stack") {
                eprintln!(
                    "note: rt's default stack size unknown ({why}); the stack workload uses {FALLBACK_STACK_SIZE} bytes"
                );
            }
            FALLBACK_STACK_SIZE
        }
    };

    let mut groups = Vec::new();
    let mut placements = Vec::new();
    // Where the hypervisor put the two vCPUs, around each variant (see
    // `machine::core_round_trip_ns`): tens of ms each time.
    let placement = || machine::core_round_trip_ns(0, 1, 100_000);
    for v in plan::plan(&sizes, stack_size)
        .into_iter()
        .filter(|v| wanted(v.workload))
    {
        eprintln!("running {}", v.label());
        let before = placement();
        let run = driver::run_variant(
            &v,
            sizes.runs_for(v.workload),
            &bindir,
            &go,
            timeout,
            driver::SETTLE,
        );
        let after = placement();
        if let (Some(b), Some(a)) = (before, after) {
            println!(
                "placement {} c2c_ns_before={b:.0} c2c_ns_after={a:.0}",
                v.label()
            );
        }
        placements.push((v.label(), before, after));
        for g in run {
            for l in g.lines() {
                println!("{l}");
            }
            groups.push(g);
        }
    }

    let m = Machine::probe();
    let ctx = Context {
        go: match &go {
            Ok(_) => machine::tool_version("go", &["version"]).unwrap_or_default(),
            Err(why) => format!("none ({why})"),
        },
        rustc: machine::tool_version("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
        crates: machine::peer_versions(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
        ),
        mode: format!(
            "{}, {} measured runs per impl after one warm-up ({}: {})",
            if opts.quick { "--quick" } else { "full" },
            sizes.runs,
            plan::SLOW_WORKLOADS.join(", "),
            sizes.slow_runs
        ),
        date: utc_now(),
        placements,
    };
    let md_path = out.join("report.md");
    if let Err(e) = std::fs::write(&md_path, report::markdown(&groups, &m, &ctx)) {
        eprintln!("rt-bench: cannot write {}: {e}", md_path.display());
        std::process::exit(2)
    }
    let ratio_groups: Vec<chart::RatioGroup> = groups
        .iter()
        .map(|g| {
            let bars = g
                .ratios()
                .into_iter()
                .filter_map(|(p, r)| r.ok().map(|x| (p, x)))
                .collect();
            (g.short.clone(), bars)
        })
        .collect();
    let svg_path = out.join("ratios.svg");
    match chart::render(&ratio_groups) {
        Ok(svg) => {
            if let Err(e) = std::fs::write(&svg_path, svg) {
                eprintln!("rt-bench: cannot write {}: {e}", svg_path.display());
                std::process::exit(2)
            }
        }
        Err(e) => {
            eprintln!("rt-bench: cannot draw the chart: {e}");
            std::process::exit(2)
        }
    }
    eprintln!("report: {}", md_path.display());
    eprintln!("chart:  {}", svg_path.display());
}
