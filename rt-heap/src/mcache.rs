//! Per-P and per-thread object caches (Go `mcache`) and the allocation
//! paths that use them.
//!
//! Map:
//! - [`MCache`]: one free list of objects per size class, plus counters.
//!   A cache has exactly one user at a time: the M that holds its P, or
//!   the thread that owns it. Its lists are therefore touched without
//!   locks or atomic read-modify-writes; the counters are atomics written
//!   with plain relaxed stores (only the owner writes them) so `memstats`
//!   may read them from any thread.
//! - Thread binding: a `thread_local!` (const-initialised, no destructor,
//!   so access is a single TLS load) holds `cur`, the cache the calling
//!   thread allocates through. Threads that run goroutines (Ms) keep it in
//!   their GS-based block instead and leave `cur` null
//!   ([`register_m_thread`]; the reason is on `Tls`), and an M that
//!   acquired a P points it at the P's cache ([`bind_thread_cache`]). Every
//!   thread also gets its own cache, created lazily on first use and
//!   flushed back to the mcentrals when the thread exits (a second
//!   thread-local with a destructor).
//! - Hot path ([`malloc`]): size → class by table, one TLS load, pop the
//!   class list. On an M the TLS load gives null, and one jump leads to the
//!   same pop on the cache read from the M's block. [`free`]: class from
//!   the layout, the owner tag of the object's page, and when its span is
//!   owned by this cache (and of this class), push on the list. Misses take
//!   a batch from the mcentral ([`crate::mcentral::refill`]).
//! - Free path without the central lock in the steady state. Each class
//!   keeps, beside its list, up to `SPARE_MAX[class]` full batches
//!   (`SPARE_BYTES`, 256 KiB, worth): a free that makes the list one
//!   longer than a batch sets the list aside as a batch by its head, no
//!   walk, and an allocation on an empty list takes the newest batch back.
//!   Only batches beyond those go to the mcentral, whole, where they are
//!   parked in O(1) (its transfer slots, tcmalloc's transfer cache). The
//!   design is tcmalloc's per-thread cache plus transfer cache rather than
//!   mimalloc's per-span lists with atomic remote-free lists: it keeps
//!   Go's object-batch refills, needs no new lock-free structure, and
//!   measured at or below mimalloc on the allocator benchmarks once
//!   nothing on the way walks a list and remote frees are told apart (see
//!   below). Measured
//!   causes of the old costs (`perf` on the `cargo xtask bench` workloads):
//!   halving an overlong list walked it, and returning the half looked up
//!   every object's span under the class lock (on `json` with two threads
//!   the mcentral's functions took 13% of the time, the allocator's fast
//!   paths 17%); and objects that went through the mcentral often reached
//!   another thread, whose first touch of each then missed its cache.
//! - Remote frees, mimalloc's idea on Go's spans: each small span records
//!   an owner, the id of the cache that carves objects from it (a refill
//!   passes over partial spans that another live cache owns, as Go's
//!   mcache holds its span alone) or that takes its objects from a parked
//!   batch. The page table beside the span table holds it per page with
//!   the class
//!   (`crate::mheap::page_owner`), so `free` checks both with one load and
//!   one comparison. An object whose span another cache owns is not
//!   pushed on the freeing cache's list: it joins a per-class remote
//!   chain, which goes to the mcentral as one batch when full. So a
//!   consumer thread does not hoard a producer's objects (`xthread` peak
//!   RSS), and a thread that frees its neighbour's object does not reuse
//!   it at once and write next to the neighbour's live objects (false
//!   sharing: `cscratch` with two threads went from 1.9× mimalloc's time
//!   to below it). Ownership is only a hint: either way the object reaches
//!   a list of its class. A pointer that has no span, or a span of another
//!   class, takes the remote path, where it is checked at once and is a
//!   fatal error if it is not an object. Measured (frees that took the
//!   remote path, of 2 million, two threads): `json` 49 470 with spans
//!   shared between carving caches, 4 with owners' spans left to them;
//!   `cscratch` 269 062 and 6. The check costs `free` a few loads that
//!   miss when the program's objects do (`larson`, random frees over a
//!   megabyte: up to a tenth of its time).
//! - Large objects (class 0) go straight to the page heap.
//! - A registry of all caches (under its own lock) lets `memstats` sum the
//!   counters; counters of destroyed caches are folded into its totals.

use crate::lock::Mutex;
use crate::mcentral;
use crate::mheap::{
    owner_tag, page_owner, span_of, FreeObj, MSpan, HEAP, HEAP_ARENA_BYTES, SPAN_LARGE, SPAN_SMALL,
};
use crate::sizeclasses::{
    CLASS_TO_SIZE, MAX_SMALL_SIZE, NUM_SIZE_CLASSES, PAGE_SIZE, SIZE_TO_CLASS128, SIZE_TO_CLASS8,
    SMALL_SIZE_MAX,
};
use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};

/// Largest alignment served (1 GiB); larger requests get null.
pub const MAX_ALIGN: usize = HEAP_ARENA_BYTES * 16;
/// Largest request served (64 TiB, beyond any heap this design can map).
pub const MAX_ALLOC: usize = 1 << 46;

/// Objects moved between a cache and an mcentral at a time for `class`:
/// about 32 KiB worth, between 2 and 128 objects. (With at most 64, the
/// 8-byte class of the `json` workload overflowed its spare batches: 13
/// batches per document went through the mcentral on one thread.)
const fn batch_for(class: usize) -> u32 {
    let size = CLASS_TO_SIZE[class] as usize;
    if size == 0 {
        return 0;
    }
    let b = 32768 / size;
    if b < 2 {
        2
    } else if b > 128 {
        128
    } else {
        b as u32
    }
}

/// Most full batches a cache keeps per class beyond its list (see
/// `set_aside`).
const SPARE_BATCHES: usize = 16;

/// Bytes of spare batches a cache keeps per class, at most: enough that a
/// thread that builds and drops a structure of a few hundred KiB over
/// and over reuses its own objects. Measured on the `json` workload (two
/// threads): with one spare batch, 23 batches per document went through
/// the mcentral, where the other thread could take them, cold in its
/// cache; the most a class needed was 160 KiB (640-byte objects).
const SPARE_BYTES: usize = 256 << 10;

/// Spare batches per class: `SPARE_BYTES` worth, 1 to `SPARE_BATCHES`.
static SPARE_MAX: [u32; NUM_SIZE_CLASSES] = {
    let mut t = [0u32; NUM_SIZE_CLASSES];
    let mut i = 1;
    while i < NUM_SIZE_CLASSES {
        let n = SPARE_BYTES / (BATCH_INIT[i] as usize * CLASS_TO_SIZE[i] as usize);
        t[i] = if n < 1 {
            1
        } else if n > SPARE_BATCHES {
            SPARE_BATCHES as u32
        } else {
            n as u32
        };
        i += 1;
    }
    t
};

/// Batch size per class (see `batch_for`).
pub(crate) static BATCH: [u32; NUM_SIZE_CLASSES] = BATCH_INIT;

const BATCH_INIT: [u32; NUM_SIZE_CLASSES] = {
    let mut t = [0u32; NUM_SIZE_CLASSES];
    let mut i = 0;
    while i < NUM_SIZE_CLASSES {
        t[i] = batch_for(i);
        i += 1;
    }
    t
};

/// A cache's first batch for `class`: one OS page worth of objects (at
/// least one, at most a full batch). Linking a batch writes the first word
/// of every object, so a full batch of never-used memory faults in up to
/// eight pages; most classes are used a handful of times by a thread (all
/// of them at start-up), and only a class used again earns full batches.
/// Measured on `rt-demo hello`: about 205 → 143 page faults, boot RSS
/// 2520 → 2276 KiB.
const fn first_batch_for(class: usize) -> u32 {
    let size = CLASS_TO_SIZE[class] as usize;
    if size == 0 {
        return 0;
    }
    let per_page = (4096 / size) as u32;
    let b = batch_for(class);
    if per_page == 0 {
        1
    } else if per_page > b {
        b
    } else {
        per_page
    }
}

