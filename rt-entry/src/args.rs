//! `args`: argc/argv/envp and the auxiliary vector (Go's `sysargs`,
//! `sysauxv`).
//!
//! The kernel places envp right after argv's NULL and auxv right after
//! envp's NULL. `args` records all three and reads the entries the runtime
//! uses: AT_PAGESZ (page size), AT_RANDOM (16 random bytes: PRNG and hash
//! seeds), AT_SYSINFO_EHDR (the vDSO, which libc's `clock_gettime` already
//! uses), AT_HWCAP/AT_HWCAP2 (recorded; on amd64 CPU features come from
//! CPUID, as in Go). With no auxv it falls back to `/proc/self/auxv`, and
//! without that to probing the page size with `mincore`.

use core::sync::atomic::{AtomicUsize, Ordering};

/// AT_NULL: end of the vector.
pub const AT_NULL: usize = 0;
/// AT_PAGESZ: system page size.
pub const AT_PAGESZ: usize = 6;
/// AT_HWCAP: machine-dependent capability bits.
pub const AT_HWCAP: usize = 16;
/// AT_RANDOM: address of 16 random bytes.
pub const AT_RANDOM: usize = 25;
/// AT_HWCAP2: more capability bits.
pub const AT_HWCAP2: usize = 26;
/// AT_SYSINFO_EHDR: address of the vDSO's ELF header.
pub const AT_SYSINFO_EHDR: usize = 33;

/// What `args` learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuxInfo {
    /// `physPageSize`.
    pub page_size: usize,
    /// The 16 AT_RANDOM bytes, if the kernel gave them.
    pub random: Option<[u8; 16]>,
    /// vDSO base, or 0.
    pub vdso: usize,
    /// AT_HWCAP.
    pub hwcap: usize,
    /// AT_HWCAP2.
    pub hwcap2: usize,
    /// Where the vector came from.
    pub source: AuxSource,
}

/// Where the auxiliary vector was read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuxSource {
    /// After envp on the initial stack.
    #[default]
    Stack,
    /// `/proc/self/auxv` (the stack had none).
    Proc,
    /// Neither: the page size was probed with `mincore`.
    Probe,
}

/// Parses (tag, value) pairs until AT_NULL. `read_random` reads the 16
/// bytes AT_RANDOM points at. Returns the number of pairs seen.
pub fn parse_auxv(
    pairs: &[usize],
    info: &mut AuxInfo,
    read_random: impl Fn(usize) -> Option<[u8; 16]>,
) -> usize {
    let mut n = 0;
    for kv in pairs.chunks_exact(2) {
        let (tag, val) = (kv[0], kv[1]);
        if tag == AT_NULL {
            break;
        }
        n += 1;
        match tag {
            AT_PAGESZ => info.page_size = val,
            AT_RANDOM => info.random = read_random(val),
            AT_SYSINFO_EHDR => info.vdso = val,
            AT_HWCAP => info.hwcap = val,
            AT_HWCAP2 => info.hwcap2 = val,
            _ => {}
        }
    }
    n
}

/// Parses the bytes of `/proc/self/auxv` (native-endian words).
pub fn parse_proc_auxv(bytes: &[u8], info: &mut AuxInfo) -> usize {
    let words: Vec<usize> = bytes
        .chunks_exact(8)
        .map(|c| usize::from_ne_bytes(c.try_into().expect("8 bytes")))
        .collect();
    // AT_RANDOM's address is in our own address space: still readable.
    parse_auxv(&words, info, |addr| {
        if addr == 0 {
            return None;
        }
        // SAFETY: the kernel's AT_RANDOM points at 16 bytes on the initial
        // stack, which stays mapped for the life of the process.
        Some(unsafe { core::ptr::read_unaligned(addr as *const [u8; 16]) })
    })
}

/// Finds the page size with `mincore` on a fresh mapping, as Go does when
/// neither auxv source exists: the smallest size `mincore` accepts as an
/// aligned address.
pub fn probe_page_size() -> usize {
    const SIZE: usize = 256 << 10;
    // SAFETY: an anonymous private mapping; unmapped below.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            SIZE,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return 4096;
    }
    let mut vec = [0u8; 1];
    let mut found = 4096;
    let mut n = 4096;
    while n < SIZE {
        // SAFETY: p..p+SIZE is mapped; we ask about one byte at p+n.
        let r = unsafe { libc::mincore((p as usize + n) as *mut _, 1, vec.as_mut_ptr()) };
        if r == 0 {
            found = n;
            break;
        }
        n *= 2;
    }
    // SAFETY: our own mapping.
    unsafe { libc::munmap(p, SIZE) };
    found
}

static ARGC: AtomicUsize = AtomicUsize::new(0);
static ARGV: AtomicUsize = AtomicUsize::new(0);
static ENVP: AtomicUsize = AtomicUsize::new(0);

