//! Size-class table generator (`cargo xtask codegen [--check]`).
//!
//! Map of this file:
//! - [`make_classes`] derives the small-object size classes with the rules of
//!   Go's `runtime/mksizeclasses.go`: walk candidate sizes in steps of the
//!   current alignment (8, then 16 from 32 B, size/8 from 128 B, 256 from
//!   2 KiB), give each size the fewest 8 KiB pages whose tail waste is at most
//!   1/8, merge a candidate into the previous class when both use the same
//!   pages and fit the same number of objects, then grow each class to the
//!   largest 128-aligned size that still fits the same object count.
//! - [`sizeclasses_source`] renders `rt-heap/src/sizeclasses.rs`: a do-not-edit
//!   banner, the regenerate command, a table comment (class, bytes/obj,
//!   bytes/span, objects, tail waste, max waste, min align), the alignment
//!   summary, and the constants with Go's names in Rust case.
//! - [`run`] writes the file, or with `check` compares it and reports the
//!   regenerate command when it is stale.
//!
//! Only `std` is used so the file can also be included by rt-heap's staleness
//! test through `#[path]`.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Largest small object; larger requests get their own span.
pub const MAX_SMALL_SIZE: usize = 32 << 10;
/// Granularity of `SIZE_TO_CLASS8`.
pub const SMALL_SIZE_DIV: usize = 8;
/// Largest size looked up in `SIZE_TO_CLASS8`.
pub const SMALL_SIZE_MAX: usize = 1024;
/// Granularity of `SIZE_TO_CLASS128`.
pub const LARGE_SIZE_DIV: usize = 128;
/// log2 of the runtime page size.
pub const PAGE_SHIFT: usize = 13;
/// Runtime page size (8 KiB).
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;
/// Number of classes Go 1.17 has (class 0 marks large objects).
pub const EXPECTED_CLASSES: usize = 68;

/// Path of the generated file relative to the workspace root.
pub const OUTPUT_PATH: &str = "rt-heap/src/sizeclasses.rs";
/// Command that regenerates the file.
pub const REGENERATE: &str = "cargo xtask codegen";

/// One size class: the object size and the pages of one span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    /// Bytes per object (0 for the large-object marker class 0).
    pub size: usize,
    /// Pages per span.
    pub npages: usize,
}

fn power_of_two(x: usize) -> bool {
    x != 0 && x & (x - 1) == 0
}

/// Derives the size classes (index 0 is the large-object marker).
///
/// Returns an error when the rules no longer produce Go's class count, so a
/// change of constants cannot silently produce a different table.
pub fn make_classes() -> Result<Vec<Class>, String> {
    let mut classes = vec![Class { size: 0, npages: 0 }];
    let mut align = 8;
    let mut size = align;
    while size <= MAX_SMALL_SIZE {
        if power_of_two(size) {
            if size >= 2048 {
                align = 256;
            } else if size >= 128 {
                align = size / 8;
            } else if size >= 32 {
                // 16-byte alignment for every object of 32 bytes or more.
                align = 16;
            }
        }
        if !power_of_two(align) {
            return Err(format!("alignment {align} is not a power of two"));
        }
        // Fewest pages whose leftover after cutting objects is at most 1/8.
        let mut allocsize = PAGE_SIZE;
        while allocsize % size > allocsize / 8 {
            allocsize += PAGE_SIZE;
        }
        let npages = allocsize / PAGE_SIZE;
        // Same pages and same object count as the previous class: widen it.
        let last = classes.len() - 1;
        if last >= 1
            && npages == classes[last].npages
            && allocsize / size == allocsize / classes[last].size
        {
            classes[last].size = size;
        } else {
            classes.push(Class { size, npages });
        }
        size += align;
    }
    // Grow each class to the largest size (kept a multiple of LARGE_SIZE_DIV
    // so the 128-byte lookup table stays exact) with the same object count.
    for c in classes.iter_mut().skip(1) {
        let span = c.npages * PAGE_SIZE;
        let grown = (span / (span / c.size)) & !(LARGE_SIZE_DIV - 1);
        if grown > c.size {
            c.size = grown;
        }
    }
    if classes.len() != EXPECTED_CLASSES {
        return Err(format!(
            "number of size classes changed: {} (expected {EXPECTED_CLASSES})",
            classes.len()
        ));
    }
    Ok(classes)
}

