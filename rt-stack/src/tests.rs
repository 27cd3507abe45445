//! Tests of the stack pool.
//!
//! Most tests build a private [`Pool`] so each can choose its guard mechanism and VMA budget
//! in one process. Tests that must crash (a write into a guard page, a bad `stackfree`) or
//! that count VMAs (other tests map and unmap concurrently) re-run this test binary on one
//! test with `RT_STACK_TEST_CHILD` set and check how the child ended.

use super::*;
use crate::pool::{Pool, CARVE_BYTES, CARVE_MAX_SLOTS, GLOBAL_WARM_BYTES};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

const CHILD_ENV: &str = "RT_STACK_TEST_CHILD";

/// The test binary's allocator: the system one, counting allocations per thread so a test
/// can check that a path allocates nothing.
struct CountingAlloc;

thread_local! {
    static ALLOCS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local Cell, which never allocates.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: CountingAlloc = CountingAlloc;

fn allocations() -> usize {
    ALLOCS.with(|c| c.get())
}

/// Whether this process is the child run of `test`.
fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(test)
}

/// Re-runs this test binary on exactly `tests::<test>` in child mode.
fn run_child(test: &str) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    Command::new(exe)
        .args([
            &format!("tests::{test}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, test)
        .output()
        .expect("spawn child test process")
}

fn pool(guard: GuardPolicy) -> Pool {
    Pool::new(&StackConfig {
        default_size: DEFAULT_STACK_SIZE,
        guard,
    })
    .expect("pool")
}

/// The size class a request of `size` bytes must get.
fn expected_size(size: usize) -> usize {
    size.max(MIN_STACK_SIZE).next_power_of_two()
}

fn touch(addr: usize) {
    // SAFETY: callers pass an address inside the usable range of a live stack they own.
    unsafe { core::ptr::write_volatile(addr as *mut u8, 0xa5) };
}

fn read(addr: usize) -> u8 {
    // SAFETY: callers pass an address inside the usable range of a live stack they own.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------
// Size classes and errors

#[test]
fn size_classes_round_up_to_powers_of_two() {
    assert_eq!(class_of(1), Ok(0));
    assert_eq!(class_of(MIN_STACK_SIZE), Ok(0));
    assert_eq!(class_of(MIN_STACK_SIZE + 1), Ok(1));
    assert_eq!(class_of(DEFAULT_STACK_SIZE), Ok(NUM_ORDERS - 1));
    assert_eq!(class_of(DEFAULT_STACK_SIZE + 1), Ok(NUM_ORDERS));
    assert_eq!(class_of(MAX_STACK_SIZE), Ok(NUM_CLASSES - 1));
    for c in 0..NUM_CLASSES {
        assert_eq!(class_of(class_size(c)), Ok(c));
        assert!(class_size(c).is_power_of_two());
        assert_eq!(class_size(c) % PAGE_SIZE, 0);
    }
    for o in 0..NUM_ORDERS {
        assert_eq!(order_size(o), class_size(o));
        assert!(cache_capacity(o) >= MIN_CACHED);
        // The byte budget, or MIN_CACHED stacks where that is more.
        assert_eq!(
            cache_capacity(o),
            (STACK_CACHE_SIZE / order_size(o)).max(MIN_CACHED)
        );
    }
    assert_eq!(class_size(NUM_CLASSES - 1), MAX_STACK_SIZE);
    for bad in [NUM_ORDERS, 64, usize::MAX] {
        assert_eq!(order_size(bad), 0);
        assert_eq!(cache_capacity(bad), 0);
        assert_eq!(StackCache::new().count(bad), 0);
    }
}

#[test]
fn api_types_cross_threads() {
    fn send<T: Send>() {}
    fn sync<T: Send + Sync>() {}
    send::<StackCache>();
    sync::<Stack>();
    sync::<Pool>();
    sync::<StackError>();
    // A cache fits in a P without growing it much.
    assert!(size_of::<StackCache>() <= 4096);
}

#[test]
fn stackinit_does_not_touch_the_heap() {
    // stackinit runs before mallocinit (Go's order): building a pool must not allocate.
    for guard in [GuardPolicy::Auto, GuardPolicy::Mprotect] {
        let before = allocations();
        let p = Pool::new(&StackConfig {
            default_size: DEFAULT_STACK_SIZE,
            guard,
        })
        .unwrap();
        let info = p.info();
        assert_eq!(allocations(), before, "{guard:?}");
        drop(p);
        assert_eq!(info.default_size, DEFAULT_STACK_SIZE);
    }
    // Allocating does use the heap (the free lists), which the counter must see.
    let p = pool(GuardPolicy::Auto);
    let before = allocations();
    let s = p.alloc(None, 1).unwrap();
    assert!(allocations() > before);
    p.free(None, s);
}

#[test]
fn bad_sizes_are_errors_not_panics() {
    let p = pool(GuardPolicy::Auto);
    let mut c = StackCache::new();
    assert_eq!(p.alloc(None, 0), Err(StackError::InvalidSize(0)));
    assert_eq!(p.alloc(Some(&mut c), 0), Err(StackError::InvalidSize(0)));
    assert_eq!(c.total(), 0);
    for size in [MAX_STACK_SIZE + 1, usize::MAX / 2, usize::MAX] {
        assert_eq!(p.alloc(None, size), Err(StackError::TooLarge(size)));
        assert_eq!(p.alloc(Some(&mut c), size), Err(StackError::TooLarge(size)));
    }
    let bad = Pool::new(&StackConfig {
        default_size: 0,
        guard: GuardPolicy::Auto,
    });
    assert_eq!(bad.err(), Some(StackError::InvalidSize(0)));
    assert!(!StackError::TooLarge(usize::MAX).to_string().is_empty());
}

#[test]
fn largest_stack_is_served_and_guarded() {
    let p = pool(GuardPolicy::Auto);
    let s = p.alloc(None, MAX_STACK_SIZE).expect("1 GiB stack");
    assert_eq!(s.size(), MAX_STACK_SIZE);
    touch(s.hi - 1);
    touch(s.lo);
    assert_eq!(p.guard_fault(s.lo - 1), Some(s));
    p.free(None, s);
    assert_eq!(p.guard_fault(s.lo - 1), None);
}

#[test]
fn guard_fault_ignores_foreign_addresses() {
    let p = pool(GuardPolicy::Auto);
    let s = p.alloc(None, 20 << 10).unwrap();
    let local = 0u64;
    for a in [
        0,
        1,
        PAGE_SIZE,
        &local as *const u64 as usize,
        usize::MAX,
        1 << 47,
    ] {
        assert_eq!(p.guard_fault(a), None, "{a:#x}");
    }
    assert_eq!(p.guard_fault(s.lo), None);
    assert_eq!(p.guard_fault(s.hi - 1), None);
    assert_eq!(p.guard_fault(s.lo - GUARD_SIZE), Some(s));
    p.free(None, s);
}

#[test]
fn stack_info_describes_the_pool() {
    let p = Pool::new(&StackConfig {
        default_size: 100 << 10,
        guard: GuardPolicy::Mprotect,
    })
    .unwrap();
    let info = p.info();
    assert_eq!(info.guard, GuardMechanism::Mprotect);
    assert_eq!(info.default_size, 128 << 10);
    assert_eq!(
        info.orders,
        [16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10]
    );
    let line = info.to_string();
    assert!(line.contains("guard=mprotect(PROT_NONE)"), "{line}");
    assert!(line.contains("default=128KiB"), "{line}");
}

// ---------------------------------------------------------------------------------------
// The global API

#[test]
fn global_api_allocates_default_stacks_lazily() {
    // Another test may have initialised the pool first; either way it is set up after this.
    let _ = stackinit(StackConfig::default());
    assert_eq!(
        stackinit(StackConfig::default()),
        Err(StackError::AlreadyInitialized)
    );
    assert_eq!(default_stack_size(), DEFAULT_STACK_SIZE);
    let mut cache = StackCache::new();
    let a = stackalloc(Some(&mut cache), default_stack_size()).unwrap();
    let b = stackalloc(None, default_stack_size()).unwrap();
    assert_eq!(a.size(), DEFAULT_STACK_SIZE);
    assert_eq!(guard_fault(a.lo - 1), Some(a));
    assert_eq!(guard_fault(b.lo - 1), Some(b));
    touch(a.hi - 1);
    touch(b.lo);
    assert!(stats().live >= 2);
    stackfree(Some(&mut cache), a);
    stackfree(None, b);
    assert_eq!(guard_fault(a.lo - 1), None);
    stackcache_clear(&mut cache);
    assert_eq!(cache.total(), 0);
    assert!(vma_count() > 0);
    assert_eq!(stack_info().default_size, DEFAULT_STACK_SIZE);
}

// ---------------------------------------------------------------------------------------
// Per-P caches and the global pool

#[test]
fn cache_refills_to_half_and_releases_to_half() {
    let p = pool(GuardPolicy::Auto);
    let mut c = StackCache::new();
    for order in 0..NUM_ORDERS {
        let cap = cache_capacity(order);
        let s = p.alloc(Some(&mut c), order_size(order)).unwrap();
        // A class just starting: its free lists are empty, and the refill carves the
        // class's first batch (one slot) and no more.
        assert_eq!(c.count(order), 0);
        let mut live = vec![s];
        for _ in 0..cap * 2 {
            live.push(p.alloc(Some(&mut c), order_size(order)).unwrap());
        }
        for s in live {
            p.free(Some(&mut c), s);
            assert!(c.count(order) <= cap);
        }
        // The last release left half, then the remaining frees filled it up again.
        assert!(c.count(order) > cap / 2);
        // With the releases' stacks in the free lists, an empty cache refills to half,
        // then hands one out.
        let mut held = Vec::new();
        while c.count(order) > 0 {
            held.push(p.alloc(Some(&mut c), order_size(order)).unwrap());
        }
        held.push(p.alloc(Some(&mut c), order_size(order)).unwrap());
        assert_eq!(c.count(order), cap / 2 - 1);
        for s in held {
            p.free(Some(&mut c), s);
        }
    }
    let st = p.stats();
    assert_eq!(st.live, 0);
    assert_eq!(st.cached, c.total());
    assert_eq!(st.carved, st.live + st.pooled + st.cached);
    p.cache_clear(&mut c);
    assert_eq!(c.total(), 0);
    assert_eq!(p.stats().cached, 0);
}

#[test]
fn the_scavenger_releases_what_stayed_idle_beyond_the_warm_budget() {
    let p = pool(GuardPolicy::Auto);
    let size = DEFAULT_STACK_SIZE;
    let keep = GLOBAL_WARM_BYTES / size;
    let n = keep + 8;
    let stacks: Vec<Stack> = (0..n).map(|_| p.alloc(None, size).unwrap()).collect();
    for s in &stacks {
        touch(s.lo);
    }
    for s in &stacks {
        p.free(None, *s);
    }
    // Freeing never releases: the hot path makes no madvise.
    let st = p.stats();
    assert_eq!(st.pooled_released, 0);
    // Pooled: the n freed plus what the carves left over.
    let pooled = st.pooled;
    assert!(pooled >= n);
    // The first period saw the list start empty: nothing was idle for all of it.
    assert_eq!(p.scavenge(), 0);
    // Five stacks used and given back during the next period: the rest stayed idle, and
    // all of it but the warm budget goes.
    let used: Vec<Stack> = (0..5).map(|_| p.alloc(None, size).unwrap()).collect();
    for s in used {
        p.free(None, s);
    }
    assert_eq!(p.scavenge(), (pooled - 5 - keep) * size);
    assert_eq!(p.stats().pooled_released, pooled - 5 - keep);
    // A period with no use at all: everything beyond the budget goes.
    assert_eq!(p.scavenge(), 5 * size);
    assert_eq!(p.stats().pooled_released, pooled - keep);
    assert_eq!(p.scavenge(), 0);
    // The kept ones come back with their contents, the released ones zeroed (MADV_DONTNEED).
    let again: Vec<Stack> = (0..pooled).map(|_| p.alloc(None, size).unwrap()).collect();
    let zeroed = again.iter().filter(|s| read(s.lo) == 0).count();
    let touched = stacks
        .iter()
        .filter(|s| again.iter().any(|a| a.lo == s.lo))
        .count();
    assert_eq!(touched, n);
    assert!(zeroed >= pooled - keep, "{zeroed} zeroed of {pooled}");
    for s in again {
        p.free(None, s);
    }
    // Everything is warm again; releasing it all at once takes every stack.
    assert_eq!(p.stats().pooled_released, 0);
    assert_eq!(p.release_pooled(), pooled * size);
    assert_eq!(p.stats().pooled_released, pooled);
}

#[test]
fn vma_budget_limit_is_a_clear_error() {
    // The registry and one chunk (1 VMA each) plus 10 mprotect guards (2 VMAs each).
    let p = Pool::with_vma_budget(
        &StackConfig {
            default_size: MIN_STACK_SIZE,
            guard: GuardPolicy::Mprotect,
        },
        22,
    )
    .unwrap();
    let mut got = Vec::new();
    let err = loop {
        match p.alloc(None, MIN_STACK_SIZE) {
            Ok(s) => got.push(s),
            Err(e) => break e,
        }
        assert!(got.len() <= 10, "budget not enforced");
    };
    assert_eq!(got.len(), 10);
    assert_eq!(
        err,
        StackError::MapCountLimit {
            created: 22,
            limit: 22
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("vm.max_map_count"), "{msg}");
    assert_eq!(p.stats().vmas_created, 22);
    // Freed stacks are reused without new guards.
    p.free(None, got.pop().unwrap());
    got.push(p.alloc(None, MIN_STACK_SIZE).unwrap());
    for s in got {
        p.free(None, s);
    }
}

#[test]
fn threads_with_their_own_caches_never_share_a_stack() {
    let p = std::sync::Arc::new(pool(GuardPolicy::Auto));
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut c = StackCache::new();
                let mut held = Vec::new();
                for i in 0..2000usize {
                    let size = [16 << 10, 100 << 10, 256 << 10, 600 << 10][(i + t) % 4];
                    let cache = if i % 3 == 0 { None } else { Some(&mut c) };
                    let s = p.alloc(cache, size).unwrap();
                    touch(s.lo);
                    held.push(s);
                    if i % 2 == 1 {
                        let s = held.swap_remove((i * 7) % held.len());
                        p.free(Some(&mut c), s);
                    }
                }
                p.cache_clear(&mut c);
                held
            })
        })
        .collect();
    let mut all: Vec<Stack> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_by_key(|s| s.lo);
    for w in all.windows(2) {
        assert!(w[0].hi + GUARD_SIZE <= w[1].lo, "{:?} {:?}", w[0], w[1]);
    }
    let st = p.stats();
    assert_eq!(st.live, all.len());
    assert_eq!(st.cached, 0);
    for s in all {
        p.free(None, s);
    }
}

