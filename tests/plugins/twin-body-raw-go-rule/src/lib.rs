//! Benchmark fixture (a raw side of the body twin): `twin-body-raw` plus
//! the check the SDK (like Go's wrapper) makes before it runs body hooks,
//! so that it does the same observable work as `twin-body-sdk`. When the
//! request has a body, request headers read `connection` (and `upgrade`
//! only if `connection` names an upgrade), `content-type` and
//! `content-encoding`, one `get_header_map_value` each; a websocket
//! upgrade, an `octet-stream` or `grpc` content type or any content
//! encoding leaves the body untouched.
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

struct Root;

/// One request: whether its body hook runs.
struct Request {
    skip_body: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request { skip_body: false }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl Context for Request {}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

impl Request {
    fn websocket(&self) -> bool {
        let has = |name: &str, want: &[u8]| {
            self.get_http_request_header_bytes(name)
                .is_some_and(|v| contains_ignore_case(&v, want))
        };
        has("connection", b"upgrade") && has("upgrade", b"websocket")
    }

    fn binary(&self) -> bool {
        let binary_type = self
            .get_http_request_header_bytes("content-type")
            .is_some_and(|t| contains(&t, b"octet-stream") || contains(&t, b"grpc"));
        let encoded = self
            .get_http_request_header_bytes("content-encoding")
            .is_some_and(|e| !e.is_empty());
        binary_type || encoded
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            self.skip_body = self.websocket() || self.binary();
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.skip_body {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        if body.windows(4).any(|w| w == b"deny") {
            self.send_http_response(403, vec![], Some(b"denied"));
            return Action::Pause;
        }
        Action::Continue
    }
}

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}
