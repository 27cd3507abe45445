//! The cgroup CPU bandwidth limit, found the way Go 1.25's
//! `internal/runtime/cgroup` finds it (golang/go#73193).
//!
//! Hot path (runs once at boot, from `default_procs`'s caller):
//!
//! 1. `/proc/self/mountinfo` → the CPU controller's mount point: the mount
//!    point of a `cgroup` (v1) filesystem whose super options list `cpu`
//!    (the first such mount wins, and beats any v2 mount), else the mount
//!    point of the last `cgroup2` filesystem. Mount points are unescaped
//!    (`\040` → space, three octal-ish digits).
//! 2. `/proc/self/cgroup` → the process's path inside that hierarchy: the
//!    line `N:…cpu…:path` of a v1 hierarchy whose controller list has `cpu`
//!    (first wins, v1), else the last `0::path` line (v2).
//! 3. The limit file is `<mount><path>/cpu.max` (v2: `"<quota> <period>\n"`
//!    or `"max <period>\n"`) or `<mount><path>/cpu.cfs_quota_us` and
//!    `cpu.cfs_period_us` (v1: one integer and a newline each; a quota below
//!    0 means no limit). Each limit file is read with one 64-byte read; a file
//!    that fills it is malformed.
//! 4. limit = quota / period, a fraction of CPUs.
//!
//! What Go does *not* do, and neither does this: it reads only the leaf
//! cgroup that holds the process (no walk up to a parent with a tighter
//! limit: container runtimes hide parents anyway); it ignores the mount's
//! root field (so a v1 hierarchy mounted from a non-root directory without a
//! cgroup namespace is looked up at a path that does not exist, and there is
//! no limit); it notices no later migration to another cgroup.
//!
//! Every failure — a missing file, a malformed line anywhere in
//! `/proc/self/cgroup` or `/proc/self/mountinfo` (Go gives up on the whole
//! file, not just the line), a line too long for Go's 64 KiB parse buffer in
//! `/proc/self/cgroup` (or its last line lacking a newline), a bad number, a
//! path longer than `PATH_MAX` — means "no limit" (`None`), never an error.
//! Where Go's arithmetic would produce a non-finite limit (a zero period) the
//! result is also `None`.
//!
//! All paths are resolved under a `root` directory so tests can build fake
//! `/proc` and `/sys` trees; the real lookup uses `/`.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::atoi::atoi64;

/// Go's `_PATH_MAX`: longest cgroup directory path considered.
const PATH_MAX: usize = 4096;
/// Go's line buffer for `/proc/self/{cgroup,mountinfo}` (4 × 4 × PATH_MAX).
const PARSE_SIZE: usize = 4 * 4 * PATH_MAX;
/// Go reads each limit file with one read into a buffer of this size.
const LIMIT_READ: usize = 64;
/// Upper bound on how much of a `/proc` file is read; real files are far
/// smaller, and this keeps a hostile fixture from exhausting memory.
const MAX_PROC_FILE: u64 = 64 << 20;

/// Which cgroup hierarchy holds the CPU controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// cgroup v1: `cpu.cfs_quota_us` and `cpu.cfs_period_us`.
    V1,
    /// cgroup v2: `cpu.max`.
    V2,
}

/// The CPU cgroup of the process: where its limit files are. Found once;
/// [`CpuCgroup::limit`] re-reads the files each time (the limit can change
/// while the process runs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuCgroup {
    /// The hierarchy's version.
    pub version: CgroupVersion,
    /// The cgroup's directory, under the root it was found from.
    pub dir: PathBuf,
}

