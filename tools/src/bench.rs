//! The SDK-versus-raw benchmark behind `scripts/bench.sh` (see
//! `docs/benchmark.md` for the method and the latest numbers).
//!
//! Candidates, all in the same Envoy binary with `--concurrency 1`:
//!
//! * `none`: Envoy without any plugin (the baseline);
//! * `sdk`: `examples/my-plugin`, written with the SDK;
//! * `raw`: `tests/plugins/probe-raw`, the same behaviour written directly on
//!   proxy-wasm (same headers read and set, same log lines at the same
//!   levels; `tests/tests/e2e_twins.rs` checks that).
//!
//! The plugin candidates run twice: with Envoy's `wasm` log level at `info`
//! (both really write their two lines per request) and at `warn` (both lines
//! are dropped; the SDK asks the host for its level and skips formatting,
//! proxy-wasm's logger formats each line and the host drops it).
//!
//! Load comes from `wrk` on loopback against a minimal std upstream. Each
//! round runs every candidate once, in a rotated order, so slow drifts of
//! the machine hit all candidates alike; the report gives medians over the
//! rounds. Per-request overhead over `none` is reported three ways: Envoy's
//! CPU time per request (read from `/proc` around each loaded run; the
//! steadiest), the inverse of throughput under load, and the median latency
//! of a single connection (noisy on a shared machine).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use higress_e2e::{
    envoy_binary, http_request_timeout, target_dir, wasm_module, ClusterSpec, Error, Gateway,
    GatewayBuilder, PluginSpec, Result,
};

/// The header value every plugin candidate sets (`x-custom-header`).
pub const BENCH_VALUE: &str = "bench-value";

/// How long and how hard to run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Rounds over all candidates (medians are taken over these).
    pub rounds: usize,
    /// Warm-up load before each candidate's first round.
    pub warmup: Duration,
    /// Length of each latency run (one connection, closed loop).
    pub latency_run: Duration,
    /// Length of each throughput run.
    pub throughput_run: Duration,
    /// Connections of the throughput run.
    pub connections: u32,
    /// Starts per candidate for the time-to-ready median.
    pub ready_samples: usize,
}

impl Default for BenchOptions {
    /// About 4 minutes on 2 cores.
    fn default() -> Self {
        BenchOptions {
            rounds: 5,
            warmup: Duration::from_secs(2),
            latency_run: Duration::from_secs(4),
            throughput_run: Duration::from_secs(4),
            connections: 16,
            ready_samples: 5,
        }
    }
}

/// One candidate: a plugin (or none) and Envoy's `wasm` log level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Short name, e.g. `sdk@info`.
    pub name: String,
    /// Workspace package of the plugin, `None` for plain Envoy.
    pub package: Option<String>,
    /// Envoy's `wasm` log level (`info`, `warn`).
    pub wasm_log_level: String,
}

impl Candidate {
    fn new(name: &str, package: Option<&str>, level: &str) -> Self {
        Candidate {
            name: name.to_owned(),
            package: package.map(str::to_owned),
            wasm_log_level: level.to_owned(),
        }
    }

    /// The kind without the level: `none`, `sdk` or `raw`.
    pub fn kind(&self) -> &str {
        self.name.split('@').next().unwrap_or(&self.name)
    }
}

/// The candidates in report order.
pub fn candidates() -> Vec<Candidate> {
    vec![
        Candidate::new("none", None, "info"),
        Candidate::new("sdk@info", Some("my-plugin"), "info"),
        Candidate::new("raw@info", Some("e2e-probe-raw"), "info"),
        Candidate::new("sdk@warn", Some("my-plugin"), "warn"),
        Candidate::new("raw@warn", Some("e2e-probe-raw"), "warn"),
    ]
}

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WrkRun {
    /// Requests per second.
    pub rps: f64,
    /// Median latency in microseconds.
    pub p50_us: f64,
    /// Mean latency in microseconds.
    pub mean_us: f64,
    /// Requests completed.
    pub requests: u64,
    /// Non-2xx/3xx answers plus socket errors.
    pub errors: u64,
    /// Envoy's CPU time (all its threads) per completed request, µs; 0 if
    /// it could not be read.
    pub envoy_cpu_us: f64,
}

