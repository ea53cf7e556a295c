//! `prefix_cache` in both test hosts (native and the compiled module,
//! `both_modes!`) in Higress mode (ABI 0.2.100
//! semantics, `route_name` / `cluster_name`, upstream hosts) with a real
//! `redis-server`: the `EVAL` Go sends, prefix hits and misses, the TTL
//! refresh, ties, the release after the stream ends, Go's fallbacks, Go's
//! unhealthy-prefix bug and the `remapUnhealthyPrefix` fix, and the config.
//! The prefix hashes are checked against Redis's own `redis.sha1hex`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../higress-wrapper/tests/common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use ai_load_balancer::prefix_cache::{
    prefix_hashes, sha1_hex, Prefixes, PREFIX_CACHE_SCRIPT, PREFIX_CACHE_SCRIPT_REMAP,
};
use ai_load_balancer::{parse_config, table_key, LoadBalancer};
use redis_server::{RawClient, RedisServer, Resp};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

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
    json!({"lb_type": "endpoint", "lb_policy": "prefix_cache", "lb_config": lb_config})
}

fn healthy(addresses: &[&str]) -> Vec<(String, String)> {
    addresses
        .iter()
        .map(|a| ((*a).to_owned(), HEALTHY.to_owned()))
        .collect()
}

fn table() -> String {
    table_key(ROUTE, UPSTREAM)
}

/// A chat body from (role, content) pairs.
fn chat(messages: &[(&str, &str)]) -> String {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(r, c)| json!({"role": r, "content": c}))
        .collect();
    json!({"model": "qwen-turbo", "messages": messages}).to_string()
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

fn set_counts(client: &mut RawClient, pairs: &[(&str, i64)]) {
    let key = table();
    for (h, c) in pairs {
        redis_cmd!(client, "HSET", key, h, c.to_string());
    }
}

fn get(client: &mut RawClient, key: &str) -> Option<String> {
    match redis_cmd!(client, "GET", key) {
        Resp::Bulk(Some(v)) => Some(String::from_utf8(v).unwrap()),
        Resp::Bulk(None) => None,
        other => panic!("{other:?}"),
    }
}

fn ttl(client: &mut RawClient, key: &str) -> i64 {
    match redis_cmd!(client, "TTL", key) {
        Resp::Int(n) => n,
        other => panic!("{other:?}"),
    }
}

/// SHA-1 by Redis itself (`redis.sha1hex`), upper case as Go's.
fn redis_sha1(client: &mut RawClient, text: &str) -> String {
    match redis_cmd!(client, "EVAL", "return redis.sha1hex(ARGV[1])", "0", text) {
        Resp::Bulk(Some(v)) => String::from_utf8(v).unwrap().to_uppercase(),
        other => panic!("{other:?}"),
    }
}

fn xor(a: &str, b: &str) -> String {
    let byte = |s: &str, i: usize| u8::from_str_radix(&s[i..i + 2], 16).unwrap();
    (0..a.len())
        .step_by(2)
        .map(|i| format!("{:02X}", byte(a, i) ^ byte(b, i)))
        .collect()
}

/// The Redis keys of a conversation's prefixes, oldest first.
fn chain(client: &mut RawClient, pieces: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for p in pieces {
        let h = redis_sha1(client, p);
        let key = match keys.last() {
            Some(prev) => xor(prev, &h),
            None => h,
        };
        keys.push(key);
    }
    keys
}

fn bulk_args(query: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(query).into_owned();
    let mut lines = text.split("\r\n");
    let n: usize = lines.next().unwrap()[1..].parse().unwrap();
    let mut args = Vec::new();
    for _ in 0..n {
        let len: usize = lines.next().unwrap()[1..].parse().unwrap();
        let mut arg = lines.next().unwrap().to_owned();
        while arg.len() < len {
            arg.push_str("\r\n");
            arg.push_str(lines.next().unwrap());
        }
        args.push(arg);
    }
    args
}

const README_TURN_1: &[(&str, &str)] = &[("user", "hi")];
const README_TURN_2: &[(&str, &str)] = &[
    ("user", "hi"),
    ("assistant", "Hi! How can I assist you today? 😊"),
    ("user", "write a short story aboud 100 words"),
];

// ----- the hashes ------------------------------------------------------------------------

