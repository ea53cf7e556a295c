// The smallest plugin: a name, a serde config and one hook.
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
    assert_eq!(
        <Plugin as HttpPlugin>::HOOKS,
        higress_wrapper::Hooks {
            request_headers_only: true,
            ..higress_wrapper::Hooks::NONE
        }
    );
    let json = serde_json::json!({ "some_field": "v" });
    let config = <Plugin as HttpPlugin>::parse_config(&json).unwrap();
    assert_eq!(config.some_field, "v");
}
