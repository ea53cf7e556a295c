//! Foreign functions whose names and formats are known, typed. Any other
//! is reachable as bytes in, bytes out through
//! [`HttpContext::call_foreign_function`](crate::HttpContext::call_foreign_function).
//!
//! | function | host | what it does |
//! |---|---|---|
//! | [`clear_route_cache`] | stock Envoy and Higress | re-selects the route after header changes |
//! | [`host_log_level`] | Higress (`get_log_level`) | the `wasm` logger's level, as Go's `wrapper.DefaultLog` reads it |
//! | [`inject_encoded_data_on_header`] | Higress (`inject_encoded_data_to_filter_chain_on_header`) | gives a response without a body one, from the response-headers hook |
//!
//! ```
//! use higress_wrapper::foreign;
//! use higress_wrapper::prelude::*;
//!
//! fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
//!     ctx.set_request_header(":path", "/v2/chat");
//!     if let Err(e) = foreign::clear_route_cache() {
//!         log::warn!("clear_route_cache: {e}");
//!     }
//!     HeaderAction::Continue
//! }
//! # let _ = on_request_headers;
//! ```

use crate::error::HostError;
use crate::host;

/// Envoy's `clear_route_cache`: the route is chosen again for the current
/// request (after the plugin changed what routing reads).
pub fn clear_route_cache() -> Result<(), HostError> {
    host::call_foreign("clear_route_cache", &[]).map(drop)
}

/// Higress's `get_log_level`: the host's log level (0 trace .. 5 critical,
/// 6 off), a 4-byte little-endian number. `Err(ParseFailure)` if the host
/// answers something else, `Err(NotFound)` on a host
/// without the function (stock Envoy).
pub fn host_log_level() -> Result<u32, HostError> {
    let bytes = host::call_foreign("get_log_level", &[])?;
    let raw: [u8; 4] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| HostError::ParseFailure)?;
    Ok(u32::from_le_bytes(raw))
}

/// Higress's `inject_encoded_data_to_filter_chain_on_header`: adds `body`
/// to a response that has none, from the response-headers hook. The hook
/// must hold the headers ([`HeaderAction::StopIteration`]) and `end_stream`
/// be true; the data is added after the hook returns (alibaba/higress
/// PR #3071).
///
/// [`HeaderAction::StopIteration`]: crate::HeaderAction::StopIteration
pub fn inject_encoded_data_on_header(body: &[u8], end_stream: bool) -> Result<(), HostError> {
    let arguments = inject_arguments(body, end_stream);
    host::call_foreign("inject_encoded_data_to_filter_chain_on_header", &arguments).map(drop)
}

/// The protobuf `InjectEncodedDataToFilterChainArguments { string body = 1;
/// bool endstream = 2; }`, encoded by hand (two fields).
fn inject_arguments(body: &[u8], end_stream: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    // Field 1, wire type 2 (length-delimited).
    out.push(0x0a);
    let mut len = body.len();
    while len >= 0x80 {
        // Low seven bits, continuation bit set; the cast keeps those bits.
        out.push(u8::try_from(len & 0x7f).unwrap_or(0) | 0x80);
        len >>= 7;
    }
    out.push(u8::try_from(len).unwrap_or(0));
    out.extend_from_slice(body);
    if end_stream {
        // Field 2, wire type 0 (varint): true. proto3 omits false.
        out.extend_from_slice(&[0x10, 0x01]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::inject_arguments;

    #[test]
    fn inject_arguments_are_protobuf() {
        assert_eq!(inject_arguments(b"hi", true), b"\x0a\x02hi\x10\x01");
        assert_eq!(inject_arguments(b"", false), b"\x0a\x00");
        let long = vec![b'x'; 300];
        let encoded = inject_arguments(&long, false);
        // 300 = 0b1_0010_1100: varint 0xac 0x02.
        assert_eq!(encoded.get(..3), Some(&b"\x0a\xac\x02"[..]));
        assert_eq!(encoded.len(), 3 + 300);
    }
}