// ---------------------------------------------------------------------------------------
// Model-based property test

const NP: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    /// Allocate `size` bytes through cache `p` (None: the global pool).
    Alloc { p: Option<usize>, size: usize },
    /// Free the live stack at index `idx % live` through cache `p`.
    Free { p: Option<usize>, idx: usize },
    /// Free a live stack into cache `p` and allocate its size again there: LIFO must hand
    /// the same stack back when it is a pooled order.
    FreeAlloc { p: usize, idx: usize },
    /// Destroy P `p`'s cache contents.
    Clear { p: usize },
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 1usize..=DEFAULT_STACK_SIZE,
        3 => (0..NUM_ORDERS).prop_map(order_size),
        1 => (DEFAULT_STACK_SIZE + 1)..=(4 << 20),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let p = prop_oneof![Just(None), (0..NP).prop_map(Some)];
    prop_oneof![
        5 => (p.clone(), size_strategy()).prop_map(|(p, size)| Op::Alloc { p, size }),
        4 => (p, any::<usize>()).prop_map(|(p, idx)| Op::Free { p, idx }),
        2 => (0..NP, any::<usize>()).prop_map(|(p, idx)| Op::FreeAlloc { p, idx }),
        1 => (0..NP).prop_map(|p| Op::Clear { p }),
    ]
}

