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
//! A fresh goroutine's stack holds its FP slot (the control state it starts
//! with, its creator's) and the fake return address `rt_goexit + 1`;
//! `gobuf.pc` is `rt_gostart`, which drops the slot and jumps to the entry
//! function, so that when the entry function returns it "returns" into
//! `rt_goexit`, which calls `goexit1` (Go's `gostartcallfn` layout):
//!
//! ```text
//!   ┌──────────────────────────┐ stack.hi (16-byte aligned)
//!   │ 64 bytes, zeroed         │ the "caller's" argument area: readable,
//!   │                          │ since the next stack's guard is above hi
//!   │ rt_goexit + 1            │ ← rsp at the entry function (≡ 8 mod 16)
//!   │ MXCSR (4 B) | x87 CW (2 B)│ ← gobuf.sp
//!   └──────────────────────────┘
//! ```
//!
//! The callee-saved registers of the System V ABI are rbx, rbp, r12–r15, the
//! MXCSR control bits and the x87 control word; those are exactly what is
//! saved. Caller-saved registers are dead across the `call rt_mcall`.
//!
//! ## The floating-point control state
//!
//! With `GODEBUG=fpenv=1` (the default) the MXCSR and the x87 control word
//! belong to the goroutine: every switch-out stores them in the FP slot,
//! every jump into a goroutine (`rt_gogo`, [`switch`]) loads the target's
//! slot right before the jump, g0 runs the scheduler in the state the
//! runtime booted with ([`FP_G0`]), and a new goroutine starts with its
//! creator's. Loading is cheap (`ldmxcsr`, `fldcw`: about 0.55 ns each on
//! AMD Zen 4), so the loads are unconditional; reading MXCSR is not
//! (`stmxcsr`: about 4.2 ns of throughput there, more than the rest of a
//! switch), so it is read once per switch, on the way out, and once per
//! `go` statement, for the new goroutine.
//!
//! With `fpenv=0` the state belongs to the thread, as in Go: a switch
//! neither saves nor loads a slot (a fresh stack still gets one, unused). Rust code is compiled for the default floating-point
//! environment and must not run in another, so only a program that changes
//! MXCSR or the x87 control word itself (and yields before restoring it)
//! needs `fpenv=1`. The mode is fixed before the first goroutine stack is
//! laid out ([`set_fp_per_g`]), so no goroutine is ever resumed from a slot
//! that was not saved (`ldmxcsr` of garbage with reserved bits set faults).
//!
//! The goroutine slot (`getg`) is word 0 of the M's TLS block, which the GS
//! base points at (libc owns FS). The switch routines do not touch it: the
//! portable layer calls [`setg_raw`] right before switching, which keeps the
//! assembly free of any knowledge of the slot and lets the `thread_local!`
//! fallback (kernel refused `ARCH_SET_GS`) share the same switch code.

use crate::runtime2::{Gobuf, G};
use core::arch::{asm, global_asm};
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// `arch_prctl` code that sets the GS base.
const ARCH_SET_GS: i32 = 0x1001;

// The goroutine and M slots are read at fixed GS offsets below (and in
// rt-entry's rt0_go); the layout is rt_sys::tls's.
const _: () = assert!(rt_sys::tls::slot_offset(rt_sys::tls::TLS_G) == 0);
const _: () = assert!(rt_sys::tls::slot_offset(rt_sys::tls::TLS_M) == 8);

