//! Instructions per request, counted under callgrind (issue 14):
//! `cargo higress bench --instructions`.
//!
//! Wall-clock figures scatter by tens of percent on a shared machine;
//! instruction counts do not. For each candidate (a plugin module, or no
//! plugin at all) this starts Envoy with `--concurrency 1` under
//! `valgrind --tool=callgrind`, opens one keep-alive connection, sends some
//! warm-up requests, zeroes the counters (`callgrind_control -z`), sends
//! exactly N requests one after the other, dumps the counters
//! (`callgrind_control -d`) and reads the dump's `totals:` line. Instructions
//! per request of a plugin = (its count − the no-plugin count for the same
//! requests) / N.
//!
//! Each count is split by object: code in no mapped file (callgrind's object
//! `???`) is what V8 compiled at run time, i.e. the plugin's Wasm code ("in
//! wasm"); everything else is Envoy and V8's runtime, including the host
//! calls ("Envoy + V8"). The no-plugin run's share in each is subtracted
//! too.
//!
//! The twins (same observable work, same log lines, SDK against raw
//! proxy-wasm) are the workspace's fixtures: `my-plugin` / `e2e-probe-raw`
//! (reads headers, sets `x-custom-header`, writes two info lines),
//! `twin-fixed-sdk` / `twin-fixed-raw` (the fixed cost: reads `:path` only)
//! `twin-body-sdk-all` / `twin-body-raw` (reads a small POST body, on every
//! body), and `twin-body-sdk` / `twin-body-raw-go-rule` (the same, with
//! Go's websocket/binary check before the body hook: the SDK's default).
//!
//! Envoy is run through a small wrapper script that `ENVOY_BIN` points at
//! while this runs, so the `higress-e2e` harness (bootstrap, ready wait,
//! listener address, pid) is used unchanged.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use higress_e2e::{
    envoy_binary, target_dir, wasm_module, ClusterSpec, Error, Gateway, PluginSpec, Result,
};

use crate::bench::{FastUpstream, BENCH_VALUE};

/// The object name callgrind gives code that lies in no mapped file
/// (V8's JIT-compiled Wasm).
pub const UNKNOWN_OBJECT: &str = "???";

/// What a callgrind dump says, in instructions (`Ir`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DumpCounts {
    /// The dump's `totals:` (else `summary:`) figure.
    pub total: u64,
    /// Self cost of code in the object `???` (no symbols known).
    pub unknown_object: u64,
    /// Self cost of code at an address outside every file-backed mapping:
    /// what V8 compiled at run time (part of `unknown_object`).
    pub jit: u64,
    /// Sum of all self costs (equals `total` in a consistent dump).
    pub self_sum: u64,
}

impl DumpCounts {
    /// Everything but the JIT-compiled code: Envoy, V8's runtime, libc.
    pub fn outside_jit(&self) -> u64 {
        self.total.saturating_sub(self.jit)
    }
}

fn first_number(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Address ranges `[start, end)` of a process's file-backed mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMappings(pub Vec<(u64, u64)>);

impl FileMappings {
    /// Reads `/proc/<pid>/maps` text: every line with a path (`/...`).
    pub fn parse(maps: &str) -> Self {
        let ranges = maps
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let range = words.next()?;
                if !words.nth(4).is_some_and(|path| path.starts_with('/')) {
                    return None;
                }
                let (start, end) = range.split_once('-')?;
                Some((
                    u64::from_str_radix(start, 16).ok()?,
                    u64::from_str_radix(end, 16).ok()?,
                ))
            })
            .collect();
        FileMappings(ranges)
    }

    /// Reads the mappings of a live process.
    pub fn of_pid(pid: u32) -> Result<Self> {
        let path = format!("/proc/{pid}/maps");
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io(format!("reading {path}"), e))?;
        Ok(Self::parse(&text))
    }

    fn contains(&self, address: u64) -> bool {
        self.0.iter().any(|&(s, e)| (s..e).contains(&address))
    }
}

/// Whether a callgrind function name is a bare address (`0x...`) outside
/// every file-backed mapping: JIT-compiled code.
fn is_jit(function: &str, files: &FileMappings) -> bool {
    function
        .strip_prefix("0x")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .is_some_and(|address| !files.contains(address))
}

/// Resolves callgrind's name compression: `(3) name` defines id 3, `(3)`
/// refers to it; an uncompressed name stands for itself.
fn resolve(names: &mut std::collections::HashMap<String, String>, rest: &str) -> String {
    let rest = rest.trim();
    match rest.strip_prefix('(') {
        Some(compressed) => {
            let (id, name) = compressed.split_once(')').unwrap_or((compressed, ""));
            let name = name.trim();
            if name.is_empty() {
                names.get(id).cloned().unwrap_or_default()
            } else {
                names.insert(id.to_owned(), name.to_owned());
                name.to_owned()
            }
        }
        None => rest.to_owned(),
    }
}

