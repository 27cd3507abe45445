//! `rt-demo`, entered at `_rt0_amd64` (see build.rs). The scenarios are in
//! `src/demo/mod.rs`.
#![no_main]

#[path = "../demo/mod.rs"]
mod demo;

rt_entry::main!(demo::main);
