//! Benchmark fixture (the SDK side of a twin): a buffered request-body
//! check. The whole body is read once at end of stream; a body containing
//! `deny` is answered 403, anything else passes. `twin-body-raw` does the
//! same on raw proxy-wasm.

use higress_wrapper::prelude::*;

/// No settings.
#[derive(serde::Deserialize)]
struct Config {}

fn on_request_body(ctx: &mut HttpContext, _: &Config, body: &[u8]) -> DataAction {
    if body.windows(4).any(|w| w == b"deny") {
        ctx.send_local_response(403, &[], b"denied");
    }
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "twin-body",
    config: Config,
    // The body hook uses neither the request line nor the log prefix, so
    // the SDK need not copy the request headers for later phases (raw does
    // not either).
    capture_request_line: false,
    on_request_body: on_request_body,
}
