//! rt-stack: goroutine stacks (Go: `runtime/stack.go`), fixed-size and guard-paged.
//!
//! Go grows a goroutine's stack by copying it. Rust code keeps pointers into its stack, so
//! here a stack never moves: it is a fixed range of virtual memory, committed lazily (only
//! the pages a goroutine touches cost memory), with an inaccessible guard page directly below
//! it so an overflow faults instead of corrupting a neighbour. The pool keeps Go's shape:
//!
//!   - pooled orders (Go: `stackpool[_NumStackOrders]`): 16, 32, 64, 128 and 256 KiB,
//!     one global free list per order under its own lock;
//!   - large stacks (Go: `stackLarge.free[log2 npages]`): powers of two from 512 KiB to
//!     [`MAX_STACK_SIZE`], one free list per log2(pages);
//!   - a per-P [`StackCache`] (Go: `mcache.stackcache`) of the pooled orders, lock-free
//!     because only the P's holder touches it, refilled to half when empty and released to
//!     half when full (capacities in [`cache_capacity`]);
//!   - with no P (`cache = None`) allocation and free go straight to the global lists.
//!
//! Layout. Stacks are carved from large reservations (chunks of 64 MiB, doubling per size
//! class up to 64 GiB; MAP_NORESERVE, so untouched address space costs nothing). A chunk
//! serves one size class and is cut into slots:
//!
//! ```text
//!   chunk.base                                                      chunk.base + len
//!   | guard | stack 0 body  | guard | stack 1 body  | guard | ...          unused |
//!           ^lo0            ^hi0    ^lo1            ^hi1
//!   a Stack is [lo, hi); its guard is [lo - GUARD_SIZE, lo)
//! ```
//!
//! `lo` and `hi` are page-aligned; `hi - lo` is the size class (a power of two ≥ the request).
//! Natural alignment of `lo` (Go's pooled stacks are aligned to their size) is not kept: with
//! a guard page under every stack it would cost either a second slot of address space per
//! stack or a page of the stack itself, and nothing here derives a stack from an address by
//! masking (the chunk table does it).
//!
//! Guard pages. `madvise(MADV_GUARD_INSTALL)` (Linux ≥ 6.13) marks a guard in the page
//! tables without splitting the mapping, so 100,000 stacks stay one VMA per chunk. Older
//! kernels (EINVAL) and [`GuardPolicy::Mprotect`] use `mprotect(PROT_NONE)`, where every
//! guard splits the mapping; the pool then counts the VMAs it creates against
//! `vm.max_map_count` (minus a margin for the rest of the process) and fails with
//! [`StackError::MapCountLimit`] before the kernel would.
//!
//! Cost per stack: the pages it touched, plus its share of page tables: the guard marker
//! needs the page-table page covering it, one per 2 MiB, shared by the ~8 default stacks
//! there (≈0.5 KiB per stack; 1,000,000 default stacks each touching one page measure about
//! 3.9 GiB RSS and 0.5 GiB of page tables). The page tables stay while the guards do.
//!
//! Memory back to the OS: never on the hot path. [`scavenge`], run periodically, releases
//! with MADV_DONTNEED (guards survive it) the bodies of free pooled stacks beyond
//! [`GLOBAL_WARM_BYTES`] per class that stayed unused for a whole period;
//! [`release_pool_memory`] releases all free pooled stacks at once. Stacks in per-P caches
//! are kept.
//!
//! Overflow reports: [`guard_fault`] maps a faulting address to the stack whose guard it hit
//! using atomic loads only, so the SIGSEGV handler can call it.
//!
//! Files: `pool.rs` (chunks, free lists, lookup), `cache.rs` (per-P cache), `os.rs` (every
//! system call).

use core::fmt;
use std::sync::OnceLock;

mod cache;
mod os;
pub mod phase;
mod pool;

pub use cache::{cache_capacity, StackCache, MIN_CACHED, STACK_CACHE_SIZE};
use pool::Pool;
pub use pool::GLOBAL_WARM_BYTES;

/// The page size the layout is built on (x86-64 Linux); `stackinit` checks the kernel agrees.
pub const PAGE_SIZE: usize = 4096;

/// Bytes of guard below each stack: one page.
pub const GUARD_SIZE: usize = PAGE_SIZE;

/// The number of pooled orders (Go: `_NumStackOrders`, 4 there for 2–16 KiB).
pub const NUM_ORDERS: usize = 5;

