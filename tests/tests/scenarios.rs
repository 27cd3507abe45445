//! The scenario list cannot drift: every scenario `rt-demo` dispatches is in
//! its help (`rt-demo help`) and in README.md's list, and neither names one
//! the dispatcher does not know.

mod common;
use common::*;
use std::collections::BTreeSet;

/// The names matched by the `match scenario { … }` of `pub fn main` in
/// `src/demo/mod.rs` (arms such as `b"spawn" =>`), without `help` and its
/// aliases.
fn dispatched() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/demo/mod.rs");
    let src = std::fs::read_to_string(path).expect("read src/demo/mod.rs");
    let start = src
        .find("\npub fn main() -> i32 {\n")
        .expect("pub fn main in src/demo/mod.rs");
    let body = &src[start..];
    let body = &body[..body.find("\n}\n").expect("end of main")];
    let mut names = BTreeSet::new();
    for line in body.lines() {
        let line = line.trim();
        let Some((pats, _)) = line.split_once("=>") else {
            continue;
        };
        if !line.starts_with("b\"") {
            continue;
        }
        for p in pats.split('|') {
            let p = p.trim();
            let name = p
                .strip_prefix("b\"")
                .and_then(|p| p.strip_suffix('"'))
                .unwrap_or_else(|| panic!("arm pattern {p:?} in {line:?}"));
            names.insert(name.to_string());
        }
    }
    for h in ["help", "-h", "--help"] {
        assert!(names.remove(h), "the dispatcher has no {h:?} arm");
    }
    assert!(
        names.len() >= 40,
        "only {} arms found: {names:?}",
        names.len()
    );
    names
}

/// `rt-demo help`'s entries as `name args` strings: the indented lines,
/// up to the two spaces that end the padded call.
fn help_calls() -> Vec<String> {
    let o = run(RT0, ["help"], &[]);
    assert_eq!(status(&o), 0, "{}", err(&o));
    out(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(|l| l.split("  ").next().unwrap().to_string())
        .collect()
}

fn first_word(call: &str) -> &str {
    call.split(' ').next().unwrap()
}

#[test]
fn help_lists_every_dispatched_scenario_once() {
    let calls = help_calls();
    let names: Vec<&str> = calls.iter().map(|c| first_word(c)).collect();
    let set: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_eq!(set.len(), names.len(), "a scenario listed twice: {names:?}");
    assert_eq!(set, dispatched(), "rt-demo help vs the dispatcher");
}

#[test]
fn unknown_scenario_prints_the_same_list_on_stderr() {
    let o = run(RT0, ["no-such-scenario"], &[]);
    assert_eq!(status(&o), 2);
    assert_eq!(out(&o), "");
    let e = err(&o);
    assert!(
        e.starts_with("rt-demo: unknown scenario \"no-such-scenario\"\n"),
        "{e}"
    );
    let help = out(&run(RT0, ["help"], &[]));
    assert!(e.ends_with(&help), "{e}");
}

#[test]
fn readme_lists_every_scenario_as_the_help_spells_it() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("read README.md");
    let start = readme
        .find("\n## rt-demo scenarios\n")
        .expect("README.md has a '## rt-demo scenarios' section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    // The bulleted list, with wrapped lines joined.
    let list_start = section.find("\n- ").expect("a bulleted list") + 1;
    let list = section[list_start..]
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let spans: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
    let known = dispatched();
    for s in &spans {
        assert!(
            known.contains(first_word(s)),
            "README.md lists `{s}`, which rt-demo does not dispatch"
        );
    }
    for call in help_calls() {
        assert!(
            spans.contains(&call.as_str()),
            "README.md's scenario list lacks `{call}` (as `rt-demo help` spells it)"
        );
    }
}
