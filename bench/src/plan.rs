//! The table of what the harness runs: workloads × variants × impls, with their sizes.
//!
//! Each [`Variant`] is one row group of the report (`workload=spawn gomaxprocs=2`, …). Its
//! impls are run interleaved, rt first, after one warm-up each. In-process workloads time
//! themselves and print `value=`; `boot` is timed from outside by the harness, which starts the
//! impl's hello program [`Variant::spawns_per_run`] times per run and averages wall time and the
//! peak RSS that `wait4` reports.
//!
//! Sizes follow DESIGN.md ("Performance"); `--quick` divides them so that the whole run fits in
//! a minute on two cores. Where a peer cannot run the full size (OS threads, may's one mapping
//! per coroutine stack) it runs fewer and says so in its note; the units are per operation, so
//! the numbers stay comparable in kind.

/// How the harness obtains one run's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The impl binary measures itself and prints `value=<n> unit=<u>`.
    InProcess,
    /// The impl binary measures itself and prints several statistics of the same run, one
    /// `value=<n> unit=<u> stat=<name>` line for each of these names; each statistic is
    /// reported as a group of its own, labelled `stat=<name>`.
    Stats(&'static [&'static str]),
    /// The harness times whole processes (wall µs) and reads their peak RSS (KiB) from `wait4`.
    Boot,
    /// The impl is a server: the harness starts it, reads its `listening=<addr>` line, drives
    /// it with the variant's [`Load`] from another process and takes that load's number.
    Server,
}

/// The load generator of a [`Kind::Server`] variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    /// The `net-client` sibling binary (echo round trips, idle connections).
    NetClient,
    /// `wrk` (HTTP), installed by `cargo xtask bench` when missing.
    Wrk,
}

/// How a [`Kind::Server`] variant is driven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// The load generator.
    pub tool: Tool,
    /// Its arguments; `{addr}` stands for the server's address.
    pub args: Vec<String>,
    /// Server on CPU 0, load generator on CPU 1 (`taskset`); else both unpinned.
    pub pinned: bool,
    /// Measured runs (server workloads take seconds each: fewer than the default).
    pub runs: usize,
}

/// Where an impl's program lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A binary next to `rt-bench` (same cargo target directory).
    Sibling(&'static str),
    /// The Go program built from `bench/go` into `<out>/go/rtbench`.
    Go,
    /// The same program with the network servers (`-tags rtbench_net`),
    /// `<out>/go/rtbench-net`: kept apart so that `net/http`'s package
    /// initialisation is not part of every other Go run (boot above all).
    GoNet,
}

/// One impl inside a variant: its name, its program and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImplRun {
    /// Impl name as printed (`rt`, `go`, `may`, ...).
    pub name: &'static str,
    /// The program to start.
    pub program: Program,
    /// Arguments: the workload name then `key=value` options.
    pub args: Vec<String>,
    /// Extra environment for the child.
    pub env: Vec<(String, String)>,
    /// What this impl does differently, for the report (channel kind, reduced count, ...).
    pub note: Option<String>,
}

/// One workload variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Workload name (DESIGN.md table).
    pub workload: &'static str,
    /// Variant fields printed right after `workload=` (`gomaxprocs=1`, `threads=2`, ...).
    pub fields: Vec<(String, String)>,
    /// How a run's number is obtained.
    pub kind: Kind,
    /// For [`Kind::Boot`]: processes started per run (their mean is the run's value).
    pub spawns_per_run: u32,
    /// For [`Kind::Server`]: the load that measures it.
    pub load: Option<Load>,
    /// Impls in run order; the first is `rt`.
    pub impls: Vec<ImplRun>,
}

impl Variant {
    /// `workload=W f=v ...`, the prefix shared by result and ratio lines.
    pub fn label(&self) -> String {
        let mut s = format!("workload={}", self.workload);
        for (k, v) in &self.fields {
            s.push_str(&format!(" {k}={v}"));
        }
        s
    }

    /// Short label for the chart axis: `W f=v ...` without `workload=`.
    pub fn short_label(&self) -> String {
        let mut s = self.workload.to_string();
        for (k, v) in &self.fields {
            s.push_str(&format!(" {k}={v}"));
        }
        s
    }
}

/// Every workload name, in report order.
pub const WORKLOADS: [&str; 22] = [
    "boot",
    "spawn",
    "pingpong",
    "yield",
    "switch",
    "malloc",
    "xthread",
    "larson",
    "cscratch",
    "realloc",
    "json",
    "parked",
    "stack",
    "tree",
    "fanout",
    "preempt",
    "blockcall",
    "blockpipe",
    "echo",
    "http",
    "accept",
    "idle",
];

/// The scheduler workloads whose rows at one and two Ps (and `pingpong`'s row at the default
/// GOMAXPROCS) also run `rt-apo`: the rt program with `GODEBUG=asyncpreemptoff=1`, so that
/// `rt/rt-apo` is what asynchronous preemption costs them, measured in the same run.
pub const APO_WORKLOADS: [&str; 5] = ["spawn", "pingpong", "yield", "tree", "fanout"];

/// The workloads whose every run lasts a second or more, measured [`Sizes::slow_runs`] times.
pub const SLOW_WORKLOADS: [&str; 2] = ["preempt", "blockpipe"];

/// The statistics of the ticks' lateness that one `preempt` run reports.
pub const PREEMPT_STATS: [&str; 2] = ["p50", "p99"];

/// Goroutines blocked in `read(2)` throughout a `blockcall` run.
pub const BLOCKCALL_READERS: u64 = 8;

/// Pairs of goroutines in `blockpipe`.
pub const BLOCKPIPE_PAIRS: u64 = 4;

/// The workloads the `malloc-*` binaries run (no Go program, no rt scheduler).
pub const ALLOCATOR_WORKLOADS: [&str; 6] =
    ["malloc", "xthread", "larson", "cscratch", "realloc", "json"];

/// Connection counts of the `echo` workload.
pub const ECHO_CONNS: [u64; 3] = [1, 100, 1000];
/// Bytes per `echo` message.
pub const ECHO_SIZE: u64 = 64;
/// Connections `wrk` keeps open for `http`.
pub const HTTP_CONNS: u64 = 256;
/// Requests `wrk` writes at once on a connection for pipelined `http`.
pub const HTTP_PIPELINE: u64 = 16;

/// Workers between the producer and the collector in `fanout`.
pub const FANOUT_WORKERS: u64 = 4;
/// Capacity of both `fanout` channels, for every impl.
pub const FANOUT_CAP: u64 = 128;

