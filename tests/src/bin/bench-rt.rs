//! `bench-rt`: rt's side of the scheduler workloads for `cargo xtask bench`.
//!
//! `bench-rt <workload> [n=N] [gomaxprocs=P] [workers=W] [cap=C]
//! [readers=R] [pairs=K]` does the work once and prints `value=<x> unit=<u>`
//! (the harness sets GOMAXPROCS in the environment; `workers` and `cap` are
//! `fanout`'s, `readers` is `blockcall`'s, `pairs` is `blockpipe`'s);
//! `preempt` prints one such line per statistic, tagged `stat=p50` and
//! `stat=p99`.
//! `serve-echo` and `serve-http` are the network workloads' servers: the
//! rt-net examples' own code, on a free loopback port printed as
//! `listening=<addr>`, serving until killed.
//! Entered at `_rt0_amd64`, like rt-demo.
#![no_main]

#[path = "../../../rt-net/examples/echo/server.rs"]
mod echo_server;
#[path = "../../../rt-net/examples/http/server.rs"]
#[allow(dead_code)]
mod http_server;

use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    for a in rt_entry::args().iter().skip(2) {
        let a = a.as_bytes();
        if let Some(v) = a
            .strip_prefix(name.as_bytes())
            .and_then(|r| r.strip_prefix(b"="))
        {
            match std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()) {
                Some(n) => return n,
                None => {
                    // Not a number: the run would measure something else.
                    bad(&format!("{name} must be a whole number"));
                    std::process::exit(2);
                }
            }
        }
    }
    default
}

fn report(ns: f64, unit: &str) -> i32 {
    println!("value={ns:.2} unit={unit}");
    0
}

/// Go's program, line for line: each goroutine bumps a shared counter and
/// the last one closes a channel the main goroutine waits on. The counter
/// and channel live for the whole process (Go's closures capture pointers;
/// no reference counting per goroutine).
fn spawn(n: u64) -> i32 {
    let count: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let done: &'static rt_sched::Chan<()> = Box::leak(Box::new(rt_sched::Chan::new(0)));
    let t0 = Instant::now();
    for _ in 0..n {
        rt_sched::go(move || {
            if count.fetch_add(1, Ordering::AcqRel) + 1 == n {
                done.close();
            }
        });
    }
    done.recv();
    let el = t0.elapsed().as_nanos() as f64;
    assert_eq!(count.load(Ordering::Relaxed), n);
    report(el / n as f64, "ns")
}

fn pingpong(n: u64) -> i32 {
    let ping = rt_sched::Chan::<u64>::new(0);
    let pong = rt_sched::Chan::<u64>::new(0);
    let (pi, po) = (ping.clone(), pong.clone());
    rt_sched::go(move || {
        while let Some(v) = pi.recv() {
            po.send(v);
        }
    });
    let t0 = Instant::now();
    for i in 0..n {
        ping.send(i);
        pong.recv();
    }
    let el = t0.elapsed().as_nanos() as f64;
    ping.close();
    report(el / n as f64, "ns")
}

fn yield_(n: u64) -> i32 {
    let wg = rt_sched::WaitGroup::new();
    wg.add(2);
    let t0 = Instant::now();
    for _ in 0..2 {
        let wg = wg.clone();
        rt_sched::go(move || {
            for _ in 0..n {
                rt_sched::gosched();
            }
            wg.done();
        });
    }
    wg.wait();
    let el = t0.elapsed().as_nanos() as f64;
    report(el / (2 * n) as f64, "ns")
}

