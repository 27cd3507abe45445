//! `peer-tokio`: the `tokio` impl — tokio tasks standing in for goroutines.
//!
//! Workloads: `boot` (build the multi-thread runtime, print inside `block_on`), `spawn` (tasks
//! that each bump an atomic; the last notifies the root task; `gomaxprocs=1` is the
//! current_thread runtime, `gomaxprocs=k>1` the multi_thread runtime with `k` workers),
//! `pingpong` (two tasks over two `mpsc::channel(1)`, multi_thread, default workers),
//! `yield` (two tasks alternating with `task::yield_now` on current_thread), `parked` (tasks
//! awaiting one `Notify`, current_thread; RSS delta per task), `tree` (Skynet: one task per
//! node, each inner node's ten children send to it over one `mpsc::channel(1)`), `fanout` (one
//! producer task → `workers` tasks sharing the receiver of an `mpsc::channel(cap)` behind a
//! `tokio::sync::Mutex`, tokio having no multi-consumer channel → a collecting root task over a
//! second `mpsc::channel(cap)`). `tree` and `fanout` take `gomaxprocs=` as `spawn` does.

use rt_bench::kernels::{
    check_fanout, fanout_op, fanout_sum, tree_nodes, tree_sum, TREE_FANOUT, TREE_MAX_LEAVES,
};
use rt_bench::mem::rss_bytes;
use rt_bench::proto::{emit, fail, not_applicable, Args};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::runtime::{Builder, Runtime};
use tokio::sync::{mpsc, Notify};

fn runtime(workers: u64) -> Runtime {
    let r = if workers <= 1 {
        Builder::new_current_thread().build()
    } else {
        Builder::new_multi_thread()
            .worker_threads(workers as usize)
            .build()
    };
    r.unwrap_or_else(|e| fail(&format!("cannot build tokio runtime: {e}")))
}

fn default_runtime() -> Runtime {
    Builder::new_multi_thread()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot build tokio runtime: {e}")))
}

fn main() {
    let a = Args::from_env();
    match a.workload.as_str() {
        "boot" => default_runtime().block_on(async { println!("hello from tokio") }),
        "spawn" => spawn(
            a.count_or_exit("n", 1_000_000),
            a.count_or_exit("gomaxprocs", 1),
        ),
        "pingpong" => pingpong(a.count_or_exit("n", 1_000_000)),
        "yield" => yields(a.count_or_exit("n", 1_000_000)),
        "parked" => parked(a.count_or_exit("n", 100_000)),
        "tree" => tree(
            a.count_or_exit("n", 1_000_000),
            a.count_or_exit("gomaxprocs", 1),
        ),
        "serve-echo" => serve_echo(a.count_or_exit("gomaxprocs", 1)),
        "serve-http" => serve_http(a.count_or_exit("gomaxprocs", 1)),
        "fanout" => fanout(
            a.count_or_exit("n", 10_000_000),
            a.count_or_exit("workers", 4),
            a.count_or_exit("cap", 128),
            a.count_or_exit("gomaxprocs", 1),
        ),
        w => not_applicable(w, "peer-tokio"),
    }
}

/// Runs `f` as a spawned root task (so it is scheduled like any other task, not on the
/// `block_on` thread) and returns its result.
fn root<F, T>(rt: &Runtime, f: F) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    rt.block_on(rt.spawn(f))
        .unwrap_or_else(|e| fail(&format!("root task failed: {e}")))
}

fn spawn(n: u64, workers: u64) {
    let rt = runtime(workers);
    let ns = root(&rt, async move {
        let count = Arc::new(AtomicU64::new(0));
        let done = Arc::new(Notify::new());
        let t0 = Instant::now();
        for _ in 0..n {
            let count = Arc::clone(&count);
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                if count.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    done.notify_one();
                }
            });
        }
        done.notified().await;
        t0.elapsed().as_nanos() as f64 / n as f64
    });
    emit(ns, "ns");
}

fn pingpong(n: u64) {
    let rt = default_runtime();
    let ns = root(&rt, async move {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
        let partner = tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
        });
        let t0 = Instant::now();
        for i in 0..n {
            if ping_tx.send(i).await.is_err() || pong_rx.recv().await.is_none() {
                return None;
            }
        }
        let el = t0.elapsed();
        drop(ping_tx);
        let _ = partner.await;
        Some(el.as_nanos() as f64 / n as f64)
    });
    match ns {
        Some(ns) => emit(ns, "ns"),
        None => fail("partner task went away"),
    }
}

fn yields(n: u64) {
    let rt = runtime(1);
    let ns = root(&rt, async move {
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..n {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            if t.await.is_err() {
                return None;
            }
        }
        Some(t0.elapsed().as_nanos() as f64 / (2 * n) as f64)
    });
    match ns {
        Some(ns) => emit(ns, "ns"),
        None => fail("yield task failed"),
    }
}