/// First batch size per class (see `first_batch_for`).
pub(crate) static FIRST_BATCH: [u32; NUM_SIZE_CLASSES] = {
    let mut t = [0u32; NUM_SIZE_CLASSES];
    let mut i = 0;
    while i < NUM_SIZE_CLASSES {
        t[i] = first_batch_for(i);
        i += 1;
    }
    t
};

/// One class's cached objects: the list allocation pops from and frees
/// push on (at most `BATCH[class] + 1` long). What the fast paths touch,
/// 32 bytes: two classes share a cache line.
#[repr(C)]
#[derive(Debug)]
struct FreeList {
    head: *mut FreeObj,
    len: u32,
    /// Batches set aside in the class's [`Spares`].
    nspare: u32,
    /// Objects handed out through this list (cumulative).
    nalloc: AtomicU64,
    /// Objects freed into this list (cumulative).
    nfree: AtomicU64,
}

/// One class's objects beside its list, touched only off the fast paths.
#[repr(C)]
#[derive(Debug)]
struct Spares {
    /// Full batches set aside (`batch[..nspare]`, oldest first): chains of
    /// exactly `BATCH[class]` objects (see `set_aside`).
    batch: [*mut FreeObj; SPARE_BATCHES],
    /// Objects of spans another cache owns, freed here (`nremote` of them):
    /// they go back to the mcentral as one batch, never to the list.
    remote: *mut FreeObj,
    nremote: u32,
}

/// A cache of free objects for one P or one thread (Go `mcache`). Opaque
/// to the runtime: obtained from [`allocmcache`], released by [`freemcache`].
/// Cache-line aligned so caches of different threads never share a line.
///
/// Laid out in order of use: the fields every cache writes when it is made
/// (id, registry links) and the lists come first, the spare batches (three
/// quarters of the size, touched only once a class overflows) last. A
/// cache comes from zeroed memory that is not written at creation, so its
/// spare pages stay out of the resident set until a class overflows
/// (measured: the static `bench-rt boot` peak RSS went from 1816 to
/// 1808 KiB when the header moved here from behind the spares).
#[repr(C, align(64))]
#[derive(Debug)]
pub struct MCache {
    /// The cache's id in span owner tags (`crate::mheap::owner_tag`), from
    /// 1 to `MAX_CACHE_IDS - 1`, or 0 for none; read on every free.
    id: usize,
    /// Large objects allocated through this cache (cumulative).
    large_nalloc: AtomicU64,
    /// Bytes of those large objects (cumulative).
    large_bytes: AtomicU64,
    next: *mut MCache,
    prev: *mut MCache,
    /// Self-checks: the thread pointer of the one thread allowed to use the
    /// cache now (0: none), set when a thread binds or creates it.
    owner: core::sync::atomic::AtomicUsize,
    lists: [FreeList; NUM_SIZE_CLASSES],
    spares: [Spares; NUM_SIZE_CLASSES],
}

/// Cache ids (see [`MCache`]'s `id`) are below this.
const MAX_CACHE_IDS: usize = 1 << 16;

/// `LIVE_IDS[id]`: whether a live cache has that id. A refill leaves the
/// partial spans of live caches to them (`crate::mcentral::refill`).
/// Written under the registry lock, read without.
static LIVE_IDS: [core::sync::atomic::AtomicBool; MAX_CACHE_IDS] =
    [const { core::sync::atomic::AtomicBool::new(false) }; MAX_CACHE_IDS];

/// Whether the cache with id `id` is alive (false for 0, "none").
pub(crate) fn cache_id_live(id: usize) -> bool {
    id != 0 && id < MAX_CACHE_IDS && LIVE_IDS[id].load(Ordering::Relaxed)
}

/// Whether the runtime's self-checks are compiled in: always in debug
/// builds, in release builds with the `rtcheck` feature (HACKING.md,
/// "Self-checks"). They check that a cache is only used by the thread that
/// owns it, and poison freed objects so that a write after free or a double
/// free is reported where it is found.
pub const CHECKS: bool = cfg!(any(debug_assertions, feature = "rtcheck"));

/// The poison of a freed object's bytes after its first two words.
const POISON_BYTE: u8 = 0xdb;
/// Word 1 of a poisoned object, xor its class: tells a poisoned object of
/// this class from fresh memory or an object of another layout.
const POISON_MAGIC: usize = 0xf7ee_d0bb_f7ee_d0bb;

/// Self-check: `c` is used by the thread that owns it.
#[cold]
#[inline(never)]
fn check_owner(c: *mut MCache) {
    // SAFETY: c is a live cache (callers hold a pointer from `current`).
    let owner = unsafe { (*c).owner.load(Ordering::Relaxed) };
    if owner != crate::arch::thread_pointer() {
        rt_sys::throw("mcache used by a thread that does not own it (its P belongs to another M)");
    }
}

/// Self-check on free: poisons the dead object `p` of `class`, after
/// reporting a second free of an object that is still poisoned.
///
/// # Safety
/// `p` is a dead object of `class` (at least 16 bytes for any effect).
#[cold]
#[inline(never)]
unsafe fn poison_freed(p: *mut u8, class: usize) {
    let size = CLASS_TO_SIZE[class] as usize;
    if size < 16 {
        return;
    }
    // SAFETY: p is a dead object of `size` bytes (caller).
    unsafe {
        let w = p.cast::<usize>().add(1);
        if *w == POISON_MAGIC ^ class
            && core::slice::from_raw_parts(p.add(16), size - 16)
                .iter()
                .all(|&b| b == POISON_BYTE)
        {
            rt_sys::throw("double free of a heap object (it is still poisoned from its last free)");
        }
        *w = POISON_MAGIC ^ class;
        ptr::write_bytes(p.add(16), POISON_BYTE, size - 16);
    }
}

/// Self-check on allocation: a poisoned object must still be intact (no
/// write after its free); the poison mark is removed.
///
/// # Safety
/// `p` is a free object of `class` just taken off a list.
#[cold]
#[inline(never)]
unsafe fn check_poison(p: *mut u8, class: usize) {
    let size = CLASS_TO_SIZE[class] as usize;
    if size < 16 {
        return;
    }
    // SAFETY: p is a free object of `size` bytes, ours now (caller).
    unsafe {
        let w = p.cast::<usize>().add(1);
        if *w != POISON_MAGIC ^ class {
            return;
        }
        if !core::slice::from_raw_parts(p.add(16), size - 16)
            .iter()
            .all(|&b| b == POISON_BYTE)
        {
            rt_sys::throw("write to a freed heap object (its poison changed while it was free)");
        }
        *w = 0;
    }
}

/// Relaxed increment by a single writer: a load and a store, no RMW.
#[inline(always)]
fn bump(c: &AtomicU64, by: u64) {
    c.store(
        c.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// All live caches plus the totals of destroyed ones.
struct Registry {
    head: *mut MCache,
    ncaches: usize,
    /// No id below this is free (the search for one starts here).
    lowest_free_id: usize,
    dead_nalloc: [u64; NUM_SIZE_CLASSES],
    dead_nfree: [u64; NUM_SIZE_CLASSES],
}

// SAFETY: only reached through its mutex.
unsafe impl Send for Registry {}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    head: ptr::null_mut(),
    ncaches: 0,
    lowest_free_id: 1,
    dead_nalloc: [0; NUM_SIZE_CLASSES],
    dead_nfree: [0; NUM_SIZE_CLASSES],
});

/// Locks the registry (`fork` prepare handler).
pub(crate) fn lock_registry() {
    REGISTRY.raw_lock();
}

/// Unlocks the registry; `child` resets instead (after `fork`).
///
/// # Safety
/// The caller holds the registry lock through [`lock_registry`].
pub(crate) unsafe fn unlock_registry(child: bool) {
    // SAFETY: forwarded caller contract.
    unsafe {
        if child {
            REGISTRY.reset_after_fork();
        } else {
            REGISTRY.raw_unlock();
        }
    }
}

