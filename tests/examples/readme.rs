//! The program from the README: a runtime program in a few lines. Linked
//! normally, so it enters through libc's start code and rt's C-ABI `main`
//! (`cargo run -p rt-tests --example readme`).
#![no_main]

use rt_sched::{select, Chan};
use std::time::Duration;

fn main() {
    let ch = Chan::new(0);
    let tx = ch.clone();
    rt_sched::go(move || tx.send("hello from a goroutine"));
    select! {
        recv(ch) -> msg => println!("{}", msg.unwrap()),
        default(Duration::from_secs(5)) => println!("no hello within 5 s"),
    }
}

rt_entry::main!(main);
