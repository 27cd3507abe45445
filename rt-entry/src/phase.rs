//! `schedinit`'s phases: the one table that fixes their order.
//!
//! Each row names a phase by Go's name, the crate that owns it, the phases
//! that must have run before it (and the comment above the row says why),
//! and the implementation it runs: a `&'static dyn` [`Phase`] that the
//! owning crate defines (`rt_stack::phase::Stackinit`,
//! `rt_heap::phase::Mallocinit`, …). [`schedinit`] walks the rows in order;
//! the order lives here and nowhere else. `rt-entry` itself only composes:
//! where one crate's result must reach another (the settled `GODEBUG`
//! reaches the signal crate and the scheduler, the heap's scavenger runs on
//! the scheduler's sysmon tick), the row's `wire` step does it.
//!
//! A program may boot with its own table ([`main!`](crate::main)'s
//! `phases =` form): [`replaced`] swaps one row's implementation for
//! another (a recording double, say) while every other phase runs for real,
//! and [`validate`] (run at boot by `moduledataverify`) rejects a table that
//! drops a phase or breaks a dependency. Adding a phase is one row here plus
//! one [`Phase`] implementation in the crate that owns it.
//!
//! Phases with no Rust meaning are kept in the table, marked skipped with the
//! reason, so the trace lists them instead of silently dropping them.
//!
//! **Lazy initialisation.** Two phases can find their work already done:
//! the heap starts at the first allocation if one comes before
//! `mallocinit` (the `inittrace=2` details of the earlier phases, or the
//! `/proc/self/auxv` fallback of `args` when the kernel passed no auxiliary
//! vector), and the stack pool at the first stack if one were taken before
//! `stackinit` (nothing does). Their rows say so, and `mallocinit`'s trace
//! detail reports it.

pub use rt_sys::phase::{Ctx, Phase, Skipped};

/// One row of the table.
#[derive(Clone, Copy)]
pub struct Row {
    /// Go's name for the phase (as the trace prints it); unique in a table.
    pub go_name: &'static str,
    /// The crate that owns it (as the trace prints it).
    pub owner: &'static str,
    /// Phases that must have run before this one.
    pub deps: &'static [&'static str],
    /// `Some(reason)` when the phase has no Rust meaning and is skipped.
    pub skipped: Option<&'static str>,
    /// `Some(what)` when the phase's work may already have been done lazily.
    pub lazy: Option<&'static str>,
    /// The implementation.
    pub imp: &'static dyn Phase,
    /// `rt-entry`'s wiring of the phase's result into the crates that read
    /// it, run right after the phase (kept when [`replaced`] swaps `imp`).
    pub wire: Option<fn()>,
}

impl core::fmt::Debug for Row {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Row")
            .field("go_name", &self.go_name)
            .field("owner", &self.owner)
            .field("deps", &self.deps)
            .field("skipped", &self.skipped)
            .field("lazy", &self.lazy)
            .finish_non_exhaustive()
    }
}

/// A row with no wiring and nothing lazy.
const fn row(
    go_name: &'static str,
    owner: &'static str,
    deps: &'static [&'static str],
    imp: &'static dyn Phase,
) -> Row {
    Row {
        go_name,
        owner,
        deps,
        skipped: None,
        lazy: None,
        imp,
        wire: None,
    }
}

