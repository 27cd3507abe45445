//! Go's channel, select and scheduler tests, rewritten for rt.
//!
//! `rt-demo gochan list` prints the test names, one a line;
//! `rt-demo gochan NAME` runs one and prints `gochan NAME ok`. A failed check
//! panics (on goroutine 1 or on another goroutine: either way the process
//! ends with `panic: …` and status 2), so a run that prints the `ok` line
//! and exits 0 passed every check.
//!
//! The tests are new code written against rt's API; each one's doc comment
//! names the Go test it stands for (`test/chan/NAME.go` in the Go tree, or
//! `TestName` in `src/runtime/chan_test.go` / `proc_test.go`). Names are the
//! Go file's stem or the Go test's name in snake case. Every test checks what
//! it computed (values, order, counts, sums), not merely that it ended. Each
//! is sized to take from a few to a few hundred milliseconds in a release
//! build, because `cargo xtask stress chan` runs each of them many times.
//!
//! Go idioms with no rt counterpart are translated: a `nil` channel in a
//! `select` (a case that can never fire) is a case left out of the
//! [`Select`]; `default:` is [`Select::try_select`]; `v, ok := <-c` is
//! `recv() -> Option<T>`. Fairness tests become count-based checks with
//! bounds that a correct runtime cannot miss (each bound is explained where
//! it is checked); nothing asserts how long anything took. Tests that need a
//! particular `GOMAXPROCS` set it with [`rt_sched::set_gomaxprocs`] and put
//! the old value back.
//!
//! A plain thread (the watchdog) aborts a test still running after 30 s
//! (`GOCHAN_WATCHDOG=SECS` to change, `0` for never), so a lost wake-up
//! ends with rt's `SIGABRT` goroutine dump instead of a silent hang.
//!
//! ## Left out, and why
//!
//! - `test/chan/perm.go`: a compile-error test of send-only and receive-only
//!   channel types; rt has no direction-restricted channel types, and
//!   nothing in it runs.
//! - the evaluation-order half of `test/chan/select5.go`: it checks the order
//!   in which Go evaluates the channel and value expressions of the cases;
//!   with rt those are ordinary Rust arguments to `Select::recv`/`send`,
//!   evaluated in source order by the language. The half that checks which
//!   case fires, and with what value, is `select5`.
//! - `sendstmt.go`'s `sendprec` half: operator precedence in Go's parser.
//! - `TestNoShrinkStackWhileParking`, `TestSelectStackAdjust`: rt stacks are
//!   never moved or shrunk and there is no stack scanner to race with; that a
//!   parked goroutine's data stays intact while others run is checked by
//!   `shrink_stack_during_blocked_send` and `select_duplicate_channel`.
//! - `TestPreemption`, `TestPreemptionGC`, `TestAsyncPreempt`,
//!   `TestPreemptSplitBig`, `TestPreemptionAfterSyscall`: rt does not preempt
//!   running goroutines (see rt-sched's sysmon), so goroutines that spin
//!   without a scheduling point are not expected to be interrupted.
//! - `TestGCFairness2`: about the garbage collector's scheduling priority;
//!   rt has no collector. (`TestGCFairness` is really about goroutines that
//!   make system calls in a loop, and is kept as `gc_fairness`.)
//! - `TestSchedLocalQueue`, `TestSchedLocalQueueSteal`,
//!   `TestSchedLocalQueueEmpty`, `TestStealOrder`, `TestGetgThreadSwitch`,
//!   `TestLockOSThreadNesting`'s counters: they call Go runtime internals
//!   exported only to Go's own tests; rt-sched's run queue and steal order
//!   have unit tests of their own. (`lock_os_thread_nesting` keeps what can
//!   be observed from outside: the goroutine stays on its thread.)
//! - `TestLockOSThreadExit`, `TestLockOSThreadAvoidsStatePropagation`,
//!   `TestLockOSThreadTemplateThreadRace`: Go terminates the thread of a
//!   goroutine that exits locked and checks that with `unshare` and
//!   subprocesses; rt gives the thread back to the scheduler instead
//!   (`yield_locked` checks that the runtime carries on after such an exit).
//! - `TestNetpollBreak` and the netpoller variant of
//!   `TestGoroutineParallelism2`: rt has no network poller.
//! - the second half of `TestNumGoroutine`: it compares the count with
//!   `runtime.Stack`'s dump, which rt does not offer as an API.
//! - `TestBigGOMAXPROCS`: it starts a process with `GOMAXPROCS=1024`, a boot
//!   property that does not fit a scenario run under a chosen GOMAXPROCS.
//! - `TestStopTheWorldDeadlock`'s `runtime.GC()` loop is replaced by a second
//!   goroutine resizing GOMAXPROCS (the other stop-the-world rt has).
//! - Go's benchmarks in the same files: they measure, they do not check.

use std::collections::{BinaryHeap, VecDeque};
use std::ffi::OsStr;
use std::fmt::Debug;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use rt_sched::{go, gosched, sleep, spawn, Chan, JoinHandle, Select, WaitGroup};
use rt_sched::{TryRecvError, TrySendError};

/// Every test, by name, in the order `list` prints them.
const TESTS: &[(&str, fn())] = &[
    // test/chan/*.go
    ("doubleselect", test_doubleselect),
    ("fifo", test_fifo),
    ("goroutines", test_goroutines),
    ("nonblock", test_nonblock),
    ("select", test_select),
    ("select2", test_select2),
    ("select3", test_select3),
    ("select4", test_select4),
    ("select5", test_select5),
    ("select6", test_select6),
    ("select7", test_select7),
    ("select8", test_select8),
    ("sendstmt", test_sendstmt),
    ("sieve1", test_sieve1),
    ("sieve2", test_sieve2),
    ("zerosize", test_zerosize),
    ("powser1", test_powser1),
    ("powser2", test_powser2),
    // src/runtime/chan_test.go
    ("chan", test_chan),
    ("nonblock_recv_race", test_nonblock_recv_race),
    ("nonblock_select_race", test_nonblock_select_race),
    ("nonblock_select_race2", test_nonblock_select_race2),
    ("self_select", test_self_select),
    ("select_stress", test_select_stress),
    ("select_fairness", test_select_fairness),
    ("chan_send_interface", test_chan_send_interface),
    ("pseudo_random_send", test_pseudo_random_send),
    ("multi_consumer", test_multi_consumer),
    (
        "shrink_stack_during_blocked_send",
        test_shrink_stack_during_blocked_send,
    ),
    ("select_duplicate_channel", test_select_duplicate_channel),
    ("select_nonblock_timer", test_select_nonblock_timer),
    // src/runtime/proc_test.go
    ("stop_the_world_deadlock", test_stop_the_world_deadlock),
    ("yield_progress", test_yield_progress),
    ("yield_locked_progress", test_yield_locked_progress),
    ("yield_locked", test_yield_locked),
    ("goroutine_parallelism", test_goroutine_parallelism),
    ("goroutine_parallelism2", test_goroutine_parallelism2),
    ("block_locked", test_block_locked),
    ("timer_fairness", test_timer_fairness),
    ("timer_fairness2", test_timer_fairness2),
    ("gc_fairness", test_gc_fairness),
    ("num_goroutine", test_num_goroutine),
    ("ping_pong_hog", test_ping_pong_hog),
    ("lock_os_thread_nesting", test_lock_os_thread_nesting),
];

/// Entry from `rt-demo gochan …`.
pub fn main(args: &[&OsStr]) -> i32 {
    let Some(arg) = args.first().and_then(|a| a.to_str()) else {
        eprintln!("usage: rt-demo gochan list|NAME");
        return 2;
    };
    if arg == "list" {
        for (name, _) in TESTS {
            println!("{name}");
        }
        return 0;
    }
    let Some(&(name, run)) = TESTS.iter().find(|(n, _)| *n == arg) else {
        eprintln!("gochan: no test named {arg:?} (`rt-demo gochan list` names them)");
        return 2;
    };
    start_watchdog(name);
    run();
    println!("gochan {name} ok");
    0
}

/// Aborts the process (rt prints its goroutine dump for SIGABRT) if the test
/// is still running after `GOCHAN_WATCHDOG` seconds (default 30, 0: never).
/// A plain thread, so that goroutines hogging every P cannot hold it up.
fn start_watchdog(name: &'static str) {
    let secs = rt_env::getenv(b"GOCHAN_WATCHDOG")
        .and_then(|v| v.to_str())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(30);
    if secs == 0 {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("gochan-watchdog".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            eprintln!("gochan {name}: still running after {secs} s: aborting");
            std::process::abort();
        });
    if let Err(e) = spawned {
        eprintln!("gochan: no watchdog thread: {e}");
    }
}

// ---------------------------------------------------------------------------
// helpers

/// Sets GOMAXPROCS for the life of the guard, then puts the old value back.
struct Procs(i32);

impl Procs {
    fn set(n: i32) -> Procs {
        Procs(rt_sched::set_gomaxprocs(n))
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        rt_sched::set_gomaxprocs(self.0);
    }
}

/// Joins `h`, turning a panic in the goroutine into one here that says so.
fn join<T: Send>(h: JoinHandle<T>, what: &str) -> T {
    match h.join() {
        Ok(v) => v,
        Err(p) => panic!(
            "{what}: goroutine panicked: {}",
            rt_sched::panic_message(&*p)
        ),
    }
}

/// Receives from a channel that must not be closed.
fn must_recv<T: Send>(c: &Chan<T>, what: &str) -> T {
    match c.recv() {
        Some(v) => v,
        None => panic!("{what}: channel closed unexpectedly"),
    }
}

/// Receives the value of `tok`, which must have fired with a value.
fn got<T: Send + 'static>(s: &mut Select<'_>, tok: rt_sched::RecvToken<T>, what: &str) -> T {
    match s.received(tok) {
        Some(v) => v,
        None => panic!("{what}: receive case fired on a closed channel"),
    }
}

/// Burns stack: `depth` frames of 1 KiB each, every one of them written.
fn stack_growth(depth: u32) -> u64 {
    let mut pad = [0u64; 128];
    pad[(depth as usize) % 128] = u64::from(depth);
    let pad = black_box(pad);
    if depth == 0 {
        pad.iter().sum()
    } else {
        stack_growth(depth - 1) + pad[(depth as usize) % 128]
    }
}

/// Primes below `n`, by trial division (the reference for the sieves).
fn primes_below(n: u64) -> Vec<u64> {
    (2..n)
        .filter(|&k| (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0))
        .collect()
}

