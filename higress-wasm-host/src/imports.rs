//! The `env` host calls: proxy-wasm ABI 0.2.x as Envoy's cpp-host offers
//! them, and the Higress ones when the host is in Higress mode. Each call
//! records its name for the callback's work record, and answers a
//! proxy-wasm status code.

use crate::memory::{self, return_bytes};
use crate::shared::MetricType;
use crate::state::{
    deserialize_pairs, serialize_pairs, AfterCall, Dir, HeaderMap, HostState, Phase, Status,
};
use crate::types::{
    Callout, CalloutKind, CalloutState, HeaderValue, LocalResponse, LogLevel, Properties, RedisInit,
};
use std::time::Duration;
use wasmtime::{Caller, Linker};

type C<'a> = Caller<'a, HostState>;
type R = wasmtime::Result<i32>;

/// Records the call; traps with Envoy's `restricted_callback` when called
/// while `_initialize` / `_start` runs (only logging and WASI are allowed).
fn enter(caller: &mut C<'_>, name: &'static str) -> wasmtime::Result<()> {
    let data = caller.data_mut();
    data.hostcalls.push(name);
    if data.phase == Phase::Initialize && name != "proxy_log" {
        return Err(wasmtime::Error::msg("restricted_callback"));
    }
    Ok(())
}

fn code(r: Result<(), Status>) -> i32 {
    match r {
        Ok(()) => Status::Ok.code(),
        Err(s) => s.code(),
    }
}

fn pairs_to_public(bytes: &[u8]) -> Option<Vec<(String, HeaderValue)>> {
    Some(
        deserialize_pairs(bytes)?
            .into_iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(&n).to_ascii_lowercase(),
                    HeaderValue::from(v),
                )
            })
            .collect(),
    )
}

// ----- header maps ----------------------------------------------------------------------------

/// The header map `map_type` of the effective context, if reachable now.
fn map_mut(h: &mut HostState, map_type: i32, write: bool) -> Result<&mut HeaderMap, Status> {
    if map_type == 4 || map_type == 5 {
        let reply = h.grpc_reply.as_mut().ok_or(Status::BadArgument)?;
        return Ok(if map_type == 4 {
            &mut reply.headers
        } else {
            &mut reply.trailers
        });
    }
    if map_type == 6 || map_type == 7 {
        let reply = h.call_reply.as_mut().ok_or(Status::BadArgument)?;
        return Ok(if map_type == 6 {
            &mut reply.headers
        } else {
            &mut reply.trailers
        });
    }
    let s = h.effective_stream().ok_or(Status::BadArgument)?;
    let access_log = s.access_log;
    let (half, trailers) = match map_type {
        0 => (&mut s.req, false),
        1 => (&mut s.req, true),
        2 => (&mut s.resp, false),
        3 => (&mut s.resp, true),
        _ => return Err(Status::BadArgument),
    };
    if trailers {
        return half.trailers.as_mut().ok_or(Status::BadArgument);
    }
    if !half.started || !(half.headers_live || (access_log && !write)) {
        return Err(Status::BadArgument);
    }
    Ok(&mut half.headers)
}

fn get_header_map_value(mut c: C<'_>, t: i32, kp: i32, ks: i32, pp: i32, sp: i32) -> R {
    enter(&mut c, "proxy_get_header_map_value")?;
    let Ok(key) = memory::read_str(&mut c, kp, ks) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let value = match map_mut(c.data_mut(), t, false) {
        Ok(m) => m.get(&key).map(<[u8]>::to_vec),
        Err(s) => return Ok(s.code()),
    };
    let Some(value) = value else {
        return Ok(Status::NotFound.code());
    };
    Ok(code(return_bytes(&mut c, &value, pp, sp)))
}

fn modify_header(
    mut c: C<'_>,
    name: &'static str,
    t: i32,
    kp: i32,
    ks: i32,
    value: Option<(i32, i32)>,
) -> R {
    enter(&mut c, name)?;
    let Ok(key) = memory::read_str(&mut c, kp, ks) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let value = match value {
        Some((vp, vs)) => match memory::read(&mut c, vp, vs) {
            Ok(v) => Some(v),
            Err(s) => return Ok(s.code()),
        },
        None => None,
    };
    let map = match map_mut(c.data_mut(), t, true) {
        Ok(m) => m,
        Err(s) => return Ok(s.code()),
    };
    match (name, value) {
        ("proxy_add_header_map_value", Some(v)) => map.add(&key, &v),
        ("proxy_replace_header_map_value", Some(v)) => map.set(&key, &v),
        _ => map.remove(&key),
    }
    Ok(Status::Ok.code())
}

