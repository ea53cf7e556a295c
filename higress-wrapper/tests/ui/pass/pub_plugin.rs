// `plugin: pub Name` exports the plugin type (e.g. for integration tests in
// `tests/`); its config and state types must then be public too. Without
// `pub`, the type is private to the module that calls set_ctx!, so private
// config types work there.
mod exported {
    use higress_wrapper::prelude::*;

    #[derive(Debug, serde::Deserialize)]
    pub struct PublicConfig {
        pub header: String,
    }

    fn on_response_headers(ctx: &mut HttpContext, config: &PublicConfig) -> HeaderAction {
        ctx.set_response_header(&config.header, "1");
        HeaderAction::Continue
    }

    higress_wrapper::set_ctx! {
        name: "exported",
        config: PublicConfig,
        plugin: pub Exported,
        on_response_headers: on_response_headers,
    }
}

mod private {
    use higress_wrapper::prelude::*;

    #[derive(serde::Deserialize)]
    struct PrivateConfig {}

    fn on_stream_done(_ctx: &mut HttpContext, _config: &PrivateConfig) {}

    higress_wrapper::set_ctx! {
        name: "private",
        config: PrivateConfig,
        on_stream_done: on_stream_done,
    }

    pub fn name() -> &'static str {
        <Plugin as HttpPlugin>::NAME
    }
}

// Natively the SDK's host imports come from the test host.
extern crate higress_test_host;

use higress_wrapper::HttpPlugin;

fn main() {
    assert_eq!(<exported::Exported as HttpPlugin>::NAME, "exported");
    let config = exported::Exported::parse_config(&serde_json::json!({ "header": "x-a" })).unwrap();
    assert_eq!(config.header, "x-a");
    assert_eq!(private::name(), "private");
}
