//! UDP: `UdpSocket`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::common::{has_fd, socket_methods};
use crate::fd::NetFd;
use crate::sys::{self, RawAddr};
use crate::tcp::{each_addr, resolve};

/// A UDP socket (Go's `net.UDPConn`). Reads and writes take `&self`, so
/// goroutines may share one through an `Arc`.
#[derive(Debug)]
pub struct UdpSocket {
    pub(crate) fd: NetFd,
}

impl UdpSocket {
    /// A socket bound to the first of `addr`'s addresses that works.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let addrs = resolve(addr)?;
        each_addr(&addrs, |a| {
            let fam = if a.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            let s = sys::socket(fam, libc::SOCK_DGRAM)?;
            sys::bind(s.0, &RawAddr::from_inet(a))?;
            Ok(UdpSocket { fd: NetFd::new(s)? })
        })
    }

    /// Sends one datagram to the first of `addr`'s addresses. The lookup
    /// runs inside `rt_sched::blocking` whatever `addr` is; a server
    /// answering known peers saves that with [`send_to_addr`](Self::send_to_addr).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = resolve(addr)?[0];
        self.send_to_addr(buf, &to)
    }

    /// Sends one datagram to `addr`, with no lookup (Go's `WriteToUDP`).
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.fd.send_to(buf, &RawAddr::from_inet(addr))
    }

    /// Receives one datagram (truncated to `buf`) and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, a) = self.fd.recv_from(buf)?;
        Ok((n, a.inet()?))
    }

    /// Fixes the peer: [`send`](Self::send) goes to it and only its
    /// datagrams are received.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let addrs = resolve(addr)?;
        // A datagram connect completes at once: no handshake to wait for.
        each_addr(&addrs, |a| {
            sys::connect(self.fd.raw(), &RawAddr::from_inet(a))
        })
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
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.local()?.inet()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.peer()?.inet()
    }

    /// A second handle to the same socket (a duplicated descriptor).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            fd: self.fd.try_clone()?,
        })
    }
}

socket_methods!(UdpSocket);
has_fd!(UdpSocket);
