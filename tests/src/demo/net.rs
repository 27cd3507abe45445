//! rt-net under goroutines: `net` runs the checks (deadlines, close from
//! another goroutine, half-close, resets, sharing, UDP, Unix sockets, Go's
//! network names, bad input), one line each; `echoserve` and `httpserve`
//! run the examples' servers on a free port and print `listening on
//! ADDR`; `echoclient ADDR N` holds N connections to an echo server at
//! once and checks every byte; `netcycle N` makes N connections one after
//! another and checks that no descriptor leaks and memory stays bounded.

use std::io::{ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rt_net::{
    is_closed_error, is_timeout, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixStream,
};

#[path = "../../../rt-net/examples/echo/server.rs"]
mod echo_server;
#[path = "../../../rt-net/examples/http/server.rs"]
mod http_server;

/// The bound for "promptly": generous, only a hang should reach it.
const PROMPT: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A connected pair over loopback: (client, server side).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (s, _) = l.accept().expect("accept");
    (c, s)
}

/// Writes until a write fails (the peer never reads); returns the bytes
/// written and the error.
fn fill(c: &TcpStream) -> (usize, std::io::Error) {
    let chunk = vec![7u8; 1 << 16];
    let mut total = 0;
    loop {
        match (&*c).write(&chunk) {
            Ok(n) => total += n,
            Err(e) => return (total, e),
        }
    }
}

fn past() -> Instant {
    Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(Instant::now)
}

/// Raises the soft RLIMIT_NOFILE to at least `want` (and the hard limit
/// too when allowed); an error saying why not otherwise.
fn raise_nofile(want: u64) -> Result<u64, String> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a live rlimit for the kernel to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err("getrlimit failed".into());
    }
    if r.rlim_cur >= want {
        return Ok(r.rlim_cur);
    }
    let new = libc::rlimit {
        rlim_cur: want,
        rlim_max: r.rlim_max.max(want),
    };
    // SAFETY: a live rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
        return Ok(want);
    }
    Err(format!(
        "RLIMIT_NOFILE: need {want} descriptors, the hard limit is {} and cannot be raised",
        r.rlim_max
    ))
}

/// A TCP listener on 127.0.0.1 with a backlog of 0, made with libc (the
/// crate's listeners use the system's backlog); its descriptor and address.
fn full_listener() -> (i32, SocketAddr) {
    // SAFETY: no memory arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket");
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a live sockaddr_in and its size.
    let r = unsafe { libc::bind(fd, (&sin as *const libc::sockaddr_in).cast(), len) };
    assert_eq!(r, 0, "bind");
    // SAFETY: no memory arguments.
    assert_eq!(unsafe { libc::listen(fd, 0) }, 0, "listen");
    let mut out = sin;
    // SAFETY: `out` is a sockaddr_in with its size; the kernel fills it.
    let r = unsafe { libc::getsockname(fd, (&mut out as *mut libc::sockaddr_in).cast(), &mut len) };
    assert_eq!(r, 0, "getsockname");
    (
        fd,
        SocketAddr::from(([127, 0, 0, 1], u16::from_be(out.sin_port))),
    )
}

