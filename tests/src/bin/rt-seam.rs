//! A program that boots with one `schedinit` phase replaced: its `goenvs`
//! is a recording double that hands the runtime a fixed environment, while
//! every other phase runs for real. The integration test
//! `tests/tests/seam.rs` runs it and checks that the real phases after the
//! double (parsedebugvars, procresize) act on what the double supplied.
#![no_main]

use rt_entry::phase::{replaced, Ctx, Phase, PHASES, SCHEDINIT};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many times the double ran, and how many program arguments `goargs`
/// (a real phase, earlier in the table) had captured when it did.
static RUNS: AtomicUsize = AtomicUsize::new(0);
static ARGS_SEEN: AtomicUsize = AtomicUsize::new(usize::MAX);

/// `goenvs`, replaced: the environment is three fixed entries, whatever
/// the process was started with.
struct FixedEnv;

impl Phase for FixedEnv {
    unsafe fn run(&self, cx: &mut Ctx) {
        RUNS.fetch_add(1, Ordering::SeqCst);
        ARGS_SEEN.store(rt_env::args().len(), Ordering::SeqCst);
        let entries: [&[u8]; 3] = [
            b"GOMAXPROCS=3\0",
            b"GODEBUG=inittrace=2\0",
            b"RT_SEAM=from the double\0",
        ];
        let envp = [
            entries[0].as_ptr(),
            entries[1].as_ptr(),
            entries[2].as_ptr(),
            core::ptr::null(),
        ];
        // SAFETY: envp is NULL-terminated, each entry NUL-terminated, and all
        // of it is readable for the call (goenvs copies what it keeps).
        unsafe { rt_env::goenvs(envp.as_ptr()) };
        cx.detail(|| format!("recording double: {} fixed entries", entries.len()));
    }
}

static PHASES_WITH_DOUBLE: [rt_entry::phase::Row; PHASES] =
    replaced(SCHEDINIT, "goenvs", "rt-seam", &FixedEnv);

fn main() -> i32 {
    // Real work after the boot: goroutines and a channel.
    let ch = rt_sched::Chan::<u64>::new(0);
    let mut hs = Vec::new();
    for i in 0..64u64 {
        let ch = ch.clone();
        hs.push(rt_sched::spawn(move || ch.send(i)));
    }
    let sum: u64 = (0..64).map(|_| ch.recv().expect("open")).sum();
    for h in hs {
        h.join().expect("sender");
    }
    println!("double ran {} time(s)", RUNS.load(Ordering::SeqCst));
    println!(
        "args seen by the double: {}",
        ARGS_SEEN.load(Ordering::SeqCst)
    );
    println!("gomaxprocs={}", rt_sched::gomaxprocs());
    println!(
        "RT_SEAM={:?} HOME={:?}",
        rt_env::getenv(b"RT_SEAM"),
        rt_env::getenv(b"HOME")
    );
    println!("sum={sum}");
    0
}

rt_entry::main!(main, phases = PHASES_WITH_DOUBLE);
