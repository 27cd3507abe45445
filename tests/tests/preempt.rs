//! Asynchronous preemption (rt-demo `hog`, `stdoutlock`, `stdmutex`,
//! `blockcalls`, `setuid`, `preemptstress`): a goroutine that never enters
//! the runtime no longer stops the others, stays on its thread across
//! preemptions, and can be stopped while it holds a thread-affine lock or
//! sits in a blocking call made without `blocking()`; glibc's setxid
//! broadcast reaches every thread; the allocator and channels hold up under
//! frequent preemption. `cargo xtask stress` runs these a hundred times
//! more.

mod common;
use common::*;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The tests here run side by side and most keep a core busy; the one that
/// bounds a time (`hog`'s tick gaps) runs alone so that the other scenarios
/// of this file do not take the CPU its ticker and sysmon wait for.
static CPU: RwLock<()> = RwLock::new(());

/// Held by a test that spins, beside the others that spin.
fn shared_cpu() -> RwLockReadGuard<'static, ()> {
    CPU.read().unwrap_or_else(|e| e.into_inner())
}

/// Held by the test that bounds a time: none of the others runs meanwhile.
fn whole_cpu() -> RwLockWriteGuard<'static, ()> {
    CPU.write().unwrap_or_else(|e| e.into_inner())
}

/// Runs rt-demo `args` `times` times at GOMAXPROCS=1 and at 2, with
/// `GODEBUG=godebug` unless it is empty, each run killed after `secs`
/// seconds; every run must exit 0 having printed exactly `want(procs)`.
fn prints_at_1_and_2(
    args: &[&str],
    godebug: &str,
    times: usize,
    secs: u64,
    want: impl Fn(&str) -> String,
) {
    for procs in ["1", "2"] {
        let mut env = vec![("GOMAXPROCS", procs)];
        if !godebug.is_empty() {
            env.push(("GODEBUG", godebug));
        }
        for _ in 0..times {
            let (code, out, err) = run_bounded(RT0, args, &env, secs);
            assert_eq!(
                code, 0,
                "GOMAXPROCS={procs} {args:?} (-1: hung): {out}{err}"
            );
            assert_eq!(out, want(procs), "GOMAXPROCS={procs} {args:?}: {err}");
        }
    }
}

/// What `hog` prints when every tick came within 30 ms on the same thread.
const HOG_OK: &str = "hog ok ticks=100 gap<30ms=true same_tid=true same_tls=true\n";
/// What it prints when one gap alone reached 30 ms.
const HOG_LATE: &str = "hog FAILED ticks=100 gap<30ms=false same_tid=true same_tls=true\n";
/// Tries a run whose only fault is one late tick gets (see below). CI, on a
/// shared two-core machine, once saw one such run in the three at
/// GOMAXPROCS=1 (a 38 ms gap): at that rate five tries leave a test failure
/// about once in a hundred pushes, three tries once in ten.
const HOG_TRIES: usize = 5;

/// Runs rt-demo `args` (`hog`, or a scenario that ends with it) at
/// `procs` until it prints `prefix` and [`HOG_OK`], trying again a run
/// whose only fault is one late tick (see below), up to [`HOG_TRIES`].
fn hog_on_time(args: &[&str], procs: &str, prefix: &str, secs: u64) {
    let (ok, late_out) = (format!("{prefix}{HOG_OK}"), format!("{prefix}{HOG_LATE}"));
    let mut late = Vec::new();
    loop {
        let (code, out, err) = run_bounded(RT0, args, &[("GOMAXPROCS", procs)], secs);
        if code == 1 && out == late_out && late.len() + 1 < HOG_TRIES {
            late.push(err);
            continue;
        }
        assert_eq!(
            (code, out.as_str()),
            (0, ok.as_str()),
            "GOMAXPROCS={procs} {args:?} (-1: hung): {err}; earlier tries: {late:?}"
        );
        return;
    }
}

#[test]
fn a_spinning_goroutine_does_not_starve_the_ticker() {
    let _cpu = whole_cpu();
    // A 30 ms gap is three preemption intervals: the runtime needs about
    // 10.2 ms on a quiet machine (and under 26 ms with four CPU burners on
    // two cores), but a shared machine can withhold a core from the few
    // threads of the preemption chain (sysmon, the hog's handler, the M
    // that takes its P) for longer than that. A run late by one gap is
    // therefore tried again: a runtime that misses the bound fails every
    // try, the machine's hiccups do not repeat on cue. Everything else
    // (all 100 ticks, the hog's thread and its thread_local! address)
    // must hold on every run. `cargo xtask stress` runs `hog` without
    // this allowance, 100 times at each GOMAXPROCS.
    for procs in ["1", "2"] {
        for _ in 0..3 {
            hog_on_time(&["hog"], procs, "", RUN_BOUND_SECS);
        }
    }
}

#[test]
fn sysmon_asleep_through_an_idle_spell_wakes_for_the_next_hog() {
    let _cpu = whole_cpu();
    // sysmon sleeps without a timeout once every P has been idle for a
    // second; a P that leaves the idle list wakes it. If it did not, the
    // hog would never be preempted and the run would hang at GOMAXPROCS=1.
    for procs in ["1", "2"] {
        hog_on_time(&["hogidle"], procs, "sysmon slept\n", RUN_BOUND_SECS + 20);
    }
}

