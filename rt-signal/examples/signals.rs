//! rt-signal on its own, in a plain Rust program: boot the signal layer on
//! the main thread, then show one behaviour chosen by the first argument.
//!
//! ```text
//! cargo run -p rt-signal --example signals -- nil      # Go's nil-dereference panic report, exit 2
//! cargo run -p rt-signal --example signals -- quit     # SIGQUIT: quit + PC line + registers, exit 2
//! cargo run -p rt-signal --example signals -- notify   # receive SIGUSR1 and SIGINT, exit 0
//! cargo run -p rt-signal --example signals -- int      # SIGINT with nobody notified: dies by SIGINT
//! ```
//! `GOTRACEBACK=crash` (read here with a minimal parser) ends the crash
//! reports with SIGABRT instead of exit status 2.

use rt_signal::{Traceback, GSIGNAL_STACK_SIZE};

fn main() {
    // The gsignal stack of this thread (m0), leaked: it must outlive every
    // signal the thread may take.
    let stack: &'static mut [u8] = Box::leak(vec![0u8; GSIGNAL_STACK_SIZE].into_boxed_slice());
    rt_signal::set_initial_mask(rt_signal::sigsave());
    if std::env::var("GOTRACEBACK").as_deref() == Ok("crash") {
        rt_signal::set_traceback(Traceback {
            level: 2,
            all: true,
            crash: true,
        });
    }
    // SAFETY: the stack is leaked, so it stays mapped for the whole program.
    unsafe { rt_signal::minit_signals(stack.as_mut_ptr(), stack.len()) };
    rt_signal::initsig();

    let raise = |sig| {
        // SAFETY: kill to our own pid has no memory arguments.
        unsafe { libc::kill(libc::getpid(), sig) };
    };
    match std::env::args().nth(1).as_deref() {
        Some("nil") => {
            // SAFETY: deliberately writes a field of a nil struct; the
            // handler reports it and ends the process.
            unsafe { core::ptr::write_volatile(core::ptr::without_provenance_mut::<u64>(8), 1) };
        }
        Some("quit") => raise(libc::SIGQUIT),
        Some("int") => raise(libc::SIGINT),
        Some("notify") => {
            let n = rt_signal::notify(&[libc::SIGUSR1, libc::SIGINT]);
            raise(libc::SIGUSR1);
            println!("received {}", rt_signal::signal_name(n.recv()));
            raise(libc::SIGINT);
            println!("received {}", rt_signal::signal_name(n.recv()));
        }
        _ => eprintln!("usage: signals nil|quit|int|notify"),
    }
}
