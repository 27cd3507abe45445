//! Behaviour tests that change process-wide signal state or end the
//! process: each runs in a forked child (the test binary's own process is
//! never touched), and the parent checks the child's stderr and how it
//! ended.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::panic::AssertUnwindSafe;

use proptest::prelude::*;

use crate::os::{self, sigbit, KSigaction};
use crate::*;

/// How a child ended and what it printed on fd 2.
#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
}

impl Outcome {
    fn lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

/// How long a forked child may run before it counts as hung. Generous: only
/// a hang (a handler that never returns, a lost signal) should reach it.
const CHILD_BOUND: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `f` in a forked child with fd 2 captured and core dumps off. The
/// child exits 0 if `f` returns, 101 if it panics. A child still running
/// after [`CHILD_BOUND`] is killed and the calling test fails as a hang,
/// with whatever the child printed.
fn in_child(f: impl FnOnce()) -> Outcome {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a live [i32; 2] for pipe to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fork has no preconditions; the child only runs `f` and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // close_range drops fds inherited from concurrently running tests so
        // their pipes see end-of-file on time.
        // SAFETY: plain fd and rlimit calls on values owned by this child.
        unsafe {
            libc::close(fds[0]);
            libc::dup2(fds[1], 2);
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
        }
        let r = std::panic::catch_unwind(AssertUnwindSafe(f));
        rt_sys::exit_now(if r.is_ok() { 0 } else { 101 });
    }
    // SAFETY: closing the parent's copy of the write end, which it owns.
    unsafe { libc::close(fds[1]) };
    let deadline = std::time::Instant::now() + CHILD_BOUND;
    let mut killed = false;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until end-of-file, waiting at most until the deadline; a child
    // that is still running then is killed, which closes its end.
    loop {
        let now = std::time::Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() && !killed {
            // SAFETY: `pid` is our child and has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        // Something the child started may still hold the pipe open after
        // the kill: stop reading a little later regardless.
        if killed && now > deadline + std::time::Duration::from_secs(5) {
            break;
        }
        let mut pfd = libc::pollfd {
            fd: fds[0],
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, 100) as i32;
        // SAFETY: `pfd` is one live pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready == 0 || (ready < 0 && errno() == libc::EINTR) {
            continue;
        }
        // SAFETY: `buf` is live and writable for its length.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
        } else if n == 0 || errno() != libc::EINTR {
            break;
        }
    }
    // SAFETY: closing the read end this function opened.
    unsafe { libc::close(fds[0]) };
    let status = reap_within(pid, deadline, &mut killed);
    let stderr = String::from_utf8_lossy(&out).into_owned();
    assert!(
        !killed,
        "hung: the forked child was still running after {CHILD_BOUND:?} and was killed\n\
         its stderr: {stderr}"
    );
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Outcome {
        code,
        signal,
        stderr,
    }
}

