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
//! [`cgroup_cpu_limit`] does all of this without the heap and with the
//! fewest system calls: raw `open`/`read`/`close` into fixed buffers on the
//! stack, each `/proc` file streamed a page at a time, the limit path built
//! in place, and every limit file opened once (three files for a v2 cgroup
//! or a v1 cgroup without a quota; `find` + `limit` open five). Measured on
//! the development VM (v1 hierarchy, no quota): 73 → 59 µs per lookup, of
//! which the kernel spends about 40 µs writing `/proc/self/mountinfo`; at
//! boot the 19 heap allocations of the lookup are gone with it. A `/proc`
//! line longer than that page
//! (never seen on a real system) sends the lookup to the general path,
//! [`CpuCgroup::find_at`] + [`CpuCgroup::limit`], whose answer it always
//! equals (a property test compares the two on random files).
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
    match fast::limit(root.as_os_str().as_bytes()) {
        fast::Outcome::Done(limit) => limit,
        fast::Outcome::Fallback => CpuCgroup::find_at(root)?.limit(),
    }
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

/// What one `/proc/self/cgroup` line says about the CPU controller.
enum CgroupLine<'a> {
    /// A v1 hierarchy without `cpu`.
    Other,
    /// The v2 hierarchy (`0::path`).
    V2(&'a [u8]),
    /// A v1 hierarchy with `cpu`, at this path.
    V1Cpu(&'a [u8]),
}

/// One `/proc/self/cgroup` line; `None` when it is malformed.
fn parse_cgroup_line(line: &[u8]) -> Option<CgroupLine<'_>> {
    let (hierarchy, rest) = split_once(line, b':')?;
    let (controllers, path) = split_once(rest, b':')?;
    Some(if hierarchy == b"0" {
        CgroupLine::V2(path)
    } else if contains_cpu(controllers) {
        CgroupLine::V1Cpu(path)
    } else {
        CgroupLine::Other
    })
}

/// Step 2: the process's CPU cgroup path relative to the mount, and the
/// hierarchy's version.
fn parse_cpu_relative_path(data: &[u8]) -> Option<(Vec<u8>, CgroupVersion)> {
    let mut v2: Option<&[u8]> = None;
    for (line, complete) in lines(data) {
        if !complete {
            return None;
        }
        match parse_cgroup_line(line)? {
            CgroupLine::V2(path) => v2 = Some(path),
            CgroupLine::V1Cpu(path) => return Some((path.to_vec(), CgroupVersion::V1)),
            CgroupLine::Other => {}
        }
    }
    // Go keeps the v2 path's length as its "found" flag, so an empty v2 path
    // counts as no cgroup.
    v2.filter(|p| !p.is_empty())
        .map(|p| (p.to_vec(), CgroupVersion::V2))
}

/// What one `/proc/self/mountinfo` line says about the CPU controller.
enum MountLine<'a> {
    /// Not a cgroup mount, or a v1 hierarchy without `cpu`.
    Other,
    /// A `cgroup2` mount at this (still escaped) mount point.
    V2(&'a [u8]),
    /// A v1 hierarchy with `cpu` mounted at this (still escaped) point.
    V1Cpu(&'a [u8]),
}

/// One mountinfo line; `None` when it is malformed (the whole file then
/// counts as unreadable, as in Go).
fn parse_mount_line(line: &[u8]) -> Option<MountLine<'_>> {
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
    Some(match fstype {
        b"cgroup2" => MountLine::V2(mnt),
        b"cgroup" => {
            let (_source, super_opts) = split_once(l3, b' ')?;
            if contains_cpu(super_opts) {
                MountLine::V1Cpu(mnt)
            } else {
                MountLine::Other
            }
        }
        _ => MountLine::Other,
    })
}

