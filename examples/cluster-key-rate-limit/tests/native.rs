//! Go's `main_test.go` of cluster-key-rate-limit, case by case, in the
//! native test host: Go's `CallOnRedisCall(0, resp)` is `respond_redis` with
//! the same `{threshold, current, ttl}` reply. Then the same plugin against
//! a real `redis-server` (the Go test has none): the window really counts,
//! rejects and expires.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../higress-wrapper/tests/common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use cluster_key_rate_limit::{parse_config, IpSource, KeyMatch, LimitType};
use redis_server::{RedisServer, Resp};
use serde_json::{json, Value};

higress_test_host::both_modes! {
plugin: cluster_key_rate_limit::Plugin,
package: "cluster-key-rate-limit",

const CLUSTER: &str = "outbound|6379||redis.static";

fn redis() -> Value {
    json!({"service_name": "redis.static", "service_port": 6379, "timeout": 1000})
}

fn global_threshold() -> Value {
    json!({
        "rule_name": "routeA-global-limit-rule",
        "global_threshold": {"query_per_minute": 1000},
        "redis": redis(),
        "show_limit_quota_header": true,
        "rejected_code": 429,
        "rejected_msg": "Too many requests",
    })
}

fn rule_config(name: &str, item: Value) -> Value {
    json!({
        "rule_name": name,
        "rule_items": [item],
        "redis": {"service_name": "redis.static", "service_port": 6379},
        "show_limit_quota_header": true,
    })
}

fn param_limit() -> Value {
    rule_config(
        "routeA-request-param-limit-rule",
        json!({"limit_by_param": "apikey", "limit_keys": [
            {"key": "9a342114-ba8a-11ec-b1bf-00163e1250b5", "query_per_minute": 10},
            {"key": "a6a6d7f2-ba8a-11ec-bec2-00163e1250b5", "query_per_hour": 100}
        ]}),
    )
}

fn header_limit() -> Value {
    rule_config(
        "routeA-request-header-limit-rule",
        json!({"limit_by_header": "x-ca-key", "limit_keys": [
            {"key": "102234", "query_per_minute": 10},
            {"key": "308239", "query_per_hour": 10}
        ]}),
    )
}

fn consumer_limit() -> Value {
    rule_config(
        "routeA-consumer-limit-rule",
        json!({"limit_by_consumer": "", "limit_keys": [
            {"key": "consumer1", "query_per_second": 10},
            {"key": "consumer2", "query_per_hour": 100}
        ]}),
    )
}

fn cookie_limit() -> Value {
    let mut c = rule_config(
        "routeA-cookie-limit-rule",
        json!({"limit_by_cookie": "key1", "limit_keys": [
            {"key": "value1", "query_per_minute": 10},
            {"key": "value2", "query_per_hour": 100}
        ]}),
    );
    c["rejected_code"] = json!(200);
    c["rejected_msg"] = json!(r#"{"code":-1,"msg":"Too many requests"}"#);
    c
}

fn ip_limit() -> Value {
    rule_config(
        "routeA-client-ip-limit-rule",
        json!({"limit_by_per_ip": "from-header-x-forwarded-for", "limit_keys": [
            {"key": "1.1.1.1", "query_per_day": 10},
            {"key": "1.1.1.0/24", "query_per_day": 100},
            {"key": "0.0.0.0/0", "query_per_day": 1000}
        ]}),
    )
}

fn regexp_limit() -> Value {
    rule_config(
        "routeA-regexp-limit-rule",
        json!({"limit_by_per_param": "apikey", "limit_keys": [
            {"key": "regexp:^a.*", "query_per_second": 10},
            {"key": "regexp:^b.*", "query_per_minute": 100},
            {"key": "*", "query_per_hour": 1000}
        ]}),
    )
}

fn started(config: &Value) -> TestHost {
    start_with(config.to_string(), |b| b.clusters([CLUSTER]))
        .unwrap()
}

/// `{threshold, current, ttl}` in RESP (Go's `CreateRedisRespArray`).
fn triple(threshold: i64, current: i64, ttl: i64) -> String {
    format!("*3\r\n:{threshold}\r\n:{current}\r\n:{ttl}\r\n")
}

/// Sends request headers; the plugin must pause on one `EVAL` of `key`
/// with `args`. Returns the stream and the call's token.
fn paused<'h>(
    host: &'h TestHost,
    headers: &[(&str, &str)],
    key: &str,
    args: [&str; 2],
) -> (HttpStream<'h>, u32) {
    let mut s = host.http_stream();
    s.set_authority("example.com");
    let mut all = vec![(":path", "/api/test"), (":method", "GET")];
    all.extend_from_slice(headers);
    // Go: HeaderStopAllIterationAndWatermark.
    assert_eq!(s.send_request_headers(&all, true).unwrap(), Action::Pause);
    let calls = host.pending_callouts();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let CalloutKind::Redis { service, query } = &calls[0].kind else {
        panic!("{calls:?}");
    };
    assert_eq!(service, CLUSTER);
    let query = String::from_utf8_lossy(query);
    assert!(query.contains("EVAL"), "{query}");
    assert!(query.contains("redis.call('incr', key)"), "{query}");
    let tail = format!(
        "\r\n${}\r\n{key}\r\n${}\r\n{}\r\n${}\r\n{}\r\n",
        key.len(),
        args[0].len(),
        args[0],
        args[1].len(),
        args[1]
    );
    assert!(query.ends_with(&tail), "{query}");
    (s, calls[0].token)
}

fn allowed(host: &TestHost, s: &HttpStream<'_>, token: u32, reply: &str) {
    host.respond_redis(token, reply).unwrap();
    assert!(s.local_response().is_none());
    assert!(!s.is_request_paused());
    assert!(s.upstream_request_complete());
}

// ----- TestParseConfig -----------------------------------------------------------

#[test]
fn parse_config_cases() {
    // global threshold config
    let c = parse_config(&global_threshold()).unwrap();
    started(&global_threshold());
    assert_eq!(c.rule_name, "routeA-global-limit-rule");
    let t = c.global_threshold.unwrap();
    assert_eq!((t.count, t.time_window), (1000, 60));
    assert!(c.show_limit_quota_header);
    assert_eq!(c.rejected_code, 429);
    assert_eq!(c.rejected_msg, "Too many requests");
    // param / header / consumer / cookie limit config
    let cases = [
        (param_limit(), LimitType::Param, "apikey"),
        (header_limit(), LimitType::Header, "x-ca-key"),
        (consumer_limit(), LimitType::Consumer, "x-mse-consumer"),
        (cookie_limit(), LimitType::Cookie, "key1"),
    ];
    for (config, limit_type, key) in cases {
        started(&config);
        let c = parse_config(&config).unwrap();
        assert_eq!(c.rule_items.len(), 1);
        assert_eq!(c.rule_items[0].limit_type, limit_type);
        assert_eq!(c.rule_items[0].key, key);
        assert_eq!(c.rule_items[0].limit_keys.len(), 2);
        assert!(c.show_limit_quota_header);
    }
    // ip limit config
    started(&ip_limit());
    let c = parse_config(&ip_limit()).unwrap();
    assert_eq!(c.rule_items[0].limit_type, LimitType::PerIp);
    assert_eq!(
        c.rule_items[0].ip_source,
        IpSource::Header("x-forwarded-for".to_owned())
    );
    // regexp limit config
    started(&regexp_limit());
    let c = parse_config(&regexp_limit()).unwrap();
    assert_eq!(c.rule_items[0].limit_type, LimitType::PerParam);
    assert_eq!(c.rule_items[0].key, "apikey");
    assert_eq!(c.rule_items[0].limit_keys.len(), 3);
    assert!(matches!(
        c.rule_items[0].limit_keys[0].matcher,
        KeyMatch::Regexp(_)
    ));
}

#[test]
fn config_errors_as_go() {
    let refused = |config: Value, message: &str| {
        let failure = start(config.to_string()).unwrap_err();
        assert_eq!(failure.stage, StartStage::Configure);
        assert!(!failure.logs_containing(message).is_empty(), "{failure}");
    };
    let mut c = global_threshold();
    c.as_object_mut().unwrap().remove("redis");
    refused(c, "missing redis in config");
    let mut c = global_threshold();
    c.as_object_mut().unwrap().remove("rule_name");
    refused(c, "missing rule_name in config");
    let mut c = global_threshold();
    c["rule_items"] = json!([]);
    refused(c, "cannot be set at the same time");
    let mut c = global_threshold();
    c.as_object_mut().unwrap().remove("global_threshold");
    refused(
        c,
        "at least one of 'global_threshold' or 'rule_items' must be set",
    );
    let mut c = global_threshold();
    c["global_threshold"] = json!({"query_per_minute": 0});
    refused(c, "'query_per_minute' must be a positive integer");
    refused(
        rule_config(
            "r",
            json!({"limit_by_per_param": "k", "limit_keys": [{"key": "abc", "query_per_second": 1}]}),
        ),
        "must start with 'regexp:' or be exactly '*'",
    );
    refused(
        rule_config(
            "r",
            json!({"limit_by_per_ip": "from-header-", "limit_keys": [{"key": "1.1.1.1", "query_per_second": 1}]}),
        ),
        "empty after 'from-header-'",
    );
    refused(
        rule_config(
            "r",
            json!({"limit_by_per_ip": "from-remote-addr", "limit_keys": [{"key": "1.1.1.999", "query_per_second": 1}]}),
        ),
        "failed to parse IPNet for key '1.1.1.999'",
    );
    refused(
        rule_config(
            "r",
            json!({"limit_keys": [{"key": "a", "query_per_second": 1}]}),
        ),
        "only one of 'limit_by_header'",
    );
    refused(
        rule_config(
            "r",
            json!({"limit_by_header": "h", "limit_keys": [{"key": "a"}]}),
        ),
        "must be set for key: a",
    );
}

// ----- TestOnHttpRequestHeaders --------------------------------------------------

#[test]
fn global_threshold_request_headers() {
    let host = started(&global_threshold());
    let key = "higress-cluster-key-rate-limit:routeA-global-limit-rule:global_threshold:60";
    let (s, token) = paused(&host, &[], key, ["1000", "60"]);
    allowed(&host, &s, token, &triple(1000, 999, 60));
    // Go's `ctx.DisableReroute()`.
    assert_eq!(
        s.property(&["clear_route_cache"]).as_deref(),
        Some(&b"off"[..])
    );
}

#[test]
fn param_limit_request_headers() {
    let host = started(&param_limit());
    let key = "higress-cluster-key-rate-limit:routeA-request-param-limit-rule:limit_by_param:60:apikey:9a342114-ba8a-11ec-b1bf-00163e1250b5";
    let mut s = host.http_stream();
    s.set_authority("example.com");
    let path = "/api/test?apikey=9a342114-ba8a-11ec-b1bf-00163e1250b5";
    assert_eq!(
        s.send_request_headers(&[(":path", path)], true).unwrap(),
        Action::Pause
    );
    let calls = host.pending_callouts();
    let CalloutKind::Redis { query, .. } = &calls[0].kind else {
        panic!()
    };
    assert!(String::from_utf8_lossy(query).contains(key));
    allowed(&host, &s, calls[0].token, &triple(10, 9, 60));
}

#[test]
fn header_limit_request_headers() {
    let host = started(&header_limit());
    let key = "higress-cluster-key-rate-limit:routeA-request-header-limit-rule:limit_by_header:60:x-ca-key:102234";
    let (s, token) = paused(&host, &[("x-ca-key", "102234")], key, ["10", "60"]);
    allowed(&host, &s, token, &triple(10, 9, 60));
}

#[test]
fn consumer_limit_request_headers() {
    let host = started(&consumer_limit());
    let key = "higress-cluster-key-rate-limit:routeA-consumer-limit-rule:limit_by_consumer:1:x-mse-consumer:consumer1";
    let (s, token) = paused(&host, &[("x-mse-consumer", "consumer1")], key, ["10", "1"]);
    allowed(&host, &s, token, &triple(10, 9, 1));
}

#[test]
fn cookie_limit_request_headers() {
    let host = started(&cookie_limit());
    let key =
        "higress-cluster-key-rate-limit:routeA-cookie-limit-rule:limit_by_cookie:60:key1:value1";
    let (s, token) = paused(
        &host,
        &[("cookie", "key1=value1; other=value")],
        key,
        ["10", "60"],
    );
    allowed(&host, &s, token, &triple(10, 9, 60));
}

#[test]
fn ip_limit_request_headers() {
    let host = started(&ip_limit());
    let key = "higress-cluster-key-rate-limit:routeA-client-ip-limit-rule:limit_by_per_ip:86400:from-header-x-forwarded-for:1.1.1.1";
    let (s, token) = paused(
        &host,
        &[("x-forwarded-for", "1.1.1.1")],
        key,
        ["10", "86400"],
    );
    allowed(&host, &s, token, &triple(10, 9, 86400));
    // Another address of the /24 gets the /24's limit; anything else 0/0's.
    let key = "higress-cluster-key-rate-limit:routeA-client-ip-limit-rule:limit_by_per_ip:86400:from-header-x-forwarded-for:1.1.1.7";
    let (s, token) = paused(
        &host,
        &[("x-forwarded-for", " 1.1.1.7, 10.0.0.1")],
        key,
        ["100", "86400"],
    );
    allowed(&host, &s, token, &triple(100, 1, 86400));
    let key = "higress-cluster-key-rate-limit:routeA-client-ip-limit-rule:limit_by_per_ip:86400:from-header-x-forwarded-for:8.8.8.8";
    let (s, token) = paused(
        &host,
        &[("x-forwarded-for", "8.8.8.8")],
        key,
        ["1000", "86400"],
    );
    allowed(&host, &s, token, &triple(1000, 1, 86400));
}

#[test]
fn rate_limit_exceeded() {
    let host = started(&global_threshold());
    let key = "higress-cluster-key-rate-limit:routeA-global-limit-rule:global_threshold:60";
    let (s, token) = paused(&host, &[], key, ["1000", "60"]);
    host.respond_redis(token, triple(1000, 1001, 60)).unwrap();
    let response = s.local_response().expect("rejected");
    assert_eq!(response.status, 429);
    assert_eq!(response.body, b"Too many requests");
    assert_eq!(response.details, "cluster-key-rate-limit.rejected");
    assert_eq!(response.header("x-ratelimit-reset").unwrap(), "60");
    assert_eq!(response.header("x-ratelimit-limit").unwrap(), "1000");
    assert_eq!(response.header("x-ratelimit-remaining").unwrap(), "0");
    assert!(!s.upstream_request_complete());
}

#[test]
fn requests_no_rule_matches_pass_without_redis() {
    let host = started(&header_limit());
    for headers in [vec![], vec![("x-ca-key", "unknown")]] {
        let mut s = host.http_stream();
        let mut all = vec![(":path", "/")];
        all.extend(headers);
        assert_eq!(
            s.send_request_headers(&all, true).unwrap(),
            Action::Continue
        );
    }
    assert!(host.callouts().is_empty());
}

// ----- TestOnHttpResponseHeaders / TestCompleteFlow --------------------------------

fn response_quota(config: &Value, reply: &str) -> (Option<String>, Option<String>) {
    let host = started(config);
    let key = "higress-cluster-key-rate-limit:routeA-global-limit-rule:global_threshold:60";
    let (mut s, token) = paused(&host, &[], key, ["1000", "60"]);
    allowed(&host, &s, token, reply);
    let action = s
        .send_response_headers(
            &[(":status", "200"), ("content-type", "application/json")],
            true,
        )
        .unwrap();
    assert_eq!(action, Action::Continue);
    let header = |name: &str| s.client_response_header(name).map(|v| v.to_string());
    (header("x-ratelimit-limit"), header("x-ratelimit-remaining"))
}

#[test]
fn show_limit_quota_headers() {
    let got = response_quota(&global_threshold(), &triple(1000, 999, 60));
    assert_eq!(got, (Some("1000".to_owned()), Some("1".to_owned())));
}

#[test]
fn hide_limit_quota_headers() {
    let mut config = global_threshold();
    config["show_limit_quota_header"] = json!(false);
    assert_eq!(
        response_quota(&config, &triple(1000, 999, 60)),
        (None, None)
    );
}

#[test]
fn complete_rate_limit_flow() {
    let got = response_quota(&global_threshold(), &triple(1000, 1, 60));
    assert_eq!(got, (Some("1000".to_owned()), Some("999".to_owned())));
}

#[test]
fn a_redis_failure_lets_the_request_through() {
    let host = started(&global_threshold());
    let key = "higress-cluster-key-rate-limit:routeA-global-limit-rule:global_threshold:60";
    let (s, token) = paused(&host, &[], key, ["1000", "60"]);
    host.fail_redis(token).unwrap();
    assert!(s.local_response().is_none());
    assert!(s.upstream_request_complete());
    // And an unexpected reply shape too (Go: "redis response parse error").
    let (s, token) = paused(&host, &[], key, ["1000", "60"]);
    host.respond_redis(token, "$2\r\nhi\r\n").unwrap();
    assert!(s.upstream_request_complete());
    assert!(!host
        .logs_containing("redis response parse error")
        .is_empty());
}

// ----- a real redis-server -------------------------------------------------------------

#[test]
fn a_real_redis_counts_rejects_and_shares_the_window() {
    let server = RedisServer::start();
    let config = rule_config(
        "r1",
        json!({"limit_by_per_header": "x-user", "limit_keys": [
            {"key": "regexp:^vip-", "query_per_minute": 5},
            {"key": "*", "query_per_minute": 2}
        ]}),
    );
    let host = start_with(config.to_string(), |b| b.redis_server(CLUSTER, server.addr()))
        .unwrap();
    let send = |user: &str| {
        let mut s = host.http_stream();
        s.send_request_headers(&[(":path", "/"), ("x-user", user)], true)
            .unwrap();
        host.run_until_idle();
        let status = s.local_response().map(|r| r.status);
        s.send_response_headers(&[(":status", "200")], true).ok();
        let remaining = s
            .client_response_header("x-ratelimit-remaining")
            .map(|v| v.to_string());
        (status, remaining)
    };
    assert_eq!(send("bob"), (None, Some("1".to_owned())));
    assert_eq!(send("bob"), (None, Some("0".to_owned())));
    assert_eq!(send("bob").0, Some(429));
    // Each value has its own window; the vip- pattern its own limit.
    assert_eq!(send("ann"), (None, Some("1".to_owned())));
    for left in (0..5).rev() {
        assert_eq!(send("vip-1"), (None, Some(left.to_string())));
    }
    assert_eq!(send("vip-1").0, Some(429));
    // What Redis holds: Go's key format, the count stopped one over the
    // limit, and the window's expiry.
    let key = "higress-cluster-key-rate-limit:r1:limit_by_per_header:60:x-user:bob";
    let mut client = server.client();
    assert_eq!(
        redis_cmd!(client, "GET", key),
        Resp::Bulk(Some(b"3".to_vec()))
    );
    match redis_cmd!(client, "TTL", key) {
        Resp::Int(ttl) => assert!((1..=60).contains(&ttl), "{ttl}"),
        other => panic!("{other:?}"),
    }
    host.assert_idle();
}

// ----- config/config_test.go: TestParseClusterKeyRateLimitConfig -----------------

/// Go's table tests the config parser without the `redis` section (which
/// the plugin's parser needs first); it is added here.
fn with_redis(json: &str) -> Value {
    let mut config: Value = serde_json::from_str(json).unwrap();
    config["redis"] = redis();
    config
}

#[test]
fn parse_cluster_key_rate_limit_config_errors() {
    let cases = [
        // MissingRuleName
        (r#"{}"#, "missing rule_name in config"),
        // GlobalThreshold_InvalidThreshold
        (
            r#"{"rule_name": "invalid-threshold", "global_threshold": {"query_per_minute": -100}}"#,
            "failed to parse global_threshold: 'query_per_minute' must be a positive integer, got -100",
        ),
        // RuleItems_InvalidThreshold (Go prefixes "failed to parse rule_item
        // in rule_items: "; the port names the entry instead)
        (
            r#"{"rule_name": "invalid-threshold", "rule_items": [{"limit_by_header": "x-test",
                "limit_keys": [{"key": "key1", "query_per_minute": -100}]}]}"#,
            "rule_items[0]: 'query_per_minute' must be a positive integer for key 'key1', got -100",
        ),
        // Conflict_GlobalThresholdAndRuleItems
        (
            r#"{"rule_name": "test-conflict", "global_threshold": {"query_per_second": 100},
                "rule_items": [{"limit_by_header": "x-test"}]}"#,
            "'global_threshold' and 'rule_items' cannot be set at the same time",
        ),
        // Missing_GlobalThresholdAndRuleItems
        (
            r#"{"rule_name": "test-missing"}"#,
            "at least one of 'global_threshold' or 'rule_items' must be set",
        ),
    ];
    for (json, message) in cases {
        let error = parse_config(&with_redis(json)).unwrap_err();
        assert!(error.to_string().ends_with(message), "{error} / {message}");
    }
}