/// Two goroutines handing the M back and forth with `yield_to`: one inline
/// save-and-jump per switch (no trip through g0), no queues, no locks.
///
/// B parks itself (in no queue); A waits until B is parked, then A and B
/// switch straight to each other `n` times each.
fn switch(n: u64) -> i32 {
    use std::sync::atomic::AtomicPtr;
    static GB: AtomicPtr<rt_sched::boot::G> = AtomicPtr::new(std::ptr::null_mut());
    static GA: AtomicPtr<rt_sched::boot::G> = AtomicPtr::new(std::ptr::null_mut());
    let done = rt_sched::Chan::<f64>::new(1);
    rt_sched::go(move || {
        rt_tests::park_for_yield_to(&GB, "switch bench");
        for _ in 0..n {
            // SAFETY: A is suspended in yield_to and waits for exactly this.
            unsafe { rt_sched::boot::yield_to(GA.load(Ordering::Acquire)) };
        }
        // Left runnable in no queue; the process exits after A reports.
    });
    let d = done.clone();
    rt_sched::go(move || {
        GA.store(rt_sched::boot::current_g(), Ordering::Release);
        let b = rt_tests::wait_parked(&GB);
        let t0 = Instant::now();
        for _ in 0..n {
            // SAFETY: B is parked (first time) or suspended in yield_to.
            unsafe { rt_sched::boot::yield_to(b) };
        }
        d.send(t0.elapsed().as_nanos() as f64);
    });
    let el = done.recv().unwrap_or(0.0);
    report(el / (2 * n) as f64, "ns")
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn parked(n: u64) -> i32 {
    let release = rt_sched::Chan::<()>::new(0);
    let parked = Arc::new(AtomicU64::new(0));
    let wg = rt_sched::WaitGroup::new();
    let before = rss_bytes();
    for _ in 0..n {
        wg.add(1);
        let (r, p, wg) = (release.clone(), parked.clone(), wg.clone());
        rt_sched::go(move || {
            p.fetch_add(1, Ordering::Relaxed);
            r.recv();
            wg.done();
        });
    }
    while parked.load(Ordering::Relaxed) < n {
        rt_sched::sleep(std::time::Duration::from_millis(1));
    }
    // Every goroutine is parked in recv (or about to be): let them settle.
    rt_sched::sleep(std::time::Duration::from_millis(20));
    let after = rss_bytes();
    release.close();
    wg.wait();
    report(after.saturating_sub(before) as f64 / n as f64, "B")
}

/// Prints a `value=none` line for bad input; the status for `main`.
fn bad(reason: &str) -> i32 {
    println!("value=none reason={reason}");
    2
}

/// One Skynet node: a leaf sends its number; an inner node starts its ten
/// children on one unbuffered channel, sums what they send and sends the sum
/// up. Go's program, line for line.
fn skynet(up: rt_sched::Chan<u64>, num: u64, size: u64) {
    if size == 1 {
        up.send(num);
        return;
    }
    let rc = rt_sched::Chan::<u64>::new(0);
    let step = size / 10;
    for i in 0..10 {
        let rc = rc.clone();
        rt_sched::go(move || skynet(rc, num + i * step, step));
    }
    let mut sum = 0u64;
    for _ in 0..10 {
        sum += rc.recv().unwrap_or(0);
    }
    up.send(sum);
}

/// Skynet: a tree of `leaves` leaf goroutines (a power of ten), ten children
/// per node; ns per goroutine created (1 + 10 + … + leaves, root included).
fn tree(leaves: u64) -> i32 {
    // Powers of ten up to 10^8 leaves, as the other impls accept.
    let (mut level, mut nodes) = (1u64, 1u64);
    while level < leaves && level < 100_000_000 {
        level *= 10;
        nodes += level;
    }
    if level != leaves {
        return bad(&format!(
            "tree n={leaves} is not a power of 10 up to 100000000"
        ));
    }
    let c = rt_sched::Chan::<u64>::new(0);
    let t0 = Instant::now();
    let up = c.clone();
    rt_sched::go(move || skynet(up, 0, leaves));
    let sum = c.recv();
    let el = t0.elapsed().as_nanos() as f64;
    let want = leaves.wrapping_mul(leaves - 1) / 2;
    if sum != Some(want) {
        return bad(&format!("tree sum {sum:?}, expected {want}"));
    }
    report(el / nodes as f64, "ns")
}

/// One producer sends `0..n` over a channel of capacity `cap` to `workers`
/// goroutines, which send `2v + 1` on to the collector (the main goroutine)
/// over a second channel of the same capacity; ns per message.
fn fanout(n: u64, workers: u64, cap: u64) -> i32 {
    if workers == 0 || workers > 1024 || cap == 0 || cap > 1 << 20 {
        return bad("workers must be in 1..=1024 and cap in 1..=1048576");
    }
    let input = rt_sched::Chan::<u64>::new(cap as usize);
    let output = rt_sched::Chan::<u64>::new(cap as usize);
    let t0 = Instant::now();
    let tx = input.clone();
    rt_sched::go(move || {
        for i in 0..n {
            tx.send(i);
        }
        tx.close();
    });
    for _ in 0..workers {
        let (rx, tx) = (input.clone(), output.clone());
        rt_sched::go(move || {
            for v in &rx {
                tx.send(v.wrapping_mul(2).wrapping_add(1));
            }
        });
    }
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(output.recv().unwrap_or(0));
    }
    let el = t0.elapsed().as_nanos() as f64;
    if sum != n.wrapping_mul(n) {
        return bad(&format!("fanout sum {sum}, expected {}", n.wrapping_mul(n)));
    }
    report(el / n as f64, "ns")
}

