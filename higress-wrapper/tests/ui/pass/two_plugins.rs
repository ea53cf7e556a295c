// Two plugins in one crate (e.g. a test crate): the second names its type
// with `plugin: Other`, and each may have its own config and state.
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

#[derive(serde::Deserialize)]
struct OtherConfig {
    #[serde(default)]
    deny: bool,
}

#[derive(Default)]
struct Seen(u32);

fn other_headers(ctx: &mut HttpContext<Seen>, config: &OtherConfig) -> HeaderAction {
    ctx.state_mut().0 += 1;
    if config.deny {
        ctx.send_local_response(403, &[], "denied");
    }
    HeaderAction::Continue
}

fn other_body(_ctx: &mut HttpContext<Seen>, _config: &OtherConfig, _body: &[u8]) -> DataAction {
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "other-plugin",
    config: OtherConfig,
    state: Seen,
    plugin: Other,
    on_request_headers: other_headers,
    on_response_body: other_body,
}

fn main() {
    assert_eq!(<Plugin as HttpPlugin>::NAME, "my-plugin");
    assert_eq!(<Other as HttpPlugin>::NAME, "other-plugin");
    assert!(<Other as HttpPlugin>::HOOKS.on_response_body.is_some());
    assert!(!<Other as HttpPlugin>::HOOKS.on_request_body.is_some());
    let config = <Other as HttpPlugin>::parse_config(&serde_json::json!({})).unwrap();
    assert!(!config.deny);
}
