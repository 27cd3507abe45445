//! Seeded torture programs (`rt-demo torture SEED`, see
//! `tests/src/demo/torture.rs`): a range of seeds, each at GOMAXPROCS 1, 2
//! or 4 by turns (`seed % 3` picks), each in a child bounded in time. A
//! failure names the seed, GOMAXPROCS and the command that replays it.
//!
//! `RT_TORTURE_SEEDS=FROM..TO` runs another range (e.g. `0..2000` for a
//! longer soak).

mod common;
use common::*;

/// Seeds run by default.
const SEEDS: std::ops::Range<u64> = 0..200;
/// Time a child may take before it counts as hung (its own watchdog
/// reports a hang after 20 s, with a dump).
const BOUND_SECS: u64 = 60;

fn seed_range() -> std::ops::Range<u64> {
    let Ok(v) = std::env::var("RT_TORTURE_SEEDS") else {
        return SEEDS;
    };
    let parsed = v
        .split_once("..")
        .and_then(|(a, b)| Some(a.trim().parse().ok()?..b.trim().parse().ok()?));
    parsed.unwrap_or_else(|| panic!("RT_TORTURE_SEEDS={v:?}: want FROM..TO"))
}

/// The first few thousand characters of `s` (a hang report carries a
/// goroutine dump; the replay command gives the whole of it).
fn clip(s: &str) -> String {
    const MAX: usize = 4000;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[test]
fn seeded_torture_programs() {
    let seeds = seed_range();
    println!(
        "torture: seeds {}..{} (GOMAXPROCS 1, 2, 4 by seed % 3)",
        seeds.start, seeds.end
    );
    let t0 = std::time::Instant::now();
    let mut failures = Vec::new();
    for seed in seeds.clone() {
        let procs = ["1", "2", "4"][(seed % 3) as usize];
        let s = seed.to_string();
        let (code, out, err) =
            run_bounded(RT0, &["torture", &s], &[("GOMAXPROCS", procs)], BOUND_SECS);
        let want = format!("torture ok seed={seed} ops=");
        let one_line = out.lines().count() == 1 && out.ends_with('\n');
        if code != 0 || !out.starts_with(&want) || !one_line {
            let how = if code == -1 {
                format!("hung (killed after {BOUND_SECS} s)")
            } else {
                format!("exit status {code}")
            };
            failures.push(format!(
                "seed {seed} GOMAXPROCS={procs}: {how}\n  replay: GOMAXPROCS={procs} {RT0} torture {seed}\n  stdout: {}\n  stderr: {}",
                clip(out.trim_end()),
                clip(err.trim_end())
            ));
        }
    }
    println!(
        "torture: {} seeds in {:.1} s, {} failed",
        seeds.end - seeds.start,
        t0.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of seeds {}..{} failed:\n{}",
        failures.len(),
        seeds.start,
        seeds.end,
        failures.join("\n")
    );
}
