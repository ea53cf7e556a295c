//! `e2e-hostcalls`: the plugin the Envoy end-to-end tests of metrics,
//! shared data and shared queues drive. Request header `x-hc-op` picks the
//! case; every case answers locally (the upstream is not involved) with a
//! JSON body.
//!
//! | `x-hc-op` | what it does | answer |
//! |---|---|---|
//! | `metrics` | adds `x-hc-tokens` to counter `route.<route>.model.<x-hc-model>.input_token`, sets gauge `hc_last_tokens`, records histogram `hc_tokens` | `{"counter": <name>}` |
//! | `count` | adds 1 to shared-data key `hits` (typed, with the CAS retry helper) and to this VM's own count | `{"shared": n, "local": k, "vm": <this VM's random id>}` |
//! | `enqueue` | enqueues `x-hc-message` on shared queue `events` | `{"enqueued": true}` |
//! | `reset` | resets the stream ([`HttpContext::reset_stream`]) | none: the client's connection is reset |
//! | `grpc-stream` | gRPC stream `hc.Echo/<x-hc-method>` on cluster `grpc`: sends each comma-separated part of `x-hc-message` (the last with end of stream), reads every reply | 200 `{"replies": [..], "initial": <x-srv initial metadata>, "trailing": <x-count trailing metadata>}`, or 503 `{"error": ...}` |
//! | `route` | holds the headers; the body hook re-targets the request with `route_call("POST", "/routed?x=1", [x-routed: yes], "new-body")` | the callback's rewrite of the upstream's answer: `routed:<status>:<upstream body>`, header `x-route-status` (needs `allow_on_headers_stop_iteration` on stock Envoy) |
//! | `hold` | lets the request go upstream; every response chunk is stopped (Go's `NeedPauseStreamingResponse`) and kept (`push_buffer`), counted in counter `hc_held_chunks`; the last one sends them all, in order (`pop_buffer`, after `resume_streaming_response`) | the upstream's body, unchanged |
//! | `grpc` | unary gRPC call `hc.Echo/<x-hc-method>` on cluster `grpc` with message `x-hc-message` and metadata `x-tenant: t1` | 200 `{"grpc": <response as text>}`, or 503 `{"error": ...}` |
//!
//! At start every VM registers queue `events`; the one the host keeps as
//! its reader dequeues in `on_queue_ready`, counts messages in counter
//! `hc_dequeued` and logs `hc dequeued <message>`.
use higress_wrapper::grpc::{GrpcCall, GrpcError, GrpcStream};
use higress_wrapper::metrics::{self, Counter};
use higress_wrapper::prelude::*;
use higress_wrapper::shared_data;
use higress_wrapper::shared_queue::SharedQueue;
use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The plugin.
#[derive(Debug)]
pub struct HostCalls;

thread_local! {
    /// Requests this VM counted.
    static LOCAL: Cell<u64> = const { Cell::new(0) };
    /// A random id of this VM (one per Envoy worker).
    static VM: Cell<u64> = const { Cell::new(0) };
}

fn vm_id() -> u64 {
    VM.with(|v| {
        if v.get() == 0 {
            // WASI randomness (Envoy implements `random_get`).
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u8(1);
            v.set(hasher.finish().max(1));
        }
        v.get()
    })
}

fn header(ctx: &HttpContext, name: &str) -> String {
    ctx.request_header(name)
        .map(|v| v.to_str_lossy().into_owned())
        .unwrap_or_default()
}

fn answer(ctx: &mut HttpContext, status: u32, body: serde_json::Value) -> HeaderAction {
    ctx.send_local_response(
        status,
        &[("content-type", b"application/json")],
        body.to_string(),
    );
    HeaderAction::Continue
}

fn fail(ctx: &mut HttpContext, what: &str, err: impl std::fmt::Display) -> HeaderAction {
    log::warn!("{what}: {err}");
    answer(
        ctx,
        500,
        serde_json::json!({ "error": format!("{what}: {err}") }),
    )
}

