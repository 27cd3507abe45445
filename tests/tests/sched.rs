//! Scheduler behaviour through rt-demo scenarios.

mod common;
use common::*;

#[test]
fn a_million_goroutines_all_run() {
    for procs in ["1", "2"] {
        let o = run(RT0, ["spawn", "1000000"], &[("GOMAXPROCS", procs)]);
        assert_eq!(status(&o), 0, "{}", err(&o));
        assert_eq!(out(&o), "ran 1000000\n");
    }
}

#[test]
fn ten_million_messages_none_lost_across_two_ps() {
    let o = run(RT0, ["chan", "10000000"], &[("GOMAXPROCS", "2")]);
    assert_eq!(status(&o), 0, "{}", err(&o));
    assert_eq!(out(&o), "received 10000000 sum_ok=true\n");
}

#[test]
fn pingpong_completes() {
    let o = run(RT0, ["pingpong", "100000"], &[("GOMAXPROCS", "2")]);
    assert_eq!(out(&o), "round trips 100000\n", "{}", err(&o));
    assert_eq!(status(&o), 0);
}

#[test]
fn gosched_takes_turns_on_one_p() {
    // With one P the two goroutines must interleave (neither runs more
    // than two rounds in a row while the other has rounds left).
    let o = run(RT0, ["yield", "100000"], &[("GOMAXPROCS", "1")]);
    assert_eq!(out(&o), "yields 200000 alternated=true\n", "{}", err(&o));
    assert_eq!(status(&o), 0);
    // With two Ps they run side by side: only the totals are checked.
    let o = run(RT0, ["yield", "100000"], &[("GOMAXPROCS", "2")]);
    assert_eq!(out(&o), "yields 200000\n", "{}", err(&o));
    assert_eq!(status(&o), 0);
}

#[test]
fn timers_fire_in_deadline_order() {
    for procs in ["1", "2"] {
        let o = run(RT0, ["sleep"], &[("GOMAXPROCS", procs)]);
        assert_eq!(
            out(&o),
            "woke in order [0, 20, 40, 60]\ntimer fired while busy: true\n",
            "{}",
            err(&o)
        );
    }
}

#[test]
fn deadlock_is_reported_like_go() {
    let o = run(RT0, ["deadlock"], &[]);
    assert_eq!(status(&o), 2);
    let e = err(&o);
    assert!(
        e.starts_with(
            "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n"
        ),
        "{e}"
    );
}

#[test]
fn unrecovered_goroutine_panic_ends_the_program() {
    let o = run(RT0, ["panic"], &[]);
    assert_eq!(status(&o), 2);
    let e = err(&o);
    assert!(
        e.starts_with("panic: boom from a goroutine\n\ngoroutine "),
        "{e}"
    );
    assert!(e.contains(" [running]:\n"), "{e}");
}

#[test]
fn gotraceback_none_prints_the_panic_line_alone() {
    // Go: level 0 (none, or a value that is not a level) prints no
    // goroutine; `all` prints the others, one blank line before each.
    for tb in ["none", "0", "bogus"] {
        let o = run(RT0, ["panic"], &[("GOTRACEBACK", tb)]);
        assert_eq!(status(&o), 2);
        assert_eq!(
            err(&o),
            "panic: boom from a goroutine\n",
            "GOTRACEBACK={tb}"
        );
    }
    let o = run(RT0, ["panic"], &[("GOTRACEBACK", "all")]);
    let e = err(&o);
    assert!(e.contains(" [running]:\n"), "{e}");
    assert!(e.contains("\n\ngoroutine 1 ["), "{e}");
    assert!(!e.contains("\n\n\n"), "{e}");
}

#[test]
fn a_panic_in_main_is_reported_as_goroutine_1s() {
    for bin in ENTRIES {
        let o = run(bin, ["mainpanic"], &[]);
        assert_eq!(status(&o), 2, "{}", err(&o));
        assert_eq!(out(&o), "before the panic\n", "stdout is flushed first");
        let e = err(&o);
        assert!(
            e.starts_with("panic: boom in main\n\ngoroutine 1 [running]:\n"),
            "{e}"
        );
        assert!(!e.contains("abort"), "{e}");
    }
}

