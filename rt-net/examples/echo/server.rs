//! The echo server's logic, apart from `main` so that other programs (the
//! rt-demo scenario the tests drive) can run the very same code.

use std::io::{self, Read, Write};

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
pub fn echo(mut c: TcpStream) -> io::Result<u64> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = c.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        c.write_all(&buf[..n])?;
        total += n as u64;
    }
}
