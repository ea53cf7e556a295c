//! HTTP streams: delivering headers, bodies and trailers the way Envoy's
//! wasm filter does, applying what the plugin answered under the module's
//! ABI, and the "after VM call" work host calls queued (resume, local
//! reply, reset). Callbacks are never delivered from inside a host call.

use crate::state::{AfterCall, Dir, HeaderMap, StreamState};
use crate::types::{AbiVersion, Action, FailPolicy, LocalResponse};
use crate::vm::Vm;

/// What a headers status means for the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderOutcome {
    Continue,
    /// StopIteration: bodies still reach the plugin.
    StopIteration,
    /// Stop all: bodies are held until the plugin resumes.
    StopAll,
}

/// cpp-host's `convertVmCallResultToFilterHeadersStatus`: with 0.2.100 the
/// statuses 0-4 pass through (2, ContinueAndDontEndStream, continues; 3 and
/// 4 stop all); with 0.2.x a non-zero status is stop-all unless Envoy's
/// `allow_on_headers_stop_iteration` keeps a `StopIteration` (1).
fn header_outcome(abi: AbiVersion, allow_stop_iteration: bool, raw: i32) -> HeaderOutcome {
    match (abi, raw) {
        (_, 0) => HeaderOutcome::Continue,
        (AbiVersion::V0_2_100, 1) => HeaderOutcome::StopIteration,
        (AbiVersion::V0_2_100, 2) => HeaderOutcome::Continue,
        (_, 1) if allow_stop_iteration => HeaderOutcome::StopIteration,
        _ => HeaderOutcome::StopAll,
    }
}

fn stream(vm: &mut Vm, id: u32) -> Option<&mut StreamState> {
    vm.data_mut().streams.get_mut(&id)
}

/// Creates the plugin's HTTP context on first use.
fn ensure_created(vm: &mut Vm, id: u32) -> bool {
    let root = vm.data().root;
    let create = match stream(vm, id) {
        Some(s) => !std::mem::replace(&mut s.created, true),
        None => return false,
    };
    if create {
        return call_stream(vm, id, "proxy_on_context_create", &[id as i32, root as i32]).is_ok();
    }
    true
}

/// Calls a stream callback; on a trap applies the fail policy to this
/// stream (fail open: it goes on without the plugin; otherwise Envoy's 503
/// `wasm_fail_stream`).
fn call_stream(vm: &mut Vm, id: u32, name: &'static str, args: &[i32]) -> Result<i32, ()> {
    match vm.call(name, Some(id), Some(id), args) {
        Ok(v) => Ok(v.unwrap_or(0)),
        Err(_) => {
            fail_stream(vm, id);
            Err(())
        }
    }
}

/// The VM failed while this stream was in it (or before it arrived).
pub(crate) fn fail_stream(vm: &mut Vm, id: u32) {
    let policy = vm.data().settings.fail_policy;
    vm.data_mut().after.retain(|a| match a {
        AfterCall::Continue { stream, .. }
        | AfterCall::LocalReply { stream, .. }
        | AfterCall::Reset { stream } => *stream != id,
    });
    let Some(s) = stream(vm, id) else { return };
    if policy == FailPolicy::Open {
        bypass(s);
        return;
    }
    s.failed = true;
    let reply = LocalResponse {
        status: 503,
        details: "wasm_fail_stream".to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
        grpc_status: None,
    };
    send_direct(s, &reply);
}

/// Fail open: the plugin is out of the way, everything flows.
fn bypass(s: &mut StreamState) {
    s.bypass = true;
    for half in [&mut s.req, &mut s.resp] {
        if half.started {
            half.forward_headers();
            half.held = None;
            half.forward_body();
            if let Some(t) = half.trailers.clone() {
                half.trailers_sent = Some(t);
                half.sent_eos = true;
            }
        }
    }
}

