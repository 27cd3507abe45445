//! Go's tracebacks for rt: walk a goroutine's stack, then print its frames
//! as Go does.
//!
//! Two halves with different rules:
//!
//! - [`walk`] turns a register state (a signal context, a parked
//!   goroutine's saved context, [`Regs::here`]) into program counters by the
//!   unwind tables (`.eh_frame`). It is async-signal-safe: no allocation,
//!   no lock but the loader's, memory read only inside the given stack.
//!   It runs in signal handlers and in the panic hook.
//! - [`print_frames`] and [`print_created_by`] symbolize those program
//!   counters from the executable's DWARF and print Go's layout. They
//!   allocate and read files, so they run only on a dying path (after the
//!   world's report lock is taken) or on demand, on the stack that
//!   [`on_report_stack`] provides.
mod arch;
mod print;
mod stack;
mod unwind;

pub use arch::{current_pc, Regs};
pub use print::{is_runtime, print_created_by, print_frames, resolve, Func, MAX_FRAMES};
pub use stack::on_report_stack;
pub use unwind::{function_start, walk, Frame};

#[cfg(test)]
mod tests;
