//! Helpers shared by the `e2e_*` suites: the probe plugin
//! (`tests/plugins/probe`, see its crate docs for the `x-probe-*` headers),
//! requests tagged so the upstream's copy can be found, and log filters.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use higress_e2e::{
    http_request_timeout, wasm_module, EchoUpstream, Gateway, GatewayBuilder, PluginSpec,
    RecordedRequest, Response,
};

/// `PluginConfig.name` of the probe in Envoy (`wasm log e2e_probe ...`).
pub const PROBE: &str = "e2e_probe";
/// The SDK's log prefix of the probe (`[e2e-probe] [plugin-id] [request-id]`).
pub const PROBE_PREFIX: &str = "[e2e-probe]";
/// Header carrying a per-request sequence number, to find the upstream's copy.
pub const SEQ_HEADER: &str = "x-e2e-seq";

/// The probe with `configuration`, fail closed.
pub fn probe(configuration: &str) -> PluginSpec {
    let wasm = wasm_module("e2e-probe").unwrap_or_else(|e| panic!("building e2e-probe: {e}"));
    PluginSpec::new(PROBE, wasm, configuration)
}

/// Starts the gateway or fails the test with Envoy's log.
pub fn start(builder: GatewayBuilder) -> Gateway {
    builder.start().unwrap_or_else(|e| panic!("{e}"))
}

/// What one request did: the client's response and the upstream's copy.
#[derive(Debug)]
pub struct Exchange {
    /// What the client got.
    pub response: Response,
    /// What the upstream received, `None` if nothing arrived.
    pub upstream: Option<RecordedRequest>,
}

fn next_seq() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// Sends a request through `gateway` and finds what `upstream` received for it.
pub fn exchange(
    gateway: &Gateway,
    upstream: &EchoUpstream,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Exchange {
    try_exchange(
        gateway,
        upstream,
        method,
        path,
        headers,
        body,
        Duration::from_secs(15),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", tail(&gateway.logs())))
}

/// [`exchange`] with a timeout, returning the client error instead of failing.
pub fn try_exchange(
    gateway: &Gateway,
    upstream: &EchoUpstream,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
    timeout: Duration,
) -> higress_e2e::Result<Exchange> {
    let seq = next_seq();
    let mut all: Vec<(&str, &[u8])> = vec![(SEQ_HEADER, seq.as_bytes())];
    all.extend_from_slice(headers);
    let response =
        http_request_timeout(gateway.listener_addr(), method, path, &all, body, timeout)?;
    Ok(Exchange {
        response,
        upstream: upstream_copy(upstream, &seq),
    })
}

/// The request the upstream recorded with sequence number `seq`.
pub fn upstream_copy(upstream: &EchoUpstream, seq: &str) -> Option<RecordedRequest> {
    upstream
        .requests()
        .into_iter()
        .find(|r| r.header(SEQ_HEADER) == Some(seq.as_bytes()))
}

/// Lines the plugin wrote through `proxy_log` (Envoy prints them as
/// `wasm log <plugin> <root_id> <vm_id>: <message>`) that contain `needle`.
pub fn plugin_lines(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("wasm log") && l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Waits until the log has a plugin line containing `needle`; returns the
/// lines, failing the test after `timeout`.
pub fn wait_plugin_line(gateway: &Gateway, needle: &str, timeout: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let lines = plugin_lines(&gateway.logs(), needle);
        if !lines.is_empty() {
            return lines;
        }
        if std::time::Instant::now() >= deadline {
            panic!(
                "no plugin log line containing {needle:?}:\n{}",
                tail(&gateway.logs())
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The last 80 lines of a log, for failure messages.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// `n` bytes of lower-case text (`abc...z` repeated).
pub fn lower_text(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A tiny upstream that answers every request with `x-text-size` bytes
/// (default 100) of lower-case text as `text/plain` (the echo upstream's
/// sized bodies are `application/octet-stream`, which the SDK's body hooks
/// skip by design). Request bodies are read and dropped.
#[derive(Debug)]
pub struct TextUpstream {
    port: u16,
}

impl TextUpstream {
    /// Binds `127.0.0.1:0` and serves until the process ends.
    pub fn start() -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut size = 100usize;
                        let mut length = 0usize;
                        let mut first = true;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end();
                            if line.is_empty() && !first {
                                break;
                            }
                            first = false;
                            let lower = line.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("x-text-size:") {
                                size = v.trim().parse().unwrap_or(size);
                            }
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let text = lower_text(size);
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {size}\r\n\r\n"
                        );
                        if writer.write_all(head.as_bytes()).is_err()
                            || writer.write_all(&text).is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Self { port }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}
