// A headers hook returning the body hooks' `DataAction`.
use higress_wrapper::prelude::*;

#[derive(serde::Deserialize)]
struct MyConfig {
    some_field: String,
}

fn on_request_headers(_ctx: &mut HttpContext, _config: &MyConfig) -> DataAction {
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_request_headers: on_request_headers,
}

fn main() {}
