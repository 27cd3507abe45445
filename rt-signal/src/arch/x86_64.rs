//! `ucontext_t` on linux/amd64: the saved general registers live in
//! `uc_mcontext.gregs`, indexed by the `REG_*` constants; `REG_CSGSFS` packs
//! three 16-bit selectors (cs, gs, fs from the low end), as Go's `sigcontext`
//! declares them.

use core::fmt::{self, Write};

/// The interrupted state of the thread that took a signal (Go's `sigctxt`).
/// Reading it is async-signal-safe.
#[derive(Debug, Clone, Copy)]
pub struct SigCtxt {
    info: *const libc::siginfo_t,
    ctx: *const libc::ucontext_t,
}

impl SigCtxt {
    /// Wraps the second and third arguments of an `SA_SIGINFO` handler.
    ///
    /// # Safety
    /// `info` and `ctx` must be null or the pointers the kernel passed to
    /// the running handler, and stay valid while the `SigCtxt` is used.
    pub unsafe fn new(info: *const libc::siginfo_t, ctx: *const libc::c_void) -> SigCtxt {
        SigCtxt {
            info,
            ctx: ctx.cast(),
        }
    }

    fn greg(&self, r: libc::c_int) -> u64 {
        if self.ctx.is_null() {
            return 0;
        }
        // SAFETY: `ctx` is the kernel's ucontext for this handler (see `new`)
        // and `r` is one of libc's REG_* indices, all below NGREG.
        unsafe { (*self.ctx).uc_mcontext.gregs[r as usize] as u64 }
    }

    /// The interrupted instruction pointer.
    pub fn pc(&self) -> usize {
        self.greg(libc::REG_RIP) as usize
    }

    /// The interrupted rax: a system call's number when the kernel set the
    /// call up to restart, its (negative errno) result when it returned.
    pub fn ax(&self) -> usize {
        self.greg(libc::REG_RAX) as usize
    }

    /// The interrupted stack pointer.
    pub fn sp(&self) -> usize {
        self.greg(libc::REG_RSP) as usize
    }

    /// `si_code`: `SI_USER` (0) for kill(2), `SI_TKILL` (-6) for tgkill,
    /// positive for kernel-generated faults.
    pub fn sigcode(&self) -> i32 {
        if self.info.is_null() {
            return 0;
        }
        // SAFETY: `info` is the kernel's siginfo for this handler (see `new`).
        unsafe { (*self.info).si_code }
    }

    /// `si_addr`: the faulting address for SEGV/BUS/FPE/ILL.
    pub fn fault_addr(&self) -> usize {
        if self.info.is_null() {
            return 0;
        }
        // SAFETY: `info` is the kernel's siginfo for this handler; si_addr
        // reads the first union member, present for every code.
        unsafe { (*self.info).si_addr() as usize }
    }

    /// The signal mask the interrupted code ran with (signals 1–64, bit
    /// `n - 1` for signal `n`), restored by the kernel when the handler
    /// returns.
    pub fn sigmask(&self) -> u64 {
        if self.ctx.is_null() {
            return 0;
        }
        // SAFETY: `ctx` is the kernel's ucontext for this handler; its
        // sigset starts with the word for signals 1–64.
        unsafe { *(core::ptr::addr_of!((*self.ctx).uc_sigmask) as *const u64) }
    }

    /// The registers a stack walk of the interrupted code starts from.
    pub fn walk_regs(&self) -> rt_traceback::Regs {
        let r = |n| self.greg(n) as usize;
        rt_traceback::Regs {
            pc: r(libc::REG_RIP),
            sp: r(libc::REG_RSP),
            bp: r(libc::REG_RBP),
            bx: r(libc::REG_RBX),
            r12: r(libc::REG_R12),
            r13: r(libc::REG_R13),
            r14: r(libc::REG_R14),
            r15: r(libc::REG_R15),
        }
    }

    /// Prints the registers in Go's `dumpregs` layout (`rax    0x…`).
    pub fn dump_regs(&self, w: &mut dyn Write) -> fmt::Result {
        let regs: [(&str, libc::c_int); 18] = [
            ("rax", libc::REG_RAX),
            ("rbx", libc::REG_RBX),
            ("rcx", libc::REG_RCX),
            ("rdx", libc::REG_RDX),
            ("rdi", libc::REG_RDI),
            ("rsi", libc::REG_RSI),
            ("rbp", libc::REG_RBP),
            ("rsp", libc::REG_RSP),
            ("r8", libc::REG_R8),
            ("r9", libc::REG_R9),
            ("r10", libc::REG_R10),
            ("r11", libc::REG_R11),
            ("r12", libc::REG_R12),
            ("r13", libc::REG_R13),
            ("r14", libc::REG_R14),
            ("r15", libc::REG_R15),
            ("rip", libc::REG_RIP),
            ("rflags", libc::REG_EFL),
        ];
        for (name, r) in regs {
            writeln!(w, "{:<7}{:#x}", name, self.greg(r))?;
        }
        let seg = self.greg(libc::REG_CSGSFS);
        writeln!(w, "{:<7}{:#x}", "cs", seg & 0xffff)?;
        writeln!(w, "{:<7}{:#x}", "fs", (seg >> 32) & 0xffff)?;
        writeln!(w, "{:<7}{:#x}", "gs", (seg >> 16) & 0xffff)
    }
}
