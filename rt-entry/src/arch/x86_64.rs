//! Process entry on linux/amd64: `_rt0_amd64`, the C-ABI `main`, and
//! `rt0_go` (Go's `rt0_linux_amd64.s` and `asm_amd64.s`).
//!
//! ## Entry contracts
//!
//! `_rt0_amd64` is the ELF entry point (linked with `-nostartfiles
//! -Wl,-e,_rt0_amd64`). The kernel leaves:
//!
//! ```text
//!   rsp →  argc
//!          argv[0] … argv[argc-1], NULL
//!          envp[0] … NULL
//!          auxv (tag, value) pairs … AT_NULL, 0
//! ```
//!
//! and rsp is 16-byte aligned. `_rt0_amd64` loads rdi = argc, rsi = `&argv[0]`.
//!
//! `main` is what libc's start code calls when the binary is linked
//! normally: rdi = argc and rsi = argv arrive per the C ABI (glibc passes the
//! kernel's own argv array, so envp and auxv still follow it).
//!
//! Both then put the address of the program's static
//! [`Program`](crate::Program) (its `main` wrapper and its `schedinit` phase
//! table, which the [`main!`](crate::main) macro defines) in rdx and jump to
//! `rt0_go`, which hands it to `schedinit` and `newproc`. The trampolines are emitted into the program's own
//! crate by that macro (so test binaries of the library, which have a `main`
//! of their own, never see a second one); `rt0_go` lives here.
//!
//! ## rt0_go's frame
//!
//! ```text
//!   (OS stack, ≥ 64 KiB assumed, as Go does)
//!   ┌───────────────────────┐ ← rsp at entry (any alignment)
//!   │ 40 bytes reserved:    │
//!   │  [rsp+32] argv        │
//!   │  [rsp+24] argc        │
//!   │  [rsp+0..24] scratch  │
//!   └───────────────────────┘ ← rsp after `sub 40; and ~15` (16-aligned)
//!   g0.stack.hi = that rsp; g0.stack.lo = rsp − 64 KiB + 104
//! ```
//!
//! Registers: r12 holds `&Program` across the calls (callee-saved in
//! the System V ABI); rbx is free to be clobbered by CPUID because argv is
//! already saved in the frame.
//!
//! ## TLS
//! Go's `settls` points FS at `m0.tls`; libc owns FS here, so rt uses GS
//! (`arch_prctl(ARCH_SET_GS)`), with the goroutine slot at `gs:0` (no ELF
//! `-8` offset to undo). The `0x123` round trip proves GS points at
//! `m0.tls`. If the kernel refuses, `rt0_tls_fallback` records that the
//! goroutine slot lives in a `thread_local!` instead and the check is skipped.

use core::arch::global_asm;
use core::mem::offset_of;
use rt_sched::boot::{G, M};
use rt_stack::Stack;

/// `arch_prctl` code that sets the GS base.
pub const ARCH_SET_GS: u64 = 0x1001;
/// amd64 syscall number of `arch_prctl`.
pub const SYS_ARCH_PRCTL: u64 = 158;

