//! The page heap (Go `mheap`): arenas, spans, the page→span map, free pages,
//! large objects and the scavenger.
//!
//! Map:
//! - **Arenas.** Address space is reserved in [`HEAP_ARENA_BYTES`] (64 MiB)
//!   units, first at Go's hints `i<<40 | 0x00c0<<32` (`0x00c000000000`
//!   first, 128 hints), then anywhere (aligned to 64 MiB). Reserved space is
//!   `PROT_NONE`; it is committed (`sysMap`) in [`COMMIT_STEP`] pieces as the
//!   heap grows (`MHeap::grow`).
//! - **Page→span map.** A flat index of `1 << ARENA_L2_BITS` arena pointers
//!   (Go's `arenas` with `arenaL1Bits = 0`, `arenaL2Bits = 22`; 32 MiB of
//!   address space, touched lazily) leads to a [`HeapArena`] per arena whose
//!   `spans` array maps every 8 KiB page to its [`MSpan`]. [`span_of`] is
//!   lock-free (two loads).
//! - **Free pages.** Free spans are kept in two sets, *dirty* (backed by
//!   RAM) and *clean* (returned to the OS, Go's "scavenged"), each as 128
//!   exact-size lists (1..=128 pages) with a bitmap of non-empty lists plus
//!   one list for bigger spans. Allocation prefers dirty memory. A freed
//!   span merges with free neighbours of the same set; the page map holds
//!   the first and last page of every free span so neighbours are found in
//!   O(1). (Go ≥ 1.14 finds free pages with a radix tree of bitmaps; size
//!   segregated lists give the same results for a heap without a GC and
//!   keep the scavenged/unscavenged split exact per span.)
//! - **Large objects** (> 32 KiB, or alignment above a page) are a span of
//!   their own (class 0), with any alignment up to 1 GiB
//!   ([`crate::mcache::MAX_ALIGN`]).
//! - **Scavenger** ([`MHeap::scavenge_pages`]): releases the biggest dirty
//!   spans with `MADV_DONTNEED`. Policy, applied inline whenever pages are
//!   freed (there is no background goroutine in a standalone program):
//!   keep at most `max(min_retain, retain_percent% of in-use pages)` dirty
//!   free pages; when exceeded, release down to half of that limit. The
//!   runtime's sysmon may also call [`crate::scavenge`] periodically.
//!
//! Everything here runs under the [`HEAP`] lock except [`span_of`].

use crate::fixalloc::{FixAlloc, Persistent};
use crate::lock::Mutex;
use crate::sizeclasses::{CLASS_TO_ALLOCNPAGES, CLASS_TO_SIZE, PAGE_SHIFT, PAGE_SIZE};
use crate::sys;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// log2 of the arena size (Go `logHeapArenaBytes`).
pub const LOG_HEAP_ARENA_BYTES: usize = 26;
/// Arena size: 64 MiB (Go `heapArenaBytes` on linux/amd64).
pub const HEAP_ARENA_BYTES: usize = 1 << LOG_HEAP_ARENA_BYTES;
/// Pages per arena (Go `pagesPerArena`).
pub const PAGES_PER_ARENA: usize = HEAP_ARENA_BYTES / PAGE_SIZE;
/// Usable address bits (Go `heapAddrBits`).
pub const HEAP_ADDR_BITS: usize = 48;
/// Bits of the arena index (Go `arenaL2Bits`; `arenaL1Bits` is 0).
pub const ARENA_L2_BITS: usize = HEAP_ADDR_BITS - LOG_HEAP_ARENA_BYTES;
/// Number of arena hints (Go builds 128 for linux/amd64).
pub const ARENA_HINTS: usize = 128;
/// Bytes committed at a time when the heap grows (Go's 4 MiB palloc chunk).
pub const COMMIT_STEP: usize = 4 << 20;

const NBUCKETS: usize = 128;

/// Go's `i<<40 | 0x00c0<<32` hint for `i`.
pub const fn arena_hint(i: usize) -> usize {
    (i << 40) | (0x00c0 << 32)
}

/// Span states (Go `mSpanState`).
pub const SPAN_FREE: u8 = 0;
/// Span cut into small objects of one class, owned by an `mcentral`.
pub const SPAN_SMALL: u8 = 1;
/// Span holding one large object.
pub const SPAN_LARGE: u8 = 2;

/// A free object inside a small span: its first word links the next one.
#[repr(C)]
#[derive(Debug)]
pub struct FreeObj {
    /// Next free object or null.
    pub next: *mut FreeObj,
}