/// The checks, one line each; 0 when all pass.
pub fn checks() -> i32 {
    let mut failed = 0;
    let mut check = |name: &str, good: bool, detail: String| {
        if good {
            println!("{name}: ok");
        } else {
            println!("{name}: FAILED ({detail})");
            failed += 1;
        }
    };

    // TCP_NODELAY is on both ends, as in Go.
    let (c, s) = tcp_pair();
    let nd = (c.nodelay().ok(), s.nodelay().ok());
    check(
        "nodelay by default",
        nd == (Some(true), Some(true)),
        format!("{nd:?}"),
    );

    // A deadline already past fails a read even with data waiting; cleared,
    // the data is read.
    (&s).write_all(b"x").expect("write");
    rt_sched::sleep(ms(10));
    c.set_read_deadline(Some(past())).expect("deadline");
    let mut b = [0u8; 16];
    let r = (&c).read(&mut b);
    c.set_read_deadline(None).expect("clear");
    let r2 = (&c).read(&mut b);
    check(
        "read deadline in the past",
        matches!(&r, Err(e) if is_timeout(e) && e.to_string() == "i/o timeout")
            && matches!(r2, Ok(1)),
        format!("{r:?} then {r2:?}"),
    );

    // A future deadline ends a blocked read no sooner than it passes.
    let t0 = Instant::now();
    c.set_read_deadline(Some(t0 + ms(100))).expect("deadline");
    let r = (&c).read(&mut b);
    let took = t0.elapsed();
    check(
        "read deadline in the future",
        matches!(&r, Err(e) if e.kind() == ErrorKind::TimedOut) && took >= ms(100) && took < PROMPT,
        format!("{r:?} after {took:?}"),
    );

    // Extended by another goroutine while the read waits.
    let c = Arc::new(c);
    let t0 = Instant::now();
    c.set_read_deadline(Some(t0 + ms(50))).expect("deadline");
    let c2 = c.clone();
    let ext = rt_sched::spawn(move || {
        rt_sched::sleep(ms(10));
        c2.set_read_deadline(Some(t0 + ms(200))).expect("extend");
    });
    let r = (&*c).read(&mut b);
    let took = t0.elapsed();
    let _ = ext.join();
    check(
        "read deadline extended",
        matches!(&r, Err(e) if is_timeout(e)) && took >= ms(200) && took < PROMPT,
        format!("{r:?} after {took:?}"),
    );

    // Cleared by another goroutine: the read waits for data.
    let t0 = Instant::now();
    c.set_read_deadline(Some(t0 + ms(50))).expect("deadline");
    let (c2, s2) = (c.clone(), Arc::new(s));
    let s3 = s2.clone();
    let clr = rt_sched::spawn(move || {
        rt_sched::sleep(ms(10));
        c2.set_read_deadline(None).expect("clear");
        rt_sched::sleep(ms(140));
        (&*s3).write_all(b"late").expect("write");
    });
    let r = (&*c).read(&mut b);
    let took = t0.elapsed();
    let _ = clr.join();
    check(
        "read deadline cleared",
        matches!(r, Ok(4)) && &b[..4] == b"late" && took >= ms(150),
        format!("{r:?} after {took:?}"),
    );

    // std's per-operation read timeout.
    c.set_read_timeout(Some(ms(50))).expect("timeout");
    let r1 = (&*c).read(&mut b);
    (&*s2).write_all(b"y").expect("write");
    let r2 = (&*c).read(&mut b);
    let t0 = Instant::now();
    let r3 = (&*c).read(&mut b);
    let took = t0.elapsed();
    let zero = c.set_read_timeout(Some(Duration::ZERO));
    let got = c.read_timeout().ok().flatten();
    c.set_read_timeout(None).expect("clear");
    check(
        "read timeout per operation",
        matches!(&r1, Err(e) if is_timeout(e))
            && matches!(r2, Ok(1))
            && matches!(&r3, Err(e) if is_timeout(e))
            && took >= ms(50)
            && matches!(&zero, Err(e) if e.kind() == ErrorKind::InvalidInput)
            && got == Some(ms(50)),
        format!("{r1:?} {r2:?} {r3:?} after {took:?}, zero {zero:?}, {got:?}"),
    );

    // A write deadline with a peer that never reads.
    let t0 = Instant::now();
    c.set_write_deadline(Some(t0 + ms(200))).expect("deadline");
    let (n, e) = fill(&c);
    let took = t0.elapsed();
    check(
        "write deadline, peer never reads",
        n > 0 && is_timeout(&e) && took >= ms(200) && took < PROMPT,
        format!("{n} bytes then {e:?} after {took:?}"),
    );
    c.set_write_deadline(None).expect("clear");

    // Close from another goroutine while a write is blocked (buffers are
    // full from the previous check).
    let c2 = c.clone();
    let w = rt_sched::spawn(move || fill(&c2).1);
    rt_sched::sleep(ms(50));
    let t0 = Instant::now();
    c.close().expect("close");
    let e = w.join().expect("writer");
    let took = t0.elapsed();
    check(
        "close wakes a blocked write",
        is_closed_error(&e) && e.kind() == ErrorKind::Other && took < PROMPT,
        format!("{e:?} after {took:?}"),
    );
    let again = c.close();
    let later = (&*c).read(&mut b);
    check(
        "closed stays closed",
        matches!(&again, Err(e) if is_closed_error(e))
            && matches!(&later, Err(e) if is_closed_error(e) && e.to_string() == "use of closed network connection"),
        format!("{again:?} {later:?}"),
    );
    drop((c, s2));

    // Close while a read is blocked.
    let (c, _s) = tcp_pair();
    let c = Arc::new(c);
    let c2 = c.clone();
    let r = rt_sched::spawn(move || (&*c2).read(&mut [0u8; 8]));
    rt_sched::sleep(ms(50));
    let t0 = Instant::now();
    c.close().expect("close");
    let res = r.join().expect("reader");
    let took = t0.elapsed();
    check(
        "close wakes a blocked read",
        matches!(&res, Err(e) if is_closed_error(e)) && took < PROMPT,
        format!("{res:?} after {took:?}"),
    );

    // Close while an accept is blocked; the closed listener refuses.
    let l = Arc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let addr = l.local_addr().expect("addr");
    let l2 = l.clone();
    let a = rt_sched::spawn(move || l2.accept().map(|_| ()));
    rt_sched::sleep(ms(50));
    let t0 = Instant::now();
    l.close().expect("close");
    let res = a.join().expect("acceptor");
    let took = t0.elapsed();
    let refused = TcpStream::connect(addr);
    check(
        "close wakes a blocked accept",
        matches!(&res, Err(e) if is_closed_error(e))
            && took < PROMPT
            && matches!(&refused, Err(e) if e.kind() == ErrorKind::ConnectionRefused),
        format!("{res:?} after {took:?}; then connect {refused:?}"),
    );

    // An accept deadline.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_deadline(Some(Instant::now() + ms(50)))
        .expect("deadline");
    let res = l.accept().map(|_| ());
    check(
        "accept deadline",
        matches!(&res, Err(e) if is_timeout(e)),
        format!("{res:?}"),
    );

    // Half-close: the peer reads end-of-file, then still answers.
    let (mut c, mut s) = tcp_pair();
    c.write_all(b"last words").expect("write");
    c.shutdown(Shutdown::Write).expect("shutdown");
    let mut got = Vec::new();
    let r = s.read_to_end(&mut got);
    s.write_all(b"bye").expect("answer");
    drop(s);
    let mut back = Vec::new();
    let r2 = c.read_to_end(&mut back);
    check(
        "half-close and end-of-file",
        matches!(r, Ok(10)) && got == b"last words" && matches!(r2, Ok(3)) && back == b"bye",
        format!("{r:?} {got:?} {r2:?} {back:?}"),
    );

    // A peer that resets (SO_LINGER 0): an error, not a panic or a signal.
    let (c, s) = tcp_pair();
    s.set_linger(Some(Duration::ZERO)).expect("linger");
    drop(s);
    rt_sched::sleep(ms(20));
    let r = (&c).read(&mut b);
    let w = (&c).write(b"into the void");
    let w2 = (&c).write(b"again");
    check(
        "reset by peer",
        matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset)
            && (w.is_err()
                || matches!(&w2, Err(e) if e.kind() == ErrorKind::BrokenPipe || e.kind() == ErrorKind::ConnectionReset)),
        format!("{r:?} {w:?} {w2:?}"),
    );

    // One reader and one writer goroutine share a stream through an Arc,
    // the peer echoing; every byte comes back in order.
    let (c, s) = tcp_pair();
    rt_sched::go(move || {
        let _ = echo_server::echo(s);
    });
    let c = Arc::new(c);
    let total = 1 << 20;
    let c2 = c.clone();
    let wr = rt_sched::spawn(move || {
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        for part in data.chunks(10_000) {
            (&*c2).write_all(part)?;
        }
        c2.shutdown(Shutdown::Write)
    });
    let mut got = Vec::new();
    let r = (&*c).read_to_end(&mut got);
    let w = wr.join().expect("writer");
    let exact = got.len() == total && got.iter().enumerate().all(|(i, &v)| v == (i % 251) as u8);
    check(
        "shared reader and writer",
        r.is_ok() && w.is_ok() && exact,
        format!("{r:?} {w:?} {} bytes", got.len()),
    );

    // Two writer goroutines on one stream: each write goes out whole,
    // never interleaved with the other's (Go's FD.Write holds the write
    // lock for the whole buffer).
    let (c, s) = tcp_pair();
    let c = Arc::new(c);
    let (chunk, rounds) = (200_000, 20);
    let writers: Vec<_> = [b'A', b'B']
        .into_iter()
        .map(|letter| {
            let c = c.clone();
            rt_sched::spawn(move || {
                let buf = vec![letter; chunk];
                for _ in 0..rounds {
                    if (&*c).write(&buf)? != chunk {
                        return Err(std::io::Error::other("short write"));
                    }
                }
                Ok(())
            })
        })
        .collect();
    let reader = rt_sched::spawn(move || {
        let mut v = Vec::new();
        (&s).read_to_end(&mut v).map(|_| v)
    });
    let ws: Vec<_> = writers
        .into_iter()
        .map(|w| w.join().expect("writer"))
        .collect();
    c.shutdown(Shutdown::Write).expect("shutdown");
    let got = reader.join().expect("reader").unwrap_or_default();
    let whole = got.len() == 2 * chunk * rounds
        && got
            .chunks(chunk)
            .all(|run| run.iter().all(|&b| b == run[0]) && (run[0] == b'A' || run[0] == b'B'));
    check(
        "concurrent writes stay whole",
        ws.iter().all(|w| w.is_ok()) && whole,
        format!("{ws:?}, {} bytes", got.len()),
    );

    // try_clone: a second handle, independent on drop.
    let (c, mut s) = tcp_pair();
    let c2 = c.try_clone().expect("clone");
    (&c2).write_all(b"a").expect("write");
    drop(c2);
    (&c).write_all(b"b").expect("write");
    let mut two = [0u8; 2];
    let r = s.read_exact(&mut two);
    check(
        "try_clone",
        r.is_ok() && &two == b"ab",
        format!("{r:?} {two:?}"),
    );

    // Vectored I/O.
    let (mut c, mut s) = tcp_pair();
    let w = c.write_vectored(&[IoSlice::new(b"head"), IoSlice::new(b"tail")]);
    rt_sched::sleep(ms(10));
    let (mut x, mut y) = ([0u8; 4], [0u8; 4]);
    let r = s.read_vectored(&mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)]);
    // Larger than the socket buffers: one call still writes everything.
    let big: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1 << 20]).collect();
    let rd = rt_sched::spawn(move || {
        let mut v = Vec::new();
        s.read_to_end(&mut v).map(|_| v)
    });
    let wb = c.write_vectored(&big.iter().map(|b| IoSlice::new(b)).collect::<Vec<_>>());
    c.shutdown(Shutdown::Write).expect("shutdown");
    let back = rd.join().expect("reader").unwrap_or_default();
    check(
        "vectored read and write",
        matches!(w, Ok(8))
            && matches!(r, Ok(8))
            && &x == b"head"
            && &y == b"tail"
            && matches!(wb, Ok(n) if n == 3 << 20)
            && back == big.concat(),
        format!("{w:?} {r:?} {wb:?} {} bytes back", back.len()),
    );

    // Connecting: refused, with a timeout, a zero timeout.
    let addr = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let r = TcpStream::connect(addr);
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let ok = TcpStream::connect_timeout(&l.local_addr().expect("addr"), Duration::from_secs(5));
    let zero = TcpStream::connect_timeout(&addr, Duration::ZERO);
    check(
        "connect refused, connect_timeout",
        matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionRefused)
            && ok
                .as_ref()
                .is_ok_and(|c| c.peer_addr().ok() == l.local_addr().ok())
            && matches!(&zero, Err(e) if e.kind() == ErrorKind::InvalidInput),
        format!("{r:?} {ok:?} {zero:?}"),
    );

    // A connect the listener never answers: a listener with a backlog of 0
    // whose queue is full drops further SYNs, so the handshake hangs until
    // the timeout.
    let (fd, full) = full_listener();
    let first = TcpStream::connect_timeout(&full, Duration::from_secs(5));
    let t0 = Instant::now();
    let mut late = TcpStream::connect_timeout(&full, ms(200));
    let mut tries = 1;
    while late.is_ok() && tries < 4 {
        late = TcpStream::connect_timeout(&full, ms(200));
        tries += 1;
    }
    let took = t0.elapsed();
    // SAFETY: our own descriptor, closed once.
    unsafe { libc::close(fd) };
    check(
        "connect_timeout gives up",
        first.is_ok()
            && matches!(&late, Err(e) if is_timeout(e))
            && took >= ms(200)
            && took < PROMPT,
        format!("{first:?} {late:?} after {tries} tries, {took:?}"),
    );

    // UDP: addressed, connected, and a receive deadline.
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let bs = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (aa, ba) = (
        a.local_addr().expect("addr"),
        bs.local_addr().expect("addr"),
    );
    let sent = a.send_to(b"ping", ba);
    let sent_direct = a.send_to_addr(b"pang", &ba);
    let mut buf = [0u8; 64];
    let got = bs.recv_from(&mut buf);
    let mut buf2 = [0u8; 8];
    let got_direct = bs.recv_from(&mut buf2);
    bs.connect(aa).expect("connect");
    let sent2 = bs.send(b"pong");
    let got2 = a.recv(&mut buf[8..]);
    a.set_read_deadline(Some(Instant::now() + ms(50)))
        .expect("deadline");
    let late = a.recv_from(&mut buf[16..]);
    check(
        "udp",
        matches!(sent, Ok(4))
            && matches!(got, Ok((4, from)) if from == aa)
            && &buf[..4] == b"ping"
            && matches!(sent_direct, Ok(4))
            && matches!(got_direct, Ok((4, from)) if from == aa)
            && &buf2[..4] == b"pang"
            && matches!(sent2, Ok(4))
            && matches!(got2, Ok(4))
            && &buf[8..12] == b"pong"
            && bs.peer_addr().ok() == Some(aa)
            && matches!(&late, Err(e) if is_timeout(e)),
        format!("{sent:?} {got:?} {sent_direct:?} {got_direct:?} {sent2:?} {got2:?} {late:?}"),
    );

    // Unix sockets through Go's names, a datagram pair, a bound datagram
    // socket, and the socket file removed with its listener.
    let path = std::env::temp_dir().join(format!("rt-net-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let ps = path.to_str().expect("utf-8 temp path");
    let l = rt_net::listen("unix", ps).expect("listen unix");
    let acc = rt_sched::spawn(move || {
        let mut s = l.accept()?;
        let mut v = Vec::new();
        s.read_to_end(&mut v)?;
        s.write_all(&v)?;
        Ok::<_, std::io::Error>((v, l.local_addr()?))
    });
    let mut d = rt_net::dial("unix", ps).expect("dial unix");
    d.write_all(b"over unix").expect("write");
    d.shutdown(Shutdown::Write).expect("shutdown");
    let mut back = Vec::new();
    let r = d.read_to_end(&mut back);
    let served = acc.join().expect("acceptor");
    let gone = !path.exists();
    let (p, q) = UnixDatagram::pair().expect("pair");
    let dg = p.send(b"dgram").and_then(|_| q.recv(&mut buf));
    let dpath = std::env::temp_dir().join(format!("rt-net-{}.dgram", std::process::id()));
    let _ = std::fs::remove_file(&dpath);
    let bound = UnixDatagram::bind(&dpath).expect("bind dgram");
    let from = UnixDatagram::unbound().expect("unbound");
    let sent = from.send_to(b"to a path", &dpath);
    let got = bound.recv_from(&mut buf);
    let _ = std::fs::remove_file(&dpath);
    let (mut u1, mut u2) = UnixStream::pair().expect("pair");
    u1.write_all(b"pair").expect("write");
    let mut four = [0u8; 4];
    let pr = u2.read_exact(&mut four);
    check(
        "unix sockets",
        matches!(r, Ok(9))
            && back == b"over unix"
            && matches!(&served, Ok((v, rt_net::Addr::Unix(a))) if v == b"over unix" && a.as_pathname() == Some(path.as_path()))
            && gone
            && matches!(dg, Ok(5))
            && matches!(sent, Ok(9))
            && matches!(&got, Ok((9, a)) if a.is_unnamed())
            && pr.is_ok()
            && &four == b"pair",
        format!("{r:?} {served:?} gone={gone} {dg:?} {sent:?} {got:?} {pr:?}"),
    );

    // Go's network names for TCP; tcp6 only where the host has IPv6.
    let l4 = rt_net::listen("tcp4", "127.0.0.1:0").expect("listen tcp4");
    let a4 = l4.local_addr().expect("addr").to_string();
    let d4 = rt_net::dial("tcp", &a4);
    let acc4 = l4.accept();
    let six = match rt_net::listen("tcp6", "[::1]:0") {
        Ok(l6) => {
            let a6 = l6.local_addr().expect("addr").to_string();
            rt_net::dial("tcp6", &a6).is_ok() && l6.accept().is_ok()
        }
        Err(e) => {
            println!("(tcp6 not checked: {e})");
            true
        }
    };
    let wrong = rt_net::listen("tcp6", "127.0.0.1:0");
    // ":port" on "tcp": every address, IPv4 clients included.
    let any = rt_net::listen("tcp", ":0").expect("listen :0");
    let any_addr = any.local_addr().expect("addr");
    let port = match &any_addr {
        rt_net::Addr::Inet(a) => a.port(),
        rt_net::Addr::Unix(_) => 0,
    };
    let dany = rt_net::dial("tcp4", &format!("127.0.0.1:{port}"));
    let accany = any.accept();
    check(
        "listen and dial by network name",
        d4.is_ok()
            && acc4.is_ok()
            && six
            && wrong.is_err()
            && port != 0
            && dany.is_ok()
            && accany.is_ok(),
        format!("{d4:?} {acc4:?} six={six} {wrong:?} {any_addr} {dany:?} {accany:?}"),
    );

    // Bad input from the caller: errors, never panics.
    let bad = [
        rt_net::dial("udp", "127.0.0.1:1").err().map(|e| e.kind()),
        rt_net::dial("tcp", "no port here").err().map(|e| e.kind()),
        rt_net::listen("tcp", ":notaport").err().map(|e| e.kind()),
        UnixStream::connect("a\0b").err().map(|e| e.kind()),
        UnixStream::connect("x".repeat(200)).err().map(|e| e.kind()),
        UnixStream::connect("").err().map(|e| e.kind()),
    ];
    check(
        "bad addresses are errors",
        bad.iter().all(|k| k.is_some())
            && bad[0] == Some(ErrorKind::InvalidInput)
            && bad[3] == Some(ErrorKind::InvalidInput)
            && bad[4] == Some(ErrorKind::InvalidInput),
        format!("{bad:?}"),
    );

    // The I/O budget: a reader that never meets EAGAIN still lets another
    // goroutine run (meaningful at GOMAXPROCS=1).
    let (u1, u2) = UnixStream::pair().expect("pair");
    let data = vec![1u8; 32 * 1024];
    (&u1).write_all(&data).expect("prefill");
    let started = Arc::new(AtomicBool::new(false));
    let flag = Arc::new(AtomicBool::new(false));
    let (st, fl) = (started.clone(), flag.clone());
    let reader = rt_sched::spawn(move || {
        st.store(true, Ordering::SeqCst);
        let mut one = [0u8; 1];
        for i in 0..data.len() {
            if fl.load(Ordering::SeqCst) {
                return Some(i);
            }
            if (&u2).read(&mut one).ok() != Some(1) {
                return None;
            }
        }
        None
    });
    let (st, fl) = (started, flag);
    let other = rt_sched::spawn(move || {
        while !st.load(Ordering::SeqCst) {
            rt_sched::gosched();
        }
        fl.store(true, Ordering::SeqCst);
    });
    let seen = reader.join().expect("reader");
    let _ = other.join();
    check(
        "a reader that never waits yields",
        seen.is_some(),
        format!("{seen:?}"),
    );

    // readable + try_read: nothing there is WouldBlock; readable then
    // waits for the peer's write; data left behind by an earlier read makes
    // it return at once; a timeout and a close from another goroutine end
    // it; end of file is readable and reads as 0.
    let (c, s) = tcp_pair();
    let (c, s) = (Arc::new(c), Arc::new(s));
    let mut b = [0u8; 4];
    let dry = c.try_read(&mut b);
    let s2 = s.clone();
    // Timed from before the spawn: with more than one P the writer's
    // 50 ms sleep may start before this goroutine gets past `spawn`.
    let t0 = Instant::now();
    let w = rt_sched::spawn(move || {
        rt_sched::sleep(ms(50));
        (&*s2).write_all(b"abcdef").expect("write");
    });
    let r = c.readable();
    let took = t0.elapsed();
    let _ = w.join();
    let first = c.try_read(&mut b);
    let again = c.readable();
    let mut rest = [0u8; 8];
    let second = c.try_read(&mut rest);
    check(
        "readable waits for data and try_read does not",
        matches!(&dry, Err(e) if e.kind() == ErrorKind::WouldBlock)
            && r.is_ok()
            && took >= ms(50)
            && took < PROMPT
            && matches!(first, Ok(4))
            && &b == b"abcd"
            && again.is_ok()
            && matches!(second, Ok(2))
            && &rest[..2] == b"ef",
        format!("{dry:?} {r:?} after {took:?}, {first:?} {again:?} {second:?}"),
    );

    c.set_read_timeout(Some(ms(50))).expect("timeout");
    let t0 = Instant::now();
    let r = c.readable();
    let took = t0.elapsed();
    c.set_read_timeout(None).expect("clear");
    let c2 = c.clone();
    let closer = rt_sched::spawn(move || {
        rt_sched::sleep(ms(20));
        c2.close()
    });
    let closed = c.readable();
    let _ = closer.join();
    check(
        "readable ends at a timeout and at a close",
        matches!(&r, Err(e) if is_timeout(e))
            && took >= ms(50)
            && took < PROMPT
            && matches!(&closed, Err(e) if is_closed_error(e)),
        format!("{r:?} after {took:?}, then {closed:?}"),
    );

    let (c, s) = tcp_pair();
    s.shutdown(Shutdown::Write).expect("shutdown");
    let r = c.readable();
    let eof = c.try_read(&mut b);
    // Data with the end of file right behind it, both seen by the poller
    // before the first read: the short read that takes the data must not
    // make the next reads wait for news that never comes.
    let (c, s) = tcp_pair();
    (&s).write_all(b"xyz").expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    rt_sched::sleep(ms(20));
    c.set_read_timeout(Some(PROMPT)).expect("timeout");
    let mut big = [0u8; 16];
    let short = (&c).read(&mut big);
    let after = (&c).read(&mut big);
    let (c2, s2) = tcp_pair();
    (&s2).write_all(b"xyz").expect("write");
    s2.shutdown(Shutdown::Write).expect("shutdown");
    rt_sched::sleep(ms(20));
    let short2 = c2.try_read(&mut big);
    let ready2 = c2.readable();
    let after2 = c2.try_read(&mut big);
    check(
        "end of file is readable",
        r.is_ok()
            && matches!(eof, Ok(0))
            && matches!(short, Ok(3))
            && matches!(after, Ok(0))
            && matches!(short2, Ok(3))
            && ready2.is_ok()
            && matches!(after2, Ok(0)),
        format!("{r:?} then {eof:?}; {short:?} {after:?}; {short2:?} {ready2:?} {after2:?}"),
    );

    // Two handles of one socket (`try_clone`: a descriptor each, each
    // registered with the poller on its own) read in turn, one byte at a
    // time: every read is short, so the handle that read last is drained
    // while the other takes the next byte. Neither may miss a byte meant
    // for it, nor wait for one the other took. Every other round goes
    // through `readable` and `try_read` (which may find nothing after a
    // readiness the other handle used up, and then waits again); every
    // other four rounds the poller has seen the byte before the read.
    let (c, s) = tcp_pair();
    let c2 = c.try_clone().expect("try_clone");
    // A goroutine parked in a read of another connection keeps the poller
    // looking whenever the P is idle, so the bytes' readiness does reach
    // both handles during the sleeps below.
    let (idle, idle_peer) = tcp_pair();
    let parked = rt_sched::spawn(move || {
        let mut b = [0u8; 1];
        let _ = (&idle).read(&mut b);
    });
    let until = Instant::now() + PROMPT;
    for h in [&c, &c2] {
        h.set_read_deadline(Some(until)).expect("deadline");
    }
    let mut got = Vec::new();
    let mut bad = None;
    let mut b = [0u8; 8];
    'rounds: for i in 0..100u8 {
        let h = if i % 2 == 0 { &c } else { &c2 };
        (&s).write_all(&[i]).expect("write");
        if i % 8 >= 4 {
            // Let the poller see the byte first: both handles then hold a
            // readiness, and only one of them finds the byte.
            rt_sched::sleep(ms(1));
        }
        if i % 4 < 2 {
            match (&*h).read(&mut b) {
                Ok(1) => got.push(b[0]),
                r => {
                    bad = Some(format!("read {i}: {r:?}"));
                    break;
                }
            }
            continue;
        }
        loop {
            if let Err(e) = h.readable() {
                bad = Some(format!("readable {i}: {e:?}"));
                break 'rounds;
            }
            match h.try_read(&mut b) {
                Ok(1) => {
                    got.push(b[0]);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                r => {
                    bad = Some(format!("try_read {i}: {r:?}"));
                    break 'rounds;
                }
            }
        }
    }
    // The other handle takes a byte: this one finds nothing, then waits in
    // `readable` until the next byte comes.
    (&s).write_all(b"y").expect("write");
    let took = (&c2).read(&mut b);
    let none = c.try_read(&mut b);
    let s = Arc::new(s);
    let s2 = s.clone();
    let late = rt_sched::spawn(move || {
        rt_sched::sleep(ms(20));
        (&*s2).write_all(b"z").expect("write");
    });
    let mut woke = Err(ErrorKind::Other.into());
    while Instant::now() < until {
        if let Err(e) = c.readable() {
            woke = Err(e);
            break;
        }
        match c.try_read(&mut b) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            r => {
                woke = r.map(|n| if n == 1 && b[0] == b'z' { 1 } else { 0 });
                break;
            }
        }
    }
    let _ = late.join();
    drop(idle_peer);
    let _ = parked.join();
    check(
        "cloned handles read in turn",
        bad.is_none()
            && got == (0..100).collect::<Vec<u8>>()
            && matches!(took, Ok(1))
            && matches!(&none, Err(e) if e.kind() == ErrorKind::WouldBlock)
            && matches!(woke, Ok(1)),
        format!(
            "{bad:?}, {} of 100 in order; {took:?} {none:?} {woke:?}",
            got.iter().zip(0..).take_while(|(a, b)| **a == *b).count()
        ),
    );

    if failed == 0 {
        0
    } else {
        1
    }
}