#[test]
fn parse_cluster_key_rate_limit_config_values() {
    // GlobalThreshold_QueryPerSecond / _QueryPerMinute, defaults.
    for (window, seconds) in [("query_per_second", 1), ("query_per_minute", 60)] {
        let json = format!(
            r#"{{"rule_name": "global-route-limit", "global_threshold": {{"{window}": 100}}}}"#
        );
        let c = parse_config(&with_redis(&json)).unwrap();
        assert_eq!(c.rule_name, "global-route-limit");
        let t = c.global_threshold.unwrap();
        assert_eq!((t.count, t.time_window), (100, seconds));
        assert_eq!(
            (c.rejected_code, c.rejected_msg.as_str()),
            (429, "Too many requests")
        );
        assert!(!c.show_limit_quota_header);
    }
    // RuleItems_SingleRule
    let c = parse_config(&with_redis(
        r#"{"rule_name": "rule-based-limit", "rule_items": [{"limit_by_header": "x-test",
            "limit_keys": [{"key": "key1", "query_per_second": 10}]}]}"#,
    ))
    .unwrap();
    let rule = &c.rule_items[0];
    assert_eq!(
        (rule.limit_type, rule.key.as_str()),
        (LimitType::Header, "x-test")
    );
    let item = &rule.limit_keys[0];
    assert!(matches!(item.matcher, KeyMatch::Exact));
    assert_eq!(
        (
            item.key.as_str(),
            item.threshold.count,
            item.threshold.time_window
        ),
        ("key1", 10, 1)
    );
    // RuleItems_MultipleRules
    let c = parse_config(&with_redis(
        r#"{"rule_name": "multi-rule-limit", "rule_items": [
            {"limit_by_param": "user_id", "limit_keys": [{"key": "123", "query_per_hour": 50}]},
            {"limit_by_per_cookie": "session_id", "limit_keys": [{"key": "*", "query_per_day": 100}]}]}"#,
    ))
    .unwrap();
    assert_eq!(c.rule_items.len(), 2);
    assert_eq!(c.rule_items[0].limit_type, LimitType::Param);
    assert_eq!(c.rule_items[0].limit_keys[0].threshold.time_window, 3600);
    assert_eq!(c.rule_items[1].limit_type, LimitType::PerCookie);
    assert_eq!(c.rule_items[1].key, "session_id");
    assert!(matches!(
        c.rule_items[1].limit_keys[0].matcher,
        KeyMatch::All
    ));
    assert_eq!(c.rule_items[1].limit_keys[0].threshold.time_window, 86400);
    // Custom_RejectedCodeAndMessage
    let c = parse_config(&with_redis(
        r#"{"rule_name": "custom-reject", "rejected_code": 403, "rejected_msg": "Forbidden",
            "global_threshold": {"query_per_second": 100}}"#,
    ))
    .unwrap();
    assert_eq!(
        (c.rejected_code, c.rejected_msg.as_str()),
        (403, "Forbidden")
    );
    // ShowLimitQuotaHeader_Enabled
    let c = parse_config(&with_redis(
        r#"{"rule_name": "show-header", "show_limit_quota_header": true,
            "global_threshold": {"query_per_second": 100}}"#,
    ))
    .unwrap();
    assert!(c.show_limit_quota_header);
}