impl CpuCgroup {
    /// Finds the process's CPU cgroup from `<root>/proc/self/mountinfo` and
    /// `<root>/proc/self/cgroup`, and checks that its limit files open (as
    /// Go does when it opens them at start-up). `None` when there is no CPU
    /// cgroup or anything is malformed or missing.
    pub fn find_at(root: &Path) -> Option<CpuCgroup> {
        let mountinfo = read_capped(&root.join("proc/self/mountinfo"))?;
        let mount = parse_cpu_mount(&mountinfo)?;
        let cgroup = read_capped(&root.join("proc/self/cgroup"))?;
        let (rel, version) = parse_cpu_relative_path(&cgroup)?;
        if mount.len() + rel.len() > PATH_MAX {
            return None;
        }
        let mut dir = root.as_os_str().as_bytes().to_vec();
        dir.extend_from_slice(&mount);
        dir.extend_from_slice(&rel);
        let dir = PathBuf::from(OsStr::from_bytes(&dir));
        let files: &[&str] = match version {
            CgroupVersion::V1 => &["cpu.cfs_quota_us", "cpu.cfs_period_us"],
            CgroupVersion::V2 => &["cpu.max"],
        };
        for f in files {
            File::open(dir.join(f)).ok()?;
        }
        Some(CpuCgroup { version, dir })
    }

    /// The current limit in CPUs (quota / period), or `None` when there is
    /// no limit or a file is unreadable or malformed.
    pub fn limit(&self) -> Option<f64> {
        let limit = match self.version {
            CgroupVersion::V1 => {
                let quota = parse_v1_number(&read_limit_file(&self.dir.join("cpu.cfs_quota_us"))?)?;
                if quota < 0 {
                    return None;
                }
                let period =
                    parse_v1_number(&read_limit_file(&self.dir.join("cpu.cfs_period_us"))?)?;
                quota as f64 / period as f64
            }
            CgroupVersion::V2 => parse_v2_limit(&read_limit_file(&self.dir.join("cpu.max"))?)?,
        };
        limit.is_finite().then_some(limit)
    }
}

/// The CPU bandwidth limit of the process's cgroup, resolving every path
/// under `root` (a fake filesystem root in tests; `/` for the real one).
pub fn cgroup_cpu_limit_at(root: &Path) -> Option<f64> {
    CpuCgroup::find_at(root)?.limit()
}

/// The CPU bandwidth limit of the process's cgroup, in CPUs (may be
/// fractional), or `None` when there is none.
pub fn cgroup_cpu_limit() -> Option<f64> {
    cgroup_cpu_limit_at(Path::new("/"))
}

fn read_capped(path: &Path) -> Option<Vec<u8>> {
    // Start with a page: /proc files report size 0, and growing from an
    // empty Vec would read them 32 bytes at a time.
    let mut buf = Vec::with_capacity(4096);
    File::open(path)
        .ok()?
        .take(MAX_PROC_FILE)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// One read of up to 64 bytes, as Go's `pread(fd, [64]byte, 0)`; a full
/// buffer means the file is too long to be a limit file.
fn read_limit_file(path: &Path) -> Option<Vec<u8>> {
    let mut f = File::open(path).ok()?;
    let mut b = [0u8; LIMIT_READ];
    let n = loop {
        match f.read(&mut b) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    };
    (n < LIMIT_READ).then(|| b[..n].to_vec())
}

/// Splits `data` into lines the way Go's fixed-buffer line reader hands
/// them out: each line without its `\n`; a line longer than the buffer is
/// cut to the buffer's length and flagged incomplete; a last line without a
/// newline is also incomplete.
fn lines(data: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.iter().position(|&c| c == b'\n') {
            Some(i) if i < PARSE_SIZE => {
                let line = &rest[..i];
                rest = &rest[i + 1..];
                Some((line, true))
            }
            found => {
                let line = &rest[..rest.len().min(PARSE_SIZE)];
                rest = match found {
                    Some(i) => &rest[i + 1..],
                    None => &[],
                };
                Some((line, false))
            }
        }
    })
}

fn split_once(s: &[u8], c: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == c)?;
    Some((&s[..i], &s[i + 1..]))
}

/// True when the comma-separated list `b` has the element `cpu`.
fn contains_cpu(b: &[u8]) -> bool {
    b.split(|&c| c == b',').any(|e| e == b"cpu")
}