/// A value that counts its drops, to check who owns values that a select
/// offered but did not send.
#[derive(Debug)]
struct Tracked {
    id: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

// ---------------------------------------------------------------------------
// test/chan

/// Go: test/chan/doubleselect.go. One goroutine offers each of N values on
/// four unbuffered channels at once with a select; four forwarders funnel
/// them into one channel. If two cases of one select could both fire, a
/// value would arrive twice. Checks every value arrives exactly once.
fn test_doubleselect() {
    let _procs = Procs::set(2);
    const N: usize = 20_000;
    let ins: Vec<Chan<usize>> = (0..4).map(|_| Chan::new(0)).collect();
    let merged = Chan::<usize>::new(0);
    let done = Chan::<()>::new(0);
    {
        let ins = ins.clone();
        go(move || {
            for i in 0..N {
                let mut s = Select::new();
                for c in &ins {
                    s.send(c, i);
                }
                s.select();
            }
            for c in &ins {
                c.close();
            }
        });
    }
    for c in &ins {
        let (c, out, done) = (c.clone(), merged.clone(), done.clone());
        go(move || {
            for v in &c {
                out.send(v);
            }
            done.send(());
        });
    }
    {
        let (done, merged) = (done.clone(), merged.clone());
        go(move || {
            for _ in 0..4 {
                must_recv(&done, "doubleselect done");
            }
            merged.close();
        });
    }
    let mut seen = vec![false; N];
    let mut n = 0;
    for v in &merged {
        assert!(v < N, "doubleselect: value {v} was never sent");
        assert!(!seen[v], "doubleselect: got duplicate value {v}");
        seen[v] = true;
        n += 1;
    }
    assert_eq!(n, N, "doubleselect: values lost");
}

/// Go: test/chan/fifo.go. A buffered channel hands values out in the order
/// they went in; and N goroutines chained so that each receives only after
/// its predecessor did get 0, 1, …, N−1 from one unbuffered channel in turn.
fn test_fifo() {
    const N: i32 = 10;
    let ch = Chan::new(N as usize);
    for i in 0..N {
        ch.send(i);
    }
    for i in 0..N {
        assert_eq!(ch.recv(), Some(i), "fifo: buffered channel out of order");
    }

    let ch = Chan::<i32>::new(0);
    let start = Chan::<()>::new(0);
    let mut turn = start.clone();
    for i in 0..N {
        let next = Chan::<()>::new(0);
        let (ch, mine, next2) = (ch.clone(), turn, next.clone());
        go(move || {
            must_recv(&mine, "fifo turn");
            let v = ch.recv();
            assert_eq!(v, Some(i), "fifo: link {i} received out of order");
            next2.send(());
        });
        turn = next;
    }
    start.send(());
    for i in 0..N {
        ch.send(i);
    }
    must_recv(&turn, "fifo end of chain");
}

/// Go: test/chan/goroutines.go. A chain of 5 000 goroutines (Go's default
/// is 10 000; halved to keep one run short), each passing what it receives
/// on to its left neighbour (plus one, so the result says every link ran);
/// then every one of them must have exited.
fn test_goroutines() {
    const N: u64 = 5_000;
    let base = rt_sched::num_goroutine();
    let leftmost = Chan::<u64>::new(0);
    let mut left = leftmost.clone();
    for _ in 0..N {
        let right = Chan::<u64>::new(0);
        let (l, r) = (left, right.clone());
        go(move || {
            let v = must_recv(&r, "goroutines link");
            l.send(v + 1);
        });
        left = right;
    }
    go(move || left.send(1));
    assert_eq!(
        leftmost.recv(),
        Some(N + 1),
        "goroutines: the value did not pass every link"
    );
    // Torn down cleanly: every link exits right after its send.
    while rt_sched::num_goroutine() > base {
        sleep(Duration::from_micros(200));
    }
    assert_eq!(
        rt_sched::num_goroutine(),
        base,
        "goroutines: count went below the start"
    );
}

/// How `nonblock` attempts an operation without blocking.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    /// A one-case select with a default (`try_select`).
    Select,
    /// `try_send` / `try_recv`.
    Try,
}

fn try_put<T: Send + 'static>(c: &Chan<T>, v: T, via: Via) -> bool {
    match via {
        Via::Select => {
            let mut s = Select::new();
            s.send(c, v);
            s.try_select().is_some()
        }
        Via::Try => match c.try_send(v) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => false,
            Err(TrySendError::Closed(_)) => panic!("nonblock: channel closed"),
        },
    }
}

fn try_take<T: Send + 'static>(c: &Chan<T>, via: Via) -> Option<T> {
    match via {
        Via::Select => {
            let mut s = Select::new();
            let t = s.recv(c);
            s.try_select()?;
            Some(got(&mut s, t, "nonblock"))
        }
        Via::Try => match c.try_recv() {
            Ok(v) => Some(v),
            Err(TryRecvError::Closed) => panic!("nonblock: channel closed"),
            Err(TryRecvError::Empty) => None,
        },
    }
}

/// Retries `attempt`, yielding in between, until it succeeds; a peer that
/// is never ready after many tries fails the test rather than hanging it.
fn nonblock_poll(what: &str, mut attempt: impl FnMut() -> bool) {
    const MAX_TRIES: u32 = 10_000;
    for _ in 0..MAX_TRIES {
        if attempt() {
            return;
        }
        sleep(Duration::from_micros(10));
        gosched();
        gosched();
        gosched();
    }
    panic!("nonblock: {what} never became ready in {MAX_TRIES} tries");
}

fn nonblock_with<T>(buffer: usize, via: Via, to_them: T, from_them: T)
where
    T: Clone + PartialEq + Debug + Send + 'static,
{
    let what = format!("{} buffer={buffer} via={via:?}", std::any::type_name::<T>());
    let c = Chan::<T>::new(buffer);
    let strobe = Chan::<()>::new(0);
    assert!(
        try_take(&c, via).is_none(),
        "nonblock {what}: received from an empty channel"
    );

    // A receiver appears: a non-blocking send eventually goes through.
    {
        let (c, strobe, want) = (c.clone(), strobe.clone(), to_them.clone());
        let what = what.clone();
        go(move || {
            assert_eq!(
                c.recv(),
                Some(want),
                "nonblock {what}: receiver got the wrong value"
            );
            strobe.send(());
        });
    }
    nonblock_poll(&format!("receiver ({what})"), || {
        try_put(&c, to_them.clone(), via)
    });
    must_recv(&strobe, "nonblock strobe");

    // A sender appears: a non-blocking receive eventually gets its value.
    {
        let (c, strobe, v) = (c.clone(), strobe.clone(), from_them.clone());
        go(move || {
            c.send(v);
            strobe.send(());
        });
    }
    if buffer > 0 {
        must_recv(&strobe, "nonblock strobe");
    }
    let mut received = None;
    nonblock_poll(&format!("sender ({what})"), || {
        received = try_take(&c, via);
        received.is_some()
    });
    assert_eq!(
        received,
        Some(from_them),
        "nonblock {what}: wrong value received"
    );
    if buffer == 0 {
        must_recv(&strobe, "nonblock strobe");
    }
}

/// Go: test/chan/nonblock.go. Non-blocking sends and receives (both as a
/// one-case select with a default and as `try_send`/`try_recv`) on
/// unbuffered and one-slot channels of 32- and 64-bit integers, booleans and
/// strings: they never block, fail while the peer is absent, and go through
/// with the right value once a blocked peer is there.
fn test_nonblock() {
    for buffer in 0..2 {
        for via in [Via::Select, Via::Try] {
            nonblock_with::<i32>(buffer, via, 123, 234);
            nonblock_with::<i64>(buffer, via, 123_456, 234_567);
            nonblock_with::<bool>(buffer, via, true, true);
            nonblock_with::<String>(buffer, via, "hello".into(), "hello again".into());
        }
    }
}

/// Go: test/chan/select.go. Repeated non-blocking selects over two send
/// cases on one-slot channels: each case fires once (then is left out, as
/// Go sets the channel to nil), the default ends the loop, the two values
/// sent are distinct, and the value expressions were evaluated once per
/// select for each case present (4 in all here; Go counts 10 because it
/// also evaluates the values of nil-channel cases).
fn test_select() {
    struct Values {
        counter: u32,
        shift: u32,
    }
    impl Values {
        fn next(&mut self) -> u32 {
            self.counter += 1;
            1 << self.shift
        }
    }
    fn send_all(a: Option<&Chan<u32>>, b: Option<&Chan<u32>>, vals: &mut Values) -> u32 {
        let (mut a, mut b) = (a, b);
        let mut sent = 0;
        loop {
            let mut s = Select::new();
            let ia = a.map(|c| s.send(c, vals.next()));
            let ib = b.map(|c| s.send(c, vals.next()));
            match s.try_select() {
                None => return sent,
                Some(i) if Some(i) == ia => a = None,
                Some(i) if Some(i) == ib => b = None,
                Some(i) => panic!("select: case {i} does not exist"),
            }
            sent += 1;
            vals.shift += 1;
        }
    }
    let a = Chan::<u32>::new(1);
    let b = Chan::<u32>::new(1);
    let mut vals = Values {
        counter: 0,
        shift: 0,
    };
    assert_eq!(send_all(Some(&a), Some(&b), &mut vals), 2, "select: sends");
    let (av, bv) = (must_recv(&a, "select a"), must_recv(&b, "select b"));
    assert_eq!(av | bv, 3, "select: bad values {av} {bv}");
    assert_eq!(send_all(Some(&a), None, &mut vals), 1, "select: sends");
    assert_eq!(vals.counter, 4, "select: value expressions evaluated");
    assert_eq!(a.len(), 1, "select: a should hold the last value");
}

/// Go: test/chan/select2.go. 50 000 selects, twice, between a channel with
/// a sender and one that never fires: the second round must not grow the
/// heap (Go's bound: 110 000 bytes, though Go only printed a warning), and
/// every value comes from the right case.
fn test_select2() {
    const N: u64 = 50_000;
    let c = Chan::<u64>::new(0);
    let dummy = Chan::<u64>::new(0);
    let round = || {
        let tx = c.clone();
        let h = spawn(move || {
            for i in 0..N {
                tx.send(i);
            }
        });
        let mut sum = 0;
        for _ in 0..N {
            let mut s = Select::new();
            let tc = s.recv(&c);
            let _td = s.recv(&dummy);
            let i = s.select();
            assert_eq!(i, tc.index, "select2: the dummy case fired");
            sum += got(&mut s, tc, "select2");
        }
        join(h, "select2 sender");
        assert_eq!(sum, N * (N - 1) / 2, "select2: values lost or changed");
    };
    round();
    let before = rt_heap::memstats();
    round();
    let after = rt_heap::memstats();
    let grew = after.heap_alloc.saturating_sub(before.heap_alloc);
    assert!(
        grew <= 110_000,
        "select2: {N} selects left {grew} more heap bytes allocated ({} more objects)",
        after.heap_objects as i64 - before.heap_objects as i64
    );
}

/// Waits 10 ms and checks `f`, run on its own goroutine, has not finished.
/// (A correct runtime never finishes these, so the wait cannot cause a
/// false failure; the goroutine stays blocked for good.)
fn blocks(what: &str, f: impl FnOnce() + Send + 'static) {
    let finished = Arc::new(AtomicBool::new(false));
    let fin = finished.clone();
    go(move || {
        f();
        fin.store(true, SeqCst);
    });
    sleep(Duration::from_millis(10));
    assert!(!finished.load(SeqCst), "select3: {what} did not block");
}

/// Runs `f` on its own goroutine and waits for it, failing after 10 s.
fn does_not_block(what: &str, f: impl FnOnce() + Send + 'static) {
    let done = Chan::<()>::new(1);
    let d = done.clone();
    go(move || {
        f();
        d.send(());
    });
    let limit = rt_sched::after(Duration::from_secs(10));
    let mut s = Select::new();
    let td = s.recv(&done);
    let _tl = s.recv(&limit);
    assert_eq!(s.select(), td.index, "select3: {what} blocked for 10 s");
}

/// Runs `f`, which must panic with `want`.
fn panics_with(what: &str, want: &str, f: impl FnOnce()) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(()) => panic!("{what}: did not panic"),
        Err(p) => {
            let msg = rt_sched::panic_message(&*p);
            assert_eq!(msg, want, "{what}: wrong panic");
        }
    }
}

