//! `global_least_request` on the native test host in Higress mode (ABI
//! 0.2.100 semantics, `route_name` / `cluster_name`, upstream hosts) with a
//! real `redis-server`: the pick, ties, the 429, the release after the
//! stream ends (also when the client goes away), Redis down, the periodic
//! cleaning, and the config. Go's `lb_script_test.lua` cases run against
//! the real server through the plugin.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../higress-wrapper/tests/common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use ai_load_balancer::{
    last_clean_key, parse_config, table_key, GlobalLeastRequest, LoadBalancer, OVER_LIMIT_BODY,
    SELECT_SCRIPT,
};
use redis_server::{RawClient, RedisServer, Resp};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

higress_test_host::both_modes! {
plugin: ai_load_balancer::Plugin,
package: "ai-load-balancer",

const REDIS: &str = "outbound|6379||redis.static";
const ROUTE: &str = "llm-route";
const UPSTREAM: &str = "outbound|8000||vllm.static";
const HEALTHY: &str = r#"{"health_status":"Healthy"}"#;
const UNHEALTHY: &str = r#"{"health_status":"Unhealthy"}"#;

fn config(extra: Value) -> Value {
    let mut lb_config = json!({"serviceFQDN": "redis.static", "servicePort": 6379});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        lb_config[k] = v;
    }
    json!({"lb_type": "endpoint", "lb_policy": "global_least_request", "lb_config": lb_config})
}

fn healthy(addresses: &[&str]) -> Vec<(String, String)> {
    addresses
        .iter()
        .map(|a| ((*a).to_owned(), HEALTHY.to_owned()))
        .collect()
}

fn started(server: &RedisServer, hosts: Vec<(String, String)>, config: &Value) -> TestHost {
    start_with(config.to_string(), |b| b.redis_server(REDIS, server.addr()).upstream_hosts(hosts))
        .unwrap()
}

fn table() -> String {
    table_key(ROUTE, UPSTREAM)
}

/// A chat request: headers held, body sent; the pick is waiting on Redis.
fn send(host: &TestHost) -> HttpStream<'_> {
    let mut s = host.http_stream();
    s.set_route_name(ROUTE).set_cluster_name(UPSTREAM);
    let headers = [
        (":path", "/v1/chat/completions"),
        (":method", "POST"),
        (":authority", "llm.example.com"),
        ("content-type", "application/json"),
    ];
    assert_eq!(
        s.send_request_headers(&headers, false).unwrap(),
        Action::Pause
    );
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(s.send_request_body(body, true).unwrap(), Action::Pause);
    s
}

/// [`send`], then Redis answers: the request is on its way.
fn picked(host: &TestHost) -> (HttpStream<'_>, String) {
    let s = send(host);
    host.run_until_idle();
    assert!(s.local_response().is_none(), "{:?}", s.local_response());
    assert!(!s.is_request_paused());
    assert!(s.upstream_request_complete());
    let pick = s.upstream_override_host().expect("an upstream override");
    (s, pick)
}

/// The response arrives and the stream ends.
fn finish(host: &TestHost, mut s: HttpStream<'_>) {
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s.send_response_body("{}", true).unwrap();
    s.done().unwrap();
    host.run_until_idle();
}