/// Per-class counter sums over every cache, live or gone.
pub(crate) struct ClassTotals {
    pub nalloc: [u64; NUM_SIZE_CLASSES],
    pub nfree: [u64; NUM_SIZE_CLASSES],
    pub ncaches: usize,
}

pub(crate) fn class_totals() -> ClassTotals {
    let r = REGISTRY.lock();
    let mut t = ClassTotals {
        nalloc: r.dead_nalloc,
        nfree: r.dead_nfree,
        ncaches: r.ncaches,
    };
    let mut c = r.head;
    while !c.is_null() {
        for i in 1..NUM_SIZE_CLASSES {
            // SAFETY: c is a registered live cache (removal takes this lock);
            // only its atomic counters are read, through shared references.
            unsafe {
                t.nalloc[i] += (*ptr::addr_of!((*c).lists[i].nalloc)).load(Ordering::Relaxed);
                t.nfree[i] += (*ptr::addr_of!((*c).lists[i].nfree)).load(Ordering::Relaxed);
            }
        }
        // SAFETY: registry links are only changed under this lock.
        c = unsafe { (*c).next };
    }
    t
}

/// Go `allocmcache`: a new empty cache from `cachealloc`, registered for
/// statistics. Initialises the heap if needed. Never null: a heap that
/// cannot start, or no memory for the cache itself, is a fatal error, as
/// in Go.
pub fn allocmcache() -> *mut MCache {
    crate::init_or_throw();
    let c = {
        let mut h = HEAP.lock();
        let h = &mut *h;
        h.cachealloc.alloc(&mut h.pst).cast::<MCache>()
    };
    // (c is a zeroed MCache-sized block from cachealloc: all-zero is a
    // valid empty cache.)
    let mut r = REGISTRY.lock();
    // The lowest free id (0, "none", when all are taken: the cache then
    // owns no span, and all its frees take the remote path). The lowest,
    // so that a cache made after another one's end takes its id, and with
    // it the spans the old cache owned: a thread that replaces one that
    // exited (`larson`'s rounds) frees the objects it inherits locally,
    // as mimalloc's new threads reclaim abandoned pages.
    let mut id = 0;
    for i in r.lowest_free_id..MAX_CACHE_IDS {
        if !LIVE_IDS[i].load(Ordering::Relaxed) {
            LIVE_IDS[i].store(true, Ordering::Relaxed);
            r.lowest_free_id = i + 1;
            id = i;
            break;
        }
    }
    // SAFETY: c is ours; the old head is a live registered cache.
    unsafe {
        (*c).id = id;
        (*c).next = r.head;
        if !r.head.is_null() {
            (*r.head).prev = c;
        }
    }
    r.head = c;
    r.ncaches += 1;
    c
}

/// Go `freemcache`: gives every cached object back to the mcentrals, folds
/// the counters into the global totals and frees the cache. If the calling
/// thread is bound to `c`, it is unbound first.
///
/// # Safety
/// `c` came from [`allocmcache`], is not freed yet, and no thread other than
/// the caller uses it now or later.
pub unsafe fn freemcache(c: *mut MCache) {
    if c.is_null() {
        return;
    }
    let _ = TLS.try_with(|t| {
        if current_of(t) == c {
            set_current_of(t, t.own.get());
        }
        if t.own.get() == c {
            t.own.set(ptr::null_mut());
            if current_of(t) == c {
                set_current_of(t, ptr::null_mut());
            }
        }
    });
    // SAFETY: the caller gives us exclusive use of c.
    unsafe {
        for i in 1..NUM_SIZE_CLASSES {
            let l = ptr::addr_of_mut!((*c).lists[i]);
            if (*l).len > 0 {
                mcentral::release(i, (*l).head, (*l).len as usize);
                (*l).head = ptr::null_mut();
                (*l).len = 0;
            }
            let sp = ptr::addr_of_mut!((*c).spares[i]);
            if (*sp).nremote > 0 {
                mcentral::release(i, (*sp).remote, (*sp).nremote as usize);
                (*sp).remote = ptr::null_mut();
                (*sp).nremote = 0;
            }
            for k in 0..(*l).nspare as usize {
                mcentral::release(i, (*sp).batch[k], BATCH[i] as usize);
            }
            (*l).nspare = 0;
        }
    }
    {
        let mut r = REGISTRY.lock();
        // SAFETY: c is registered; its neighbours are live registered caches.
        unsafe {
            for i in 1..NUM_SIZE_CLASSES {
                r.dead_nalloc[i] += (*c).lists[i].nalloc.load(Ordering::Relaxed);
                r.dead_nfree[i] += (*c).lists[i].nfree.load(Ordering::Relaxed);
            }
            if (*c).prev.is_null() {
                r.head = (*c).next;
            } else {
                (*(*c).prev).next = (*c).next;
            }
            if !(*c).next.is_null() {
                (*(*c).next).prev = (*c).prev;
            }
        }
        r.ncaches -= 1;
        // SAFETY: c is ours until cachealloc gets it back below.
        let id = unsafe { (*c).id };
        if id != 0 {
            LIVE_IDS[id].store(false, Ordering::Relaxed);
            r.lowest_free_id = r.lowest_free_id.min(id);
        }
    }
    // SAFETY: c came from cachealloc and is dead now.
    unsafe { HEAP.lock().cachealloc.free(c.cast()) };
}

/// What the calling thread allocates through.
///
/// On a thread that is not an M, `cur` is the current cache. On an M, `cur`
/// is always null and `mode` says where the cache is. The reason is that
/// allocation is inlined into goroutine code, and a goroutine may park and
/// resume on another M between two allocations in one function: the
/// compiler may have computed this thread-local's address once, before the
/// park, so the value read afterwards can be the *previous* thread's (see
/// `rt_sys::tls`). Every M's `cur` and `mode` hold the same values, so that
/// stale read still gives the right answer: null, "no cache here", which
/// sends the allocation out of line, where `mode` (the same on every M)
/// says to read the M's block through the GS base, afresh each time. The
/// fast path of a thread that is not an M is untouched: one load, one null
/// test, as before.
struct Tls {
    /// The current cache of a thread that is not an M (null until it has
    /// one); always null on an M.
    cur: Cell<*mut MCache>,
    /// `PLAIN`, or on an M where its current cache lives: [`VIA_GS`] or
    /// [`VIA_CALL`].
    mode: Cell<u8>,
    /// The current cache of an M whose GS base could not be set
    /// ([`VIA_CALL`]); read only out of line.
    mcur: Cell<*mut MCache>,
    /// The thread's own cache (null until first needed).
    own: Cell<*mut MCache>,
    /// `LIVE`, `FRESH`, `CREATING` or `EXITED`.
    state: Cell<u8>,
}

/// `Tls::mode` of a thread that is not an M.
const PLAIN: u8 = 0;
/// `Tls::mode` of an M: the current cache is in the GS slot
/// `rt_sys::tls::TLS_MCACHE`.
const VIA_GS: u8 = 1;
/// `Tls::mode` of an M without a GS block: the current cache is in
/// `Tls::mcur`, read by a call the compiler cannot inline ([`current_fresh`]).
const VIA_CALL: u8 = 2;

const FRESH: u8 = 0;
const LIVE: u8 = 1;
const CREATING: u8 = 2;
const EXITED: u8 = 3;

/// Flushes the thread's own cache when the thread exits.
struct ThreadCacheGuard;

impl Drop for ThreadCacheGuard {
    fn drop(&mut self) {
        let _ = TLS.try_with(|t| {
            t.state.set(EXITED);
            let own = t.own.replace(ptr::null_mut());
            if current_of(t) == own {
                set_current_of(t, ptr::null_mut());
            }
            if !own.is_null() {
                // SAFETY: own was created by this thread for its sole use and
                // is no longer reachable from the thread-local.
                unsafe { freemcache(own) };
            }
        });
    }
}

