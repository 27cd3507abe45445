//! `schedinit`'s phases: the one table that fixes their order.
//!
//! Each row names the phase, the crate that owns it and its Go 1.17
//! counterpart. [`schedinit`] walks the table and calls the owning crate's
//! trait method for each row, so the order lives here and nowhere else; the
//! test with recording fakes proves every phase runs exactly once, in this
//! order, and the `deps` column states the ordering each phase relies on (a
//! proptest checks the validator against those rules).
//!
//! Phases with no Rust meaning are kept in the table, marked skipped with the
//! reason, so the trace lists them instead of silently dropping them.

/// One of `schedinit`'s phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhaseId {
    /// `sched.maxmcount = 10000`; the world is formally stopped.
    Maxmcount,
    /// `moduledataverify`: the runtime's own static tables are well-formed.
    Moduledataverify,
    /// `stackinit`: the stack pool.
    Stackinit,
    /// `mallocinit`: the heap.
    Mallocinit,
    /// `fastrandinit`: the PRNG seed.
    Fastrandinit,
    /// `mcommoninit(m0)`.
    Mcommoninit,
    /// `cpuinit`: CPU features.
    Cpuinit,
    /// `alginit`: the hash.
    Alginit,
    /// `modulesinit`.
    Modulesinit,
    /// `typelinksinit`.
    Typelinksinit,
    /// `itabsinit`.
    Itabsinit,
    /// `sigsave`: the inherited signal mask.
    Sigsave,
    /// `goargs`.
    Goargs,
    /// `goenvs`.
    Goenvs,
    /// `parsedebugvars`.
    Parsedebugvars,
    /// `gcinit`.
    Gcinit,
    /// `procresize(GOMAXPROCS)`.
    Procresize,
}

/// The crate that owns a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// `rt-entry` itself.
    Entry,
    /// `rt-stack`.
    Stack,
    /// `rt-heap`.
    Heap,
    /// `rt-sched`.
    Sched,
    /// `rt-signal`.
    Signal,
    /// `rt-env`.
    Env,
}

