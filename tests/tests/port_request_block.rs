//! `examples/request-block` (the port of Higress's Go plugin) in a real
//! Envoy 1.40: blocked by URL keyword, exact URL, regexp, header and body
//! with the configured status and message; a clean request reaches the
//! upstream; `_rules_` choose the lists per domain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_e2e::{http_request, wasm_module, ClusterSpec, EchoUpstream, Gateway, PluginSpec};

fn gateway(upstream: &EchoUpstream, config: &str) -> Gateway {
    let wasm = wasm_module("request-block").unwrap_or_else(|e| panic!("{e}"));
    Gateway::builder()
        .name("port-request-block")
        .plugin(PluginSpec::new("request-block", wasm, config))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

const CONFIG: &str = r#"{
    "blocked_code": 403,
    "blocked_message": "Access denied",
    "case_sensitive": false,
    "block_urls": ["blocked", "forbidden"],
    "block_exact_urls": ["/exact-block", "/admin"],
    "block_regexp_urls": ["/api/v\\d+/secret"],
    "block_headers": ["blocked-header", "malicious"],
    "block_bodies": ["blocked-content", "spam"]
}"#;

#[test]
fn blocks_by_url_header_and_body_and_lets_clean_requests_through() {
    let upstream = EchoUpstream::start().unwrap();
    let gw = gateway(&upstream, CONFIG);

    let ok = gw.get("/api/valid", &[("x-seq", b"clean")]).unwrap();
    assert_eq!(ok.status, 200, "{}\n{}", ok.text(), gw.logs());
    assert_eq!(upstream.requests().len(), 1);

    type Headers<'a> = &'a [(&'a str, &'a [u8])];
    let denied: [(&str, Headers<'_>); 5] = [
        ("/API/Blocked/x", &[]),
        ("/admin", &[]),
        ("/api/v7/secret", &[]),
        ("/fine", &[("x-note", b"Malicious")]),
        ("/fine", &[("blocked-header", b"1")]),
    ];
    for (path, headers) in denied {
        let r = gw.get(path, headers).unwrap();
        assert_eq!(r.status, 403, "{path}: {}\n{}", r.text(), gw.logs());
        assert_eq!(r.text(), "Access denied", "{path}");
    }

    let body = |text: &str| {
        http_request(
            gw.listener_addr(),
            "POST",
            "/upload",
            &[("host", b"example.com"), ("content-type", b"text/plain")],
            text.as_bytes(),
        )
        .unwrap()
    };
    let r = body("this is SPAM");
    assert_eq!(r.status, 403, "{}", gw.logs());
    assert_eq!(r.text(), "Access denied");
    let r = body("this is fine");
    assert_eq!(r.status, 200, "{}", gw.logs());

    // Only the two clean requests reached the upstream.
    let seen: Vec<String> = upstream.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(seen, ["/api/valid", "/upload"]);
}

#[test]
fn custom_code_and_domain_rules() {
    let upstream = EchoUpstream::start().unwrap();
    let gw = gateway(
        &upstream,
        r#"{
            "blocked_code": 429, "blocked_message": "Too many requests", "block_urls": ["rate-limit"],
            "_rules_": [{"_match_domain_": ["*.example.com"], "block_urls": ["swagger.html"]}]
        }"#,
    );
    let r = gw
        .get("/api/rate-limit", &[("host", b"other.org")])
        .unwrap();
    assert_eq!(r.status, 429, "{}", gw.logs());
    assert_eq!(r.text(), "Too many requests");
    // The rule replaces the lists and, with no code of its own, answers 403.
    let r = gw
        .get("/swagger.html", &[("host", b"www.example.com")])
        .unwrap();
    assert_eq!(r.status, 403, "{}", gw.logs());
    let r = gw
        .get("/api/rate-limit", &[("host", b"www.example.com")])
        .unwrap();
    assert_eq!(r.status, 200, "{}", gw.logs());
}

#[test]
fn a_config_without_block_rules_is_refused() {
    let upstream = EchoUpstream::start().unwrap();
    let wasm = wasm_module("request-block").unwrap();
    let result = Gateway::builder()
        .name("port-request-block-bad")
        .plugin(PluginSpec::new(
            "request-block",
            wasm,
            r#"{"blocked_message": "x"}"#,
        ))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .start();
    let Err(err) = result else {
        panic!("Envoy must refuse the config");
    };
    let log = err.envoy_log().unwrap_or_default().to_owned();
    assert!(log.contains("there is no block rules"), "{log}");
}