/// A run of pages (Go `mspan`), allocated from `spanalloc`.
#[repr(C)]
#[derive(Debug)]
pub struct MSpan {
    /// List links (free lists of the heap, or an mcentral's lists).
    pub next: *mut MSpan,
    /// Previous element of the same list.
    pub prev: *mut MSpan,
    /// First byte.
    pub start: usize,
    /// Length in pages.
    pub npages: usize,
    /// Small span: the [`owner_tag`] of the cache that last took objects
    /// from it (0: none), also kept for each of its pages in its arena's
    /// page table ([`set_owner`]).
    pub owner: usize,
    /// `SPAN_FREE`, `SPAN_SMALL` or `SPAN_LARGE`.
    pub state: u8,
    /// Size class (0 for large and free spans).
    pub sizeclass: u8,
    /// Free span whose pages were returned to the OS.
    pub scavenged: bool,
    /// Small span: on its mcentral's full list.
    pub in_full: bool,
    /// Large span: its memory may hold old data (false: known zero).
    pub needzero: bool,
    /// Bytes per object.
    pub elemsize: u32,
    /// Objects per span.
    pub nelems: u32,
    /// Objects handed out to caches (Go `allocCount`).
    pub alloc_count: u32,
    /// Objects carved so far; objects past it were never used (Go `freeindex`).
    pub freeindex: u32,
    /// Objects returned to this span.
    pub freelist: *mut FreeObj,
}

impl MSpan {
    /// One past the last byte.
    pub fn end(&self) -> usize {
        self.start + (self.npages << PAGE_SHIFT)
    }
}

/// Per-arena metadata (Go `heapArena`): the span of every page, and the
/// owner tag of every page of a small span.
#[repr(C)]
#[allow(missing_debug_implementations)] // 8192 page entries; nothing useful to print
pub struct HeapArena {
    spans: [AtomicPtr<MSpan>; PAGES_PER_ARENA],
    /// [`owner_tag`] of the page's span (see [`set_owner`]). Written by
    /// a thread that holds the span's mcentral lock, read by `free` with
    /// none: only a hint of which cache should reuse the page's objects
    /// (see `mcache`), never needed for correctness. A table of its own,
    /// rather than a span field, because `free` reads it every time: the
    /// span's own cache line is written on every refill and release of
    /// the span, by any thread, and the table changes only when the
    /// owner does (measured on `larson` with two threads: the span field
    /// load took a third of the free path's time).
    owners: [AtomicUsize; PAGES_PER_ARENA],
}

/// The tag of the cache with id `id` (see `mcache`) for objects of
/// `class`: the class goes in the top byte, so that one comparison in
/// `free` checks both.
#[inline(always)]
pub const fn owner_tag(id: usize, class: usize) -> usize {
    id | class << 56
}

/// The cache id in an owner tag.
#[inline(always)]
pub const fn owner_of_tag(tag: usize) -> usize {
    tag & ((1 << 56) - 1)
}

/// The owner tag of the page holding `p` (see [`HeapArena`]), 0 when `p`
/// is not in the heap. Stale for pages of free spans.
#[inline(always)]
pub fn page_owner(p: usize) -> usize {
    if p >> HEAP_ADDR_BITS != 0 {
        return 0;
    }
    let idx = ARENA_INDEX.load(Ordering::Acquire);
    if idx.is_null() {
        return 0;
    }
    // SAFETY: the index has 1 << ARENA_L2_BITS entries and p >> 26 is below that.
    let ha = unsafe { (*idx.add(p >> LOG_HEAP_ARENA_BYTES)).load(Ordering::Acquire) };
    if ha.is_null() {
        return 0;
    }
    // SAFETY: ha is a live HeapArena (never freed) and the page index is in range.
    unsafe { (*ha).owners[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)].load(Ordering::Relaxed) }
}

/// Makes `tag` the owner tag of small span `s` and of each of its pages.
///
/// # Safety
/// `s` is a live small span; the caller holds its mcentral's lock.
pub unsafe fn set_owner(s: *mut MSpan, tag: usize) {
    // SAFETY: s is live and its fields are guarded by the lock (caller);
    // its pages are committed heap pages with arena metadata.
    unsafe {
        if (*s).owner == tag {
            return;
        }
        (*s).owner = tag;
        let idx = ARENA_INDEX.load(Ordering::Relaxed);
        // Page by page: a span may cross from one arena into the next.
        for i in 0..(*s).npages {
            let a = (*s).start + i * PAGE_SIZE;
            let ha = (*idx.add(a >> LOG_HEAP_ARENA_BYTES)).load(Ordering::Relaxed);
            (*ha).owners[(a >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)].store(tag, Ordering::Relaxed);
        }
    }
}

/// Base of the arena index: `1 << ARENA_L2_BITS` pointers to `HeapArena`.
static ARENA_INDEX: AtomicPtr<AtomicPtr<HeapArena>> = AtomicPtr::new(ptr::null_mut());

