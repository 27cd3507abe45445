//! rt-entry: how an rt program starts — Go's `_rt0_amd64` → `rt0_go` →
//! `schedinit` → `newproc(main)` → `mstart`, for Rust programs.
//!
//! ```text
//! _rt0_amd64 / main ──► rt0_go (asm) ─┬─ SP align, g0 bounds, CPUID, settls + 0x123, m0↔g0
//!                                     ├─ check      (boot::rt_check)
//!                                     ├─ args       (auxv: page size, AT_RANDOM, vDSO, hwcap)
//!                                     ├─ osinit     (ncpu, huge page size)
//!                                     ├─ schedinit  (phase::SCHEDINIT, in Go 1.17's order:
//!                                     │     maxmcount, moduledataverify, stackinit [rt-stack],
//!                                     │     mallocinit [rt-heap], fastrandinit, mcommoninit
//!                                     │     [rt-sched], cpuinit, alginit, (modulesinit,
//!                                     │     typelinksinit, itabsinit: skipped), sigsave
//!                                     │     [rt-signal], goargs, goenvs, parsedebugvars
//!                                     │     [rt-env], gcinit [rt-heap], procresize [rt-sched])
//!                                     ├─ newproc(main)  → goroutine 1 in P0.runnext
//!                                     └─ mstart         → schedule → gogo(goroutine 1)
//! ```
//!
//! A program opts in with one line, [`main!`]:
//!
//! ```ignore
//! #![no_main]
//! fn main() { println!("hello from goroutine {}", rt_sched::goid()); }
//! rt_entry::main!(main);
//! ```
//!
//! Link it with `-nostartfiles -Wl,-e,_rt0_amd64` (a build script line) to
//! enter at `_rt0_amd64` like a Go binary, or normally to enter at `main`
//! after libc's start code. Either way the program's `main` runs as
//! goroutine 1, and the process exits with its status once `main` returns,
//! after flushing stdout.

#![warn(missing_docs)]

pub mod arch;
pub mod args;
pub mod boot;
pub mod check;
pub mod cpu;
pub mod inittrace;
pub mod phase;

/// What a program's `main` may return: `()`, an exit status, or a `Result`
/// whose error is printed (`Error: …`, status 1, as Rust's own `main`).
pub trait MainResult {
    /// The process exit status.
    fn into_status(self) -> i32;
}

impl MainResult for () {
    fn into_status(self) -> i32 {
        0
    }
}

impl MainResult for i32 {
    fn into_status(self) -> i32 {
        self
    }
}

impl MainResult for u8 {
    fn into_status(self) -> i32 {
        self as i32
    }
}

impl<E: core::fmt::Debug> MainResult for Result<(), E> {
    fn into_status(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("Error: {e:?}");
                1
            }
        }
    }
}

/// Makes the binary an rt program whose `main` is `$main` (see the crate
/// docs). Defines the entry trampolines and the [`Program`] `rt0_go` boots;
/// the binary must be `#![no_main]`.
///
/// It also makes `rt-heap` the program's global allocator (Go's `mallocgc`
/// serves every allocation of a Go program), so the P that runs a goroutine
/// serves its allocations from its own `mcache`.
///
/// `main!(main, phases = TABLE)` boots with the program's own `schedinit`
/// table instead of [`phase::SCHEDINIT`] — typically
/// [`phase::replaced`]`(SCHEDINIT, "goenvs", "my crate", &MyGoenvs)`, to run
/// one phase of one's own (a recording double in a test) while every other
/// phase runs for real. `moduledataverify` rejects, with a fatal error, a
/// table that drops a phase or breaks a dependency.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        $crate::main!($main, phases = $crate::phase::SCHEDINIT);
    };
    ($main:path, phases = $phases:expr) => {
        #[global_allocator]
        static __RT_HEAP: $crate::__rt_heap::RtHeap = $crate::__rt_heap::RtHeap;
        extern "C-unwind" fn __rt_main_main() -> i32 {
            $crate::MainResult::into_status($main())
        }
        static __RT_PROGRAM: $crate::Program = $crate::Program {
            main: __rt_main_main,
            phases: &$phases,
        };
        $crate::__rt_entry_trampolines!(__RT_PROGRAM);
    };
}

pub use boot::Program;

#[doc(hidden)]
pub use rt_heap as __rt_heap;

/// The arguments `goargs` captured, as Go's `os.Args` (bytes exactly as
/// given).
pub fn args() -> &'static [&'static std::ffi::OsStr] {
    rt_env::args()
}
