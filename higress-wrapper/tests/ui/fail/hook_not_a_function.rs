// A closure where set_ctx! takes a function name.
#[derive(serde::Deserialize)]
struct MyConfig {}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_request_headers: |_ctx, _config| higress_wrapper::HeaderAction::Continue,
}

fn main() {}
