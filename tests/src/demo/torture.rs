//! Seeded random programs over rt's primitives.
//!
//! `rt-demo torture SEED [SIZE]` builds a random program from SEED and runs
//! it; the same SEED replays the same program.

use std::ffi::OsStr;

/// Entry from `rt-demo torture …`.
pub fn main(args: &[&OsStr]) -> i32 {
    let _ = args;
    eprintln!("torture: not built yet");
    2
}