/// This thread's errno.
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Reaps child `pid`, polling with `WNOHANG` so the wait never blocks past
/// `deadline`; a child still running then is killed (and `killed` set)
/// before it is reaped. Returns its wait status.
fn reap_within(pid: libc::pid_t, deadline: std::time::Instant, killed: &mut bool) -> i32 {
    loop {
        let mut status = 0;
        let flags = if *killed { 0 } else { libc::WNOHANG };
        // SAFETY: `pid` is this function's unreaped child; `status` is a
        // live int.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r == pid {
            return status;
        }
        if r < 0 && errno() != libc::EINTR {
            panic!("waitpid({pid}): {}", std::io::Error::last_os_error());
        }
        if r == 0 {
            if std::time::Instant::now() >= deadline {
                // SAFETY: `pid` is our child and has not been reaped yet.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                *killed = true;
            } else {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

/// In a child: fails the child with a message on fd 2.
macro_rules! ck {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            let mut b = rt_sys::StackBuf::<1024>::new();
            let _ = write!(b, $($arg)*);
            let _ = b.write_str("\n");
            b.flush_to(2);
            rt_sys::exit_now(101);
        }
    };
}

/// The child's M set-up: a gsignal stack, the thread mask, the handler.
fn boot() {
    let stack: &'static mut [u8] = Box::leak(vec![0u8; GSIGNAL_STACK_SIZE].into_boxed_slice());
    set_initial_mask(sigsave());
    // SAFETY: the leaked stack lives for the rest of the child.
    unsafe { minit_signals(stack.as_mut_ptr(), stack.len()) };
    initsig();
}

/// A write to the address of a field of a nil struct (offset 8): the
/// access a nil-pointer dereference makes.
fn nil_field_write() {
    // SAFETY: deliberately faults; the handler ends the process.
    unsafe { core::ptr::write_volatile(core::ptr::without_provenance_mut::<u64>(8), 1) };
}

// ---- fake runtime hooks -------------------------------------------------

static GUARD_PAGE: AtomicUsize = AtomicUsize::new(0);
const FAKE_STACK: usize = 64 * 1024;

/// Bounds for the fake goroutines' stacks: far from anything the tests touch.
const FAKE_LO: usize = 0x7000_0000_0000;

fn user_g() -> Option<GoroutineInfo> {
    Some(GoroutineInfo {
        goid: 7,
        stack_lo: FAKE_LO,
        stack_hi: FAKE_LO + FAKE_STACK,
        system: false,
    })
}
fn system_g() -> Option<GoroutineInfo> {
    Some(GoroutineInfo {
        goid: 0,
        stack_lo: FAKE_LO,
        stack_hi: FAKE_LO + FAKE_STACK,
        system: true,
    })
}
/// A goroutine whose stack starts right above `GUARD_PAGE`.
fn guarded_g() -> Option<GoroutineInfo> {
    let lo = GUARD_PAGE.load(Ordering::Relaxed) + 4096;
    Some(GoroutineInfo {
        goid: 9,
        stack_lo: lo,
        stack_hi: lo + FAKE_STACK,
        system: false,
    })
}
fn no_guard(_: usize) -> Option<(usize, usize)> {
    None
}
fn no_g() -> Option<GoroutineInfo> {
    None
}
fn guard(addr: usize) -> Option<(usize, usize)> {
    let page = GUARD_PAGE.load(Ordering::Relaxed);
    (page != 0 && addr >= page && addr < page + 4096)
        .then_some((page + 4096, page + 4096 + FAKE_STACK))
}
fn dump(
    w: &mut dyn core::fmt::Write,
    _regs: Option<&rt_traceback::Regs>,
    current: i64,
    all: bool,
    level: u32,
) {
    if current >= 0 {
        let _ = writeln!(w, "goroutine {} [running]:", current);
        if level >= 2 {
            let _ = writeln!(w, "runtime.sigpanic()");
        }
        let _ = writeln!(w, "main.faulty()");
    }
    if all {
        let _ = writeln!(w, "\ngoroutine 1 [chan receive]:");
        let _ = writeln!(w, "main.main()");
    }
}
fn m3() -> i64 {
    3
}

static USER_HOOKS: Hooks = Hooks {
    current_goroutine: user_g,
    stack_guard: guard,
    dump_goroutines: dump,
    current_m: m3,
};
static SYSTEM_HOOKS: Hooks = Hooks {
    current_goroutine: system_g,
    stack_guard: guard,
    dump_goroutines: dump,
    current_m: m3,
};
static NO_G_HOOKS: Hooks = Hooks {
    current_goroutine: no_g,
    stack_guard: guard,
    dump_goroutines: dump,
    current_m: m3,
};

const NIL_PANIC: &str = "panic: runtime error: invalid memory address or nil pointer dereference";

fn assert_signal_line(line: &str, addr: &str) {
    let want = format!("[signal SIGSEGV: segmentation violation code=0x1 addr={addr} pc=0x");
    assert!(
        line.starts_with(&want) && line.ends_with(']'),
        "signal line: {line:?}"
    );
}

// ---- crash reports ------------------------------------------------------

#[test]
fn nil_write_without_hooks_prints_go_panic_and_exits_2() {
    let o = in_child(|| {
        boot();
        nil_field_write();
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(l[0], NIL_PANIC, "{o:?}");
    assert_signal_line(l[1], "0x8");
    assert_eq!(l.len(), 2, "no goroutine sections without hooks: {o:?}");
}

fn nil_write_with(tb: Traceback) -> Outcome {
    in_child(move || {
        boot();
        set_hooks(&USER_HOOKS);
        set_traceback(tb);
        nil_field_write();
    })
}

#[test]
fn gotraceback_single_prints_the_faulting_goroutine() {
    let o = nil_write_with(Traceback {
        level: 1,
        all: false,
        crash: false,
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(l[0], NIL_PANIC);
    assert_signal_line(l[1], "0x8");
    assert_eq!(
        &l[2..],
        ["", "goroutine 7 [running]:", "main.faulty()"],
        "{o:?}"
    );
}

#[test]
fn gotraceback_none_prints_only_the_panic() {
    let o = nil_write_with(Traceback {
        level: 0,
        all: false,
        crash: false,
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    assert_eq!(o.lines().len(), 2, "{o:?}");
    assert_eq!(o.lines()[0], NIL_PANIC);
}

#[test]
fn gotraceback_all_prints_every_goroutine() {
    let o = nil_write_with(Traceback {
        level: 1,
        all: true,
        crash: false,
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(
        &l[2..],
        [
            "",
            "goroutine 7 [running]:",
            "main.faulty()",
            "",
            "goroutine 1 [chan receive]:",
            "main.main()"
        ],
        "{o:?}"
    );
}

#[test]
fn gotraceback_system_asks_for_runtime_frames() {
    let o = nil_write_with(Traceback {
        level: 2,
        all: true,
        crash: false,
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(
        &l[3..5],
        ["goroutine 7 [running]:", "runtime.sigpanic()"],
        "{o:?}"
    );
    assert!(o.stderr.contains("goroutine 1 [chan receive]:"), "{o:?}");
}

#[test]
fn gotraceback_crash_dies_by_sigabrt_after_the_report() {
    let o = nil_write_with(Traceback {
        level: 2,
        all: true,
        crash: true,
    });
    assert_eq!(o.signal, Some(libc::SIGABRT), "{o:?}");
    assert_eq!(o.lines()[0], NIL_PANIC);
    assert!(o.stderr.contains("goroutine 1 [chan receive]:"), "{o:?}");
}

static OWN_STACK_HOOKS: Hooks = Hooks {
    current_goroutine: guarded_g,
    stack_guard: no_guard,
    dump_goroutines: dump,
    current_m: m3,
};

/// Maps a no-access page, records it in `GUARD_PAGE`, and writes into it.
fn hit_guard_page(hooks: &'static Hooks) {
    // SAFETY: a fresh private anonymous mapping with no access.
    let page = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    ck!(page != libc::MAP_FAILED, "mmap failed");
    GUARD_PAGE.store(page as usize, Ordering::Relaxed);
    set_hooks(hooks);
    set_traceback(Traceback::SINGLE);
    // SAFETY: deliberately faults in the guard page.
    unsafe { core::ptr::write_volatile((page as *mut u64).add(100), 1) };
}

#[test]
fn fault_just_below_the_goroutine_stack_is_a_stack_overflow() {
    let o = in_child(|| {
        boot();
        hit_guard_page(&OWN_STACK_HOOKS);
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(
        l[0],
        format!("runtime: goroutine stack exceeds {FAKE_STACK}-byte limit"),
        "{o:?}"
    );
    assert_eq!(l[2], "fatal error: stack overflow", "{o:?}");
    assert_eq!(&l[3..5], ["", "goroutine 9 [running]:"], "{o:?}");
}

#[test]
fn guard_page_hit_is_a_stack_overflow() {
    let o = in_child(|| {
        boot();
        hit_guard_page(&USER_HOOKS);
        ck!(false, "survived a guard page write");
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(
        l[0],
        format!("runtime: goroutine stack exceeds {FAKE_STACK}-byte limit"),
        "{o:?}"
    );
    assert!(
        l[1].starts_with("runtime: sp=0x") && l[1].contains(" stack=[0x"),
        "{o:?}"
    );
    assert_eq!(l[2], "fatal error: stack overflow", "{o:?}");
    // A fatal error lists every goroutine.
    assert_eq!(&l[3..5], ["", "goroutine 7 [running]:"], "{o:?}");
    assert!(o.stderr.contains("goroutine 1 [chan receive]:"), "{o:?}");
}

#[test]
fn fault_on_a_system_stack_is_a_fatal_error() {
    let o = in_child(|| {
        boot();
        set_hooks(&SYSTEM_HOOKS);
        nil_field_write();
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(
        l[0], "fatal error: unexpected signal during runtime execution",
        "{o:?}"
    );
    assert_signal_line(l[1], "0x8");
    assert_eq!(l[3], "goroutine 0 [running]:", "{o:?}");
}

#[test]
fn wild_address_is_an_unexpected_fault() {
    let o = in_child(|| {
        boot();
        set_hooks(&USER_HOOKS);
        // SAFETY: deliberately faults (nothing is mapped at this address in a
        // fresh test process: it is below the usual mmap and heap areas).
        unsafe {
            core::ptr::write_volatile(core::ptr::without_provenance_mut::<u64>(0xdead_0000), 1)
        };
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(l[0], "unexpected fault address 0xdead0000", "{o:?}");
    assert_eq!(l[1], "fatal error: fault");
    assert_signal_line(l[2], "0xdead0000");
}

#[test]
fn fault_outside_goroutines_goes_to_the_previous_handler() {
    extern "C" fn prior(_sig: i32, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
        rt_sys::write_stderr(b"previous handler\n");
        rt_sys::exit_now(7);
    }
    let run = |hooks: &'static Hooks| {
        in_child(move || {
            let sa = KSigaction {
                handler: prior as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void)
                    as usize,
                flags: libc::SA_SIGINFO as u64,
                restorer: 0,
                mask: 0,
            };
            // Installed through glibc so the kernel gets a restorer.
            install_prior(libc::SIGSEGV, &sa);
            boot();
            set_hooks(hooks);
            nil_field_write();
        })
    };
    let o = run(&NO_G_HOOKS);
    assert_eq!(o.code, Some(7), "{o:?}");
    assert_eq!(o.stderr, "previous handler\n");
    let o = run(&USER_HOOKS);
    assert_eq!(o.code, Some(2), "goroutine code is the runtime's: {o:?}");
    assert_eq!(o.lines()[0], NIL_PANIC);
}

#[test]
fn throw_with_fatal_hook_lists_every_goroutine() {
    let o = in_child(|| {
        boot();
        set_hooks(&USER_HOOKS);
        rt_sys::set_fatal_hook(fatal_hook);
        rt_sys::throw("boom");
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    assert_eq!(
        o.lines(),
        [
            "fatal error: boom",
            "",
            "goroutine 7 [running]:",
            "main.faulty()",
            "",
            "goroutine 1 [chan receive]:",
            "main.main()"
        ]
    );
}

#[test]
fn sigquit_dumps_goroutines_and_registers_and_exits_2() {
    let o = in_child(|| {
        boot();
        set_hooks(&USER_HOOKS);
        os::raise(libc::SIGQUIT);
        ck!(false, "still alive after SIGQUIT");
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(l[0], "SIGQUIT: quit", "{o:?}");
    // tgkill's si_code is SI_TKILL (-6).
    assert!(
        l[1].starts_with("PC=0x") && l[1].ends_with(" m=3 sigcode=-6"),
        "{o:?}"
    );
    assert_eq!(&l[2..4], ["", "goroutine 7 [running]:"], "{o:?}");
    assert!(
        o.stderr.contains("\ngoroutine 1 [chan receive]:\n"),
        "{o:?}"
    );
    let regs: Vec<&str> = l
        .iter()
        .filter_map(|s| s.split_whitespace().next())
        .collect();
    for r in ["rax", "rsp", "rip", "rflags", "cs", "fs", "gs"] {
        assert!(regs.contains(&r), "register {r} missing: {o:?}");
    }
}

#[test]
fn sigquit_without_hooks_still_reports() {
    let o = in_child(|| {
        boot();
        set_traceback(Traceback {
            level: 0,
            all: false,
            crash: false,
        });
        os::raise(libc::SIGQUIT);
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(l[0], "SIGQUIT: quit");
    assert!(l[1].starts_with("PC=0x"), "{o:?}");
    assert_eq!(l.len(), 3, "level 0: no goroutines, no registers: {o:?}");
}

#[test]
fn fault_signal_sent_by_kill_is_reported_like_sigquit() {
    let o = in_child(|| {
        boot();
        // SAFETY: kill to our own pid has no memory arguments.
        unsafe { libc::kill(libc::getpid(), libc::SIGSEGV) };
        ck!(false, "still alive after kill -SEGV");
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(l[0], "SIGSEGV: segmentation violation", "{o:?}");
    assert!(l[1].ends_with(" sigcode=0"), "kill(2) is SI_USER: {o:?}");
}

fn faulting_dump(
    _: &mut dyn core::fmt::Write,
    _: Option<&rt_traceback::Regs>,
    _: i64,
    _: bool,
    _: u32,
) {
    // SAFETY: deliberately faults inside the report.
    unsafe { core::ptr::write_volatile(core::ptr::without_provenance_mut::<u64>(16), 1) };
}
static FAULTING_HOOKS: Hooks = Hooks {
    current_goroutine: user_g,
    stack_guard: guard,
    dump_goroutines: faulting_dump,
    current_m: m3,
};

#[test]
fn fault_inside_the_report_is_panic_during_panic() {
    let o = in_child(|| {
        boot();
        set_hooks(&FAULTING_HOOKS);
        nil_field_write();
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(l[0], NIL_PANIC);
    assert_eq!(l.last().copied(), Some("panic during panic"), "{o:?}");
}

#[test]
fn integer_division_by_zero_is_a_divide_panic() {
    #[repr(C)]
    struct DivT {
        quot: libc::c_int,
        rem: libc::c_int,
    }
    extern "C" {
        /// glibc's div(3): a plain `idiv`, so a zero divisor traps (#DE).
        fn div(numer: libc::c_int, denom: libc::c_int) -> DivT;
    }
    let o = in_child(|| {
        boot();
        let zero = std::hint::black_box(0);
        // SAFETY: div has no memory arguments; a zero divisor traps and the
        // handler ends the process.
        let r = unsafe { div(1, zero) };
        ck!(false, "div(1, 0) returned {} {}", r.quot, r.rem);
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    let l = o.lines();
    assert_eq!(
        l[0], "panic: runtime error: integer divide by zero",
        "{o:?}"
    );
    assert!(
        l[1].starts_with("[signal SIGFPE: floating-point exception code=0x1 addr=0x"),
        "{o:?}"
    );
}

#[test]
fn faults_on_several_threads_print_one_report() {
    let o = in_child(|| {
        boot();
        set_hooks(&USER_HOOKS);
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(nil_field_write))
            .collect();
        for t in threads {
            let _ = t.join();
        }
        ck!(false, "survived four faulting threads");
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    assert_eq!(o.stderr.matches("panic: ").count(), 1, "{o:?}");
    assert_eq!(
        o.stderr.matches("goroutine 7 [running]:").count(),
        1,
        "{o:?}"
    );
}

// ---- death by signal, nohup, notify ---------------------------------------

#[test]
fn sigint_with_nobody_notified_kills_by_sigint() {
    let o = in_child(|| {
        os::set_default_or_ignore(libc::SIGINT, 0);
        boot();
        ck!(handling(libc::SIGINT), "the runtime handles SIGINT");
        os::raise(libc::SIGINT);
        ck!(false, "still alive after SIGINT");
    });
    assert_eq!(o.signal, Some(libc::SIGINT), "{o:?}");
    assert_eq!(o.stderr, "");
}

#[test]
fn sigint_inherited_ignored_stays_ignored() {
    let o = in_child(|| {
        os::set_default_or_ignore(libc::SIGINT, 1);
        boot();
        ck!(
            !handling(libc::SIGINT),
            "nohup: SIGINT must not be taken over"
        );
        ck!(
            os::getsig(libc::SIGINT).map(|s| s.handler) == Some(1),
            "still SIG_IGN"
        );
        os::raise(libc::SIGINT);
        // Notify makes it deliverable; reset makes it ignored again.
        let n = notify(&[libc::SIGINT]);
        os::raise(libc::SIGINT);
        ck!(n.recv() == libc::SIGINT, "delivered while notified");
        reset(&[libc::SIGINT]);
        ck!(
            os::getsig(libc::SIGINT).map(|s| s.handler) == Some(1),
            "SIG_IGN again after reset"
        );
        os::raise(libc::SIGINT);
    });
    assert_eq!(o.code, Some(0), "{o:?}");
}

#[test]
fn notify_delivers_sigusr1_and_sigint_to_recv() {
    let o = in_child(|| {
        boot();
        let n = notify(&[libc::SIGUSR1, libc::SIGINT]);
        ck!(n.try_recv().is_none(), "nothing pending yet");
        os::raise(libc::SIGUSR1);
        ck!(n.recv() == libc::SIGUSR1, "SIGUSR1");
        os::raise(libc::SIGINT);
        ck!(
            n.recv() == libc::SIGINT,
            "SIGINT does not kill while notified"
        );
        // A receiver blocked on another thread is woken by a process signal.
        let waiter = std::thread::spawn(move || n.recv());
        // SAFETY: kill to our own pid has no memory arguments.
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
        let got = waiter.join().unwrap_or(-1);
        ck!(got == libc::SIGUSR1, "blocked recv got {}", got);
    });
    assert_eq!(o.code, Some(0), "{o:?}");
}

#[test]
fn notify_works_without_initsig() {
    let o = in_child(|| {
        let n = notify(&[libc::SIGUSR1]);
        ck!(handling(libc::SIGUSR1), "notify takes the signal over");
        ck!(!handling(libc::SIGINT), "and only that one");
        os::raise(libc::SIGUSR1);
        ck!(n.recv() == libc::SIGUSR1, "SIGUSR1");
    });
    assert_eq!(o.code, Some(0), "{o:?}");
}

#[test]
fn stop_returns_signals_to_their_default_handling() {
    let o = in_child(|| {
        boot();
        let n = notify(&[libc::SIGUSR1, libc::SIGINT]);
        let other = notify(&[libc::SIGUSR1]);
        n.stop();
        os::raise(libc::SIGUSR1);
        ck!(
            other.recv() == libc::SIGUSR1,
            "the other notifier still gets SIGUSR1"
        );
        ck!(n.try_recv().is_none(), "a stopped notifier gets nothing");
        drop(other);
        // Nobody listens: SIGUSR1 is dropped (as in Go), SIGINT kills.
        os::raise(libc::SIGUSR1);
        os::raise(libc::SIGINT);
        ck!(false, "still alive after SIGINT");
    });
    assert_eq!(o.signal, Some(libc::SIGINT), "{o:?}");
}

#[test]
fn ignore_drops_the_signal_and_notify_undoes_it() {
    let o = in_child(|| {
        boot();
        ignore(&[libc::SIGTERM]);
        ck!(ignored(libc::SIGTERM), "SIGTERM reported ignored");
        ck!(
            os::getsig(libc::SIGTERM).map(|s| s.handler) == Some(1),
            "SIG_IGN"
        );
        os::raise(libc::SIGTERM);
        let n = notify(&[libc::SIGTERM]);
        ck!(!ignored(libc::SIGTERM), "notify undoes ignore");
        os::raise(libc::SIGTERM);
        ck!(n.recv() == libc::SIGTERM, "SIGTERM delivered");
    });
    assert_eq!(o.code, Some(0), "{o:?}");
}

#[test]
fn sigpipe_and_sigwinch_are_ignored_when_not_notified() {
    let o = in_child(|| {
        boot();
        os::raise(libc::SIGPIPE);
        os::raise(libc::SIGWINCH);
        os::raise(libc::SIGURG);
        os::raise(libc::SIGCHLD);
    });
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stderr, "");
}

#[test]
fn notifier_slots_are_reused_and_exhaustion_is_fatal() {
    let o = in_child(|| {
        boot();
        // Dropping a notifier frees its slot.
        for _ in 0..3 * SLOTS {
            let n = notify(&[libc::SIGUSR2]);
            os::raise(libc::SIGUSR2);
            ck!(n.recv() == libc::SIGUSR2, "fresh notifier receives");
        }
        let live: Vec<Notifier> = (0..SLOTS).map(|_| notify(&[libc::SIGUSR2])).collect();
        os::raise(libc::SIGUSR2);
        ck!(
            live.iter().all(|n| n.try_recv() == Some(libc::SIGUSR2)),
            "every notifier gets it"
        );
        let _one_too_many = notify(&[libc::SIGUSR2]);
        ck!(false, "more than SLOTS notifiers must be fatal");
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    assert_eq!(o.stderr, "fatal error: signal: too many notifiers\n");
}

#[test]
fn a_signal_stack_the_kernel_refuses_is_fatal() {
    let o = in_child(|| {
        let mut tiny = [0u8; 64];
        // SAFETY: `tiny` outlives the call; the kernel refuses it anyway.
        unsafe { minit_signals(tiny.as_mut_ptr(), tiny.len()) };
        ck!(false, "a 64-byte signal stack must be refused");
    });
    assert_eq!(o.code, Some(2), "{o:?}");
    assert_eq!(o.stderr, "fatal error: sigaltstack failed\n");
}

// ---- the handler table (invariant I32, HACKING.md) ------------------------

/// Installs `sa` (handler, flags; mask and restorer ignored) on `sig`, going
/// through glibc once to learn its restorer so the raw call can reach the
/// numbers glibc refuses.
fn install_prior(sig: i32, sa: &KSigaction) {
    let mut k = *sa;
    if k.handler > 1 {
        k.flags |= os::SA_RESTORER;
        k.restorer = glibc_restorer();
    }
    assert!(os::setsig_raw(sig, &k), "install prior on {sig}");
}

fn glibc_restorer() -> usize {
    static CACHE: AtomicUsize = AtomicUsize::new(0);
    let r = CACHE.load(Ordering::Relaxed);
    if r != 0 {
        return r;
    }
    extern "C" fn probe(_: i32) {}
    // SAFETY: zeroed sigaction is valid; SIGUSR2 gets a do-nothing handler
    // (restored to default right after).
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = probe as extern "C" fn(i32) as usize;
        libc::sigaction(libc::SIGUSR2, &sa, core::ptr::null_mut());
    }
    let r = os::getsig(libc::SIGUSR2).unwrap().restorer;
    os::set_default_or_ignore(libc::SIGUSR2, 0);
    CACHE.store(r, Ordering::Relaxed);
    r
}

extern "C" fn prior_a(_: i32, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
extern "C" fn prior_b(_: i32) {}

#[derive(Debug, Clone, Copy)]
enum Prior {
    Default,
    Ignore,
    InfoHandler,
    PlainHandler,
    OnStackHandler,
}

fn prior_action(p: Prior) -> KSigaction {
    let a = prior_a as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) as usize;
    let b = prior_b as extern "C" fn(i32) as usize;
    let (handler, flags) = match p {
        Prior::Default => (0, 0),
        Prior::Ignore => (1, 0),
        Prior::InfoHandler => (a, libc::SA_SIGINFO as u64),
        Prior::PlainHandler => (b, 0),
        Prior::OnStackHandler => (a, (libc::SA_SIGINFO | libc::SA_ONSTACK) as u64),
    };
    KSigaction {
        handler,
        flags,
        restorer: 0,
        mask: 0,
    }
}

fn prior_strategy() -> impl Strategy<Value = Prior> {
    prop_oneof![
        Just(Prior::Default),
        Just(Prior::Ignore),
        Just(Prior::InfoHandler),
        Just(Prior::PlainHandler),
        Just(Prior::OnStackHandler),
    ]
}

/// Checks invariant I32 (HACKING.md) for every signal after `initsig`, given
/// what was installed before. Runs in the child.
fn check_table(before: &[KSigaction; 65]) {
    let ours = install::go_handler();
    let go_flags =
        (libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART) as u64 | os::SA_RESTORER;
    let never = sigbit(libc::SIGKILL) | sigbit(libc::SIGSTOP);
    for sig in 1..=64 {
        let p = before[sig as usize];
        let a = os::getsig(sig).unwrap_or_default();
        let flags = table::SIGTABLE[sig as usize].flags;
        if flags == 0 || flags & table::DEFAULT != 0 {
            ck!(
                a == p,
                "signal {}: left alone ({:x?} became {:x?})",
                sig,
                p,
                a
            );
            ck!(
                forwarded_handler(sig).is_none() && !handling(sig),
                "signal {}: not taken",
                sig
            );
            continue;
        }
        ck!(
            forwarded_handler(sig) == Some(p.handler),
            "signal {}: fwd {:?} != prior {:#x}",
            sig,
            forwarded_handler(sig),
            p.handler
        );
        let keep = flags & table::SET_STACK != 0
            || ((sig == libc::SIGHUP || sig == libc::SIGINT) && p.handler == 1);
        if keep {
            ck!(
                !handling(sig) && a.handler == p.handler,
                "signal {}: handler kept",
                sig
            );
            let want = if p.handler > 1 {
                p.flags | libc::SA_ONSTACK as u64
            } else {
                p.flags
            };
            ck!(
                a.flags == want,
                "signal {}: flags {:#x}, want {:#x}",
                sig,
                a.flags,
                want
            );
        } else {
            ck!(
                handling(sig) && a.handler == ours,
                "signal {}: Go handler installed",
                sig
            );
            ck!(
                a.flags & go_flags == go_flags,
                "signal {}: flags {:#x}",
                sig,
                a.flags
            );
            ck!(
                a.mask | never == !0,
                "signal {}: sa_mask {:#x} not full",
                sig,
                a.mask
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Invariant I32 (HACKING.md): after `initsig`, Go's signals carry the
    /// runtime's handler with Go's flags and a full mask; the previous
    /// disposition is what gets forwarded; KILL/STOP and the job-control
    /// signals are untouched; 32–34 keep their handler and only gain
    /// SA_ONSTACK; an ignored HUP/INT stays ignored.
    #[test]
    fn initsig_table_invariants(priors in proptest::collection::vec(prior_strategy(), 64)) {
        let o = in_child(move || {
            glibc_restorer();
            let mut before = [KSigaction::default(); 65];
            for sig in 1..=64 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    install_prior(sig, &prior_action(priors[sig as usize - 1]));
                }
                before[sig as usize] = os::getsig(sig).unwrap_or_default();
            }
            initsig();
            check_table(&before);
            // A second call changes nothing and keeps the saved priors.
            initsig();
            check_table(&before);
        });
        prop_assert_eq!(o.code, Some(0), "{}", o.stderr);
    }
}