fn counts(client: &mut RawClient) -> BTreeMap<String, i64> {
    let key = table();
    let Resp::Array(Some(items)) = redis_cmd!(client, "HGETALL", key) else {
        panic!("HGETALL")
    };
    items
        .chunks(2)
        .map(|pair| match pair {
            [Resp::Bulk(Some(h)), Resp::Bulk(Some(c))] => (
                String::from_utf8_lossy(h).into_owned(),
                String::from_utf8_lossy(c).parse().unwrap(),
            ),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn count(client: &mut RawClient, host: &str) -> i64 {
    counts(client).get(host).copied().unwrap_or(0)
}

fn set_counts(client: &mut RawClient, pairs: &[(&str, i64)]) {
    let key = table();
    for (h, c) in pairs {
        redis_cmd!(client, "HSET", key, h, c.to_string());
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn bulk_args(query: &[u8]) -> Vec<String> {
    // *N\r\n then $len\r\narg\r\n ...
    let text = String::from_utf8_lossy(query).into_owned();
    let mut lines = text.split("\r\n");
    let n: usize = lines.next().unwrap()[1..].parse().unwrap();
    let mut args = Vec::new();
    for _ in 0..n {
        let len: usize = lines.next().unwrap()[1..].parse().unwrap();
        // the script holds "\r\n"-free text lines joined by "\n"
        let mut arg = lines.next().unwrap().to_owned();
        while arg.len() < len {
            arg.push_str("\r\n");
            arg.push_str(lines.next().unwrap());
        }
        args.push(arg);
    }
    args
}

// ----- selection -------------------------------------------------------------------------

#[test]
fn one_eval_per_request_with_gos_keys() {
    let server = RedisServer::start();
    let mut hosts = healthy(&["10.0.0.1:8000", "10.0.0.2:8000"]);
    hosts.insert(1, ("10.0.0.9:8000".to_owned(), UNHEALTHY.to_owned()));
    let host = started(&server, hosts, &config(json!({"cleanInterval": 5})));
    let s = send(&host);
    let calls = host.pending_callouts();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let CalloutKind::Redis { service, query } = &calls[0].kind else {
        panic!("{calls:?}")
    };
    assert_eq!(service, REDIS);
    let args = bulk_args(query);
    assert_eq!(args[0], "EVAL");
    assert_eq!(args[1], SELECT_SCRIPT);
    assert_eq!(args[2], "10", "numkeys: 7 + 2 healthy + 1 other host");
    let seed: i64 = args[3].parse().unwrap();
    assert!(
        (seed / 1_000_000 - now_secs()).abs() < 60,
        "seed in µs: {seed}"
    );
    assert_eq!(args[4], table());
    assert_eq!(
        args[4],
        format!("higress:global_least_request_table:{ROUTE}:{UPSTREAM}")
    );
    assert_eq!(
        args[5],
        format!("higress:global_least_request_table:last_clean_time:{ROUTE}:{UPSTREAM}")
    );
    assert_eq!(args[6], "300", "cleanInterval 5 minutes, in seconds");
    assert!(["10.0.0.1:8000", "10.0.0.2:8000"].contains(&args[7].as_str()));
    assert_eq!(args[8], "2", "healthy count");
    assert_eq!(args[9], "1", "enableDetailLog defaults to true");
    assert_eq!(
        &args[10..],
        ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.9:8000"]
    );
    assert_eq!(args.len(), 13, "no ARGV");
    host.run_until_idle();
    assert!(s.upstream_override_host().is_some());
    finish(&host, s);
    host.assert_idle();
}

#[test]
fn the_least_loaded_healthy_host_is_picked_and_counted() {
    let server = RedisServer::start();
    let mut client = server.client();
    // The unhealthy host has the fewest but is never picked.
    set_counts(
        &mut client,
        &[
            ("10.0.0.1:80", 3),
            ("10.0.0.2:80", 1),
            ("10.0.0.3:80", 2),
            ("10.0.0.4:80", 0),
        ],
    );
    let mut hosts = healthy(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    hosts.push(("10.0.0.4:80".to_owned(), UNHEALTHY.to_owned()));
    let host = started(&server, hosts, &config(json!({})));
    let (a, pick) = picked(&host);
    assert_eq!(pick, "10.0.0.2:80");
    assert_eq!(count(&mut client, "10.0.0.2:80"), 2);
    // 1:3, 2:2, 3:2 — a tie between 2 and 3.
    let (b, pick) = picked(&host);
    assert!(
        ["10.0.0.2:80", "10.0.0.3:80"].contains(&pick.as_str()),
        "{pick}"
    );
    let (c, pick2) = picked(&host);
    let other = if pick == "10.0.0.2:80" {
        "10.0.0.3:80"
    } else {
        "10.0.0.2:80"
    };
    assert_eq!(pick2, other);
    assert_eq!(
        counts(&mut client),
        BTreeMap::from([
            ("10.0.0.1:80".to_owned(), 3),
            ("10.0.0.2:80".to_owned(), 3),
            ("10.0.0.3:80".to_owned(), 3),
            ("10.0.0.4:80".to_owned(), 0),
        ])
    );
    for s in [a, b, c] {
        finish(&host, s);
    }
    assert_eq!(count(&mut client, "10.0.0.2:80"), 1);
    assert_eq!(count(&mut client, "10.0.0.3:80"), 2);
    // The detail log (enableDetailLog defaults to true).
    assert!(!host
        .logs_containing("host and count: {10.0.0.1:80: ")
        .is_empty());
    host.assert_idle();
}

/// Go's `lb_script_test.lua` Test 1 (distribution), through the plugin:
/// with requests held open, least-request keeps five hosts exactly even.
#[test]
fn distribution_is_even_across_hosts() {
    let server = RedisServer::start();
    let mut client = server.client();
    let addresses = ["h1:80", "h2:80", "h3:80", "h4:80", "h5:80"];
    let host = started(
        &server,
        healthy(&addresses),
        &config(json!({"enableDetailLog": false})),
    );
    let mut open = Vec::new();
    for _ in 0..50 {
        open.push(picked(&host).0);
    }
    let held = counts(&mut client);
    assert_eq!(held.len(), 5, "{held:?}");
    assert!(held.values().all(|&c| c == 10), "{held:?}");
    for s in open {
        finish(&host, s);
    }
    assert!(counts(&mut client).values().all(|&c| c == 0));
    assert!(host.logs_containing("host and count").is_empty());
    host.assert_idle();
}

#[test]
fn ties_are_broken_at_random() {
    let server = RedisServer::start();
    let addresses = ["t1:80", "t2:80", "t3:80"];
    let host = started(&server, healthy(&addresses), &config(json!({})));
    let mut seen = BTreeMap::new();
    // Each request sees all three at 0 (the last one was released).
    for _ in 0..60 {
        let (s, pick) = picked(&host);
        *seen.entry(pick).or_insert(0) += 1;
        finish(&host, s);
        // a new seed each time: the clock is in µs
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    assert_eq!(seen.len(), 3, "every tied host gets picked: {seen:?}");
    host.assert_idle();
}

// ----- maxRequestCount -----------------------------------------------------------------

#[test]
fn over_max_request_count_is_answered_429() {
    let server = RedisServer::start();
    let mut client = server.client();
    let host = started(
        &server,
        healthy(&["10.0.0.1:80"]),
        &config(json!({"maxRequestCount": 1})),
    );
    let (first, _) = picked(&host);
    assert_eq!(count(&mut client, "10.0.0.1:80"), 1);
    let second = send(&host);
    host.run_until_idle();
    let response = second.local_response().expect("a 429");
    assert_eq!(response.status, 429);
    assert_eq!(String::from_utf8_lossy(&response.body), OVER_LIMIT_BODY);
    assert_eq!(
        OVER_LIMIT_BODY,
        "Exceeded maximum request limit from ai-load-balancer."
    );
    assert!(second.upstream_override_host().is_none());
    assert!(!second.upstream_request_complete());
    // The script counted it; the plugin gave it back.
    assert_eq!(count(&mut client, "10.0.0.1:80"), 1);
    drop(second); // stream done: nothing more to release
    host.run_until_idle();
    assert_eq!(count(&mut client, "10.0.0.1:80"), 1);
    assert!(!host
        .logs_containing("exceed max request limit 1")
        .is_empty());
    finish(&host, first);
    assert_eq!(count(&mut client, "10.0.0.1:80"), 0);
    // Room again.
    let (third, _) = picked(&host);
    finish(&host, third);
    host.assert_idle();
}

// ----- release after the stream ends ---------------------------------------------------------

#[test]
fn the_count_is_released_when_the_stream_ends() {
    let server = RedisServer::start();
    let mut client = server.client();
    let host = started(&server, healthy(&["10.0.0.1:80"]), &config(json!({})));
    let (mut s, pick) = picked(&host);
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s.send_response_body("data: ...", false).unwrap();
    assert_eq!(
        count(&mut client, &pick),
        1,
        "held while the response streams"
    );
    s.send_response_body("data: [DONE]", true).unwrap();
    assert_eq!(count(&mut client, &pick), 1, "until stream done");
    s.done().unwrap();
    // The HINCRBY -1 is the root's: the request context is gone.
    native_only! { assert!(host.pending_tasks() + host.pending_calls() > 0); } // the SDK's own counts: linked natively only
    host.run_until_idle();
    assert_eq!(count(&mut client, &pick), 0);
    host.assert_idle();
}

#[test]
fn the_count_is_released_when_the_client_disconnects_mid_request() {
    let server = RedisServer::start();
    let mut client = server.client();
    let host = started(&server, healthy(&["10.0.0.1:80"]), &config(json!({})));
    // Gone while upstream answers.
    let (mut s, pick) = picked(&host);
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(count(&mut client, &pick), 1);
    s.done().unwrap();
    host.run_until_idle();
    assert_eq!(count(&mut client, &pick), 0);
    // Gone while Redis picks: the script counted it, nobody will send it
    // there, the root's task gives it back (Go leaks this one).
    let mut s = send(&host);
    s.done().unwrap();
    let released = || {
        host.callouts()
            .iter()
            .filter(|c| match &c.kind {
                CalloutKind::Redis { query, .. } => {
                    String::from_utf8_lossy(query).contains("HINCRBY\r\n")
                }
                _ => false,
            })
            .count()
    };
    let before = released();
    host.run_until_idle();
    assert_eq!(released(), before + 1, "the root's HINCRBY -1");
    assert_eq!(count(&mut client, "10.0.0.1:80"), 0);
    // Gone before the body: nothing was counted.
    let mut s = host.http_stream();
    s.set_route_name(ROUTE).set_cluster_name(UPSTREAM);
    s.send_request_headers(&[(":path", "/"), (":method", "POST")], false)
        .unwrap();
    s.done().unwrap();
    host.run_until_idle();
    assert_eq!(count(&mut client, "10.0.0.1:80"), 0);
    host.assert_idle();
}

// ----- Redis down: the cluster's load balancer picks ------------------------------------------

#[test]
fn redis_down_continues_without_override() {
    let mut server = RedisServer::start();
    let host = started(&server, healthy(&["10.0.0.1:80"]), &config(json!({})));
    server.kill();
    let mut s = send(&host);
    host.run_until_idle();
    assert!(s.local_response().is_none());
    assert!(!s.is_request_paused());
    assert!(s.upstream_request_complete());
    assert_eq!(s.upstream_override_host(), None);
    assert!(!host
        .logs_containing("fallback to default lb policy")
        .is_empty());
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    s.done().unwrap();
    host.run_until_idle();
    // Nothing to release: no call after the failed EVAL.
    let evals = host
        .callouts()
        .iter()
        .filter(|c| matches!(c.kind, CalloutKind::Redis { .. }))
        .count();
    assert_eq!(evals, 1);
    host.assert_idle();
}

#[test]
fn redis_not_registered_continues_at_once() {
    // No such cluster in the gateway: the call fails without pausing.
    let host = start_with(config(json!({})).to_string(), |b| b.clusters(["outbound|80||other.static"]).upstream_hosts(healthy(&["10.0.0.1:80"])))
        .unwrap();
    let mut s = host.http_stream();
    s.set_route_name(ROUTE).set_cluster_name(UPSTREAM);
    s.send_request_headers(&[(":path", "/"), (":method", "POST")], false)
        .unwrap();
    assert_eq!(s.send_request_body("{}", true).unwrap(), Action::Continue);
    assert!(s.upstream_request_complete());
    assert_eq!(s.upstream_override_host(), None);
    drop(s);
    host.run_until_idle();
    host.assert_idle();
}

#[test]
fn redis_error_reply_continues_without_override() {
    let host = start_with(config(json!({})).to_string(), |b| b.upstream_hosts(healthy(&["10.0.0.1:80"])))
        .unwrap();
    let s = send(&host);
    let token = host.pending_callouts()[0].token;
    host.respond_redis(token, "-ERR script failed\r\n").unwrap();
    assert!(s.upstream_request_complete());
    assert_eq!(s.upstream_override_host(), None);
    // A reply of another shape: the same.
    drop(s);
    let s = send(&host);
    let token = host.pending_callouts()[0].token;
    host.respond_redis(token, ":1\r\n").unwrap();
    assert!(s.upstream_request_complete());
    assert_eq!(s.upstream_override_host(), None);
    assert!(!host.logs_containing("result format error").is_empty());
    drop(s);
    host.assert_idle();
}

// ----- nothing to pick from ------------------------------------------------------------------

#[test]
fn no_healthy_host_or_no_route_continues_without_redis() {
    let server = RedisServer::start();
    let host = started(
        &server,
        vec![("10.0.0.1:80".to_owned(), UNHEALTHY.to_owned())],
        &config(json!({})),
    );
    let mut s = host.http_stream();
    s.set_route_name(ROUTE).set_cluster_name(UPSTREAM);
    s.send_request_headers(&[(":path", "/"), (":method", "POST")], false)
        .unwrap();
    assert_eq!(s.send_request_body("{}", true).unwrap(), Action::Continue);
    assert!(s.upstream_request_complete());
    drop(s);
    // No route name.
    let host2 = started(&server, healthy(&["10.0.0.1:80"]), &config(json!({})));
    let mut s = host2.http_stream();
    s.set_cluster_name(UPSTREAM);
    s.send_request_headers(&[(":path", "/"), (":method", "POST")], false)
        .unwrap();
    assert_eq!(s.send_request_body("{}", true).unwrap(), Action::Continue);
    assert_eq!(s.upstream_override_host(), None);
    drop(s);
    assert!(host.callouts().is_empty() && host2.callouts().is_empty());
}

#[test]
fn a_request_without_body_is_picked_in_the_headers() {
    let server = RedisServer::start();
    let mut client = server.client();
    let host = started(&server, healthy(&["10.0.0.1:80"]), &config(json!({})));
    let mut s = host.http_stream();
    s.set_route_name(ROUTE).set_cluster_name(UPSTREAM);
    assert_eq!(
        s.send_request_headers(&[(":path", "/v1/models"), (":method", "GET")], true)
            .unwrap(),
        Action::Pause
    );
    host.run_until_idle();
    assert_eq!(s.upstream_override_host().as_deref(), Some("10.0.0.1:80"));
    assert!(s.upstream_request_complete());
    assert_eq!(count(&mut client, "10.0.0.1:80"), 1);
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    s.done().unwrap();
    host.run_until_idle();
    assert_eq!(count(&mut client, "10.0.0.1:80"), 0);
    host.assert_idle();
}

// ----- cleaning: Go's lb_script_test.lua Tests 2 and 3 -------------------------------------------

#[test]
fn cleaning_removes_hosts_that_are_gone_once_per_interval() {
    let server = RedisServer::start();
    let mut client = server.client();
    // Test 2: last cleaned 500 s ago, interval 300 s.
    set_counts(
        &mut client,
        &[
            ("host1", 10),
            ("host2", 5),
            ("old_ip_1", 1),
            ("old_ip_2", 1),
        ],
    );
    let clean = last_clean_key(ROUTE, UPSTREAM);
    let last = now_secs() - 500;
    redis_cmd!(client, "SET", clean, last.to_string());
    let mut hosts = healthy(&["host1"]);
    hosts.push(("host2".to_owned(), UNHEALTHY.to_owned()));
    let host = started(&server, hosts, &config(json!({"cleanInterval": 5})));
    let (s, pick) = picked(&host);
    assert_eq!(pick, "host1");
    let left = counts(&mut client);
    assert_eq!(
        left.keys().collect::<Vec<_>>(),
        ["host1", "host2"],
        "the unhealthy host is still the cluster's: kept"
    );
    let Resp::Bulk(Some(t)) = redis_cmd!(client, "GET", clean) else {
        panic!()
    };
    let t: i64 = String::from_utf8_lossy(&t).parse().unwrap();
    assert!((t - now_secs()).abs() < 60, "last clean time now: {t}");
    finish(&host, s);

    // Test 3: interval not reached (cleaned 100 s ago).
    set_counts(&mut client, &[("old_ip_1", 1)]);
    redis_cmd!(client, "SET", clean, (now_secs() - 100).to_string());
    let (s, _) = picked(&host);
    assert!(counts(&mut client).contains_key("old_ip_1"));
    finish(&host, s);
    host.assert_idle();
}

// ----- config ------------------------------------------------------------------------------

#[test]
fn config_keys_and_defaults_as_go() {
    let c = parse_config(&config(json!({}))).unwrap();
    assert_eq!(
        (c.lb_type.as_str(), c.lb_policy.as_str()),
        ("endpoint", "global_least_request")
    );
    let lb = least_request(&c.lb);
    assert_eq!(
        (lb.service_fqdn.as_str(), lb.service_port),
        ("redis.static", 6379)
    );
    assert_eq!(lb.timeout_ms, 3000);
    assert_eq!(lb.database, 0);
    assert_eq!(lb.max_request_count, 0);
    assert_eq!(lb.clean_interval_secs, 3600);
    assert!(lb.enable_detail_log);
    // lb_type defaults to endpoint.
    let c = parse_config(&json!({"lb_policy": "global_least_request",
        "lb_config": {"serviceFQDN": "redis2.static", "servicePort": "6379", "timeout": 500,
                      "database": 2, "maxRequestCount": 10, "cleanInterval": 5,
                      "enableDetailLog": false}}))
    .unwrap();
    let lb = least_request(&c.lb);
    assert_eq!(c.lb_type, "endpoint");
    assert_eq!(lb.service_port, 6379);
    assert_eq!((lb.timeout_ms, lb.database), (500, 2));
    assert_eq!((lb.max_request_count, lb.clean_interval_secs), (10, 300));
    assert!(!lb.enable_detail_log);
}

fn least_request(lb: &LoadBalancer) -> &GlobalLeastRequest {
    match lb {
        LoadBalancer::GlobalLeastRequest(lb) => lb,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_redis_client_is_go_s() {
    let cfg = config(json!({"username": "default", "password": "123456", "database": 1}));
    let host = start_with(cfg.to_string(), |b| b.upstream_hosts(healthy(&["10.0.0.1:80"])))
        .unwrap();
    let s = send(&host);
    let inits = host.redis_inits();
    assert_eq!(inits.len(), 1, "{inits:?}");
    let init = &inits[0];
    assert!(
        init.service
            .starts_with("outbound|6379||redis.static?db=1&"),
        "{init:?}"
    );
    assert_eq!(
        (init.username.as_str(), init.password.as_str()),
        ("default", "123456")
    );
    assert_eq!(
        init.timeout,
        std::time::Duration::from_millis(3000),
        "Go's default"
    );
    let token = host.pending_callouts()[0].token;
    host.fail_redis(token).unwrap();
    drop(s);
    host.assert_idle();
}

#[test]
fn a_bad_config_names_the_field() {
    let refused = |config: Value, path: &str, message: &str| {
        let e = parse_config(&config).unwrap_err();
        assert_eq!(e.path(), Some(path), "{e}");
        assert!(e.to_string().contains(message), "{e}");
        let failure = start(config.to_string()).unwrap_err();
        assert_eq!(failure.stage, StartStage::Configure);
        assert!(!failure.logs_containing(path).is_empty(), "{failure}");
    };
    let mut c = config(json!({}));
    c["lb_config"]
        .as_object_mut()
        .unwrap()
        .remove("serviceFQDN");
    refused(c, "lb_config.serviceFQDN", "invalid redis service config");
    let mut c = config(json!({}));
    c["lb_config"]
        .as_object_mut()
        .unwrap()
        .remove("servicePort");
    refused(c, "lb_config.servicePort", "invalid redis service config");
    refused(
        config(json!({"servicePort": 70000})),
        "lb_config.servicePort",
        "not a port",
    );
    refused(config(json!({"timeout": -1})), "lb_config.timeout", "-1");
    refused(config(json!({"database": -1})), "lb_config.database", "-1");
    let mut c = config(json!({}));
    c.as_object_mut().unwrap().remove("lb_config");
    refused(c, "lb_config.serviceFQDN", "invalid redis service config");
    refused(
        json!({"lb_type": "weird", "lb_policy": "global_least_request"}),
        "lb_type",
        "lb_type weird is not supported",
    );
    refused(
        json!({"lb_type": "endpoint", "lb_policy": "round_robin"}),
        "lb_policy",
        "lb_policy round_robin is not supported",
    );
    refused(
        json!({"lb_type": "cluster", "lb_policy": "global_least_request"}),
        "lb_policy",
        "is not supported",
    );
}

#[test]
fn the_other_policies_are_refused_as_not_supported_yet() {
    let cases = [
        json!({"lb_type": "endpoint", "lb_policy": "endpoint_hash"}),
        json!({"lb_type": "cluster", "lb_policy": "cluster_hash"}),
    ];
    for c in cases {
        let e = parse_config(&c).unwrap_err();
        assert_eq!(e.path(), Some("lb_policy"), "{e}");
        assert!(e.to_string().contains("not supported yet"), "{e}");
        let failure = start(c.to_string()).unwrap_err();
        assert!(
            !failure.logs_containing("not supported yet").is_empty(),
            "{failure}"
        );
    }
}

/// Go README's `global_least_request` example, unchanged (as JSON).
#[test]
fn the_go_readme_config_starts() {
    let readme = json!({"lb_type": "endpoint", "lb_policy": "global_least_request",
        "lb_config": {"serviceFQDN": "redis.static", "servicePort": 6379,
                      "username": "default", "password": "123456"}});
    let host = start(readme.to_string())
        .unwrap();
    drop(host);
}

// ----- load ------------------------------------------------------------------------------------

/// 1,000 requests in flight at once, a tenth of the clients gone while
/// Redis picks, the rest ending in a shuffled order: every count in Redis
/// is back at zero.
#[test]
fn a_thousand_concurrent_requests_leave_every_count_at_zero() {
    let server = RedisServer::start();
    let mut client = server.client();
    let addresses = ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.3:80", "10.0.1.4:80"];
    let host = started(
        &server,
        healthy(&addresses),
        &config(json!({"enableDetailLog": false})),
    );
    let mut open: Vec<HttpStream<'_>> = (0..1000).map(|_| send(&host)).collect();
    for s in open.iter_mut().take(100) {
        s.done().unwrap();
    }
    host.run_until_idle();
    let held = counts(&mut client);
    assert_eq!(held.values().sum::<i64>(), 900, "{held:?}");
    for s in open.iter().skip(100) {
        assert!(s.upstream_override_host().is_some());
        assert!(s.upstream_request_complete());
    }
    // A fixed shuffle (LCG), so a failure replays.
    let mut order: Vec<usize> = (100..1000).collect();
    let mut x: u64 = 42;
    for i in (1..order.len()).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    for i in order {
        let s = &mut open[i];
        s.send_response_headers(&[(":status", "200")], true)
            .unwrap();
        s.done().unwrap();
    }
    host.run_until_idle();
    let left = counts(&mut client);
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(left.values().all(|&c| c == 0), "{left:?}");
    drop(open);
    host.assert_idle();
}
}
