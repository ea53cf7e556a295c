//! Go's `main_test.go` and `config/config_test.go` of ai-token-ratelimit,
//! case by case, in the native test host: Go's `CallOnRedisCall(0, resp)`
//! is `respond_redis` with the same nested `{{threshold, used, ttl}, ...}`
//! reply, and Go's `GetRedisCalloutAttributes()` count is the host's
//! pending callouts. Then the Go README's configs, and the plugin against a
//! real `redis-server` (the Go test has none): tokens are charged after each
//! response until the budget is spent and requests get 429.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../higress-wrapper/tests/common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use ai_token_ratelimit::{parse_config, IpSource, KeyMatch, LimitType};
use redis_server::{RedisServer, Resp};
use serde_json::{json, Value};

higress_test_host::both_modes! {
plugin: ai_token_ratelimit::Plugin,
package: "ai-token-ratelimit",

const CLUSTER: &str = "outbound|6379||redis.static";
const USAGE_BODY: &str = r#"{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":10,"completion_tokens":15,"total_tokens":25}}"#;

fn redis() -> Value {
    json!({"service_name": "redis.static", "service_port": 6379})
}

fn global_threshold() -> Value {
    json!({
        "rule_name": "ai-token-global-limit",
        "global_threshold": {"token_per_minute": 1000},
        "redis": {"service_name": "redis.static", "service_port": 6379, "timeout": 1000},
        "rejected_code": 429,
        "rejected_msg": "Too many AI token requests",
    })
}

fn rule_config(name: &str, item: Value, msg: Option<&str>) -> Value {
    let mut c = json!({"rule_name": name, "rule_items": [item], "redis": redis()});
    if let Some(msg) = msg {
        c["rejected_code"] = json!(429);
        c["rejected_msg"] = json!(msg);
    }
    c
}

fn header_limit() -> Value {
    let item = json!({"limit_by_header": "x-api-key", "limit_keys": [{"key": "test-key-123", "token_per_minute": 100}]});
    rule_config(
        "ai-token-header-limit",
        item,
        Some("API key rate limit exceeded"),
    )
}

fn param_limit() -> Value {
    let item = json!({"limit_by_param": "apikey", "limit_keys": [{"key": "param-key-456", "token_per_minute": 50}]});
    rule_config(
        "ai-token-param-limit",
        item,
        Some("Parameter rate limit exceeded"),
    )
}

fn consumer_limit() -> Value {
    let item = json!({"limit_by_consumer": "", "limit_keys": [{"key": "consumer1", "token_per_minute": 200}]});
    rule_config(
        "ai-token-consumer-limit",
        item,
        Some("Consumer rate limit exceeded"),
    )
}

fn cookie_limit() -> Value {
    let item = json!({"limit_by_cookie": "session-id", "limit_keys": [{"key": "session-789", "token_per_minute": 75}]});
    rule_config(
        "ai-token-cookie-limit",
        item,
        Some("Session rate limit exceeded"),
    )
}

fn ip_limit() -> Value {
    let item = json!({"limit_by_per_ip": "from-remote-addr", "limit_keys": [{"key": "192.168.1.0/24", "token_per_minute": 300}]});
    rule_config("ai-token-ip-limit", item, Some("IP rate limit exceeded"))
}

fn regexp_limit() -> Value {
    let item = json!({"limit_by_per_header": "x-user-id", "limit_keys": [{"key": "regexp:^user-\\d+$", "token_per_minute": 150}]});
    rule_config(
        "ai-token-regexp-limit",
        item,
        Some("User ID rate limit exceeded"),
    )
}

fn ip_header_limit() -> Value {
    let item = json!({"limit_by_per_ip": "from-header-x-forwarded-for", "limit_keys": [{"key": "10.0.0.0/8", "token_per_minute": 200}]});
    rule_config("ai-token-ip-header", item, None)
}

fn hybrid_limit() -> Value {
    let item = json!({"limit_by_header": "x-api-key", "limit_keys": [{"key": "vip-key", "token_per_minute": 100}]});
    let mut c = rule_config("ai-token-hybrid", item, None);
    c["global_threshold"] = json!({"token_per_minute": 10000});
    c
}

fn multi_rule_items() -> Value {
    json!({"rule_name": "ai-token-multi-items", "rule_items": [
        {"limit_by_header": "x-api-key", "limit_keys": [{"key": "k1", "token_per_minute": 100}]},
        {"limit_by_param": "apikey", "limit_keys": [{"key": "k2", "token_per_minute": 50}]}
    ], "redis": redis()})
}

fn started(config: &Value) -> TestHost {
    start_with(config.to_string(), |b| b.clusters([CLUSTER]))
        .unwrap()
}

/// Go's `multiRuleResp`: `{{threshold, used, ttl}, ...}` in RESP.
fn multi(rules: &[[i64; 3]]) -> String {
    let mut out = format!("*{}\r\n", rules.len());
    for [t, u, r] in rules {
        out += &format!("*3\r\n:{t}\r\n:{u}\r\n:{r}\r\n");
    }
    out
}

/// Sends POST request headers (`:path` `path`, plus `headers`); returns the
/// stream and the action.
fn request<'h>(
    host: &'h TestHost,
    path: &str,
    headers: &[(&str, &str)],
) -> (HttpStream<'h>, Action) {
    let mut s = host.http_stream();
    s.set_authority("example.com");
    let mut all = vec![(":path", path), (":method", "POST")];
    all.extend_from_slice(headers);
    let action = s.send_request_headers(&all, false).unwrap();
    (s, action)
}

