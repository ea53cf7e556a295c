//! Go's `main_test.go` of key-auth, case by case, in the native test host
//! (the README maps each Go test to the Rust one), plus the Go README's
//! example configs and the `global_auth` × `_rules_` decision table.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use key_auth::{parse_config, KeyAuthConfig};
use serde_json::{json, Value};

higress_test_host::both_modes! {
plugin: key_auth::Plugin,
package: "key-auth",

fn consumers() -> Value {
    json!([
        {"name": "consumer1", "credential": "token1"},
        {"name": "consumer2", "credential": "token2"}
    ])
}

/// Go's `basicKeyAuthConfig`.
fn basic() -> Value {
    json!({
        "consumers": consumers(),
        "keys": ["x-api-key", "apikey"],
        "in_header": true,
        "in_query": false,
        "global_auth": true,
    })
}

/// Go's `globalAuthFalseConfig`.
fn global_auth_false() -> Value {
    json!({
        "consumers": [{"name": "consumer1", "credential": "token1"}],
        "keys": ["x-api-key"],
        "in_header": true,
        "in_query": false,
        "global_auth": false,
    })
}

/// Go's `queryKeyConfig`.
fn query_key() -> Value {
    json!({
        "consumers": [{"name": "consumer1", "credential": "token1"}],
        "keys": ["apikey"],
        "in_header": false,
        "in_query": true,
        "global_auth": true,
    })
}

fn started(config: &Value) -> TestHost {
    start(config.to_string()).unwrap()
}

fn parsed(config: &Value) -> KeyAuthConfig {
    started(config);
    parse_config(config).unwrap()
}

/// Starting with `config` fails, with `message` in an error line.
fn refused(config: &Value, message: &str) {
    let failure = start(config.to_string()).unwrap_err();
    assert_eq!(failure.stage, StartStage::Configure);
    assert!(!failure.logs_containing(message).is_empty(), "{failure}");
}

/// What one request got: the action, the local response, and the
/// `x-mse-consumer` values the upstream would see.
struct Outcome {
    action: Action,
    response: Option<LocalResponse>,
    consumer: Vec<String>,
}

fn request(host: &TestHost, route: Option<&str>, path: &str, headers: &[(&str, &str)]) -> Outcome {
    let mut s = host.http_stream();
    s.set_authority("example.com");
    if let Some(route) = route {
        s.set_route_name(route);
    }
    let mut all = vec![(":path", path), (":method", "GET")];
    all.extend_from_slice(headers);
    let action = s.send_request_headers(&all, true).unwrap();
    Outcome {
        action,
        response: s.local_response(),
        consumer: s
            .request_header_values("x-mse-consumer")
            .iter()
            .map(|v| v.to_string())
            .collect(),
    }
}

fn get(host: &TestHost, path: &str, headers: &[(&str, &str)]) -> Outcome {
    request(host, None, path, headers)
}

const NO_KEY: &str = "Request denied by Key Auth check. No Key Authentication information found.";
const MULTI_KEY: &str =
    "Request denied by Key Auth check. Multi Key Authentication information found.";
const UNAUTHORIZED: &str = "Request denied by Key Auth check. Unauthorized consumer.";

/// Denied with `status`, `body` and Go's `WWW-Authenticate`.
fn assert_denied(outcome: &Outcome, status: u32, body: &str) {
    assert_eq!(
        outcome.action,
        Action::Pause,
        "a local response holds the stream"
    );
    let response = outcome.response.as_ref().expect("denied");
    assert_eq!(response.status, status);
    assert_eq!(String::from_utf8_lossy(&response.body), body);
    assert_eq!(
        response.header("www-authenticate").unwrap(),
        "Key realm=MSE Gateway"
    );
}

fn assert_allowed(outcome: &Outcome, consumer: Option<&str>) {
    assert_eq!(outcome.action, Action::Continue);
    assert!(outcome.response.is_none(), "{:?}", outcome.response);
    let want: Vec<String> = consumer.iter().map(|c| (*c).to_owned()).collect();
    assert_eq!(outcome.consumer, want);
}

// ----- TestParseGlobalConfig ---------------------------------------------------

#[test]
fn parse_global_config() {
    // basic key-auth config
    let c = parsed(&basic());
    assert_eq!(c.keys, ["x-api-key", "apikey"]);
    assert!(c.in_header);
    assert!(!c.in_query);
    assert_eq!(c.global_auth, Some(true));
    assert_eq!(c.consumers.len(), 2);
    // global auth false config
    let c = parsed(&global_auth_false());
    assert_eq!(c.keys, ["x-api-key"]);
    assert_eq!(c.global_auth, Some(false));
    // query key config
    let c = parsed(&query_key());
    assert!(!c.in_header);
    assert!(c.in_query);
    assert_eq!(c.keys, ["apikey"]);
    // multiple keys config
    let mut multiple = basic();
    multiple["keys"] = json!(["x-api-key", "apikey", "authorization"]);
    multiple["in_query"] = json!(true);
    let c = parsed(&multiple);
    assert!(c.in_header && c.in_query);
    assert_eq!(c.keys, ["x-api-key", "apikey", "authorization"]);
}

#[test]
fn parse_global_config_refuses_invalid_configs() {
    let without = |key: &str| {
        let mut c = basic();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let with = |key: &str, value: Value| {
        let mut c = basic();
        c[key] = value;
        c
    };
    // invalid no keys config / invalid empty keys config
    refused(&without("keys"), "keys is required");
    refused(&with("keys", json!([])), "keys cannot be empty");
    // invalid no consumers config / invalid empty consumers config
    refused(&without("consumers"), "consumers is required");
    refused(&with("consumers", json!([])), "consumers cannot be empty");
    // invalid no source config
    let mut no_source = without("in_header");
    no_source.as_object_mut().unwrap().remove("in_query");
    refused(&no_source, "must one of in_query/in_header required");
    // invalid duplicate credential config (the credential is not echoed)
    let duplicate = with(
        "consumers",
        json!([{"name": "consumer1", "credential": "token1"},
               {"name": "consumer2", "credential": "token1"}]),
    );
    refused(
        &duplicate,
        "consumers[1].credential: duplicate consumer credential",
    );
    let failure = start(duplicate.to_string()).unwrap_err();
    assert!(failure.logs_containing("token1").is_empty(), "{failure}");
    // Also Go's: a consumer without name or credential.
    refused(
        &with("consumers", json!([{"credential": "t"}])),
        "consumer name is required",
    );
    refused(
        &with("consumers", json!([{"name": "n", "credential": ""}])),
        "consumer credential is required",
    );
}

// ----- TestParseRuleConfig -----------------------------------------------------

#[test]
fn parse_rule_config() {
    // valid rule config
    let mut config = basic();
    config["keys"] = json!(["x-api-key"]);
    config["_rules_"] = json!([{"_match_route_": ["test-route"], "allow": ["consumer1"]}]);
    let host = started(&config);
    // The rule inherits the consumers and keys and applies its allow list.
    let route = Some("test-route");
    assert_allowed(
        &request(&host, route, "/", &[("x-api-key", "token1")]),
        Some("consumer1"),
    );
    assert_denied(
        &request(&host, route, "/", &[("x-api-key", "token2")]),
        403,
        UNAUTHORIZED,
    );

    // invalid rule config - empty allow
    config["_rules_"] = json!([{"_match_route_": ["test-route"], "allow": []}]);
    refused(&config, "allow cannot be empty");
    config["_rules_"] = json!([{"_match_route_": ["test-route"]}]);
    refused(&config, "allow is required");
}

// ----- TestOnHTTPRequestHeaders ------------------------------------------------

#[test]
fn global_auth_true_valid_api_key() {
    let host = started(&basic());
    assert_allowed(
        &get(&host, "/test", &[("x-api-key", "token1")]),
        Some("consumer1"),
    );
}

#[test]
fn global_auth_true_invalid_api_key() {
    let host = started(&basic());
    let outcome = get(&host, "/test", &[("x-api-key", "invalid-token")]);
    assert_denied(&outcome, 403, UNAUTHORIZED);
    assert_eq!(outcome.response.unwrap().details, "key-auth.unauthorized");
}

#[test]
fn global_auth_true_missing_api_key() {
    let host = started(&basic());
    let outcome = get(&host, "/test", &[]);
    assert_denied(&outcome, 401, NO_KEY);
    assert_eq!(outcome.response.unwrap().details, "key-auth.no_key");
}

#[test]
fn global_auth_true_multiple_api_keys() {
    let host = started(&basic());
    let outcome = get(
        &host,
        "/test",
        &[("x-api-key", "token1"), ("apikey", "token2")],
    );
    assert_denied(&outcome, 401, MULTI_KEY);
    assert_eq!(outcome.response.unwrap().details, "key-auth.multi_key");
}

#[test]
fn global_auth_false_no_allow_list() {
    let host = started(&global_auth_false());
    assert_allowed(&get(&host, "/test", &[]), None);
    assert!(!host
        .logs_containing("authorization is not required")
        .is_empty());
}

#[test]
fn query_api_key() {
    let host = started(&query_key());
    assert_allowed(&get(&host, "/test?apikey=token1", &[]), Some("consumer1"));
}

#[test]
fn query_api_key_invalid() {
    let host = started(&query_key());
    assert_denied(
        &get(&host, "/test?apikey=invalid-token", &[]),
        403,
        UNAUTHORIZED,
    );
}

#[test]
fn query_api_key_missing() {
    let host = started(&query_key());
    assert_denied(&get(&host, "/test", &[]), 401, NO_KEY);
    // A key given twice in the query is two keys.
    assert_denied(
        &get(&host, "/test?apikey=token1&apikey=token1", &[]),
        401,
        MULTI_KEY,
    );
}

// ----- beyond main_test.go -----------------------------------------------------

#[test]
fn with_both_sources_only_headers_are_read() {
    // Go: `if InHeader {...} else if InQuery {...}`.
    let mut config = basic();
    config["in_query"] = json!(true);
    let host = started(&config);
    assert_denied(&get(&host, "/test?apikey=token1", &[]), 401, NO_KEY);
}

#[test]
fn the_consumer_header_is_added_to_what_the_client_sent() {
    // Go uses AddHttpRequestHeader: a client's own X-Mse-Consumer stays.
    let host = started(&basic());
    let outcome = get(
        &host,
        "/",
        &[("x-api-key", "token2"), ("x-mse-consumer", "spoofed")],
    );
    assert_eq!(outcome.consumer, ["spoofed", "consumer2"]);
}

/// The Go README's instance config with rules for route-a/route-b
/// (`allow: [consumer1]`) and *.example.com/test.com (`allow: [consumer2]`).
fn readme_config(global_auth: Option<bool>, source: &str) -> Value {
    let mut config = json!({
        "consumers": [
            {"credential": "2bda943c-ba2b-11ec-ba07-00163e1250b5", "name": "consumer1"},
            {"credential": "c8c8e9ca-558e-4a2d-bb62-e700dcc40e35", "name": "consumer2"}
        ],
        "keys": ["apikey", "x-api-key"],
        "_rules_": [
            {"_match_route_": ["route-a", "route-b"], "allow": ["consumer1"]},
            {"_match_domain_": ["*.example.com", "test.com"], "allow": ["consumer2"]}
        ]
    });
    if let Some(global_auth) = global_auth {
        config["global_auth"] = json!(global_auth);
    }
    if !source.is_empty() {
        config[source] = json!(true);
    }
    config
}

const KEY1: &str = "2bda943c-ba2b-11ec-ba07-00163e1250b5";
const KEY2: &str = "c8c8e9ca-558e-4a2d-bb62-e700dcc40e35";

#[test]
fn readme_example_as_written_behaves_like_go() {
    // The README's examples omit in_query/in_header, which Go's code
    // requires (its README says both default to true; the code refuses).
    // Without rules, start fails.
    let mut global = readme_config(Some(true), "");
    global.as_object_mut().unwrap().remove("_rules_");
    refused(&global, "must one of in_query/in_header required");
    // With rules, Go (and the SDK) ignore the failed global config: the
    // plugin starts, the rules get an empty global (no keys), so every
    // request on a rule is denied with 401 and the others skip the plugin.
    let host = started(&readme_config(Some(false), ""));
    assert!(!host
        .logs_containing("must one of in_query/in_header required")
        .is_empty());
    let on_route = request(&host, Some("route-a"), "/", &[("x-api-key", KEY1)]);
    assert_denied(&on_route, 401, NO_KEY);
    assert_allowed(&get(&host, "/", &[]), None);
}

#[test]
fn readme_route_and_domain_allow_lists() {
    let host = started(&readme_config(Some(false), "in_query"));
    let on_route_a = |path: &str, headers: &[(&str, &str)]| {
        let mut s = host.http_stream();
        s.set_authority("xxx.hello.com");
        s.set_route_name("route-a");
        let mut all = vec![(":path", path)];
        all.extend_from_slice(headers);
        s.send_request_headers(&all, true).unwrap();
        (
            s.local_response().map(|r| r.status),
            s.request_header("x-mse-consumer").map(|v| v.to_string()),
        )
    };
    assert_eq!(
        on_route_a(&format!("/test?apikey={KEY1}"), &[]),
        (None, Some("consumer1".to_owned()))
    );
    assert_eq!(on_route_a("/test", &[]).0, Some(401));
    assert_eq!(
        on_route_a("/test?apikey=926d90ac-ba2e-11ec-ab68-00163e1250b5", &[]).0,
        Some(403)
    );
    assert_eq!(
        on_route_a(&format!("/test?apikey={KEY2}"), &[]).0,
        Some(403)
    );
    // The domain rule allows consumer2 only.
    let mut s = host.http_stream();
    s.set_authority("a.example.com");
    s.send_request_headers(&[(":path", format!("/?apikey={KEY2}"))], true)
        .unwrap();
    assert!(s.local_response().is_none());
    // global_auth false: a request no rule matches is not authenticated.
    let mut s = host.http_stream();
    s.set_authority("other.org");
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert!(s.local_response().is_none());
}

#[test]
fn readme_instance_level_auth() {
    let mut config = readme_config(Some(true), "in_header");
    config.as_object_mut().unwrap().remove("_rules_");
    let host = started(&config);
    assert_allowed(&get(&host, "/", &[("x-api-key", KEY2)]), Some("consumer2"));
    assert_denied(&get(&host, "/", &[]), 401, NO_KEY);
}

#[test]
fn global_auth_decides_requests_no_rule_matches() {
    // (global_auth, has rules) → is a request outside every rule checked?
    let cases = [
        (Some(true), true, true),
        (Some(true), false, true),
        (Some(false), true, false),
        (Some(false), false, false),
        (None, true, false),
        (None, false, true),
    ];
    for (global_auth, rules, checked) in cases {
        let mut config = readme_config(global_auth, "in_header");
        if !rules {
            config.as_object_mut().unwrap().remove("_rules_");
        }
        let host = started(&config);
        let unmatched = get(&host, "/", &[]);
        assert_eq!(
            unmatched.response.is_some(),
            checked,
            "global_auth {global_auth:?}, rules {rules}"
        );
        if checked {
            // Any configured consumer passes.
            assert_allowed(&get(&host, "/", &[("apikey", KEY2)]), Some("consumer2"));
        }
        // Inside a rule its allow list always applies.
        if rules {
            let outcome = request(&host, Some("route-b"), "/", &[("apikey", KEY2)]);
            assert_denied(&outcome, 403, UNAUTHORIZED);
        }
    }
}
}