/// Step 2: the process's CPU cgroup path relative to the mount, and the
/// hierarchy's version.
fn parse_cpu_relative_path(data: &[u8]) -> Option<(Vec<u8>, CgroupVersion)> {
    let mut v2: Option<&[u8]> = None;
    for (line, complete) in lines(data) {
        if !complete {
            return None;
        }
        let (hierarchy, rest) = split_once(line, b':')?;
        let (controllers, path) = split_once(rest, b':')?;
        if hierarchy == b"0" {
            v2 = Some(path);
        } else if contains_cpu(controllers) {
            return Some((path.to_vec(), CgroupVersion::V1));
        }
    }
    // Go keeps the v2 path's length as its "found" flag, so an empty v2 path
    // counts as no cgroup.
    v2.filter(|p| !p.is_empty())
        .map(|p| (p.to_vec(), CgroupVersion::V2))
}

/// Step 1: the CPU controller's mount point, unescaped.
fn parse_cpu_mount(data: &[u8]) -> Option<Vec<u8>> {
    let mut v2: Option<Vec<u8>> = None;
    for (line, _complete) in lines(data) {
        // Fields: id parent major:minor root mount-point options
        // [optional...] - fstype source super-options.
        let mut l = line;
        for _ in 0..4 {
            l = split_once(l, b' ')?.1;
        }
        let (mnt, mut l2) = split_once(l, b' ')?;
        loop {
            let i = l2.iter().position(|&c| c == b' ')?;
            if i + 3 >= l2.len() {
                return None;
            }
            if &l2[i..i + 3] == b" - " {
                l2 = &l2[i + 3..];
                break;
            }
            l2 = &l2[i + 1..];
        }
        let (fstype, l3) = split_once(l2, b' ')?;
        match fstype {
            b"cgroup2" => v2 = Some(unescape_path(mnt)?),
            b"cgroup" => {
                let (_source, super_opts) = split_once(l3, b' ')?;
                if contains_cpu(super_opts) {
                    return unescape_path(mnt);
                }
            }
            _ => {}
        }
    }
    v2.filter(|m| !m.is_empty())
}

/// Undoes the kernel's `show_path` escaping: a backslash followed by three
/// digits is one byte (digits `0`–`9`, base 8, wrapping at 256, exactly as
/// Go decodes them). Anything else after a backslash is an error.
fn unescape_path(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        if i + 3 >= s.len() {
            return None;
        }
        let mut c: u8 = 0;
        for &d in &s[i + 1..i + 4] {
            if !d.is_ascii_digit() {
                return None;
            }
            c = c.wrapping_mul(8).wrapping_add(d - b'0');
        }
        out.push(c);
        i += 4;
    }
    Some(out)
}

/// A v1 limit file: an integer up to the first newline (which must exist).
fn parse_v1_number(buf: &[u8]) -> Option<i64> {
    let (num, _) = split_once(buf, b'\n')?;
    atoi64(num)
}

