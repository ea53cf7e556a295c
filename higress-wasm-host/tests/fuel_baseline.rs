//! The CI check of issue 14: the guest's work per request (wasmtime fuel,
//! deterministic), for the benchmark twins and my-plugin, against the
//! recorded baseline in `benchmarks/fuel-baseline.json`.
//!
//! A fixture whose fuel per request grows more than 5 % over its baseline
//! fails the test. The baseline moves only in a commit that says why:
//! `UPDATE_FUEL_BASELINE=1 cargo test -p higress-wasm-host --test
//! fuel_baseline` rewrites the file with today's counts. Each run prints the
//! table (SDK next to its raw proxy-wasm twin), also on success.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::TestHost;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Allowed growth over the baseline.
const TOLERANCE: f64 = 1.05;

/// `(fixture, package, config, request)`: one request through each module.
const FIXTURES: &[(&str, &str, &str, Request)] = &[
    (
        "set-header (sdk)",
        "my-plugin",
        r#"{"some_field":"v"}"#,
        Request::Get,
    ),
    (
        "set-header (raw)",
        "e2e-probe-raw",
        r#"{"some_field":"v"}"#,
        Request::Get,
    ),
    ("fixed (sdk)", "twin-fixed-sdk", "{}", Request::Get),
    ("fixed (raw)", "twin-fixed-raw", "{}", Request::Get),
    // The body hook on every body (`skip_binary_bodies: false`), as raw's.
    ("body (sdk)", "twin-body-sdk-all", "{}", Request::Post),
    ("body (raw)", "twin-body-raw", "{}", Request::Post),
    // The SDK's default, Go's rule (no body hook for websocket, binary or
    // encoded bodies), next to the raw twin that makes the same check.
    (
        "body, Go's rule (sdk)",
        "twin-body-sdk",
        "{}",
        Request::Post,
    ),
    (
        "body, Go's rule (raw)",
        "twin-body-raw-go-rule",
        "{}",
        Request::Post,
    ),
];

#[derive(Debug, Clone, Copy)]
enum Request {
    Get,
    Post,
}

fn baseline_path() -> PathBuf {
    common::workspace()
        .join("benchmarks")
        .join("fuel-baseline.json")
}

/// Fuel of the second request (the first warms the plugin's lazy state).
fn fuel_per_request(package: &str, config: &str, request: Request) -> u64 {
    let module = common::module(package);
    let host = TestHost::start(&module, config).unwrap();
    let mut last = 0;
    for i in 0..2 {
        let mut s = host.http_stream();
        s.set_request_id(&format!("req-{i}"));
        match request {
            Request::Get => {
                s.send_request_headers(&[(":method", "GET"), (":path", "/p")], true)
                    .unwrap();
            }
            Request::Post => {
                s.send_request_headers(
                    &[
                        (":method", "POST"),
                        (":path", "/p"),
                        ("content-type", "text/plain"),
                    ],
                    false,
                )
                .unwrap();
                s.send_request_body("hello", true).unwrap();
            }
        }
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap();
        s.send_response_body("ok", true).unwrap();
        s.done().unwrap();
        last = host.fuel_of_stream(s.context_id());
    }
    assert!(last > 0, "{package}: no fuel counted");
    last
}

#[test]
fn fuel_per_request_stays_within_5_percent_of_the_baseline() {
    let measured: BTreeMap<String, u64> = FIXTURES
        .iter()
        .map(|(name, package, config, request)| {
            (
                (*name).to_owned(),
                fuel_per_request(package, config, *request),
            )
        })
        .collect();
    eprintln!("fuel per request (wasmtime operators, the guest only):");
    for pair in FIXTURES.chunks(2) {
        let (sdk, raw) = (&pair[0].0, &pair[1].0);
        let (s, r) = (measured[*sdk], measured[*raw]);
        eprintln!(
            "  {sdk:<18} {s:>7}   {raw:<21} {r:>7}   ratio {:.2}",
            s as f64 / r as f64
        );
    }
    let path = baseline_path();
    if std::env::var_os("UPDATE_FUEL_BASELINE").is_some() {
        let json = serde_json::to_string_pretty(&measured).unwrap();
        std::fs::write(&path, json + "\n").unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let baseline: BTreeMap<String, u64> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut failures = Vec::new();
    for (name, fuel) in &measured {
        let Some(&base) = baseline.get(name) else {
            failures.push(format!(
                "{name}: no baseline (run with UPDATE_FUEL_BASELINE=1)"
            ));
            continue;
        };
        if *fuel as f64 > base as f64 * TOLERANCE {
            failures.push(format!(
                "{name}: {fuel} fuel per request, {:.1} % over the baseline {base}",
                (*fuel as f64 / base as f64 - 1.0) * 100.0
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_count_is_deterministic() {
    let a = fuel_per_request("twin-fixed-sdk", "{}", Request::Get);
    let b = fuel_per_request("twin-fixed-sdk", "{}", Request::Get);
    assert_eq!(a, b);
}