/// Go: test/chan/select3.go. Which channel operations and selects block,
/// which do not, and which panic: receives from empty channels, sends to
/// full ones, selects with no ready case, a select with no cases, and a
/// select offering to send to and receive from the same unbuffered channel
/// (it must not pair with itself) block; sends with room, receives from
/// closed channels (`None`, ten times), selects with a ready or closed case
/// or a default do not; sending to a closed channel panics, inside a select
/// too, and so does closing twice.
fn test_select3() {
    let closed = Chan::<i32>::new(0);
    closed.close();

    blocks("receive from an empty unbuffered channel", || {
        let c = Chan::<i32>::new(0);
        c.recv();
    });
    blocks("send to a full buffered channel", || {
        let c = Chan::<i32>::new(1);
        c.send(1);
        c.send(2);
    });
    blocks("select with no cases", || {
        Select::new().select();
    });
    blocks("select receiving from an empty channel", || {
        let c = Chan::<i32>::new(0);
        let mut s = Select::new();
        s.recv(&c);
        s.select();
    });
    blocks("select sending with no receiver", || {
        let c = Chan::<i32>::new(0);
        let mut s = Select::new();
        s.send(&c, 7);
        s.select();
    });
    blocks("select sending to and receiving from itself", || {
        let c = Chan::<i32>::new(0);
        let mut s = Select::new();
        s.send(&c, 1);
        s.recv(&c);
        s.select();
    });

    does_not_block("send with buffer room", || {
        let c = Chan::<i32>::new(1);
        c.send(7);
        assert_eq!(c.len(), 1);
    });
    {
        let closed = closed.clone();
        does_not_block("receive from a closed channel", move || {
            for _ in 0..10 {
                assert_eq!(closed.recv(), None, "select3: closed channel gave a value");
                assert_eq!(
                    closed.try_recv(),
                    Err(TryRecvError::Closed),
                    "select3: closed try_recv"
                );
            }
        });
    }
    does_not_block("select with only a default", || {
        assert_eq!(Select::new().try_select(), None, "select3: empty select");
    });
    does_not_block("select with a not-ready case and a default", || {
        let c = Chan::<i32>::new(0);
        let mut s = Select::new();
        s.recv(&c);
        s.send(&c, 7);
        assert_eq!(s.try_select(), None, "select3: nothing was ready");
    });
    does_not_block("select sending with room", || {
        let c = Chan::<i32>::new(1);
        let mut s = Select::new();
        let i = s.send(&c, 7);
        assert_eq!(s.select(), i);
        drop(s);
        assert_eq!(c.recv(), Some(7));
    });
    does_not_block("select receiving a buffered value", || {
        let c = Chan::<i32>::new(1);
        c.send(7);
        let mut s = Select::new();
        let t = s.recv(&c);
        assert_eq!(s.select(), t.index);
        assert_eq!(s.received(t), Some(7));
    });
    {
        let closed = closed.clone();
        does_not_block("select receiving from a closed channel", move || {
            let mut s = Select::new();
            let t = s.recv(&closed);
            assert_eq!(s.select(), t.index);
            assert_eq!(s.received(t), None, "select3: closed channel gave a value");
        });
    }

    panics_with("send to a closed channel", "send on closed channel", || {
        closed.send(7)
    });
    panics_with(
        "select sending to a closed channel",
        "send on closed channel",
        || {
            let mut s = Select::new();
            s.send(&closed, 7);
            s.select();
        },
    );
    panics_with(
        "close of a closed channel",
        "close of closed channel",
        || closed.close(),
    );
    assert_eq!(
        closed.try_send(8),
        Err(TrySendError::Closed(8)),
        "select3: try_send on a closed channel"
    );
}

/// Go: test/chan/select4.go. A select whose second case has a buffered value
/// ready (and whose first can never fire) proceeds with that value.
fn test_select4() {
    let c = Chan::<i32>::new(1);
    let c1 = Chan::<i32>::new(0);
    c.send(42);
    let mut s = Select::new();
    let t1 = s.recv(&c1);
    let t = s.recv(&c);
    let i = s.select();
    assert_ne!(i, t1.index, "select4: the empty channel's case fired");
    assert_eq!(i, t.index);
    assert_eq!(s.received(t), Some(42), "select4: wrong value");
}

/// Go: test/chan/select5.go (the operation half). One real send or receive
/// on a one-slot channel, placed at every position among zero, one or two
/// cases that can never fire (a send to and a receive from an unbuffered
/// channel nobody else uses), with and without a default: the real case
/// fires with the right value; with a default and the real case not ready,
/// the default fires and the channel is untouched.
fn test_select5() {
    let c = Chan::<u64>::new(1);
    let dummy = Chan::<u64>::new(0);
    let mut n = 1u64;
    let mut shapes = 0;
    for dummies in 0..4u32 {
        let nd = dummies.count_ones() as usize;
        for pos in 0..=nd {
            for with_default in [false, true] {
                for send in [false, true] {
                    for ready in [true, false] {
                        if !ready && !with_default {
                            continue;
                        }
                        if send != ready {
                            // A receive needs a value; a send that must not
                            // be ready needs a full channel.
                            c.send(if ready { n } else { 0 });
                        }
                        let mut s = Select::new();
                        let (mut real, mut tok) = (usize::MAX, None);
                        let mut kinds = [(dummies & 1) != 0, (dummies & 2) != 0]
                            .into_iter()
                            .enumerate()
                            .filter(|(_, on)| *on)
                            .map(|(k, _)| k);
                        for slot in 0..=nd {
                            if slot == pos {
                                if send {
                                    real = s.send(&c, n);
                                } else {
                                    let t = s.recv(&c);
                                    real = t.index;
                                    tok = Some(t);
                                }
                            } else if kinds.next() == Some(0) {
                                s.send(&dummy, 99);
                            } else {
                                s.recv(&dummy);
                            }
                        }
                        let fired = if with_default {
                            s.try_select()
                        } else {
                            Some(s.select())
                        };
                        let what = format!(
                            "select5: send={send} dummies={dummies:#b} pos={pos} default={with_default} ready={ready}"
                        );
                        if !ready {
                            assert_eq!(fired, None, "{what}: a case fired");
                            drop(s);
                            let left = if send { c.recv() } else { c.try_recv().ok() };
                            let want = if send { Some(0) } else { None };
                            assert_eq!(left, want, "{what}: channel changed");
                            continue;
                        }
                        assert_eq!(fired, Some(real), "{what}: wrong case");
                        let v = match tok {
                            Some(t) => s.received(t),
                            None => {
                                drop(s);
                                c.recv()
                            }
                        };
                        assert_eq!(v, Some(n), "{what}: wrong value");
                        assert_eq!(c.len(), 0, "{what}: channel not empty");
                        n += 1;
                        shapes += 1;
                    }
                }
            }
        }
    }
    // 8 placements (1 + 2 + 2 + 3) × 2 defaults × 2 directions.
    assert_eq!(shapes, 32, "select5: shapes run");
}

/// Go: test/chan/select6.go (Go issue 2075). A select that lost on a
/// channel where other receivers also wait must leave that channel's queue
/// intact: afterwards both remaining receivers get a value each. Repeated
/// 200 times for different interleavings.
fn test_select6() {
    for round in 0..200 {
        let c1 = Chan::<bool>::new(0);
        let c2 = Chan::<bool>::new(0);
        let c3 = Chan::<bool>::new(0);
        let who = Chan::<u32>::new(2);
        {
            let (c1, who) = (c1.clone(), who.clone());
            go(move || {
                must_recv(&c1, "select6 first receiver");
                who.send(1);
            });
        }
        {
            let (c1, c2, c3, who) = (c1.clone(), c2.clone(), c3.clone(), who.clone());
            go(move || {
                let fired_c2 = {
                    let mut s = Select::new();
                    let t1 = s.recv(&c1);
                    let t2 = s.recv(&c2);
                    let i = s.select();
                    assert_ne!(i, t1.index, "select6: c1 fired before anyone sent on it");
                    i == t2.index
                };
                assert!(fired_c2);
                c3.send(true);
                must_recv(&c1, "select6 second receiver");
                who.send(2);
            });
        }
        {
            let c2 = c2.clone();
            go(move || c2.send(true));
        }
        must_recv(&c3, "select6 c3");
        c1.send(true);
        c1.send(true);
        let a = must_recv(&who, "select6 who");
        let b = must_recv(&who, "select6 who");
        assert_eq!(a + b, 3, "select6 round {round}: receivers {a} and {b}");
    }
}

/// Go: test/chan/select7.go. Every pairing of three ways to receive (plain,
/// a one-case select, a select with a second never-ready channel) with
/// three ways to send (the same three) moves the value across.
fn test_select7() {
    for r in 0..3u32 {
        for w in 0..3u32 {
            let v = 100 * r + w;
            let c = Chan::<u32>::new(0);
            let res = Chan::<u32>::new(1);
            {
                let (c, res) = (c.clone(), res.clone());
                go(move || {
                    let x = match r {
                        0 => must_recv(&c, "select7"),
                        1 => {
                            let mut s = Select::new();
                            let t = s.recv(&c);
                            s.select();
                            got(&mut s, t, "select7")
                        }
                        _ => {
                            let other = Chan::<u32>::new(0);
                            let mut s = Select::new();
                            let t = s.recv(&c);
                            let _o = s.recv(&other);
                            assert_eq!(s.select(), t.index, "select7: the idle channel fired");
                            got(&mut s, t, "select7")
                        }
                    };
                    res.send(x);
                });
            }
            gosched();
            match w {
                0 => c.send(v),
                1 => {
                    let mut s = Select::new();
                    s.send(&c, v);
                    s.select();
                }
                _ => {
                    let other = Chan::<u32>::new(0);
                    let mut s = Select::new();
                    let i = s.send(&c, v);
                    s.send(&other, v + 1);
                    assert_eq!(s.select(), i, "select7: sent to the idle channel");
                }
            }
            assert_eq!(
                res.recv(),
                Some(v),
                "select7: receive way {r}, send way {w}"
            );
        }
    }
}

/// Go: test/chan/select8.go. Selects of one, two and three cases with and
/// without a default against a goroutine that keeps sending 5: the one-case
/// select gets 5; a default-only select takes the default; a send case to a
/// channel with only senders never fires; and the sender's count of values
/// sent equals the number received.
fn test_select8() {
    let ch = Chan::<i32>::new(0);
    let quit = Chan::<()>::new(0);
    let sender = {
        let (ch, quit) = (ch.clone(), quit.clone());
        spawn(move || {
            let mut sent = 0u32;
            loop {
                let mut s = Select::new();
                let i = s.send(&ch, 5);
                let q = s.recv(&quit);
                let fired = s.select();
                if fired == q.index {
                    return sent;
                }
                assert_eq!(fired, i);
                sent += 1;
            }
        })
    };
    let mut received = 0;
    {
        let mut s = Select::new();
        let t = s.recv(&ch);
        s.select();
        assert_eq!(s.received(t), Some(5), "select8: one-case select");
        received += 1;
    }
    assert_eq!(
        Select::new().try_select(),
        None,
        "select8: default-only select"
    );
    {
        let mut s = Select::new();
        let t = s.recv(&ch);
        if s.try_select().is_some() {
            assert_eq!(s.received(t), Some(5), "select8: receive with default");
            received += 1;
        }
    }
    {
        let mut s = Select::new();
        let t = s.recv(&ch);
        let w = s.send(&ch, 10);
        match s.try_select() {
            None => {}
            Some(i) if i == w => panic!("select8: sent 10 with nobody receiving"),
            Some(_) => {
                assert_eq!(s.received(t), Some(5), "select8: three-way select");
                received += 1;
            }
        }
    }
    quit.close();
    assert_eq!(
        join(sender, "select8 sender"),
        received,
        "select8: sent vs received"
    );
}

/// Go: test/chan/sendstmt.go (`chanchan`). A channel of channels: the
/// channel received from it is the target of a send case, which fires
/// without blocking; the value arrives through it.
fn test_sendstmt() {
    let cc = Chan::<Chan<i32>>::new(1);
    let c = Chan::<i32>::new(1);
    cc.send(c.clone());
    let inner = must_recv(&cc, "sendstmt");
    let mut s = Select::new();
    let i = s.send(&inner, 2);
    assert_eq!(s.try_select(), Some(i), "sendstmt: send case blocked");
    drop(s);
    assert_eq!(c.recv(), Some(2), "sendstmt: bad receive");
}

/// Go: test/chan/sieve1.go. The chain-of-filters prime sieve over 2..=100;
/// here the generator stops and closing propagates down the chain, so the
/// primes channel closes when done. Checks the list of primes.
fn test_sieve1() {
    const LIMIT: u64 = 100;
    let primes = Chan::<u64>::new(0);
    {
        let primes = primes.clone();
        go(move || {
            let mut ch = Chan::<u64>::new(0);
            {
                let ch = ch.clone();
                go(move || {
                    for i in 2..=LIMIT {
                        ch.send(i);
                    }
                    ch.close();
                });
            }
            while let Some(prime) = ch.recv() {
                primes.send(prime);
                let out = Chan::<u64>::new(0);
                let (inp, o) = (ch.clone(), out.clone());
                go(move || {
                    for i in &inp {
                        if i % prime != 0 {
                            o.send(i);
                        }
                    }
                    o.close();
                });
                ch = out;
            }
            primes.close();
        });
    }
    let got: Vec<u64> = primes.iter().collect();
    assert_eq!(got.len(), 25, "sieve1: {got:?}");
    assert_eq!(got, primes_below(LIMIT + 1), "sieve1: wrong primes");
}

