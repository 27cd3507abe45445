//! rt-signal: Go's signal handling for the rt runtime (Go 1.17,
//! linux/amd64): runtime/signal_unix.go, sigtab_linux_generic.go,
//! os_linux.go, sigqueue.go and os/signal.
//!
//! # Map
//!
//! Actors:
//! * m0 at boot: [`sigsave`] + [`set_initial_mask`] in `schedinit`, then
//!   [`minit_signals`] and [`initsig`] in `mstart`;
//! * every other M: [`minit_signals`] when it starts (Ms never exit);
//! * the kernel, calling the handler on any thread at any moment;
//! * the program: [`notify`] / [`Notifier::recv`] / [`ignore`] / [`reset`].
//!
//! Data (all static, all atomics the handler can read without a lock):
//! * the signal table ([`table`]): Go's per-signal flags and names;
//! * the previous dispositions and the "handling" flags (`install`);
//! * the initial mask (`mask`); the `GOTRACEBACK` setting and the
//!   [`Hooks`] (`report`); the notifier slots (`notify`).
//!
//! Hot path (the handler, `handler.rs`): forward what is not ours; a
//! synchronous fault in goroutine code → Go's panic report; a notifiable
//! signal somebody wants → one atomic OR and a futex wake; HUP/INT/TERM
//! with nobody listening → die by the signal; SIGQUIT and the other
//! `THROW` signals → a dump of every goroutine and exit 2.
//!
//! # Async-signal-safety
//!
//! The handler and everything it reaches (`handler`, `report`, `notify::
//! sigsend`, `os`, `arch`) only use atomics, raw system calls and
//! `core::fmt` writing straight to fd 2: no allocation, no lock, no lazily
//! initialised thread-local. [`Hooks`] must keep to the same rules.
//!
//! # Wiring
//!
//! `rt-entry` (`src/boot.rs`) connects the crate to the rest of the runtime
//! at boot:
//!
//! ```text
//! check (first, right after rt0_go):
//!     rt_sys::set_fatal_hook(..)   flush stdout, then rt_signal::fatal_hook
//!     rt_signal::set_hooks(&SIGNAL_HOOKS)   current goroutine, stack guard
//!                                           pages, goroutine dump, M id
//!     rt_signal::set_traceback(level 2)     until GOTRACEBACK is parsed
//! schedinit, phase sigsave (this crate's phase::Sigsave, a row of the table):
//!     rt_signal::set_initial_mask(rt_signal::sigsave())
//! schedinit, phase parsedebugvars (rt-env's phase; the row's wiring):
//!     rt_signal::set_traceback(<GOTRACEBACK>)
//!     rt_signal::set_async_preempt_off(<GODEBUG asyncpreemptoff>)
//! mstart, on every M (m0 included), through rt_sched's minit hook:
//!     rt_signal::minit_signals(gsignal stack)   (an unsafe fn)
//! mstart, on m0 only, through rt_sched's mstartm0 hook:
//!     rt_signal::initsig()
//! ```
//!
//! Two signal-related steps are done outside this crate: `rt_sched`'s
//! `newosproc` blocks every signal around creating a thread
//! (`pthread_sigmask`), so the new thread takes no signal before its
//! `minit_signals`; and an unrecovered goroutine panic is reported by
//! `rt_sched` (`panic: …` and the goroutines), after which `rt-entry`'s
//! panic-exit hook calls [`crash`] for `GOTRACEBACK=crash` (read with
//! [`traceback`]) or exits with status 2.
//!
//! Without [`set_hooks`] everything works with less detail: every fault
//! counts as goroutine code (the whole program is the runtime's), reports
//! carry no goroutine sections, and `m=` is 0 on the main thread, -1
//! elsewhere.
//!
//! # Differences from Go, on purpose
//!
//! * A fault in goroutine code cannot become a recoverable panic: Rust
//!   cannot unwind out of a signal handler. The report is Go's unrecovered
//!   panic report and the process ends.
//! * rt stacks never grow, so a stack overflow reports the stack's own size
//!   as the limit.
//! * No profiler (SIGPROF is dropped) and no signal-based preemption (SIGURG
//!   is only kept unblocked, as Go does, and delivered to notifiers).
//! * `GOTRACEBACK=crash` does not relay SIGQUIT to every M to collect each
//!   thread's stack; the goroutine hooks print every goroutine instead.
//! * `GOTRACEBACK` levels apply to fatal errors as in Go 1.17 (1.19 raises
//!   runtime throws to level 2); a fatal error lists every goroutine.
//! * A fault on a thread that runs no goroutine (hooks installed) goes to
//!   the handler that was there before the runtime's, if any (Rust's std
//!   stack-overflow handler, for one), else it is reported as a runtime
//!   fault.
//! * Stopping the last notifier of a job-control signal (`DEFAULT`: CONT,
//!   TSTP, TTIN, TTOU) restores its previous disposition, where Go would
//!   leave its handler installed and ignore the signal.

#![warn(missing_docs)]

mod arch;
mod handler;
mod install;
mod mask;
mod notify;
mod os;
pub mod phase;
mod report;
pub mod table;

pub use handler::set_preempt_hook;
pub use install::{forwarded_handler, handling, initsig};
pub use mask::{
    blockable, initial_mask, minit_signals, set_async_preempt_off, set_initial_mask, sigsave,
    unblockable_set, SigSet, GSIGNAL_STACK_SIZE, SIG_PREEMPT,
};
pub use notify::{ignore, ignored, notify, reset, Notifier, SLOTS};
pub use report::{
    crash, fatal_hook, set_hooks, set_traceback, traceback, GoroutineInfo, Hooks, Traceback,
};
pub use table::signal_name;

#[cfg(test)]
mod tests;
