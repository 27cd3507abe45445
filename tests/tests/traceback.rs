//! Crash reports with frames: every relevant goroutine's functions and
//! `file:line` in Go's layout, for each `GOTRACEBACK` level.
//!
//! The expected lines come from `// tb:` markers in the demo's source, so
//! the tests follow the code when it moves. A release build may inline a
//! closure into its caller; its frame then prints as `f(...)` without an
//! offset, which the checks accept.

mod common;
use common::*;
use std::os::unix::process::ExitStatusExt;

const DEMO_SRC: &str = include_str!("../src/demo/mod.rs");

/// The line of the marker `tb:<name>` (the next line when the marker says
/// so: `// tb:<name> is the next line`).
fn line(name: &str) -> u32 {
    let tag = format!("tb:{name}");
    for (i, l) in DEMO_SRC.lines().enumerate() {
        if let Some(at) = l.find(&tag) {
            let rest = &l[at + tag.len()..];
            if rest.starts_with(" is the next line") {
                return i as u32 + 2;
            }
            if rest.is_empty() {
                return i as u32 + 1;
            }
        }
    }
    panic!("no marker {tag} in the demo source")
}

/// The frame of `func` in `report` (`func()` or, inlined, `func(...)`),
/// followed by its `\t…/demo/mod.rs:L` line; returns `L`.
fn frame_line(report: &str, func: &str) -> Option<u32> {
    let lines: Vec<&str> = report.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if (*l == format!("{func}()") || *l == format!("{func}(...)")) && i + 1 < lines.len() {
            let pos = lines[i + 1].strip_prefix('\t')?;
            let at = pos.find("demo/mod.rs:")?;
            let num: String = pos[at + "demo/mod.rs:".len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return num.parse().ok();
        }
    }
    None
}

/// Asserts `report` has a frame of `func` at one of `lines`.
fn assert_frame(report: &str, func: &str, lines: &[u32]) {
    match frame_line(report, func) {
        Some(l) if lines.contains(&l) => {}
        Some(l) => panic!("{func} at line {l}, expected one of {lines:?}:\n{report}"),
        None => panic!("no frame of {func} with a file:line:\n{report}"),
    }
}

/// Asserts the `created by` lines of a goroutine started at `go_line` by
/// `creator` in goroutine `parent`.
fn assert_created_by(report: &str, creator: &str, parent: i64, go_line: u32) {
    let head = format!("created by {creator} in goroutine {parent}\n\t");
    let at = report
        .find(&head)
        .unwrap_or_else(|| panic!("no `{head}`:\n{report}"));
    let pos = report[at + head.len()..].lines().next().unwrap_or("");
    assert!(
        pos.contains(&format!("demo/mod.rs:{go_line} +0x")),
        "created by at {pos}, expected line {go_line}:\n{report}"
    );
}

/// The goroutine section that starts with `header` (up to the next blank line).
fn section<'a>(report: &'a str, header: &str) -> &'a str {
    let at = report
        .find(header)
        .unwrap_or_else(|| panic!("no `{header}`:\n{report}"));
    let s = &report[at..];
    &s[..s.find("\n\n").unwrap_or(s.len())]
}

const SEGV: &str = "rt_demo::demo::scenarios::segv";

#[test]
fn segv_in_a_goroutine_shows_its_frames_at_every_level() {
    let fault = [line("segv-body"), line("segv-fault")];
    for tb in ["", "single", "all", "system", "crash"] {
        let o = run(RT0, ["segv"], &[("GOTRACEBACK", tb)]);
        let e = err(&o);
        if tb == "crash" {
            assert_eq!(o.status.signal(), Some(libc::SIGABRT), "{e}");
        } else {
            assert_eq!(status(&o), 2, "GOTRACEBACK={tb}: {e}");
        }
        let g2 = section(&e, "goroutine 2 [running]:\n");
        assert_frame(g2, &format!("{SEGV}::{{{{closure}}}}"), &fault);
        assert_created_by(g2, SEGV, 1, line("segv-go"));
        let system = tb == "system" || tb == "crash";
        assert_eq!(
            g2.contains("rt_sched::"),
            system,
            "runtime frames at {tb}:\n{e}"
        );
        assert_eq!(
            g2.contains(" fp=0x"),
            system,
            "frame addresses at {tb}:\n{e}"
        );
        if !tb.is_empty() && tb != "single" {
            // Goroutine 1 waits in join, or is still on its way there.
            if let Some(at) = e.find("goroutine 1 [join]:\n") {
                assert_frame(&e[at..], SEGV, &[line("segv-join")]);
            }
        } else {
            assert!(!e.contains("goroutine 1 ["), "{e}");
        }
    }
    let o = run(RT0, ["segv"], &[("GOTRACEBACK", "none")]);
    assert_eq!(status(&o), 2);
    assert!(!err(&o).contains("goroutine "), "{}", err(&o));
    assert!(!err(&o).contains(SEGV), "{}", err(&o));
}