/// The model: live stacks by guard start, and the request each answered.
struct Model {
    live: BTreeMap<usize, (Stack, usize)>,
}

impl Model {
    fn insert(&mut self, s: Stack, req: usize) {
        let start = s.lo - GUARD_SIZE;
        if let Some((_, (prev, _))) = self.live.range(..=start).next_back() {
            assert!(prev.hi <= start, "{prev:?} overlaps {s:?}");
        }
        if let Some((&next_start, (next, _))) = self.live.range(start..).next() {
            assert!(s.hi <= next_start, "{s:?} overlaps {next:?}");
        }
        self.live.insert(start, (s, req));
    }

    fn take(&mut self, idx: usize) -> Option<(Stack, usize)> {
        if self.live.is_empty() {
            return None;
        }
        let key = *self.live.keys().nth(idx % self.live.len()).unwrap();
        self.live.remove(&key)
    }
}

fn check_alloc(p: &Pool, s: Stack, req: usize) {
    assert_eq!(s.size(), expected_size(req));
    assert!(s.size() >= req);
    assert_eq!(s.lo % PAGE_SIZE, 0);
    assert_eq!(s.hi % PAGE_SIZE, 0);
    assert_eq!(p.guard_fault(s.lo - 1), Some(s));
    assert_eq!(p.guard_fault(s.lo - GUARD_SIZE), Some(s));
    assert_eq!(p.guard_fault(s.lo), None);
    assert_eq!(p.guard_fault(s.hi - 1), None);
    assert_eq!(p.guard_fault(s.lo + s.size() / 2), None);
    touch(s.lo);
    touch(s.hi - 1);
}