/// Index of the `pct`th percentile in a sorted list of `n` samples (nearest
/// rank: the `ceil(pct·n/100)`-th smallest), as the Go program computes it.
fn rank_index(n: usize, pct: usize) -> usize {
    (pct * n).div_ceil(100).saturating_sub(1)
}

/// One goroutine per P spins in [`rt_tests::spin`] (arithmetic and an
/// atomic load, no runtime call) while the main goroutine sleeps 1 ms
/// `ticks` times with `rt_sched::sleep`; a tick's lateness is the time it
/// woke minus the time it was due (monotonic clock). Prints the p50 and the
/// p99 lateness in ns, one tagged line each.
fn preempt(ticks: u64) -> i32 {
    if ticks == 0 || ticks > 1_000_000 {
        return bad("preempt n must be in 1..=1000000");
    }
    let (stop, hogs) = rt_tests::spawn_hogs(rt_sched::gomaxprocs().max(1) as u64);
    let tick = Duration::from_millis(1);
    let mut late: Vec<u128> = Vec::with_capacity(ticks as usize);
    for _ in 0..ticks {
        let due = Instant::now() + tick;
        rt_sched::sleep(tick);
        late.push(Instant::now().saturating_duration_since(due).as_nanos());
    }
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        let _ = h.join();
    }
    late.sort_unstable();
    for pct in [50, 99] {
        let ns = late[rank_index(late.len(), pct)] as f64;
        println!("value={ns:.2} unit=ns stat=p{pct}");
    }
    0
}

/// Prints a `value=none` line and ends the process at once with status 2:
/// for a failure inside a goroutine whose partner would otherwise wait for
/// it forever.
fn die(reason: &str) -> ! {
    println!("value=none reason={reason}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    rt_sys::exit_now(2)
}

/// Writes byte `b` to `fd` (plain `write(2)`, retried on `EINTR`).
fn send_byte(fd: RawFd, b: u8) {
    if !rt_tests::write_all(fd, &[b]) {
        die(&format!("pipe write: errno {}", rt_tests::errno()));
    }
}

/// Reads one byte from `fd` (plain `read(2)`, retried on `EINTR`) and
/// checks that it is `want`.
fn expect_byte(fd: RawFd, want: u8) {
    let mut b = [0u8; 1];
    match rt_tests::read_retry(fd, &mut b) {
        1 if b[0] == want => {}
        1 => die(&format!("pipe read: byte {}, expected {want}", b[0])),
        0 => die("pipe read: end of file"),
        _ => die(&format!("pipe read: errno {}", rt_tests::errno())),
    }
}

/// A pipe with blocking ends, `pipe2(O_CLOEXEC)`: (read end, write end).
fn pipe() -> Result<(RawFd, RawFd), String> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2(2) writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: errno {}", rt_tests::errno()));
    }
    Ok((fds[0], fds[1]))
}

/// `count` pipes, or why one could not be made.
fn pipes(count: u64) -> Result<Vec<(RawFd, RawFd)>, String> {
    (0..count).map(|_| pipe()).collect()
}

/// Closes every descriptor of `pipes`.
fn close_pipes(pipes: &[(RawFd, RawFd)]) {
    for &(rd, wr) in pipes {
        for fd in [rd, wr] {
            // SAFETY: `fd` was opened by `pipe`, every goroutine that used
            // it is done, and it is closed once.
            unsafe { libc::close(fd) };
        }
    }
}

/// `readers` goroutines each block in a plain `read(2)` (no
/// `rt_sched::blocking`) on the read end of its own empty pipe, so each
/// holds its P in the kernel until the runtime takes the P back. Once all
/// have started, the main goroutine and an echo goroutine make `n` round
/// trips over two unbuffered channels. Then one byte goes into each pipe and
/// the readers are joined. Checks every echoed value, the echo's round-trip
/// count and every reader's byte; prints the ping-pong's ns per round trip.
fn blockcall(n: u64, readers: u64) -> i32 {
    if n == 0 || readers == 0 || readers > 1024 {
        return bad("blockcall needs n >= 1 and readers in 1..=1024");
    }
    let pipes = match pipes(readers) {
        Ok(p) => p,
        Err(e) => return bad(&e),
    };
    let started = Arc::new(AtomicU64::new(0));
    let reading: Vec<_> = pipes
        .iter()
        .enumerate()
        .map(|(i, &(rd, _))| {
            let started = started.clone();
            rt_sched::spawn(move || {
                started.fetch_add(1, Ordering::Release);
                expect_byte(rd, i as u8);
            })
        })
        .collect();
    while started.load(Ordering::Acquire) < readers {
        rt_sched::gosched();
    }
    let ping = rt_sched::Chan::<u64>::new(0);
    let pong = rt_sched::Chan::<u64>::new(0);
    let (pi, po) = (ping.clone(), pong.clone());
    let echo = rt_sched::spawn(move || {
        let mut trips = 0u64;
        while let Some(v) = pi.recv() {
            po.send(v + 1);
            trips += 1;
        }
        trips
    });
    let t0 = Instant::now();
    for i in 0..n {
        ping.send(i);
        let got = pong.recv();
        if got != Some(i + 1) {
            return bad(&format!("blockcall: echo sent {got:?}, expected {}", i + 1));
        }
    }
    let el = t0.elapsed().as_nanos() as f64;
    ping.close();
    match echo.join() {
        Ok(trips) if trips == n => {}
        Ok(trips) => return bad(&format!("blockcall: {trips} round trips, expected {n}")),
        Err(_) => return bad("blockcall: the echo goroutine panicked"),
    }
    for (i, &(_, wr)) in pipes.iter().enumerate() {
        send_byte(wr, i as u8);
    }
    if reading.into_iter().any(|h| h.join().is_err()) {
        return bad("blockcall: a reader panicked");
    }
    close_pipes(&pipes);
    report(el / n as f64, "ns")
}