/// Go: test/chan/sieve2.go. The Eratosthenes-style sieve: odd candidates,
/// a heap merging the streams of multiples of each prime, primes fed back
/// through a proxy whose select offers its send case only while it holds
/// values. Checks the first 100 primes.
fn test_sieve2() {
    fn counter(start: u64, step: u64, cap: usize) -> Chan<u64> {
        let out = Chan::new(cap);
        let o = out.clone();
        go(move || {
            let mut n = start;
            loop {
                o.send(n);
                n += step;
            }
        });
        out
    }
    // Accepts everything sent to the returned channel at once, buffering
    // without bound, and passes it on to `out` in order.
    fn sendproxy(out: Chan<u64>) -> Chan<u64> {
        let proxy = Chan::<u64>::new(10);
        let inp = proxy.clone();
        go(move || {
            let mut buf = VecDeque::new();
            loop {
                let mut s = Select::new();
                let r = s.recv(&inp);
                let w = buf.front().map(|&v| s.send(&out, v));
                let i = s.select();
                if i == r.index {
                    match s.received(r) {
                        Some(v) => buf.push_back(v),
                        None => return,
                    }
                } else {
                    assert_eq!(Some(i), w);
                    buf.pop_front();
                }
            }
        });
        proxy
    }
    let out = Chan::<u64>::new(10);
    out.send(2);
    out.send(3);
    let composites = Chan::<u64>::new(50);
    let primes = Chan::<u64>::new(10);
    primes.send(3);
    {
        // Merge the multiples of each prime p ≥ 3 (odd ones, from p²).
        let (primes, composites) = (primes.clone(), composites.clone());
        go(move || {
            let mut heap = BinaryHeap::new();
            let mut streams: Vec<Chan<u64>> = Vec::new();
            let mut last = 0;
            let mut emit = |v: u64| {
                if v > last {
                    composites.send(v);
                    last = v;
                }
            };
            loop {
                let p = must_recv(&primes, "sieve2 primes");
                let m = counter(p * p, 2 * p, 10);
                let square = must_recv(&m, "sieve2 multiples");
                while let Some(&std::cmp::Reverse((head, k))) = heap.peek() {
                    if head > square {
                        break;
                    }
                    heap.pop();
                    emit(head);
                    let next = must_recv(&streams[k], "sieve2 multiples");
                    heap.push(std::cmp::Reverse((next, k)));
                }
                emit(square);
                heap.push(std::cmp::Reverse((must_recv(&m, "sieve2"), streams.len())));
                streams.push(m);
            }
        });
    }
    {
        let (out, primes) = (out.clone(), primes.clone());
        go(move || {
            // The merger takes primes much more slowly than they are found.
            let primes = sendproxy(primes);
            let candidates = counter(5, 2, 50);
            let mut p = must_recv(&candidates, "sieve2 candidates");
            loop {
                let c = must_recv(&composites, "sieve2 composites");
                while p < c {
                    primes.send(p);
                    out.send(p);
                    p = must_recv(&candidates, "sieve2 candidates");
                }
                if p == c {
                    p = must_recv(&candidates, "sieve2 candidates");
                }
            }
        });
    }
    let want = primes_below(542);
    assert_eq!(want.len(), 100);
    for (i, &w) in want.iter().enumerate() {
        let p = must_recv(&out, "sieve2 out");
        assert_eq!(p, w, "sieve2: prime #{i}");
    }
}

/// Go: test/chan/zerosize.go. Channels of zero-sized elements (`()` and
/// `[u8; 0]`), unbuffered and buffered: the buffer counts them, fills up,
/// and hands them across goroutines like any other value.
fn test_zerosize() {
    fn check<T: Default + PartialEq + Debug + Send + 'static>() {
        let name = std::any::type_name::<T>();
        let b = Chan::<T>::new(3);
        assert_eq!((b.len(), b.cap()), (0, 3), "zerosize {name}");
        for _ in 0..3 {
            b.send(T::default());
        }
        assert_eq!(b.len(), 3, "zerosize {name}: buffered count");
        assert!(
            matches!(b.try_send(T::default()), Err(TrySendError::Full(_))),
            "zerosize {name}: a full buffer took more"
        );
        for _ in 0..3 {
            assert_eq!(b.recv(), Some(T::default()), "zerosize {name}");
        }
        assert_eq!(
            b.try_recv(),
            Err(TryRecvError::Empty),
            "zerosize {name}: empty buffer gave a value"
        );
        b.close();
        assert_eq!(b.recv(), None, "zerosize {name}: closed");

        let u = Chan::<T>::new(0);
        let u2 = u.clone();
        let h = spawn(move || (0..100).filter(|_| u2.recv() == Some(T::default())).count());
        for _ in 0..100 {
            u.send(T::default());
        }
        assert_eq!(join(h, "zerosize"), 100, "zerosize {name}: unbuffered");
        assert_eq!(u.cap(), 0);
    }
    check::<()>();
    check::<[u8; 0]>();
}

// ---------------------------------------------------------------------------
// power series (powser1, powser2)

/// Power series over the rationals, as streams of coefficients produced on
/// demand (Doug McIlroy's "Squinting at Power Series", which Go's powser
/// tests follow): each series is a goroutine that, whenever its consumer
/// asks on `req`, sends its next coefficient on `dat`. Combinators are
/// goroutines reading other series; a series read by two consumers goes
/// through `split`, a select loop that serves both at their own pace.
mod powser {
    use super::*;

    /// A reduced fraction with a positive denominator.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub struct Rat {
        num: i64,
        den: i64,
    }

    impl Debug for Rat {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            if self.den == 1 {
                write!(f, "{}", self.num)
            } else {
                write!(f, "{}/{}", self.num, self.den)
            }
        }
    }

    fn gcd(a: i64, b: i64) -> i64 {
        let (mut a, mut b) = (a.abs(), b.abs());
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }

    impl Rat {
        pub fn new(num: i64, den: i64) -> Rat {
            assert!(den != 0, "powser: zero denominator");
            let g = gcd(num, den).max(1) * den.signum();
            Rat {
                num: num / g,
                den: den / g,
            }
        }
        pub fn int(n: i64) -> Rat {
            Rat::new(n, 1)
        }
        fn add(self, o: Rat) -> Rat {
            Rat::new(self.num * o.den + o.num * self.den, self.den * o.den)
        }
        fn mul(self, o: Rat) -> Rat {
            Rat::new(self.num * o.num, self.den * o.den)
        }
        fn div_int(self, k: i64) -> Rat {
            Rat::new(self.num, self.den * k)
        }
    }

    /// What a series' data channel carries.
    pub trait Coef: Send + 'static {
        fn of(r: Rat) -> Self;
        fn rat(&self) -> Rat;
    }

    impl Coef for Rat {
        fn of(r: Rat) -> Self {
            r
        }
        fn rat(&self) -> Rat {
            *self
        }
    }

    /// A coefficient behind a trait object (Go's powser2 sends interfaces).
    pub trait Item: Send {
        fn value(&self) -> Rat;
    }

    struct Boxed(Rat);

    impl Item for Boxed {
        fn value(&self) -> Rat {
            self.0
        }
    }

    impl Coef for Box<dyn Item> {
        fn of(r: Rat) -> Self {
            Box::new(Boxed(r))
        }
        fn rat(&self) -> Rat {
            self.value()
        }
    }

    /// One demand-driven series (its two channels; clones share them).
    pub struct Ps<T> {
        req: Chan<()>,
        dat: Chan<T>,
    }

    impl<T> Clone for Ps<T> {
        fn clone(&self) -> Self {
            Ps {
                req: self.req.clone(),
                dat: self.dat.clone(),
            }
        }
    }

    impl<T: Coef> Ps<T> {
        fn new() -> Ps<T> {
            Ps {
                req: Chan::new(0),
                dat: Chan::new(0),
            }
        }
        /// Consumer: the next coefficient.
        pub fn get(&self) -> Rat {
            self.req.send(());
            must_recv(&self.dat, "powser get").rat()
        }
        /// Producer: waits for the next demand.
        fn demanded(&self) -> bool {
            self.req.recv().is_some()
        }
        fn put(&self, r: Rat) {
            self.dat.send(T::of(r));
        }
    }

    /// Starts a producer goroutine for a new series.
    fn producer<T: Coef>(f: impl FnOnce(Ps<T>) + Send + 'static) -> Ps<T> {
        let z = Ps::new();
        let z2 = z.clone();
        go(move || f(z2));
        z
    }

    /// One coefficient from each of two series, asking both at once and
    /// taking whichever answers first (they may be the same series).
    fn get2<T: Coef>(u: &Ps<T>, v: &Ps<T>) -> (Rat, Rat) {
        // Per side: 0 = to ask, 1 = asked, 2 = received.
        let mut state = [0u8; 2];
        let mut out = [Rat::int(0); 2];
        let sides = [u, v];
        while state != [2, 2] {
            let mut s = Select::new();
            let mut asks = [None; 2];
            // (A token is Copy only for Copy elements: keep them in Options.)
            let mut takes: [Option<rt_sched::RecvToken<T>>; 2] = [None, None];
            for k in 0..2 {
                match state[k] {
                    0 => asks[k] = Some(s.send(&sides[k].req, ())),
                    1 => takes[k] = Some(s.recv(&sides[k].dat)),
                    _ => {}
                }
            }
            let i = s.select();
            for k in 0..2 {
                if asks[k] == Some(i) {
                    state[k] = 1;
                }
                if takes[k].as_ref().is_some_and(|t| t.index == i) {
                    let t = takes[k].take().expect("token");
                    out[k] = got(&mut s, t, "powser get2").rat();
                    state[k] = 2;
                }
            }
        }
        (out[0], out[1])
    }

    /// Two consumers of one series, each at its own pace. One goroutine
    /// keeps a queue per consumer and a select over whatever can happen
    /// next: a consumer's demand, a delivery, a demand upstream, or the
    /// upstream's answer.
    pub fn split<T: Coef>(u: Ps<T>) -> (Ps<T>, Ps<T>) {
        let outs = [Ps::<T>::new(), Ps::<T>::new()];
        let ret = (outs[0].clone(), outs[1].clone());
        go(move || {
            let mut queue: [VecDeque<Rat>; 2] = Default::default();
            let mut pending = [false; 2];
            let mut asked = false;
            loop {
                let need = (0..2).any(|k| pending[k] && queue[k].is_empty());
                let mut s = Select::new();
                let mut reqs = [None; 2];
                let mut delivers = [None; 2];
                for k in 0..2 {
                    if !pending[k] {
                        reqs[k] = Some(s.recv(&outs[k].req));
                    } else if let Some(&v) = queue[k].front() {
                        delivers[k] = Some(s.send(&outs[k].dat, T::of(v)));
                    }
                }
                let ask = (need && !asked).then(|| s.send(&u.req, ()));
                let take = asked.then(|| s.recv(&u.dat));
                let i = s.select();
                for k in 0..2 {
                    if let Some(t) = reqs[k] {
                        if t.index == i {
                            if s.received(t).is_none() {
                                return;
                            }
                            pending[k] = true;
                        }
                    }
                    if delivers[k] == Some(i) {
                        queue[k].pop_front();
                        pending[k] = false;
                    }
                }
                if ask == Some(i) {
                    asked = true;
                }
                if let Some(t) = take {
                    if t.index == i {
                        let v = got(&mut s, t, "powser split").rat();
                        asked = false;
                        queue[0].push_back(v);
                        queue[1].push_back(v);
                    }
                }
            }
        });
        ret
    }

    /// c, c, c, …
    pub fn rep<T: Coef>(c: Rat) -> Ps<T> {
        producer(move |z: Ps<T>| {
            while z.demanded() {
                z.put(c);
            }
        })
    }

    /// U + V.
    pub fn add<T: Coef>(u: Ps<T>, v: Ps<T>) -> Ps<T> {
        producer(move |z: Ps<T>| {
            while z.demanded() {
                let (a, b) = get2(&u, &v);
                z.put(a.add(b));
            }
        })
    }

    /// c·U.
    pub fn cmul<T: Coef>(c: Rat, u: Ps<T>) -> Ps<T> {
        producer(move |z: Ps<T>| {
            while z.demanded() {
                z.put(c.mul(u.get()));
            }
        })
    }

    /// U − V.
    pub fn sub<T: Coef>(u: Ps<T>, v: Ps<T>) -> Ps<T> {
        add(u, cmul(Rat::int(-1), v))
    }

    /// dU/dx.
    pub fn diff<T: Coef>(u: Ps<T>) -> Ps<T> {
        producer(move |z: Ps<T>| {
            let mut k = 1;
            while z.demanded() {
                if k == 1 {
                    u.get();
                }
                z.put(Rat::int(k).mul(u.get()));
                k += 1;
            }
        })
    }

    /// c + ∫U, produced into `z`.
    pub fn integ_into<T: Coef>(c: Rat, u: Ps<T>, z: Ps<T>) {
        go(move || {
            if !z.demanded() {
                return;
            }
            z.put(c);
            let mut k = 1;
            while z.demanded() {
                z.put(u.get().div_int(k));
                k += 1;
            }
        });
    }

    /// c + ∫U.
    pub fn integ<T: Coef>(c: Rat, u: Ps<T>) -> Ps<T> {
        let z = Ps::new();
        integ_into(c, u, z.clone());
        z
    }

    /// U·V, recursively: with U = u0 + xU′ and V = v0 + xV′,
    /// UV = u0v0 + x(u0V′ + v0U′) + x²U′V′.
    pub fn mul<T: Coef>(u: Ps<T>, v: Ps<T>) -> Ps<T> {
        producer(move |z: Ps<T>| {
            if !z.demanded() {
                return;
            }
            let (u0, v0) = get2(&u, &v);
            z.put(u0.mul(v0));
            let (ua, ub) = split(u);
            let (va, vb) = split(v);
            let w = add(cmul(u0, va), cmul(v0, ua));
            if !z.demanded() {
                return;
            }
            z.put(w.get());
            let rest = add(w, mul(ub, vb));
            while z.demanded() {
                z.put(rest.get());
            }
        })
    }

    /// exp(U) for U with a zero constant term (U's own constant is
    /// ignored): X = 1 + ∫X·U′, where X feeds itself through a split.
    pub fn exp<T: Coef>(u: Ps<T>) -> Ps<T> {
        let x = Ps::<T>::new();
        let (xa, xb) = split(x.clone());
        integ_into(Rat::int(1), mul(xb, diff(u)), x);
        xa
    }

    /// U(c·xⁿ).
    pub fn monsubst<T: Coef>(u: Ps<T>, c: Rat, n: usize) -> Ps<T> {
        producer(move |z: Ps<T>| {
            let mut pow = Rat::int(1);
            loop {
                if !z.demanded() {
                    return;
                }
                z.put(u.get().mul(pow));
                pow = pow.mul(c);
                for _ in 1..n {
                    if !z.demanded() {
                        return;
                    }
                    z.put(Rat::int(0));
                }
            }
        })
    }

    /// Checks the first coefficients of `u`.
    pub fn expect<T: Coef>(name: &str, u: &Ps<T>, want: &[Rat]) {
        for (k, w) in want.iter().enumerate() {
            let g = u.get();
            assert_eq!(g, *w, "{name}: coefficient {k}");
        }
    }

    /// The checks of Go's powser tests, on coefficients of type `T`.
    pub fn run<T: Coef>(test: &str) {
        const N: usize = 10;
        let r = Rat::new;
        let i = Rat::int;
        let ones = || rep::<T>(i(1));
        let twos = || rep::<T>(i(2));
        expect(&format!("{test} ones"), &ones(), &[i(1); 5]);
        let o = ones();
        expect(
            &format!("{test} add(ones, ones)"),
            &add(o.clone(), o),
            &[i(2); N],
        );
        expect(
            &format!("{test} add(ones, twos)"),
            &add(ones(), twos()),
            &[i(3); N],
        );
        let counting: Vec<Rat> = (1..=N as i64).map(i).collect();
        expect(&format!("{test} diff(ones)"), &diff(ones()), &counting);
        let harmonic: Vec<Rat> = (0..N as i64)
            .map(|k| if k == 0 { i(0) } else { r(1, k) })
            .collect();
        expect(
            &format!("{test} integ(0, ones)"),
            &integ(i(0), ones()),
            &harmonic,
        );
        expect(
            &format!("{test} cmul(-1, twos)"),
            &cmul(i(-1), twos()),
            &[i(-2); N],
        );
        expect(
            &format!("{test} sub(ones, twos)"),
            &sub(ones(), twos()),
            &[i(-1); N],
        );
        expect(
            &format!("{test} mul(ones, ones)"),
            &mul(ones(), ones()),
            &counting,
        );
        let e = [
            i(1),
            i(1),
            r(3, 2),
            r(13, 6),
            r(73, 24),
            r(167, 40),
            r(4051, 720),
            r(37633, 5040),
            r(43817, 4480),
            r(4596553, 362880),
        ];
        expect(&format!("{test} exp(ones)"), &exp(ones()), &e);
        // atan x = ∫ 1/(1+x²) = x − x³/3 + x⁵/5 − …
        let atan: Vec<Rat> = (0..N as i64)
            .map(|k| match k % 4 {
                1 => r(1, k),
                3 => r(-1, k),
                _ => i(0),
            })
            .collect();
        let at = integ(i(0), monsubst(ones(), i(-1), 2));
        expect(&format!("{test} atan"), &at, &atan);
    }
}