/// The request must pause on one `EVAL` of the check script over `keys`
/// with `args`; returns its token.
fn paused(host: &TestHost, action: Action, keys: &[&str], args: &[i64]) -> u32 {
    // Go: HeaderStopAllIterationAndWatermark.
    assert_eq!(action, Action::Pause);
    let calls = host.pending_callouts();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let CalloutKind::Redis { service, query } = &calls[0].kind else {
        panic!("{calls:?}");
    };
    assert_eq!(service, CLUSTER);
    let query = String::from_utf8_lossy(query);
    assert!(query.contains("redis.call('ttl', key)"), "{query}");
    let mut tail = format!("${}\r\n{}\r\n", keys.len().to_string().len(), keys.len());
    for arg in keys
        .iter()
        .map(|k| k.to_string())
        .chain(args.iter().map(i64::to_string))
    {
        tail += &format!("${}\r\n{arg}\r\n", arg.len());
    }
    assert!(query.ends_with(&tail), "{query}\nwant tail {tail}");
    calls[0].token
}

fn allowed(host: &TestHost, s: &HttpStream<'_>, token: u32, reply: &str) {
    host.respond_redis(token, reply).unwrap();
    assert!(s.local_response().is_none());
    assert!(!s.is_request_paused());
}

const GLOBAL_KEY: &str = "higress-token-ratelimit:{ai-token-global-limit}:global_threshold:60";
const HEADER_KEY: &str =
    "higress-token-ratelimit:{ai-token-header-limit}:limit_by_header:60:x-api-key:test-key-123";
const HYBRID_KEYS: [&str; 2] = [
    "higress-token-ratelimit:{ai-token-hybrid}:global_threshold:60",
    "higress-token-ratelimit:{ai-token-hybrid}:limit_by_header:60:x-api-key:vip-key",
];

// ----- TestParseConfig ------------------------------------------------------------

#[test]
fn parse_config_cases() {
    let c = parse_config(&global_threshold()).unwrap();
    let t = c.global_threshold.unwrap();
    assert_eq!((t.count, t.time_window), (1000, 60));
    assert_eq!(c.rejected_msg, "Too many AI token requests");
    let cases = [
        (header_limit(), LimitType::Header, "x-api-key"),
        (param_limit(), LimitType::Param, "apikey"),
        (consumer_limit(), LimitType::Consumer, "x-mse-consumer"),
        (cookie_limit(), LimitType::Cookie, "session-id"),
        (ip_limit(), LimitType::PerIp, "from-remote-addr"),
        (regexp_limit(), LimitType::PerHeader, "x-user-id"),
    ];
    for (config, limit_type, key) in cases {
        started(&config);
        let c = parse_config(&config).unwrap();
        assert_eq!(c.rule_items.len(), 1);
        assert_eq!(c.rule_items[0].limit_type, limit_type);
        assert_eq!(c.rule_items[0].key, key);
        assert_eq!(c.rejected_code, 429);
    }
    let c = parse_config(&ip_header_limit()).unwrap();
    assert_eq!(
        c.rule_items[0].ip_source,
        IpSource::Header("x-forwarded-for".to_owned())
    );
    let c = parse_config(&regexp_limit()).unwrap();
    assert!(matches!(
        c.rule_items[0].limit_keys[0].matcher,
        KeyMatch::Regexp(_)
    ));
    // Go's newest config takes both at once.
    let c = parse_config(&hybrid_limit()).unwrap();
    assert!(c.global_threshold.is_some() && c.rule_items.len() == 1);
}

// ----- TestOnHttpRequestHeaders ----------------------------------------------------