fn check_pool(p: &Pool, caches: &[StackCache], m: &Model) {
    for c in caches {
        for o in 0..NUM_ORDERS {
            assert!(c.count(o) <= cache_capacity(o));
        }
    }
    let st = p.stats();
    assert_eq!(st.live, m.live.len());
    assert_eq!(st.cached, caches.iter().map(|c| c.total()).sum::<usize>());
    assert_eq!(st.carved, st.live + st.pooled + st.cached);
    assert!(st.pooled_released <= st.pooled);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn pool_matches_model(ops in proptest::collection::vec(op_strategy(), 1..160)) {
        let p = pool(GuardPolicy::Auto);
        let mut caches: Vec<StackCache> = (0..NP).map(|_| StackCache::new()).collect();
        let mut m = Model { live: BTreeMap::new() };
        for op in ops {
            match op {
                Op::Alloc { p: cp, size } => {
                    let s = p.alloc(cp.map(|i| &mut caches[i]), size).unwrap();
                    check_alloc(&p, s, size);
                    m.insert(s, size);
                }
                Op::Free { p: cp, idx } => {
                    if let Some((s, _)) = m.take(idx) {
                        p.free(cp.map(|i| &mut caches[i]), s);
                        prop_assert_eq!(p.guard_fault(s.lo - 1), None);
                    }
                }
                Op::FreeAlloc { p: cp, idx } => {
                    if let Some((s, req)) = m.take(idx) {
                        p.free(Some(&mut caches[cp]), s);
                        let again = p.alloc(Some(&mut caches[cp]), req).unwrap();
                        if s.size() <= DEFAULT_STACK_SIZE {
                            prop_assert_eq!(again, s, "LIFO within a cache");
                        }
                        check_alloc(&p, again, req);
                        m.insert(again, req);
                    }
                }
                Op::Clear { p: cp } => {
                    p.cache_clear(&mut caches[cp]);
                    prop_assert_eq!(caches[cp].total(), 0);
                }
            }
            check_pool(&p, &caches, &m);
        }
        for (_, (s, _)) in std::mem::take(&mut m.live) {
            p.free(None, s);
        }
        for c in &mut caches {
            p.cache_clear(c);
        }
        let st = p.stats();
        prop_assert_eq!(st.live, 0);
        prop_assert_eq!(st.cached, 0);
        prop_assert_eq!(st.pooled, st.carved);
    }
}

