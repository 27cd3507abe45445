//! `NetFd`: a socket and its [`PollFd`] (Go's `netFD` with
//! `internal/poll.FD`). Every operation is the same loop: check the
//! descriptor is open and its deadline not passed (`prepare`), try the
//! syscall, and on `EAGAIN` wait for the poller (`wait`), then try again.

use std::io::{self, IoSlice, IoSliceMut};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rt_sched::netpoll::{Mode, PollError, PollFd};
use rt_sched::Mutex;

use crate::error::{closed, timed_out};
use crate::sys::{self, cvt, RawAddr, Sock};

/// Successful reads (or writes) in a row after which the goroutine yields
/// its P. A goroutine whose socket always has data (a fast peer, a large
/// buffer) never meets `EAGAIN` and so never parks; without a budget it
/// would keep its P for as long as the peer keeps up, and the goroutines
/// queued behind it would wait. 128 operations of even a few KiB each are
/// tens of microseconds of work: often enough that a P is shared at about
/// the scheduler's own time-slice granularity, rare enough that the yield
/// costs nothing measurable next to the syscalls.
const BUDGET: u32 = 128;

/// A registered socket. The descriptor is closed when the `NetFd` is
/// dropped, after the poller has forgotten it; [`NetFd::close`] only marks
/// it closed and wakes whoever waits, so a descriptor number is never
/// reused while another goroutine may still pass it to a syscall.
#[derive(Debug)]
pub(crate) struct NetFd {
    // Declared before `sock`: unregistered before the descriptor closes.
    pfd: PollFd,
    sock: Sock,
    closed: AtomicBool,
    /// One reader and one writer at a time (the poller has one waiter slot
    /// per direction): further ones queue here, as on Go's `fdMutex`.
    rlock: Mutex<()>,
    wlock: Mutex<()>,
    /// Per-operation timeouts in ns (0: none), std's `set_read_timeout`.
    rtimeout: AtomicI64,
    wtimeout: AtomicI64,
    rbudget: AtomicU32,
    wbudget: AtomicU32,
    /// The last read drained the socket: a [`try_read`](NetFd::try_read)
    /// said `EAGAIN`, or a stream read returned less than it asked for (the
    /// socket held less). No `prepare` ran since, so every readiness event
    /// since is still in the poll descriptor: the next read or
    /// [`readable`](NetFd::readable) waits for it at once instead of
    /// spending a syscall on the `EAGAIN` it would get (tokio clears its
    /// readiness on a short read for the same reason). Written under
    /// `rlock`, and only in an rt program: without the scheduler nobody
    /// polls, and readiness would never arrive for a `try_read` to see.
    rdrained: AtomicBool,
}

/// Monotonic nanoseconds (`rt_sys::nanotime`'s clock) for an `Instant`.
///
/// `Instant` on Linux is `CLOCK_MONOTONIC` read by `clock_gettime`, the
/// clock `rt_sys::nanotime` reads too, so the two differ only by when each
/// was sampled: the offset of `when` from a fresh `Instant::now()` is
/// added to a fresh `nanotime()`. Far-off instants saturate.
pub(crate) fn instant_to_nanotime(when: Instant) -> i64 {
    let (inow, nnow) = (Instant::now(), rt_sys::nanotime());
    let ns = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX / 4);
    if when >= inow {
        nnow.saturating_add(ns(when - inow)).min(i64::MAX / 2)
    } else {
        // Never 0 or negative: those mean "none" and "passed" to the poller,
        // and a past instant must read as passed, which any time <= now does.
        nnow.saturating_sub(ns(inow - when)).max(1)
    }
}

fn duration_ns(d: Option<Duration>) -> io::Result<i64> {
    match d {
        None => Ok(0),
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        )),
        Some(d) => Ok(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX / 4)),
    }
}

fn ns_duration(ns: i64) -> Option<Duration> {
    (ns > 0).then(|| Duration::from_nanos(ns as u64))
}

/// Deadlines are timers of the runtime's Ps: a program that is not an rt
/// program (no `rt_entry::main!`) has none, and gets this error instead.
fn need_runtime() -> io::Result<()> {
    if rt_sched::gomaxprocs() > 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "deadlines and timeouts need the rt runtime (an rt_entry::main! program)",
        ))
    }
}

fn is_eagain(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN))
}