#[test]
fn closed_channel_panics_reach_the_join_handle() {
    for procs in ["1", "2"] {
        let o = run(RT0, ["closedchan", "join"], &[("GOMAXPROCS", procs)]);
        assert_eq!(
            out(&o),
            "send: join error: send on closed channel\n\
             blocked send: join error: send on closed channel\n\
             select send: join error: send on closed channel\n\
             close: join error: close of closed channel\n",
            "GOMAXPROCS={procs}: {}",
            err(&o)
        );
        assert_eq!(status(&o), 0);
        assert_eq!(err(&o), "", "recovered panics print nothing");
    }
}

#[test]
fn unrecovered_closed_channel_panics_end_the_program() {
    for (mode, msg) in [
        ("gosend", "send on closed channel"),
        ("goclose", "close of closed channel"),
    ] {
        for procs in ["1", "2"] {
            let o = run(RT0, ["closedchan", mode], &[("GOMAXPROCS", procs)]);
            let e = err(&o);
            assert_eq!(status(&o), 2, "{mode} GOMAXPROCS={procs}: {e}");
            assert_eq!(out(&o), "", "{mode}: main never got past its receive");
            assert!(
                e.starts_with(&format!("panic: {msg}\n\ngoroutine ")),
                "{mode} GOMAXPROCS={procs}: {e}"
            );
            assert!(e.contains(" [running]:\n"), "{mode}: {e}");
        }
    }
}

#[test]
fn join_handle_returns_the_panic() {
    let o = run(RT0, ["joinpanic"], &[]);
    assert_eq!(status(&o), 0, "{}", err(&o));
    assert_eq!(out(&o), "join: panicked: caught\n");
    assert_eq!(err(&o), "", "a recovered panic prints nothing");
}

#[test]
fn schedtrace_prints_gos_sched_lines() {
    let o = run(
        RT0,
        ["schedtrace"],
        &[("GODEBUG", "schedtrace=50"), ("GOMAXPROCS", "2")],
    );
    assert_eq!(status(&o), 0, "{}", err(&o));
    assert_eq!(out(&o), "done\n");
    let e = err(&o);
    // How many lines appear depends on how long the run took; that at
    // least one does, and that every line has Go's shape, does not. The
    // process may exit while sysmon is halfway through a line: a last
    // line without its newline is left out.
    let complete = &e[..e.rfind('\n').map_or(0, |i| i + 1)];
    let mut lines = 0;
    for l in complete.lines() {
        assert!(
            l.starts_with("SCHED "),
            "only SCHED lines on stderr: {l:?}\n{e}"
        );
        assert_sched_line(l);
        lines += 1;
    }
    assert!(lines >= 1, "no SCHED line: {e:?}");
}

