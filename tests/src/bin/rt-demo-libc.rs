//! `rt-demo`, entered through libc's start code and rt's C-ABI `main`.
#![no_main]

#[path = "../demo/mod.rs"]
mod demo;

rt_entry::main!(demo::main);