thread_local! {
    static TLS: Tls = const {
        Tls {
            cur: Cell::new(ptr::null_mut()),
            mode: Cell::new(PLAIN),
            mcur: Cell::new(ptr::null_mut()),
            own: Cell::new(ptr::null_mut()),
            state: Cell::new(FRESH),
        }
    };
    static GUARD: ThreadCacheGuard = const { ThreadCacheGuard };
}

/// The cache of a thread that is not an M, or null: on an M, or before the
/// thread has a cache, or while it exits. The inlined fast paths use this
/// and go out of line on null.
#[inline(always)]
fn plain_current() -> *mut MCache {
    TLS.with(|t| t.cur.get())
}

/// The calling thread's current cache, or null (not created yet, being
/// created, or the thread is exiting). Out of line: on an M it reads the
/// M's block, and a call is executed where it is written.
#[inline(never)]
fn current() -> *mut MCache {
    TLS.with(current_of)
}

/// The current cache of an M without a GS block, read where the compiler
/// cannot reuse a thread-local address computed before a park.
#[inline(never)]
fn current_fresh() -> *mut MCache {
    TLS.with(|t| t.mcur.get())
}

/// The current cache given this thread's thread-local.
#[inline(always)]
fn current_of(t: &Tls) -> *mut MCache {
    match t.mode.get() {
        // Only Ms set VIA_GS, after their GS base points at their own block
        // (`register_m_thread`); an M keeps its GS base and thread for life.
        // SAFETY: the GS base names this M's live block.
        VIA_GS => unsafe { crate::arch::gs_mcache() },
        VIA_CALL => current_fresh(),
        _ => t.cur.get(),
    }
}

/// Makes `c` this thread's current cache, given its (fresh) thread-local.
/// With the self-checks, the thread becomes `c`'s owner and gives up the
/// cache it used before.
fn set_current_of(t: &Tls, c: *mut MCache) {
    if CHECKS {
        let prev = current_of(t);
        // SAFETY: both are live caches (null aside); ownership is only a
        // record for `check_owner`.
        unsafe {
            if !prev.is_null() && prev != c {
                (*prev).owner.store(0, Ordering::Relaxed);
            }
            if !c.is_null() {
                (*c).owner
                    .store(crate::arch::thread_pointer(), Ordering::Relaxed);
            }
        }
    }
    match t.mode.get() {
        // SAFETY: as in `current_of`; the block is this thread's own.
        VIA_GS => unsafe { crate::arch::set_gs_mcache(c) },
        VIA_CALL => t.mcur.set(c),
        _ => t.cur.set(c),
    }
}

/// Marks the calling thread as an M: from now on its current cache is kept
/// in its M block (`rt_sys::tls::TLS_MCACHE`, reached through the GS base)
/// when `gs_block` is true, or out of line when the runtime runs without a
/// GS block. The cache the thread was using, if any, stays current.
///
/// Idempotent.
///
/// # Safety
/// Called by a thread that runs goroutines for the rest of its life and
/// never exits. With `gs_block`, the thread's GS base points at
/// its own live M block for the rest of its life.
#[inline(never)]
pub unsafe fn register_m_thread(gs_block: bool) {
    TLS.with(|t| {
        let c = current_of(t);
        if gs_block {
            t.mode.set(VIA_GS);
        } else {
            t.mode.set(VIA_CALL);
        }
        t.cur.set(ptr::null_mut());
        set_current_of(t, c);
    });
}

/// Creates the calling thread's own cache if it may have one.
#[cold]
#[inline(never)]
fn create_thread_cache() -> *mut MCache {
    TLS.with(|t| {
        let cur = current_of(t);
        if !cur.is_null() {
            return cur;
        }
        if t.state.get() != FRESH && !(t.state.get() == LIVE && t.own.get().is_null()) {
            return ptr::null_mut();
        }
        t.state.set(CREATING);
        let c = allocmcache();
        if c.is_null() {
            t.state.set(FRESH);
            return c;
        }
        t.own.set(c);
        set_current_of(t, c);
        t.state.set(LIVE);
        // Register the exit flush; may allocate, which now finds the cache.
        let _ = GUARD.try_with(|_| {});
        c
    })
}

/// Points the calling thread at `c` (an M acquiring a P). Null is the same
/// as [`unbind_thread_cache`].
///
/// # Safety
/// `c` came from [`allocmcache`], is not freed, and no other thread uses it
/// until it is unbound here.
#[inline(never)]
pub unsafe fn bind_thread_cache(c: *mut MCache) {
    TLS.with(|t| {
        if c.is_null() {
            set_current_of(t, t.own.get());
        } else {
            set_current_of(t, c);
        }
    });
}

/// Goes back to the thread's own cache (`releasep`); returns the cache that
/// was bound (null if none was).
#[inline(never)]
pub fn unbind_thread_cache() -> *mut MCache {
    TLS.with(|t| {
        let prev = current_of(t);
        let own = t.own.get();
        set_current_of(t, own);
        if prev == own {
            ptr::null_mut()
        } else {
            prev
        }
    })
}

/// Cumulative bytes and allocations through the calling thread's current
/// cache (small objects by class size, large by span size).
pub fn thread_alloc_counters() -> (u64, u64) {
    let c = current();
    if c.is_null() {
        return (0, 0);
    }
    // SAFETY: c is the calling thread's live cache.
    unsafe { cache_alloc_counters(c) }
}

/// The value the inlined allocation path reads from the calling thread's
/// thread-local: the current cache on a thread that is not an M, null on
/// an M (whose cache is in its GS block, `rt_sys::tls`). Exposed so tests
/// can check that invariant: a non-null value on an M would be a cache a
/// goroutine could keep using after it moved to another M.
#[doc(hidden)]
pub fn thread_local_cache_slot() -> *mut MCache {
    plain_current()
}

/// The cache the calling thread allocates through now (a P's bound cache,
/// or the thread's own), or null before it has one. Identifies the cache
/// for [`cache_alloc_counters`]; telling caches apart is its only use.
pub fn current_cache() -> *mut MCache {
    current()
}

/// Cumulative bytes and allocations through cache `c`.
///
/// # Safety
/// `c` must be a live cache (not yet given to [`freemcache`]).
pub unsafe fn cache_alloc_counters(c: *const MCache) -> (u64, u64) {
    let (mut bytes, mut n) = (0u64, 0u64);
    for i in 1..NUM_SIZE_CLASSES {
        // SAFETY: c is live (caller contract); counters are atomics.
        let a = unsafe { (*ptr::addr_of!((*c).lists[i].nalloc)).load(Ordering::Relaxed) };
        bytes += a * CLASS_TO_SIZE[i] as u64;
        n += a;
    }
    // SAFETY: as above.
    unsafe {
        bytes += (*ptr::addr_of!((*c).large_bytes)).load(Ordering::Relaxed);
        n += (*ptr::addr_of!((*c).large_nalloc)).load(Ordering::Relaxed);
    }
    (bytes, n)
}