impl NetFd {
    /// Registers a non-blocking socket with the poller.
    pub(crate) fn new(sock: Sock) -> io::Result<NetFd> {
        let pfd = PollFd::new(sock.0)?;
        Ok(NetFd {
            pfd,
            sock,
            closed: AtomicBool::new(false),
            rlock: Mutex::new(()),
            wlock: Mutex::new(()),
            rtimeout: AtomicI64::new(0),
            wtimeout: AtomicI64::new(0),
            rbudget: AtomicU32::new(0),
            wbudget: AtomicU32::new(0),
            rdrained: AtomicBool::new(false),
        })
    }

    /// The raw descriptor (valid until the `NetFd` is dropped).
    pub(crate) fn raw(&self) -> i32 {
        self.sock.0
    }

    fn poll_error(&self, e: PollError) -> io::Error {
        match e {
            PollError::Closing => closed(),
            PollError::TimedOut => timed_out(),
        }
    }

    fn check_open(&self) -> io::Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(closed())
        } else {
            Ok(())
        }
    }

    /// Runs `op` in `mode` until it does not say `EAGAIN`: Go's
    /// `FD.Read`/`FD.Write` loop. `op` returns the syscall's result.
    pub(crate) fn io<T>(&self, mode: Mode, op: impl FnMut(i32) -> io::Result<T>) -> io::Result<T> {
        self.io_with(mode, true, op, |_| false)
    }

    /// [`io`](Self::io), or with `wait` false the same without the wait:
    /// `EAGAIN` is returned as a `WouldBlock` error. `drained(&result)`
    /// says whether a successful read left the socket empty.
    fn io_with<T>(
        &self,
        mode: Mode,
        wait: bool,
        mut op: impl FnMut(i32) -> io::Result<T>,
        drained: impl Fn(&T) -> bool,
    ) -> io::Result<T> {
        self.check_open()?;
        let (lock, timeout, budget) = match mode {
            Mode::Read => (&self.rlock, &self.rtimeout, &self.rbudget),
            Mode::Write => (&self.wlock, &self.wtimeout, &self.wbudget),
        };
        let guard = lock.lock();
        self.start_deadline(mode, timeout);
        if mode == Mode::Read
            && self.rdrained.swap(false, Ordering::Relaxed)
            && !self.pfd.ready(mode)
        {
            // The socket was empty after the last read and nothing came
            // since: wait for what comes (`prepare` below would drop it).
            if !wait {
                self.rdrained.store(true, Ordering::Relaxed);
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
            if let Err(e) = self.pfd.wait(mode) {
                return Err(self.poll_error(e));
            }
        }
        let r = loop {
            if let Err(e) = self.pfd.prepare(mode) {
                break Err(self.poll_error(e));
            }
            match op(self.sock.0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_eagain(&e) => {
                    budget.store(0, Ordering::Relaxed);
                    if !wait {
                        if mode == Mode::Read {
                            self.mark_drained();
                        }
                        break Err(e);
                    }
                    if let Err(e) = self.pfd.wait(mode) {
                        break Err(self.poll_error(e));
                    }
                }
                Ok(v) => {
                    if mode == Mode::Read && drained(&v) {
                        self.mark_drained();
                    }
                    break Ok(v);
                }
                r => break r,
            }
        };
        drop(guard);
        if r.is_ok() && budget.fetch_add(1, Ordering::Relaxed) + 1 >= BUDGET {
            budget.store(0, Ordering::Relaxed);
            rt_sched::gosched();
        }
        r
    }

    /// Notes that the last read left the socket empty (see `rdrained`),
    /// when a poller runs to report what arrives after it.
    #[inline]
    fn mark_drained(&self) {
        if rt_sched::gomaxprocs() > 0 {
            self.rdrained.store(true, Ordering::Relaxed);
        }
    }

    /// A read of a stream socket into `buf`, waiting (`wait`) or not.
    fn read_stream(&self, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        // SAFETY: `buf` is live and writable for its length.
        unsafe { self.read_stream_raw(buf.as_mut_ptr(), buf.len(), wait) }
    }

    /// [`read_stream`](Self::read_stream) into `len` bytes at `ptr`, which
    /// need not be initialised: `recv` only writes them.
    ///
    /// # Safety
    /// `ptr..ptr + len` is writable and stays so for the call.
    unsafe fn read_stream_raw(&self, ptr: *mut u8, len: usize, wait: bool) -> io::Result<usize> {
        if len == 0 {
            return self.check_open().map(|_| 0);
        }
        self.io_with(
            Mode::Read,
            wait,
            |fd| {
                // SAFETY: the caller's contract: `len` writable bytes.
                unsafe { sys::recv(fd, ptr, len, 0) }
            },
            |&n| n > 0 && n < len,
        )
    }

    /// A read of a stream socket (TCP, Unix stream): a short read means the
    /// socket is empty, which the next read uses.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_stream(buf, true)
    }

    /// One `recv` without waiting: `WouldBlock` when nothing is there to
    /// read (tokio's `try_read`); after a read that drained the socket, no
    /// syscall unless the poller reported data since.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_stream(buf, false)
    }

    /// [`try_read`](Self::try_read) into the spare capacity of `buf`,
    /// whose length grows by what was read (tokio's `try_read_buf`): a
    /// buffer taken for a burst needs no zeroing first.
    pub(crate) fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let spare = buf.spare_capacity_mut();
        // SAFETY: the spare capacity is writable for its length, and
        // borrowed for the call.
        let n = unsafe { self.read_stream_raw(spare.as_mut_ptr().cast(), spare.len(), false) }?;
        // SAFETY: `recv` initialised the `n` bytes after the length, within
        // the capacity.
        unsafe { buf.set_len(buf.len() + n) };
        Ok(n)
    }

    /// Waits until a read may make progress: data, end of file or an error
    /// is there. It may return early (a read may still find nothing), but
    /// never misses data that arrived. Deadlines, timeouts and a close from
    /// another goroutine end it as they end a read. It holds no buffer, so
    /// a connection that waits here costs only its goroutine's stack.
    pub(crate) fn readable(&self) -> io::Result<()> {
        self.check_open()?;
        let _guard = self.rlock.lock();
        self.start_deadline(Mode::Read, &self.rtimeout);
        if self.rdrained.swap(false, Ordering::Relaxed) {
            if self.pfd.ready(Mode::Read) {
                return self.check_open();
            }
        } else {
            // Readiness may have been used up by reads that left data
            // behind: ask the socket itself.
            if let Err(e) = self.pfd.prepare(Mode::Read) {
                return Err(self.poll_error(e));
            }
            let mut byte = 0u8;
            // SAFETY: `byte` is a live one-byte buffer; MSG_PEEK leaves the
            // data in the socket.
            let r = cvt(unsafe {
                libc::recv(
                    self.sock.0,
                    (&mut byte as *mut u8).cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            });
            match r {
                Err(e) if is_eagain(&e) => {}
                // Data, end of file, an error, or a signal: the caller's
                // read will tell.
                _ => return Ok(()),
            }
        }
        self.pfd.wait(Mode::Read).map_err(|e| self.poll_error(e))?;
        // A close shuts the socket down after it wakes the waiter, and the
        // poller may report that as readiness before the waiter looks:
        // report the close instead.
        self.check_open()
    }

    /// Arms `mode`'s deadline from a std-style per-operation timeout (0:
    /// none).
    fn start_deadline(&self, mode: Mode, timeout: &AtomicI64) {
        let t = timeout.load(Ordering::Relaxed);
        if t > 0 {
            self.pfd
                .set_deadline(mode, Some(rt_sys::nanotime().saturating_add(t)));
        }
    }

    pub(crate) fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return self.check_open().map(|_| 0);
        }
        let n = bufs.len().min(1024);
        let len: usize = bufs[..n].iter().map(|b| b.len()).sum();
        self.io_with(
            Mode::Read,
            true,
            |fd| {
                // SAFETY: IoSliceMut is ABI-compatible with iovec; `n` of
                // them are live and writable.
                cvt(unsafe { libc::readv(fd, bufs.as_ptr().cast(), n as i32) })
            },
            |&got| got > 0 && got < len,
        )
    }

    /// Writes all of `buf` under the write lock, as Go's `FD.Write` does,
    /// so concurrent writers' buffers never interleave. Sends with
    /// `MSG_NOSIGNAL`: a closed peer is `EPIPE`, not SIGPIPE. An error
    /// after part of `buf` went out returns that part (std's `write`
    /// contract); the error itself (a deadline, close, a reset) persists,
    /// so the next write reports it.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.check_open().map(|_| 0);
        }
        let mut done = 0;
        let r = self.io(Mode::Write, |fd| loop {
            let rest = &buf[done..];
            // SAFETY: `rest` is live for its length.
            let r = unsafe { sys::send(fd, rest.as_ptr(), rest.len(), libc::MSG_NOSIGNAL) };
            match r {
                Ok(n) => {
                    done += n;
                    if done == buf.len() {
                        return Ok(done);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EAGAIN goes back to `io`, which waits and calls again.
                Err(e) => return Err(e),
            }
        });
        match r {
            Err(_) if done > 0 => Ok(done),
            r => r,
        }
    }

    /// [`write`](Self::write) for several buffers: all of them (up to
    /// `IOV_MAX` = 1024 buffers a call) go out under the write lock, with
    /// `sendmsg`; a part written before an error is returned.
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let bufs = &bufs[..bufs.len().min(1024)];
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return self.check_open().map(|_| 0);
        }
        let mut own: Vec<IoSlice<'_>> = bufs.to_vec();
        let mut rest: &mut [IoSlice<'_>] = &mut own;
        let mut done = 0;
        let r = self.io(Mode::Write, |fd| loop {
            // SAFETY: all-zero is a valid msghdr.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            // IoSlice is ABI-compatible with iovec; sendmsg only reads them.
            msg.msg_iov = rest.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = rest.len();
            // SAFETY: `msg` names `rest.len()` live iovecs and no address or
            // control data.
            match cvt(unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) }) {
                Ok(n) => {
                    done += n;
                    if done == total {
                        return Ok(done);
                    }
                    IoSlice::advance_slices(&mut rest, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        });
        match r {
            Err(_) if done > 0 => Ok(done),
            r => r,
        }
    }

    /// `recvfrom`: a datagram and who sent it.
    pub(crate) fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, RawAddr)> {
        self.io(Mode::Read, |fd| {
            let mut a = RawAddr::empty();
            // SAFETY: `buf` is writable for its length; `a` is a
            // sockaddr_storage with its length.
            let n = cvt(unsafe {
                libc::recvfrom(
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    a.as_mut_ptr(),
                    &mut a.len,
                )
            })?;
            Ok((n, a))
        })
    }

    /// `sendto` one datagram.
    pub(crate) fn send_to(&self, buf: &[u8], to: &RawAddr) -> io::Result<usize> {
        self.io(Mode::Write, |fd| {
            // SAFETY: `buf` is live for its length; `to` is a valid address.
            cvt(unsafe {
                libc::sendto(
                    fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                    to.as_ptr(),
                    to.len,
                )
            })
        })
    }

    /// `send` one datagram on a connected socket (empty datagrams too).
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io(Mode::Write, |fd| {
            // SAFETY: `buf` is live for its length.
            unsafe { sys::send(fd, buf.as_ptr(), buf.len(), libc::MSG_NOSIGNAL) }
        })
    }

    /// `recv` one datagram on a connected socket (empty datagrams too).
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io(Mode::Read, |fd| {
            // SAFETY: `buf` is writable for its length.
            unsafe { sys::recv(fd, buf.as_mut_ptr(), buf.len(), 0) }
        })
    }

    /// Accepts a connection: the new socket registered, and its address.
    /// `ECONNABORTED` (a connection reset while queued) is skipped, as Go
    /// does.
    pub(crate) fn accept(&self) -> io::Result<(NetFd, RawAddr)> {
        let (s, a) = self.io(Mode::Read, |fd| loop {
            match sys::accept(fd) {
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                r => return r,
            }
        })?;
        Ok((NetFd::new(s)?, a))
    }

    /// Connects to `to`, waiting (until `deadline`, monotonic ns) for the
    /// handshake; the write deadline is cleared afterwards.
    pub(crate) fn connect(&self, to: &RawAddr, deadline: Option<i64>) -> io::Result<()> {
        self.check_open()?;
        if deadline.is_some() {
            need_runtime()?;
        }
        // Forget the writability the registration itself reported: only
        // readiness after the connect says the handshake ended.
        self.pfd
            .prepare(Mode::Write)
            .map_err(|e| self.poll_error(e))?;
        match sys::connect(self.raw(), to) {
            Ok(()) => return Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINPROGRESS | libc::EALREADY | libc::EINTR) => {}
                Some(libc::EISCONN) => return Ok(()),
                _ => return Err(e),
            },
        }
        if deadline.is_some() {
            self.pfd.set_deadline(Mode::Write, deadline);
        }
        let r = loop {
            if let Err(e) = self.pfd.wait(Mode::Write) {
                break Err(self.poll_error(e));
            }
            match sys::getsockopt_int(self.raw(), libc::SOL_SOCKET, libc::SO_ERROR) {
                Err(e) => break Err(e),
                // A wake-up may come before the handshake ends: connected
                // only if there is a peer.
                Ok(0) => match sys::sockname(self.raw(), true) {
                    Ok(_) => break Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => continue,
                    Err(e) => break Err(e),
                },
                Ok(libc::EINPROGRESS | libc::EALREADY | libc::EINTR) => continue,
                Ok(libc::EISCONN) => break Ok(()),
                Ok(errno) => break Err(io::Error::from_raw_os_error(errno)),
            }
        };
        if deadline.is_some() {
            self.pfd.set_deadline(Mode::Write, None);
        }
        r
    }

    /// Deadlines for reads, writes or both (monotonic ns; `None` clears).
    /// An absolute deadline replaces a per-operation timeout.
    pub(crate) fn set_deadline(
        &self,
        read: bool,
        write: bool,
        when: Option<Instant>,
    ) -> io::Result<()> {
        self.check_open()?;
        if when.is_some() {
            need_runtime()?;
        }
        let ns = when.map(instant_to_nanotime);
        if read {
            self.rtimeout.store(0, Ordering::Relaxed);
            self.pfd.set_deadline(Mode::Read, ns);
        }
        if write {
            self.wtimeout.store(0, Ordering::Relaxed);
            self.pfd.set_deadline(Mode::Write, ns);
        }
        Ok(())
    }

    /// std's per-operation timeouts: each later read (write) must finish
    /// within `d` of its start; `None` removes the timeout and any deadline.
    pub(crate) fn set_timeout(&self, mode: Mode, d: Option<Duration>) -> io::Result<()> {
        self.check_open()?;
        let ns = duration_ns(d)?;
        if ns > 0 {
            need_runtime()?;
        }
        let t = match mode {
            Mode::Read => &self.rtimeout,
            Mode::Write => &self.wtimeout,
        };
        t.store(ns, Ordering::Relaxed);
        if ns == 0 {
            self.pfd.set_deadline(mode, None);
        }
        Ok(())
    }

    pub(crate) fn timeout(&self, mode: Mode) -> Option<Duration> {
        ns_duration(match mode {
            Mode::Read => self.rtimeout.load(Ordering::Relaxed),
            Mode::Write => self.wtimeout.load(Ordering::Relaxed),
        })
    }

    /// Marks the socket closed and wakes every goroutine blocked on it with
    /// the closed error; shuts the connection down both ways so the peer
    /// (or a connecting client, for a listener) sees it at once. The
    /// descriptor itself is released when the value is dropped. Closing
    /// twice is the closed error, as in Go.
    pub(crate) fn close(&self) -> io::Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(closed());
        }
        self.pfd.evict();
        // Not connected (a datagram socket, a listener on some systems) is
        // fine: there is nothing to shut down.
        // SAFETY: no memory arguments; the descriptor is still open.
        unsafe { libc::shutdown(self.raw(), libc::SHUT_RDWR) };
        Ok(())
    }

    /// `shutdown(2)` one or both directions.
    pub(crate) fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        self.check_open()?;
        let how = match how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        };
        // SAFETY: no memory arguments.
        sys::cvt_i(unsafe { libc::shutdown(self.raw(), how) })?;
        Ok(())
    }

    /// A new descriptor for the same socket, registered on its own.
    pub(crate) fn try_clone(&self) -> io::Result<NetFd> {
        self.check_open()?;
        let n = NetFd::new(sys::dup(self.raw())?)?;
        n.rtimeout
            .store(self.rtimeout.load(Ordering::Relaxed), Ordering::Relaxed);
        n.wtimeout
            .store(self.wtimeout.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(n)
    }

    pub(crate) fn local(&self) -> io::Result<RawAddr> {
        self.check_open()?;
        sys::sockname(self.raw(), false)
    }

    pub(crate) fn peer(&self) -> io::Result<RawAddr> {
        self.check_open()?;
        sys::sockname(self.raw(), true)
    }

    /// `SO_ERROR`, taken (and so cleared).
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        let e = sys::getsockopt_int(self.raw(), libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
    }
}
