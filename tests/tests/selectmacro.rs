//! `rt-demo selectmacro`: `select!` (fairness, closed channels, send arms,
//! `default`, `default(timeout)`, five arms, selects in and nested in
//! goroutines, a send arm on a closed channel) and the channel conventions
//! (`Debug`, `len`/`capacity`/`is_closed`, `try_recv`/`try_send`/
//! `recv_timeout` and their errors), through both entries at GOMAXPROCS 1
//! and 2.

mod common;
use common::*;

/// Every check, in the order the scenario runs them.
const CHECKS: &[&str] = &[
    "fairness",
    "closed",
    "send",
    "default",
    "timeout",
    "ready-before-timeout",
    "no-sleeper-per-wait",
    "five-arms",
    "goroutines",
    "nested",
    "send-on-closed",
    "conventions",
    "recv-timeout",
];

fn want() -> String {
    let mut s: String = CHECKS.iter().map(|c| format!("ok {c}\n")).collect();
    s.push_str("selectmacro ok\n");
    s
}

fn run_at(procs: &str) {
    for bin in ENTRIES {
        let (code, out, err) = run_bounded(bin, &["selectmacro"], &[("GOMAXPROCS", procs)], 120);
        assert!(
            code == 0 && out == want(),
            "{bin} selectmacro GOMAXPROCS={procs}: status {code} (-1 = hung)\n\
             stdout: {out}\nstderr: {err}"
        );
    }
}

#[test]
fn selectmacro_one_p() {
    run_at("1");
}

#[test]
fn selectmacro_two_ps() {
    run_at("2");
}