/// The span holding address `p`, or null when `p` is not in the heap.
/// Valid for pages of in-use spans and the boundary pages of free spans.
#[inline]
pub fn span_of(p: usize) -> *mut MSpan {
    if p >> HEAP_ADDR_BITS != 0 {
        return ptr::null_mut();
    }
    let idx = ARENA_INDEX.load(Ordering::Acquire);
    if idx.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: the index has 1 << ARENA_L2_BITS entries and p >> 26 is below that.
    let ha = unsafe { (*idx.add(p >> LOG_HEAP_ARENA_BYTES)).load(Ordering::Acquire) };
    if ha.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: ha is a live HeapArena (never freed) and the page index is in range.
    unsafe { (*ha).spans[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)].load(Ordering::Relaxed) }
}

fn set_span(page_addr: usize, s: *mut MSpan) {
    let idx = ARENA_INDEX.load(Ordering::Relaxed);
    // SAFETY: callers only pass committed heap pages, whose arena metadata
    // was installed by `grow` before the pages were used.
    unsafe {
        let ha = (*idx.add(page_addr >> LOG_HEAP_ARENA_BYTES)).load(Ordering::Relaxed);
        (*ha).spans[(page_addr >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)].store(s, Ordering::Relaxed);
    }
}

/// Intrusive doubly-linked list of spans (Go `mSpanList`).
#[derive(Debug)]
pub struct SpanList {
    /// First span or null.
    pub first: *mut MSpan,
}

impl SpanList {
    /// An empty list.
    pub const fn new() -> Self {
        SpanList {
            first: ptr::null_mut(),
        }
    }

    /// True when the list has no span.
    pub fn is_empty(&self) -> bool {
        self.first.is_null()
    }

    /// Pushes `s` at the front.
    ///
    /// # Safety
    /// `s` is a live span in no list.
    pub unsafe fn push(&mut self, s: *mut MSpan) {
        // SAFETY: s and the old first span are live spans (caller, list invariant).
        unsafe {
            (*s).prev = ptr::null_mut();
            (*s).next = self.first;
            if !self.first.is_null() {
                (*self.first).prev = s;
            }
        }
        self.first = s;
    }

    /// Unlinks `s`.
    ///
    /// # Safety
    /// `s` is a member of this list.
    pub unsafe fn remove(&mut self, s: *mut MSpan) {
        // SAFETY: s and its neighbours are live members of this list.
        unsafe {
            if (*s).prev.is_null() {
                self.first = (*s).next;
            } else {
                (*(*s).prev).next = (*s).next;
            }
            if !(*s).next.is_null() {
                (*(*s).next).prev = (*s).prev;
            }
            (*s).next = ptr::null_mut();
            (*s).prev = ptr::null_mut();
        }
    }
}

impl Default for SpanList {
    fn default() -> Self {
        Self::new()
    }
}

/// Free spans of one kind (dirty or clean).
#[derive(Debug)]
struct FreeSet {
    buckets: [SpanList; NBUCKETS],
    nonempty: u128,
    large: SpanList,
    pages: usize,
}

impl FreeSet {
    const fn new() -> Self {
        FreeSet {
            buckets: [const { SpanList::new() }; NBUCKETS],
            nonempty: 0,
            large: SpanList::new(),
            pages: 0,
        }
    }

    /// # Safety
    /// `s` is a live free span in no list.
    unsafe fn insert(&mut self, s: *mut MSpan) {
        // SAFETY: caller guarantees s is live.
        let n = unsafe { (*s).npages };
        self.pages += n;
        if n <= NBUCKETS {
            // SAFETY: s is in no list.
            unsafe { self.buckets[n - 1].push(s) };
            self.nonempty |= 1u128 << (n - 1);
        } else {
            // SAFETY: s is in no list.
            unsafe { self.large.push(s) };
        }
    }

    /// # Safety
    /// `s` is a member of this set.
    unsafe fn remove(&mut self, s: *mut MSpan) {
        // SAFETY: caller guarantees membership.
        let n = unsafe { (*s).npages };
        self.pages -= n;
        if n <= NBUCKETS {
            // SAFETY: s is in bucket n-1.
            unsafe { self.buckets[n - 1].remove(s) };
            if self.buckets[n - 1].is_empty() {
                self.nonempty &= !(1u128 << (n - 1));
            }
        } else {
            // SAFETY: s is in the large list.
            unsafe { self.large.remove(s) };
        }
    }

