//! Headers both ways, non-UTF-8 values, route/cluster properties and local
//! responses, with the probe plugin (`tests/plugins/probe`) in Envoy 1.40.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_common;

use std::time::Duration;

use e2e_common::{exchange, plugin_lines, probe, start, wait_plugin_line, PROBE_PREFIX};
use higress_e2e::{ClusterSpec, EchoUpstream, FailurePolicy, Gateway, PluginSpec, RouteSpec};

#[test]
fn sets_request_and_response_headers_and_logs_each_phase() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = start(
        Gateway::builder()
            .name("headers")
            .plugin(probe(r#"{"tag": "hdr-tag"}"#))
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    let x = exchange(
        &gateway,
        &upstream,
        "GET",
        "/headers?q=1",
        &[
            ("x-probe-set-req", b"x-added-req=req-value"),
            ("x-probe-set-resp", b"x-added-resp=resp-value"),
        ],
        b"",
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    let seen = x.upstream.expect("the upstream got nothing");
    assert_eq!(seen.header_str("x-added-req").as_deref(), Some("req-value"));
    assert_eq!(seen.header_str("x-probe-tag").as_deref(), Some("hdr-tag"));
    // Set on the response only: the upstream never saw it.
    assert_eq!(seen.header("x-added-resp"), None);
    assert_eq!(
        x.response.header_str("x-added-resp").as_deref(),
        Some("resp-value")
    );
    assert_eq!(
        x.response.header_str("x-probe-tag").as_deref(),
        Some("hdr-tag")
    );
    // The upstream's answer came through: the echo lists our request header.
    let echo = x.response.json().unwrap();
    assert_eq!(echo["headers"]["x-added-req"], "req-value");

    // One line per phase, each with the SDK's prefix and Envoy's request id.
    let request_id = seen.header_str("x-request-id").expect("no x-request-id");
    wait_plugin_line(
        &gateway,
        "probe stream done: GET /headers?q=1",
        Duration::from_secs(5),
    );
    let log = gateway.logs();
    for needle in [
        "probe request headers: GET /headers?q=1",
        "probe response headers: status 200",
        "probe stream done: GET /headers?q=1 (tag hdr-tag)",
    ] {
        let lines = plugin_lines(&log, needle);
        assert_eq!(lines.len(), 1, "{needle:?}:\n{log}");
        let prefix = format!("{PROBE_PREFIX} [nil] [{request_id}] {needle}");
        assert!(
            lines[0].contains(&prefix),
            "{:?} lacks {prefix:?}",
            lines[0]
        );
        assert!(lines[0].contains("[info]"), "{:?} is not at info", lines[0]);
    }
    // No body hook ran: the request had no body and the probe asked for none.
    assert!(plugin_lines(&log, "probe request body").is_empty());
    assert!(plugin_lines(&log, "probe response body").is_empty());
}

#[test]
fn non_utf8_header_values_pass_through_and_the_vm_survives() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = start(
        Gateway::builder()
            .name("non-utf8")
            .plugin(PluginSpec {
                // A VM that trapped would answer 503 from then on.
                failure_policy: FailurePolicy::FailClosed,
                ..probe(r#"{"tag": "bytes"}"#)
            })
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    let raw: Vec<u8> = (0x80..=0xFFu8).collect();
    let x = exchange(
        &gateway,
        &upstream,
        "GET",
        "/bytes",
        &[
            ("x-bin", &raw),
            ("x-probe-copy", b"x-bin"),
            // Non-UTF-8 in the probe's own control headers: read lossily,
            // not understood, ignored.
            ("x-probe-req-body", b"\xff\xfe"),
            ("x-probe-set-resp", b"x-resp-bin=\xff"),
        ],
        b"",
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    let seen = x.upstream.expect("the upstream got nothing");
    assert_eq!(seen.header("x-bin"), Some(raw.as_slice()), "x-bin changed");
    assert_eq!(
        seen.header("x-probe-copied"),
        Some(raw.as_slice()),
        "the probe's copy of the raw bytes differs"
    );
    // `name=value` was read lossily: the 0xFF became U+FFFD, sent as UTF-8.
    assert_eq!(x.response.header("x-resp-bin"), Some("\u{fffd}".as_bytes()));
    // The log line carries the value lossily decoded.
    let lines = wait_plugin_line(&gateway, "probe copies x-bin: ", Duration::from_secs(5));
    assert!(lines[0].contains('\u{fffd}'), "{}", lines[0]);

    // Same worker, next request: still served by a live plugin.
    let x = exchange(&gateway, &upstream, "GET", "/after", &[], b"");
    assert_eq!(x.response.status, 200);
    assert_eq!(
        x.upstream.unwrap().header_str("x-probe-tag").as_deref(),
        Some("bytes")
    );
    let log = gateway.logs();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("Uncaught"), "{log}");
}

#[test]
fn plugin_reads_route_and_cluster_names_on_stock_envoy() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = start(
        Gateway::builder()
            .name("props")
            .plugin(probe(r#"{"tag": "props"}"#))
            .cluster(ClusterSpec::new(
                "outbound|80||svc-a.static",
                upstream.port(),
            ))
            .cluster(ClusterSpec::new("plain", upstream.port()))
            .route(RouteSpec::new("route-a", "/a", "outbound|80||svc-a.static"))
            .route(RouteSpec::new("fallback", "/", "plain")),
    );
    for (path, route, cluster) in [
        ("/a/x", "route-a", "outbound|80||svc-a.static"),
        ("/other", "fallback", "plain"),
    ] {
        let x = exchange(
            &gateway,
            &upstream,
            "GET",
            path,
            &[("x-probe-props", b"1")],
            b"",
        );
        assert_eq!(x.response.status, 200);
        let seen = x.upstream.unwrap();
        // Stock Envoy has no `route_name`/`cluster_name`; the SDK falls back
        // to `xds.route_name`/`xds.cluster_name`.
        assert_eq!(
            seen.header_str("x-probe-route").as_deref(),
            Some(route),
            "{path}"
        );
        assert_eq!(
            seen.header_str("x-probe-cluster").as_deref(),
            Some(cluster),
            "{path}"
        );
    }
}

#[test]
fn local_response_from_request_headers_reaches_the_client_only() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = start(
        Gateway::builder()
            .name("reply-headers")
            .plugin(probe(r#"{"tag": "reply"}"#))
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    for (method, body) in [("GET", &b""[..]), ("POST", &b"a request body"[..])] {
        let x = exchange(
            &gateway,
            &upstream,
            method,
            "/reply",
            &[
                ("x-probe-reply", b"418"),
                ("x-probe-set-resp", b"x-on-reply=1"),
            ],
            body,
        );
        assert_eq!(x.response.status, 418, "{method}: {}", x.response.text());
        assert_eq!(x.response.text(), "probe reply 418\n");
        assert_eq!(
            x.response.header_str("x-probe-reply").as_deref(),
            Some("headers")
        );
        // The local reply passes the plugin's own response hook.
        assert_eq!(
            x.response.header_str("x-probe-tag").as_deref(),
            Some("reply")
        );
        assert_eq!(x.response.header_str("x-on-reply").as_deref(), Some("1"));
        assert!(
            x.upstream.is_none(),
            "{method}: the upstream saw the request"
        );
    }
    assert!(upstream.requests().is_empty());
    let log = gateway.logs();
    assert_eq!(
        plugin_lines(&log, "probe replying 418 from the headers hook").len(),
        2
    );
    assert_eq!(
        plugin_lines(&log, "probe response headers: status 418").len(),
        2
    );
}

#[test]
fn local_response_from_the_request_body_hook() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = start(
        Gateway::builder()
            .name("reply-body")
            .plugin(PluginSpec {
                // The probe holds the headers while it reads the body.
                allow_on_headers_stop_iteration: true,
                ..probe(r#"{"tag": "reply-body"}"#)
            })
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/reply-body",
        &[("x-probe-reply", b"403@body")],
        b"the body decides",
    );
    assert_eq!(x.response.status, 403, "{}", x.response.text());
    assert_eq!(x.response.text(), "probe reply 403\n");
    assert_eq!(
        x.response.header_str("x-probe-reply").as_deref(),
        Some("body")
    );
    assert!(x.upstream.is_none(), "the upstream saw the request");
    let log = gateway.logs();
    assert_eq!(
        plugin_lines(&log, "probe request body: 16 bytes").len(),
        1,
        "{log}"
    );
    assert_eq!(
        plugin_lines(&log, "probe replying 403 from the body hook").len(),
        1
    );
}

/// Envoy drops the request headers once they continue: a request line (and
/// request id) first read in a later phase must still be right. The SDK
/// then answers from the `request.*` properties.
#[test]
fn request_line_first_read_in_the_response_phase() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = start(
        Gateway::builder()
            .name("late-line")
            .plugin(probe(r#"{"tag": "late"}"#))
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/late/path?x=1",
        &[("x-probe-late-line", b"1")],
        b"hello",
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    let seen = x.upstream.expect("the upstream got nothing");
    let request_id = seen.header_str("x-request-id").expect("no x-request-id");
    let host = format!("{}", gateway.listener_addr());
    let expected =
        format!("probe late request line: http {host} POST /late/path?x=1 id={request_id}");
    wait_plugin_line(&gateway, &expected, Duration::from_secs(5));
    // The request-headers line was logged without reading the request line,
    // yet carries the request id in its prefix.
    let log = gateway.logs();
    let lines = plugin_lines(&log, "probe request headers: request line read later");
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains(&format!("[{request_id}] probe request headers")),
        "{}",
        lines[0]
    );
}
