//! `examples/basic-auth` (the port of Higress's Go plugin) in a real Envoy
//! 1.40, with the Go README's consumers: `global_auth: true` and an `allow`
//! list on one route; 401/403 with `WWW-Authenticate: Basic realm=...`, and
//! the consumer's name added for the upstream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_e2e::{wasm_module, ClusterSpec, EchoUpstream, Gateway, PluginSpec, RouteSpec};

/// Request headers, as the harness takes them.
type Headers<'a> = &'a [(&'a str, &'a [u8])];

const CONFIG: &str = r#"{
    "consumers": [
        {"credential": "admin:123456", "name": "consumer1"},
        {"credential": "guest:abc", "name": "consumer2"}
    ],
    "global_auth": true,
    "_rules_": [{"_match_route_": ["route-a"], "allow": ["consumer1"]}]
}"#;

// `curl -u admin:123456` / `-u guest:abc` / `-u admin:abc`.
const ADMIN: &[u8] = b"Basic YWRtaW46MTIzNDU2";
const GUEST: &[u8] = b"Basic Z3Vlc3Q6YWJj";
const WRONG: &[u8] = b"Basic YWRtaW46YWJj";

const NO_DATA: &str =
    "Request denied by Basic Auth check. No Basic Authentication information found.";
const BAD: &str = "Request denied by Basic Auth check. Invalid username and/or password.";
const UNAUTHORIZED: &str = "Request denied by Basic Auth check. Unauthorized consumer.";

#[test]
fn global_auth_with_an_allow_list_on_one_route() {
    let upstream = EchoUpstream::start().unwrap();
    let wasm = wasm_module("basic-auth").unwrap_or_else(|e| panic!("{e}"));
    let gw = Gateway::builder()
        .name("port-basic-auth")
        .plugin(PluginSpec::new("basic-auth", wasm, CONFIG))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .route(RouteSpec::new("route-a", "/a", "echo"))
        .route(RouteSpec::new("other", "/", "echo"))
        .start()
        .unwrap_or_else(|e| panic!("{e}"));

    let allowed: [(&str, &[u8], &str); 3] = [
        ("/a/x", ADMIN, "consumer1"),
        // global_auth true: any consumer passes outside the rule.
        ("/b", GUEST, "consumer2"),
        ("/b", ADMIN, "consumer1"),
    ];
    for (path, auth, consumer) in allowed {
        let r = gw.get(path, &[("authorization", auth)]).unwrap();
        assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), gw.logs());
        let seen = upstream.last_request().unwrap();
        assert_eq!(seen.path, path);
        assert_eq!(seen.header_str("x-mse-consumer").as_deref(), Some(consumer));
    }

    let before = upstream.requests().len();
    let denied: [(&str, Headers<'_>, u16, &str); 5] = [
        ("/a/x", &[], 401, NO_DATA),
        ("/b", &[], 401, NO_DATA),
        ("/a/x", &[("authorization", b"Bearer x")], 401, NO_DATA),
        ("/a/x", &[("authorization", WRONG)], 401, BAD),
        ("/a/x", &[("authorization", GUEST)], 403, UNAUTHORIZED),
    ];
    for (path, headers, status, body) in denied {
        let r = gw.get(path, headers).unwrap();
        assert_eq!(r.status, status, "{path}: {}\n{}", r.text(), gw.logs());
        assert_eq!(r.text(), body);
        assert_eq!(
            r.header_str("www-authenticate").as_deref(),
            Some("Basic realm=MSE Gateway")
        );
    }
    assert_eq!(
        upstream.requests().len(),
        before,
        "denied requests stay at the gateway"
    );
}
