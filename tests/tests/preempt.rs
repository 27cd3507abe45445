//! Asynchronous preemption (rt-demo `hog`, `stdoutlock`): a goroutine that
//! never enters the runtime no longer stops the others, stays on its thread
//! across preemptions, and can be stopped while it holds a thread-affine
//! lock. `cargo xtask stress` runs these a hundred times more.

mod common;
use common::*;

#[test]
fn a_spinning_goroutine_does_not_starve_the_ticker() {
    for procs in ["1", "2"] {
        for _ in 0..3 {
            let o = run(RT0, ["hog"], &[("GOMAXPROCS", procs)]);
            assert_eq!(status(&o), 0, "GOMAXPROCS={procs}: {}{}", out(&o), err(&o));
            assert_eq!(
                out(&o),
                "hog ok ticks=100 gap<30ms=true same_tid=true same_tls=true\n"
            );
        }
    }
}

#[test]
fn asyncpreemptoff_keeps_the_hog_on_its_p() {
    // With preemption off the ticker cannot run while the hog spins at
    // GOMAXPROCS=1: the scenario only ends because the test bounds it.
    let env = [("GOMAXPROCS", "1"), ("GODEBUG", "asyncpreemptoff=1")];
    let (code, out, _) = run_bounded(RT0, &["hog"], &env, 3);
    assert!(code == -1 && !out.contains("hog ok"), "{code} {out}");
}

#[test]
fn a_goroutine_holding_stdouts_lock_is_preempted_in_place() {
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
