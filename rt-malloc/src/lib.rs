//! rt-malloc: rt-heap behind the C allocation API, built as
//! `librt_malloc.so` so that any dynamically linked program can run on it:
//!
//! ```text
//! LD_PRELOAD=target/release/librt_malloc.so python3 script.py
//! ```
//!
//! Exported: `malloc`, `free`, `calloc`, `realloc`, `reallocarray`,
//! `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc`,
//! `malloc_usable_size`, with glibc's contracts on x86-64 (every `malloc`
//! result 16-byte aligned; `errno = ENOMEM` when memory runs out; `EINVAL`
//! for an alignment the call does not accept).
//!
//! # How a C call maps onto rt-heap
//!
//! - Allocation is [`rt_heap::malloc`] at alignment 16 (or the requested
//!   one). Alignments up to a page pick a size class whose objects are a
//!   multiple of the alignment; above that the object gets a large span
//!   aligned as asked (up to [`rt_heap::mcache::MAX_ALIGN`]).
//! - `free`, `realloc` and `malloc_usable_size` get no size: the object's
//!   class or large span comes from the page map ([`rt_heap::object_of`],
//!   [`rt_heap::free_unsized`]). A pointer the heap did not hand out is a
//!   `fatal error:` (status 2), as glibc aborts on one.
//! - Threads: every thread, pthread or not, gets rt-heap's per-thread
//!   cache on its first allocation; rt-heap's thread-local is
//!   const-initialised (no lazy allocation), and its exit flush is
//!   registered only once the cache exists, so the calls glibc makes from
//!   `pthread_create`, thread exit and `exit` find a usable allocator at
//!   every point. Objects may be freed by any thread.
//! - Start-up: the heap initialises itself on the first call, which may
//!   come from the dynamic loader or libc before `main`.
//!
//! `RT_MALLOC_STATS=1` prints one line of heap statistics to standard
//! error when the process exits normally (`rt-malloc: pid=… mallocs=…`),
//! `RT_MALLOC_STATS=/path` appends it to that file: the proof that a
//! program really ran on this allocator.

use core::ffi::c_void;
use core::fmt::Write as _;
use core::ptr;
use libc::{c_int, size_t};
use rt_heap::sizeclasses::{MAX_SMALL_SIZE, PAGE_SIZE};

/// Rust code inside the library allocates from the same heap, directly.
#[global_allocator]
static GLOBAL: rt_heap::RtHeap = rt_heap::RtHeap;

/// Alignment of every `malloc` result (glibc's `MALLOC_ALIGNMENT` on x86-64).
const MIN_ALIGN: usize = 16;

fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// `size` bytes at `align` (a power of two, at least [`MIN_ALIGN`]); null
/// with `errno = ENOMEM` when the heap cannot serve it.
fn alloc(size: usize, align: usize) -> *mut c_void {
    let p = rt_heap::malloc(size, align);
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

/// `size` zeroed bytes at [`MIN_ALIGN`], or null with `ENOMEM`.
fn alloc_zeroed(size: usize) -> *mut c_void {
    let Ok(layout) = core::alloc::Layout::from_size_align(size, MIN_ALIGN) else {
        set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    // SAFETY: the layout is valid; a zero size is served as one byte by
    // rt-heap (alloc_zeroed has no other precondition there).
    let p = unsafe { core::alloc::GlobalAlloc::alloc_zeroed(&GLOBAL, layout) };
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

/// The class (0: large) and usable size of `p`, or a fatal error naming
/// `what` when the heap did not hand `p` out.
///
/// # Safety
/// `p` is non-null and, if it is a heap object, live during the call.
unsafe fn object(p: *const c_void, what: &str) -> (usize, usize) {
    // SAFETY: forwarded caller contract.
    match unsafe { rt_heap::object_of(p.cast()) } {
        Some(o) => o,
        None => rt_sys::fatal!("{what} of invalid pointer {p:p}"),
    }
}

/// C `malloc`.
#[no_mangle]
pub extern "C" fn malloc(size: size_t) -> *mut c_void {
    alloc(size, MIN_ALIGN)
}

/// C `free`.
///
/// # Safety
/// `p` is null or a live pointer from this allocator, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: forwarded caller contract.
    unsafe { rt_heap::free_unsized(p.cast()) }
}

/// C `calloc`: `n * size` zeroed bytes; null with `ENOMEM` when the product
/// overflows.
#[no_mangle]
pub extern "C" fn calloc(n: size_t, size: size_t) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) => alloc_zeroed(total),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// C `realloc` with glibc's edge cases: a null `p` allocates, a zero
/// `size` frees `p` and returns null. A shrink or growth that keeps the
/// object's size class (or, for a large object, keeps it above the small
/// sizes and at least half full) returns `p` itself. On failure `p` is
/// untouched and the result is null with `ENOMEM`.
///
/// # Safety
/// `p` is null or a live pointer from this allocator; on success it must
/// not be used again unless returned.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: size_t) -> *mut c_void {
    if p.is_null() {
        return malloc(size);
    }
    if size == 0 {
        // SAFETY: forwarded caller contract.
        unsafe { free(p) };
        return ptr::null_mut();
    }
    // SAFETY: p is live (caller).
    let (class, usable) = unsafe { object(p, "realloc") };
    if size <= usable {
        let keep = if class != 0 {
            rt_heap::size_class(size, MIN_ALIGN) == class
        } else {
            size > MAX_SMALL_SIZE && size.div_ceil(PAGE_SIZE) * 2 >= usable / PAGE_SIZE
        };
        if keep {
            return p;
        }
    }
    let q = alloc(size, MIN_ALIGN);
    if q.is_null() {
        return q;
    }
    // SAFETY: p holds `usable` bytes, q at least `size`; both are live and
    // distinct; p is dead after the copy (caller).
    unsafe {
        ptr::copy_nonoverlapping(p.cast::<u8>(), q.cast::<u8>(), usable.min(size));
        rt_heap::free_unsized(p.cast());
    }
    q
}

