//! Benchmark fixture (the SDK side of a twin): `twin-body-sdk` with Go's
//! body rule turned off, so its body hook runs on every body, as
//! `twin-body-raw`'s does. The whole body is read once at end of stream; a
//! body containing `deny` is answered 403, anything else passes, gzip,
//! gRPC and octet-stream bodies included.

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
    // The body hook uses neither the request line nor the log prefix.
    capture_request_line: false,
    // Run the body hook on every body, as the raw twin does (the SDK then
    // reads no request header to decide).
    skip_binary_bodies: false,
    on_request_body: on_request_body,
}