/// A reply that goes straight to the client (the plugin is not called).
fn send_direct(s: &mut StreamState, reply: &LocalResponse) {
    s.response_code = Some(reply.status);
    s.req.headers_held = None;
    s.req.buffering = false;
    s.req.held = None;
    if s.resp.headers_sent.is_some() {
        s.reset = true;
        return;
    }
    let headers = reply_headers(reply);
    s.resp.started = true;
    s.resp.headers = headers.clone();
    s.resp.headers_sent = Some(headers);
    s.resp.sent_body = reply.body.clone();
    s.resp.sent_eos = true;
    s.local_reply = true;
}

fn reply_headers(reply: &LocalResponse) -> HeaderMap {
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
    headers
}

/// Whether the plugin is out of the picture for this stream: `Some(action)`
/// to return without calling it.
fn skip(vm: &mut Vm, id: u32) -> Option<Action> {
    let failed = vm.data().vm_failed;
    let policy = vm.data().settings.fail_policy;
    let s = stream(vm, id)?;
    if s.bypass {
        bypass(s);
        return Some(Action::Continue);
    }
    if s.failed || s.reset || s.done {
        return Some(Action::Ended);
    }
    if failed {
        if policy == FailPolicy::Open {
            bypass(s);
            return Some(Action::Continue);
        }
        fail_stream(vm, id);
        return Some(Action::Ended);
    }
    None
}

pub(crate) fn deliver_headers(
    vm: &mut Vm,
    id: u32,
    dir: Dir,
    headers: HeaderMap,
    eos: bool,
) -> Action {
    let Some(s) = stream(vm, id) else {
        return Action::Ended;
    };
    if dir == Dir::Response && !s.local_reply {
        s.response_code = std::str::from_utf8(headers.get(":status").unwrap_or(b""))
            .ok()
            .and_then(|v| v.trim().parse().ok());
    }
    let half = s.half(dir);
    half.started = true;
    half.headers = headers;
    half.headers_live = true;
    half.eos_in = eos;
    let count = half.headers.len();
    if let Some(action) = skip(vm, id) {
        return action;
    }
    if !ensure_created(vm, id) {
        return Action::Ended;
    }
    let name = match dir {
        Dir::Request => "proxy_on_request_headers",
        Dir::Response => "proxy_on_response_headers",
    };
    let Ok(raw) = call_stream(vm, id, name, &[id as i32, count as i32, i32::from(eos)]) else {
        return if vm.data().settings.fail_policy == FailPolicy::Open {
            Action::Continue
        } else {
            Action::Ended
        };
    };
    let abi = vm.data().abi;
    let allow = vm.data().settings.allow_on_headers_stop_iteration;
    let outcome = header_outcome(abi, allow, raw);
    let ending = ending(vm, id);
    if let Some(s) = stream(vm, id) {
        if !ending && !s.reset && !s.failed {
            let half = s.half(dir);
            match outcome {
                HeaderOutcome::Continue => half.forward_headers(),
                HeaderOutcome::StopIteration => half.headers_held = Some(false),
                HeaderOutcome::StopAll => half.headers_held = Some(true),
            }
        }
    }
    drain(vm);
    if outcome == HeaderOutcome::Continue {
        Action::Continue
    } else {
        Action::Pause
    }
}

/// Whether a local reply or reset is queued for the stream.
fn ending(vm: &Vm, id: u32) -> bool {
    vm.data().after.iter().any(|a| match a {
        AfterCall::LocalReply { stream, .. } | AfterCall::Reset { stream } => *stream == id,
        AfterCall::Continue { .. } => false,
    })
}