#[test]
fn global_threshold_request_headers() {
    let host = started(&global_threshold());
    let (s, action) = request(&host, "/api/test", &[]);
    let token = paused(&host, action, &[GLOBAL_KEY], &[1000, 60]);
    allowed(&host, &s, token, &multi(&[[1000, 1, 60]]));
    // Go's `ctx.DisableReroute()`.
    assert_eq!(
        s.property(&["clear_route_cache"]).as_deref(),
        Some(&b"off"[..])
    );
}

#[test]
fn rule_item_request_headers() {
    // header, param, consumer, cookie limit request headers
    let cases = [
        (header_limit(), "/api/test", ("x-api-key", "test-key-123"), HEADER_KEY, 100),
        (param_limit(), "/api/test?apikey=param-key-456", ("x-other", ""),
         "higress-token-ratelimit:{ai-token-param-limit}:limit_by_param:60:apikey:param-key-456", 50),
        (consumer_limit(), "/api/test", ("x-mse-consumer", "consumer1"),
         "higress-token-ratelimit:{ai-token-consumer-limit}:limit_by_consumer:60:x-mse-consumer:consumer1", 200),
        (cookie_limit(), "/api/test", ("cookie", "session-id=session-789; other=value"),
         "higress-token-ratelimit:{ai-token-cookie-limit}:limit_by_cookie:60:session-id:session-789", 75),
    ];
    for (config, path, header, key, threshold) in cases {
        let host = started(&config);
        let (s, action) = request(&host, path, &[header]);
        let token = paused(&host, action, &[key], &[threshold, 60]);
        allowed(&host, &s, token, &multi(&[[threshold, 1, 60]]));
    }
}

#[test]
fn rate_limit_exceeded() {
    let host = started(&global_threshold());
    let (mut s, action) = request(&host, "/api/test", &[("x-mse-consumer", "c1")]);
    s.set_route_name("r1")
        .set_cluster_name("outbound|443||llm.dns");
    let token = paused(&host, action, &[GLOBAL_KEY], &[1000, 60]);
    host.respond_redis(token, multi(&[[1000, 1001, 60]]))
        .unwrap();
    let response = s.local_response().expect("rejected");
    assert_eq!(response.status, 429);
    assert_eq!(response.body, b"Too many AI token requests");
    assert_eq!(response.details, "ai-token-ratelimit.rejected");
    assert_eq!(response.header("x-tokenratelimit-reset").unwrap(), "60");
    assert!(!s.upstream_request_complete());
    // Go's `token_ratelimit_status` in ai_log and its counter.
    let log = String::from_utf8(s.property(&["ai_log"]).unwrap()).unwrap();
    assert!(
        log.contains("token_ratelimit_status") && log.contains("limited"),
        "{log}"
    );
    let name = "route.r1.upstream.outbound|443||llm.dns.model.none.consumer.c1.metric.token_ratelimit_count";
    assert_eq!(host.metric(name), Some(MetricValue::Counter(1)));
}

#[test]
fn no_matching_limit_rule() {
    let host = started(&header_limit());
    let (_s, action) = request(&host, "/api/test", &[]);
    assert_eq!(action, Action::Continue);
    assert!(host.callouts().is_empty());
}

#[test]
fn hybrid_limit_both_match() {
    let host = started(&hybrid_limit());
    let (s, action) = request(&host, "/api/test", &[("x-api-key", "vip-key")]);
    let token = paused(&host, action, &HYBRID_KEYS, &[10000, 60, 100, 60]);
    allowed(&host, &s, token, &multi(&[[10000, 1, 60], [100, 1, 60]]));
}

#[test]
fn multi_rule_items_all_match() {
    let host = started(&multi_rule_items());
    let (s, action) = request(&host, "/api/test?apikey=k2", &[("x-api-key", "k1")]);
    let keys = [
        "higress-token-ratelimit:{ai-token-multi-items}:limit_by_header:60:x-api-key:k1",
        "higress-token-ratelimit:{ai-token-multi-items}:limit_by_param:60:apikey:k2",
    ];
    let token = paused(&host, action, &keys, &[100, 60, 50, 60]);
    allowed(&host, &s, token, &multi(&[[100, 1, 60], [50, 1, 60]]));
}

#[test]
fn hybrid_limit_global_triggered() {
    let host = started(&hybrid_limit());
    let (s, action) = request(&host, "/api/test", &[("x-api-key", "vip-key")]);
    let token = paused(&host, action, &HYBRID_KEYS, &[10000, 60, 100, 60]);
    host.respond_redis(token, multi(&[[10000, 10001, 60], [100, 1, 60]]))
        .unwrap();
    assert_eq!(s.local_response().unwrap().status, 429);
    // No rejected_msg configured: Go's default body.
    assert_eq!(s.local_response().unwrap().body, b"Too many requests");
}