impl Owner {
    /// The crate's name.
    pub fn crate_name(self) -> &'static str {
        match self {
            Owner::Entry => "rt-entry",
            Owner::Stack => "rt-stack",
            Owner::Heap => "rt-heap",
            Owner::Sched => "rt-sched",
            Owner::Signal => "rt-signal",
            Owner::Env => "rt-env",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Which phase.
    pub id: PhaseId,
    /// The owning crate.
    pub owner: Owner,
    /// Go's name for it (as the trace prints it).
    pub go_name: &'static str,
    /// Phases that must have run before this one, and why.
    pub deps: &'static [PhaseId],
    /// `Some(reason)` when the phase has no Rust meaning and is skipped.
    pub skipped: Option<&'static str>,
}

use PhaseId::*;

/// `schedinit` in Go 1.17's order.
pub const SCHEDINIT: &[Phase] = &[
    Phase {
        id: Maxmcount,
        owner: Owner::Sched,
        go_name: "maxmcount",
        deps: &[],
        skipped: None,
    },
    Phase {
        id: Moduledataverify,
        owner: Owner::Entry,
        go_name: "moduledataverify",
        deps: &[],
        skipped: None,
    },
    // Stack lists first, heap second, as in Go: the pool's init allocates nothing.
    Phase {
        id: Stackinit,
        owner: Owner::Stack,
        go_name: "stackinit",
        deps: &[],
        skipped: None,
    },
    Phase {
        id: Mallocinit,
        owner: Owner::Heap,
        go_name: "mallocinit",
        deps: &[],
        skipped: None,
    },
    Phase {
        id: Fastrandinit,
        owner: Owner::Sched,
        go_name: "fastrandinit",
        deps: &[],
        skipped: None,
    },
    // m0's PRNG is seeded from fastrandseed; its gsignal stack comes from the pool.
    Phase {
        id: Mcommoninit,
        owner: Owner::Sched,
        go_name: "mcommoninit",
        deps: &[Maxmcount, Stackinit, Mallocinit, Fastrandinit],
        skipped: None,
    },
    Phase {
        id: Cpuinit,
        owner: Owner::Entry,
        go_name: "cpuinit",
        deps: &[],
        skipped: None,
    },
    // The hash choice depends on the AES/SSSE3/SSE4.1 bits cpuinit settled.
    Phase {
        id: Alginit,
        owner: Owner::Entry,
        go_name: "alginit",
        deps: &[Cpuinit],
        skipped: None,
    },
    Phase {
        id: Modulesinit,
        owner: Owner::Entry,
        go_name: "modulesinit",
        deps: &[],
        skipped: Some("a Rust binary has no Go module data"),
    },
    Phase {
        id: Typelinksinit,
        owner: Owner::Entry,
        go_name: "typelinksinit",
        deps: &[Modulesinit],
        skipped: Some("no Go type links to de-duplicate"),
    },
    Phase {
        id: Itabsinit,
        owner: Owner::Entry,
        go_name: "itabsinit",
        deps: &[Modulesinit],
        skipped: Some("no Go itabs"),
    },
    // New Ms start from the mask saved here; m0 must exist to hold it.
    Phase {
        id: Sigsave,
        owner: Owner::Signal,
        go_name: "sigsave",
        deps: &[Mcommoninit],
        skipped: None,
    },
    Phase {
        id: Goargs,
        owner: Owner::Env,
        go_name: "goargs",
        deps: &[Mallocinit],
        skipped: None,
    },
    Phase {
        id: Goenvs,
        owner: Owner::Env,
        go_name: "goenvs",
        deps: &[Mallocinit],
        skipped: None,
    },
    // GODEBUG and GOTRACEBACK come from the environment goenvs captured.
    Phase {
        id: Parsedebugvars,
        owner: Owner::Env,
        go_name: "parsedebugvars",
        deps: &[Goenvs],
        skipped: None,
    },
    // The scavenger's trace setting is a GODEBUG key.
    Phase {
        id: Gcinit,
        owner: Owner::Heap,
        go_name: "gcinit",
        deps: &[Mallocinit, Parsedebugvars],
        skipped: None,
    },
    // GOMAXPROCS is read from the environment; each P gets an mcache and a stack cache; P0 goes to m0.
    Phase {
        id: Procresize,
        owner: Owner::Sched,
        go_name: "procresize",
        deps: &[Stackinit, Mallocinit, Mcommoninit, Goenvs, Parsedebugvars],
        skipped: None,
    },
];

/// Phases that `rt-stack` owns.
pub trait StackPhases {
    /// `stackinit`.
    fn stackinit(&mut self);
}
/// Phases that `rt-heap` owns.
pub trait HeapPhases {
    /// `mallocinit`.
    fn mallocinit(&mut self);
    /// `gcinit`.
    fn gcinit(&mut self);
}
/// Phases that `rt-sched` owns.
pub trait SchedPhases {
    /// `sched.maxmcount = 10000`.
    fn maxmcount(&mut self);
    /// `fastrandinit`.
    fn fastrandinit(&mut self);
    /// `mcommoninit(m0, 0)`.
    fn mcommoninit(&mut self);
    /// `procresize(GOMAXPROCS or ncpu)`.
    fn procresize(&mut self);
}
/// Phases that `rt-signal` owns.
pub trait SignalPhases {
    /// `sigsave(&m0.sigmask)`.
    fn sigsave(&mut self);
}
/// Phases that `rt-env` owns.
pub trait EnvPhases {
    /// `goargs`.
    fn goargs(&mut self);
    /// `goenvs`.
    fn goenvs(&mut self);
    /// `parsedebugvars`.
    fn parsedebugvars(&mut self);
}
/// Phases that `rt-entry` owns.
pub trait EntryPhases {
    /// `moduledataverify`.
    fn moduledataverify(&mut self);
    /// `cpuinit`.
    fn cpuinit(&mut self);
    /// `alginit`.
    fn alginit(&mut self);
}

/// Everything `schedinit` needs: one implementation per crate, composed.
pub trait Boot:
    StackPhases + HeapPhases + SchedPhases + SignalPhases + EnvPhases + EntryPhases
{
    /// Called before each phase runs (tracing).
    fn before(&mut self, _p: &Phase) {}
    /// Called after each phase ran (or was skipped).
    fn after(&mut self, _p: &Phase) {}
}

/// Runs one phase through its owner's trait.
pub fn run_phase<B: Boot + ?Sized>(b: &mut B, p: &Phase) {
    b.before(p);
    if p.skipped.is_none() {
        match p.id {
            Maxmcount => b.maxmcount(),
            Moduledataverify => b.moduledataverify(),
            Stackinit => b.stackinit(),
            Mallocinit => b.mallocinit(),
            Fastrandinit => b.fastrandinit(),
            Mcommoninit => b.mcommoninit(),
            Cpuinit => b.cpuinit(),
            Alginit => b.alginit(),
            Modulesinit | Typelinksinit | Itabsinit => {}
            Sigsave => b.sigsave(),
            Goargs => b.goargs(),
            Goenvs => b.goenvs(),
            Parsedebugvars => b.parsedebugvars(),
            Gcinit => b.gcinit(),
            Procresize => b.procresize(),
        }
    }
    b.after(p);
}

/// `schedinit`: every phase of [`SCHEDINIT`], in order.
pub fn schedinit<B: Boot + ?Sized>(b: &mut B) {
    for p in SCHEDINIT {
        run_phase(b, p);
    }
}

/// Checks an order of phases against the `deps` column: every dependency
/// appears, and earlier. Returns the first violation.
pub fn validate(order: &[PhaseId]) -> Result<(), (PhaseId, PhaseId)> {
    for (i, id) in order.iter().enumerate() {
        let row = SCHEDINIT
            .iter()
            .find(|p| p.id == *id)
            .expect("phase in table");
        for d in row.deps {
            match order.iter().position(|x| x == d) {
                Some(j) if j < i => {}
                _ => return Err((*id, *d)),
            }
        }
    }
    Ok(())
}

/// Looks a phase up by Go name.
pub fn by_go_name(name: &str) -> Option<&'static Phase> {
    SCHEDINIT.iter().find(|p| p.go_name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Default)]
    struct Recorder {
        log: Vec<&'static str>,
        traced: Vec<(PhaseId, bool)>,
    }
    impl StackPhases for Recorder {
        fn stackinit(&mut self) {
            self.log.push("stackinit");
        }
    }
    impl HeapPhases for Recorder {
        fn mallocinit(&mut self) {
            self.log.push("mallocinit");
        }
        fn gcinit(&mut self) {
            self.log.push("gcinit");
        }
    }
    impl SchedPhases for Recorder {
        fn maxmcount(&mut self) {
            self.log.push("maxmcount");
        }
        fn fastrandinit(&mut self) {
            self.log.push("fastrandinit");
        }
        fn mcommoninit(&mut self) {
            self.log.push("mcommoninit");
        }
        fn procresize(&mut self) {
            self.log.push("procresize");
        }
    }
    impl SignalPhases for Recorder {
        fn sigsave(&mut self) {
            self.log.push("sigsave");
        }
    }
    impl EnvPhases for Recorder {
        fn goargs(&mut self) {
            self.log.push("goargs");
        }
        fn goenvs(&mut self) {
            self.log.push("goenvs");
        }
        fn parsedebugvars(&mut self) {
            self.log.push("parsedebugvars");
        }
    }
    impl EntryPhases for Recorder {
        fn moduledataverify(&mut self) {
            self.log.push("moduledataverify");
        }
        fn cpuinit(&mut self) {
            self.log.push("cpuinit");
        }
        fn alginit(&mut self) {
            self.log.push("alginit");
        }
    }
    impl Boot for Recorder {
        fn before(&mut self, p: &Phase) {
            self.traced.push((p.id, false));
        }
        fn after(&mut self, p: &Phase) {
            self.traced.push((p.id, true));
        }
    }

    #[test]
    fn every_phase_runs_once_in_go_117_order() {
        let mut r = Recorder::default();
        schedinit(&mut r);
        assert_eq!(
            r.log,
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
        // Skipped phases are traced, never run, and never silently dropped.
        let traced: Vec<PhaseId> = r
            .traced
            .iter()
            .filter(|(_, after)| *after)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(traced, SCHEDINIT.iter().map(|p| p.id).collect::<Vec<_>>());
        for p in SCHEDINIT.iter().filter(|p| p.skipped.is_some()) {
            assert!(!r.log.contains(&p.go_name));
        }
    }

    #[test]
    fn the_table_satisfies_its_own_dependencies() {
        let order: Vec<PhaseId> = SCHEDINIT.iter().map(|p| p.id).collect();
        assert_eq!(validate(&order), Ok(()));
        // Each phase appears exactly once.
        let mut sorted = order.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), order.len());
    }

    #[test]
    fn moving_a_dependency_after_its_user_is_rejected() {
        for p in SCHEDINIT {
            for d in p.deps {
                let mut order: Vec<PhaseId> =
                    SCHEDINIT.iter().map(|p| p.id).filter(|x| x != d).collect();
                order.push(*d);
                assert!(
                    validate(&order).is_err(),
                    "{:?} after {:?} accepted",
                    d,
                    p.id
                );
            }
        }
    }

    proptest! {
        /// On any permutation, `validate` agrees with a direct reading of the
        /// rules: accepted iff for every edge (p needs d), d comes first.
        #[test]
        fn validator_matches_the_rules(perm in Just(SCHEDINIT.iter().map(|p| p.id).collect::<Vec<_>>()).prop_shuffle()) {
            let pos = |id: PhaseId| perm.iter().position(|x| *x == id).unwrap();
            let ok = SCHEDINIT.iter().all(|p| p.deps.iter().all(|d| pos(*d) < pos(p.id)));
            prop_assert_eq!(validate(&perm).is_ok(), ok);
        }
    }
}