    /// A span with room for `npages` pages starting at a multiple of
    /// `align` bytes, and that start; best fit among the exact lists.
    fn find(&self, npages: usize, align: usize) -> Option<(*mut MSpan, usize)> {
        let fits = |s: *mut MSpan| -> Option<usize> {
            // SAFETY: members of the set are live spans.
            let (start, end) = unsafe { ((*s).start, (*s).end()) };
            let a = start.checked_add(align - 1)? & !(align - 1);
            let need = npages.checked_mul(PAGE_SIZE)?;
            (a.checked_add(need)? <= end).then_some(a)
        };
        if npages <= NBUCKETS {
            let mut mask = self.nonempty & (!0u128 << (npages - 1));
            while mask != 0 {
                let b = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let mut s = self.buckets[b].first;
                while !s.is_null() {
                    if let Some(a) = fits(s) {
                        return Some((s, a));
                    }
                    if align <= PAGE_SIZE {
                        break;
                    }
                    // SAFETY: list members are live.
                    s = unsafe { (*s).next };
                }
            }
        }
        // Big spans: the smallest that fits, so big free ranges stay whole.
        let mut best: Option<(*mut MSpan, usize)> = None;
        let mut s = self.large.first;
        while !s.is_null() {
            if let Some(a) = fits(s) {
                // SAFETY: list members are live.
                let better = best.is_none_or(|(b, _)| unsafe { (*s).npages < (*b).npages });
                if better {
                    best = Some((s, a));
                }
            }
            // SAFETY: list members are live.
            s = unsafe { (*s).next };
        }
        best
    }

    /// The biggest span in the set.
    fn biggest(&self) -> *mut MSpan {
        let mut best: *mut MSpan = ptr::null_mut();
        let mut s = self.large.first;
        while !s.is_null() {
            // SAFETY: list members are live.
            unsafe {
                if best.is_null() || (*s).npages > (*best).npages {
                    best = s;
                }
                s = (*s).next;
            }
        }
        if best.is_null() && self.nonempty != 0 {
            let b = 127 - self.nonempty.leading_zeros() as usize;
            best = self.buckets[b].first;
        }
        best
    }
}

/// Scavenger policy (see the module map). Set by [`crate::gcinit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScavengeConfig {
    /// Dirty free memory always allowed to stay resident, in bytes.
    pub min_retain_bytes: usize,
    /// Extra dirty free memory allowed, as a percentage of in-use heap
    /// memory (Go's `retainExtraPercent` is 10).
    pub retain_percent: usize,
    /// Apply the policy inline on every page free. With `false` only
    /// explicit [`crate::scavenge`] calls (the runtime's sysmon) release memory.
    pub inline: bool,
}

impl ScavengeConfig {
    /// The defaults: 16 MiB, 10%, inline.
    pub const DEFAULT: ScavengeConfig = ScavengeConfig {
        min_retain_bytes: 16 << 20,
        retain_percent: 10,
        inline: true,
    };
}

