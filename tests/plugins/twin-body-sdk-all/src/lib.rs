//! Benchmark fixture (the SDK side of a twin): `twin-body-sdk` with Go's
//! body rule turned off, so its body hook runs on every body, as
//! `twin-body-raw`'s does. The whole body is read once at end of stream; a
//! body containing `deny` is answered 403, anything else passes, gzip,
//! gRPC and octet-stream bodies included.

#[path = "../../twin-body-sdk/src/hook.rs"]
mod hook;
use hook::{on_request_body, Config};

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