/// Parses a duration as `wrk` prints it (`85.20us`, `1.02ms`, `2.00s`) into
/// microseconds.
pub fn parse_wrk_duration(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000_000.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().map(|n| n * scale)
}

/// Parses `wrk --latency` output.
pub fn parse_wrk(output: &str) -> Result<WrkRun> {
    let mut run = WrkRun::default();
    let mut saw_rps = false;
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rps, ..] => {
                run.rps = rps.parse().unwrap_or(0.0);
                saw_rps = true;
            }
            // Not the "Latency Distribution" heading.
            ["Latency", mean, ..] if parse_wrk_duration(mean).is_some() => {
                run.mean_us = parse_wrk_duration(mean).unwrap_or(0.0);
            }
            ["50%", p50, ..] => run.p50_us = parse_wrk_duration(p50).unwrap_or(0.0),
            [count, "requests", "in", ..] => run.requests = count.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", n, ..] => {
                run.errors += n.parse::<u64>().unwrap_or(0);
            }
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    if !saw_rps {
        return Err(Error::Protocol(format!(
            "wrk printed no Requests/sec:\n{output}"
        )));
    }
    Ok(run)
}

/// Runs `wrk` against `url` for `duration` (whole seconds, at least one) with `connections` connections
/// (one thread) and the header `x-user-id: bench-user`.
pub fn run_wrk(url: &str, connections: u32, duration: Duration) -> Result<WrkRun> {
    let output = Command::new("wrk")
        .args(["-t1", "--latency", "-H", "x-user-id: bench-user"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::io(
                "could not run wrk (install it: apt-get install -y wrk, or use scripts/bench.sh)",
                e,
            )
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(Error::Command {
            command: format!("wrk {url}"),
            output: format!(
                "{}\n{stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    parse_wrk(&stdout)
}

/// The median of `values` (the mean of the middle two for an even count);
/// 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let upper = sorted.get(n / 2).copied().unwrap_or(0.0);
    if n % 2 == 1 {
        upper
    } else {
        let lower = sorted.get(n / 2 - 1).copied().unwrap_or(upper);
        (lower + upper) / 2.0
    }
}

/// A minimal keep-alive HTTP/1.1 upstream that answers `200 ok` to
/// everything and counts requests, and how many carried
/// `x-custom-header: bench-value` (to check each candidate did its work).
#[derive(Debug)]
pub struct FastUpstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    with_header: Arc<AtomicU64>,
}

impl FastUpstream {
    /// Binds `127.0.0.1:0` and serves on a thread per connection.
    pub fn start() -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| Error::io("binding the bench upstream", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bench upstream address", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let with_header = Arc::new(AtomicU64::new(0));
        let (s, r, w) = (
            Arc::clone(&stop),
            Arc::clone(&requests),
            Arc::clone(&with_header),
        );
        std::thread::Builder::new()
            .name("bench-upstream".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (r, w) = (Arc::clone(&r), Arc::clone(&w));
                    let _ = std::thread::Builder::new()
                        .name("bench-conn".into())
                        .spawn(move || serve(stream, &r, &w));
                }
            })
            .map_err(|e| Error::io("spawning the bench upstream", e))?;
        Ok(FastUpstream {
            addr,
            stop,
            requests,
            with_header,
        })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `(requests, requests with x-custom-header: bench-value)` so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::SeqCst),
            self.with_header.load(Ordering::SeqCst),
        )
    }
}

impl Drop for FastUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(stream: TcpStream, requests: &AtomicU64, with_header: &AtomicU64) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    let wanted = format!("x-custom-header: {BENCH_VALUE}");
    let mut line = String::new();
    loop {
        let mut content_length = 0usize;
        let mut marked = false;
        let mut lines = 0usize;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                if lines == 0 {
                    continue;
                }
                break;
            }
            lines += 1;
            if trimmed.eq_ignore_ascii_case(&wanted) {
                marked = true;
            } else if let Some((name, value)) = trimmed.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        if content_length > 0 {
            let mut sink = vec![0u8; content_length];
            if reader.read_exact(&mut sink).is_err() {
                return;
            }
        }
        requests.fetch_add(1, Ordering::Relaxed);
        if marked {
            with_header.fetch_add(1, Ordering::Relaxed);
        }
        if writer
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok",
            )
            .is_err()
        {
            return;
        }
    }
}

