//! Benchmark fixture (the SDK side of a twin): the fixed cost of a request.
//! The hook reads `:path` and, only for a path no benchmark sends, sets a
//! header; every other phase has no hook. `twin-fixed-raw` does the same on
//! raw proxy-wasm.

use higress_wrapper::prelude::*;

/// No settings.
#[derive(serde::Deserialize)]
struct Config {}

fn on_request_headers(ctx: &mut HttpContext, _: &Config) -> HeaderAction {
    if ctx.path() == "/never-sent" {
        ctx.set_request_header("x-seen", "1");
    }
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "twin-fixed",
    config: Config,
    on_request_headers: on_request_headers,
}
