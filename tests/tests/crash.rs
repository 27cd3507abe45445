//! How rt programs die: crash reports, GOTRACEBACK levels, signals — each
//! checked against the shape of Go's report, with stdout flushed first.

mod common;
use common::*;
use std::os::unix::process::{CommandExt, ExitStatusExt};

#[test]
fn stack_overflow_in_a_goroutine_is_reported_with_its_bounds() {
    for guard in ["", "guardpage=1"] {
        let o = run(RT0, ["overflow"], &[("GODEBUG", guard)]);
        assert_eq!(status(&o), 2, "GODEBUG={guard}: {}", err(&o));
        assert_eq!(
            out(&o),
            "recursing in a goroutine\n",
            "stdout flushed before the crash"
        );
        let e = err(&o);
        assert!(
            e.starts_with("runtime: goroutine stack exceeds 262144-byte limit\nruntime: sp=0x"),
            "{e}"
        );
        assert!(
            e.contains("\nfatal error: stack overflow\n\ngoroutine 2 [running]:\nrt_demo::demo::scenarios::recurse("),
            "{e}"
        );
        // The walk stops at Go's frame limit.
        assert_eq!(
            e.matches("rt_demo::demo::scenarios::recurse(").count(),
            100,
            "{e}"
        );
        assert!(e.contains("\n...additional frames elided...\n"), "{e}");
    }
}

#[test]
fn nil_write_in_a_goroutine_is_a_go_panic_report() {
    let o = run(RT0, ["segv"], &[]);
    assert_eq!(status(&o), 2);
    assert_eq!(out(&o), "about to fault\n");
    let e = err(&o);
    assert!(
        e.starts_with(
            "panic: runtime error: invalid memory address or nil pointer dereference\n\
             [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x"
        ),
        "{e}"
    );
    assert!(e.contains("\n\ngoroutine 2 [running]:\n"), "{e}");
    assert!(
        !e.contains("goroutine 1 ["),
        "single: only the faulting goroutine: {e}"
    );
}

#[test]
fn gotraceback_levels_shape_the_report() {
    let o = run(RT0, ["segv"], &[("GOTRACEBACK", "none")]);
    assert_eq!(status(&o), 2);
    assert!(!err(&o).contains("goroutine "), "{}", err(&o));

    let o = run(RT0, ["segv"], &[("GOTRACEBACK", "all")]);
    assert_eq!(status(&o), 2);
    let e = err(&o);
    // Goroutine 1 is in `join`, or still running on the other P.
    assert!(
        e.contains("goroutine 2 [running]:")
            && (e.contains("goroutine 1 [join]:") || e.contains("goroutine 1 [running]:")),
        "{e}"
    );

    let o = run(RT0, ["segv"], &[("GOTRACEBACK", "crash")]);
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGABRT),
        "crash re-raises: {}",
        err(&o)
    );
    assert!(
        err(&o).contains("panic: runtime error: invalid memory address"),
        "{}",
        err(&o)
    );
}

#[test]
fn a_fault_on_a_thread_spawned_from_a_goroutine_is_reported() {
    let o = run(RT0, ["threadfault"], &[]);
    assert_eq!(status(&o), 2, "{}", err(&o));
    assert_eq!(out(&o), "faulting in a plain thread\n");
    assert!(
        err(&o).starts_with(
            "fatal error: unexpected signal during runtime execution\n[signal SIGSEGV"
        ),
        "{}",
        err(&o)
    );
}

/// How long the signal tests wait for the child's "ready" line and for its
/// exit before counting it as hung.
const SIGNAL_BOUND_SECS: u64 = 60;

/// Starts `quit`-like scenarios and waits for their "ready" line.
fn start(scenario: &str, ignore_int: bool) -> Running {
    let mut c = command(RT0);
    // One P: a goroutine blocked outside the scheduler must not hold it.
    c.env("GOMAXPROCS", "1");
    c.arg(scenario);
    if ignore_int {
        // SAFETY: between fork and exec only async-signal-safe calls are made.
        unsafe {
            c.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                Ok(())
            });
        }
    }
    let mut child = Running::start(c);
    assert_eq!(child.line(SIGNAL_BOUND_SECS), "ready\n");
    child
}