/// Go: "redis response length mismatch", "redis sub-array length mismatch"
/// and "... within loop": the request goes on.
#[test]
fn malformed_redis_replies_let_the_request_through() {
    let sub_array_short = "*1\r\n*2\r\n:10000\r\n:1\r\n";
    for reply in [multi(&[[10000, 1, 60]]), sub_array_short.to_owned()] {
        let host = started(&hybrid_limit());
        let (s, action) = request(&host, "/api/test", &[("x-api-key", "vip-key")]);
        let token = paused(&host, action, &HYBRID_KEYS, &[10000, 60, 100, 60]);
        allowed(&host, &s, token, &reply);
    }
    let host = started(&header_limit());
    let (s, action) = request(&host, "/api/test", &[("x-api-key", "test-key-123")]);
    let token = paused(&host, action, &[HEADER_KEY], &[100, 60]);
    allowed(&host, &s, token, "*1\r\n*2\r\n:100\r\n:1\r\n");
    assert!(!host.logs_containing("sub-array length mismatch").is_empty());
}

#[test]
fn hybrid_limit_rule_items_no_match() {
    let host = started(&hybrid_limit());
    let (s, action) = request(&host, "/api/test", &[]);
    let token = paused(&host, action, &HYBRID_KEYS[..1], &[10000, 60]);
    allowed(&host, &s, token, &multi(&[[10000, 1, 60]]));
}

#[test]
fn hybrid_limit_both_triggered_reports_global_first() {
    let host = started(&hybrid_limit());
    let (s, action) = request(&host, "/api/test", &[("x-api-key", "vip-key")]);
    let token = paused(&host, action, &HYBRID_KEYS, &[10000, 60, 100, 60]);
    host.respond_redis(token, multi(&[[10000, 10001, 60], [100, 101, 30]]))
        .unwrap();
    let response = s.local_response().unwrap();
    assert_eq!(response.status, 429);
    assert_eq!(response.header("X-TokenRateLimit-Reset").unwrap(), "60");
}

#[test]
fn multi_rule_no_trigger_does_not_reject() {
    let host = started(&hybrid_limit());
    let (s, action) = request(&host, "/api/test", &[("x-api-key", "vip-key")]);
    let token = paused(&host, action, &HYBRID_KEYS, &[10000, 60, 100, 60]);
    allowed(
        &host,
        &s,
        token,
        &multi(&[[10000, 9000, 60], [100, 10, 60]]),
    );
}

#[test]
fn a_redis_failure_lets_the_request_through() {
    let host = started(&global_threshold());
    let (s, action) = request(&host, "/api/test", &[]);
    let token = paused(&host, action, &[GLOBAL_KEY], &[1000, 60]);
    host.fail_redis(token).unwrap();
    assert!(s.local_response().is_none());
    assert!(!s.is_request_paused());
}

// ----- TestOnHttpStreamingBody / TestCompleteFlow -----------------------------------

/// An allowed request on `config`; the response headers are sent.
fn allowed_request<'h>(
    host: &'h TestHost,
    keys: &[&str],
    args: &[i64],
    reply: &str,
) -> HttpStream<'h> {
    let (mut s, action) = request(host, "/api/test", &[("x-api-key", "vip-key")]);
    let token = paused(host, action, keys, args);
    allowed(host, &s, token, reply);
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s
}

/// Go sends these bodies as *request* bodies (`CallOnHttpStreamingRequestBody`),
/// which the plugin does not read: they pass unchanged and charge nothing.
#[test]
fn streaming_request_body_passes_unchanged() {
    for (config, key, threshold) in [
        (global_threshold(), GLOBAL_KEY, 1000),
        (header_limit(), HEADER_KEY, 100),
    ] {
        let host = started(&config);
        let (mut s, action) = request(&host, "/api/test", &[("x-api-key", "test-key-123")]);
        let token = paused(&host, action, &[key], &[threshold, 60]);
        allowed(&host, &s, token, &multi(&[[threshold, 1, 60]]));
        // streaming body with / without token usage, complete rate limit flow
        let first = br#"{"choices":[{"message":{"content":"Hello, how can I help you?"}}],"usage":{"prompt_tokens":10,"completion_tokens":15,"total_tokens":25}}"#;
        let last = br#"{"message": "Hello, world!"}"#;
        assert_eq!(s.send_request_body(first, false).unwrap(), Action::Continue);
        assert_eq!(s.send_request_body(last, true).unwrap(), Action::Continue);
        let mut both = first.to_vec();
        both.extend_from_slice(last);
        assert_eq!(s.upstream_request_body(), both);
        assert!(host.pending_callouts().is_empty());
    }
}