fn get_header_map_pairs(mut c: C<'_>, t: i32, pp: i32, sp: i32) -> R {
    enter(&mut c, "proxy_get_header_map_pairs")?;
    let bytes = match map_mut(c.data_mut(), t, false) {
        Ok(m) => m.serialize(),
        Err(s) => return Ok(s.code()),
    };
    Ok(code(return_bytes(&mut c, &bytes, pp, sp)))
}

fn set_header_map_pairs(mut c: C<'_>, t: i32, p: i32, s: i32) -> R {
    enter(&mut c, "proxy_set_header_map_pairs")?;
    let Ok(bytes) = memory::read(&mut c, p, s) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let Some(new) = HeaderMap::deserialize(&bytes) else {
        return Ok(Status::BadArgument.code());
    };
    match map_mut(c.data_mut(), t, true) {
        Ok(m) => {
            *m = new;
            Ok(Status::Ok.code())
        }
        Err(s) => Ok(s.code()),
    }
}

fn get_header_map_size(mut c: C<'_>, t: i32, sp: i32) -> R {
    enter(&mut c, "proxy_get_header_map_size")?;
    let size = match map_mut(c.data_mut(), t, false) {
        Ok(m) => m.serialize().len(),
        Err(s) => return Ok(s.code()),
    };
    Ok(code(memory::write_u32(&mut c, sp, size as u32)))
}

// ----- buffers ----------------------------------------------------------------------------------

fn buffer(h: &mut HostState, t: i32) -> Result<Vec<u8>, Status> {
    match t {
        0 | 1 => {
            let s = h.effective_stream().ok_or(Status::BadArgument)?;
            let half = if t == 0 { &s.req } else { &s.resp };
            if !half.body_live {
                return Err(Status::BadArgument);
            }
            Ok(half.body.clone())
        }
        4 => Ok(h
            .call_reply
            .as_ref()
            .ok_or(Status::BadArgument)?
            .body
            .clone()),
        5 => Ok(h
            .grpc_reply
            .as_ref()
            .ok_or(Status::BadArgument)?
            .body
            .clone()),
        6 if h.vm_starting => Ok(h.settings.vm_configuration.clone()),
        7 if h.configuring => Ok(h.plugin_config.clone()),
        8 => h.foreign_arg.clone().ok_or(Status::BadArgument),
        9 if h.higress() => h.redis_reply.clone().ok_or(Status::BadArgument),
        _ => Err(Status::BadArgument),
    }
}

fn get_buffer_status(mut c: C<'_>, t: i32, lp: i32, fp: i32) -> R {
    enter(&mut c, "proxy_get_buffer_status")?;
    let len = match buffer(c.data_mut(), t) {
        Ok(b) => b.len(),
        Err(s) => return Ok(s.code()),
    };
    let r =
        memory::write_u32(&mut c, lp, len as u32).and_then(|_| memory::write_u32(&mut c, fp, 0));
    Ok(code(r))
}

fn get_buffer_bytes(mut c: C<'_>, t: i32, start: i32, max: i32, pp: i32, sp: i32) -> R {
    enter(&mut c, "proxy_get_buffer_bytes")?;
    let data = match buffer(c.data_mut(), t) {
        Ok(b) => b,
        Err(s) => return Ok(s.code()),
    };
    let start = usize::try_from(start as u32).unwrap_or(usize::MAX);
    let max = usize::try_from(max as u32).unwrap_or(usize::MAX);
    let slice = if start >= data.len() {
        &[][..]
    } else {
        let end = start.saturating_add(max).min(data.len());
        data.get(start..end).unwrap_or(&[])
    };
    if start > data.len() {
        return Ok(Status::BadArgument.code());
    }
    Ok(code(return_bytes(&mut c, slice, pp, sp)))
}