// ---------------------------------------------------------------------------------------
// Child processes: guard faults, fatal errors, VMA counts

/// Child body: writes the lowest usable byte of a fresh stack (must work), says so, then
/// writes the byte below it (must kill the process with SIGSEGV).
fn write_below_stack(p: &Pool, expect: GuardMechanism) -> ! {
    assert_eq!(p.info().guard, expect);
    let s = p.alloc(None, DEFAULT_STACK_SIZE).unwrap();
    touch(s.lo);
    touch(s.hi - 1);
    rt_sys::write_stderr(b"lowest-usable-byte-ok\n");
    touch(s.lo - 1);
    rt_sys::write_stderr(b"guard-write-survived\n");
    rt_sys::exit_now(0)
}

fn assert_segv_after_lowest_ok(out: &Output) {
    let err = stderr_of(out);
    assert!(err.contains("lowest-usable-byte-ok"), "{err}");
    assert!(!err.contains("guard-write-survived"), "{err}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{:?}\n{err}",
        out.status
    );
}

fn kernel_has_guard_install() -> bool {
    os::probe_guard_install(PAGE_SIZE).is_ok()
}

#[test]
fn guard_write_faults_madvise() {
    let mech = if kernel_has_guard_install() {
        GuardMechanism::MadviseGuardInstall
    } else {
        GuardMechanism::Mprotect
    };
    if is_child("guard_write_faults_madvise") {
        write_below_stack(&pool(GuardPolicy::Auto), mech);
    }
    assert_segv_after_lowest_ok(&run_child("guard_write_faults_madvise"));
}

