//! Result lines, ratio lines and `report.md`.
//!
//! A [`Group`] holds the summarised runs of every impl of one variant (one printed block).
//! [`Group::lines`] renders the protocol lines DESIGN.md fixes; [`markdown`] renders the report
//! file from all groups plus the machine and version facts.

use crate::machine::Machine;
use crate::stats::{ratio, Summary};
use std::fmt::Write as _;

/// One impl's outcome in a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Impl name.
    pub name: String,
    /// The summary and unit, or why there is none.
    pub result: Result<(Summary, String), String>,
    /// What this impl does differently (from the plan).
    pub note: Option<String>,
}

/// One variant's block: `workload=W [fields]` and its impls, rt first.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// `workload=W f=v ...`.
    pub label: String,
    /// `W f=v ...` for the chart.
    pub short: String,
    /// Entries in run order; rt (if present) is the one named `rt`.
    pub entries: Vec<Entry>,
}

/// Formats a number with three decimals, or fewer significant digits for huge values.
fn num(v: f64) -> String {
    format!("{v:.3}")
}

impl Group {
    /// `rt / peer` for every peer: the ratio of medians, or why there is none.
    pub fn ratios(&self) -> Vec<(String, Result<f64, String>)> {
        let rt = self.entries.iter().find(|e| e.name == "rt");
        self.entries
            .iter()
            .filter(|e| e.name != "rt")
            .map(|peer| {
                let r = match (rt.map(|e| &e.result), &peer.result) {
                    (None, _) => Err("rt not planned".to_string()),
                    (Some(Err(why)), _) => Err(format!("rt has no value ({why})")),
                    (_, Err(why)) => Err(format!("{} has no value ({why})", peer.name)),
                    (Some(Ok((rs, ru))), Ok((ps, pu))) => {
                        if ru != pu {
                            Err(format!("units differ ({ru} vs {pu})"))
                        } else {
                            ratio(rs.median, ps.median)
                                .ok_or_else(|| format!("{} median is not positive", peer.name))
                        }
                    }
                };
                (peer.name.clone(), r)
            })
            .collect()
    }

    /// The result lines of every entry, then the ratio lines.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.entries {
            out.push(match &e.result {
                Ok((s, unit)) => format!(
                    "{} impl={} value={} unit={} min={} max={}",
                    self.label,
                    e.name,
                    num(s.median),
                    unit,
                    num(s.min),
                    num(s.max)
                ),
                Err(why) => format!(
                    "{} impl={} value=none reason={}",
                    self.label,
                    e.name,
                    why.replace('\n', " ")
                ),
            });
        }
        for (peer, r) in self.ratios() {
            out.push(match r {
                Ok(x) => format!("ratio {} rt/{peer}={x:.3}", self.label),
                Err(why) => format!("ratio {} rt/{peer}=none reason={why}", self.label),
            });
        }
        out
    }
}

/// What the harness knows about the peers' versions and the run, for the report header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// `go version` output, or why there is no Go column.
    pub go: String,
    /// `rustc --version`.
    pub rustc: String,
    /// `(crate, version)` from Cargo.lock.
    pub crates: Vec<(String, String)>,
    /// `quick` or `full`, with the run count.
    pub mode: String,
    /// UTC date of the run.
    pub date: String,
    /// Per variant label, the CPU 0 ↔ CPU 1 cache-line round trip in ns
    /// measured right before and right after it
    /// ([`crate::machine::core_round_trip_ns`]; `None`: not measured).
    pub placements: Vec<(String, Option<f64>, Option<f64>)>,
}