/// CPU time of every thread of `pid` so far, in nanoseconds
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

/// Runs `wrk` and adds Envoy's CPU time per request to the result.
fn measured_run(live: &Live, connections: u32, duration: Duration) -> Result<WrkRun> {
    let before = live.pid.and_then(cpu_ns);
    let mut run = run_wrk(&live.url, connections, duration)?;
    let after = live.pid.and_then(cpu_ns);
    if let (Some(before), Some(after)) = (before, after) {
        if run.requests > 0 {
            run.envoy_cpu_us = after.saturating_sub(before) as f64 / 1000.0 / run.requests as f64;
        }
    }
    Ok(run)
}

fn plugin_spec(package: &str) -> Result<PluginSpec> {
    Ok(PluginSpec::new(
        "bench",
        wasm_module(package)?,
        format!(r#"{{"some_field": "{BENCH_VALUE}"}}"#),
    ))
}

fn builder(candidate: &Candidate, upstream_port: u16) -> Result<GatewayBuilder> {
    let mut builder = Gateway::builder()
        .name(format!("bench-{}", candidate.name.replace('@', "-")))
        .concurrency(1)
        .log_level(format!("wasm:{}", candidate.wasm_log_level))
        .cluster(ClusterSpec::new("upstream", upstream_port));
    if let Some(package) = &candidate.package {
        builder = builder.plugin(plugin_spec(package)?);
    }
    Ok(builder)
}

/// Starts Envoy on `bootstrap` and returns the time until its admin `/ready`
/// answered 200 (polled every 2 ms), then kills it.
fn time_to_ready(envoy: &Path, bootstrap: &Value, dir: &Path, sample: usize) -> Result<Duration> {
    ready_with_cpu(envoy, bootstrap, dir, sample).map(|(t, _)| t)
}

/// [`time_to_ready`], with the CPU time all of Envoy's threads had used by
/// then (ns; 0 if `/proc` could not be read): on a loaded machine the wall
/// time waits for cores, the CPU time does not.
fn ready_with_cpu(
    envoy: &Path,
    bootstrap: &Value,
    dir: &Path,
    sample: usize,
) -> Result<(Duration, u64)> {
    let path = dir.join(format!("ready-{sample}.json"));
    let admin_path = dir.join(format!("ready-{sample}.admin"));
    let _ = std::fs::remove_file(&admin_path);
    let text = serde_json::to_string(bootstrap)
        .map_err(|e| Error::Config(format!("bootstrap does not serialize: {e}")))?;
    std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    let reservation =
        TcpListener::bind(("127.0.0.1", 0)).map_err(|e| Error::io("reserving a base id", e))?;
    let base_id = reservation
        .local_addr()
        .map_err(|e| Error::io("reading the reserved port", e))?
        .port();
    let started = Instant::now();
    let child = Command::new(envoy)
        .arg("-c")
        .arg(&path)
        .args(["--concurrency", "1", "--base-id"])
        .arg(base_id.to_string())
        .arg("--admin-address-path")
        .arg(&admin_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io(format!("starting {}", envoy.display()), e))?;
    let mut child = KillOnDrop(child, base_id);
    let deadline = started + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            return Err(Error::EnvoyStart {
                reason: format!("envoy exited with {status}"),
                log: String::new(),
            });
        }
        let admin = std::fs::read_to_string(&admin_path)
            .ok()
            .and_then(|t| t.trim().parse::<SocketAddr>().ok());
        if let Some(admin) = admin {
            let ready =
                http_request_timeout(admin, "GET", "/ready", &[], b"", Duration::from_secs(1))
                    .is_ok_and(|r| r.status == 200);
            if ready {
                let elapsed = started.elapsed();
                return Ok((elapsed, cpu_ns(child.0.id()).unwrap_or(0)));
            }
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout("envoy not ready after 20 s".into()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

struct KillOnDrop(Child, u16);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(format!(
            "/dev/shm/envoy_shared_memory_{}",
            u32::from(self.1) * 10
        ));
    }
}

/// One candidate's medians.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The candidate.
    pub candidate: Candidate,
    /// `.wasm` size in bytes (0 for no plugin).
    pub wasm_bytes: u64,
    /// Median time from starting Envoy to `/ready` answering 200, ms.
    pub ready_ms: f64,
    /// Median Envoy CPU time per request under load (all threads), µs.
    pub cpu_us: f64,
    /// Median requests per second under load.
    pub rps: f64,
    /// Median of the per-round median latencies (1 connection), µs.
    pub p50_us: f64,
    /// Overheads over `none` (medians of per-round differences).
    pub overhead: Overhead,
    /// Every round's runs: `(latency run, throughput run)`.
    pub runs: Vec<(WrkRun, WrkRun)>,
}