#[test]
fn sigquit_dumps_every_goroutine_and_exits_2() {
    let child = start("quit", false);
    child.signal(libc::SIGQUIT);
    let (st, e) = child.finish(SIGNAL_BOUND_SECS);
    assert_eq!(st.code(), Some(2), "{e}");
    assert!(e.starts_with("SIGQUIT: quit\nPC=0x"), "{e}");
    // Goroutine 1 may still be returning from its write of "ready".
    assert!(
        e.contains("goroutine 1 [sleep]:") || e.contains("goroutine 1 [running]:"),
        "{e}"
    );
    // One goroutine each in a receive, a select and a sleep (and one in a
    // blocking read, which may be the one the signal interrupted); see
    // traceback.rs for their frames.
    assert_eq!(e.matches("[chan receive]:").count(), 1, "{e}");
    assert_eq!(e.matches("[select]:").count(), 1, "{e}");
}

#[test]
fn sigint_with_nobody_listening_kills_by_the_signal() {
    let child = start("quit", false);
    child.signal(libc::SIGINT);
    let (st, e) = child.finish(SIGNAL_BOUND_SECS);
    assert_eq!(st.signal(), Some(libc::SIGINT), "{e}");
}

#[test]
fn notify_delivers_sigint_to_the_program() {
    let mut child = start("notify", false);
    // Let the ticking goroutine run while main waits in the blocking call.
    std::thread::sleep(std::time::Duration::from_millis(20));
    child.signal(libc::SIGINT);
    assert_eq!(
        child.line(SIGNAL_BOUND_SECS),
        "got signal 2 (SIGINT: interrupt)\n"
    );
    assert_eq!(
        child.line(SIGNAL_BOUND_SECS),
        "others ran meanwhile: true\n"
    );
    let (st, e) = child.finish(SIGNAL_BOUND_SECS);
    assert_eq!(st.code(), Some(0), "{e}");
}

#[test]
fn sigint_inherited_as_ignored_stays_ignored() {
    let mut c = command(RT0);
    c.arg("nohup");
    // SAFETY: between fork and exec only async-signal-safe calls are made.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let o = output_bounded(c, RUN_BOUND_SECS);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "SIGINT ignored: true; still alive\n"
    );
}

#[test]
fn unrecovered_panic_with_gotraceback_crash_dies_by_sigabrt() {
    let o = run(RT0, ["panic"], &[("GOTRACEBACK", "crash")]);
    assert_eq!(o.status.signal(), Some(libc::SIGABRT));
    assert!(
        err(&o).starts_with("panic: boom from a goroutine\n"),
        "{}",
        err(&o)
    );
}

/// The panic report is kept on the goroutine: a destructor that parks
/// during unwinding may move it to another M before the report is printed.
#[test]
fn a_panic_that_parks_while_unwinding_is_reported_as_itself() {
    for procs in ["1", "2", "4"] {
        for _ in 0..3 {
            let (code, out, err) = run_bounded(RT0, &["panicpark"], &[("GOMAXPROCS", procs)], 60);
            assert_eq!(code, 2, "GOMAXPROCS={procs}: {out}{err}");
            assert!(
                err.starts_with("panic: boom after a park in unwinding\n\ngoroutine "),
                "GOMAXPROCS={procs}: {err}"
            );
            assert!(
                err.contains("demo/mod.rs:"),
                "GOMAXPROCS={procs}: no location: {err}"
            );
        }
    }
}

#[test]
fn a_free_of_a_foreign_pointer_is_a_fatal_error_not_a_hang() {
    for mode in ["0", "1"] {
        let (code, out, err) = run_bounded(RT0, &["badfree", mode], &[], 20);
        assert_eq!(code, 2, "mode {mode}: {out}{err}");
        assert_eq!(
            out, "freeing 65 foreign pointers\n",
            "mode {mode}: stdout flushed"
        );
        assert!(
            err.starts_with("fatal error: free of invalid pointer\n"),
            "mode {mode}: {err}"
        );
    }
}

#[test]
fn running_out_of_memory_is_a_fatal_error_with_status_2() {
    // A request no machine here can back: Rust's abort after its message
    // becomes Go's report.
    let o = run(RT0, ["oom"], &[]);
    assert_eq!(status(&o), 2, "{}", err(&o));
    assert!(
        err(&o).contains("\nfatal error: out of memory\n"),
        "{}",
        err(&o)
    );
    // No address space for the heap's first arena, at boot (before the
    // signal handlers exist), on both entries.
    for bin in ENTRIES {
        let mut c = command(bin);
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            c.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 100 << 20,
                    rlim_max: 100 << 20,
                };
                libc::setrlimit(libc::RLIMIT_AS, &lim);
                Ok(())
            });
        }
        let o = output_bounded(c, RUN_BOUND_SECS);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bin}: {e}");
        assert!(e.starts_with("fatal error: "), "{bin}: {e}");
    }
}