// ----- the Go README's example configs, unchanged (as JSON) ---------------------------

#[test]
fn readme_configs_start() {
    let redis = json!({"service_name": "redis.static"});
    let per = |by: &str, name: &str| {
        json!({by: name, "limit_keys": [
            {"key": "regexp:^a.*", "query_per_second": 10},
            {"key": "regexp:^b.*", "query_per_minute": 100},
            {"key": "*", "query_per_hour": 1000}
        ]})
    };
    let configs = [
        json!({"rule_name": "routeA-global-limit-rule", "global_threshold": {"query_per_minute": 1000},
               "redis": redis, "show_limit_quota_header": true}),
        json!({"rule_name": "routeA-request-param-limit-rule", "rule_items": [
                  {"limit_by_param": "apikey", "limit_keys": [
                      {"key": "9a342114-ba8a-11ec-b1bf-00163e1250b5", "query_per_minute": 10},
                      {"key": "a6a6d7f2-ba8a-11ec-bec2-00163e1250b5", "query_per_hour": 100}]},
                  per("limit_by_per_param", "apikey")],
               "redis": redis, "show_limit_quota_header": true}),
        json!({"rule_name": "routeA-request-header-limit-rule", "rule_items": [
                  {"limit_by_header": "x-ca-key", "limit_keys": [
                      {"key": 102234, "query_per_minute": 10}, {"key": 308239, "query_per_hour": 10}]},
                  per("limit_by_per_header", "x-ca-key")],
               "redis": redis, "show_limit_quota_header": true}),
        ip_limit_readme(&redis),
        json!({"rule_name": "routeA-consumer-limit-rule", "rule_items": [
                  {"limit_by_consumer": "", "limit_keys": [
                      {"key": "consumer1", "query_per_second": 10}, {"key": "consumer2", "query_per_hour": 100}]},
                  per("limit_by_per_consumer", "")],
               "redis": redis, "show_limit_quota_header": true}),
        json!({"rule_name": "routeA-cookie-limit-rule", "rule_items": [
                  {"limit_by_cookie": "key1", "limit_keys": [
                      {"key": "value1", "query_per_minute": 10}, {"key": "value2", "query_per_hour": 100}]},
                  per("limit_by_per_cookie", "key1")],
               "rejected_code": 200, "rejected_msg": "{\"code\":-1,\"msg\":\"Too many requests\"}",
               "redis": redis, "show_limit_quota_header": true}),
    ];
    for config in &configs {
        // No service_port on a `.static` service: port 80, as Go.
        let host = start_with(config.to_string(), |b| b.clusters(["outbound|80||redis.static"]))
            .unwrap_or_else(|e| panic!("{config}: {e}"));
        drop(host);
    }
    // `key: 102234` is a YAML number: it matches the header text.
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
    let key = "routeA-request-header-limit-rule:limit_by_header:60:x-ca-key:102234";
    assert!(String::from_utf8_lossy(query).contains(key));
}

fn ip_limit_readme(redis: &Value) -> Value {
    let mut c = ip_limit();
    c["redis"] = redis.clone();
    c
}
}
