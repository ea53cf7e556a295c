// The same hook given twice.
use higress_wrapper::prelude::*;

#[derive(serde::Deserialize)]
struct MyConfig {
    some_field: String,
}

fn first(_ctx: &mut HttpContext, _config: &MyConfig) -> HeaderAction {
    HeaderAction::Continue
}

fn second(_ctx: &mut HttpContext, _config: &MyConfig) -> HeaderAction {
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_request_headers: first,
    on_request_headers: second,
}

fn main() {}
