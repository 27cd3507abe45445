//! Links `rt-demo` to enter at `_rt0_amd64`, the way a Go binary starts:
//! no libc start files, the ELF entry point set to rt's trampoline.
//! `rt-demo-libc` is the same program linked normally, so libc's start code
//! runs first and calls rt's C-ABI `main`.
fn main() {
    println!("cargo:rustc-link-arg-bin=rt-demo=-nostartfiles");
    println!("cargo:rustc-link-arg-bin=rt-demo=-Wl,-e,_rt0_amd64");
    println!("cargo:rerun-if-changed=build.rs");
}