/// Sizes of one harness run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Measured runs per impl (after one warm-up).
    pub runs: usize,
    /// Processes per boot run.
    pub boot_spawns: u32,
    /// Goroutines for `spawn`.
    pub spawn: u64,
    /// OS threads for `spawn` under `std-thread`.
    pub spawn_threads: u64,
    /// Coroutines for `spawn` under may (all can be live at once: a mapping plus guard each).
    pub spawn_may: u64,
    /// Round trips for `pingpong`.
    pub pingpong: u64,
    /// Round trips for `pingpong` between OS threads.
    pub pingpong_threads: u64,
    /// Yields per task for `yield`.
    pub yields: u64,
    /// Yields per thread for `yield` between OS threads.
    pub yields_threads: u64,
    /// Switch pairs for `switch`.
    pub switches: u64,
    /// Operations per thread for `malloc`.
    pub malloc: u64,
    /// Objects per producer/consumer pair for `xthread`.
    pub xthread: u64,
    /// Slot replacements per thread for `larson`.
    pub larson: u64,
    /// Allocate-write-free iterations per thread for `cscratch`.
    pub cscratch: u64,
    /// Buffers grown per thread for `realloc`.
    pub realloc: u64,
    /// Documents per thread for `json`.
    pub json: u64,
    /// Parked goroutines for `parked`.
    pub parked: u64,
    /// Parked coroutines for may (one mapping plus guard per stack).
    pub parked_may: u64,
    /// Pairs for `stack` from a pool.
    pub stack_pool: u64,
    /// Pairs for `stack` with a fresh mapping each.
    pub stack_fresh: u64,
    /// Leaves of the `tree` (a power of ten; the tree has `(10·leaves − 1)/9` nodes).
    pub tree: u64,
    /// Leaves of the `tree` under may (its inner nodes are live at once: a mapping plus guard
    /// each).
    pub tree_may: u64,
    /// Messages through `fanout`.
    pub fanout: u64,
    /// 1 ms sleeps of the ticker in `preempt` (one run gives both [`PREEMPT_STATS`]).
    pub preempt_ticks: u64,
    /// Channel round trips in `blockcall`, timed once every reader has started.
    pub blockcall: u64,
    /// Round trips per pair in `blockpipe`, the same for rt and Go: enough that the first
    /// hand-offs (sysmon finds the first blocked goroutines within its 2 ms looks, in Go and
    /// in rt) are a small part of a run.
    pub blockpipe: u64,
    /// Measured runs of each [`SLOW_WORKLOADS`] variant.
    pub slow_runs: usize,
    /// Round trips per `echo` run, over all connections.
    pub echo_ops: u64,
    /// Seconds of each `wrk` run (`http`, `accept`).
    pub wrk_secs: u64,
    /// Idle connections for `idle`.
    pub idle_conns: u64,
    /// Measured runs of each server workload.
    pub server_runs: usize,
}

impl Sizes {
    /// The DESIGN.md sizes, or the reduced `--quick` ones.
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                runs: 5,
                boot_spawns: 3,
                spawn: 100_000,
                spawn_threads: 2_000,
                spawn_may: 10_000,
                pingpong: 100_000,
                pingpong_threads: 5_000,
                yields: 100_000,
                yields_threads: 10_000,
                switches: 1_000_000,
                malloc: 1_000_000,
                xthread: 200_000,
                larson: 200_000,
                cscratch: 100_000,
                realloc: 2_000,
                json: 300,
                parked: 20_000,
                parked_may: 10_000,
                stack_pool: 100_000,
                stack_fresh: 10_000,
                tree: 100_000,
                tree_may: 10_000,
                fanout: 1_000_000,
                preempt_ticks: 100,
                blockcall: 200_000,
                blockpipe: 500,
                slow_runs: 3,
                echo_ops: 20_000,
                wrk_secs: 1,
                idle_conns: 2_000,
                server_runs: 2,
            }
        } else {
            Sizes {
                runs: 7,
                boot_spawns: 10,
                spawn: 1_000_000,
                spawn_threads: 10_000,
                spawn_may: 30_000,
                pingpong: 1_000_000,
                pingpong_threads: 50_000,
                yields: 1_000_000,
                yields_threads: 100_000,
                switches: 10_000_000,
                malloc: 10_000_000,
                xthread: 2_000_000,
                larson: 2_000_000,
                cscratch: 1_000_000,
                realloc: 20_000,
                json: 3_000,
                parked: 100_000,
                parked_may: 30_000,
                stack_pool: 1_000_000,
                stack_fresh: 100_000,
                tree: 1_000_000,
                tree_may: 10_000,
                fanout: 10_000_000,
                preempt_ticks: 200,
                blockcall: 1_000_000,
                blockpipe: 2000,
                slow_runs: 5,
                echo_ops: 50_000,
                wrk_secs: 3,
                idle_conns: 10_000,
                server_runs: 3,
            }
        }
    }

    /// Measured runs per impl of `workload`'s variants (a server variant's come with its
    /// [`Load`]).
    pub fn runs_for(&self, workload: &str) -> usize {
        if SLOW_WORKLOADS.contains(&workload) {
            self.slow_runs
        } else {
            self.runs
        }
    }
}

fn imp(name: &'static str, program: Program, workload: &str, opts: &[(&str, String)]) -> ImplRun {
    let mut args = vec![workload.to_string()];
    args.extend(opts.iter().map(|(k, v)| format!("{k}={v}")));
    ImplRun {
        name,
        program,
        args,
        env: Vec::new(),
        note: None,
    }
}

fn with_note(mut i: ImplRun, note: &str) -> ImplRun {
    i.note = Some(note.to_string());
    i
}

/// rt-heap, glibc, mimalloc and jemalloc, each the global allocator of its `malloc-*` binary,
/// running allocator workload `workload` with `opts`.
fn allocator_impls(workload: &str, opts: &[(&str, String)]) -> Vec<ImplRun> {
    vec![
        with_note(
            imp("rt", Program::Sibling("malloc-rt"), workload, opts),
            "#[global_allocator] rt_heap::RtHeap",
        ),
        imp("glibc", Program::Sibling("malloc-glibc"), workload, opts),
        imp(
            "mimalloc",
            Program::Sibling("malloc-mimalloc"),
            workload,
            opts,
        ),
        imp(
            "jemalloc",
            Program::Sibling("malloc-jemalloc"),
            workload,
            opts,
        ),
    ]
}

/// Sets `GOMAXPROCS` in every impl's environment (rt and Go read it; the Rust peers get the
/// same value as the `gomaxprocs=` option).
fn with_gomaxprocs(mut v: Variant, p: u32) -> Variant {
    for i in &mut v.impls {
        i.env.push(("GOMAXPROCS".into(), p.to_string()));
    }
    v
}

const RT: Program = Program::Sibling("bench-rt");
/// `bench-rt` linked statically (`cargo xtask bench` builds it), as Go links its
/// programs: the boot workload's rt column.
const RT_STATIC: Program = Program::Sibling("bench-rt-static");

