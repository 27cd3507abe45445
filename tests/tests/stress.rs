//! Scheduler torture: each scenario once hung or crashed the runtime; a
//! hang here is killed after a generous bound and reported as a failure.

mod common;
use common::*;

fn check(scenario: &str, n: &str, want: &str) {
    for procs in ["1", "2", "4"] {
        let (code, out, err) = run_bounded(RT0, &[scenario, n], &[("GOMAXPROCS", procs)], 120);
        assert_eq!(
            code, 0,
            "{scenario} GOMAXPROCS={procs} (-1 = hung): {out}{err}"
        );
        assert_eq!(out, want, "{scenario} GOMAXPROCS={procs}: {err}");
    }
}

#[test]
fn locked_goroutine_ping_pong() {
    check("lockpp", "50000", "lockpp ok 50000\n");
}

#[test]
fn gomaxprocs_changes_while_timers_run() {
    check("gmptimer", "5000", "gmptimer ok 5000\n");
}

#[test]
fn two_goroutines_change_gomaxprocs_at_once() {
    check("gmp2", "1000", "gmp2 ok 1000\n");
}

#[test]
fn locked_goroutine_makes_blocking_calls() {
    check("lockblock", "200", "lockblock ok 200\n");
}

#[test]
fn goroutines_readied_by_plain_threads_are_not_stranded() {
    check("foreignlat", "20000", "foreignlat ok 20000\n");
}

#[test]
fn contended_selects_lose_nothing() {
    check("selstress", "5000", "selstress ok 30000\n");
}

/// On every M the allocator's thread-local slot is null and the cache comes
/// from the M's GS block, so a goroutine that parks and resumes elsewhere
/// cannot keep using the previous M's cache (the P0 corruption).
#[test]
fn allocator_cache_is_reached_through_the_m_not_a_thread_local() {
    check("mcacheslot", "2000", "mcacheslot ok 2000\n");
}
