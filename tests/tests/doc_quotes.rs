//! The docs quote Envoy's own log lines so that users can grep for them.
//! This test keeps those quotes true: it collects every quoted Envoy line
//! from the workspace's Markdown (README, CHANGELOG, docs/ in English and
//! Chinese, the crates' and examples' READMEs), makes a real Envoy 1.40
//! say each of them, and fails when a quote matches nothing Envoy printed.
//!
//! The scenarios:
//! - a bad plugin config in a static bootstrap (Envoy refuses to start);
//! - a bad plugin config pushed over xDS, as Higress does (here a
//!   file-based LDS that Envoy watches; the update is rejected and the old
//!   listener keeps serving);
//! - a module importing the Higress-only Redis calls, on stock Envoy;
//! - a plugin logging while it serves a request.
//!
//! In a quote, `<name>`, `...` and `…` stand for any text.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_e2e::{wasm_module, ClusterSpec, EchoUpstream, Gateway, PluginSpec};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How every quoted Envoy line starts; a quote is the text between
/// backticks or double quotes that starts with one of these.
const ENVOY_LINES: &[&str] = &[
    "Unable to create Wasm",
    "Failed to load Wasm module",
    "wasm log ",
    "lds: listener",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every Markdown file of the workspace (README, CHANGELOG, docs/, the
/// crates' and examples' READMEs), outside `target/` and dot directories.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![workspace()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every quoted Envoy line: (file, quote). A quote may wrap across lines in
/// the Markdown source; it is joined with single spaces.
fn quotes() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let name = file
            .strip_prefix(workspace())
            .unwrap()
            .display()
            .to_string();
        for delim in ['`', '"', '“'] {
            let close = if delim == '“' { '”' } else { delim };
            let mut rest = joined.as_str();
            while let Some(at) = rest.find(delim) {
                let after = &rest[at + delim.len_utf8()..];
                let Some(end) = after.find(close) else { break };
                let quote = &after[..end];
                if ENVOY_LINES.iter().any(|p| quote.starts_with(p)) {
                    found.push((name.clone(), quote.to_owned()));
                }
                rest = &after[end + close.len_utf8()..];
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The quote as literal pieces between wildcards (`<...>`, `...`, `…`).
fn pieces(quote: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = quote.chars().peekable();
    while let Some(c) = chars.next() {
        let wildcard = match c {
            '<' => {
                for c in chars.by_ref() {
                    if c == '>' {
                        break;
                    }
                }
                true
            }
            '…' => true,
            '.' if chars.peek() == Some(&'.') => {
                while chars.peek() == Some(&'.') {
                    chars.next();
                }
                true
            }
            _ => false,
        };
        if wildcard {
            out.push(String::new());
        } else if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out.into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether one line of Envoy's log contains the pieces in order.
fn line_matches(line: &str, pieces: &[String]) -> bool {
    let mut rest = line;
    for piece in pieces {
        match rest.find(piece.as_str()) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

fn start_failure_log(builder: higress_e2e::GatewayBuilder) -> String {
    match builder.ready_timeout(Duration::from_secs(20)).start() {
        Ok(gateway) => panic!("Envoy started:\n{}", gateway.logs()),
        Err(e) => e
            .envoy_log()
            .unwrap_or_else(|| panic!("not an Envoy start failure: {e}"))
            .to_owned(),
    }
}

const BAD_CONFIG: &str = r#"{"some_field": 123}"#;
const GOOD_CONFIG: &str = r#"{"some_field": "hello"}"#;

/// A bad config in a static bootstrap: Envoy does not start.
fn static_bootstrap_refusal(upstream: &EchoUpstream) -> String {
    let wasm = wasm_module("my-plugin").unwrap();
    start_failure_log(
        Gateway::builder()
            .name("quotes-static")
            .plugin(PluginSpec::new("my-plugin", wasm, BAD_CONFIG))
            .cluster(ClusterSpec::new("echo", upstream.port())),
    )
}

/// A bad config pushed over xDS: the listener comes from a file Envoy
/// watches (LDS); the update with the bad config is rejected.
fn xds_refusal(upstream: &EchoUpstream) -> String {
    let wasm = wasm_module("my-plugin").unwrap();
    let dir = tempdir("quotes-lds");
    let lds = dir.join("lds.json");
    let lds_for_patch = lds.clone();
    let gateway = Gateway::builder()
        .name("quotes-xds")
        .plugin(PluginSpec::new("my-plugin", wasm, GOOD_CONFIG))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .patch_bootstrap(move |bootstrap| {
            let listeners = bootstrap["static_resources"]["listeners"].take();
            bootstrap["static_resources"]
                .as_object_mut()
                .unwrap()
                .remove("listeners");
            write_lds(&lds_for_patch, &listeners);
            bootstrap["node"] = json!({ "id": "quotes", "cluster": "quotes" });
            bootstrap["dynamic_resources"] = json!({
                "lds_config": {
                    "resource_api_version": "V3",
                    "path_config_source": { "path": lds_for_patch.display().to_string() },
                }
            });
        })
        .ready_timeout(Duration::from_secs(20))
        .start()
        .unwrap_or_else(|e| panic!("Envoy with a file-based LDS did not start: {e}"));
    let served = gateway.get("/", &[]).unwrap();
    assert_eq!(served.status, 200, "{}", gateway.logs());

    // Push the same listener with a bad plugin config.
    let mut listeners: Value =
        serde_json::from_str(&std::fs::read_to_string(&lds).unwrap()).unwrap();
    let text = serde_json::to_string(&listeners).unwrap();
    assert!(
        text.contains("some_field"),
        "the plugin config is not in the LDS file"
    );
    let bad = text.replace(
        &serde_json::to_string(GOOD_CONFIG).unwrap(),
        &serde_json::to_string(BAD_CONFIG).unwrap(),
    );
    listeners = serde_json::from_str(&bad).unwrap();
    let staged = dir.join("lds.json.new");
    std::fs::write(&staged, serde_json::to_vec(&listeners).unwrap()).unwrap();
    std::fs::rename(&staged, &lds).unwrap();
    assert!(
        gateway.wait_for_log("Unable to create Wasm", Duration::from_secs(20)),
        "Envoy did not report the rejected xDS update:\n{}",
        gateway.logs()
    );
    // The old listener (good config) still serves.
    let served = gateway.get("/", &[]).unwrap();
    assert_eq!(served.status, 200, "{}", gateway.logs());
    gateway.logs()
}

fn write_lds(path: &Path, listeners: &Value) {
    let resources: Vec<Value> = listeners
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut l = l.clone();
            l["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
            l
        })
        .collect();
    let response = json!({ "version_info": "1", "resources": resources });
    std::fs::write(path, serde_json::to_vec(&response).unwrap()).unwrap();
}

fn tempdir(name: &str) -> PathBuf {
    let dir = workspace()
        .join("target/e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A module importing `proxy_redis_*` on stock Envoy.
fn missing_import_refusal(upstream: &EchoUpstream) -> String {
    let wasm = wasm_module("redis-plugin").unwrap();
    let config = r#"{"redis": {"service_name": "redis.static", "service_port": 6379}, "key": "k"}"#;
    start_failure_log(
        Gateway::builder()
            .name("quotes-redis")
            .plugin(PluginSpec::new("redis-plugin", wasm, config))
            .cluster(ClusterSpec::new("echo", upstream.port())),
    )
}

/// my-plugin serving one request (it logs at info).
fn serving_log(upstream: &EchoUpstream) -> String {
    let wasm = wasm_module("my-plugin").unwrap();
    let gateway = Gateway::builder()
        .name("quotes-serve")
        .plugin(PluginSpec::new("my-plugin", wasm, GOOD_CONFIG))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .log_level("wasm:info")
        .start()
        .unwrap();
    let served = gateway.get("/", &[("x-user-id", b"u1")]).unwrap();
    assert_eq!(served.status, 200);
    assert!(
        gateway.wait_for_log("request received", Duration::from_secs(10)),
        "{}",
        gateway.logs()
    );
    gateway.logs()
}

#[test]
fn pieces_and_matching() {
    assert_eq!(
        pieces("Unable to create Wasm plugin <name>"),
        ["Unable to create Wasm plugin"]
    );
    assert_eq!(pieces("wasm log my-plugin: ..."), ["wasm log my-plugin:"]);
    assert_eq!(pieces("a … b...c"), ["a", "b", "c"]);
    assert!(line_matches(
        "x wasm log my-plugin: y",
        &pieces("wasm log my-plugin: ...")
    ));
    assert!(!line_matches(
        "x wasm log my-plugin  : y",
        &pieces("wasm log my-plugin: ...")
    ));
    assert!(!line_matches("b then a", &pieces("a ... b")));
}

#[test]
fn every_quoted_envoy_line_is_one_envoy_prints() {
    let quotes = quotes();
    // The scan finds the quotes the guides are known to carry; if it finds
    // none of a kind, the scan (not the docs) is broken.
    for prefix in ENVOY_LINES {
        assert!(
            quotes.iter().any(|(_, q)| q.starts_with(prefix)),
            "no quote starting with {prefix:?} found in the docs: {quotes:#?}"
        );
    }

    let upstream = EchoUpstream::start().unwrap();
    let logs = [
        (
            "static bootstrap, bad config",
            static_bootstrap_refusal(&upstream),
        ),
        ("xDS update, bad config", xds_refusal(&upstream)),
        (
            "Redis imports on stock Envoy",
            missing_import_refusal(&upstream),
        ),
        ("serving a request", serving_log(&upstream)),
    ];

    let mut wrong = Vec::new();
    for (file, quote) in &quotes {
        let pieces = pieces(quote);
        let seen = logs
            .iter()
            .any(|(_, log)| log.lines().any(|line| line_matches(line, &pieces)));
        if !seen {
            wrong.push(format!("{file}: `{quote}`"));
        }
    }
    if !wrong.is_empty() {
        let mut report = String::new();
        for (scenario, log) in &logs {
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| ENVOY_LINES.iter().any(|p| l.contains(p.trim())))
                .take(8)
                .collect();
            report.push_str(&format!("--- {scenario}:\n{}\n", lines.join("\n")));
        }
        panic!(
            "quoted Envoy lines that Envoy 1.40 does not print:\n{}\n\nwhat it printed:\n{report}",
            wrong.join("\n")
        );
    }
}
