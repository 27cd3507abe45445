//! The stack pool: chunks of address space, the per-class free lists, and the lock-free
//! address → stack lookup the signal handler uses.
//!
//! Actors: any thread allocating or freeing a stack (through a per-P [`StackCache`] or
//! directly, Go's "no P" path), and a signal handler asking [`Pool::guard_fault`] whether a
//! faulting address is a stack's guard page.
//!
//! Data structures:
//!   - `Chunk`: one reservation, dedicated to a single size class, cut into slots of
//!     `stride = GUARD_SIZE + size` bytes. Slot `i` is `[guard | body]`: the guard page at
//!     `base + i*stride`, the usable stack `[lo, hi)` right above it. Slots are carved in
//!     address order by a bump index (`carved`) and never given back to the chunk; each has a
//!     `live` flag (handed out to a caller). The chunk's descriptor and its live flags sit in
//!     the last pages of the reservation itself (zero-filled, committed as touched), so a
//!     chunk costs no heap memory and no extra mapping. A chunk is never unmapped while its
//!     pool lives, so the signal handler can read it at any time.
//!
//!     ```text
//!     base                                                               base + len
//!     | guard | body 0 | guard | body 1 | ... | (uncarved) | live flags | Chunk |
//!     ```
//!   - the registry, one mapping made when the pool is created: `table`, one 16-bit entry
//!     per 64 MiB granule of user address space (2^21 entries, 4 MiB, for 47-bit addresses)
//!     holding the id of the chunk covering it, and `chunks`, the descriptors by id. Chunks
//!     are granule-aligned and a whole number of granules long, so `table[addr >> 26]` finds
//!     the chunk of any address in one load. Being a mapping rather than a heap object, it
//!     lets `stackinit` run before `mallocinit` (Go's order) without touching the heap. Its
//!     last page answers, at creation, whether the kernel has `MADV_GUARD_INSTALL` (the probe
//!     leaves a guard there; nothing reads that page), so the probe costs no mapping of its
//!     own.
//!   - `ClassPool` (one per size class, under its own mutex, Go's `stackpool[order]` and
//!     `stackLarge.free[log2 pages]`): `warm`, free stacks whose pages may still be
//!     committed; `cold`, free stacks whose bodies went back to the OS; the chunk being
//!     carved and the size of the next chunk to reserve.
//!
//! Hot path (alloc with a cache): pop from the cache, set the live flag. Cache
//! empty: one lock of the class, take `capacity/2` stacks (warm first, then cold, then carve
//! new slots), unlock. Free mirrors it: clear the live flag, push; a full cache first gives
//! half back under one lock. No counter shared between Ps is touched on this path:
//! [`Pool::stats`] counts live stacks from the live flags and derives the cached ones
//! (`carved − pooled − live`).
//!
//! Memory going back to the OS follows a retention policy, never the hot path (Go frees
//! stack spans only when the collector finishes a cycle): a freed stack joins `warm` with
//! its pages. [`Pool::scavenge`], run periodically (sysmon's tick), releases (MADV_DONTNEED,
//! to `cold`) the warm stacks beyond [`GLOBAL_WARM_BYTES`] per class that stayed unused for a
//! whole period: the part of the list below its low-water mark since the last run, oldest
//! first. [`Pool::release_pooled`] releases every warm stack at once. Cached stacks (per P)
//! are never released: they are about to be reused. (Releasing each stack freed past the
//! warm budget at once cost a `madvise` per goroutine exit in bursts of spawns, under the
//! class lock, where the next refill waited for it: 55,000 calls for a 1,000,000-goroutine
//! tree, which the other P then queued behind.)
//!
//! Lock order: a class mutex, then the reserve mutex (chunk creation). The signal path takes
//! neither.