fn on_request_headers(ctx: &mut HttpContext, config: &()) -> HeaderAction {
    match header(ctx, "x-hc-op").as_str() {
        "metrics" => {
            let route = ctx.route_name().unwrap_or_default();
            let model = header(ctx, "x-hc-model");
            let tokens: u64 = header(ctx, "x-hc-tokens").parse().unwrap_or(0);
            let name = metrics::metric_name(&[("route", &route), ("model", &model)], "input_token");
            let recorded = metrics::increment_counter(&name, tokens)
                .and_then(|()| metrics::set_gauge("hc_last_tokens", tokens))
                .and_then(|()| metrics::record_histogram("hc_tokens", tokens));
            match recorded {
                Ok(()) => answer(ctx, 200, serde_json::json!({ "counter": name })),
                Err(e) => fail(ctx, "metrics", e),
            }
        }
        "count" => match shared_data::update("hits", 16, |n: Option<u64>| n.unwrap_or(0) + 1) {
            Ok(shared) => {
                let local = LOCAL.with(|l| {
                    l.set(l.get() + 1);
                    l.get()
                });
                let body = serde_json::json!({
                    "shared": shared,
                    "local": local,
                    "vm": vm_id().to_string(),
                });
                answer(ctx, 200, body)
            }
            Err(e) => fail(ctx, "shared data", e),
        },
        "enqueue" => {
            let message = header(ctx, "x-hc-message");
            match SharedQueue::resolve("", "events").and_then(|q| q.enqueue(message.as_bytes())) {
                Ok(()) => answer(ctx, 200, serde_json::json!({ "enqueued": true })),
                Err(e) => fail(ctx, "enqueue", e),
            }
        }
        "grpc-stream" => {
            let method = header(ctx, "x-hc-method");
            let message = header(ctx, "x-hc-message");
            ctx.wait(config, move |ctx, _| async move {
                let mut stream =
                    GrpcStream::open("grpc", "hc.Echo", &method, &[("x-tenant", b"t1")])?;
                let parts: Vec<&str> = message.split(',').collect();
                for (i, part) in parts.iter().enumerate() {
                    stream.send(part.as_bytes(), i + 1 == parts.len())?;
                }
                let mut replies = Vec::new();
                let end = loop {
                    match stream.next().await {
                        Ok(Some(reply)) => {
                            replies.push(String::from_utf8_lossy(&reply).into_owned());
                        }
                        Ok(None) => break None,
                        Err(e) => break Some(e.to_string()),
                    }
                };
                let meta = |pairs: Vec<(String, Vec<u8>)>, key: &str| {
                    pairs
                        .into_iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
                };
                let body = match end {
                    None => serde_json::json!({
                        "replies": replies,
                        "initial": meta(stream.initial_metadata(), "x-srv"),
                        "trailing": meta(stream.trailing_metadata(), "x-count"),
                    }),
                    Some(error) => serde_json::json!({ "error": error, "replies": replies }),
                };
                let status = if end_is_ok(&body) { 200 } else { 503 };
                ctx.send_local_response(
                    status,
                    &[("content-type", b"application/json")],
                    body.to_string(),
                );
                Ok::<_, higress_wrapper::Error>(HeaderAction::Continue)
            })
        }
        "route" => {
            ctx.set_context("route", ContextValue::Bool(true));
            HeaderAction::StopIteration
        }
        "hold" => {
            ctx.set_context("hold", ContextValue::Bool(true));
            HeaderAction::Continue
        }
        "reset" => {
            ctx.reset_stream();
            HeaderAction::Continue
        }
        "grpc" => {
            let method = header(ctx, "x-hc-method");
            let message = header(ctx, "x-hc-message");
            let call = GrpcCall::new("grpc", "hc.Echo", method, message.into_bytes())
                .metadata("x-tenant", "t1")
                .timeout(Duration::from_secs(5))
                .send();
            ctx.then(call, |ctx, reply: Result<Vec<u8>, GrpcError>| match reply {
                Ok(response) => answer(
                    ctx,
                    200,
                    serde_json::json!({ "grpc": String::from_utf8_lossy(&response) }),
                ),
                Err(e) => answer(ctx, 503, serde_json::json!({ "error": e.to_string() })),
            })
        }
        _ => HeaderAction::Continue,
    }
}

fn on_request_body(ctx: &mut HttpContext, _: &(), _body: &[u8]) -> DataAction {
    if !matches!(ctx.get_context("route"), Some(ContextValue::Bool(true))) {
        return DataAction::Continue;
    }
    let sent = ctx.route_call(
        "POST",
        "/routed?x=1",
        &[("x-routed", b"yes")],
        b"new-body",
        |ctx, answer| {
            ctx.set_response_header("x-route-status", answer.status.to_string());
            let text = format!(
                "routed:{}:{}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
            ctx.replace_response_body(text);
        },
    );
    if let Err(e) = sent {
        log::warn!("route call: {e}");
    }
    DataAction::Continue
}

fn end_is_ok(body: &serde_json::Value) -> bool {
    body.get("error").is_none()
}

fn holding(ctx: &HttpContext) -> bool {
    matches!(ctx.get_context("hold"), Some(ContextValue::Bool(true)))
}

fn on_response_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
    if holding(ctx) {
        ctx.need_pause_streaming_response();
    }
    HeaderAction::Continue
}

fn on_streaming_response_body(
    ctx: &mut HttpContext,
    _: &(),
    chunk: &[u8],
    end_of_stream: bool,
) -> Option<Vec<u8>> {
    if !ctx.is_streaming_response_paused() {
        return None;
    }
    ctx.push_buffer(chunk.to_vec());
    if !end_of_stream {
        if let Err(e) = metrics::increment_counter("hc_held_chunks", 1) {
            log::warn!("hc_held_chunks: {e}");
        }
        return None;
    }
    log::info!("hc sending {} kept chunks", ctx.buffer_queue_size());
    ctx.resume_streaming_response();
    let mut all = Vec::new();
    while let Some(part) = ctx.pop_buffer() {
        all.extend(part);
    }
    Some(all)
}

impl HttpPlugin for HostCalls {
    const NAME: &'static str = "e2e-hostcalls";
    type Config = ();
    type State = ();
    const HOOKS: Hooks<Self> = Hooks {
        on_request_headers: Some(on_request_headers),
        on_request_body: Some(on_request_body),
        on_response_headers: Some(on_response_headers),
        on_streaming_response_body: Some(on_streaming_response_body),
        ..Hooks::NONE
    };

    fn parse_config(_: &serde_json::Value) -> Result<(), ConfigError> {
        Ok(())
    }

    fn on_plugin_start(ctx: &mut PluginContext<'_, ()>) -> Result<(), StartError> {
        let queue = ctx.register_queue("events")?;
        Counter::define("hc_dequeued")?;
        log::info!("hc vm {} registered queue {}", vm_id(), queue.id());
        Ok(())
    }

    fn on_queue_ready(ctx: &mut PluginContext<'_, ()>, queue_id: u32) {
        loop {
            match ctx.dequeue(queue_id) {
                Ok(Some(message)) => {
                    if let Err(e) = metrics::increment_counter("hc_dequeued", 1) {
                        log::warn!("hc_dequeued: {e}");
                    }
                    log::info!("hc dequeued {}", String::from_utf8_lossy(&message));
                }
                Ok(None) => break,
                Err(e) => {
                    log::warn!("dequeue: {e}");
                    break;
                }
            }
        }
    }
}

higress_wrapper::plugin_entry!(HostCalls);