/// Envoy's `copyFrom` semantics: start 0 replaces the first `size` bytes,
/// start at or past the end appends, anything else is `BadArgument`.
fn set_buffer_bytes(mut c: C<'_>, t: i32, start: i32, size: i32, dp: i32, ds: i32) -> R {
    enter(&mut c, "proxy_set_buffer_bytes")?;
    let Ok(data) = memory::read(&mut c, dp, ds) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let Some(s) = c.data_mut().effective_stream() else {
        return Ok(Status::BadArgument.code());
    };
    let half = match t {
        0 => &mut s.req,
        1 => &mut s.resp,
        _ => return Ok(Status::BadArgument.code()),
    };
    if !half.body_live {
        return Ok(Status::BadArgument.code());
    }
    let start = usize::try_from(start as u32).unwrap_or(usize::MAX);
    let size = usize::try_from(size as u32).unwrap_or(usize::MAX);
    if start == 0 {
        let drop = size.min(half.body.len());
        half.body.drain(..drop);
        let mut new = data;
        new.extend_from_slice(&half.body);
        half.body = new;
    } else if start >= half.body.len() {
        half.body.extend_from_slice(&data);
    } else {
        return Ok(Status::BadArgument.code());
    }
    Ok(Status::Ok.code())
}

// ----- properties, log, status -------------------------------------------------------------------

fn split_path(bytes: &[u8]) -> Vec<String> {
    let mut parts: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    if parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    parts
}

fn get_property(mut c: C<'_>, p: i32, s: i32, pp: i32, sp: i32) -> R {
    enter(&mut c, "proxy_get_property")?;
    let Ok(raw) = memory::read(&mut c, p, s) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let path = split_path(&raw);
    let h = c.data();
    let stream = h.streams.get(&h.effective);
    let value = h.property(stream, &path);
    match value {
        Some(v) => Ok(code(return_bytes(&mut c, &v, pp, sp))),
        None => Ok(Status::NotFound.code()),
    }
}

fn set_property(mut c: C<'_>, p: i32, s: i32, vp: i32, vs: i32) -> R {
    enter(&mut c, "proxy_set_property")?;
    let (Ok(path), Ok(value)) = (memory::read(&mut c, p, s), memory::read(&mut c, vp, vs)) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let path = split_path(&path).join("\0").into_bytes();
    match c.data_mut().effective_stream() {
        Some(stream) => {
            stream.properties.insert(path, value);
            Ok(Status::Ok.code())
        }
        None => Ok(Status::NotFound.code()),
    }
}

fn log(mut c: C<'_>, level: i32, p: i32, s: i32) -> R {
    enter(&mut c, "proxy_log")?;
    let Ok(message) = memory::read_str(&mut c, p, s) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let Some(level) = LogLevel::from_raw(level as u32) else {
        return Ok(Status::BadArgument.code());
    };
    c.data_mut().log(level, message);
    Ok(Status::Ok.code())
}

// ----- stream control ---------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)] // the ABI's signature
fn send_local_response(
    mut c: C<'_>,
    status: i32,
    dp: i32,
    ds: i32,
    bp: i32,
    bs: i32,
    hp: i32,
    hs: i32,
    grpc: i32,
) -> R {
    enter(&mut c, "proxy_send_local_response")?;
    let (Ok(details), Ok(body), Ok(headers)) = (
        memory::read_str(&mut c, dp, ds),
        memory::read(&mut c, bp, bs),
        memory::read(&mut c, hp, hs),
    ) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let Some(headers) = pairs_to_public(&headers) else {
        return Ok(Status::BadArgument.code());
    };
    let h = c.data_mut();
    let stream = h.effective;
    if !h.streams.contains_key(&stream) {
        return Ok(Status::NotFound.code());
    }
    h.after.push_back(AfterCall::LocalReply {
        stream,
        reply: LocalResponse {
            status: status as u32,
            details,
            headers,
            body,
            grpc_status: u32::try_from(grpc).ok(),
        },
    });
    Ok(Status::Ok.code())
}

fn continue_or_close(mut c: C<'_>, name: &'static str, stream_type: i32) -> R {
    enter(&mut c, name)?;
    let h = c.data_mut();
    let stream = h.effective;
    if !h.streams.contains_key(&stream) {
        return Ok(Status::NotFound.code());
    }
    let dir = match stream_type {
        0 => Dir::Request,
        1 => Dir::Response,
        _ => return Ok(Status::BadArgument.code()),
    };
    h.after.push_back(if name == "proxy_continue_stream" {
        AfterCall::Continue { stream, dir }
    } else {
        AfterCall::Reset { stream }
    });
    Ok(Status::Ok.code())
}

