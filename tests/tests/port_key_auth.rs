//! `examples/key-auth` (the port of Higress's Go plugin) in a real Envoy
//! 1.40: the Go README's consumers, `global_auth: false` with an `allow`
//! list on one route; 401/403 with `WWW-Authenticate`, and the consumer's
//! name added for the upstream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_e2e::{wasm_module, ClusterSpec, EchoUpstream, Gateway, PluginSpec, RouteSpec};

/// Request headers, as the harness takes them.
type Headers<'a> = &'a [(&'a str, &'a [u8])];

const KEY1: &[u8] = b"2bda943c-ba2b-11ec-ba07-00163e1250b5";
const KEY2: &[u8] = b"c8c8e9ca-558e-4a2d-bb62-e700dcc40e35";

const CONFIG: &str = r#"{
    "global_auth": false,
    "consumers": [
        {"credential": "2bda943c-ba2b-11ec-ba07-00163e1250b5", "name": "consumer1"},
        {"credential": "c8c8e9ca-558e-4a2d-bb62-e700dcc40e35", "name": "consumer2"}
    ],
    "keys": ["apikey", "x-api-key"],
    "in_header": true,
    "_rules_": [{"_match_route_": ["route-a"], "allow": ["consumer1"]}]
}"#;

#[test]
fn allow_list_on_a_route_and_open_elsewhere() {
    let upstream = EchoUpstream::start().unwrap();
    let wasm = wasm_module("key-auth").unwrap_or_else(|e| panic!("{e}"));
    let gw = Gateway::builder()
        .name("port-key-auth")
        .plugin(PluginSpec::new("key-auth", wasm, CONFIG))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .route(RouteSpec::new("route-a", "/a", "echo"))
        .route(RouteSpec::new("open", "/", "echo"))
        .start()
        .unwrap_or_else(|e| panic!("{e}"));

    // Allowed: consumer1 on route-a; the upstream learns who called.
    let ok = gw.get("/a/test", &[("x-api-key", KEY1)]).unwrap();
    assert_eq!(ok.status, 200, "{}\n{}", ok.text(), gw.logs());
    let seen = upstream.last_request().unwrap();
    assert_eq!(seen.path, "/a/test");
    assert_eq!(
        seen.header_str("x-mse-consumer").as_deref(),
        Some("consumer1")
    );

    let before = upstream.requests().len();
    let cases: [(Headers<'_>, u16, &str); 4] = [
        (
            &[],
            401,
            "Request denied by Key Auth check. No Key Authentication information found.",
        ),
        (
            &[("x-api-key", KEY1), ("apikey", KEY2)],
            401,
            "Request denied by Key Auth check. Multi Key Authentication information found.",
        ),
        (
            &[("x-api-key", b"unknown")],
            403,
            "Request denied by Key Auth check. Unauthorized consumer.",
        ),
        // consumer2 is known but not in route-a's allow list.
        (
            &[("apikey", KEY2)],
            403,
            "Request denied by Key Auth check. Unauthorized consumer.",
        ),
    ];
    for (headers, status, body) in cases {
        let r = gw.get("/a/test", headers).unwrap();
        assert_eq!(r.status, status, "{}\n{}", r.text(), gw.logs());
        assert_eq!(r.text(), body);
        assert_eq!(
            r.header_str("www-authenticate").as_deref(),
            Some("Key realm=MSE Gateway")
        );
    }
    assert_eq!(
        upstream.requests().len(),
        before,
        "denied requests stay at the gateway"
    );

    // global_auth false: a route without rule needs no key.
    let open = gw.get("/open", &[]).unwrap();
    assert_eq!(open.status, 200, "{}", gw.logs());
    assert_eq!(
        upstream.last_request().unwrap().header("x-mse-consumer"),
        None
    );
}
