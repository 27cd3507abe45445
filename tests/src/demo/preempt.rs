//! Asynchronous preemption scenarios (`rt_sched::preempt`).
//!
//! * `hog`: a goroutine spins without ever entering the runtime while the
//!   main goroutine ticks 100 times, 1 ms apart. Every tick must come within
//!   30 ms of the previous one (the hog is preempted after 10 ms), and the
//!   hog must have stayed on its thread: the same `gettid()` and the same
//!   `thread_local!` address before and after.
//! * `hogidle`: first idles (main in a `blocking` sleep, every P on the
//!   idle list) until sysmon sleeps until woken, then runs `hog`: the P
//!   that leaves the idle list must wake sysmon, or nothing would preempt
//!   the hog and the ticker would stop for good at GOMAXPROCS=1.
//! * `stdoutlock`: a goroutine holds `std::io::stdout().lock()` and spins
//!   (preempted while holding a thread-affine lock) while others `println!`:
//!   no deadlock and no torn line.
//! * `stdmutex`: a goroutine spins holding a `std::sync::Mutex` while 4
//!   others find it locked and then lock it 1000 times each, blocking their
//!   threads in std's futex wait (no `rt_sched::blocking`): every increment
//!   counts, and nothing deadlocks.
//! * `blockcalls`: goroutines block their threads in `read(2)`,
//!   `std::thread::sleep`, `Condvar::wait_timeout` and `poll(2)` without
//!   `rt_sched::blocking`, while a ticker goroutine must make progress for
//!   the calls to be released.
//! * `setuid`: `setuid`/`setgid` (glibc signals every thread with
//!   SIGSETXID and waits for each) while hogs are suspended in their
//!   SIGURG handlers.
//! * `preemptstress`: allocation, content checks and channel traffic while
//!   two hogs spin, meant for `GODEBUG=preemptinterval=1000` (1 ms).
//! * `handoff`: a goroutine blocks in `read(2)` (no `blocking()`), gives up
//!   its P in the kernel while main ping-pongs on it, then runs 30 ms of
//!   CPU without a P (sysmon stops it after the interval until a P is
//!   free), then enters the runtime (a spawn, a join, its exit), all on
//!   one thread. Meant for `GODEBUG=schedtrace`, whose `handoffs=` and
//!   `preemptions=` counters show both steps.
//! * `blockchan`: pairs of goroutines pass bytes over blocking pipes with
//!   plain `read(2)`/`write(2)`, and each reader forwards every byte over an
//!   unbuffered channel to a collector: goroutines that gave up their P in
//!   the kernel park on a channel (its lock held) without one, over and
//!   over. Every byte arrives, in order per pair.
//!
//! Like Go programs under asynchronous preemption, code that calls raw libc
//! must retry on `EINTR`: the preemption signal may interrupt a slow system
//! call the kernel does not restart (`poll`, `nanosleep`). std's wrappers
//! (`thread::sleep`, futex waits) already do; `blockcalls` shows the loops
//! for `read` and `poll`.

use std::cell::Cell;
use std::io::Write;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

use super::torture::Rng;
use rt_tests::{errno, read_retry, spawn_hogs, spin, write_all};

std::thread_local! {
    static MARK: Cell<u64> = const { Cell::new(0) };
}

fn tls_addr() -> usize {
    MARK.with(|m| m as *const Cell<u64> as usize)
}