// ----- callouts ---------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn http_call(
    mut c: C<'_>,
    up: i32,
    us: i32,
    hp: i32,
    hs: i32,
    bp: i32,
    bs: i32,
    tp: i32,
    ts: i32,
    timeout: i32,
    token_ptr: i32,
) -> R {
    enter(&mut c, "proxy_http_call")?;
    let (Ok(upstream), Ok(headers), Ok(body), Ok(trailers)) = (
        memory::read_str(&mut c, up, us),
        memory::read(&mut c, hp, hs),
        memory::read(&mut c, bp, bs),
        memory::read(&mut c, tp, ts),
    ) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let (Some(headers), Some(trailers)) = (pairs_to_public(&headers), pairs_to_public(&trailers))
    else {
        return Ok(Status::BadArgument.code());
    };
    let has = |n: &str| headers.iter().any(|(k, _)| k == n);
    if !c.data().cluster_known(&upstream) || !has(":path") || !has(":method") || !has(":authority")
    {
        return Ok(Status::BadArgument.code());
    }
    let token = c.data_mut().token(0);
    if memory::write_u32(&mut c, token_ptr, token).is_err() {
        return Ok(Status::InvalidMemoryAccess.code());
    }
    let h = c.data_mut();
    let context_id = h.effective;
    let deadline = h
        .now_nanos
        .saturating_add(u64::from(timeout as u32).saturating_mul(1_000_000));
    h.deadlines.insert(token, deadline);
    h.callouts.push(Callout {
        token,
        context_id,
        kind: CalloutKind::Http {
            upstream,
            headers,
            body,
            trailers,
            timeout: Duration::from_millis(u64::from(timeout as u32)),
        },
        state: CalloutState::Pending,
    });
    Ok(Status::Ok.code())
}

/// A gRPC callout's upstream, service, method and metadata, as
/// `proxy_grpc_call` and `proxy_grpc_stream` pass them.
type GrpcTarget = (String, String, String, Vec<(String, HeaderValue)>);

fn grpc_target(c: &mut C<'_>, args: [i32; 8]) -> Result<GrpcTarget, Status> {
    let [up, us, sp, ss, mp, ms, hp, hs] = args;
    let (Ok(upstream), Ok(service), Ok(method), Ok(metadata)) = (
        memory::read(c, up, us),
        memory::read_str(c, sp, ss),
        memory::read_str(c, mp, ms),
        memory::read(c, hp, hs),
    ) else {
        return Err(Status::InvalidMemoryAccess);
    };
    let metadata = pairs_to_public(&metadata).ok_or(Status::BadArgument)?;
    // The upstream is a cluster name (or a serialized `GrpcService`, which
    // names no cluster this host knows): unknown -> BadArgument, as Envoy.
    let upstream = String::from_utf8_lossy(&upstream).into_owned();
    if !c.data().cluster_known(&upstream) {
        return Err(Status::BadArgument);
    }
    Ok((upstream, service, method, metadata))
}

fn push_grpc(c: &mut C<'_>, tag: u32, token_ptr: i32, kind: CalloutKind) -> R {
    let token = c.data_mut().token(tag);
    if memory::write_u32(c, token_ptr, token).is_err() {
        return Ok(Status::InvalidMemoryAccess.code());
    }
    let h = c.data_mut();
    let context_id = h.effective;
    h.callouts.push(Callout {
        token,
        context_id,
        kind,
        state: CalloutState::Pending,
    });
    Ok(Status::Ok.code())
}

#[allow(clippy::too_many_arguments)]
fn grpc_call(
    mut c: C<'_>,
    up: i32,
    us: i32,
    sp: i32,
    ss: i32,
    mp: i32,
    ms: i32,
    hp: i32,
    hs: i32,
    bp: i32,
    bs: i32,
    timeout: i32,
    token_ptr: i32,
) -> R {
    enter(&mut c, "proxy_grpc_call")?;
    let (upstream, service, method, initial_metadata) =
        match grpc_target(&mut c, [up, us, sp, ss, mp, ms, hp, hs]) {
            Ok(t) => t,
            Err(s) => return Ok(s.code()),
        };
    let Ok(message) = memory::read(&mut c, bp, bs) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let kind = CalloutKind::Grpc {
        upstream,
        service,
        method,
        initial_metadata,
        message,
        timeout: Duration::from_millis(u64::from(timeout as u32)),
    };
    push_grpc(&mut c, 1, token_ptr, kind)
}

