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
fn pingpong_and_yield_complete() {
    let o = run(RT0, ["pingpong", "100000"], &[("GOMAXPROCS", "2")]);
    assert_eq!(out(&o), "round trips 100000\n", "{}", err(&o));
    let o = run(RT0, ["yield", "100000"], &[("GOMAXPROCS", "1")]);
    assert_eq!(out(&o), "switches 200000\n", "{}", err(&o));
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
    assert_eq!(status(&o), 0);
    let e = err(&o);
    let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(lines.len() >= 2, "{e}");
    for l in lines {
        // SCHED 0ms: gomaxprocs=2 idleprocs=0 threads=4 spinningthreads=1 idlethreads=0 runqueue=0 [2 0]
        let re_ok = l.contains("ms: gomaxprocs=2 idleprocs=")
            && l.contains(" threads=")
            && l.contains(" spinningthreads=")
            && l.contains(" idlethreads=")
            && l.contains(" runqueue=")
            && l.ends_with(']');
        assert!(re_ok, "{l}");
        let bracket = &l[l.find('[').unwrap() + 1..l.len() - 1];
        assert_eq!(bracket.split(' ').count(), 2, "{l}");
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
        e.contains(" gcwaiting=0 nmidlelocked=0 stopwait=0 sysmonwait=0\n"),
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
    assert!(peak - before <= 32, "{s}");
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
