//! A system call without libc, for the calls on every read and write.
//!
//! glibc's `recv` and `send` are thread-cancellation points: in a process
//! with more than one thread (every rt program has sysmon and its Ms) each
//! one brackets the `syscall` with `__pthread_enable_asynccancel` and
//! `__pthread_disable_asynccancel`, and reports errors through the
//! thread's `errno`. rt never cancels threads, and the sockets are
//! non-blocking, so the stream paths enter the kernel directly (Go's
//! `syscall.Syscall` does the same). In a profile of the echo server at 100
//! connections the two cancellation helpers were 0.65% of the server's
//! time, half of rt's own user time outside the kernel.
//!
//! The preemption handler tells a goroutine in the kernel by the bytes of
//! the instruction (`0f 05`) and the call number, not by libc's addresses,
//! so a call made here is recognised as one made through libc.

use core::arch::asm;

/// `syscall` with up to six arguments; the kernel's return value (a
/// negative errno on failure).
///
/// Register contract (the x86-64 Linux syscall ABI):
///
/// ```text
///   in:  rax = number, rdi, rsi, rdx, r10, r8, r9 = arguments 1..6
///   out: rax = result (-4095..=-1: -errno)
///   clobbered by the kernel: rcx (return rip), r11 (rflags)
///   the user stack is not touched (`nostack`); memory the arguments
///   point at may be read or written (no `nomem`/`readonly`)
/// ```
///
/// # Safety
/// The arguments satisfy the kernel's contract for `nr`: every pointer
/// names memory valid for what the call reads or writes through it.
#[inline(always)]
pub(crate) unsafe fn syscall6(
    nr: libc::c_long,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the caller's contract covers the call's memory effects; the
    // asm clobbers only rcx and r11, which are declared.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r9") a6,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        )
    };
    ret
}
