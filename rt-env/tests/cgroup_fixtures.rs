//! cgroup CPU-limit discovery against fake filesystem roots: each test
//! builds `proc/self/{mountinfo,cgroup}` and the cgroup files under a fresh
//! temporary directory and checks what [`cgroup_cpu_limit_at`] finds.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rt_env::{
    cgroup_cpu_limit, cgroup_cpu_limit_at, default_procs, CgroupVersion, CpuCgroup, DebugVars,
};

/// A temporary fake root, removed on drop.
struct Root(PathBuf);

impl Root {
    fn new() -> Root {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "rt-env-cgroup-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(p.join("proc/self")).unwrap();
        Root(p)
    }
    fn write(&self, rel: &str, data: &[u8]) -> &Self {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
        self
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn limit(&self) -> Option<f64> {
        cgroup_cpu_limit_at(self.path())
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const MOUNT_V2: &[u8] = b"22 1 0:20 / / rw,relatime - ext4 /dev/sda1 rw\n\
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

const MOUNT_V1: &[u8] = b"22 1 0:20 / / rw,relatime - ext4 /dev/sda1 rw\n\
31 22 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
34 31 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

fn v2(cpu_max: &[u8]) -> Root {
    let r = Root::new();
    r.write("proc/self/mountinfo", MOUNT_V2)
        .write("proc/self/cgroup", b"0::/kubepods/pod1/c1\n")
        .write("sys/fs/cgroup/kubepods/pod1/c1/cpu.max", cpu_max);
    r
}

fn v1(quota: &[u8], period: &[u8]) -> Root {
    let r = Root::new();
    r.write("proc/self/mountinfo", MOUNT_V1)
        .write(
            "proc/self/cgroup",
            b"5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n",
        )
        .write(
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
            quota,
        )
        .write(
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us",
            period,
        );
    r
}

#[test]
fn v2_quota_and_period() {
    assert_eq!(v2(b"150000 100000\n").limit(), Some(1.5));
    assert_eq!(v2(b"400000 100000\n").limit(), Some(4.0));
    let r = v2(b"50000 100000\n");
    let c = CpuCgroup::find_at(r.path()).unwrap();
    assert_eq!(c.version, CgroupVersion::V2);
    assert!(c.dir.ends_with("sys/fs/cgroup/kubepods/pod1/c1"));
}

#[test]
fn v2_max_is_no_limit() {
    assert_eq!(v2(b"max 100000\n").limit(), None);
}

#[test]
fn v2_garbage_is_no_limit() {
    for bad in [
        &b""[..],
        b"\n",
        b"150000\n",
        b"150000 100000",
        b"abc 100000\n",
        b"150000 1e5\n",
        b"+150000 100000\n",
        b"150000 0\n",
        b"\xff\xfe 1\n",
    ] {
        assert_eq!(v2(bad).limit(), None, "{:?}", String::from_utf8_lossy(bad));
    }
    // Go reads limit files with one 64-byte read; a file that fills it is
    // malformed even when it starts with a good limit.
    let mut long = b"150000 100000\n".to_vec();
    long.resize(64, b' ');
    assert_eq!(v2(&long).limit(), None);
    long.truncate(63);
    assert_eq!(v2(&long).limit(), Some(1.5));
}

#[test]
fn v1_quota_and_period() {
    assert_eq!(v1(b"250000\n", b"100000\n").limit(), Some(2.5));
    let r = v1(b"250000\n", b"100000\n");
    assert_eq!(
        CpuCgroup::find_at(r.path()).unwrap().version,
        CgroupVersion::V1
    );
}

#[test]
fn v1_negative_quota_is_no_limit() {
    assert_eq!(v1(b"-1\n", b"100000\n").limit(), None);
    // The period is not even read then.
    assert_eq!(v1(b"-1\n", b"garbage").limit(), None);
}

#[test]
fn v1_garbage_is_no_limit() {
    assert_eq!(v1(b"250000", b"100000\n").limit(), None);
    assert_eq!(v1(b"250000\n", b"x\n").limit(), None);
    assert_eq!(v1(b" 250000\n", b"100000\n").limit(), None);
}

#[test]
fn v1_cpu_controller_beats_v2() {
    // MOUNT_V1 also has a cgroup2 mount and the cgroup file a 0:: line.
    let r = v1(b"100000\n", b"100000\n");
    r.write("sys/fs/cgroup/unified/cpu.max", b"900000 100000\n");
    assert_eq!(r.limit(), Some(1.0));
}

#[test]
fn missing_files_are_no_limit() {
    let r = Root::new();
    assert_eq!(r.limit(), None, "nothing at all");
    r.write("proc/self/mountinfo", MOUNT_V2);
    assert_eq!(r.limit(), None, "no /proc/self/cgroup");
    r.write("proc/self/cgroup", b"0::/a\n");
    assert_eq!(r.limit(), None, "no cpu.max");
    let r = v1(b"100000\n", b"100000\n");
    fs::remove_file(
        r.path()
            .join("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us"),
    )
    .unwrap();
    assert_eq!(
        CpuCgroup::find_at(r.path()),
        None,
        "v1 needs both files to open"
    );
}

#[test]
fn garbage_proc_files_are_no_limit() {
    let r = v2(b"150000 100000\n");
    r.write("proc/self/cgroup", b"0::/kubepods/pod1/c1");
    assert_eq!(r.limit(), None, "cgroup file's last line lacks a newline");
    r.write("proc/self/cgroup", b"nonsense\n0::/kubepods/pod1/c1\n");
    assert_eq!(r.limit(), None, "a malformed line spoils the whole file");
    r.write("proc/self/cgroup", b"0::/kubepods/pod1/c1\n");
    assert_eq!(r.limit(), Some(1.5));
    let mut mi = b"1 2 3\n".to_vec();
    mi.extend_from_slice(MOUNT_V2);
    r.write("proc/self/mountinfo", &mi);
    assert_eq!(
        r.limit(),
        None,
        "a malformed mountinfo line spoils the whole file"
    );
    r.write("proc/self/mountinfo", b"\x00\xff garbage \\\\\\\n\n\n");
    assert_eq!(r.limit(), None);
}

#[test]
fn nested_hierarchy_reads_only_the_leaf() {
    let r = v2(b"max 100000\n");
    r.write("sys/fs/cgroup/kubepods/cpu.max", b"100000 100000\n")
        .write("sys/fs/cgroup/kubepods/pod1/cpu.max", b"100000 100000\n");
    assert_eq!(r.limit(), None, "a parent's tighter limit is not seen");
    r.write("sys/fs/cgroup/kubepods/pod1/c1/cpu.max", b"300000 100000\n");
    assert_eq!(r.limit(), Some(3.0));
}

#[test]
fn escaped_mount_point() {
    let r = Root::new();
    r.write(
        "proc/self/mountinfo",
        b"30 22 0:26 / /sys/fs/cg\\040root rw - cgroup2 cgroup2 rw\n",
    )
    .write("proc/self/cgroup", b"0::/\n")
    .write("sys/fs/cg root/cpu.max", b"200000 100000\n");
    assert_eq!(r.limit(), Some(2.0));
}

#[test]
fn limit_is_reread() {
    let r = v2(b"100000 100000\n");
    let c = CpuCgroup::find_at(r.path()).unwrap();
    assert_eq!(c.limit(), Some(1.0));
    r.write("sys/fs/cgroup/kubepods/pod1/c1/cpu.max", b"700000 100000\n");
    assert_eq!(c.limit(), Some(7.0));
    r.write("sys/fs/cgroup/kubepods/pod1/c1/cpu.max", b"max 100000\n");
    assert_eq!(c.limit(), None);
}

#[test]
fn fixture_limits_drive_default_procs() {
    let dv = DebugVars::default();
    assert_eq!(default_procs(8, v2(b"150000 100000\n").limit(), &dv), 2);
    assert_eq!(default_procs(8, v2(b"350000 100000\n").limit(), &dv), 4);
    assert_eq!(default_procs(8, v2(b"max 100000\n").limit(), &dv), 8);
    assert_eq!(
        default_procs(3, v1(b"900000\n", b"100000\n").limit(), &dv),
        3
    );
}

#[test]
fn real_system_lookup_is_total() {
    // Whatever this machine has, the lookup ends in a finite limit or none.
    if let Some(l) = cgroup_cpu_limit() {
        assert!(l.is_finite());
    }
}
