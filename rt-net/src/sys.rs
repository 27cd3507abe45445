//! The system calls under the sockets, and `SocketAddr` ↔ `sockaddr` by
//! hand. Every function here is one syscall (or a conversion) and reports
//! `errno` as an `io::Error`; the poll loops are in [`crate::fd`].

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `-1` → the thread's `errno` as an error; anything else as it is.
pub(crate) fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// A raw syscall's result: `-errno` (the kernel's -4095..=-1) as an error.
fn cvt_raw(r: isize) -> io::Result<usize> {
    if (-4095..0).contains(&r) {
        Err(io::Error::from_raw_os_error(-r as i32))
    } else {
        Ok(r as usize)
    }
}

/// `sendto`/`recvfrom` (`nr`) of `len` bytes at `buf` with no address,
/// without libc (see [`crate::arch`]).
///
/// # Safety
/// `buf..buf + len` is readable (`sendto`) or writable (`recvfrom`) for
/// the call.
unsafe fn transfer(
    nr: libc::c_long,
    fd: i32,
    buf: usize,
    len: usize,
    flags: i32,
) -> io::Result<usize> {
    // SAFETY: the caller's contract; the address arguments are null.
    cvt_raw(unsafe { crate::arch::syscall6(nr, fd as usize, buf, len, flags as usize, 0, 0) })
}

/// `recv(2)`, as `recvfrom(fd, buf, len, flags, NULL, NULL)`.
///
/// # Safety
/// `buf..buf + len` is writable for the call.
pub(crate) unsafe fn recv(fd: i32, buf: *mut u8, len: usize, flags: i32) -> io::Result<usize> {
    // SAFETY: forwarded.
    unsafe { transfer(libc::SYS_recvfrom, fd, buf as usize, len, flags) }
}

/// `send(2)`, as `sendto(fd, buf, len, flags, NULL, 0)`.
///
/// # Safety
/// `buf..buf + len` is readable for the call.
pub(crate) unsafe fn send(fd: i32, buf: *const u8, len: usize, flags: i32) -> io::Result<usize> {
    // SAFETY: forwarded.
    unsafe { transfer(libc::SYS_sendto, fd, buf as usize, len, flags) }
}

/// [`cvt`] for calls returning `c_int`.
pub(crate) fn cvt_i(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An owned socket descriptor, closed when dropped.
#[derive(Debug)]
pub(crate) struct Sock(pub(crate) i32);

impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours alone; nothing uses it after this.
        unsafe { libc::close(self.0) };
    }
}

/// `socket(2)`, non-blocking and close-on-exec.
pub(crate) fn socket(family: i32, ty: i32) -> io::Result<Sock> {
    let ty = ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: no memory arguments.
    let fd = cvt_i(unsafe { libc::socket(family, ty, 0) })?;
    Ok(Sock(fd))
}

/// `socketpair(2)` for AF_UNIX, non-blocking and close-on-exec.
pub(crate) fn socketpair(ty: i32) -> io::Result<(Sock, Sock)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    cvt_i(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((Sock(fds[0]), Sock(fds[1])))
}

/// `setsockopt` of one `c_int`.
pub(crate) fn setsockopt_int(fd: i32, level: i32, name: i32, v: i32) -> io::Result<()> {
    // SAFETY: a live c_int and its exact size.
    cvt_i(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `getsockopt` of one `c_int`.
pub(crate) fn getsockopt_int(fd: i32, level: i32, name: i32) -> io::Result<i32> {
    let mut v: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: a live c_int and its size; the kernel writes at most `len`.
    cvt_i(unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut i32).cast(), &mut len) })?;
    Ok(v)
}

