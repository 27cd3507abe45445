//! The OS boundary of the stack allocator: every system call the crate makes.
//!
//! Map:
//!   - `reserve_aligned` / `unmap`: address-space reservations (one anonymous, private,
//!     no-reserve, read-write mapping per chunk, aligned to `align`).
//!   - `guard_install` (MADV_GUARD_INSTALL, no new VMA) and `guard_mprotect` (PROT_NONE,
//!     splits the mapping): the two ways to put a guard page under a stack.
//!   - `release`: MADV_DONTNEED on a stack body; the kernel drops the pages and a later
//!     touch faults in zero pages. Guard markers installed by MADV_GUARD_INSTALL survive it.
//!   - `guard_install` on a spare page tells whether MADV_GUARD_INSTALL exists (the pool asks
//!     once, on its registry); `probe_guard_install` asks on a mapping of its own (tests).
//!   - `max_map_count` and `vma_count`: the VMA limit and the current VMA count.
//!
//! Pre-conditions common to all: addresses and lengths are multiples of the page size
//! (`crate::PAGE_SIZE`) and lie inside a mapping this crate made. Errors come back as the raw
//! `errno`; callers turn them into `StackError`.
//!
//! Why raw `mmap` and not the workspace's `memmap2`: a chunk is aligned to 64 MiB by mapping
//! more and unmapping the ends, and then worked on in sub-ranges (guards, releases); memmap2
//! has neither alignment nor partial unmapping. The global pool's mappings live as long as
//! the process and are read by the SIGSEGV handler; only test pools are ever dropped, and
//! `Pool`'s `Drop` already unmaps their chunks and registry.

use core::ptr;

use crate::PAGE_SIZE;

/// `madvise` advice that installs guard markers in page tables without splitting the VMA
/// (Linux ≥ 6.13). The libc crate may not name it yet, so the number is spelled here.
pub(crate) const MADV_GUARD_INSTALL: libc::c_int = 102;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Reserves `len` bytes of address space aligned to `align` (a power of two, ≥ the page
/// size), readable and writable but committed only as pages are touched. Transparent huge
/// pages are switched off for the range: a stack touches one page at its top, and a 2 MiB
/// huge page there would cost 512 times the memory. A page-aligned request is one `mmap`;
/// a larger alignment maps `len + align` and unmaps the ends.
pub(crate) fn reserve_aligned(len: usize, align: usize) -> Result<usize, i32> {
    let over = if align <= PAGE_SIZE {
        len
    } else {
        len.checked_add(align).ok_or(libc::ENOMEM)?
    };
    // SAFETY: an anonymous mapping at a kernel-chosen address touches no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            over,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    let start = p as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let head = aligned - start;
    let tail = over - head - len;
    if head > 0 {
        // SAFETY: [start, aligned) is the unused head of the mapping just made.
        unsafe { libc::munmap(start as *mut libc::c_void, head) };
    }
    if tail > 0 {
        // SAFETY: [aligned+len, start+over) is the unused tail of the mapping just made.
        unsafe { libc::munmap((aligned + len) as *mut libc::c_void, tail) };
    }
    // Failure only means huge pages stay at the system default (kernels without THP).
    // SAFETY: the range is the mapping just reserved.
    unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) };
    Ok(aligned)
}

/// Unmaps a reservation.
///
/// # Safety
/// `[addr, addr+len)` must be a reservation of this crate that nothing uses any more.
pub(crate) unsafe fn unmap(addr: usize, len: usize) {
    // SAFETY: the caller guarantees the range is ours and unused.
    unsafe { libc::munmap(addr as *mut libc::c_void, len) };
}

/// Installs a guard page range with MADV_GUARD_INSTALL: no new VMA.
pub(crate) fn guard_install(addr: usize, len: usize) -> Result<(), i32> {
    // SAFETY: the range lies in one of our reservations (pre-condition); guard installation
    // discards its contents, which belong to no stack.
    let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, MADV_GUARD_INSTALL) };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Makes a guard page range inaccessible with mprotect: splits the VMA.
pub(crate) fn guard_mprotect(addr: usize, len: usize) -> Result<(), i32> {
    // SAFETY: the range lies in one of our reservations and belongs to no stack body.
    let r = unsafe { libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_NONE) };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Returns the pages of a free stack body to the OS.
pub(crate) fn release(addr: usize, len: usize) -> Result<(), i32> {
    // SAFETY: the range is the body of a stack in the free pool: nobody holds a pointer
    // into it, so dropping its contents is unobservable.
    let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Whether the kernel accepts MADV_GUARD_INSTALL. `Err(errno)` for EINVAL (the advice is
/// unknown: kernels before 6.13) or any other refusal, with the errno for the boot trace.
/// A mapping of its own; the pool probes on a spare page of its registry instead.
#[cfg(test)]
pub(crate) fn probe_guard_install(page: usize) -> Result<(), i32> {
    let base = reserve_aligned(2 * page, page)?;
    let r = guard_install(base, page);
    // SAFETY: the probe mapping was made above and is used by nothing else.
    unsafe { unmap(base, 2 * page) };
    r
}

/// `/proc/sys/vm/max_map_count`, or Linux's default (65530) when the file is unreadable.
/// Reads into a stack buffer: `stackinit` runs before the heap exists.
pub(crate) fn max_map_count() -> usize {
    use std::io::Read;
    let mut buf = [0u8; 32];
    let n = match std::fs::File::open("/proc/sys/vm/max_map_count") {
        Ok(mut f) => f.read(&mut buf).unwrap_or(0),
        Err(_) => 0,
    };
    parse_decimal(&buf[..n]).unwrap_or(65530)
}

/// A decimal number with optional surrounding whitespace.
fn parse_decimal(b: &[u8]) -> Option<usize> {
    let s = core::str::from_utf8(b).ok()?;
    s.trim().parse().ok()
}

/// The number of lines in `/proc/self/maps` (one per VMA), 0 when it cannot be read.
/// Allocation-free, like [`max_map_count`].
pub(crate) fn vma_count() -> usize {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open("/proc/self/maps") else {
        return 0;
    };
    let mut buf = [0u8; 4096];
    let mut lines = 0;
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    lines
}

/// The page size the kernel reports.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n <= 0 {
        4096
    } else {
        n as usize
    }
}