/// Per-request overhead of a candidate over Envoy without a plugin, µs,
/// each the median over the rounds of the difference to `none` in the same
/// round.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Overhead {
    /// Envoy CPU time per request, from `/proc` (the steadiest measure).
    pub cpu_us: f64,
    /// From throughput under load: `1e6/rps - 1e6/rps_none`.
    pub throughput_us: f64,
    /// From the median latency of one connection (noisy on a busy machine).
    pub latency_us: f64,
}

/// The whole result.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The options used.
    pub options: BenchOptions,
    /// `envoy --version`.
    pub envoy_version: String,
    /// One row per candidate, in [`candidates`] order.
    pub rows: Vec<Row>,
    /// Wall-clock time of the whole run.
    pub elapsed: Duration,
}

impl Report {
    fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.candidate.name == name)
    }

    /// SDK overhead divided by raw overhead at wasm log level `level`, for
    /// each measure; `None` if a row is missing.
    pub fn ratio(&self, level: &str) -> Option<Overhead> {
        let sdk = self.row(&format!("sdk@{level}"))?.overhead;
        let raw = self.row(&format!("raw@{level}"))?.overhead;
        Some(Overhead {
            cpu_us: sdk.cpu_us / raw.cpu_us,
            throughput_us: sdk.throughput_us / raw.throughput_us,
            latency_us: sdk.latency_us / raw.latency_us,
        })
    }

    /// Median over the rounds of (SDK - raw) Envoy CPU per request at wasm
    /// log level `level`, µs: the SDK's own cost, measured pairwise.
    pub fn sdk_minus_raw_cpu(&self, level: &str) -> Option<f64> {
        let sdk = self.row(&format!("sdk@{level}"))?;
        let raw = self.row(&format!("raw@{level}"))?;
        let diffs: Vec<f64> = sdk
            .runs
            .iter()
            .zip(&raw.runs)
            .map(|((_, a), (_, b))| a.envoy_cpu_us - b.envoy_cpu_us)
            .collect();
        Some(median(&diffs))
    }

    /// The result as a Markdown table plus the SDK/raw ratios.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let c = self.options.connections;
        let _ = writeln!(
            out,
            "| candidate | .wasm | time to ready | Envoy CPU per request | overhead (CPU) | throughput ({c} conns) | overhead (throughput) | p50 latency (1 conn) | overhead (latency) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            let wasm = if row.wasm_bytes == 0 {
                "-".to_owned()
            } else {
                format!("{:.1} KB", row.wasm_bytes as f64 / 1000.0)
            };
            let o = row.overhead;
            let (cpu, thr, lat) = if row.candidate.package.is_none() {
                ("-".to_owned(), "-".to_owned(), "-".to_owned())
            } else {
                (
                    format!("{:+.1} µs", o.cpu_us),
                    format!("{:+.1} µs", o.throughput_us),
                    format!("{:+.1} µs", o.latency_us),
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} ms | {:.1} µs | {} | {:.0} req/s | {} | {:.0} µs | {} |",
                row.candidate.name,
                wasm,
                row.ready_ms,
                row.cpu_us,
                cpu,
                row.rps,
                thr,
                row.p50_us,
                lat
            );
        }
        out.push('\n');
        for level in ["info", "warn"] {
            if let Some(r) = self.ratio(level) {
                let _ = writeln!(
                    out,
                    "SDK/raw overhead ratio at wasm log level {level}: {:.2}x (CPU), {:.2}x (throughput), {:.2}x (latency); SDK - raw: {:+.1} µs CPU per request",
                    r.cpu_us,
                    r.throughput_us,
                    r.latency_us,
                    self.sdk_minus_raw_cpu(level).unwrap_or(f64::NAN)
                );
            }
        }
        out
    }

    /// The result as JSON.
    pub fn json(&self) -> Value {
        let overhead = |o: Overhead| json!({"cpu_us": o.cpu_us, "throughput_us": o.throughput_us, "latency_us": o.latency_us});
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "candidate": r.candidate.name,
                    "package": r.candidate.package,
                    "wasm_log_level": r.candidate.wasm_log_level,
                    "wasm_bytes": r.wasm_bytes,
                    "ready_ms": r.ready_ms,
                    "envoy_cpu_us_per_request": r.cpu_us,
                    "rps": r.rps,
                    "p50_us": r.p50_us,
                    "overhead": overhead(r.overhead),
                    "rounds": r.runs.iter().map(|(l, t)| json!({
                        "latency_run": {"p50_us": l.p50_us, "mean_us": l.mean_us, "rps": l.rps, "requests": l.requests, "envoy_cpu_us": l.envoy_cpu_us},
                        "throughput_run": {"rps": t.rps, "p50_us": t.p50_us, "requests": t.requests, "envoy_cpu_us": t.envoy_cpu_us},
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "envoy_version": self.envoy_version,
            "options": {
                "rounds": self.options.rounds,
                "latency_run_s": self.options.latency_run.as_secs_f64(),
                "throughput_run_s": self.options.throughput_run.as_secs_f64(),
                "connections": self.options.connections,
                "concurrency": 1,
            },
            "elapsed_s": self.elapsed.as_secs_f64(),
            "rows": rows,
            "sdk_raw_ratio": {
                "info": self.ratio("info").map(overhead),
                "warn": self.ratio("warn").map(overhead),
            },
            "sdk_minus_raw_cpu_us": {
                "info": self.sdk_minus_raw_cpu("info"),
                "warn": self.sdk_minus_raw_cpu("warn"),
            },
        })
    }

    /// A bar chart (SVG, no dependencies) of each plugin candidate's
    /// per-request overhead over plain Envoy, by the three measures.
    pub fn svg(&self) -> String {
        const SERIES: [(&str, &str); 3] = [
            ("Envoy CPU per request", "#4e79a7"),
            ("from throughput", "#f28e2b"),
            ("from p50 latency, 1 connection", "#b0b0b0"),
        ];
        let plugins: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.candidate.package.is_some())
            .collect();
        let values = |r: &Row| {
            [
                r.overhead.cpu_us,
                r.overhead.throughput_us,
                r.overhead.latency_us,
            ]
        };
        let max = plugins
            .iter()
            .flat_map(|r| values(r))
            .fold(1.0_f64, f64::max);
        let (left, bar_h, gap, width) = (110.0, 15.0, 14.0, 760.0);
        let plot = width - left - 70.0;
        let top = 60.0;
        let group = SERIES.len() as f64 * bar_h + gap;
        let height = top + plugins.len() as f64 * group + 40.0;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            svg,
            r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="10" y="20" font-size="15" font-weight="bold">Per-request overhead over Envoy without a plugin, µs (medians of {} rounds)</text>"#,
            self.options.rounds
        );
        let mut x = 10.0;
        for (label, color) in SERIES {
            let _ = writeln!(
                svg,
                r#"<rect x="{x}" y="32" width="12" height="12" fill="{color}"/><text x="{}" y="42">{label}</text>"#,
                x + 16.0
            );
            x += 16.0 + label.len() as f64 * 6.6 + 24.0;
        }
        for (i, row) in plugins.iter().enumerate() {
            let y = top + i as f64 * group;
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                left - 8.0,
                y + 1.5 * bar_h + 4.0,
                row.candidate.name
            );
            for (j, (value, (_, color))) in values(row).into_iter().zip(SERIES).enumerate() {
                let w = (value.max(0.0) / max * plot).max(1.0);
                let by = y + j as f64 * bar_h;
                let _ = writeln!(
                    svg,
                    r#"<rect x="{left}" y="{by}" width="{w:.1}" height="{}" fill="{color}"/><text x="{:.1}" y="{:.1}">{value:.1}</text>"#,
                    bar_h - 2.0,
                    left + w + 4.0,
                    by + bar_h - 4.0
                );
            }
        }
        let _ = writeln!(
            svg,
            r##"<text x="10" y="{}" fill="#555">{}; --concurrency 1; wrk on loopback</text>"##,
            height - 12.0,
            xml_escape(&self.envoy_version)
        );
        svg.push_str("</svg>\n");
        svg
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Progress lines go to stderr.
fn note(message: &str) {
    eprintln!("[bench] {message}");
}

