//! Failure policies after a plugin panic (`x-probe-panic`), one worker.
//!
//! In every case the panic is logged by the SDK at critical level with the
//! plugin's prefix (`[e2e-probe] [nil] [<request id>] panicked: ...`),
//! then the VM traps (`Function: proxy_on_request_headers failed: Uncaught
//! RuntimeError: unreachable`) and the request that panicked gets a 503.
//! After that, on that worker:
//!
//! * `FAIL_CLOSED`: every request gets 503, the upstream sees nothing.
//! * `FAIL_OPEN`: requests pass without the plugin.
//! * `FAIL_RELOAD`: 503 until Envoy recreates the VM (after its backoff,
//!   about a second by default), then the plugin works again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_common;

use std::time::{Duration, Instant};

use e2e_common::{exchange, plugin_lines, probe, start, wait_plugin_line, PROBE_PREFIX};
use higress_e2e::{ClusterSpec, EchoUpstream, FailurePolicy, Gateway, PluginSpec};

fn gateway(name: &str, policy: FailurePolicy, upstream: &EchoUpstream) -> Gateway {
    start(
        Gateway::builder()
            .name(name)
            .plugin(PluginSpec {
                failure_policy: policy,
                ..probe(r#"{"tag": "alive"}"#)
            })
            .cluster(ClusterSpec::new("echo", upstream.port())),
    )
}

/// Checks the plugin works, makes it panic in `phase` (`hook` names the
/// hook in the panic message), and checks the panic request's 503 and the
/// critical log line.
fn panic_in(gateway: &Gateway, upstream: &EchoUpstream, phase: &str, hook: &str) {
    let before = exchange(gateway, upstream, "GET", "/before", &[], b"");
    assert_eq!(before.response.status, 200);
    assert_eq!(
        before
            .upstream
            .unwrap()
            .header_str("x-probe-tag")
            .as_deref(),
        Some("alive")
    );

    let (method, body): (&str, &[u8]) = if phase == "body" {
        ("POST", b"a body")
    } else {
        ("GET", b"")
    };
    let x = exchange(
        gateway,
        upstream,
        method,
        "/panic",
        &[
            ("x-probe-panic", phase.as_bytes()),
            ("x-probe-stream-req", b"count"),
        ],
        body,
    );
    assert_eq!(x.response.status, 503, "{}", x.response.text());

    let lines = wait_plugin_line(gateway, "panicked", Duration::from_secs(5));
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(line.contains("[critical]"), "not critical: {line}");
    assert!(
        line.contains(&format!("{PROBE_PREFIX} [nil] [")),
        "no plugin prefix: {line}"
    );
    assert!(
        line.contains(&format!("probe panic requested in {hook}")),
        "no panic message: {line}"
    );
    assert!(
        line.contains("tests/plugins/probe/src/lib.rs"),
        "no location: {line}"
    );
    let log = gateway.logs();
    assert!(
        log.contains("Uncaught RuntimeError: unreachable"),
        "the VM did not trap:\n{log}"
    );
}

#[test]
fn fail_closed_answers_503_after_a_panic() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = gateway("fail-closed", FailurePolicy::FailClosed, &upstream);
    panic_in(&gateway, &upstream, "headers", "request headers");
    upstream.clear();
    for i in 0..3 {
        let x = exchange(&gateway, &upstream, "GET", &format!("/after/{i}"), &[], b"");
        assert_eq!(x.response.status, 503, "request {i} after the panic");
        assert!(x.upstream.is_none());
    }
    assert!(upstream.requests().is_empty());
    // The plugin never ran again.
    assert!(plugin_lines(&gateway.logs(), "probe request headers: GET /after").is_empty());
}

#[test]
fn fail_closed_after_a_panic_in_a_body_hook() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = gateway("fail-closed-body", FailurePolicy::FailClosed, &upstream);
    panic_in(&gateway, &upstream, "body", "request body");
    assert!(gateway
        .logs()
        .contains("Function: proxy_on_request_body failed"));
    let x = exchange(&gateway, &upstream, "GET", "/after", &[], b"");
    assert_eq!(x.response.status, 503);
    assert!(x.upstream.is_none());
}

#[test]
fn fail_open_passes_requests_without_the_plugin_after_a_panic() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = gateway("fail-open", FailurePolicy::FailOpen, &upstream);
    panic_in(&gateway, &upstream, "headers", "request headers");
    for i in 0..3 {
        let path = format!("/after/{i}");
        let x = exchange(
            &gateway,
            &upstream,
            "GET",
            &path,
            &[("x-probe-set-req", b"x-set=1")],
            b"",
        );
        assert_eq!(x.response.status, 200, "request {i} after the panic");
        let seen = x.upstream.expect("FAIL_OPEN must let the request through");
        // ... without the plugin.
        assert_eq!(seen.header("x-probe-tag"), None);
        assert_eq!(seen.header("x-set"), None);
        assert_eq!(x.response.header("x-probe-tag"), None);
    }
    assert!(plugin_lines(&gateway.logs(), "probe request headers: GET /after").is_empty());
}

#[test]
fn fail_reload_recreates_the_vm_after_a_panic() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = gateway("fail-reload", FailurePolicy::FailReload, &upstream);
    panic_in(&gateway, &upstream, "response", "response headers");
    let started = plugin_lines(&gateway.logs(), "plugin started").len();

    // Until the backoff allows a reload, requests fail; then they work again
    // with the plugin (and its config) back.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut failed = 0;
    loop {
        let x = exchange(&gateway, &upstream, "GET", "/after", &[], b"");
        if x.response.status == 200 {
            let seen = x.upstream.unwrap();
            assert_eq!(seen.header_str("x-probe-tag").as_deref(), Some("alive"));
            assert_eq!(
                x.response.header_str("x-probe-tag").as_deref(),
                Some("alive")
            );
            break;
        }
        assert_eq!(x.response.status, 503, "{}", x.response.text());
        failed += 1;
        assert!(Instant::now() < deadline, "the VM never came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        gateway.stat("wasm.e2e_probe.vm_reload_success").unwrap() >= Some(1),
        "no vm_reload_success"
    );
    // The new VM parsed the config again.
    assert!(plugin_lines(&gateway.logs(), "plugin started").len() > started);
    // And keeps working.
    let x = exchange(&gateway, &upstream, "GET", "/later", &[], b"");
    assert_eq!(x.response.status, 200);
    eprintln!("FAIL_RELOAD: {failed} request(s) got 503 before the reload");
}
