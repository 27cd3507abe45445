//! rt-demo: a runtime program in the manner of Go's `testprog`. The first
//! argument names a scenario; the rest are its arguments.

mod gochan;
mod net;
mod pollfd;
mod preempt;
mod selectmacro;
mod stress;
mod torture;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

/// Every scenario `main` dispatches, by group: (name, arguments, what it
/// does). `rt-demo help` prints this table, an unknown scenario prints it
/// on stderr, and `tests/tests/scenarios.rs` checks that it, the dispatcher
/// below and README.md's list name the same scenarios.
const SCENARIOS: &[(&str, &[(&str, &str, &str)])] = &[
    (
        "boot and environment",
        &[
            (
                "hello",
                "",
                "print hello, world, then goroutine id, M id and gomaxprocs (the default)",
            ),
            (
                "args",
                "ARGS...",
                "print each argument on its own line, bytes as given",
            ),
            ("env", "NAME", "print the value of environment variable NAME"),
            ("procs", "", "print gomaxprocs"),
            (
                "threads",
                "",
                "print the OS thread count before and after the first goroutine (sysmon starts lazily)",
            ),
            ("exit", "[N]", "return N (default 0) from main"),
            (
                "debugvars",
                "",
                "print the parsed GODEBUG and GOTRACEBACK settings, one key=value per line",
            ),
        ],
    ),
    (
        "scheduler",
        &[
            (
                "spawn",
                "[N]",
                "spawn N goroutines that each bump a counter; print how many ran",
            ),
            (
                "pingpong",
                "[N]",
                "N round trips over an unbuffered channel between two goroutines",
            ),
            (
                "yield",
                "[N]",
                "two goroutines taking turns with gosched, N rounds each; checks they alternate at GOMAXPROCS=1",
            ),
            (
                "chan",
                "[N]",
                "N messages through a buffered channel from 4 senders to 4 receivers, checked",
            ),
            (
                "select",
                "",
                "select over two producers, a timeout and a default case",
            ),
            (
                "selectmacro",
                "",
                "select! and the channel conventions: fairness, closed, send, default, timeouts, five arms, goroutines",
            ),
            ("sleep", "", "timers fire in deadline order"),
            (
                "gomaxprocs",
                "",
                "change the number of Ps while goroutines run; nothing is lost",
            ),
            (
                "lockosthread",
                "",
                "a goroutine locked to its thread stays there and has the thread to itself",
            ),
            (
                "mutex",
                "",
                "goroutines contend on a Mutex; every increment survives",
            ),
            (
                "parked",
                "[N]",
                "N goroutines parked on a channel at once; print how many and the RSS per goroutine",
            ),
            (
                "schedtrace",
                "",
                "keep busy for a while so GODEBUG=schedtrace prints SCHED lines",
            ),
            (
                "threadlimit",
                "",
                "SetMaxThreads(4), then more locked goroutines than threads",
            ),
            (
                "thread",
                "",
                "a std thread spawned from a goroutine allocates and is not mistaken for an M",
            ),
            (
                "blocking",
                "[N]",
                "N goroutines make blocking calls that hand their P off; all finish",
            ),
            (
                "hog",
                "",
                "a goroutine spins in its own code while main ticks every 1 ms: preemption keeps every gap under 30 ms",
            ),
            (
                "hogidle",
                "",
                "idles until sysmon sleeps until woken, then runs hog: leaving the idle list wakes sysmon",
            ),
            (
                "stdoutlock",
                "",
                "a goroutine spins holding stdout's lock while others println: preempted in place, no deadlock",
            ),
            (
                "hogresize",
                "",
                "one goroutine per P spins while main changes GOMAXPROCS 12 times: each stop-the-world completes",
            ),
            (
                "stdmutex",
                "",
                "a goroutine spins holding a std Mutex while 4 others block on it in futex waits; the count is exact",
            ),
            (
                "blockcalls",
                "",
                "read, poll, thread::sleep, Condvar waits without blocking(); a ticker must progress to release them",
            ),
            (
                "handoff",
                "",
                "a goroutine blocked in read(2) gives up its P, then runs 30 ms of CPU without one, then spawns",
            ),
            (
                "blockchan",
                "[N]",
                "4 pairs pass N bytes each over pipes with plain read/write; readers forward them over a channel",
            ),
            (
                "setuid",
                "",
                "setuid/setgid (glibc's SIGSETXID to every thread) while hogs are suspended in their SIGURG handlers",
            ),
            (
                "fpcontrol",
                "",
                "who owns MXCSR and the x87 control word (GODEBUG=fpenv)",
            ),
            (
                "fpswitch",
                "",
                "the same across direct yield_to switches, and g0's own state",
            ),
        ],
    ),
    (
        "network",
        &[
            (
                "pollfd",
                "",
                "the network poller: data, deadlines, eviction, many waiters, a plain thread",
            ),
            (
                "net",
                "",
                "rt-net: deadlines, close from another goroutine, half-close, resets, sharing, UDP, Unix sockets, bad input",
            ),
            (
                "echoserve",
                "",
                "the echo example's server on a free port; prints listening on ADDR and serves until killed",
            ),
            (
                "httpserve",
                "",
                "the HTTP example's server on a free port; prints listening on ADDR and serves until killed",
            ),
            (
                "echoclient",
                "ADDR [N]",
                "N connections to an echo server open at once, every byte sent and checked",
            ),
            (
                "netcycle",
                "[N]",
                "N connect/close cycles: no descriptor leaks, memory bounded",
            ),
        ],
    ),
    (
        "stacks and heap",
        &[
            (
                "stacks",
                "[N]",
                "N goroutines each touching a page of stack; VMA count before, at peak, after",
            ),
            (
                "overflow",
                "",
                "unbounded recursion in a goroutine that is not main",
            ),
            (
                "heap",
                "",
                "allocate and free a few hundred MiB in goroutines; print heap statistics",
            ),
            (
                "mcacheslot",
                "[N]",
                "goroutines park and resume; on every M the allocator's thread-local slot stays null",
            ),
            (
                "oom",
                "[GiB]",
                "allocate a Vec bigger than the machine (default 128 TiB, past the heap's 64 TiB limit)",
            ),
            (
                "badfree",
                "[0|1]",
                "free 65 pointers the heap does not own; 0: let sysmon find them, 1: malloc again",
            ),
        ],
    ),
    (
        "how it dies",
        &[
            ("deadlock", "", "block main on a channel nobody sends to"),
            ("panic", "", "panic in a goroutine spawned without a handle"),
            ("mainpanic", "", "panic in main (goroutine 1)"),
            ("joinpanic", "", "a panic returned by a join handle"),
            (
                "panicpark",
                "[N]",
                "a goroutine whose destructor parks while its panic unwinds; the report names that panic",
            ),
            (
                "closedchan",
                "[join|gosend|goclose]",
                "send on / second close of a closed channel: recovered by join, or unrecovered in a `go`",
            ),
            ("segv", "", "null write in a goroutine"),
            (
                "threadfault",
                "",
                "null write in a std thread spawned from a goroutine",
            ),
            (
                "quit",
                "",
                "park goroutines and wait (send SIGQUIT for a dump, SIGINT to die)",
            ),
            (
                "notify",
                "",
                "wait for SIGINT through rt_signal::notify, print it, exit 0",
            ),
            ("nohup", "", "started with SIGINT ignored: it stays ignored"),
        ],
    ),
    (
        "torture (run many times by `cargo xtask stress`)",
        &[
            (
                "selectstorm",
                "[FEATURES|all]",
                "8 senders, 6 selecting receivers; FEATURES: after,selsend,mutex,sleep,flip,env",
            ),
            (
                "gochan",
                "list|NAME",
                "Go's channel, select and scheduler tests rewritten for rt",
            ),
            (
                "torture",
                "SEED [SIZE] [plan]",
                "a seeded random program of goroutines, channels, select, timers and locks, checked",
            ),
            (
                "lockpp",
                "[N]",
                "a goroutine locked to its thread ping-pongs with an unlocked one",
            ),
            (
                "gmptimer",
                "[N]",
                "GOMAXPROCS cycles 1..=4 while goroutines sleep on timers",
            ),
            (
                "gmp2",
                "[N]",
                "two goroutines change GOMAXPROCS at the same time",
            ),
            (
                "lockblock",
                "[N]",
                "a locked goroutine makes blocking calls while others keep every P busy",
            ),
            (
                "foreignlat",
                "[N]",
                "a plain std thread ping-pongs with a goroutine",
            ),
            (
                "selstress",
                "[N]",
                "contended selects over six channels; every value received exactly once",
            ),
            (
                "preemptstress",
                "[N]",
                "8 goroutines make N checked allocations each, some sent over channels, while 2 hogs spin (GODEBUG=preemptinterval=1000)",
            ),
        ],
    ),
];