use core::mem::size_of;
use core::sync::atomic::{AtomicPtr, AtomicU16, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::cache::{cache_capacity, StackCache};
use crate::{
    class_of, class_size, os, GuardMechanism, GuardPolicy, Stack, StackConfig, StackError,
    StackInfo, StackStats, GUARD_SIZE, MAX_STACK_SIZE, NUM_CLASSES, NUM_ORDERS, PAGE_SIZE,
};

/// Chunks are aligned to, and a multiple of, this many bytes (64 MiB, Go's heap arena size);
/// the lookup table has one entry per such granule.
///
/// Why not bigger: a process starts with two classes in use (the 32 KiB signal stacks and the
/// default goroutine stacks), and each class reserves at least one granule, plus one more
/// for a moment to align it. With 1 GiB granules that was 2 GiB held and 2 GiB more in
/// passing, so under `ulimit -v 1000000` (≈ 976 MiB, where Go's hello runs) the first chunk
/// could not be reserved. 64 MiB still holds 252 default stacks or 1,927 signal stacks.
pub(crate) const CHUNK_ALIGN: usize = 64 << 20;
/// log2 of [`CHUNK_ALIGN`].
const CHUNK_SHIFT: u32 = CHUNK_ALIGN.trailing_zeros();
/// The first chunk of a class; each further chunk of the class doubles, up to
/// [`CHUNK_MAX`]. Growing geometrically keeps the VMA count logarithmic in the number of
/// stacks: 1,000,000 default stacks (≈260 GB of address space) take fourteen chunks
/// (64 MiB, 128 MiB, …, 32 GiB, then 64 GiB ones).
pub(crate) const CHUNK_MIN: usize = CHUNK_ALIGN;
/// The largest chunk reserved in one mmap (address space only: MAP_NORESERVE, untouched).
pub(crate) const CHUNK_MAX: usize = 64 << 30;
/// User address bits on x86-64 with 4-level paging; mappings above are refused.
const ADDR_BITS: u32 = 47;
const TABLE_LEN: usize = 1 << (ADDR_BITS - CHUNK_SHIFT);
/// The most chunks a pool can have (at least 4 TiB of stacks; ids fit the 16-bit table).
const MAX_CHUNKS: usize = 4096;
const _: () = assert!(MAX_CHUNKS < u16::MAX as usize);
/// Bytes of free stacks per class the scavenger always leaves committed in the global pool;
/// beyond that, free stacks unused for a whole scavenger period go back to the OS. 4 MiB is
/// 16 default stacks per class: enough to absorb a burst of goroutine exits and starts
/// without a syscall per stack, small next to the memory a burst of 1,000,000 goroutines
/// would otherwise pin.
pub const GLOBAL_WARM_BYTES: usize = 4 << 20;
/// Slots carved per carve: about one span of 1 MiB (Go carves 32 KiB spans into stacks), at
/// least one and at most [`CARVE_MAX_SLOTS`].
pub(crate) const CARVE_BYTES: usize = 1 << 20;
/// Upper bound on slots carved at once. Every carved slot costs a guard-install syscall, so a
/// large batch only moves syscalls forward in time: the boot's single 32 KiB `gsignal` stack
/// would otherwise install 31 guards nobody uses yet (measured with `strace` on `rt-demo`).
/// The lock is taken once per batch, so 8 keeps that cost negligible.
pub(crate) const CARVE_MAX_SLOTS: usize = 8;
/// A class's first carve takes one slot and each further carve doubles, up to the batch
/// above: a class used once (m0's signal stack at boot) installs one guard, not eight, and a
/// class in steady use reaches full batches after four carves.
/// VMAs kept free for the rest of the process (heap, thread stacks, libraries, files) when
/// budgeting against `vm.max_map_count`: an eighth of the limit, at least 4096, at most half.
const MAP_COUNT_MARGIN_MIN: usize = 4096;

/// The descriptor of one reservation, dedicated to one size class. It lives in the last
/// pages of the reservation, followed by one `AtomicU8` live flag per slot.
#[repr(C)]
pub(crate) struct Chunk {
    base: usize,
    len: usize,
    /// Usable bytes per stack (`class_size(class)`).
    size: usize,
    /// `GUARD_SIZE + size`.
    stride: usize,
    class: usize,
    /// Slots that fit below the descriptor.
    slots: usize,
    /// Slots carved so far; their guards are installed. Written under the class lock,
    /// read by the signal path.
    carved: AtomicUsize,
    /// `ceil(2^48 / (stride / PAGE_SIZE))`: turns the division by the stride on the
    /// alloc/free path into a multiply (see [`Chunk::split`]).
    magic: u64,
}

/// Shift of [`Chunk::magic`].
const MAGIC_SHIFT: u32 = 48;

impl Chunk {
    /// Bytes at the end of a chunk of `len` bytes kept for the descriptor and live flags of
    /// slots of `stride` bytes (whole pages), and the number of slots left below them.
    fn layout(len: usize, stride: usize) -> (usize, usize) {
        let meta = |slots: usize| (size_of::<Chunk>() + slots).next_multiple_of(PAGE_SIZE);
        // Metadata for every slot that would fit without it is enough for the fewer that
        // fit with it.
        let m = meta(len / stride);
        (m, len.saturating_sub(m) / stride)
    }

    /// Slot `slot`'s live flag (`slot < slots`).
    fn live(&self, slot: usize) -> &AtomicU8 {
        assert!(slot < self.slots);
        // SAFETY: `Pool::new_chunk` placed `slots` AtomicU8s (zero-filled: not live) right
        // after this descriptor, inside the same mapping, which outlives `self`.
        unsafe { &*(self as *const Chunk).add(1).cast::<AtomicU8>().add(slot) }
    }

    /// The multiplier for [`Chunk::split`] of a chunk with slots of `stride` bytes.
    fn magic(stride: usize) -> u64 {
        (1u64 << MAGIC_SHIFT).div_ceil((stride / PAGE_SIZE) as u64)
    }

    /// `(off / stride, off % stride)` for an offset inside the chunk, without a divide.
    ///
    /// With `n = off / PAGE_SIZE < 2^24` (chunks are at most 64 GiB) and `d = stride /
    /// PAGE_SIZE ≤ 2^18 + 1`, `floor(n * ceil(2^48/d) / 2^48) == floor(n/d)` because the
    /// rounding error `n * (ceil(2^48/d)·d − 2^48) < n·d < 2^43` stays below `2^48`. The
    /// remainder's page part follows, and the byte part is `off % PAGE_SIZE` (the stride is
    /// whole pages). A unit test checks it against `/` and `%` for every class.
    #[inline]
    fn split(&self, off: usize) -> (usize, usize) {
        let n = (off / PAGE_SIZE) as u64;
        let slot = ((n as u128 * self.magic as u128) >> MAGIC_SHIFT) as usize;
        (slot, off - slot * self.stride)
    }

    fn slot_lo(&self, slot: usize) -> usize {
        self.base + slot * self.stride + GUARD_SIZE
    }

    /// Marks a slot handed out; false if it already was. The caller owns the slot (it came
    /// off a free list), so a plain load and store suffice: no locked instruction on the
    /// alloc path.
    fn set_live(&self, slot: usize) -> bool {
        let f = self.live(slot);
        if f.load(Ordering::Relaxed) != 0 {
            return false;
        }
        f.store(1, Ordering::Relaxed);
        true
    }

    /// Marks a slot free; false if it was not handed out (a double or bogus free). Detection
    /// is exact unless two threads free the same stack at the same instant (already a bug in
    /// the caller); a flag per slot, not a shared bitmap word, keeps neighbours independent.
    fn clear_live(&self, slot: usize) -> bool {
        let f = self.live(slot);
        if f.load(Ordering::Relaxed) == 0 {
            return false;
        }
        f.store(0, Ordering::Relaxed);
        true
    }

    fn is_live(&self, slot: usize) -> bool {
        self.live(slot).load(Ordering::Relaxed) != 0
    }

    /// Stacks of this chunk currently handed out.
    fn live_count(&self) -> usize {
        let carved = self.carved.load(Ordering::Acquire);
        (0..carved).filter(|&i| self.is_live(i)).count()
    }
}

/// The global free lists of one size class.
struct ClassPool {
    /// Free stacks (their `lo`) whose pages may be committed, most recently freed last.
    warm: Vec<usize>,
    /// Free stacks whose bodies were released to the OS.
    cold: Vec<usize>,
    /// Id of the chunk being carved, if any.
    chunk: Option<usize>,
    /// Length of the next chunk to reserve.
    next_chunk_len: usize,
    /// Slots the next carve may take (doubling up to the class's batch).
    next_carve: usize,
    /// The shortest `warm` has been since the last [`Pool::scavenge`]: the stacks below it
    /// were not used for that whole period.
    low_water: usize,
}

/// A class pool on its own cache lines (Go pads `stackpool` entries the same way), so Ps
/// refilling different orders do not contend on one line.
#[repr(align(128))]
struct Padded(Mutex<ClassPool>);

/// Where a stack lives: its chunk and slot.
struct Slot<'a> {
    chunk: &'a Chunk,
    slot: usize,
}

