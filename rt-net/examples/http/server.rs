//! The HTTP/1.1 server's logic, apart from `main` so that other programs
//! (the rt-demo scenario the tests drive) can run the very same code.
//!
//! One goroutine per connection. Each read appends to the connection's
//! buffer; every complete request in it is answered in order (pipelining),
//! all answers going out in one write. `GET /` is "Hello, World!", any
//! other path 404. A request that does not parse is answered 400 and the
//! connection closed; a request head larger than [`MAX_HEAD`] is answered
//! 431 and the connection closed.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use rt_net::{TcpListener, TcpStream};

/// The largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most headers one request may have.
const MAX_HEADERS: usize = 64;
/// The largest request body read (and discarded).
const MAX_BODY: usize = 1 << 20;

/// Accepts connections until the listener is closed, one goroutine per
/// connection.
pub fn serve(l: &TcpListener) -> io::Result<()> {
    rt_net::serve(l, |c| {
        let _ = handle(c);
    })
}

/// What to do after answering the requests in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Answered {
    /// Bytes of the buffer consumed by complete requests.
    pub used: usize,
    /// The connection ends after the answers are written.
    pub close: bool,
}

fn response(out: &mut Vec<u8>, status: &str, body: &str, close: bool) {
    let conn = if close { "Connection: close\r\n" } else { "" };
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nServer: rt\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{conn}\r\n{body}",
        body.len()
    );
}

fn header<'a>(req: &'a httparse::Request<'_, '_>, name: &str) -> Option<&'a [u8]> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// Answers every complete request at the start of `buf` into `out`.
pub fn answer(buf: &[u8], out: &mut Vec<u8>) -> Answered {
    let mut used = 0;
    loop {
        let rest = &buf[used..];
        if rest.is_empty() {
            return Answered { used, close: false };
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let head = match req.parse(rest) {
            Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
            Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => {
                response(out, "431 Request Header Fields Too Large", "", true);
                return Answered { used, close: true };
            }
            Ok(httparse::Status::Partial) if rest.len() > MAX_HEAD => {
                response(out, "431 Request Header Fields Too Large", "", true);
                return Answered { used, close: true };
            }
            Ok(httparse::Status::Partial) => return Answered { used, close: false },
            Err(_) => {
                response(out, "400 Bad Request", "", true);
                return Answered { used, close: true };
            }
        };
        if header(&req, "transfer-encoding").is_some() {
            response(out, "501 Not Implemented", "", true);
            return Answered { used, close: true };
        }
        let body = match header(&req, "content-length") {
            None => 0,
            Some(v) => match std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
            {
                Some(n) if n <= MAX_BODY => n,
                _ => {
                    response(out, "400 Bad Request", "", true);
                    return Answered { used, close: true };
                }
            },
        };
        if rest.len() < head + body {
            // The body is still on its way.
            return Answered { used, close: false };
        }
        let conn = header(&req, "connection").unwrap_or(b"");
        let close = if req.version == Some(0) {
            !conn.eq_ignore_ascii_case(b"keep-alive")
        } else {
            conn.eq_ignore_ascii_case(b"close")
        };
        match req.path {
            Some("/") => response(out, "200 OK", "Hello, World!", close),
            _ => response(out, "404 Not Found", "not found\n", close),
        }
        used += head + body;
        if close {
            return Answered { used, close: true };
        }
    }
}

/// Serves one connection until the client closes it, a request asks to
/// close, or a bad request.
pub fn handle(mut c: TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = c.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let a = answer(&buf, &mut out);
        if !out.is_empty() {
            c.write_all(&out)?;
            out.clear();
        }
        buf.drain(..a.used);
        if a.close {
            if buf.is_empty() {
                // Every byte read so far was a request, read to its end
                // and answered: a plain close sends the answers, then end
                // of file (Go's net/http closes so after a request read
                // in full, and lingers only when input may be left).
                return Ok(());
            }
            return linger_close(c);
        }
    }
}

/// Ends a connection the server gives up on without losing its last
/// answer: closing with unread input would make the kernel reset the
/// connection, and a reset can destroy the answer before the client read
/// it. So: shut down writing (the client sees end-of-file after the
/// answer), then read and drop what the client still sends, for at most
/// half a second, as Go's `net/http` does.
fn linger_close(mut c: TcpStream) -> io::Result<()> {
    c.shutdown(Shutdown::Write)?;
    c.set_read_deadline(Some(Instant::now() + Duration::from_millis(500)))?;
    let mut sink = [0u8; 4096];
    while matches!(c.read(&mut sink), Ok(n) if n > 0) {}
    Ok(())
}
