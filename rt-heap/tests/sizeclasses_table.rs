//! The generated size-class table against the fact sheet (go-boot-facts
//! §13) and invariants I14–I15, for every size 1..=32768.

// `usize::is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
#![allow(clippy::manual_is_multiple_of)]

use rt_heap::sizeclasses::*;

/// Class sizes 1..67 as listed in go-boot-facts.md §13 (Go 1.17).
const FACT_SIZES: [u16; 67] = [
    8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352,
    384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048,
    2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
    10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672,
    32768,
];

/// Pages per span 35..67 from §13 (classes 1–34 use one page).
const FACT_PAGES_35: [u8; 33] = [
    2, 1, 2, 1, 2, 1, 3, 2, 3, 1, 3, 2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3, 10,
    7, 4,
];

fn class_of(size: usize) -> usize {
    if size <= SMALL_SIZE_MAX {
        SIZE_TO_CLASS8[size.div_ceil(SMALL_SIZE_DIV)] as usize
    } else {
        SIZE_TO_CLASS128[(size - SMALL_SIZE_MAX).div_ceil(LARGE_SIZE_DIV)] as usize
    }
}

#[test]
fn constants_are_gos() {
    assert_eq!(NUM_SIZE_CLASSES, 68);
    assert_eq!(PAGE_SIZE, 8192);
    assert_eq!(1 << PAGE_SHIFT, PAGE_SIZE);
    assert_eq!(SMALL_SIZE_MAX, 1024);
    assert_eq!(MAX_SMALL_SIZE, 32768);
    assert_eq!(CLASS_TO_SIZE[TINY_SIZE_CLASS], 16);
    assert_eq!(TINY_SIZE_CLASS, 2);
}

#[test]
fn table_equals_fact_sheet() {
    assert_eq!(CLASS_TO_SIZE[0], 0);
    assert_eq!(&CLASS_TO_SIZE[1..], &FACT_SIZES[..]);
    assert!(CLASS_TO_ALLOCNPAGES[1..=34].iter().all(|&p| p == 1));
    assert_eq!(&CLASS_TO_ALLOCNPAGES[35..], &FACT_PAGES_35[..]);
}

#[test]
fn i14_every_size_maps_to_the_smallest_fitting_class() {
    for w in CLASS_TO_SIZE[1..].windows(2) {
        assert!(w[0] < w[1], "class sizes not strictly increasing: {w:?}");
    }
    for s in 1..=MAX_SMALL_SIZE {
        let c = class_of(s);
        assert!((1..NUM_SIZE_CLASSES).contains(&c), "size {s}: class {c}");
        assert!(
            CLASS_TO_SIZE[c] as usize >= s,
            "size {s}: class {c} too small"
        );
        assert!(
            (CLASS_TO_SIZE[c - 1] as usize) < s,
            "size {s}: class {} also fits",
            c - 1
        );
        // The allocator's own lookup agrees (size 0 is served as 1).
        assert_eq!(rt_heap::size_class(s, 8), c);
    }
    assert_eq!(rt_heap::size_class(0, 1), 1);
    assert_eq!(rt_heap::size_class(MAX_SMALL_SIZE + 1, 8), 0);
}

#[test]
fn i15_spans_hold_objects_with_bounded_tail_waste() {
    for c in 1..NUM_SIZE_CLASSES {
        let span = CLASS_TO_ALLOCNPAGES[c] as usize * PAGE_SIZE;
        let size = CLASS_TO_SIZE[c] as usize;
        assert!(span / size >= 1, "class {c}");
        // mksizeclasses: leftover at most 1/8 of the span.
        assert!(
            span % size <= span / 8,
            "class {c}: tail waste {}",
            span % size
        );
    }
}

#[test]
fn aligned_classes_are_multiples_of_the_alignment() {
    for align in [16usize, 32, 64, 128, 256, 512, 1024, 4096, 8192] {
        for s in (1..=MAX_SMALL_SIZE).step_by(7) {
            let c = rt_heap::size_class(s, align);
            if c != 0 {
                let sz = CLASS_TO_SIZE[c] as usize;
                assert!(
                    sz >= s && sz % align == 0,
                    "size {s} align {align}: class {c}"
                );
            }
        }
    }
    assert_eq!(rt_heap::size_class(8, 16384), 0);
}
