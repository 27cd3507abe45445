//! The OS boundary of the heap: reserve, commit, release and query memory.
//!
//! Map: every call into the kernel that the allocator makes lives here, each
//! with its pre-conditions. Go's names: [`sys_reserve`] (`sysReserve`,
//! `PROT_NONE` address space), [`sys_map`] (`sysMap`, make a reserved range
//! readable and writable), [`sys_unused`] (`sysUnused`, `MADV_DONTNEED`),
//! [`sys_alloc`] (`sysAlloc`, fresh zeroed read-write memory for runtime
//! metadata). None of them allocates.
//!
//! Why raw `mmap` and not the workspace's `memmap2`: memmap2 maps a whole
//! read-write (or read-only/exec) range at an address the kernel picks and
//! unmaps it when the value drops. The heap needs what it cannot express:
//! `PROT_NONE` reservations at Go's arena hints (`0x00c000000000`, …),
//! committed piecewise with `mprotect`, trimmed with partial `munmap`, and
//! kept for the life of the process (arenas and metadata are never
//! returned, and `span_of` reads them lock-free at any time). A drop that
//! unmaps would be a hazard here, not a help.

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Reserves `n` bytes of address space with no access, at `hint` if the
/// kernel agrees. Returns the address actually obtained, or null.
///
/// Without `MAP_NORESERVE` (as Go's `sysReserve`): an inaccessible mapping
/// costs no commit charge, and [`sys_map`] then charges what it makes
/// writable, so the kernel can refuse a request that could never be backed
/// (under the default overcommit heuristic, one larger than RAM plus swap)
/// and the allocation fails at once instead of the process being killed
/// later. With `MAP_NORESERVE`, a 16 TiB request "succeeded".
pub fn sys_reserve(hint: usize, n: usize) -> *mut u8 {
    // SAFETY: an anonymous private PROT_NONE mapping without MAP_FIXED cannot
    // replace existing mappings; the hint is only advice to the kernel.
    let p = unsafe {
        libc::mmap(
            hint as *mut libc::c_void,
            n,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Returns a range obtained from [`sys_reserve`] or [`sys_alloc`] to the OS.
///
/// # Safety
/// `[p, p+n)` must be a mapping this module created and nothing may use it
/// afterwards.
pub unsafe fn sys_free(p: *mut u8, n: usize) {
    // SAFETY: the caller owns the whole range and no longer uses it.
    unsafe { libc::munmap(p.cast(), n) };
}

/// Commits `[p, p+n)` of a reserved range (read-write). Returns false when
/// the kernel refuses (commit limit, `ENOMEM`).
///
/// # Safety
/// The range must lie inside a reservation made by [`sys_reserve`].
pub unsafe fn sys_map(p: *mut u8, n: usize) -> bool {
    // SAFETY: the caller guarantees the range is our own reservation, so
    // changing its protection affects no other mapping.
    unsafe { libc::mprotect(p.cast(), n, libc::PROT_READ | libc::PROT_WRITE) == 0 }
}

/// Hands the physical pages of `[p, p+n)` back to the OS. The range stays
/// mapped; the next touch faults in zero-filled pages.
///
/// # Safety
/// The range must be committed heap memory whose contents nobody needs.
pub unsafe fn sys_unused(p: *mut u8, n: usize) {
    // SAFETY: the caller guarantees the contents are dead; DONTNEED on a
    // private anonymous mapping only drops pages.
    unsafe { libc::madvise(p.cast(), n, libc::MADV_DONTNEED) };
}

/// Fresh zeroed read-write memory for runtime metadata (fixalloc chunks,
/// the arena index, per-arena span maps). Null when the OS refuses.
pub fn sys_alloc(n: usize) -> *mut u8 {
    // SAFETY: a new anonymous private mapping cannot alias any other memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            n,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

/// The kernel's page size (Go `physPageSize`), 0 if unknown.
pub fn phys_page_size() -> usize {
    // SAFETY: sysconf has no pre-conditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as usize
    } else {
        0
    }
}

/// Transparent huge page size (Go `physHugePageSize`), read from sysfs
/// without allocating; 0 when the file is missing, unreadable, or not a
/// power of two. Read once per process (three system calls, about 10 µs on
/// a VM): later calls, from `mallocinit` or `osinit`, return the first
/// answer.
pub fn phys_huge_page_size() -> usize {
    /// The answer plus one; 0 until the file was read.
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    match CACHED.load(Ordering::Relaxed) {
        0 => {
            let v = read_huge_page_size();
            CACHED.store(v + 1, Ordering::Relaxed);
            v
        }
        v => v - 1,
    }
}

fn read_huge_page_size() -> usize {
    let path = b"/sys/kernel/mm/transparent_hugepage/hpage_pmd_size\0";
    // SAFETY: the path is NUL-terminated; open has no other pre-conditions.
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return 0;
    }
    let mut buf = [0u8; 32];
    // SAFETY: buf is a valid writable buffer of the length passed.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    if n <= 0 {
        return 0;
    }
    parse_huge_page_size(&buf[..n as usize])
}

/// The leading decimal number of `text` if it is a power of two, else 0.
fn parse_huge_page_size(text: &[u8]) -> usize {
    let mut v: usize = 0;
    for &b in text {
        if !b.is_ascii_digit() {
            break;
        }
        v = match v
            .checked_mul(10)
            .and_then(|v| v.checked_add((b - b'0') as usize))
        {
            Some(v) => v,
            None => return 0,
        };
    }
    // Go's osinit: a size that is not a power of two is ignored.
    if v.is_power_of_two() {
        v
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn huge_page_sizes_that_are_not_powers_of_two_are_ignored() {
        use super::parse_huge_page_size as p;
        assert_eq!(p(b"2097152\n"), 2 << 20);
        assert_eq!(p(b"1073741824"), 1 << 30);
        assert_eq!(p(b"3000000\n"), 0);
        assert_eq!(p(b"0\n"), 0);
        assert_eq!(p(b"x"), 0);
        assert_eq!(p(b"99999999999999999999999"), 0);
    }

    #[test]
    fn huge_page_size_is_read_once_and_agrees_with_sysfs() {
        let first = super::phys_huge_page_size();
        assert_eq!(first, super::read_huge_page_size());
        assert_eq!(super::phys_huge_page_size(), first);
    }
}
