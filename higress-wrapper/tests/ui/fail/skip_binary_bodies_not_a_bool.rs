// `skip_binary_bodies` given a string instead of `true` / `false`.
use higress_wrapper::prelude::*;

#[derive(serde::Deserialize)]
struct MyConfig {}

fn on_request_body(_ctx: &mut HttpContext, _: &MyConfig, _body: &[u8]) -> DataAction {
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    skip_binary_bodies: "no",
    on_request_body: on_request_body,
}

fn main() {}
