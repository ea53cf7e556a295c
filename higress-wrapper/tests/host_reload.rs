//! A reload (Envoy reconfiguring the plugin on a config update) while
//! requests are in flight: state lives per root and per request, so a
//! request keeps the config it matched, and a refused config changes
//! nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::TestHost;
use higress_wrapper::prelude::*;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    version: String,
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    ctx.set_request_header("x-version", &config.version);
    HeaderAction::Continue
}

fn on_response_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    ctx.set_response_header("x-version", &config.version);
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "reload",
    config: Config,
    on_request_headers: on_request_headers,
    on_response_headers: on_response_headers,
}

#[test]
fn requests_in_flight_keep_their_config_across_a_reload() {
    let host = TestHost::start::<Plugin>(r#"{"version": "v1"}"#).unwrap();

    // A request that matched v1 and is still waiting for its response.
    let mut old = host.http_stream();
    old.send_request_headers(&[(":path", "/old")], true)
        .unwrap();
    assert_eq!(old.upstream_request_header("x-version").unwrap(), "v1");

    host.reconfigure(r#"{"version": "v2"}"#).unwrap();

    // New requests see v2 ...
    let mut new = host.http_stream();
    new.send_request_headers(&[(":path", "/new")], true)
        .unwrap();
    assert_eq!(new.upstream_request_header("x-version").unwrap(), "v2");
    new.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    assert_eq!(new.client_response_header("x-version").unwrap(), "v2");

    // ... while the request in flight finishes with the config it matched.
    old.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    assert_eq!(old.client_response_header("x-version").unwrap(), "v1");
    old.done().unwrap();
    new.done().unwrap();
    host.assert_idle();
}

#[test]
fn a_refused_reload_keeps_the_old_config() {
    let host = TestHost::start::<Plugin>(r#"{"version": "v1"}"#).unwrap();
    let logs = host.reconfigure(r#"{"version": 2}"#).unwrap_err();
    assert!(
        logs.iter()
            .any(|l| l.message.contains("invalid plugin config") && l.message.contains("version")),
        "{logs:#?}"
    );
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert_eq!(s.upstream_request_header("x-version").unwrap(), "v1");
}
