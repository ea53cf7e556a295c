//! `e2e-probe`: the plugin the Envoy end-to-end tests drive.
//!
//! One module covers many cases: what it does to a request is chosen by
//! `x-probe-*` request headers, so a test states its case in the request it
//! sends. It is written with the SDK the way a plugin author would, so it
//! also shows the SDK's hooks side by side.
//!
//! Config: `{"tag": "<text>", "buffer_limit": <bytes, optional>}`, `_rules_`
//! allowed. Every request the config matches gets request header
//! `x-probe-tag: <tag>` (seen by the upstream) and response header
//! `x-probe-tag: <tag>` (seen by the client), so a test can tell which rule
//! matched.
//!
//! | request header | what the probe does |
//! |---|---|
//! | `x-probe-set-req: name=value` | sets request header `name` (request headers hook) |
//! | `x-probe-set-resp: name=value` | sets response header `name` (response headers hook) |
//! | `x-probe-copy: <header>` | copies that request header's raw bytes to `x-probe-copied` (request) and logs it lossily |
//! | `x-probe-props: 1` | sets `x-probe-route` and `x-probe-cluster` from the route and cluster name |
//! | `x-probe-reply: <status>` | answers locally from the request headers hook: that status, header `x-probe-reply: headers`, body `probe reply <status>` |
//! | `x-probe-reply: <status>@body` | the same from the buffered request body hook (headers held until then), header `x-probe-reply: body` |
//! | `x-probe-req-body: upper` | buffered request body hook: replaces the body with its upper case |
//! | `x-probe-req-body: append:<text>` | buffered request body hook: appends `<text>` (the headers hook drops `content-length`, unless `x-probe-keep-length` is present) |
//! | `x-probe-req-body: echo-len` | holds the request headers, reads the whole body, then sets request header `x-probe-body-len` |
//! | `x-probe-stream-req: upper` | streaming request body hook: upper-cases each chunk |
//! | `x-probe-stream-req: count` | streaming request body hook: only counts chunks and bytes |
//! | `x-probe-resp-body: upper`, `append:<text>`, `echo-len` | as `x-probe-req-body`, on the response |
//! | `x-probe-stream-resp: upper`, `count` | as `x-probe-stream-req`, on the response |
//! | `x-probe-limit: <bytes>` | asks for that request body buffer limit (`set_request_body_buffer_limit`) |
//! | `x-probe-panic: headers`, `body`, `response` | panics in that hook (for the failure-policy tests) |
//!
//! Every hook logs one line starting with `probe ` (`probe request headers`,
//! `probe request body`, `probe request chunk`, `probe response headers`,
//! `probe response body`, `probe response chunk`, `probe stream done`).
use higress_wrapper::prelude::*;
use serde::Deserialize;

/// The probe's configuration (global, or one `_rules_` entry).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Written to `x-probe-tag` on the request and on the response.
    pub tag: String,
    /// Request body buffer limit to ask for on every request (an
    /// `x-probe-limit` header overrides it).
    #[serde(default)]
    pub buffer_limit: Option<u32>,
}

/// What a buffered body hook does with the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEdit {
    /// Replace the body with its ASCII upper case.
    Upper,
    /// Append this text.
    Append(String),
    /// Leave the body alone; set `x-probe-body-len` to its length once read.
    EchoLen,
}

impl BodyEdit {
    fn parse(value: &str) -> Option<BodyEdit> {
        match value {
            "upper" => Some(BodyEdit::Upper),
            "echo-len" => Some(BodyEdit::EchoLen),
            other => other
                .strip_prefix("append:")
                .map(|text| BodyEdit::Append(text.to_owned())),
        }
    }
}

/// What a streaming body hook does with each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEdit {
    /// Upper-case each chunk.
    Upper,
    /// Only count.
    Count,
}

impl StreamEdit {
    fn parse(value: &str) -> Option<StreamEdit> {
        match value {
            "upper" => Some(StreamEdit::Upper),
            "count" => Some(StreamEdit::Count),
            _ => None,
        }
    }
}