/// One started candidate: its gateway and its upstream.
struct Live {
    candidate: Candidate,
    gateway: Gateway,
    upstream: FastUpstream,
    url: String,
    pid: Option<u32>,
    runs: Vec<(WrkRun, WrkRun)>,
}

/// Checks what the upstream saw during a run: every request carried the
/// plugin's header (or none did, without a plugin), and nothing failed.
fn check_run(live: &Live, before: (u64, u64), run: &WrkRun) -> Result<()> {
    let (requests, marked) = live.upstream.counts();
    let (requests, marked) = (requests - before.0, marked - before.1);
    let expected_marked = if live.candidate.package.is_some() {
        requests
    } else {
        0
    };
    if run.errors > 0 || requests == 0 || marked != expected_marked {
        return Err(Error::Protocol(format!(
            "{}: {} errors, upstream saw {requests} requests, {marked} with x-custom-header (expected {expected_marked})",
            live.candidate.name, run.errors
        )));
    }
    Ok(())
}

/// Time-to-ready samples of one candidate, in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyRow {
    /// Candidate name (`none`, `sdk (my-plugin)`, ...).
    pub name: String,
    /// Its `.wasm` size in bytes (0 for no plugin).
    pub wasm_bytes: u64,
    /// Every start, in the order taken.
    pub samples_ms: Vec<f64>,
    /// Envoy's CPU time (all threads) until ready, per start.
    pub cpu_ms: Vec<f64>,
}

