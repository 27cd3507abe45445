//! Model-based property test: random sequences of alloc / alloc_zeroed /
//! free / realloc (small and large sizes, alignments from 1 B to 2 MiB)
//! against a model of the live objects. Every object is filled with a
//! pattern that is verified before it is freed or resized; the model also
//! checks alignment and that live objects never overlap. Some objects are
//! allocated or freed on a second thread, so that frees of objects whose
//! spans another cache owns (the remote path) are part of the sequences.

use proptest::prelude::*;
use rt_heap::RtHeap;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Alloc {
        size: usize,
        align: usize,
        zeroed: bool,
    },
    Free {
        pick: usize,
    },
    Realloc {
        pick: usize,
        size: usize,
    },
    /// Allocation on the helper thread.
    AllocThere {
        size: usize,
        align: usize,
    },
    /// Free on the helper thread.
    FreeThere {
        pick: usize,
    },
}

/// Work for the helper thread: allocate (answering the address) or free.
enum Job {
    Alloc(Layout),
    Free(usize, Layout),
}

/// A second thread allocating and freeing through its own cache.
struct Helper {
    jobs: std::sync::mpsc::Sender<Job>,
    done: std::sync::mpsc::Receiver<usize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Helper {
    fn start() -> Helper {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let (tx, done) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            for j in rx {
                let r = match j {
                    // SAFETY: any layout is accepted by RtHeap.
                    Job::Alloc(l) => unsafe { RtHeap.alloc(l) as usize },
                    Job::Free(p, l) => {
                        // SAFETY: p was allocated with l and the model dropped it.
                        unsafe { RtHeap.dealloc(p as *mut u8, l) };
                        0
                    }
                };
                if tx.send(r).is_err() {
                    return;
                }
            }
        });
        Helper {
            jobs,
            done,
            thread: Some(thread),
        }
    }

    fn run(&self, j: Job) -> usize {
        self.jobs.send(j).unwrap();
        self.done.recv().unwrap()
    }

    /// Ends the thread (its cache goes back to the mcentrals).
    fn stop(mut self) {
        let (jobs, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.jobs, jobs));
        self.thread.take().unwrap().join().unwrap();
    }
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..=1100,
        3 => 1025usize..=33_000,
        2 => 32_769usize..=300_000,
        1 => 1usize..=(5 << 18),
    ]
}

fn align_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => prop::sample::select(vec![1usize, 2, 4, 8]),
        3 => prop::sample::select(vec![16usize, 32, 64, 128, 256]),
        2 => prop::sample::select(vec![512usize, 4096, 8192]),
        1 => prop::sample::select(vec![16384usize, 65536, 2 << 20]),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (size_strategy(), align_strategy(), any::<bool>())
            .prop_map(|(size, align, zeroed)| Op::Alloc { size, align, zeroed }),
        3 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        2 => (any::<usize>(), size_strategy()).prop_map(|(pick, size)| Op::Realloc { pick, size }),
        2 => (size_strategy(), align_strategy())
            .prop_map(|(size, align)| Op::AllocThere { size, align }),
        2 => any::<usize>().prop_map(|pick| Op::FreeThere { pick }),
    ]
}

/// Serialises the tests of this binary (see `run`).
static QUIET: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Live {
    layout: Layout,
    seed: u8,
}

fn pattern(seed: u8, i: usize) -> u8 {
    seed.wrapping_add((i as u8).wrapping_mul(31))
        .wrapping_add((i >> 8) as u8)
}

fn fill(p: *mut u8, len: usize, seed: u8) {
    // SAFETY: p is a live object of at least len bytes.
    let s = unsafe { std::slice::from_raw_parts_mut(p, len) };
    for (i, b) in s.iter_mut().enumerate() {
        *b = pattern(seed, i);
    }
}

fn check(p: *mut u8, len: usize, seed: u8) -> Result<(), TestCaseError> {
    // SAFETY: p is a live object of at least len bytes.
    let s = unsafe { std::slice::from_raw_parts(p, len) };
    for (i, &b) in s.iter().enumerate() {
        prop_assert_eq!(b, pattern(seed, i), "object {:p} byte {} corrupted", p, i);
    }
    Ok(())
}

fn no_overlap(live: &BTreeMap<usize, Live>, p: usize, len: usize) -> Result<(), TestCaseError> {
    let len = len.max(1);
    if let Some((&q, l)) = live.range(..=p).next_back() {
        prop_assert!(
            q + l.layout.size().max(1) <= p,
            "{:#x} overlaps {:#x}",
            p,
            q
        );
    }
    if let Some((&q, _)) = live.range(p..).next() {
        prop_assert!(p + len <= q, "{:#x}+{} overlaps {:#x}", p, len, q);
    }
    Ok(())
}

/// Checks a new object `p` of `layout` (not null, aligned, overlapping
/// no live object), fills it and adds it to the model.
fn enter(
    live: &mut BTreeMap<usize, Live>,
    p: *mut u8,
    layout: Layout,
    seed: u8,
) -> Result<(), TestCaseError> {
    prop_assert!(!p.is_null(), "alloc {:?} failed", layout);
    prop_assert_eq!(p as usize % layout.align(), 0, "misaligned {:?}", layout);
    no_overlap(live, p as usize, layout.size())?;
    fill(p, layout.size(), seed);
    live.insert(p as usize, Live { layout, seed });
    Ok(())
}