/// A stack pool. The crate's API runs on one global pool; tests build private ones to try
/// several configurations in one process.
pub(crate) struct Pool {
    guard: GuardMechanism,
    fallback_errno: Option<i32>,
    default_size: usize,
    classes: [Padded; NUM_CLASSES],
    /// Serialises chunk creation (ids, table entries).
    reserve: Mutex<()>,
    /// The registry mapping: `TABLE_LEN` `AtomicU16` (granule → chunk id + 1, 0: not
    /// ours), then `MAX_CHUNKS` `AtomicPtr<Chunk>` (id → descriptor), then the probe page.
    registry: usize,
    nchunks: AtomicUsize,
    /// VMAs this pool may create (chunks, and guards on the mprotect path).
    vma_budget: usize,
    vmas_created: AtomicUsize,
    /// Stacks in the global lists (changed under class locks).
    pooled: AtomicUsize,
    /// Of `pooled`, those with released bodies.
    released: AtomicUsize,
    /// Slots carved over all chunks.
    carved: AtomicUsize,
    reserved_bytes: AtomicUsize,
}

/// Offset of the registry's last page, where `MADV_GUARD_INSTALL` is probed.
const PROBE_PAGE: usize = (TABLE_LEN * size_of::<AtomicU16>()
    + MAX_CHUNKS * size_of::<AtomicPtr<Chunk>>())