/// Go: test/chan/powser1.go. McIlroy's power series as networks of
/// goroutines over unbuffered channels, with plain rational coefficients:
/// sums, scaling, derivative, integral, product, exp and a substitution,
/// checked coefficient by coefficient.
fn test_powser1() {
    powser::run::<powser::Rat>("powser1");
}

/// Go: test/chan/powser2.go. The same network with every coefficient sent
/// as a boxed trait object (Go's version sends interface values).
fn test_powser2() {
    powser::run::<Box<dyn powser::Item>>("powser2");
}

// ---------------------------------------------------------------------------
// src/runtime/chan_test.go

/// Go: TestChan. For each of a range of capacities: a receive from an
/// empty channel blocks (and non-blocking ones fail) until values come; a
/// send to a full one blocks (and non-blocking ones fail) until a receive
/// makes room, the blocked value arriving last; a closed channel yields its
/// buffered values in order then `None`; close wakes a blocked receiver
/// with `None`; values keep FIFO order from one sender; with four senders
/// and four receivers every value arrives exactly once per sender; `len`
/// and `cap` are right.
fn test_chan() {
    let _procs = Procs::set(4);
    for cap in [0usize, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 64, 199] {
        chan_recv_blocks(cap);
        chan_send_blocks(cap);
        chan_closed(cap);
        chan_close_wakes(cap);
        chan_order(cap);
        chan_many(cap);
        chan_len_cap(cap);
    }
}

fn chan_recv_blocks(cap: usize) {
    let c = Chan::<i64>::new(cap);
    let woke = Arc::new(AtomicU32::new(0));
    let out = Chan::<i64>::new(2);
    for _ in 0..2 {
        let (c, woke, out) = (c.clone(), woke.clone(), out.clone());
        go(move || {
            let v = must_recv(&c, "chan");
            woke.fetch_add(1, SeqCst);
            out.send(v);
        });
    }
    sleep(Duration::from_millis(1));
    assert_eq!(woke.load(SeqCst), 0, "chan[{cap}]: receive from empty chan");
    assert_eq!(
        c.try_recv(),
        Err(TryRecvError::Empty),
        "chan[{cap}]: try_recv from empty chan"
    );
    {
        let mut s = Select::new();
        s.recv(&c);
        assert_eq!(
            s.try_select(),
            None,
            "chan[{cap}]: select receive from empty chan"
        );
    }
    c.send(1);
    c.send(2);
    let mut vs = [must_recv(&out, "chan"), must_recv(&out, "chan")];
    vs.sort();
    assert_eq!(vs, [1, 2], "chan[{cap}]: blocked receivers got");
}

fn chan_send_blocks(cap: usize) {
    let c = Chan::<i64>::new(cap);
    for i in 0..cap as i64 {
        c.send(i);
    }
    let sent = Arc::new(AtomicBool::new(false));
    let h = {
        let (c, sent) = (c.clone(), sent.clone());
        spawn(move || {
            c.send(-7);
            sent.store(true, SeqCst);
        })
    };
    sleep(Duration::from_millis(1));
    assert!(!sent.load(SeqCst), "chan[{cap}]: send to full chan");
    assert_eq!(
        c.try_send(-1),
        Err(TrySendError::Full(-1)),
        "chan[{cap}]: try_send to full chan"
    );
    {
        let mut s = Select::new();
        s.send(&c, -2);
        assert_eq!(
            s.try_select(),
            None,
            "chan[{cap}]: select send to full chan"
        );
    }
    let got: Vec<i64> = (0..=cap).map(|_| must_recv(&c, "chan")).collect();
    let want: Vec<i64> = (0..cap as i64).chain([-7]).collect();
    assert_eq!(got, want, "chan[{cap}]: order after a blocked send");
    join(h, "chan sender");
    assert!(sent.load(SeqCst));
    assert_eq!(c.len(), 0, "chan[{cap}]: leftovers");
}

fn chan_closed(cap: usize) {
    let c = Chan::<i64>::new(cap);
    for i in 0..cap as i64 {
        c.send(i);
    }
    c.close();
    for i in 0..cap as i64 {
        assert_eq!(c.recv(), Some(i), "chan[{cap}]: closed chan lost a value");
    }
    assert_eq!(c.recv(), None, "chan[{cap}]: closed and drained");
    assert_eq!(c.recv(), None, "chan[{cap}]: closed and drained, again");
    assert_eq!(
        c.try_recv(),
        Err(TryRecvError::Closed),
        "chan[{cap}]: try_recv closed"
    );
}

fn chan_close_wakes(cap: usize) {
    let c = Chan::<i64>::new(cap);
    let h = {
        let c = c.clone();
        spawn(move || c.recv())
    };
    sleep(Duration::from_millis(1));
    c.close();
    assert_eq!(
        join(h, "chan receiver"),
        None,
        "chan[{cap}]: close wakes a receiver"
    );
}

fn chan_order(cap: usize) {
    let c = Chan::<i64>::new(cap);
    for pass in 0..2 {
        let tx = c.clone();
        go(move || {
            for i in 0..100 {
                tx.send(i);
            }
        });
        for i in 0..100 {
            // The second pass receives through a select.
            let v = if pass == 0 {
                c.recv()
            } else {
                let mut s = Select::new();
                let t = s.recv(&c);
                s.select();
                s.received(t)
            };
            assert_eq!(v, Some(i), "chan[{cap}]: out of order (pass {pass})");
        }
    }
}

fn chan_many(cap: usize) {
    const P: usize = 4;
    const L: usize = 1000;
    let c = Chan::<usize>::new(cap);
    for _ in 0..P {
        let c = c.clone();
        go(move || {
            for i in 0..L {
                c.send(i);
            }
        });
    }
    let done = Chan::<Vec<u32>>::new(0);
    for _ in 0..P {
        let (c, done) = (c.clone(), done.clone());
        go(move || {
            let mut seen = vec![0u32; L];
            for _ in 0..L {
                seen[must_recv(&c, "chan")] += 1;
            }
            done.send(seen);
        });
    }
    let mut total = vec![0u32; L];
    for _ in 0..P {
        for (t, s) in total.iter_mut().zip(must_recv(&done, "chan")) {
            *t += s;
        }
    }
    for (v, &n) in total.iter().enumerate() {
        assert_eq!(n, P as u32, "chan[{cap}]: value {v} received {n} times");
    }
}

fn chan_len_cap(cap: usize) {
    let c = Chan::<usize>::new(cap);
    assert_eq!((c.len(), c.cap()), (0, cap), "chan[{cap}]: len/cap empty");
    for i in 0..cap {
        c.send(i);
    }
    assert_eq!((c.len(), c.cap()), (cap, cap), "chan[{cap}]: len/cap full");
}

