//! Central free lists, one per size class (Go `mcentral`).
//!
//! Map: each [`MCentral`] owns the spans of its class in two lists,
//! `partial` (spans with objects to hand out: a non-empty span free list
//! or never-used objects past `freeindex`) and `full`. Caches move objects
//! in batches: [`refill`] takes up to a batch (Go `cacheSpan`, here by
//! object rather than by whole span, so several caches share a span) and
//! [`release`] takes a chain back (what Go's sweeper does for a span),
//! finding each object's span through the page map. A span whose objects
//! have all come back returns to the page heap at once. Lock order:
//! an mcentral lock, then the heap lock; never the reverse.
//!
//! Transfer slots: a full batch given back by one cache is parked whole
//! (up to [`XFER_SLOTS`] chains per class) and handed as-is to the next
//! cache that asks for a batch, so objects flowing from a freeing thread to
//! an allocating one (producer/consumer, goroutines moving between Ps) cost
//! O(1) under the lock when it is given back. A parked batch is checked
//! object by object when a cache takes it (objects of the span of the one
//! before need no page-map lookup); the same walk makes the taker the
//! owner of their spans (`MSpan::owner`, see `mcache`). Parked objects still count as allocated in their spans;
//! [`drain_xfer`] returns them (the scavenger calls it so parked objects
//! cannot pin spans).

use crate::lock::Mutex;
use crate::mcache::BATCH;
use crate::mheap::{
    owner_of_tag, owner_tag, set_owner, span_of, FreeObj, MSpan, SpanList, HEAP, SPAN_SMALL,
};
use crate::sizeclasses::{CLASS_TO_ALLOCNPAGES, CLASS_TO_SIZE, NUM_SIZE_CLASSES, PAGE_SIZE};
use core::ptr;

/// Spans of one class. Padded to a cache line so the locks of neighbouring
/// classes do not share one (Go pads `mheap.central` the same way).
#[repr(align(64))]
#[derive(Debug)]
pub struct MCentral {
    lists: Mutex<Lists>,
}

/// Parked whole batches per class.
pub const XFER_SLOTS: usize = 32;

#[derive(Debug)]
struct Lists {
    partial: SpanList,
    full: SpanList,
    /// Parked batches (each exactly `BATCH[class]` objects).
    xfer: [*mut FreeObj; XFER_SLOTS],
    nxfer: usize,
}

// SAFETY: the span lists are only touched under the mutex.
unsafe impl Send for Lists {}

impl MCentral {
    const fn new() -> Self {
        MCentral {
            lists: Mutex::new(Lists {
                partial: SpanList::new(),
                full: SpanList::new(),
                xfer: [ptr::null_mut(); XFER_SLOTS],
                nxfer: 0,
            }),
        }
    }
}

/// One central list per size class (index 0, the large class, is unused).
pub static CENTRAL: [MCentral; NUM_SIZE_CLASSES] = [const { MCentral::new() }; NUM_SIZE_CLASSES];

/// Locks every mcentral (ascending class order; `fork` prepare handler).
pub(crate) fn lock_all() {
    for c in CENTRAL.iter() {
        c.lists.raw_lock();
    }
}

/// Unlocks every mcentral; `child` resets instead (after `fork`).
///
/// # Safety
/// The caller holds every mcentral lock through [`lock_all`].
pub(crate) unsafe fn unlock_all(child: bool) {
    for c in CENTRAL.iter().rev() {
        // SAFETY: the caller holds this lock through lock_all.
        unsafe {
            if child {
                c.lists.reset_after_fork();
            } else {
                c.lists.raw_unlock();
            }
        }
    }
}

/// Validates every mcentral: list membership matches fullness, spans are
/// small spans of the right class, and each span's free objects (its list
/// plus never-used objects) number `nelems - alloc_count`. For tests and
/// debugging; objects held by caches are not visited.
pub fn check() -> Result<(), String> {
    for (class, c) in CENTRAL.iter().enumerate() {
        let g = c.lists.lock();
        for &h in &g.xfer[..g.nxfer] {
            let mut n = 0;
            let mut o = h;
            while !o.is_null() && n <= BATCH[class] {
                // SAFETY: parked chains are dead objects linked through their first word.
                o = unsafe { (*o).next };
                n += 1;
            }
            if n != BATCH[class] {
                return Err(format!("class {class}: parked batch of {n} objects"));
            }
        }
        for (full, list) in [(false, &g.partial), (true, &g.full)] {
            let mut s = list.first;
            while !s.is_null() {
                // SAFETY: spans on the lists are live; the lock is held, so
                // their free lists are stable and their objects are free.
                unsafe {
                    let sp = &*s;
                    if sp.state != SPAN_SMALL
                        || sp.sizeclass as usize != class
                        || sp.in_full != full
                    {
                        return Err(format!("class {class}: span {:#x} misfiled", sp.start));
                    }
                    if (sp.alloc_count == sp.nelems) != full || sp.alloc_count == 0 {
                        return Err(format!(
                            "class {class}: span {:#x} count {}",
                            sp.start, sp.alloc_count
                        ));
                    }
                    let mut nfree = (sp.nelems - sp.freeindex) as usize;
                    let mut o = sp.freelist;
                    while !o.is_null() {
                        let off = o as usize - sp.start;
                        if o as usize >= sp.end() || off % sp.elemsize as usize != 0 {
                            return Err(format!("class {class}: bad free object {o:p}"));
                        }
                        nfree += 1;
                        o = (*o).next;
                    }
                    if nfree != (sp.nelems - sp.alloc_count) as usize {
                        return Err(format!(
                            "class {class}: span {:#x} has {nfree} free objects, expected {}",
                            sp.start,
                            sp.nelems - sp.alloc_count
                        ));
                    }
                    s = sp.next;
                }
            }
        }
    }
    Ok(())
}