/// Size class for a request (0: large object). Deterministic in
/// `(size, align)`, so `free` recomputes what `malloc` chose. Size 0 is
/// served as size 1. An alignment is honoured by choosing a class whose
/// object size is a multiple of it (objects start at `span + k*size`, and
/// spans are page aligned); above a page, the object is large.
#[inline(always)]
pub fn size_class(size: usize, align: usize) -> usize {
    let c = if align <= 16 {
        let mut c = if size <= SMALL_SIZE_MAX {
            // Size 0 is served as size 1 (Go's table maps 0 to class 0).
            SIZE_TO_CLASS8[(size.max(1) + 7) >> 3] as usize
        } else if size <= MAX_SMALL_SIZE {
            SIZE_TO_CLASS128[(size - SMALL_SIZE_MAX + 127) >> 7] as usize
        } else {
            0
        };
        // 16-byte alignment (u128, SIMD types) stays on the fast path: every
        // class but 1 (8 B) and 3 (24 B) is a multiple of 16, and the class
        // right after each of those (16 B, 32 B) is (checked by the
        // `align16_classes` test). No table load: the class number decides.
        if align == 16 {
            // c in {1, 3} <=> c < 4 and odd.
            c += (c < 4) as usize & c;
        }
        c
    } else {
        size_class_aligned(size, align)
    };
    // The generated lookup tables hold only class numbers below
    // NUM_SIZE_CLASSES (checked by the `tables_hold_valid_classes` test and
    // by construction in the generator), and `size_class_aligned` stops at
    // the last class. This lets the hot paths index `lists` unchecked.
    // SAFETY: c < NUM_SIZE_CLASSES for every input, as just argued.
    unsafe { core::hint::assert_unchecked(c < NUM_SIZE_CLASSES) };
    c
}

#[inline(never)]
fn size_class_aligned(size: usize, align: usize) -> usize {
    // Not a power of two: no class can promise it (the large path refuses).
    if align > PAGE_SIZE || size > MAX_SMALL_SIZE || !align.is_power_of_two() {
        return 0;
    }
    let s = (size.max(1) + align - 1) & !(align - 1);
    if s > MAX_SMALL_SIZE {
        return 0;
    }
    let mut c = size_class(s, 8);
    // Class 67 (32 KiB) is a multiple of every alignment up to a page.
    while (CLASS_TO_SIZE[c] as usize) % align != 0 {
        c += 1;
    }
    c
}

/// Allocates `size` bytes aligned to `align` (a power of two). Null when
/// out of memory, the request is beyond [`MAX_ALLOC`]/[`MAX_ALIGN`], or an
/// alignment above 16 is not a power of two (one up to 16 that is not gets
/// 8-byte alignment: the fast path does not spend a check on it, and
/// `GlobalAlloc` never asks for one).
#[inline(always)]
pub fn malloc(size: usize, align: usize) -> *mut u8 {
    // The common case first, with nothing live across a call: sizes up to
    // 1 KiB at the natural or 16-byte alignment. Everything else goes
    // through `malloc_general`, so this path needs no callee-saved
    // registers (measured with `cargo xtask bench --only malloc`).
    if align <= 16 && size <= SMALL_SIZE_MAX {
        let class = size_class(size, align);
        let c = plain_current();
        if c.is_null() {
            // An M (or a thread without a cache yet): one jump to the
            // out-of-line path.
            // SAFETY: size_class returns a class below NUM_SIZE_CLASSES.
            return unsafe { malloc_no_plain_cache(class) };
        }
        // SAFETY: c is this thread's own current cache (or null).
        let h = unsafe { pop_from(c, class) };
        if !h.is_null() {
            return h;
        }
        return malloc_small_slow(class);
    }
    malloc_general(size, align)
}

/// [`malloc`]'s small path on an M (the cache comes from the M's block)
/// or on a thread that has no cache yet (`malloc_small_slow` makes one).
///
/// # Safety
/// `class` is a small class (below `NUM_SIZE_CLASSES`).
#[inline(never)]
unsafe fn malloc_no_plain_cache(class: usize) -> *mut u8 {
    // SAFETY: caller contract (the class bound lets the list index go
    // unchecked, as on the inlined path).
    unsafe { core::hint::assert_unchecked(class < NUM_SIZE_CLASSES) };
    // SAFETY: this is the calling thread's current cache (or null).
    let h = unsafe { pop_from(TLS.with(current_of), class) };
    if !h.is_null() {
        return h;
    }
    malloc_small_slow(class)
}

/// [`malloc`] for sizes above 1 KiB or alignments above 16.
#[inline(never)]
fn malloc_general(size: usize, align: usize) -> *mut u8 {
    let class = size_class(size, align);
    if class != 0 {
        let h = cache_pop(class);
        if !h.is_null() {
            return h;
        }
        return malloc_small_slow(class);
    }
    malloc_large(size, align).0
}

/// Pops a free object of `class` from the calling thread's current cache:
/// one thread-local load, a list pop, two counter updates. Null when the
/// thread has no cache yet or the list is empty.
#[inline(always)]
fn cache_pop(class: usize) -> *mut u8 {
    // SAFETY: current() is the calling thread's current cache (or null).
    unsafe { pop_from(current(), class) }
}

/// Pops a free object of `class` from `c`; null when `c` is null or its
/// list is empty.
///
/// # Safety
/// `c` is null or the calling thread's current cache.
#[inline(always)]
unsafe fn pop_from(c: *mut MCache, class: usize) -> *mut u8 {
    if c.is_null() {
        return ptr::null_mut();
    }
    if CHECKS {
        check_owner(c);
    }
    // SAFETY: c is the calling thread's current cache, used by this thread
    // alone; the head object is free and ours.
    unsafe {
        let l = ptr::addr_of_mut!((*c).lists[class]);
        let h = (*l).head;
        if !h.is_null() {
            (*l).head = (*h).next;
            (*l).len -= 1;
            bump(&(*l).nalloc, 1);
            if CHECKS {
                check_poison(h.cast(), class);
            }
        }
        h.cast()
    }
}

/// Pushes the dead object `p` of `class` onto the calling thread's current
/// cache, flushing half the list to its `mcentral` when it grows past its
/// bound. False (nothing done) when the thread has no cache.
///
/// # Safety
/// `p` is a non-null dead object of `class`, not used afterwards.
#[inline(always)]
unsafe fn cache_push(p: *mut u8, class: usize) -> bool {
    // SAFETY: forwarded caller contract; current() is the calling thread's
    // current cache (or null).
    unsafe { push_to(current(), p, class) }
}

/// Pushes the dead object `p` of `class` onto `c` (see [`cache_push`]).
///
/// # Safety
/// `c` is null or the calling thread's current cache; `p` is a non-null
/// dead object of `class`, not used afterwards.
#[inline(always)]
unsafe fn push_to(c: *mut MCache, p: *mut u8, class: usize) -> bool {
    if c.is_null() {
        return false;
    }
    if CHECKS {
        check_owner(c);
        // SAFETY: p is a dead object of class (caller).
        unsafe { poison_freed(p, class) };
    }
    // SAFETY: c is the calling thread's live cache.
    if page_owner(p as usize) != owner_tag(unsafe { (*c).id }, class) {
        // SAFETY: forwarded caller contract; c is the calling thread's cache.
        unsafe { push_remote(c, p, class) };
        return true;
    }
    // SAFETY: c is the calling thread's cache; p is a dead object of this
    // class (caller), so its first word may hold the link.
    unsafe {
        let l = ptr::addr_of_mut!((*c).lists[class]);
        let o = p.cast::<FreeObj>();
        (*o).next = (*l).head;
        (*l).head = o;
        (*l).len += 1;
        bump(&(*l).nfree, 1);
        if (*l).len > BATCH[class] {
            set_aside(c, class);
        }
    }
    true
}

#[cold]
#[inline(never)]
fn malloc_small_slow(class: usize) -> *mut u8 {
    let mut c = current();
    if c.is_null() {
        c = create_thread_cache();
    }
    if c.is_null() {
        // No cache on this thread (exiting, or creating its cache): one
        // object straight from the mcentral, counted in the global totals.
        crate::init_or_throw();
        let (h, n) = mcentral::refill(class, 1, false, 0);
        if n == 0 {
            return out_of_memory();
        }
        REGISTRY.lock().dead_nalloc[class] += 1;
        return h.cast();
    }
    if CHECKS {
        check_owner(c);
    }
    // SAFETY: c is the calling thread's current cache.
    unsafe {
        let l = ptr::addr_of_mut!((*c).lists[class]);
        if (*l).head.is_null() && (*l).nspare > 0 {
            (*l).nspare -= 1;
            (*l).head = (*c).spares[class].batch[(*l).nspare as usize];
            (*l).len = BATCH[class];
        }
        if (*l).head.is_null() {
            let want = if (*l).nalloc.load(Ordering::Relaxed) == 0 {
                FIRST_BATCH[class]
            } else {
                BATCH[class]
            };
            let (h, n) = mcentral::refill(class, want as usize, true, (*c).id);
            if n == 0 {
                return out_of_memory();
            }
            (*l).head = h;
            (*l).len = n as u32;
        }
        let h = (*l).head;
        (*l).head = (*h).next;
        (*l).len -= 1;
        bump(&(*l).nalloc, 1);
        if CHECKS {
            check_poison(h.cast(), class);
        }
        h.cast()
    }
}

