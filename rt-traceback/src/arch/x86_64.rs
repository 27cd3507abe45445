//! The register state a walk starts from, and running a report on a stack
//! of its own, on linux/amd64.

use core::arch::{asm, global_asm};

/// The registers a stack walk needs on amd64: the program counter, the
/// stack pointer and the System V callee-saved registers (the CFI of a
/// frame may say a caller's value of any of them lives in a register or
/// in the frame). Caller-saved registers are dead across every call, so
/// no frame above the first can need them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs {
    /// Instruction pointer.
    pub pc: usize,
    /// Stack pointer (rsp).
    pub sp: usize,
    /// rbp.
    pub bp: usize,
    /// rbx.
    pub bx: usize,
    /// r12.
    pub r12: usize,
    /// r13.
    pub r13: usize,
    /// r14.
    pub r14: usize,
    /// r15.
    pub r15: usize,
}

/// DWARF register numbers of amd64 (System V psABI, figure 3.36).
pub(crate) mod dwarf {
    pub const RBX: u16 = 3;
    pub const RBP: u16 = 6;
    pub const RSP: u16 = 7;
    pub const R12: u16 = 12;
    pub const R13: u16 = 13;
    pub const R14: u16 = 14;
    pub const R15: u16 = 15;
    /// The return address column.
    pub const RA: u16 = 16;
}

impl Regs {
    /// All zero (no state).
    pub const ZERO: Regs = Regs {
        pc: 0,
        sp: 0,
        bp: 0,
        bx: 0,
        r12: 0,
        r13: 0,
        r14: 0,
        r15: 0,
    };

    /// The value of DWARF register `r`, if the walk tracks it.
    pub(crate) fn get(&self, r: u16) -> Option<usize> {
        Some(match r {
            dwarf::RBX => self.bx,
            dwarf::RBP => self.bp,
            dwarf::RSP => self.sp,
            dwarf::R12 => self.r12,
            dwarf::R13 => self.r13,
            dwarf::R14 => self.r14,
            dwarf::R15 => self.r15,
            _ => return None,
        })
    }

    /// Sets DWARF register `r` (ignored for registers the walk does not track).
    pub(crate) fn set(&mut self, r: u16, v: usize) {
        match r {
            dwarf::RBX => self.bx = v,
            dwarf::RBP => self.bp = v,
            dwarf::R12 => self.r12 = v,
            dwarf::R13 => self.r13 = v,
            dwarf::R14 => self.r14 = v,
            dwarf::R15 => self.r15 = v,
            _ => {}
        }
    }

    /// The registers at the point of the call, in the calling function:
    /// a walk from here starts with the caller's own frame. Always inlined,
    /// so that the program counter, stack pointer and callee-saved registers
    /// all belong to the same instant of the same frame.
    #[inline(always)]
    pub fn here() -> Regs {
        let (pc, sp, bp, bx, r12, r13, r14, r15): (
            usize,
            usize,
            usize,
            usize,
            usize,
            usize,
            usize,
            usize,
        );
        // SAFETY: reads registers and the address of a local label; no
        // memory is touched and no register is changed.
        unsafe {
            asm!(
                "lea {pc}, [rip + 2f]",
                "2:",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                "mov {bx}, rbx",
                "mov {r12}, r12",
                "mov {r13}, r13",
                "mov {r14}, r14",
                "mov {r15}, r15",
                pc = out(reg) pc,
                sp = out(reg) sp,
                bp = out(reg) bp,
                bx = out(reg) bx,
                r12 = lateout(reg) r12,
                r13 = lateout(reg) r13,
                r14 = lateout(reg) r14,
                r15 = lateout(reg) r15,
                options(nomem, nostack, preserves_flags)
            )
        };
        Regs {
            pc,
            sp,
            bp,
            bx,
            r12,
            r13,
            r14,
            r15,
        }
    }
}

/// The address of the instruction after the point of the call, in the
/// calling function (the `go` statement's PC for `created by` lines).
#[inline(always)]
pub fn current_pc() -> usize {
    let pc: usize;
    // SAFETY: `lea` of a local label has no side effects.
    unsafe {
        asm!("lea {}, [rip + 2f]", "2:", out(reg) pc, options(nomem, nostack, preserves_flags))
    };
    pc
}

// rt_traceback_on_stack(top, f, arg): calls f(arg) with rsp = top.
//
//   entry:   rdi = top (16-byte aligned, one past the new stack's highest
//            byte), rsi = f, rdx = arg; [rsp] = return address.
//   frame:   rbp saves the caller's rsp across the call; the new stack
//            holds nothing but f's own frames.
//
//   caller's stack           new stack
//   ┌──────────────┐         ┌──────────────┐ top
//   │ return addr  │         │ f's return   │ ← rsp at f's entry
//   │ saved rbp    │ ← rbp   │   address    │   (≡ 8 mod 16, as the ABI wants)
//   └──────────────┘         └──────────────┘
//
// f must not unwind (the callback below catches panics).
global_asm!(
    ".text",
    ".p2align 4",
    ".globl rt_traceback_on_stack",
    ".type rt_traceback_on_stack,@function",
    "rt_traceback_on_stack:",
    "push rbp",
    "mov rbp, rsp",
    "mov rsp, rdi",
    "mov rdi, rdx",
    "call rsi",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".size rt_traceback_on_stack, .-rt_traceback_on_stack",
);

extern "C" {
    fn rt_traceback_on_stack(top: usize, f: extern "C" fn(*mut u8), arg: *mut u8);
}

/// Calls `f(arg)` on the stack whose highest byte is `top - 1`.
///
/// # Safety
/// `top` must be 16-byte aligned and the end of a mapped, writable region
/// large enough for everything `f` does; nothing else may use that region
/// meanwhile; `f` must not unwind.
pub(crate) unsafe fn call_on_stack(top: usize, f: extern "C" fn(*mut u8), arg: *mut u8) {
    debug_assert!(top % 16 == 0);
    // SAFETY: the caller provides the stack; the routine restores rsp and
    // rbp before it returns, and f does not unwind through it.
    unsafe { rt_traceback_on_stack(top, f, arg) }
}