#[test]
fn guard_write_faults_mprotect() {
    if is_child("guard_write_faults_mprotect") {
        write_below_stack(&pool(GuardPolicy::Mprotect), GuardMechanism::Mprotect);
    }
    assert_segv_after_lowest_ok(&run_child("guard_write_faults_mprotect"));
}

#[test]
fn global_stackinit_forced_mprotect() {
    if is_child("global_stackinit_forced_mprotect") {
        let info = stackinit(StackConfig {
            default_size: 64 << 10,
            guard: GuardPolicy::Mprotect,
        })
        .unwrap();
        assert_eq!(info.guard, GuardMechanism::Mprotect);
        assert_eq!(default_stack_size(), 64 << 10);
        let mut c = StackCache::new();
        let s = stackalloc(Some(&mut c), default_stack_size()).unwrap();
        assert_eq!(s.size(), 64 << 10);
        assert_eq!(guard_fault(s.lo - 1), Some(s));
        touch(s.lo);
        rt_sys::write_stderr(b"lowest-usable-byte-ok\n");
        touch(s.lo - 1);
        rt_sys::write_stderr(b"guard-write-survived\n");
        rt_sys::exit_now(0);
    }
    assert_segv_after_lowest_ok(&run_child("global_stackinit_forced_mprotect"));
}