/// Points the calling thread's GS base at `block` (`settls`).
///
/// Returns the kernel's error number on failure.
///
/// # Safety
/// `block` must stay valid for as long as this thread runs runtime code, and
/// must hold at least one word (the goroutine slot).
pub(crate) unsafe fn settls(block: *mut usize) -> Result<(), i32> {
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
pub(crate) unsafe fn getg_raw() -> *mut G {
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
pub(crate) unsafe fn getm_raw() -> usize {
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
pub(crate) unsafe fn setg_raw(g: *mut G) {
    // SAFETY: the caller guarantees GS points at a live TLS block.
    unsafe { asm!("mov qword ptr gs:[0], {}", in(reg) g, options(nostack, preserves_flags)) };
}

/// The current stack pointer.
#[inline(always)]
pub(crate) fn current_sp() -> usize {
    let sp: usize;
    // SAFETY: reading rsp has no side effects.
    unsafe { asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// Hints the core to fetch the two cache lines at `p` for writing (a G's
/// scheduling fields). A prefetch never faults, so any address, null
/// included, is fine.
#[inline(always)]
pub(crate) fn prefetch_write(p: *const u8) {
    // SAFETY: `prefetchw` only hints the cache; it reads no memory
    // architecturally and never faults, whatever the address.
    unsafe {
        asm!(
            "prefetchw [{0}]",
            "prefetchw [{0} + 64]",
            in(reg) p,
            options(nostack, preserves_flags, readonly)
        )
    };
}

/// Hints the core to fetch the top of a goroutine's stack, from its saved
/// stack pointer up to eight cache lines, never past the stack's top: what
/// its resumption reads first (the switch's saved state, then the frames
/// it returns through out of its park). A goroutine that waited for I/O
/// among many others has usually left the caches by the time it runs
/// again; without the hint its first stack access stalls the switch. A
/// goroutine that never ran has only its first frame there.
///
/// `gp` must point at a G. Gs are never freed, so any G will do, queued or
/// already taken by another M: a stale stack pointer only costs a useless
/// prefetch.
#[inline(always)]
pub(crate) fn prefetch_stack(gp: *const crate::runtime2::G) {
    use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    // `sched.sp` and `stack.hi` are aligned words that other threads only
    // write whole (the switch assembly's single stores, or plain stores by
    // the code that owns the G): reading them atomically makes the racing
    // reads defined.
    // SAFETY: `gp` points at a G (caller contract; Gs are never freed).
    let (sp, hi) = unsafe {
        (
            AtomicUsize::from_ptr(core::ptr::addr_of!((*gp).sched.sp).cast_mut()).load(Relaxed),
            AtomicUsize::from_ptr(core::ptr::addr_of!((*gp).stack.hi).cast_mut()).load(Relaxed),
        )
    };
    let end = hi.min(sp.wrapping_add(8 * 64));
    let mut line = sp;
    while line < end {
        // SAFETY: `prefetcht0` only hints the cache; it reads no memory
        // architecturally and never faults, whatever the address.
        unsafe {
            asm!(
                "prefetcht0 [{0}]",
                in(reg) line,
                options(nostack, preserves_flags, readonly)
            )
        };
        line += 64;
    }
}

/// The `syscall` instruction.
const SYSCALL_INSN: [u8; 2] = [0x0f, 0x05];

/// System calls that may wait for as long as something outside the thread
/// decides: I/O on pipes, sockets, terminals and slow files, waits for
/// futexes, children, locks, signals and events, sleeps. A thread seen
/// about to enter or restart one of these may give up its P: it waits, or
/// will, without needing one. Calls that change the thread or the process
/// (`clone`, `execve`, `rt_sigprocmask`, …) are not here.
const BLOCKING_SYSCALLS: [i64; 56] = [
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_sendfile,
    libc::SYS_splice,
    libc::SYS_tee,
    libc::SYS_copy_file_range,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_sync_file_range,
    libc::SYS_flock,
    libc::SYS_fcntl,
    libc::SYS_connect,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_select,
    libc::SYS_pselect6,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_futex,
    libc::SYS_futex_waitv,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_pause,
    libc::SYS_rt_sigsuspend,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_wait4,
    libc::SYS_waitid,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_msgsnd,
    libc::SYS_msgrcv,
    libc::SYS_mq_timedsend,
    libc::SYS_mq_timedreceive,
    libc::SYS_io_getevents,
    libc::SYS_io_uring_enter,
    libc::SYS_restart_syscall,
    libc::SYS_sync,
];

/// From the pc and rax a signal interrupted, whether the thread was in a
/// blocking system call (`preemption.md`, "Facts measured here"):
///
/// ```text
///   restart state   pc → 0f 05 (syscall)     rax = the call's number
///                   (the kernel rewound a call it restarts after the
///                   handler: SA_RESTART reads, futex waits without timeout)
///   EINTR state     pc-2 → 0f 05, pc → next  rax = -EINTR
///                   (sleeps, timed waits, poll/epoll: never restarted)
/// ```
///
/// The restart state also describes a thread about to execute the call,
/// which is why only [`BLOCKING_SYSCALLS`] count: giving up the P just
/// before such a call is as good as just after. `int 0x80` (`cd 80`, i386
/// numbers) is rewound the same way and does not match.
///
/// # Safety
/// `pc` is the interrupted instruction pointer of the calling thread
/// (mapped and executable): the bytes read are at `pc` and, only when
/// they are in the same page, at `pc - 2`.
pub(crate) unsafe fn blocked_in_syscall(pc: usize, ax: usize) -> bool {
    let at = |a: usize| {
        // SAFETY: caller contract: `a` is `pc`, mapped, or `pc - 2` in the
        // same page; a `0x0f` at `pc` begins an instruction of two bytes.
        unsafe { core::ptr::read_volatile(a as *const u8) }
    };
    // rax first: most interrupted code has neither value, and then no
    // code byte is read at all.
    if ax as isize == -(libc::EINTR as isize) {
        return pc & 0xfff >= 2 && [at(pc - 2), at(pc - 1)] == SYSCALL_INSN;
    }
    BLOCKING_SYSCALLS.contains(&(ax as i64))
        && at(pc) == SYSCALL_INSN[0]
        && at(pc + 1) == SYSCALL_INSN[1]
}

/// Address a goroutine's entry function returns to (`goexit + PCQuantum`):
/// the `call` inside `rt_goexit`, one byte past its leading `nop`, so the
/// return address still lies inside `rt_goexit` for symbolisers.
pub(crate) fn goexit_pc() -> usize {
    let pc: usize;
    // SAFETY: `lea` of a symbol address has no side effects.
    unsafe {
        asm!("lea {}, [rip + rt_goexit]", out(reg) pc, options(nomem, nostack, preserves_flags))
    };
    pc + 1
}

/// The floating-point control state of a goroutine, as its FP slot holds
/// it: MXCSR in the low 32 bits, the x87 control word in the next 16 (the
/// layout `stmxcsr [slot]; fnstcw [slot + 4]` writes).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpEnv(pub u64);

impl FpEnv {
    /// The System V initial state: all exceptions masked, round to nearest
    /// (MXCSR 0x1F80), and double-extended precision for x87 (CW 0x037F).
    pub const DEFAULT: FpEnv = FpEnv::new(0x1F80, 0x037F);

    /// The state with MXCSR `mxcsr` and x87 control word `cw`.
    pub const fn new(mxcsr: u32, cw: u16) -> FpEnv {
        FpEnv(mxcsr as u64 | (cw as u64) << 32)
    }

    /// The MXCSR half.
    pub const fn mxcsr(self) -> u32 {
        self.0 as u32
    }

    /// The x87 control-word half.
    pub const fn x87_cw(self) -> u16 {
        (self.0 >> 32) as u16
    }
}

/// 1 while each goroutine owns its floating-point control state
/// (`GODEBUG=fpenv=1`, the default); 0 when it is the thread's. Read by
/// the switch assembly as a byte; written only by [`set_fp_per_g`].
static FP_PER_G: AtomicU8 = AtomicU8::new(1);

/// The state g0 runs the scheduler in while [`FP_PER_G`] is 1: MXCSR at
/// byte 0, the x87 control word at byte 4 (an [`FpEnv`]). Recorded from
/// the booting thread by [`set_fp_per_g`].
static FP_G0: AtomicU64 = AtomicU64::new(FpEnv::DEFAULT.0);

/// Chooses who owns the floating-point control state (true: each
/// goroutine; false: each thread) and records the calling thread's current
/// state as the one g0 runs in. Returns false, changing nothing, once any
/// goroutine stack has been laid out: a goroutine switched out under
/// `fpenv=0` has a slot nobody saved, which `fpenv=1` would load.
pub fn set_fp_per_g(per_g: bool) -> bool {
    if LAID_OUT.load(Ordering::Acquire) {
        return false;
    }
    FP_G0.store(fp_env_current().0, Ordering::Relaxed);
    FP_PER_G.store(u8::from(per_g), Ordering::Release);
    true
}

/// True while each goroutine owns its floating-point control state.
pub fn fp_per_g() -> bool {
    FP_PER_G.load(Ordering::Relaxed) != 0
}

/// Loads g0's floating-point control state ([`FP_G0`]) into the calling
/// thread when goroutines own theirs (a new M's thread starts in its
/// creator's, which may be a goroutine's).
pub(crate) fn fp_enter_g0() {
    if fp_per_g() {
        // SAFETY: FP_G0 was read from this machine's own registers (or is
        // the System V default), and g0 runs runtime code written for it.
        unsafe { fp_env_set(FpEnv(FP_G0.load(Ordering::Relaxed))) };
    }
}

/// Loads MXCSR and the x87 control word from `env` (`ldmxcsr`, `fldcw`).
///
/// # Safety
/// `env` must hold valid values (reserved MXCSR bits clear, or `ldmxcsr`
/// faults), and the code that runs afterwards must be fit for them: Rust
/// code is compiled for the default environment (round to nearest, no
/// flush-to-zero, exceptions masked).
pub unsafe fn fp_env_set(env: FpEnv) {
    let slot = env.0;
    // SAFETY: both instructions only read `slot`; validity of the values is
    // the caller's contract.
    unsafe {
        asm!(
            "ldmxcsr [{p}]",
            "fldcw [{p} + 4]",
            p = in(reg) &slot,
            options(nostack, readonly, preserves_flags)
        )
    };
}

/// Set once the first goroutine stack is laid out ([`init_fresh_stack`]).
static LAID_OUT: AtomicBool = AtomicBool::new(false);

/// The calling thread's MXCSR and x87 control word (one `stmxcsr`, the
/// slow read, and one `fnstcw`).
pub fn fp_env_current() -> FpEnv {
    let mut slot = 0u64;
    // SAFETY: both instructions only store into `slot`, a local of the
    // right size (4 + 2 bytes at offsets 0 and 4).
    unsafe {
        asm!(
            "stmxcsr [{p}]",
            "fnstcw [{p} + 4]",
            p = in(reg) &mut slot,
            options(nostack, preserves_flags)
        )
    };
    FpEnv(slot & 0xFFFF_FFFF_FFFF)
}

/// Lays out a fresh goroutine's stack below `top` (16-byte aligned): a
/// zeroed `reserve`, the fake return address into `rt_goexit`, the FP slot
/// holding `env`. Returns the `gobuf.sp` to store; `gobuf.pc` must be
/// [`gostart_pc`].
///
/// # Safety
/// `[top - reserve - 16, top)` must be writable memory of a stack no live
/// frame uses.
pub(crate) unsafe fn init_fresh_stack(top: usize, reserve: usize, env: FpEnv) -> usize {
    debug_assert_eq!(top % 16, 0);
    let ret = top - reserve - 8;
    // SAFETY: caller contract: the range is this stack's unused top.
    unsafe {
        core::ptr::write_bytes((ret + 8) as *mut u8, 0, reserve);
        (ret as *mut usize).write(goexit_pc());
        ((ret - 8) as *mut u64).write(env.0);
    }
    if !LAID_OUT.load(Ordering::Relaxed) {
        LAID_OUT.store(true, Ordering::Release);
    }
    ret - 8
}

/// `gobuf.pc` of a goroutine that has not run yet: `rt_gostart`.
pub(crate) fn gostart_pc() -> usize {
    let pc: usize;
    // SAFETY: `lea` of a symbol address has no side effects.
    unsafe {
        asm!("lea {}, [rip + rt_gostart]", out(reg) pc, options(nomem, nostack, preserves_flags))
    };
    pc
}

// Saves the FP control state into the 8-byte FP slot at [rsp] when
// goroutines own it (FP_PER_G != 0). Clobbers flags only.
macro_rules! SAVE_FP_SLOT {
    () => {
        concat!(
            "    cmp byte ptr [rip + {per_g}], 0\n",
            "    je 5f\n",
            "    stmxcsr [rsp]\n",
            "    fnstcw [rsp + 4]\n",
            "5:"
        )
    };
}

// Loads the FP control state from the target's FP slot at [rsp] (the jump
// into a goroutine: rsp is already the target's gobuf.sp) when goroutines
// own it. Clobbers flags only.
macro_rules! LOAD_FP_SLOT {
    () => {
        concat!(
            "    cmp byte ptr [rip + {per_g}], 0\n",
            "    je 6f\n",
            "    ldmxcsr [rsp]\n",
            "    fldcw [rsp + 4]\n",
            "6:"
        )
    };
}

// rt_goexit: the top frame of every goroutine.
//
// Entered by `ret` from the goroutine's entry function (the fake return
// address laid out by init_fresh_stack). rsp is then (stack.hi & !15) -
// reserve, 16-byte aligned, as a `call` requires. `.cfi_undefined rip` tells
// unwinders and debuggers that no frame lies above: backtraces of a
// goroutine end here.
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

// rt_gostart: gobuf.pc of a goroutine that has not run yet.
//
// Entered by a jump with rsp = gobuf.sp = the FP slot (already loaded by
// the jumper); drops it, leaving rsp at the fake return address (≡ 8 mod
// 16, as at any function entry), and jumps to the entry function.
global_asm!(
    ".pushsection .text.rt_gostart,\"ax\",@progbits",
    ".globl rt_gostart",
    ".type rt_gostart,@function",
    "rt_gostart:",
    "    add rsp, 8",
    "    jmp {entry}",
    ".size rt_gostart, .-rt_gostart",
    ".popsection",
    entry = sym crate::proc::goroutine_entry,
);

// rt_gogo(buf: *const Gobuf [rdi]) -> !
//
// Loads rsp from buf.sp, the FP control state from the FP slot there, and
// jumps to buf.pc (rt_gostart, or a resume label). Whatever is on the
// current stack is abandoned (g0's frames of `schedule`).
global_asm!(
    ".pushsection .text.rt_gogo,\"ax\",@progbits",
    ".globl rt_gogo",
    ".type rt_gogo,@function",
    "rt_gogo:",
    "    mov rsp, [rdi + {sp}]",    // the target's stack: its FP slot on top
    LOAD_FP_SLOT!(),
    "    jmp qword ptr [rdi + {pc}]",
    ".size rt_gogo, .-rt_gogo",
    ".popsection",
    sp = const offset_of!(Gobuf, sp),
    pc = const offset_of!(Gobuf, pc),
    per_g = sym FP_PER_G,
);

// rt_mcall(save: *mut Gobuf [rdi], g0sp: usize [rsi],
//          f: extern "C" fn(*mut G) -> ! [rdx], gp: *mut G [rcx])
//
// Saves the callee-saved state of the running goroutine on its own stack
// (see the diagram above), records the resume point in `save`, switches to
// the g0 stack at `g0sp`, puts g0's FP control state in place and calls
// f(gp). f never returns; the goroutine continues when someone rt_gogo's
// to `save` (which has loaded its FP slot) and lands on `2:` below.
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
    "    sub rsp, 8",               // the FP slot
    SAVE_FP_SLOT!(),
    "    mov [rdi + {sp}], rsp",    // save.sp
    "    lea rax, [rip + 2f]",
    "    mov [rdi + {pc}], rax",    // save.pc = resume point
    "    mov rsp, rsi",             // onto g0's stack; g0sp is 16-byte aligned
    "    cmp byte ptr [rip + {per_g}], 0",
    "    je 7f",
    "    ldmxcsr [rip + {g0env}]",  // the scheduler runs in the boot state,
    "    fldcw [rip + {g0env} + 4]", // not in whatever the goroutine chose
    "7:",
    "    mov rdi, rcx",             // f's argument: the goroutine that left
    "    call rdx",                 // f(gp): never returns
    "    ud2",
    "2:",                           // resumed by rt_gogo(save)
    ".globl rt_mcall_resume",       // the same point, named for stack walks
    "rt_mcall_resume:",
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
    per_g = sym FP_PER_G,
    g0env = sym FP_G0,
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
/// `buf` must describe either a fresh goroutine whose stack is laid out
/// (`sp != 0`: lazily bound stacks are bound first) or one suspended by
/// [`mcall`] or [`switch`], whose stack is still live; the goroutine slot
/// must already name that goroutine.
#[inline(always)]
pub(crate) unsafe fn gogo(buf: *const Gobuf) -> ! {
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
///
/// ```text
///   this goroutine's stack after the save     `to`'s stack at the jump
///   │ rbp                  │                  │ …                    │
///   │ rbx                  │                  │ FP slot              │ ← rsp = to.sp
///   │ FP slot              │ ← save.sp        └──────────────────────┘
///   └──────────────────────┘  save.pc = label 2 (pops the three words)
/// ```
#[inline(always)]
pub(crate) unsafe fn switch(save: *mut Gobuf, to: *const Gobuf) {
    // The asm leaves through `to` (having loaded `to`'s FP slot) and comes
    // back at label 2 with the stack exactly as it left it.
    // SAFETY: the forwarded contract.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "sub rsp, 8",               // the FP slot
            "cmp byte ptr [rip + {per_g}], 0",
            "je 5f",                    // ZF survives until the `je 6f` below:
            "stmxcsr [rsp]",            // nothing in between writes flags
            "fnstcw [rsp + 4]",
            "5:",
            "lea rdx, [rip + 2f]",
            "mov [rdi + {pc}], rdx",    // save.pc = label 2 below
            "mov [rdi + {sp}], rsp",    // save.sp
            "mov rsp, [rsi + {sp}]",    // into the target's stack
            "je 6f",
            "ldmxcsr [rsp]",            // the target's FP slot
            "fldcw [rsp + 4]",
            "6:",
            "jmp qword ptr [rsi + {pc}]",
            "2:",
            "add rsp, 8",
            "pop rbx",
            "pop rbp",
            sp = const offset_of!(Gobuf, sp),
            pc = const offset_of!(Gobuf, pc),
            per_g = sym FP_PER_G,
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
pub(crate) unsafe fn mcall(
    save: *mut Gobuf,
    g0sp: usize,
    f: extern "C" fn(*mut G) -> !,
    gp: *mut G,
) {
    // SAFETY: forwarded contract.
    unsafe { rt_mcall(save, g0sp, f, gp) }
}

/// Where `rt_mcall` resumes a goroutine (its saved `gobuf.pc`).
fn mcall_resume_pc() -> usize {
    let pc: usize;
    // SAFETY: `lea` of a symbol address has no side effects.
    unsafe {
        asm!("lea {}, [rip + rt_mcall_resume]", out(reg) pc, options(nomem, nostack, preserves_flags))
    };
    pc
}

/// The registers a goroutine switched out with, for walking its stack:
/// `(registers, exact)` where `exact` says the PC is a resume point rather
/// than a return address; `None` for a goroutine that has not run yet.
///
/// The two ways out leave different stacks (see [`mcall`] and [`switch`]):
///
/// ```text
///   by rt_mcall                              by switch (inline)
///   sp+56 │ return address into the caller │  sp+16 │ rbp │
///   sp+48 │ rbp                            │  sp+8  │ rbx │
///   sp+40 │ rbx   sp+32 r12   sp+24 r13     │  sp    │ FP slot │ ← gobuf.sp
///   sp+16 │ r14   sp+8  r15                 │  gobuf.pc = the resume label in
///   sp    │ FP slot                         │  the function that switched
/// ```
///
/// In the `switch` case r12–r15 were declared clobbered, so the function
/// holding the label saved its caller's values itself and its CFI says
/// where; they are left 0.
///
/// # Safety
/// `buf` must be the saved context of a goroutine that is not running, and
/// its stack `[lo, hi)` mapped; the words are read only if they lie inside.
pub(crate) unsafe fn saved_regs(
    buf: &Gobuf,
    lo: usize,
    hi: usize,
) -> Option<(rt_traceback::Regs, bool)> {
    let sp = buf.sp;
    let word = |off: usize| -> Option<usize> {
        let a = sp.checked_add(off)?;
        if a < lo || a + 8 > hi {
            return None;
        }
        // SAFETY: inside the goroutine's mapped stack (checked above).
        Some(unsafe { core::ptr::read_volatile(a as *const usize) })
    };
    if buf.pc == 0 || buf.pc == gostart_pc() {
        return None;
    }
    if buf.pc == mcall_resume_pc() {
        let regs = rt_traceback::Regs {
            pc: word(56)?,
            sp: sp + 64,
            bp: word(48)?,
            bx: word(40)?,
            r12: word(32)?,
            r13: word(24)?,
            r14: word(16)?,
            r15: word(8)?,
        };
        return Some((regs, false));
    }
    let regs = rt_traceback::Regs {
        pc: buf.pc,
        sp: sp + 24,
        bp: word(16)?,
        bx: word(8)?,
        ..rt_traceback::Regs::default()
    };
    Some((regs, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A code page image with `bytes` at an offset that is neither the
    /// first nor the last two bytes of a page; returns it and the offset.
    fn code(bytes: &[u8]) -> (Vec<u8>, usize) {
        let buf = vec![0x90u8; 3 * 4096];
        let base = buf.as_ptr() as usize;
        let off = (4096 - base % 4096) + 100;
        let mut buf = buf;
        buf[off..off + bytes.len()].copy_from_slice(bytes);
        (buf, off)
    }

    fn blocked(buf: &[u8], at: usize, ax: usize) -> bool {
        // SAFETY: `at` lies inside `buf`, away from its ends.
        unsafe { blocked_in_syscall(buf.as_ptr() as usize + at, ax) }
    }

    #[test]
    fn a_rewound_blocking_call_is_blocked() {
        let (buf, off) = code(&[0x0f, 0x05]);
        assert!(blocked(&buf, off, libc::SYS_read as usize));
        assert!(blocked(&buf, off, libc::SYS_futex as usize));
        assert!(blocked(&buf, off, libc::SYS_wait4 as usize));
        // Calls that change the thread or the process are never handed off.
        assert!(!blocked(&buf, off, libc::SYS_clone as usize));
        assert!(!blocked(&buf, off, libc::SYS_rt_sigprocmask as usize));
        assert!(!blocked(&buf, off, libc::SYS_execve as usize));
        // Not at a syscall instruction: rax is just a value.
        assert!(!blocked(&buf, off + 2, libc::SYS_read as usize));
    }

    #[test]
    fn int_0x80_is_not_a_syscall_instruction() {
        let (buf, off) = code(&[0xcd, 0x80]);
        assert!(!blocked(&buf, off, libc::SYS_read as usize));
        assert!(!blocked(&buf, off + 2, (-libc::EINTR) as usize));
    }

    #[test]
    fn an_interrupted_call_returning_eintr_is_blocked() {
        let (buf, off) = code(&[0x0f, 0x05]);
        assert!(blocked(&buf, off + 2, (-libc::EINTR) as usize));
        assert!(!blocked(&buf, off + 2, (-libc::EAGAIN) as usize));
        assert!(!blocked(&buf, off + 3, (-libc::EINTR) as usize));
    }

    proptest! {
        /// Whatever the code bytes, a rax that is neither a listed call
        /// nor -EINTR never counts as blocked.
        #[test]
        fn only_listed_calls_and_eintr_count(
            bytes in proptest::collection::vec(any::<u8>(), 4),
            ax in any::<usize>(),
        ) {
            prop_assume!(!BLOCKING_SYSCALLS.contains(&(ax as i64)));
            prop_assume!(ax as isize != -(libc::EINTR as isize));
            let (buf, off) = code(&bytes);
            prop_assert!(!blocked(&buf, off + 2, ax));
        }
    }

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