/// The full plan. `stack_size` is the stack size the `stack` workload uses for every impl.
pub fn plan(sizes: &Sizes, stack_size: usize) -> Vec<Variant> {
    let mut out = Vec::new();
    let s = sizes;
    // boot: a whole process printing one line.
    out.push(Variant {
        workload: "boot",
        fields: vec![],
        kind: Kind::Boot,
        spawns_per_run: s.boot_spawns,
        load: None,
        impls: vec![
            with_note(
                imp("rt", RT_STATIC, "boot", &[]),
                "bench-rt linked statically (-C target-feature=+crt-static, non-PIE), entered \
                 through libc's start code",
            ),
            imp("go", Program::Go, "boot", &[]),
            with_note(
                imp("std-thread", Program::Sibling("peer-std"), "boot", &[]),
                "plain Rust std hello",
            ),
            with_note(
                imp("tokio", Program::Sibling("peer-tokio"), "boot", &[]),
                "multi-thread runtime built, hello printed inside block_on",
            ),
            with_note(
                imp("may", Program::Sibling("peer-may"), "boot", &[]),
                "hello printed from a may coroutine, joined",
            ),
        ],
    });
    for p in [1u32, 2] {
        let gp = ("gomaxprocs", p.to_string());
        let n = ("n", s.spawn.to_string());
        let v = Variant {
            workload: "spawn",
            fields: vec![("gomaxprocs".into(), p.to_string())],
            kind: Kind::InProcess,
            spawns_per_run: 1,
            load: None,
            impls: vec![
                imp("rt", RT, "spawn", &[n.clone(), gp.clone()]),
                imp("go", Program::Go, "spawn", &[n.clone(), gp.clone()]),
                with_note(
                    imp(
                        "may",
                        Program::Sibling("peer-may"),
                        "spawn",
                        &[("n", s.spawn_may.to_string()), gp.clone()],
                    ),
                    &format!(
                        "{} coroutines (not {}): the spawner does not yield, so all can be live \
                         at once, and each may stack is a mapping plus a guard \
                         (vm.max_map_count 65530); may::config().set_workers(gomaxprocs)",
                        s.spawn_may, s.spawn
                    ),
                ),
                with_note(
                    imp(
                        "tokio",
                        Program::Sibling("peer-tokio"),
                        "spawn",
                        &[n.clone(), gp.clone()],
                    ),
                    if p == 1 {
                        "current_thread runtime"
                    } else {
                        "multi_thread runtime, 2 workers"
                    },
                ),
                with_note(
                    imp(
                        "std-thread",
                        Program::Sibling("peer-std"),
                        "spawn",
                        &[("n", s.spawn_threads.to_string()), gp.clone()],
                    ),
                    &format!(
                        "{} OS threads (not {}), process limited to {p} CPU(s) by affinity",
                        s.spawn_threads, s.spawn
                    ),
                ),
            ],
        };
        out.push(with_gomaxprocs(v, p));
    }
    let n = ("n", s.pingpong.to_string());
    out.push(Variant {
        workload: "pingpong",
        fields: vec![],
        kind: Kind::InProcess,
        spawns_per_run: 1,
        load: None,
        impls: vec![
            imp("rt", RT, "pingpong", std::slice::from_ref(&n)),
            with_note(
                imp("go", Program::Go, "pingpong", std::slice::from_ref(&n)),
                "two unbuffered channels, default GOMAXPROCS",
            ),
            with_note(
                imp("may", Program::Sibling("peer-may"), "pingpong", std::slice::from_ref(&n)),
                "two may::sync::mpsc channels (unbounded; one message in flight), default workers",
            ),
            with_note(
                imp("tokio", Program::Sibling("peer-tokio"), "pingpong", std::slice::from_ref(&n)),
                "two tokio::sync::mpsc::channel(1), multi_thread runtime, default workers",
            ),
            with_note(
                imp(
                    "std-thread",
                    Program::Sibling("peer-std"),
                    "pingpong",
                    &[("n", s.pingpong_threads.to_string())],
                ),
                &format!(
                    "two OS threads over std::sync::mpsc::sync_channel(0) (rendezvous), {} round trips",
                    s.pingpong_threads
                ),
            ),
        ],
    });
    let n = ("n", s.yields.to_string());
    let gp = ("gomaxprocs", "1".to_string());
    out.push(with_gomaxprocs(
        Variant {
            workload: "yield",
            fields: vec![("gomaxprocs".into(), "1".into())],
            kind: Kind::InProcess,
            spawns_per_run: 1,
            load: None,
            impls: vec![
                imp("rt", RT, "yield", &[n.clone(), gp.clone()]),
                with_note(
                    imp("go", Program::Go, "yield", &[n.clone(), gp.clone()]),
                    "runtime.Gosched",
                ),
                with_note(
                    imp(
                        "may",
                        Program::Sibling("peer-may"),
                        "yield",
                        &[n.clone(), gp.clone()],
                    ),
                    "may::coroutine::yield_now, 1 worker",
                ),
                with_note(
                    imp(
                        "tokio",
                        Program::Sibling("peer-tokio"),
                        "yield",
                        &[n.clone(), gp.clone()],
                    ),
                    "tokio::task::yield_now on a current_thread runtime",
                ),
                with_note(
                    imp(
                        "std-thread",
                        Program::Sibling("peer-std"),
                        "yield",
                        &[("n", s.yields_threads.to_string()), gp.clone()],
                    ),
                    &format!(
                        "two OS threads calling sched_yield on one CPU, {} yields each",
                        s.yields_threads
                    ),
                ),
            ],
        },
        1,
    ));
    let n = ("n", s.switches.to_string());
    // rt's default keeps MXCSR and the x87 control word per goroutine (one
    // `stmxcsr` per switch); `fpenv=0` leaves them to the thread, which is
    // what corosensei's switch (and Go's gogo) do.
    for fpenv in ["1", "0"] {
        let mut rt = imp("rt", RT, "switch", std::slice::from_ref(&n));
        rt.env.push(("GODEBUG".into(), format!("fpenv={fpenv}")));
        let rt = with_note(
            rt,
            if fpenv == "1" {
                "yield_to g→g; MXCSR and x87 CW saved and loaded per switch"
            } else {
                "yield_to g→g; FP control state left to the thread"
            },
        );
        out.push(Variant {
            workload: "switch",
            fields: vec![("fpenv".into(), fpenv.to_string())],
            kind: Kind::InProcess,
            spawns_per_run: 1,
            load: None,
            impls: vec![
                rt,
                with_note(
                    imp(
                        "corosensei",
                        Program::Sibling("peer-corosensei"),
                        "switch",
                        std::slice::from_ref(&n),
                    ),
                    "resume+suspend pair time / 2; saves no FP control state",
                ),
            ],
        });
    }
    for t in [1u32, 2] {
        let o = [("n", s.malloc.to_string()), ("threads", t.to_string())];
        out.push(Variant {
            workload: "malloc",
            fields: vec![("threads".into(), t.to_string())],
            kind: Kind::InProcess,
            spawns_per_run: 1,
            load: None,
            impls: allocator_impls("malloc", &o),
        });
    }
    for (w, n) in [
        ("xthread", s.xthread),
        ("larson", s.larson),
        ("cscratch", s.cscratch),
        ("realloc", s.realloc),
        ("json", s.json),
    ] {
        for t in [1u32, 2] {
            let o = [("n", n.to_string()), ("threads", t.to_string())];
            out.push(Variant {
                workload: w,
                fields: vec![("threads".into(), t.to_string())],
                kind: Kind::InProcess,
                spawns_per_run: 1,
                load: None,
                impls: allocator_impls(w, &o),
            });
            // The same run again, reporting the peak resident set instead of the time.
            let mut o = o.to_vec();
            o.push(("rss", "1".to_string()));
            out.push(Variant {
                workload: w,
                fields: vec![
                    ("measure".into(), "rss".into()),
                    ("threads".into(), t.to_string()),
                ],
                kind: Kind::InProcess,
                spawns_per_run: 1,
                load: None,
                impls: allocator_impls(w, &o),
            });
        }
    }
    let n = ("n", s.parked.to_string());
    out.push(Variant {
        workload: "parked",
        fields: vec![],
        kind: Kind::InProcess,
        spawns_per_run: 1,
        load: None,
        impls: vec![
            imp("rt", RT, "parked", std::slice::from_ref(&n)),
            with_note(
                imp("go", Program::Go, "parked", std::slice::from_ref(&n)),
                "blocked on a channel receive",
            ),
            with_note(
                imp(
                    "may",
                    Program::Sibling("peer-may"),
                    "parked",
                    &[("n", s.parked_may.to_string())],
                ),
                &format!(
                    "{} coroutines (not {}): each may stack is its own mapping plus a guard, \
                     and vm.max_map_count is 65530",
                    s.parked_may, s.parked
                ),
            ),
            with_note(
                imp(
                    "tokio",
                    Program::Sibling("peer-tokio"),
                    "parked",
                    std::slice::from_ref(&n),
                ),
                "tasks awaiting a tokio::sync::Notify, current_thread runtime",
            ),
        ],
    });
    let size = ("size", stack_size.to_string());
    out.push(Variant {
        workload: "stack",
        fields: vec![("size".into(), stack_size.to_string())],
        kind: Kind::InProcess,
        spawns_per_run: 1,
        load: None,
        impls: vec![
            with_note(
                imp(
                    "rt",
                    Program::Sibling("stack-rt"),
                    "stack",
                    &[("n", s.stack_pool.to_string()), size.clone()],
                ),
                "rt_stack::stackalloc/stackfree through a warm StackCache",
            ),
            with_note(
                imp(
                    "mmap",
                    Program::Sibling("stack-mmap"),
                    "stack",
                    &[("n", s.stack_fresh.to_string()), size.clone()],
                ),
                "mmap + mprotect guard page + munmap per stack",
            ),
            with_note(
                imp(
                    "corosensei",
                    Program::Sibling("peer-corosensei"),
                    "stack",
                    &[("n", s.stack_fresh.to_string()), size.clone()],
                ),
                "corosensei::stack::DefaultStack::new + drop",
            ),
        ],
    });
    for p in [1u32, 2] {
        out.push(with_gomaxprocs(tree(s, p), p));
    }
    for p in [1u32, 2] {
        out.push(with_gomaxprocs(fanout(s, p), p));
    }
    for make in [preempt, blockcall, blockpipe] {
        for p in [1u32, 2] {
            out.push(make(s, p));
        }
    }
    out.extend(oversubscribed(s));
    out.extend(net_plan(s));
    out.into_iter().map(with_rt_apo).collect()
}

