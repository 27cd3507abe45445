//! rt-net: Go's `net` and `internal/poll` for rt programs — TCP, UDP and
//! Unix-domain sockets whose blocking calls park the goroutine on the
//! network poller (`rt_sched::netpoll`) instead of blocking its thread.
//!
//! The types follow `std::net` (`TcpListener`, `TcpStream`, `UdpSocket`,
//! and `std::os::unix::net`'s `UnixListener`, `UnixStream`,
//! `UnixDatagram`) with Go's additions:
//!
//! - **`close(&self)` from any goroutine**: operations blocked on the
//!   socket, and every later one, fail with an `io::Error` of kind `Other`
//!   whose payload is [`ClosedError`] ("use of closed network
//!   connection"); test for it with [`is_closed_error`]. The descriptor is
//!   closed when the value is dropped, never while another goroutine may
//!   still use its number.
//! - **Deadlines**: `set_deadline`, `set_read_deadline`,
//!   `set_write_deadline` take an absolute `Option<Instant>`; a missed
//!   deadline is an `io::Error` of kind `TimedOut` ("i/o timeout", payload
//!   [`TimeoutError`]; [`is_timeout`]). std's `set_read_timeout` /
//!   `set_write_timeout` are per operation.
//! - `TCP_NODELAY` is on for every TCP connection, as in Go.
//! - [`listen`] and [`dial`] take Go's network names.
//!
//! Sockets are created non-blocking and close-on-exec; host names are
//! resolved inside `rt_sched::blocking`. Outside a goroutine (a plain
//! thread) the same calls block the thread in `poll(2)`; deadlines need
//! the runtime to be running, so sockets belong in rt programs
//! (`rt_entry::main!`).
//!
//! ```ignore
//! // An echo server (rt-net/examples/echo.rs).
//! let l = rt_net::TcpListener::bind("127.0.0.1:7000")?;
//! for c in l.incoming() {
//!     let c = c?;
//!     rt_sched::go(move || {
//!         let mut r = &c;
//!         let _ = std::io::copy(&mut r, &mut &c);
//!     });
//! }
//! ```

mod arch;
mod common;
mod error;
mod fd;
mod sys;
mod tcp;
mod udp;
mod unix;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use common::{socket_methods, stream_io, HasFd};

pub use error::{is_closed_error, is_timeout, ClosedError, TimeoutError};
pub use sys::UnixAddr;
pub use tcp::{serve, Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

/// The address of a [`Listener`] or [`Conn`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    /// An IP socket address ("tcp", "tcp4", "tcp6").
    Inet(SocketAddr),
    /// A Unix-domain address ("unix").
    Unix(UnixAddr),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Inet(a) => a.fmt(f),
            Addr::Unix(a) => a.fmt(f),
        }
    }
}

/// A listener of any network (Go's `net.Listener`), from [`listen`].
#[derive(Debug)]
pub enum Listener {
    /// "tcp", "tcp4" or "tcp6".
    Tcp(TcpListener),
    /// "unix".
    Unix(UnixListener),
}

/// A stream connection of any network (Go's `net.Conn`), from [`dial`] or
/// [`Listener::accept`]. `Read`/`Write` for `Conn` and `&Conn`.
#[derive(Debug)]
pub enum Conn {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix stream connection.
    Unix(UnixStream),
}

impl HasFd for Listener {
    fn net_fd(&self) -> &fd::NetFd {
        match self {
            Listener::Tcp(l) => &l.fd,
            Listener::Unix(l) => &l.fd,
        }
    }
}

impl HasFd for Conn {
    fn net_fd(&self) -> &fd::NetFd {
        match self {
            Conn::Tcp(c) => &c.fd,
            Conn::Unix(c) => &c.fd,
        }
    }
}

socket_methods!(Listener);
socket_methods!(Conn);
stream_io!(Conn);