#[test]
fn guard_survives_released_memory() {
    if is_child("guard_survives_released_memory") {
        let p = pool(GuardPolicy::Auto);
        let s = p.alloc(None, DEFAULT_STACK_SIZE).unwrap();
        touch(s.lo);
        p.free(None, s);
        // The carve that produced `s` put a few more stacks in the pool; all are released.
        assert_eq!(p.release_pooled(), p.stats().pooled * DEFAULT_STACK_SIZE);
        let again = p.alloc(None, DEFAULT_STACK_SIZE).unwrap();
        assert_eq!(again, s);
        assert_eq!(read(s.lo), 0, "body was not released");
        // Drop guard and body together, as a careless caller might: the guard must stay.
        // SAFETY: the range is this test's own stack and its guard.
        let r = unsafe {
            libc::madvise(
                (s.lo - GUARD_SIZE) as *mut libc::c_void,
                GUARD_SIZE + s.size(),
                libc::MADV_DONTNEED,
            )
        };
        assert_eq!(r, 0);
        touch(s.lo);
        rt_sys::write_stderr(b"lowest-usable-byte-ok\n");
        touch(s.lo - 1);
        rt_sys::write_stderr(b"guard-write-survived\n");
        rt_sys::exit_now(0);
    }
    assert_segv_after_lowest_ok(&run_child("guard_survives_released_memory"));
}

#[test]
fn bad_stackfree_is_fatal() {
    if is_child("bad_stackfree_is_fatal") {
        let local = [0u8; 64];
        let lo = local.as_ptr() as usize & !(PAGE_SIZE - 1);
        stackfree(
            None,
            Stack {
                lo,
                hi: lo + DEFAULT_STACK_SIZE,
            },
        );
        rt_sys::exit_now(0);
    }
    let out = run_child("bad_stackfree_is_fatal");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("fatal error: stackfree:"), "{err}");
}

#[test]
fn double_stackfree_is_fatal() {
    if is_child("double_stackfree_is_fatal") {
        let s = stackalloc(None, 1).unwrap();
        stackfree(None, s);
        stackfree(None, s);
        rt_sys::exit_now(0);
    }
    let out = run_child("double_stackfree_is_fatal");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("fatal error: stackfree:"), "{err}");
    assert!(err.contains("double free"), "{err}");
}