/// The smallest stack: order 0. Go starts goroutines at 2 KiB and grows them; Rust code cannot
/// grow, and a single `println!` through std's formatting machinery already needs a few KiB.
pub const MIN_STACK_SIZE: usize = 16 << 10;

/// The largest stack `stackalloc` hands out: 1 GiB, Go's `maxstacksize` (1 GB) rounded to a
/// power of two.
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// The default goroutine stack: 256 KiB of address space, of which only touched pages are
/// committed (a goroutine that runs a small closure costs one or two pages).
///
/// Why 256 KiB: a goroutine runs ordinary Rust, not Go's split-stack code, and cannot grow.
/// std's formatting (`println!` with a few arguments) takes a few KiB; a panic that unwinds
/// and prints a backtrace (`RUST_BACKTRACE=1` symbolises with gimli) takes far more: on the
/// development machine (Rust 1.95, glibc 2.36) a thread doing `println!` then a caught panic
/// with `RUST_BACKTRACE=1` aborts with a 24 KiB stack and completes with 32 KiB. 256 KiB is
/// eight times that floor, leaving room for user frames (buffers of a few KiB, recursion a
/// few hundred deep). std threads default to 2 MiB; 256 KiB keeps 1,000,000 goroutines in
/// about 260 GB of address space (47 bits give 128 TiB). Programs needing more configure
/// [`StackConfig::default_size`] or ask `stackalloc` for a larger stack.
pub const DEFAULT_STACK_SIZE: usize = 256 << 10;

/// Size classes: the pooled orders then the large classes. Class `c` holds stacks of
/// `16 KiB << c`; classes 5.. are the large stacks of 2^(c+2) pages.
pub(crate) const NUM_CLASSES: usize = 17;

/// The stack size of pooled order `order` (16 KiB << order); 0 for `order >= NUM_ORDERS`.
pub const fn order_size(order: usize) -> usize {
    if order < NUM_ORDERS {
        MIN_STACK_SIZE << order
    } else {
        0
    }
}

pub(crate) const fn class_size(class: usize) -> usize {
    MIN_STACK_SIZE << class
}

/// The size class serving a request of `size` bytes: the smallest class at least as large.
pub(crate) fn class_of(size: usize) -> Result<usize, StackError> {
    if size == 0 {
        return Err(StackError::InvalidSize(size));
    }
    if size > MAX_STACK_SIZE {
        return Err(StackError::TooLarge(size));
    }
    let rounded = size.max(MIN_STACK_SIZE).next_power_of_two();
    Ok((rounded / MIN_STACK_SIZE).trailing_zeros() as usize)
}

/// How guard pages are installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GuardPolicy {
    /// `MADV_GUARD_INSTALL` when the kernel has it (no VMA per guard), else `mprotect`.
    #[default]
    Auto,
    /// Always `mprotect(PROT_NONE)`: one VMA split per guard, counted against
    /// `vm.max_map_count`.
    Mprotect,
}

/// The mechanism in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardMechanism {
    /// `madvise(MADV_GUARD_INSTALL)`.
    MadviseGuardInstall,
    /// `mprotect(PROT_NONE)`.
    Mprotect,
}

impl fmt::Display for GuardMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GuardMechanism::MadviseGuardInstall => "madvise(MADV_GUARD_INSTALL)",
            GuardMechanism::Mprotect => "mprotect(PROT_NONE)",
        })
    }
}

/// Boot-time configuration of the stack pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackConfig {
    /// Size of the stacks [`default_stack_size`] reports; rounded up to its size class.
    pub default_size: usize,
    /// How guard pages are installed.
    pub guard: GuardPolicy,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            default_size: DEFAULT_STACK_SIZE,
            guard: GuardPolicy::Auto,
        }
    }
}

/// What `stackinit` set up, for the boot trace (its `Display` is one line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackInfo {
    /// The guard mechanism in use.
    pub guard: GuardMechanism,
    /// Under [`GuardPolicy::Auto`], the errno with which the kernel refused
    /// MADV_GUARD_INSTALL (EINVAL before 6.13), when it did.
    pub guard_fallback_errno: Option<i32>,
    /// The default stack size (after rounding to its class).
    pub default_size: usize,
    /// The pooled orders' stack sizes.
    pub orders: [usize; NUM_ORDERS],
    /// Stacks a per-P cache holds per order when full.
    pub cache_capacity: [usize; NUM_ORDERS],
    /// The largest stack handed out.
    pub max_stack_size: usize,
    /// VMAs the pool may create (chunks; plus two per guard on the mprotect path).
    pub vma_budget: usize,
}