#[test]
fn streaming_body_with_token_usage_charges_every_rule() {
    let host = started(&hybrid_limit());
    let mut s = allowed_request(
        &host,
        &HYBRID_KEYS,
        &[10000, 60, 100, 60],
        &multi(&[[10000, 1, 60], [100, 1, 60]]),
    );
    assert!(host.pending_callouts().is_empty());
    assert_eq!(
        s.send_response_body(USAGE_BODY, true).unwrap(),
        Action::Continue
    );
    assert_eq!(s.client_response_body(), USAGE_BODY.as_bytes());
    // One multi-key charge: threshold, window, tokens per key.
    let calls = host.pending_callouts();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let CalloutKind::Redis { query, .. } = &calls[0].kind else {
        panic!("{calls:?}")
    };
    let query = String::from_utf8_lossy(query);
    assert!(query.contains("incrby"), "{query}");
    assert!(
        query.ends_with(
            "$5\r\n10000\r\n$2\r\n60\r\n$2\r\n25\r\n$3\r\n100\r\n$2\r\n60\r\n$2\r\n25\r\n"
        ),
        "{query}"
    );
    assert!(query.contains(HYBRID_KEYS[0]) && query.contains(HYBRID_KEYS[1]));
    host.respond_redis(calls[0].token, ":2\r\n").unwrap();
    host.assert_idle();
}

#[test]
fn streaming_body_mid_chunk_and_no_usage_charge_nothing() {
    let host = started(&global_threshold());
    let (mut s, action) = request(&host, "/api/test", &[]);
    let token = paused(&host, action, &[GLOBAL_KEY], &[1000, 60]);
    allowed(&host, &s, token, &multi(&[[1000, 1, 60]]));
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    let partial = r#"{"choices":[{"message":{"content":"partial..."}}]}"#;
    assert_eq!(
        s.send_response_body(partial, false).unwrap(),
        Action::Continue
    );
    assert!(host.pending_callouts().is_empty(), "mid-chunk");
    let end = r#"{"choices":[{"message":{"content":"hi"}}]}"#;
    assert_eq!(s.send_response_body(end, true).unwrap(), Action::Continue);
    assert!(host.pending_callouts().is_empty(), "no usage");
    host.assert_idle();
}

#[test]
fn streaming_body_without_prior_context() {
    let host = started(&header_limit());
    let (mut s, action) = request(&host, "/api/test", &[]);
    assert_eq!(action, Action::Continue);
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(
        s.send_response_body(USAGE_BODY, true).unwrap(),
        Action::Continue
    );
    assert!(host.callouts().is_empty());
}

#[test]
fn sse_usage_in_the_last_chunk_is_charged() {
    let host = started(&global_threshold());
    let (mut s, action) = request(&host, "/v1/chat/completions", &[]);
    let token = paused(&host, action, &[GLOBAL_KEY], &[1000, 60]);
    allowed(&host, &s, token, &multi(&[[1000, 1, 60]]));
    s.send_response_headers(
        &[(":status", "200"), ("content-type", "text/event-stream")],
        false,
    )
    .unwrap();
    s.send_response_body(
        "data: {\"choices\":[{\"delta\":{\"content\":\"he\"}}]}\n\n",
        false,
    )
    .unwrap();
    let usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,\"total_tokens\":12}}\n\ndata: [DONE]\n\n";
    s.send_response_body(usage, true).unwrap();
    let calls = host.pending_callouts();
    let CalloutKind::Redis { query, .. } = &calls[0].kind else {
        panic!("{calls:?}")
    };
    assert!(String::from_utf8_lossy(query).ends_with("$4\r\n1000\r\n$2\r\n60\r\n$2\r\n12\r\n"));
}

// ----- TestCoverageEdgeCases ----------------------------------------------------------

#[test]
fn config_errors_as_go() {
    let refused = |config: Value, message: &str| {
        let failure = start(config.to_string()).unwrap_err();
        assert_eq!(failure.stage, StartStage::Configure);
        assert!(!failure.logs_containing(message).is_empty(), "{failure}");
    };
    // parseConfig missing redis returns error
    refused(json!({"rule_name": "x"}), "missing redis in config");
    // parseConfig ParseAiTokenRateLimitConfig returns error
    refused(
        json!({"rule_name": "ai-token-bad", "redis": redis()}),
        "at least one of 'global_threshold' or 'rule_items' must be set",
    );
}