/// `pairs` pairs of goroutines; in each, one writes a byte into its ping
/// pipe and reads it back from its pong pipe `n` times while its partner
/// reads each byte from ping and writes it to pong. Plain blocking
/// `read(2)`/`write(2)` without `rt_sched::blocking`: a goroutine blocked in
/// the kernel holds its P until the runtime takes the P from it. Every byte
/// is checked; prints wall time over the `pairs·n` round trips, in ns.
fn blockpipe(n: u64, pairs: u64) -> i32 {
    if n == 0 || pairs == 0 || pairs > 1024 {
        return bad("blockpipe needs n >= 1 and pairs in 1..=1024");
    }
    let (pings, pongs) = match (pipes(pairs), pipes(pairs)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad(&e),
    };
    let wg = rt_sched::WaitGroup::new();
    wg.add(2 * pairs as i64);
    let t0 = Instant::now();
    for (&(ping_rd, ping_wr), &(pong_rd, pong_wr)) in pings.iter().zip(&pongs) {
        // The first side writes each byte to ping and reads it back from
        // pong; its partner reads it from ping and writes it to pong.
        for (first, rd, wr) in [(true, pong_rd, ping_wr), (false, ping_rd, pong_wr)] {
            let w = wg.clone();
            rt_sched::go(move || {
                for i in 0..n {
                    if first {
                        send_byte(wr, i as u8);
                    }
                    expect_byte(rd, i as u8);
                    if !first {
                        send_byte(wr, i as u8);
                    }
                }
                w.done();
            });
        }
    }
    wg.wait();
    let el = t0.elapsed().as_nanos() as f64;
    close_pipes(&pings);
    close_pipes(&pongs);
    report(el / (n * pairs) as f64, "ns")
}

/// Serves on a free loopback port with `serve` (an example's server).
fn serve(serve: fn(&rt_net::TcpListener) -> std::io::Result<()>) -> i32 {
    let l = match rt_net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => return bad(&format!("bind: {e}")),
    };
    match l.local_addr() {
        Ok(a) => println!("listening={a}"),
        Err(e) => return bad(&format!("local_addr: {e}")),
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    match serve(&l) {
        Ok(()) => 0,
        Err(e) => bad(&format!("serve: {e}")),
    }
}

fn main() -> i32 {
    let args = rt_entry::args();
    let w = args.get(1).map(|a| a.as_bytes()).unwrap_or(b"");
    match w {
        b"boot" => {
            println!("hello, world");
            0
        }
        b"spawn" => spawn(arg("n", 1_000_000)),
        b"pingpong" => pingpong(arg("n", 1_000_000)),
        b"yield" => yield_(arg("n", 1_000_000)),
        b"switch" => switch(arg("n", 1_000_000)),
        b"parked" => parked(arg("n", 100_000)),
        b"tree" => tree(arg("n", 1_000_000)),
        b"fanout" => fanout(arg("n", 10_000_000), arg("workers", 4), arg("cap", 128)),
        b"preempt" => preempt(arg("n", 200)),
        b"blockcall" => blockcall(arg("n", 1_000_000), arg("readers", 8)),
        b"blockpipe" => blockpipe(arg("n", 100), arg("pairs", 4)),
        b"serve-echo" => serve(echo_server::serve),
        b"serve-http" => serve(http_server::serve),
        _ => {
            println!(
                "value=none reason=unknown workload {:?}",
                String::from_utf8_lossy(w)
            );
            2
        }
    }
}

rt_entry::main!(main);