impl fmt::Display for StackInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stackinit: guard={}", self.guard)?;
        if let Some(e) = self.guard_fallback_errno {
            write!(f, " (MADV_GUARD_INSTALL refused, errno {e})")?;
        }
        write!(f, " default={}KiB orders=", self.default_size >> 10)?;
        for (i, o) in self.orders.iter().enumerate() {
            write!(f, "{}{}K", if i > 0 { "," } else { "" }, o >> 10)?;
        }
        write!(f, " cache=")?;
        for (i, c) in self.cache_capacity.iter().enumerate() {
            write!(f, "{}{}", if i > 0 { "," } else { "" }, c)?;
        }
        write!(
            f,
            " large=512K..{}M vma_budget={}",
            self.max_stack_size >> 20,
            self.vma_budget
        )
    }
}

/// A stack's usable range `[lo, hi)`; its guard page is `[lo - GUARD_SIZE, lo)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stack {
    /// Lowest usable address (page-aligned).
    pub lo: usize,
    /// One past the highest usable address (page-aligned); the initial stack pointer.
    pub hi: usize,
}

impl Stack {
    /// Usable bytes.
    pub fn size(&self) -> usize {
        self.hi - self.lo
    }
}

/// Counters of the global pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackStats {
    /// Stacks handed out and not yet freed.
    pub live: usize,
    /// Free stacks in the global lists.
    pub pooled: usize,
    /// Of `pooled`, those whose bodies went back to the OS.
    pub pooled_released: usize,
    /// Free stacks sitting in per-P caches.
    pub cached: usize,
    /// Slots ever carved (`live + pooled + cached`).
    pub carved: usize,
    /// Address space reserved for stacks.
    pub bytes_reserved: usize,
    /// Reservations made.
    pub chunks: usize,
    /// The guard mechanism in use.
    pub guard: GuardMechanism,
    /// VMAs created, counted as an upper bound: one for the pool's registry, one per chunk,
    /// two per guard on the mprotect path.
    pub vmas_created: usize,
    /// The most VMAs the pool may create.
    pub vma_budget: usize,
}

/// Errors of `stackinit` and `stackalloc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackError {
    /// A stack size of 0 (or a default size of 0).
    InvalidSize(usize),
    /// A stack size above [`MAX_STACK_SIZE`].
    TooLarge(usize),
    /// Creating more VMAs (guards on the mprotect path, or chunks) would pass the budget
    /// derived from `vm.max_map_count`.
    MapCountLimit {
        /// VMAs created so far.
        created: usize,
        /// The budget.
        limit: usize,
    },
    /// `mmap` of a reservation failed with this errno.
    Mmap(i32),
    /// `madvise(MADV_GUARD_INSTALL)` failed with this errno.
    Madvise(i32),
    /// `mprotect` of a guard failed with this errno.
    Mprotect(i32),
    /// No address space left for another chunk (47-bit user space or the chunk table).
    AddressSpace,
    /// The kernel's page size is not the 4 KiB the layout assumes.
    UnsupportedPageSize(usize),
    /// `stackinit` ran after the pool was already set up (explicitly or lazily).
    AlreadyInitialized,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StackError::InvalidSize(n) => write!(f, "invalid stack size {n}"),
            StackError::TooLarge(n) => {
                write!(f, "stack size {n} exceeds the {MAX_STACK_SIZE}-byte limit")
            }
            StackError::MapCountLimit { created, limit } => write!(
                f,
                "out of memory mappings: stack guard pages would pass vm.max_map_count \
                 ({created} of {limit} mappings allowed for stacks already used)"
            ),
            StackError::Mmap(e) => write!(f, "cannot reserve stack memory: mmap errno {e}"),
            StackError::Madvise(e) => {
                write!(f, "cannot install stack guard page: madvise errno {e}")
            }
            StackError::Mprotect(e) => {
                write!(f, "cannot install stack guard page: mprotect errno {e}")
            }
            StackError::AddressSpace => f.write_str("out of address space for stacks"),
            StackError::UnsupportedPageSize(n) => {
                write!(f, "unsupported page size {n} (stacks need 4096)")
            }
            StackError::AlreadyInitialized => f.write_str("stackinit called twice"),
        }
    }
}