/// A row kept for the trace, with the reason it has no Rust meaning.
const fn skipped(go_name: &'static str, deps: &'static [&'static str], why: &'static str) -> Row {
    Row {
        go_name,
        owner: "rt-entry",
        deps,
        skipped: Some(why),
        lazy: None,
        imp: &Skipped,
        wire: None,
    }
}

/// The number of phases in [`SCHEDINIT`].
pub const PHASES: usize = 17;

/// `schedinit` in Go 1.17's order.
pub const SCHEDINIT: [Row; PHASES] = [
    row("maxmcount", "rt-sched", &[], &rt_sched::boot::Maxmcount),
    // The Rust meaning: the table a program booted with is well-formed.
    row("moduledataverify", "rt-entry", &[], &Moduledataverify),
    // Stack lists first, heap second, as in Go: the pool's init allocates nothing.
    Row {
        lazy: Some("the pool starts with its defaults at the first stack taken earlier"),
        ..row("stackinit", "rt-stack", &[], &rt_stack::phase::Stackinit)
    },
    Row {
        lazy: Some("the heap starts at the first allocation made earlier (inittrace=2 details, the /proc/self/auxv fallback of args)"),
        ..row("mallocinit", "rt-heap", &[], &rt_heap::phase::Mallocinit)
    },
    row("fastrandinit", "rt-sched", &[], &rt_sched::boot::Fastrandinit),
    // m0's PRNG is seeded from fastrandseed; its gsignal stack comes from the pool.
    row(
        "mcommoninit",
        "rt-sched",
        &["maxmcount", "stackinit", "mallocinit", "fastrandinit"],
        &rt_sched::boot::Mcommoninit,
    ),
    row("cpuinit", "rt-entry", &[], &Cpuinit),
    // The hash choice depends on the AES/SSSE3/SSE4.1 bits cpuinit settled.
    row("alginit", "rt-entry", &["cpuinit"], &Alginit),
    skipped("modulesinit", &[], "a Rust binary has no Go module data"),
    skipped("typelinksinit", &["modulesinit"], "no Go type links to de-duplicate"),
    skipped("itabsinit", &["modulesinit"], "no Go itabs"),
    // New Ms start from the mask saved here; m0 must exist to hold it.
    row("sigsave", "rt-signal", &["mcommoninit"], &rt_signal::phase::Sigsave),
    row("goargs", "rt-env", &["mallocinit"], &rt_env::phase::Goargs),
    row("goenvs", "rt-env", &["mallocinit"], &rt_env::phase::Goenvs),
    // GODEBUG and GOTRACEBACK come from the environment goenvs captured;
    // the wiring hands them to the signal crate, the scheduler and the trace.
    Row {
        wire: Some(crate::boot::publish_debugvars),
        ..row("parsedebugvars", "rt-env", &["goenvs"], &rt_env::phase::Parsedebugvars)
    },
    // The scavenger's trace setting is a GODEBUG key; the wiring puts the
    // scavenger on sysmon's tick.
    Row {
        wire: Some(crate::boot::scavenger_on_sysmon),
        ..row("gcinit", "rt-heap", &["mallocinit", "parsedebugvars"], &rt_heap::phase::Gcinit)
    },
    // GOMAXPROCS is read from the environment; each P gets an mcache and a
    // stack cache; P0 goes to m0.
    row(
        "procresize",
        "rt-sched",
        &["stackinit", "mallocinit", "mcommoninit", "goenvs", "parsedebugvars"],
        &rt_sched::boot::Procresize,
    ),
];

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `table` with the implementation of the phase named `go_name` replaced by
/// `imp`, owned (in the trace) by `owner`; every other row, and the row's
/// dependencies and wiring, unchanged. A name not in the table is a compile
/// error when evaluated in a constant, a panic otherwise.
pub const fn replaced<const N: usize>(
    mut table: [Row; N],
    go_name: &str,
    owner: &'static str,
    imp: &'static dyn Phase,
) -> [Row; N] {
    let mut i = 0;
    while i < N {
        if str_eq(table[i].go_name, go_name) {
            table[i].imp = imp;
            table[i].owner = owner;
            table[i].skipped = None;
            return table;
        }
        i += 1;
    }
    panic!("replaced: no phase by that name")
}

/// Checks a table: every name once, every phase of [`SCHEDINIT`] present,
/// every dependency named in the table and placed earlier. Returns the
/// first violation as text.
pub fn validate(table: &[Row]) -> Result<(), String> {
    for (i, r) in table.iter().enumerate() {
        if table[..i].iter().any(|p| p.go_name == r.go_name) {
            return Err(format!("phase {} listed twice", r.go_name));
        }
        for d in r.deps {
            match table.iter().position(|p| p.go_name == *d) {
                Some(j) if j < i => {}
                Some(_) => {
                    return Err(format!(
                        "phase {} runs before its dependency {}",
                        r.go_name, d
                    ))
                }
                None => {
                    return Err(format!(
                        "phase {} depends on {}, which is not in the table",
                        r.go_name, d
                    ))
                }
            }
        }
    }
    if let Some(m) = SCHEDINIT
        .iter()
        .find(|s| !table.iter().any(|r| r.go_name == s.go_name))
    {
        return Err(format!("phase {} is missing", m.go_name));
    }
    Ok(())
}

/// What [`schedinit`] tells its observer (the boot trace).
pub trait Observer {
    /// Before a row runs (or is skipped).
    fn before(&mut self, _row: &Row, _cx: &mut Ctx) {}
    /// After a row ran and its wiring was done (or it was skipped).
    fn after(&mut self, _row: &Row, _cx: &mut Ctx) {}
}

/// `schedinit`: every row of `table`, in order, each followed by its wiring.
///
/// # Safety
/// As [`Phase::run`]: once, by the boot, on the initial thread bound to m0
/// and g0, before any goroutine or other M exists, with a table
/// [`validate`] accepts. (With doubles that touch no runtime state, as in
/// unit tests, the phases' contract is theirs to state.)
pub unsafe fn schedinit(table: &[Row], cx: &mut Ctx, obs: &mut dyn Observer) {
    for r in table {
        obs.before(r, cx);
        if r.skipped.is_none() {
            // SAFETY: the caller's contract, passed on; rows run in table order,
            // which validate has checked against the dependencies.
            unsafe { r.imp.run(cx) };
            if let Some(w) = r.wire {
                w();
            }
        }
        obs.after(r, cx);
    }
}

/// Go's `moduledataverify`, given its Rust meaning: the table this program
/// boots with is well-formed ([`validate`]).
#[derive(Debug, Clone, Copy)]
pub struct Moduledataverify;

impl Phase for Moduledataverify {
    unsafe fn run(&self, cx: &mut Ctx) {
        let table = crate::boot::program_phases();
        if let Err(e) = validate(table) {
            rt_sys::fatal!("moduledataverify: {}", e);
        }
        cx.detail(|| format!("phase table ({} phases) ordered", table.len()));
    }
}

/// Go's `cpuinit`: the CPU features, after `GODEBUG`'s `cpu.*` keys of the
/// initial environment.
#[derive(Debug, Clone, Copy)]
pub struct Cpuinit;

impl Phase for Cpuinit {
    unsafe fn run(&self, cx: &mut Ctx) {
        let f = crate::cpu::cpuinit(cx.raw_getenv(b"GODEBUG"));
        cx.detail(|| {
            let on: Vec<&str> = f
                .list()
                .iter()
                .filter(|(_, on)| *on)
                .map(|(n, _)| *n)
                .collect();
            format!(
                "vendor={} processorVersionInfo={:#x} features={}",
                if crate::cpu::IS_INTEL.load(core::sync::atomic::Ordering::Relaxed) {
                    "GenuineIntel"
                } else {
                    "other"
                },
                crate::cpu::PROCESSOR_VERSION_INFO.load(core::sync::atomic::Ordering::Relaxed),
                on.join(",")
            )
        });
    }
}

/// Go's `alginit`: the hash, chosen from the features `cpuinit` settled and
/// keyed from the startup random bytes.
#[derive(Debug, Clone, Copy)]
pub struct Alginit;

impl Phase for Alginit {
    unsafe fn run(&self, cx: &mut Ctx) {
        let (seed, _) = rt_sched::boot::startup_random(cx.random());
        let kind = crate::cpu::alginit(&crate::cpu::features(), &seed);
        cx.detail(|| format!("hash={kind:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Mutex;

    /// A double that records its name in a log.
    struct Rec(&'static str, &'static Mutex<Vec<&'static str>>);
    impl Phase for Rec {
        unsafe fn run(&self, cx: &mut Ctx) {
            self.1.lock().unwrap().push(self.0);
            cx.detail(|| format!("ran {}", self.0));
        }
    }

    struct Traced(Vec<(&'static str, bool, String)>);
    impl Observer for Traced {
        fn before(&mut self, r: &Row, _: &mut Ctx) {
            self.0.push((r.go_name, false, String::new()));
        }
        fn after(&mut self, r: &Row, cx: &mut Ctx) {
            self.0.push((r.go_name, true, cx.take_detail()));
        }
    }

    fn ctx() -> Ctx {
        // SAFETY: the doubles read no vectors.
        let mut cx = unsafe { Ctx::new(0, core::ptr::null(), core::ptr::null(), None, 1) };
        cx.set_detailed(true);
        cx
    }

    /// SCHEDINIT with every implementation replaced by a recording double.
    fn all_doubles(log: &'static Mutex<Vec<&'static str>>) -> [Row; PHASES] {
        let mut t = SCHEDINIT;
        for r in t.iter_mut() {
            r.imp = Box::leak(Box::new(Rec(r.go_name, log)));
            r.wire = None;
        }
        t
    }

    #[test]
    fn every_phase_runs_once_in_go_117_order() {
        static LOG: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
        let t = all_doubles(&LOG);
        let mut obs = Traced(Vec::new());
        // SAFETY: every row is a double touching only LOG.
        unsafe { schedinit(&t, &mut ctx(), &mut obs) };
        assert_eq!(
            *LOG.lock().unwrap(),
            [
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
                "procresize"
            ]
        );
        // Skipped phases are traced, never run, and never silently dropped;
        // each traced row carries its own detail.
        let after: Vec<&str> = obs.0.iter().filter(|e| e.1).map(|e| e.0).collect();
        assert_eq!(
            after,
            SCHEDINIT.iter().map(|p| p.go_name).collect::<Vec<_>>()
        );
        for (name, _, detail) in obs.0.iter().filter(|e| e.1) {
            let row = SCHEDINIT.iter().find(|r| r.go_name == *name).unwrap();
            if row.skipped.is_some() {
                assert_eq!(detail, "", "{name}");
            } else {
                assert_eq!(detail, &format!("ran {name}"));
            }
        }
    }

    #[test]
    fn replaced_swaps_one_implementation_and_keeps_the_rest() {
        static LOG: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
        static DOUBLE: Rec = Rec("double", &LOG);
        let base = all_doubles(&LOG);
        let t = replaced(base, "goenvs", "a test", &DOUBLE);
        for (a, b) in t.iter().zip(base.iter()) {
            assert_eq!(a.go_name, b.go_name);
            assert_eq!(a.deps, b.deps);
            if a.go_name == "goenvs" {
                assert_eq!(a.owner, "a test");
            } else {
                assert_eq!(a.owner, b.owner);
                assert!(core::ptr::addr_eq(a.imp, b.imp));
            }
        }
        // SAFETY: every row is a double touching only LOG.
        unsafe { schedinit(&t, &mut ctx(), &mut Traced(Vec::new())) };
        let log = LOG.lock().unwrap();
        let at = log.iter().position(|n| *n == "double").unwrap();
        assert_eq!(log[at - 1], "goargs");
        assert_eq!(log[at + 1], "parsedebugvars");
        assert!(!log.contains(&"goenvs"));
    }

    #[test]
    fn the_table_satisfies_its_own_dependencies() {
        assert_eq!(validate(&SCHEDINIT), Ok(()));
        assert_eq!(SCHEDINIT.len(), PHASES);
    }

    #[test]
    fn moving_a_dependency_after_its_user_is_rejected() {
        for (i, p) in SCHEDINIT.iter().enumerate() {
            for d in p.deps {
                let mut t: Vec<Row> = SCHEDINIT.to_vec();
                let j = t.iter().position(|r| r.go_name == *d).unwrap();
                assert!(j < i);
                let moved = t.remove(j);
                t.push(moved);
                assert!(validate(&t).is_err(), "{} after {} accepted", d, p.go_name);
            }
        }
    }

    #[test]
    fn a_table_missing_or_repeating_a_phase_is_rejected() {
        let mut t: Vec<Row> = SCHEDINIT.to_vec();
        t.pop();
        assert_eq!(validate(&t), Err("phase procresize is missing".into()));
        let mut t: Vec<Row> = SCHEDINIT.to_vec();
        t.push(SCHEDINIT[0]);
        assert_eq!(validate(&t), Err("phase maxmcount listed twice".into()));
        // A program's own extra phase, placed after what it needs, is fine.
        let mut t: Vec<Row> = SCHEDINIT.to_vec();
        t.push(Row {
            go_name: "myinit",
            owner: "a program",
            deps: &["procresize"],
            ..SCHEDINIT[0]
        });
        assert_eq!(validate(&t), Ok(()));
    }

    proptest! {
        /// On any permutation, `validate` agrees with a direct reading of the
        /// rules: accepted iff for every edge (p needs d), d comes first.
        #[test]
        fn validator_matches_the_rules(perm in Just(SCHEDINIT.to_vec()).prop_shuffle()) {
            let pos = |n: &str| perm.iter().position(|x| x.go_name == n).unwrap();
            let ok = SCHEDINIT.iter().all(|p| p.deps.iter().all(|d| pos(d) < pos(p.go_name)));
            prop_assert_eq!(validate(&perm).is_ok(), ok);
        }
    }
}