/// C `reallocarray`: `realloc(p, n * size)`, null with `ENOMEM` (and `p`
/// untouched) when the product overflows.
///
/// # Safety
/// As [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: size_t, size: size_t) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: forwarded caller contract.
        Some(total) => unsafe { realloc(p, total) },
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// C `posix_memalign`: `EINVAL` unless `align` is a power of two and a
/// multiple of `sizeof(void *)`, `ENOMEM` when out of memory (`*out`
/// untouched on either), else 0 with the object in `*out`. `errno` is
/// left alone.
///
/// # Safety
/// `out` is valid for a pointer-sized write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    align: size_t,
    size: size_t,
) -> c_int {
    // A power of two is a multiple of sizeof(void *) when it is not below it.
    if !align.is_power_of_two() || align < core::mem::size_of::<*mut c_void>() {
        return libc::EINVAL;
    }
    let p = rt_heap::malloc(size, align.max(MIN_ALIGN));
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: out is writable (caller).
    unsafe { *out = p.cast() };
    0
}

/// C11 `aligned_alloc`: null with `EINVAL` unless `align` is a power of
/// two (glibc ≥ 2.38 rules; any size is accepted).
#[no_mangle]
pub extern "C" fn aligned_alloc(align: size_t, size: size_t) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    alloc(size, align.max(MIN_ALIGN))
}

/// Obsolete `memalign`: like glibc, an alignment that is not a power of
/// two is rounded up to one (`EINVAL` when there is none).
#[no_mangle]
pub extern "C" fn memalign(align: size_t, size: size_t) -> *mut c_void {
    match align.checked_next_power_of_two() {
        Some(a) => alloc(size, a.max(MIN_ALIGN)),
        None => {
            set_errno(libc::EINVAL);
            ptr::null_mut()
        }
    }
}

/// The kernel's page size (4 KiB when it cannot be read).
fn os_page() -> usize {
    match rt_heap::sys::phys_page_size() {
        0 => 4096,
        p => p,
    }
}

/// Obsolete `valloc`: page-aligned.
#[no_mangle]
pub extern "C" fn valloc(size: size_t) -> *mut c_void {
    alloc(size, os_page())
}

/// Obsolete `pvalloc`: page-aligned, size rounded up to whole pages (one
/// page for 0).
#[no_mangle]
pub extern "C" fn pvalloc(size: size_t) -> *mut c_void {
    let page = os_page();
    match size.max(1).checked_next_multiple_of(page) {
        Some(s) => alloc(s, page),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// `malloc_usable_size`: the bytes usable at `p` (its size class, or its
/// large span); 0 for null.
///
/// # Safety
/// `p` is null or a live pointer from this allocator.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> size_t {
    if p.is_null() {
        return 0;
    }
    // SAFETY: p is live (caller).
    unsafe { object(p, "malloc_usable_size") }.1
}

/// Writes the statistics line (see the crate docs): to standard error for
/// `RT_MALLOC_STATS=1`, appended to the file for `RT_MALLOC_STATS=/path`
/// (for programs that close standard error before they exit, as
/// coreutils do). Runs from `.fini_array`, at normal process exit.
extern "C" fn report_stats() {
    // SAFETY: the name is NUL-terminated; the result is only read here.
    let v = unsafe { libc::getenv(c"RT_MALLOC_STATS".as_ptr()) };
    if v.is_null() {
        return;
    }
    // SAFETY: a non-null getenv result is a NUL-terminated string, so its
    // first byte is readable.
    let first = unsafe { *v } as u8;
    let fd = match first {
        b'1' => 2,
        // SAFETY: v is a NUL-terminated path; open has no other precondition.
        b'/' => unsafe {
            libc::open(
                v,
                libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
                0o644,
            )
        },
        _ => return,
    };
    if fd < 0 {
        return;
    }
    let s = rt_heap::memstats();
    let mut b = rt_sys::StackBuf::<256>::new();
    let _ = writeln!(
        b,
        "rt-malloc: pid={} mallocs={} frees={} heap_alloc={} heap_sys={} caches={}",
        // SAFETY: getpid has no preconditions.
        unsafe { libc::getpid() },
        s.mallocs,
        s.frees,
        s.heap_alloc,
        s.heap_sys,
        s.ncaches
    );
    // One write, so lines of concurrently exiting processes stay whole.
    b.flush_to(fd);
    if fd != 2 {
        // SAFETY: fd was opened above and is closed once.
        unsafe { libc::close(fd) };
    }
}

#[used]
#[link_section = ".fini_array"]
static REPORT_STATS: extern "C" fn() = report_stats;
