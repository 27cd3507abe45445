//! `cpuinit` and `alginit`: the CPU's features and the hash seed.
//!
//! `rt0_go` records the vendor check and CPUID(1).EAX; `cpuinit` reads the
//! feature bits Go's `internal/cpu` reads on amd64 and applies
//! `GODEBUG=cpu.<feature>=off` / `cpu.all=off`, which (as in Go) it finds by
//! scanning the raw environment itself, because `cpuinit` runs before
//! `goenvs`. `alginit` then picks the hash: AES-based when the CPU has AES,
//! SSSE3 and SSE4.1 (Go's condition), else the fallback; the keys come from
//! the kernel's AT_RANDOM bytes.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Set by `rt0_go` when CPUID's vendor is "GenuineIntel" (`runtime.isIntel`).
pub static IS_INTEL: AtomicBool = AtomicBool::new(false);
/// CPUID(1).EAX, stored by `rt0_go` (`runtime.processorVersionInfo`).
pub static PROCESSOR_VERSION_INFO: core::sync::atomic::AtomicU32 =
    core::sync::atomic::AtomicU32::new(0);

// CPUID(0).EAX (the highest basic leaf) and CPUID(1).ECX/EDX as `rt0_go`
// read them, valid once it set LEAVES_SAVED: `cpuinit` uses them instead of
// asking again. In a virtual machine each CPUID traps to the hypervisor
// (about 5 µs each, measured here), and boot asks for seven.
pub(crate) static MAX_LEAF: AtomicU32 = AtomicU32::new(0);
pub(crate) static LEAF1_ECX: AtomicU32 = AtomicU32::new(0);
pub(crate) static LEAF1_EDX: AtomicU32 = AtomicU32::new(0);
pub(crate) static LEAVES_SAVED: AtomicBool = AtomicBool::new(false);

/// CPUID(0).EAX and CPUID(1).ECX/EDX: `rt0_go`'s copies when it ran, else
/// read now (unit tests, which start at std's `main`).
fn basic_leaves() -> (u32, u32, u32) {
    if LEAVES_SAVED.load(Ordering::Relaxed) {
        return (
            MAX_LEAF.load(Ordering::Relaxed),
            LEAF1_ECX.load(Ordering::Relaxed),
            LEAF1_EDX.load(Ordering::Relaxed),
        );
    }
    let (max, ..) = crate::arch::cpuid(0, 0);
    if max < 1 {
        return (max, 0, 0);
    }
    let (_, _, ecx, edx) = crate::arch::cpuid(1, 0);
    (max, ecx, edx)
}

/// The amd64 features Go's runtime cares about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct X86Features {
    /// AES-NI.
    pub aes: bool,
    /// Carry-less multiply.
    pub pclmulqdq: bool,
    /// SSE3.
    pub sse3: bool,
    /// SSSE3.
    pub ssse3: bool,
    /// SSE4.1.
    pub sse41: bool,
    /// SSE4.2.
    pub sse42: bool,
    /// POPCNT.
    pub popcnt: bool,
    /// FMA.
    pub fma: bool,
    /// AVX (CPU and OS support).
    pub avx: bool,
    /// AVX2 (CPU and OS support).
    pub avx2: bool,
    /// BMI1.
    pub bmi1: bool,
    /// BMI2.
    pub bmi2: bool,
    /// ERMS (fast `rep movsb`).
    pub erms: bool,
    /// ADX.
    pub adx: bool,
    /// RDTSCP.
    pub rdtscp: bool,
}

