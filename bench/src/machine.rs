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