/// Go: TestNonblockRecvRace. A one-slot channel holding a value is closed
/// while another goroutine does a non-blocking receive on it: that receive
/// must never take the default (the channel is ready either way), and
/// exactly one of the two receivers gets the value.
fn test_nonblock_recv_race() {
    for round in 0..2000 {
        let c = Chan::<u32>::new(1);
        c.send(1);
        let h = {
            let c = c.clone();
            spawn(move || {
                let mut s = Select::new();
                let t = s.recv(&c);
                match s.try_select() {
                    Some(_) => s.received(t),
                    None => panic!("nonblock_recv_race: chan is not ready"),
                }
            })
        };
        c.close();
        let mine = c.recv();
        let theirs = join(h, "nonblock_recv_race");
        assert!(
            matches!((mine, theirs), (Some(1), None) | (None, Some(1))),
            "nonblock_recv_race round {round}: main got {mine:?}, goroutine got {theirs:?}"
        );
    }
}

/// The goroutine side of the nonblock select races: true when a case fired.
fn select_any(c1: Chan<u32>, c2: Chan<u32>, done: Chan<bool>) {
    let fired = {
        let mut s = Select::new();
        s.recv(&c1);
        s.recv(&c2);
        s.try_select().is_some()
    };
    done.send(fired);
}

/// Go: TestNonblockSelectRace. From the moment the goroutine is started,
/// one of two channels always has a value (the second is filled before the
/// first is emptied), so its non-blocking select over both must never take
/// the default: a select acts on one instant, not a smeared window.
fn test_nonblock_select_race() {
    let done = Chan::<bool>::new(1);
    for round in 0..5000 {
        let c1 = Chan::<u32>::new(1);
        let c2 = Chan::<u32>::new(1);
        c1.send(1);
        {
            let (c1, c2, done) = (c1.clone(), c2.clone(), done.clone());
            go(move || select_any(c1, c2, done));
        }
        c2.send(1);
        {
            let mut s = Select::new();
            s.recv(&c1);
            s.try_select();
        }
        assert!(
            must_recv(&done, "nonblock_select_race"),
            "nonblock_select_race round {round}: no chan is ready"
        );
    }
}

/// Go: TestNonblockSelectRace2. As `nonblock_select_race`, but the second
/// channel becomes ready by being closed.
fn test_nonblock_select_race2() {
    let done = Chan::<bool>::new(1);
    for round in 0..5000 {
        let c1 = Chan::<u32>::new(1);
        let c2 = Chan::<u32>::new(0);
        c1.send(1);
        {
            let (c1, c2, done) = (c1.clone(), c2.clone(), done.clone());
            go(move || select_any(c1, c2, done));
        }
        c2.close();
        {
            let mut s = Select::new();
            s.recv(&c1);
            s.try_select();
        }
        assert!(
            must_recv(&done, "nonblock_select_race2"),
            "nonblock_select_race2 round {round}: no chan is ready"
        );
    }
}

/// Go: TestSelfSelect. Two goroutines each run 1000 selects offering both
/// to send to and to receive from the same channel (case order varying),
/// at GOMAXPROCS=2. Unbuffered, a select must never receive its own value,
/// and the sends of each side match the receives of the other; buffered,
/// everything sent was received or is still in the buffer.
fn test_self_select() {
    let _procs = Procs::set(2);
    for cap in [0usize, 10] {
        let c = Chan::<u32>::new(cap);
        let hs: Vec<_> = (0..2u32)
            .map(|p| {
                let c = c.clone();
                spawn(move || {
                    let (mut sent, mut recvd, mut sum) = (0u32, 0u32, 0u32);
                    for i in 0..1000 {
                        let mut s = Select::new();
                        let (w, r) = if p == 0 || i % 2 == 0 {
                            let w = s.send(&c, p);
                            (w, s.recv(&c))
                        } else {
                            let r = s.recv(&c);
                            (s.send(&c, p), r)
                        };
                        if s.select() == w {
                            sent += 1;
                        } else {
                            let v = got(&mut s, r, "self_select");
                            assert!(!(cap == 0 && v == p), "self_select: self receive");
                            recvd += 1;
                            sum += v;
                        }
                    }
                    (sent, recvd, sum)
                })
            })
            .collect();
        let r: Vec<(u32, u32, u32)> = hs.into_iter().map(|h| join(h, "self_select")).collect();
        let ((s0, r0, sum0), (s1, r1, sum1)) = (r[0], r[1]);
        assert_eq!(s0 + r0, 1000);
        assert_eq!(s1 + r1, 1000);
        if cap == 0 {
            assert_eq!(
                (s0, s1),
                (r1, r0),
                "self_select: sends and receives do not pair"
            );
            assert_eq!((sum0, sum1), (r0, 0), "self_select: values crossed wrongly");
        } else {
            assert_eq!(
                s0 + s1,
                r0 + r1 + c.len() as u32,
                "self_select[{cap}]: values lost"
            );
        }
    }
}

/// Go: TestSelectStress. At GOMAXPROCS=10, over two unbuffered and two
/// buffered channels: a plain sender and a plain receiver per channel, plus
/// one goroutine sending N values on each channel through one select and
/// one receiving N from each through one select (a channel's case left out
/// once its N are done). Nothing deadlocks and the values received on each
/// channel add up to what both of its senders sent.
fn test_select_stress() {
    let _procs = Procs::set(10);
    const N: u64 = 10_000;
    let c: Vec<Chan<u64>> = vec![Chan::new(0), Chan::new(0), Chan::new(2), Chan::new(3)];
    let sums: Arc<Vec<AtomicU64>> = Arc::new((0..4).map(|_| AtomicU64::new(0)).collect());
    let wg = WaitGroup::new();
    wg.add(10);
    for k in 0..4 {
        {
            let (c, wg) = (c[k].clone(), wg.clone());
            go(move || {
                for i in 0..N {
                    c.send(i);
                }
                wg.done();
            });
        }
        {
            let (c, wg, sums) = (c[k].clone(), wg.clone(), sums.clone());
            go(move || {
                for _ in 0..N {
                    sums[k].fetch_add(must_recv(&c, "select_stress"), SeqCst);
                }
                wg.done();
            });
        }
    }
    {
        let (c, wg) = (c.clone(), wg.clone());
        go(move || {
            let mut n = [0u64; 4];
            for _ in 0..4 * N {
                let mut s = Select::new();
                let mut case_of = [usize::MAX; 4];
                for k in [3, 2, 0, 1] {
                    if n[k] < N {
                        case_of[k] = s.send(&c[k], n[k]);
                    }
                }
                let i = s.select();
                let k = case_of.iter().position(|&x| x == i).expect("fired case");
                n[k] += 1;
            }
            assert_eq!(n, [N; 4], "select_stress: select sender");
            wg.done();
        });
    }
    {
        let (c, wg, sums) = (c.clone(), wg.clone(), sums.clone());
        go(move || {
            let mut n = [0u64; 4];
            for _ in 0..4 * N {
                let mut s = Select::new();
                let toks: Vec<_> = (0..4).map(|k| (n[k] < N).then(|| s.recv(&c[k]))).collect();
                let i = s.select();
                let k = toks
                    .iter()
                    .position(|t| t.is_some_and(|t| t.index == i))
                    .expect("fired case");
                let t = toks[k].expect("token");
                sums[k].fetch_add(got(&mut s, t, "select_stress"), SeqCst);
                n[k] += 1;
            }
            assert_eq!(n, [N; 4], "select_stress: select receiver");
            wg.done();
        });
    }
    wg.wait();
    for (k, s) in sums.iter().enumerate() {
        assert_eq!(
            s.load(SeqCst),
            N * (N - 1),
            "select_stress: channel {k} sum"
        );
    }
}

/// Go: TestSelectFairness. A select over two never-ready channels and two
/// channels that always hold a value picks between the ready two at
/// random: over 10 000 selects each must win at least 40%. (Go allows
/// ±2.4% around half, a one-in-a-million miss; 40% is 20 standard
/// deviations below the mean, which a fair choice never misses, while a
/// select that favours one case by its position fails it.)
fn test_select_fairness() {
    const TRIALS: usize = 10_000;
    let c1 = Chan::<u8>::new(TRIALS + 1);
    let c2 = Chan::<u8>::new(TRIALS + 1);
    for _ in 0..=TRIALS {
        c1.send(1);
        c2.send(2);
    }
    let c3 = Chan::<u8>::new(0);
    let c4 = Chan::<u8>::new(0);
    let out = Chan::<u8>::new(0);
    let done = Chan::<()>::new(0);
    let h = {
        let (out, done) = (out.clone(), done.clone());
        spawn(move || loop {
            let b = {
                let mut s = Select::new();
                let ts = [s.recv(&c3), s.recv(&c4), s.recv(&c1), s.recv(&c2)];
                let i = s.select();
                let t = ts.into_iter().find(|t| t.index == i).expect("fired case");
                got(&mut s, t, "select_fairness")
            };
            let mut s = Select::new();
            s.send(&out, b);
            let d = s.recv(&done);
            if s.select() == d.index {
                return;
            }
        })
    };
    let (mut n1, mut n2) = (0, 0);
    for _ in 0..TRIALS {
        match must_recv(&out, "select_fairness") {
            1 => n1 += 1,
            2 => n2 += 1,
            b => panic!("select_fairness: unexpected value {b}"),
        }
    }
    done.close();
    join(h, "select_fairness");
    assert_eq!(n1 + n2, TRIALS);
    let floor = TRIALS * 4 / 10;
    assert!(
        n1 >= floor && n2 >= floor,
        "select_fairness: unfair select: in {TRIALS} trials, {n1} and {n2}"
    );
}

/// Go: TestChanSendInterface. Boxed trait objects offered by selects with a
/// default on a full channel: the default fires, nothing is sent, and every
/// value offered but not sent is dropped exactly once; the value already in
/// the channel comes out intact.
fn test_chan_send_interface() {
    type AnyBox = Box<dyn std::any::Any + Send>;
    let drops = Arc::new(AtomicUsize::new(0));
    let mk = |id| -> AnyBox {
        Box::new(Tracked {
            id,
            drops: drops.clone(),
        })
    };
    let c = Chan::<AnyBox>::new(1);
    c.send(mk(1));
    {
        let mut s = Select::new();
        s.send(&c, mk(2));
        assert_eq!(
            s.try_select(),
            None,
            "chan_send_interface: full channel took a value"
        );
    }
    assert_eq!(
        drops.load(SeqCst),
        1,
        "chan_send_interface: unsent value not dropped"
    );
    {
        let mut s = Select::new();
        s.send(&c, mk(3));
        s.send(&c, mk(4));
        assert_eq!(
            s.try_select(),
            None,
            "chan_send_interface: full channel took a value"
        );
    }
    assert_eq!(
        drops.load(SeqCst),
        3,
        "chan_send_interface: unsent values not dropped"
    );
    let v = must_recv(&c, "chan_send_interface");
    let id = v.downcast_ref::<Tracked>().map(|t| t.id);
    assert_eq!(
        id,
        Some(1),
        "chan_send_interface: wrong value in the channel"
    );
    drop(v);
    assert_eq!(drops.load(SeqCst), 4);
}

/// Go: TestPseudoRandomSend. A select with two send cases on the same
/// channel, one sending 0 and one sending 1, run 100 times against a
/// receiver that yields before each receive, unbuffered and buffered: each
/// value must come out more than 10 times. (For a fair choice, 10 or fewer
/// of one value in 100 has a probability near 1e-17.)
fn test_pseudo_random_send() {
    const N: usize = 100;
    for cap in [0, N] {
        let c = Chan::<u32>::new(cap);
        let h = {
            let c = c.clone();
            spawn(move || {
                (0..N)
                    .map(|_| {
                        gosched();
                        must_recv(&c, "pseudo_random_send")
                    })
                    .collect::<Vec<u32>>()
            })
        };
        for _ in 0..N {
            let mut s = Select::new();
            s.send(&c, 1);
            s.send(&c, 0);
            s.select();
        }
        let l = join(h, "pseudo_random_send");
        let n1 = l.iter().filter(|&&v| v == 1).count();
        let n0 = l.iter().filter(|&&v| v == 0).count();
        assert_eq!(n0 + n1, N);
        assert!(
            n0 > N / 10 && n1 > N / 10,
            "pseudo_random_send: want pseudorandom, got {n0} zeros and {n1} ones (chan cap {cap})"
        );
    }
}