pub fn hog() -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let (s2, st2) = (stop.clone(), started.clone());
    let h = rt_sched::spawn(move || {
        let (tid0, tls0) = (rt_sys::gettid(), tls_addr());
        st2.store(true, Ordering::Release);
        std::hint::black_box(spin(&s2));
        (tid0 == rt_sys::gettid(), tls0 == tls_addr())
    });
    while !started.load(Ordering::Acquire) {
        rt_sched::sleep(Duration::from_millis(1));
    }
    let mut max_gap = Duration::ZERO;
    let mut last = Instant::now();
    for _ in 0..100 {
        rt_sched::sleep(Duration::from_millis(1));
        let now = Instant::now();
        max_gap = max_gap.max(now - last);
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let (same_tid, same_tls) = h.join().unwrap_or((false, false));
    let ok = max_gap < Duration::from_millis(30) && same_tid && same_tls;
    println!(
        "hog {} ticks=100 gap<30ms={} same_tid={same_tid} same_tls={same_tls}",
        if ok { "ok" } else { "FAILED" },
        max_gap < Duration::from_millis(30)
    );
    if !ok {
        eprintln!("hog: longest gap {max_gap:?}");
    }
    i32::from(!ok)
}

pub fn hogidle() -> i32 {
    let before = rt_sched::boot::sysmon_deep_sleeps();
    let t0 = Instant::now();
    while rt_sched::boot::sysmon_deep_sleeps() == before {
        if t0.elapsed() > Duration::from_secs(20) {
            println!("hogidle FAILED: sysmon did not sleep in 20 s of idling");
            return 1;
        }
        // The P goes back to the idle list while main sleeps in the call.
        rt_sched::blocking(|| std::thread::sleep(Duration::from_millis(100)));
    }
    println!("sysmon slept");
    hog()
}