/// `SO_LINGER`: `None` turns it off; `Some(0)` makes close reset the
/// connection.
pub(crate) fn set_linger(fd: i32, secs: Option<i32>) -> io::Result<()> {
    let l = libc::linger {
        l_onoff: secs.is_some() as i32,
        l_linger: secs.unwrap_or(0),
    };
    // SAFETY: a live linger and its exact size.
    cvt_i(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// A socket address in the kernel's layout, big enough for any family.
#[derive(Clone, Copy)]
pub(crate) struct RawAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl RawAddr {
    /// An empty buffer for the kernel to fill (`accept`, `recvfrom`, …).
    pub(crate) fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: all-zero is a valid sockaddr_storage (AF_UNSPEC).
            storage: unsafe { zeroed() },
            len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }

    pub(crate) fn family(&self) -> i32 {
        self.storage.ss_family as i32
    }

    /// From an IP socket address (port and address in network order).
    pub(crate) fn from_inet(a: &SocketAddr) -> RawAddr {
        let mut r = RawAddr::empty();
        match a {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in.
                unsafe { r.as_mut_ptr().cast::<libc::sockaddr_in>().write(sin) };
                r.len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in6.
                unsafe { r.as_mut_ptr().cast::<libc::sockaddr_in6>().write(sin6) };
                r.len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        r
    }

    /// To an IP socket address; an error for any other family or a
    /// truncated address.
    pub(crate) fn inet(&self) -> io::Result<SocketAddr> {
        let len = self.len as usize;
        match self.family() {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the kernel wrote a sockaddr_in (family and length
                // checked); storage is aligned for it.
                let sin = unsafe { &*self.as_ptr().cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Ok(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*self.as_ptr().cast::<libc::sockaddr_in6>() };
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            f => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an IP socket address (family {f}, {len} bytes)"),
            )),
        }
    }

    /// From a Unix socket path; a leading `@` names an address in the
    /// abstract namespace (as Go's `net` does on Linux). Paths longer than
    /// `sun_path` are an `InvalidInput` error, as are NUL bytes in a path.
    pub(crate) fn from_unix(path: &Path) -> io::Result<RawAddr> {
        let bytes = path.as_os_str().as_bytes();
        let mut r = RawAddr::empty();
        // SAFETY: all-zero is a valid sockaddr_un.
        let mut sun: libc::sockaddr_un = unsafe { zeroed() };
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let abstract_ns = bytes.first() == Some(&b'@');
        if bytes.is_empty() || (!abstract_ns && bytes.contains(&0)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unix socket path is empty or contains a NUL byte",
            ));
        }
        // A pathname needs its terminating NUL inside sun_path.
        let room = sun.sun_path.len() - usize::from(!abstract_ns);
        if bytes.len() > room {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unix socket path longer than {room} bytes"),
            ));
        }
        for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let base = size_of::<libc::sa_family_t>();
        if abstract_ns {
            sun.sun_path[0] = 0;
            r.len = (base + bytes.len()) as libc::socklen_t;
        } else {
            r.len = (base + bytes.len() + 1) as libc::socklen_t;
        }
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
        unsafe { r.as_mut_ptr().cast::<libc::sockaddr_un>().write(sun) };
        Ok(r)
    }

    /// To a Unix socket address (unnamed, a path, or abstract).
    pub(crate) fn unix(&self) -> UnixAddr {
        let base = size_of::<libc::sa_family_t>();
        let len = (self.len as usize).min(size_of::<libc::sockaddr_un>());
        if self.family() != libc::AF_UNIX || len <= base {
            return UnixAddr::Unnamed;
        }
        // SAFETY: the kernel wrote an AF_UNIX address; storage is aligned
        // for sockaddr_un and large enough.
        let sun = unsafe { &*self.as_ptr().cast::<libc::sockaddr_un>() };
        let path: Vec<u8> = sun.sun_path[..len - base]
            .iter()
            .map(|&c| c as u8)
            .collect();
        if path[0] == 0 {
            return UnixAddr::Abstract(path[1..].to_vec());
        }
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        UnixAddr::Path(PathBuf::from(std::ffi::OsStr::from_bytes(&path[..end])))
    }
}

/// The address of a Unix-domain socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// No name (a socket that was never bound, or one end of a pair).
    Unnamed,
    /// A filesystem path.
    Path(PathBuf),
    /// A name in Linux's abstract namespace (written `@name` when binding),
    /// without the leading NUL.
    Abstract(Vec<u8>),
}

impl UnixAddr {
    /// The path, for a pathname address.
    pub fn as_pathname(&self) -> Option<&Path> {
        match self {
            UnixAddr::Path(p) => Some(p),
            _ => None,
        }
    }

    /// True for an unnamed address.
    pub fn is_unnamed(&self) -> bool {
        matches!(self, UnixAddr::Unnamed)
    }
}

impl std::fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnixAddr::Unnamed => f.write_str("(unnamed)"),
            UnixAddr::Path(p) => write!(f, "{}", p.display()),
            UnixAddr::Abstract(n) => write!(f, "@{}", String::from_utf8_lossy(n)),
        }
    }
}

/// `getsockname` / `getpeername`.
pub(crate) fn sockname(fd: i32, peer: bool) -> io::Result<RawAddr> {
    let mut a = RawAddr::empty();
    // SAFETY: `a` is a sockaddr_storage with its length; the kernel writes
    // at most that many bytes and stores the real length.
    cvt_i(unsafe {
        if peer {
            libc::getpeername(fd, a.as_mut_ptr(), &mut a.len)
        } else {
            libc::getsockname(fd, a.as_mut_ptr(), &mut a.len)
        }
    })?;
    Ok(a)
}

/// `bind(2)`.
pub(crate) fn bind(fd: i32, a: &RawAddr) -> io::Result<()> {
    // SAFETY: a valid address of `a.len` bytes.
    cvt_i(unsafe { libc::bind(fd, a.as_ptr(), a.len) })?;
    Ok(())
}

/// `listen(2)` with the system's backlog limit, as Go does: the value of
/// `/proc/sys/net/core/somaxconn` (read once), else `SOMAXCONN`; capped at
/// 65535, the most older kernels store.
pub(crate) fn listen(fd: i32) -> io::Result<()> {
    static BACKLOG: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    let backlog = *BACKLOG.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(libc::SOMAXCONN)
            .min(65535)
    });
    // SAFETY: no memory arguments.
    cvt_i(unsafe { libc::listen(fd, backlog) })?;
    Ok(())
}

