//! The per-P stack cache (Go: `mcache.stackcache`).
//!
//! One LIFO array of free stacks per pooled order. Only the holder of the P touches it, so
//! the hot path (pop on alloc, push on free) takes no lock and no atomic beyond the
//! statistics. The pool refills an empty order to half its capacity and, when a free finds an
//! order full, releases it down to half first (Go's `stackcacherefill`/`stackcacherelease`
//! rule), so a goroutine that exits and a new one that starts on the same P trade the same
//! stack without touching the global pool.

use crate::{order_size, NUM_ORDERS};

/// Bytes of stacks a cache may hold per order (Go: `_StackCacheSize`, 32 KiB there for
/// 2–16 KiB stacks), at least [`MIN_CACHED`] stacks: 64/32/16/16/16 stacks of
/// 16/32/64/128/256 KiB. Only the pages those stacks touched cost memory.
pub const STACK_CACHE_SIZE: usize = 1 << 20;

/// The fewest stacks a cache holds of any order: Go's cache holds 16 of its default 2 KiB
/// stacks. (With 4 default stacks per P, a goroutine tree whose children exit on one P
/// while their parents start children on the other traded every other stack through the
/// global pool's lock: `cargo xtask bench`, workload `tree`.)
pub const MIN_CACHED: usize = 16;

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// The most stacks any order can hold (that of the smallest order).
const CACHE_MAX: usize = max(STACK_CACHE_SIZE / order_size(0), MIN_CACHED);

/// The number of stacks of `order` a cache holds when full (0 for `order >= NUM_ORDERS`).
pub const fn cache_capacity(order: usize) -> usize {
    if order < NUM_ORDERS {
        max(STACK_CACHE_SIZE / order_size(order), MIN_CACHED)
    } else {
        0
    }
}

/// A per-P cache of free stacks of the pooled orders.
///
/// Owned by whoever holds the P (no lock). Stacks in a cache count as `cached` in
/// [`crate::stats`]; call [`crate::stackcache_clear`] before dropping a cache, or its stacks
/// stay out of circulation.
pub struct StackCache {
    /// `len[o]` stacks of order `o` sit in `list[o][..len[o]]`, most recently freed last.
    len: [usize; NUM_ORDERS],
    /// The `lo` of each cached stack.
    list: [[usize; CACHE_MAX]; NUM_ORDERS],
}

impl StackCache {
    /// An empty cache; `const` so it can sit in a static or a P built at compile time.
    pub const fn new() -> Self {
        StackCache {
            len: [0; NUM_ORDERS],
            list: [[0; CACHE_MAX]; NUM_ORDERS],
        }
    }

    /// Stacks of `order` currently held (0 for an order out of range).
    pub fn count(&self, order: usize) -> usize {
        if order < NUM_ORDERS {
            self.len[order]
        } else {
            0
        }
    }

    /// Total stacks held over all orders.
    pub fn total(&self) -> usize {
        self.len.iter().sum()
    }

    pub(crate) fn pop(&mut self, order: usize) -> Option<usize> {
        let n = self.len[order];
        if n == 0 {
            return None;
        }
        self.len[order] = n - 1;
        Some(self.list[order][n - 1])
    }

    /// Pushes a stack; the caller has made room (`count(order) < cache_capacity(order)`).
    pub(crate) fn push(&mut self, order: usize, lo: usize) {
        let n = self.len[order];
        debug_assert!(n < cache_capacity(order));
        self.list[order][n] = lo;
        self.len[order] = n + 1;
    }
}

impl Default for StackCache {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for StackCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StackCache")
            .field("len", &self.len)
            .finish()
    }
}
