//! Benchmark fixture (the SDK side of a twin): a buffered request-body
//! check. The whole body is read once at end of stream; a body containing
//! `deny` is answered 403, anything else passes. `twin-body-raw-go-rule`
//! does the same on raw proxy-wasm, with the same websocket/binary rule.

mod hook;
use hook::{on_request_body, Config};

higress_wrapper::set_ctx! {
    name: "twin-body",
    config: Config,
    // The body hook uses neither the request line nor the log prefix, so
    // the SDK need not copy the request headers for later phases (raw does
    // not either).
    capture_request_line: false,
    on_request_body: on_request_body,
}