/// Takes `want` objects of `class`, linked through their first word.
/// Returns the chain head and its length (0 only when out of memory).
///
/// With `whole_batch`, a caller that can keep up to `BATCH[class]` objects
/// (a cache refill) may get a parked batch instead, whatever `want` is:
/// its objects were touched already, so taking all of them faults in no
/// page, and the hand-off stays O(1).
///
/// `owner` (a cache id, or 0) becomes the owner of every span objects
/// are taken from (`MSpan::owner`), and of the spans of a parked batch
/// (`claim_batch`). A partial span that another
/// live cache owns is passed over (up to `PARTIAL_LOOKS` of them, then
/// a fresh span is taken).
pub fn refill(class: usize, want: usize, whole_batch: bool, owner: usize) -> (*mut FreeObj, usize) {
    let mut g = CENTRAL[class].lists.lock();
    let b = BATCH[class] as usize;
    if (want == b || whole_batch && want <= b) && g.nxfer > 0 {
        g.nxfer -= 1;
        let i = g.nxfer;
        let h = core::mem::replace(&mut g.xfer[i], ptr::null_mut());
        // SAFETY: parked chains hold BATCH[class] dead objects linked
        // through their first word (release's contract); the lock is held.
        let ok = unsafe { claim_batch(class, h, b, owner) };
        drop(g);
        if !ok {
            rt_sys::throw("free of invalid pointer");
        }
        return (h, b);
    }
    let mut head: *mut FreeObj = ptr::null_mut();
    let mut n = 0;
    while n < want {
        let mut s = g.partial.first;
        if owner != 0 {
            // A span another live cache owns is left to it (the first few
            // looked at): objects carved from it would be that cache's,
            // and every free of them here would take the remote path.
            let mut looked = 0;
            // SAFETY: spans on the partial list are live; the lock is held.
            while !s.is_null() && looked < PARTIAL_LOOKS && unsafe { owned_by_other(s, owner) } {
                // SAFETY: as above.
                s = unsafe { (*s).next };
                looked += 1;
            }
            if looked == PARTIAL_LOOKS {
                s = ptr::null_mut();
            }
        }
        if s.is_null() {
            s = HEAP.lock().alloc_small_span(class);
            if s.is_null() {
                break;
            }
            // SAFETY: s is a fresh span in no list.
            unsafe { g.partial.push(s) };
        }
        // SAFETY: s is a live span of this class on the partial list; the
        // objects taken lie inside it and are free.
        unsafe {
            let sp = &mut *s;
            if owner != 0 {
                set_owner(s, owner_tag(owner, class));
            }
            while n < want {
                let obj = if !sp.freelist.is_null() {
                    let o = sp.freelist;
                    sp.freelist = (*o).next;
                    o
                } else if sp.freeindex < sp.nelems {
                    let o =
                        (sp.start + sp.freeindex as usize * sp.elemsize as usize) as *mut FreeObj;
                    sp.freeindex += 1;
                    if crate::mcache::CHECKS && sp.elemsize >= 16 {
                        // Never-used memory may hold an old poison mark
                        // whose tail was scavenged since: clear the mark so
                        // the object is not mistaken for a poisoned one.
                        *o.cast::<usize>().add(1) = 0;
                    }
                    o
                } else {
                    break;
                };
                (*obj).next = head;
                head = obj;
                n += 1;
                sp.alloc_count += 1;
            }
            if sp.alloc_count == sp.nelems {
                g.partial.remove(s);
                g.full.push(s);
                sp.in_full = true;
            }
        }
    }
    (head, n)
}