#[test]
fn many_live_stacks_add_few_vmas_with_guard_install() {
    if is_child("many_live_stacks_add_few_vmas_with_guard_install") {
        let before = vma_count();
        let p = pool(GuardPolicy::Auto);
        let mut c = StackCache::new();
        let stacks: Vec<Stack> = (0..100_000)
            .map(|_| p.alloc(Some(&mut c), DEFAULT_STACK_SIZE).unwrap())
            .collect();
        for s in stacks.iter().step_by(97) {
            touch(s.hi - 1);
            assert_eq!(p.guard_fault(s.lo - 1), Some(*s));
        }
        let after = vma_count();
        let st = p.stats();
        println!(
            "child: vmas_before={before} vmas_after={after} chunks={} guard={}",
            st.chunks, st.guard
        );
        // Every guard and every stack top lies in one of at most `chunks` mappings: the
        // 100,000 guards split nothing.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mut vmas: Vec<(usize, usize)> = maps
            .lines()
            .map(|l| {
                let range = l.split_whitespace().next().unwrap();
                let (a, b) = range.split_once('-').unwrap();
                (
                    usize::from_str_radix(a, 16).unwrap(),
                    usize::from_str_radix(b, 16).unwrap(),
                )
            })
            .collect();
        vmas.sort();
        let vma_of = |addr: usize| {
            let i = vmas.partition_point(|&(start, _)| start <= addr);
            assert!(i > 0 && addr < vmas[i - 1].1, "{addr:#x} unmapped");
            i - 1
        };
        let mut holding: Vec<usize> = stacks
            .iter()
            .flat_map(|s| [vma_of(s.lo - GUARD_SIZE), vma_of(s.hi - 1)])
            .collect();
        holding.sort();
        holding.dedup();
        assert!(
            holding.len() <= st.chunks,
            "{} mappings hold the stacks",
            holding.len()
        );
        assert_eq!(st.guard, GuardMechanism::MadviseGuardInstall);
        assert_eq!(st.live, 100_000);
        // Chunks double, so ~26 GB of stacks take 5 reservations; the allocator's own
        // bookkeeping (free-list vectors) may add a mapping or two.
        assert!(after - before <= 12, "{before} -> {after}");
        rt_sys::exit_now(0);
    }
    if !kernel_has_guard_install() {
        // Without MADV_GUARD_INSTALL the claim does not apply; the mprotect path is tested
        // against its own budget below.
        return;
    }
    let out = run_child("many_live_stacks_add_few_vmas_with_guard_install");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn mprotect_guards_are_counted() {
    if is_child("mprotect_guards_are_counted") {
        let p = pool(GuardPolicy::Mprotect);
        let before = vma_count();
        let mut c = StackCache::new();
        let stacks: Vec<Stack> = (0..1000)
            .map(|i| p.alloc(Some(&mut c), [16 << 10, 64 << 10][i % 2]).unwrap())
            .collect();
        let after = vma_count();
        let st = p.stats();
        println!(
            "child: vmas_before={before} vmas_after={after} carved={} counted={}",
            st.carved, st.vmas_created
        );
        // Every guard splits a mapping (at least one new VMA each) and the count is an
        // upper bound on what the kernel made (a little slack for the heap's own maps).
        assert!(after - before >= st.carved, "{before} -> {after}");
        assert!(after - before <= st.vmas_created + 4, "{before} -> {after}");
        assert!(st.vmas_created <= st.vma_budget);
        drop(stacks);
        rt_sys::exit_now(0);
    }
    let out = run_child("mprotect_guards_are_counted");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn vma_margin_leaves_the_pool_room_under_small_limits() {
    use crate::pool::vma_margin;
    assert_eq!(vma_margin(65530), 8191);
    assert_eq!(vma_margin(1_000_000), 125_000);
    assert_eq!(vma_margin(20_000), 4096);
    assert_eq!(vma_margin(4097), 2048);
    assert_eq!(vma_margin(1000), 500);
    assert_eq!(vma_margin(0), 0);
}

// ---------------------------------------------------------------------------------------
// Address space and system calls at start-up

#[test]
fn carving_starts_with_one_slot_and_doubles() {
    let p = pool(GuardPolicy::Auto);
    let size = 32 << 10;
    let full = (CARVE_BYTES / (size + GUARD_SIZE)).clamp(1, CARVE_MAX_SLOTS);
    let mut held = Vec::new();
    let mut want_carved = 0;
    let mut batch = 1;
    for _ in 0..4 {
        // Each allocation that finds the class empty carves the next batch.
        held.push(p.alloc(None, size).expect("stack"));
        want_carved += batch;
        assert_eq!(p.stats().carved, want_carved);
        for _ in 1..batch {
            held.push(p.alloc(None, size).expect("stack"));
        }
        assert_eq!(
            p.stats().carved,
            want_carved,
            "no carve while slots are pooled"
        );
        batch = (batch * 2).min(full);
    }
    assert_eq!(batch, full);
    for s in held {
        p.free(None, s);
    }
}

#[test]
fn stacks_of_two_classes_fit_under_a_small_address_space_limit() {
    // Under an RLIMIT_AS leaving 256 MiB of room, both classes a process starts with (the
    // 32 KiB signal stacks and the default size) get a chunk, and stacks from them work.
    if is_child("stacks_of_two_classes_fit_under_a_small_address_space_limit") {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let vm_kib: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmSize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmSize");
        let lim = (vm_kib << 10) + (256 << 20);
        let rl = libc::rlimit {
            rlim_cur: lim as libc::rlim_t,
            rlim_max: lim as libc::rlim_t,
        };
        // SAFETY: setrlimit only reads the struct; lowering our own limit is always allowed.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) }, 0);
        let p = pool(GuardPolicy::Auto);
        for size in [32 << 10, DEFAULT_STACK_SIZE] {
            let s = p.alloc(None, size).expect("stack under the limit");
            touch(s.hi - 8);
            touch(s.lo);
            p.free(None, s);
        }
        eprintln!("two-classes-ok");
        return;
    }
    let out = run_child("stacks_of_two_classes_fit_under_a_small_address_space_limit");
    assert!(
        stderr_of(&out).contains("two-classes-ok"),
        "{}",
        stderr_of(&out)
    );
    assert!(out.status.success(), "{:?}", out.status);
}
