//! rt-bench: the benchmark harness that measures rt beside its peers in one run.
//!
//! Map of the crate:
//!
//! - Impl binaries (`src/bin/*.rs`, plus the Go program in `bench/go/`): each runs one workload
//!   once and prints one line through [`proto`]: `value=<number> unit=<unit>` or
//!   `value=none reason=<text>`. One binary per implementation or allocator, because a binary
//!   has one `#[global_allocator]`. The kernels they share (the malloc ring, the fresh-mmap
//!   stack) live in [`kernels`], the other allocator workloads in [`allocs`]; RSS probes in
//!   [`mem`].
//! - The harness binary `rt-bench` (`src/main.rs`) drives everything: [`plan`] is the table
//!   of workloads × variants × impls (what to run, with which sizes), [`driver`] runs one
//!   variant's warm-up and interleaved rounds, [`runner`] spawns one impl process, times it,
//!   reaps it and parses its line (for `boot` it also reads the peak RSS of the final image
//!   under `ptrace`), [`stats`] reduces the runs to median/min/max, [`report`] prints the
//!   result and ratio lines and writes `report.md`, [`chart`] draws `ratios.svg`, [`machine`]
//!   describes the host and the peer versions.
//!
//! The rt column for the scheduler workloads comes from a sibling binary `bench-rt` (built from
//! outside this crate) that follows the same protocol:
//!
//! | invocation | prints |
//! |---|---|
//! | `bench-rt boot` | any one line, exit 0 (timed and measured from outside) |
//! | `bench-rt spawn n=<N> gomaxprocs=<P>` | `value=<ns per goroutine> unit=ns` |
//! | `bench-rt pingpong n=<N>` | `value=<ns per round trip> unit=ns` |
//! | `bench-rt yield n=<N per goroutine> gomaxprocs=1` | `value=<ns per switch> unit=ns` |
//! | `bench-rt switch n=<N>` | `value=<ns per switch> unit=ns` |
//! | `bench-rt parked n=<N>` | `value=<RSS bytes per parked goroutine> unit=B` |
//! | `bench-rt tree n=<leaves> gomaxprocs=<P>` | `value=<ns per goroutine created> unit=ns` |
//! | `bench-rt fanout n=<N> workers=<W> cap=<C> gomaxprocs=<P>` | `value=<ns per message> unit=ns` |
//! | `bench-rt preempt n=<ticks> gomaxprocs=<P>` | `value=<p50 tick lateness in ns> unit=ns stat=p50` and `value=<p99 …> unit=ns stat=p99` |
//! | `bench-rt blockcall n=<N> readers=<R> gomaxprocs=<P>` | `value=<ns per round trip> unit=ns` |
//! | `bench-rt blockpipe n=<N per pair> pairs=<K> gomaxprocs=<P>` | `value=<ns per round trip> unit=ns` |
//!
//! `tree` is Skynet: `leaves` (a power of ten up to 10⁸) leaf goroutines under inner nodes of
//! ten children, each node's children sending to it over one unbuffered channel; the root's sum
//! must be `leaves·(leaves − 1)/2`, and the value is wall time over the `(10·leaves − 1)/9`
//! goroutines created. `fanout` sends `0..N` from one producer over a channel of capacity `C` to
//! `W` workers, which send `2v + 1` over a second channel of capacity `C` to the collector (the
//! main goroutine); its sum must be `N²`. `preempt` starts one goroutine per P spinning without
//! a runtime call, then sleeps 1 ms `ticks` times; a tick's lateness is its wake time minus its
//! due time, and the run prints the p50 and the p99 (nearest rank) of them, one line each.
//! `blockcall` starts `R` goroutines that each block in a plain `read(2)` (no
//! `rt_sched::blocking`) on its own empty pipe, waits until all have started, then times `N`
//! round trips between two goroutines over two unbuffered channels; at the end it writes one
//! byte into each pipe and joins the readers. `blockpipe` runs `K` pairs of goroutines passing a
//! byte back and forth `N` times over two blocking pipes with plain `read(2)`/`write(2)`. Every
//! byte read, sum and round trip is checked: a wrong one, or bad input, prints `value=none` and
//! exits 2.
//!
//! `GOMAXPROCS=<P>` is also set in its environment for the variants that have `gomaxprocs=`.
//! The `rt-apo` impl of the scheduler workloads ([`plan::APO_WORKLOADS`]) is the same
//! `bench-rt` run with `asyncpreemptoff=1` added to its `GODEBUG`.
//! The boot workload runs `bench-rt-static` instead: the same program linked statically
//! (`cargo xtask bench` builds it with `-C target-feature=+crt-static -C relocation-model=static`
//! and copies it next to the harness), as Go links its programs.
//!
//! A missing `bench-rt`, a non-zero exit, a crash or a `value=none` line all give
//! `impl=rt value=none reason=…`.
//!
//! Hot path: there is none in the harness; the measured loops live in the impl binaries, which
//! time themselves with `Instant` around the workload only (process start-up excluded), except
//! `boot`, where the whole process is the workload and the harness times it from outside.

pub mod allocs;
pub mod chart;
pub mod driver;
pub mod kernels;
pub mod machine;
pub mod mem;
pub mod plan;
pub mod proto;
pub mod report;
pub mod runner;
pub mod serve;
pub mod stats;