/// `workload` with options `o` at `gomaxprocs=p`, rt beside Go only.
fn beside_go(workload: &'static str, o: &[(&str, String)], p: u32) -> Variant {
    with_gomaxprocs(
        Variant {
            workload,
            fields: vec![("gomaxprocs".into(), p.to_string())],
            kind: Kind::InProcess,
            spawns_per_run: 1,
            load: None,
            impls: vec![
                imp("rt", RT, workload, o),
                imp("go", Program::Go, workload, o),
            ],
        },
        p,
    )
}

/// Sets the note of every impl of `v`, in order.
fn with_notes(mut v: Variant, notes: &[String]) -> Variant {
    for (i, n) in v.impls.iter_mut().zip(notes) {
        i.note = Some(n.clone());
    }
    v
}

/// `preempt`: one goroutine per P spins without a runtime call while a ticker sleeps 1 ms
/// [`Sizes::preempt_ticks`] times; a tick's lateness is its wake time minus its due time, and
/// one run reports the p50 and the p99 of them ([`PREEMPT_STATS`]), which only preemption of
/// the spinners keeps short. rt beside Go only: the Rust peers cannot preempt a task that never
/// yields.
fn preempt(s: &Sizes, p: u32) -> Variant {
    let o = [
        ("n", s.preempt_ticks.to_string()),
        ("gomaxprocs", p.to_string()),
    ];
    let ticks = format!(
        "{} of {} ticks' lateness from one run",
        PREEMPT_STATS.join(" and "),
        s.preempt_ticks
    );
    let mut v = with_notes(
        beside_go("preempt", &o, p),
        &[
            format!(
                "{p} goroutine(s) spinning on black_box arithmetic and an AtomicBool load; \
                 the main goroutine ticks with rt_sched::sleep(1 ms); {ticks}"
            ),
            format!(
                "{p} goroutine(s) spinning on arithmetic and an atomic load; the main \
                 goroutine ticks with time.Sleep(time.Millisecond); {ticks}"
            ),
        ],
    );
    v.kind = Kind::Stats(&PREEMPT_STATS);
    v
}

/// `blockcall`: [`BLOCKCALL_READERS`] goroutines each sit in a plain `read(2)` on its own
/// empty pipe (no `rt_sched::blocking`: the runtime has to take their Ps back by itself) while
/// two goroutines ping-pong [`Sizes::blockcall`] times over two unbuffered channels; ns per
/// round trip, timed once every reader has started. rt beside Go only (the Rust peers have no
/// such hand-off).
fn blockcall(s: &Sizes, p: u32) -> Variant {
    let shape = format!(
        "{} round trips over two unbuffered channels while {BLOCKCALL_READERS} goroutines \
         block reading empty pipe2(O_CLOEXEC) pipes",
        s.blockcall
    );
    blocking_beside_go(
        "blockcall",
        [s.blockcall, BLOCKCALL_READERS],
        "readers",
        p,
        [
            "rt_sched::Chan::new(0); libc::read without rt_sched::blocking",
            "chan int; syscall.Read (no netpoller)",
        ],
        &shape,
    )
}

/// `blockpipe`: [`BLOCKPIPE_PAIRS`] pairs of goroutines pass a byte back and forth
/// [`Sizes::blockpipe`] times each over two blocking pipes with plain `read(2)`/`write(2)`:
/// every goroutine blocks in the kernel over and over, and holds its P each time until the
/// runtime hands the P on. ns per round trip over all pairs. rt beside Go only.
fn blockpipe(s: &Sizes, p: u32) -> Variant {
    let shape = format!(
        "{BLOCKPIPE_PAIRS} pairs × {} round trips over pipe2(O_CLOEXEC) pipes",
        s.blockpipe
    );
    blocking_beside_go(
        "blockpipe",
        [s.blockpipe, BLOCKPIPE_PAIRS],
        "pairs",
        p,
        [
            "libc::read/libc::write without rt_sched::blocking",
            "syscall.Read/syscall.Write (no netpoller)",
        ],
        &shape,
    )
}

