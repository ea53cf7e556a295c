// Hook functions may be named like anything, including the names the
// generated code uses for its own parameters.
// Natively the SDK's host imports come from the test host.
extern crate higress_test_host;

use higress_wrapper::prelude::*;
use std::time::Duration;

#[derive(serde::Deserialize)]
struct Config {}

fn ctx(_: &mut HttpContext, _: &Config) -> HeaderAction {
    HeaderAction::Continue
}
fn body(_: &mut HttpContext, _: &Config, _: &[u8]) -> DataAction {
    DataAction::Continue
}
fn chunk(_: &mut HttpContext, _: &Config, _: &[u8], _: bool) -> Option<Vec<u8>> {
    None
}
fn config(_: &mut HttpContext, _: &Config) {}
fn json(_: &JsonValue) -> Result<Config, ConfigError> {
    Ok(Config {})
}
fn rule(_: &JsonValue, _: Option<&Config>) -> Result<Config, ConfigError> {
    Ok(Config {})
}
fn period(_: &mut PluginContext<'_, Config>) {}
fn f(_: &mut PluginContext<'_, Config>) -> Result<(), StartError> {
    Ok(())
}

higress_wrapper::set_ctx! {
    name: "names",
    config: Config,
    parse_config: json,
    parse_rule_config: rule,
    on_plugin_start: f,
    on_tick: [(Duration::from_secs(1), period)],
    on_request_headers: ctx,
    on_request_body: body,
    on_streaming_response_body: chunk,
    on_stream_done: config,
}

fn main() {
    assert!(<Plugin as HttpPlugin>::HOOKS.on_request_body.is_some());
    assert!(<Plugin as HttpPlugin>::HOOKS.on_streaming_response_body.is_some());
    assert!(<Plugin as HttpPlugin>::parse_config(&serde_json::json!({})).is_ok());
}
