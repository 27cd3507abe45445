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

/// One impl's state in a variant: its program, its samples so far (one per measured run, each
/// with one number per [`measures`] entry) and the units of those numbers; or why it has none.
pub type ImplState = Result<(PathBuf, Vec<Vec<f64>>, Vec<String>), String>;

/// The numbers one run of `v` gives, in order, each as the field that labels its group (none
/// where a run gives one number): boot's wall time and peak RSS, or the statistics a
/// [`Kind::Stats`] program prints.
pub fn measures(v: &Variant) -> Vec<Option<(&'static str, &'static str)>> {
    match v.kind {
        Kind::Boot => vec![Some(("measure", "wall")), Some(("measure", "rss"))],
        Kind::Stats(names) => names.iter().map(|n| Some(("stat", *n))).collect(),
        Kind::InProcess | Kind::Server => vec![None],
    }
}

/// One run of impl `i` (its program at `path`) in variant `v`: a `(number, unit)` for each of
/// the variant's [`measures`], or why the run gave none.
fn sample(
    v: &Variant,
    i: &ImplRun,
    path: &Path,
    bindir: &Path,
    timeout: Duration,
) -> Result<Vec<(f64, String)>, String> {
    match v.kind {
        Kind::InProcess => runner::run(path, &i.args, &i.env, timeout)
            .and_then(|o| runner::interpret(&o))
            .map(|x| vec![x]),
        Kind::Stats(names) => runner::run(path, &i.args, &i.env, timeout)
            .and_then(|o| runner::interpret_stats(&o, names)),
        Kind::Server => match &v.load {
            Some(load) => {
                crate::serve::run(path, &i.args, &i.env, load, bindir, timeout).map(|x| vec![x])
            }
            None => Err("server variant without a load".to_string()),
        },
        Kind::Boot => {
            // Wall time: the mean of `spawns_per_run` plain runs. Peak RSS: one traced run
            // (see runner::peak_rss for why not ru_maxrss).
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
                    .map(|kib| vec![(w / k as f64, "us".into()), (kib, "KiB".into())])
            })
        }
    }
}

/// How long the harness waits after each impl's run before the next one starts.
///
/// A process that has just exited leaves the machine slower for a moment: measured with
/// `spawn gomaxprocs=2` (1 M goroutines), rt-apo right after tokio's run (which frees about a
/// million tasks' memory) read a median 122 ns against 109 ns right after Go's (12 runs each,
/// interleaved); 200 ms of sleep after each (116.5 and 112.9) and 1 s (138.1 and 138.9, in a
/// noisier spell) took the difference down to the noise; 250 ms leaves a margin.
pub const SETTLE: Duration = Duration::from_millis(250);