/// A blocking-system-call workload at `gomaxprocs=p`, rt beside Go, with options `n=<n>` and
/// `<key>=<count>` from `[n, count]`; each impl's note (rt's, then Go's) is followed by `shape`.
fn blocking_beside_go(
    workload: &'static str,
    [n, count]: [u64; 2],
    key: &str,
    p: u32,
    notes: [&str; 2],
    shape: &str,
) -> Variant {
    let o = [
        ("n", n.to_string()),
        (key, count.to_string()),
        ("gomaxprocs", p.to_string()),
    ];
    with_notes(
        beside_go(workload, &o, p),
        &notes.map(|note| format!("{note}; {shape}")),
    )
}

/// Adds the `rt-apo` impl to an [`APO_WORKLOADS`] variant at one or two Ps (or the default
/// GOMAXPROCS), right after `go`: rt's program and arguments with `asyncpreemptoff=1` added to
/// its `GODEBUG`. Other variants are returned as they are.
fn with_rt_apo(mut v: Variant) -> Variant {
    let procs = v
        .fields
        .iter()
        .find(|(k, _)| k == "gomaxprocs")
        .map(|(_, p)| p.as_str());
    if !APO_WORKLOADS.contains(&v.workload) || !matches!(procs, None | Some("1" | "2")) {
        return v;
    }
    let Some(mut apo) = v.impls.iter().find(|i| i.name == "rt").cloned() else {
        return v;
    };
    apo.name = "rt-apo";
    match apo.env.iter_mut().find(|(k, _)| k == "GODEBUG") {
        Some((_, d)) => d.push_str(",asyncpreemptoff=1"),
        None => apo.env.push(("GODEBUG".into(), "asyncpreemptoff=1".into())),
    }
    apo.note = Some(format!(
        "the rt row's program and arguments with GODEBUG=asyncpreemptoff=1 (no asynchronous \
         preemption): rt/rt-apo above 1 is what preemption costs{}",
        apo.note.map(|n| format!("; {n}")).unwrap_or_default()
    ));
    let at = v
        .impls
        .iter()
        .position(|i| i.name == "go")
        .map_or(1, |g| g + 1);
    v.impls.insert(at, apo);
    v
}

/// The server impls of a network workload (`serve-echo` or `serve-http`), one worker each.
fn servers(workload: &str, http: bool) -> Vec<ImplRun> {
    let one = [("gomaxprocs", "1".to_string())];
    let note = |h: &str, e: &str| if http { h.to_string() } else { e.to_string() };
    let v = Variant {
        workload: "",
        fields: vec![],
        kind: Kind::Server,
        spawns_per_run: 1,
        load: None,
        impls: vec![
            with_note(
                imp("rt", RT, workload, &one),
                &note(
                    "rt-net, requests parsed with httparse, GOMAXPROCS=1",
                    "rt-net, a goroutine per connection, GOMAXPROCS=1",
                ),
            ),
            with_note(
                imp("go", Program::GoNet, workload, &one),
                &note(
                    "net/http, GOMAXPROCS=1",
                    "net, a goroutine per connection, GOMAXPROCS=1",
                ),
            ),
            with_note(
                imp("tokio", Program::Sibling("peer-tokio"), workload, &one),
                &note(
                    "hyper 1 (http1, pipeline_flush), current_thread runtime",
                    "a task per connection, current_thread runtime",
                ),
            ),
            with_note(
                imp("may", Program::Sibling("peer-may"), workload, &one),
                &note(
                    "may_minihttp, may::config().set_workers(1)",
                    "a coroutine per connection, may::config().set_workers(1)",
                ),
            ),
        ],
    };
    with_gomaxprocs(v, 1).impls
}

/// `echo`, `http`, `accept` and `idle`: servers driven from another process (see
/// [`crate::serve`]); pinned variants put server and load on different CPUs.
fn net_plan(s: &Sizes) -> Vec<Variant> {
    let mut out = Vec::new();
    let variant =
        |workload: &'static str, fields: Vec<(String, String)>, http: bool, load: Load| Variant {
            workload,
            fields,
            kind: Kind::Server,
            spawns_per_run: 1,
            load: Some(load),
            impls: servers(if http { "serve-http" } else { "serve-echo" }, http),
        };
    let pin_field = |p: bool| {
        (
            "pinned".to_string(),
            if p { "yes" } else { "no" }.to_string(),
        )
    };
    for pinned in [true, false] {
        for conns in ECHO_CONNS {
            let msgs = (s.echo_ops / conns).max(1);
            let args = vec![
                "echo".into(),
                "{addr}".into(),
                format!("conns={conns}"),
                format!("msgs={msgs}"),
                format!("size={ECHO_SIZE}"),
            ];
            out.push(variant(
                "echo",
                vec![("conns".into(), conns.to_string()), pin_field(pinned)],
                false,
                Load {
                    tool: Tool::NetClient,
                    args,
                    pinned,
                    runs: s.server_runs,
                },
            ));
        }
    }
    let wrk = |extra: &[&str]| {
        let mut a = vec![
            "-t1".to_string(),
            format!("-d{}s", s.wrk_secs),
            "--timeout".into(),
            "5s".into(),
        ];
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    for pipelined in [false, true] {
        for pinned in [true, false] {
            let conns = format!("-c{HTTP_CONNS}");
            let depth = HTTP_PIPELINE.to_string();
            let args = if pipelined {
                wrk(&[
                    &conns,
                    "-s",
                    "{pipeline_lua}",
                    "http://{addr}/",
                    "--",
                    &depth,
                ])
            } else {
                wrk(&[&conns, "http://{addr}/"])
            };
            out.push(variant(
                "http",
                vec![
                    (
                        "pipeline".into(),
                        if pipelined { depth } else { "1".into() },
                    ),
                    pin_field(pinned),
                ],
                true,
                Load {
                    tool: Tool::Wrk,
                    args,
                    pinned,
                    runs: s.server_runs,
                },
            ));
        }
    }
    let mut accept = variant(
        "accept",
        vec![],
        true,
        Load {
            tool: Tool::Wrk,
            args: wrk(&["-c64", "-H", "Connection: close", "http://{addr}/"]),
            pinned: false,
            runs: s.server_runs,
        },
    );
    for i in &mut accept.impls {
        if i.name == "may" {
            i.note = Some(
                "may_minihttp, may::config().set_workers(1); it answers `Connection: close` \
                 without closing (curl -v shows the connection reused), so wrk keeps its \
                 connections and this is not an accept rate"
                    .into(),
            );
        }
    }
    out.push(accept);
    out.push(variant(
        "idle",
        vec![("conns".into(), s.idle_conns.to_string())],
        false,
        Load {
            tool: Tool::NetClient,
            args: vec![
                "idle".into(),
                "{addr}".into(),
                format!("conns={}", s.idle_conns),
            ],
            pinned: false,
            runs: s.server_runs,
        },
    ));
    out
}