/// Records argc/argv, finds envp and auxv (Go's `args` → `sysargs`).
///
/// # Safety
/// `argv` must be the process's initial argument vector: `argc` pointers,
/// NULL, the environment, NULL, the auxiliary vector.
pub unsafe fn args(argc: usize, argv: *const *const u8) -> AuxInfo {
    ARGC.store(argc, Ordering::Relaxed);
    ARGV.store(argv as usize, Ordering::Relaxed);
    // SAFETY: envp starts right after argv's NULL (caller contract).
    let envp = unsafe { argv.add(argc + 1) };
    ENVP.store(envp as usize, Ordering::Relaxed);
    let mut i = 0;
    // SAFETY: envp is NULL-terminated (caller contract).
    while unsafe { !(*envp.add(i)).is_null() } {
        i += 1;
    }
    // SAFETY: auxv follows envp's NULL.
    let auxv = unsafe { envp.add(i + 1) } as *const usize;
    let mut len = 0;
    // SAFETY: the vector ends with an AT_NULL pair.
    while unsafe { *auxv.add(len) } != AT_NULL {
        len += 2;
    }
    // SAFETY: len words (plus the terminator) were just walked.
    let pairs = unsafe { core::slice::from_raw_parts(auxv, len + 2) };
    let mut info = AuxInfo::default();
    let n = parse_auxv(pairs, &mut info, |addr| {
        if addr == 0 {
            None
        } else {
            // SAFETY: AT_RANDOM points at 16 bytes on the initial stack.
            Some(unsafe { core::ptr::read_unaligned(addr as *const [u8; 16]) })
        }
    });
    if n == 0 {
        match std::fs::read("/proc/self/auxv") {
            Ok(bytes) if parse_proc_auxv(&bytes[..bytes.len().min(128 * 8)], &mut info) > 0 => {
                info.source = AuxSource::Proc;
            }
            _ => {
                info.page_size = probe_page_size();
                info.source = AuxSource::Probe;
            }
        }
    }
    if info.page_size == 0 {
        info.page_size = probe_page_size();
    }
    info
}

/// argc as recorded by `args`.
pub fn argc() -> usize {
    ARGC.load(Ordering::Relaxed)
}

/// argv as recorded by `args`.
pub fn argv() -> *const *const u8 {
    ARGV.load(Ordering::Relaxed) as *const *const u8
}

/// envp as recorded by `args`.
pub fn envp() -> *const *const u8 {
    ENVP.load(Ordering::Relaxed) as *const *const u8
}

/// The value of the first `NAME=` entry in the raw environment, read before
/// `goenvs` (Go's `cpuinit` does the same for GODEBUG).
pub fn raw_getenv(name: &[u8]) -> Option<&'static [u8]> {
    // SAFETY: ENVP is NULL until `args` records the process's initial
    // environment, which is NULL-terminated and lives for the process.
    unsafe { rt_sys::phase::raw_getenv(envp(), name) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_entries_the_runtime_uses() {
        let rnd = [9u8; 16];
        let pairs = [
            AT_PAGESZ,
            4096,
            99,
            1,
            AT_RANDOM,
            rnd.as_ptr() as usize,
            AT_SYSINFO_EHDR,
            0x7fff_0000,
            AT_HWCAP,
            0xbfeb,
            AT_NULL,
            0,
        ];
        let mut info = AuxInfo::default();
        let n = parse_auxv(&pairs, &mut info, |a| Some(unsafe_read16(a)));
        assert_eq!(n, 5);
        assert_eq!(info.page_size, 4096);
        assert_eq!(info.random, Some(rnd));
        assert_eq!(info.vdso, 0x7fff_0000);
        assert_eq!(info.hwcap, 0xbfeb);
    }

    fn unsafe_read16(a: usize) -> [u8; 16] {
        // SAFETY: tests pass the address of a live 16-byte array.
        unsafe { core::ptr::read_unaligned(a as *const [u8; 16]) }
    }

    #[test]
    fn proc_auxv_of_this_process_has_a_page_size() {
        let bytes = std::fs::read("/proc/self/auxv").unwrap();
        let mut info = AuxInfo::default();
        assert!(parse_proc_auxv(&bytes, &mut info) > 0);
        assert!(info.page_size.is_power_of_two() && (4096..=524288).contains(&info.page_size));
        assert!(info.random.is_some());
    }

    #[test]
    fn probe_finds_the_page_size() {
        // SAFETY: sysconf has no preconditions.
        let want = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        assert_eq!(probe_page_size(), want);
    }

    proptest! {
        /// Any word soup parses without panicking and stops at AT_NULL.
        #[test]
        fn arbitrary_vectors_never_panic(words in prop::collection::vec(0usize..40, 0..64)) {
            let mut info = AuxInfo::default();
            let n = parse_auxv(&words, &mut info, |_| None);
            prop_assert!(n * 2 <= words.len());
            if let Some(end) = words.chunks_exact(2).position(|kv| kv[0] == AT_NULL) {
                prop_assert_eq!(n, end);
            }
        }
    }
}