#[test]
fn an_unrecovered_panic_shows_the_panicking_frame() {
    for tb in ["", "all", "system"] {
        let o = run(RT0, ["panic"], &[("GOTRACEBACK", tb)]);
        assert_eq!(status(&o), 2);
        let e = err(&o);
        assert!(
            e.starts_with("panic: boom from a goroutine\n\ngoroutine 2 [running]:\n"),
            "{e}"
        );
        let g2 = section(&e, "goroutine 2 [running]:\n");
        assert_frame(
            g2,
            "rt_demo::demo::scenarios::panic::{{closure}}",
            &[line("panic")],
        );
        assert_created_by(g2, "rt_demo::demo::scenarios::panic", 1, line("panic"));
        // The panic machinery shows at system level only.
        assert_eq!(g2.contains("core::panicking::"), tb == "system", "{e}");
        if !tb.is_empty() {
            // Goroutine 1 sleeps in the scenario.
            let g1 = section(&e, "goroutine 1 [");
            assert_frame(g1, "rt_demo::demo::scenarios::panic", &[line("panic") + 1]);
        }
    }
    let o = run(RT0, ["panic"], &[("GOTRACEBACK", "none")]);
    assert_eq!(status(&o), 2);
    assert_eq!(err(&o), "panic: boom from a goroutine\n");
}

#[test]
fn a_panic_in_main_shows_main() {
    let o = run(RT0, ["mainpanic"], &[]);
    assert_eq!(status(&o), 2);
    let e = err(&o);
    assert!(
        e.starts_with("panic: boom in main\n\ngoroutine 1 [running]:\n"),
        "{e}"
    );
    assert_frame(&e, "rt_demo::demo::main", &[line("mainpanic")]);
    // The main goroutine has no creator to show.
    assert!(!e.contains("created by"), "{e}");
}

#[test]
fn a_deadlock_shows_where_main_waits() {
    for tb in ["", "single", "all", "system"] {
        let o = run(RT0, ["deadlock"], &[("GOTRACEBACK", tb)]);
        assert_eq!(status(&o), 2);
        let e = err(&o);
        assert!(e.starts_with("fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n"), "{e}");
        assert_frame(
            &e,
            "rt_demo::demo::scenarios::deadlock",
            &[line("deadlock")],
        );
        // Its caller, unless an optimized build made the call a tail call.
        if frame_line(&e, "rt_demo::demo::main").is_some() {
            assert_frame(&e, "rt_demo::demo::main", &[line("deadlock-call")]);
        }
        assert_eq!(e.contains("rt_sched::chan::"), tb == "system", "{e}");
    }
}

/// The four waiting goroutines of `quit`, by function, with their wait
/// reason, the line they wait at and the line that started them.
fn quit_goroutines() -> [(&'static str, &'static str, Vec<u32>, u32); 4] {
    let sel: Vec<u32> = (line("quit-select")..=line("quit-select-end")).collect();
    [
        (
            "quit_recv",
            "chan receive",
            vec![line("quit-recv")],
            line("quit-go-recv"),
        ),
        ("quit_select", "select", sel, line("quit-go-select")),
        (
            "quit_sleep",
            "sleep",
            vec![line("quit-sleep")],
            line("quit-go-sleep"),
        ),
        (
            "quit_blocked",
            "syscall",
            vec![line("quit-blocked")],
            line("quit-go-blocked"),
        ),
    ]
}

/// Runs `quit` with `GOTRACEBACK=tb`, sends SIGQUIT once it is ready and
/// returns its report, checking the exit status and first line.
fn sigquit(tb: &str) -> String {
    let mut c = command(RT0);
    c.env("GOTRACEBACK", tb).arg("quit");
    let mut child = Running::start(c);
    assert_eq!(child.line(60), "ready\n");
    child.signal(libc::SIGQUIT);
    let (st, e) = child.finish(60);
    assert_eq!(st.code(), Some(2), "{e}");
    assert!(e.starts_with("SIGQUIT: quit\nPC=0x"), "{e}");
    e
}

#[test]
fn sigquit_shows_every_goroutine_where_it_waits() {
    for tb in ["", "all", "system"] {
        let e = sigquit(tb);
        for (func, reason, lines, go_line) in quit_goroutines() {
            let func = format!("rt_demo::demo::scenarios::{func}");
            // Each section starts `goroutine N [reason]:`; the goroutine
            // the signal interrupted shows as running.
            let at = e
                .find(&format!("\n{func}()\n"))
                .or_else(|| e.find(&format!("\n{func}(...)\n")))
                .unwrap_or_else(|| panic!("no frame of {func} at GOTRACEBACK={tb}:\n{e}"));
            let head_at = e[..at].rfind("goroutine ").expect("section header");
            let header = e[head_at..].lines().next().unwrap_or("");
            assert!(
                header.ends_with(&format!(" [{reason}]:")) || header.ends_with(" [running]:"),
                "{header} for {func}:\n{e}"
            );
            let s = section(&e[head_at..], "goroutine ");
            assert_frame(s, &func, &lines);
            assert_created_by(s, "rt_demo::demo::scenarios::quit", 1, go_line);
        }
        assert_eq!(e.contains("rt_sched::"), tb == "system", "{e}");
    }
    // GOTRACEBACK=none: the signal and nothing of the goroutines.
    let e = sigquit("none");
    assert!(!e.contains("goroutine "), "{e}");
}