/// Checks one `SCHED` line field by field, as Go prints it:
/// `SCHED 0ms: gomaxprocs=2 idleprocs=0 threads=4 spinningthreads=1
/// idlethreads=0 runqueue=0 [2 0]` (one run-queue length per P), then rt's
/// counters: ` steals=N runnextsteals=N overflows=N wakeups=N parks=N
/// preemptions=N handoffs=N`.
fn assert_sched_line(l: &str) {
    let (l, counters) = l
        .split_once("] ")
        .unwrap_or_else(|| panic!("no counters: {l}"));
    let l = &format!("{l}]");
    let counters: Vec<&str> = counters.split(' ').collect();
    let names = [
        "steals",
        "runnextsteals",
        "overflows",
        "wakeups",
        "parks",
        "preemptions",
        "handoffs",
    ];
    assert_eq!(counters.len(), names.len(), "{l}");
    for (f, key) in counters.iter().zip(names) {
        let (k, v) = f.split_once('=').unwrap_or_else(|| panic!("{f} in {l}"));
        assert_eq!(k, key, "{l}");
        v.parse::<u64>().unwrap_or_else(|_| panic!("{key} in {l}"));
    }
    let (head, bracket) = l.split_once(" [").unwrap_or_else(|| panic!("no [..]: {l}"));
    let fields: Vec<&str> = head.split(' ').collect();
    assert_eq!(fields.len(), 8, "{l}");
    assert_eq!(fields[0], "SCHED", "{l}");
    let ms = fields[1]
        .strip_suffix("ms:")
        .unwrap_or_else(|| panic!("{l}"));
    ms.parse::<u64>().unwrap_or_else(|_| panic!("ms: {l}"));
    let keys = [
        "gomaxprocs",
        "idleprocs",
        "threads",
        "spinningthreads",
        "idlethreads",
        "runqueue",
    ];
    for (f, key) in fields[2..].iter().zip(keys) {
        let (k, v) = f.split_once('=').unwrap_or_else(|| panic!("{f} in {l}"));
        assert_eq!(k, key, "{l}");
        v.parse::<u64>().unwrap_or_else(|_| panic!("{key} in {l}"));
    }
    assert_eq!(fields[2], "gomaxprocs=2", "{l}");
    let lens = bracket.strip_suffix(']').unwrap_or_else(|| panic!("{l}"));
    let lens: Vec<&str> = lens.split(' ').collect();
    assert_eq!(lens.len(), 2, "one run queue per P: {l}");
    for n in lens {
        n.parse::<u64>()
            .unwrap_or_else(|_| panic!("run queue length in {l}"));
    }
}

#[test]
fn scheddetail_lists_ps_ms_and_gs() {
    let o = run(
        RT0,
        ["schedtrace"],
        &[
            ("GODEBUG", "schedtrace=100,scheddetail=1"),
            ("GOMAXPROCS", "2"),
        ],
    );
    let e = err(&o);
    assert!(
        e.contains(" gcwaiting=0 nmidlelocked=0 stopwait=0 sysmonwait=0 steals="),
        "{e}"
    );
    assert!(e.contains("  P0: status="), "{e}");
    assert!(e.contains("  P1: status="), "{e}");
    assert!(e.contains("  M0: p="), "{e}");
    assert!(e.contains("  G1: status="), "{e}");
}

#[test]
fn select_with_default_timeout_and_closed_channels() {
    for procs in ["1", "2"] {
        let o = run(RT0, ["select"], &[("GOMAXPROCS", procs)]);
        assert_eq!(
            out(&o),
            "a=300 b=200 default=true timeout=true\n",
            "{}",
            err(&o)
        );
        assert_eq!(status(&o), 0);
    }
}

#[test]
fn gomaxprocs_changes_at_run_time_without_losing_work() {
    let o = run(RT0, ["gomaxprocs"], &[("GOMAXPROCS", "2")]);
    assert_eq!(
        out(&o),
        "changes 2->1 1->4 4->2 2->3 3->1 1->2 total=160000\n",
        "{}",
        err(&o)
    );
    assert_eq!(status(&o), 0);
}

#[test]
fn locked_goroutine_keeps_its_thread_to_itself() {
    for procs in ["1", "2"] {
        let o = run(RT0, ["lockosthread"], &[("GOMAXPROCS", procs)]);
        assert_eq!(
            out(&o),
            "moved=0 intruders=0\n",
            "GOMAXPROCS={procs}: {}",
            err(&o)
        );
        assert_eq!(status(&o), 0);
    }
}

#[test]
fn mutex_contention_loses_nothing() {
    for procs in ["1", "2"] {
        let o = run(RT0, ["mutex"], &[("GOMAXPROCS", procs)]);
        assert_eq!(out(&o), "count=80000\n", "GOMAXPROCS={procs}: {}", err(&o));
    }
}