/// The result of [`ready_times`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyReport {
    /// One row per candidate, in the order started.
    pub rows: Vec<ReadyRow>,
}

/// The value at quantile `q` (0..=1) of `values`, nearest rank.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank).copied().unwrap_or(0.0)
}

impl ReadyReport {
    /// A Markdown table per candidate: median, quartiles and extremes of
    /// the wall time to ready, the median CPU time, and for each SDK row the
    /// medians of its paired differences to the raw row that follows it
    /// (the samples of one round are taken back to back).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| candidate | .wasm | time to ready (median) | p25-p75 | min-max | CPU until ready (median) | SDK − raw, time (paired median) | SDK − raw, CPU (paired median) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let paired = |a: &[f64], b: &[f64]| {
            let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
            format!("{:+.1} ms", median(&diffs))
        };
        for (i, row) in self.rows.iter().enumerate() {
            let raw = self.rows.get(i + 1).filter(|_| row.name.starts_with("sdk"));
            let (dt, dc) = raw.map_or_else(Default::default, |raw| {
                (
                    paired(&row.samples_ms, &raw.samples_ms),
                    paired(&row.cpu_ms, &raw.cpu_ms),
                )
            });
            let s = &row.samples_ms;
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} ms | {:.1}-{:.1} ms | {:.1}-{:.1} ms | {:.1} ms | {dt} | {dc} |",
                row.name,
                if row.wasm_bytes == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.1} KB", row.wasm_bytes as f64 / 1024.0)
                },
                median(s),
                quantile(s, 0.25),
                quantile(s, 0.75),
                quantile(s, 0.0),
                quantile(s, 1.0),
                median(&row.cpu_ms),
            );
        }
        out
    }
}

