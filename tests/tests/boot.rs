//! The boot path end to end: both entries, the trace, argv/env, exit status.

mod common;
use common::*;
use std::os::unix::ffi::OsStrExt;

const PHASES: [&str; 19] = [
    "check",
    "args",
    "osinit",
    "maxmcount",
    "moduledataverify",
    "stackinit",
    "mallocinit",
    "fastrandinit",
    "mcommoninit",
    "cpuinit",
    "alginit",
    "sigsave",
    "goargs",
    "goenvs",
    "parsedebugvars",
    "gcinit",
    "procresize",
    "newproc",
    "mstart",
];

#[test]
fn both_entries_say_hello_on_goroutine_1() {
    for bin in ENTRIES {
        let o = run(bin, ["hello"], &[]);
        assert_eq!(status(&o), 0, "{bin}: {}", err(&o));
        let s = out(&o);
        let mut lines = s.lines();
        assert_eq!(lines.next(), Some("hello, world"));
        let l = lines.next().unwrap();
        assert!(l.starts_with("goroutine 1 on m0 gomaxprocs="), "{l}");
        assert_eq!(err(&o), "", "no trace without GODEBUG");
    }
}

#[test]
fn hello_is_the_default_scenario() {
    let o = run(RT0, Vec::<&str>::new(), &[]);
    assert_eq!(status(&o), 0);
    assert!(out(&o).starts_with("hello, world\n"));
}

#[test]
fn inittrace_lists_every_phase_in_order_in_gos_format() {
    for bin in ENTRIES {
        let o = run(bin, ["hello"], &[("GODEBUG", "inittrace=1")]);
        assert_eq!(status(&o), 0);
        let e = err(&o);
        let names: Vec<&str> = e
            .lines()
            .map(|l| {
                assert!(l.starts_with("init "), "{l}");
                // init <phase> @<ms> ms, <ms> ms clock, <n> bytes, <n> allocs
                let parts: Vec<&str> = l.split(' ').collect();
                assert_eq!(parts.len(), 11, "{l}");
                assert!(parts[2].starts_with('@'));
                assert_eq!(
                    (parts[3], parts[5], parts[6], parts[8], parts[10]),
                    ("ms,", "ms", "clock,", "bytes,", "allocs"),
                    "{l}"
                );
                parts[2][1..].parse::<f64>().expect("start ms");
                parts[4].parse::<f64>().expect("clock ms");
                parts[7].parse::<u64>().expect("bytes");
                parts[9].parse::<u64>().expect("allocs");
                parts[1]
            })
            .collect();
        assert_eq!(names, PHASES, "{bin}");
        // Level 1 does not build the level-2 details, so a phase that
        // allocates nothing itself reports nothing.
        for phase in ["maxmcount", "stackinit", "gcinit"] {
            let line = e
                .lines()
                .find(|l| l.starts_with(&format!("init {phase} ")))
                .expect(phase);
            assert!(line.ends_with(" 0 bytes, 0 allocs"), "{bin}: {line}");
        }
        // procresize binds P0's cache to m0 halfway through; what it
        // allocated before and after (the cgroup files it reads without
        // GOMAXPROCS) still counts.
        let line = e
            .lines()
            .find(|l| l.starts_with("init procresize "))
            .expect("procresize");
        assert!(!line.ends_with(" 0 bytes, 0 allocs"), "{bin}: {line}");
    }
}

#[test]
fn inittrace_2_names_skipped_phases_and_details() {
    let o = run(RT0, ["hello"], &[("GODEBUG", "inittrace=2")]);
    let e = err(&o);
    for skipped in ["modulesinit", "typelinksinit", "itabsinit"] {
        assert!(
            e.contains(&format!("boot {skipped} [rt-entry]: skipped: ")),
            "{e}"
        );
    }
    assert!(
        e.contains("boot mstart [rt-entry]: m0 switches from g0 (getg()==g0: true) to goroutine 1"),
        "{e}"
    );
    assert!(
        e.contains("boot newproc [rt-entry]: main goroutine goid=1"),
        "{e}"
    );
    assert!(e.contains("boot mcommoninit [rt-sched]: m0 id=0"), "{e}");
    assert!(e.contains("(32 KiB)"), "gsignal stack is 32 KiB: {e}");
    assert!(e.contains("goroutine slot in GS base"), "{e}");
}

#[test]
fn exit_status_passes_through() {
    for bin in ENTRIES {
        for n in ["0", "7", "255"] {
            let o = run(bin, ["exit", n], &[]);
            assert_eq!(status(&o).to_string(), n, "{bin}");
        }
    }
}

#[test]
fn args_survive_byte_for_byte() {
    use std::ffi::OsStr;
    let big = "x".repeat(100 * 1024);
    let weird: Vec<&OsStr> = vec![
        OsStr::new("args"),
        OsStr::new(""),
        OsStr::from_bytes(b"\xff\xfe not utf-8 \x80"),
        OsStr::new("with space"),
        OsStr::new(""),
        OsStr::new(&big),
        OsStr::new("last"),
    ];
    for bin in ENTRIES {
        let o = run(bin, &weird, &[]);
        assert_eq!(status(&o), 0);
        let mut want = Vec::new();
        for a in &weird[1..] {
            want.extend_from_slice(a.as_bytes());
            want.push(b'\n');
        }
        assert_eq!(o.stdout, want, "{bin}");
    }
}