pub fn stdoutlock() -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let locked = Arc::new(AtomicBool::new(false));
    let (s2, l2) = (stop.clone(), locked.clone());
    let holder = rt_sched::spawn(move || {
        let out = std::io::stdout();
        let mut l = out.lock();
        let _ = writeln!(l, "holder has the lock");
        l2.store(true, Ordering::Release);
        // Spin while holding it, long enough to be preempted several times.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(60) {
            std::hint::black_box(spin_for(&s2, 10_000));
        }
        let _ = writeln!(l, "holder lets go");
    });
    while !locked.load(Ordering::Acquire) {
        rt_sched::gosched();
    }
    let lines = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();
    for i in 0..4 {
        let lines = lines.clone();
        hs.push(rt_sched::spawn(move || {
            for j in 0..5 {
                println!("printer {i} line {j} {}", "x".repeat(40));
                lines.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let _ = holder.join();
    for h in hs {
        let _ = h.join();
    }
    stop.store(true, Ordering::Relaxed);
    println!("stdoutlock ok lines={}", lines.load(Ordering::Relaxed));
    0
}

/// Spins `n` rounds (or until `stop`).
#[inline(never)]
fn spin_for(stop: &AtomicBool, n: u64) -> u64 {
    let mut x = 0u64;
    for _ in 0..n {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        x = std::hint::black_box(x.wrapping_add(1));
    }
    x
}

/// Goroutines that contend on the mutex in `stdmutex`, and how many times
/// each locks it.
const MUTEX_WAITERS: u64 = 4;
const MUTEX_ROUNDS: u64 = 1000;

/// A goroutine holds a `std::sync::Mutex` and spins, for at least 60 ms and
/// until every other goroutine has found the mutex locked; at GOMAXPROCS=1
/// they only get to run because it is preempted while holding it, and a
/// waiter blocked in std's futex wait holds its P until it is preempted
/// too. Prints the final count and how many waiters found it locked.
pub fn stdmutex() -> i32 {
    let m = Arc::new(std::sync::Mutex::new(0u64));
    let locked = Arc::new(AtomicBool::new(false));
    let tried = Arc::new(AtomicU64::new(0));
    let (m2, l2, t2) = (m.clone(), locked.clone(), tried.clone());
    let holder = rt_sched::spawn(move || {
        let never = AtomicBool::new(false);
        let mut g = m2.lock().unwrap_or_else(|e| e.into_inner());
        l2.store(true, Ordering::Release);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(60) || t2.load(Ordering::Acquire) < MUTEX_WAITERS
        {
            std::hint::black_box(spin_for(&never, 10_000));
        }
        *g += 1;
    });
    while !locked.load(Ordering::Acquire) {
        rt_sched::gosched();
    }
    let waiters: Vec<_> = (0..MUTEX_WAITERS)
        .map(|_| {
            let (m, tried) = (m.clone(), tried.clone());
            rt_sched::spawn(move || {
                let busy = matches!(m.try_lock(), Err(std::sync::TryLockError::WouldBlock));
                tried.fetch_add(1, Ordering::Release);
                for _ in 0..MUTEX_ROUNDS {
                    *m.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                }
                busy
            })
        })
        .collect();
    let mut contended = 0;
    for h in waiters {
        contended += u64::from(h.join().unwrap_or(false));
    }
    let _ = holder.join();
    let count = *m.lock().unwrap_or_else(|e| e.into_inner());
    let ok = count == 1 + MUTEX_WAITERS * MUTEX_ROUNDS && contended == MUTEX_WAITERS;
    println!(
        "stdmutex {} count={count} contended={contended}",
        if ok { "ok" } else { "FAILED" }
    );
    i32::from(!ok)
}

/// A pipe: (read end, write end).
fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    let r = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(r, 0, "pipe: errno {}", errno());
    (fds[0], fds[1])
}

fn close(fd: RawFd) {
    // SAFETY: `fd` is a descriptor this scenario opened and closes once.
    unsafe { libc::close(fd) };
}

/// `poll(2)` for input on `fd` for up to `timeout`: on `EINTR` it polls
/// again for what is left of the timeout (rounded up to a millisecond, so
/// it never ends early). Returns poll's result and the revents.
fn poll_retry(fd: RawFd, timeout: Duration) -> (i32, i16) {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, as the count says.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r >= 0 || errno() != libc::EINTR {
            return (r, p.revents);
        }
    }
}

/// The bytes `blockcalls` writes into pipe `i`.
fn pipe_data(i: usize) -> Vec<u8> {
    (0..5000 + i * 777)
        .map(|k| (k * 7 + i * 31) as u8)
        .collect()
}

/// Pipes read by `blockcalls`, and the ticker rounds that must pass before
/// anything is written to them.
const BLOCK_PIPES: usize = 3;
const BLOCK_TICKS: u64 = 10;

/// Goroutines block their threads without `rt_sched::blocking`, each
/// holding its P until it is preempted: `read(2)` on empty pipes, `poll(2)`
/// on an empty pipe with a long timeout, `Condvar::wait_timeout_while`
/// with nobody notifying yet, and short timed waits (`thread::sleep`,
/// `wait_timeout`, `poll` on a pipe nobody writes). A ticker goroutine
/// (timer sleeps and a channel round trip) must finish its rounds before a
/// writer fills the pipes and notifies the condition variable, so the
/// scenario only ends if the blocked goroutines are preempted and the rest
/// of the program runs meanwhile. Checks every result: the bytes read are
/// the bytes written, each timed wait lasted at least its timeout and
/// reported a timeout, the long waits ended by their event.
pub fn blockcalls() -> i32 {
    let pipes: Vec<(RawFd, RawFd)> = (0..BLOCK_PIPES).map(|_| pipe()).collect();
    let (poll_rd, poll_wr) = pipe();
    let (idle_rd, idle_wr) = pipe();
    let cv = Arc::new((std::sync::Mutex::new(false), Condvar::new()));
    let quiet = Arc::new((std::sync::Mutex::new(()), Condvar::new()));
    let mut fails: Vec<String> = Vec::new();

    let readers: Vec<_> = pipes
        .iter()
        .enumerate()
        .map(|(i, &(rd, _))| {
            rt_sched::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = read_retry(rd, &mut buf);
                    if n <= 0 {
                        break (n, got == pipe_data(i), got.len());
                    }
                    got.extend_from_slice(&buf[..n as usize]);
                }
            })
        })
        .collect();
    let poller = rt_sched::spawn(move || {
        let (r, revents) = poll_retry(poll_rd, Duration::from_secs(60));
        let mut b = [0u8; 1];
        let n = read_retry(poll_rd, &mut b);
        (r, revents & libc::POLLIN != 0, n == 1 && b[0] == b'p')
    });
    let cv2 = cv.clone();
    let notified = rt_sched::spawn(move || {
        let (m, c) = &*cv2;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let (g, res) = c
            .wait_timeout_while(g, Duration::from_secs(60), |ready| !*ready)
            .unwrap_or_else(|e| e.into_inner());
        (*g, res.timed_out())
    });
    let sleeper = rt_sched::spawn(|| {
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        t0.elapsed() >= Duration::from_millis(50)
    });
    let q2 = quiet.clone();
    let timed = rt_sched::spawn(move || {
        let (m, c) = &*q2;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let t0 = Instant::now();
        let (_g, res) = c
            .wait_timeout(g, Duration::from_millis(30))
            .unwrap_or_else(|e| e.into_inner());
        (res.timed_out(), t0.elapsed() >= Duration::from_millis(30))
    });
    let idle = rt_sched::spawn(move || {
        let t0 = Instant::now();
        let (r, _) = poll_retry(idle_rd, Duration::from_millis(40));
        (r, t0.elapsed() >= Duration::from_millis(40))
    });

    // The ticker and its partner, then the writer it releases.
    let ping = rt_sched::Chan::<u64>::new(0);
    let pong = rt_sched::Chan::<u64>::new(0);
    let (pi, po) = (ping.clone(), pong.clone());
    let echo = rt_sched::spawn(move || {
        let mut n = 0;
        while let Some(v) = pi.recv() {
            po.send(v + 1);
            n += 1;
        }
        n
    });
    let ticked = rt_sched::Chan::<u64>::new(1);
    let t2 = ticked.clone();
    let ticker = rt_sched::spawn(move || {
        let mut sum = 0;
        for i in 0..BLOCK_TICKS {
            rt_sched::sleep(Duration::from_millis(1));
            ping.send(i);
            sum += pong.recv().unwrap_or(0);
        }
        ping.close();
        t2.send(sum);
    });
    let wpipes = pipes.clone();
    let cv3 = cv.clone();
    let writer = rt_sched::spawn(move || {
        let sum = ticked.recv().unwrap_or(0);
        let mut ok = true;
        for (i, &(_, wr)) in wpipes.iter().enumerate() {
            ok &= write_all(wr, &pipe_data(i));
            close(wr);
        }
        ok &= write_all(poll_wr, b"p");
        let (m, c) = &*cv3;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        c.notify_all();
        (ok, sum)
    });

    let mut bytes = 0;
    for (i, h) in readers.into_iter().enumerate() {
        match h.join() {
            Ok((0, true, n)) => bytes += n,
            r => fails.push(format!("pipe {i}: {r:?}")),
        }
    }
    let (poll_r, readable, poll_byte) = poller.join().unwrap_or((-1, false, false));
    if (poll_r, readable, poll_byte) != (1, true, true) {
        fails.push(format!(
            "poll: {poll_r} readable={readable} byte={poll_byte}"
        ));
    }
    match notified.join() {
        Ok((true, false)) => {}
        r => fails.push(format!("wait_timeout_while (ready, timed out): {r:?}")),
    }
    if !sleeper.join().unwrap_or(false) {
        fails.push("thread::sleep ended early".into());
    }
    match timed.join() {
        Ok((true, true)) => {}
        r => fails.push(format!("wait_timeout (timed out, lasted): {r:?}")),
    }
    match idle.join() {
        Ok((0, true)) => {}
        r => fails.push(format!("poll with nothing to read (result, lasted): {r:?}")),
    }
    let _ = ticker.join();
    let rounds = echo.join().unwrap_or(0);
    let (wrote, sum) = writer.join().unwrap_or((false, 0));
    if !wrote || rounds != BLOCK_TICKS || sum != (1..=BLOCK_TICKS).sum::<u64>() {
        fails.push(format!("ticker: wrote={wrote} rounds={rounds} sum={sum}"));
    }
    for (rd, _) in pipes {
        close(rd);
    }
    for fd in [poll_rd, poll_wr, idle_rd, idle_wr] {
        close(fd);
    }
    for f in &fails {
        eprintln!("blockcalls: {f}");
    }
    println!(
        "blockcalls {} pipes={BLOCK_PIPES} bytes={bytes} ticks={rounds}",
        if fails.is_empty() { "ok" } else { "FAILED" }
    );
    i32::from(!fails.is_empty())
}