impl Listener {
    /// Waits for a connection.
    pub fn accept(&self) -> io::Result<Conn> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(c, _)| Conn::Tcp(c)),
            Listener::Unix(l) => l.accept().map(|(c, _)| Conn::Unix(c)),
        }
    }

    /// The address listened on.
    pub fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(Addr::Inet),
            Listener::Unix(l) => l.local_addr().map(Addr::Unix),
        }
    }
}

impl Conn {
    /// The local address.
    pub fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Conn::Tcp(c) => c.local_addr().map(Addr::Inet),
            Conn::Unix(c) => c.local_addr().map(Addr::Unix),
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Conn::Tcp(c) => c.peer_addr().map(Addr::Inet),
            Conn::Unix(c) => c.peer_addr().map(Addr::Unix),
        }
    }
}

/// Which IP families a network name admits.
fn ip_filter(network: &str) -> io::Result<fn(&SocketAddr) -> bool> {
    match network {
        "tcp" => Ok(|_| true),
        "tcp4" => Ok(SocketAddr::is_ipv4),
        "tcp6" => Ok(SocketAddr::is_ipv6),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown network {network:?} (want tcp, tcp4, tcp6 or unix)"),
        )),
    }
}

/// `host:port` (or `[v6]:port`, or `:port` for every address, as in Go)
/// resolved for `network`.
fn resolve_for(network: &str, addr: &str) -> io::Result<Vec<SocketAddr>> {
    let keep = ip_filter(network)?;
    let addrs: Vec<SocketAddr> = if let Some(port) = addr.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("bad port in {addr:?}"))
        })?;
        // Every address: IPv6's wildcard first (dual-stack for "tcp", as
        // Go listens), then IPv4's; the network's filter below keeps its own.
        vec![
            (std::net::Ipv6Addr::UNSPECIFIED, port).into(),
            (std::net::Ipv4Addr::UNSPECIFIED, port).into(),
        ]
    } else if let Ok(a) = addr.parse::<SocketAddr>() {
        // A literal address needs no lookup (and no blocking call).
        vec![a]
    } else {
        tcp::resolve(addr)?
    };
    let v: Vec<SocketAddr> = addrs.into_iter().filter(keep).collect();
    if v.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no {network} address for {addr:?}"),
        ));
    }
    Ok(v)
}

/// Go's `net.Listen`: `network` is "tcp", "tcp4", "tcp6" (addresses
/// `host:port`, `[v6]:port`, or `:port` for every address of the
/// network's families) or "unix" (a path; `@name` for the abstract
/// namespace). A "tcp6" listener is IPv6 only; a "tcp" listener on
/// `:port` takes IPv6 and IPv4 (dual-stack, falling back to IPv4 alone
/// where the host has no IPv6).
pub fn listen(network: &str, addr: &str) -> io::Result<Listener> {
    if network == "unix" {
        return UnixListener::bind(addr).map(Listener::Unix);
    }
    let addrs = resolve_for(network, addr)?;
    tcp::each_addr(&addrs, |a| {
        // "tcp6" is IPv6 only; "tcp" on IPv6's wildcard takes IPv4 too.
        let v6only = match network {
            "tcp6" => Some(true),
            _ if a.ip().is_unspecified() => Some(false),
            _ => None,
        };
        TcpListener::bind_one(a, v6only)
    })
    .map(Listener::Tcp)
}

/// Go's `net.Dial` for the same networks as [`listen`].
pub fn dial(network: &str, addr: &str) -> io::Result<Conn> {
    if network == "unix" {
        return UnixStream::connect(addr).map(Conn::Unix);
    }
    let addrs = resolve_for(network, addr)?;
    tcp::each_addr(&addrs, |a| TcpStream::connect_deadline(a, None)).map(Conn::Tcp)
}

/// Resolves like [`TcpStream::connect`] does (inside
/// `rt_sched::blocking`); for callers that pick an address themselves.
pub fn lookup<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    tcp::resolve(addr)
}
