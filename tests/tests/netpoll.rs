//! The network poller under goroutines (rt-demo `pollfd`): every check
//! exact at GOMAXPROCS 1, 2 and 4.

mod common;
use common::*;

#[test]
fn pollfd_waits_end_by_data_deadline_and_eviction() {
    for procs in ["1", "2", "4"] {
        let o = run(RT0, ["pollfd"], &[("GOMAXPROCS", procs)]);
        let out = out(&o);
        assert_eq!(status(&o), 0, "GOMAXPROCS={procs}:\n{out}\n{}", err(&o));
        assert_eq!(out.matches(": ok\n").count(), 9, "{out}");
        assert!(!out.contains("FAILED"), "{out}");
    }
}