/// The null of a request the OS could not back, noted (see
/// [`rt_sys::note_alloc_failure`]) so that the abort std makes of an
/// unhandled one reads as Go's `fatal error: out of memory`.
#[cold]
fn out_of_memory() -> *mut u8 {
    rt_sys::note_alloc_failure();
    ptr::null_mut()
}

/// A large object: its own span. Returns the object and whether its memory
/// may hold old data.
#[cold]
pub(crate) fn malloc_large(size: usize, align: usize) -> (*mut u8, bool) {
    if align > MAX_ALIGN || !align.is_power_of_two() {
        return (ptr::null_mut(), false);
    }
    if size > MAX_ALLOC {
        return (out_of_memory(), false);
    }
    crate::init_or_throw();
    let s = HEAP.lock().alloc_large(size.max(1), align);
    if s.is_null() {
        return (out_of_memory(), false);
    }
    // SAFETY: s is the in-use span just allocated for us.
    let (start, npages, needzero) = unsafe { ((*s).start, (*s).npages, (*s).needzero) };
    let c = current();
    if !c.is_null() {
        // SAFETY: c is the calling thread's cache; counters are single-writer.
        unsafe {
            bump(&(*c).large_nalloc, 1);
            bump(&(*c).large_bytes, (npages * PAGE_SIZE) as u64);
        }
    }
    (start as *mut u8, needzero)
}

/// The span of a large object, or a fatal error for a bad pointer.
pub(crate) fn large_span(p: *mut u8) -> *mut MSpan {
    let s = span_of(p as usize);
    // SAFETY: a non-null page-map entry is a live span structure.
    if s.is_null() || unsafe { (*s).state != SPAN_LARGE || (*s).start != p as usize } {
        rt_sys::throw("free of invalid pointer");
    }
    s
}

/// Frees an object allocated by [`malloc`] with the same `size`/`align`.
///
/// # Safety
/// `p` came from [`malloc`] (or [`crate::realloc`]) with this size and
/// alignment and is not used afterwards.
#[inline(always)]
pub unsafe fn free(p: *mut u8, size: usize, align: usize) {
    // As in `malloc`: the common small case with nothing live across a call.
    if align <= 16 && size <= SMALL_SIZE_MAX && !p.is_null() {
        let class = size_class(size, align);
        let c = plain_current();
        if c.is_null() {
            // An M (or a thread without a cache yet): one jump to the
            // out-of-line path.
            // SAFETY: forwarded caller contract.
            return unsafe { free_no_plain_cache(p, class) };
        }
        // SAFETY: forwarded caller contract (p is a dead object of that
        // class); c is this thread's own current cache (or null).
        if unsafe { push_to(c, p, class) } {
            return;
        }
    }
    // SAFETY: forwarded caller contract.
    unsafe { free_general(p, size, align) }
}

/// Where the heap's page map places `p`: `Some((class, usable))` when `p`
/// is the start of an object of an in-use span, with the object's size
/// class (0 for a large object) and the bytes usable from `p` (the class
/// size; a large object's whole span). `None` for anything else: a
/// pointer outside the heap, an interior pointer, a free span. This is the
/// lookup for callers that do not know an object's layout (a C `free`);
/// the layout-based paths above never make it.
///
/// # Safety
/// If `p` is an object the heap handed out, it must not be freed while
/// this call runs: its span's fields are read without a lock, which is
/// only sound while the span stays in use. (For any other `p` the reads
/// touch span structures, which are never unmapped, and the answer is
/// `None` or a stale but harmless size.)
pub unsafe fn object_of(p: *const u8) -> Option<(usize, usize)> {
    let a = p as usize;
    let s = span_of(a);
    if s.is_null() {
        return None;
    }
    // SAFETY: a non-null page-map entry is span-structure memory that is
    // never unmapped; for a live object its fields are stable (caller).
    let (state, start, npages, class, elemsize, nelems) = unsafe {
        (
            (*s).state,
            (*s).start,
            (*s).npages,
            (*s).sizeclass as usize,
            (*s).elemsize as usize,
            (*s).nelems as usize,
        )
    };
    match state {
        SPAN_LARGE if a == start => Some((0, npages * PAGE_SIZE)),
        SPAN_SMALL if class != 0 && elemsize != 0 => {
            let off = a.wrapping_sub(start);
            (off % elemsize == 0 && off / elemsize < nelems).then_some((class, elemsize))
        }
        _ => None,
    }
}

/// Frees an object given only its address (the C `free`): the class comes
/// from the page map ([`object_of`]), then the object takes the same path
/// as [`free`] with its layout. Null is ignored; a pointer the heap did not
/// hand out is a fatal error (`free of invalid pointer`).
///
/// # Safety
/// `p` is null or an object from [`malloc`] (any size and alignment), not
/// freed yet and not used afterwards.
pub unsafe fn free_unsized(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // SAFETY: p is live until the free below (caller).
    let found = unsafe { object_of(p) };
    match found {
        // The class size at 8-byte alignment maps back to `class` (sizes
        // strictly increase with the class, each maps to the smallest: I14).
        // SAFETY: p is a dead object of `class`, freed with its class size.
        Some((class, size)) if class != 0 => unsafe { free(p, size, 8) },
        // SAFETY: p is the dead large object starting its span (caller).
        Some(_) => unsafe { free_large(p) },
        None => rt_sys::throw("free of invalid pointer"),
    }
}

/// [`free`]'s small path on an M (the cache comes from the M's block) or
/// on a thread that has no cache yet.
///
/// # Safety
/// `p` is a non-null dead object of `class` (a small class, below
/// `NUM_SIZE_CLASSES`), not used afterwards.
#[inline(never)]
unsafe fn free_no_plain_cache(p: *mut u8, class: usize) {
    // SAFETY: forwarded caller contract; this is the calling thread's
    // current cache (or null).
    unsafe {
        core::hint::assert_unchecked(class < NUM_SIZE_CLASSES);
        if !push_to(TLS.with(current_of), p, class) {
            free_small_slow(p, class);
        }
    }
}

/// [`free`] for everything but the small common case.
///
/// # Safety
/// As [`free`].
#[inline(never)]
unsafe fn free_general(p: *mut u8, size: usize, align: usize) {
    if p.is_null() {
        return;
    }
    let class = size_class(size, align);
    if class != 0 {
        // SAFETY: forwarded caller contract.
        if unsafe { !cache_push(p, class) } {
            // SAFETY: forwarded caller contract.
            unsafe { free_small_slow(p, class) };
        }
        return;
    }
    // SAFETY: forwarded caller contract.
    unsafe { free_large(p) };
}

/// Frees a large object: its span goes back to the page heap.
///
/// # Safety
/// `p` is null or a dead large object from [`malloc`].
#[cold]
#[inline(never)]
unsafe fn free_large(p: *mut u8) {
    if p.is_null() {
        return;
    }
    let s = large_span(p);
    // SAFETY: s holds exactly the dead large object p (caller).
    unsafe { HEAP.lock().free_span(s) };
}