/// Returns a chain of `n` objects of `class` (linked through their first
/// word, the last link ignored) to their spans; empty spans go back to the
/// heap. A whole batch (`BATCH[class]` objects) is parked as it is while
/// a transfer slot is free; it is checked when a cache takes it
/// ([`refill`]). A pointer that is not an object of this class ends the
/// program with `fatal error: free of invalid pointer`, here or there, so
/// that no cache is ever handed a pointer the heap does not own.
///
/// # Safety
/// Every object in the chain was handed out for `class` and is dead.
pub unsafe fn release(class: usize, head: *mut FreeObj, n: usize) {
    let mut g = CENTRAL[class].lists.lock();
    if n == BATCH[class] as usize && g.nxfer < XFER_SLOTS {
        let i = g.nxfer;
        g.xfer[i] = head;
        g.nxfer += 1;
        return;
    }
    // SAFETY: forwarded caller contract; the lock is held.
    if !unsafe { release_locked(&mut g, class, head, n) } {
        // Not under the lock: the fatal path may allocate, and an
        // allocation of this class would wait for it forever.
        drop(g);
        rt_sys::throw("free of invalid pointer");
    }
}

/// Returns every parked batch to its spans (empty spans go to the heap).
pub fn drain_xfer() {
    for class in 1..NUM_SIZE_CLASSES {
        let mut g = CENTRAL[class].lists.lock();
        while g.nxfer > 0 {
            g.nxfer -= 1;
            let i = g.nxfer;
            let h = core::mem::replace(&mut g.xfer[i], ptr::null_mut());
            // SAFETY: parked chains hold exactly BATCH[class] dead objects of
            // this class (checked when parked); the lock is held.
            let ok = unsafe { release_locked(&mut g, class, h, BATCH[class] as usize) };
            if !ok {
                drop(g);
                rt_sys::throw("free of invalid pointer");
            }
        }
    }
}

/// Per class: Go's `class_to_divmagic`, with which `off / size` is
/// `(off * magic) >> 32` for every offset `off` inside a span of the class
/// (checked for every offset by the `div_magic_is_exact` test), so the
/// object checks below need no division (a 32-bit `div` was a fifth of
/// the batch check); and the bytes of a span's objects (`nelems * size`).
static OBJ_CHECK: [(u32, u32); NUM_SIZE_CLASSES] = {
    let mut t = [(0u32, 0u32); NUM_SIZE_CLASSES];
    let mut i = 1;
    while i < NUM_SIZE_CLASSES {
        let size = CLASS_TO_SIZE[i] as u32;
        let span = CLASS_TO_ALLOCNPAGES[i] as u32 * PAGE_SIZE as u32;
        t[i] = ((u32::MAX / size).wrapping_add(1), span - span % size);
        i += 1;
    }
    t
};

/// Whether byte offset `off` from the start of a span of `class` begins
/// one of its objects (any offset, inside the span or not).
#[inline(always)]
fn is_object_offset(class: usize, off: usize) -> bool {
    let size = CLASS_TO_SIZE[class] as usize;
    let (magic, end) = OBJ_CHECK[class];
    off < end as usize && ((off as u64 * magic as u64) >> 32) as usize * size == off
}

/// The small-object span `obj` lies in, if `obj` is the start of an object
/// of `class` there.
fn span_of_object(class: usize, obj: *mut FreeObj) -> Option<*mut MSpan> {
    let s: *mut MSpan = span_of(obj as usize);
    (!s.is_null() && is_object_in(s, class, obj)).then_some(s)
}

/// Whether `obj` is the start of an object of `class` in `s`, a non-null
/// page-map entry (`span_of(obj)`).
pub(crate) fn is_object_in(s: *mut MSpan, class: usize, obj: *mut FreeObj) -> bool {
    // For a valid object the span is live and these fields are stable while
    // the object is; for an invalid pointer they may be stale (a span merged
    // away): the check is then best-effort, all a foreign free can get.
    // SAFETY: a non-null page-map entry names span-structure memory, never
    // unmapped, so the reads are of mapped, initialised span fields.
    unsafe {
        (*s).state == SPAN_SMALL
            && (*s).sizeclass as usize == class
            && is_object_offset(class, (obj as usize).wrapping_sub((*s).start))
    }
}

/// Partial spans `refill` looks at, at most, for one that no other live
/// cache owns before it takes a fresh span.
const PARTIAL_LOOKS: usize = 8;

/// Whether small span `s` has an owner other than cache id `id` that is
/// still alive.
///
/// # Safety
/// `s` is a live small span; the caller holds its mcentral's lock.
unsafe fn owned_by_other(s: *mut MSpan, id: usize) -> bool {
    // SAFETY: caller contract.
    let o = owner_of_tag(unsafe { (*s).owner });
    o != id && crate::mcache::cache_id_live(o)
}