/// Go: TestMultiConsumer. 23 workers range over one work channel (some
/// yielding now and then to disturb the order) and pass each value on to a
/// result channel, closed once all workers are done: the count and the sum
/// of the results match what was fed.
fn test_multi_consumer() {
    const NWORK: usize = 23;
    const NITER: usize = 50_000;
    const PN: [u64; 10] = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31];
    let q = Chan::<u64>::new(NWORK * 3);
    let r = Chan::<u64>::new(NWORK * 3);
    let wg = WaitGroup::new();
    for w in 0..NWORK {
        wg.add(1);
        let (q, r, wg) = (q.clone(), r.clone(), wg.clone());
        go(move || {
            for v in &q {
                if PN[w % PN.len()] == v {
                    gosched();
                }
                r.send(v);
            }
            wg.done();
        });
    }
    let feeder = {
        let (q, r) = (q.clone(), r.clone());
        spawn(move || {
            let mut expect = 0;
            for i in 0..NITER {
                let v = PN[i % PN.len()];
                expect += v;
                q.send(v);
            }
            q.close();
            wg.wait();
            r.close();
            expect
        })
    };
    let (mut n, mut s) = (0, 0);
    for v in &r {
        n += 1;
        s += v;
    }
    let expect = join(feeder, "multi_consumer feeder");
    assert_eq!((n, s), (NITER, expect), "multi_consumer: count and sum");
}

/// A value big enough to notice corruption in: 64 words from a seed.
#[derive(Clone, PartialEq, Debug)]
struct Payload([u64; 64]);

fn payload(i: u64) -> Payload {
    let mut a = [0u64; 64];
    for (j, x) in a.iter_mut().enumerate() {
        *x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (j as u64).rotate_left(32);
    }
    Payload(a)
}

/// Go: TestShrinkStackDuringBlockedSend. A sender blocked in a send keeps
/// its value on its own stack; while it waits, other goroutines are born,
/// use a lot of stack and die (so stacks are recycled around it), and the
/// sender itself uses a lot of stack between sends. Every value arrives
/// intact and in order.
fn test_shrink_stack_during_blocked_send() {
    const N: u64 = 10;
    let c = Chan::<Payload>::new(0);
    let sender = {
        let c = c.clone();
        spawn(move || {
            let mut burn = 0;
            for i in 0..N {
                c.send(payload(i));
                burn += stack_growth(20);
            }
            burn
        })
    };
    for i in 0..N {
        let x = must_recv(&c, "shrink_stack_during_blocked_send");
        assert!(
            x == payload(i),
            "shrink_stack_during_blocked_send: value {i} corrupted"
        );
        // Let the sender block in its next send, then churn stacks.
        sleep(Duration::from_millis(1));
        let hs: Vec<_> = (0..8).map(|_| spawn(|| stack_growth(40))).collect();
        for h in hs {
            join(h, "stack churn");
        }
    }
    join(sender, "shrink_stack_during_blocked_send");
}

/// Go: TestSelectDuplicateChannel. Goroutine A selects on the same channel
/// twice and a second one; B then waits on that channel too. Waking A
/// through the second channel must take both of A's entries off the shared
/// channel's queue, so that the next send reaches B. Checks who got what.
fn test_select_duplicate_channel() {
    let c = Chan::<i32>::new(0);
    let d = Chan::<i32>::new(0);
    let e = Chan::<i32>::new(0);
    let a = {
        let (c, d, e) = (c.clone(), d.clone(), e.clone());
        spawn(move || {
            let v = {
                let mut s = Select::new();
                let _c1 = s.recv(&c);
                let _c2 = s.recv(&c);
                let td = s.recv(&d);
                let i = s.select();
                assert_eq!(
                    i, td.index,
                    "select_duplicate_channel: c fired with no sender"
                );
                s.received(td)
            };
            e.send(9);
            v
        })
    };
    sleep(Duration::from_millis(1)); // A queues on c first
    let b = {
        let c = c.clone();
        spawn(move || c.recv())
    };
    sleep(Duration::from_millis(1)); // then B
    d.send(7);
    assert_eq!(
        e.recv(),
        Some(9),
        "select_duplicate_channel: A did not report"
    );
    c.send(8);
    assert_eq!(join(a, "A"), Some(7), "select_duplicate_channel: A's value");
    assert_eq!(join(b, "B"), Some(8), "select_duplicate_channel: B's value");
}

/// No single Go test: the intent of Go's non-blocking selects on
/// `time.After` channels, as its timer and select tests use them. A timer
/// channel not due for 10 s is not ready; a select over a due-soon timer and an idle
/// channel fires the timer; a fired timer delivers exactly once; a
/// goroutine polling a timer with non-blocking selects (yielding, never
/// parking) still sees it fire.
fn test_select_nonblock_timer() {
    let later = rt_sched::after(Duration::from_secs(10));
    {
        let mut s = Select::new();
        s.recv(&later);
        assert_eq!(
            s.try_select(),
            None,
            "select_nonblock_timer: 10 s timer fired"
        );
    }
    let idle = Chan::<()>::new(0);
    let soon = rt_sched::after(Duration::from_millis(1));
    {
        let mut s = Select::new();
        let _i = s.recv(&idle);
        let t = s.recv(&soon);
        assert_eq!(
            s.select(),
            t.index,
            "select_nonblock_timer: idle channel fired"
        );
        assert_eq!(s.received(t), Some(()));
    }
    assert_eq!(
        soon.try_recv(),
        Err(TryRecvError::Empty),
        "select_nonblock_timer: timer fired twice"
    );
    let polled = rt_sched::after(Duration::from_millis(1));
    let mut defaults = 0u64;
    loop {
        let mut s = Select::new();
        let t = s.recv(&polled);
        match s.try_select() {
            None => defaults += 1,
            Some(i) => {
                assert_eq!(i, t.index);
                assert_eq!(s.received(t), Some(()));
                break;
            }
        }
        drop(s);
        gosched();
    }
    black_box(defaults);
}

// ---------------------------------------------------------------------------
// src/runtime/proc_test.go

/// One link of the chain: unless told to stop, start the next link.
fn perpetuum_mobile(stop: Chan<()>, links: Arc<AtomicU64>, ended: Chan<u64>) {
    let stopped = {
        let mut s = Select::new();
        s.recv(&stop);
        s.try_select().is_some()
    };
    if stopped {
        ended.send(links.load(SeqCst));
    } else {
        links.fetch_add(1, SeqCst);
        go(move || perpetuum_mobile(stop, links, ended));
    }
}

/// Waits, yielding, until the chain has made a link past `past`; panics
/// when it makes none within 10 s.
fn chain_advances(links: &AtomicU64, past: u64, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while links.load(SeqCst) <= past {
        assert!(
            std::time::Instant::now() < deadline,
            "stop_the_world_deadlock: the chain never advanced {what}"
        );
        gosched();
    }
}

/// Go: TestStopTheWorldDeadlock. Two goroutines stop the world over and
/// over at the same time (one resizing GOMAXPROCS between 2 and 3, standing
/// in for Go's `runtime.GC`, the other setting 3), while a chain of
/// goroutines keeps starting its successor and exiting. Nothing deadlocks,
/// both loops finish all their rounds, the chain runs before and after the
/// storm (how many links fall inside it is up to the OS: on a loaded
/// machine both loops may end before the chain's thread gets a timeslice),
/// it stops when told, and GOMAXPROCS ends at 3.
fn test_stop_the_world_deadlock() {
    const ROUNDS: u32 = 100;
    let _procs = Procs::set(3);
    let stop = Chan::<()>::new(1);
    let ended = Chan::<u64>::new(1);
    let links = Arc::new(AtomicU64::new(0));
    {
        let (stop, links, ended) = (stop.clone(), links.clone(), ended.clone());
        go(move || perpetuum_mobile(stop, links, ended));
    }
    chain_advances(&links, 0, "before the stops");
    let resizer = spawn(|| {
        let mut n = 0;
        for i in 0..ROUNDS {
            rt_sched::set_gomaxprocs(2 + (i % 2) as i32);
            n += 1;
        }
        rt_sched::set_gomaxprocs(3);
        n
    });
    let setter = spawn(|| {
        let mut n = 0;
        for _ in 0..ROUNDS {
            rt_sched::set_gomaxprocs(3);
            n += 1;
        }
        n
    });
    assert_eq!(join(resizer, "resizer"), ROUNDS);
    assert_eq!(join(setter, "setter"), ROUNDS);
    chain_advances(&links, links.load(SeqCst), "after the stops");
    stop.send(());
    let n = must_recv(&ended, "stop_the_world_deadlock");
    assert!(n >= 2, "stop_the_world_deadlock: {n} links reported");
    assert_eq!(
        links.load(SeqCst),
        n,
        "stop_the_world_deadlock: chain went on after stop"
    );
    assert_eq!(
        rt_sched::gomaxprocs(),
        3,
        "stop_the_world_deadlock: GOMAXPROCS"
    );
}

/// A goroutine that only polls a channel with non-blocking selects and
/// yields in between must not keep the main goroutine's timer (and its
/// send) from happening.
fn yield_progress(locked: bool, what: &str) {
    let c = Chan::<()>::new(0);
    let ack = Chan::<u64>::new(0);
    let spins = Arc::new(AtomicU64::new(0));
    {
        let (c, ack, spins) = (c.clone(), ack.clone(), spins.clone());
        go(move || {
            if locked {
                rt_sched::lock_os_thread();
            }
            loop {
                let ready = {
                    let mut s = Select::new();
                    s.recv(&c);
                    s.try_select().is_some()
                };
                if ready {
                    ack.send(spins.load(SeqCst));
                    return;
                }
                spins.fetch_add(1, SeqCst);
                gosched();
            }
        });
    }
    // Wait until it is spinning, then sleep while it spins.
    while spins.load(SeqCst) == 0 {
        sleep(Duration::from_millis(1));
    }
    let seen = spins.load(SeqCst);
    sleep(Duration::from_millis(10));
    c.send(());
    let n = must_recv(&ack, what);
    assert!(
        n >= seen,
        "{what}: spin count went backwards ({n} < {seen})"
    );
}

/// Go: TestYieldProgress. See `yield_progress`.
fn test_yield_progress() {
    yield_progress(false, "yield_progress");
}

/// Go: TestYieldLockedProgress. `yield_progress` with the yielding
/// goroutine locked to its thread.
fn test_yield_locked_progress() {
    yield_progress(true, "yield_locked_progress");
}

/// Go: TestYieldLocked. A goroutine locked to its thread yields and sleeps
/// ten times, staying on its M throughout, and exits still locked; the
/// runtime carries on afterwards (goroutines still run and communicate).
fn test_yield_locked() {
    let c = Chan::<(u32, bool)>::new(0);
    {
        let c = c.clone();
        go(move || {
            rt_sched::lock_os_thread();
            let m = rt_sched::mid();
            let (mut n, mut same) = (0, true);
            for _ in 0..10 {
                gosched();
                sleep(Duration::from_millis(1));
                same &= rt_sched::mid() == m;
                n += 1;
            }
            c.send((n, same));
            // No unlock_os_thread: the goroutine exits locked.
        });
    }
    assert_eq!(c.recv(), Some((10, true)), "yield_locked: rounds, same M");
    let hs: Vec<_> = (0..8u64)
        .map(|k| {
            spawn(move || {
                let c = Chan::new(1);
                c.send(k * k);
                must_recv(&c, "yield_locked after")
            })
        })
        .collect();
    let sum: u64 = hs.into_iter().map(|h| join(h, "yield_locked after")).sum();
    assert_eq!(sum, 140, "yield_locked: the runtime after a locked exit");
}

/// One wait of a spinning goroutine: `sched_yield`, so that on a machine
/// with fewer cores than spinners the OS runs the thread whose turn it is
/// soon. It is not an rt scheduling point: the goroutine keeps its M and P.
fn spin() {
    std::thread::yield_now();
}

