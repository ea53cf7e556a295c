//! my-plugin: logs every request and sets `x-custom-header` from config.
use higress_wrapper::logging::Truncated;
use higress_wrapper::prelude::*;
use serde::Deserialize;

/// `{"some_field": "<string>"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MyConfig {
    /// Value written to `x-custom-header`.
    pub some_field: String,
}

/// The most of `x-user-id` a log line shows: the header is client-controlled
/// (up to 60 KB at Envoy's default limits), the gateway log must not be.
const MAX_LOGGED: usize = 64;

fn on_request_headers(ctx: &mut HttpContext, config: &MyConfig) -> HeaderAction {
    log::info!("request received");
    match ctx.request_header("x-user-id") {
        Some(user) => log::info!("x-user-id: {}", Truncated::new(user.as_bytes(), MAX_LOGGED)),
        None => log::info!("x-user-id: (none)"),
    }
    ctx.set_request_header("x-custom-header", &config.some_field);
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    // Public so that tests (`tests/native.rs`) can start it in the test host.
    plugin: pub Plugin,
    config: MyConfig,
    on_request_headers: on_request_headers,
}
