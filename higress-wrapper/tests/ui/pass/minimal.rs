// The smallest plugin: a name, a serde config and one hook.
// Natively the SDK's host imports come from the test host.
extern crate higress_test_host;

use higress_wrapper::prelude::*;

#[derive(serde::Deserialize)]
struct MyConfig {
    some_field: String,
}

fn on_request_headers(ctx: &mut HttpContext, config: &MyConfig) -> HeaderAction {
    ctx.set_request_header("x-custom-header", &config.some_field);
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_request_headers: on_request_headers,
}

fn main() {
    assert_eq!(<Plugin as HttpPlugin>::NAME, "my-plugin");
    let hooks = <Plugin as HttpPlugin>::HOOKS;
    // Only the request-headers hook is there, so nothing runs after it.
    assert!(hooks.on_request_headers.is_some());
    assert!(!hooks.reads_request_body() && !hooks.reads_response_body());
    assert!(hooks.on_response_headers.is_none() && hooks.on_stream_done.is_none());
    assert!(hooks.request_headers_only());
    let json = serde_json::json!({ "some_field": "v" });
    let config = <Plugin as HttpPlugin>::parse_config(&json).unwrap();
    assert_eq!(config.some_field, "v");
}
