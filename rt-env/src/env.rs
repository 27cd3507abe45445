//! `goargs` and `goenvs`: the process's arguments and environment, kept the
//! way Go's runtime keeps them, and the two ways Go looks a variable up.
//!
//! Data structures:
//!
//! * `ARGS` — a write-once slice of `&'static OsStr` pointing straight into
//!   the kernel-provided argv block (Go's `gostringnocopy`: no copy; the block
//!   lives, unmodified, for the whole process).
//! * `ENV` — a write-once [`Env`]: every envp entry copied (Go's `gostring`),
//!   in order, byte for byte. Entries without `=`, empty entries, duplicates
//!   and non-UTF-8 bytes are all kept, as Go's `runtime.envs` keeps them.
//!
//! Both stores are set once: the first `goargs`/`goenvs` call wins and later
//! calls are ignored, so a reference handed out by [`args`] or [`envs`] stays
//! valid and unchanged for the life of the process.
//!
//! Lookups before [`goenvs`] ran (ordinary Rust programs, where nobody calls
//! it) use `LIBC_ENV`, a snapshot of libc's `environ` taken at the first such
//! lookup and likewise never freed. Once `goenvs` has run, its store is used
//! instead, so an early lookup — say in an `_rt0_amd64` program, where libc's
//! start code never ran and `environ` is empty — cannot hide the real
//! environment from later ones. [`args`] has no fallback: it is empty until
//! [`goargs`] runs.
//!
//! Lookups. Go has two, and they differ only at the edges:
//!
//! * [`Env::get`] / [`getenv`] — `os.LookupEnv` / `syscall.Getenv`: an entry's
//!   key is everything before its first `=`; entries without `=` are
//!   invisible; the **first** entry with the key wins; the empty key is never
//!   found.
//! * [`Env::runtime_get`] / [`gogetenv`] — the runtime's own `gogetenv`, used
//!   for `GOMAXPROCS`, `GODEBUG` and `GOTRACEBACK`: the first entry that
//!   *starts with* `key=` wins. So the empty key finds an entry `=v`, and a
//!   key containing `=` can match (`a=b` finds `c` in `a=b=c`).
//!
//! For every key without `=` and not empty the two agree.
//!
//! [`Env::environ`] mirrors `os.Environ()`: entries in order with the empty
//! ones and every later duplicate of a key dropped.

use std::ffi::{CStr, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::OnceLock;

static ARGS: OnceLock<Box<[&'static OsStr]>> = OnceLock::new();
static ENV: OnceLock<Env> = OnceLock::new();
static LIBC_ENV: OnceLock<Env> = OnceLock::new();

/// Records the process arguments from the raw `argc`/`argv` pair, without
/// copying: each argument is a view of the NUL-terminated string `argv[i]`.
///
/// The first call wins; later calls are ignored (the slice from [`args`] is
/// `'static` and must never change under its readers). A null `argv`
/// records no arguments; a null `argv[i]` for `i < argc` records an empty
/// argument.
///
/// # Safety
///
/// `argv` must be null or point to at least `argc` pointers, each null or
/// pointing to a NUL-terminated string, and all of that memory must stay
/// valid and unmodified for the rest of the process (true of the argv block
/// the kernel places on the initial stack, which is what `_rt0_amd64` and a
/// C `main` receive).
pub unsafe fn goargs(argc: usize, argv: *const *const u8) {
    if ARGS.get().is_some() {
        return;
    }
    let mut v: Vec<&'static OsStr> = Vec::with_capacity(if argv.is_null() { 0 } else { argc });
    if !argv.is_null() {
        for i in 0..argc {
            // SAFETY: the caller guarantees `argv` holds at least `argc` pointers.
            let p = unsafe { *argv.add(i) };
            if p.is_null() {
                v.push(OsStr::new(""));
                continue;
            }
            // `p` is a NUL-terminated string that the caller guarantees
            // lives, unmodified, for the rest of the process.
            // SAFETY: so a `'static` view of it is sound.
            let bytes: &'static [u8] = unsafe { CStr::from_ptr(p.cast()) }.to_bytes();
            v.push(OsStr::from_bytes(bytes));
        }
    }
    // A racing first call may have won meanwhile; then this one is dropped.
    let _ = ARGS.set(v.into_boxed_slice());
}

/// The arguments recorded by [`goargs`], `argv[0]` first; empty before
/// `goargs` ran. This is Go's `os.Args` (`runtime.argslice`).
pub fn args() -> &'static [&'static OsStr] {
    ARGS.get().map(|b| &b[..]).unwrap_or(&[])
}

/// Copies the NUL-terminated environment block `envp` (ended by a null
/// pointer) into the process-wide store, entry by entry, as Go's `goenvs`
/// does. The first call wins; later calls are ignored. A null `envp` records
/// an empty environment.
///
/// # Safety
///
/// `envp` must be null or point to a null-terminated array of pointers to
/// NUL-terminated strings, all readable for the duration of the call.
pub unsafe fn goenvs(envp: *const *const u8) {
    if ENV.get().is_some() {
        return;
    }
    // SAFETY: forwarded from this function's contract.
    let env = unsafe { Env::from_envp(envp) };
    let _ = ENV.set(env);
}

extern "C" {
    /// libc's environment array (POSIX `environ`).
    static environ: *const *const libc::c_char;
}

/// The process-wide environment: what [`goenvs`] stored, or, before it ran,
/// a snapshot of libc's `environ` (taken at the first such call).
pub fn process_env() -> &'static Env {
    if let Some(env) = ENV.get() {
        return env;
    }
    LIBC_ENV.get_or_init(|| {
        // SAFETY: reading the `environ` pointer itself is a plain load of a
        // libc global that is always initialised (possibly to null).
        let envp = unsafe { environ };
        // `environ` is only changed by setenv/putenv, which this crate never
        // calls and which Rust's std serialises with its own environment lock
        // (not taken here: a program that mutates its environment from
        // another thread during this first lookup races exactly as a C
        // program calling getenv would).
        // SAFETY: libc keeps `environ` a NULL-terminated array of C strings.
        unsafe { Env::from_envp(envp.cast()) }
    })
}

