//! Go's `main_test.go` of request-block, case by case, in the native test
//! host (the README maps each Go test to the Rust one), plus the Go
//! README's example configs and `_rules_`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use request_block::{parse_config, RequestBlockConfig};
use serde_json::{json, Value};

higress_test_host::both_modes! {
plugin: request_block::Plugin,
package: "request-block",

/// Go's `testConfig`.
fn test_config() -> Value {
    json!({
        "blocked_code": 403,
        "blocked_message": "Access denied",
        "case_sensitive": false,
        "block_urls": ["blocked", "forbidden"],
        "block_exact_urls": ["/exact-block", "/admin"],
        "block_regexp_urls": [r"/api/v\d+/blocked"],
        "block_headers": ["blocked-header", "malicious"],
        "block_bodies": ["blocked-content", "spam"],
    })
}

/// What the host sees from a blocked request's headers: Go's hook returns
/// `ActionContinue` after `SendHttpResponse`; the SDK holds the stream once
/// a local response is sent, whatever the hook returns, so Envoy never
/// forwards a blocked request.
const BLOCKED: Action = Action::Pause;

fn started(config: &Value) -> TestHost {
    start(config.to_string()).unwrap()
}

/// Go's `GetMatchConfig()`: the config as the plugin parsed it (the plugin
/// must also start with it).
fn parsed(config: &Value) -> RequestBlockConfig {
    started(config);
    parse_config(config).unwrap()
}

/// Request headers (`:authority test.com` plus `headers`), no body; returns
/// the plugin's action and the local response it sent, if any.
fn headers_only(host: &TestHost, headers: &[(&str, &str)]) -> (Action, Option<LocalResponse>) {
    let mut s = host.http_stream();
    s.set_authority("test.com");
    let action = s.send_request_headers(headers, true).unwrap();
    (action, s.local_response())
}

fn get(host: &TestHost, path: &str) -> (Action, Option<LocalResponse>) {
    headers_only(host, &[(":path", path), (":method", "GET")])
}

/// Headers for `/api/test`, then `body`; returns the body action and the
/// local response.
fn post(host: &TestHost, path: &str, body: &str) -> (Action, Action, Option<LocalResponse>) {
    let mut s = host.http_stream();
    s.set_authority("test.com");
    let headers = s
        .send_request_headers(&[(":path", path), (":method", "POST")], false)
        .unwrap();
    let body = s.send_request_body(body, true).unwrap();
    (headers, body, s.local_response())
}

fn assert_blocked(response: Option<LocalResponse>, status: u32, body: &str, details: &str) {
    let response = response.expect("the request should be blocked");
    assert_eq!(response.status, status);
    assert_eq!(String::from_utf8_lossy(&response.body), body);
    assert_eq!(response.details, details);
}

#[test]
fn parse_config_reads_every_list() {
    // TestParseConfig
    let c = parsed(&test_config());
    assert_eq!(c.blocked_code, 403);
    assert_eq!(c.blocked_message, "Access denied");
    assert!(!c.case_sensitive);
    assert_eq!(c.block_urls, ["blocked", "forbidden"]);
    assert_eq!(c.block_exact_urls, ["/exact-block", "/admin"]);
    assert_eq!(c.block_headers, ["blocked-header", "malicious"]);
    assert_eq!(c.block_bodies, ["blocked-content", "spam"]);
    assert_eq!(c.block_regexp_urls.len(), 1);
}

#[test]
fn blocks_url_by_keyword() {
    // TestBlockUrlByKeyword
    let host = started(&test_config());
    let (action, response) = get(&host, "/api/blocked/endpoint");
    assert_eq!(action, BLOCKED);
    assert_blocked(
        response,
        403,
        "Access denied",
        "request-block.url_blocked.keyword",
    );
}

#[test]
fn blocks_url_by_exact_match() {
    // TestBlockUrlByExactMatch
    let host = started(&test_config());
    let (action, response) = get(&host, "/exact-block");
    assert_eq!(action, BLOCKED);
    assert_blocked(
        response,
        403,
        "Access denied",
        "request-block.url_blocked.exact",
    );
    // Exact: a longer path is not blocked by it.
    assert!(get(&host, "/exact-block/more").1.is_none());
}

#[test]
fn blocks_url_by_regexp() {
    // TestBlockUrlByRegexp
    let host = started(&test_config());
    let (action, response) = get(&host, "/api/v1/blocked");
    assert_eq!(action, BLOCKED);
    // "blocked" is also a keyword, and keywords are checked first, as in Go.
    assert_blocked(
        response,
        403,
        "Access denied",
        "request-block.url_blocked.keyword",
    );
}

#[test]
fn blocks_by_headers() {
    // TestBlockByHeaders
    let host = started(&test_config());
    let (action, response) = headers_only(
        &host,
        &[(":path", "/api/valid"), ("blocked-header", "some-value")],
    );
    assert_eq!(action, BLOCKED);
    assert_blocked(response, 403, "Access denied", "request-block.body_blocked");
    // A header value matches too.
    let (_, response) = headers_only(&host, &[(":path", "/ok"), ("x-note", "MALICIOUS")]);
    assert!(response.is_some());
}

#[test]
fn blocks_by_body() {
    // TestBlockByBody
    let host = started(&test_config());
    let (headers, body, response) = post(
        &host,
        "/api/safe/endpoint",
        "This is blocked-content in the body",
    );
    assert_eq!(headers, Action::Continue);
    assert_ne!(body, Action::Ended, "the body reached the plugin");
    assert_blocked(response, 403, "Access denied", "request-block.body_blocked");
}

#[test]
fn allows_a_valid_request() {
    // TestAllowValidRequest
    let host = started(&test_config());
    let mut s = host.http_stream();
    s.set_authority("test.com");
    let action = s
        .send_request_headers(
            &[
                (":path", "/api/valid/endpoint"),
                ("valid-header", "valid-value"),
            ],
            true,
        )
        .unwrap();
    assert_eq!(action, Action::Continue);
    assert!(s.local_response().is_none());
    assert!(s.upstream_request_complete());
    // A clean body passes as well.
    let (_, body, response) = post(&host, "/api/valid", "hello");
    assert_eq!(body, Action::Continue);
    assert!(response.is_none());
}

#[test]
fn matching_is_case_insensitive_when_configured() {
    // TestCaseInsensitiveBlocking
    let host = started(&test_config());
    let (action, response) = get(&host, "/API/BLOCKED/ENDPOINT");
    assert_eq!(action, BLOCKED);
    assert_eq!(response.unwrap().status, 403);
}

#[test]
fn custom_blocked_code_and_message() {
    // TestCustomBlockedCode
    let host = started(&json!({
        "blocked_code": 429,
        "blocked_message": "Too many requests",
        "case_sensitive": false,
        "block_urls": ["rate-limit"],
    }));
    let (action, response) = get(&host, "/api/rate-limit/test");
    assert_eq!(action, BLOCKED);
    assert_blocked(
        response,
        429,
        "Too many requests",
        "request-block.url_blocked.keyword",
    );
}

#[test]
fn parse_config_edge_cases() {
    // TestParseConfigEdgeCases / invalid blocked_code
    for code in [999, 100, 600, 0, -1] {
        let c = parsed(&json!({"blocked_code": code, "block_urls": ["test"]}));
        assert_eq!(c.blocked_code, 403, "blocked_code {code}");
    }
    assert_eq!(
        parsed(&json!({"blocked_code": 101, "block_urls": ["t"]})).blocked_code,
        101
    );
    // ... / case sensitive true: patterns keep their case.
    let c = parsed(&json!({
        "case_sensitive": true,
        "block_urls": ["BLOCKED"],
        "block_headers": ["BLOCKED-HEADER"],
        "block_bodies": ["BLOCKED-CONTENT"],
    }));
    assert!(c.case_sensitive);
    assert_eq!(c.block_urls, ["BLOCKED"]);
    assert_eq!(c.block_headers, ["BLOCKED-HEADER"]);
    assert_eq!(c.block_bodies, ["BLOCKED-CONTENT"]);
    // ... / empty strings handling: dropped.
    let c = parsed(&json!({
        "block_urls": ["valid", ""],
        "block_exact_urls": ["", "valid"],
        "block_regexp_urls": ["", "valid"],
        "block_headers": ["", "valid"],
        "block_bodies": ["valid", ""],
    }));
    assert_eq!(c.block_urls, ["valid"]);
    assert_eq!(c.block_exact_urls, ["valid"]);
    assert_eq!(c.block_regexp_urls.len(), 1);
    assert_eq!(c.block_headers, ["valid"]);
    assert_eq!(c.block_bodies, ["valid"]);
    // ... / no block rules: start fails.
    let failure = start(r#"{"blocked_message": "No rules"}"#).unwrap_err();
    assert_eq!(failure.stage, StartStage::Configure);
    assert!(!failure
        .logs_containing("there is no block rules")
        .is_empty());
    // Only empty strings count as nothing, too.
    assert!(start(r#"{"block_urls": [""]}"#).is_err());
}

#[test]
fn an_invalid_regexp_fails_start_naming_it() {
    // Go (since the regexp-only fix) returns `invalid regexp pattern`.
    let failure = start(r#"{"block_regexp_urls": ["a(b"]}"#).unwrap_err();
    assert_eq!(failure.stage, StartStage::Configure);
    let lines = failure.logs_containing("block_regexp_urls[0]");
    assert!(
        lines
            .iter()
            .any(|l| l.message.contains("invalid regexp pattern")),
        "{failure}"
    );
}

#[test]
fn request_headers_error_handling() {
    // TestOnHttpRequestHeadersErrorHandling / get path failed
    let host = started(&test_config());
    let (action, response) = headers_only(&host, &[]);
    assert_eq!(action, Action::Continue);
    assert!(response.is_none());
    assert!(!host.logs_containing("get path failed").is_empty());

    // ... / get headers failed (headers without the blocked one)
    let host = started(&json!({
        "blocked_code": 403,
        "blocked_message": "Header blocked",
        "block_headers": ["blocked-header"],
    }));
    let (action, response) = get(&host, "/api/test");
    assert_eq!(action, Action::Continue);
    assert!(response.is_none());

    // ... / only block bodies: the headers continue, the body is read.
    let host = started(&json!({
        "blocked_code": 403,
        "blocked_message": "Body blocked",
        "block_bodies": ["blocked-content"],
    }));
    let (headers, _, response) = post(&host, "/api/test", "fine");
    assert_eq!(headers, Action::Continue);
    assert!(response.is_none());
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/api/test")], false)
        .unwrap();
    s.send_request_body("with blocked-content", true).unwrap();
    assert_eq!(s.local_response().unwrap().body, b"Body blocked");
}

#[test]
fn without_block_bodies_the_body_is_not_read() {
    // Go calls DontReadRequestBody when there are no block_bodies.
    let host = started(&json!({"block_urls": ["nope"]}));
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/x")], false).unwrap();
    s.send_request_body("nope nope", true).unwrap();
    assert!(s.local_response().is_none());
    assert_eq!(s.upstream_request_body(), b"nope nope");
}

#[test]
fn request_body_case_sensitivity() {
    // TestOnHttpRequestBodyCaseSensitive / case sensitive true
    let host = started(&json!({
        "case_sensitive": true,
        "blocked_code": 403,
        "blocked_message": "Body blocked",
        "block_bodies": ["BLOCKED"],
    }));
    let (headers, _, response) = post(&host, "/api/test", "This contains BLOCKED content");
    assert_eq!(headers, Action::Continue);
    assert_eq!(response.unwrap().status, 403);
    // ... and lowercase does not match a case-sensitive pattern.
    assert!(post(&host, "/api/test", "this contains blocked content")
        .2
        .is_none());

    // ... / case sensitive false
    let host = started(&json!({"case_sensitive": false, "block_bodies": ["blocked"]}));
    let (_, _, response) = post(&host, "/api/test", "This contains BLOCKED content");
    assert_eq!(response.unwrap().status, 403);
}

#[test]
fn regexp_edge_cases() {
    // TestBlockUrlByRegexpEdgeCases / complex regexp
    let host = started(&json!({
        "case_sensitive": true,
        "blocked_code": 403,
        "blocked_message": "Blocked by regexp",
        "block_regexp_urls": [r"/api/v\d+/users/\d+/posts"],
    }));
    let (action, response) = get(&host, "/api/v2/users/123/posts");
    assert_eq!(action, BLOCKED);
    assert_blocked(
        response,
        403,
        "Blocked by regexp",
        "request-block.url_blocked.regexp",
    );

    // ... / non-matching regexp
    let host = started(&json!({
        "case_sensitive": true,
        "blocked_code": 403,
        "blocked_message": "Blocked by regexp",
        "block_regexp_urls": [r"/api/v\d+/blocked"],
    }));
    let (action, response) = get(&host, "/api/blocked");
    assert_eq!(action, Action::Continue);
    assert!(response.is_none());
}

#[test]
fn regexp_urls_alone_block() {
    // TestBlockRegexpUrlsOnly
    let host = started(&json!({
        "blocked_code": 403,
        "blocked_message": "Access denied",
        "block_regexp_urls": [r"/api/v\d+/blocked"],
    }));
    assert_blocked(
        get(&host, "/api/v2/blocked").1,
        403,
        "Access denied",
        "request-block.url_blocked.regexp",
    );
}

#[test]
fn exact_urls_alone_block() {
    // TestBlockExactUrlsOnly
    let host = started(&json!({
        "blocked_code": 403,
        "blocked_message": "Access denied",
        "block_exact_urls": ["/admin", "/internal/secrets"],
    }));
    let (action, response) = get(&host, "/admin");
    assert_eq!(action, BLOCKED);
    assert_eq!(response.unwrap().status, 403);
}

#[test]
fn parse_config_accepts_regexp_only() {
    // TestParseConfigAcceptsRegexpOnly
    let c = parsed(&json!({"block_regexp_urls": [r"/api/v\d+/blocked"]}));
    assert_eq!(c.block_regexp_urls.len(), 1);
}

#[test]
fn parse_config_accepts_exact_only() {
    // TestParseConfigAcceptsExactOnly
    let c = parsed(&json!({"block_exact_urls": ["/admin"]}));
    assert_eq!(c.block_exact_urls, ["/admin"]);
}

// ----- the Go README's example configs, unchanged (as JSON) -----------------

#[test]
fn readme_block_urls() {
    let host = started(&json!({"block_urls": ["swagger.html", "foo=bar"], "case_sensitive": false}));
    assert_eq!(get(&host, "/?foo=Bar").1.unwrap().status, 403);
    assert_eq!(get(&host, "/Swagger.html").1.unwrap().status, 403);
    assert!(get(&host, "/index.html").1.is_none());
}

#[test]
fn readme_block_headers() {
    let host = started(&json!({"block_headers": ["example-key", "example-value"]}));
    let blocked = |h: (&str, &str)| headers_only(&host, &[(":path", "/"), h]).1.is_some();
    assert!(blocked(("example-key", "123")));
    assert!(blocked(("my-header", "example-value")));
    assert!(!blocked(("my-header", "other")));
}

#[test]
fn readme_block_bodies() {
    let host = started(&json!({"block_bodies": ["hello world"], "case_sensitive": false}));
    assert_eq!(post(&host, "/", "Hello World").2.unwrap().status, 403);
    assert_eq!(post(&host, "/", "hello world").2.unwrap().status, 403);
    assert!(post(&host, "/", "goodbye").2.is_none());
}

#[test]
fn readme_rules_apply_per_route_and_domain_on_their_own_keys() {
    let config = json!({
        "_rules_": [
            {"_match_route_": ["route-a", "route-b"], "block_bodies": ["hello world"]},
            {"_match_domain_": ["*.example.com", "test.com"],
             "block_urls": ["swagger.html"], "block_bodies": ["hello world"]}
        ]
    });
    let host = started(&config);
    let request = |authority: &str, route: Option<&str>, path: &str, body: &str| {
        let mut s = host.http_stream();
        s.set_authority(authority);
        if let Some(route) = route {
            s.set_route_name(route);
        }
        s.send_request_headers(&[(":path", path)], false).unwrap();
        s.send_request_body(body, true).unwrap();
        s.local_response().map(|r| r.status)
    };
    // route-a blocks the body but not the URL (its rule has no block_urls).
    assert_eq!(
        request("a.org", Some("route-a"), "/", "hello world"),
        Some(403)
    );
    assert_eq!(
        request("a.org", Some("route-a"), "/swagger.html", "x"),
        None
    );
    // The domain rule blocks both.
    assert_eq!(
        request("www.example.com", None, "/swagger.html", "x"),
        Some(403)
    );
    assert_eq!(request("test.com", None, "/", "hello world"), Some(403));
    // No rule and no global config: the plugin stays out.
    assert_eq!(
        request("other.org", None, "/swagger.html", "hello world"),
        None
    );
}

#[test]
fn rules_do_not_inherit_the_global_lists() {
    // Go's ParseConfigBy parses a rule on its own keys.
    let host = started(&json!({
        "block_urls": ["global-only"],
        "_rules_": [{"_match_domain_": ["r.com"], "block_urls": ["rule-only"]}]
    }));
    let on = |authority: &str, path: &str| {
        let mut s = host.http_stream();
        s.set_authority(authority);
        s.send_request_headers(&[(":path", path)], true).unwrap();
        s.local_response().is_some()
    };
    assert!(on("x.com", "/global-only"));
    assert!(!on("x.com", "/rule-only"));
    assert!(on("r.com", "/rule-only"));
    assert!(!on("r.com", "/global-only"));
}
}