/// Writes the scenario list, group by group: `  <call>  <what>`, the calls
/// padded to one width.
fn write_scenarios(w: &mut dyn Write) {
    let call = |name: &str, args: &str| {
        if args.is_empty() {
            name.to_string()
        } else {
            format!("{name} {args}")
        }
    };
    let width = SCENARIOS
        .iter()
        .flat_map(|(_, list)| list.iter())
        .map(|(name, args, _)| call(name, args).len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(w, "usage: rt-demo [SCENARIO [ARGS...]]; scenarios:");
    for (group, list) in SCENARIOS {
        let _ = writeln!(w, "{group}:");
        for (name, args, what) in *list {
            let _ = writeln!(w, "  {:<width$}  {what}", call(name, args));
        }
    }
}

/// An unknown scenario or a bad argument (`what`): the list on stderr,
/// status 2.
fn usage(what: &str) -> i32 {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "rt-demo: {what}");
    write_scenarios(&mut e);
    2
}

fn num(args: &[&OsStr], i: usize, default: u64) -> u64 {
    args.get(i)
        .and_then(|a| std::str::from_utf8(a.as_bytes()).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The program's `main`: runs as goroutine 1.
pub fn main() -> i32 {
    let args = rt_entry::args();
    let scenario = args.get(1).map(|a| a.as_bytes()).unwrap_or(b"hello");
    let rest = if args.len() > 2 { &args[2..] } else { &[][..] };
    match scenario {
        b"help" | b"-h" | b"--help" => {
            write_scenarios(&mut std::io::stdout().lock());
            0
        }
        b"hello" => {
            println!("hello, world");
            println!(
                "goroutine {} on m{} gomaxprocs={}",
                rt_sched::goid(),
                rt_sched::mid(),
                rt_sched::gomaxprocs()
            );
            0
        }
        b"threads" => {
            let count = || std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
            println!("threads before: {}", count());
            rt_sched::spawn(|| ()).join().expect("goroutine");
            // sysmon's M registers itself once its thread runs.
            let mut after = count();
            for _ in 0..1000 {
                if after > 1 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
                after = count();
            }
            println!("threads after: {after}");
            0
        }
        b"args" => {
            let mut out = std::io::stdout().lock();
            for a in rest {
                let _ = out.write_all(a.as_bytes());
                let _ = out.write_all(b"\n");
            }
            0
        }
        b"env" => {
            let Some(name) = rest.first() else {
                return usage("env needs NAME");
            };
            match rt_env::getenv(name.as_bytes()) {
                Some(v) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(v.as_bytes());
                    let _ = out.write_all(b"\n");
                    0
                }
                None => 1,
            }
        }
        b"procs" => {
            println!("{}", rt_sched::gomaxprocs());
            0
        }
        b"exit" => num(rest, 0, 0) as i32,
        b"debugvars" => {
            let st = rt_entry::boot::state();
            print!(
                "{}",
                rt_env::debugvars_report(
                    &st.debug.unwrap_or_default(),
                    &st.traceback.unwrap_or(rt_env::parse_gotraceback(None))
                )
            );
            0
        }
        b"spawn" => scenarios::spawn(num(rest, 0, 100_000)),
        b"pingpong" => scenarios::pingpong(num(rest, 0, 100_000)),
        b"yield" => scenarios::yield_(num(rest, 0, 100_000)),
        b"chan" => scenarios::chan(num(rest, 0, 1_000_000)),
        b"sleep" => scenarios::sleep(),
        b"select" => scenarios::select(),
        b"selectmacro" => selectmacro::main(),
        b"gomaxprocs" => scenarios::gomaxprocs(),
        b"lockosthread" => scenarios::lockosthread(),
        b"mutex" => scenarios::mutex(),
        b"threadlimit" => scenarios::threadlimit(),
        b"deadlock" => scenarios::deadlock(), // tb:deadlock-call
        b"panic" => scenarios::panic(),
        b"mainpanic" => {
            println!("before the panic");
            panic!("boom in main") // tb:mainpanic
        }
        b"joinpanic" => scenarios::joinpanic(),
        b"panicpark" => scenarios::panicpark(num(rest, 0, 8)),
        b"closedchan" => scenarios::closedchan(rest.first().map_or(&b"join"[..], |a| a.as_bytes())),
        b"badfree" => scenarios::badfree(num(rest, 0, 0)),
        b"oom" => {
            // Beyond the heap's MAX_ALLOC (64 TiB) by default, so it is
            // refused whatever the machine's overcommit policy.
            let gib = num(rest, 0, 1 << 17) as usize;
            println!("allocating {gib} GiB");
            let v: Vec<u8> = Vec::with_capacity(gib << 30);
            println!("got {:p}", v.as_ptr());
            0
        }
        b"overflow" => scenarios::overflow(),
        b"stacks" => scenarios::stacks(num(rest, 0, 10_000)),
        b"parked" => scenarios::parked(num(rest, 0, 100_000)),
        b"segv" => scenarios::segv(),
        b"threadfault" => scenarios::threadfault(),
        b"lockpp" => stress::lockpp(num(rest, 0, 20_000)),
        b"gmptimer" => stress::gmptimer(num(rest, 0, 20_000)),
        b"gmp2" => stress::gmp2(num(rest, 0, 2_000)),
        b"lockblock" => stress::lockblock(num(rest, 0, 300)),
        b"foreignlat" => stress::foreignlat(num(rest, 0, 100_000)),
        b"selstress" => stress::selstress(num(rest, 0, 20_000)),
        b"blocking" => scenarios::blocking(num(rest, 0, 100)),
        b"pollfd" => pollfd::main(),
        b"hog" => preempt::hog(),
        b"hogidle" => preempt::hogidle(),
        b"stdoutlock" => preempt::stdoutlock(),
        b"stdmutex" => preempt::stdmutex(),
        b"blockcalls" => preempt::blockcalls(),
        b"setuid" => preempt::setuid(),
        b"hogresize" => preempt::hogresize(),
        b"handoff" => preempt::handoff(),
        b"blockchan" => preempt::blockchan(num(rest, 0, 2000)),
        b"preemptstress" => preempt::preemptstress(num(rest, 0, 20_000)),
        b"net" => net::checks(),
        b"echoserve" => net::echoserve(),
        b"httpserve" => net::httpserve(),
        b"echoclient" => match rest.first().and_then(|a| a.to_str()) {
            Some(addr) => net::echoclient(addr, num(rest, 1, 10_000) as usize),
            None => usage("echoclient needs an address"),
        },
        b"netcycle" => net::netcycle(num(rest, 0, 100_000) as usize),
        b"fpcontrol" => scenarios::fpcontrol(),
        b"fpswitch" => scenarios::fpswitch(),
        b"quit" => scenarios::quit(),
        b"notify" => scenarios::notify(),
        b"nohup" => scenarios::nohup(),
        b"thread" => scenarios::thread(),
        b"mcacheslot" => scenarios::mcacheslot(num(rest, 0, 2000)),
        b"heap" => scenarios::heap(),
        b"schedtrace" => scenarios::schedtrace(),
        b"gochan" => gochan::main(rest),
        b"torture" => torture::main(rest),
        b"selectstorm" => stress::selectstorm(rest),
        other => usage(&format!(
            "unknown scenario {:?}",
            String::from_utf8_lossy(other)
        )),
    }
}

mod scenarios {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    pub fn spawn(n: u64) -> i32 {
        let count = Arc::new(AtomicU64::new(0));
        let wg = rt_sched::WaitGroup::new();
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            wg.add(1);
            let (c, wg) = (count.clone(), wg.clone());
            rt_sched::go(move || {
                c.fetch_add(1, Ordering::Relaxed);
                wg.done();
            });
        }
        wg.wait();
        let el = t0.elapsed();
        println!("ran {}", count.load(Ordering::Relaxed));
        eprintln!(
            "spawn: {:.1} ns/goroutine",
            el.as_nanos() as f64 / n.max(1) as f64
        );
        if count.load(Ordering::Relaxed) == n {
            0
        } else {
            1
        }
    }

    pub fn pingpong(n: u64) -> i32 {
        let ping = rt_sched::Chan::<u64>::new(0);
        let pong = rt_sched::Chan::<u64>::new(0);
        let (pi, po) = (ping.clone(), pong.clone());
        // Go's `go func() { … }()`, as a macro.
        rt_sched::go!(while let Some(v) = pi.recv() {
            po.send(v + 1);
        });
        let t0 = std::time::Instant::now();
        let mut v = 0;
        for _ in 0..n {
            ping.send(v);
            v = pong.recv().expect("pong");
        }
        let el = t0.elapsed();
        ping.close();
        println!("round trips {v}");
        eprintln!(
            "pingpong: {:.1} ns/round trip",
            el.as_nanos() as f64 / n.max(1) as f64
        );
        if v == n {
            0
        } else {
            1
        }
    }

    /// Two goroutines each run `n` rounds, calling `gosched` after every
    /// round and noting, at the start of each round, how many rounds the
    /// other has finished. Prints the rounds counted; with one P it also
    /// prints whether they took turns: `gosched` puts the caller at the back
    /// of the global run queue, behind the other goroutine, so while both
    /// still have rounds left neither may run more than two in a row (two,
    /// not one: every 61st schedule takes the global queue's head first,
    /// which can be the goroutine that just yielded — Go does the same).
    pub fn yield_(n: u64) -> i32 {
        let rounds = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let t0 = std::time::Instant::now();
        let hs: Vec<_> = (0..2usize)
            .map(|me| {
                let rounds = rounds.clone();
                rt_sched::spawn(move || {
                    // The longest stretch of this goroutine's rounds during
                    // which the other, not yet finished, ran none.
                    let (mut streak, mut longest) = (0u64, 0u64);
                    let mut last = u64::MAX;
                    for i in 0..n {
                        let seen = rounds[1 - me].load(Ordering::Relaxed);
                        streak = if seen == last { streak + 1 } else { 1 };
                        last = seen;
                        if seen < n {
                            longest = longest.max(streak);
                        }
                        rounds[me].store(i + 1, Ordering::Relaxed);
                        rt_sched::gosched();
                    }
                    longest
                })
            })
            .collect();
        let longest: Vec<u64> = hs
            .into_iter()
            .map(|h| h.join().unwrap_or(u64::MAX))
            .collect();
        let el = t0.elapsed();
        let total = rounds[0].load(Ordering::Relaxed) + rounds[1].load(Ordering::Relaxed);
        let mut ok = total == 2 * n;
        if rt_sched::gomaxprocs() == 1 {
            let alternated = longest.iter().all(|&l| l <= 2);
            println!("yields {total} alternated={alternated}");
            ok &= alternated;
        } else {
            println!("yields {total}");
        }
        eprintln!(
            "yield: {:.1} ns/switch; longest run of one goroutine {longest:?}",
            el.as_nanos() as f64 / (2 * n).max(1) as f64
        );
        i32::from(!ok)
    }

    pub fn chan(n: u64) -> i32 {
        // 4 senders and 4 receivers over one buffered channel; the channel is
        // closed once every sender is done, and each receiver reports how
        // many values it got and their sum.
        let ch = rt_sched::Chan::<u64>::new(64);
        let results = rt_sched::Chan::<(u64, u64)>::new(4);
        let senders = rt_sched::WaitGroup::new();
        let per = n / 4;
        for s in 0..4u64 {
            senders.add(1);
            let (ch, senders) = (ch.clone(), senders.clone());
            rt_sched::go(move || {
                for i in 0..per {
                    ch.send(s * per + i);
                }
                senders.done();
            });
        }
        for _ in 0..4 {
            let (ch, res) = (ch.clone(), results.clone());
            rt_sched::go(move || {
                let (mut cnt, mut sum) = (0u64, 0u64);
                for v in ch.iter() {
                    cnt += 1;
                    sum = sum.wrapping_add(v);
                }
                res.send((cnt, sum));
            });
        }
        senders.wait();
        ch.close();
        let (mut cnt, mut sum) = (0u64, 0u64);
        for _ in 0..4 {
            let (c, s) = results.recv().expect("receiver result");
            cnt += c;
            sum = sum.wrapping_add(s);
        }
        let total = per * 4;
        let want_sum = (0..total).fold(0u64, |a, v| a.wrapping_add(v));
        println!("received {} sum_ok={}", cnt, sum == want_sum);
        if cnt == total && sum == want_sum {
            0
        } else {
            1
        }
    }

    pub fn sleep() -> i32 {
        let out = rt_sched::Chan::<u64>::new(8);
        // Deadlines 20 ms apart from one common start, so the order cannot
        // depend on when each goroutine first ran.
        let base = rt_sys::nanotime();
        for ms in [60u64, 20, 40, 0] {
            let out = out.clone();
            rt_sched::go(move || {
                rt_sched::boot::sleep_until(base + ms as i64 * 1_000_000);
                out.send(ms);
            });
        }
        let order: Vec<u64> = (0..4).map(|_| out.recv().unwrap()).collect();
        println!("woke in order {order:?}");
        // A timer must fire even while another goroutine keeps the P busy
        // (it yields, but the run queue is never empty). The spinner stops
        // only once main has woken, so if the timer never fired the program
        // would not finish (the tests bound every run). Main reads the
        // spinner's count as soon as it wakes: a count above zero shows the
        // spinner was running, keeping the run queue busy, while main slept.
        let woke = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spins = Arc::new(AtomicU64::new(0));
        let (w2, s2) = (woke.clone(), spins.clone());
        let spinner = rt_sched::spawn(move || {
            while !w2.load(Ordering::Relaxed) {
                s2.fetch_add(1, Ordering::Relaxed);
                rt_sched::gosched();
            }
        });
        rt_sched::sleep(std::time::Duration::from_millis(10));
        let spun_meanwhile = spins.load(Ordering::Relaxed) > 0;
        woke.store(true, Ordering::Relaxed);
        let joined = spinner.join().is_ok();
        let busy = spun_meanwhile && joined;
        println!("timer fired while busy: {busy}");
        if order == [0, 20, 40, 60] && busy {
            0
        } else {
            1
        }
    }

    pub fn select() -> i32 {
        let a = rt_sched::Chan::<u64>::new(0);
        let b = rt_sched::Chan::<u64>::new(0);
        let quit = rt_sched::Chan::<()>::new(0);
        for (ch, n) in [(a.clone(), 300u64), (b.clone(), 200u64)] {
            rt_sched::go(move || {
                for i in 0..n {
                    ch.send(i);
                }
                ch.close();
            });
        }
        // Nothing is ready yet on `quit`: the default case fires.
        let mut s = rt_sched::Select::new();
        let _q = s.recv(&quit);
        let defaulted = s.try_select().is_none();
        let (mut na, mut nb) = (0u64, 0u64);
        let (mut a_open, mut b_open) = (true, true);
        while a_open || b_open {
            let mut s = rt_sched::Select::new();
            // A closed channel is always ready: leave it out once seen closed.
            let ta = a_open.then(|| s.recv(&a));
            let tb = b_open.then(|| s.recv(&b));
            let i = s.select();
            if let Some(ta) = ta.filter(|t| t.index == i) {
                match s.received(ta) {
                    Some(_) => na += 1,
                    None => a_open = false,
                }
            } else if let Some(tb) = tb.filter(|t| t.index == i) {
                match s.received(tb) {
                    Some(_) => nb += 1,
                    None => b_open = false,
                }
            }
        }
        // A timeout case: nobody sends on `quit`, `after` fires.
        let timeout = rt_sched::after(std::time::Duration::from_millis(20));
        let mut s = rt_sched::Select::new();
        let tq = s.recv(&quit);
        let tt = s.recv(&timeout);
        let fired = s.select();
        let timed_out = fired == tt.index && fired != tq.index;
        println!("a={na} b={nb} default={defaulted} timeout={timed_out}");
        if na == 300 && nb == 200 && defaulted && timed_out {
            0
        } else {
            1
        }
    }

    pub fn gomaxprocs() -> i32 {
        let total = Arc::new(AtomicU64::new(0));
        let wg = rt_sched::WaitGroup::new();
        for _ in 0..8 {
            wg.add(1);
            let (t, wg) = (total.clone(), wg.clone());
            rt_sched::go(move || {
                for _ in 0..20_000 {
                    t.fetch_add(1, Ordering::Relaxed);
                    rt_sched::gosched();
                }
                wg.done();
            });
        }
        let mut seen = Vec::new();
        for n in [1, 4, 2, 3, 1, 2] {
            let old = rt_sched::set_gomaxprocs(n);
            seen.push(format!("{old}->{}", rt_sched::gomaxprocs()));
            rt_sched::sleep(std::time::Duration::from_millis(5));
        }
        wg.wait();
        println!(
            "changes {} total={}",
            seen.join(" "),
            total.load(Ordering::Relaxed)
        );
        if total.load(Ordering::Relaxed) == 8 * 20_000 {
            0
        } else {
            1
        }
    }

    pub fn lockosthread() -> i32 {
        use std::sync::atomic::AtomicI64;
        let locked_m = Arc::new(AtomicI64::new(-1));
        let intruders = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let wg = rt_sched::WaitGroup::new();
        // Busy goroutines that note which M they run on.
        for _ in 0..4 {
            wg.add(1);
            let (lm, intr, stop, wg) = (
                locked_m.clone(),
                intruders.clone(),
                stop.clone(),
                wg.clone(),
            );
            rt_sched::go(move || {
                while !stop.load(Ordering::Relaxed) {
                    if rt_sched::mid() == lm.load(Ordering::Relaxed) {
                        intr.fetch_add(1, Ordering::Relaxed);
                    }
                    rt_sched::gosched();
                }
                wg.done();
            });
        }
        let (lm, stop2) = (locked_m.clone(), stop.clone());
        let h = rt_sched::spawn(move || {
            rt_sched::lock_os_thread();
            let me = rt_sched::mid();
            lm.store(me, Ordering::Relaxed);
            let ch = rt_sched::Chan::<u64>::new(0);
            let tx = ch.clone();
            rt_sched::go(move || {
                for i in 0..100 {
                    tx.send(i);
                }
            });
            let mut moved = 0;
            for _ in 0..100 {
                rt_sched::gosched();
                ch.recv();
                rt_sched::sleep(std::time::Duration::from_micros(100));
                if rt_sched::mid() != me {
                    moved += 1;
                }
            }
            lm.store(-1, Ordering::Relaxed);
            rt_sched::unlock_os_thread();
            stop2.store(true, Ordering::Relaxed);
            moved
        });
        let moved = h.join().unwrap_or(-1);
        wg.wait();
        let intr = intruders.load(Ordering::Relaxed);
        println!("moved={moved} intruders={intr}");
        if moved == 0 && intr == 0 {
            0
        } else {
            1
        }
    }

    pub fn threadlimit() -> i32 {
        rt_sched::set_max_threads(4);
        // Each goroutine locked to its thread keeps that M to itself while it
        // sleeps, so every further one needs a new M.
        let wg = rt_sched::WaitGroup::new();
        for _ in 0..8 {
            wg.add(1);
            let wg = wg.clone();
            rt_sched::go(move || {
                rt_sched::lock_os_thread();
                rt_sched::sleep(std::time::Duration::from_millis(200));
                wg.done();
            });
        }
        wg.wait();
        println!("not reached");
        0
    }

    pub fn mutex() -> i32 {
        let m = Arc::new(rt_sched::Mutex::new(0u64));
        let wg = rt_sched::WaitGroup::new();
        for _ in 0..16 {
            wg.add(1);
            let (m, wg) = (m.clone(), wg.clone());
            rt_sched::go(move || {
                for i in 0..5000 {
                    let mut g = m.lock();
                    *g += 1;
                    if i % 7 == 0 {
                        // Hold it across a yield: others must park, then be handed the lock.
                        rt_sched::gosched();
                    }
                    drop(g);
                }
                wg.done();
            });
        }
        wg.wait();
        let v = *m.lock();
        println!("count={v}");
        if v == 16 * 5000 {
            0
        } else {
            1
        }
    }

    pub fn deadlock() -> i32 {
        let ch = rt_sched::Chan::<()>::new(0);
        ch.recv(); // tb:deadlock
        0
    }

    pub fn panic() -> i32 {
        rt_sched::go(|| panic!("boom from a goroutine")); // tb:panic
        rt_sched::sleep(std::time::Duration::from_secs(5));
        0
    }

    /// Goroutines that park while their panic unwinds (a destructor that
    /// sleeps, sends and locks), so the goroutine may resume on another M
    /// before its panic is reported; the others keep the Ms busy. The
    /// report must still name this panic: its message and location.
    pub fn panicpark(n: u64) -> i32 {
        struct ParkOnDrop(rt_sched::Chan<u64>, std::sync::Arc<rt_sched::Mutex<u64>>);
        impl Drop for ParkOnDrop {
            fn drop(&mut self) {
                for i in 0..20 {
                    rt_sched::sleep(std::time::Duration::from_micros(50));
                    self.0.send(i);
                    *self.1.lock() += 1;
                }
            }
        }
        let sink = rt_sched::Chan::<u64>::new(0);
        let m = std::sync::Arc::new(rt_sched::Mutex::new(0u64));
        for _ in 0..n {
            let s = sink.clone();
            rt_sched::go(move || while s.recv().is_some() {});
        }
        for _ in 0..n {
            let m = m.clone();
            rt_sched::go(move || {
                let mut x = 0u64;
                loop {
                    x = x.wrapping_add(1);
                    if x % 1024 == 0 {
                        *m.lock() += 1;
                        rt_sched::gosched();
                    }
                }
            });
        }
        let (s, m2) = (sink.clone(), m.clone());
        rt_sched::go(move || {
            let _guard = ParkOnDrop(s, m2);
            panic!("boom after a park in unwinding");
        });
        rt_sched::sleep(std::time::Duration::from_secs(30));
        0
    }

    pub fn joinpanic() -> i32 {
        let h = rt_sched::spawn(|| -> u32 { panic!("caught") });
        match h.join() {
            Err(p) => {
                println!("join: panicked: {}", rt_sched::panic_message(&*p));
                0
            }
            Ok(_) => 1,
        }
    }

    /// Go's run-time panics on closed channels. `join`: goroutines started
    /// with `spawn` send on a closed channel, send while blocked when the
    /// channel is closed, send through a select, and close a channel twice;
    /// each join must return the panic with Go's message, and nothing is
    /// printed on stderr. `gosend` / `goclose`: the same panic in a goroutine
    /// started with `go`, which nobody recovers: the program must end with
    /// Go's report (main meanwhile waits on a channel nobody sends to).
    pub fn closedchan(mode: &[u8]) -> i32 {
        use rt_sched::Chan;
        let closed = Chan::<u64>::new(1);
        closed.close();
        match mode {
            b"join" => {
                let report = |what: &str, h: rt_sched::JoinHandle<()>| match h.join() {
                    Ok(()) => {
                        println!("{what}: no panic");
                        false
                    }
                    Err(p) => {
                        println!("{what}: join error: {}", rt_sched::panic_message(&*p));
                        true
                    }
                };
                let c = closed.clone();
                let send = report("send", rt_sched::spawn(move || c.send(1)));
                // The sender blocks (no receiver) and is woken by the close.
                // Yielding first lets it reach the send at GOMAXPROCS=1;
                // either way the send must panic.
                let open = Chan::<u64>::new(0);
                let c = open.clone();
                let h = rt_sched::spawn(move || c.send(2));
                for _ in 0..3 {
                    rt_sched::gosched();
                }
                open.close();
                let blocked = report("blocked send", h);
                let c = closed.clone();
                let select = report(
                    "select send",
                    rt_sched::spawn(move || {
                        let mut s = rt_sched::Select::new();
                        s.send(&c, 3);
                        s.select();
                    }),
                );
                let twice = Chan::<u64>::new(0);
                let close = report(
                    "close",
                    rt_sched::spawn(move || {
                        twice.close();
                        twice.close();
                    }),
                );
                i32::from(!(send && blocked && select && close))
            }
            b"gosend" | b"goclose" => {
                let c = closed.clone();
                if mode == b"gosend" {
                    rt_sched::go(move || c.send(1));
                } else {
                    rt_sched::go(move || c.close());
                }
                let never = Chan::<()>::new(0);
                let _ = never.recv();
                println!("not reached");
                1
            }
            other => super::usage(&format!(
                "closedchan {} (want join, gosend or goclose)",
                String::from_utf8_lossy(other)
            )),
        }
    }

    #[allow(unconditional_recursion)]
    fn recurse(depth: u64, buf: &mut [u8; 1024]) -> u64 {
        std::hint::black_box(depth);
        let mut local = [0u8; 1024];
        local[0] = buf[0].wrapping_add(1);
        std::hint::black_box(&mut local);
        recurse(depth + 1, &mut local) + local[1] as u64
    }

    pub fn overflow() -> i32 {
        println!("recursing in a goroutine");
        let h = rt_sched::spawn(|| {
            let mut b = [0u8; 1024];
            recurse(0, &mut b)
        });
        let _ = h.join();
        0
    }

    pub fn stacks(n: u64) -> i32 {
        let before = rt_stack::vma_count();
        let wg = rt_sched::WaitGroup::new();
        let release = rt_sched::Chan::<()>::new(0);
        let arrived = Arc::new(AtomicU64::new(0));
        for _ in 0..n {
            wg.add(1);
            let (wg, release, arrived) = (wg.clone(), release.clone(), arrived.clone());
            rt_sched::go(move || {
                let page = [1u8; 2048];
                std::hint::black_box(&page);
                arrived.fetch_add(1, Ordering::Relaxed);
                let _ = release.recv();
                wg.done();
            });
        }
        while arrived.load(Ordering::Relaxed) < n {
            rt_sched::gosched();
        }
        let peak = rt_stack::vma_count();
        release.close();
        wg.wait();
        let after = rt_stack::vma_count();
        println!("goroutines={n} vmas_before={before} vmas_peak={peak} vmas_after={after}");
        0
    }

    fn rss_bytes() -> u64 {
        let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        s.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 4096
    }

    pub fn parked(n: u64) -> i32 {
        let release = rt_sched::Chan::<()>::new(0);
        let arrived = Arc::new(AtomicU64::new(0));
        let wg = rt_sched::WaitGroup::new();
        let before = rss_bytes();
        for _ in 0..n {
            wg.add(1);
            let (r, a, wg) = (release.clone(), arrived.clone(), wg.clone());
            rt_sched::go(move || {
                a.fetch_add(1, Ordering::Relaxed);
                r.recv();
                wg.done();
            });
        }
        while arrived.load(Ordering::Relaxed) < n {
            rt_sched::sleep(std::time::Duration::from_millis(1));
        }
        rt_sched::sleep(std::time::Duration::from_millis(20));
        let peak = rss_bytes();
        let parked = rt_sched::num_goroutine() - 1;
        release.close();
        wg.wait();
        println!(
            "parked={parked} rss_per_goroutine={} bytes",
            peak.saturating_sub(before) / n.max(1)
        );
        0
    }

    pub fn segv() -> i32 {
        println!("about to fault");
        // tb:segv-go is the next line
        let h = rt_sched::spawn(|| {
            // tb:segv-body is the next line
            let p = std::hint::black_box(std::ptr::null_mut::<u64>());
            // SAFETY: deliberately unsound — this scenario exists to show the
            // runtime's report for a fault in goroutine code.
            unsafe { p.write_volatile(1) }; // tb:segv-fault
        });
        let _ = h.join(); // tb:segv-join
        0
    }

    /// Goroutines parked in four different ways for a SIGQUIT dump: a
    /// channel receive, a select, a sleep and a blocking read on a pipe.
    pub fn quit() -> i32 {
        let started = Arc::new(AtomicU64::new(0));
        let s = started.clone();
        rt_sched::go(move || quit_recv(&s)); // tb:quit-go-recv
        let s = started.clone();
        rt_sched::go(move || quit_select(&s)); // tb:quit-go-select
        let s = started.clone();
        rt_sched::go(move || quit_sleep(&s)); // tb:quit-go-sleep
        let s = started.clone();
        rt_sched::go(move || quit_blocked(&s)); // tb:quit-go-blocked
                                                // Ready once all four are about to wait.
        while started.load(Ordering::Relaxed) < 4 {
            rt_sched::sleep(std::time::Duration::from_millis(1));
        }
        rt_sched::sleep(std::time::Duration::from_millis(20));
        println!("ready");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        rt_sched::sleep(std::time::Duration::from_secs(30));
        println!("no signal came");
        1
    }

    #[inline(never)]
    fn quit_recv(started: &AtomicU64) {
        let ch = rt_sched::Chan::<()>::new(0);
        started.fetch_add(1, Ordering::Relaxed);
        ch.recv(); // tb:quit-recv
    }

    #[inline(never)]
    fn quit_select(started: &AtomicU64) {
        let (a, b) = (rt_sched::Chan::<u8>::new(0), rt_sched::Chan::<u8>::new(0));
        started.fetch_add(1, Ordering::Relaxed);
        rt_sched::select! { // tb:quit-select
            recv(a) -> _v => {},
            recv(b) -> _v => {},
        } // tb:quit-select-end
    }

    #[inline(never)]
    fn quit_sleep(started: &AtomicU64) {
        started.fetch_add(1, Ordering::Relaxed);
        rt_sched::sleep(std::time::Duration::from_secs(60)); // tb:quit-sleep
                                                             // Not a tail call: the frame stays on the stack to be seen.
        std::hint::black_box(started);
    }

    #[inline(never)]
    fn quit_blocked(started: &AtomicU64) {
        let mut fds = [0; 2];
        // SAFETY: pipe fills the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        started.fetch_add(1, Ordering::Relaxed);
        let mut b = [0u8; 1];
        // SAFETY: reads into a live one-byte buffer; nobody writes, so the
        // read blocks until the process ends.
        let n = rt_sched::blocking(|| unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 1) }); // tb:quit-blocked
        std::hint::black_box(n);
    }

    pub fn notify() -> i32 {
        let n = rt_signal::notify(&[libc::SIGINT]);
        // Other goroutines keep running while one waits for the signal,
        // even with GOMAXPROCS=1: the wait hands its P off.
        let ticks = Arc::new(AtomicU64::new(0));
        let t2 = ticks.clone();
        rt_sched::go(move || loop {
            t2.fetch_add(1, Ordering::Relaxed);
            rt_sched::sleep(std::time::Duration::from_millis(1));
        });
        println!("ready");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let sig = rt_sched::blocking(|| n.recv());
        println!("got signal {} ({})", sig, rt_signal::signal_name(sig));
        println!(
            "others ran meanwhile: {}",
            ticks.load(Ordering::Relaxed) > 0
        );
        0
    }

    pub fn nohup() -> i32 {
        // SAFETY: querying the current disposition only.
        let ignored = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old);
            old.sa_sigaction == libc::SIG_IGN
        };
        // SAFETY: raising a signal at ourselves; an ignored SIGINT does nothing.
        unsafe { libc::raise(libc::SIGINT) };
        println!("SIGINT ignored: {ignored}; still alive");
        0
    }

    /// Reads MXCSR and the x87 control word.
    fn fp_get() -> (u32, u16) {
        let e = rt_sched::boot::fp_env_current();
        (e.mxcsr(), e.x87_cw())
    }

    /// Loads MXCSR and the x87 control word. The caller runs no float code
    /// of its own in between and restores the default before returning.
    fn fp_set((m, c): (u32, u16)) {
        // SAFETY: the values are the defaults with only rounding-control
        // bits changed, both valid; see the caller contract above.
        unsafe { rt_sched::boot::fp_env_set(rt_sched::boot::FpEnv::new(m, c)) };
    }

    /// Rounding toward zero in both units (MXCSR RC = 11, x87 RC = 11).
    fn fp_toward_zero((m, c): (u32, u16)) -> (u32, u16) {
        (m | 0x6000, c | 0x0C00)
    }

    /// The paths `fpcontrol` does not take: goroutines handing the M to each
    /// other directly with `yield_to` (A rounds toward zero, B keeps the
    /// default; each checks its own state after every resume), and the
    /// state g0 runs in while a goroutine rounding toward zero parks (the
    /// unlock function of `gopark` runs on g0).
    pub fn fpswitch() -> i32 {
        use std::sync::atomic::AtomicPtr;
        static GA: AtomicPtr<rt_sched::boot::G> = AtomicPtr::new(std::ptr::null_mut());
        static GB: AtomicPtr<rt_sched::boot::G> = AtomicPtr::new(std::ptr::null_mut());
        static G0ENV: AtomicU64 = AtomicU64::new(0);
        fn record(_: *mut rt_sched::boot::G, _: usize) -> bool {
            G0ENV.store(rt_sched::boot::fp_env_current().0, Ordering::Relaxed);
            false // do not park after all: resume at once
        }
        let default = fp_get();
        let rz = fp_toward_zero(default);

        let d = rt_sched::Chan::<()>::new(1);
        let d2 = d.clone();
        rt_sched::go(move || {
            fp_set(rz);
            rt_sched::boot::gopark(Some(record), 0, "fp probe");
            fp_set(default);
            d2.send(());
        });
        let _ = d.recv();
        let g0 = rt_sched::boot::FpEnv(G0ENV.load(Ordering::Relaxed));

        let n = 1000u64;
        let bad = Arc::new(AtomicU64::new(0));
        let done = rt_sched::Chan::<()>::new(1);
        let bb = bad.clone();
        rt_sched::go(move || {
            rt_tests::park_for_yield_to(&GB, "fp switch");
            for _ in 0..n {
                // SAFETY: A is suspended in yield_to and waits for exactly this.
                unsafe { rt_sched::boot::yield_to(GA.load(Ordering::Acquire)) };
                if fp_get() != default {
                    bb.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Left runnable in no queue; the process ends after main reports.
        });
        let (ba, dn) = (bad.clone(), done.clone());
        rt_sched::go(move || {
            GA.store(rt_sched::boot::current_g(), Ordering::Release);
            let b = rt_tests::wait_parked(&GB);
            fp_set(rz);
            for _ in 0..n {
                // SAFETY: B is parked (first time) or suspended in yield_to.
                unsafe { rt_sched::boot::yield_to(b) };
                if fp_get() != rz {
                    ba.fetch_add(1, Ordering::Relaxed);
                }
            }
            fp_set(default);
            dn.send(());
        });
        let _ = done.recv();
        println!("fpenv={}", u8::from(rt_sched::boot::fp_per_g()));
        println!("g0 in default: {}", (g0.mxcsr(), g0.x87_cw()) == default);
        println!("yield_to mismatches={}", bad.load(Ordering::Relaxed));
        0
    }

    /// Checks who owns the FP control state (`GODEBUG=fpenv`): goroutines
    /// keep their own across switches, a new goroutine starts with its
    /// creator's, and (at GOMAXPROCS=1) whether one goroutine's change is
    /// seen by the next goroutine on the thread — it is only with fpenv=0.
    pub fn fpcontrol() -> i32 {
        let default = fp_get();
        let rz = fp_toward_zero(default);
        let bad = Arc::new(AtomicU64::new(0));
        let wg = rt_sched::WaitGroup::new();
        for i in 0..4u64 {
            wg.add(1);
            let (bad, wg) = (bad.clone(), wg.clone());
            rt_sched::go(move || {
                // Odd goroutines round toward zero, even ones keep the default.
                let mine = if i % 2 == 1 { rz } else { default };
                fp_set(mine);
                for _ in 0..10_000 {
                    rt_sched::gosched();
                    if fp_get() != mine {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
                fp_set(default);
                wg.done();
            });
        }
        wg.wait();

        // A goroutine spawned from one rounding toward zero starts so; one
        // spawned from main starts in main's state.
        let child = rt_sched::Chan::<((u32, u16), (u32, u16))>::new(1);
        let c = child.clone();
        rt_sched::go(move || {
            fp_set(rz);
            let inner = rt_sched::Chan::new(1);
            let i2 = inner.clone();
            rt_sched::go(move || i2.send(fp_get()));
            let from_rz = inner.recv().unwrap_or_default();
            fp_set(default);
            let i3 = inner.clone();
            rt_sched::go(move || i3.send(fp_get()));
            let from_default = inner.recv().unwrap_or_default();
            c.send((from_rz, from_default));
        });
        let (from_rz, from_default) = child.recv().unwrap_or_default();

        // A sets toward-zero and blocks; B, readied by A, runs next on the
        // same thread when there is one P.
        let to_b = rt_sched::Chan::<()>::new(0);
        let seen = rt_sched::Chan::<(u32, u16)>::new(0);
        let hold = rt_sched::Chan::<()>::new(0);
        let done = rt_sched::Chan::<()>::new(1);
        let (tb, sb) = (to_b.clone(), seen.clone());
        rt_sched::go(move || {
            let _ = tb.recv();
            sb.send(fp_get());
        });
        let (tb, h, d) = (to_b.clone(), hold.clone(), done.clone());
        rt_sched::go(move || {
            fp_set(rz);
            tb.send(());
            let _ = h.recv(); // parks A still rounding toward zero
            fp_set(default);
            d.send(());
        });
        let b_saw = seen.recv().unwrap_or_default();
        hold.send(());
        let _ = done.recv();
        fp_set(default);

        let b = bad.load(Ordering::Relaxed);
        let per_g = rt_sched::boot::fp_per_g();
        println!("fpenv={}", u8::from(per_g));
        println!("mismatches={b}");
        println!("child of toward-zero starts toward-zero: {}", from_rz == rz);
        println!(
            "child of default starts default: {}",
            from_default == default
        );
        if rt_sched::gomaxprocs() == 1 {
            println!("next goroutine sees the change: {}", b_saw == rz);
        }
        // With fpenv=0 the state is the thread's: mismatches are expected.
        i32::from(per_g && b != 0)
    }

    /// Frees 65 pointers the heap does not own (1 KiB objects, from the
    /// system allocator): two cache overflows hand a whole batch to the
    /// mcentral. Mode 0 then waits for sysmon's scavenger to meet the bad
    /// objects; mode 1 allocates the same class again.
    pub fn badfree(mode: u64) -> i32 {
        const SIZE: usize = 1024;
        const N: usize = 65;
        let Ok(layout) = std::alloc::Layout::from_size_align(SIZE * N, 4096) else {
            return 1;
        };
        // SAFETY: a valid, non-zero layout; the block is never freed.
        let fake = unsafe { std::alloc::GlobalAlloc::alloc(&std::alloc::System, layout) } as usize;
        if fake == 0 {
            return 1;
        }
        println!("freeing {N} foreign pointers");
        for i in 0..N {
            // SAFETY: deliberately wrong — the point of the scenario: the
            // pointer is not rt-heap memory, and the heap must say so.
            unsafe { rt_heap::free((fake + i * SIZE) as *mut u8, SIZE, 8) };
        }
        if mode == 0 {
            rt_sched::sleep(std::time::Duration::from_millis(300));
        } else {
            for _ in 0..N {
                let p = rt_heap::malloc(SIZE, 8) as usize;
                if (fake..fake + SIZE * N).contains(&p) {
                    println!("malloc returned a pointer the heap does not own");
                    return 3;
                }
            }
        }
        println!("not detected");
        0
    }

    pub fn blocking(n: u64) -> i32 {
        let done = Arc::new(AtomicU64::new(0));
        let wg = rt_sched::WaitGroup::new();
        for _ in 0..n {
            wg.add(1);
            let (done, wg) = (done.clone(), wg.clone());
            rt_sched::go(move || {
                for _ in 0..5 {
                    rt_sched::blocking(|| std::thread::sleep(std::time::Duration::from_millis(1)));
                    rt_sched::gosched();
                }
                done.fetch_add(1, Ordering::Relaxed);
                wg.done();
            });
        }
        wg.wait();
        println!("finished {}", done.load(Ordering::Relaxed));
        if done.load(Ordering::Relaxed) == n {
            0
        } else {
            1
        }
    }

    pub fn threadfault() -> i32 {
        println!("faulting in a plain thread");
        let t = std::thread::spawn(|| {
            let p = std::hint::black_box(std::ptr::null_mut::<u64>());
            // Deliberately unsound: the scenario shows the report for a fault
            // on a thread the runtime did not create (it inherited an M's GS base).
            // SAFETY: none; this write is meant to fault.
            unsafe { p.write_volatile(1) };
        });
        let _ = t.join();
        0
    }

    /// The allocator invariant behind the P0 fix: on every M the
    /// thread-local slot the inlined allocation path reads is null (the M's
    /// cache is reached through its GS block), while the M does have a
    /// current cache; on a plain thread the slot is its own cache.
    /// Goroutines check it before and after parking, on whichever M they
    /// resume; a plain thread checks the other half.
    pub fn mcacheslot(n: u64) -> i32 {
        fn check(where_: &str) {
            let slot = rt_heap::thread_local_cache_slot();
            let cur = rt_heap::current_cache();
            assert!(
                slot.is_null() && !cur.is_null(),
                "{where_}: M{} thread-local cache slot {slot:p}, current cache {cur:p}",
                rt_sched::mid()
            );
        }
        let wg = rt_sched::WaitGroup::new();
        let ch = rt_sched::Chan::<u64>::new(0);
        for g in 0..8u64 {
            let (wg, ch) = (wg.clone(), ch.clone());
            wg.add(1);
            rt_sched::go(move || {
                for i in 0..n {
                    check("before a park");
                    let v: Vec<u64> = (0..(i % 50)).collect();
                    if g % 2 == 0 {
                        ch.send(v.len() as u64);
                    } else {
                        let _ = ch.recv();
                    }
                    check("after a park");
                    drop(v);
                }
                wg.done();
            });
        }
        wg.wait();
        let plain = std::thread::spawn(|| {
            let v = vec![1u8; 100];
            let slot = rt_heap::thread_local_cache_slot();
            (!slot.is_null() && slot == rt_heap::current_cache(), v.len())
        })
        .join()
        .expect("plain thread");
        assert!(
            plain.0,
            "a plain thread allocates through its thread-local cache"
        );
        println!("mcacheslot ok {n}");
        0
    }

    pub fn thread() -> i32 {
        let me = rt_sched::goid();
        let ch = rt_sched::Chan::<u64>::new(0);
        let rx = ch.clone();
        let t = std::thread::spawn(move || {
            // Inherits the M's GS base but is not an M: allocation goes to a
            // per-thread cache, and blocking parks the thread on a futex
            // instead of mistaking it for a goroutine.
            let v: Vec<u64> = (0..1000).collect();
            let goid = rt_sched::goid();
            let mid = rt_sched::mid();
            let got = rx.recv().unwrap_or(0);
            (v.iter().sum::<u64>(), goid, mid, got)
        });
        rt_sched::sleep(std::time::Duration::from_millis(10));
        ch.send(42);
        let (sum, goid, mid, got) = t.join().unwrap();
        println!("goroutine {me} spawned a thread: sum={sum} thread goid={goid} mid={mid} received={got}");
        if goid == 0 && mid == -1 && sum == 499500 && got == 42 {
            0
        } else {
            1
        }
    }

    pub fn heap() -> i32 {
        let show = |what: &str| {
            let s = rt_heap::memstats();
            println!("{what}: {s:?}");
        };
        show("before");
        let wg = rt_sched::WaitGroup::new();
        let hold = rt_sched::Chan::<()>::new(0);
        let held = Arc::new(AtomicU64::new(0));
        for g in 0..8u64 {
            wg.add(1);
            let (wg, hold, held) = (wg.clone(), hold.clone(), held.clone());
            rt_sched::go(move || {
                let mut v: Vec<Vec<u8>> = Vec::new();
                for i in 0..4000u64 {
                    let n = 64 + ((i * 7919 + g) % 16000) as usize;
                    v.push(vec![g as u8; n]);
                }
                let big: Vec<Vec<u8>> = (0..4).map(|_| vec![1u8; 8 << 20]).collect();
                held.fetch_add(1, Ordering::Relaxed);
                let _ = hold.recv();
                drop(big);
                drop(v);
                wg.done();
            });
        }
        while held.load(Ordering::Relaxed) < 8 {
            rt_sched::gosched();
        }
        show("peak");
        hold.close();
        wg.wait();
        rt_heap::scavenge(usize::MAX);
        show("after");
        0
    }

    pub fn schedtrace() -> i32 {
        let wg = rt_sched::WaitGroup::new();
        for _ in 0..4 {
            wg.add(1);
            let wg = wg.clone();
            rt_sched::go(move || {
                let end = std::time::Instant::now() + std::time::Duration::from_millis(300);
                while std::time::Instant::now() < end {
                    rt_sched::gosched();
                }
                wg.done();
            });
        }
        wg.wait();
        println!("done");
        0
    }
}