#[test]
fn the_conversation_is_hashed_as_go_does() {
    let server = RedisServer::start();
    let mut client = server.client();
    // Cut after every user turn and after the last message.
    let body = chat(&[
        ("system", "be brief"),
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "more"),
        ("assistant", "sure"),
    ]);
    let expected: Vec<String> = [
        "system:be briefuser:hi",
        "assistant:hellouser:more",
        "assistant:sure",
    ]
    .iter()
    .map(|p| redis_sha1(&mut client, p))
    .collect();
    assert_eq!(prefix_hashes(body.as_bytes()), Prefixes::Hashes(expected));
    assert_eq!(sha1_hex(b"user:hi"), redis_sha1(&mut client, "user:hi"));
    // Multimodal content: its raw JSON text as sent (gjson's String()).
    let raw = r#"{"messages":[{"role":"user","content":[ {"type": "text", "text": "hi"} ]}]}"#;
    let text = r#"user:[ {"type": "text", "text": "hi"} ]"#;
    assert_eq!(
        prefix_hashes(raw.as_bytes()),
        Prefixes::Hashes(vec![redis_sha1(&mut client, text)])
    );
    // Nothing to hash, or a message Go cannot read.
    assert_eq!(prefix_hashes(br#"{"model":"m"}"#), Prefixes::Empty);
    assert_eq!(prefix_hashes(br#"{"messages":[]}"#), Prefixes::Empty);
    assert_eq!(prefix_hashes(b"not json"), Prefixes::Empty);
    assert_eq!(
        prefix_hashes(br#"{"messages":[{"role":"user"}]}"#),
        Prefixes::Malformed
    );
    assert_eq!(
        prefix_hashes(br#"{"messages":["hi"]}"#),
        Prefixes::Malformed
    );
}

// ----- config ---------------------------------------------------------------------------------

fn prefix(
    c: &ai_load_balancer::AiLoadBalancerConfig,
) -> &ai_load_balancer::prefix_cache::PrefixCache {
    match &c.lb {
        LoadBalancer::PrefixCache(lb) => lb,
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_keys_and_defaults_as_go() {
    let c = parse_config(&config(json!({}))).unwrap();
    let lb = prefix(&c);
    assert_eq!(
        (lb.service_fqdn.as_str(), lb.service_port),
        ("redis.static", 6379)
    );
    assert_eq!((lb.timeout_ms, lb.database), (3000, 0));
    assert_eq!(lb.redis_key_ttl, 1800);
    assert!(!lb.remap_unhealthy_prefix);
    assert_eq!(lb.script(), PREFIX_CACHE_SCRIPT);
    let c = parse_config(&json!({"lb_policy": "prefix_cache",
        "lb_config": {"serviceFQDN": "r.dns", "servicePort": "6380", "timeout": 100,
                      "database": 3, "redisKeyTTL": 60, "remapUnhealthyPrefix": true}}))
    .unwrap();
    let lb = prefix(&c);
    assert_eq!(c.lb_type, "endpoint");
    assert_eq!(lb.service_port, 6380);
    assert_eq!((lb.timeout_ms, lb.database, lb.redis_key_ttl), (100, 3, 60));
    assert_eq!(lb.script(), PREFIX_CACHE_SCRIPT_REMAP);
}

higress_test_host::both_modes! {
plugin: ai_load_balancer::Plugin,
package: "ai-load-balancer",

fn started(server: &RedisServer, hosts: Vec<(String, String)>, config: &Value) -> TestHost {
    start_with(config.to_string(), |b| {
        b.redis_server(REDIS, server.addr()).upstream_hosts(hosts)
    })
    .unwrap()
}

/// Headers held, body sent: the pick waits on Redis.
fn send<'h>(host: &'h TestHost, body: &str) -> HttpStream<'h> {
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
        Action::Pause,
        "headers held while the body is read"
    );
    assert_eq!(s.send_request_body(body, true).unwrap(), Action::Pause);
    s
}

/// [`send`], Redis answers, the request goes on with an override.
fn picked<'h>(host: &'h TestHost, body: &str) -> (HttpStream<'h>, String) {
    let s = send(host, body);
    host.run_until_idle();
    assert!(s.local_response().is_none(), "{:?}", s.local_response());
    assert!(!s.is_request_paused());
    assert!(s.upstream_request_complete());
    let pick = s.upstream_override_host().expect("an upstream override");
    (s, pick)
}

fn finish(host: &TestHost, mut s: HttpStream<'_>) {
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s.send_response_body("{}", true).unwrap();
    s.done().unwrap();
    host.run_until_idle();
}

/// The body goes on without an override and without asking Redis.
fn continues_without_redis(host: &TestHost, body: &str) {
    let mut s = host.http_stream();
    s.set_route_name(ROUTE).set_cluster_name(UPSTREAM);
    s.send_request_headers(&[(":path", "/"), (":method", "POST")], false)
        .unwrap();
    assert_eq!(s.send_request_body(body, true).unwrap(), Action::Continue);
    assert!(s.upstream_request_complete());
    assert_eq!(s.upstream_override_host(), None);
    drop(s);
    host.run_until_idle();
    assert!(host.callouts().is_empty(), "{:?}", host.callouts());
}


// ----- the EVAL --------------------------------------------------------------------------

#[test]
fn one_eval_per_request_with_gos_keys_and_argv() {
    let server = RedisServer::start();
    let mut client = server.client();
    let mut hosts = healthy(&["10.0.0.1:8000", "10.0.0.2:8000"]);
    hosts.insert(1, ("10.0.0.9:8000".to_owned(), UNHEALTHY.to_owned()));
    let host = started(&server, hosts, &config(json!({})));
    let s = send(&host, &chat(README_TURN_2));
    let calls = host.pending_callouts();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let CalloutKind::Redis { service, query } = &calls[0].kind else {
        panic!("{calls:?}")
    };
    assert_eq!(service, REDIS);
    let args = bulk_args(query);
    assert_eq!(args[0], "EVAL");
    assert_eq!(args[1], PREFIX_CACHE_SCRIPT, "Go's script by default");
    assert_eq!(args[2], "5", "numkeys: ttl, table, default + 2 healthy");
    assert_eq!(args[3], "1800", "redisKeyTTL defaults to 1800 s");
    assert_eq!(args[4], table());
    assert_eq!(
        args[4],
        format!("higress:global_least_request_table:{ROUTE}:{UPSTREAM}")
    );
    assert!(["10.0.0.1:8000", "10.0.0.2:8000"].contains(&args[5].as_str()));
    assert_eq!(&args[6..8], ["10.0.0.1:8000", "10.0.0.2:8000"]);
    let h1 = redis_sha1(&mut client, "user:hi");
    let h2 = redis_sha1(
        &mut client,
        "assistant:Hi! How can I assist you today? 😊user:write a short story aboud 100 words",
    );
    assert_eq!(&args[8..], [h1, h2], "ARGV: one hash per user turn");
    host.run_until_idle();
    assert!(s.upstream_override_host().is_some());
    finish(&host, s);
    host.assert_idle();
}

// ----- misses and hits ----------------------------------------------------------------------

#[test]
fn a_new_conversation_goes_to_the_least_loaded_and_is_remembered() {
    let server = RedisServer::start();
    let mut client = server.client();
    set_counts(
        &mut client,
        &[("10.0.0.1:80", 3), ("10.0.0.2:80", 1), ("10.0.0.3:80", 2)],
    );
    let host = started(
        &server,
        healthy(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]),
        &config(json!({"redisKeyTTL": 600})),
    );
    let (s, pick) = picked(&host, &chat(README_TURN_1));
    assert_eq!(pick, "10.0.0.2:80");
    assert_eq!(counts(&mut client)["10.0.0.2:80"], 2, "counted");
    let keys = chain(&mut client, &["user:hi"]);
    assert_eq!(get(&mut client, &keys[0]).as_deref(), Some("10.0.0.2:80"));
    let t = ttl(&mut client, &keys[0]);
    assert!(t > 500 && t <= 600, "redisKeyTTL: {t}");
    finish(&host, s);
    assert_eq!(counts(&mut client)["10.0.0.2:80"], 1, "released");
    host.assert_idle();
}

/// Go README's example: the follow-up of a conversation goes where it
/// started, however loaded that endpoint is now.
#[test]
fn a_conversation_sticks_to_its_endpoint() {
    let server = RedisServer::start();
    let mut client = server.client();
    let addresses = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];
    let host = started(&server, healthy(&addresses), &config(json!({})));
    let (first, pick) = picked(&host, &chat(README_TURN_1));
    finish(&host, first);
    // Make it the busiest.
    set_counts(&mut client, &[(pick.as_str(), 50)]);
    for a in addresses.iter().filter(|a| **a != pick) {
        set_counts(&mut client, &[(a, 0)]);
    }
    let (second, again) = picked(&host, &chat(README_TURN_2));
    assert_eq!(again, pick, "prefix hit");
    assert_eq!(counts(&mut client)[&pick], 51);
    // The longer prefix is stored for the same endpoint.
    let keys = chain(
        &mut client,
        &[
            "user:hi",
            "assistant:Hi! How can I assist you today? 😊user:write a short story aboud 100 words",
        ],
    );
    assert_eq!(get(&mut client, &keys[1]).as_deref(), Some(pick.as_str()));
    finish(&host, second);
    // Another conversation is a miss: it goes to an idle endpoint.
    let (third, other) = picked(&host, &chat(&[("user", "something else")]));
    assert_ne!(other, pick);
    finish(&host, third);
    host.assert_idle();
}

#[test]
fn a_hit_refreshes_the_ttl_of_every_matched_prefix() {
    let server = RedisServer::start();
    let mut client = server.client();
    let host = started(
        &server,
        healthy(&["10.0.0.1:80"]),
        &config(json!({"redisKeyTTL": 300})),
    );
    let (s, _) = picked(&host, &chat(README_TURN_2));
    finish(&host, s);
    let keys = chain(
        &mut client,
        &[
            "user:hi",
            "assistant:Hi! How can I assist you today? 😊user:write a short story aboud 100 words",
        ],
    );
    for k in &keys {
        redis_cmd!(client, "EXPIRE", k, "5");
    }
    // A shorter conversation matches (and refreshes) the first key only.
    let (s, _) = picked(&host, &chat(README_TURN_1));
    finish(&host, s);
    assert!(ttl(&mut client, &keys[0]) > 200, "refreshed");
    assert!(
        ttl(&mut client, &keys[1]) <= 5,
        "not matched, not refreshed"
    );
    let (s, _) = picked(&host, &chat(README_TURN_2));
    finish(&host, s);
    assert!(ttl(&mut client, &keys[1]) > 200, "refreshed");
    host.assert_idle();
}

#[test]
fn ties_are_broken_at_random() {
    let server = RedisServer::start();
    let mut client = server.client();
    let addresses = ["t1:80", "t2:80", "t3:80"];
    set_counts(&mut client, &[("t1:80", 0), ("t2:80", 0), ("t3:80", 0)]);
    let host = started(&server, healthy(&addresses), &config(json!({})));
    let mut seen = BTreeSet::new();
    for i in 0..40 {
        let (s, pick) = picked(&host, &chat(&[("user", &format!("question {i}"))]));
        seen.insert(pick);
        finish(&host, s);
    }
    assert_eq!(seen.len(), 3, "every tied endpoint gets picked: {seen:?}");
    assert!(counts(&mut client).values().all(|&c| c == 0));
    host.assert_idle();
}

// ----- an endpoint that is no longer healthy --------------------------------------------------

/// Go's script takes the key of an unhealthy hit before it stops, so the
/// chain is written from the wrong key: at the first turn the new pick is
/// stored under `000…0` and the stale entry stays. `remapUnhealthyPrefix`
/// stores it under the right key.
#[test]
fn a_prefix_on_an_unhealthy_endpoint_goes_elsewhere() {
    let server = RedisServer::start();
    let mut client = server.client();
    let keys = chain(&mut client, &["user:hi"]);
    let zeros = "0".repeat(40);
    for (remap, script) in [
        (false, PREFIX_CACHE_SCRIPT),
        (true, PREFIX_CACHE_SCRIPT_REMAP),
    ] {
        redis_cmd!(client, "FLUSHALL");
        redis_cmd!(client, "SET", keys[0], "10.0.0.9:80");
        let mut hosts = healthy(&["10.0.0.1:80"]);
        hosts.push(("10.0.0.9:80".to_owned(), UNHEALTHY.to_owned()));
        let host = started(
            &server,
            hosts,
            &config(json!({"remapUnhealthyPrefix": remap})),
        );
        let s = send(&host, &chat(README_TURN_1));
        let CalloutKind::Redis { query, .. } = &host.pending_callouts()[0].kind else {
            panic!()
        };
        assert_eq!(bulk_args(query)[1], script);
        host.run_until_idle();
        assert_eq!(s.upstream_override_host().as_deref(), Some("10.0.0.1:80"));
        finish(&host, s);
        if remap {
            assert_eq!(get(&mut client, &keys[0]).as_deref(), Some("10.0.0.1:80"));
            assert_eq!(get(&mut client, &zeros), None);
        } else {
            assert_eq!(get(&mut client, &keys[0]).as_deref(), Some("10.0.0.9:80"));
            assert_eq!(get(&mut client, &zeros).as_deref(), Some("10.0.0.1:80"));
        }
        host.assert_idle();
    }
}

// ----- the count --------------------------------------------------------------------------

#[test]
fn the_count_is_released_when_the_stream_ends_or_the_client_goes() {
    let server = RedisServer::start();
    let mut client = server.client();
    let host = started(&server, healthy(&["10.0.0.1:80"]), &config(json!({})));
    let (mut s, pick) = picked(&host, &chat(README_TURN_1));
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(counts(&mut client)[&pick], 1, "held while upstream answers");
    s.done().unwrap();
    host.run_until_idle();
    assert_eq!(counts(&mut client)[&pick], 0);
    // Gone while Redis picks: the root's task gives the count back.
    let mut s = send(&host, &chat(README_TURN_1));
    s.done().unwrap();
    host.run_until_idle();
    assert_eq!(counts(&mut client)[&pick], 0);
    host.assert_idle();
}

// ----- Go's fallbacks: the cluster's balancer picks ------------------------------------------

#[test]
fn without_a_conversation_the_cluster_balancer_picks() {
    let server = RedisServer::start();
    let host = started(&server, healthy(&["10.0.0.1:80"]), &config(json!({})));
    continues_without_redis(&host, r#"{"model":"m"}"#);
    continues_without_redis(&host, r#"{"model":"m","messages":[]}"#);
    continues_without_redis(&host, "not json");
    continues_without_redis(&host, r#"{"messages":[{"role":"user"}]}"#);
    assert!(!host
        .logs_containing("cannot extract role or content from request body")
        .is_empty());
    // No body: nothing held.
    let mut s = host.http_stream();
    s.set_route_name(ROUTE).set_cluster_name(UPSTREAM);
    assert_eq!(
        s.send_request_headers(&[(":path", "/v1/models"), (":method", "GET")], true)
            .unwrap(),
        Action::Continue
    );
    drop(s);
    host.assert_idle();
}

#[test]
fn without_a_healthy_endpoint_or_a_route_the_cluster_balancer_picks() {
    let server = RedisServer::start();
    let body = chat(README_TURN_1);
    let host = started(
        &server,
        vec![("10.0.0.1:80".to_owned(), UNHEALTHY.to_owned())],
        &config(json!({})),
    );
    continues_without_redis(&host, &body);
    assert!(!host
        .logs_containing("upstream cluster has no healthy endpoints")
        .is_empty());
    let host = started(&server, healthy(&["10.0.0.1:80"]), &config(json!({})));
    let mut s = host.http_stream();
    s.set_cluster_name(UPSTREAM);
    s.send_request_headers(&[(":path", "/"), (":method", "POST")], false)
        .unwrap();
    assert_eq!(s.send_request_body(&body, true).unwrap(), Action::Continue);
    assert_eq!(s.upstream_override_host(), None);
    drop(s);
    assert!(host.callouts().is_empty());
}

#[test]
fn redis_down_or_an_error_reply_continues_without_override() {
    let mut server = RedisServer::start();
    let host = started(&server, healthy(&["10.0.0.1:80"]), &config(json!({})));
    server.kill();
    let mut s = send(&host, &chat(README_TURN_1));
    host.run_until_idle();
    assert!(s.upstream_request_complete());
    assert_eq!(s.upstream_override_host(), None);
    assert!(!host.logs_containing("Redis eval failed").is_empty());
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    s.done().unwrap();
    host.run_until_idle();
    let calls = host
        .callouts()
        .iter()
        .filter(|c| matches!(c.kind, CalloutKind::Redis { .. }))
        .count();
    assert_eq!(calls, 1, "nothing to release after a failed EVAL");
    host.assert_idle();

    // An error reply: the same.
    let host = start_with(config(json!({})).to_string(), |b| {
        b.upstream_hosts(healthy(&["10.0.0.1:80"]))
    })
    .unwrap();
    let s = send(&host, &chat(README_TURN_1));
    let token = host.pending_callouts()[0].token;
    host.respond_redis(token, "-ERR script failed\r\n").unwrap();
    assert!(s.upstream_request_complete());
    assert_eq!(s.upstream_override_host(), None);
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
        config(json!({"redisKeyTTL": -5})),
        "lb_config.redisKeyTTL",
        "-5",
    );
    refused(
        config(json!({"remapUnhealthyPrefix": "yes"})),
        "lb_config.remapUnhealthyPrefix",
        "true or false",
    );
}

/// Go README's `prefix_cache` example, unchanged (as JSON).
#[test]
fn the_go_readme_config_starts() {
    let readme = json!({"lb_type": "endpoint", "lb_policy": "prefix_cache",
        "lb_config": {"serviceFQDN": "redis.static", "servicePort": 6379,
                      "username": "default", "password": "123456"}});
    let host = start(readme.to_string()).unwrap();
    drop(host);
}
}
