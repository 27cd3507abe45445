//! `peer-may`: the `may` impl — may's stackful coroutines standing in for goroutines.
//!
//! Workloads: `boot` (print from one coroutine and join it), `spawn` (a root coroutine spawns
//! `n` coroutines that each bump an atomic; the last fires a `SyncFlag`), `pingpong` (two
//! coroutines over two `may::sync::mpsc` channels — may has no rendezvous channel; with one
//! message in flight the exchange is the same), `yield` (two coroutines calling
//! `coroutine::yield_now`), `parked` (coroutines blocked in `coroutine::park`; RSS delta per
//! coroutine), `tree` (Skynet: one coroutine per node; each inner node's ten children send to
//! it over one `may::sync::mpsc` channel, which is unbounded, so a leaf's send does not wait for
//! its parent), `fanout` (one producer coroutine → `workers` coroutines sharing the receiver of a
//! `may::sync::mpmc` channel → the collecting root coroutine over a `may::sync::mpsc` channel;
//! may's channels are unbounded, so each is bounded at `cap` by a `may::sync::Semphore` of
//! `cap` permits: a sender takes one before sending, its receiver returns it after receiving).
//! `gomaxprocs=k` sets may's worker count; without it may's default is used.
//!
//! Every coroutine body here touches only atomics, may's own synchronisation and heap data it
//! owns — no thread-locals — and needs far less than may's default stack; that is what makes
//! each `may::coroutine::spawn` sound.

use may::coroutine::{self, JoinHandle};
use may::sync::{mpmc, mpsc, Semphore, SyncFlag};
use rt_bench::kernels::{
    check_fanout, fanout_op, fanout_sum, tree_nodes, tree_sum, TREE_FANOUT, TREE_MAX_LEAVES,
};
use rt_bench::mem::rss_bytes;
use rt_bench::proto::{emit, fail, not_applicable, Args};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spawns a coroutine.
fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: see the module doc: no coroutine body in this binary uses thread-local storage
    // or needs more than may's default stack.
    unsafe { coroutine::spawn(f) }
}

fn join<T>(h: JoinHandle<T>) -> T {
    h.join().unwrap_or_else(|_| fail("a coroutine panicked"))
}

fn main() {
    let a = Args::from_env();
    if a.keys.contains_key("gomaxprocs") {
        let p = a.count_or_exit("gomaxprocs", 1);
        may::config().set_workers(p as usize);
    }
    match a.workload.as_str() {
        "boot" => join(go(|| println!("hello from may"))),
        "spawn" => spawn(a.count_or_exit("n", 1_000_000)),
        "pingpong" => pingpong(a.count_or_exit("n", 1_000_000)),
        "yield" => yields(a.count_or_exit("n", 1_000_000)),
        "parked" => parked(a.count_or_exit("n", 30_000)),
        "tree" => tree(a.count_or_exit("n", 10_000)),
        "fanout" => fanout(
            a.count_or_exit("n", 10_000_000),
            a.count_or_exit("workers", 4),
            a.count_or_exit("cap", 128),
        ),
        "serve-echo" => serve_echo(),
        "serve-http" => serve_http(),
        w => not_applicable(w, "peer-may"),
    }
}

/// `serve-echo`: a coroutine per connection echoing its bytes back.
fn serve_echo() {
    use std::io::{Read, Write};
    let l =
        may::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let addr = l.local_addr().unwrap_or_else(|e| fail(&e.to_string()));
    println!("listening={addr}");
    let _ = std::io::stdout().flush();
    join(go(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else {
                continue;
            };
            let _ = s.set_nodelay(true);
            drop(go(move || {
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }));
        }
    }));
}

#[derive(Clone)]
struct Hello;

impl may_minihttp::HttpService for Hello {
    fn call(
        &mut self,
        req: may_minihttp::Request,
        rsp: &mut may_minihttp::Response,
    ) -> std::io::Result<()> {
        if req.path() == "/" {
            rsp.header("Content-Type: text/plain").body("Hello, World!");
        } else {
            rsp.status_code(404, "Not Found").body("404 page not found");
        }
        Ok(())
    }
}

/// `serve-http`: may_minihttp answering "Hello, World!" on `/` (its own port choice is not
/// reported, so a free loopback port is picked first).
fn serve_http() {
    use std::io::Write;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| fail(&format!("bind: {e}")))
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = may_minihttp::HttpServer(Hello)
        .start(&addr)
        .unwrap_or_else(|e| fail(&format!("may_minihttp: {e}")));
    println!("listening={addr}");
    let _ = std::io::stdout().flush();
    let _ = server.join();
}

fn spawn(n: u64) {
    let ns = join(go(move || {
        let count = Arc::new(AtomicU64::new(0));
        let done = Arc::new(SyncFlag::new());
        let t0 = Instant::now();
        for _ in 0..n {
            let count = Arc::clone(&count);
            let done = Arc::clone(&done);
            drop(go(move || {
                if count.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    done.fire();
                }
            }));
        }
        done.wait();
        t0.elapsed().as_nanos() as f64 / n as f64
    }));
    emit(ns, "ns");
}

