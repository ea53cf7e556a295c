//! Delivering events to the plugin the way Envoy's filter manager and wasm
//! filter (`Context::decodeHeaders`, `decodeData`, ...) do, and applying
//! what the plugin answered. Callbacks are delivered only from here, never
//! from inside a host call: work a host call asks for (a local reply, a
//! resume) is queued and runs once the callback returned, as Envoy's
//! "after VM call" actions.

use super::abi;
use super::model::{
    with_registry, AfterCall, Answer, Delivery, Dir, HeaderMap, HostModel, StreamModel,
};
use super::types::{Action, CalloutKind, CalloutState, DeliveryError, LocalResponse, StreamError};

pub(super) fn with_host<R>(root: u32, f: impl FnOnce(&mut HostModel) -> R) -> Option<R> {
    with_registry(|r| r.hosts.get_mut(&root).map(f)).flatten()
}

/// Runs `f` on a stream and its host (the stream is taken out of the map
/// for the duration, to borrow both).
pub(super) fn with_stream<R>(
    root: u32,
    id: u32,
    f: impl FnOnce(&mut HostModel, &mut StreamModel) -> R,
) -> Option<R> {
    with_host(root, |h| {
        let mut s = h.streams.remove(&id)?;
        let r = f(h, &mut s);
        h.streams.insert(id, s);
        Some(r)
    })
    .flatten()
}

/// Calls into the plugin with `context` effective. The SDK's exports use
/// the `C-unwind` ABI, so a panic in plugin code unwinds to here: it fails
/// the VM (as a trap does in Envoy) and is resumed in the test, where
/// `std::panic::catch_unwind` can observe it.
pub(super) fn invoke<R>(root: u32, context: u32, call: impl FnOnce() -> R) -> R {
    with_registry(|r| r.effective = context);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
    with_registry(|r| r.effective = 0);
    match result {
        Ok(value) => value,
        Err(payload) => {
            with_host(root, |h| {
                h.vm_failed = true;
                h.actions.clear();
                if let Some(s) = h.streams.get_mut(&context) {
                    s.fail();
                }
            });
            std::panic::resume_unwind(payload)
        }
    }
}

/// proxy-wasm `FilterDataStatus::StopIterationNoBuffer`.
const STOP_ITERATION_NO_BUFFER: u32 = 3;

fn action_of(raw: u32) -> Action {
    if raw == 0 {
        Action::Continue
    } else {
        Action::Pause
    }
}

/// Creates the plugin's HTTP context on first use (Envoy creates it when
/// the request headers arrive, or at access-log time).
fn ensure_created(root: u32, id: u32) {
    let create = with_stream(root, id, |_, s| !std::mem::replace(&mut s.created, true));
    if create == Some(true) {
        invoke(root, id, || abi::on_context_create(id, root));
    }
}