/// Smallest class whose size is at least `size` (0 when none is).
fn class_for(classes: &[Class], size: usize) -> usize {
    classes.iter().position(|c| c.size >= size).unwrap_or(0)
}

fn push_array(out: &mut String, decl: &str, values: &[usize]) {
    let _ = writeln!(out, "{decl} = [");
    for chunk in values.chunks(16) {
        let line: Vec<String> = chunk.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(out, "    {},", line.join(", "));
    }
    out.push_str("];\n");
}

/// The full text of `rt-heap/src/sizeclasses.rs`.
pub fn sizeclasses_source() -> String {
    let classes = match make_classes() {
        Ok(c) => c,
        // The error text becomes a compile error in the generated file, so a
        // broken generator can never produce a plausible-looking table.
        Err(e) => return format!("compile_error!(\"size-class generator: {e}\");\n"),
    };
    let mut out = String::new();
    out.push_str("// Code generated by xtask/src/codegen.rs; DO NOT EDIT.\n");
    let _ = writeln!(
        out,
        "// Regenerate with `{REGENERATE}`; `{REGENERATE} --check` fails when stale."
    );
    out.push_str("//\n");
    out.push_str("// Go's small-object size classes (runtime/sizeclasses.go, 1.17 = 1.19).\n");
    out.push_str("// Rounding a request up to its class wastes at most 12.5%, and cutting a\n");
    out.push_str("// span into objects leaves at most 1/8 of the span unused.\n");
    out.push_str("//\n");
    let _ = writeln!(
        out,
        "// {:<5}  {:<9}  {:<10}  {:<7}  {:<10}  {:<9}  {:<9}",
        "class", "bytes/obj", "bytes/span", "objects", "tail waste", "max waste", "min align"
    );
    let mut prev = 0usize;
    let mut min_aligns = [0usize; PAGE_SHIFT + 1];
    for (i, c) in classes.iter().enumerate().skip(1) {
        let span = c.npages * PAGE_SIZE;
        let objects = span / c.size;
        let tail = span - c.size * objects;
        let max_waste = ((c.size - prev - 1) * objects + tail) as f64 / span as f64;
        let align_bits = (c.size.trailing_zeros() as usize).min(PAGE_SHIFT);
        for (b, slot) in min_aligns.iter_mut().enumerate() {
            if b > align_bits {
                *slot = 0;
            } else if *slot == 0 {
                *slot = c.size;
            }
        }
        prev = c.size;
        let _ = writeln!(
            out,
            "// {:>5}  {:>9}  {:>10}  {:>7}  {:>10}  {:>8.2}%  {:>9}",
            i,
            c.size,
            span,
            objects,
            tail,
            100.0 * max_waste,
            1usize << align_bits
        );
    }
    out.push_str("//\n");
    let _ = writeln!(
        out,
        "// {:<9}  {:<4}  {:<12}",
        "alignment", "bits", "min obj size"
    );
    for (bits, &size) in min_aligns.iter().enumerate() {
        if size == 0 {
            break;
        }
        if bits + 1 < min_aligns.len() && size == min_aligns[bits + 1] {
            continue;
        }
        let _ = writeln!(out, "// {:>9}  {:>4}  {:>12}", 1usize << bits, bits, size);
    }
    out.push('\n');

    let consts: [(&str, &str, usize); 8] = [
        (
            "MAX_SMALL_SIZE",
            "Largest small object (Go `_MaxSmallSize`).",
            MAX_SMALL_SIZE,
        ),
        (
            "SMALL_SIZE_DIV",
            "Step of [`SIZE_TO_CLASS8`] (Go `smallSizeDiv`).",
            SMALL_SIZE_DIV,
        ),
        (
            "SMALL_SIZE_MAX",
            "Largest size in [`SIZE_TO_CLASS8`] (Go `smallSizeMax`).",
            SMALL_SIZE_MAX,
        ),
        (
            "LARGE_SIZE_DIV",
            "Step of [`SIZE_TO_CLASS128`] (Go `largeSizeDiv`).",
            LARGE_SIZE_DIV,
        ),
        (
            "NUM_SIZE_CLASSES",
            "Classes including the large-object class 0 (Go `_NumSizeClasses`).",
            classes.len(),
        ),
        (
            "PAGE_SHIFT",
            "log2 of the runtime page (Go `_PageShift`).",
            PAGE_SHIFT,
        ),
        (
            "PAGE_SIZE",
            "Runtime page size (Go `_PageSize`).",
            PAGE_SIZE,
        ),
        (
            "TINY_SIZE_CLASS",
            "The 16-byte class (Go `_TinySizeClass`).",
            class_for(&classes, 16),
        ),
    ];
    for (name, doc, value) in consts {
        let _ = writeln!(out, "/// {doc}\npub const {name}: usize = {value};");
    }
    out.push('\n');

    let sizes: Vec<usize> = classes.iter().map(|c| c.size).collect();
    out.push_str("/// Bytes per object of each class (Go `class_to_size`).\n");
    push_array(
        &mut out,
        "pub static CLASS_TO_SIZE: [u16; NUM_SIZE_CLASSES]",
        &sizes,
    );
    let pages: Vec<usize> = classes.iter().map(|c| c.npages).collect();
    out.push_str("/// Pages per span of each class (Go `class_to_allocnpages`).\n");
    push_array(
        &mut out,
        "pub static CLASS_TO_ALLOCNPAGES: [u8; NUM_SIZE_CLASSES]",
        &pages,
    );

    let small: Vec<usize> = (0..=SMALL_SIZE_MAX / SMALL_SIZE_DIV)
        .map(|i| class_for(&classes, i * SMALL_SIZE_DIV))
        .collect();
    out.push_str("/// Class of sizes up to `SMALL_SIZE_MAX`, indexed by `(size + 7) / 8`\n");
    out.push_str("/// (Go `size_to_class8`).\n");
    push_array(
        &mut out,
        "pub static SIZE_TO_CLASS8: [u8; SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1]",
        &small,
    );
    let large: Vec<usize> = (0..=(MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV)
        .map(|i| class_for(&classes, SMALL_SIZE_MAX + i * LARGE_SIZE_DIV))
        .collect();
    out.push_str("/// Class of sizes above `SMALL_SIZE_MAX`, indexed by\n");
    out.push_str("/// `(size - SMALL_SIZE_MAX + 127) / 128` (Go `size_to_class128`).\n");
    push_array(
        &mut out,
        "pub static SIZE_TO_CLASS128: [u8; (MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1]",
        &large,
    );
    out
}

fn workspace_root() -> PathBuf {
    let mut p = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    p.pop();
    p
}

/// Writes `rt-heap/src/sizeclasses.rs`, or with `check` verifies that the
/// checked-in file equals the generator's output.
pub fn run(check: bool) -> Result<(), String> {
    let path = workspace_root().join(OUTPUT_PATH);
    let want = sizeclasses_source();
    if want.starts_with("compile_error!") {
        return Err(want);
    }
    if check {
        let have = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e}; run `{REGENERATE}`", path.display()))?;
        if have != want {
            return Err(format!(
                "{} is stale: run `{REGENERATE}` and commit the result",
                path.display()
            ));
        }
        return Ok(());
    }
    std::fs::write(&path, want).map_err(|e| format!("{}: {e}", path.display()))
}