fn pingpong(n: u64) {
    let ns = join(go(move || {
        let (ping_tx, ping_rx) = mpsc::channel::<u64>();
        let (pong_tx, pong_rx) = mpsc::channel::<u64>();
        let partner = go(move || {
            while let Ok(v) = ping_rx.recv() {
                if pong_tx.send(v).is_err() {
                    break;
                }
            }
        });
        let t0 = Instant::now();
        for i in 0..n {
            if ping_tx.send(i).is_err() || pong_rx.recv().is_err() {
                return None;
            }
        }
        let el = t0.elapsed();
        drop(ping_tx);
        let _ = partner.join();
        Some(el.as_nanos() as f64 / n as f64)
    }));
    match ns {
        Some(ns) => emit(ns, "ns"),
        None => fail("partner coroutine went away"),
    }
}

fn yields(n: u64) {
    let t0 = Instant::now();
    let hs: Vec<_> = (0..2)
        .map(|_| {
            go(move || {
                for _ in 0..n {
                    coroutine::yield_now();
                }
            })
        })
        .collect();
    for h in hs {
        join(h);
    }
    emit(t0.elapsed().as_nanos() as f64 / (2 * n) as f64, "ns");
}

fn parked(n: u64) {
    // Start the scheduler before the baseline so its own memory is not counted.
    join(go(|| ()));
    let before = rss_bytes().unwrap_or_else(|e| fail(&e));
    let waiting = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let waiting = Arc::clone(&waiting);
        hs.push(go(move || {
            waiting.fetch_add(1, Ordering::AcqRel);
            coroutine::park();
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while waiting.load(Ordering::Acquire) < n {
        if Instant::now() > deadline {
            fail("coroutines did not all start within 60 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let the last coroutines get from the counter into park().
    std::thread::sleep(Duration::from_millis(20));
    let after = rss_bytes().unwrap_or_else(|e| fail(&e));
    let per = after.saturating_sub(before) as f64 / n as f64;
    for h in &hs {
        h.coroutine().unpark();
    }
    for h in hs {
        join(h);
    }
    emit(per, "B");
}

/// One Skynet node as a coroutine: a leaf sends its number; an inner node spawns its children,
/// all sending on one channel, sums what they send and sends the sum up.
fn skynet(up: mpsc::Sender<u64>, num: u64, size: u64) {
    drop(go(move || {
        if size == 1 {
            let _ = up.send(num);
            return;
        }
        let (tx, rx) = mpsc::channel::<u64>();
        let step = size / TREE_FANOUT;
        for i in 0..TREE_FANOUT {
            skynet(tx.clone(), num + i * step, step);
        }
        drop(tx);
        let mut sum = 0u64;
        for _ in 0..TREE_FANOUT {
            match rx.recv() {
                Ok(v) => sum += v,
                Err(_) => return,
            }
        }
        let _ = up.send(sum);
    }));
}

fn tree(leaves: u64) {
    let Some(nodes) = tree_nodes(leaves) else {
        fail(&format!(
            "tree n={leaves} is not a power of {TREE_FANOUT} up to {TREE_MAX_LEAVES}"
        ));
    };
    let (ns, sum) = join(go(move || {
        let (tx, rx) = mpsc::channel::<u64>();
        let t0 = Instant::now();
        skynet(tx, 0, leaves);
        let sum = rx.recv().ok();
        (t0.elapsed().as_nanos() as f64 / nodes as f64, sum)
    }));
    match sum {
        Some(s) if s == tree_sum(leaves) => emit(ns, "ns"),
        other => fail(&format!(
            "tree sum {other:?}, expected {}",
            tree_sum(leaves)
        )),
    }
}

fn fanout(n: u64, workers: u64, cap: u64) {
    check_fanout(workers, cap).unwrap_or_else(|e| fail(&e));
    let (ns, sum) = join(go(move || {
        let (in_tx, in_rx) = mpmc::channel::<u64>();
        let (out_tx, out_rx) = mpsc::channel::<u64>();
        let in_room = Arc::new(Semphore::new(cap as usize));
        let out_room = Arc::new(Semphore::new(cap as usize));
        let t0 = Instant::now();
        let room = Arc::clone(&in_room);
        drop(go(move || {
            for i in 0..n {
                room.wait();
                if in_tx.send(i).is_err() {
                    return;
                }
            }
        }));
        for _ in 0..workers {
            let (in_rx, out_tx) = (in_rx.clone(), out_tx.clone());
            let (in_room, out_room) = (Arc::clone(&in_room), Arc::clone(&out_room));
            drop(go(move || {
                while let Ok(v) = in_rx.recv() {
                    in_room.post();
                    out_room.wait();
                    if out_tx.send(fanout_op(v)).is_err() {
                        return;
                    }
                }
            }));
        }
        drop((in_rx, out_tx));
        let mut sum = 0u64;
        for _ in 0..n {
            match out_rx.recv() {
                Ok(v) => sum = sum.wrapping_add(v),
                Err(_) => return (0.0, None),
            }
            out_room.post();
        }
        (t0.elapsed().as_nanos() as f64 / n as f64, Some(sum))
    }));
    match sum {
        Some(s) if s == fanout_sum(n) => emit(ns, "ns"),
        other => fail(&format!("fanout sum {other:?}, expected {}", fanout_sum(n))),
    }
}
