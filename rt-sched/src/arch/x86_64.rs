//! Context switching on amd64 (System V ABI).
//!
//! A goroutine's context is a [`Gobuf`]: the stack pointer and the program
//! counter to resume at. Everything else a suspended goroutine needs lives on
//! its own stack, pushed by [`mcall`] before it leaves:
//!
//! ```text
//!   suspended goroutine's stack (grows down)
//!   ┌──────────────────────────┐ higher addresses
//!   │ caller frames …          │
//!   │ return address into the  │ ← pushed by `call rt_mcall`
//!   │   caller of mcall        │
//!   │ rbp                      │
//!   │ rbx                      │
//!   │ r12                      │
//!   │ r13                      │
//!   │ r14                      │
//!   │ r15                      │
//!   │ MXCSR (4 B) | x87 CW (2 B)│ ← gobuf.sp points here
//!   └──────────────────────────┘
//!   gobuf.pc = the `resume` label inside rt_mcall, which pops all of the
//!   above and returns to mcall's caller as if mcall had returned.
//! ```
//!
//! A fresh goroutine's stack holds a single word, the fake return address
//! `rt_goexit + 1`, and `gobuf.pc` is its entry function, so that when the
//! entry function returns it "returns" into `rt_goexit`, which calls
//! `goexit1` (Go's `gostartcallfn` layout):
//!
//! ```text
//!   ┌──────────────────────────┐ stack.hi (16-byte aligned)
//!   │ 64 bytes, zeroed         │ the "caller's" argument area: readable,
//!   │                          │ since the next stack's guard is above hi
//!   │ rt_goexit + 1            │ ← gobuf.sp  (≡ 8 mod 16, as at any call entry)
//!   └──────────────────────────┘
//! ```
//!
//! The callee-saved registers of the System V ABI are rbx, rbp, r12–r15, the
//! MXCSR control bits and the x87 control word; those are exactly what is
//! saved. Caller-saved registers are dead across the `call rt_mcall`.
//!
//! Contract of a resume label (`2:` in `rt_mcall` and in [`switch`]): it is
//! entered by a `jmp` with rsp = the saved `gobuf.sp`, eax = the thread's
//! current MXCSR and cx = its current x87 control word (every jumper —
//! `rt_gogo` and `switch` — loads them), so the label restores the saved
//! values only when they differ, without reading MXCSR again.
//!
//! The goroutine slot (`getg`) is word 0 of the M's TLS block, which the GS
//! base points at (libc owns FS). The switch routines do not touch it: the
//! portable layer calls [`setg_raw`] right before switching, which keeps the
//! assembly free of any knowledge of the slot and lets the `thread_local!`
//! fallback (kernel refused `ARCH_SET_GS`) share the same switch code.

use crate::runtime2::{Gobuf, G};
use core::arch::{asm, global_asm};
use core::mem::offset_of;

/// `arch_prctl` code that sets the GS base.
const ARCH_SET_GS: i32 = 0x1001;

/// Points the calling thread's GS base at `block` (`settls`).
///
/// Returns the kernel's error number on failure.
///
/// # Safety
/// `block` must stay valid for as long as this thread runs runtime code, and
/// must hold at least one word (the goroutine slot).
pub unsafe fn settls(block: *mut usize) -> Result<(), i32> {
    // SAFETY: arch_prctl(ARCH_SET_GS) only changes this thread's GS base;
    // the caller guarantees the block outlives the thread's use of it.
    let r = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_GS, block as usize) };
    if r == 0 {
        Ok(())
    } else {
        // SAFETY: errno is thread-local and always readable.
        Err(unsafe { *libc::__errno_location() })
    }
}

/// Reads the goroutine slot: `mov %gs:0, reg`.
///
/// # Safety
/// The calling thread's GS base must point at a live M TLS block.
#[inline(always)]
pub unsafe fn getg_raw() -> *mut G {
    let g: *mut G;
    // SAFETY: the caller guarantees GS points at a TLS block whose word 0 is
    // the goroutine slot.
    unsafe {
        asm!("mov {}, qword ptr gs:[0]", out(reg) g, options(nostack, readonly, preserves_flags))
    };
    g
}

/// Reads the M slot (`tls[1]`): `mov %gs:8, reg`. Not `pure`: it is
/// re-executed after every call, so a goroutine that resumed on another
/// thread reads its new M (a `thread_local!` address may be kept in a
/// register across a call, and would name the old thread's slot).
///
/// # Safety
/// The calling thread's GS base must point at a live M TLS block.
#[inline(always)]
pub unsafe fn getm_raw() -> usize {
    let m: usize;
    // SAFETY: the caller guarantees GS points at a TLS block whose word 1 is
    // the M.
    unsafe {
        asm!("mov {}, qword ptr gs:[8]", out(reg) m, options(nostack, readonly, preserves_flags))
    };
    m
}