impl X86Features {
    /// `(name, enabled)` for every feature, Go's `cpu.<name>` spellings.
    pub fn list(&self) -> [(&'static str, bool); 15] {
        [
            ("adx", self.adx),
            ("aes", self.aes),
            ("avx", self.avx),
            ("avx2", self.avx2),
            ("bmi1", self.bmi1),
            ("bmi2", self.bmi2),
            ("erms", self.erms),
            ("fma", self.fma),
            ("pclmulqdq", self.pclmulqdq),
            ("popcnt", self.popcnt),
            ("rdtscp", self.rdtscp),
            ("sse3", self.sse3),
            ("sse41", self.sse41),
            ("sse42", self.sse42),
            ("ssse3", self.ssse3),
        ]
    }

    fn set(&mut self, name: &[u8], on: bool) {
        let f = match name {
            b"adx" => &mut self.adx,
            b"aes" => &mut self.aes,
            b"avx" => &mut self.avx,
            b"avx2" => &mut self.avx2,
            b"bmi1" => &mut self.bmi1,
            b"bmi2" => &mut self.bmi2,
            b"erms" => &mut self.erms,
            b"fma" => &mut self.fma,
            b"pclmulqdq" => &mut self.pclmulqdq,
            b"popcnt" => &mut self.popcnt,
            b"rdtscp" => &mut self.rdtscp,
            b"sse3" => &mut self.sse3,
            b"sse41" => &mut self.sse41,
            b"sse42" => &mut self.sse42,
            b"ssse3" => &mut self.ssse3,
            _ => return,
        };
        // Options can only turn a feature off: "on" never invents hardware.
        *f = *f && on;
    }
}

/// Reads the CPU's features (Go's `internal/cpu.doinit` for amd64).
pub fn detect() -> X86Features {
    let cpuid = crate::arch::cpuid;
    let (max, ecx1, edx1) = basic_leaves();
    let mut f = X86Features::default();
    if max < 1 {
        return f;
    }
    f.sse3 = ecx1 & (1 << 0) != 0;
    f.pclmulqdq = ecx1 & (1 << 1) != 0;
    f.ssse3 = ecx1 & (1 << 9) != 0;
    f.fma = ecx1 & (1 << 12) != 0;
    f.sse41 = ecx1 & (1 << 19) != 0;
    f.sse42 = ecx1 & (1 << 20) != 0;
    f.popcnt = ecx1 & (1 << 23) != 0;
    f.aes = ecx1 & (1 << 25) != 0;
    let osxsave = ecx1 & (1 << 27) != 0;
    let _ = edx1;
    // AVX needs the OS to save the YMM state (XCR0 bits 1 and 2).
    // SAFETY: xgetbv runs only when CPUID.1 just reported OSXSAVE.
    let os_avx = osxsave && unsafe { crate::arch::xgetbv0() } & 0b110 == 0b110;
    f.avx = ecx1 & (1 << 28) != 0 && os_avx;
    if max >= 7 {
        let (_, ebx7, _, _) = cpuid(7, 0);
        f.bmi1 = ebx7 & (1 << 3) != 0;
        f.avx2 = ebx7 & (1 << 5) != 0 && os_avx;
        f.bmi2 = ebx7 & (1 << 8) != 0;
        f.erms = ebx7 & (1 << 9) != 0;
        f.adx = ebx7 & (1 << 19) != 0;
    }
    let (maxext, ..) = cpuid(0x8000_0000, 0);
    if maxext >= 0x8000_0001 {
        let (_, _, _, edx) = cpuid(0x8000_0001, 0);
        f.rdtscp = edx & (1 << 27) != 0;
    }
    f
}

/// Applies Go's `cpu.<name>=off` and `cpu.all=off` options from a GODEBUG
/// value. Other fields and malformed options are ignored, as in Go.
pub fn apply_godebug(f: &mut X86Features, godebug: &[u8]) {
    for field in godebug.split(|&c| c == b',') {
        let Some(rest) = field.strip_prefix(b"cpu.") else {
            continue;
        };
        let Some(eq) = rest.iter().position(|&c| c == b'=') else {
            continue;
        };
        let (name, val) = (&rest[..eq], &rest[eq + 1..]);
        let on = match val {
            b"on" => true,
            b"off" => false,
            _ => continue,
        };
        if name == b"all" {
            if !on {
                *f = X86Features::default();
            }
        } else {
            f.set(name, on);
        }
    }
}

static FEATURES: AtomicU64 = AtomicU64::new(0);

fn pack(f: &X86Features) -> u64 {
    f.list()
        .iter()
        .enumerate()
        .fold(1 << 63, |acc, (i, (_, on))| acc | ((*on as u64) << i))
}

/// The features `cpuinit` settled on (after GODEBUG options).
pub fn features() -> X86Features {
    let bits = FEATURES.load(Ordering::Relaxed);
    let mut f = X86Features::default();
    let names: Vec<&'static str> = f.list().iter().map(|(n, _)| *n).collect();
    for (i, n) in names.iter().enumerate() {
        if bits & (1 << i) != 0 {
            match *n {
                "adx" => f.adx = true,
                "aes" => f.aes = true,
                "avx" => f.avx = true,
                "avx2" => f.avx2 = true,
                "bmi1" => f.bmi1 = true,
                "bmi2" => f.bmi2 = true,
                "erms" => f.erms = true,
                "fma" => f.fma = true,
                "pclmulqdq" => f.pclmulqdq = true,
                "popcnt" => f.popcnt = true,
                "rdtscp" => f.rdtscp = true,
                "sse3" => f.sse3 = true,
                "sse41" => f.sse41 = true,
                "sse42" => f.sse42 = true,
                "ssse3" => f.ssse3 = true,
                _ => {}
            }
        }
    }
    f
}

/// `cpuinit`: detect, apply `GODEBUG` cpu options found in the raw
/// environment, publish.
pub fn cpuinit(godebug: Option<&[u8]>) -> X86Features {
    let mut f = detect();
    if let Some(g) = godebug {
        apply_godebug(&mut f, g);
    }
    FEATURES.store(pack(&f), Ordering::Relaxed);
    f
}

/// Which hash `alginit` chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// AES-NI rounds keyed by the random schedule (Go's `aeshash`).
    Aes,
    /// The portable fallback with four random odd keys (Go's `memhash`).
    Fallback,
}