/// Checks a parked batch on its way to a cache: true when each of the `n`
/// objects of the chain at `head` is an object of `class`. `owner` (a
/// cache id, when not 0) becomes the owner of their spans, so that the
/// cache keeps the objects it frees again. (Leaving spans whose owner
/// lives to it instead, objects of an idle owner never found a cache that
/// kept them: on `larson`, 484 204 of 8 million frees took the remote
/// path with two threads, 15 777 with the takeover.)
///
/// # Safety
/// The first word of every object in the chain must be readable; the
/// caller holds `class`'s mcentral lock.
unsafe fn claim_batch(class: usize, mut head: *mut FreeObj, n: usize, owner: usize) -> bool {
    // Objects of one batch mostly share a few spans: an object inside the
    // span of the one before needs no page-map lookup. That span is live
    // (its earlier object still counts as allocated in it), so being
    // inside it at a multiple of the object size is the same test.
    let mut lo = usize::MAX;
    for _ in 0..n {
        let a = head as usize;
        if !is_object_offset(class, a.wrapping_sub(lo)) {
            let Some(s) = span_of_object(class, head) else {
                return false;
            };
            // SAFETY: s is the live span of a valid object (just checked).
            lo = unsafe { (*s).start };
            // SAFETY: s is a live span of this class; its lock is held
            // (caller).
            unsafe {
                if owner != 0 {
                    set_owner(s, owner_tag(owner, class));
                }
            }
        }
        // SAFETY: caller contract.
        head = unsafe { (*head).next };
    }
    true
}

/// Returns the chain to its spans; false (stopping there) at the first
/// pointer that is not an object of `class`, for the caller to report
/// once it has let go of the lock.
///
/// # Safety
/// As [`release`]; `g` is the guard of `class`'s mcentral.
unsafe fn release_locked(g: &mut Lists, class: usize, mut head: *mut FreeObj, n: usize) -> bool {
    for _ in 0..n {
        let obj = head;
        let Some(s) = span_of_object(class, obj) else {
            return false;
        };
        // obj is a dead object of this class (checked above, and the
        // caller's contract); s is its live span, guarded by this lock.
        // SAFETY: so obj's first word is ours to read and rewrite, and s's.
        unsafe {
            head = (*obj).next;
            let sp = &mut *s;
            (*obj).next = sp.freelist;
            sp.freelist = obj;
            if sp.in_full {
                g.full.remove(s);
                g.partial.push(s);
                sp.in_full = false;
            }
            sp.alloc_count -= 1;
            if sp.alloc_count == 0 {
                g.partial.remove(s);
                HEAP.lock().free_span(s);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn div_magic_is_exact() {
        for class in 1..NUM_SIZE_CLASSES {
            let size = CLASS_TO_SIZE[class] as usize;
            let span = CLASS_TO_ALLOCNPAGES[class] as usize * PAGE_SIZE;
            for off in 0..span + 2 * size {
                assert_eq!(
                    is_object_offset(class, off),
                    off / size < span / size && off % size == 0,
                    "class {class} offset {off}"
                );
            }
        }
        assert!(!is_object_offset(1, usize::MAX));
    }

    #[test]
    fn whole_batches_are_parked_and_handed_on() {
        let _serial = crate::tests::serial_heap();
        // Class 60 (18 KiB objects) is used by no other unit test.
        let class = 60;
        let b = BATCH[class] as usize;
        let (h, n) = refill(class, b, false, 0);
        assert_eq!(n, b);
        // SAFETY: the chain came from refill and is handed back unused.
        unsafe { release(class, h, n) };
        assert_eq!(CENTRAL[class].lists.lock().nxfer, 1);
        let (h2, n2) = refill(class, b, false, 0);
        assert_eq!((h2, n2), (h, b));
        // SAFETY: as above.
        unsafe { release(class, h2, n2) };
        // A single object for a caller that cannot keep a batch comes from a
        // span; a cache asking for fewer than a batch gets the parked one.
        let (h3, n3) = refill(class, 1, false, 0);
        assert_eq!(n3, 1);
        assert_eq!(CENTRAL[class].lists.lock().nxfer, 1);
        // SAFETY: as above.
        unsafe { release(class, h3, n3) };
        let (h4, n4) = refill(class, 1, true, 0);
        assert_eq!((h4, n4), (h, b));
        assert_eq!(CENTRAL[class].lists.lock().nxfer, 0);
        // SAFETY: as above.
        unsafe { release(class, h4, n4) };
        drain_xfer();
        let g = CENTRAL[class].lists.lock();
        assert_eq!(g.nxfer, 0);
        // Every object is back, so the span went back to the heap.
        assert!(g.partial.is_empty() && g.full.is_empty());
        drop(g);
        check().unwrap();
    }
}
