//! One Envoy run: the same GET through Envoy without a plugin, with the Rust
//! port and with the Go build, one keep-alive connection each, rounds
//! interleaved; per-request wall-clock and Envoy CPU over the plain Envoy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use higress_e2e::{ClusterSpec, EchoUpstream, Gateway, PluginSpec};

use crate::scenarios::EnvoyRequest;

/// How long the run is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnvoyOptions {
    /// Rounds (medians are taken over them).
    pub rounds: usize,
    /// Requests per candidate per round.
    pub requests: usize,
    /// Requests per candidate before the first round.
    pub warmup: usize,
}

/// One candidate's result: medians over the rounds of the difference to
/// plain Envoy in the same round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Overhead {
    /// Median request latency over plain Envoy's, in µs.
    pub latency_us: f64,
    /// Envoy CPU per request over plain Envoy's, in µs.
    pub cpu_us: f64,
}

struct Live {
    gateway: Gateway,
    conn: Client,
    // Per round: (median latency µs, CPU µs per request).
    rounds: Vec<(f64, f64)>,
}

/// Runs `request` through plain Envoy and one Envoy per module in
/// `modules` (name, path, config); returns each module's overhead, or why
/// it could not run.
pub(crate) fn run(
    request: &EnvoyRequest,
    modules: &[(String, PathBuf, String)],
    options: EnvoyOptions,
) -> Result<Vec<Result<Overhead, String>>, String> {
    let upstream = EchoUpstream::start().map_err(|e| e.to_string())?;
    let start = |plugin: Option<(&String, &PathBuf, &String)>| -> Result<Live, String> {
        let mut builder = Gateway::builder()
            .name(format!(
                "go-compare-{}",
                plugin.map_or("none", |(n, _, _)| n.as_str())
            ))
            .concurrency(1)
            // V8 compiles a 6 MB Go module for many seconds on a busy VM.
            .ready_timeout(Duration::from_secs(180))
            .log_level("wasm:warn")
            .cluster(ClusterSpec::new("echo", upstream.port()));
        if let Some((name, path, config)) = plugin {
            builder = builder.plugin(PluginSpec::new(name.clone(), path.clone(), config.clone()));
        }
        let gateway = builder.start().map_err(|e| {
            let text = e.to_string();
            let reason = text
                .lines()
                .rfind(|l| l.contains("wasm") && (l.contains("error") || l.contains("critical")))
                .map(str::to_owned);
            reason.unwrap_or_else(|| first_line(&text))
        })?;
        let conn = Client::connect(&gateway)?;
        Ok(Live {
            gateway,
            conn,
            rounds: Vec::new(),
        })
    };
    let mut base = start(None)?;
    let mut live: Vec<Result<Live, String>> = modules
        .iter()
        .map(|(n, p, c)| start(Some((n, p, c))))
        .collect();
    let raw = request_bytes(request);
    for _ in 0..options.warmup {
        base.conn.send(&raw, None)?;
    }
    for l in live.iter_mut().flatten() {
        for _ in 0..options.warmup {
            l.conn.send(&raw, Some(request.marker))?;
        }
    }
    for round in 0..options.rounds {
        // Rotate who goes first.
        let n = live.len() + 1;
        for k in 0..n {
            let slot = (k + round) % n;
            let target = if slot == 0 {
                Some(&mut base)
            } else {
                live.get_mut(slot - 1).and_then(|l| l.as_mut().ok())
            };
            let Some(l) = target else { continue };
            let marker = (slot != 0).then_some(request.marker);
            let measured = measure(l, &raw, marker, options.requests)?;
            l.rounds.push(measured);
        }
    }
    let out = live
        .into_iter()
        .map(|l| {
            let l = l?;
            let diff = |f: fn(&(f64, f64)) -> f64| {
                let d: Vec<f64> = l
                    .rounds
                    .iter()
                    .zip(&base.rounds)
                    .map(|(a, b)| f(a) - f(b))
                    .collect();
                median(&d)
            };
            let result = Overhead {
                latency_us: diff(|r| r.0),
                cpu_us: diff(|r| r.1),
            };
            let dir = l.gateway.dir().to_path_buf();
            drop(l);
            let _ = std::fs::remove_dir_all(dir);
            Ok(result)
        })
        .collect();
    let dir = base.gateway.dir().to_path_buf();
    drop(base);
    let _ = std::fs::remove_dir_all(dir);
    Ok(out)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

fn measure(
    l: &mut Live,
    raw: &[u8],
    marker: Option<&str>,
    requests: usize,
) -> Result<(f64, f64), String> {
    let pid = l.gateway.pid();
    let cpu_before = pid.and_then(cpu_ns);
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        l.conn.send(raw, marker)?;
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let cpu_after = pid.and_then(cpu_ns);
    let cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) if requests > 0 => b.saturating_sub(a) as f64 / 1000.0 / requests as f64,
        _ => f64::NAN,
    };
    Ok((median(&latencies), cpu))
}

/// CPU time of every thread of `pid` so far, in ns
/// (`/proc/<pid>/task/*/schedstat`, first field).
fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// The median (`NaN` for no values).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v.get(mid).copied().unwrap_or(f64::NAN)
    } else {
        match (v.get(mid - 1), v.get(mid)) {
            (Some(a), Some(b)) => (a + b) / 2.0,
            _ => f64::NAN,
        }
    }
}

fn request_bytes(request: &EnvoyRequest) -> Vec<u8> {
    let mut text = format!("GET {} HTTP/1.1\r\n", request.path);
    for (name, value) in request.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// A keep-alive HTTP/1.1 client on one connection.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(gateway: &Gateway) -> Result<Self, String> {
        let stream =
            TcpStream::connect(gateway.listener_addr()).map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends `raw`, reads the whole response; it must be a 200 whose body
    /// holds `marker`.
    fn send(&mut self, raw: &[u8], marker: Option<&str>) -> Result<(), String> {
        self.writer
            .write_all(raw)
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        let status = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut length: Option<usize> = None;
        let mut chunked = false;
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                let value = value.trim();
                if name == "content-length" {
                    length = value.parse().ok();
                } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
            }
        }
        let body = if chunked {
            self.read_chunked()?
        } else {
            let mut body = vec![0; length.unwrap_or(0)];
            self.reader
                .read_exact(&mut body)
                .map_err(|e| format!("read body: {e}"))?;
            body
        };
        let body = String::from_utf8_lossy(&body);
        if status != "200" {
            return Err(format!("status {status}: {body}"));
        }
        if let Some(marker) = marker {
            if !body.contains(marker) {
                return Err(format!("the upstream did not see {marker}: {body}"));
            }
        }
        Ok(())
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            let mut chunk = vec![0; size + 2];
            self.reader
                .read_exact(&mut chunk)
                .map_err(|e| format!("read chunk: {e}"))?;
            chunk.truncate(size);
            body.extend_from_slice(&chunk);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}