/// Parses a callgrind dump (format version 1) for its total, the self cost
/// of the object `???`, and within it the self cost of functions whose
/// address lies outside every range of `files` (JIT-compiled code; callgrind
/// also puts code of a stripped binary outside `.text`, such as the PLT or
/// tcmalloc's sections, in `???`, which `files` tells apart).
///
/// Handles name compression (`ob=(3) name`, then `ob=(3)`), skips the
/// inclusive cost line that follows each `calls=` line, and reads the
/// number of position columns from `positions:`. Only the first event
/// (`Ir`, the default) is read.
pub fn parse_dump(text: &str, files: &FileMappings) -> Result<DumpCounts> {
    let mut objects = std::collections::HashMap::new();
    let mut functions = std::collections::HashMap::new();
    let mut positions = 1usize;
    let mut totals = None;
    let mut summary = None;
    let mut unknown = false;
    let mut jit = false;
    let mut after_calls = false;
    let mut counts = DumpCounts::default();
    for line in text.lines() {
        let line = line.trim_end();
        match line.as_bytes().first() {
            Some(b'0'..=b'9' | b'+' | b'-' | b'*') => {
                if after_calls {
                    after_calls = false;
                    continue;
                }
                let cost = line
                    .split_whitespace()
                    .nth(positions)
                    .and_then(|c| c.parse::<u64>().ok())
                    .unwrap_or(0);
                counts.self_sum += cost;
                if unknown {
                    counts.unknown_object += cost;
                    if jit {
                        counts.jit += cost;
                    }
                }
                continue;
            }
            None => continue,
            _ => {}
        }
        after_calls = false;
        if let Some(rest) = line.strip_prefix("ob=") {
            unknown = resolve(&mut objects, rest) == UNKNOWN_OBJECT;
        } else if let Some(rest) = line.strip_prefix("fn=") {
            jit = is_jit(&resolve(&mut functions, rest), files);
        } else if let Some(rest) = line.strip_prefix("cfn=") {
            // Defines a compressed name too; the current function stays.
            resolve(&mut functions, rest);
        } else if let Some(rest) = line.strip_prefix("cob=") {
            resolve(&mut objects, rest);
        } else if line.starts_with("calls=") {
            after_calls = true;
        } else if let Some(rest) = line.strip_prefix("positions:") {
            positions = rest.split_whitespace().count().max(1);
        } else if let Some(rest) = line.strip_prefix("totals:") {
            totals = first_number(rest);
        } else if let Some(rest) = line.strip_prefix("summary:") {
            summary = first_number(rest);
        }
    }
    counts.total = match totals.or(summary) {
        Some(total) => total,
        None if counts.self_sum > 0 => counts.self_sum,
        None => {
            return Err(Error::Protocol(
                "callgrind dump without totals:, summary: or any cost".into(),
            ))
        }
    };
    Ok(counts)
}

/// The requests a fixture is measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `GET /bench` with `x-user-id: bench-user`.
    Get,
    /// `POST /bench` with `x-user-id: bench-user` and the body `hello`.
    Post,
}

impl Shape {
    /// `GET` or `POST hello`.
    pub fn label(self) -> &'static str {
        match self {
            Shape::Get => "GET",
            Shape::Post => "POST hello",
        }
    }

    fn wire(self) -> &'static [u8] {
        match self {
            Shape::Get => b"GET /bench HTTP/1.1\r\nhost: bench\r\nx-user-id: bench-user\r\n\r\n",
            Shape::Post => b"POST /bench HTTP/1.1\r\nhost: bench\r\nx-user-id: bench-user\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello",
        }
    }
}

/// A pair of plugins with the same observable behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Twin {
    /// Short name for the table.
    pub name: &'static str,
    /// The SDK side (workspace package).
    pub sdk: &'static str,
    /// The raw proxy-wasm side (workspace package).
    pub raw: &'static str,
    /// Plugin configuration (both sides).
    pub config: &'static str,
    /// The requests sent.
    pub shape: Shape,
    /// Whether every request reaches the upstream with
    /// `x-custom-header: bench-value` (checked).
    pub sets_header: bool,
}