#[test]
fn rule_values_absent_or_unmatched_continue() {
    let cases = [
        // param rule key absent in query
        (param_limit(), vec![]),
        // consumer header absent
        (consumer_limit(), vec![]),
        // cookie header absent / cookie key not found in cookie header
        (cookie_limit(), vec![]),
        (cookie_limit(), vec![("cookie", "other-key=other-value")]),
        // regexp per-header rule does not match
        (regexp_limit(), vec![("x-user-id", "admin")]),
    ];
    for (config, headers) in cases {
        let host = started(&config);
        let (_s, action) = request(&host, "/api/test", &headers);
        assert_eq!(action, Action::Continue, "{config} {headers:?}");
        assert!(host.callouts().is_empty());
    }
}

#[test]
fn ip_rules() {
    let key = |rule: &str, ip: &str| {
        format!(
            "higress-token-ratelimit:{{{rule}}}:limit_by_per_ip:60:{}:{ip}",
            if rule.ends_with("header") {
                "from-header-x-forwarded-for"
            } else {
                "from-remote-addr"
            }
        )
    };
    // ip rule matches via remote-addr
    let host = started(&ip_limit());
    let mut s = host.http_stream();
    s.set_property(&["source", "address"], "192.168.1.50:54321");
    let action = s
        .send_request_headers(&[(":path", "/api/test")], false)
        .unwrap();
    let token = paused(
        &host,
        action,
        &[&key("ai-token-ip-limit", "192.168.1.50")],
        &[300, 60],
    );
    allowed(&host, &s, token, &multi(&[[300, 1, 60]]));
    // ip rule matches via from-header source (first of the list)
    let host = started(&ip_header_limit());
    let (s, action) = request(
        &host,
        "/api/test",
        &[("x-forwarded-for", "10.1.2.3, 192.168.1.1")],
    );
    let token = paused(
        &host,
        action,
        &[&key("ai-token-ip-header", "10.1.2.3")],
        &[200, 60],
    );
    allowed(&host, &s, token, &multi(&[[200, 1, 60]]));
    // ip rule source ip outside configured cidr / invalid source ip returns continue
    for source in ["10.0.0.1:54321", "not-an-ip"] {
        let host = started(&ip_limit());
        let mut s = host.http_stream();
        s.set_property(&["source", "address"], source);
        let action = s
            .send_request_headers(&[(":path", "/api/test")], false)
            .unwrap();
        assert_eq!(action, Action::Continue, "{source}");
        assert!(host.callouts().is_empty());
    }
}

#[test]
fn regexp_per_header_rule_matches() {
    let host = started(&regexp_limit());
    let (s, action) = request(&host, "/api/test", &[("x-user-id", "user-123")]);
    let key =
        "higress-token-ratelimit:{ai-token-regexp-limit}:limit_by_per_header:60:x-user-id:user-123";
    let token = paused(&host, action, &[key], &[150, 60]);
    allowed(&host, &s, token, &multi(&[[150, 1, 60]]));
}

// ----- config/config_test.go: TestParseAiTokenRateLimitConfig ---------------------------

/// Go's table tests the parser without the `redis` section (which the
/// plugin's parser reads first); it is added here.
fn with_redis(mut config: Value) -> Value {
    config["redis"] = redis();
    config
}

#[test]
fn parse_ai_token_rate_limit_config_errors() {
    let cases = [
        // MissingRuleName
        (json!({}), "missing rule_name in config"),
        // GlobalThreshold_InvalidThreshold
        (json!({"rule_name": "invalid-threshold", "global_threshold": {"token_per_minute": -100}}),
         "failed to parse global_threshold: 'token_per_minute' must be a positive integer, got -100"),
        // RuleItems_InvalidThreshold
        (json!({"rule_name": "invalid-threshold", "rule_items": [{"limit_by_header": "x-test", "limit_keys": [{"key": "key1", "token_per_minute": -100}]}]}),
         "failed to parse rule_item in rule_items: 'token_per_minute' must be a positive integer for key 'key1', got -100"),
        // Missing_GlobalThresholdAndRuleItems
        (json!({"rule_name": "test-missing"}), "at least one of 'global_threshold' or 'rule_items' must be set"),
        // Go's MaxRuleItems
        (json!({"rule_name": "many", "rule_items": vec![json!({"limit_by_header": "h", "limit_keys": [{"key": "a", "token_per_second": 1}]}); 11]}),
         "rule_items length 11 exceeds maximum 10"),
    ];
    for (config, message) in cases {
        let err = parse_config(&with_redis(config)).unwrap_err();
        assert_eq!(err.message(), message);
    }
}