impl std::error::Error for StackError {}

/// The global pool (set by `stackinit`, or lazily with the default configuration).
static GLOBAL: OnceLock<Pool> = OnceLock::new();

fn global() -> &'static Pool {
    if let Some(p) = GLOBAL.get() {
        return p;
    }
    GLOBAL.get_or_init(|| match Pool::new(&StackConfig::default()) {
        Ok(p) => p,
        Err(e) => rt_sys::fatal!("stackinit: {}", e),
    })
}

/// Go: `stackinit`. Sets up the global pool with `cfg`; call once, before any stack is
/// allocated (a second call, or a call after the pool was set up lazily by the first
/// `stackalloc`, returns [`StackError::AlreadyInitialized`]). Maps the pool's registry
/// (address space, committed as used) and probes MADV_GUARD_INSTALL on a two-page mapping;
/// it allocates nothing from the heap, so it may run before `mallocinit` as in Go.
pub fn stackinit(cfg: StackConfig) -> Result<StackInfo, StackError> {
    if GLOBAL.get().is_some() {
        return Err(StackError::AlreadyInitialized);
    }
    let pool = Pool::new(&cfg)?;
    let info = pool.info();
    GLOBAL
        .set(pool)
        .map_err(|_| StackError::AlreadyInitialized)?;
    Ok(info)
}

/// What the global pool runs with (initialising it with the defaults if needed).
pub fn stack_info() -> StackInfo {
    global().info()
}

/// Go: `stackalloc`. A stack of at least `size` bytes (rounded up to its size class) with a
/// guard page below it. Pooled sizes (≤ 256 KiB) come from `cache` when given, else from the
/// global pool; large sizes always from the global pool.
pub fn stackalloc(cache: Option<&mut StackCache>, size: usize) -> Result<Stack, StackError> {
    global().alloc(cache, size)
}

/// Go: `stackfree`. Returns a stack from [`stackalloc`] to `cache` (pooled sizes) or to the
/// global pool. Freeing anything else, or freeing twice, is a fatal error (`fatal error:
/// stackfree: …`, exit status 2).
pub fn stackfree(cache: Option<&mut StackCache>, stack: Stack) {
    global().free(cache, stack)
}

/// Go: `stackcache_clear`. The P owning `cache` is going away: every cached stack returns to
/// the global pool.
pub fn stackcache_clear(cache: &mut StackCache) {
    global().cache_clear(cache)
}

/// The configured default stack size (after `stackinit`, or the default one).
pub fn default_stack_size() -> usize {
    global().default_size()
}

/// If `addr` lies in the guard page of a stack currently handed out by [`stackalloc`], that
/// stack's bounds. Async-signal-safe: no lock, no allocation (atomic loads only); returns
/// `None` before the pool exists.
///
/// An overflow's first fault lands in the guard page even for frames larger than a page:
/// rustc probes every page of a large frame in order (stack probes on x86-64), so the SIGSEGV
/// handler can pass `si_addr` here and report `fatal error: stack overflow`.
pub fn guard_fault(addr: usize) -> Option<Stack> {
    GLOBAL.get()?.guard_fault(addr)
}

/// Counters of the global pool.
pub fn stats() -> StackStats {
    global().stats()
}

/// Releases the memory of every free stack in the global pool to the OS (MADV_DONTNEED on
/// the bodies; guards stay). Returns the bytes released. For tests, or a program that
/// wants its memory back now; [`scavenge`] is the gradual policy.
pub fn release_pool_memory() -> usize {
    global().release_pooled()
}

/// The stack pool's retention policy, one step: releases to the OS the free stacks beyond
/// [`GLOBAL_WARM_BYTES`] per class that went unused since the previous call. Meant to run
/// periodically (the runtime's sysmon calls it about every 100 ms); returns the bytes
/// released. Does nothing before the pool exists.
pub fn scavenge() -> usize {
    match GLOBAL.get() {
        Some(p) => p.scavenge(),
        None => 0,
    }
}

/// The number of lines in `/proc/self/maps`, i.e. the process's VMA count (0 if unreadable).
pub fn vma_count() -> usize {
    os::vma_count()
}

#[cfg(test)]
mod tests;
