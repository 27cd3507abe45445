//! One run of a server workload: start the impl as a server, drive it from another process
//! with the variant's [`Load`], take the load generator's number, stop the server.
//!
//! The server prints `listening=<addr>` as its first stdout line once it accepts connections.
//! Pinned variants put the server on CPU 0 and the load generator on CPU 1 (`taskset`), so
//! neither steals the other's core; unpinned ones let the kernel place both.
//!
//! Numbers are time per operation, so that below 1 still means rt wins: `net-client echo`
//! prints ns per round trip; for `wrk` the harness turns `Requests/sec` into ns per request;
//! `net-client idle` holds its connections open while the harness reads the server's resident
//! set, and the number is bytes per connection.

use crate::plan::{Load, Tool};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A started server, killed when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(program: &Path, pin: Option<u32>) -> Command {
    match pin {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Resident set of `pid` in bytes (`VmRSS`).
fn rss_bytes(pid: u32) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read the server's status: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| "no VmRSS line".to_string())
}

/// Starts the server and waits (at most 20 s) for its `listening=` line.
fn start(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    pin: Option<u32>,
) -> Result<(Server, String), String> {
    let mut c = command(program, pin);
    crate::runner::set_env(&mut c, env);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let out = child.stdout.take().expect("piped stdout");
    let server = Server { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so a chatty server never blocks on a full pipe.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the server printed no listening= line within 20 s".to_string())?;
    let line = line.trim();
    if let Some(addr) = line.strip_prefix("listening=") {
        return Ok((server, addr.to_string()));
    }
    Err(if line.is_empty() {
        "the server exited before listening".to_string()
    } else {
        format!("unexpected first line from the server: {line}")
    })
}

/// wrk's script for pipelined requests: `depth` copies of the request in one write.
const PIPELINE_LUA: &str = "init = function(args)\n  local depth = tonumber(args[1]) or 1\n  \
local r = {}\n  for i = 1, depth do r[i] = wrk.format() end\n  req = table.concat(r)\nend\n\
request = function()\n  return req\nend\n";

/// Writes [`PIPELINE_LUA`] to a file of its own and returns its path.
fn pipeline_script() -> Result<std::path::PathBuf, String> {
    let p = std::env::temp_dir().join(format!("rt-bench-pipeline-{}.lua", std::process::id()));
    std::fs::write(&p, PIPELINE_LUA).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    Ok(p)
}

/// The load generator's command for `addr`.
fn load_command(load: &Load, bindir: &Path, addr: &str) -> Result<Command, String> {
    let pin = load.pinned.then_some(1);
    let program = match load.tool {
        Tool::NetClient => bindir.join("net-client"),
        Tool::Wrk => "wrk".into(),
    };
    let script = if load.args.iter().any(|a| a == "{pipeline_lua}") {
        pipeline_script()?.display().to_string()
    } else {
        String::new()
    };
    let mut c = command(&program, pin);
    c.args(
        load.args
            .iter()
            .map(|a| a.replace("{addr}", addr).replace("{pipeline_lua}", &script)),
    );
    Ok(c)
}

/// Runs a child to its end (killed after `timeout`) and returns its stdout.
fn output(mut c: Command, timeout: Duration) -> Result<String, String> {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot start the load: {e}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(timeout).is_err() {
            // SAFETY: kill has no memory preconditions; a stale pid only risks
            // signalling nothing (the child is reaped after this thread is told).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let st = child.wait().map_err(|e| e.to_string())?;
    let _ = tx.send(());
    if !st.success() {
        return Err(format!("load generator failed ({st}): {}", err.trim()));
    }
    Ok(out)
}

/// `Requests/sec` of a wrk report, refusing runs with errors or non-2xx answers.
pub fn wrk_requests_per_sec(out: &str) -> Result<f64, String> {
    if let Some(l) = out.lines().find(|l| l.contains("Non-2xx or 3xx responses")) {
        return Err(format!("wrk: {}", l.trim()));
    }
    if let Some(l) = out.lines().find(|l| l.contains("Socket errors")) {
        // Connection: close runs see the server close after every answer; read errors and
        // timeouts are real failures either way.
        let bad = l.split(',').any(|part| {
            let part = part.trim();
            (part.starts_with("read") || part.starts_with("write") || part.starts_with("timeout"))
                && part.split_whitespace().nth(1).is_some_and(|n| n != "0")
        });
        if bad {
            return Err(format!("wrk: {}", l.trim()));
        }
    }
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|r| *r > 0.0)
        .ok_or_else(|| "wrk printed no Requests/sec".to_string())
}

/// One measured run of a server variant: `(value, unit)`.
pub fn run(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    load: &Load,
    bindir: &Path,
    timeout: Duration,
) -> Result<(f64, String), String> {
    let (server, addr) = start(program, args, env, load.pinned.then_some(0))?;
    let pid = server.child.id();
    match load.tool {
        Tool::Wrk => {
            let out = output(load_command(load, bindir, &addr)?, timeout)?;
            let rps = wrk_requests_per_sec(&out)?;
            Ok((1e9 / rps, "ns/req".to_string()))
        }
        Tool::NetClient if load.args.first().map(String::as_str) == Some("idle") => {
            let before = rss_bytes(pid)?;
            let mut c = load_command(load, bindir, &addr)?;
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c
                .spawn()
                .map_err(|e| format!("cannot start net-client: {e}"))?;
            let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let Some(n) = first.strip_prefix("open conns=") else {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("net-client idle: {first}"));
            };
            let n: u64 = n.trim().parse().map_err(|_| format!("bad line {first}"))?;
            // Let the server settle what it allocated per connection.
            std::thread::sleep(Duration::from_millis(200));
            let after = rss_bytes(pid)?;
            if let Some(mut i) = child.stdin.take() {
                let _ = i.write_all(b"done\n");
            }
            let _ = child.wait();
            Ok((
                after.saturating_sub(before) as f64 / n.max(1) as f64,
                "B/conn".to_string(),
            ))
        }
        Tool::NetClient => {
            let out = output(load_command(load, bindir, &addr)?, timeout)?;
            match crate::proto::Line::parse_output(&out) {
                Some(crate::proto::Line::Value { value, unit }) => Ok((value, unit)),
                Some(crate::proto::Line::None { reason }) => Err(reason),
                None => Err(format!("net-client printed no value line: {}", out.trim())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 2s test @ http://127.0.0.1:8080/\n  1 threads and 256 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.00ms  100.00us   2.00ms   90.00%\n\
  80000 requests in 2.00s, 9.00MB read\nRequests/sec:  40000.50\nTransfer/sec:      4.50MB\n";

    #[test]
    fn wrk_rate_is_read() {
        assert_eq!(wrk_requests_per_sec(WRK), Ok(40000.5));
    }

    #[test]
    fn wrk_errors_refuse_the_run() {
        let bad = WRK.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 12\nRequests/sec",
        );
        assert!(wrk_requests_per_sec(&bad).is_err());
        let sock = WRK.replace(
            "Requests/sec",
            "  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec",
        );
        assert!(wrk_requests_per_sec(&sock).is_err());
        let fine = WRK.replace(
            "Requests/sec",
            "  Socket errors: connect 0, read 0, write 0, timeout 0\nRequests/sec",
        );
        assert_eq!(wrk_requests_per_sec(&fine), Ok(40000.5));
        assert!(wrk_requests_per_sec("nothing").is_err());
    }
}
