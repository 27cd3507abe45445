//! Running one planned variant: the interleaved rounds and their reduction to report groups.
//!
//! [`run_variant`] owns the loop the whole harness exists for: warm-up, then rounds of rt and
//! every peer in turn, each run a fresh process ([`crate::runner`]), samples reduced to
//! median/min/max ([`crate::stats`]) per impl into [`Group`]s ([`crate::report`]).

use crate::plan::{ImplRun, Kind, Program, Variant};
use crate::report::{Entry, Group};
use crate::runner;
use crate::stats::summarize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where one impl's program is, or why it cannot run.
pub fn resolve(
    p: &Program,
    bindir: &Path,
    go: &Result<PathBuf, String>,
) -> Result<PathBuf, String> {
    match p {
        Program::Sibling(name) => {
            let path = bindir.join(name);
            if path.exists() {
                Ok(path)
            } else {
                Err(format!("binary {name} not built"))
            }
        }
        Program::Go => go.clone(),
        Program::GoNet => go
            .as_ref()
            .map(|p| p.with_file_name("rtbench-net"))
            .map_err(Clone::clone),
    }
}

/// One impl's state in a variant: its program, its samples so far (a boot sample is
/// `(wall µs, rss KiB)`, an in-process one `(value, 0)`) and its unit; or why it has none.
pub type ImplState = Result<(PathBuf, Vec<(f64, f64)>, String), String>;