/// How many `setuid` and `setgid` calls `setuid` makes.
const SETXID_CALLS: u64 = 20;

/// One hog per P spins; the main goroutine runs only while one of them is
/// suspended in its SIGURG handler, and then calls `setuid(getuid())` and
/// `setgid(getgid())`. glibc makes every thread repeat the call from its
/// SIGSETXID handler and waits until all have, so a thread waiting in the
/// SIGURG handler must let that signal through.
pub fn setuid() -> i32 {
    let hogs = rt_sched::gomaxprocs().max(1) as u64;
    let (stop, hs) = spawn_hogs(hogs);
    let mut failed = 0;
    for _ in 0..SETXID_CALLS {
        // SAFETY: plain system call wrappers; setting the IDs the process
        // already has changes nothing but makes glibc visit every thread.
        let r = unsafe { (libc::setuid(libc::getuid()), libc::setgid(libc::getgid())) };
        if r != (0, 0) {
            eprintln!("setuid/setgid: {r:?}, errno {}", errno());
            failed += 1;
        }
        rt_sched::gosched();
    }
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        let _ = h.join();
    }
    println!(
        "setuid {} calls={SETXID_CALLS} hogs={hogs}",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    i32::from(failed != 0)
}

/// GOMAXPROCS changes `hogresize` makes while hogs spin.
const RESIZES: u32 = 12;

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: an out-pointer to a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn gettid() -> i64 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

