//! rt-net (rt-demo `net`, `echoserve`/`echoclient`, `httpserve`,
//! `netcycle`): every check exact; "promptly" is only a generous upper
//! bound, never a speed claim.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn net_checks_at_gomaxprocs_1_2_4() {
    for procs in ["1", "2", "4"] {
        let o = run(RT0, ["net"], &[("GOMAXPROCS", procs)]);
        let out = out(&o);
        assert_eq!(status(&o), 0, "GOMAXPROCS={procs}:\n{out}\n{}", err(&o));
        assert_eq!(out.matches(": ok\n").count(), 29, "{out}");
        assert!(!out.contains("FAILED"), "{out}");
    }
}

/// Starts an rt-demo server scenario and returns it with its address.
fn server(scenario: &str) -> (Running, String) {
    let mut c = command(RT0);
    c.arg(scenario);
    let mut srv = Running::start(c);
    let line = srv.line(60);
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{scenario}: unexpected first line {line:?}"))
        .to_string();
    (srv, addr)
}

#[test]
fn echo_server_ten_thousand_connections_at_once() {
    let (srv, addr) = server("echoserve");
    let (code, out, err) = run_bounded(RT0, &["echoclient", &addr, "10000"], &[], 240);
    drop(srv);
    if let Some(why) = out.strip_prefix("skip: ") {
        eprintln!("echo_server_ten_thousand_connections_at_once skipped: {why}");
        return;
    }
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("open at once: 10000\n"), "{out}");
    assert!(
        out.contains("connections: 10000 exact: 10000 bytes: 15004000 of 15004000\n"),
        "{out}"
    );
}

#[test]
fn no_descriptor_leak_after_100k_connections() {
    let o = run(RT0, ["netcycle", "100000"], &[]);
    let out = out(&o);
    assert_eq!(status(&o), 0, "{out}\n{}", err(&o));
    assert!(out.contains("cycles: 100000 errors: 0\n"), "{out}");
    let fds: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("open descriptors before:"))
        .expect("descriptor line")
        .split_whitespace()
        .collect();
    assert_eq!(fds[3], fds[5], "{out}");
}

/// Sends `req` on a new connection and reads until the server closes it
/// (or 20 s pass, which fails the test).
fn exchange(addr: &str, req: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The server may answer and close before reading everything: a failed
    // write is fine, the answer is what counts.
    let _ = c.write_all(req);
    let mut v = Vec::new();
    if let Err(e) = c.read_to_end(&mut v) {
        // A reset after the answer arrived still leaves the answer in `v`.
        assert!(
            !v.is_empty(),
            "no answer to {:?}: {e}",
            String::from_utf8_lossy(&req[..req.len().min(80)])
        );
    }
    String::from_utf8_lossy(&v).into_owned()
}

fn statuses(resp: &str) -> Vec<&str> {
    resp.split("HTTP/1.1 ")
        .skip(1)
        .map(|r| r.split("\r\n").next().unwrap_or(""))
        .collect()
}

/// Reads one response with a body of `Content-Length` bytes.
fn read_response(c: &mut TcpStream) -> String {
    let mut v = Vec::new();
    let mut b = [0u8; 1024];
    loop {
        let n = c.read(&mut b).expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&v));
        v.extend_from_slice(&b[..n]);
        let s = String::from_utf8_lossy(&v).into_owned();
        if let Some(end) = s.find("\r\n\r\n") {
            let len: usize = s
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|l| l.trim().parse().ok())
                .expect("content length");
            if s.len() >= end + 4 + len {
                return s;
            }
        }
    }
}

#[test]
fn http_example_pipelining_keepalive_and_bad_input() {
    let (srv, addr) = server("httpserve");

    // Pipelined: three requests in one write, answered in order.
    let r = exchange(
        &addr,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n\
          GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(statuses(&r), ["200 OK", "404 Not Found", "200 OK"], "{r}");
    assert_eq!(r.matches("Hello, World!").count(), 2, "{r}");

    // Keep-alive: two requests, one at a time, on one connection.
    let mut c = TcpStream::connect(&addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    for _ in 0..2 {
        c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .expect("write");
        let r = read_response(&mut c);
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("Hello, World!"),
            "{r}"
        );
    }
    drop(c);

    // Malformed requests: 400 and the connection closed.
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(10_000));
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
    let junk: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: [(&[u8], &str); 7] = [
        (b"GARBAGE\r\n\r\n", "400 Bad Request"),
        (b"GET / HTTP/9.9\r\n\r\n", "400 Bad Request"),
        (b"\x00\x01\x02\x03\r\n\r\n", "400 Bad Request"),
        (
            b"GET / HTTP/1.1\r\nContent-Length: lots\r\n\r\n",
            "400 Bad Request",
        ),
        (big.as_bytes(), "431 Request Header Fields Too Large"),
        (many.as_bytes(), "431 Request Header Fields Too Large"),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nBad Header\r\n\r\n",
            "400 Bad Request",
        ),
    ];
    for (req, want) in cases {
        let r = exchange(&addr, req);
        let got = statuses(&r);
        assert_eq!(got.last().copied(), Some(want), "{r}");
    }
    // Binary junk: 400 or 431, whichever the parser meets first.
    let r = exchange(&addr, &junk);
    let got = statuses(&r);
    assert!(
        got == ["400 Bad Request"] || got == ["431 Request Header Fields Too Large"],
        "{r}"
    );

    // The server lives on.
    let r = exchange(&addr, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(statuses(&r), ["200 OK"], "{r}");
    drop(srv);
}
