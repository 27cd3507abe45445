//! An HTTP/1.1 server on rt-net: `cargo run -p rt-net --example http
//! [ADDR]` (default `127.0.0.1:8080`). `curl http://127.0.0.1:8080/` says
//! "Hello, World!"; keep-alive and pipelined requests are served.
#![no_main]

mod server;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let l = rt_net::TcpListener::bind(addr.as_str())?;
    println!("listening on {}", l.local_addr()?);
    server::serve(&l)
}

rt_entry::main!(main);