pub(crate) fn deliver_body(vm: &mut Vm, id: u32, dir: Dir, chunk: Vec<u8>, eos: bool) -> Action {
    if let Some(action) = skip_body(vm, id, dir, &chunk, eos) {
        return action;
    }
    let size = {
        let Some(s) = stream(vm, id) else {
            return Action::Ended;
        };
        let half = s.half(dir);
        half.eos_in |= eos;
        if half.stop_all() || half.held.is_some() {
            let held = half.held.get_or_insert_with(|| (Vec::new(), false));
            held.0.extend_from_slice(&chunk);
            held.1 = eos;
            return Action::Held;
        }
        half.body.extend_from_slice(&chunk);
        half.body_live = true;
        half.body_calls += 1;
        half.body.len()
    };
    let name = match dir {
        Dir::Request => "proxy_on_request_body",
        Dir::Response => "proxy_on_response_body",
    };
    let Ok(raw) = call_stream(vm, id, name, &[id as i32, size as i32, i32::from(eos)]) else {
        return Action::Ended;
    };
    let ending = ending(vm, id);
    if let Some(s) = stream(vm, id) {
        if !ending && !s.reset && !s.failed {
            let half = s.half(dir);
            if raw == 0 {
                if half.headers_sent.is_none() {
                    half.forward_headers();
                }
                half.forward_body();
            } else {
                half.buffering = true;
            }
        }
    }
    drain(vm);
    if raw == 0 {
        Action::Continue
    } else {
        Action::Pause
    }
}

fn skip_body(vm: &mut Vm, id: u32, dir: Dir, chunk: &[u8], eos: bool) -> Option<Action> {
    let action = skip(vm, id)?;
    if action == Action::Continue {
        if let Some(s) = stream(vm, id) {
            let half = s.half(dir);
            half.sent_body.extend_from_slice(chunk);
            half.sent_eos |= eos;
        }
    }
    Some(action)
}

pub(crate) fn deliver_trailers(vm: &mut Vm, id: u32, dir: Dir, trailers: HeaderMap) -> Action {
    let count = trailers.len();
    {
        let Some(s) = stream(vm, id) else {
            return Action::Ended;
        };
        let half = s.half(dir);
        half.eos_in = true;
        half.trailers = Some(trailers);
        if half.stop_all() || half.held.is_some() {
            return Action::Held;
        }
    }
    if let Some(action) = skip(vm, id) {
        return action;
    }
    let name = match dir {
        Dir::Request => "proxy_on_request_trailers",
        Dir::Response => "proxy_on_response_trailers",
    };
    let Ok(raw) = call_stream(vm, id, name, &[id as i32, count as i32]) else {
        return Action::Ended;
    };
    let ending = ending(vm, id);
    if let Some(s) = stream(vm, id) {
        if !ending && !s.reset && !s.failed && raw == 0 {
            let half = s.half(dir);
            half.forward_headers();
            half.forward_body();
            half.trailers_sent = half.trailers.clone();
            half.sent_eos = true;
        }
    }
    drain(vm);
    if raw == 0 {
        Action::Continue
    } else {
        Action::Pause
    }
}

/// Runs the queued "after VM call" work, and delivers queue readiness
/// (returns how many `proxy_on_queue_ready` calls it made).
pub(crate) fn drain(vm: &mut Vm) -> usize {
    let mut ready_calls = 0;
    loop {
        let next = vm.data_mut().after.pop_front();
        match next {
            Some(AfterCall::Continue { stream, dir }) => resume(vm, stream, dir),
            Some(AfterCall::LocalReply { stream, reply }) => local_reply(vm, stream, reply),
            Some(AfterCall::Reset { stream: id }) => {
                if let Some(s) = stream(vm, id) {
                    s.reset = true;
                    for half in [&mut s.req, &mut s.resp] {
                        half.headers_held = None;
                        half.buffering = false;
                        half.held = None;
                    }
                }
            }
            None => {
                let (uid, failed) = (vm.data().host_uid, vm.data().vm_failed);
                let ready = if failed {
                    Vec::new()
                } else {
                    vm.data().shared.take_ready(uid)
                };
                if ready.is_empty() {
                    return ready_calls;
                }
                for (root, queue) in ready {
                    ready_calls += 1;
                    let _ = vm.call(
                        "proxy_on_queue_ready",
                        Some(root),
                        None,
                        &[root as i32, queue as i32],
                    );
                }
            }
        }
    }
}

