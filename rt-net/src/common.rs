//! Methods every socket type shares, written once as macros over a type
//! that implements [`HasFd`].

use crate::fd::NetFd;

/// The socket under a public type.
pub(crate) trait HasFd {
    fn net_fd(&self) -> &NetFd;
}

/// [`HasFd`] for structs whose socket is the field `fd`.
macro_rules! has_fd {
    ($($t:ty),*) => {
        $(impl crate::common::HasFd for $t {
            fn net_fd(&self) -> &crate::fd::NetFd {
                &self.fd
            }
        })*
    };
}

/// Deadlines, timeouts, `close`, `take_error` and `AsRawFd`.
macro_rules! socket_methods {
    ($t:ty) => {
        impl $t {
            /// Sets the read and write deadlines (`None` clears them):
            /// operations after `when`, and those blocked when it passes,
            /// fail with a `TimedOut` error ("i/o timeout"); a deadline
            /// already past fails them at once. Replaces any timeout.
            pub fn set_deadline(&self, when: Option<std::time::Instant>) -> std::io::Result<()> {
                crate::common::HasFd::net_fd(self).set_deadline(true, true, when)
            }

            /// [`set_deadline`](Self::set_deadline) for reads only.
            pub fn set_read_deadline(
                &self,
                when: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                crate::common::HasFd::net_fd(self).set_deadline(true, false, when)
            }

            /// [`set_deadline`](Self::set_deadline) for writes only.
            pub fn set_write_deadline(
                &self,
                when: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                crate::common::HasFd::net_fd(self).set_deadline(false, true, when)
            }

            /// std's read timeout: every later read must end within `d` of
            /// its start, else it fails with a `TimedOut` error. `None`
            /// removes it (and any read deadline); a zero duration is an
            /// `InvalidInput` error, as in std.
            pub fn set_read_timeout(&self, d: Option<std::time::Duration>) -> std::io::Result<()> {
                crate::common::HasFd::net_fd(self).set_timeout(rt_sched::netpoll::Mode::Read, d)
            }

            /// [`set_read_timeout`](Self::set_read_timeout) for writes.
            pub fn set_write_timeout(&self, d: Option<std::time::Duration>) -> std::io::Result<()> {
                crate::common::HasFd::net_fd(self).set_timeout(rt_sched::netpoll::Mode::Write, d)
            }

            /// The read timeout, if one is set.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(crate::common::HasFd::net_fd(self).timeout(rt_sched::netpoll::Mode::Read))
            }

            /// The write timeout, if one is set.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(crate::common::HasFd::net_fd(self).timeout(rt_sched::netpoll::Mode::Write))
            }

            /// Closes the socket from any goroutine: blocked and later
            /// operations fail with the closed error
            /// ([`is_closed_error`](crate::is_closed_error)) and the peer
            /// sees the connection end. The descriptor is released when
            /// the value is dropped. A second `close` is the closed error.
            pub fn close(&self) -> std::io::Result<()> {
                crate::common::HasFd::net_fd(self).close()
            }

            /// The pending socket error (`SO_ERROR`), cleared by reading it.
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                crate::common::HasFd::net_fd(self).take_error()
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                crate::common::HasFd::net_fd(self).raw()
            }
        }
    };
}

/// `Read` and `Write` for a stream type and for a shared reference to it
/// (one reader and one writer goroutine may share it through an `Arc`).
macro_rules! stream_io {
    ($t:ty) => {
        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                crate::common::HasFd::net_fd(*self).read(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                crate::common::HasFd::net_fd(*self).read_vectored(bufs)
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                crate::common::HasFd::net_fd(*self).write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                crate::common::HasFd::net_fd(*self).write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                crate::common::HasFd::net_fd(self).read(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                crate::common::HasFd::net_fd(self).read_vectored(bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                crate::common::HasFd::net_fd(self).write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                crate::common::HasFd::net_fd(self).write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl $t {
            /// Waits until a read may make progress (data, end of file or
            /// an error is there) without holding a buffer meanwhile, so an
            /// idle connection costs only its goroutine's stack: wait here,
            /// then read with [`try_read`](Self::try_read) into a buffer
            /// taken for the burst. It may return when a read would still
            /// find nothing (`try_read` then says `WouldBlock`), never later
            /// than data arrives. Read deadlines, timeouts and a close from
            /// another goroutine end it as they end a read.
            pub fn readable(&self) -> std::io::Result<()> {
                crate::common::HasFd::net_fd(self).readable()
            }

            /// Reads what is there without waiting: an error of kind
            /// `WouldBlock` when nothing is, `Ok(0)` at end of file.
            pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                crate::common::HasFd::net_fd(self).try_read(buf)
            }

            /// [`try_read`](Self::try_read) into the spare capacity of
            /// `buf` (its length grows by the count read): a buffer taken
            /// for a burst with `Vec::with_capacity` needs no zeroing. With
            /// no spare capacity it reads nothing and returns `Ok(0)`, as
            /// `try_read` with an empty slice does.
            pub fn try_read_buf(&self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
                crate::common::HasFd::net_fd(self).try_read_buf(buf)
            }

            /// Shuts down the reading, writing or both halves: after
            /// `Shutdown::Write` the peer reads end-of-file.
            pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                crate::common::HasFd::net_fd(self).shutdown(how)
            }
        }
    };
}

pub(crate) use {has_fd, socket_methods, stream_io};