/// Time from starting Envoy (`--concurrency 1`, `wasm:warn`) to admin
/// `/ready` answering 200, `samples` starts per candidate: no plugin, then
/// each SDK twin followed by its raw twin (`(name, package)` pairs), all
/// interleaved so that the machine's drifts hit every candidate alike.
pub fn ready_times(samples: usize, twins: &[(&str, &str)]) -> Result<ReadyReport> {
    let envoy = envoy_binary()?;
    let mut rows = vec![ReadyRow {
        name: "none".to_owned(),
        wasm_bytes: 0,
        samples_ms: Vec::new(),
        cpu_ms: Vec::new(),
    }];
    let mut candidates = vec![Candidate::new("none", None, "warn")];
    for (name, package) in twins {
        note(&format!("building {package} (release, wasm32-wasip1)"));
        let path = wasm_module(package)?;
        let wasm_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        rows.push(ReadyRow {
            name: format!("{name} ({package})"),
            wasm_bytes,
            samples_ms: Vec::new(),
            cpu_ms: Vec::new(),
        });
        candidates.push(Candidate::new(name, Some(package), "warn"));
    }
    let dir = target_dir().join("bench").join("ready");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let placeholder = FastUpstream::start()?;
    let bootstraps = candidates
        .iter()
        .map(|c| builder(c, placeholder.port())?.bootstrap())
        .collect::<Result<Vec<_>>>()?;
    for sample in 0..samples {
        // Rotate the order each round.
        let n = bootstraps.len();
        for k in 0..n {
            let i = (k + sample) % n;
            let (Some(bootstrap), Some(row)) = (bootstraps.get(i), rows.get_mut(i)) else {
                continue;
            };
            let (t, cpu) = ready_with_cpu(&envoy, bootstrap, &dir, sample)?;
            row.samples_ms.push(t.as_secs_f64() * 1000.0);
            row.cpu_ms.push(cpu as f64 / 1e6);
        }
        if (sample + 1) % 10 == 0 {
            note(&format!("{} of {samples} rounds", sample + 1));
        }
    }
    drop(placeholder);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ReadyReport { rows })
}

