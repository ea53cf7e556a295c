// A buffered body hook without the `body: &[u8]` argument.
use higress_wrapper::prelude::*;

#[derive(serde::Deserialize)]
struct MyConfig {
    some_field: String,
}

fn on_request_body(_ctx: &mut HttpContext, _config: &MyConfig) -> DataAction {
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_request_body: on_request_body,
}

fn main() {}