#[test]
fn parse_ai_token_rate_limit_config_values() {
    // GlobalThreshold_QueryPerSecond / _QueryPerMinute / Custom_RejectedCodeAndMessage
    let cases = [
        (
            json!({"rule_name": "global-route-limit", "global_threshold": {"token_per_second": 100}}),
            100,
            1,
            429,
            "Too many requests",
        ),
        (
            json!({"rule_name": "global-route-limit", "global_threshold": {"token_per_minute": 1000}}),
            1000,
            60,
            429,
            "Too many requests",
        ),
        (
            json!({"rule_name": "custom-reject", "rejected_code": 403, "rejected_msg": "Forbidden", "global_threshold": {"token_per_second": 100}}),
            100,
            1,
            403,
            "Forbidden",
        ),
    ];
    for (config, count, window, code, msg) in cases {
        let c = parse_config(&with_redis(config)).unwrap();
        let t = c.global_threshold.unwrap();
        assert_eq!(
            (
                t.count,
                t.time_window,
                c.rejected_code,
                c.rejected_msg.as_str()
            ),
            (count, window, code, msg)
        );
        assert!(c.rule_items.is_empty());
    }
    // RuleItems_SingleRule
    let c = parse_config(&with_redis(
        json!({"rule_name": "rule-based-limit", "rule_items": [
        {"limit_by_header": "x-test", "limit_keys": [{"key": "key1", "token_per_second": 10}]}]}),
    ))
    .unwrap();
    let rule = &c.rule_items[0];
    assert_eq!(
        (rule.limit_type, rule.key.as_str()),
        (LimitType::Header, "x-test")
    );
    let k = &rule.limit_keys[0];
    assert!(matches!(k.matcher, KeyMatch::Exact));
    assert_eq!(
        (k.key.as_str(), k.threshold.count, k.threshold.time_window),
        ("key1", 10, 1)
    );
    // RuleItems_MultipleRules
    let c = parse_config(&with_redis(json!({"rule_name": "multi-rule-limit", "rule_items": [
        {"limit_by_param": "user_id", "limit_keys": [{"key": "123", "token_per_hour": 50}]},
        {"limit_by_per_cookie": "session_id", "limit_keys": [{"key": "*", "token_per_day": 100}]}]})))
    .unwrap();
    let [a, b] = &c.rule_items[..] else { panic!() };
    assert_eq!(
        (
            a.limit_type,
            a.key.as_str(),
            a.limit_keys[0].threshold.time_window
        ),
        (LimitType::Param, "user_id", 3600)
    );
    assert_eq!(
        (
            b.limit_type,
            b.key.as_str(),
            b.limit_keys[0].threshold.time_window
        ),
        (LimitType::PerCookie, "session_id", 86400)
    );
    assert!(matches!(b.limit_keys[0].matcher, KeyMatch::All));
    assert_eq!(c.rejected_code, 429);
}

// ----- the Go README's example configs, unchanged (as JSON) ---------------------------

