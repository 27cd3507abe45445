//! `net-client`: the load generator of the `echo` and `idle` workloads (plain Rust, one
//! thread, epoll), so that every server is driven by the same client.
//!
//! * `net-client echo <addr> conns=N msgs=M size=S`: opens N connections (TCP_NODELAY), then
//!   on each sends S bytes and waits for their echo, M times, all connections at once.
//!   Checks every byte; prints `value=<ns per round trip> unit=ns/op` (wall time over N·M).
//! * `net-client idle <addr> conns=N`: opens N connections, sends one byte on each and reads
//!   its echo, prints `open conns=N`, and keeps them open until a line (or EOF) on stdin.

use rt_bench::proto::{emit, fail, Args};
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Instant;

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| fail(&format!("connect {addr}: {e}")));
    let _ = s.set_nodelay(true);
    s
}

struct Conn {
    s: TcpStream,
    /// Bytes of the current message still to come back.
    pending: usize,
    /// Messages still to send after the current one.
    left: u64,
    /// Which message this is (its bytes are `(msg + i) as u8`).
    msg: u64,
}

fn fill(buf: &mut [u8], msg: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (msg as usize).wrapping_add(i) as u8;
    }
}

fn echo(addr: &str, conns: u64, msgs: u64, size: usize) {
    // SAFETY: epoll_create1 has no memory arguments.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        fail("epoll_create1 failed");
    }
    let mut cs: Vec<Conn> = (0..conns)
        .map(|_| Conn {
            s: connect(addr),
            pending: 0,
            left: msgs,
            msg: 0,
        })
        .collect();
    let mut out = vec![0u8; size];
    let mut inb = vec![0u8; size.max(4096)];
    let t0 = Instant::now();
    for (i, c) in cs.iter_mut().enumerate() {
        c.s.set_nonblocking(true)
            .unwrap_or_else(|e| fail(&e.to_string()));
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: a valid event for a descriptor we own.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, c.s.as_raw_fd(), &mut ev) } < 0 {
            fail("epoll_ctl failed");
        }
        c.left -= 1;
        fill(&mut out, c.msg);
        send_all(&mut c.s, &out);
        c.pending = size;
    }
    let mut done = 0u64;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    while done < conns {
        // SAFETY: the buffer holds events.len() entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 10_000) };
        if n < 0 {
            continue;
        }
        if n == 0 {
            fail("no echo for 10 s");
        }
        for e in &events[..n as usize] {
            let c = &mut cs[e.u64 as usize];
            loop {
                let want = c.pending.min(inb.len());
                match c.s.read(&mut inb[..want]) {
                    Ok(0) => fail("the server closed a connection"),
                    Ok(k) => {
                        let off = size - c.pending;
                        for (j, b) in inb[..k].iter().enumerate() {
                            if *b != (c.msg as usize).wrapping_add(off + j) as u8 {
                                fail("echoed bytes differ from those sent");
                            }
                        }
                        c.pending -= k;
                        if c.pending == 0 {
                            if c.left == 0 {
                                done += 1;
                                break;
                            }
                            c.left -= 1;
                            c.msg += 1;
                            fill(&mut out, c.msg);
                            send_all(&mut c.s, &out);
                            c.pending = size;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => fail(&format!("read: {e}")),
                }
            }
        }
    }
    let ns = t0.elapsed().as_nanos() as f64;
    emit(ns / (conns * msgs) as f64, "ns/op");
}

/// Writes all of `buf` on a non-blocking socket (64 bytes always fit the send buffer of a
/// connection that has at most one message in flight; loop anyway).
fn send_all(s: &mut TcpStream, buf: &[u8]) {
    let mut off = 0;
    while off < buf.len() {
        match s.write(&buf[off..]) {
            Ok(k) => off += k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => fail(&format!("write: {e}")),
        }
    }
}

fn idle(addr: &str, conns: u64) {
    let mut cs = Vec::with_capacity(conns as usize);
    for i in 0..conns {
        let mut s = connect(addr);
        let b = [i as u8];
        s.write_all(&b)
            .unwrap_or_else(|e| fail(&format!("write: {e}")));
        let mut r = [0u8];
        s.read_exact(&mut r)
            .unwrap_or_else(|e| fail(&format!("read: {e}")));
        if r != b {
            fail("echoed byte differs");
        }
        cs.push(s);
    }
    println!("open conns={conns}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    drop(cs);
}

fn main() {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.len() < 2 {
        fail("usage: net-client echo|idle <addr> [key=value ...]");
    }
    let addr = argv.remove(1);
    let a = Args::parse(argv).unwrap_or_else(|e| fail(&e.to_string()));
    match a.workload.as_str() {
        "echo" => echo(
            &addr,
            a.count_or_exit("conns", 1),
            a.count_or_exit("msgs", 10_000),
            a.count_or_exit("size", 64) as usize,
        ),
        "idle" => idle(&addr, a.count_or_exit("conns", 10_000)),
        w => fail(&format!("unknown load {w}")),
    }
}
