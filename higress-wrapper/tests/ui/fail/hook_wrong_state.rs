// A hook written for `HttpContext` (state `()`) while the plugin declares a state type.
use higress_wrapper::prelude::*;

#[derive(serde::Deserialize)]
struct MyConfig {
    some_field: String,
}

#[derive(Default)]
struct MyState {
    seen: bool,
}

fn on_request_headers(_ctx: &mut HttpContext, _config: &MyConfig) -> HeaderAction {
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    state: MyState,
    on_request_headers: on_request_headers,
}

fn main() {}