/// The twins in report order.
pub fn twins() -> Vec<Twin> {
    vec![
        Twin {
            name: "set-header (my-plugin)",
            sdk: "my-plugin",
            raw: "e2e-probe-raw",
            config: r#"{"some_field": "bench-value"}"#,
            shape: Shape::Get,
            sets_header: true,
        },
        Twin {
            name: "fixed cost",
            sdk: "twin-fixed-sdk",
            raw: "twin-fixed-raw",
            config: "{}",
            shape: Shape::Get,
            sets_header: false,
        },
        // The body hook on every body (`skip_binary_bodies: false`), as
        // the raw twin's.
        Twin {
            name: "body",
            sdk: "twin-body-sdk-all",
            raw: "twin-body-raw",
            config: "{}",
            shape: Shape::Post,
            sets_header: false,
        },
        // The SDK's default (Go's rule: no body hook for websocket, binary
        // or encoded bodies) against a raw twin that makes the same check.
        Twin {
            name: "body, Go's rule",
            sdk: "twin-body-sdk",
            raw: "twin-body-raw-go-rule",
            config: "{}",
            shape: Shape::Post,
            sets_header: false,
        },
    ]
}

/// How much to run.
#[derive(Debug, Clone, PartialEq)]
pub struct InstrOptions {
    /// Requests counted per window (N).
    pub requests: usize,
    /// Requests sent before the counters are zeroed.
    pub warmup: usize,
    /// Independent runs (each candidate's Envoy is started afresh per run).
    pub runs: usize,
    /// Windows of N requests measured one after the other in each Envoy
    /// (each zeroed and dumped on its own).
    pub windows: usize,
    /// How long Envoy under callgrind may take to become ready.
    pub ready_timeout: Duration,
    /// Envoy's `wasm` log level (`info`: the twins' lines are written).
    pub wasm_log_level: String,
    /// Only the twins whose name contains one of these (all if empty).
    pub only: Vec<String>,
}

impl Default for InstrOptions {
    fn default() -> Self {
        InstrOptions {
            requests: 200,
            warmup: 50,
            runs: 1,
            windows: 2,
            ready_timeout: Duration::from_secs(900),
            wasm_log_level: "info".into(),
            only: Vec::new(),
        }
    }
}

/// One measured window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The requests sent.
    pub shape: Shape,
    /// The dump's figures.
    pub counts: DumpCounts,
}

/// One candidate's Envoy, per run.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateRuns {
    /// Workspace package, `None` for Envoy without a plugin.
    pub package: Option<String>,
    /// `.wasm` size in bytes (0 without a plugin).
    pub wasm_bytes: u64,
    /// One entry per sample (run × window): the windows (one per request
    /// shape) measured for it.
    pub runs: Vec<Vec<Window>>,
    /// One entry per run: Envoy's instructions from its start until admin
    /// `/ready` answered 200 (loading and compiling the module, starting
    /// the VMs, configuring the plugin).
    pub start: Vec<DumpCounts>,
}

impl CandidateRuns {
    fn window(&self, run: usize, shape: Shape) -> Option<DumpCounts> {
        self.runs
            .get(run)?
            .iter()
            .find(|w| w.shape == shape)
            .map(|w| w.counts)
    }
}

/// A plugin's cost per request in one run, over Envoy without a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PerRequest {
    /// All instructions.
    pub total: f64,
    /// In JIT-compiled code (object `???`).
    pub wasm: f64,
    /// Everything else (Envoy, V8 runtime, host calls).
    pub envoy: f64,
}

/// The whole result.
#[derive(Debug, Clone, PartialEq)]
pub struct InstrReport {
    /// The options used.
    pub options: InstrOptions,
    /// `envoy --version`.
    pub envoy_version: String,
    /// `valgrind --version`.
    pub valgrind_version: String,
    /// The twins measured.
    pub twins: Vec<Twin>,
    /// Every candidate (no plugin first).
    pub candidates: Vec<CandidateRuns>,
    /// Wall-clock time of the whole run.
    pub elapsed: Duration,
}

impl InstrReport {
    fn candidate(&self, package: Option<&str>) -> Option<&CandidateRuns> {
        self.candidates
            .iter()
            .find(|c| c.package.as_deref() == package)
    }

    /// `package`'s cost per request over no plugin, one entry per run.
    pub fn per_request(&self, package: &str, shape: Shape) -> Vec<PerRequest> {
        let (Some(plugin), Some(none)) = (self.candidate(Some(package)), self.candidate(None))
        else {
            return Vec::new();
        };
        let n = self.options.requests.max(1) as f64;
        (0..plugin.runs.len())
            .filter_map(|run| {
                let p = plugin.window(run, shape)?;
                let b = none.window(run, shape)?;
                let total = (p.total as f64 - b.total as f64) / n;
                let wasm = (p.jit as f64 - b.jit as f64) / n;
                Some(PerRequest {
                    total,
                    wasm,
                    envoy: total - wasm,
                })
            })
            .collect()
    }