/// Removes the `pick`-th live object (modulo their number) from the model,
/// after checking its contents; None when nothing is live.
fn take(
    live: &mut BTreeMap<usize, Live>,
    pick: usize,
) -> Result<Option<(usize, Live)>, TestCaseError> {
    if live.is_empty() {
        return Ok(None);
    }
    let k = *live.keys().nth(pick % live.len()).unwrap();
    let l = live.remove(&k).unwrap();
    check(k as *mut u8, l.layout.size(), l.seed)?;
    Ok(Some((k, l)))
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    // The heap validator at the end needs a quiet heap: tests of this
    // binary take turns.
    let _quiet = QUIET.lock().unwrap_or_else(|e| e.into_inner());
    let a = RtHeap;
    let mut live: BTreeMap<usize, Live> = BTreeMap::new();
    let mut seed: u8 = 1;
    let helper = Helper::start();
    for op in ops {
        seed = seed.wrapping_add(1);
        match op {
            Op::Alloc {
                size,
                align,
                zeroed,
            } => {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: any layout is accepted by RtHeap (size 0 included).
                let p = unsafe {
                    if zeroed {
                        a.alloc_zeroed(layout)
                    } else {
                        a.alloc(layout)
                    }
                };
                if zeroed && !p.is_null() {
                    // SAFETY: p is live with size bytes.
                    let s = unsafe { std::slice::from_raw_parts(p, size) };
                    prop_assert!(
                        s.iter().all(|&b| b == 0),
                        "alloc_zeroed not zero {:?}",
                        layout
                    );
                }
                enter(&mut live, p, layout, seed)?;
            }
            Op::Free { pick } => {
                let Some((k, l)) = take(&mut live, pick)? else {
                    continue;
                };
                // SAFETY: k was allocated with this layout and is dropped from the model.
                unsafe { a.dealloc(k as *mut u8, l.layout) };
            }
            Op::Realloc { pick, size } => {
                let Some((k, l)) = take(&mut live, pick)? else {
                    continue;
                };
                // SAFETY: k was allocated with l.layout; size is a valid new size.
                let q = unsafe { a.realloc(k as *mut u8, l.layout, size) };
                prop_assert!(!q.is_null());
                prop_assert_eq!(q as usize % l.layout.align(), 0);
                check(q, l.layout.size().min(size), l.seed)?;
                no_overlap(&live, q as usize, size)?;
                fill(q, size, seed);
                let layout = Layout::from_size_align(size, l.layout.align()).unwrap();
                live.insert(q as usize, Live { layout, seed });
            }
            Op::AllocThere { size, align } => {
                let layout = Layout::from_size_align(size, align).unwrap();
                let p = helper.run(Job::Alloc(layout)) as *mut u8;
                enter(&mut live, p, layout, seed)?;
            }
            Op::FreeThere { pick } => {
                let Some((k, l)) = take(&mut live, pick)? else {
                    continue;
                };
                helper.run(Job::Free(k, l.layout));
            }
        }
    }
    helper.stop();
    for (k, l) in live {
        check(k as *mut u8, l.layout.size(), l.seed)?;
        // SAFETY: k was allocated with this layout.
        unsafe { a.dealloc(k as *mut u8, l.layout) };
    }
    rt_heap::check_heap().map_err(TestCaseError::fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn alloc_free_realloc_match_the_model(ops in prop::collection::vec(op_strategy(), 1..160)) {
        run(ops)?;
    }
}

#[test]
fn objects_survive_many_rounds_in_one_class() {
    // Fill and empty whole spans of a few classes repeatedly (span return
    // to the heap and reuse), checking contents each round.
    let mut ops = Vec::new();
    for round in 0..4 {
        for i in 0..3000 {
            ops.push(Op::Alloc {
                size: [24, 1000, 20_000][i % 3],
                align: 8,
                zeroed: round % 2 == 1,
            });
        }
        for i in 0..3000 {
            ops.push(Op::Free { pick: i * 7 });
        }
    }
    run(ops).unwrap();
}

#[test]
fn objects_flow_between_threads_in_whole_batches() {
    // One thread allocates, the other frees, both ways round: remote
    // chains fill to whole batches, are parked, and are taken again.
    let mut ops = Vec::new();
    for round in 0..4 {
        for i in 0..2000 {
            let size = [16, 48, 1000][i % 3];
            ops.push(if round % 2 == 0 {
                Op::AllocThere { size, align: 8 }
            } else {
                Op::Alloc {
                    size,
                    align: 8,
                    zeroed: false,
                }
            });
        }
        for i in 0..2000 {
            ops.push(if round % 2 == 0 {
                Op::Free { pick: i * 5 }
            } else {
                Op::FreeThere { pick: i * 5 }
            });
        }
    }
    run(ops).unwrap();
}