/// `continueDecoding()` / `continueEncoding()`.
fn resume(vm: &mut Vm, id: u32, dir: Dir) {
    let next = {
        let Some(s) = stream(vm, id) else { return };
        if s.reset || s.failed || s.done {
            return;
        }
        // Envoy drops the request maps and body once the stream resumes.
        s.req.headers_live = false;
        s.req.body_live = false;
        let open = match dir {
            Dir::Request => s.request_open(),
            Dir::Response => true,
        };
        let half = s.half(dir);
        if !open || !half.started {
            return;
        }
        half.resumes += 1;
        if half.headers_held.is_some() {
            half.forward_headers();
        }
        if half.buffering {
            half.forward_body();
        }
        if half.held.is_none()
            && half.trailers.is_some()
            && half.trailers_sent.is_none()
            && half.eos_in
        {
            half.trailers_sent = half.trailers.clone();
            half.sent_eos = true;
        }
        half.held.take()
    };
    if let Some((data, eos)) = next {
        let _ = deliver_body(vm, id, dir, data, eos);
    }
}

/// A local reply the plugin sent. Raised while decoding it passes through
/// this filter's response callbacks (Envoy sends local replies through the
/// encoder chain); raised while encoding it goes straight to the client.
fn local_reply(vm: &mut Vm, id: u32, reply: LocalResponse) {
    let next = {
        let Some(s) = stream(vm, id) else { return };
        s.local_responses.push(reply.clone());
        if s.local_responses.len() > 1 || s.reset || s.failed {
            return;
        }
        s.req.headers_held = None;
        s.req.buffering = false;
        s.req.held = None;
        s.response_code = Some(reply.status);
        if s.resp.headers_sent.is_some() {
            s.reset = true;
            return;
        }
        if s.resp.started {
            send_direct(s, &reply);
            return;
        }
        s.local_reply = true;
        (reply_headers(&reply), reply.body.clone())
    };
    let (headers, body) = next;
    let eos = body.is_empty();
    let _ = deliver_headers(vm, id, Dir::Response, headers, eos);
    if !eos {
        let _ = deliver_body(vm, id, Dir::Response, body, true);
    }
}

/// The stream ends: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
pub(crate) fn done(vm: &mut Vm, id: u32) {
    let call = {
        let failed = vm.data().vm_failed;
        let Some(s) = stream(vm, id) else { return };
        if s.done {
            return;
        }
        s.done = true;
        for half in [&mut s.req, &mut s.resp] {
            half.headers_live = false;
            half.body_live = false;
        }
        !failed && !s.bypass && s.created
    };
    if !call {
        return;
    }
    if let Some(s) = stream(vm, id) {
        s.access_log = true;
    }
    let _ = vm.call("proxy_on_log", Some(id), Some(id), &[id as i32]);
    if let Some(s) = stream(vm, id) {
        s.access_log = false;
    }
    drain(vm);
    let _ = vm.call("proxy_on_done", Some(id), Some(id), &[id as i32]);
    let _ = vm.call("proxy_on_delete", Some(id), Some(id), &[id as i32]);
    if let Some(s) = stream(vm, id) {
        s.deleted = true;
    }
    vm.data_mut().after.retain(|a| match a {
        AfterCall::Continue { stream, .. }
        | AfterCall::LocalReply { stream, .. }
        | AfterCall::Reset { stream } => *stream != id,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_statuses_by_abi() {
        use HeaderOutcome::*;
        let v1 = AbiVersion::V0_2_1;
        let v100 = AbiVersion::V0_2_100;
        assert_eq!(header_outcome(v1, false, 0), Continue);
        assert_eq!(header_outcome(v1, false, 1), StopAll);
        assert_eq!(header_outcome(v1, true, 1), StopIteration);
        assert_eq!(header_outcome(v1, true, 4), StopAll);
        assert_eq!(header_outcome(v100, false, 1), StopIteration);
        assert_eq!(header_outcome(v100, false, 2), Continue);
        assert_eq!(header_outcome(v100, false, 3), StopAll);
        assert_eq!(header_outcome(v100, false, 4), StopAll);
    }
}