/// `cpu.max`: `max <period>` (no limit) or `<quota> <period>\n`.
fn parse_v2_limit(buf: &[u8]) -> Option<f64> {
    let (quota, rest) = split_once(buf, b' ')?;
    if quota == b"max" {
        return None;
    }
    let (period, _) = split_once(rest, b'\n')?;
    let quota = atoi64(quota)?;
    let period = atoi64(period)?;
    Some(quota as f64 / period as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn relative_path_v1_beats_v2() {
        let f = b"12:memory:/m\n0::/v2path\n3:cpu,cpuacct:/v1path\n";
        assert_eq!(
            parse_cpu_relative_path(f),
            Some((b"/v1path".to_vec(), CgroupVersion::V1))
        );
        let f = b"0::/a\n2:cpuacct:/x\n0::/b\n";
        assert_eq!(
            parse_cpu_relative_path(f),
            Some((b"/b".to_vec(), CgroupVersion::V2))
        );
    }

    #[test]
    fn relative_path_failures() {
        assert_eq!(parse_cpu_relative_path(b""), None);
        assert_eq!(
            parse_cpu_relative_path(b"0::/a"),
            None,
            "last line without newline"
        );
        assert_eq!(parse_cpu_relative_path(b"garbage\n0::/a\n"), None);
        assert_eq!(parse_cpu_relative_path(b"0::\n"), None, "empty v2 path");
        // An empty v1 path is not special: the mount point itself is used.
        assert_eq!(
            parse_cpu_relative_path(b"1:cpu:\n"),
            Some((Vec::new(), CgroupVersion::V1))
        );
        assert_eq!(parse_cpu_relative_path(b"1:memory:/m\n"), None);
        let mut long = b"0::/".to_vec();
        long.resize(PARSE_SIZE + 10, b'a');
        long.push(b'\n');
        assert_eq!(parse_cpu_relative_path(&long), None);
    }

    #[test]
    fn mount_parsing() {
        let mi = b"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
32 31 0:29 / /sys/fs/cgroup/cpu\\040x rw,relatime shared:9 - cgroup cgroup rw,cpu\n";
        assert_eq!(parse_cpu_mount(mi), Some(b"/sys/fs/cgroup/cpu x".to_vec()));
        let mi = b"41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct";
        assert_eq!(parse_cpu_mount(mi), Some(b"/sys/fs/cgroup".to_vec()));
        assert_eq!(parse_cpu_mount(b"1 2 3\n"), None);
        assert_eq!(parse_cpu_mount(b"1 2 3 / /x rw -\n"), None);
        assert_eq!(parse_cpu_mount(b"1 2 3 / /x rw - ext4 /dev/sda rw\n"), None);
        assert_eq!(
            parse_cpu_mount(b"1 2 3 / /bad\\04x rw - cgroup2 cgroup2 rw\n"),
            None
        );
    }

    #[test]
    fn unescape() {
        assert_eq!(unescape_path(b"/a\\040b\\134c"), Some(b"/a b\\c".to_vec()));
        assert_eq!(unescape_path(b"/a\\04"), None);
        assert_eq!(unescape_path(b"/a\\"), None);
        // Go accepts the digits 8 and 9 and wraps at 256.
        assert_eq!(
            unescape_path(b"\\999"),
            Some(vec![(9u32 * 64 + 9 * 8 + 9) as u8])
        );
    }

    #[test]
    fn limit_files() {
        assert_eq!(parse_v2_limit(b"max 100000\n"), None);
        assert_eq!(parse_v2_limit(b"max"), None);
        assert_eq!(parse_v2_limit(b"150000 100000\n"), Some(1.5));
        assert_eq!(parse_v2_limit(b"150000 100000"), None);
        assert_eq!(parse_v2_limit(b"150000\n"), None);
        assert_eq!(parse_v2_limit(b"x 100000\n"), None);
        assert_eq!(parse_v2_limit(b"-5 100000\n"), Some(-0.00005));
        assert_eq!(parse_v1_number(b"-1\n"), Some(-1));
        assert_eq!(parse_v1_number(b"200000\n"), Some(200000));
        assert_eq!(parse_v1_number(b"200000"), None);
        assert_eq!(parse_v1_number(b" 1\n"), None);
    }

    #[test]
    fn line_splitting_matches_the_fixed_buffer() {
        let v: Vec<_> = lines(b"a\nb\n").collect();
        assert_eq!(v, vec![(&b"a"[..], true), (&b"b"[..], true)]);
        let v: Vec<_> = lines(b"a\nb").collect();
        assert_eq!(v, vec![(&b"a"[..], true), (&b"b"[..], false)]);
        let mut long = vec![b'x'; PARSE_SIZE + 5];
        long.extend_from_slice(b"\nz\n");
        let v: Vec<_> = lines(&long).collect();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].0.len(), v[0].1), (PARSE_SIZE, false));
        assert_eq!(v[1], (&b"z"[..], true));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(
            prop_oneof![Just(b' '), Just(b'\n'), Just(b':'), Just(b'-'), Just(b'\\'), Just(b','), any::<u8>()], 0..200)) {
            let _ = parse_cpu_mount(&data);
            let _ = parse_cpu_relative_path(&data);
            let _ = parse_v2_limit(&data);
            let _ = parse_v1_number(&data);
            let _ = unescape_path(&data);
        }
    }
}
