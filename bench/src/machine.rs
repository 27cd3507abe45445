//! What the report says about the host and about the peers' versions.

use std::path::Path;
use std::process::Command;

/// Host facts for the report header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// `uname -sr`.
    pub kernel: String,
    /// `MemTotal` from `/proc/meminfo`.
    pub memory: String,
    /// glibc version (`gnu_get_libc_version`).
    pub glibc: String,
}

impl Machine {
    /// Reads the host facts; unreadable ones say `unknown`.
    pub fn probe() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| cpu_model(&s))
            .unwrap_or_else(|| "unknown".into());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| mem_total(&s))
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            kernel: kernel(),
            memory,
            glibc: glibc(),
        }
    }
}

/// Pins the calling thread to `cpu`; false when the kernel refuses.
fn pin_to(cpu: usize) -> bool {
    if cpu >= libc::CPU_SETSIZE as usize {
        return false;
    }
    // SAFETY: `set` is a zeroed cpu_set_t, written only through the libc
    // macros, and passed with its own size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Round trips of one cache line between CPUs `a` and `b`: two threads of
/// their own, pinned one to each, take turns advancing a counter `rounds`
/// times; ns per round trip, or `None` when either cannot be pinned.
///
/// On a VM this says where the hypervisor placed the two vCPUs at that
/// moment. Measured on the 2-core development VM: about 50–150 ns most of
/// the time, about 470–490 ns in spells (the vCPUs on distant cores), and
/// in those spells every impl whose goroutines talk across cores is
/// slower (rt's `fanout` at GOMAXPROCS=2: ~38 ns per message near, 50–78
/// far). The harness measures it around each variant so that a report can
/// tell the two apart. The caller's own affinity is left alone (the
/// programs it spawns inherit it).
pub fn core_round_trip_ns(a: usize, b: usize, rounds: u64) -> Option<f64> {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Arc::new(Line(AtomicU64::new(0)));
    let pinned = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(Barrier::new(2));
    // Each side pins itself, then both learn after the barrier whether the
    // other could: neither spins for a partner that is not there.
    let side = |cpu: usize| {
        let (line, pinned, ready) = (line.clone(), pinned.clone(), ready.clone());
        move |first: bool| {
            if pin_to(cpu) {
                pinned.fetch_add(1, Ordering::AcqRel);
            }
            ready.wait();
            if pinned.load(Ordering::Acquire) != 2 {
                return None;
            }
            let wait_for = |v: u64| {
                while line.0.load(Ordering::Acquire) != v {
                    std::hint::spin_loop();
                }
            };
            let t0 = std::time::Instant::now();
            for i in 0..rounds {
                if first {
                    line.0.store(2 * i + 1, Ordering::Release);
                    wait_for(2 * i + 2);
                } else {
                    wait_for(2 * i + 1);
                    line.0.store(2 * i + 2, Ordering::Release);
                }
            }
            Some(t0.elapsed().as_nanos() as f64 / rounds as f64)
        }
    };
    let (fa, fb) = (side(a), side(b));
    let other = std::thread::spawn(move || fb(false));
    let ns = std::thread::spawn(move || fa(true)).join().ok()?;
    other.join().ok()?;
    ns
}

/// The first `model name` of a `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// `MemTotal` of a `/proc/meminfo` text, as GiB with one decimal.
pub fn mem_total(meminfo: &str) -> Option<String> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
}

fn cstr_field(f: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = f
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn kernel() -> String {
    // SAFETY: utsname is plain data; all-zero is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    format!(
        "{} {} {}",
        cstr_field(&u.sysname),
        cstr_field(&u.release),
        cstr_field(&u.machine)
    )
}