/// Runs the whole benchmark.
pub fn run(options: &BenchOptions) -> Result<Report> {
    let started = Instant::now();
    let envoy = envoy_binary()?;
    let envoy_version = Command::new(&envoy)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default();
    note(&format!("envoy: {envoy_version}"));
    let candidates = candidates();
    for package in ["my-plugin", "e2e-probe-raw"] {
        note(&format!("building {package} (release, wasm32-wasip1)"));
        wasm_module(package)?;
    }

    // Time to ready: fresh Envoys, interleaved.
    let ready_dir = target_dir().join("bench").join("ready");
    std::fs::create_dir_all(&ready_dir)
        .map_err(|e| Error::io(format!("creating {}", ready_dir.display()), e))?;
    let placeholder = FastUpstream::start()?;
    let mut ready: Vec<Vec<f64>> = vec![Vec::new(); candidates.len()];
    for sample in 0..options.ready_samples {
        for (i, candidate) in candidates.iter().enumerate() {
            let bootstrap = builder(candidate, placeholder.port())?.bootstrap()?;
            let t = time_to_ready(&envoy, &bootstrap, &ready_dir, sample)?;
            if let Some(list) = ready.get_mut(i) {
                list.push(t.as_secs_f64() * 1000.0);
            }
        }
    }
    drop(placeholder);
    let _ = std::fs::remove_dir_all(&ready_dir);
    note(&format!(
        "time to ready measured ({} starts per candidate)",
        options.ready_samples
    ));

    // Start every candidate once; idle Envoys cost nothing measurable.
    let mut live = Vec::new();
    for candidate in &candidates {
        let upstream = FastUpstream::start()?;
        let gateway = builder(candidate, upstream.port())?.start()?;
        let url = format!("http://{}/bench", gateway.listener_addr());
        let pid = gateway.pid();
        if pid.is_none() {
            note(&format!(
                "{}: Envoy's pid not found, no CPU figures",
                candidate.name
            ));
        }
        live.push(Live {
            candidate: candidate.clone(),
            gateway,
            upstream,
            url,
            pid,
            runs: Vec::new(),
        });
    }
    for l in &live {
        let warm = run_wrk(&l.url, options.connections, options.warmup)?;
        note(&format!(
            "warm-up {}: {:.0} req/s",
            l.candidate.name, warm.rps
        ));
    }

    let n = live.len();
    for round in 0..options.rounds {
        for k in 0..n {
            let Some(l) = live.get_mut((k + round) % n) else {
                continue;
            };
            let before = l.upstream.counts();
            let latency = measured_run(l, 1, options.latency_run)?;
            check_run(l, before, &latency)?;
            let before = l.upstream.counts();
            let throughput = measured_run(l, options.connections, options.throughput_run)?;
            check_run(l, before, &throughput)?;
            note(&format!(
                "round {}/{} {:<9} p50 {:>6.1} µs  {:>7.0} req/s  envoy cpu {:>5.1} µs/req",
                round + 1,
                options.rounds,
                l.candidate.name,
                latency.p50_us,
                throughput.rps,
                throughput.envoy_cpu_us
            ));
            l.runs.push((latency, throughput));
        }
    }

    let base_runs = live
        .iter()
        .find(|l| l.candidate.package.is_none())
        .map(|l| l.runs.clone())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (i, l) in live.iter().enumerate() {
        let wasm_bytes = match &l.candidate.package {
            Some(package) => std::fs::metadata(wasm_module(package)?)
                .map(|m| m.len())
                .unwrap_or(0),
            None => 0,
        };
        let diff = |f: fn(&(WrkRun, WrkRun)) -> f64| {
            let d: Vec<f64> = l
                .runs
                .iter()
                .zip(&base_runs)
                .map(|(a, b)| f(a) - f(b))
                .collect();
            median(&d)
        };
        let col =
            |f: fn(&(WrkRun, WrkRun)) -> f64| median(&l.runs.iter().map(f).collect::<Vec<_>>());
        rows.push(Row {
            candidate: l.candidate.clone(),
            wasm_bytes,
            ready_ms: median(ready.get(i).map(Vec::as_slice).unwrap_or_default()),
            cpu_us: col(|(_, t)| t.envoy_cpu_us),
            rps: col(|(_, t)| t.rps),
            p50_us: col(|(l, _)| l.p50_us),
            overhead: Overhead {
                cpu_us: diff(|(_, t)| t.envoy_cpu_us),
                throughput_us: diff(|(_, t)| 1e6 / t.rps),
                latency_us: diff(|(l, _)| l.p50_us),
            },
            runs: l.runs.clone(),
        });
    }
    // The run directories hold per-request log lines at info: drop them.
    for l in live {
        let dir = l.gateway.dir().to_path_buf();
        drop(l);
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(Report {
        options: options.clone(),
        envoy_version,
        rows,
        elapsed: started.elapsed(),
    })
}

/// Writes `results.md`, `results.json` and `overhead.svg` under `dir`
/// (usually `target/bench`); returns their paths.
pub fn write_report(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let files = [
        ("results.md", report.table()),
        (
            "results.json",
            serde_json::to_string_pretty(&report.json()).unwrap_or_default(),
        ),
        ("overhead.svg", report.svg()),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let out = "Running 4s test @ http://127.0.0.1:1/bench
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    85.20us   20.00us   1.02ms   90.00%
    Req/Sec    11.50k   500.00    12.00k    70.00%
  Latency Distribution
     50%   80.50us
     75%   90.00us
     90%  100.00us
     99%    1.50ms
  34500 requests in 3.00s, 4.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  11500.25
Transfer/sec:      1.33MB
";
        let run = parse_wrk(out).unwrap();
        assert_eq!(run.rps, 11500.25);
        assert_eq!(run.p50_us, 80.5);
        assert_eq!(run.mean_us, 85.2);
        assert_eq!(run.requests, 34500);
        assert_eq!(run.errors, 8);
        assert!(parse_wrk("nothing").is_err());
        assert_eq!(parse_wrk_duration("1.50ms"), Some(1500.0));
        assert_eq!(parse_wrk_duration("2.00s"), Some(2_000_000.0));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