#[allow(clippy::too_many_arguments)]
fn grpc_stream(
    mut c: C<'_>,
    up: i32,
    us: i32,
    sp: i32,
    ss: i32,
    mp: i32,
    ms: i32,
    hp: i32,
    hs: i32,
    token_ptr: i32,
) -> R {
    enter(&mut c, "proxy_grpc_stream")?;
    let (upstream, service, method, initial_metadata) =
        match grpc_target(&mut c, [up, us, sp, ss, mp, ms, hp, hs]) {
            Ok(t) => t,
            Err(s) => return Ok(s.code()),
        };
    let kind = CalloutKind::GrpcStream {
        upstream,
        service,
        method,
        initial_metadata,
        sent: Vec::new(),
        half_closed: false,
    };
    push_grpc(&mut c, 2, token_ptr, kind)
}

fn grpc_send(mut c: C<'_>, token: i32, mp: i32, ms: i32, end: i32) -> R {
    enter(&mut c, "proxy_grpc_send")?;
    let Ok(message) = memory::read(&mut c, mp, ms) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let token = token as u32;
    let h = c.data_mut();
    let Some(callout) = h.callouts.iter_mut().find(|c| c.token == token) else {
        return Ok(Status::NotFound.code());
    };
    let status = match (&mut callout.kind, callout.state) {
        (
            CalloutKind::GrpcStream {
                sent, half_closed, ..
            },
            CalloutState::Pending,
        ) => {
            sent.push(message);
            *half_closed |= end != 0;
            Status::Ok
        }
        (CalloutKind::GrpcStream { .. }, _) => Status::NotFound,
        _ => Status::BadArgument,
    };
    Ok(status.code())
}

/// `proxy_grpc_cancel` / `proxy_grpc_close`: a cancel ends the call or
/// stream (nothing more is delivered); a close half-closes a stream
/// (replies still come, as Envoy's `closeStream`) and ends a unary call.
fn grpc_end(mut c: C<'_>, name: &'static str, token: i32, to: CalloutState) -> R {
    enter(&mut c, name)?;
    let token = token as u32;
    let h = c.data_mut();
    let Some(callout) = h
        .callouts
        .iter_mut()
        .find(|c| c.token == token && c.state == CalloutState::Pending)
    else {
        return Ok(Status::NotFound.code());
    };
    match &mut callout.kind {
        CalloutKind::GrpcStream { half_closed, .. } if to == CalloutState::Closed => {
            *half_closed = true;
        }
        CalloutKind::Grpc { .. } | CalloutKind::GrpcStream { .. } => callout.state = to,
        _ => return Ok(Status::NotFound.code()),
    }
    Ok(Status::Ok.code())
}

#[allow(clippy::too_many_arguments)]
fn redis_init(
    mut c: C<'_>,
    sp: i32,
    ss: i32,
    up: i32,
    us: i32,
    pp: i32,
    ps: i32,
    timeout: i32,
) -> R {
    enter(&mut c, "proxy_redis_init")?;
    let (Ok(service), Ok(username), Ok(password)) = (
        memory::read_str(&mut c, sp, ss),
        memory::read_str(&mut c, up, us),
        memory::read_str(&mut c, pp, ps),
    ) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let cluster = service.split('?').next().unwrap_or_default().to_owned();
    let h = c.data_mut();
    if !h.cluster_known(&cluster) {
        return Ok(Status::BadArgument.code());
    }
    h.redis_conns.close(&cluster);
    h.redis_inits.push(RedisInit {
        service,
        username,
        password,
        timeout: Duration::from_millis(u64::from(timeout as u32)),
    });
    Ok(Status::Ok.code())
}

fn redis_call(mut c: C<'_>, sp: i32, ss: i32, qp: i32, qs: i32, token_ptr: i32) -> R {
    enter(&mut c, "proxy_redis_call")?;
    let (Ok(service), Ok(query)) = (
        memory::read_str(&mut c, sp, ss),
        memory::read(&mut c, qp, qs),
    ) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let cluster = service.split('?').next().unwrap_or_default().to_owned();
    let cluster = cluster.as_str();
    if !c.data().cluster_known(cluster) {
        return Ok(Status::BadArgument.code());
    }
    let token = c.data_mut().token(3);
    if memory::write_u32(&mut c, token_ptr, token).is_err() {
        return Ok(Status::InvalidMemoryAccess.code());
    }
    let h = c.data_mut();
    let context_id = h.effective;
    // The client's op timeout, from the latest init of this cluster.
    let timeout = h
        .redis_inits
        .iter()
        .rev()
        .find(|i| i.service.split('?').next() == Some(cluster))
        .map(|i| i.timeout)
        .filter(|t| !t.is_zero());
    if let Some(t) = timeout {
        let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        h.deadlines.insert(token, h.now_nanos.saturating_add(nanos));
    }
    h.callouts.push(Callout {
        token,
        context_id,
        kind: CalloutKind::Redis { service, query },
        state: CalloutState::Pending,
    });
    Ok(Status::Ok.code())
}

