//! TCP: `TcpListener` and `TcpStream`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::common::{has_fd, socket_methods, stream_io};
use crate::fd::{instant_to_nanotime, NetFd};
use crate::sys::{self, RawAddr};

/// Resolves `addr` to socket addresses. A host name may need DNS, a
/// blocking call, so it runs inside `rt_sched::blocking`: the goroutine's
/// P serves other goroutines meanwhile.
pub(crate) fn resolve<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    let v: Vec<SocketAddr> = rt_sched::blocking(|| addr.to_socket_addrs())?.collect();
    if v.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        ));
    }
    Ok(v)
}

/// Tries `f` on each address in turn; the first success, else the last
/// error (std's rule for `ToSocketAddrs` arguments).
pub(crate) fn each_addr<T>(
    addrs: &[SocketAddr],
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addrs {
        match f(a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses")))
}

fn family(a: &SocketAddr) -> i32 {
    if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

/// A TCP socket listening for connections (Go's `net.TCPListener`).
#[derive(Debug)]
pub struct TcpListener {
    pub(crate) fd: NetFd,
}

impl TcpListener {
    /// Binds and listens on the first of `addr`'s addresses that works
    /// (`SO_REUSEADDR`, the system's backlog). Port 0 picks a free port:
    /// see [`local_addr`](Self::local_addr).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let addrs = resolve(addr)?;
        each_addr(&addrs, |a| TcpListener::bind_one(a, None))
    }

    /// Binds one address; `v6only` sets `IPV6_V6ONLY` on an IPv6 socket
    /// (`None`: the system's default).
    pub(crate) fn bind_one(a: &SocketAddr, v6only: Option<bool>) -> io::Result<TcpListener> {
        let s = sys::socket(family(a), libc::SOCK_STREAM)?;
        sys::setsockopt_int(s.0, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if let (true, Some(only)) = (a.is_ipv6(), v6only) {
            sys::setsockopt_int(s.0, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, only as i32)?;
        }
        sys::bind(s.0, &RawAddr::from_inet(a))?;
        sys::listen(s.0)?;
        Ok(TcpListener { fd: NetFd::new(s)? })
    }

    /// Waits for a connection (until the accept deadline, if any).
    /// Accepted streams have `TCP_NODELAY` set, as in Go.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, a) = self.fd.accept()?;
        let s = TcpStream::from_fd(fd)?;
        Ok((s, a.inet()?))
    }

    /// An endless iterator over accepted connections (each `accept`'s
    /// result; it never returns `None`).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { l: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.local()?.inet()
    }
}

socket_methods!(TcpListener);

/// [`TcpListener::incoming`]'s iterator.
#[derive(Debug)]
pub struct Incoming<'a> {
    l: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.l.accept().map(|(s, _)| s))
    }
}

/// A TCP connection (Go's `net.TCPConn`). `Read` and `Write` are
/// implemented for `&TcpStream` too: a reader and a writer goroutine may
/// share one stream through an `Arc`; further readers (writers) queue
/// behind the first.
#[derive(Debug)]
pub struct TcpStream {
    pub(crate) fd: NetFd,
}

impl TcpStream {
    fn from_fd(fd: NetFd) -> io::Result<TcpStream> {
        // As Go, a failure is ignored: a connection reset before this point
        // is reported by its first read or write instead.
        let _ = sys::setsockopt_int(fd.raw(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
        Ok(TcpStream { fd })
    }

    /// Connects to the first of `addr`'s addresses that accepts.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let addrs = resolve(addr)?;
        each_addr(&addrs, |a| TcpStream::connect_deadline(a, None))
    }

    /// Connects to `addr`, giving up after `timeout` with a `TimedOut`
    /// error. A zero timeout is an `InvalidInput` error, as in std.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let when = Instant::now().checked_add(timeout);
        TcpStream::connect_deadline(addr, when.map(instant_to_nanotime))
    }

    pub(crate) fn connect_deadline(
        addr: &SocketAddr,
        deadline: Option<i64>,
    ) -> io::Result<TcpStream> {
        let fd = NetFd::new(sys::socket(family(addr), libc::SOCK_STREAM)?)?;
        fd.connect(&RawAddr::from_inet(addr), deadline)?;
        TcpStream::from_fd(fd)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.peer()?.inet()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.local()?.inet()
    }

    /// A second handle to the same connection (a duplicated descriptor with
    /// its own deadlines; closing or dropping one leaves the other open,
    /// though `close` shuts the connection down for both).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            fd: self.fd.try_clone()?,
        })
    }

    /// Sets `TCP_NODELAY` (on by default, as in Go: small writes go out at
    /// once instead of waiting for Nagle's algorithm).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        sys::setsockopt_int(
            self.fd.raw(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            on as i32,
        )
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(sys::getsockopt_int(self.fd.raw(), libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
    }

    /// `SO_LINGER` (Go's `SetLinger`): `None` (the default) lets close
    /// finish sending in the background; `Some(d)` makes the descriptor's
    /// final close linger up to `d` (whole seconds) for unsent data, and
    /// `Some(Duration::ZERO)` makes it reset the connection instead.
    pub fn set_linger(&self, d: Option<Duration>) -> io::Result<()> {
        sys::set_linger(
            self.fd.raw(),
            d.map(|d| d.as_secs().min(i32::MAX as u64) as i32),
        )
    }
}

socket_methods!(TcpStream);
stream_io!(TcpStream);
has_fd!(TcpListener, TcpStream);

/// Serves `l` the way Go's servers do: accepts connections until the
/// listener is closed (then returns `Ok`), running `handler` on a
/// goroutine of its own for each. An accept error other than "closed"
/// (out of descriptors, out of memory) is reported on stderr and the loop
/// goes on after 10 ms, as `net/http` does.
pub fn serve<F>(l: &TcpListener, handler: F) -> io::Result<()>
where
    F: Fn(TcpStream) + Clone + Send + 'static,
{
    loop {
        match l.accept() {
            Ok((c, _peer)) => {
                let h = handler.clone();
                rt_sched::go(move || h(c));
            }
            Err(e) if crate::is_closed_error(&e) => return Ok(()),
            Err(e) => {
                eprintln!("rt_net::serve: accept: {e}");
                rt_sched::sleep(Duration::from_millis(10));
            }
        }
    }
}