#[test]
fn env_lookup_and_missing() {
    let o = run(RT0, ["env", "RT_TEST_VALUE"], &[("RT_TEST_VALUE", "a=b=c")]);
    assert_eq!(out(&o), "a=b=c\n");
    let o = run(RT0, ["env", "RT_TEST_NOT_SET_ANYWHERE"], &[]);
    assert_eq!(status(&o), 1);
}

#[test]
fn gomaxprocs_from_the_environment() {
    // SAFETY: sysconf has no preconditions.
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    for (v, want) in [
        ("1", "1".to_string()),
        ("2", "2".to_string()),
        ("7", "7".to_string()),
        ("abc", String::new()),
        ("0", String::new()),
        ("-1", String::new()),
    ] {
        let o = run(RT0, ["procs"], &[("GOMAXPROCS", v)]);
        assert_eq!(status(&o), 0);
        let got = out(&o).trim().to_string();
        if want.is_empty() {
            // Invalid: the default (affinity count, or a cgroup limit).
            let n: usize = got.parse().unwrap();
            assert!(n >= 1 && n <= ncpu, "GOMAXPROCS={v} gave {got}");
        } else {
            assert_eq!(got, want, "GOMAXPROCS={v}");
        }
    }
}

#[test]
fn a_gomaxprocs_no_machine_can_hold_is_a_fatal_error() {
    // 2^31-1 Ps would take terabytes: refused before any is built.
    let o = run(RT0, ["procs"], &[("GOMAXPROCS", "2147483647")]);
    assert_eq!(status(&o), 2, "{}", err(&o));
    assert_eq!(out(&o), "");
    assert!(
        err(&o).starts_with("runtime: cannot allocate 2147483647 Ps ("),
        "{}",
        err(&o)
    );
    assert!(
        err(&o).contains("\nfatal error: out of memory\n"),
        "{}",
        err(&o)
    );
}

#[test]
fn unknown_scenario_lists_them_and_exits_2() {
    let o = run(RT0, ["no-such-scenario"], &[]);
    assert_eq!(status(&o), 2);
    assert!(err(&o).contains("hello"));
}

#[test]
fn debugvars_prints_sorted_settings() {
    let o = run(
        RT0,
        ["debugvars"],
        &[
            ("GODEBUG", "schedtrace=5,bogus=1,inittrace=x"),
            ("GOTRACEBACK", "all"),
        ],
    );
    assert_eq!(status(&o), 0);
    let s = out(&o);
    let keys: Vec<&str> = s.lines().map(|l| l.split('=').next().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(s.lines().any(|l| l == "schedtrace=5"), "{s}");
    assert!(s.lines().any(|l| l == "inittrace=0"), "{s}");
    assert!(s.lines().any(|l| l == "gotraceback.all=1"), "{s}");
}

#[test]
fn stdout_without_newline_is_flushed_at_exit() {
    // `procs` prints with a newline; `exit` prints nothing — use args with a
    // value to check the flush of partial lines through env.
    let o = run(RT0, ["args", "no newline at the end"], &[]);
    assert_eq!(out(&o), "no newline at the end\n");
}

#[test]
fn a_thread_spawned_from_a_goroutine_is_not_an_m() {
    let o = run(RT0, ["thread"], &[]);
    assert_eq!(status(&o), 0, "{}", err(&o));
    assert!(
        out(&o).contains("thread goid=0 mid=-1 received=42"),
        "{}",
        out(&o)
    );
}

/// The numbers the `threads` scenario printed, in order.
fn thread_counts(s: &str) -> Vec<usize> {
    s.lines()
        .map(|l| {
            l.rsplit(": ")
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

#[test]
fn sysmon_starts_with_the_first_goroutine_or_for_schedtrace() {
    // GOMAXPROCS=1: no idle P, so the only Ms the goroutine can bring are
    // sysmon's (sysmon, and its thread creator if a goroutine ran long).
    for bin in ENTRIES {
        let o = run(bin, ["threads"], &[("GOMAXPROCS", "1")]);
        assert_eq!(status(&o), 0, "{bin}: {}", err(&o));
        let n = thread_counts(&out(&o));
        assert!(n.len() == 2 && n[0] == 1 && n[1] >= 2, "{bin}: {}", out(&o));
        // schedtrace needs sysmon from the start.
        let o = run(
            bin,
            ["threads"],
            &[("GOMAXPROCS", "1"), ("GODEBUG", "schedtrace=100000")],
        );
        assert_eq!(status(&o), 0, "{bin}: {}", err(&o));
        let n = thread_counts(&out(&o));
        assert!(n.first().is_some_and(|&b| b >= 2), "{bin}: {}", out(&o));
    }
}