/// Writes the goroutine slot: `mov reg, %gs:0`.
///
/// # Safety
/// As [`getg_raw`].
#[inline(always)]
pub unsafe fn setg_raw(g: *mut G) {
    // SAFETY: the caller guarantees GS points at a live TLS block.
    unsafe { asm!("mov qword ptr gs:[0], {}", in(reg) g, options(nostack, preserves_flags)) };
}

/// The current stack pointer.
#[inline(always)]
pub fn current_sp() -> usize {
    let sp: usize;
    // SAFETY: reading rsp has no side effects.
    unsafe { asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// Address a goroutine's entry function returns to (`goexit + PCQuantum`):
/// the `call` inside `rt_goexit`, one byte past its leading `nop`, so the
/// return address still lies inside `rt_goexit` for symbolisers.
pub fn goexit_pc() -> usize {
    let pc: usize;
    // SAFETY: `lea` of a symbol address has no side effects.
    unsafe {
        asm!("lea {}, [rip + rt_goexit]", out(reg) pc, options(nomem, nostack, preserves_flags))
    };
    pc + 1
}

// Restores MXCSR and the x87 control word saved at [rsp] / [rsp+4] by the
// switch-out path — only when they differ from the thread's current values,
// which every jump to a resume label carries in eax (MXCSR) and cx (x87
// CW). Both are callee-saved under the System V ABI, so a switch must
// preserve them; but `ldmxcsr`/`fldcw` are slow and reading MXCSR
// (`stmxcsr`) costs about 3.4 ns on the development CPU — more than the
// rest of a switch — so each switch reads the current values exactly once,
// on the way out, and hands them to the resumed side in registers.
// Clobbers nothing else.
macro_rules! RESTORE_FP_CONTROL {
    () => {
        concat!(
            "    cmp eax, [rsp]\n",
            "    je 3f\n",
            "    ldmxcsr [rsp]\n", // differs: restore the saved one
            "3:\n",
            "    cmp cx, word ptr [rsp + 4]\n",
            "    je 4f\n",
            "    fldcw [rsp + 4]\n",
            "4:"
        )
    };
}

// rt_goexit: the top frame of every goroutine.
//
// Entered by `ret` from the goroutine's entry function (the fake return
// address pushed by newproc). rsp is then stack.hi - 8 + 8 = 16-byte aligned,
// as a `call` requires. `.cfi_undefined rip` tells unwinders and debuggers
// that no frame lies above: backtraces of a goroutine end here.
global_asm!(
    ".pushsection .text.rt_goexit,\"ax\",@progbits",
    ".globl rt_goexit",
    ".type rt_goexit,@function",
    "rt_goexit:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    "    nop",                      // the fake return address is rt_goexit+1
    "    call {goexit1}",           // goexit1 never returns
    "    ud2",
    ".cfi_endproc",
    ".size rt_goexit, .-rt_goexit",
    ".popsection",
    goexit1 = sym crate::proc::goexit1,
);

// rt_gogo(buf: *const Gobuf [rdi]) -> !
//
// Loads rsp from buf.sp and jumps to buf.pc. Whatever is on the current stack
// is abandoned (g0's frames of `schedule`, or an exiting goroutine's).
global_asm!(
    ".pushsection .text.rt_gogo,\"ax\",@progbits",
    ".globl rt_gogo",
    ".type rt_gogo,@function",
    "rt_gogo:",
    "    sub rsp, 8",               // read the current FP control state for the
    "    stmxcsr [rsp]",            // resume label's comparison (eax, cx)
    "    fnstcw [rsp + 4]",
    "    mov eax, [rsp]",
    "    movzx ecx, word ptr [rsp + 4]",
    "    mov rsp, [rdi + {sp}]",    // the target's stack
    "    jmp qword ptr [rdi + {pc}]", // fresh entry function, or a resume label
    ".size rt_gogo, .-rt_gogo",
    ".popsection",
    sp = const offset_of!(Gobuf, sp),
    pc = const offset_of!(Gobuf, pc),
);

// rt_mcall(save: *mut Gobuf [rdi], g0sp: usize [rsi],
//          f: extern "C" fn(*mut G) -> ! [rdx], gp: *mut G [rcx])
//
// Saves the callee-saved state of the running goroutine on its own stack
// (see the diagram above), records the resume point in `save`, switches to
// the g0 stack at `g0sp` and calls f(gp). f never returns; the goroutine
// continues when someone rt_gogo's to `save`, which lands on `2:` below.
global_asm!(
    ".pushsection .text.rt_mcall,\"ax\",@progbits",
    ".globl rt_mcall",
    ".type rt_mcall,@function",
    "rt_mcall:",
    "    push rbp",
    "    push rbx",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    sub rsp, 8",               // room for MXCSR (4 bytes) and the x87 control word (2 bytes)
    "    stmxcsr [rsp]",
    "    fnstcw [rsp + 4]",
    "    mov [rdi + {sp}], rsp",    // save.sp
    "    lea rax, [rip + 2f]",
    "    mov [rdi + {pc}], rax",    // save.pc = resume point
    "    mov rsp, rsi",             // onto g0's stack; g0sp is 16-byte aligned
    "    mov rdi, rcx",             // f's argument: the goroutine that left
    "    call rdx",                 // f(gp): never returns
    "    ud2",
    "2:",                           // resumed by rt_gogo(save)
    RESTORE_FP_CONTROL!(),
    "    add rsp, 8",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbx",
    "    pop rbp",
    "    ret",                      // back in mcall's caller
    ".size rt_mcall, .-rt_mcall",
    ".popsection",
    sp = const offset_of!(Gobuf, sp),
    pc = const offset_of!(Gobuf, pc),
);

// The asm only moves these pointers between registers and reads fields
// at `offset_of!` offsets; the pointee types never cross an FFI boundary.
#[allow(improper_ctypes)]
unsafe extern "C" {
    fn rt_gogo(buf: *const Gobuf) -> !;
    fn rt_mcall(save: *mut Gobuf, g0sp: usize, f: extern "C" fn(*mut G) -> !, gp: *mut G);
}

/// Resumes the context saved in `buf` (Go's `gogo`). Never returns.
///
/// # Safety
/// `buf` must describe either a fresh goroutine prepared by `newproc` or one
/// suspended by [`mcall`], whose stack is still live; the goroutine slot must
/// already name that goroutine.
#[inline(always)]
pub unsafe fn gogo(buf: *const Gobuf) -> ! {
    // SAFETY: forwarded contract.
    unsafe { rt_gogo(buf) }
}

/// Saves the running goroutine's context into `save` and resumes `to`
/// directly (no trip through g0).
///
/// # Safety
/// As [`mcall`] for the saving side and [`gogo`] for `to`; the goroutine
/// slot must already name `to`'s goroutine.
///
/// This one is inline assembly rather than a call into `rt_switch`: the
/// resume point is a label inside the caller, reached by an indirect `jmp`,
/// so no `call`/`ret` pair is left unmatched and the CPU's return-address
/// predictor stays in step (a mismatched `ret` costs a full misprediction on
/// every switch). Only rbx and rbp are saved by hand (LLVM reserves them);
/// the other callee-saved registers are declared clobbered, so the compiler
/// spills exactly the ones that are live.
#[inline(always)]
pub unsafe fn switch(save: *mut Gobuf, to: *const Gobuf) {
    // SAFETY: forwarded contract; the asm leaves through `to` and comes
    // back at label 2 with the stack exactly as it left it.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "sub rsp, 8",
            "stmxcsr [rsp]",
            "fnstcw [rsp + 4]",
            "lea rdx, [rip + 2f]",
            "mov [rdi + {pc}], rdx",    // save.pc = label 2 below
            "mov [rdi + {sp}], rsp",    // save.sp
            "mov eax, [rsp]",           // the current FP control state, for
            "movzx ecx, word ptr [rsp + 4]", // the resumed side's comparison
            "mov rsp, [rsi + {sp}]",    // into the target's stack
            "jmp qword ptr [rsi + {pc}]",
            "2:",
            RESTORE_FP_CONTROL!(),
            "add rsp, 8",
            "pop rbx",
            "pop rbp",
            sp = const offset_of!(Gobuf, sp),
            pc = const offset_of!(Gobuf, pc),
            in("rdi") save,
            in("rsi") to,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("sysv64"),
        );
    }
}