/// tokio's runtime for a `gomaxprocs=p` variant, as `peer-tokio` builds it.
fn tokio_runtime(p: u32) -> String {
    if p == 1 {
        "current_thread runtime".into()
    } else {
        format!("multi_thread runtime, {p} workers")
    }
}

/// The scheduler workloads with more Ps than the machine has cores
/// (GOMAXPROCS 4 and 8; `pingpong` and `yield` also at 2, which their main
/// rows do not fix), rt beside Go only: more Ps must not make a run
/// collapse, whatever the machine.
fn oversubscribed(s: &Sizes) -> Vec<Variant> {
    let keep = |mut v: Variant| {
        v.impls.retain(|i| i.name == "rt" || i.name == "go");
        v
    };
    let simple = |workload: &'static str, n: u64, p: u32| {
        beside_go(
            workload,
            &[("n", n.to_string()), ("gomaxprocs", p.to_string())],
            p,
        )
    };
    let mut out = Vec::new();
    for p in [4u32, 8] {
        out.push(simple("spawn", s.spawn, p));
        out.push(keep(with_gomaxprocs(tree(s, p), p)));
        out.push(keep(with_gomaxprocs(fanout(s, p), p)));
    }
    for p in [2u32, 4, 8] {
        out.push(simple("pingpong", s.pingpong, p));
        out.push(simple("yield", s.yields, p));
    }
    out
}

/// `tree`: Skynet, a tree of `s.tree` leaf goroutines, ten children per node; each node's
/// children send to it over one channel, the root checks the sum `0 + 1 + … + (leaves − 1)`.
fn tree(s: &Sizes, p: u32) -> Variant {
    let gp = ("gomaxprocs", p.to_string());
    let n = ("n", s.tree.to_string());
    Variant {
        workload: "tree",
        fields: vec![("gomaxprocs".into(), p.to_string())],
        kind: Kind::InProcess,
        spawns_per_run: 1,
        load: None,
        impls: vec![
            with_note(
                imp("rt", RT, "tree", &[n.clone(), gp.clone()]),
                "one unbuffered Chan per inner node",
            ),
            with_note(
                imp("go", Program::Go, "tree", &[n.clone(), gp.clone()]),
                "Skynet's Go program: one unbuffered channel per inner node",
            ),
            with_note(
                imp(
                    "may",
                    Program::Sibling("peer-may"),
                    "tree",
                    &[("n", s.tree_may.to_string()), gp.clone()],
                ),
                &format!(
                    "{} leaves (not {}): from 100000 leaves on, more coroutines are live at \
                     once than may can map stacks for (a mapping plus a guard each, \
                     vm.max_map_count 65530); one may::sync::mpsc per inner node (unbounded: \
                     a leaf does not wait for its parent); may::config().set_workers({p})",
                    s.tree_may, s.tree
                ),
            ),
            with_note(
                imp(
                    "tokio",
                    Program::Sibling("peer-tokio"),
                    "tree",
                    &[n.clone(), gp.clone()],
                ),
                &format!(
                    "tokio::spawn per node, one mpsc::channel(1) per inner node, {}",
                    tokio_runtime(p)
                ),
            ),
        ],
    }
}

/// `fanout`: one producer → [`FANOUT_WORKERS`] workers → one collector over two channels of
/// capacity [`FANOUT_CAP`]; the workers forward `2v + 1`, the collector checks the sum `n²`.
fn fanout(s: &Sizes, p: u32) -> Variant {
    let o = [
        ("n", s.fanout.to_string()),
        ("workers", FANOUT_WORKERS.to_string()),
        ("cap", FANOUT_CAP.to_string()),
        ("gomaxprocs", p.to_string()),
    ];
    let shape = format!("{FANOUT_WORKERS} workers, capacity {FANOUT_CAP}");
    Variant {
        workload: "fanout",
        fields: vec![("gomaxprocs".into(), p.to_string())],
        kind: Kind::InProcess,
        spawns_per_run: 1,
        load: None,
        impls: vec![
            with_note(
                imp("rt", RT, "fanout", &o),
                &format!("two Chan::new({FANOUT_CAP}); {shape}"),
            ),
            with_note(
                imp("go", Program::Go, "fanout", &o),
                &format!("two make(chan uint64, {FANOUT_CAP}); {shape}"),
            ),
            with_note(
                imp("may", Program::Sibling("peer-may"), "fanout", &o),
                &format!(
                    "may::sync::mpmc to the workers, may::sync::mpsc to the collector, each \
                     bounded at {FANOUT_CAP} by a may::sync::Semphore (may's channels are \
                     unbounded); {shape}; may::config().set_workers({p})"
                ),
            ),
            with_note(
                imp("tokio", Program::Sibling("peer-tokio"), "fanout", &o),
                &format!(
                    "two mpsc::channel({FANOUT_CAP}), the workers sharing the first receiver \
                     behind a tokio::sync::Mutex (tokio has no multi-consumer channel); {shape}; \
                     {}",
                    tokio_runtime(p)
                ),
            ),
        ],
    }
}