/// `connect(2)` (non-blocking: usually `EINPROGRESS`).
pub(crate) fn connect(fd: i32, a: &RawAddr) -> io::Result<()> {
    // SAFETY: a valid address of `a.len` bytes.
    cvt_i(unsafe { libc::connect(fd, a.as_ptr(), a.len) })?;
    Ok(())
}

/// `accept4(2)`: the new descriptor non-blocking and close-on-exec.
pub(crate) fn accept(fd: i32) -> io::Result<(Sock, RawAddr)> {
    let mut a = RawAddr::empty();
    // SAFETY: `a` is a sockaddr_storage with its length.
    let nfd = cvt_i(unsafe {
        libc::accept4(
            fd,
            a.as_mut_ptr(),
            &mut a.len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })?;
    Ok((Sock(nfd), a))
}

/// `fcntl(F_DUPFD_CLOEXEC)`.
pub(crate) fn dup(fd: i32) -> io::Result<Sock> {
    // SAFETY: no memory arguments.
    let nfd = cvt_i(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    Ok(Sock(nfd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn inet_addresses_round_trip(v4 in any::<[u8; 4]>(), v6 in any::<[u8; 16]>(),
                                     port in any::<u16>(), flow in any::<u32>(), scope in any::<u32>()) {
            let a = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(v4), port));
            prop_assert_eq!(RawAddr::from_inet(&a).inet().unwrap(), a);
            let b = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(v6), port, flow, scope));
            prop_assert_eq!(RawAddr::from_inet(&b).inet().unwrap(), b);
        }

        #[test]
        fn unix_paths_round_trip(name in "[a-zA-Z0-9_./-]{1,100}") {
            let p = PathBuf::from(format!("/{name}"));
            let r = RawAddr::from_unix(&p).unwrap();
            prop_assert_eq!(r.unix(), UnixAddr::Path(p));
            let r = RawAddr::from_unix(Path::new(&format!("@{name}"))).unwrap();
            prop_assert_eq!(r.unix(), UnixAddr::Abstract(name.into_bytes()));
        }
    }

    #[test]
    fn network_byte_order() {
        let a: SocketAddr = "1.2.3.4:258".parse().unwrap();
        let r = RawAddr::from_inet(&a);
        // SAFETY: from_inet wrote a sockaddr_in.
        let sin = unsafe { &*r.as_ptr().cast::<libc::sockaddr_in>() };
        assert_eq!(sin.sin_port.to_ne_bytes(), [1, 2]);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [1, 2, 3, 4]);
    }

    #[test]
    fn bad_unix_paths_are_errors() {
        let long = "x".repeat(108);
        for p in ["", "a\0b", long.as_str()] {
            let e = RawAddr::from_unix(Path::new(p)).map(|_| ()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{p:?}");
        }
        // 107 bytes and the NUL fill sun_path exactly; abstract names may use all 108.
        assert!(RawAddr::from_unix(Path::new(&"y".repeat(107))).is_ok());
        assert!(RawAddr::from_unix(Path::new(&format!("@{}", "z".repeat(107)))).is_ok());
    }

    #[test]
    fn short_or_foreign_addresses_are_errors() {
        let mut r = RawAddr::from_inet(&"[::1]:80".parse().unwrap());
        r.len = 8;
        assert!(r.inet().is_err());
        let u = RawAddr::from_unix(Path::new("/tmp/x")).unwrap();
        assert!(u.inet().is_err());
        assert_eq!(RawAddr::empty().unix(), UnixAddr::Unnamed);
    }

    /// The raw `recv`/`send` report the kernel's errors as errno values,
    /// as the libc calls do.
    #[test]
    fn raw_recv_and_send() {
        let mut b = [0u8; 8];
        // SAFETY: `b` is writable for its length.
        let e = unsafe { recv(-1, b.as_mut_ptr(), b.len(), 0) }.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
        let (x, y) = socketpair(libc::SOCK_STREAM).unwrap();
        // SAFETY: as above.
        let e = unsafe { recv(x.0, b.as_mut_ptr(), b.len(), 0) }.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
        // SAFETY: a live 5-byte buffer.
        let n = unsafe { send(y.0, b"hello".as_ptr(), 5, libc::MSG_NOSIGNAL) }.unwrap();
        assert_eq!(n, 5);
        // SAFETY: as above.
        let n = unsafe { recv(x.0, b.as_mut_ptr(), b.len(), 0) }.unwrap();
        assert_eq!(&b[..n], b"hello");
        drop(x);
        // MSG_NOSIGNAL: EPIPE instead of a SIGPIPE that would end the test.
        // SAFETY: as above.
        let e = unsafe { send(y.0, b"hello".as_ptr(), 5, libc::MSG_NOSIGNAL) }.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
        // End of file after the peer closed.
        // SAFETY: as above.
        assert_eq!(unsafe { recv(y.0, b.as_mut_ptr(), b.len(), 0) }.unwrap(), 0);
    }
}
