//! The seam between `schedinit` and the crates that own its phases.
//!
//! Each phase crate implements [`Phase`] for a unit struct named after Go's
//! function (`rt_stack::phase::Stackinit`, `rt_heap::phase::Mallocinit`, …).
//! `rt-entry` owns only the order: its table lists one row per phase, each
//! row naming the implementation it runs, and `schedinit` walks the rows.
//! Because a row holds a `&'static dyn Phase`, a program (or a test) can boot
//! with any one phase replaced by its own implementation while every other
//! phase runs for real.
//!
//! What the phases learn from the steps before `schedinit` (`args` and
//! `osinit` in `rt0_go`) reaches them through [`Ctx`]; what they learn from
//! each other they read from the owning crate's own accessors once that
//! phase has run (the table's dependency column says which must come first).

use core::fmt;

/// One step of `schedinit`.
pub trait Phase: Sync {
    /// Does the phase's work. A phase that cannot do it ends the process with
    /// a `fatal error:` ([`crate::throw`] / [`crate::fatal!`]), as Go's do.
    ///
    /// # Safety
    /// Called by `schedinit` only: on the initial thread, bound to m0 and g0,
    /// before any goroutine or other M exists, once, after every phase the
    /// table lists as its dependency. (Phases set up process-wide state that
    /// the rest of the runtime reads without locks.)
    unsafe fn run(&self, cx: &mut Ctx);
}

/// What `args` and `osinit` found, handed to every phase, and the phase's
/// one-line description for the boot trace.
pub struct Ctx {
    argc: usize,
    argv: *const *const u8,
    envp: *const *const u8,
    random: Option<[u8; 16]>,
    ncpu: i32,
    detailed: bool,
    detail: String,
}

impl Ctx {
    /// A context over the process's initial vectors.
    ///
    /// # Safety
    /// `argv` must hold `argc` pointers to NUL-terminated strings followed by
    /// NULL, and `envp` (or NULL) a NULL-terminated list of NUL-terminated
    /// `NAME=value` strings; all of them must live and stay unchanged for the
    /// rest of the process (the kernel's initial stack does).
    pub unsafe fn new(
        argc: usize,
        argv: *const *const u8,
        envp: *const *const u8,
        random: Option<[u8; 16]>,
        ncpu: i32,
    ) -> Ctx {
        Ctx {
            argc,
            argv,
            envp,
            random,
            ncpu,
            detailed: false,
            detail: String::new(),
        }
    }

    /// The process's argument count.
    pub fn argc(&self) -> usize {
        self.argc
    }

    /// The process's initial argument vector (see [`Ctx::new`]'s contract).
    pub fn argv(&self) -> *const *const u8 {
        self.argv
    }

    /// The process's initial environment vector (see [`Ctx::new`]'s
    /// contract); NULL when there is none.
    pub fn envp(&self) -> *const *const u8 {
        self.envp
    }

    /// The 16 bytes the kernel passed as `AT_RANDOM`, if it did.
    pub fn random(&self) -> Option<[u8; 16]> {
        self.random
    }

    /// The CPUs this process may run on, as `osinit` counted them.
    pub fn ncpu(&self) -> i32 {
        self.ncpu
    }

    /// The value of the first `NAME=` entry of the initial environment.
    /// Phases that run before `goenvs` read the environment this way, as
    /// Go's `cpuinit` reads `GODEBUG`.
    pub fn raw_getenv(&self, name: &[u8]) -> Option<&'static [u8]> {
        // SAFETY: `new`'s contract: envp is NULL or a NULL-terminated vector of
        // NUL-terminated strings that live for the process.
        unsafe { raw_getenv(self.envp, name) }
    }

    /// Whether the boot trace prints phase details (`GODEBUG=inittrace=2`).
    pub fn detailed(&self) -> bool {
        self.detailed
    }

    /// Sets whether details are kept (the tracer's choice, not a phase's).
    pub fn set_detailed(&mut self, on: bool) {
        self.detailed = on;
    }

    /// Describes what the phase did, for `inittrace=2`. `f` runs only when
    /// details are printed, so untraced boots neither format nor allocate.
    pub fn detail(&mut self, f: impl FnOnce() -> String) {
        if self.detailed {
            self.detail = f();
        }
    }

    /// Takes the last phase's description, leaving it empty.
    pub fn take_detail(&mut self) -> String {
        core::mem::take(&mut self.detail)
    }
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("argc", &self.argc)
            .field("random", &self.random.is_some())
            .field("ncpu", &self.ncpu)
            .field("detailed", &self.detailed)
            .finish()
    }
}

/// The value of the first `NAME=` entry of `envp`.
///
/// # Safety
/// `envp` is NULL or a NULL-terminated vector of NUL-terminated strings that
/// live, unchanged, for the rest of the process.
pub unsafe fn raw_getenv(envp: *const *const u8, name: &[u8]) -> Option<&'static [u8]> {
    if envp.is_null() {
        return None;
    }
    let mut i = 0;
    loop {
        // SAFETY: the vector is NULL-terminated (caller contract) and entry i
        // is at or before the terminator.
        let p = unsafe { *envp.add(i) };
        if p.is_null() {
            return None;
        }
        // SAFETY: each entry is a NUL-terminated string living for the process.
        let s = unsafe { core::ffi::CStr::from_ptr(p.cast()) }.to_bytes();
        if s.len() > name.len() && s.starts_with(name) && s[name.len()] == b'=' {
            return Some(&s[name.len() + 1..]);
        }
        i += 1;
    }
}

/// The implementation of a phase that has no Rust meaning; its table row
/// says why it is skipped.
#[derive(Debug, Clone, Copy)]
pub struct Skipped;

impl Phase for Skipped {
    unsafe fn run(&self, _cx: &mut Ctx) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_getenv_finds_the_first_exact_name() {
        let entries: [&[u8]; 4] = [b"GODEBUGX=1\0", b"GODEBUG=a=1\0", b"GODEBUG=b=2\0", b"=\0"];
        let mut v: Vec<*const u8> = entries.iter().map(|e| e.as_ptr()).collect();
        v.push(core::ptr::null());
        // SAFETY: v is NULL-terminated; the entries are static NUL-terminated strings.
        let cx = unsafe { Ctx::new(0, core::ptr::null(), v.as_ptr(), None, 1) };
        assert_eq!(cx.raw_getenv(b"GODEBUG"), Some(&b"a=1"[..]));
        assert_eq!(cx.raw_getenv(b"GODEBUGX"), Some(&b"1"[..]));
        assert_eq!(cx.raw_getenv(b"GOMAXPROCS"), None);
        // SAFETY: a NULL vector is allowed.
        assert_eq!(unsafe { raw_getenv(core::ptr::null(), b"X") }, None);
    }

    #[test]
    fn details_are_built_only_when_printed() {
        // SAFETY: no vectors are read.
        let mut cx = unsafe { Ctx::new(0, core::ptr::null(), core::ptr::null(), None, 1) };
        let mut built = false;
        cx.detail(|| {
            built = true;
            "x".into()
        });
        assert!(!built);
        assert_eq!(cx.take_detail(), "");
        cx.set_detailed(true);
        cx.detail(|| "y".into());
        assert_eq!(cx.take_detail(), "y");
        assert_eq!(cx.take_detail(), "");
    }
}
