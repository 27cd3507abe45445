//! Unix-domain sockets: `UnixListener`, `UnixStream`, `UnixDatagram`. A
//! path beginning with `@` names an address in Linux's abstract
//! namespace, as in Go.

use std::io;
use std::path::{Path, PathBuf};

use crate::common::{has_fd, socket_methods, stream_io};
use crate::fd::NetFd;
use crate::sys::{self, RawAddr, UnixAddr};

fn bound(ty: i32, path: &Path) -> io::Result<NetFd> {
    let a = RawAddr::from_unix(path)?;
    let s = sys::socket(libc::AF_UNIX, ty)?;
    sys::bind(s.0, &a)?;
    NetFd::new(s)
}

/// A Unix stream socket listening for connections (Go's
/// `net.UnixListener`). The socket file it created is removed when the
/// listener is dropped, as Go removes it on close.
#[derive(Debug)]
pub struct UnixListener {
    pub(crate) fd: NetFd,
    unlink: Option<PathBuf>,
}

impl UnixListener {
    /// Binds `path` (which must not exist) and listens.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let fd = bound(libc::SOCK_STREAM, path)?;
        let unlink =
            (!path.as_os_str().as_encoded_bytes().starts_with(b"@")).then(|| path.to_path_buf());
        let l = UnixListener { fd, unlink };
        sys::listen(l.fd.raw())?;
        Ok(l)
    }

    /// Waits for a connection (until the accept deadline, if any).
    pub fn accept(&self) -> io::Result<(UnixStream, UnixAddr)> {
        let (fd, a) = self.fd.accept()?;
        Ok((UnixStream { fd }, a.unix()))
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { l: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        Ok(self.fd.local()?.unix())
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        if let Some(p) = &self.unlink {
            let _ = std::fs::remove_file(p);
        }
    }
}

socket_methods!(UnixListener);

/// [`UnixListener::incoming`]'s iterator (never ends).
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    l: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.l.accept().map(|(s, _)| s))
    }
}

/// A Unix stream connection (Go's `net.UnixConn` of type "unix"); `Read`
/// and `Write` for `&UnixStream` too, as for `TcpStream`.
#[derive(Debug)]
pub struct UnixStream {
    pub(crate) fd: NetFd,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let a = RawAddr::from_unix(path.as_ref())?;
        let fd = NetFd::new(sys::socket(libc::AF_UNIX, libc::SOCK_STREAM)?)?;
        fd.connect(&a, None)?;
        Ok(UnixStream { fd })
    }

    /// Two connected streams.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = sys::socketpair(libc::SOCK_STREAM)?;
        Ok((
            UnixStream { fd: NetFd::new(a)? },
            UnixStream { fd: NetFd::new(b)? },
        ))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        Ok(self.fd.local()?.unix())
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<UnixAddr> {
        Ok(self.fd.peer()?.unix())
    }

    /// A second handle to the same connection (a duplicated descriptor).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            fd: self.fd.try_clone()?,
        })
    }
}

socket_methods!(UnixStream);
stream_io!(UnixStream);

/// A Unix datagram socket (Go's `net.UnixConn` of type "unixgram").
#[derive(Debug)]
pub struct UnixDatagram {
    pub(crate) fd: NetFd,
}

impl UnixDatagram {
    /// A socket bound to `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            fd: bound(libc::SOCK_DGRAM, path.as_ref())?,
        })
    }

    /// A socket bound to no address (it can send, and receive replies
    /// only once connected).
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            fd: NetFd::new(sys::socket(libc::AF_UNIX, libc::SOCK_DGRAM)?)?,
        })
    }

    /// Two connected datagram sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = sys::socketpair(libc::SOCK_DGRAM)?;
        Ok((
            UnixDatagram { fd: NetFd::new(a)? },
            UnixDatagram { fd: NetFd::new(b)? },
        ))
    }

    /// Fixes the peer for [`send`](Self::send) and [`recv`](Self::recv).
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        sys::connect(self.fd.raw(), &RawAddr::from_unix(path.as_ref())?)
    }

    /// Sends one datagram to `path`.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        self.fd.send_to(buf, &RawAddr::from_unix(path.as_ref())?)
    }

    /// Receives one datagram and its sender's address.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, UnixAddr)> {
        let (n, a) = self.fd.recv_from(buf)?;
        Ok((n, a.unix()))
    }

    /// Sends one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd.send(buf)
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.recv(buf)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        Ok(self.fd.local()?.unix())
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<UnixAddr> {
        Ok(self.fd.peer()?.unix())
    }
}

socket_methods!(UnixDatagram);
has_fd!(UnixListener, UnixStream, UnixDatagram);
