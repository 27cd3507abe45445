//! The program from the README: a runtime program in a few lines. Linked
//! normally, so it enters through libc's start code and rt's C-ABI `main`
//! (`cargo run -p rt-tests --example readme`).
#![no_main]

fn main() {
    let ch = rt_sched::Chan::new(0);
    let tx = ch.clone();
    rt_sched::go(move || tx.send("hello from a goroutine"));
    println!("{}", ch.recv().unwrap());
}

rt_entry::main!(main);
