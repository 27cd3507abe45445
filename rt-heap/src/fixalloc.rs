//! Off-heap memory for the allocator's own fixed-size structures.
//!
//! Map: [`persistent_alloc`] (Go `persistentalloc`) carves never-freed
//! metadata from 256 KiB OS blocks with a bump pointer. [`FixAlloc`] (Go
//! `fixalloc`) hands out objects of one size from 16 KiB chunks
//! (`_FixAllocChunk`) taken from `persistent_alloc`, and keeps freed objects
//! on a free list for reuse. The heap owns one `FixAlloc` for spans
//! (`spanalloc`) and one for caches (`cachealloc`); both are used under the
//! heap lock. Running out of memory here is fatal (`throw("out of memory")`),
//! as in Go: the runtime cannot continue without its metadata.

use crate::sys;
use core::ptr;

/// Size of one `FixAlloc` chunk (Go `_FixAllocChunk`).
pub const FIX_ALLOC_CHUNK: usize = 16 << 10;
const PERSISTENT_CHUNK: usize = 256 << 10;

/// Bump allocator state for [`persistent_alloc`].
#[derive(Debug)]
pub struct Persistent {
    base: *mut u8,
    off: usize,
    /// Bytes obtained from the OS (reported as part of `Sys`).
    pub sys_bytes: usize,
}

// SAFETY: the raw pointer refers to process-global memory; the owner (the heap)
// serialises access through its lock.
unsafe impl Send for Persistent {}

impl Persistent {
    /// Empty state; the first request maps a block.
    pub const fn new() -> Self {
        Persistent {
            base: ptr::null_mut(),
            off: PERSISTENT_CHUNK,
            sys_bytes: 0,
        }
    }
}

/// Returns `size` zeroed bytes aligned to `align` (a power of two ≤ 4096)
/// that are never freed. Throws when the OS refuses memory.
pub fn persistent_alloc(st: &mut Persistent, size: usize, align: usize) -> *mut u8 {
    if size > PERSISTENT_CHUNK {
        let p = sys::sys_alloc(size);
        if p.is_null() {
            rt_sys::throw("out of memory");
        }
        st.sys_bytes += size;
        return p;
    }
    let mut off = (st.off + align - 1) & !(align - 1);
    if off + size > PERSISTENT_CHUNK {
        let p = sys::sys_alloc(PERSISTENT_CHUNK);
        if p.is_null() {
            rt_sys::throw("out of memory");
        }
        st.sys_bytes += PERSISTENT_CHUNK;
        st.base = p;
        off = 0;
    }
    st.off = off + size;
    // SAFETY: off + size ≤ PERSISTENT_CHUNK, inside the current block.
    unsafe { st.base.add(off) }
}

/// Free-list allocator of fixed-size objects (Go `fixalloc`).
#[derive(Debug)]
pub struct FixAlloc {
    size: usize,
    list: *mut FreeLink,
    chunk: *mut u8,
    nchunk: usize,
    /// Objects currently handed out.
    pub inuse: usize,
}

#[repr(C)]
struct FreeLink {
    next: *mut FreeLink,
}

impl Default for Persistent {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: see `Persistent`: used only under the heap lock.
unsafe impl Send for FixAlloc {}

impl FixAlloc {
    /// An allocator of `size`-byte objects (rounded to 16 bytes; a size
    /// that is a multiple of 64 keeps every object cache-line aligned).
    pub const fn new(size: usize) -> Self {
        FixAlloc {
            size: (size + 15) & !15,
            list: ptr::null_mut(),
            chunk: ptr::null_mut(),
            nchunk: 0,
            inuse: 0,
        }
    }

    /// One zeroed object, 16-byte aligned. Throws on OOM.
    pub fn alloc(&mut self, pst: &mut Persistent) -> *mut u8 {
        self.inuse += 1;
        if !self.list.is_null() {
            let v = self.list;
            // SAFETY: `v` is a freed object of `self.size` bytes on our list.
            unsafe {
                self.list = (*v).next;
                ptr::write_bytes(v.cast::<u8>(), 0, self.size);
            }
            return v.cast();
        }
        if self.nchunk < self.size {
            let n = FIX_ALLOC_CHUNK.max(self.size);
            self.chunk = persistent_alloc(pst, n, 64);
            self.nchunk = n;
        }
        let v = self.chunk;
        // SAFETY: nchunk ≥ size, so the object lies inside the chunk.
        self.chunk = unsafe { self.chunk.add(self.size) };
        self.nchunk -= self.size;
        // Chunk memory comes zeroed from the OS and is handed out once.
        v
    }

    /// Returns an object to the free list.
    ///
    /// # Safety
    /// `p` must come from `self.alloc` and not be used afterwards.
    pub unsafe fn free(&mut self, p: *mut u8) {
        self.inuse -= 1;
        let l = p.cast::<FreeLink>();
        // SAFETY: p is a dead object of at least 16 bytes, 16-byte aligned.
        unsafe { (*l).next = self.list };
        self.list = l;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_freed_objects_and_zeroes_them() {
        let mut pst = Persistent::new();
        let mut f = FixAlloc::new(40);
        let a = f.alloc(&mut pst);
        let b = f.alloc(&mut pst);
        assert_ne!(a, b);
        assert_eq!(a as usize % 16, 0);
        // SAFETY: a is a live 48-byte object.
        unsafe { ptr::write_bytes(a, 0xAB, 48) };
        // SAFETY: a came from f.alloc and is not used again before reuse.
        unsafe { f.free(a) };
        let c = f.alloc(&mut pst);
        assert_eq!(a, c);
        // SAFETY: c is a live 48-byte object.
        assert!(unsafe { core::slice::from_raw_parts(c, 48) }
            .iter()
            .all(|&x| x == 0));
        assert_eq!(f.inuse, 2);
    }
}
