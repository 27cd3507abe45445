//! An echo server on rt-net: `cargo run -p rt-net --example echo [ADDR]`
//! (default `127.0.0.1:7000`; port 0 picks a free one). Try it with
//! `nc 127.0.0.1 7000`.
#![no_main]

mod server;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into());
    let l = rt_net::TcpListener::bind(addr.as_str())?;
    println!("listening on {}", l.local_addr()?);
    server::serve(&l)
}

rt_entry::main!(main);