#[test]
fn asyncpreemptoff_keeps_the_hog_on_its_p() {
    let _cpu = shared_cpu();
    // With preemption off the ticker cannot run while the hog spins at
    // GOMAXPROCS=1: the scenario only ends because the test bounds it.
    let env = [("GOMAXPROCS", "1"), ("GODEBUG", "asyncpreemptoff=1")];
    let (code, out, _) = run_bounded(RT0, &["hog"], &env, 3);
    assert!(code == -1 && !out.contains("hog ok"), "{code} {out}");
}

#[test]
fn a_goroutine_holding_stdouts_lock_is_preempted_in_place() {
    let _cpu = shared_cpu();
    for procs in ["1", "2"] {
        let o = run(RT0, ["stdoutlock"], &[("GOMAXPROCS", procs)]);
        assert_eq!(status(&o), 0, "GOMAXPROCS={procs}: {}", err(&o));
        let text = out(&o);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"holder has the lock"), "{text}");
        assert_eq!(lines.get(1), Some(&"holder lets go"), "{text}");
        assert_eq!(lines.last(), Some(&"stdoutlock ok lines=20"), "{text}");
        let printed: Vec<&&str> = lines.iter().filter(|l| l.starts_with("printer ")).collect();
        assert_eq!(printed.len(), 20, "{text}");
        for l in printed {
            // Whole lines only: `printer I line J xxxx…` (40 x).
            let parts: Vec<&str> = l.split(' ').collect();
            assert_eq!(parts.len(), 5, "torn line {l:?}");
            assert_eq!(parts[4], "x".repeat(40), "torn line {l:?}");
        }
    }
}

#[test]
fn goroutines_blocked_on_a_std_mutex_are_preempted_and_every_increment_counts() {
    let _cpu = shared_cpu();
    // The holder's 1 and 1000 from each of the 4 waiters, all of which
    // found the mutex held.
    prints_at_1_and_2(&["stdmutex"], "", 3, RUN_BOUND_SECS, |_| {
        "stdmutex ok count=4001 contended=4\n".into()
    });
}

#[test]
fn blocking_calls_without_blocking_do_not_stop_the_program() {
    let _cpu = shared_cpu();
    // 3 pipes of 5000 + 777·i bytes.
    let bytes: usize = (0..3).map(|i| 5000 + i * 777).sum();
    prints_at_1_and_2(&["blockcalls"], "", 3, RUN_BOUND_SECS, |_| {
        format!("blockcalls ok pipes=3 bytes={bytes} ticks=10\n")
    });
}

#[test]
fn setuid_reaches_threads_suspended_by_preemption() {
    let _cpu = shared_cpu();
    // glibc waits for every thread to take SIGSETXID: one that cannot
    // hangs the call, so each run is bounded well below the default.
    prints_at_1_and_2(&["setuid"], "", 5, 60, |procs| {
        format!("setuid ok calls=20 hogs={procs}\n")
    });
}

#[test]
fn gomaxprocs_changes_complete_while_goroutines_spin() {
    let _cpu = shared_cpu();
    // Each change stops the world, which waits for every hog's preemption:
    // a P that never reaches the stopper hangs the run.
    prints_at_1_and_2(&["hogresize"], "", 3, 60, |procs| {
        format!("hogresize ok changes=12 gomaxprocs={procs}\n")
    });
}

#[test]
fn allocation_and_channels_survive_frequent_preemption() {
    let _cpu = shared_cpu();
    let rounds = 1000u64;
    // 8 workers; every 8th allocation of each goes over the channel.
    let (allocs, sent) = (8 * rounds, 8 * rounds.div_ceil(8));
    let n = rounds.to_string();
    let args = ["preemptstress", n.as_str()];
    prints_at_1_and_2(&args, "preemptinterval=1000", 1, RUN_BOUND_SECS, |_| {
        format!("preemptstress ok allocs={allocs} checked={allocs} sent={sent} received={sent}\n")
    });
}

/// The highest `key=N` counter on the `SCHED` lines in `err` (counters
/// only grow; the last line may be cut short by the exit).
fn last_counter(err: &str, key: &str) -> u64 {
    err.lines()
        .filter(|l| l.starts_with("SCHED "))
        .filter_map(|l| {
            l.split(' ')
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
        })
        .max()
        .unwrap_or_else(|| panic!("no SCHED line with {key}=: {err}"))
}

#[test]
fn a_goroutine_blocked_in_the_kernel_gives_up_its_p_and_takes_one_back() {
    let _cpu = shared_cpu();
    for procs in ["1", "2"] {
        let env = [("GOMAXPROCS", procs), ("GODEBUG", "schedtrace=5")];
        for _ in 0..3 {
            let (code, out, err) = run_bounded(RT0, &["handoff"], &env, RUN_BOUND_SECS);
            assert_eq!(code, 0, "GOMAXPROCS={procs} (-1: hung): {out}{err}");
            assert_eq!(
                out, "handoff ok read=true wrote=true pingpong=true child=7 same_thread=true\n",
                "GOMAXPROCS={procs}: {err}"
            );
            // The read gave its P up (at GOMAXPROCS=1 main's ping-pong
            // needed it); the P-less spin was stopped to wait for one.
            assert!(
                last_counter(&err, "handoffs") >= 1,
                "GOMAXPROCS={procs}: {err}"
            );
            assert!(
                last_counter(&err, "preemptions") >= 1,
                "GOMAXPROCS={procs}: {err}"
            );
        }
    }
}

#[test]
fn goroutines_back_from_the_kernel_park_on_channels_without_a_p() {
    let _cpu = shared_cpu();
    prints_at_1_and_2(&["blockchan", "500"], "", 3, RUN_BOUND_SECS, |_| {
        "blockchan ok pairs=4 bytes=2000 wrote=true\n".to_string()
    });
}