// ----- shared data, queues, metrics ---------------------------------------------------------------

fn get_shared_data(mut c: C<'_>, kp: i32, ks: i32, pp: i32, sp: i32, casp: i32) -> R {
    enter(&mut c, "proxy_get_shared_data")?;
    let Ok(key) = memory::read_str(&mut c, kp, ks) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let h = c.data();
    match h.shared.get_data(&h.settings.vm_id, &key) {
        Ok((value, cas)) => {
            let r = return_bytes(&mut c, &value, pp, sp)
                .and_then(|_| memory::write_u32(&mut c, casp, cas));
            Ok(code(r))
        }
        Err(s) => Ok(s.code()),
    }
}

fn set_shared_data(mut c: C<'_>, kp: i32, ks: i32, vp: i32, vs: i32, cas: i32) -> R {
    enter(&mut c, "proxy_set_shared_data")?;
    let (Ok(key), Ok(value)) = (
        memory::read_str(&mut c, kp, ks),
        memory::read(&mut c, vp, vs),
    ) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let h = c.data();
    Ok(code(h.shared.set_data(
        &h.settings.vm_id,
        &key,
        value,
        cas as u32,
    )))
}

fn register_shared_queue(mut c: C<'_>, np: i32, ns: i32, idp: i32) -> R {
    enter(&mut c, "proxy_register_shared_queue")?;
    let Ok(name) = memory::read_str(&mut c, np, ns) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let h = c.data();
    let id = h
        .shared
        .register_queue(&h.settings.vm_id, &name, (h.host_uid, h.root));
    Ok(code(memory::write_u32(&mut c, idp, id)))
}

fn resolve_shared_queue(mut c: C<'_>, vp: i32, vs: i32, np: i32, ns: i32, idp: i32) -> R {
    enter(&mut c, "proxy_resolve_shared_queue")?;
    let (Ok(vm_id), Ok(name)) = (
        memory::read_str(&mut c, vp, vs),
        memory::read_str(&mut c, np, ns),
    ) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    match c.data().shared.resolve_queue(&vm_id, &name) {
        Ok(id) => Ok(code(memory::write_u32(&mut c, idp, id))),
        Err(s) => Ok(s.code()),
    }
}

fn enqueue_shared_queue(mut c: C<'_>, id: i32, p: i32, s: i32) -> R {
    enter(&mut c, "proxy_enqueue_shared_queue")?;
    let Ok(data) = memory::read(&mut c, p, s) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    Ok(code(c.data().shared.enqueue(id as u32, data)))
}

fn dequeue_shared_queue(mut c: C<'_>, id: i32, pp: i32, sp: i32) -> R {
    enter(&mut c, "proxy_dequeue_shared_queue")?;
    match c.data().shared.dequeue(id as u32) {
        Ok(data) => Ok(code(return_bytes(&mut c, &data, pp, sp))),
        Err(s) => Ok(s.code()),
    }
}

fn define_metric(mut c: C<'_>, ty: i32, np: i32, ns: i32, idp: i32) -> R {
    enter(&mut c, "proxy_define_metric")?;
    let Ok(name) = memory::read_str(&mut c, np, ns) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let Some(ty) = MetricType::from_raw(ty) else {
        return Ok(Status::BadArgument.code());
    };
    let id = c.data().shared.define_metric(ty, &name);
    Ok(code(memory::write_u32(&mut c, idp, id)))
}

// ----- foreign functions, Higress extras ------------------------------------------------------

fn call_foreign_function(mut c: C<'_>, np: i32, ns: i32, ap: i32, as_: i32, pp: i32, sp: i32) -> R {
    enter(&mut c, "proxy_call_foreign_function")?;
    let (Ok(name), Ok(arg)) = (
        memory::read_str(&mut c, np, ns),
        memory::read(&mut c, ap, as_),
    ) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    let h = c.data();
    let result = if let Some(f) = h.settings.foreign_functions.get(&name) {
        f(&arg)
    } else if name == "get_log_level" && h.higress() {
        Some(h.settings.log_level.raw().to_le_bytes().to_vec())
    } else {
        return Ok(Status::NotFound.code());
    };
    let bytes = result.unwrap_or_default();
    Ok(code(return_bytes(&mut c, &bytes, pp, sp)))
}

