//! rt-net outside an rt program: on plain threads the sockets block the
//! thread in `poll(2)`; closing still wakes a blocked call, and deadlines,
//! which need the runtime's timers, are an error rather than a crash.
//! (Everything that needs goroutines runs in rt-demo: tests/tests/net.rs.)

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rt_net::{is_closed_error, TcpListener, TcpStream, UnixStream};

#[test]
fn echo_between_threads() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = l.accept().unwrap();
        assert_eq!(Some(peer), s.peer_addr().ok());
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        s.write_all(&v).unwrap();
        v.len()
    });
    let c = Arc::new(TcpStream::connect(addr).unwrap());
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    // Written from a second thread while this one reads.
    let (c2, d2) = (c.clone(), data.clone());
    let w = std::thread::spawn(move || {
        (&*c2).write_all(&d2).unwrap();
        c2.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&*c).read_to_end(&mut back).unwrap();
    w.join().unwrap();
    assert_eq!(server.join().unwrap(), data.len());
    assert!(back == data, "{} bytes back", back.len());
}

#[test]
fn close_wakes_a_blocked_thread() {
    let (a, _b) = UnixStream::pair().unwrap();
    let a = Arc::new(a);
    let a2 = a.clone();
    let r = std::thread::spawn(move || (&*a2).read(&mut [0u8; 4]));
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    a.close().unwrap();
    let res = r.join().unwrap();
    assert!(matches!(&res, Err(e) if is_closed_error(e)), "{res:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn deadlines_need_the_runtime() {
    let (a, _b) = UnixStream::pair().unwrap();
    let e = a.set_read_deadline(Some(Instant::now())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = a
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    // Clearing is always allowed.
    a.set_deadline(None).unwrap();
    a.set_read_timeout(None).unwrap();
}

#[test]
fn try_read_buf_fills_the_spare_capacity() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut buf = Vec::with_capacity(8);
    buf.extend_from_slice(b"ab");
    let spare = buf.capacity() - buf.len();
    let e = a.try_read_buf(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert_eq!(buf, b"ab");
    let data: Vec<u8> = (0..spare as u8 + 3).map(|i| b'c' + i).collect();
    (&b).write_all(&data).unwrap();
    assert_eq!(a.try_read_buf(&mut buf).unwrap(), spare);
    assert_eq!(&buf[2..], &data[..spare]);
    // No spare capacity: nothing read, as with an empty slice.
    assert_eq!(a.try_read_buf(&mut buf).unwrap(), 0);
    let mut rest = Vec::with_capacity(64);
    assert_eq!(a.try_read_buf(&mut rest).unwrap(), 3);
    assert_eq!(rest, &data[spare..]);
    drop(b);
    assert_eq!(a.try_read_buf(&mut rest).unwrap(), 0);
    assert_eq!(rest.len(), 3);
}