/// The order of round `round` over `k` impls: the plan order, started `round / 2` impls
/// later, and reversed on odd rounds.
///
/// A rotation alone keeps the order cyclic, so every impl but the first of a round runs right
/// after the same neighbour every time (rt after tokio, rt-apo after go in `spawn`): whatever a
/// run leaves behind for the next one (the exit above, caches, page-cache state) then counts
/// in every sample of the impl that follows it. Reversing every other round gives each impl
/// its two plan neighbours as predecessors in turn.
pub fn round_order(round: usize, k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..k).map(|j| (j + round / 2) % k).collect();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// Runs one variant: one warm-up round, then `runs` measured rounds; in every round each impl
/// still in the running is run once, in [`round_order`], each run `settle` after the one
/// before, so rt and its peers alternate. An impl whose program is missing, or whose run fails
/// in any round, is dropped and reported with the reason. Returns the variant's groups, one
/// per entry of [`measures`] (boot's wall time and peak RSS, each statistic of a
/// [`Kind::Stats`] variant, else the one number).
pub fn run_variant(
    v: &Variant,
    runs: usize,
    bindir: &Path,
    go: &Result<PathBuf, String>,
    timeout: Duration,
    settle: Duration,
) -> Vec<Group> {
    let mut state: Vec<ImplState> = v
        .impls
        .iter()
        .map(|i| resolve(&i.program, bindir, go).map(|p| (p, Vec::new(), Vec::new())))
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
    let k = v.impls.len();
    let mut first = true;
    for round in 0..=runs {
        // An impl that always ran right after the same other one (its caches, frequency and
        // page-cache state, its exit) would carry that neighbour's effect in every sample.
        // Measured: rt beside rt-apo at tree gomaxprocs=2 read ~5% apart in a fixed order and
        // ~4% the other way with the order alternated; see [`round_order`] and [`SETTLE`].
        for at in round_order(round, k) {
            let (i, st) = (&v.impls[at], &mut state[at]);
            let Ok((path, samples, units)) = st else {
                continue;
            };
            if !first {
                std::thread::sleep(settle);
            }
            first = false;
            // Every run of an impl must give its numbers in the units of its first run.
            let numbers = sample(v, i, path, bindir, timeout).and_then(|xs| {
                if units.is_empty() {
                    *units = xs.iter().map(|(_, u)| u.clone()).collect();
                }
                xs.into_iter()
                    .zip(units.iter())
                    .map(|((x, u), want)| {
                        if u == *want {
                            Ok(x)
                        } else {
                            Err(format!("unit changed from {want} to {u}"))
                        }
                    })
                    .collect::<Result<Vec<f64>, String>>()
            });
            match numbers {
                Ok(xs) if round > 0 => samples.push(xs),
                Ok(_) => {}
                Err(why) => *st = Err(why),
            }
        }
    }
    let entry = |i: &ImplRun, st: &ImplState, pick: usize| Entry {
        name: i.name.to_string(),
        result: match st {
            Err(why) => Err(why.clone()),
            Ok((_, samples, units)) => {
                let xs: Vec<f64> = samples.iter().map(|s| s[pick]).collect();
                match (summarize(&xs), units.get(pick)) {
                    (Some(s), Some(unit)) => Ok((s, unit.clone())),
                    _ => Err("no samples".to_string()),
                }
            }
        },
        note: i.note.clone(),
    };
    measures(v)
        .into_iter()
        .enumerate()
        .map(|(pick, field)| {
            let mut labelled = v.clone();
            if let Some((k, x)) = field {
                labelled.fields.insert(0, (k.to_string(), x.to_string()));
            }
            Group {
                label: labelled.label(),
                short: labelled.short_label(),
                entries: v
                    .impls
                    .iter()
                    .zip(&state)
                    .map(|(i, st)| entry(i, st, pick))
                    .collect(),
            }
        })
        .collect()
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

    /// rt, go and may as `fake-rt`, `fake-go` and `fake-may`.
    fn rt_go_may() -> Vec<ImplRun> {
        vec![
            imp("rt", "fake-rt"),
            imp("go", "fake-go"),
            imp("may", "fake-may"),
        ]
    }

    /// Runs `v` for `runs` rounds on the programs in `b`.
    fn run_in(b: &FakeBins, v: &Variant, runs: usize) -> Vec<Group> {
        run_variant(
            v,
            runs,
            &b.dir,
            &Err("unused".into()),
            Duration::from_secs(30),
            Duration::ZERO,
        )
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
    fn rounds_interleave_in_a_turning_order_after_one_warm_up() {
        let b = FakeBins::new("interleave");
        b.script("fake-rt", "echo value=10 unit=ns");
        b.script("fake-go", "echo value=20 unit=ns");
        let v = variant(
            Kind::InProcess,
            vec![imp("rt", "fake-rt"), imp("go", "fake-go")],
        );
        let g = run_in(&b, &v, 3);
        // Forward, reversed, then one impl later forward and reversed.
        assert_eq!(
            b.calls(),
            [
                "fake-rt", "fake-go", "fake-go", "fake-rt", "fake-go", "fake-rt", "fake-rt",
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
    fn every_impl_follows_more_than_one_neighbour() {
        for k in 2..=7 {
            let runs = 8;
            let seq: Vec<usize> = (0..=runs).flat_map(|r| round_order(r, k)).collect();
            for r in 0..=runs {
                let mut o = round_order(r, k);
                o.sort_unstable();
                assert_eq!(
                    o,
                    (0..k).collect::<Vec<_>>(),
                    "round {r} of {k} runs each impl once"
                );
            }
            for imp in 0..k {
                let before: Vec<usize> = seq
                    .windows(2)
                    .filter(|w| w[1] == imp && w[0] != imp)
                    .map(|w| w[0])
                    .collect();
                // No neighbour comes right before it in more than three runs out of four (a
                // rotation alone gives one neighbour every run but the round's first).
                let most = (0..k)
                    .map(|n| before.iter().filter(|&&b| b == n).count())
                    .max()
                    .unwrap_or(0);
                assert!(
                    k == 2 || 4 * most <= 3 * before.len(),
                    "impl {imp} of {k} follows one neighbour {most} times of {}: {before:?}",
                    before.len()
                );
            }
        }
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
        let g = run_in(&b, &v, 5);
        let (s, _) = g[0].entries[0].result.clone().unwrap();
        assert_eq!((s.max, s.runs), (5.0, 5));
    }

    #[test]
    fn missing_and_failing_impls_get_reasons_not_numbers() {
        let b = FakeBins::new("fail");
        b.script("fake-go", "echo value=20 unit=ns");
        b.script("fake-may", "echo oops >&2; exit 7");
        let v = variant(Kind::InProcess, rt_go_may());
        let g = run_in(&b, &v, 5);
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
        let g = run_in(&b, &v, 5);
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
        let g = run_in(&b, &v, 5);
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
    fn statistics_of_one_run_yield_one_group_each() {
        let b = FakeBins::new("stats");
        b.script(
            "fake-rt",
            "echo value=10 unit=ns stat=p50; echo value=30 unit=ns stat=p99",
        );
        b.script(
            "fake-go",
            "echo value=20 unit=ns stat=p50; echo value=60 unit=ns stat=p99",
        );
        b.script("fake-may", "echo value=20 unit=ns stat=p50");
        let v = variant(Kind::Stats(&["p50", "p99"]), rt_go_may());
        let g = run_in(&b, &v, 3);
        // One process per impl and round gives both numbers.
        assert_eq!(b.calls().iter().filter(|c| *c == "fake-rt").count(), 4);
        let labels: Vec<&str> = g.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "workload=spawn stat=p50 gomaxprocs=1",
                "workload=spawn stat=p99 gomaxprocs=1"
            ]
        );
        let median = |g: &Group, k: usize| g.entries[k].result.clone().unwrap().0.median;
        assert_eq!((median(&g[0], 0), median(&g[1], 0)), (10.0, 30.0));
        assert_eq!((median(&g[0], 1), median(&g[1], 1)), (20.0, 60.0));
        assert_eq!(g[1].ratios()[0].1, Ok(0.5));
        // A run without one of the statistics has none of them.
        for group in &g {
            let why = group.entries[2].result.clone().unwrap_err();
            assert!(why.contains("stat=p99"), "{why}");
        }
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