    /// The mean over the runs of `package`'s cost per request.
    pub fn mean(&self, package: &str, shape: Shape) -> Option<PerRequest> {
        let runs = self.per_request(package, shape);
        if runs.is_empty() {
            return None;
        }
        let k = runs.len() as f64;
        Some(PerRequest {
            total: runs.iter().map(|r| r.total).sum::<f64>() / k,
            wasm: runs.iter().map(|r| r.wasm).sum::<f64>() / k,
            envoy: runs.iter().map(|r| r.envoy).sum::<f64>() / k,
        })
    }

    /// The largest difference between samples (runs × windows) of any
    /// measured count (each Envoy's total over a window, and each plugin's
    /// per-request total), relative to its mean; 0 with one sample.
    pub fn max_spread(&self) -> f64 {
        let spread = |values: &[f64]| {
            let (lo, hi) = values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(*v), hi.max(*v))
                });
            let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
            if values.len() < 2 || mean == 0.0 {
                0.0
            } else {
                (hi - lo) / mean.abs()
            }
        };
        let mut worst = 0.0_f64;
        for twin in &self.twins {
            for package in [twin.sdk, twin.raw] {
                let totals: Vec<f64> = self
                    .per_request(package, twin.shape)
                    .iter()
                    .map(|r| r.total)
                    .collect();
                worst = worst.max(spread(&totals));
            }
        }
        for c in &self.candidates {
            for shape in [Shape::Get, Shape::Post] {
                let totals: Vec<f64> = (0..c.runs.len())
                    .filter_map(|r| c.window(r, shape))
                    .map(|w| w.total as f64)
                    .collect();
                worst = worst.max(spread(&totals));
            }
        }
        worst
    }

    /// The result as Markdown: the summary table, then every run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| fixture (requests) | side | instructions/request | SDK/raw | in wasm | in Envoy + V8 | `.wasm` |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
        for twin in &self.twins {
            let raw = self.mean(twin.raw, twin.shape);
            for (side, package) in [("SDK", twin.sdk), ("raw", twin.raw)] {
                let Some(m) = self.mean(package, twin.shape) else {
                    continue;
                };
                let ratio = match raw {
                    Some(r) if r.total != 0.0 => format!("{:.2}", m.total / r.total),
                    _ => "-".into(),
                };
                let bytes = self.candidate(Some(package)).map_or(0, |c| c.wasm_bytes);
                let _ = writeln!(
                    out,
                    "| {} ({}) | {side}: `{package}` | {} | {ratio} | {} | {} | {:.1} KB |",
                    twin.name,
                    twin.shape.label(),
                    thousands(m.total),
                    thousands(m.wasm),
                    thousands(m.envoy),
                    bytes as f64 / 1000.0
                );
            }
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "Per sample (run × window; instructions per request over no plugin: total / in wasm / in Envoy + V8):"
        );
        out.push('\n');
        for twin in &self.twins {
            for package in [twin.sdk, twin.raw] {
                let runs: Vec<String> = self
                    .per_request(package, twin.shape)
                    .iter()
                    .map(|r| {
                        format!(
                            "{} / {} / {}",
                            thousands(r.total),
                            thousands(r.wasm),
                            thousands(r.envoy)
                        )
                    })
                    .collect();
                let _ = writeln!(out, "- `{package}`: {}", runs.join("; "));
            }
        }
        for shape in [Shape::Get, Shape::Post] {
            if let Some(none) = self.candidate(None) {
                let runs: Vec<String> = (0..none.runs.len())
                    .filter_map(|r| none.window(r, shape))
                    .map(|w| {
                        format!(
                            "{} ({} in JIT code, {} in `???`)",
                            thousands(w.total as f64),
                            thousands(w.jit as f64),
                            thousands(w.unknown_object as f64)
                        )
                    })
                    .collect();
                if !runs.is_empty() {
                    let _ = writeln!(
                        out,
                        "- no plugin, {} {} requests, whole window: {}",
                        self.options.requests,
                        shape.label(),
                        runs.join("; ")
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "\nLargest difference between samples: {:.3}% (of a window's total or of a per-request figure).",
            self.max_spread() * 100.0
        );
        out.push('\n');
        out.push_str(&self.start_table());
        out
    }

    /// Mean instructions from Envoy's start until ready, per candidate.
    fn mean_start(&self, package: Option<&str>) -> Option<f64> {
        let c = self.candidate(package)?;
        if c.start.is_empty() {
            return None;
        }
        Some(c.start.iter().map(|d| d.total as f64).sum::<f64>() / c.start.len() as f64)
    }

    /// Start-up as Markdown: instructions until ready per candidate (mean
    /// over runs, every run listed), over no plugin, and SDK − raw.
    pub fn start_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Start-up: Envoy's instructions from its start until `/ready` (one worker; module load, compile, VM start, configure):"
        );
        out.push('\n');
        let _ = writeln!(
            out,
            "| candidate | `.wasm` | until ready (mean) | over no plugin | SDK − raw | each run |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|");
        let none = self.mean_start(None);
        let mut rows: Vec<(Option<&str>, Option<&str>)> = vec![(None, None)];
        for twin in &self.twins {
            for (package, raw) in [(twin.sdk, Some(twin.raw)), (twin.raw, None)] {
                if !rows.iter().any(|(p, _)| *p == Some(package)) {
                    rows.push((Some(package), raw));
                }
            }
        }
        for (package, raw) in rows {
            let (Some(mean), Some(c)) = (self.mean_start(package), self.candidate(package)) else {
                continue;
            };
            let over = match (package, none) {
                (Some(_), Some(n)) => signed(mean - n),
                _ => "-".into(),
            };
            let vs_raw = match raw.and_then(|r| self.mean_start(Some(r))) {
                Some(r) => signed(mean - r),
                None => String::new(),
            };
            let runs: Vec<String> = c.start.iter().map(|d| thousands(d.total as f64)).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {over} | {vs_raw} | {} |",
                package.map_or_else(|| "no plugin".to_owned(), |p| format!("`{p}`")),
                if c.wasm_bytes == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.1} KB", c.wasm_bytes as f64 / 1000.0)
                },
                thousands(mean),
                runs.join("; ")
            );
        }
        out
    }
}