.next_multiple_of(PAGE_SIZE);
const REGISTRY_BYTES: usize = PROBE_PAGE + PAGE_SIZE;

// SAFETY: the registry and chunk descriptors are reached only through atomics (and through
// fields written once before publication with Release), and the free lists sit behind
// mutexes; nothing in a pool is tied to the thread that made it.
unsafe impl Send for Pool {}
// SAFETY: as above: all shared mutation goes through atomics or mutexes.
unsafe impl Sync for Pool {}

/// VMAs left to the rest of the process under a `vm.max_map_count` of
/// `max`: an eighth, at least [`MAP_COUNT_MARGIN_MIN`], but at most half, so
/// that a small limit still leaves the pool room (Go itself never looks at
/// the setting).
pub(crate) fn vma_margin(max: usize) -> usize {
    (max / 8).max(MAP_COUNT_MARGIN_MIN).min(max / 2)
}

/// The guard mechanism `cfg` asks for: `MADV_GUARD_INSTALL` when the kernel
/// has it (probed on `probe`, an unused page of one of this crate's
/// reservations, which stays a guard page) unless `mprotect` is forced; with
/// the probe's errno when it fell back.
fn choose_guard(cfg: &StackConfig, probe: usize) -> (GuardMechanism, Option<i32>) {
    match cfg.guard {
        GuardPolicy::Mprotect => (GuardMechanism::Mprotect, None),
        GuardPolicy::Auto => match os::guard_install(probe, PAGE_SIZE) {
            Ok(()) => (GuardMechanism::MadviseGuardInstall, None),
            Err(e) => (GuardMechanism::Mprotect, Some(e)),
        },
    }
}

impl Pool {
    /// A pool for `cfg`, budgeting VMAs against `vm.max_map_count`.
    ///
    /// The VMAs the process already has are counted (a read of
    /// `/proc/self/maps`, ~40 µs at start-up) only for `mprotect` guards,
    /// which cost two VMAs per stack. With `MADV_GUARD_INSTALL` the pool
    /// makes one VMA per chunk, and the margin left for the rest of the
    /// process (an eighth of the limit, at least 4096) dwarfs what exists
    /// at start-up.
    pub(crate) fn new(cfg: &StackConfig) -> Result<Pool, StackError> {
        Self::build(cfg, None)
    }

    /// A pool allowed to create at most `budget` VMAs.
    #[cfg(test)]
    pub(crate) fn with_vma_budget(cfg: &StackConfig, budget: usize) -> Result<Pool, StackError> {
        Self::build(cfg, Some(budget))
    }

    fn build(cfg: &StackConfig, budget: Option<usize>) -> Result<Pool, StackError> {
        let page = os::page_size();
        if page != PAGE_SIZE {
            return Err(StackError::UnsupportedPageSize(page));
        }
        let default_class = class_of(cfg.default_size)?;
        let registry = os::reserve_aligned(REGISTRY_BYTES, PAGE_SIZE).map_err(StackError::Mmap)?;
        let (guard, fallback_errno) = choose_guard(cfg, registry + PROBE_PAGE);
        let budget = budget.unwrap_or_else(|| {
            let max = os::max_map_count();
            let existing = match guard {
                // Less the registry, which `vmas_created` already counts.
                GuardMechanism::Mprotect => os::vma_count().saturating_sub(1),
                GuardMechanism::MadviseGuardInstall => 0,
            };
            max.saturating_sub(vma_margin(max)).saturating_sub(existing)
        });
        Ok(Pool {
            guard,
            fallback_errno,
            default_size: class_size(default_class),
            classes: core::array::from_fn(|_| {
                Padded(Mutex::new(ClassPool {
                    warm: Vec::new(),
                    cold: Vec::new(),
                    chunk: None,
                    next_chunk_len: CHUNK_MIN,
                    next_carve: 1,
                    low_water: 0,
                }))
            }),
            reserve: Mutex::new(()),
            registry,
            nchunks: AtomicUsize::new(0),
            vma_budget: budget,
            vmas_created: AtomicUsize::new(1),
            pooled: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
            carved: AtomicUsize::new(0),
            reserved_bytes: AtomicUsize::new(0),
        })
    }

    pub(crate) fn info(&self) -> StackInfo {
        StackInfo {
            guard: self.guard,
            guard_fallback_errno: self.fallback_errno,
            default_size: self.default_size,
            orders: core::array::from_fn(crate::order_size),
            cache_capacity: core::array::from_fn(cache_capacity),
            max_stack_size: MAX_STACK_SIZE,
            vma_budget: self.vma_budget,
        }
    }