/// Runs one variant: one warm-up round, then `runs` measured rounds; in every round each impl
/// still in the running is run once, in plan order (rt first), so rt and its peers alternate.
/// An impl whose program is missing, or whose run fails in any round, is dropped and reported
/// with the reason. Returns the variant's groups (two for boot: wall and rss).
pub fn run_variant(
    v: &Variant,
    runs: usize,
    bindir: &Path,
    go: &Result<PathBuf, String>,
    timeout: Duration,
) -> Vec<Group> {
    let mut state: Vec<ImplState> = v
        .impls
        .iter()
        .map(|i| resolve(&i.program, bindir, go).map(|p| (p, Vec::new(), String::new())))
        .collect();
    let runs = v.load.as_ref().map_or(runs, |l| l.runs);
    if v.kind == Kind::Boot {
        for st in state.iter_mut() {
            if let Ok((path, _, _)) = st {
                if let Err(why) = runner::evict_page_cache(path) {
                    *st = Err(why);
                }
            }
        }
    }
    for round in 0..=runs {
        for (i, st) in v.impls.iter().zip(state.iter_mut()) {
            let Ok((path, samples, unit)) = st else {
                continue;
            };
            let sample = match v.kind {
                Kind::InProcess => runner::run(path, &i.args, &i.env, timeout)
                    .and_then(|o| runner::interpret(&o))
                    .and_then(|(x, u)| {
                        if unit.is_empty() || *unit == u {
                            *unit = u;
                            Ok((x, 0.0))
                        } else {
                            Err(format!("unit changed from {unit} to {u}"))
                        }
                    }),
                Kind::Server => match &v.load {
                    Some(load) => crate::serve::run(path, &i.args, &i.env, load, bindir, timeout)
                        .and_then(|(x, u)| {
                            if unit.is_empty() || *unit == u {
                                *unit = u;
                                Ok((x, 0.0))
                            } else {
                                Err(format!("unit changed from {unit} to {u}"))
                            }
                        }),
                    None => Err("server variant without a load".to_string()),
                },
                Kind::Boot => {
                    // Wall time: the mean of `spawns_per_run` plain runs. Peak RSS: one traced
                    // run (see runner::peak_rss for why not ru_maxrss).
                    let k = v.spawns_per_run.max(1);
                    let mut wall = Ok(0.0);
                    for _ in 0..k {
                        wall = wall.and_then(|w| {
                            runner::run(path, &i.args, &i.env, timeout)
                                .and_then(|o| runner::interpret_boot(&o))
                                .map(|w1| w + w1)
                        });
                    }
                    wall.and_then(|w| {
                        runner::peak_rss(path, &i.args, &i.env, timeout)
                            .and_then(runner::interpret_boot_rss)
                            .map(|kib| (w / k as f64, kib))
                    })
                }
            };
            match sample {
                Ok(s) if round > 0 => samples.push(s),
                Ok(_) => {}
                Err(why) => *st = Err(why),
            }
        }
    }
    let entry = |i: &ImplRun, st: &ImplState, pick: usize, unit: &str| Entry {
        name: i.name.to_string(),
        result: match st {
            Err(why) => Err(why.clone()),
            Ok((_, samples, u)) => {
                let xs: Vec<f64> = samples
                    .iter()
                    .map(|s| if pick == 0 { s.0 } else { s.1 })
                    .collect();
                let unit = if unit.is_empty() {
                    u.clone()
                } else {
                    unit.to_string()
                };
                summarize(&xs)
                    .map(|s| (s, unit))
                    .ok_or_else(|| "no samples".to_string())
            }
        },
        note: i.note.clone(),
    };
    match v.kind {
        Kind::InProcess | Kind::Server => vec![Group {
            label: v.label(),
            short: v.short_label(),
            entries: v
                .impls
                .iter()
                .zip(&state)
                .map(|(i, st)| entry(i, st, 0, ""))
                .collect(),
        }],
        Kind::Boot => [("wall", 0, "us"), ("rss", 1, "KiB")]
            .iter()
            .map(|(m, pick, unit)| {
                let mut vv = v.clone();
                vv.fields.insert(0, ("measure".into(), m.to_string()));
                Group {
                    label: vv.label(),
                    short: vv.short_label(),
                    entries: v
                        .impls
                        .iter()
                        .zip(&state)
                        .map(|(i, st)| entry(i, st, *pick, unit))
                        .collect(),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A temporary bin directory with shell-script impls that log each call.
    struct FakeBins {
        dir: PathBuf,
    }

    impl FakeBins {
        fn new(tag: &str) -> FakeBins {
            let dir = std::env::temp_dir().join(format!("rt-bench-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            FakeBins { dir }
        }

        fn script(&self, name: &str, body: &str) {
            let p = self.dir.join(name);
            let log = self.dir.join("calls");
            std::fs::write(
                &p,
                format!(
                    "#!/bin/sh\necho {name} \"$@\" >> {}\n{body}\n",
                    log.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }

        fn calls(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.join("calls"))
                .unwrap_or_default()
                .lines()
                .map(|l| l.split(' ').next().unwrap_or("").to_string())
                .collect()
        }
    }

    impl Drop for FakeBins {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn imp(name: &'static str, bin: &'static str) -> ImplRun {
        ImplRun {
            name,
            program: Program::Sibling(bin),
            args: vec!["spawn".into(), "n=1".into()],
            env: vec![],
            note: None,
        }
    }

    fn variant(kind: Kind, impls: Vec<ImplRun>) -> Variant {
        Variant {
            workload: "spawn",
            fields: vec![("gomaxprocs".into(), "1".into())],
            kind,
            spawns_per_run: 2,
            load: None,
            impls,
        }
    }

    #[test]
    fn rounds_interleave_after_one_warm_up() {
        let b = FakeBins::new("interleave");
        b.script("fake-rt", "echo value=10 unit=ns");
        b.script("fake-go", "echo value=20 unit=ns");
        let v = variant(
            Kind::InProcess,
            vec![imp("rt", "fake-rt"), imp("go", "fake-go")],
        );
        let g = run_variant(
            &v,
            3,
            &b.dir,
            &Err("unused".into()),
            Duration::from_secs(30),
        );
        assert_eq!(
            b.calls(),
            [
                "fake-rt", "fake-go", "fake-rt", "fake-go", "fake-rt", "fake-go", "fake-rt",
                "fake-go"
            ]
        );
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].label, "workload=spawn gomaxprocs=1");
        let (s, unit) = g[0].entries[0].result.clone().unwrap();
        assert_eq!((s.median, s.runs, unit.as_str()), (10.0, 3, "ns"));
        assert_eq!(g[0].ratios()[0].1, Ok(0.5));
    }

    #[test]
    fn warm_up_sample_is_dropped() {
        let b = FakeBins::new("warmup");
        // Prints 1000 on its first call, 5 afterwards.
        let flag = b.dir.join("seen");
        b.script(
            "fake-rt",
            &format!(
                "if [ -e {f} ]; then echo value=5 unit=ns; else touch {f}; echo value=1000 unit=ns; fi",
                f = flag.display()
            ),
        );
        b.script("fake-go", "echo value=5 unit=ns");
        let v = variant(
            Kind::InProcess,
            vec![imp("rt", "fake-rt"), imp("go", "fake-go")],
        );
        let g = run_variant(
            &v,
            5,
            &b.dir,
            &Err("unused".into()),
            Duration::from_secs(30),
        );
        let (s, _) = g[0].entries[0].result.clone().unwrap();
        assert_eq!((s.max, s.runs), (5.0, 5));
    }

    #[test]
    fn missing_and_failing_impls_get_reasons_not_numbers() {
        let b = FakeBins::new("fail");
        b.script("fake-go", "echo value=20 unit=ns");
        b.script("fake-may", "echo oops >&2; exit 7");
        let v = variant(
            Kind::InProcess,
            vec![
                imp("rt", "fake-rt"),
                imp("go", "fake-go"),
                imp("may", "fake-may"),
            ],
        );
        let g = run_variant(
            &v,
            5,
            &b.dir,
            &Err("unused".into()),
            Duration::from_secs(30),
        );
        let e = &g[0].entries;
        assert_eq!(e[0].result, Err("binary fake-rt not built".to_string()));
        assert!(e[1].result.is_ok());
        let why = e[2].result.clone().unwrap_err();
        assert!(
            why.contains("exit status 7") && why.contains("oops"),
            "{why}"
        );
        // The failing impl ran once (its warm-up) and was then dropped.
        assert_eq!(b.calls().iter().filter(|c| *c == "fake-may").count(), 1);
        let lines = g[0].lines();
        assert!(lines
            .iter()
            .any(|l| l.starts_with("ratio ") && l.contains("rt/go=none")));
    }

    #[test]
    fn a_failure_in_a_later_round_discards_the_impl() {
        let b = FakeBins::new("later");
        let count = b.dir.join("count");
        b.script("fake-rt", "echo value=1 unit=ns");
        b.script(
            "fake-go",
            &format!(
                "echo x >> {c}; if [ $(wc -l < {c}) -ge 3 ]; then exit 1; fi; echo value=2 unit=ns",
                c = count.display()
            ),
        );
        let v = variant(
            Kind::InProcess,
            vec![imp("rt", "fake-rt"), imp("go", "fake-go")],
        );
        let g = run_variant(
            &v,
            5,
            &b.dir,
            &Err("unused".into()),
            Duration::from_secs(30),
        );
        assert!(g[0].entries[1].result.is_err());
        assert_eq!(g[0].entries[0].result.clone().unwrap().0.runs, 5);
    }

    #[test]
    fn boot_yields_wall_and_rss_groups() {
        let b = FakeBins::new("boot");
        b.script("fake-rt", "echo hello");
        b.script("fake-go", "true");
        let v = Variant {
            workload: "boot",
            fields: vec![],
            kind: Kind::Boot,
            spawns_per_run: 2,
            load: None,
            impls: vec![imp("rt", "fake-rt"), imp("go", "fake-go")],
        };
        let g = run_variant(
            &v,
            5,
            &b.dir,
            &Err("unused".into()),
            Duration::from_secs(30),
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].label, "workload=boot measure=wall");
        assert_eq!(g[1].label, "workload=boot measure=rss");
        let (w, wu) = g[0].entries[0].result.clone().unwrap();
        let (r, ru) = g[1].entries[0].result.clone().unwrap();
        assert_eq!((wu.as_str(), ru.as_str()), ("us", "KiB"));
        assert!(w.median > 0.0 && r.median > 0.0);
        // go printed nothing: no number for it in either group.
        assert_eq!(g[0].entries[1].result, Err("printed nothing".to_string()));
        assert!(g[1].entries[1].result.is_err());
        // 1 warm-up + 5 runs, each 2 timed spawns + 1 traced spawn.
        assert_eq!(b.calls().iter().filter(|c| *c == "fake-rt").count(), 6 * 3);
    }

    #[test]
    fn go_program_resolution_follows_the_build_result() {
        let dir = Path::new("/nonexistent");
        assert_eq!(
            resolve(&Program::Go, dir, &Err("go not installed".into())),
            Err("go not installed".into())
        );
        assert_eq!(
            resolve(&Program::Go, dir, &Ok(PathBuf::from("/x/rtbench"))),
            Ok(PathBuf::from("/x/rtbench"))
        );
    }
}