fn parked(n: u64) {
    let rt = runtime(1);
    let r = root(&rt, async move {
        let release = Arc::new(Notify::new());
        let waiting = Arc::new(AtomicU64::new(0));
        let before = rss_bytes()?;
        // Join handles are dropped (tasks detached) so that only the tasks themselves are
        // counted, as with goroutines.
        for _ in 0..n {
            let release = Arc::clone(&release);
            let waiting = Arc::clone(&waiting);
            drop(tokio::spawn(async move {
                let wake = release.notified();
                waiting.fetch_add(1, Ordering::AcqRel);
                wake.await;
            }));
        }
        while waiting.load(Ordering::Acquire) < n {
            tokio::task::yield_now().await;
        }
        let after = rss_bytes()?;
        release.notify_waiters();
        Ok::<f64, String>(after.saturating_sub(before) as f64 / n as f64)
    });
    match r {
        Ok(b) => emit(b, "B"),
        Err(e) => fail(&e),
    }
}

/// One Skynet node as a task: a leaf sends its number; an inner node spawns its children, all
/// sending on one channel, sums what they send and sends the sum up.
fn skynet(up: mpsc::Sender<u64>, num: u64, size: u64) {
    drop(tokio::spawn(async move {
        if size == 1 {
            let _ = up.send(num).await;
            return;
        }
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        let step = size / TREE_FANOUT;
        for i in 0..TREE_FANOUT {
            skynet(tx.clone(), num + i * step, step);
        }
        drop(tx);
        let mut sum = 0u64;
        for _ in 0..TREE_FANOUT {
            match rx.recv().await {
                Some(v) => sum += v,
                None => return,
            }
        }
        let _ = up.send(sum).await;
    }));
}

fn tree(leaves: u64, workers: u64) {
    let Some(nodes) = tree_nodes(leaves) else {
        fail(&format!(
            "tree n={leaves} is not a power of {TREE_FANOUT} up to {TREE_MAX_LEAVES}"
        ));
    };
    let rt = runtime(workers);
    let (ns, sum) = root(&rt, async move {
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        let t0 = Instant::now();
        skynet(tx, 0, leaves);
        let sum = rx.recv().await;
        (t0.elapsed().as_nanos() as f64 / nodes as f64, sum)
    });
    match sum {
        Some(s) if s == tree_sum(leaves) => emit(ns, "ns"),
        other => fail(&format!(
            "tree sum {other:?}, expected {}",
            tree_sum(leaves)
        )),
    }
}

fn fanout(n: u64, workers: u64, cap: u64, threads: u64) {
    check_fanout(workers, cap).unwrap_or_else(|e| fail(&e));
    let rt = runtime(threads);
    let (ns, sum) = root(&rt, async move {
        let (in_tx, in_rx) = mpsc::channel::<u64>(cap as usize);
        let (out_tx, mut out_rx) = mpsc::channel::<u64>(cap as usize);
        let in_rx = Arc::new(tokio::sync::Mutex::new(in_rx));
        let t0 = Instant::now();
        drop(tokio::spawn(async move {
            for i in 0..n {
                if in_tx.send(i).await.is_err() {
                    return;
                }
            }
        }));
        for _ in 0..workers {
            let in_rx = Arc::clone(&in_rx);
            let out_tx = out_tx.clone();
            drop(tokio::spawn(async move {
                loop {
                    let v = in_rx.lock().await.recv().await;
                    let Some(v) = v else { return };
                    if out_tx.send(fanout_op(v)).await.is_err() {
                        return;
                    }
                }
            }));
        }
        drop(out_tx);
        let mut sum = 0u64;
        for _ in 0..n {
            match out_rx.recv().await {
                Some(v) => sum = sum.wrapping_add(v),
                None => return (0.0, None),
            }
        }
        (t0.elapsed().as_nanos() as f64 / n as f64, Some(sum))
    });
    match sum {
        Some(s) if s == fanout_sum(n) => emit(ns, "ns"),
        other => fail(&format!("fanout sum {other:?}, expected {}", fanout_sum(n))),
    }
}

/// A runtime with the I/O driver: current_thread for one worker, else multi_thread.
fn io_runtime(workers: u64) -> Runtime {
    let r = if workers <= 1 {
        Builder::new_current_thread().enable_all().build()
    } else {
        Builder::new_multi_thread()
            .worker_threads(workers as usize)
            .enable_all()
            .build()
    };
    r.unwrap_or_else(|e| fail(&format!("cannot build tokio runtime: {e}")))
}

/// Binds a loopback port and prints it for the harness.
async fn listen() -> tokio::net::TcpListener {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let addr = l.local_addr().unwrap_or_else(|e| fail(&e.to_string()));
    println!("listening={addr}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    l
}

/// `serve-echo`: a task per connection echoing its bytes back.
fn serve_echo(workers: u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    io_runtime(workers).block_on(async {
        let l = listen().await;
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

async fn hello(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<hyper::body::Bytes>>, std::convert::Infallible> {
    let (status, body): (u16, &'static [u8]) = if req.uri().path() == "/" {
        (200, b"Hello, World!")
    } else {
        (404, b"404 page not found")
    };
    let mut r = hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from_static(
        body,
    )));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(r)
}

/// `serve-http`: hyper's HTTP/1 server answering "Hello, World!" on `/`.
fn serve_http(workers: u64) {
    io_runtime(workers).block_on(async {
        let l = listen().await;
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(s),
                        hyper::service::service_fn(hello),
                    )
                    .await;
            });
        }
    })
}
