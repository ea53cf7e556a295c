//! Go's `main_test.go` of basic-auth, case by case, in the native test host
//! (the README maps each Go test to the Rust one), plus the Go README's
//! example. Where Go's test only checks `ActionContinue`, the Rust test also
//! checks the response Go's code gives (status, body, `WWW-Authenticate`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};

higress_test_host::both_modes! {
plugin: basic_auth::Plugin,
package: "basic-auth",

/// Standard base64 with padding (what `curl -u` sends).
fn base64(text: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let mut bits = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            bits |= u32::from(*b) << (16 - 8 * i);
        }
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(bits >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn basic(user_password: &str) -> String {
    format!("Basic {}", base64(user_password))
}

fn consumers() -> Value {
    json!([
        {"name": "consumer1", "credential": "admin:123456"},
        {"name": "consumer2", "credential": "guest:abc"}
    ])
}

fn config(global_auth: bool) -> Value {
    json!({"consumers": consumers(), "global_auth": global_auth})
}

/// Go's `basicGlobalConfig` / `globalAuthTrueConfig`.
fn basic_global() -> Value {
    config(false)
}
fn global_auth_true() -> Value {
    config(true)
}
/// Go's `routeAuthConfig`: an `allow` at the top level, which the global
/// parser ignores (as in Go).
fn route_auth() -> Value {
    let mut c = config(false);
    c["allow"] = json!(["consumer1"]);
    c
}

fn with_rules(rules: Value) -> Value {
    let mut c = config(false);
    c["_rules_"] = rules;
    c
}

fn started(config: &Value) -> TestHost {
    start(config.to_string()).unwrap()
}

fn refused(config: &Value, message: &str) {
    let failure = start(config.to_string()).unwrap_err();
    assert_eq!(failure.stage, StartStage::Configure);
    assert!(!failure.logs_containing(message).is_empty(), "{failure}");
}

struct Outcome {
    action: Action,
    response: Option<LocalResponse>,
    consumer: Option<String>,
}

fn request_to(
    host: &TestHost,
    authority: &str,
    route: Option<&str>,
    auth: Option<&str>,
) -> Outcome {
    let mut s = host.http_stream();
    s.set_authority(authority);
    if let Some(route) = route {
        s.set_route_name(route);
    }
    let mut headers = vec![(":path", "/api/test"), (":method", "GET")];
    if let Some(auth) = auth {
        headers.push(("authorization", auth));
    }
    let action = s.send_request_headers(&headers, true).unwrap();
    Outcome {
        action,
        response: s.local_response(),
        consumer: s.request_header("x-mse-consumer").map(|v| v.to_string()),
    }
}

fn request(host: &TestHost, auth: Option<&str>) -> Outcome {
    request_to(host, "example.com", None, auth)
}

const NO_DATA: &str =
    "Request denied by Basic Auth check. No Basic Authentication information found.";
const BAD: &str = "Request denied by Basic Auth check. Invalid username and/or password.";
const UNAUTHORIZED: &str = "Request denied by Basic Auth check. Unauthorized consumer.";

fn assert_denied(outcome: &Outcome, status: u32, body: &str, details: &str) {
    assert_eq!(
        outcome.action,
        Action::Pause,
        "a local response holds the stream"
    );
    let response = outcome.response.as_ref().expect("denied");
    assert_eq!(response.status, status);
    assert_eq!(String::from_utf8_lossy(&response.body), body);
    assert_eq!(response.details, details);
    assert_eq!(
        response.header("www-authenticate").unwrap(),
        "Basic realm=MSE Gateway"
    );
    assert_eq!(outcome.consumer, None);
}

fn assert_passed(outcome: &Outcome, consumer: Option<&str>) {
    assert_eq!(outcome.action, Action::Continue);
    assert!(outcome.response.is_none(), "{:?}", outcome.response);
    assert_eq!(outcome.consumer.as_deref(), consumer);
}

#[test]
fn base64_helper_matches_the_go_readme() {
    assert_eq!(basic("admin:123456"), "Basic YWRtaW46MTIzNDU2");
    assert_eq!(base64("admin"), "YWRtaW4=");
}

// ----- TestParseGlobalConfig ---------------------------------------------------

#[test]
fn parse_global_config() {
    // basic global config / global auth true config
    started(&basic_global());
    started(&global_auth_true());
    // invalid config - missing consumers / empty consumers
    refused(&json!({"global_auth": false}), "consumers is required");
    refused(
        &json!({"consumers": [], "global_auth": false}),
        "consumers cannot be empty",
    );
    let one = |consumer: Value| json!({"consumers": [consumer], "global_auth": false});
    // invalid config - duplicate credential (not echoed)
    let duplicate = json!({"consumers": [
        {"name": "consumer1", "credential": "admin:123456"},
        {"name": "consumer2", "credential": "admin:123456"}
    ]});
    refused(
        &duplicate,
        "consumers[1].credential: duplicate consumer credential",
    );
    let failure = start(duplicate.to_string()).unwrap_err();
    assert!(failure.logs_containing("123456").is_empty(), "{failure}");
    // invalid config - invalid credential format
    refused(
        &one(json!({"name": "consumer1", "credential": "admin"})),
        "invalid credential format",
    );
    // invalid config - missing consumer name / empty consumer name
    refused(
        &one(json!({"credential": "admin:123456"})),
        "consumer name is required",
    );
    refused(
        &one(json!({"name": "", "credential": "admin:123456"})),
        "consumer name is required",
    );
    // invalid config - empty credential
    refused(
        &one(json!({"name": "consumer1", "credential": ""})),
        "consumer credential is required",
    );
}

// ----- TestParseOverrideRuleConfig ---------------------------------------------

#[test]
fn parse_override_rule_config() {
    // route auth config / domain auth config: a top-level allow is ignored.
    let host = started(&route_auth());
    assert_passed(&request(&host, Some(&basic("guest:abc"))), None);
    let mut domain_auth = config(false);
    domain_auth["allow"] = json!(["consumer2"]);
    started(&domain_auth);
    // invalid config - empty allow list (fails: no consumers)
    refused(&json!({"allow": []}), "consumers is required");
    // And a rule's own empty or missing allow.
    refused(
        &with_rules(json!([{"_match_route_": ["r"], "allow": []}])),
        "allow cannot be empty",
    );
    refused(
        &with_rules(json!([{"_match_route_": ["r"]}])),
        "allow is required",
    );
}

// ----- TestParseRuleConfig -----------------------------------------------------

#[test]
fn parse_rule_config_levels() {
    let admin = basic("admin:123456");
    let guest = basic("guest:abc");
    // route level config
    let host = started(&with_rules(json!([
        {"_match_route_": ["route-a", "route-b"], "allow": ["consumer1"]},
        {"_match_route_": ["route-c"], "allow": ["consumer2"]}
    ])));
    let on = |route: &str, auth: &str| request_to(&host, "x.org", Some(route), Some(auth));
    assert_passed(&on("route-b", &admin), Some("consumer1"));
    assert_denied(
        &on("route-b", &guest),
        403,
        UNAUTHORIZED,
        "basic-auth.unauthorized",
    );
    assert_passed(&on("route-c", &guest), Some("consumer2"));

    // domain level config: the first matching rule wins.
    let host = started(&with_rules(json!([
        {"_match_domain_": ["*.example.com", "test.com"], "allow": ["consumer2"]},
        {"_match_domain_": ["api.example.com"], "allow": ["consumer1"]}
    ])));
    let at = |domain: &str, auth: &str| request_to(&host, domain, None, Some(auth));
    assert_passed(&at("api.example.com", &guest), Some("consumer2"));
    assert_eq!(at("api.example.com", &admin).response.unwrap().status, 403);
    assert_passed(&at("test.com", &guest), Some("consumer2"));

    // service level config
    let host = started(&with_rules(json!([
        {"_match_service_": ["service-a:8080", "service-b"], "allow": ["consumer1"]},
        {"_match_service_": ["service-c:9090"], "allow": ["consumer2"]}
    ])));
    let to = |cluster: &str, auth: &str| {
        let mut s = host.http_stream();
        s.set_cluster_name(cluster);
        s.send_request_headers(&[(":path", "/"), ("authorization", auth)], true)
            .unwrap();
        s.local_response().map(|r| r.status)
    };
    assert_eq!(to("outbound|8080||service-a", &admin), None);
    assert_eq!(to("outbound|8080||service-a", &guest), Some(403));
    assert_eq!(to("outbound|1||service-b", &admin), None);
    assert_eq!(to("outbound|9090||service-c", &guest), None);

    // route prefix level config
    let host = started(&with_rules(json!([
        {"_match_route_prefix_": ["api-", "web-"], "allow": ["consumer1"]},
        {"_match_route_prefix_": ["admin-", "internal-"], "allow": ["consumer2"]}
    ])));
    let on = |route: &str, auth: &str| request_to(&host, "x.org", Some(route), Some(auth));
    assert_passed(&on("web-1", &admin), Some("consumer1"));
    assert_eq!(on("internal-x", &admin).response.unwrap().status, 403);

    // route and service level config
    let host = started(&with_rules(json!([
        {"_match_route_": ["route-a"], "_match_service_": ["service-a:8080"], "allow": ["consumer1"]},
        {"_match_route_": ["route-b"], "_match_service_": ["service-b:9090"], "allow": ["consumer2"]}
    ])));
    let mut s = host.http_stream();
    s.set_route_name("route-a")
        .set_cluster_name("outbound|8080||service-a");
    s.send_request_headers(&[(":path", "/"), ("authorization", guest.as_str())], true)
        .unwrap();
    assert_eq!(s.local_response().unwrap().status, 403);
    // Route without the service: no rule, and global_auth false: open.
    let mut s = host.http_stream();
    s.set_route_name("route-a");
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert!(s.local_response().is_none());

    // mixed level config
    let mut mixed = with_rules(json!([
        {"_match_route_": ["api-route"], "allow": ["consumer1"]},
        {"_match_domain_": ["*.example.com"], "allow": ["consumer2"]},
        {"_match_service_": ["internal-service:8080"], "allow": ["consumer3"]},
        {"_match_route_prefix_": ["web-"], "allow": ["consumer1", "consumer2"]}
    ]));
    mixed["consumers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "consumer3", "credential": "user:def"}));
    let host = started(&mixed);
    assert_passed(
        &request_to(&host, "a.example.com", None, Some(&guest)),
        Some("consumer2"),
    );
    assert_passed(
        &request_to(&host, "x.org", Some("web-2"), Some(&admin)),
        Some("consumer1"),
    );

    // invalid rule config - missing match conditions / empty match conditions
    refused(
        &with_rules(json!([{"allow": ["consumer1"]}])),
        "_match_route_",
    );
    refused(
        &with_rules(json!([{"_match_route_": [], "allow": ["consumer1"]}])),
        "_match_route_",
    );
}

// ----- TestOnHttpRequestHeaders ------------------------------------------------

#[test]
fn missing_authorization_header() {
    // global_auth false and no rules: no authentication.
    let host = started(&basic_global());
    assert_passed(&request(&host, None), None);
    // With global_auth true it is a 401.
    let host = started(&global_auth_true());
    assert_denied(
        &request(&host, None),
        401,
        NO_DATA,
        "basic-auth.no_auth_data",
    );
}

#[test]
fn empty_authorization_header() {
    let host = started(&basic_global());
    assert_passed(&request(&host, Some("")), None);
    let host = started(&global_auth_true());
    assert_denied(
        &request(&host, Some("")),
        401,
        NO_DATA,
        "basic-auth.no_auth_data",
    );
}

#[test]
fn invalid_authorization_format_missing_basic_prefix() {
    let host = started(&global_auth_true());
    let outcome = request(&host, Some("Bearer token123"));
    assert_denied(&outcome, 401, NO_DATA, "basic-auth.no_auth_data");
}

#[test]
fn invalid_authorization_format_invalid_base64() {
    let host = started(&global_auth_true());
    let outcome = request(&host, Some("Basic invalid-base64"));
    assert_denied(&outcome, 401, BAD, "basic-auth.bad_credential");
}

#[test]
fn invalid_credential_format_missing_password() {
    let host = started(&global_auth_true());
    let outcome = request(&host, Some(&basic("admin")));
    assert_denied(&outcome, 401, BAD, "basic-auth.bad_credential");
}

#[test]
fn invalid_username_not_configured() {
    let host = started(&global_auth_true());
    let outcome = request(&host, Some(&basic("unknown:password")));
    assert_denied(&outcome, 401, BAD, "basic-auth.bad_credential");
}

#[test]
fn invalid_password_wrong_password() {
    let host = started(&global_auth_true());
    let outcome = request(&host, Some(&basic("admin:wrongpassword")));
    assert_denied(&outcome, 401, BAD, "basic-auth.bad_credential");
    // The password is not logged.
    assert!(host.logs_containing("wrongpassword").is_empty());
}

#[test]
fn valid_credentials_global_auth_true_no_allow_config() {
    let host = started(&global_auth_true());
    let outcome = request(&host, Some(&basic("admin:123456")));
    assert_passed(&outcome, Some("consumer1"));
}

#[test]
fn valid_credentials_global_auth_false_with_allow_config() {
    // The top-level allow is ignored and global_auth is false: no check.
    let host = started(&route_auth());
    assert_passed(&request(&host, Some(&basic("admin:123456"))), None);
}

#[test]
fn valid_credentials_but_not_in_allow_list() {
    // Go's test uses the top-level allow, which Go ignores: passes.
    let host = started(&route_auth());
    assert_passed(&request(&host, Some(&basic("guest:abc"))), None);
    // In a rule's allow list it is a 403.
    let host = started(&with_rules(
        json!([{"_match_domain_": ["example.com"], "allow": ["consumer1"]}]),
    ));
    let outcome = request(&host, Some(&basic("guest:abc")));
    assert_denied(&outcome, 403, UNAUTHORIZED, "basic-auth.unauthorized");
}

// ----- TestCompleteFlow --------------------------------------------------------

#[test]
fn complete_basic_auth_flow() {
    let host = started(&global_auth_true());
    assert_denied(
        &request(&host, None),
        401,
        NO_DATA,
        "basic-auth.no_auth_data",
    );
    let outcome = request(&host, Some(&basic("admin:123456")));
    assert_passed(&outcome, Some("consumer1"));
}

// ----- the Go README's example ---------------------------------------------------

#[test]
fn readme_example() {
    let host = started(&json!({
        "consumers": [
            {"credential": "admin:123456", "name": "consumer1"},
            {"credential": "guest:abc", "name": "consumer2"}
        ],
        "global_auth": false,
        "_rules_": [
            {"_match_route_": ["route-a", "route-b"], "allow": ["consumer1"]},
            {"_match_domain_": ["*.example.com", "test.com"], "allow": ["consumer2"]}
        ]
    }));
    let route_a = |auth: Option<&str>| request_to(&host, "xxx.hello.com", Some("route-a"), auth);
    assert_passed(&route_a(Some("Basic YWRtaW46MTIzNDU2")), Some("consumer1"));
    assert_denied(&route_a(None), 401, NO_DATA, "basic-auth.no_auth_data");
    assert_denied(
        &route_a(Some(&basic("admin:abc"))),
        401,
        BAD,
        "basic-auth.bad_credential",
    );
    assert_denied(
        &route_a(Some(&basic("guest:abc"))),
        403,
        UNAUTHORIZED,
        "basic-auth.unauthorized",
    );
    // Outside every rule, global_auth false: open.
    assert_passed(&request_to(&host, "other.org", None, None), None);
}

#[test]
fn global_auth_unset_depends_on_rules() {
    let mut no_rules = config(false);
    no_rules.as_object_mut().unwrap().remove("global_auth");
    let host = started(&no_rules);
    assert_eq!(request(&host, None).response.unwrap().status, 401);

    let mut rules = with_rules(json!([{"_match_route_": ["r"], "allow": ["consumer1"]}]));
    rules.as_object_mut().unwrap().remove("global_auth");
    let host = started(&rules);
    assert_passed(&request(&host, None), None);
}

#[test]
fn an_unknown_huge_user_name_is_logged_truncated() {
    let host = start(global_auth_true().to_string()).unwrap();
    let user = "u".repeat(30_000);
    let authorization = basic(&format!("{user}:pw"));
    let mut s = host.http_stream();
    s.send_request_headers(
        &[(":path", "/"), ("authorization", authorization.as_str())],
        true,
    )
    .unwrap();
    assert_eq!(s.local_response().map(|r| r.status), Some(401));
    let lines = host.logs_containing("is not configured");
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].message.contains("... (30000 bytes)"),
        "{}",
        lines[0].message
    );
    assert!(
        lines[0].message.len() < 300,
        "{} bytes",
        lines[0].message.len()
    );
}
}