#[test]
fn parked_goroutines_cost_about_a_page() {
    let o = run(RT0, ["parked", "20000"], &[]);
    assert_eq!(status(&o), 0, "{}", err(&o));
    let s = out(&o);
    assert!(s.starts_with("parked=20000 rss_per_goroutine="), "{s}");
    let per: u64 = s
        .split('=')
        .nth(2)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // One touched stack page plus the G, its closure and the channel waiter.
    assert!(per <= 6 * 1024, "{s}");
}

#[test]
fn a_hundred_thousand_stacks_add_only_a_handful_of_mappings() {
    let o = run(RT0, ["stacks", "100000"], &[]);
    assert_eq!(status(&o), 0, "{}", err(&o));
    let s = out(&o);
    let field = |k: &str| -> i64 {
        s.split_whitespace()
            .find_map(|f| f.strip_prefix(k))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (before, peak) = (field("vmas_before="), field("vmas_peak="));
    // The stack chunks (28-29 new mappings in all on a quiet machine),
    // plus two mappings (stack and guard) for each thread the run starts,
    // which varies with the machine's load (an M per woken P, sysmon's
    // thread creator and its spare): a guard page per stack as its own
    // mapping would add 100000.
    assert!(peak - before <= 48, "{s}");
}

#[test]
fn too_many_threads_is_thread_exhaustion() {
    let o = run(RT0, ["threadlimit"], &[("GOMAXPROCS", "2")]);
    assert_eq!(status(&o), 2, "{}", err(&o));
    let e = err(&o);
    assert!(
        e.starts_with("runtime: program exceeds 4-thread limit\nfatal error: thread exhaustion\n"),
        "{e}"
    );
    assert_eq!(out(&o), "");
}

#[test]
fn each_goroutine_keeps_its_own_fp_control_state() {
    for procs in ["1", "2"] {
        let o = run(RT0, ["fpcontrol"], &[("GOMAXPROCS", procs)]);
        let mut want = String::from(
            "fpenv=1\nmismatches=0\n\
             child of toward-zero starts toward-zero: true\n\
             child of default starts default: true\n",
        );
        if procs == "1" {
            want.push_str("next goroutine sees the change: false\n");
        }
        assert_eq!(out(&o), want, "GOMAXPROCS={procs}: {}", err(&o));
        assert_eq!(status(&o), 0);
    }
}

#[test]
fn direct_switches_keep_fp_state_and_g0_runs_in_the_boot_state() {
    for procs in ["1", "2"] {
        let o = run(RT0, ["fpswitch"], &[("GOMAXPROCS", procs)]);
        assert_eq!(
            out(&o),
            "fpenv=1\ng0 in default: true\nyield_to mismatches=0\n",
            "GOMAXPROCS={procs}: {}",
            err(&o)
        );
    }
    // fpenv=0: g0 keeps the parking goroutine's state, and so do switches.
    let o = run(
        RT0,
        ["fpswitch"],
        &[("GOMAXPROCS", "1"), ("GODEBUG", "fpenv=0")],
    );
    let s = out(&o);
    assert!(
        s.starts_with("fpenv=0\ng0 in default: false\n"),
        "{s}{}",
        err(&o)
    );
    assert!(!s.ends_with("mismatches=0\n"), "{s}");
}

#[test]
fn fpenv_0_leaves_fp_control_state_to_the_thread() {
    let o = run(
        RT0,
        ["fpcontrol"],
        &[("GOMAXPROCS", "1"), ("GODEBUG", "fpenv=0")],
    );
    let s = out(&o);
    assert!(s.starts_with("fpenv=0\n"), "{s}{}", err(&o));
    assert!(
        s.ends_with("next goroutine sees the change: true\n"),
        "{s}{}",
        err(&o)
    );
    assert_eq!(status(&o), 0);
}

#[test]
fn blocking_calls_hand_their_p_off_and_all_finish() {
    for procs in ["1", "2"] {
        let o = run(RT0, ["blocking", "200"], &[("GOMAXPROCS", procs)]);
        assert_eq!(out(&o), "finished 200\n", "GOMAXPROCS={procs}: {}", err(&o));
        assert_eq!(status(&o), 0);
    }
}