    pub(crate) fn default_size(&self) -> usize {
        self.default_size
    }

    /// Counters. `live` is counted from the live flags and `cached` derived, so while other
    /// threads allocate the figures are a near snapshot, not an atomic one.
    pub(crate) fn stats(&self) -> StackStats {
        let n = self.nchunks.load(Ordering::Acquire);
        let live = (0..n).map(|id| self.chunk(id).live_count()).sum();
        let pooled = self.pooled.load(Ordering::Relaxed);
        let carved = self.carved.load(Ordering::Relaxed);
        StackStats {
            live,
            pooled,
            pooled_released: self.released.load(Ordering::Relaxed),
            cached: carved.saturating_sub(pooled).saturating_sub(live),
            carved,
            bytes_reserved: self.reserved_bytes.load(Ordering::Relaxed),
            chunks: self.nchunks.load(Ordering::Relaxed),
            guard: self.guard,
            vmas_created: self.vmas_created.load(Ordering::Relaxed),
            vma_budget: self.vma_budget,
        }
    }

    fn lock(&self, class: usize) -> MutexGuard<'_, ClassPool> {
        // A panic cannot happen while the lock is held (no user code runs under it), but a
        // poisoned lock still holds consistent lists: take it.
        self.classes[class]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Granule `g`'s entry (`g < TABLE_LEN`).
    fn table(&self, g: usize) -> &AtomicU16 {
        assert!(g < TABLE_LEN);
        // SAFETY: the registry mapping starts with TABLE_LEN zero-initialised AtomicU16s and
        // lives as long as the pool.
        unsafe { &*(self.registry as *const AtomicU16).add(g) }
    }

    /// Descriptor slot `id` (`id < MAX_CHUNKS`).
    fn chunk_slot(&self, id: usize) -> &AtomicPtr<Chunk> {
        assert!(id < MAX_CHUNKS);
        let start = self.registry + TABLE_LEN * size_of::<AtomicU16>();
        // SAFETY: MAX_CHUNKS zero-initialised (null) AtomicPtrs follow the table in the
        // registry mapping (8-byte aligned: the table is a multiple of 8 bytes long).
        unsafe { &*(start as *const AtomicPtr<Chunk>).add(id) }
    }

    fn chunk(&self, id: usize) -> &Chunk {
        let p = self.chunk_slot(id).load(Ordering::Acquire);
        // SAFETY: ids handed out by `new_chunk` index published, never-freed-while-the-pool-
        // lives chunks; the Acquire load pairs with the Release store that published it.
        unsafe { &*p }
    }

    /// The chunk covering `addr`, if any. Lock-free, allocation-free.
    fn chunk_of(&self, addr: usize) -> Option<&Chunk> {
        let g = addr / CHUNK_ALIGN;
        if g >= TABLE_LEN {
            return None;
        }
        let id = self.table(g).load(Ordering::Acquire) as usize;
        if id == 0 || id > MAX_CHUNKS {
            return None;
        }
        let p = self.chunk_slot(id - 1).load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: table entries are stored (Release) only after their chunk pointer is
        // published, and chunks live as long as the pool.
        let c = unsafe { &*p };
        if addr >= c.base && addr < c.base + c.len {
            Some(c)
        } else {
            None
        }
    }