/// Step 1: the CPU controller's mount point, unescaped.
fn parse_cpu_mount(data: &[u8]) -> Option<Vec<u8>> {
    let mut v2: Option<Vec<u8>> = None;
    for (line, _complete) in lines(data) {
        match parse_mount_line(line)? {
            MountLine::V2(mnt) => v2 = Some(unescape_path(mnt)?),
            MountLine::V1Cpu(mnt) => return unescape_path(mnt),
            MountLine::Other => {}
        }
    }
    v2.filter(|m| !m.is_empty())
}

/// Undoes the kernel's `show_path` escaping: a backslash followed by three
/// digits is one byte (digits `0`–`9`, base 8, wrapping at 256, exactly as
/// Go decodes them). Anything else after a backslash is an error.
fn unescape_path(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    unescape_each(s, |b| out.push(b))?;
    Some(out)
}

/// [`unescape_path`]'s decoding, handing each output byte to `out` (at
/// most `s.len()` of them).
fn unescape_each(s: &[u8], mut out: impl FnMut(u8)) -> Option<()> {
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out(s[i]);
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
        out(c);
        i += 4;
    }
    Some(())
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

/// The boot-time lookup: the same answer as [`CpuCgroup::find_at`] +
/// [`CpuCgroup::limit`], with no heap allocation, raw system calls and
/// fixed buffers (see the module map).
mod fast {
    use super::{
        parse_cgroup_line, parse_mount_line, parse_v1_number, parse_v2_limit, unescape_each,
        CgroupLine, MountLine, LIMIT_READ, MAX_PROC_FILE, PATH_MAX,
    };

    /// Longest `root` handled here; a longer one takes the general path.
    const ROOT_MAX: usize = 256;
    /// Room after the cgroup directory for `/cpu.cfs_period_us` and the NUL.
    const FILE_ROOM: usize = 32;
    /// The read buffer: one page. A `/proc` line that does not fit takes the
    /// general path (Go's own buffer is 64 KiB).
    pub(super) const LINE_MAX: usize = 4096;

    /// What the lookup found.
    pub(super) enum Outcome {
        /// The answer: the limit in CPUs, or none.
        Done(Option<f64>),
        /// A line too long for [`LINE_MAX`], a root too long for
        /// [`ROOT_MAX`] or holding a NUL: ask the general path.
        Fallback,
    }

