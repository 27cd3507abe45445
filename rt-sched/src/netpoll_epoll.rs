//! The poller's Linux half (Go's `netpoll_epoll.go`): one epoll instance,
//! descriptors registered once, edge-triggered, for both directions, and an
//! eventfd that breaks a blocked `epoll_wait`.

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::lock::Lock;

static EPFD: AtomicI32 = AtomicI32::new(-1);
static EVFD: AtomicI32 = AtomicI32::new(-1);
static INIT: Lock = Lock::new();
/// A break byte is in flight (only one at a time, as Go's `netpollWakeSig`).
static BREAK_PENDING: AtomicBool = AtomicBool::new(false);
/// `epoll_event.data` of the eventfd.
const BREAK: u64 = u64::MAX;
/// Events taken per `epoll_wait`.
const BATCH: usize = 128;

/// True once the epoll instance exists.
#[inline]
pub(crate) fn inited() -> bool {
    EPFD.load(Ordering::Acquire) >= 0
}

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Creates the epoll instance and its eventfd (once).
pub(crate) fn init() -> std::io::Result<()> {
    if inited() {
        return Ok(());
    }
    INIT.lock();
    let r = init_locked();
    INIT.unlock();
    r
}

fn init_locked() -> std::io::Result<()> {
    if inited() {
        return Ok(());
    }
    // SAFETY: plain syscalls without memory arguments.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(last_error());
    }
    // SAFETY: as above.
    let ev = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if ev < 0 {
        let e = last_error();
        // SAFETY: ep is ours.
        unsafe { libc::close(ep) };
        return Err(e);
    }
    let mut e = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: BREAK,
    };
    // SAFETY: valid descriptors and event.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, ev, &mut e) } < 0 {
        let err = last_error();
        // SAFETY: both are ours.
        unsafe {
            libc::close(ev);
            libc::close(ep);
        }
        return Err(err);
    }
    EVFD.store(ev, Ordering::Release);
    EPFD.store(ep, Ordering::Release);
    Ok(())
}

/// Registers `fd` with the event data `pd | tag << 48`.
pub(crate) fn register(fd: i32, pd: usize, tag: u16) -> std::io::Result<()> {
    debug_assert!(pd < 1 << 48);
    let mut e = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: pd as u64 | (tag as u64) << 48,
    };
    // SAFETY: a valid event; a bad fd is reported as an error.
    if unsafe {
        libc::epoll_ctl(
            EPFD.load(Ordering::Acquire),
            libc::EPOLL_CTL_ADD,
            fd,
            &mut e,
        )
    } < 0
    {
        return Err(last_error());
    }
    Ok(())
}

/// Unregisters `fd` (errors ignored: the descriptor may already be gone).
pub(crate) fn unregister(fd: i32) {
    let mut e = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: a valid event pointer (ignored by DEL on current kernels).
    unsafe {
        libc::epoll_ctl(
            EPFD.load(Ordering::Acquire),
            libc::EPOLL_CTL_DEL,
            fd,
            &mut e,
        )
    };
}

/// Breaks a blocked [`wait`] (at most one break in flight).
pub(crate) fn interrupt() {
    if BREAK_PENDING
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to our eventfd.
    unsafe { libc::write(EVFD.load(Ordering::Acquire), (&one as *const u64).cast(), 8) };
}

/// Waits up to `timeout_ms` (-1: no limit) and calls `f(data, readable,
/// writable, closed)` for every descriptor event (`closed`: the peer's end
/// of the stream, a hang-up or an error). A break or a signal ends the
/// wait early.
pub(crate) fn wait(timeout_ms: i32, f: &mut dyn FnMut(u64, bool, bool, bool)) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
    // SAFETY: the buffer holds BATCH events.
    let n = unsafe {
        libc::epoll_wait(
            EPFD.load(Ordering::Acquire),
            events.as_mut_ptr(),
            BATCH as i32,
            timeout_ms,
        )
    };
    if n <= 0 {
        return;
    }
    for e in &events[..n as usize] {
        let (bits, data) = (e.events, e.u64);
        if data == BREAK {
            let mut buf = 0u64;
            // SAFETY: reads 8 bytes into a live u64 from our eventfd.
            unsafe {
                libc::read(
                    EVFD.load(Ordering::Acquire),
                    (&mut buf as *mut u64).cast(),
                    8,
                )
            };
            BREAK_PENDING.store(false, Ordering::Release);
            continue;
        }
        let r =
            bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
        let w = bits & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
        let closed = bits & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
        if r || w {
            f(data, r, w, closed);
        }
    }
}