/// The whole `report.md`.
pub fn markdown(groups: &[Group], m: &Machine, ctx: &Context) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# rt-bench report\n");
    let _ = writeln!(
        s,
        "Every number below was measured in this one run, on this machine, with the impls of a \
         workload interleaved after one warm-up round, each round starting one impl later \
         than the last (rt, go, …; go, …, rt; …). Values are \
         medians over the runs; `rt/peer` is the ratio of medians (below 1: rt is faster or \
         smaller). `none` means no number could be measured, with the reason.\n"
    );
    let _ = writeln!(s, "Run: {} ({})\n", ctx.mode, ctx.date);
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| CPU | {} |", m.cpu);
    let _ = writeln!(s, "| cores available | {} |", m.cores);
    let _ = writeln!(s, "| kernel | {} |", m.kernel);
    let _ = writeln!(s, "| memory | {} |", m.memory);
    let _ = writeln!(s, "| glibc | {} |", m.glibc);
    let _ = writeln!(s, "| rustc | {} |", ctx.rustc);
    let _ = writeln!(s, "| go | {} |", ctx.go);
    let _ = writeln!(s, "\n## Peer versions (Cargo.lock)\n");
    if ctx.crates.is_empty() {
        let _ = writeln!(s, "Cargo.lock not found; versions unknown.");
    } else {
        let _ = writeln!(s, "| crate | version |\n|---|---|");
        for (n, v) in &ctx.crates {
            let _ = writeln!(s, "| {n} | {v} |");
        }
    }
    let _ = writeln!(s, "\n## Results\n");
    let _ = writeln!(
        s,
        "Units: boot wall `us` per process, boot rss `KiB` peak per process; spawn `ns` per \
         goroutine; pingpong `ns` per round trip; yield and switch `ns` per switch; malloc `ns` \
         per alloc+free per thread; parked `B` of RSS per parked goroutine; stack `ns` per \
         alloc+free pair; tree `ns` per goroutine created (Skynet: 1 + 10 + … + leaves \
         goroutines, ten children per node); fanout `ns` per message (one producer, {} workers, \
         one collector, both channels of capacity {}); preempt `ns`, the lateness of a \
         ticker's 1 ms sleeps beside one spinning goroutine per P, its {} from the same runs \
         (`stat=`); blockcall `ns` per round trip of a ping-pong over unbuffered channels while \
         {} goroutines sit in plain read system calls on empty pipes; blockpipe `ns` per round \
         trip ({} pairs of goroutines passing a byte over blocking pipes with plain read/write \
         system calls); echo `ns/op` per {}-byte round trip \
         over all connections (`net-client`); http and accept `ns/req` (wrk's Requests/sec \
         inverted; accept with `Connection: close`, one connection per request); idle `B/conn` \
         of server RSS per open connection.\n",
        crate::plan::FANOUT_WORKERS,
        crate::plan::FANOUT_CAP,
        crate::plan::PREEMPT_STATS.join(" and "),
        crate::plan::BLOCKCALL_READERS,
        crate::plan::BLOCKPIPE_PAIRS,
        crate::plan::ECHO_SIZE
    );
    let _ = writeln!(
        s,
        "How preemption's cost is read: the {} rows at one and two Ps (pingpong's also at the \
         default GOMAXPROCS) run an extra impl `rt-apo`, the rt row's program with \
         `GODEBUG=asyncpreemptoff=1`; its `rt/rt-apo` ratio is rt with asynchronous preemption \
         over rt without it (above 1: rt is that much slower with preemption; below 1: faster).\n",
        crate::plan::APO_WORKLOADS.join(", ")
    );
    let _ = writeln!(
        s,
        "How the network workloads are measured: each server runs with one worker \
         (GOMAXPROCS=1, tokio current_thread, may one worker) and is driven from another \
         process; `pinned=yes` puts the server on CPU 0 and the load generator on CPU 1 \
         (`taskset`), `pinned=no` lets the kernel place both.\n"
    );
    let _ = writeln!(
        s,
        "How boot is measured: wall time is from spawning the process to the kernel reporting \
         its exit (`waitid`), the mean of several processes per run. Peak RSS is `VmHWM` of the \
         final program image, read from `/proc/<pid>/status` when its main thread stops at exit \
         (`ptrace`, `PTRACE_O_TRACEEXIT`) in one extra traced run: `wait4`'s `ru_maxrss` is not \
         used because at `exec` the kernel folds the peak of the replaced image (the spawning \
         harness) into it. Every program's file is evicted from the page cache before the \
         warm-up round, so each is paged in by `exec` itself: a fault maps the whole page-cache \
         folio around it, and a file just written by a copy sits in larger folios than one read \
         in by `exec`, which would count pages the program never touched.\n"
    );
    for g in groups {
        let _ = writeln!(s, "### {}\n", g.short);
        let _ = writeln!(
            s,
            "| impl | median | unit | min | max | runs | rt/impl | notes |\n|---|---:|---|---:|---:|---:|---:|---|"
        );
        let ratios = g.ratios();
        for e in &g.entries {
            let r = ratios
                .iter()
                .find(|(n, _)| *n == e.name)
                .map(|(_, r)| match r {
                    Ok(x) => format!("{x:.3}"),
                    Err(_) => "—".into(),
                })
                .unwrap_or_default();
            let note = e.note.clone().unwrap_or_default();
            match &e.result {
                Ok((sm, unit)) => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {} | {} | {} |",
                        e.name,
                        num(sm.median),
                        unit,
                        num(sm.min),
                        num(sm.max),
                        sm.runs,
                        r,
                        note
                    );
                }
                Err(why) => {
                    let why = why.replace('|', "\\|");
                    let _ = writeln!(
                        s,
                        "| {} | none | | | | | {} | {}{}{} |",
                        e.name,
                        r,
                        note,
                        if note.is_empty() { "" } else { "; " },
                        why
                    );
                }
            }
        }
        let _ = writeln!(s);
    }
    if ctx
        .placements
        .iter()
        .any(|(_, b, a)| b.is_some() || a.is_some())
    {
        let _ = writeln!(s, "## Core placement\n");
        let _ = writeln!(
            s,
            "The round trip of one cache line between CPU 0 and CPU 1 (two pinned threads \
             taking turns), measured right before and right after each variant. On a VM it \
             tells where the hypervisor had put the two vCPUs: near (about 50–150 ns on the \
             development VM) or far (about 470–490 ns there). Rows at more than one P, and \
             unpinned network rows, measured in a far spell are slower for every impl whose \
             threads talk across cores.\n"
        );
        let _ = writeln!(s, "| variant | before (ns) | after (ns) |\n|---|---:|---:|");
        let cell = |x: &Option<f64>| x.map_or_else(|| "—".to_string(), |v| format!("{v:.0}"));
        for (label, b, a) in &ctx.placements {
            let _ = writeln!(s, "| {label} | {} | {} |", cell(b), cell(a));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Protocol lines\n\n```");
    for g in groups {
        for l in g.lines() {
            let _ = writeln!(s, "{l}");
        }
    }
    let _ = writeln!(s, "```");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::summarize;

    fn entry(name: &str, runs: &[f64], unit: &str) -> Entry {
        Entry {
            name: name.into(),
            result: Ok((summarize(runs).unwrap(), unit.into())),
            note: None,
        }
    }

    fn group() -> Group {
        Group {
            label: "workload=spawn gomaxprocs=1".into(),
            short: "spawn gomaxprocs=1".into(),
            entries: vec![
                entry("rt", &[100.0, 110.0, 90.0], "ns"),
                entry("go", &[200.0, 190.0, 210.0], "ns"),
                Entry {
                    name: "may".into(),
                    result: Err("binary peer-may not built".into()),
                    note: Some("workers=1".into()),
                },
                entry("tokio", &[50.0], "B"),
            ],
        }
    }

    #[test]
    fn result_and_ratio_lines() {
        let l = group().lines();
        assert_eq!(
            l[0],
            "workload=spawn gomaxprocs=1 impl=rt value=100.000 unit=ns min=90.000 max=110.000"
        );
        assert_eq!(
            l[2],
            "workload=spawn gomaxprocs=1 impl=may value=none reason=binary peer-may not built"
        );
        assert_eq!(l[4], "ratio workload=spawn gomaxprocs=1 rt/go=0.500");
        assert!(l[5].starts_with("ratio workload=spawn gomaxprocs=1 rt/may=none reason="));
        assert!(l[6].contains("rt/tokio=none reason=units differ"));
        assert_eq!(l.len(), 7);
    }

    #[test]
    fn missing_rt_gives_no_ratio_numbers() {
        let mut g = group();
        g.entries[0].result = Err("bench-rt not built".into());
        for (_, r) in g.ratios() {
            assert!(r.is_err());
        }
        assert!(g.lines()[0].ends_with("impl=rt value=none reason=bench-rt not built"));
    }

    #[test]
    fn markdown_has_machine_versions_and_rows() {
        let m = Machine {
            cpu: "CPU X".into(),
            cores: 2,
            kernel: "Linux 6".into(),
            memory: "24.0 GiB".into(),
            glibc: "2.36".into(),
        };
        let ctx = Context {
            go: "go version go1.19".into(),
            rustc: "rustc 1.95".into(),
            crates: vec![("tokio".into(), "1.54.1".into())],
            mode: "quick".into(),
            date: "today".into(),
            placements: vec![("workload=spawn gomaxprocs=2".into(), Some(104.6), None)],
        };
        let md = markdown(&[group()], &m, &ctx);
        for needle in [
            "CPU X",
            "| cores available | 2 |",
            "Linux 6",
            "24.0 GiB",
            "go1.19",
            "| tokio | 1.54.1 |",
            "### spawn gomaxprocs=1",
            "| workload=spawn gomaxprocs=2 | 105 | — |",
            "| go | 200.000 | ns | 190.000 | 210.000 | 3 | 0.500 |",
            "| may | none |",
            "ratio workload=spawn gomaxprocs=1 rt/go=0.500",
            "fanout `ns` per message (one producer, 4 workers, one collector, both channels of \
             capacity 128)",
            "preempt `ns`, the lateness of a ticker's 1 ms sleeps beside one spinning \
             goroutine per P, its p50 and p99 from the same runs",
            "while 8 goroutines sit in plain read system calls",
            "blockpipe `ns` per round trip (4 pairs",
            "`rt-apo`",
        ] {
            assert!(md.contains(needle), "missing {needle:?} in\n{md}");
        }
    }
}