fn status_of(headers: &HeaderMap) -> Option<u32> {
    std::str::from_utf8(headers.get(":status")?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

// ----- headers, body, trailers --------------------------------------------------------

pub(super) fn deliver_headers(
    root: u32,
    id: u32,
    dir: Dir,
    headers: HeaderMap,
    eos: bool,
) -> Action {
    let count = with_stream(root, id, |h, s| {
        if dir == Dir::Response && !s.local_reply {
            s.response_code = status_of(&headers);
            s.code_details = Some("via_upstream".to_owned());
        }
        let half = s.half(dir);
        half.started = true;
        half.headers = headers;
        half.headers_live = true;
        half.eos_in = eos;
        let count = half.headers.len();
        if h.vm_failed {
            s.fail();
            return None;
        }
        Some(count)
    })
    .flatten();
    let Some(count) = count else {
        return Action::Ended;
    };
    ensure_created(root, id);
    let raw = invoke(root, id, || match dir {
        Dir::Request => abi::on_request_headers(id, count, eos),
        Dir::Response => abi::on_response_headers(id, count, eos),
    });
    let action = action_of(raw);
    with_stream(root, id, |h, s| {
        if h.ending(id) || s.reset || s.failed {
            return;
        }
        let stop_all = !h.settings.allow_on_headers_stop_iteration;
        let half = s.half(dir);
        match action {
            Action::Continue => half.forward_headers(),
            _ => half.headers_held = Some(stop_all),
        }
    });
    drain(root);
    action
}

enum BodyStep {
    Call(usize),
    Held,
    TooLarge,
    Ended,
}

pub(super) fn deliver_body(root: u32, id: u32, dir: Dir, chunk: Vec<u8>, eos: bool) -> Action {
    let step = with_stream(root, id, |h, s| {
        if h.vm_failed {
            s.fail();
            return BodyStep::Ended;
        }
        let limit = h.buffer_limit(s, dir);
        let half = s.half(dir);
        half.eos_in |= eos;
        if half.stop_all() || half.held.is_some() {
            let held = half.held.get_or_insert_with(|| (Vec::new(), false));
            held.0.extend_from_slice(&chunk);
            held.1 = eos;
            return BodyStep::Held;
        }
        if half.buffering && half.body.len().saturating_add(chunk.len()) > limit {
            return BodyStep::TooLarge;
        }
        half.body.extend_from_slice(&chunk);
        half.body_live = true;
        half.body_calls += 1;
        BodyStep::Call(half.body.len())
    })
    .unwrap_or(BodyStep::Ended);
    let size = match step {
        BodyStep::Call(size) => size,
        BodyStep::Held => return Action::Held,
        BodyStep::Ended => return Action::Ended,
        BodyStep::TooLarge => {
            // Envoy's filter manager: 413 for a request, 500 for a response.
            let (status, body, details) = match dir {
                Dir::Request => (413, "Payload Too Large", "request_payload_too_large"),
                Dir::Response => (500, "Internal Server Error", "response_payload_too_large"),
            };
            let reply = LocalResponse {
                status,
                details: details.to_owned(),
                headers: Vec::new(),
                body: body.as_bytes().to_vec(),
                grpc_status: None,
            };
            local_reply(root, id, reply, false);
            return Action::Ended;
        }
    };
    let raw = invoke(root, id, || match dir {
        Dir::Request => abi::on_request_body(id, size, eos),
        Dir::Response => abi::on_response_body(id, size, eos),
    });
    let action = action_of(raw);
    with_stream(root, id, |h, s| {
        if h.ending(id) || s.reset || s.failed {
            return;
        }
        let half = s.half(dir);
        if raw == STOP_ITERATION_NO_BUFFER {
            // Envoy: the chunk goes no further and is not kept; a later
            // Continue sends the chunk of that callback.
            half.dropped_body.extend_from_slice(&half.body);
            half.body.clear();
            half.body_live = false;
            half.buffering = false;
            return;
        }
        match action {
            Action::Continue => {
                // A body Continue also releases headers held with
                // StopIteration (allow_on_headers_stop_iteration).
                if half.headers_sent.is_none() {
                    half.forward_headers();
                }
                half.forward_body();
            }
            _ => half.buffering = true,
        }
    });
    drain(root);
    action
}

pub(super) fn deliver_trailers(root: u32, id: u32, dir: Dir, trailers: HeaderMap) -> Action {
    let count = with_stream(root, id, |h, s| {
        if h.vm_failed {
            s.fail();
            return None;
        }
        let half = s.half(dir);
        half.eos_in = true;
        if half.stop_all() || half.held.is_some() {
            half.held_trailers = Some(trailers);
            return Some(None);
        }
        let count = trailers.len();
        half.trailers = Some(trailers);
        half.trailers_live = true;
        Some(Some(count))
    })
    .flatten();
    let count = match count {
        None => return Action::Ended,
        Some(None) => return Action::Held,
        Some(Some(count)) => count,
    };
    let raw = invoke(root, id, || match dir {
        Dir::Request => abi::on_request_trailers(id, count),
        Dir::Response => abi::on_response_trailers(id, count),
    });
    let action = action_of(raw);
    with_stream(root, id, |h, s| {
        if h.ending(id) || s.reset || s.failed {
            return;
        }
        let half = s.half(dir);
        if raw == STOP_ITERATION_NO_BUFFER {
            // Envoy: the chunk goes no further and is not kept; a later
            // Continue sends the chunk of that callback.
            half.dropped_body.extend_from_slice(&half.body);
            half.body.clear();
            half.body_live = false;
            half.buffering = false;
            return;
        }
        match action {
            Action::Continue => {
                if half.headers_sent.is_none() {
                    half.forward_headers();
                }
                if half.buffering {
                    half.forward_body();
                }
                half.forward_trailers();
            }
            _ => half.trailers_held = true,
        }
    });
    drain(root);
    action
}

// ----- work queued by host calls ---------------------------------------------------------

/// Runs the queued "after VM call" work until none is left.
pub(super) fn drain(root: u32) {
    while let Some(action) = with_host(root, |h| h.actions.pop_front()).flatten() {
        match action {
            AfterCall::LocalReply {
                stream,
                reply,
                by_plugin,
            } => local_reply(root, stream, reply, by_plugin),
            AfterCall::Continue { stream, dir } => resume(root, stream, dir),
            AfterCall::Reset { stream } => {
                with_stream(root, stream, |_, s| {
                    s.reset = true;
                    s.code_details
                        .get_or_insert_with(|| "wasm_close_stream".to_owned());
                    for half in [&mut s.req, &mut s.resp] {
                        half.headers_held = None;
                        half.buffering = false;
                        half.held = None;
                        half.held_trailers = None;
                        half.trailers_held = false;
                    }
                });
            }
            AfterCall::QueueReady { context, queue } => {
                // proxy-wasm delivers queue readiness to root contexts only.
                let deliver = with_host(root, |h| !h.vm_failed).unwrap_or(false);
                if deliver && context == root {
                    invoke(root, root, || abi::on_queue_ready(root, queue));
                }
            }
        }
    }
}

/// `decoder_callbacks_->continueDecoding()` / `continueEncoding()`.
fn resume(root: u32, id: u32, dir: Dir) {
    let next = with_stream(root, id, |_, s| {
        // Envoy's `Context::continueStream` drops the request maps and body
        // whichever direction resumes: the plugin cannot reach them after.
        s.req.headers_live = false;
        s.req.body_live = false;
        s.req.trailers_live = false;
        let open = match dir {
            Dir::Request => s.request_open(),
            Dir::Response => !s.reset && !s.failed,
        };
        let half = s.half(dir);
        if !open || !half.started {
            return None;
        }
        if half.headers_held.is_some() {
            half.forward_headers();
        }
        if half.buffering {
            half.forward_body();
        }
        if half.trailers_held {
            half.forward_trailers();
        }
        Some((half.held.take(), half.held_trailers.take()))
    })
    .flatten();
    if let Some((held, trailers)) = next {
        // What arrived while stopped reaches the plugin now, in one callback.
        if let Some((data, eos)) = held {
            let _ = deliver_body(root, id, dir, data, eos);
        }
        if let Some(trailers) = trailers {
            let _ = deliver_trailers(root, id, dir, trailers);
        }
    }
}

/// A local reply (the plugin's `send_local_response`, or the host's own).
/// Raised while decoding, it travels through the whole encoder chain, this
/// filter included (Envoy's `sendLocalReplyViaFilterChain`); raised while
/// encoding, it goes straight downstream; once the response started
/// downstream, the stream is reset instead.
fn local_reply(root: u32, id: u32, reply: LocalResponse, by_plugin: bool) {
    let next = with_stream(root, id, |h, s| {
        if by_plugin {
            s.local_responses.push(reply.clone());
            if s.local_responses.len() > 1 {
                return None;
            }
        } else if s.local_reply {
            return None;
        }
        if s.reset || s.failed {
            return None;
        }
        // The request is not proxied any further.
        s.req.headers_held = None;
        s.req.buffering = false;
        s.req.held = None;
        s.req.held_trailers = None;
        s.req.trailers_held = false;
        s.response_code = Some(reply.status);
        s.code_details = Some(if by_plugin {
            h.reply_details(&reply.details)
        } else {
            reply.details.clone()
        });
        if s.resp.headers_sent.is_some() {
            s.reset = true;
            return None;
        }
        s.local_reply = true;
        let mut headers = HeaderMap::default();
        headers.add(":status", reply.status.to_string().as_bytes());
        for (name, value) in &reply.headers {
            headers.add(name, value.as_bytes());
        }
        if !reply.body.is_empty() {
            headers.set("content-length", reply.body.len().to_string().as_bytes());
            if headers.get("content-type").is_none() {
                headers.add("content-type", b"text/plain");
            }
        }
        if s.resp.started {
            // Raised while encoding: sent directly to the client.
            let resp = &mut s.resp;
            resp.headers = headers.clone();
            resp.headers_live = false;
            resp.headers_held = None;
            resp.buffering = false;
            resp.body.clear();
            resp.body_live = false;
            resp.held = None;
            resp.held_trailers = None;
            resp.trailers_held = false;
            resp.headers_sent = Some(headers);
            resp.sent_body = reply.body.clone();
            resp.sent_eos = true;
            return None;
        }
        Some((headers, reply.body.clone()))
    })
    .flatten();
    if let Some((headers, body)) = next {
        let eos = body.is_empty();
        let _ = deliver_headers(root, id, Dir::Response, headers, eos);
        if !eos {
            let _ = deliver_body(root, id, Dir::Response, body, true);
        }
    }
}

// ----- stream end, ticks ---------------------------------------------------------------------

/// The stream ends: `proxy_on_log` (access-log phase), then
/// `proxy_on_done` and `proxy_on_delete`, as Envoy's stream destruction.
pub(super) fn done(root: u32, id: u32) -> Result<(), StreamError> {
    let call = with_stream(root, id, |h, s| {
        if s.done {
            return Err(StreamError::Done);
        }
        s.done = true;
        for half in [&mut s.req, &mut s.resp] {
            half.headers_live = false;
            half.body_live = false;
            half.trailers_live = false;
        }
        Ok(!h.vm_failed)
    })
    .ok_or(StreamError::Gone)??;
    if !call {
        return Ok(());
    }
    ensure_created(root, id);
    with_stream(root, id, |_, s| s.access_log = true);
    invoke(root, id, || abi::on_log(id));
    with_stream(root, id, |_, s| s.access_log = false);
    drain(root);
    invoke(root, id, || abi::on_done(id));
    invoke(root, id, || abi::on_delete(id));
    with_host(root, |h| {
        if let Some(s) = h.streams.get_mut(&id) {
            s.deleted = true;
        }
        h.actions.retain(|a| match a {
            AfterCall::LocalReply { stream, .. }
            | AfterCall::Continue { stream, .. }
            | AfterCall::Reset { stream } => *stream != id,
            AfterCall::QueueReady { .. } => true,
        });
    });
    Ok(())
}

pub(super) fn tick(root: u32) {
    if with_host(root, |h| !h.vm_failed) == Some(true) {
        invoke(root, root, || abi::on_tick(root));
        drain(root);
    }
}

/// What happens next on the host clock.
enum Due {
    Tick,
    Timeout(u32, Answer),
}

/// Moves the clock forward, firing the tick timer at each period boundary
/// on the way and timing out callouts whose deadline passes (each with the
/// clock set to that instant), in time order.
pub(super) fn advance_time(root: u32, by_nanos: u64) {
    let Some(target) = with_host(root, |h| h.now_nanos.saturating_add(by_nanos)) else {
        return;
    };
    loop {
        let due = with_host(root, |h| {
            if h.vm_failed {
                return None;
            }
            let tick = h.next_tick_nanos.filter(|at| *at <= target);
            let timeout = h
                .deadlines
                .iter()
                .map(|(token, at)| (*at, *token))
                .min()
                .filter(|(at, _)| *at <= target);
            match (tick, timeout) {
                (Some(at), timeout) if timeout.is_none_or(|(t, _)| at <= t) => {
                    h.now_nanos = at;
                    let period = u64::from(h.tick_period_ms).saturating_mul(1_000_000).max(1);
                    h.next_tick_nanos = Some(at.saturating_add(period));
                    Some(Due::Tick)
                }
                (_, Some((at, token))) => {
                    h.now_nanos = h.now_nanos.max(at);
                    h.deadlines.remove(&token);
                    let answer = match h.pending_callout(token).map(|c| &c.kind) {
                        Some(CalloutKind::Http { .. }) => Answer::http_timeout(),
                        _ => Answer::redis_failure(),
                    };
                    Some(Due::Timeout(token, answer))
                }
                _ => None,
            }
        })
        .flatten();
        match due {
            Some(Due::Tick) => {
                invoke(root, root, || abi::on_tick(root));
                drain(root);
            }
            Some(Due::Timeout(token, answer)) => {
                let _ = deliver(root, token, answer);
            }
            None => break,
        }
    }
    with_host(root, |h| h.now_nanos = h.now_nanos.max(target));
}

// ----- callout replies ---------------------------------------------------------------------

/// Clears the reply buffers when the callback returns (or unwinds).
struct DeliveryGuard(u32);

impl Drop for DeliveryGuard {
    fn drop(&mut self) {
        with_host(self.0, |h| {
            h.delivery = None;
            h.status = (0, Vec::new());
        });
    }
}

/// Delivers `answer` to callout `token` now, as Envoy does: on the root
/// context (Envoy owns every callout by the root), with the reply readable
/// only during the callback (`proxy_on_http_call_response` with the
/// headers in map 6 and the body in buffer 4; `proxy_on_redis_call_response`
/// with the reply in buffer 9). A failure sets `proxy_get_status` to
/// `BrokenConnection` / `reset` for the callback. A failed VM is not called.
pub(super) fn deliver(root: u32, token: u32, answer: Answer) -> Result<(), DeliveryError> {
    let call = with_host(root, |h| {
        let Some(callout) = h.callouts.iter_mut().find(|c| c.token == token) else {
            return Err(DeliveryError::UnknownToken(token));
        };
        if callout.state != CalloutState::Pending {
            return Err(DeliveryError::NotPending(token));
        }
        let fits = matches!(
            (&callout.kind, &answer),
            (CalloutKind::Http { .. }, Answer::Http { .. })
                | (CalloutKind::Redis { .. }, Answer::Redis { .. })
                | (CalloutKind::Grpc { .. }, Answer::Grpc { .. })
                | (
                    CalloutKind::GrpcStream { .. },
                    Answer::GrpcStreamMessage(_) | Answer::GrpcStreamClose { .. }
                )
        );
        if !fits {
            return Err(DeliveryError::WrongKind(token));
        }
        if !matches!(answer, Answer::GrpcStreamMessage(_)) {
            callout.state = CalloutState::Delivered;
        }
        h.deadlines.remove(&token);
        h.ready.retain(|(t, _)| *t != token);
        if h.vm_failed {
            return Ok(None);
        }
        Ok(Some(match answer {
            Answer::Http {
                headers,
                body,
                trailers,
            } => {
                let sizes = (headers.len(), body.len(), trailers.len());
                if headers.len() == 0 {
                    h.status = (11, b"reset".to_vec());
                }
                h.delivery = Some(Delivery::Http {
                    headers,
                    body,
                    trailers,
                });
                Reply::Http(sizes)
            }
            Answer::Redis { status, data } => {
                let size = data.len();
                if status != 0 {
                    h.status = (11, b"reset".to_vec());
                }
                h.delivery = Some(Delivery::Redis(data));
                Reply::Redis(status, size)
            }
            Answer::Grpc {
                status,
                message,
                status_message,
            } => {
                let size = message.len();
                h.status = (status, status_message.into_bytes());
                h.delivery = Some(Delivery::Grpc(message));
                Reply::Grpc(status, size)
            }
            Answer::GrpcStreamMessage(message) => {
                let size = message.len();
                h.delivery = Some(Delivery::Grpc(message));
                Reply::GrpcStream(None, size)
            }
            Answer::GrpcStreamClose {
                status,
                status_message,
            } => {
                h.status = (status, status_message.into_bytes());
                Reply::GrpcStream(Some(status), 0)
            }
        }))
    })
    .unwrap_or(Ok(None))?;
    let Some(reply) = call else {
        return Ok(());
    };
    {
        let _clear = DeliveryGuard(root);
        invoke(root, root, || match reply {
            Reply::Http((headers, body, trailers)) => {
                abi::on_http_call_response(root, token, headers, body, trailers);
            }
            Reply::Redis(status, size) => abi::on_redis_call_response(root, token, status, size),
            // Envoy: a unary call's success is `onGrpcReceive`, a failure
            // `onGrpcClose` with the status (the message via get_status).
            Reply::Grpc(0, size) => abi::on_grpc_receive(root, token, size),
            Reply::Grpc(status, _) => abi::on_grpc_close(root, token, status),
            // A stream: each message is `onGrpcReceive`, the end (any
            // status, 0 included) `onGrpcClose`.
            Reply::GrpcStream(None, size) => abi::on_grpc_receive(root, token, size),
            Reply::GrpcStream(Some(status), _) => abi::on_grpc_close(root, token, status),
        });
    }
    drain(root);
    Ok(())
}

/// The sizes a reply callback is called with.
enum Reply {
    Http((usize, usize, usize)),
    Redis(u32, usize),
    Grpc(u32, usize),
    /// A stream message (`None`, its size) or its end (`Some(status)`).
    GrpcStream(Option<u32>, usize),
}

/// Sends every pending Redis call routed to a real server and reads its
/// reply (or failure) into the host's ready queue, in token order.
pub(super) fn fetch_redis(root: u32) {
    with_host(root, |h| {
        let todo: Vec<(u32, String, Vec<u8>)> = h
            .callouts
            .iter()
            .filter(|c| c.state == CalloutState::Pending)
            .filter(|c| !h.ready.iter().any(|(t, _)| *t == c.token))
            .filter_map(|c| match &c.kind {
                CalloutKind::Redis { service, query } => {
                    let cluster = service.split('?').next().unwrap_or_default();
                    h.redis_route(cluster)
                        .map(|_| (c.token, cluster.to_owned(), query.clone()))
                }
                _ => None,
            })
            .collect();
        for (token, cluster, query) in todo {
            let Some(addr) = h.redis_route(&cluster) else {
                continue;
            };
            let client = h.redis_clients.entry(cluster).or_default();
            let answer = match client.call(addr, &query) {
                Ok(data) => Answer::Redis { status: 0, data },
                Err(failure) => {
                    h.redis_failures
                        .push(format!("redis call {token}: {}", failure.0));
                    Answer::redis_failure()
                }
            };
            h.ready.push_back((token, answer));
        }
    });
}

/// Does the host's I/O and delivers every reply that is ready, again and
/// again while the plugin makes new calls. Returns how many were delivered.
pub(super) fn run_until_idle(root: u32) -> usize {
    let mut delivered = 0;
    loop {
        fetch_redis(root);
        let Some((token, answer)) = with_host(root, |h| h.ready.pop_front()).flatten() else {
            return delivered;
        };
        if deliver(root, token, answer).is_ok() {
            delivered += 1;
        }
    }
}

/// Runs `f` as if inside a callback of `root` (entered through
/// `proxy_on_vm_start`, which only records the context), then runs the
/// deferred host actions. `None` if the VM failed.
pub(super) fn in_root<R>(root: u32, f: impl FnOnce() -> R) -> Option<R> {
    if with_host(root, |h| !h.vm_failed) != Some(true) {
        return None;
    }
    let out = invoke(root, root, || {
        abi::on_vm_start(root, 0);
        f()
    });
    drain(root);
    Some(out)
}