/// Runs a server on 127.0.0.1 (a free port), printing `listening on ADDR`.
fn serve_on_free_port(serve: fn(&TcpListener) -> std::io::Result<()>) -> i32 {
    // As many descriptors as allowed: each connection is one.
    let _ = raise_nofile(u32::MAX as u64).or_else(|_| raise_nofile(20_000));
    let l = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind: {e}");
            return 1;
        }
    };
    println!("listening on {}", l.local_addr().expect("addr"));
    match serve(&l) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("serve: {e}");
            1
        }
    }
}

/// `echoserve`: the echo example's server.
pub fn echoserve() -> i32 {
    serve_on_free_port(echo_server::serve)
}

/// `httpserve`: the HTTP example's server.
pub fn httpserve() -> i32 {
    serve_on_free_port(http_server::serve)
}

/// What connection `i` sends: a length and a pattern of its own.
fn payload(i: usize) -> Vec<u8> {
    let len = 1 + (i * 7919) % 3000;
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

/// `echoclient ADDR N`: N connections open at once (all connect before
/// any sends), each sending its own payload, shutting down its writing
/// half, and checking that exactly the same bytes come back.
pub fn echoclient(addr: &str, n: usize) -> i32 {
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echoclient: bad address {addr:?}: {e}");
            return 2;
        }
    };
    if let Err(why) = raise_nofile(n as u64 + 64) {
        println!("skip: {why}");
        return 0;
    }
    let connected = rt_sched::WaitGroup::new();
    let gate = rt_sched::WaitGroup::new();
    connected.add(n as i64);
    gate.add(1);
    let open = Arc::new(AtomicU64::new(0));
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let (connected, gate, open) = (connected.clone(), gate.clone(), open.clone());
            rt_sched::spawn(move || {
                let c = TcpStream::connect_timeout(&addr, Duration::from_secs(60));
                if c.is_ok() {
                    open.fetch_add(1, Ordering::Relaxed);
                }
                connected.done();
                gate.wait();
                let mut c = c.map_err(|e| format!("connect: {e}"))?;
                let want = payload(i);
                c.write_all(&want).map_err(|e| format!("write: {e}"))?;
                c.shutdown(Shutdown::Write)
                    .map_err(|e| format!("shutdown: {e}"))?;
                let mut got = Vec::with_capacity(want.len());
                c.read_to_end(&mut got).map_err(|e| format!("read: {e}"))?;
                if got != want {
                    return Err(format!(
                        "{} bytes back for {} sent, or different",
                        got.len(),
                        want.len()
                    ));
                }
                Ok(want.len() as u64)
            })
        })
        .collect();
    connected.wait();
    let at_once = open.load(Ordering::Relaxed);
    gate.done();
    let (mut ok, mut bytes, mut first_err) = (0, 0u64, None);
    for (i, h) in hs.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(b)) => {
                ok += 1;
                bytes += b;
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(format!("connection {i}: {e}"));
            }
            Err(_) => {
                first_err.get_or_insert(format!("connection {i}: panicked"));
            }
        }
    }
    let want: u64 = (0..n).map(|i| payload(i).len() as u64).sum();
    println!("open at once: {at_once}");
    println!("connections: {n} exact: {ok} bytes: {bytes} of {want}");
    if let Some(e) = first_err {
        println!("first error: {e}");
    }
    if ok == n && bytes == want && at_once == n as u64 {
        0
    } else {
        1
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// `netcycle N`: N connect/accept/close cycles (4 client goroutines, the
/// server closing first); the open descriptors are the same before and
/// after, and resident memory grows by less than 64 MiB.
pub fn netcycle(n: usize) -> i32 {
    let l = Arc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let addr = l.local_addr().expect("addr");
    let l2 = l.clone();
    let server = rt_sched::spawn(move || rt_net::serve(&l2, drop));
    let cycle = move |count: usize| -> Result<(), String> {
        for _ in 0..count {
            let mut c = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
            let mut b = [0u8; 1];
            match c.read(&mut b) {
                Ok(0) => {}
                r => return Err(format!("expected end-of-file, got {r:?}")),
            }
        }
        Ok(())
    };
    // Warm up: the poller's descriptor, pools and caches exist afterwards.
    if let Err(e) = cycle(1000) {
        println!("warm-up: {e}");
        return 1;
    }
    let (fds0, rss0) = (open_fds(), rss_kib());
    let workers = 4;
    let hs: Vec<_> = (0..workers)
        .map(|w| {
            let count = n / workers + usize::from(w < n % workers);
            rt_sched::spawn(move || cycle(count))
        })
        .collect();
    let mut errs = Vec::new();
    for h in hs {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errs.push(e),
            Err(_) => errs.push("worker panicked".into()),
        }
    }
    let (fds1, rss1) = (open_fds(), rss_kib());
    l.close().expect("close");
    let served = server.join();
    println!("cycles: {n} errors: {}", errs.len());
    if let Some(e) = errs.first() {
        println!("first error: {e}");
    }
    println!("open descriptors before: {fds0} after: {fds1}");
    let grew = rss1.saturating_sub(rss0);
    println!("resident memory grew by {grew} KiB");
    println!(
        "server: {}",
        if matches!(served, Ok(Ok(()))) {
            "stopped"
        } else {
            "FAILED"
        }
    );
    if errs.is_empty() && fds0 == fds1 && grew < 64 * 1024 && matches!(served, Ok(Ok(()))) {
        0
    } else {
        1
    }
}