pub fn handoff() -> i32 {
    let (rd, wr) = pipe();
    let reader = rt_sched::spawn(move || {
        let tid = gettid();
        let tls = tls_addr();
        let mut b = [0u8; 1];
        let n = read_retry(rd, &mut b);
        // No P since the read blocked: spin on the thread's own CPU time,
        // with no runtime call until it is used up.
        let t0 = thread_cpu();
        let mut x = 0u64;
        while thread_cpu() - t0 < Duration::from_millis(30) {
            // Mostly user time: the clock read is a system call.
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        // Through the hand-off and the wait for a P, one thread; the join
        // below parks, after which the goroutine may run on any.
        let same = tid == gettid() && tls == tls_addr();
        let child = rt_sched::spawn(|| 7u32).join().unwrap_or(0);
        (n == 1 && b[0] == b'h', child, same)
    });
    // The reader's P is needed here while it waits in read(2).
    let ping = rt_sched::Chan::<u64>::new(0);
    let pong = rt_sched::Chan::<u64>::new(0);
    let (pi, po) = (ping.clone(), pong.clone());
    let echo = rt_sched::spawn(move || {
        while let Some(v) = pi.recv() {
            po.send(v + 1);
        }
    });
    rt_sched::sleep(Duration::from_millis(20));
    let mut sum = 0;
    for i in 0..1000 {
        ping.send(i);
        sum += pong.recv().unwrap_or(0);
    }
    ping.close();
    let _ = echo.join();
    rt_sched::sleep(Duration::from_millis(20));
    let wrote = write_all(wr, b"h");
    let (read, child, same) = reader.join().unwrap_or((false, 0, false));
    close(rd);
    close(wr);
    // One more trace line after everything above.
    rt_sched::sleep(Duration::from_millis(30));
    println!(
        "handoff ok read={read} wrote={wrote} pingpong={} child={child} same_thread={same}",
        sum == 1000 * 1001 / 2
    );
    0
}

/// Pairs and bytes per pair in `blockchan`.
const BLOCKCHAN_PAIRS: usize = 4;

pub fn blockchan(n: u64) -> i32 {
    let out = rt_sched::Chan::<(usize, u8)>::new(0);
    let mut fds = Vec::new();
    let mut hs = Vec::new();
    for pair in 0..BLOCKCHAN_PAIRS {
        let (rd, wr) = pipe();
        fds.push((rd, wr));
        hs.push(rt_sched::spawn(move || {
            let mut ok = true;
            for i in 0..n {
                ok &= write_all(wr, &[(i % 251) as u8]);
            }
            ok
        }));
        let o = out.clone();
        rt_sched::go(move || {
            let mut b = [0u8; 1];
            for _ in 0..n {
                if read_retry(rd, &mut b) != 1 {
                    b[0] = 255;
                }
                o.send((pair, b[0]));
            }
        });
    }
    let mut next = [0u64; BLOCKCHAN_PAIRS];
    let mut bad = 0u64;
    for _ in 0..n * BLOCKCHAN_PAIRS as u64 {
        let Some((pair, b)) = out.recv() else { break };
        if b != (next[pair] % 251) as u8 {
            bad += 1;
        }
        next[pair] += 1;
    }
    let wrote = hs.into_iter().all(|h| h.join().unwrap_or(false));
    for (rd, wr) in fds {
        close(rd);
        close(wr);
    }
    let got: u64 = next.iter().sum();
    println!(
        "blockchan {} pairs={BLOCKCHAN_PAIRS} bytes={got} wrote={wrote}",
        if bad == 0 && wrote && got == n * BLOCKCHAN_PAIRS as u64 {
            "ok"
        } else {
            "FAILED"
        }
    );
    i32::from(bad != 0 || !wrote)
}

/// `hogresize`: one goroutine per P spins without entering the runtime
/// while the main goroutine changes GOMAXPROCS back and forth. Each change
/// stops the world, which only completes once every hog's P reaches the
/// stopper through a preemption; then the world restarts and the hogs go
/// on. Prints the changes made and the value restored.
pub fn hogresize() -> i32 {
    let orig = rt_sched::gomaxprocs().max(1);
    let (stop, hs) = spawn_hogs(orig as u64);
    let mut wrong = 0;
    for i in 0..RESIZES {
        let want = 1 + (i % 3) as i32;
        rt_sched::set_gomaxprocs(want);
        if rt_sched::gomaxprocs() != want {
            wrong += 1;
        }
    }
    rt_sched::set_gomaxprocs(orig);
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        let _ = h.join();
    }
    let ok = wrong == 0 && rt_sched::gomaxprocs() == orig;
    println!(
        "hogresize {} changes={RESIZES} gomaxprocs={}",
        if ok { "ok" } else { "FAILED" },
        rt_sched::gomaxprocs()
    );
    i32::from(!ok)
}