fn get_upstream_hosts(mut c: C<'_>, pp: i32, sp: i32) -> R {
    enter(&mut c, "proxy_get_upstream_hosts")?;
    // As Higress: no request (the root context) or no hosts answers `Ok`
    // with nothing.
    let h = c.data_mut();
    let hosts = if h.effective_stream().is_some() {
        h.settings.upstream_hosts.clone()
    } else {
        Vec::new()
    };
    let bytes = if hosts.is_empty() {
        Vec::new()
    } else {
        serialize_pairs(hosts.iter().map(|(a, m)| (a.as_bytes(), m.as_bytes())))
    };
    Ok(code(return_bytes(&mut c, &bytes, pp, sp)))
}

fn set_upstream_override_host(mut c: C<'_>, p: i32, s: i32) -> R {
    enter(&mut c, "proxy_set_upstream_override_host")?;
    let Ok(addr) = memory::read_str(&mut c, p, s) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    // Higress answers `Ok` whatever the moment; the override takes effect
    // (and is recorded here) only while the request headers are held.
    if let Some(stream) = c.data_mut().effective_stream() {
        if stream.req.headers_sent.is_none() {
            stream.upstream_override = Some(addr);
        }
    }
    Ok(Status::Ok.code())
}

fn inject_encoded_data(mut c: C<'_>, p: i32, s: i32, end: i32) -> R {
    enter(&mut c, "proxy_inject_encoded_data_to_filter_chain")?;
    let Ok(data) = memory::read(&mut c, p, s) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    match c.data_mut().effective_stream() {
        Some(stream) if stream.resp.started => {
            stream.resp.sent_body.extend_from_slice(&data);
            if end != 0 {
                stream.resp.sent_eos = true;
            }
            stream.injected.push((data, end != 0));
            Ok(Status::Ok.code())
        }
        _ => Ok(Status::BadArgument.code()),
    }
}

