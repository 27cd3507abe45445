//! The echo server's logic, apart from `main` so that other programs (the
//! rt-demo scenario the tests drive) can run the very same code.

use std::io::{self, Write};

use rt_net::{TcpListener, TcpStream};

/// Accepts connections until the listener is closed, one goroutine per
/// connection.
pub fn serve(l: &TcpListener) -> io::Result<()> {
    rt_net::serve(l, |c| {
        let _ = echo(c);
    })
}

/// Writes back everything the peer sends until it stops sending (end of
/// file: the peer closed or shut down its writing half); returns the byte
/// count. The stream is closed when it is dropped.
///
/// Between bursts the goroutine waits in `readable` with no buffer: the
/// buffer is taken when data arrives and given back when the socket runs
/// dry, so an idle connection costs its goroutine's stack and nothing
/// more.
pub fn echo(c: TcpStream) -> io::Result<u64> {
    let mut total = 0;
    loop {
        c.readable()?;
        // Not zeroed: `try_read_buf` reads into the spare capacity.
        let mut buf = Vec::with_capacity(4096);
        loop {
            buf.clear();
            match c.try_read_buf(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => {
                    (&c).write_all(&buf)?;
                    total += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
    }
}