/// One allocation of `preemptstress`, filled with a pattern from its tag.
enum Item {
    Bytes(u64, Vec<u8>),
    Boxed(u64, Box<[u64; 16]>),
    Text(u64, String),
}

/// Byte `i` of the pattern for `tag`.
fn pat(tag: u64, i: usize) -> u8 {
    (tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8 ^ (i as u8).wrapping_mul(7)
}

impl Item {
    /// A new item of one of the three kinds, `size` bytes where that applies.
    fn new(tag: u64, kind: usize, size: usize) -> Item {
        match kind {
            0 => Item::Bytes(tag, (0..size).map(|i| pat(tag, i)).collect()),
            1 => Item::Boxed(
                tag,
                Box::new(std::array::from_fn(|i| tag.wrapping_mul(i as u64 + 1))),
            ),
            _ => Item::Text(
                tag,
                (0..size)
                    .map(|i| char::from(b'a' + pat(tag, i) % 26))
                    .collect(),
            ),
        }
    }

    /// True when the contents are still the pattern they were made with.
    fn intact(&self) -> bool {
        match self {
            Item::Bytes(tag, v) => v.iter().enumerate().all(|(i, &b)| b == pat(*tag, i)),
            Item::Boxed(tag, b) => b
                .iter()
                .enumerate()
                .all(|(i, &x)| x == tag.wrapping_mul(i as u64 + 1)),
            Item::Text(tag, s) => s
                .bytes()
                .enumerate()
                .all(|(i, b)| b == b'a' + pat(*tag, i) % 26),
        }
    }
}

/// Workers of `preemptstress`, and how often each sends an item away.
const STRESS_WORKERS: u64 = 8;
const STRESS_SEND_EVERY: u64 = 8;

/// `STRESS_WORKERS` goroutines each make `rounds` allocations (Vec, Box
/// or String, sizes drawn from a generator seeded by the worker), keep up
/// to 32 alive, and free them in random order after checking their
/// pattern; every `STRESS_SEND_EVERY`th goes over a channel to one of two
/// consumers, which check and free it on their own thread. Two hogs spin
/// throughout. Prints the totals; any damaged item fails the run.
pub fn preemptstress(rounds: u64) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            rt_sched::spawn(move || spin(&stop))
        })
        .collect();
    let ch = rt_sched::Chan::<Item>::new(16);
    let checked = Arc::new(AtomicU64::new(0));
    let damaged = Arc::new(AtomicU64::new(0));
    let check = {
        let (checked, damaged) = (checked.clone(), damaged.clone());
        move |it: Item| {
            let c = if it.intact() { &checked } else { &damaged };
            c.fetch_add(1, Ordering::Relaxed);
        }
    };
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let (ch, check) = (ch.clone(), check.clone());
            rt_sched::spawn(move || {
                let mut n = 0u64;
                while let Some(it) = ch.recv() {
                    check(it);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let wg = rt_sched::WaitGroup::new();
    let sent = Arc::new(AtomicU64::new(0));
    for w in 0..STRESS_WORKERS {
        wg.add(1);
        let (wg, ch, check, sent) = (wg.clone(), ch.clone(), check.clone(), sent.clone());
        rt_sched::go(move || {
            let mut rng = Rng::new(w);
            let mut live: Vec<Item> = Vec::new();
            for r in 0..rounds {
                let size = if rng.below(32) == 0 {
                    rng.range(4096, 64 << 10)
                } else {
                    rng.range(1, 2048)
                };
                let it = Item::new(w << 32 | r, rng.below(3), size);
                if r % STRESS_SEND_EVERY == 0 {
                    ch.send(it);
                    sent.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                live.push(it);
                while live.len() > 32 || (!live.is_empty() && rng.below(3) == 0) {
                    let i = rng.below(live.len());
                    check(live.swap_remove(i));
                }
            }
            for it in live {
                check(it);
            }
            wg.done();
        });
    }
    wg.wait();
    ch.close();
    let received: u64 = consumers.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        let _ = h.join();
    }
    let (checked, damaged) = (
        checked.load(Ordering::Relaxed),
        damaged.load(Ordering::Relaxed),
    );
    let sent = sent.load(Ordering::Relaxed);
    let allocs = STRESS_WORKERS * rounds;
    let ok = damaged == 0 && checked == allocs && received == sent;
    println!(
        "preemptstress {} allocs={allocs} checked={checked} sent={sent} received={received}",
        if ok { "ok" } else { "FAILED" }
    );
    if damaged != 0 {
        eprintln!("preemptstress: {damaged} damaged allocations");
    }
    i32::from(!ok)
}
