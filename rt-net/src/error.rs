//! The two errors of rt-net's own: a closed socket and a missed deadline.

use std::fmt;
use std::io;

/// The payload of the error every operation returns once the socket was
/// closed with `close` (Go's `net.ErrClosed`): an `io::Error` of kind
/// `Other` whose message is "use of closed network connection". Recognise
/// it with [`is_closed_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedError;

impl fmt::Display for ClosedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("use of closed network connection")
    }
}

impl std::error::Error for ClosedError {}

/// The payload of a missed deadline or timeout (Go's
/// `os.ErrDeadlineExceeded`): an `io::Error` of kind `TimedOut` whose
/// message is "i/o timeout".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutError;

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("i/o timeout")
    }
}

impl std::error::Error for TimeoutError {}

pub(crate) fn closed() -> io::Error {
    io::Error::other(ClosedError)
}

pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, TimeoutError)
}

/// True for the error of an operation on a closed socket, including one
/// that was blocked when another goroutine closed it.
pub fn is_closed_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|p| p.is::<ClosedError>())
}

/// True for a missed deadline or timeout (kind `TimedOut`, whoever made
/// it: rt-net's deadlines or the kernel's `ETIMEDOUT`).
pub fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
}
