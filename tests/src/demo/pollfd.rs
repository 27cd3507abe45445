//! `pollfd`: the network poller under goroutines, on socket pairs — waits
//! that end by data, by a deadline (past, future, extended, cleared), by
//! eviction from another goroutine, and many waiters at once while a
//! CPU-bound goroutine keeps its P. Prints one line per check; exit 0 when
//! every result is exact.

use rt_sched::netpoll::{Mode, PollError, PollFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Pair {
    a: i32,
    b: i32,
}

impl Pair {
    fn new() -> Pair {
        let mut fds = [0; 2];
        // SAFETY: socketpair fills two descriptors.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0, "socketpair");
        Pair {
            a: fds[0],
            b: fds[1],
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // SAFETY: both descriptors are ours.
        unsafe {
            libc::close(self.a);
            libc::close(self.b);
        }
    }
}

fn write1(fd: i32, v: u8) {
    // SAFETY: one byte from a live local.
    let n = unsafe { libc::write(fd, (&v as *const u8).cast(), 1) };
    assert_eq!(n, 1, "write");
}

/// Reads one byte the way a net package does: try, wait on EAGAIN, retry.
fn read1(p: &PollFd, fd: i32) -> Result<u8, PollError> {
    loop {
        p.prepare(Mode::Read)?;
        let mut b = 0u8;
        // SAFETY: one byte into a live local.
        let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        if n == 1 {
            return Ok(b);
        }
        // SAFETY: errno is thread-local.
        let e = unsafe { *libc::__errno_location() };
        assert!(n < 0 && e == libc::EAGAIN, "read: {n} errno {e}");
        p.wait(Mode::Read)?;
    }
}

fn now() -> i64 {
    rt_sys::nanotime()
}

pub fn main() -> i32 {
    let mut ok = true;
    let mut check = |name: &str, good: bool| {
        println!("{name}: {}", if good { "ok" } else { "FAILED" });
        ok &= good;
    };

    // Data arrives after the reader parked.
    let pair = Arc::new(Pair::new());
    let p = Arc::new(PollFd::new(pair.a).expect("register"));
    let (p2, pair2) = (p.clone(), pair.clone());
    let h = rt_sched::spawn(move || read1(&p2, pair2.a));
    rt_sched::sleep(Duration::from_millis(20));
    write1(pair.b, 42);
    check("data wakes the reader", h.join().ok() == Some(Ok(42)));

    // A deadline in the past fails at once; a future one times out on time.
    p.set_deadline(Mode::Read, Some(now() - 1));
    check(
        "past deadline",
        read1(&p, pair.a) == Err(PollError::TimedOut),
    );
    let t0 = now();
    p.set_deadline(Mode::Read, Some(t0 + 30_000_000));
    let r = read1(&p, pair.a);
    let waited = now() - t0;
    check(
        "future deadline",
        r == Err(PollError::TimedOut) && waited >= 30_000_000,
    );
    // Extended while waiting: the first expiry does not end the wait.
    p.set_deadline(Mode::Read, Some(now() + 20_000_000));
    let p3 = p.clone();
    let ext = rt_sched::spawn(move || {
        rt_sched::sleep(Duration::from_millis(5));
        p3.set_deadline(Mode::Read, Some(now() + 60_000_000));
    });
    let t0 = now();
    let r = read1(&p, pair.a);
    let _ = ext.join();
    check(
        "extended deadline",
        r == Err(PollError::TimedOut) && now() - t0 >= 50_000_000,
    );
    // Cleared: data ends the wait again.
    p.set_deadline(Mode::Read, None);
    let (p4, pair4) = (p.clone(), pair.clone());
    let h = rt_sched::spawn(move || read1(&p4, pair4.a));
    rt_sched::sleep(Duration::from_millis(40));
    write1(pair.b, 7);
    check("cleared deadline", h.join().ok() == Some(Ok(7)));

    // Eviction from another goroutine wakes the reader with Closing.
    let (p5, pair5) = (p.clone(), pair.clone());
    let h = rt_sched::spawn(move || read1(&p5, pair5.a));
    rt_sched::sleep(Duration::from_millis(10));
    p.evict();
    check(
        "evict wakes the reader",
        h.join().ok() == Some(Err(PollError::Closing)),
    );
    check(
        "evicted stays closed",
        read1(&p, pair.a) == Err(PollError::Closing),
    );
    drop(p);

    // Many waiters and a CPU-bound goroutine: every byte arrives, the hog
    // notwithstanding (it yields now and then; the poller needs no P).
    let n = 200;
    let stop = Arc::new(AtomicU64::new(0));
    let s2 = stop.clone();
    let hog = rt_sched::spawn(move || {
        let mut x = 0u64;
        while s2.load(Ordering::Relaxed) == 0 {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            rt_sched::gosched();
        }
        x
    });
    let pairs: Vec<Arc<Pair>> = (0..n).map(|_| Arc::new(Pair::new())).collect();
    let sum = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();
    for (i, pr) in pairs.iter().enumerate() {
        let (pr, sum) = (pr.clone(), sum.clone());
        hs.push(rt_sched::spawn(move || {
            let p = PollFd::new(pr.a).expect("register");
            let v = read1(&p, pr.a).expect("read");
            sum.fetch_add(v as u64 + i as u64, Ordering::Relaxed);
        }));
    }
    rt_sched::sleep(Duration::from_millis(20));
    for (i, pr) in pairs.iter().enumerate() {
        write1(pr.b, (i % 251) as u8);
    }
    for h in hs {
        let _ = h.join();
    }
    stop.store(1, Ordering::Relaxed);
    let _ = hog.join();
    let want: u64 = (0..n).map(|i| (i % 251) as u64 + i as u64).sum();
    check("many waiters", sum.load(Ordering::Relaxed) == want);

    // A plain thread waits in poll(2).
    let pr = Pair::new();
    let (a, b) = (pr.a, pr.b);
    let t = std::thread::spawn(move || {
        let p = PollFd::new(a).expect("register");
        read1(&p, a)
    });
    std::thread::sleep(Duration::from_millis(20));
    write1(b, 9);
    check("plain thread", t.join().ok() == Some(Ok(9)));
    if ok {
        0
    } else {
        1
    }
}
