//! Loading as Envoy / Higress do: the first known `proxy_abi_version_*`
//! export decides the ABI; a missing import fails the load with the host's
//! message; and the two header semantics, on the e2e probe plugin (whose
//! `x-probe-req-body: echo-len` holds the request headers, reads the whole
//! body, then sets `x-probe-body-len`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{AbiVersion, Action, LoadError, Properties, StartStage, TestHost};

const PROBE_CONFIG: &str = r#"{"tag": "t"}"#;

#[test]
fn the_first_known_abi_export_wins() {
    // Raw proxy-wasm exports 0.2.1 only.
    let raw = common::module("e2e-probe-raw");
    assert_eq!(raw.abi(Properties::Higress), Ok(AbiVersion::V0_2_1));
    assert_eq!(raw.abi(Properties::Envoy), Ok(AbiVersion::V0_2_1));

    // An SDK module after the build tool: 0.2.100 first.
    let both = common::module("my-plugin");
    let exports = both.exports();
    let i100 = exports
        .iter()
        .position(|e| e == "proxy_abi_version_0_2_100");
    let i1 = exports.iter().position(|e| e == "proxy_abi_version_0_2_1");
    assert!(i100 < i1, "{exports:?}");
    assert_eq!(both.abi(Properties::Higress), Ok(AbiVersion::V0_2_100));
    // Stock Envoy skips the name it does not know.
    assert_eq!(both.abi(Properties::Envoy), Ok(AbiVersion::V0_2_1));

    // The same exports in the other order: Higress takes the first, 0.2.1.
    let wrong = common::with_abi_1_first("my-plugin");
    assert_eq!(wrong.abi(Properties::Higress), Ok(AbiVersion::V0_2_1));

    let only = common::with_only_abi_100("my-plugin");
    assert_eq!(only.abi(Properties::Higress), Ok(AbiVersion::V0_2_100));
    assert_eq!(only.abi(Properties::Envoy), Err(LoadError::UnknownAbi));
    let failure = TestHost::builder()
        .properties(Properties::Envoy)
        .start(&only, r#"{"some_field": "v"}"#)
        .unwrap_err();
    assert_eq!(failure.stage, StartStage::Load);
    assert_eq!(
        failure.logs[0].message,
        "Missing or unknown Proxy-Wasm ABI version"
    );
    // Both hosts run the module with both exports.
    for mode in [Properties::Envoy, Properties::Higress] {
        let host = TestHost::builder()
            .properties(mode)
            .start(&both, r#"{"some_field": "v"}"#)
            .unwrap();
        let mut s = host.http_stream();
        s.send_request_headers(&[(":path", "/")], true).unwrap();
        assert_eq!(s.upstream_request_header("x-custom-header").unwrap(), "v");
    }
}

#[test]
fn a_higress_import_fails_to_load_on_stock_envoy() {
    let redis = common::module("redis-plugin");
    assert!(redis.imports().contains(&"env.proxy_redis_init".to_owned()));
    let config = r#"{"redis": {"service_name": "r.static", "service_port": 6379}, "key": "k"}"#;
    let failure = TestHost::builder()
        .properties(Properties::Envoy)
        .start(&redis, config)
        .unwrap_err();
    assert_eq!(failure.stage, StartStage::Load);
    let missing = failure.logs_containing("missing import");
    assert_eq!(missing.len(), 1, "{failure}");
    assert!(
        missing[0]
            .message
            .starts_with("Failed to load Wasm module due to a missing import: env.proxy_redis_"),
        "{failure}"
    );
    // Higress offers it.
    TestHost::start(&redis, config).unwrap();
}

fn echo_len(host: &TestHost) -> (Action, Action, Option<String>, u32) {
    let mut s = host.http_stream();
    let headers = s
        .send_request_headers(
            &[
                (":method", "POST"),
                (":path", "/"),
                ("x-probe-req-body", "echo-len"),
            ],
            false,
        )
        .unwrap();
    let body = s.send_request_body("0123456789", true).unwrap();
    let len = s
        .upstream_request_header("x-probe-body-len")
        .map(|v| v.to_string());
    (headers, body, len, s.request_body_callbacks())
}

#[test]
fn abi_0_2_1_turns_a_header_pause_into_stop_all() {
    let host = TestHost::builder()
        .properties(Properties::Envoy)
        .start(&common::module("e2e-probe"), PROBE_CONFIG)
        .unwrap();
    assert_eq!(host.abi(), AbiVersion::V0_2_1);
    let (headers, body, len, calls) = echo_len(&host);
    assert_eq!(headers, Action::Pause);
    // Stop all: the body never reaches the plugin, the request hangs.
    assert_eq!(body, Action::Held);
    assert_eq!((len, calls), (None, 0));
}

#[test]
fn allow_on_headers_stop_iteration_lets_the_body_through() {
    let host = TestHost::builder()
        .properties(Properties::Envoy)
        .allow_on_headers_stop_iteration(true)
        .start(&common::module("e2e-probe"), PROBE_CONFIG)
        .unwrap();
    let (headers, body, len, calls) = echo_len(&host);
    assert_eq!(headers, Action::Pause);
    assert_eq!(body, Action::Continue);
    assert_eq!(len.as_deref(), Some("10"));
    assert_eq!(calls, 1);
}

#[test]
fn abi_0_2_100_passes_stop_iteration_through() {
    let module = common::module("e2e-probe");
    let host = TestHost::start(&module, PROBE_CONFIG).unwrap();
    assert_eq!(host.abi(), AbiVersion::V0_2_100);
    let (headers, body, len, calls) = echo_len(&host);
    assert_eq!(headers, Action::Pause);
    assert_eq!(body, Action::Continue);
    assert_eq!(len.as_deref(), Some("10"));
    assert_eq!(calls, 1);
    // The same module on stock Envoy: 0.2.1 semantics again.
    let host = TestHost::builder()
        .properties(Properties::Envoy)
        .start(&module, PROBE_CONFIG)
        .unwrap();
    assert_eq!(host.abi(), AbiVersion::V0_2_1);
    assert_eq!(echo_len(&host).1, Action::Held);
}