#[test]
fn readme_configs_start() {
    let redis = json!({"service_name": "redis.static"});
    let per = |by: &str, name: &str| {
        json!({by: name, "limit_keys": [
            {"key": "regexp:^a.*", "token_per_second": 10},
            {"key": "regexp:^b.*", "token_per_minute": 100},
            {"key": "*", "token_per_hour": 1000}
        ]})
    };
    let configs = [
        json!({"rule_name": "default_rule", "rule_items": [
                  {"limit_by_param": "apikey", "limit_keys": [
                      {"key": "9a342114-ba8a-11ec-b1bf-00163e1250b5", "token_per_minute": 10},
                      {"key": "a6a6d7f2-ba8a-11ec-bec2-00163e1250b5", "token_per_hour": 100}]},
                  per("limit_by_per_param", "apikey")], "redis": redis}),
        // The same with `limit_type: request` (a README key the Go parser ignores).
        json!({"rule_name": "default_rule", "rule_items": [
                  {"limit_by_param": "apikey", "limit_keys": [
                      {"key": "9a342114-ba8a-11ec-b1bf-00163e1250b5", "token_per_minute": 10, "limit_type": "request"}]}],
               "redis": redis}),
        json!({"rule_name": "default_rule", "rule_items": [
                  {"limit_by_header": "x-ca-key", "limit_keys": [
                      {"key": 102234, "token_per_minute": 10}, {"key": 308239, "token_per_hour": 10}]},
                  per("limit_by_per_header", "x-ca-key")], "redis": redis}),
        json!({"rule_name": "default_rule", "rule_items": [
                  {"limit_by_per_ip": "from-header-x-forwarded-for", "limit_keys": [
                      {"key": "1.1.1.1", "token_per_day": 10}, {"key": "1.1.1.0/24", "token_per_day": 100},
                      {"key": "0.0.0.0/0", "token_per_day": 1000}]}], "redis": redis}),
        json!({"rule_name": "default_rule", "rule_items": [
                  {"limit_by_consumer": "", "limit_keys": [
                      {"key": "consumer1", "token_per_second": 10}, {"key": "consumer2", "token_per_hour": 100}]},
                  per("limit_by_per_consumer", "")], "redis": redis}),
        json!({"rule_name": "default_rule", "rule_items": [
                  {"limit_by_cookie": "key1", "limit_keys": [
                      {"key": "value1", "token_per_minute": 10}, {"key": "value2", "token_per_hour": 100}]},
                  per("limit_by_per_cookie", "key1")],
               "rejected_code": 200, "rejected_msg": "{\"code\":-1,\"msg\":\"Too many requests\"}", "redis": redis}),
        json!({"rule_name": "default_limit_by_param_apikey", "rule_items": [
                  {"limit_by_param": "apikey", "limit_keys": [{"key": 123456, "token_per_minute": 200}]}],
               "redis": {"service_name": "redis.dns", "service_port": 6379}}),
    ];
    for config in &configs {
        // No service_port on a `.static` service: port 80, as Go.
        start_with(config.to_string(), |b| b.clusters(["outbound|80||redis.static", "outbound|6379||redis.dns"]))
            .unwrap_or_else(|e| panic!("{config}: {e}"));
    }
    // `key: 102234` is a YAML number: it matches the header text; the
    // first matching rule item and the per-header fallback both apply.
    let host = start_with(configs[2].to_string(), |b| b.clusters(["outbound|80||redis.static"]))
        .unwrap();
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(&[(":path", "/"), ("x-ca-key", "102234")], true)
        .unwrap();
    assert_eq!(action, Action::Pause);
    let calls = host.pending_callouts();
    let CalloutKind::Redis { service, query } = &calls[0].kind else {
        panic!()
    };
    assert_eq!(service, "outbound|80||redis.static");
    let query = String::from_utf8_lossy(query);
    assert!(
        query.contains("{default_rule}:limit_by_header:60:x-ca-key:102234"),
        "{query}"
    );
    assert!(
        query.contains("{default_rule}:limit_by_per_header:3600:x-ca-key:102234"),
        "{query}"
    );
}

// ----- a real redis-server -------------------------------------------------------------

#[test]
fn a_real_redis_charges_tokens_until_the_budget_is_spent() {
    let server = RedisServer::start();
    let mut config = global_threshold();
    config["global_threshold"] = json!({"token_per_minute": 100});
    let host = start_with(config.to_string(), |b| b.redis_server(CLUSTER, server.addr()))
        .unwrap();
    let usage = r#"{"usage":{"prompt_tokens":15,"completion_tokens":25,"total_tokens":40}}"#;
    let send = || {
        let mut s = host.http_stream();
        s.send_request_headers(&[(":path", "/v1/chat/completions")], true)
            .unwrap();
        host.run_until_idle();
        if let Some(r) = s.local_response() {
            return Some((
                r.status,
                r.header("x-tokenratelimit-reset").map(|v| v.to_string()),
            ));
        }
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap();
        s.send_response_body(usage, true).unwrap();
        host.run_until_idle();
        None
    };
    // 0, 40, 80 used: allowed (each is charged 40 after its response) ...
    for _ in 0..3 {
        assert_eq!(send(), None);
    }
    // ... 120 > 100: rejected with the window's TTL.
    let (status, reset) = send().unwrap();
    assert_eq!(status, 429);
    let reset: i64 = reset.unwrap().parse().unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    let key = "higress-token-ratelimit:{ai-token-global-limit}:global_threshold:60";
    let mut client = server.client();
    assert_eq!(
        redis_cmd!(client, "GET", key),
        Resp::Bulk(Some(b"120".to_vec()))
    );
    match redis_cmd!(client, "TTL", key) {
        Resp::Int(ttl) => assert!((1..=60).contains(&ttl), "{ttl}"),
        other => panic!("{other:?}"),
    }
    host.assert_idle();
}
}