static HASH_AES: AtomicBool = AtomicBool::new(false);
static HASHKEY: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// `alginit`: choose the hash and seed its keys from `random` (AT_RANDOM's
/// 16 bytes, stretched; else /dev/urandom). Fallback keys are odd, as Go's.
pub fn alginit(f: &X86Features, random: &[u8]) -> HashKind {
    let aes = f.aes && f.ssse3 && f.sse41;
    HASH_AES.store(aes, Ordering::Relaxed);
    let mut seed = [0u8; 16];
    let n = random.len().min(16);
    seed[..n].copy_from_slice(&random[..n]);
    let a = u64::from_le_bytes(seed[..8].try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(seed[8..].try_into().expect("8 bytes"));
    for (i, k) in HASHKEY.iter().enumerate() {
        let v = splitmix(a ^ splitmix(b.wrapping_add(i as u64)));
        k.store(if aes { v } else { v | 1 }, Ordering::Relaxed);
    }
    if aes {
        HashKind::Aes
    } else {
        HashKind::Fallback
    }
}

/// The hash keys `alginit` chose.
pub fn hashkey() -> [u64; 4] {
    [0, 1, 2, 3].map(|i| HASHKEY[i].load(Ordering::Relaxed))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded hash of `data` with the keys `alginit` chose (for runtime maps).
pub fn memhash(data: &[u8], seed: u64) -> u64 {
    let k = hashkey();
    let mut h = seed ^ k[0] ^ (data.len() as u64).wrapping_mul(k[1]);
    for chunk in data.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(k[2] | 1);
        h = h.rotate_left(31) ^ k[3];
    }
    splitmix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rt0_gos_saved_leaves_give_the_same_features() {
        // What a fresh CPUID says, then the same through the words rt0_go
        // would have saved (the test binary starts at std's main, so they
        // start unset).
        let fresh = detect();
        let (max, ..) = crate::arch::cpuid(0, 0);
        let (_, _, ecx, edx) = crate::arch::cpuid(1, 0);
        MAX_LEAF.store(max, Ordering::Relaxed);
        LEAF1_ECX.store(ecx, Ordering::Relaxed);
        LEAF1_EDX.store(edx, Ordering::Relaxed);
        LEAVES_SAVED.store(true, Ordering::Relaxed);
        assert_eq!(basic_leaves(), (max, ecx, edx));
        assert_eq!(detect(), fresh);
    }

    #[test]
    fn godebug_turns_features_off_only() {
        let mut f = X86Features {
            aes: true,
            avx2: true,
            sse41: true,
            ..Default::default()
        };
        apply_godebug(
            &mut f,
            b"cpu.aes=off,cpu.fma=on,junk,cpu.avx2=maybe,cpu.=off",
        );
        assert!(!f.aes && f.avx2 && f.sse41 && !f.fma);
        apply_godebug(&mut f, b"cpu.all=off");
        assert_eq!(f, X86Features::default());
    }

    #[test]
    fn fallback_keys_are_odd_and_aes_needs_all_three() {
        let f = X86Features {
            aes: true,
            ssse3: true,
            sse41: false,
            ..Default::default()
        };
        assert_eq!(alginit(&f, &[7; 16]), HashKind::Fallback);
        assert!(hashkey().iter().all(|k| k & 1 == 1));
        let f = X86Features {
            aes: true,
            ssse3: true,
            sse41: true,
            ..Default::default()
        };
        assert_eq!(alginit(&f, &[7; 16]), HashKind::Aes);
    }

    #[test]
    fn memhash_depends_on_data_and_seed() {
        alginit(&X86Features::default(), &[1; 16]);
        assert_ne!(memhash(b"abc", 0), memhash(b"abd", 0));
        assert_ne!(memhash(b"abc", 0), memhash(b"abc", 1));
        assert_eq!(memhash(b"abc", 5), memhash(b"abc", 5));
    }

    #[test]
    fn detected_features_round_trip_through_publication() {
        let f = cpuinit(None);
        assert_eq!(features(), f);
    }
}
