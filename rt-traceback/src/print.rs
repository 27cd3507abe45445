//! Frames printed as Go prints them, with function names, files and lines
//! from the program's debug information.
//!
//! ```text
//! rt_demo::helper(...)                      ← inlined into the frame below
//!         /src/rt-demo.rs:41
//! rt_demo::scenario()
//!         /src/rt-demo.rs:57 +0x8e          ← return address − function entry
//! created by rt_demo::main in goroutine 1
//!         /src/rt-demo.rs:80 +0x1d
//! ```
//!
//! Symbolization reads and caches the executable's DWARF (through the
//! `backtrace` crate's gimli/addr2line resolver), so it allocates: it runs
//! only on a dying path or on demand, never from a signal handler that
//! returns. Like Go hiding `runtime.` frames, frames of the runtime's own
//! crates and of the standard library's panic and closure-call machinery
//! are left out unless `GOTRACEBACK` is `system` or `crash` (level 2).

use core::fmt::Write;

use crate::unwind::{function_start, Frame};

/// Most frames printed for one goroutine (Go's `_TracebackMaxFrames`).
pub const MAX_FRAMES: usize = 100;

/// Path prefixes of functions that belong to the runtime, hidden below
/// `GOTRACEBACK=system`.
const RUNTIME_PREFIXES: &[&str] = &[
    "rt_sched::",
    "rt_sys::",
    "rt_heap::",
    "rt_stack::",
    "rt_signal::",
    "rt_entry::",
    "rt_env::",
    "rt_traceback::",
    "rt_goexit",
    "rt_gostart",
    "rt_mcall",
    "std::panicking",
    "std::panic::",
    "std::rt::",
    "std::sys::backtrace",
    "core::panicking",
    "core::ops::function::",
    "core::option::unwrap_failed",
    "core::option::expect_failed",
    "core::result::unwrap_failed",
    "rust_begin_unwind",
    "__rust",
    "backtrace::",
];

/// True if `name` (demangled, without hash) is a runtime function: one of
/// the runtime's crates, the standard library's panic machinery, a
/// closure-call shim (`<F as core::ops::function::FnOnce<A>>::call_once`),
/// or the `main` wrapper `rt_entry::main!` generates.
pub fn is_runtime(name: &str) -> bool {
    let n = name.trim_start_matches('<');
    RUNTIME_PREFIXES.iter().any(|p| n.starts_with(p))
        || (name.starts_with('<') && name.contains(" as core::ops::function::Fn"))
        || name.ends_with("::__rt_main_main")
}

/// One function of a frame: a physical frame is one or more of these, the
/// innermost inlined call first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Func {
    /// Demangled name without the hash, `?` when unknown.
    pub name: String,
    /// Source file, `?` when unknown.
    pub file: String,
    /// Line, 0 when unknown.
    pub line: u32,
}

/// The functions at `pc` (inlined calls first, the physical function
/// last); one `?` entry when nothing is known.
pub fn resolve(pc: usize) -> Vec<Func> {
    let mut out = Vec::new();
    backtrace::resolve(pc as *mut core::ffi::c_void, |s| {
        let name = match s.name() {
            Some(n) => format!("{n:#}"),
            None => "?".to_string(),
        };
        let file = s
            .filename()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "?".to_string());
        out.push(Func {
            name,
            file,
            line: s.lineno().unwrap_or(0),
        });
    });
    if out.is_empty() {
        out.push(Func {
            name: "?".to_string(),
            file: "?".to_string(),
            line: 0,
        });
    }
    out
}

/// Writes `frames` in Go's layout; `level` is the `GOTRACEBACK` level
/// (2 and above show runtime frames and each frame's `fp`, `sp` and `pc`).
/// `elided` says the walk stopped at its frame limit. Returns how many
/// functions were printed.
pub fn print_frames(w: &mut dyn Write, frames: &[Frame], elided: bool, level: u32) -> usize {
    let mut printed = 0;
    for f in frames {
        let funcs = resolve(f.lookup_pc());
        let last = funcs.len() - 1;
        for (i, func) in funcs.iter().enumerate() {
            if level < 2 && is_runtime(&func.name) {
                continue;
            }
            printed += 1;
            if i < last {
                let _ = writeln!(w, "{}(...)", func.name);
                let _ = writeln!(w, "\t{}:{}", func.file, func.line);
                continue;
            }
            let _ = writeln!(w, "{}()", func.name);
            let _ = write!(w, "\t{}:{}", func.file, func.line);
            if f.func != 0 {
                let _ = write!(w, " +{:#x}", f.pc - f.func);
            }
            if level >= 2 {
                let _ = write!(w, " fp={:#x} sp={:#x} pc={:#x}", f.cfa, f.sp, f.pc);
            }
            let _ = writeln!(w);
        }
    }
    if elided {
        let _ = writeln!(w, "...additional frames elided...");
    }
    printed
}

/// Writes Go's `created by F in goroutine N` line and the `go` statement's
/// position, for a goroutine started at `gopc` by goroutine `parent`.
/// Nothing when `gopc` is 0 (the main goroutine) or, below level 2, when
/// the creator is runtime code.
pub fn print_created_by(w: &mut dyn Write, gopc: usize, parent: i64, level: u32) {
    if gopc == 0 {
        return;
    }
    let funcs = resolve(gopc);
    let Some(func) = funcs.iter().find(|f| !is_runtime(&f.name)).or_else(|| {
        if level >= 2 {
            funcs.last()
        } else {
            None
        }
    }) else {
        return;
    };
    let _ = writeln!(w, "created by {} in goroutine {}", func.name, parent);
    let _ = write!(w, "\t{}:{}", func.file, func.line);
    if let Some(start) = function_start(gopc) {
        let _ = write!(w, " +{:#x}", gopc - start);
    }
    let _ = writeln!(w);
}