/// Parses `--only W,W,...`: every name must be a known workload.
pub fn parse_only(list: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for w in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match WORKLOADS.iter().find(|k| **k == w) {
            Some(k) => out.push(*k),
            None => {
                return Err(format!(
                    "unknown workload {w:?} (known: {})",
                    WORKLOADS.join(",")
                ))
            }
        }
    }
    if out.is_empty() {
        return Err("--only needs at least one workload".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_is_planned_with_rt_first() {
        for quick in [false, true] {
            let p = plan(&Sizes::new(quick), 65536);
            for w in WORKLOADS {
                assert!(p.iter().any(|v| v.workload == w), "{w} missing");
            }
            for v in &p {
                assert_eq!(v.impls[0].name, "rt", "{}", v.label());
                assert!(v.impls.len() >= 2, "{} has no peer", v.label());
                for i in &v.impls {
                    if v.kind == Kind::Server {
                        // Servers run `serve-echo` or `serve-http`; the load says what is measured.
                        assert!(i.args[0].starts_with("serve-"), "{}", v.label());
                        assert!(v.load.is_some(), "{}", v.label());
                    } else {
                        assert_eq!(i.args[0], v.workload);
                    }
                }
            }
        }
    }

    #[test]
    fn network_workloads_drive_one_worker_servers() {
        let s = Sizes::new(false);
        let p = plan(&s, 65536);
        let labels: Vec<String> = p
            .iter()
            .filter(|v| v.kind == Kind::Server)
            .map(Variant::label)
            .collect();
        for c in ECHO_CONNS {
            for pin in ["yes", "no"] {
                assert!(
                    labels.contains(&format!("workload=echo conns={c} pinned={pin}")),
                    "{labels:?}"
                );
            }
        }
        for depth in ["1", "16"] {
            for pin in ["yes", "no"] {
                assert!(labels.contains(&format!("workload=http pipeline={depth} pinned={pin}")));
            }
        }
        assert!(labels.contains(&"workload=accept".to_string()));
        assert!(labels.contains(&format!("workload=idle conns={}", s.idle_conns)));
        for v in p.iter().filter(|v| v.kind == Kind::Server) {
            let names: Vec<&str> = v.impls.iter().map(|i| i.name).collect();
            assert_eq!(names, ["rt", "go", "tokio", "may"], "{}", v.label());
            for i in &v.impls {
                assert!(i.env.contains(&("GOMAXPROCS".to_string(), "1".to_string())));
            }
            let load = v.load.as_ref().expect("load");
            assert!(
                load.args.iter().any(|a| a.contains("{addr}")),
                "{}",
                v.label()
            );
            assert_eq!(load.pinned, v.label().contains("pinned=yes"));
        }
    }

    #[test]
    fn only_boot_runs_the_static_build() {
        for v in plan(&Sizes::new(true), 65536) {
            let rt = &v.impls[0].program;
            if v.workload == "boot" {
                assert_eq!(*rt, Program::Sibling("bench-rt-static"));
            } else {
                assert_ne!(*rt, Program::Sibling("bench-rt-static"), "{}", v.label());
            }
        }
    }

    #[test]
    fn impl_names_are_the_fixed_set() {
        let known = [
            "rt",
            "rt-apo",
            "go",
            "may",
            "tokio",
            "corosensei",
            "std-thread",
            "glibc",
            "mimalloc",
            "jemalloc",
            "mmap",
        ];
        for v in plan(&Sizes::new(false), 65536) {
            for i in v.impls {
                assert!(known.contains(&i.name), "{}", i.name);
            }
        }
    }

    #[test]
    fn quick_sizes_are_smaller_and_runs_at_least_five() {
        let (q, f) = (Sizes::new(true), Sizes::new(false));
        assert!(q.runs >= 5 && f.runs >= 5);
        assert!(q.spawn < f.spawn && q.malloc < f.malloc && q.parked < f.parked);
        assert_eq!(f.spawn, 1_000_000);
        assert_eq!(f.malloc, 10_000_000);
        assert_eq!(f.parked, 100_000);
        assert_eq!(f.pingpong, 1_000_000);
        assert_eq!(f.preempt_ticks, 200);
        assert!(q.preempt_ticks < f.preempt_ticks);
        assert!(q.blockcall < f.blockcall && q.blockpipe < f.blockpipe);
        assert!(q.slow_runs >= 3 && f.slow_runs >= q.slow_runs && f.slow_runs <= f.runs);
        for w in SLOW_WORKLOADS {
            assert!(WORKLOADS.contains(&w), "{w}");
        }
        assert_eq!(f.runs_for("preempt"), f.slow_runs);
        assert_eq!(f.runs_for("blockpipe"), f.slow_runs);
        assert_eq!(f.runs_for("blockcall"), f.runs);
        assert_eq!(f.runs_for("spawn"), f.runs);
    }

    #[test]
    fn preempt_blockcall_and_blockpipe_run_rt_beside_go_at_one_and_two_procs() {
        for quick in [false, true] {
            let s = Sizes::new(quick);
            let p = plan(&s, 65536);
            for (w, n, shape) in [
                ("preempt", s.preempt_ticks, None),
                (
                    "blockcall",
                    s.blockcall,
                    Some(format!("readers={BLOCKCALL_READERS}")),
                ),
                (
                    "blockpipe",
                    s.blockpipe,
                    Some(format!("pairs={BLOCKPIPE_PAIRS}")),
                ),
            ] {
                assert!(WORKLOADS.contains(&w));
                let vs: Vec<&Variant> = p.iter().filter(|v| v.workload == w).collect();
                let labels: Vec<String> = vs.iter().map(|v| v.label()).collect();
                assert_eq!(
                    labels,
                    [
                        format!("workload={w} gomaxprocs=1"),
                        format!("workload={w} gomaxprocs=2")
                    ]
                );
                for v in vs {
                    let names: Vec<&str> = v.impls.iter().map(|i| i.name).collect();
                    assert_eq!(names, ["rt", "go"], "{}", v.label());
                    assert_eq!(v.impls[0].program, RT);
                    assert_eq!(v.impls[1].program, Program::Go);
                    let kind = if w == "preempt" {
                        Kind::Stats(&PREEMPT_STATS)
                    } else {
                        Kind::InProcess
                    };
                    assert_eq!(v.kind, kind, "{}", v.label());
                    // Both impls run the same sizes.
                    assert_eq!(v.impls[0].args, v.impls[1].args, "{}", v.label());
                    assert!(v.impls[0].args.contains(&format!("n={n}")));
                    if let Some(shape) = &shape {
                        assert!(v.impls[0].args.contains(shape), "{}", v.label());
                    }
                    for i in &v.impls {
                        assert!(i.note.is_some(), "{} {}", v.label(), i.name);
                    }
                }
            }
        }
        assert_eq!(PREEMPT_STATS, ["p50", "p99"]);
        assert_eq!(BLOCKCALL_READERS, 8);
    }

    #[test]
    fn rt_apo_runs_rt_without_async_preemption_beside_go_at_one_and_two_procs() {
        let p = plan(&Sizes::new(false), 65536);
        let mut seen = Vec::new();
        for v in &p {
            let apo: Vec<&ImplRun> = v.impls.iter().filter(|i| i.name == "rt-apo").collect();
            let procs = v
                .fields
                .iter()
                .find(|(k, _)| k == "gomaxprocs")
                .map(|(_, x)| x.as_str());
            let wanted = APO_WORKLOADS.contains(&v.workload)
                && matches!(procs, None | Some("1") | Some("2"));
            if !wanted {
                assert!(apo.is_empty(), "{}", v.label());
                continue;
            }
            assert_eq!(apo.len(), 1, "{}", v.label());
            let (rt, apo) = (&v.impls[0], apo[0]);
            assert_eq!(rt.name, "rt");
            assert_eq!(v.impls[1].name, "go", "{}", v.label());
            assert_eq!(v.impls[2].name, "rt-apo", "{}", v.label());
            assert_eq!((&apo.program, &apo.args), (&rt.program, &rt.args));
            let mut env = rt.env.clone();
            env.push(("GODEBUG".into(), "asyncpreemptoff=1".into()));
            assert_eq!(apo.env, env, "{}", v.label());
            assert!(!rt.env.iter().any(|(k, _)| k == "GODEBUG"));
            seen.push(v.label());
        }
        // pingpong's main row runs at the default GOMAXPROCS; its row at two Ps and yield's
        // come with the oversubscribed ones.
        seen.sort();
        assert_eq!(
            seen,
            [
                "workload=fanout gomaxprocs=1",
                "workload=fanout gomaxprocs=2",
                "workload=pingpong",
                "workload=pingpong gomaxprocs=2",
                "workload=spawn gomaxprocs=1",
                "workload=spawn gomaxprocs=2",
                "workload=tree gomaxprocs=1",
                "workload=tree gomaxprocs=2",
                "workload=yield gomaxprocs=1",
                "workload=yield gomaxprocs=2",
            ]
        );
    }

    #[test]
    fn gomaxprocs_variants_set_the_environment() {
        for v in plan(&Sizes::new(true), 65536) {
            if let Some((_, p)) = v.fields.iter().find(|(k, _)| k == "gomaxprocs") {
                for i in &v.impls {
                    assert!(i.env.contains(&("GOMAXPROCS".to_string(), p.clone())));
                    assert!(i.args.contains(&format!("gomaxprocs={p}")));
                }
            }
        }
    }

    #[test]
    fn labels_put_variant_fields_after_workload() {
        let p = plan(&Sizes::new(true), 4096);
        let labels: Vec<String> = p.iter().map(Variant::label).collect();
        assert!(labels.contains(&"workload=spawn gomaxprocs=2".to_string()));
        assert!(labels.contains(&"workload=malloc threads=1".to_string()));
        assert!(labels.contains(&"workload=larson threads=2".to_string()));
        assert!(labels.contains(&"workload=xthread measure=rss threads=1".to_string()));
        assert!(labels.contains(&"workload=stack size=4096".to_string()));
        assert!(labels.contains(&"workload=tree gomaxprocs=1".to_string()));
        assert!(labels.contains(&"workload=fanout gomaxprocs=2".to_string()));
    }

    #[test]
    fn scheduler_workloads_also_run_oversubscribed_beside_go() {
        let p = plan(&Sizes::new(false), 65536);
        for w in ["spawn", "pingpong", "yield", "tree", "fanout"] {
            for procs in ["4", "8"] {
                let v = p
                    .iter()
                    .find(|v| v.workload == w && v.fields == [("gomaxprocs".into(), procs.into())])
                    .unwrap_or_else(|| panic!("no {w} gomaxprocs={procs}"));
                let names: Vec<&str> = v.impls.iter().map(|i| i.name).collect();
                assert_eq!(names, ["rt", "go"], "{}", v.label());
                for i in &v.impls {
                    assert!(i.args.contains(&format!("gomaxprocs={procs}")));
                    assert!(i.env.contains(&("GOMAXPROCS".into(), procs.into())));
                }
            }
        }
    }

    #[test]
    fn tree_and_fanout_run_beside_go_tokio_and_may_at_one_and_two_procs() {
        for quick in [false, true] {
            let s = Sizes::new(quick);
            let p = plan(&s, 65536);
            for w in ["tree", "fanout"] {
                let procs: Vec<&str> = p
                    .iter()
                    .filter(|v| v.workload == w)
                    .map(|v| v.fields[0].1.as_str())
                    .collect();
                assert_eq!(procs, ["1", "2", "4", "8"], "{w}");
                let main =
                    |v: &&Variant| v.workload == w && ["1", "2"].contains(&v.fields[0].1.as_str());
                for v in p.iter().filter(main) {
                    let names: Vec<&str> = v.impls.iter().map(|i| i.name).collect();
                    assert_eq!(
                        names,
                        ["rt", "go", "rt-apo", "may", "tokio"],
                        "{}",
                        v.label()
                    );
                    assert_eq!(v.impls[0].program, RT);
                    assert_eq!(v.impls[1].program, Program::Go);
                    for i in &v.impls {
                        assert!(i.note.is_some(), "{} {}", v.label(), i.name);
                    }
                }
            }
        }
    }

    #[test]
    fn tree_sizes_are_powers_of_ten() {
        for quick in [false, true] {
            for v in plan(&Sizes::new(quick), 65536) {
                if v.workload != "tree" {
                    continue;
                }
                for i in &v.impls {
                    let n: u64 = i
                        .args
                        .iter()
                        .find_map(|a| a.strip_prefix("n="))
                        .and_then(|n| n.parse().ok())
                        .unwrap();
                    assert!(
                        crate::kernels::tree_nodes(n).is_some(),
                        "{} {}: n={n}",
                        v.label(),
                        i.name
                    );
                }
            }
        }
        let (q, f) = (Sizes::new(true), Sizes::new(false));
        assert_eq!(f.tree, 1_000_000);
        assert_eq!(q.tree, 100_000);
        assert!(f.tree_may <= f.tree && q.tree_may <= q.tree);
    }

    #[test]
    fn fanout_impls_share_size_workers_and_capacity() {
        for quick in [false, true] {
            let s = Sizes::new(quick);
            for v in plan(&s, 65536) {
                if v.workload != "fanout" {
                    continue;
                }
                for i in &v.impls {
                    for want in [
                        format!("n={}", s.fanout),
                        format!("workers={FANOUT_WORKERS}"),
                        format!("cap={FANOUT_CAP}"),
                    ] {
                        assert!(i.args.contains(&want), "{} {}: {want}", v.label(), i.name);
                    }
                }
            }
        }
        let (q, f) = (Sizes::new(true), Sizes::new(false));
        assert_eq!(f.fanout, 10_000_000);
        assert_eq!(q.fanout, 1_000_000);
        assert_eq!(FANOUT_WORKERS, 4);
    }

    #[test]
    fn allocator_workloads_run_on_the_four_malloc_binaries_at_one_and_two_threads() {
        let s = Sizes::new(true);
        let p = plan(&s, 65536);
        for w in ALLOCATOR_WORKLOADS {
            assert!(WORKLOADS.contains(&w));
            let vs: Vec<&Variant> = p.iter().filter(|v| v.workload == w).collect();
            let want = if w == "malloc" { 2 } else { 4 };
            assert_eq!(vs.len(), want, "{w}");
            for v in vs {
                let names: Vec<&str> = v.impls.iter().map(|i| i.name).collect();
                assert_eq!(
                    names,
                    ["rt", "glibc", "mimalloc", "jemalloc"],
                    "{}",
                    v.label()
                );
                let rss = v.fields.iter().any(|(k, x)| k == "measure" && x == "rss");
                for i in &v.impls {
                    assert!(matches!(i.program, Program::Sibling(b) if b.starts_with("malloc-")));
                    assert_eq!(i.args.contains(&"rss=1".to_string()), rss, "{}", v.label());
                }
            }
        }
    }

    #[test]
    fn only_list_is_checked() {
        assert_eq!(parse_only("spawn,malloc").unwrap(), vec!["spawn", "malloc"]);
        assert_eq!(parse_only("tree,fanout").unwrap(), vec!["tree", "fanout"]);
        assert!(parse_only("spawn,nope").is_err());
        assert!(parse_only("").is_err());
        assert!(parse_only(",,").is_err());
    }
}