global_asm!(
    ".pushsection .text.rt0_go,\"ax\",@progbits",
    ".globl rt0_go",
    ".type rt0_go,@function",
    "rt0_go:",
    ".cfi_startproc",
    ".cfi_undefined rip",                 // the first frame: nothing above to unwind to
    "    mov rax, rdi",                   // argc
    "    mov rbx, rsi",                   // argv
    "    mov r12, rdx",                   // &Program (main + phase table), kept in a callee-saved register
    "    sub rsp, 40",                    // 3 outgoing-arg words + 2 locals, as Go
    "    and rsp, -16",                   // align SP down to 16
    "    mov [rsp + 24], rax",            // save argc
    "    mov [rsp + 32], rbx",            // save argv
    // g0's stack bounds from the OS stack: [SP - 64 KiB + 104, SP).
    "    lea rdi, [rip + {g0}]",
    "    lea rcx, [rsp - 65536 + 104]",
    "    mov [rdi + {g_stack_lo}], rcx",  // g0.stack.lo
    "    mov [rdi + {g_guard0}], rcx",    // g0.stackguard0 = lo (re-armed by mstart0)
    "    mov [rdi + {g_guard1}], rcx",    // g0.stackguard1 = lo
    "    mov [rdi + {g_stack_hi}], rsp",  // g0.stack.hi
    // CPUID leaf 0: max leaf and vendor.
    "    xor eax, eax",
    "    cpuid",                          // clobbers eax, ebx, ecx, edx
    "    mov dword ptr [rip + {max_leaf}], eax", // kept for cpuinit
    "    test eax, eax",
    "    jz 3f",                          // no leaf 1: skip to TLS set-up
    "    cmp ebx, 0x756E6547",            // \"Genu\"
    "    jne 2f",
    "    cmp edx, 0x49656E69",            // \"ineI\"
    "    jne 2f",
    "    cmp ecx, 0x6C65746E",            // \"ntel\"
    "    jne 2f",
    "    mov byte ptr [rip + {is_intel}], 1",
    "2:",
    "    mov eax, 1",                     // leaf 1: family/model/stepping in eax
    "    cpuid",
    "    mov dword ptr [rip + {pvi}], eax", // processorVersionInfo
    "    mov dword ptr [rip + {ecx1}], ecx",  // feature bits, kept for cpuinit
    "    mov dword ptr [rip + {edx1}], edx",
    "3:",
    "    mov byte ptr [rip + {saved}], 1",  // cpuinit may use the three words above
    // settls(&m0.tls[0]) via arch_prctl(ARCH_SET_GS, addr).
    "    lea rsi, [rip + {m0}]",
    "    add rsi, {m_tls}",
    "    mov edi, {set_gs}",
    "    mov eax, {sys_arch_prctl}",
    "    syscall",                        // clobbers rcx, r11
    "    cmp rax, -4095",
    "    jae 5f",                         // error: fall back to a thread_local slot
    // The 0x123 check: write through GS, read through m0.tls.
    "    mov qword ptr gs:[0], 0x123",
    "    mov rax, [rip + {m0} + {m_tls}]",
    "    cmp rax, 0x123",
    "    je 4f",
    "    call {abort}",                   // GS does not point at m0.tls
    "4:",
    "    lea rcx, [rip + {g0}]",
    "    mov qword ptr gs:[0], rcx",      // goroutine slot = &g0
    "    jmp 6f",
    "5:",
    "    call {tls_fallback}",            // records the fallback (boot trace says so)
    "6:",
    // Bind m0 and g0.
    "    lea rcx, [rip + {g0}]",
    "    lea rax, [rip + {m0}]",
    "    mov [rax + {m_g0}], rcx",        // m0.g0 = &g0
    "    mov [rcx + {g_m}], rax",         // g0.m = &m0
    "    cld",                            // direction flag clear from here on (ABI)
    "    call {check}",
    "    mov rdi, [rsp + 24]",            // argc
    "    mov rsi, [rsp + 32]",            // argv
    "    call {args}",
    "    call {osinit}",
    "    mov rdi, r12",                   // schedinit(&Program)
    "    call {schedinit}",
    "    mov rdi, r12",                   // newproc(&Program): goroutine 1 runs its main
    "    call {newproc}",
    "    call {mstart}",                  // never returns
    "    call {abort}",
    "    ud2",
    ".cfi_endproc",
    ".size rt0_go, .-rt0_go",
    ".popsection",
    g0 = sym rt_sched::boot::G0,
    m0 = sym rt_sched::boot::M0,
    g_stack_lo = const offset_of!(G, stack) + offset_of!(Stack, lo),
    g_stack_hi = const offset_of!(G, stack) + offset_of!(Stack, hi),
    g_guard0 = const offset_of!(G, stackguard0),
    g_guard1 = const offset_of!(G, stackguard1),
    g_m = const offset_of!(G, m),
    m_tls = const offset_of!(M, tls),
    m_g0 = const offset_of!(M, g0),
    is_intel = sym crate::cpu::IS_INTEL,
    pvi = sym crate::cpu::PROCESSOR_VERSION_INFO,
    max_leaf = sym crate::cpu::MAX_LEAF,
    ecx1 = sym crate::cpu::LEAF1_ECX,
    edx1 = sym crate::cpu::LEAF1_EDX,
    saved = sym crate::cpu::LEAVES_SAVED,
    set_gs = const ARCH_SET_GS,
    sys_arch_prctl = const SYS_ARCH_PRCTL,
    abort = sym crate::boot::rt_abort,
    tls_fallback = sym crate::boot::rt0_tls_fallback,
    check = sym crate::boot::rt_check,
    args = sym crate::boot::rt_args,
    osinit = sym crate::boot::rt_osinit,
    schedinit = sym crate::boot::rt_schedinit,
    newproc = sym crate::boot::rt_newproc_main,
    mstart = sym crate::boot::rt_mstart,
);

/// Emits `_rt0_amd64` (and Go's ELF entry name `_rt0_amd64_linux`) and the
/// C-ABI `main` into the calling crate, both entering `rt0_go` with the
/// address of the given static [`Program`](crate::Program) in rdx. Used by
/// [`main!`](crate::main).
#[macro_export]
#[doc(hidden)]
macro_rules! __rt_entry_trampolines {
    ($program:path) => {
        ::core::arch::global_asm!(
            ".pushsection .text._rt0_amd64,\"ax\",@progbits",
            ".globl _rt0_amd64",
            ".globl _rt0_amd64_linux",
            ".type _rt0_amd64,@function",
            "_rt0_amd64_linux:",
            "_rt0_amd64:",
            "    mov rdi, [rsp]",         // argc at 0(SP)
            "    lea rsi, [rsp + 8]",     // argv at 8(SP)
            "    lea rdx, [rip + {w}]",   // &Program
            "    jmp rt0_go",
            ".size _rt0_amd64, .-_rt0_amd64",
            ".globl main",
            ".type main,@function",
            "main:",                      // called by libc: rdi = argc, rsi = argv
            "    lea rdx, [rip + {w}]",
            "    jmp rt0_go",
            ".size main, .-main",
            ".popsection",
            w = sym $program,
        );
    };
}

/// CPUID leaf `leaf`, sub-leaf `sub`: (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    // CPUID exists on every amd64 CPU and has no side effects.
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// XGETBV(0): which register states the OS saves (for AVX).
///
/// # Safety
/// CPUID.1:ECX bit 27 (OSXSAVE) must be set: only then has the OS enabled
/// the instruction, which otherwise faults. (The caller has read that leaf
/// already; reading it again here would cost a CPUID, which traps to the
/// hypervisor in a virtual machine.)
pub unsafe fn xgetbv0() -> u64 {
    let (eax, edx): (u32, u32);
    // SAFETY: the caller saw OSXSAVE, so XGETBV is enabled; it reads XCR0
    // into edx:eax and touches nothing else.
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0, out("eax") eax, out("edx") edx, options(nomem, nostack))
    };
    ((edx as u64) << 32) | eax as u64
}