/// `P` goroutines pass a token round-robin by spinning on an atomic (no
/// scheduling points): that only finishes if all of them run at once.
/// Each reports its number; returns the bit set of who finished.
fn parallel_round(nested: bool) {
    const P: u32 = 4;
    let x = Arc::new(AtomicU32::new(0));
    let done = Chan::<u32>::new(0);
    let worker = |me: u32, x: Arc<AtomicU32>, done: Chan<u32>| {
        move || {
            for i in 0..3 {
                let expected = P * i + me;
                while x.load(SeqCst) != expected {
                    spin();
                }
                x.store(expected + 1, SeqCst);
            }
            done.send(me);
        }
    };
    if nested {
        for p in 0..P / 2 {
            let (x, done) = (x.clone(), done.clone());
            go(move || {
                for p2 in 0..2 {
                    go(worker(p * 2 + p2, x.clone(), done.clone()));
                }
            });
        }
    } else {
        for p in 0..P {
            go(worker(p, x.clone(), done.clone()));
        }
    }
    let mut who = 0u32;
    for _ in 0..P {
        who |= 1 << must_recv(&done, "goroutine_parallelism");
    }
    assert_eq!(who, (1 << P) - 1, "goroutine_parallelism: finishers");
    assert_eq!(x.load(SeqCst), 3 * P, "goroutine_parallelism: token passes");
}

/// Go: TestGoroutineParallelism. At GOMAXPROCS=4, four goroutines that
/// spin without yielding pass a token around three times: every runnable
/// goroutine must get a P of its own (ten rounds, as Go).
fn test_goroutine_parallelism() {
    let _procs = Procs::set(4);
    for _ in 0..10 {
        parallel_round(false);
    }
}

/// Go: TestGoroutineParallelism2 (without the netpoller variant). As
/// `goroutine_parallelism` with the workers started two levels deep, with
/// and without first making every P busy until all four spinners met.
fn test_goroutine_parallelism2() {
    const P: u32 = 4;
    let _procs = Procs::set(P as i32);
    for load in [false, true] {
        for _ in 0..10 {
            if load {
                let x = Arc::new(AtomicU32::new(0));
                let done = Chan::<()>::new(0);
                for _ in 0..P {
                    let (x, done) = (x.clone(), done.clone());
                    go(move || {
                        if x.fetch_add(1, SeqCst) + 1 == P {
                            done.send(());
                            return;
                        }
                        while x.load(SeqCst) != P {
                            spin();
                        }
                    });
                }
                must_recv(&done, "goroutine_parallelism2 load");
                assert_eq!(x.load(SeqCst), P);
            }
            parallel_round(true);
        }
    }
}

/// Go: TestBlockLocked. A goroutine locked to its thread blocks in ten
/// sends; each arrives in order and it stays on one M.
fn test_block_locked() {
    let c = Chan::<(u32, i64)>::new(0);
    {
        let c = c.clone();
        go(move || {
            rt_sched::lock_os_thread();
            for i in 0..10 {
                c.send((i, rt_sched::mid()));
            }
            rt_sched::unlock_os_thread();
        });
    }
    let mut m = None;
    for i in 0..10 {
        let (j, mm) = must_recv(&c, "block_locked");
        assert_eq!(j, i, "block_locked: order");
        assert_eq!(*m.get_or_insert(mm), mm, "block_locked: moved to another M");
    }
}

/// Go: TestTimerFairness. Two goroutines keep offering values on an
/// unbuffered channel while main receives them in a select that also
/// waits on a 20 ms timer: the timer must still fire. Checks every value
/// sent was received by main, and that main received at least one.
fn test_timer_fairness() {
    let done = Chan::<()>::new(0);
    let c = Chan::<bool>::new(0);
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (c, done) = (c.clone(), done.clone());
            spawn(move || {
                let mut sent = 0u64;
                loop {
                    let mut s = Select::new();
                    let w = s.send(&c, true);
                    s.recv(&done);
                    if s.select() != w {
                        return sent;
                    }
                    sent += 1;
                }
            })
        })
        .collect();
    let timer = rt_sched::after(Duration::from_millis(20));
    let mut n = 0u64;
    loop {
        let mut s = Select::new();
        let tc = s.recv(&c);
        s.recv(&timer);
        if s.select() != tc.index {
            break;
        }
        assert_eq!(s.received(tc), Some(true));
        n += 1;
    }
    done.close();
    let sent: u64 = hs.into_iter().map(|h| join(h, "timer_fairness")).sum();
    assert_eq!(sent, n, "timer_fairness: sent vs received");
    assert!(n >= 1, "timer_fairness: nothing received before the timer");
}

/// Go: TestTimerFairness2. Two goroutines, each with its own 20 ms timer,
/// make a system call, then select over sending to, receiving from (so
/// pairing with each other) and their timer, until the timer fires: both
/// timers must fire. Every value one sent the other received.
fn test_timer_fairness2() {
    let c = Chan::<u32>::new(0);
    let hs: Vec<_> = (0..2u32)
        .map(|me| {
            let c = c.clone();
            spawn(move || {
                let timer = rt_sched::after(Duration::from_millis(20));
                let (mut sent, mut recvd) = (0u64, 0u64);
                loop {
                    // A cheap system call, as Go's zero-length read(0).
                    std::thread::yield_now();
                    let mut s = Select::new();
                    let w = s.send(&c, me);
                    let r = s.recv(&c);
                    let t = s.recv(&timer);
                    let i = s.select();
                    if i == w {
                        sent += 1;
                    } else if i == r.index {
                        let v = got(&mut s, r, "timer_fairness2");
                        assert_ne!(v, me, "timer_fairness2: received its own value");
                        recvd += 1;
                    } else {
                        assert_eq!(i, t.index);
                        return (sent, recvd);
                    }
                }
            })
        })
        .collect();
    let r: Vec<(u64, u64)> = hs.into_iter().map(|h| join(h, "timer_fairness2")).collect();
    assert_eq!(r[0].0, r[1].1, "timer_fairness2: 0's sends vs 1's receives");
    assert_eq!(r[1].0, r[0].1, "timer_fairness2: 1's sends vs 0's receives");
}

/// Go: TestGCFairness (testprog's GCFairness). At GOMAXPROCS=1, two
/// goroutines write to /dev/null in a loop, each write a blocking call
/// (`rt_sched::blocking`, which hands the P on): main's 10 ms sleep must
/// still end. Both writers wrote at least once. (Go's writers rely on
/// preemption and on sysmon taking the P from a system call; rt has
/// neither, so its writers say the call blocks.)
fn test_gc_fairness() {
    use std::io::Write;
    let _procs = Procs::set(1);
    let Ok(f) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return; // as Go: without /dev/null there is nothing to test
    };
    let f = Arc::new(f);
    let stop = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (f, stop) = (f.clone(), stop.clone());
            spawn(move || {
                let mut n = 0u64;
                while !stop.load(SeqCst) {
                    rt_sched::blocking(|| (&*f).write_all(b".")).expect("write /dev/null");
                    n += 1;
                }
                n
            })
        })
        .collect();
    sleep(Duration::from_millis(10));
    stop.store(true, SeqCst);
    let counts: Vec<u64> = hs.into_iter().map(|h| join(h, "gc_fairness")).collect();
    assert!(
        counts.iter().all(|&n| n > 0),
        "gc_fairness: a writer never ran: {counts:?}"
    );
}

/// Go: TestNumGoroutine (testprog's NumGoroutine, which prints 1). At the
/// start only main is counted; ten goroutines blocked on a channel add ten;
/// once released and exited the count is back to 1.
fn test_num_goroutine() {
    assert_eq!(rt_sched::num_goroutine(), 1, "num_goroutine: at start");
    let hold = Chan::<()>::new(0);
    let wg = WaitGroup::new();
    for _ in 0..10 {
        wg.add(1);
        let (hold, wg) = (hold.clone(), wg.clone());
        go(move || {
            wg.done();
            hold.recv();
        });
    }
    assert_eq!(
        rt_sched::num_goroutine(),
        11,
        "num_goroutine: after ten go statements"
    );
    wg.wait();
    assert_eq!(rt_sched::num_goroutine(), 11, "num_goroutine: ten blocked");
    hold.close();
    while rt_sched::num_goroutine() > 1 {
        sleep(Duration::from_micros(100));
    }
    assert_eq!(
        rt_sched::num_goroutine(),
        1,
        "num_goroutine: after they exited"
    );
}

/// One goroutine of a ping-pong pair: on each token from `wake`, do `work`
/// units of work and hand the token back; returns the work done.
fn ping_pong(work: u64, wake: Chan<()>, done: Chan<()>, hops: Arc<AtomicU64>) -> u64 {
    let mut total = 0;
    loop {
        let woken = {
            let mut s = Select::new();
            let d = s.recv(&done);
            s.recv(&wake);
            s.select() != d.index
        };
        if !woken {
            return total;
        }
        for _ in 0..work {
            total = black_box(total + 1);
        }
        hops.fetch_add(1, SeqCst);
        wake.send(());
    }
}

/// Go: TestPingPongHog. At GOMAXPROCS=1, a pair of goroutines that do a lot
/// of work per hand-off and a pair that do little both ping-pong (each
/// hand-off readies the partner to run next on the same P), while main
/// sleeps. Go checks their work is within a factor 20 over 100 ms, which
/// needs preemption (rt has none). Here: each pair must get at least 20
/// hand-offs in while the other pair is also active, and main's sleep must
/// end to see it, i.e. neither pair may keep the P to itself for good. The
/// work counted by the goroutines must match their hand-offs.
fn test_ping_pong_hog() {
    const HOG: u64 = 200_000;
    const LIGHT: u64 = 200;
    const MIN_HOPS: u64 = 20;
    let _procs = Procs::set(1);
    let done = Chan::<()>::new(0);
    let hog = Chan::<()>::new(0);
    let light = Chan::<()>::new(0);
    let hog_hops = Arc::new(AtomicU64::new(0));
    let light_hops = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();
    for (work, ch, hops) in [(HOG, &hog, &hog_hops), (LIGHT, &light, &light_hops)] {
        for _ in 0..2 {
            let (ch, done, hops) = (ch.clone(), done.clone(), hops.clone());
            hs.push((work, spawn(move || ping_pong(work, ch, done, hops))));
        }
    }
    hog.send(());
    light.send(());
    while hog_hops.load(SeqCst) < MIN_HOPS || light_hops.load(SeqCst) < MIN_HOPS {
        sleep(Duration::from_millis(1));
    }
    done.close();
    must_recv(&hog, "ping_pong_hog");
    must_recv(&light, "ping_pong_hog");
    let (mut hog_work, mut light_work) = (0, 0);
    for (work, h) in hs {
        let w = join(h, "ping_pong_hog");
        if work == HOG {
            hog_work += w;
        } else {
            light_work += w;
        }
    }
    assert_eq!(
        hog_work,
        hog_hops.load(SeqCst) * HOG,
        "ping_pong_hog: hog work"
    );
    assert_eq!(
        light_work,
        light_hops.load(SeqCst) * LIGHT,
        "ping_pong_hog: light work"
    );
}

/// Go: TestLockOSThreadNesting (what can be seen without Go's internal
/// counters). Locked twice and unlocked once, a goroutine is still locked:
/// through many yields and sleeps while other goroutines keep every P busy
/// it stays on one M. After the second unlock it goes on working.
fn test_lock_os_thread_nesting() {
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            spawn(move || {
                let mut n = 0u64;
                while !stop.load(SeqCst) {
                    gosched();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let h = spawn(|| {
        rt_sched::lock_os_thread();
        rt_sched::lock_os_thread();
        rt_sched::unlock_os_thread();
        let m = rt_sched::mid();
        for i in 0..100 {
            gosched();
            if i % 10 == 0 {
                sleep(Duration::from_micros(50));
            }
            assert_eq!(
                rt_sched::mid(),
                m,
                "lock_os_thread_nesting: moved off its M"
            );
        }
        rt_sched::unlock_os_thread();
        let c = Chan::new(1);
        c.send(m);
        c.recv()
    });
    let m = join(h, "lock_os_thread_nesting");
    assert!(m.is_some_and(|m| m >= 0), "lock_os_thread_nesting: {m:?}");
    stop.store(true, SeqCst);
    for b in busy {
        join(b, "busy");
    }
}