/// Where `x-probe-panic` asks for a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicAt {
    /// In the request headers hook.
    Headers,
    /// In the request body hook (buffered or streaming).
    Body,
    /// In the response headers hook.
    Response,
}

/// Per-request state: the case parsed from the request headers, and
/// counters of streamed chunks.
#[derive(Debug, Default)]
pub struct ProbeState {
    req_body: Option<BodyEdit>,
    stream_req: Option<StreamEdit>,
    resp_body: Option<BodyEdit>,
    stream_resp: Option<StreamEdit>,
    set_resp: Option<(String, String)>,
    reply_in_body: Option<u32>,
    panic_at: Option<PanicAt>,
    req_streamed: (usize, usize),
    resp_streamed: (usize, usize),
    /// `x-probe-late-line`: read the request line only in response headers.
    late_line: bool,
}

/// A request header as text (lossy: header values need not be UTF-8).
fn header(ctx: &HttpContext<ProbeState>, name: &str) -> Option<String> {
    ctx.request_header(name)
        .map(|v| v.to_str_lossy().trim().to_owned())
}

fn name_value(spec: &str) -> Option<(String, String)> {
    spec.split_once('=')
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
}

/// Panics on purpose: the failure-policy tests need a hook that traps.
#[allow(clippy::panic)]
fn panic_now(phase: &str) -> ! {
    panic!("probe panic requested in {phase}")
}

fn reply(ctx: &mut HttpContext<ProbeState>, status: u32, phase: &str) {
    log::info!("probe replying {status} from the {phase} hook");
    let body = format!("probe reply {status}\n");
    ctx.send_local_response(status, &[("x-probe-reply", phase.as_bytes())], body);
}

fn on_request_headers(ctx: &mut HttpContext<ProbeState>, config: &ProbeConfig) -> HeaderAction {
    let late_line = ctx.request_header("x-probe-late-line").is_some();
    if late_line {
        // Leave the request line unread: the response hook reads it after
        // Envoy has dropped the request headers.
        log::info!("probe request headers: request line read later");
    } else {
        log::info!("probe request headers: {} {}", ctx.method(), ctx.path());
    }
    ctx.set_request_header("x-probe-tag", &config.tag);

    // Read the whole case first.
    let state = ProbeState {
        req_body: header(ctx, "x-probe-req-body").and_then(|v| BodyEdit::parse(&v)),
        stream_req: header(ctx, "x-probe-stream-req").and_then(|v| StreamEdit::parse(&v)),
        resp_body: header(ctx, "x-probe-resp-body").and_then(|v| BodyEdit::parse(&v)),
        stream_resp: header(ctx, "x-probe-stream-resp").and_then(|v| StreamEdit::parse(&v)),
        set_resp: header(ctx, "x-probe-set-resp").and_then(|v| name_value(&v)),
        panic_at: match header(ctx, "x-probe-panic").as_deref() {
            Some("headers") => Some(PanicAt::Headers),
            Some("body") => Some(PanicAt::Body),
            Some("response") => Some(PanicAt::Response),
            _ => None,
        },
        late_line,
        ..ProbeState::default()
    };
    *ctx.state_mut() = state;
    if ctx.state().panic_at == Some(PanicAt::Headers) {
        panic_now("request headers");
    }

    let limit = header(ctx, "x-probe-limit")
        .and_then(|v| v.parse::<u32>().ok())
        .or(config.buffer_limit);
    if let Some(limit) = limit {
        log::info!("probe asks for a request body buffer limit of {limit} bytes");
        ctx.set_request_body_buffer_limit(limit);
    }
    if let Some((name, value)) = header(ctx, "x-probe-set-req").and_then(|v| name_value(&v)) {
        ctx.set_request_header(&name, value);
    }
    if let Some(source) = header(ctx, "x-probe-copy") {
        if let Some(value) = ctx.request_header(&source) {
            log::info!("probe copies {source}: {value}");
            ctx.set_request_header("x-probe-copied", value.as_bytes());
        }
    }
    if header(ctx, "x-probe-props").is_some() {
        let route = ctx.route_name().unwrap_or_default();
        let cluster = ctx.cluster_name().unwrap_or_default();
        ctx.set_request_header("x-probe-route", route);
        ctx.set_request_header("x-probe-cluster", cluster);
    }

    if let Some(spec) = header(ctx, "x-probe-reply") {
        match spec.split_once('@') {
            Some((status, "body")) => {
                ctx.state_mut().reply_in_body = status.parse().ok();
                // The reply needs the buffered body hook.
                if ctx.state().req_body.is_none() {
                    ctx.state_mut().req_body = Some(BodyEdit::EchoLen);
                }
            }
            _ => {
                if let Ok(status) = spec.parse() {
                    reply(ctx, status, "headers");
                    // The SDK holds the stream after a local response,
                    // whatever this returns.
                    return HeaderAction::Continue;
                }
            }
        }
    }

    let wants_body = ctx.state().req_body.is_some()
        || ctx.state().stream_req.is_some()
        || ctx.state().panic_at == Some(PanicAt::Body);
    if !wants_body {
        // Nothing to do with the body: let it pass without calling a hook.
        ctx.dont_read_request_body();
        return HeaderAction::Continue;
    }
    if ctx.state().req_body.is_some() {
        // Prefer the buffered hook over the streaming one for this request.
        ctx.buffer_request_body();
    }
    if matches!(ctx.state().req_body, Some(BodyEdit::Append(_)))
        && header(ctx, "x-probe-keep-length").is_none()
    {
        // The body will change length, and these headers may leave before
        // the body hook runs: drop content-length (Envoy then sends the body
        // chunked). Keeping it would cut the new body at the old length.
        ctx.remove_request_header("content-length");
    }
    let hold_headers =
        ctx.state().req_body == Some(BodyEdit::EchoLen) || ctx.state().reply_in_body.is_some();
    if hold_headers {
        // A header set after reading the body must not leave before it: hold
        // the headers. On stock Envoy this needs
        // `allow_on_headers_stop_iteration: true` (see `HeaderAction`).
        HeaderAction::StopIteration
    } else {
        HeaderAction::Continue
    }
}

