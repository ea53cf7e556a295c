// A headers hook taking the context by shared reference and the config by value.
use higress_wrapper::prelude::*;

#[derive(serde::Deserialize)]
struct MyConfig {
    some_field: String,
}

fn on_request_headers(_ctx: &HttpContext, _config: MyConfig) -> HeaderAction {
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_request_headers: on_request_headers,
}

fn main() {}