/// # Safety
/// `p` is a dead object of `class`.
#[cold]
#[inline(never)]
unsafe fn free_small_slow(p: *mut u8, class: usize) {
    let c = create_thread_cache();
    if !c.is_null() {
        // SAFETY: forwarded caller contract; c is now the thread's cache.
        unsafe { free(p, CLASS_TO_SIZE[class] as usize, 8) };
        return;
    }
    REGISTRY.lock().dead_nfree[class] += 1;
    // SAFETY: p is a dead object of class (caller).
    unsafe { mcentral::release(class, p.cast(), 1) };
}

/// Frees `p`, an object of a span that `c` does not own (or a pointer
/// that is not an object of `class` at all: a fatal error here). It
/// joins the cache's remote chain, which goes to the mcentral as one
/// batch once it holds `BATCH[class]` objects. So the object is reused by
/// whichever cache takes that batch, not at once by this one: a thread
/// that frees an object its neighbour allocated does not start writing
/// next to the neighbour's live objects.
///
/// # Safety
/// `c` is the calling thread's cache; `p` is a dead object of `class`,
/// not used afterwards.
#[cold]
#[inline(never)]
unsafe fn push_remote(c: *mut MCache, p: *mut u8, class: usize) {
    let s = span_of(p as usize);
    if s.is_null() || !mcentral::is_object_in(s, class, p.cast()) {
        rt_sys::throw("free of invalid pointer");
    }
    // SAFETY: c is ours (caller); p is a dead object of this class
    // (checked above and the caller's contract), free to hold a link.
    unsafe {
        let sp = ptr::addr_of_mut!((*c).spares[class]);
        let o = p.cast::<FreeObj>();
        (*o).next = (*sp).remote;
        (*sp).remote = o;
        (*sp).nremote += 1;
        bump(&(*c).lists[class].nfree, 1);
        if (*sp).nremote == BATCH[class] {
            let h = (*sp).remote;
            (*sp).remote = ptr::null_mut();
            (*sp).nremote = 0;
            mcentral::release(class, h, BATCH[class] as usize);
        }
    }
}