    /// The slot whose usable range is exactly `stack`, if it was carved.
    fn slot_of(&self, stack: Stack) -> Option<Slot<'_>> {
        let chunk = self.chunk_of(stack.lo)?;
        let off = stack.lo - chunk.base;
        let (slot, rem) = chunk.split(off);
        if rem != GUARD_SIZE || stack.hi.wrapping_sub(stack.lo) != chunk.size {
            return None;
        }
        if slot >= chunk.carved.load(Ordering::Acquire) {
            return None;
        }
        Some(Slot { chunk, slot })
    }

    /// If `addr` lies in the guard page of a live stack, that stack. Async-signal-safe: atomic
    /// loads only.
    pub(crate) fn guard_fault(&self, addr: usize) -> Option<Stack> {
        let chunk = self.chunk_of(addr)?;
        let off = addr - chunk.base;
        let (slot, rem) = chunk.split(off);
        if rem >= GUARD_SIZE || slot >= chunk.carved.load(Ordering::Acquire) || !chunk.is_live(slot)
        {
            return None;
        }
        let lo = chunk.slot_lo(slot);
        Some(Stack {
            lo,
            hi: lo + chunk.size,
        })
    }

    /// Takes `n` VMAs from the budget, or reports the limit.
    fn charge_vmas(&self, n: usize) -> Result<(), StackError> {
        self.vmas_created
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|&t| t <= self.vma_budget)
            })
            .map(|_| ())
            .map_err(|used| StackError::MapCountLimit {
                created: used,
                limit: self.vma_budget,
            })
    }

    fn refund_vmas(&self, n: usize) {
        self.vmas_created.fetch_sub(n, Ordering::Relaxed);
    }

    /// Reserves a new chunk for `class` (at least one slot); returns its id.
    fn new_chunk(&self, class: usize, cp: &mut ClassPool) -> Result<usize, StackError> {
        let size = class_size(class);
        let stride = size + GUARD_SIZE;
        // Room for one slot and the page of metadata above it.
        let need = (stride + PAGE_SIZE).next_multiple_of(CHUNK_ALIGN);
        let _g = self.reserve.lock().unwrap_or_else(|e| e.into_inner());
        let id = self.nchunks.load(Ordering::Relaxed);
        if id >= MAX_CHUNKS {
            return Err(StackError::AddressSpace);
        }
        self.charge_vmas(1)?;
        // Ask for the planned length; when the kernel refuses (RLIMIT_AS, strict
        // overcommit), halve down to what one stack needs.
        let mut len = cp.next_chunk_len.max(need);
        let base = loop {
            match os::reserve_aligned(len, CHUNK_ALIGN) {
                Ok(b) => break b,
                Err(e) if e == libc::ENOMEM && len / 2 >= need => len /= 2,
                Err(e) => {
                    self.refund_vmas(1);
                    return Err(StackError::Mmap(e));
                }
            }
        };
        if (base + len) / CHUNK_ALIGN > TABLE_LEN {
            // SAFETY: the reservation was just made and is not published.
            unsafe { os::unmap(base, len) };
            self.refund_vmas(1);
            return Err(StackError::AddressSpace);
        }
        let (meta, slots) = Chunk::layout(len, stride);
        let desc = (base + len - meta) as *mut Chunk;
        // The descriptor sits page-aligned above every slot, with `meta` bytes of room for it
        // and its live flags (still zero: fresh anonymous memory).
        // SAFETY: `desc` is inside the fresh mapping that nothing else can see yet.
        unsafe {
            desc.write(Chunk {
                base,
                len,
                size,
                stride,
                class,
                slots,
                carved: AtomicUsize::new(0),
                magic: Chunk::magic(stride),
            })
        };
        self.chunk_slot(id).store(desc, Ordering::Release);
        for g in base / CHUNK_ALIGN..(base + len) / CHUNK_ALIGN {
            self.table(g).store(id as u16 + 1, Ordering::Release);
        }
        self.nchunks.store(id + 1, Ordering::Relaxed);
        self.reserved_bytes.fetch_add(len, Ordering::Relaxed);
        cp.next_chunk_len = (len * 2).min(CHUNK_MAX);
        Ok(id)
    }

    /// Carves up to `want` new slots of `class` into `cp.warm`, installing their guards.
    /// Returns how many were carved; an error only when none could be.
    fn carve(&self, class: usize, cp: &mut ClassPool, want: usize) -> Result<usize, StackError> {
        let mut got = 0;
        while got < want {
            let id = match cp.chunk {
                Some(id)
                    if self.chunk(id).carved.load(Ordering::Relaxed) < self.chunk(id).slots =>
                {
                    id
                }
                _ => match self.new_chunk(class, cp) {
                    Ok(id) => {
                        cp.chunk = Some(id);
                        id
                    }
                    Err(e) if got == 0 => return Err(e),
                    Err(_) => break,
                },
            };
            let chunk = self.chunk(id);
            let first = chunk.carved.load(Ordering::Relaxed);
            let n = (want - got).min(chunk.slots - first);
            for slot in first..first + n {
                let guard = chunk.base + slot * chunk.stride;
                let r = match self.guard {
                    GuardMechanism::MadviseGuardInstall => {
                        os::guard_install(guard, GUARD_SIZE).map_err(StackError::Madvise)
                    }
                    // A guard inside a read-write mapping splits it in three: two new VMAs.
                    GuardMechanism::Mprotect => self.charge_vmas(2).and_then(|()| {
                        os::guard_mprotect(guard, GUARD_SIZE).map_err(|e| {
                            self.refund_vmas(2);
                            StackError::Mprotect(e)
                        })
                    }),
                };
                if let Err(e) = r {
                    return if got == 0 { Err(e) } else { Ok(got) };
                }
                chunk.carved.store(slot + 1, Ordering::Release);
                self.carved.fetch_add(1, Ordering::Relaxed);
                self.pooled.fetch_add(1, Ordering::Relaxed);
                cp.warm.push(chunk.slot_lo(slot));
                got += 1;
            }
        }
        Ok(got)
    }

    /// Takes one free stack of `class` from the global lists, carving if they are empty.
    fn take(&self, class: usize, cp: &mut ClassPool) -> Result<usize, StackError> {
        if let Some(lo) = self.take_free(cp) {
            return Ok(lo);
        }
        let full = (CARVE_BYTES / (class_size(class) + GUARD_SIZE)).clamp(1, CARVE_MAX_SLOTS);
        let batch = cp.next_carve.min(full);
        cp.next_carve = (batch * 2).min(full);
        self.carve(class, cp, batch)?;
        let lo = cp.warm.pop().ok_or(StackError::AddressSpace)?;
        self.pooled.fetch_sub(1, Ordering::Relaxed);
        Ok(lo)
    }

    /// Takes one stack from the free lists of a class (warm first), carving nothing.
    fn take_free(&self, cp: &mut ClassPool) -> Option<usize> {
        if let Some(lo) = cp.warm.pop() {
            cp.low_water = cp.low_water.min(cp.warm.len());
            self.pooled.fetch_sub(1, Ordering::Relaxed);
            return Some(lo);
        }
        let lo = cp.cold.pop()?;
        self.pooled.fetch_sub(1, Ordering::Relaxed);
        self.released.fetch_sub(1, Ordering::Relaxed);
        Some(lo)
    }

    /// Returns a free stack to the global lists of `class` (Go: `stackpoolfree`). Its pages
    /// stay: [`Pool::scavenge`] decides when they go back to the OS.
    fn give(&self, _class: usize, cp: &mut ClassPool, lo: usize) {
        self.pooled.fetch_add(1, Ordering::Relaxed);
        cp.warm.push(lo);
    }

    fn hand_out(&self, lo: usize, size: usize) -> Stack {
        let stack = Stack { lo, hi: lo + size };
        match self.slot_of(stack) {
            Some(s) if s.chunk.set_live(s.slot) => {}
            _ => rt_sys::throw("stackalloc: free list holds a stack that is live or not ours"),
        }
        stack
    }

    /// Go: `stackalloc`.
    pub(crate) fn alloc(
        &self,
        cache: Option<&mut StackCache>,
        size: usize,
    ) -> Result<Stack, StackError> {
        let class = class_of(size)?;
        let size = class_size(class);
        if let Some(c) = cache {
            if class < NUM_ORDERS {
                if c.count(class) == 0 {
                    self.refill(c, class)?;
                }
                if let Some(lo) = c.pop(class) {
                    return Ok(self.hand_out(lo, size));
                }
            }
        }
        let lo = {
            let mut cp = self.lock(class);
            self.take(class, &mut cp)?
        };
        Ok(self.hand_out(lo, size))
    }

    /// Go: `stackfree`. A stack this pool did not hand out, or one already freed, is a
    /// fatal error.
    pub(crate) fn free(&self, cache: Option<&mut StackCache>, stack: Stack) {
        let (class, lo) = match self.slot_of(stack) {
            Some(s) => {
                if !s.chunk.clear_live(s.slot) {
                    rt_sys::fatal!(
                        "stackfree: stack [{:#x}, {:#x}) is not allocated (double free?)",
                        stack.lo,
                        stack.hi
                    );
                }
                (s.chunk.class, stack.lo)
            }
            None => rt_sys::fatal!(
                "stackfree: [{:#x}, {:#x}) is not a stack from this allocator",
                stack.lo,
                stack.hi
            ),
        };
        if let Some(c) = cache {
            if class < NUM_ORDERS {
                if c.count(class) >= cache_capacity(class) {
                    self.release(c, class);
                }
                c.push(class, lo);
                return;
            }
        }
        let mut cp = self.lock(class);
        self.give(class, &mut cp, lo);
    }

    /// Go: `stackcacherefill`: fills an empty order to half its capacity under one lock,
    /// from the free lists; new slots are carved at most once per refill (the class's
    /// current batch), so that a class just starting (a process's first goroutine) installs
    /// one guard page, not half a cache's worth.
    fn refill(&self, c: &mut StackCache, order: usize) -> Result<(), StackError> {
        let target = (cache_capacity(order) / 2).max(1);
        let mut cp = self.lock(order);
        if cp.warm.is_empty() && cp.cold.is_empty() {
            // take carves one batch and hands out one of it; the rest follows below.
            let lo = self.take(order, &mut cp)?;
            c.push(order, lo);
        }
        while c.count(order) < target {
            match self.take_free(&mut cp) {
                Some(lo) => c.push(order, lo),
                None => break,
            }
        }
        Ok(())
    }

    /// Go: `stackcacherelease`: gives an order back down to half its capacity.
    fn release(&self, c: &mut StackCache, order: usize) {
        let target = cache_capacity(order) / 2;
        let mut cp = self.lock(order);
        while c.count(order) > target {
            if let Some(lo) = c.pop(order) {
                self.give(order, &mut cp, lo);
            }
        }
    }

    /// Go: `stackcache_clear`: a P goes away; its cached stacks return to the global pool.
    pub(crate) fn cache_clear(&self, c: &mut StackCache) {
        for order in 0..NUM_ORDERS {
            if c.count(order) == 0 {
                continue;
            }
            let mut cp = self.lock(order);
            while let Some(lo) = c.pop(order) {
                self.give(order, &mut cp, lo);
            }
        }
    }

    /// The retention policy's periodic step: in each class, the warm stacks beyond
    /// [`GLOBAL_WARM_BYTES`] that were not used since the previous call (below the list's
    /// low-water mark) have their bodies released to the OS, oldest first. The `madvise`
    /// calls run outside the class lock, so Ps refilling their caches do not wait for them.
    /// Returns the bytes released.
    pub(crate) fn scavenge(&self) -> usize {
        let mut bytes = 0;
        for class in 0..NUM_CLASSES {
            let size = class_size(class);
            let keep = GLOBAL_WARM_BYTES / size;
            let idle: Vec<usize> = {
                let mut cp = self.lock(class);
                let n = cp.low_water.min(cp.warm.len()).saturating_sub(keep);
                let idle = cp.warm.drain(..n).collect();
                cp.low_water = cp.warm.len();
                idle
            };
            if idle.is_empty() {
                continue;
            }
            // Out of both lists while their bodies go: no Pool::take can hand them out.
            let (mut gone, mut kept) = (Vec::with_capacity(idle.len()), Vec::new());
            for lo in idle {
                if os::release(lo, size).is_ok() {
                    gone.push(lo);
                } else {
                    kept.push(lo);
                }
            }
            bytes += gone.len() * size;
            let mut cp = self.lock(class);
            self.released.fetch_add(gone.len(), Ordering::Relaxed);
            cp.cold.extend(gone);
            cp.warm.extend(kept);
        }
        bytes
    }

    /// Releases the bodies of every warm stack in the global pool to the OS; returns the
    /// bytes released. Cached and live stacks are untouched.
    pub(crate) fn release_pooled(&self) -> usize {
        let mut bytes = 0;
        for class in 0..NUM_CLASSES {
            let size = class_size(class);
            let mut cp = self.lock(class);
            // Oldest first, so the cold list keeps the warm list's LIFO order on top.
            let warm = core::mem::take(&mut cp.warm);
            cp.low_water = 0;
            for lo in warm {
                if os::release(lo, size).is_ok() {
                    cp.cold.push(lo);
                    self.released.fetch_add(1, Ordering::Relaxed);
                    bytes += size;
                } else {
                    cp.warm.push(lo);
                }
            }
        }
        bytes
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let n = *self.nchunks.get_mut();
        for id in 0..n {
            let p = self.chunk_slot(id).load(Ordering::Relaxed);
            if p.is_null() {
                continue;
            }
            // SAFETY: `p` is a published descriptor; copy its bounds out before the mapping
            // that holds it goes away.
            let (base, len) = unsafe { ((*p).base, (*p).len) };
            // SAFETY: dropping the pool means no stack of it is in use and no lookup can run
            // any more; the descriptor is not read after this.
            unsafe { os::unmap(base, len) };
        }
        // SAFETY: the registry mapping was made in `build` and nothing refers to it
        // once the pool is gone.
        unsafe { os::unmap(self.registry, REGISTRY_BYTES) };
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn magic_split_equals_division_for_every_class() {
        for class in 0..NUM_CLASSES {
            let stride = class_size(class) + GUARD_SIZE;
            let c = Chunk {
                base: 0,
                len: CHUNK_MAX,
                size: class_size(class),
                stride,
                class,
                slots: CHUNK_MAX / stride,
                carved: AtomicUsize::new(0),
                magic: Chunk::magic(stride),
            };
            let check = |off: usize| {
                assert_eq!(
                    c.split(off),
                    (off / stride, off % stride),
                    "class {class} off {off}"
                );
            };
            // Around every slot boundary near both ends of the largest chunk, and a spread.
            for k in (0..4096).chain((CHUNK_MAX / stride).saturating_sub(4096)..=CHUNK_MAX / stride)
            {
                let b = k * stride;
                for d in [0, 1, GUARD_SIZE - 1, GUARD_SIZE, GUARD_SIZE + 1] {
                    for off in [b + d, b.wrapping_sub(d + 1)] {
                        if off < CHUNK_MAX {
                            check(off);
                        }
                    }
                }
            }
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for _ in 0..100_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                check(x as usize % CHUNK_MAX);
            }
        }
    }
}