    /// A path assembled in place: the root, the mount point, the cgroup
    /// path and a file name, NUL-terminated when opened.
    struct PathBuf<'a> {
        buf: &'a mut [u8],
        len: usize,
    }

    impl PathBuf<'_> {
        fn truncate(&mut self, len: usize) {
            self.len = len;
        }
        /// Appends `b`; false (nothing appended) when it does not fit.
        fn push(&mut self, b: &[u8]) -> bool {
            let Some(dst) = self.buf.get_mut(self.len..self.len + b.len()) else {
                return false;
            };
            dst.copy_from_slice(b);
            self.len += b.len();
            true
        }
        /// Opens the path with `name` appended (read-only, close-on-exec);
        /// the buffer is left as it was. None when it does not fit, holds
        /// a NUL (no such file: the general path's `File::open` refuses it)
        /// or the open fails.
        fn open_with(&mut self, name: &[u8]) -> Option<Fd> {
            let keep = self.len;
            let ok = self.push(name) && self.push(b"\0");
            let path = &self.buf[..self.len];
            let fd = if ok && !path[..path.len() - 1].contains(&0) {
                let flags = libc::O_RDONLY | libc::O_CLOEXEC;
                // SAFETY: `path` is NUL-terminated and holds no other NUL.
                let fd = unsafe { libc::open(path.as_ptr().cast(), flags) };
                (fd >= 0).then_some(Fd(fd))
            } else {
                None
            };
            self.truncate(keep);
            fd
        }
    }

    /// An open file descriptor, closed on drop.
    struct Fd(libc::c_int);

    impl Fd {
        /// One `read` into `buf`, retried on EINTR; None on any other error.
        fn read(&self, buf: &mut [u8]) -> Option<usize> {
            loop {
                // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
                let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
                if n >= 0 {
                    return Some(n as usize);
                }
                if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    return None;
                }
            }
        }
    }

    impl Drop for Fd {
        fn drop(&mut self) {
            // SAFETY: the descriptor was opened by `open_with` and is closed once.
            unsafe { libc::close(self.0) };
        }
    }

    /// Why a streamed file could not be handed out line by line.
    enum Stream {
        /// Open or read failed (the general path: no limit).
        Unreadable,
        /// A line longer than the buffer.
        TooLong,
    }

    /// Calls `f(line, complete)` for each line of the file, as
    /// [`super::lines`] splits it (a last line without a newline is
    /// incomplete), reading a page at a time; `f` returning false stops.
    /// Reads at most `MAX_PROC_FILE` bytes, as the general path does.
    fn each_line(
        fd: Fd,
        buf: &mut [u8; LINE_MAX],
        mut f: impl FnMut(&[u8], bool) -> bool,
    ) -> Result<(), Stream> {
        let (mut start, mut end, mut total) = (0usize, 0usize, 0u64);
        let mut eof = false;
        loop {
            if let Some(i) = buf[start..end].iter().position(|&c| c == b'\n') {
                if !f(&buf[start..start + i], true) {
                    return Ok(());
                }
                start += i + 1;
                continue;
            }
            if eof {
                if start < end {
                    f(&buf[start..end], false);
                }
                return Ok(());
            }
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
            if end == LINE_MAX {
                return Err(Stream::TooLong);
            }
            let room = (LINE_MAX - end).min((MAX_PROC_FILE - total) as usize);
            let n = if room == 0 {
                0
            } else {
                fd.read(&mut buf[end..end + room])
                    .ok_or(Stream::Unreadable)?
            };
            total += n as u64;
            end += n;
            eof = n == 0;
        }
    }

    /// One read of up to [`LIMIT_READ`] bytes of `dir/name`; None when the
    /// file cannot be read or fills the buffer.
    fn read_limit(dir: &mut PathBuf<'_>, name: &[u8], buf: &mut [u8; LINE_MAX]) -> Option<usize> {
        let fd = dir.open_with(name)?;
        let n = fd.read(&mut buf[..LIMIT_READ])?;
        (n < LIMIT_READ).then_some(n)
    }

    /// The lookup under `root` (its raw bytes, `/` for the real system).
    pub(super) fn limit(root: &[u8]) -> Outcome {
        if root.len() > ROOT_MAX || root.contains(&0) {
            return Outcome::Fallback;
        }
        let mut buf = [0u8; LINE_MAX];
        let mut path_buf = [0u8; ROOT_MAX + 1 + PATH_MAX + FILE_ROOM];
        let mut path = PathBuf {
            buf: &mut path_buf,
            len: 0,
        };
        path.push(root);
        let root_len = path.len;
        // `Path::join` of a relative name adds a separator unless the root
        // is empty or ends in one.
        let sep: &[u8] = if root.is_empty() || root.ends_with(b"/") {
            b""
        } else {
            b"/"
        };
        // The /proc paths are built in the read buffer, which is free
        // until the file is read, so that `path` keeps what it holds.
        let proc_file = |buf: &mut [u8; LINE_MAX], name: &[u8]| {
            let mut p = PathBuf { buf, len: 0 };
            let _ = p.push(root) && p.push(sep);
            p.open_with(name)
        };

        // Step 1: the mount point, unescaped straight into `path` after the
        // root. A later cgroup2 line replaces an earlier one; the first v1
        // `cpu` line ends the search.
        let Some(fd) = proc_file(&mut buf, b"proc/self/mountinfo") else {
            return Outcome::Done(None);
        };
        let (mut found, mut bad, mut overflow) = (false, false, false);
        let r = each_line(fd, &mut buf, |line, _complete| {
            let (mnt, last) = match parse_mount_line(line) {
                None => {
                    bad = true;
                    return false;
                }
                Some(MountLine::Other) => return true,
                Some(MountLine::V2(m)) => (m, false),
                Some(MountLine::V1Cpu(m)) => (m, true),
            };
            path.truncate(root_len);
            // A mount point is shorter than its line, so it fits.
            let mut fits = true;
            if unescape_each(mnt, |b| fits &= path.push(&[b])).is_none() {
                bad = true;
                return false;
            }
            if !fits {
                overflow = true;
                return false;
            }
            found = true;
            !last
        });
        match r {
            Err(Stream::TooLong) => return Outcome::Fallback,
            Err(Stream::Unreadable) => return Outcome::Done(None),
            Ok(()) if overflow => return Outcome::Fallback,
            Ok(()) if bad => return Outcome::Done(None),
            Ok(()) => {}
        }
        // An empty mount point counts as none (the general path's filter).
        let mount_end = path.len;
        if !found || mount_end == root_len {
            return Outcome::Done(None);
        }
        let mount_len = mount_end - root_len;

        // Step 2: the cgroup path, written after the mount point. A path
        // that would make the directory longer than PATH_MAX is remembered
        // as such: a later v2 line may still replace it.
        let Some(fd) = proc_file(&mut buf, b"proc/self/cgroup") else {
            return Outcome::Done(None);
        };
        path.truncate(mount_end);
        let mut version = None;
        let (mut bad, mut too_long) = (false, false);
        let r = each_line(fd, &mut buf, |line, complete| {
            if !complete {
                bad = true;
                return false;
            }
            let (rel, v1) = match parse_cgroup_line(line) {
                None => {
                    bad = true;
                    return false;
                }
                Some(CgroupLine::Other) => return true,
                Some(CgroupLine::V2(p)) => (p, false),
                Some(CgroupLine::V1Cpu(p)) => (p, true),
            };
            path.truncate(mount_end);
            too_long = mount_len + rel.len() > PATH_MAX;
            if !too_long {
                path.push(rel);
            }
            version = Some(v1);
            !v1
        });
        match r {
            Err(Stream::TooLong) => return Outcome::Fallback,
            Err(Stream::Unreadable) => return Outcome::Done(None),
            Ok(()) if bad => return Outcome::Done(None),
            Ok(()) => {}
        }
        let Some(v1) = version else {
            return Outcome::Done(None);
        };
        // An empty v2 path counts as no cgroup (Go's "found" flag).
        if too_long || (!v1 && path.len == mount_end) {
            return Outcome::Done(None);
        }
        // `dir.join(name)` adds a separator unless the directory ends in one.
        let sep: &[u8] = if path.buf[..path.len].ends_with(b"/") {
            b""
        } else {
            b"/"
        };
        path.push(sep);

        // Steps 3 and 4. Go opens the limit files once at start-up and
        // gives up when one is missing; opening each only when it is read
        // gives the same answer, since a missing file means no limit either
        // way and a negative v1 quota means none whatever the period file.
        let number = &mut buf;
        let limit = if v1 {
            let Some(n) = read_limit(&mut path, b"cpu.cfs_quota_us", number) else {
                return Outcome::Done(None);
            };
            let Some(quota) = parse_v1_number(&number[..n]) else {
                return Outcome::Done(None);
            };
            if quota < 0 {
                return Outcome::Done(None);
            }
            let Some(n) = read_limit(&mut path, b"cpu.cfs_period_us", number) else {
                return Outcome::Done(None);
            };
            let Some(period) = parse_v1_number(&number[..n]) else {
                return Outcome::Done(None);
            };
            quota as f64 / period as f64
        } else {
            let Some(n) = read_limit(&mut path, b"cpu.max", number) else {
                return Outcome::Done(None);
            };
            let Some(l) = parse_v2_limit(&number[..n]) else {
                return Outcome::Done(None);
            };
            l
        };
        Outcome::Done(limit.is_finite().then_some(limit))
    }
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

    /// A fake filesystem root under the temporary directory, removed on drop.
    struct Root(PathBuf);

    impl Root {
        fn new() -> Root {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "rt-env-cgroup-unit-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(p.join("proc/self")).unwrap();
            Root(p)
        }
        fn write(&self, rel: &[u8], data: &[u8]) {
            let mut p = self.0.as_os_str().as_bytes().to_vec();
            p.push(b'/');
            p.extend_from_slice(rel);
            let p = PathBuf::from(OsStr::from_bytes(&p));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        /// The fast lookup's answer, or None when it hands over.
        fn fast(&self) -> Option<Option<f64>> {
            match fast::limit(self.0.as_os_str().as_bytes()) {
                fast::Outcome::Done(l) => Some(l),
                fast::Outcome::Fallback => None,
            }
        }
        fn general(&self) -> Option<f64> {
            CpuCgroup::find_at(&self.0)?.limit()
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn fast_lookup_handles_v1_and_v2() {
        let r = Root::new();
        r.write(
            b"proc/self/mountinfo",
            b"22 1 0:20 / / rw - ext4 /dev/sda1 rw\n\
              32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct\n\
              41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        r.write(
            b"proc/self/cgroup",
            b"5:memory:/m\n4:cpu,cpuacct:/docker/a\n0::/\n",
        );
        r.write(
            b"sys/fs/cgroup/cpu,cpuacct/docker/a/cpu.cfs_quota_us",
            b"250000\n",
        );
        r.write(
            b"sys/fs/cgroup/cpu,cpuacct/docker/a/cpu.cfs_period_us",
            b"100000\n",
        );
        assert_eq!(r.fast(), Some(Some(2.5)));
        r.write(
            b"sys/fs/cgroup/cpu,cpuacct/docker/a/cpu.cfs_quota_us",
            b"-1\n",
        );
        assert_eq!(r.fast(), Some(None));

        let r = Root::new();
        r.write(
            b"proc/self/mountinfo",
            b"30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw",
        );
        r.write(b"proc/self/cgroup", b"0::/k/p\n");
        r.write(b"sys/fs/cgroup/k/p/cpu.max", b"150000 100000\n");
        assert_eq!(r.fast(), Some(Some(1.5)));
        r.write(b"proc/self/cgroup", b"0::/k/p");
        assert_eq!(r.fast(), Some(None), "last cgroup line without a newline");
    }

    #[test]
    fn lines_longer_than_a_page_take_the_general_path() {
        let r = Root::new();
        let mut mi = b"22 1 0:20 / /".to_vec();
        mi.resize(mi.len() + fast::LINE_MAX, b'x');
        mi.extend_from_slice(b" rw - ext4 /dev/sda1 rw\n");
        mi.extend_from_slice(b"30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        r.write(b"proc/self/mountinfo", &mi);
        r.write(b"proc/self/cgroup", b"0::/a\n");
        r.write(b"sys/fs/cgroup/a/cpu.max", b"300000 100000\n");
        assert_eq!(r.fast(), None);
        assert_eq!(cgroup_cpu_limit_at(&r.0), Some(3.0));
    }

    #[test]
    fn fast_lookup_agrees_on_this_system() {
        let fast = match fast::limit(b"/") {
            fast::Outcome::Done(l) => l,
            fast::Outcome::Fallback => return,
        };
        assert_eq!(
            fast,
            CpuCgroup::find_at(Path::new("/")).and_then(|c| c.limit())
        );
    }

    /// Pieces the random fixtures are built from: mount lines (some
    /// malformed, some with escapes), cgroup lines, limit file contents.
    const MOUNTS: [&[u8]; 9] = [
        b"22 1 0:20 / / rw - ext4 /dev/sda1 rw",
        b"30 22 0:26 / /c2 rw - cgroup2 cgroup2 rw",
        b"31 22 0:27 / /c\\040two rw shared:1 - cgroup2 cgroup2 rw",
        b"32 22 0:28 / /v1 rw - cgroup cgroup rw,cpu,cpuacct",
        b"33 22 0:29 / /mem rw - cgroup cgroup rw,memory",
        b"34 22 0:30 / /v1b rw - cgroup cgroup cpu",
        b"35 22 0:31 / /bad\\04x rw - cgroup2 cgroup2 rw",
        b"garbage",
        b"36 22 0:32 / /nul\\000 rw - cgroup2 cgroup2 rw",
    ];
    const MOUNT_POINTS: [&[u8]; 6] = [b"c2", b"c two", b"v1", b"v1b", b"mem", b""];
    const CGROUPS: [&[u8]; 8] = [
        b"0::/a",
        b"0::/b/c",
        b"0::",
        b"4:cpu,cpuacct:/a",
        b"3:cpu:",
        b"5:memory:/b/c",
        b"junk",
        b"0::/",
    ];
    const RELS: [&[u8]; 4] = [b"a", b"b/c", b"", b"/"];
    /// Limit file contents by kind: a number of its own (so a file read
    /// from the wrong directory shows), "no limit", malformed, or missing.
    fn limit_file(name: &[u8], kind: u8, n: u32) -> Option<Vec<u8>> {
        let text = match (name, kind % 8) {
            (_, 7) => return None,
            (_, 6) => "x\n".to_string(),
            (b"cpu.max", 5) => "max 100000\n".to_string(),
            (b"cpu.max", 4) => format!("{n} 0\n"),
            (b"cpu.max", _) => format!("{n} 100000\n"),
            (b"cpu.cfs_quota_us", 5) => "-1\n".to_string(),
            (b"cpu.cfs_period_us", 4) => "0\n".to_string(),
            _ => format!("{n}\n"),
        };
        Some(text.into_bytes())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn fast_lookup_equals_the_general_one(
            // Mostly well-formed files: a malformed line anywhere spoils one.
            mounts in proptest::collection::vec(prop_oneof![12 => 0..6usize, 1 => 6..9usize], 0..5),
            mount_nl in proptest::bool::weighted(0.9),
            cgroups in proptest::collection::vec(prop_oneof![12 => 0..6usize, 1 => 6..8usize], 0..4),
            cgroup_nl in proptest::bool::weighted(0.9),
            files in proptest::collection::vec((any::<u8>(), 1..1_000_000u32), 3 * 6 * 4),
        ) {
            let r = Root::new();
            let join = |idx: &[usize], table: &[&[u8]], nl: bool| {
                let mut v = Vec::new();
                for (k, &i) in idx.iter().enumerate() {
                    v.extend_from_slice(table[i]);
                    if nl || k + 1 < idx.len() {
                        v.push(b'\n');
                    }
                }
                v
            };
            r.write(b"proc/self/mountinfo", &join(&mounts, &MOUNTS, mount_nl));
            r.write(b"proc/self/cgroup", &join(&cgroups, &CGROUPS, cgroup_nl));
            // Every limit file at every (mount point, cgroup path) pair,
            // with random contents or missing.
            let names: [&[u8]; 3] = [b"cpu.max", b"cpu.cfs_quota_us", b"cpu.cfs_period_us"];
            let mut k = 0;
            for mp in MOUNT_POINTS {
                for rel in RELS {
                    for name in names {
                        let (kind, n) = files[k];
                        k += 1;
                        let Some(data) = limit_file(name, kind, n) else {
                            continue;
                        };
                        let mut f = mp.to_vec();
                        for part in [rel, name] {
                            if !part.is_empty() && part != b"/" {
                                f.push(b'/');
                                f.extend_from_slice(part);
                            }
                        }
                        let f: Vec<u8> = f.into_iter().skip_while(|&c| c == b'/').collect();
                        r.write(&f, &data);
                    }
                }
            }
            let general = r.general();
            match r.fast() {
                Some(fast) => prop_assert_eq!(fast, general),
                None => prop_assert!(false, "no line here is longer than a page"),
            }
        }
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