/// Registers every `env` host call the mode offers.
pub(crate) fn define(linker: &mut Linker<HostState>, mode: Properties) -> wasmtime::Result<()> {
    let l = linker;
    l.func_wrap("env", "proxy_log", log)?;
    l.func_wrap("env", "proxy_get_log_level", |mut c: C<'_>, p: i32| -> R {
        enter(&mut c, "proxy_get_log_level")?;
        let level = c.data().settings.log_level.raw();
        Ok(code(memory::write_u32(&mut c, p, level)))
    })?;
    l.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: C<'_>, cp: i32, pp: i32, sp: i32| -> R {
            enter(&mut c, "proxy_get_status")?;
            let (status, msg) = c.data().status.clone();
            let r = memory::write_u32(&mut c, cp, status)
                .and_then(|_| return_bytes(&mut c, &msg, pp, sp));
            Ok(code(r))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: C<'_>, id: i32| -> R {
            enter(&mut c, "proxy_set_effective_context")?;
            let h = c.data_mut();
            let id = id as u32;
            let live =
                h.contexts.contains_key(&id) && h.streams.get(&id).is_none_or(|s| !s.deleted);
            if !live {
                return Ok(Status::BadArgument.code());
            }
            h.effective = id;
            Ok(Status::Ok.code())
        },
    )?;
    l.func_wrap("env", "proxy_done", |mut c: C<'_>| -> R {
        enter(&mut c, "proxy_done")?;
        Ok(Status::Ok.code())
    })?;
    l.func_wrap("env", "proxy_get_property", get_property)?;
    l.func_wrap("env", "proxy_set_property", set_property)?;
    l.func_wrap("env", "proxy_send_local_response", send_local_response)?;
    l.func_wrap("env", "proxy_continue_stream", |c: C<'_>, t: i32| {
        continue_or_close(c, "proxy_continue_stream", t)
    })?;
    l.func_wrap("env", "proxy_close_stream", |c: C<'_>, t: i32| {
        continue_or_close(c, "proxy_close_stream", t)
    })?;
    l.func_wrap("env", "proxy_get_header_map_value", get_header_map_value)?;
    l.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |c: C<'_>, t: i32, kp: i32, ks: i32, vp: i32, vs: i32| {
            modify_header(c, "proxy_add_header_map_value", t, kp, ks, Some((vp, vs)))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |c: C<'_>, t: i32, kp: i32, ks: i32, vp: i32, vs: i32| {
            modify_header(
                c,
                "proxy_replace_header_map_value",
                t,
                kp,
                ks,
                Some((vp, vs)),
            )
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |c: C<'_>, t: i32, kp: i32, ks: i32| {
            modify_header(c, "proxy_remove_header_map_value", t, kp, ks, None)
        },
    )?;
    l.func_wrap("env", "proxy_get_header_map_pairs", get_header_map_pairs)?;
    l.func_wrap("env", "proxy_set_header_map_pairs", set_header_map_pairs)?;
    l.func_wrap("env", "proxy_get_header_map_size", get_header_map_size)?;
    l.func_wrap("env", "proxy_get_buffer_status", get_buffer_status)?;
    l.func_wrap("env", "proxy_get_buffer_bytes", get_buffer_bytes)?;
    l.func_wrap("env", "proxy_set_buffer_bytes", set_buffer_bytes)?;
    l.func_wrap("env", "proxy_http_call", http_call)?;
    l.func_wrap("env", "proxy_grpc_call", grpc_call)?;
    l.func_wrap("env", "proxy_grpc_stream", grpc_stream)?;
    l.func_wrap("env", "proxy_grpc_send", grpc_send)?;
    l.func_wrap("env", "proxy_grpc_cancel", |c: C<'_>, t: i32| {
        grpc_end(c, "proxy_grpc_cancel", t, CalloutState::Cancelled)
    })?;
    l.func_wrap("env", "proxy_grpc_close", |c: C<'_>, t: i32| {
        grpc_end(c, "proxy_grpc_close", t, CalloutState::Closed)
    })?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, ms: i32| -> R {
            enter(&mut c, "proxy_set_tick_period_milliseconds")?;
            let h = c.data_mut();
            h.tick_period_ms = ms as u32;
            h.next_tick_nanos =
                (ms != 0).then(|| h.now_nanos.saturating_add(u64::from(ms as u32) * 1_000_000));
            Ok(Status::Ok.code())
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, p: i32| -> R {
            enter(&mut c, "proxy_get_current_time_nanoseconds")?;
            let now = c.data().now_nanos;
            Ok(code(memory::write_u64(&mut c, p, now)))
        },
    )?;
    l.func_wrap("env", "proxy_define_metric", define_metric)?;
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: C<'_>, id: i32, by: i64| -> R {
            enter(&mut c, "proxy_increment_metric")?;
            Ok(code(c.data().shared.increment_metric(id as u32, by)))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: C<'_>, id: i32, v: i64| -> R {
            enter(&mut c, "proxy_record_metric")?;
            Ok(code(c.data().shared.record_metric(id as u32, v as u64)))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, p: i32| -> R {
            enter(&mut c, "proxy_get_metric")?;
            match c.data().shared.get_metric(id as u32) {
                Ok(v) => Ok(code(memory::write_u64(&mut c, p, v))),
                Err(s) => Ok(s.code()),
            }
        },
    )?;
    l.func_wrap("env", "proxy_get_shared_data", get_shared_data)?;
    l.func_wrap("env", "proxy_set_shared_data", set_shared_data)?;
    l.func_wrap("env", "proxy_register_shared_queue", register_shared_queue)?;
    l.func_wrap("env", "proxy_resolve_shared_queue", resolve_shared_queue)?;
    l.func_wrap("env", "proxy_enqueue_shared_queue", enqueue_shared_queue)?;
    l.func_wrap("env", "proxy_dequeue_shared_queue", dequeue_shared_queue)?;
    l.func_wrap("env", "proxy_call_foreign_function", call_foreign_function)?;
    if mode == Properties::Higress {
        l.func_wrap("env", "proxy_redis_init", redis_init)?;
        l.func_wrap("env", "proxy_redis_call", redis_call)?;
        l.func_wrap("env", "proxy_get_upstream_hosts", get_upstream_hosts)?;
        l.func_wrap(
            "env",
            "proxy_set_upstream_override_host",
            set_upstream_override_host,
        )?;
        l.func_wrap(
            "env",
            "proxy_inject_encoded_data_to_filter_chain",
            inject_encoded_data,
        )?;
    }
    Ok(())
}
