// A config type without `serde::Deserialize` and no `parse_config`.
use higress_wrapper::prelude::*;

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

fn main() {}
