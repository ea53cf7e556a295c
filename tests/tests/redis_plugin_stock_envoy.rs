//! `examples/redis-plugin` uses Higress-only host calls. Stock Envoy 1.40
//! must refuse to load it, with a message that names the missing import.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use higress_e2e::{wasm_module, ClusterSpec, EchoUpstream, Gateway, PluginSpec};
use std::time::Duration;

#[test]
fn stock_envoy_refuses_the_redis_plugin_naming_the_import() {
    let upstream = EchoUpstream::start().unwrap();
    let wasm = wasm_module("redis-plugin").unwrap();
    let config = r#"{"redis": {"service_name": "redis.static", "service_port": 6379}, "key": "k"}"#;
    let result = Gateway::builder()
        .name("redis-stock")
        .plugin(PluginSpec::new("redis_plugin", wasm, config))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .ready_timeout(Duration::from_secs(15))
        .start();
    let err = match result {
        Ok(_) => panic!("stock Envoy loaded a module that imports proxy_redis_*"),
        Err(e) => e,
    };
    let log = err.envoy_log().unwrap_or_default().to_owned();
    assert!(
        log.contains("Failed to load Wasm module due to a missing import: env.proxy_redis_"),
        "Envoy's log does not name the missing import:\n{log}"
    );
}