impl Default for ScavengeConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Page-level counters, read by `memstats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapCounters {
    /// Bytes committed for the heap (Go `HeapSys`).
    pub sys: usize,
    /// Pages in in-use spans.
    pub inuse_pages: usize,
    /// Free pages backed by RAM.
    pub dirty_pages: usize,
    /// Free pages returned to the OS.
    pub clean_pages: usize,
    /// Bytes of live large objects (span bytes).
    pub large_bytes: usize,
    /// Large allocations so far.
    pub large_allocs: u64,
    /// Large frees so far.
    pub large_frees: u64,
    /// Cumulative bytes of large spans allocated.
    pub large_total: u64,
    /// Bytes of runtime metadata obtained from the OS.
    pub meta_sys: usize,
    /// Bytes released by the scavenger so far.
    pub scavenged_total: u64,
}

/// The page heap (Go `mheap`). Lives in [`HEAP`].
#[derive(Debug)]
pub struct MHeap {
    /// Bump allocator for metadata.
    pub pst: Persistent,
    /// Span structures (Go `spanalloc`).
    pub spanalloc: FixAlloc,
    /// Cache structures (Go `cachealloc`).
    pub cachealloc: FixAlloc,
    dirty: FreeSet,
    clean: FreeSet,
    /// Next uncommitted byte of the current reservation.
    cur: usize,
    /// End of the current reservation.
    cur_end: usize,
    hint_idx: usize,
    hint_addr: usize,
    /// First arena address obtained (0 before the first growth).
    pub first_arena: usize,
    /// Arenas (64 MiB units) reserved so far.
    pub narenas: usize,
    /// Scavenger policy.
    pub scav: ScavengeConfig,
    inuse_pages: usize,
    sys: usize,
    meta_sys: usize,
    large_bytes: usize,
    large_allocs: u64,
    large_frees: u64,
    large_total: u64,
    scavenged_total: u64,
}

// SAFETY: the heap is only reached through the HEAP mutex.
unsafe impl Send for MHeap {}

/// The one heap.
pub static HEAP: Mutex<MHeap> = Mutex::new(MHeap::new());

impl MHeap {
    const fn new() -> Self {
        MHeap {
            pst: Persistent::new(),
            spanalloc: FixAlloc::new(core::mem::size_of::<MSpan>()),
            cachealloc: FixAlloc::new(core::mem::size_of::<crate::mcache::MCache>()),
            dirty: FreeSet::new(),
            clean: FreeSet::new(),
            cur: 0,
            cur_end: 0,
            hint_idx: 0,
            hint_addr: arena_hint(0),
            first_arena: 0,
            narenas: 0,
            scav: ScavengeConfig::DEFAULT,
            inuse_pages: 0,
            sys: 0,
            meta_sys: 0,
            large_bytes: 0,
            large_allocs: 0,
            large_frees: 0,
            large_total: 0,
            scavenged_total: 0,
        }
    }

    /// Maps the arena index (Go `mheap_.init` + the arena-index part of
    /// `mallocinit`). Returns false when the OS refuses.
    pub fn init(&mut self) -> bool {
        if !ARENA_INDEX.load(Ordering::Acquire).is_null() {
            return true;
        }
        let bytes = (1usize << ARENA_L2_BITS) * core::mem::size_of::<usize>();
        let p = sys::sys_alloc(bytes);
        if p.is_null() {
            return false;
        }
        self.meta_sys += bytes;
        ARENA_INDEX.store(p.cast(), Ordering::Release);
        true
    }

    /// Counter snapshot.
    pub fn counters(&self) -> HeapCounters {
        HeapCounters {
            sys: self.sys,
            inuse_pages: self.inuse_pages,
            dirty_pages: self.dirty.pages,
            clean_pages: self.clean.pages,
            large_bytes: self.large_bytes,
            large_allocs: self.large_allocs,
            large_frees: self.large_frees,
            large_total: self.large_total,
            meta_sys: self.meta_sys + self.pst.sys_bytes,
            scavenged_total: self.scavenged_total,
        }
    }

    fn new_span(&mut self, start: usize, npages: usize) -> *mut MSpan {
        let s = self.spanalloc.alloc(&mut self.pst).cast::<MSpan>();
        // SAFETY: fixalloc returned a zeroed block of MSpan size; all-zero
        // is a valid MSpan (null links, free state).
        unsafe {
            (*s).start = start;
            (*s).npages = npages;
        }
        s
    }

    /// Adds a free span to its set and records its boundary pages.
    ///
    /// # Safety
    /// `s` is a live free span in no list.
    unsafe fn insert_free(&mut self, s: *mut MSpan) {
        // SAFETY: caller guarantees s is live and free.
        unsafe {
            (*s).state = SPAN_FREE;
            set_span((*s).start, s);
            set_span((*s).end() - PAGE_SIZE, s);
            if (*s).scavenged {
                self.clean.insert(s);
            } else {
                self.dirty.insert(s);
            }
        }
    }

    /// # Safety
    /// `s` is a free span in one of the sets.
    unsafe fn remove_free(&mut self, s: *mut MSpan) {
        // SAFETY: caller guarantees membership.
        unsafe {
            if (*s).scavenged {
                self.clean.remove(s);
            } else {
                self.dirty.remove(s);
            }
        }
    }

    /// Merges free span `s` (in no list) with free neighbours of the same
    /// kind, then inserts the result.
    ///
    /// # Safety
    /// `s` is a live free span in no list.
    unsafe fn coalesce_insert(&mut self, s: *mut MSpan) {
        // SAFETY: neighbours found through the page map are live spans (the
        // boundary pages of every span are kept current); s is ours.
        unsafe {
            let left = span_of((*s).start.wrapping_sub(PAGE_SIZE));
            if !left.is_null()
                && left != s
                && (*left).state == SPAN_FREE
                && (*left).scavenged == (*s).scavenged
                && (*left).end() == (*s).start
            {
                self.remove_free(left);
                (*s).start = (*left).start;
                (*s).npages += (*left).npages;
                self.spanalloc.free(left.cast());
            }
            let right = span_of((*s).end());
            if !right.is_null()
                && right != s
                && (*right).state == SPAN_FREE
                && (*right).scavenged == (*s).scavenged
                && (*right).start == (*s).end()
            {
                self.remove_free(right);
                (*s).npages += (*right).npages;
                self.spanalloc.free(right.cast());
            }
            self.insert_free(s);
        }
    }

    /// Reserves `size` bytes (a multiple of the arena size) of address
    /// space aligned to the arena size: at the arena hints first, then
    /// anywhere. Null when the OS refuses.
    fn reserve_arena(&mut self, size: usize) -> usize {
        while self.hint_idx < ARENA_HINTS {
            let h = self.hint_addr;
            match h.checked_add(size) {
                Some(end) if end <= arena_hint(self.hint_idx + 1).min(1 << 47) => {
                    let p = sys::sys_reserve(h, size) as usize;
                    if p == h {
                        self.hint_addr = end;
                        return p;
                    }
                    if p != 0 {
                        // SAFETY: p is the mapping just made and unused.
                        unsafe { sys::sys_free(p as *mut u8, size) };
                    }
                }
                _ => {}
            }
            self.hint_idx += 1;
            self.hint_addr = arena_hint(self.hint_idx);
        }
        let Some(total) = size.checked_add(HEAP_ARENA_BYTES) else {
            return 0;
        };
        let p = sys::sys_reserve(0, total) as usize;
        if p == 0 {
            return 0;
        }
        let base = (p + HEAP_ARENA_BYTES - 1) & !(HEAP_ARENA_BYTES - 1);
        // SAFETY: the trimmed pieces are parts of the mapping just made.
        unsafe {
            if base > p {
                sys::sys_free(p as *mut u8, base - p);
            }
            let tail = p + total - (base + size);
            if tail > 0 {
                sys::sys_free((base + size) as *mut u8, tail);
            }
        }
        if base + size > 1 << HEAP_ADDR_BITS {
            // SAFETY: [base, base+size) is our mapping and unused.
            unsafe { sys::sys_free(base as *mut u8, size) };
            return 0;
        }
        base
    }

    /// Installs arena metadata for `[base, base+size)`.
    fn install_arenas(&mut self, base: usize, size: usize) -> bool {
        let idx = ARENA_INDEX.load(Ordering::Relaxed);
        let mut a = base;
        while a < base + size {
            let meta = sys::sys_alloc(core::mem::size_of::<HeapArena>());
            if meta.is_null() {
                return false;
            }
            self.meta_sys += core::mem::size_of::<HeapArena>();
            // SAFETY: a < 2^48, so its index is within the arena index.
            unsafe { (*idx.add(a >> LOG_HEAP_ARENA_BYTES)).store(meta.cast(), Ordering::Release) };
            self.narenas += 1;
            a += HEAP_ARENA_BYTES;
        }
        true
    }

    /// Reserves the first arena and installs its page map, committing
    /// nothing: `grow` then commits from it. False when the OS refuses the
    /// address space or the map. Idempotent.
    pub fn reserve_first_arena(&mut self) -> bool {
        if self.cur_end != 0 {
            return true;
        }
        let base = self.reserve_arena(HEAP_ARENA_BYTES);
        if base == 0 {
            return false;
        }
        if !self.install_arenas(base, HEAP_ARENA_BYTES) {
            return false;
        }
        self.first_arena = base;
        self.cur = base;
        self.cur_end = base + HEAP_ARENA_BYTES;
        true
    }

    /// Go `mheap.grow`: commits at least `npages` more pages and adds them
    /// as a clean free span. False when the OS refuses.
    fn grow(&mut self, npages: usize) -> bool {
        let Some(need) = npages.checked_mul(PAGE_SIZE) else {
            return false;
        };
        if need > self.cur_end - self.cur {
            let Some(size) = need
                .checked_add(HEAP_ARENA_BYTES - 1)
                .map(|n| n & !(HEAP_ARENA_BYTES - 1))
            else {
                return false;
            };
            let base = self.reserve_arena(size);
            if base == 0 {
                return false;
            }
            if !self.install_arenas(base, size) {
                return false;
            }
            if self.first_arena == 0 {
                self.first_arena = base;
            }
            if base == self.cur_end && self.cur_end != 0 {
                self.cur_end += size;
            } else {
                // Retire the rest of the old reservation as clean free pages.
                let rest = self.cur_end - self.cur;
                // SAFETY: [cur, cur_end) is reserved and uncommitted.
                if rest > 0 && unsafe { sys::sys_map(self.cur as *mut u8, rest) } {
                    self.sys += rest;
                    let s = self.new_span(self.cur, rest / PAGE_SIZE);
                    // SAFETY: s is new, free and in no list.
                    unsafe {
                        (*s).scavenged = true;
                        self.coalesce_insert(s);
                    }
                }
                self.cur = base;
                self.cur_end = base + size;
            }
        }
        let n = need.max(COMMIT_STEP).min(self.cur_end - self.cur);
        // SAFETY: [cur, cur+n) is inside the current reservation.
        if !unsafe { sys::sys_map(self.cur as *mut u8, n) } {
            return false;
        }
        self.sys += n;
        let s = self.new_span(self.cur, n / PAGE_SIZE);
        self.cur += n;
        // SAFETY: s is new, free and in no list; fresh memory is clean.
        unsafe {
            (*s).scavenged = true;
            self.coalesce_insert(s);
        }
        true
    }

    /// Go `mheap.alloc`: an in-use span of `npages` pages starting at a
    /// multiple of `align` bytes (a power of two). Null when out of memory.
    fn alloc_pages(&mut self, npages: usize, align: usize) -> *mut MSpan {
        let align = align.max(PAGE_SIZE);
        let found = match self
            .dirty
            .find(npages, align)
            .or_else(|| self.clean.find(npages, align))
        {
            Some(f) => f,
            None => {
                let extra = (align / PAGE_SIZE) - 1;
                let Some(want) = npages.checked_add(extra) else {
                    return ptr::null_mut();
                };
                if !self.grow(want) {
                    return ptr::null_mut();
                }
                match self
                    .dirty
                    .find(npages, align)
                    .or_else(|| self.clean.find(npages, align))
                {
                    Some(f) => f,
                    None => return ptr::null_mut(),
                }
            }
        };
        let (s, start) = found;
        // SAFETY: s is a live free span in one of the sets; the split pieces
        // are sub-ranges of it.
        unsafe {
            self.remove_free(s);
            let front = (start - (*s).start) / PAGE_SIZE;
            let back = (*s).npages - front - npages;
            let clean = (*s).scavenged;
            if front > 0 {
                let t = self.new_span((*s).start, front);
                (*t).scavenged = clean;
                self.insert_free(t);
            }
            if back > 0 {
                let t = self.new_span(start + npages * PAGE_SIZE, back);
                (*t).scavenged = clean;
                self.insert_free(t);
            }
            (*s).start = start;
            (*s).npages = npages;
            (*s).needzero = !clean;
            (*s).scavenged = false;
            (*s).state = SPAN_LARGE;
            (*s).sizeclass = 0;
            (*s).next = ptr::null_mut();
            (*s).prev = ptr::null_mut();
            let mut a = start;
            while a < start + npages * PAGE_SIZE {
                set_span(a, s);
                a += PAGE_SIZE;
            }
        }
        self.inuse_pages += npages;
        s
    }

    /// A span for size class `class`, ready to be cut into objects.
    pub fn alloc_small_span(&mut self, class: usize) -> *mut MSpan {
        let s = self.alloc_pages(CLASS_TO_ALLOCNPAGES[class] as usize, PAGE_SIZE);
        if s.is_null() {
            return s;
        }
        let size = CLASS_TO_SIZE[class] as usize;
        // SAFETY: s is the in-use span just allocated.
        unsafe {
            (*s).state = SPAN_SMALL;
            (*s).sizeclass = class as u8;
            (*s).elemsize = size as u32;
            (*s).nelems = ((*s).npages * PAGE_SIZE / size) as u32;
            (*s).alloc_count = 0;
            (*s).freeindex = 0;
            (*s).freelist = ptr::null_mut();
            (*s).in_full = false;
            (*s).owner = 0;
        }
        s
    }

    /// A span for one large object of `size` bytes aligned to `align`.
    pub fn alloc_large(&mut self, size: usize, align: usize) -> *mut MSpan {
        let Some(npages) = size.checked_add(PAGE_SIZE - 1).map(|n| n >> PAGE_SHIFT) else {
            return ptr::null_mut();
        };
        let s = self.alloc_pages(npages, align);
        if !s.is_null() {
            self.large_bytes += npages * PAGE_SIZE;
            self.large_allocs += 1;
            self.large_total += (npages * PAGE_SIZE) as u64;
        }
        s
    }

    /// Frees an in-use span's pages (Go `mheap.freeSpan`), then applies the
    /// inline scavenger policy.
    ///
    /// # Safety
    /// `s` is an in-use span no object of which is still used, in no list.
    pub unsafe fn free_span(&mut self, s: *mut MSpan) {
        // SAFETY: caller guarantees s is an in-use span we own.
        unsafe {
            if (*s).state == SPAN_LARGE {
                self.large_bytes -= (*s).npages * PAGE_SIZE;
                self.large_frees += 1;
            }
            self.inuse_pages -= (*s).npages;
            (*s).state = SPAN_FREE;
            (*s).sizeclass = 0;
            (*s).scavenged = false;
            (*s).freelist = ptr::null_mut();
            self.coalesce_insert(s);
        }
        if self.scav.inline {
            self.scavenge_to_policy();
        }
    }

    /// Applies the retention policy: when more than
    /// `max(min_retain, retain_percent% of in-use pages)` dirty free pages
    /// are kept, releases them down to half of that. Returns the pages
    /// released.
    pub fn scavenge_to_policy(&mut self) -> usize {
        let limit = (self.scav.min_retain_bytes / PAGE_SIZE)
            .max(self.inuse_pages.saturating_mul(self.scav.retain_percent) / 100);
        if self.dirty.pages > limit {
            let want = self.dirty.pages - limit / 2;
            self.scavenge_pages(want)
        } else {
            0
        }
    }

    /// Releases up to `want` dirty free pages to the OS, biggest spans
    /// first (splitting the last one so exactly `want` go when possible).
    /// Returns the pages released.
    pub fn scavenge_pages(&mut self, want: usize) -> usize {
        let mut done = 0;
        while done < want {
            let s = self.dirty.biggest();
            if s.is_null() {
                break;
            }
            // SAFETY: s is a live member of the dirty set; the split piece is
            // a sub-range of it; its pages are free so their contents are dead.
            unsafe {
                self.dirty.remove(s);
                let left = want - done;
                let mut victim = s;
                if (*s).npages > left {
                    // Keep the front dirty, release the tail.
                    let keep = (*s).npages - left;
                    let t = self.new_span((*s).start + keep * PAGE_SIZE, left);
                    (*s).npages = keep;
                    self.insert_free(s);
                    victim = t;
                }
                sys::sys_unused((*victim).start as *mut u8, (*victim).npages * PAGE_SIZE);
                done += (*victim).npages;
                (*victim).scavenged = true;
                self.coalesce_insert(victim);
            }
        }
        self.scavenged_total += (done * PAGE_SIZE) as u64;
        done
    }
}

impl FreeSet {
    /// Whole-set validator: membership, bitmap, page sums, boundary map.
    fn check(&self, clean: bool) -> Result<(), String> {
        let mut pages = 0;
        let mut visit = |s: *mut MSpan, bucket: Option<usize>| -> Result<(), String> {
            // SAFETY: members of the set are live spans (checked under the heap lock).
            let sp = unsafe { &*s };
            if sp.state != SPAN_FREE || sp.scavenged != clean {
                return Err(format!(
                    "span {:#x}: state {} scavenged {}",
                    sp.start, sp.state, sp.scavenged
                ));
            }
            match bucket {
                Some(b) if sp.npages != b + 1 => {
                    return Err(format!("span {:#x} in bucket {b}", sp.start))
                }
                None if sp.npages <= NBUCKETS => {
                    return Err(format!("small span {:#x} in large list", sp.start))
                }
                _ => {}
            }
            if span_of(sp.start) != s || span_of(sp.end() - PAGE_SIZE) != s {
                return Err(format!("span {:#x}: boundary pages not mapped", sp.start));
            }
            pages += sp.npages;
            Ok(())
        };
        for (b, list) in self.buckets.iter().enumerate() {
            if list.is_empty() == (self.nonempty & (1u128 << b) != 0) {
                return Err(format!("bucket {b}: bitmap disagrees"));
            }
            let mut s = list.first;
            while !s.is_null() {
                visit(s, Some(b))?;
                // SAFETY: list members are live.
                s = unsafe { (*s).next };
            }
        }
        let mut s = self.large.first;
        while !s.is_null() {
            visit(s, None)?;
            // SAFETY: list members are live.
            s = unsafe { (*s).next };
        }
        if pages != self.pages {
            return Err(format!(
                "set holds {pages} pages, counter says {}",
                self.pages
            ));
        }
        Ok(())
    }
}

impl MHeap {
    /// Whole-heap validator (style: mimalloc's `_mi_page_is_valid`): both
    /// free sets, and committed pages = in-use + free. Meant for tests and
    /// debugging on a quiescent heap.
    pub fn check(&self) -> Result<(), String> {
        self.dirty.check(false)?;
        self.clean.check(true)?;
        let free = self.dirty.pages + self.clean.pages;
        if (self.inuse_pages + free) * PAGE_SIZE != self.sys {
            return Err(format!(
                "in-use {} + free {free} pages != committed {} bytes",
                self.inuse_pages, self.sys
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_follow_go() {
        assert_eq!(arena_hint(0), 0x00c0_0000_0000);
        assert_eq!(arena_hint(1), 0x01c0_0000_0000);
        assert!(arena_hint(ARENA_HINTS - 1) < 1 << 47);
        assert_eq!(HEAP_ARENA_BYTES, 64 << 20);
        assert_eq!(ARENA_L2_BITS, 22);
        assert_eq!(PAGES_PER_ARENA, 8192);
        assert_eq!(PAGES_PER_ARENA % 512, 0);
    }

    #[test]
    fn pages_alloc_free_coalesce_and_scavenge() {
        crate::mallocinit().unwrap();
        let mut h = HEAP.lock();
        let a = h.alloc_large(3 * PAGE_SIZE, PAGE_SIZE);
        let b = h.alloc_large(5 * PAGE_SIZE - 100, 1 << 20);
        assert!(!a.is_null() && !b.is_null());
        // SAFETY: a and b are live in-use spans just allocated.
        unsafe {
            assert_eq!((*b).start % (1 << 20), 0);
            assert_eq!((*a).npages, 3);
            for s in [a, b] {
                let mid = (*s).start + PAGE_SIZE;
                assert_eq!(span_of(mid), s);
                core::ptr::write_bytes((*s).start as *mut u8, 7, (*s).npages * PAGE_SIZE);
            }
            let before = h.counters();
            h.free_span(a);
            h.free_span(b);
            let after = h.counters();
            assert_eq!(after.inuse_pages + 8, before.inuse_pages);
        }
        h.check().unwrap();
        let dirty = h.counters().dirty_pages;
        let got = h.scavenge_pages(dirty);
        assert_eq!(got, dirty);
        assert_eq!(h.counters().dirty_pages, 0);
        h.check().unwrap();
    }
}