/// `12345.6` as `12,346`.
pub fn thousands(value: f64) -> String {
    let rounded = value.round();
    let negative = rounded < 0.0;
    let digits = format!("{:.0}", rounded.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if negative {
        format!("-{out}")
    } else {
        out
    }
}

/// `thousands` with a sign: `+1,234`, `-56`.
fn signed(value: f64) -> String {
    if value.round() >= 0.0 {
        format!("+{}", thousands(value))
    } else {
        thousands(value)
    }
}

fn note(message: &str) {
    eprintln!("[bench --instructions] {message}");
}

fn version_line(program: &Path, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// Restores `ENVOY_BIN` when dropped.
struct EnvoyBinOverride(Option<std::ffi::OsString>);

impl EnvoyBinOverride {
    fn set(path: &Path) -> Self {
        let old = std::env::var_os("ENVOY_BIN");
        std::env::set_var("ENVOY_BIN", path);
        EnvoyBinOverride(old)
    }
}

impl Drop for EnvoyBinOverride {
    fn drop(&mut self) {
        match self.0.take() {
            Some(old) => std::env::set_var("ENVOY_BIN", old),
            None => std::env::remove_var("ENVOY_BIN"),
        }
    }
}

/// Writes `dir/envoy-callgrind.sh`, which runs the real Envoy under
/// callgrind with its dumps in `dir`.
fn write_wrapper(dir: &Path, envoy: &Path) -> Result<PathBuf> {
    let script = dir.join("envoy-callgrind.sh");
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let text = format!(
        "#!/bin/sh\n# Written by `cargo higress bench --instructions`.\nexec valgrind --tool=callgrind --callgrind-out-file={} {} \"$@\"\n",
        quote(&dir.join("callgrind.out.%p")),
        quote(envoy)
    );
    std::fs::write(&script, text)
        .map_err(|e| Error::io(format!("writing {}", script.display()), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(format!("chmod {}", script.display()), e))?;
    }
    Ok(script)
}

fn callgrind_control(flag: &str, pid: u32) -> Result<()> {
    let output = Command::new("callgrind_control")
        .arg(flag)
        .arg(pid.to_string())
        .output()
        .map_err(|e| Error::io("could not run callgrind_control (install valgrind)", e))?;
    if !output.status.success() {
        return Err(Error::Command {
            command: format!("callgrind_control {flag} {pid}"),
            output: format!(
                "{}\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(())
}

/// The dump files of `pid` in `dir` (`callgrind.out.<pid>.<n>`), by `n`.
fn dumps(dir: &Path, pid: u32) -> Vec<(u32, PathBuf)> {
    let prefix = format!("callgrind.out.{pid}.");
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix(&prefix)?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Asks callgrind for a dump and returns its text once complete.
fn dump(dir: &Path, pid: u32) -> Result<(PathBuf, String)> {
    let before = dumps(dir, pid).last().map_or(0, |(n, _)| *n);
    callgrind_control("-d", pid)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some((n, path)) = dumps(dir, pid).last() {
            if *n > before {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                if text.contains("\ntotals:") {
                    return Ok((path.clone(), text));
                }
            }
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "no complete callgrind dump of {pid} in {}",
                dir.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One keep-alive HTTP/1.1 connection to the gateway.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    fn open(addr: SocketAddr) -> Result<Self> {
        let stream =
            TcpStream::connect(addr).map_err(|e| Error::io(format!("connecting {addr}"), e))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| Error::io("setting a read timeout", e))?;
        let writer = stream
            .try_clone()
            .map_err(|e| Error::io("cloning the connection", e))?;
        Ok(Connection {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends one request and reads its response; the status.
    fn exchange(&mut self, shape: Shape) -> Result<u16> {
        self.writer
            .write_all(shape.wire())
            .map_err(|e| Error::io("sending a request", e))?;
        let mut line = String::new();
        let mut status = 0u16;
        let mut length = 0usize;
        let mut first = true;
        loop {
            line.clear();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|e| Error::io("reading a response", e))?;
            if n == 0 {
                return Err(Error::Protocol("the gateway closed the connection".into()));
            }
            let trimmed = line.trim_end();
            if first {
                status = trimmed
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                first = false;
                continue;
            }
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(Error::Protocol(format!("unexpected {trimmed}")));
                }
            }
        }
        let mut body = vec![0u8; length];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| Error::io("reading a response body", e))?;
        Ok(status)
    }

    fn send(&mut self, shape: Shape, count: usize) -> Result<()> {
        for i in 0..count {
            let status = self.exchange(shape)?;
            if status != 200 {
                return Err(Error::Protocol(format!(
                    "request {} of {count} ({}) answered {status}",
                    i + 1,
                    shape.label()
                )));
            }
        }
        Ok(())
    }
}

/// Removes the FIFOs valgrind's gdbserver leaves in /tmp for a killed `pid`.
fn remove_vgdb_fifos(pid: u32) {
    let marker = format!("-{pid}-by-");
    let tmp = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("vgdb-pipe-") && name.contains(&marker) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Lets Envoy finish what follows the last warm-up response (stream
/// teardown, the access-log phase) before the counters are zeroed.
const SETTLE: Duration = Duration::from_secs(2);

/// The same after the last counted response, before the dump. Short: idle
/// time in the window costs instructions too (timers), and the teardown
/// follows the response within the same event-loop pass.
const SETTLE_BEFORE_DUMP: Duration = Duration::from_millis(300);

/// How often `/ready` is asked while an Envoy starts under callgrind: each
/// poll is an admin request in the start-up count, so few of them (a start
/// takes 15-90 s here under callgrind).
const READY_POLL: Duration = Duration::from_secs(1);

/// Starts one candidate under callgrind: its start-up count (until ready),
/// then `options.windows` windows per shape, one entry per window index.
fn measure(
    options: &InstrOptions,
    dir: &Path,
    label: &str,
    plugin: Option<(&str, &str)>,
    shapes: &[(Shape, bool)],
) -> Result<(DumpCounts, Vec<Vec<Window>>)> {
    let upstream = FastUpstream::start()?;
    let mut builder = Gateway::builder()
        .name(format!("callgrind-{label}"))
        .concurrency(1)
        .log_level(format!("wasm:{}", options.wasm_log_level))
        .ready_timeout(options.ready_timeout)
        .ready_poll(READY_POLL)
        .cluster(ClusterSpec::new("upstream", upstream.port()))
        // No periodic stats flush (every 5 s by default): whether it fell
        // into a window would move that window's count.
        .patch_bootstrap(|bootstrap| {
            if let Some(object) = bootstrap.as_object_mut() {
                object.insert("stats_flush_on_admin".into(), true.into());
            }
        });
    if let Some((package, config)) = plugin {
        builder = builder.plugin(PluginSpec::new("bench", wasm_module(package)?, config));
    }
    let started = Instant::now();
    let mut gateway = builder.start()?;
    let pid = gateway
        .pid()
        .ok_or_else(|| Error::Protocol("the gateway has no pid".into()))?;
    note(&format!(
        "{label}: Envoy under callgrind (pid {pid}) ready after {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    let result = (|| {
        // Everything since Envoy started, before any request.
        let (path, text) = dump(dir, pid)?;
        let start = parse_dump(&text, &FileMappings::of_pid(pid)?)?;
        let _ = std::fs::rename(&path, dir.join(format!("{label}-start.callgrind")));
        note(&format!(
            "{label} start until ready: {} instructions ({} in JIT code)",
            thousands(start.total as f64),
            thousands(start.jit as f64)
        ));
        let mut connection = Connection::open(gateway.listener_addr())?;
        let mut windows: Vec<Vec<Window>> = vec![Vec::new(); options.windows.max(1)];
        for &(shape, sets_header) in shapes {
            connection.send(shape, options.warmup)?;
            for (w, samples) in windows.iter_mut().enumerate() {
                std::thread::sleep(SETTLE);
                let before = upstream.counts();
                callgrind_control("-z", pid)?;
                let t = Instant::now();
                connection.send(shape, options.requests)?;
                let sent = t.elapsed();
                std::thread::sleep(SETTLE_BEFORE_DUMP);
                let (path, text) = dump(dir, pid)?;
                let (requests, marked) = upstream.counts();
                let (requests, marked) = (requests - before.0, marked - before.1);
                let expected_marked = if sets_header { requests } else { 0 };
                if requests != options.requests as u64 || marked != expected_marked {
                    return Err(Error::Protocol(format!(
                    "{label}: upstream saw {requests} requests ({marked} with x-custom-header: {BENCH_VALUE}), expected {} ({expected_marked})",
                    options.requests
                )));
                }
                let counts = parse_dump(&text, &FileMappings::of_pid(pid)?)?;
                let kept = dir.join(format!(
                    "{label}-{}-w{}.callgrind",
                    shape.label().split(' ').next().unwrap_or("GET"),
                    w + 1
                ));
                let _ = std::fs::rename(&path, &kept);
                note(&format!(
                "{label} window {}: {} x {}: {} instructions ({} in JIT code, {} in ???), {:.1} s; dump {}",
                w + 1,
                options.requests,
                shape.label(),
                thousands(counts.total as f64),
                thousands(counts.jit as f64),
                thousands(counts.unknown_object as f64),
                sent.as_secs_f64(),
                kept.display()
            ));
                samples.push(Window { shape, counts });
            }
        }
        Ok((start, windows))
    })();
    gateway.stop();
    remove_vgdb_fifos(pid);
    for (_, path) in dumps(dir, pid) {
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(dir.join(format!("callgrind.out.{pid}")));
    result
}

/// Runs the whole instruction-count benchmark.
pub fn run(options: &InstrOptions) -> Result<InstrReport> {
    let started = Instant::now();
    let twins: Vec<Twin> = twins()
        .into_iter()
        .filter(|t| {
            options.only.is_empty()
                || options
                    .only
                    .iter()
                    .any(|o| t.name.contains(o.as_str()) || t.sdk == o || t.raw == o)
        })
        .collect();
    if twins.is_empty() {
        return Err(Error::Config(format!("no twin matches {:?}", options.only)));
    }
    let envoy = envoy_binary()?;
    let envoy_version = version_line(&envoy, "--version");
    let valgrind_version = version_line(Path::new("valgrind"), "--version");
    if valgrind_version.is_empty() {
        return Err(Error::Config(
            "valgrind not found (apt-get install -y valgrind)".into(),
        ));
    }
    note(&format!("envoy: {envoy_version}; {valgrind_version}"));
    for twin in &twins {
        for package in [twin.sdk, twin.raw] {
            note(&format!("building {package} (release, wasm32-wasip1)"));
            wasm_module(package)?;
        }
    }
    let dir = target_dir().join("bench").join("callgrind");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let wrapper = write_wrapper(&dir, &envoy)?;
    let _override = EnvoyBinOverride::set(&wrapper);

    let mut none_shapes: Vec<(Shape, bool)> = Vec::new();
    for twin in &twins {
        if !none_shapes.iter().any(|(s, _)| *s == twin.shape) {
            none_shapes.push((twin.shape, false));
        }
    }
    let mut candidates = vec![CandidateRuns {
        package: None,
        wasm_bytes: 0,
        runs: Vec::new(),
        start: Vec::new(),
    }];
    for twin in &twins {
        for package in [twin.sdk, twin.raw] {
            // A package in two twins (the SDK body twin) is measured once.
            if candidates
                .iter()
                .any(|c| c.package.as_deref() == Some(package))
            {
                continue;
            }
            let wasm_bytes = std::fs::metadata(wasm_module(package)?).map_or(0, |m| m.len());
            candidates.push(CandidateRuns {
                package: Some(package.to_owned()),
                wasm_bytes,
                runs: Vec::new(),
                start: Vec::new(),
            });
        }
    }
    for run in 0..options.runs {
        for candidate in &mut candidates {
            let label = format!(
                "run{}-{}",
                run + 1,
                candidate.package.as_deref().unwrap_or("none")
            );
            let (start, samples) = match candidate.package.as_deref() {
                None => measure(options, &dir, &label, None, &none_shapes)?,
                Some(package) => {
                    let twin = twins
                        .iter()
                        .find(|t| t.sdk == package || t.raw == package)
                        .ok_or_else(|| Error::Config(format!("no twin for {package}")))?;
                    measure(
                        options,
                        &dir,
                        &label,
                        Some((package, twin.config)),
                        &[(twin.shape, twin.sets_header)],
                    )?
                }
            };
            candidate.start.push(start);
            candidate.runs.extend(samples);
        }
    }
    Ok(InstrReport {
        options: options.clone(),
        envoy_version,
        valgrind_version,
        twins,
        candidates,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A trimmed dump as callgrind 3.19 writes it with `callgrind_control -d`
    /// for a stripped Envoy: `???` holds both JIT code (0xabcd000, in no
    /// file) and code of the binary outside `.text` (0x62def6e).
    const SAMPLE: &str = "\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  envoy -c bootstrap.json --concurrency 1
part: 1

desc: I1 cache: 
desc: Trigger: Client Request: dump

positions: line
events: Ir
summary: 1200

ob=(1) /usr/bin/envoy
fl=(1) ???
fn=(1) 0x0000000001234560
0 1000
cob=(2) ???
cfi=(1)
cfn=(2) 0x000000000abcd000
calls=3 0
0 600
ob=(2)
fl=(1)
fn=(2)
0 500
+2 50
fn=(5) 0x00000000062def6e
0 30
ob=(1)
fn=(3) Envoy::Http::ConnectionManagerImpl
* 100
-1 0

ob=(3) /usr/lib/x86_64-linux-gnu/libc.so.6
fl=(2) ???
fn=(4) memcpy
0 50

totals: 1730
";

    const MAPS: &str = "\
00108000-02185000 r--p 00000000 fe:00 5310318   /usr/bin/envoy
02186000-062ec000 r-xp 0207d000 fe:00 5310318   /usr/bin/envoy
066ff000-06a00000 rw-p 00000000 00:00 0
0a000000-0b000000 rwxp 00000000 00:00 0
";

    #[test]
    fn parses_a_dump() {
        let files = FileMappings::parse(MAPS);
        assert_eq!(files.0, vec![(0x108000, 0x2185000), (0x2186000, 0x62ec000)]);
        let counts = parse_dump(SAMPLE, &files).unwrap();
        assert_eq!(counts.total, 1730);
        assert_eq!(counts.self_sum, 1730);
        assert_eq!(counts.unknown_object, 580);
        assert_eq!(counts.jit, 550);
        assert_eq!(counts.outside_jit(), 1180);
        // summary: when there is no totals: (callgrind writes it before the
        // dump's own cost, so totals: is preferred).
        let no_totals = SAMPLE.replace("totals: 1730\n", "");
        assert_eq!(parse_dump(&no_totals, &files).unwrap().total, 1200);
        assert!(parse_dump("version: 1\n", &files).is_err());
    }

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(40750.4), "40,750");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-1234.0), "-1,234");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
    }

    fn candidate(package: Option<&str>, starts: &[u64]) -> CandidateRuns {
        CandidateRuns {
            package: package.map(str::to_owned),
            wasm_bytes: if package.is_some() { 1000 } else { 0 },
            runs: Vec::new(),
            start: starts
                .iter()
                .map(|&total| DumpCounts {
                    total,
                    ..DumpCounts::default()
                })
                .collect(),
        }
    }

    #[test]
    fn the_start_table_compares_each_sdk_twin_with_its_raw_twin() {
        let twins: Vec<Twin> = twins().into_iter().take(1).collect();
        let first = twins.first().unwrap();
        let (sdk, raw) = (first.sdk, first.raw);
        let report = InstrReport {
            options: InstrOptions::default(),
            envoy_version: String::new(),
            valgrind_version: String::new(),
            twins,
            candidates: vec![
                candidate(None, &[1_000_000, 1_000_002]),
                candidate(Some(sdk), &[1_500_000, 1_500_010]),
                candidate(Some(raw), &[1_200_000, 1_200_000]),
            ],
            elapsed: Duration::ZERO,
        };
        let table = report.start_table();
        assert!(
            table.contains(&format!(
                "| `{sdk}` | 1.0 KB | 1,500,005 | +500,004 | +300,005 | 1,500,000; 1,500,010 |"
            )),
            "{table}"
        );
        assert!(
            table.contains(&format!("| `{raw}` | 1.0 KB | 1,200,000 | +199,999 |  |")),
            "{table}"
        );
        assert!(
            table.contains("| no plugin | - | 1,000,001 | - |  | 1,000,000; 1,000,002 |"),
            "{table}"
        );
    }
}