fn edit_body(edit: &BodyEdit, body: &[u8]) -> Option<Vec<u8>> {
    match edit {
        BodyEdit::Upper => Some(body.to_ascii_uppercase()),
        BodyEdit::Append(text) => {
            let mut out = body.to_vec();
            out.extend_from_slice(text.as_bytes());
            Some(out)
        }
        BodyEdit::EchoLen => None,
    }
}

fn on_request_body(
    ctx: &mut HttpContext<ProbeState>,
    _config: &ProbeConfig,
    body: &[u8],
) -> DataAction {
    log::info!("probe request body: {} bytes", body.len());
    if ctx.state().panic_at == Some(PanicAt::Body) {
        panic_now("request body");
    }
    if let Some(edit) = ctx.state().req_body.clone() {
        if let Some(new_body) = edit_body(&edit, body) {
            ctx.replace_request_body(new_body);
        }
        if edit == BodyEdit::EchoLen {
            ctx.set_request_header("x-probe-body-len", body.len().to_string());
        }
    }
    if let Some(status) = ctx.state().reply_in_body {
        reply(ctx, status, "body");
    }
    DataAction::Continue
}

fn on_streaming_request_body(
    ctx: &mut HttpContext<ProbeState>,
    _config: &ProbeConfig,
    chunk: &[u8],
    end_of_stream: bool,
) -> Option<Vec<u8>> {
    if ctx.state().panic_at == Some(PanicAt::Body) {
        panic_now("request body");
    }
    let state = ctx.state_mut();
    state.req_streamed.0 += 1;
    state.req_streamed.1 += chunk.len();
    let (chunks, bytes) = state.req_streamed;
    log::info!(
        "probe request chunk {chunks}: {} bytes, end_of_stream={end_of_stream}",
        chunk.len()
    );
    if end_of_stream {
        log::info!("probe request body streamed: {bytes} bytes in {chunks} chunks");
    }
    match state.stream_req {
        Some(StreamEdit::Upper) => Some(chunk.to_ascii_uppercase()),
        _ => None,
    }
}

