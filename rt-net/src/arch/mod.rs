//! rt-net's only assembly: the raw `syscall` under the stream sockets'
//! `recv` and `send` (see [`x86_64`]).

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::syscall6;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("rt-net targets linux/amd64 (as the rest of rt does)");