/// A free made the list one longer than a batch: all of it but the object
/// just freed is set aside as a spare batch; when `SPARE_MAX[class]` are
/// set aside already, the oldest goes back to the mcentral, whole.
/// Nothing is walked: the list's length is known and a batch moves by its
/// head alone (the mcentral parks it as is). An allocation on an empty
/// list takes the newest spare back, so the most recently freed
/// (cache-warm) objects are reused first, by the thread that freed them.
/// Keeping the one object makes the two moves an object apart: a thread
/// that allocates and frees one object at a time next to either boundary
/// (as `cscratch` does right after a refill) stays on the fast paths;
/// with the list emptied at exactly a batch, each free there set a batch
/// aside and the next allocation took it back (measured: 16 → 22 ns per
/// allocate-write-free in `cscratch`).
///
/// # Safety
/// `c` is the calling thread's cache; its `class` list holds exactly
/// `BATCH[class] + 1` objects.
#[cold]
#[inline(never)]
unsafe fn set_aside(c: *mut MCache, class: usize) {
    // SAFETY: c is ours (caller); each spare is a chain of BATCH[class]
    // dead objects of this class.
    unsafe {
        let l = ptr::addr_of_mut!((*c).lists[class]);
        let sp = ptr::addr_of_mut!((*c).spares[class].batch);
        let mut n = (*l).nspare as usize;
        if n as u32 == SPARE_MAX[class] {
            let old = (*sp)[0];
            (*sp).copy_within(1.., 0);
            n -= 1;
            mcentral::release(class, old, BATCH[class] as usize);
        }
        let h = (*l).head;
        (*sp)[n] = (*h).next;
        (*l).nspare = n as u32 + 1;
        (*h).next = ptr::null_mut();
        (*l).len = 1;
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn alignments_that_are_not_powers_of_two_are_refused() {
        crate::mallocinit().unwrap();
        for align in [24usize, 48, 4095, 8191, 3 << 20] {
            assert_eq!(size_class_aligned(100, align), 0, "{align}");
            assert!(malloc(100, align).is_null(), "{align}");
            assert!(malloc(1 << 20, align).is_null(), "{align}");
        }
    }

    #[test]
    fn align16_classes() {
        for c in 1..NUM_SIZE_CLASSES {
            let odd = CLASS_TO_SIZE[c] % 16 != 0;
            assert_eq!(odd, c == 1 || c == 3, "class {c}");
            if odd {
                assert_eq!(CLASS_TO_SIZE[c + 1] % 16, 0);
            }
        }
        for size in 1..=MAX_SMALL_SIZE {
            let c = size_class(size, 16);
            assert!(
                CLASS_TO_SIZE[c] as usize >= size && CLASS_TO_SIZE[c] % 16 == 0,
                "size {size}"
            );
        }
    }

    use super::*;

    #[test]
    fn tables_hold_valid_classes() {
        assert!(SIZE_TO_CLASS8
            .iter()
            .all(|&c| (c as usize) < NUM_SIZE_CLASSES));
        assert!(SIZE_TO_CLASS128
            .iter()
            .all(|&c| (c as usize) < NUM_SIZE_CLASSES));
        for align in (0..=13).map(|b| 1usize << b) {
            for size in [0, 1, 7, 100, 1000, 5000, 32768] {
                assert!(size_class(size, align) < NUM_SIZE_CLASSES);
            }
        }
    }

    #[test]
    fn fresh_cache_is_empty() {
        // Serial with every test that creates caches: a freed cache's
        // memory is reused by the next one, which `registered` would see.
        let _serial = crate::tests::SERIAL
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Go's I16 counterpart: a new cache holds nothing (Go: every
        // `alloc[i]` is `&emptymspan`).
        let c = allocmcache();
        // SAFETY: c is fresh and unused by anyone else.
        unsafe {
            for i in 0..NUM_SIZE_CLASSES {
                assert!((*c).lists[i].head.is_null() && (*c).lists[i].len == 0);
            }
            freemcache(c);
        }
    }

    fn registered(c: *mut MCache) -> bool {
        let r = REGISTRY.lock();
        let mut p = r.head;
        while !p.is_null() {
            if p == c {
                return true;
            }
            // SAFETY: registry members are live caches.
            p = unsafe { (*p).next };
        }
        false
    }

    fn own_cache() -> *mut MCache {
        TLS.with(|t| t.own.get())
    }

    #[test]
    fn cache_lifecycle_bind_unbind_free_and_thread_exit() {
        // Serial with every test that creates caches: a freed cache's
        // memory is reused by the next one, which `registered` would see.
        let _serial = crate::tests::serial_heap();
        // A thread's own cache appears on first use and is flushed and
        // unregistered when the thread exits.
        let (own, objs) = std::thread::spawn(|| {
            let ps: Vec<usize> = (0..1000)
                .map(|i| malloc(16 + i % 200, 8) as usize)
                .collect();
            for (i, &p) in ps.iter().enumerate() {
                // SAFETY: allocated above with this size and alignment.
                unsafe { free(p as *mut u8, 16 + i % 200, 8) };
            }
            (own_cache() as usize, ps.len())
        })
        .join()
        .unwrap();
        assert_eq!(objs, 1000);
        assert_ne!(own, 0);
        assert!(!registered(own as *mut MCache));

        // A P's cache: bind, allocate through it, unbind, free it.
        let c = allocmcache();
        assert!(!c.is_null() && registered(c));
        // SAFETY: c is fresh and used by this thread alone.
        unsafe { bind_thread_cache(c) };
        assert_eq!(current(), c);
        assert_eq!(thread_alloc_counters(), (0, 0));
        // No parked batch (the thread above left its spares parked), so the
        // first refill comes from a span.
        mcentral::drain_xfer();
        let p = malloc(100, 8);
        let big = malloc(100_000, 8);
        let (bytes, n) = thread_alloc_counters();
        assert_eq!(n, 2);
        assert_eq!(bytes, 112 + 13 * 8192);
        // SAFETY: both allocated above with these sizes.
        unsafe {
            free(p, 100, 8);
            free(big, 100_000, 8);
        }
        // SAFETY: c is this thread's bound cache; only its length is read.
        let len = unsafe { (*c).lists[size_class(100, 8)].len };
        // The cache's first refill of a class is one page of objects.
        assert_eq!(len as usize, FIRST_BATCH[size_class(100, 8)] as usize);
        assert_eq!(unbind_thread_cache(), c);
        assert_ne!(current(), c);
        assert!(unbind_thread_cache().is_null());
        // SAFETY: c is unbound and used by nobody.
        unsafe { freemcache(c) };
        assert!(!registered(c));
    }

    #[test]
    fn first_refill_is_one_page_then_full_batches() {
        // Serial with every test that creates caches: a freed cache's
        // memory is reused by the next one, which `registered` would see.
        let _serial = crate::tests::serial_heap();
        for size in [16usize, 112, 512, 1024, 4096, 9472, 32768] {
            let class = size_class(size, 8);
            let (first, full) = (FIRST_BATCH[class] as usize, BATCH[class] as usize);
            assert!(first >= 1 && first <= full, "size {size}");
            assert!(first == 1 || first * CLASS_TO_SIZE[class] as usize <= 4096);
            std::thread::spawn(move || {
                // A fresh cache, so that nothing the thread did before has
                // refilled this class yet.
                let c = allocmcache();
                // SAFETY: c is fresh and used by this thread alone.
                unsafe { bind_thread_cache(c) };
                // SAFETY: c is this thread's cache; only lengths are read.
                let len = || unsafe { (*c).lists[class].len as usize };
                let mut ps = vec![malloc(size, 8) as usize];
                assert_eq!(len(), first - 1, "size {size}");
                while len() > 0 {
                    ps.push(malloc(size, 8) as usize);
                }
                ps.push(malloc(size, 8) as usize);
                assert_eq!(len(), full - 1, "size {size}");
                for &p in &ps {
                    // SAFETY: allocated above with this layout.
                    unsafe { free(p as *mut u8, size, 8) };
                }
                assert_eq!(unbind_thread_cache(), c);
                // SAFETY: c is unbound and used by nobody.
                unsafe { freemcache(c) };
            })
            .join()
            .unwrap();
        }
    }

    #[test]
    fn overlong_lists_go_back_to_the_mcentral() {
        // Serial with every test that creates caches: a freed cache's
        // memory is reused by the next one, which `registered` would see.
        let _serial = crate::tests::serial_heap();
        std::thread::spawn(|| {
            let class = size_class(48, 8);
            let n = 10 * BATCH[class] as usize;
            let ps: Vec<usize> = (0..n).map(|_| malloc(48, 8) as usize).collect();
            for &p in &ps {
                // SAFETY: allocated above with this layout.
                unsafe { free(p as *mut u8, 48, 8) };
                let c = current();
                // SAFETY: c is this thread's cache.
                let l = unsafe { &(*c).lists[class] };
                assert!(l.len <= BATCH[class]);
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn objects_of_spans_another_cache_owns_go_back_as_one_batch() {
        let _serial = crate::tests::serial_heap();
        // Class 58 (14336 B, batches of 2) is used by no other unit test.
        let size = 14336;
        let class = size_class(size, 8);
        let b = BATCH[class] as usize;
        mcentral::drain_xfer();
        // The allocating thread lives on until the end, so that its cache
        // (the owner of the spans) is not freed and its memory reused for
        // the freeing thread's cache.
        let (tx, rx) = std::sync::mpsc::channel::<Vec<usize>>();
        let (end_tx, end_rx) = std::sync::mpsc::channel::<()>();
        let owner = std::thread::spawn(move || {
            tx.send((0..b).map(|_| malloc(size, 8) as usize).collect())
                .unwrap();
            end_rx.recv().unwrap();
        });
        let ps = rx.recv().unwrap();
        std::thread::spawn(move || {
            let c = allocmcache();
            // SAFETY: c is fresh and used by this thread alone.
            unsafe { bind_thread_cache(c) };
            for (i, &p) in ps.iter().enumerate() {
                // SAFETY: allocated above with this layout, freed once.
                unsafe { free(p as *mut u8, size, 8) };
                // SAFETY: c is this thread's cache; only counts are read.
                let (len, nremote) = unsafe { ((*c).lists[class].len, (*c).spares[class].nremote) };
                // Never on the list; the chain empties when it is a batch.
                assert_eq!(len, 0);
                assert_eq!(nremote as usize, (i + 1) % b);
            }
            // The batch is parked whole, and a refill hands it on and makes
            // the taker the owner of its spans: its frees are local now.
            let q = malloc(size, 8);
            assert!(ps.contains(&(q as usize)));
            // SAFETY: q is live, allocated with this layout.
            unsafe { free(q, size, 8) };
            // SAFETY: as above.
            unsafe {
                assert_eq!((*c).lists[class].len as usize, b);
                assert_eq!((*c).spares[class].nremote, 0);
            }
            assert_eq!(unbind_thread_cache(), c);
            // SAFETY: c is unbound and used by nobody.
            unsafe { freemcache(c) };
        })
        .join()
        .unwrap();
        end_tx.send(()).unwrap();
        owner.join().unwrap();
        mcentral::drain_xfer();
        crate::check_heap().unwrap();
    }

    #[test]
    fn object_of_finds_class_and_usable_size_of_every_kind_of_object() {
        crate::mallocinit().unwrap();
        // (size, align): small at several alignments, an aligned small
        // object, a large object, a large object forced by its alignment.
        let cases = [
            (0usize, 8usize),
            (1, 16),
            (8, 8),
            (24, 8),
            (100, 16),
            (1000, 16),
            (5000, 16),
            (100, 64),
            (3000, 4096),
            (32768, 16),
            (40000, 16),
            (1 << 20, 16),
            (16, 1 << 14),
            (100, 1 << 20),
        ];
        for (size, align) in cases {
            let p = malloc(size, align);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "{size}/{align}");
            // SAFETY: p is live.
            let (class, usable) = unsafe { object_of(p) }.expect("a heap object");
            assert_eq!(class, size_class(size, align), "{size}/{align}");
            assert!(usable >= size.max(1), "{size}/{align}: {usable}");
            if class != 0 {
                assert_eq!(usable, CLASS_TO_SIZE[class] as usize);
            } else {
                assert_eq!(usable % PAGE_SIZE, 0);
            }
            // The whole usable size is writable.
            // SAFETY: p is live with `usable` bytes.
            unsafe { ptr::write_bytes(p, 0x5a, usable) };
            if usable > 1 {
                // SAFETY: p is live; an interior pointer is not an object.
                assert_eq!(unsafe { object_of(p.add(1)) }, None);
            }
            // SAFETY: p is live and not used after this.
            unsafe { free_unsized(p) };
        }
        let on_stack = 0u64;
        // SAFETY: not a heap object, nothing to keep alive.
        assert_eq!(unsafe { object_of((&on_stack as *const u64).cast()) }, None);
        // SAFETY: as above.
        assert_eq!(unsafe { object_of(ptr::null()) }, None);
        // SAFETY: null is ignored.
        unsafe { free_unsized(ptr::null_mut()) };
        crate::check_heap().unwrap();
    }

    #[test]
    fn free_unsized_returns_objects_to_their_class() {
        crate::mallocinit().unwrap();
        std::thread::spawn(|| {
            let class = size_class(48, 16);
            let p = malloc(48, 16);
            let c = current();
            // SAFETY: c is this thread's cache.
            let before = unsafe { (*c).lists[class].nfree.load(Ordering::Relaxed) };
            // SAFETY: p is live and not used after this.
            unsafe { free_unsized(p) };
            // SAFETY: as above.
            let after = unsafe { (*c).lists[class].nfree.load(Ordering::Relaxed) };
            assert_eq!(after, before + 1);
            // The object comes back from the same list.
            assert_eq!(malloc(48, 16), p);
            // SAFETY: p is live again and not used after this.
            unsafe { free_unsized(p) };
        })
        .join()
        .unwrap();
    }
}
