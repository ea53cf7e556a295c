//! `examples/ai-token-ratelimit` keeps its token budgets in Redis through
//! Higress-only host calls (`proxy_redis_*`), which stock Envoy 1.40 does
//! not have: it must refuse the module, naming the missing import, rather
//! than run it without limits. The plugin's behaviour against a real
//! `redis-server` is tested in the native test host
//! (`examples/ai-token-ratelimit/tests`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use higress_e2e::{wasm_module, ClusterSpec, EchoUpstream, Gateway, PluginSpec};
use std::time::Duration;

#[test]
fn stock_envoy_refuses_it_naming_the_redis_import() {
    let upstream = EchoUpstream::start().unwrap();
    let wasm = wasm_module("ai-token-ratelimit").unwrap_or_else(|e| panic!("{e}"));
    let config = r#"{
        "rule_name": "default_limit_by_param_apikey",
        "rule_items": [{"limit_by_param": "apikey", "limit_keys": [{"key": "123456", "token_per_minute": 200}]}],
        "redis": {"service_name": "redis.static"}
    }"#;
    let result = Gateway::builder()
        .name("port-ai-token-ratelimit")
        .plugin(PluginSpec::new("ai-token-ratelimit", wasm, config))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .ready_timeout(Duration::from_secs(15))
        .start();
    let Err(err) = result else {
        panic!("stock Envoy loaded a module that imports proxy_redis_*");
    };
    let log = err.envoy_log().unwrap_or_default().to_owned();
    assert!(
        log.contains("Failed to load Wasm module due to a missing import: env.proxy_redis_"),
        "Envoy's log does not name the missing import:\n{log}"
    );
}