fn on_response_headers(ctx: &mut HttpContext<ProbeState>, config: &ProbeConfig) -> HeaderAction {
    let status = ctx
        .response_header(":status")
        .map(|v| v.to_str_lossy().into_owned())
        .unwrap_or_default();
    log::info!("probe response headers: status {status}");
    if ctx.state().late_line {
        log::info!(
            "probe late request line: {} {} {} {} id={}",
            ctx.scheme(),
            ctx.host(),
            ctx.method(),
            ctx.path(),
            ctx.request_id().unwrap_or_default()
        );
    }
    if ctx.state().panic_at == Some(PanicAt::Response) {
        panic_now("response headers");
    }
    ctx.set_response_header("x-probe-tag", &config.tag);
    if let Some((name, value)) = ctx.state().set_resp.clone() {
        ctx.set_response_header(&name, value);
    }
    let buffered = ctx.state().resp_body.clone();
    if buffered.is_none() && ctx.state().stream_resp.is_none() {
        ctx.dont_read_response_body();
        return HeaderAction::Continue;
    }
    if buffered.is_some() {
        ctx.buffer_response_body();
    }
    if matches!(buffered, Some(BodyEdit::Append(_))) {
        // As on the request side: the length changes, so drop content-length.
        ctx.remove_response_header("content-length");
    }
    // Body hooks never run for binary or encoded bodies (the SDK skips
    // them), so holding the headers for one would hold them for good.
    if buffered == Some(BodyEdit::EchoLen) && !ctx.is_binary_response_body() {
        // Hold the response headers until the body was read (see the
        // request side).
        HeaderAction::StopIteration
    } else {
        HeaderAction::Continue
    }
}

fn on_response_body(
    ctx: &mut HttpContext<ProbeState>,
    _config: &ProbeConfig,
    body: &[u8],
) -> DataAction {
    log::info!("probe response body: {} bytes", body.len());
    if let Some(edit) = ctx.state().resp_body.clone() {
        if let Some(new_body) = edit_body(&edit, body) {
            ctx.replace_response_body(new_body);
        }
        if edit == BodyEdit::EchoLen {
            ctx.set_response_header("x-probe-body-len", body.len().to_string());
        }
    }
    DataAction::Continue
}

fn on_streaming_response_body(
    ctx: &mut HttpContext<ProbeState>,
    _config: &ProbeConfig,
    chunk: &[u8],
    end_of_stream: bool,
) -> Option<Vec<u8>> {
    let state = ctx.state_mut();
    state.resp_streamed.0 += 1;
    state.resp_streamed.1 += chunk.len();
    let (chunks, bytes) = state.resp_streamed;
    log::info!(
        "probe response chunk {chunks}: {} bytes, end_of_stream={end_of_stream}",
        chunk.len()
    );
    if end_of_stream {
        log::info!("probe response body streamed: {bytes} bytes in {chunks} chunks");
    }
    match state.stream_resp {
        Some(StreamEdit::Upper) => Some(chunk.to_ascii_uppercase()),
        _ => None,
    }
}

fn on_stream_done(ctx: &mut HttpContext<ProbeState>, config: &ProbeConfig) {
    log::info!(
        "probe stream done: {} {} (tag {})",
        ctx.method(),
        ctx.path(),
        config.tag
    );
}

higress_wrapper::set_ctx! {
    name: "e2e-probe",
    config: ProbeConfig,
    state: ProbeState,
    on_request_headers: on_request_headers,
    on_request_body: on_request_body,
    on_streaming_request_body: on_streaming_request_body,
    on_response_headers: on_response_headers,
    on_response_body: on_response_body,
    on_streaming_response_body: on_streaming_response_body,
    on_stream_done: on_stream_done,
}