/// Saves the running goroutine's context into `save`, switches to the stack
/// top `g0sp` and calls `f(gp)` there (Go's `mcall`). Returns when the
/// goroutine is resumed with [`gogo`].
///
/// # Safety
/// Must run on `gp`'s own stack; `save` must be `gp`'s gobuf; `g0sp` must be
/// the 16-byte aligned top of this M's g0 stack, unused by any live frame;
/// the goroutine slot must already name g0.
#[inline(always)]
pub unsafe fn mcall(save: *mut Gobuf, g0sp: usize, f: extern "C" fn(*mut G) -> !, gp: *mut G) {
    // SAFETY: forwarded contract.
    unsafe { rt_mcall(save, g0sp, f, gp) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `settls` + the 0x123 round trip on a fresh thread (the check rt0_go
    /// does for m0 and `minit_tls` for every other M): a write through GS
    /// lands in the block, and a write to the block reads back through GS.
    #[test]
    fn settls_round_trips_0x123() {
        std::thread::spawn(|| {
            let block = Box::leak(Box::new([0usize; 6]));
            // SAFETY: the block is leaked, so it outlives this thread.
            unsafe { settls(block.as_mut_ptr()) }.expect("arch_prctl(ARCH_SET_GS)");
            // SAFETY: GS now points at `block`.
            unsafe { setg_raw(0x123 as *mut G) };
            assert_eq!(block[0], 0x123);
            block[0] = 0x456;
            // SAFETY: as above.
            assert_eq!(unsafe { getg_raw() } as usize, 0x456);
        })
        .join()
        .unwrap();
    }
}