fn glibc() -> String {
    // SAFETY: gnu_get_libc_version returns a pointer to a static NUL-terminated string.
    let p = unsafe { libc::gnu_get_libc_version() };
    if p.is_null() {
        return "unknown".into();
    }
    // SAFETY: non-null, static and NUL-terminated (glibc's contract).
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// The crates whose versions the report lists (peers and the chart crate).
pub const PEER_CRATES: [&str; 8] = [
    "may",
    "tokio",
    "corosensei",
    "mimalloc",
    "libmimalloc-sys",
    "tikv-jemallocator",
    "tikv-jemalloc-sys",
    "plotters",
];

/// `(name, version)` of each crate in `names` found in a `Cargo.lock` text, in `names` order.
/// A crate locked at several versions lists them all, joined by `, `.
pub fn lock_versions(lock: &str, names: &[&str]) -> Vec<(String, String)> {
    let mut found: Vec<(String, Vec<String>)> =
        names.iter().map(|n| (n.to_string(), Vec::new())).collect();
    let mut name: Option<String> = None;
    for line in lock.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            name = None;
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = &name {
                if let Some(e) = found.iter_mut().find(|(k, _)| k == n) {
                    e.1.push(v.trim_matches('"').to_string());
                }
            }
        }
    }
    found
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| (n, v.join(", ")))
        .collect()
}

/// Versions of the peer crates from the workspace `Cargo.lock`.
pub fn peer_versions(lockfile: &Path) -> Vec<(String, String)> {
    match std::fs::read_to_string(lockfile) {
        Ok(s) => lock_versions(&s, &PEER_CRATES),
        Err(_) => Vec::new(),
    }
}

/// The first line of `prog args...`'s stdout, if it runs and succeeds.
pub fn tool_version(prog: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(prog).args(args).output().ok()?;
    if !o.status.success() {
        return None;
    }
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_round_trip_needs_two_cpus_it_can_pin() {
        // A CPU beyond the set, and one the kernel does not have.
        assert_eq!(core_round_trip_ns(0, usize::MAX / 2, 10), None);
        assert_eq!(core_round_trip_ns(1000, 0, 10), None);
        if std::thread::available_parallelism().map_or(0, |n| n.get()) >= 2 {
            let ns = core_round_trip_ns(0, 1, 10_000).expect("CPUs 0 and 1");
            assert!(ns > 0.0 && ns.is_finite(), "{ns}");
        }
    }

    #[test]
    fn parses_cpuinfo_and_meminfo() {
        let ci = "processor\t: 0\nvendor_id\t: X\nmodel name\t: Some CPU 3000\nflags\t: a\n";
        assert_eq!(cpu_model(ci).as_deref(), Some("Some CPU 3000"));
        assert_eq!(cpu_model("processor: 0\n"), None);
        assert_eq!(
            mem_total("MemTotal:       25165824 kB\nMemFree: 1 kB\n").as_deref(),
            Some("24.0 GiB")
        );
        assert_eq!(mem_total("MemTotal: lots\n"), None);
    }

    #[test]
    fn lock_versions_finds_packages() {
        let lock = r#"
[[package]]
name = "tokio"
version = "1.2.3"
dependencies = [
 "may",
]

[[package]]
name = "may"
version = "0.3.1"

[[package]]
name = "tokio"
version = "0.2.0"
"#;
        assert_eq!(
            lock_versions(lock, &["may", "tokio", "absent"]),
            vec![
                ("may".to_string(), "0.3.1".to_string()),
                ("tokio".to_string(), "1.2.3, 0.2.0".to_string())
            ]
        );
    }

    #[test]
    fn probe_reads_this_host() {
        let m = Machine::probe();
        assert!(m.cores >= 1);
        assert!(m.kernel.starts_with("Linux"), "{}", m.kernel);
        assert!(m.glibc.starts_with('2'), "{}", m.glibc);
    }

    #[test]
    fn the_workspace_lock_lists_the_peers() {
        let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
        let v = peer_versions(&lock);
        for name in [
            "may",
            "tokio",
            "corosensei",
            "mimalloc",
            "tikv-jemallocator",
        ] {
            assert!(v.iter().any(|(n, _)| n == name), "{name} not in Cargo.lock");
        }
    }
}