/// Every environment entry, in order, as Go's runtime keeps them (see the
/// module docs for what is kept).
pub fn envs() -> &'static [OsString] {
    process_env().entries()
}

/// `os.LookupEnv(key)` over the process environment: see [`Env::get`].
pub fn getenv(key: &[u8]) -> Option<&'static OsStr> {
    process_env().get(key)
}

/// The runtime's `gogetenv(key)` over the process environment: see
/// [`Env::runtime_get`].
pub fn gogetenv(key: &[u8]) -> Option<&'static OsStr> {
    process_env().runtime_get(key)
}

/// An environment as a list of raw entries, with Go's lookup rules. Pure:
/// usable without the process-wide store (tests, other processes' data).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    entries: Vec<OsString>,
}

impl Env {
    /// An environment holding `entries` verbatim, in order.
    pub fn new<I, S>(entries: I) -> Env
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        Env {
            entries: entries
                .into_iter()
                .map(|e| OsString::from_vec(e.as_ref().to_vec()))
                .collect(),
        }
    }

    /// Copies a null-terminated `envp` array.
    ///
    /// # Safety
    ///
    /// `envp` must be null or point to a null-terminated array of pointers to
    /// NUL-terminated strings, all readable for the duration of the call.
    pub unsafe fn from_envp(envp: *const *const u8) -> Env {
        let mut entries = Vec::new();
        if envp.is_null() {
            return Env { entries };
        }
        let mut i = 0;
        loop {
            // SAFETY: the array is null-terminated and `i` has not passed the
            // terminator yet (the loop stops at it).
            let p = unsafe { *envp.add(i) };
            if p.is_null() {
                break;
            }
            // SAFETY: `p` is a NUL-terminated string readable during the call;
            // its bytes are copied before returning.
            let bytes = unsafe { CStr::from_ptr(p.cast()) }.to_bytes();
            entries.push(OsString::from_vec(bytes.to_vec()));
            i += 1;
        }
        Env { entries }
    }

    /// The raw entries, in order.
    pub fn entries(&self) -> &[OsString] {
        &self.entries
    }

    /// `os.LookupEnv` / `syscall.Getenv`: the value after the first `=` of
    /// the first entry whose text before its first `=` equals `key`. Entries
    /// without `=` never match; the empty key is never found.
    pub fn get(&self, key: &[u8]) -> Option<&OsStr> {
        if key.is_empty() {
            return None;
        }
        self.entries.iter().find_map(|e| {
            let e = e.as_bytes();
            let eq = e.iter().position(|&c| c == b'=')?;
            (&e[..eq] == key).then(|| OsStr::from_bytes(&e[eq + 1..]))
        })
    }

    /// The runtime's `gogetenv`: the rest of the first entry that starts with
    /// `key` immediately followed by `=`. Unlike [`Env::get`] this finds
    /// `=v` for the empty key and lets a key containing `=` match.
    pub fn runtime_get(&self, key: &[u8]) -> Option<&OsStr> {
        self.entries.iter().find_map(|e| {
            let e = e.as_bytes();
            (e.len() > key.len() && e[key.len()] == b'=' && &e[..key.len()] == key)
                .then(|| OsStr::from_bytes(&e[key.len() + 1..]))
        })
    }

    /// `os.Environ()`: the entries in order, minus empty entries and minus
    /// every entry whose key (text before its first `=`) already appeared.
    /// Entries without `=` are kept.
    pub fn environ(&self) -> Vec<&OsStr> {
        let mut seen: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let b = e.as_bytes();
            if b.is_empty() {
                continue;
            }
            if let Some(eq) = b.iter().position(|&c| c == b'=') {
                if !seen.insert(&b[..eq]) {
                    continue;
                }
            }
            out.push(e.as_os_str());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(items: &[&[u8]]) -> Env {
        Env::new(items.iter().copied())
    }

    #[test]
    fn first_match_wins() {
        let e = env(&[b"A=1", b"A=2", b"B=x"]);
        assert_eq!(e.get(b"A"), Some(OsStr::new("1")));
        assert_eq!(e.runtime_get(b"A"), Some(OsStr::new("1")));
        assert_eq!(e.get(b"B"), Some(OsStr::new("x")));
        assert_eq!(e.get(b"C"), None);
    }

    #[test]
    fn value_keeps_later_equals_and_may_be_empty() {
        let e = env(&[b"A=b=c", b"E="]);
        assert_eq!(e.get(b"A"), Some(OsStr::new("b=c")));
        assert_eq!(e.get(b"E"), Some(OsStr::new("")));
        assert_eq!(e.runtime_get(b"E"), Some(OsStr::new("")));
    }

    #[test]
    fn entries_without_equals_are_kept_but_invisible() {
        let e = env(&[b"NOEQ", b"", b"A=1"]);
        assert_eq!(e.entries().len(), 3);
        assert_eq!(e.get(b"NOEQ"), None);
        assert_eq!(e.runtime_get(b"NOEQ"), None);
        assert_eq!(e.environ(), vec![OsStr::new("NOEQ"), OsStr::new("A=1")]);
    }

    #[test]
    fn lookups_differ_only_at_the_edges() {
        let e = env(&[b"=v", b"a=b=c"]);
        assert_eq!(e.get(b""), None);
        assert_eq!(e.runtime_get(b""), Some(OsStr::new("v")));
        assert_eq!(e.get(b"a=b"), None);
        assert_eq!(e.runtime_get(b"a=b"), Some(OsStr::new("c")));
    }

    #[test]
    fn environ_drops_later_duplicates_and_empties() {
        let e = env(&[b"A=1", b"", b"B=2", b"A=3", b"=x", b"=y"]);
        let got: Vec<_> = e.environ();
        assert_eq!(
            got,
            vec![OsStr::new("A=1"), OsStr::new("B=2"), OsStr::new("=x")]
        );
    }

    #[test]
    fn non_utf8_is_kept_byte_for_byte() {
        let e = env(&[b"K=\xff\xfe", b"\xc3(=z"]);
        assert_eq!(e.get(b"K").map(OsStr::as_bytes), Some(&b"\xff\xfe"[..]));
        assert_eq!(e.get(b"\xc3(").map(OsStr::as_bytes), Some(&b"z"[..]));
    }

    #[test]
    fn from_envp_copies_until_null() {
        let a = c"A=1";
        let b = c"";
        let c = c"NOEQ";
        let ptrs = [
            a.as_ptr().cast::<u8>(),
            b.as_ptr().cast(),
            c.as_ptr().cast(),
            std::ptr::null(),
        ];
        // SAFETY: `ptrs` is a null-terminated array of NUL-terminated strings
        // that outlive the call.
        let e = unsafe { Env::from_envp(ptrs.as_ptr()) };
        assert_eq!(e, env(&[b"A=1", b"", b"NOEQ"]));
        // SAFETY: a null envp is allowed by the contract.
        assert_eq!(unsafe { Env::from_envp(std::ptr::null()) }, Env::default());
    }

    #[test]
    fn process_store_is_write_once() {
        // This is the only test in the binary that calls goenvs. Before it,
        // lookups see libc's environment (which the test harness leaves
        // alone); after it, exactly the goenvs block; a second goenvs is
        // ignored.
        let snapshot = envs();
        for (k, v) in std::env::vars_os() {
            assert_eq!(getenv(k.as_bytes()), Some(v.as_os_str()), "{k:?}");
        }
        let first = c"RT_ENV_FIRST=1";
        let dup = c"RT_ENV_FIRST=2";
        let ptrs = [
            first.as_ptr().cast::<u8>(),
            dup.as_ptr().cast(),
            std::ptr::null(),
        ];
        // SAFETY: null-terminated array of NUL-terminated strings.
        unsafe { goenvs(ptrs.as_ptr()) };
        assert_eq!(
            envs(),
            &[
                OsString::from("RT_ENV_FIRST=1"),
                OsString::from("RT_ENV_FIRST=2")
            ][..]
        );
        assert_eq!(getenv(b"RT_ENV_FIRST"), Some(OsStr::new("1")));
        assert_eq!(gogetenv(b"RT_ENV_FIRST"), Some(OsStr::new("1")));
        let later = c"RT_ENV_LATER=1";
        let ptrs = [later.as_ptr().cast::<u8>(), std::ptr::null()];
        // SAFETY: as above; the call must be ignored.
        unsafe { goenvs(ptrs.as_ptr()) };
        assert_eq!(getenv(b"RT_ENV_LATER"), None);
        // The earlier snapshot reference is still valid.
        let _ = snapshot.len();
    }

    #[test]
    fn goargs_views_argv_without_copying_and_first_call_wins() {
        // This is the only test in the binary that calls goargs.
        static A0: &CStr = c"prog";
        static A1: &CStr = c"\xff-not-utf8";
        static A2: &CStr = c"";
        let argv: &'static [*const u8; 5] = Box::leak(Box::new([
            A0.as_ptr().cast(),
            A1.as_ptr().cast(),
            std::ptr::null(),
            A2.as_ptr().cast(),
            std::ptr::null(),
        ]));
        assert!(args().is_empty(), "empty before goargs");
        // SAFETY: `argv` holds 4 pointers (null or to 'static C strings) and
        // is leaked, so it lives for the rest of the process.
        unsafe { goargs(4, argv.as_ptr()) };
        let a = args();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0], OsStr::new("prog"));
        assert_eq!(a[1].as_bytes(), b"\xff-not-utf8");
        assert_eq!(a[2], OsStr::new(""), "a null argv[i] is an empty argument");
        assert_eq!(a[3], OsStr::new(""));
        // No copy: the argument bytes are argv's own.
        assert_eq!(a[0].as_bytes().as_ptr(), A0.as_ptr().cast());
        assert_eq!(a[1].as_bytes().as_ptr(), A1.as_ptr().cast());
        // SAFETY: as above; the call must be ignored.
        unsafe { goargs(1, argv.as_ptr()) };
        assert_eq!(args().len(), 4);
    }

    proptest! {
        #[test]
        fn lookups_never_panic(
            entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..8),
            key in proptest::collection::vec(any::<u8>(), 0..6),
        ) {
            let e = Env::new(&entries);
            let _ = e.get(&key);
            let _ = e.runtime_get(&key);
            let _ = e.environ();
        }

        /// For a non-empty key without '=', both lookups return the value of
        /// the first entry `key=...`, computed here independently.
        #[test]
        fn lookups_agree_on_ordinary_keys(
            entries in proptest::collection::vec("[AB=x]{0,5}", 0..8),
            key in "[AB]{1,2}",
        ) {
            let e = Env::new(&entries);
            let prefix = format!("{key}=");
            let want = entries.iter().find(|s| s.starts_with(&prefix)).map(|s| OsStr::new(&s[prefix.len()..]));
            prop_assert_eq!(e.get(key.as_bytes()), want);
            prop_assert_eq!(e.runtime_get(key.as_bytes()), want);
        }
    }
}
