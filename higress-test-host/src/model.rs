//! The host model: what Envoy holds for a plugin and its streams, and what
//! each host call does to it. Safe Rust, no pointers: `abi` decodes the
//! arguments and calls in here; the driver delivers the callbacks.
//!
//! References are to Envoy 1.40 `source/extensions/common/wasm/context.cc`
//! (`Context::*`) and proxy-wasm-cpp-host `src/exports.cc`.

use super::redis_io::{self, RedisClientModel};
use super::types::{
    Callout, CalloutKind, CalloutState, LocalResponse, LogLevel, LogRecord, MetricValue,
    Properties, RedisInit,
};
use higress_wrapper::HeaderValue;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// The proxy-wasm statuses the model returns. Only discriminants that
/// proxy-wasm 0.2.5's own `Status` enum knows are used, since its hostcall
/// wrappers receive them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
}

pub(super) type HostResult<T> = Result<T, Status>;

/// A foreign function the test registered.
pub(super) type ForeignFn = Rc<dyn Fn(&[u8]) -> Option<Vec<u8>>>;

/// One direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    Request,
    Response,
}

// ----- header maps ------------------------------------------------------------

/// Envoy's `HeaderMapImpl`: an ordered multimap, names lowercased
/// (`LowerCaseString`), pseudo-headers kept before the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HeaderMap(Vec<(String, Vec<u8>)>);

impl HeaderMap {
    pub(super) fn from_pairs<N: AsRef<str>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> HeaderMap {
        let mut map = HeaderMap::default();
        for (name, value) in pairs {
            map.add(name.as_ref(), value.as_ref());
        }
        map
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The first value (Envoy's `getHeaderMapValue` returns `entry[0]`).
    pub(super) fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub(super) fn get_all(&self, name: &str) -> Vec<HeaderValue> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| HeaderValue::from(v.clone()))
            .collect()
    }

    /// `addCopy`: appends; a pseudo-header goes after the last pseudo-header.
    pub(super) fn add(&mut self, name: &str, value: &[u8]) {
        let name = name.to_ascii_lowercase();
        if name.starts_with(':') {
            let at = self
                .0
                .iter()
                .position(|(n, _)| !n.starts_with(':'))
                .unwrap_or(self.0.len());
            self.0.insert(at, (name, value.to_vec()));
        } else {
            self.0.push((name, value.to_vec()));
        }
    }

    pub(super) fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// `setCopy`: removes every value, then adds (Envoy's default since
    /// `http_set_copy_replace_all_headers`).
    pub(super) fn set(&mut self, name: &str, value: &[u8]) {
        self.remove(name);
        self.add(name, value);
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let pairs: Vec<(&str, &[u8])> = self
            .0
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        crate::wire::encode_map(&pairs)
    }

    pub(super) fn to_public(&self) -> Vec<(String, HeaderValue)> {
        self.0
            .iter()
            .map(|(n, v)| (n.clone(), HeaderValue::from(v.clone())))
            .collect()
    }
}

fn public_pairs(pairs: Vec<(String, Vec<u8>)>) -> Vec<(String, HeaderValue)> {
    pairs
        .into_iter()
        .map(|(n, v)| (n, HeaderValue::from(v)))
        .collect()
}

// ----- buffers --------------------------------------------------------------------

/// `proxy_get_buffer_bytes`: clamps to the buffer; an empty result writes
/// nothing (`Ok(None)`), as cpp-host does.
pub(super) fn buffer_get(buf: &[u8], start: usize, max: usize) -> HostResult<Option<Vec<u8>>> {
    if start.checked_add(max).is_none() {
        return Err(Status::BadArgument);
    }
    let Some(rest) = buf.get(start..) else {
        return Ok(None);
    };
    let take = rest.len().min(max);
    match rest.get(..take) {
        Some(bytes) if !bytes.is_empty() => Ok(Some(bytes.to_vec())),
        _ => Ok(None),
    }
}

/// Envoy's `Buffer::copyFrom`: `start == 0` drains `size` bytes then
/// prepends (so `size >= len` replaces, `size == 0` prepends); `start >= len`
/// appends; anything else is `BadArgument`.
pub(super) fn buffer_set(
    buf: &mut Vec<u8>,
    start: usize,
    size: usize,
    data: &[u8],
) -> HostResult<()> {
    if start == 0 {
        let drain = size.min(buf.len());
        buf.drain(..drain);
        buf.splice(0..0, data.iter().copied());
        Ok(())
    } else if start >= buf.len() {
        buf.extend_from_slice(data);
        Ok(())
    } else {
        Err(Status::BadArgument)
    }
}

// ----- streams ----------------------------------------------------------------------

/// One direction of a stream at this filter.
#[derive(Debug, Default)]
pub(super) struct Half {
    /// The peer sent the headers.
    pub(super) started: bool,
    /// The filter's header map (kept for inspection after it left).
    pub(super) headers: HeaderMap,
    /// The plugin may read and write the headers (Envoy's `request_headers_`
    /// is non-null): from the headers callback until they continue.
    pub(super) headers_live: bool,
    /// `Some(stop_all)` while the plugin holds the headers.
    pub(super) headers_held: Option<bool>,
    /// What the next hop received.
    pub(super) headers_sent: Option<HeaderMap>,
    /// The body data held at the filter: the current chunk, or everything
    /// buffered while the plugin pauses (cumulative).
    pub(super) body: Vec<u8>,
    /// The plugin may read and write `body`.
    pub(super) body_live: bool,
    /// The plugin returned `Pause` for the body: data accumulates.
    pub(super) buffering: bool,
    /// Data that arrived while the direction was stopped ("stop all"); the
    /// flag is end of stream.
    pub(super) held: Option<(Vec<u8>, bool)>,
    /// Trailers that arrived while stopped.
    pub(super) held_trailers: Option<HeaderMap>,
    pub(super) trailers: Option<HeaderMap>,
    pub(super) trailers_live: bool,
    pub(super) trailers_held: bool,
    pub(super) trailers_sent: Option<HeaderMap>,
    /// The peer ended the direction.
    pub(super) eos_in: bool,
    /// Body bytes the next hop received.
    pub(super) sent_body: Vec<u8>,
    /// Body bytes the plugin stopped with `StopIterationNoBuffer` (gone).
    pub(super) dropped_body: Vec<u8>,
    /// The next hop saw end of stream.
    pub(super) sent_eos: bool,
    /// `proxy_continue_stream` calls for this direction.
    pub(super) resumes: u32,
    /// Body callbacks delivered.
    pub(super) body_calls: u32,
}

impl Half {
    pub(super) fn paused(&self) -> bool {
        self.headers_held.is_some()
            || self.buffering
            || self.trailers_held
            || self.held.is_some()
            || self.held_trailers.is_some()
    }

    pub(super) fn stop_all(&self) -> bool {
        self.headers_held == Some(true)
    }

    fn check_eos(&mut self) {
        let trailers_done = self.trailers.is_none() || self.trailers_sent.is_some();
        if self.eos_in
            && self.headers_sent.is_some()
            && !self.buffering
            && self.body.is_empty()
            && self.held.is_none()
            && self.held_trailers.is_none()
            && !self.trailers_held
            && trailers_done
        {
            self.sent_eos = true;
        }
    }

    pub(super) fn forward_headers(&mut self) {
        if self.headers_sent.is_none() {
            self.headers_sent = Some(self.headers.clone());
        }
        self.headers_live = false;
        self.headers_held = None;
        self.check_eos();
    }

    pub(super) fn forward_body(&mut self) {
        let body = std::mem::take(&mut self.body);
        self.sent_body.extend_from_slice(&body);
        self.body_live = false;
        self.buffering = false;
        self.check_eos();
    }

    pub(super) fn forward_trailers(&mut self) {
        if self.trailers_sent.is_none() {
            self.trailers_sent = self.trailers.clone();
        }
        self.trailers_live = false;
        self.trailers_held = false;
        self.check_eos();
    }
}

/// Everything the host holds for one HTTP context.
#[derive(Debug, Default)]
pub(super) struct StreamModel {
    /// `proxy_on_context_create` was called.
    pub(super) created: bool,
    /// `proxy_on_delete` was called: the plugin no longer knows it.
    pub(super) deleted: bool,
    pub(super) done: bool,
    /// Inside `proxy_on_log` (the access-log phase: maps read-only).
    pub(super) access_log: bool,
    /// Test inputs, applied when request headers are sent.
    pub(super) authority: Option<String>,
    pub(super) request_id: Option<String>,
    pub(super) route_name: Option<String>,
    pub(super) cluster_name: Option<String>,
    /// Properties set on this stream, by the plugin (`proxy_set_property`,
    /// Envoy's filter state) or by the test, keyed by the serialized path
    /// (segments joined by NUL).
    pub(super) properties: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(super) req: Half,
    pub(super) resp: Half,
    /// Local responses the plugin sent, in order (the first one wins).
    pub(super) local_responses: Vec<LocalResponse>,
    /// The response the filter passes on comes from a local reply (the
    /// plugin's or the host's), not from the upstream.
    pub(super) local_reply: bool,
    /// The stream was reset (`proxy_close_stream`, or a late local reply).
    pub(super) reset: bool,
    /// The VM failed while serving it.
    pub(super) failed: bool,
    /// `response.code` / `response.code_details`.
    pub(super) response_code: Option<u32>,
    pub(super) code_details: Option<String>,
    /// Per-stream buffer limits (Higress `set_{de,en}coder_buffer_limit`).
    pub(super) decoder_limit: Option<usize>,
    pub(super) encoder_limit: Option<usize>,
    /// Higress: the host `proxy_set_upstream_override_host` chose.
    pub(super) override_host: Option<String>,
    /// Higress: data pushed with `proxy_inject_encoded_data_to_filter_chain`.
    pub(super) injected: Vec<(Vec<u8>, bool)>,
}

impl StreamModel {
    pub(super) fn half(&mut self, dir: Dir) -> &mut Half {
        match dir {
            Dir::Request => &mut self.req,
            Dir::Response => &mut self.resp,
        }
    }

    pub(super) fn half_ref(&self, dir: Dir) -> &Half {
        match dir {
            Dir::Request => &self.req,
            Dir::Response => &self.resp,
        }
    }

    /// Whether request data still reaches the plugin.
    pub(super) fn request_open(&self) -> bool {
        !self.reset && !self.failed && self.local_responses.is_empty() && !self.local_reply
    }

    /// Whether upstream response data still reaches the plugin.
    pub(super) fn upstream_response_open(&self) -> bool {
        !self.reset && !self.failed && !self.local_reply
    }

    /// The host answers a failed VM with 503 `wasm_fail_stream` (fail closed).
    pub(super) fn fail(&mut self) {
        self.failed = true;
        self.req.headers_held = None;
        self.req.buffering = false;
        self.req.held = None;
        if self.resp.headers_sent.is_none() {
            let mut headers = HeaderMap::default();
            headers.add(":status", b"503");
            self.resp.headers_sent = Some(headers);
            self.resp.sent_eos = true;
            self.response_code = Some(503);
            self.code_details = Some("wasm_fail_stream".to_owned());
        }
    }
}

// ----- the host of one plugin ----------------------------------------------------------

/// How the test configured the host (`TestHostBuilder`).
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) properties: Properties,
    pub(super) log_level: LogLevel,
    pub(super) allow_on_headers_stop_iteration: bool,
    pub(super) plugin_name: String,
    pub(super) root_id: String,
    pub(super) vm_id: String,
    pub(super) vm_configuration: Vec<u8>,
    pub(super) host_properties: BTreeMap<Vec<String>, Vec<u8>>,
    pub(super) buffer_limit: usize,
    pub(super) start_time_nanos: u64,
    pub(super) clusters: Option<BTreeSet<String>>,
    pub(super) foreign_functions: BTreeMap<String, ForeignFn>,
    /// Redis clusters whose calls go to a real server.
    pub(super) redis_servers: BTreeMap<String, SocketAddr>,
    /// Higress: what `proxy_get_upstream_hosts` answers (address, metadata JSON).
    pub(super) upstream_hosts: Vec<(String, String)>,
}

/// Which start callback runs (for the configuration buffers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Starting {
    VmStart,
    Configure,
}

/// Work Envoy defers until the running VM call returns
/// (`addAfterVmCallAction`).
#[derive(Debug)]
pub(super) enum AfterCall {
    LocalReply {
        stream: u32,
        reply: LocalResponse,
        by_plugin: bool,
    },
    Continue {
        stream: u32,
        dir: Dir,
    },
    Reset {
        stream: u32,
    },
    QueueReady {
        context: u32,
        queue: u32,
    },
}

#[derive(Debug)]
pub(super) struct Queue {
    pub(super) vm_id: String,
    pub(super) name: String,
    pub(super) owner: u32,
    pub(super) items: VecDeque<Vec<u8>>,
}

#[derive(Debug)]
pub(super) struct Metric {
    pub(super) name: String,
    pub(super) kind: u32,
    pub(super) value: MetricValue,
}

/// A callout reply the host is delivering: readable by the plugin only
/// during the callback (Envoy's root `http_call_response_` /
/// `redis_call_response_`).
#[derive(Debug)]
pub(super) enum Delivery {
    Http {
        headers: HeaderMap,
        body: Vec<u8>,
        trailers: HeaderMap,
    },
    Redis(Vec<u8>),
    /// A gRPC call's response message (buffer type 5).
    Grpc(Vec<u8>),
}

/// What the host answers a callout with.
#[derive(Debug, Clone)]
pub(super) enum Answer {
    /// An HTTP response; empty headers mean a reset (Envoy's
    /// `onHttpCallFailure`: the callback gets no headers and no body).
    Http {
        headers: HeaderMap,
        body: Vec<u8>,
        trailers: HeaderMap,
    },
    /// A Redis reply: status 0 with the raw RESP bytes, or 1
    /// (`NetworkError`) with none.
    Redis { status: u32, data: Vec<u8> },
    /// A gRPC call's outcome: status 0 with the response message, or a
    /// gRPC status code and message (no response).
    Grpc {
        status: u32,
        message: Vec<u8>,
        status_message: String,
    },
    /// One message on a gRPC stream (the stream stays open).
    GrpcStreamMessage(Vec<u8>),
    /// A gRPC stream's end: status (0 OK) and message.
    GrpcStreamClose { status: u32, status_message: String },
}

impl Answer {
    /// Envoy's local reply to a callout whose timeout expired.
    pub(super) fn http_timeout() -> Answer {
        let body = b"upstream request timeout".to_vec();
        let mut headers = HeaderMap::default();
        headers.add(":status", b"504");
        headers.add("content-length", body.len().to_string().as_bytes());
        headers.add("content-type", b"text/plain");
        Answer::Http {
            headers,
            body,
            trailers: HeaderMap::default(),
        }
    }

    /// `NetworkError`, as Envoy reports a failed or timed-out Redis call.
    pub(super) fn redis_failure() -> Answer {
        Answer::Redis {
            status: 1,
            data: Vec::new(),
        }
    }
}

/// Envoy's callout token tags (low 2 bits), as in proxy-wasm-cpp-host.
const TAG_HTTP: u32 = 0;
const TAG_GRPC_CALL: u32 = 1;
const TAG_GRPC_STREAM: u32 = 2;
const TAG_REDIS: u32 = 3;

pub(super) struct HostModel {
    pub(super) settings: Settings,
    pub(super) plugin_config: Vec<u8>,
    pub(super) starting: Option<Starting>,
    pub(super) logs: Vec<LogRecord>,
    pub(super) suppressed_logs: usize,
    pub(super) now_nanos: u64,
    pub(super) tick_period_ms: u32,
    pub(super) next_tick_nanos: Option<u64>,
    pub(super) streams: BTreeMap<u32, StreamModel>,
    pub(super) shared_data: BTreeMap<String, (Vec<u8>, u32)>,
    pub(super) next_cas: u32,
    pub(super) queues: Vec<Queue>,
    pub(super) metrics: Vec<Metric>,
    pub(super) callouts: Vec<Callout>,
    /// Host clock instants at which pending callouts time out.
    pub(super) deadlines: BTreeMap<u32, u64>,
    /// The reply being delivered, readable during its callback only.
    pub(super) delivery: Option<Delivery>,
    /// Replies fetched from real Redis servers, not yet delivered.
    pub(super) ready: VecDeque<(u32, Answer)>,
    /// The Redis client of each cluster (the last init's config).
    pub(super) redis_clients: BTreeMap<String, RedisClientModel>,
    pub(super) redis_inits: Vec<RedisInit>,
    /// Why routed Redis calls failed (connection refused, timeout, ...).
    pub(super) redis_failures: Vec<String>,
    pub(super) foreign_calls: Vec<(String, Vec<u8>)>,
    pub(super) done_calls: u32,
    pub(super) abi_errors: Vec<String>,
    pub(super) vm_failed: bool,
    pub(super) actions: VecDeque<AfterCall>,
    /// `proxy_get_status`: code and message of the last callout failure.
    pub(super) status: (u32, Vec<u8>),
}

/// What `proxy_call_foreign_function` found.
pub(super) enum Foreign {
    User(ForeignFn),
    Builtin(Option<Vec<u8>>),
}

impl HostModel {
    pub(super) fn new(settings: Settings, plugin_config: Vec<u8>) -> HostModel {
        HostModel {
            now_nanos: settings.start_time_nanos,
            settings,
            plugin_config,
            starting: None,
            logs: Vec::new(),
            suppressed_logs: 0,
            tick_period_ms: 0,
            next_tick_nanos: None,
            streams: BTreeMap::new(),
            shared_data: BTreeMap::new(),
            next_cas: 1,
            queues: Vec::new(),
            metrics: Vec::new(),
            callouts: Vec::new(),
            deadlines: BTreeMap::new(),
            delivery: None,
            ready: VecDeque::new(),
            redis_clients: BTreeMap::new(),
            redis_inits: Vec::new(),
            redis_failures: Vec::new(),
            foreign_calls: Vec::new(),
            done_calls: 0,
            abi_errors: Vec::new(),
            vm_failed: false,
            actions: VecDeque::new(),
            status: (0, Vec::new()),
        }
    }

    fn higress(&self) -> bool {
        self.settings.properties == Properties::Higress
    }

    fn stream(&self, stream: Option<u32>) -> Option<&StreamModel> {
        stream.and_then(|id| self.streams.get(&id))
    }

    fn stream_mut(&mut self, stream: Option<u32>) -> Option<&mut StreamModel> {
        stream.and_then(|id| self.streams.get_mut(&id))
    }

    /// Whether a local reply or reset is queued for `stream` (the hook's
    /// own result is then moot).
    pub(super) fn ending(&self, stream: u32) -> bool {
        self.actions.iter().any(|a| {
            matches!(a, AfterCall::LocalReply { stream: s, .. } | AfterCall::Reset { stream: s } if *s == stream)
        })
    }

    pub(super) fn buffer_limit(&self, s: &StreamModel, dir: Dir) -> usize {
        let own = match dir {
            Dir::Request => s.decoder_limit,
            Dir::Response => s.encoder_limit,
        };
        own.unwrap_or(self.settings.buffer_limit)
    }

    // ----- logging, time, ticks ----------------------------------------------------

    pub(super) fn log(&mut self, level: u32, message: &[u8]) -> HostResult<()> {
        let level = LogLevel::from_raw(level).ok_or(Status::BadArgument)?;
        if level < self.settings.log_level {
            self.suppressed_logs += 1;
        } else {
            self.logs.push(LogRecord {
                level,
                message: String::from_utf8_lossy(message).into_owned(),
            });
        }
        Ok(())
    }

    pub(super) fn set_tick_period(&mut self, period_ms: u32) {
        self.tick_period_ms = period_ms;
        self.next_tick_nanos = (period_ms > 0).then(|| {
            self.now_nanos
                .saturating_add(u64::from(period_ms) * 1_000_000)
        });
    }

    // ----- header maps --------------------------------------------------------------

    /// The map for a read; `Ok(None)` when the type is valid but the map is
    /// not available now.
    fn map_for_read(&self, stream: Option<u32>, map: u32) -> HostResult<Option<&HeaderMap>> {
        if map > 7 {
            return Err(Status::BadArgument);
        }
        if map == 6 || map == 7 {
            // Envoy reads the reply of the callout being delivered (kept on
            // the root), whichever context is effective.
            return Ok(match &self.delivery {
                Some(Delivery::Http { headers, .. }) if map == 6 => Some(headers),
                Some(Delivery::Http { trailers, .. }) => Some(trailers),
                _ => None,
            });
        }
        let Some(s) = self.stream(stream) else {
            return Ok(None);
        };
        let half = match map {
            0 | 1 => &s.req,
            2 | 3 => &s.resp,
            _ => return Ok(None),
        };
        Ok(match map {
            0 | 2 if half.headers_live || (s.access_log && half.started) => Some(&half.headers),
            1 | 3 if half.trailers_live || s.access_log => half.trailers.as_ref(),
            _ => None,
        })
    }

    /// The map for a write: `BadArgument` when not available (Envoy's
    /// `getMap` returns null).
    fn map_for_write(&mut self, stream: Option<u32>, map: u32) -> HostResult<&mut HeaderMap> {
        let s = self.stream_mut(stream).ok_or(Status::BadArgument)?;
        let half = match map {
            0 | 1 => &mut s.req,
            2 | 3 => &mut s.resp,
            _ => return Err(Status::BadArgument),
        };
        match map {
            0 | 2 if half.headers_live => Ok(&mut half.headers),
            1 | 3 if half.trailers_live => half.trailers.as_mut().ok_or(Status::BadArgument),
            _ => Err(Status::BadArgument),
        }
    }

    pub(super) fn header_pairs(&self, stream: Option<u32>, map: u32) -> HostResult<Vec<u8>> {
        Ok(self
            .map_for_read(stream, map)?
            .map_or_else(|| HeaderMap::default().encode(), HeaderMap::encode))
    }

    pub(super) fn header_value(
        &self,
        stream: Option<u32>,
        map: u32,
        key: &str,
    ) -> HostResult<Vec<u8>> {
        match self.map_for_read(stream, map)? {
            Some(m) => m.get(key).map(<[u8]>::to_vec).ok_or(Status::NotFound),
            None if self.stream(stream).is_some_and(|s| s.access_log) => Err(Status::NotFound),
            None => Err(Status::BadArgument),
        }
    }

    pub(super) fn set_header_pairs(
        &mut self,
        stream: Option<u32>,
        map: u32,
        data: &[u8],
    ) -> HostResult<()> {
        let pairs = crate::wire::decode_map(data);
        let m = self.map_for_write(stream, map)?;
        *m = HeaderMap::from_pairs(&pairs);
        Ok(())
    }

    pub(super) fn replace_header(
        &mut self,
        stream: Option<u32>,
        map: u32,
        key: &str,
        value: &[u8],
    ) -> HostResult<()> {
        self.map_for_write(stream, map)?.set(key, value);
        Ok(())
    }

    pub(super) fn add_header(
        &mut self,
        stream: Option<u32>,
        map: u32,
        key: &str,
        value: &[u8],
    ) -> HostResult<()> {
        self.map_for_write(stream, map)?.add(key, value);
        Ok(())
    }

    pub(super) fn remove_header(
        &mut self,
        stream: Option<u32>,
        map: u32,
        key: &str,
    ) -> HostResult<()> {
        self.map_for_write(stream, map)?.remove(key);
        Ok(())
    }

    // ----- buffers ------------------------------------------------------------------

    pub(super) fn get_buffer(
        &self,
        stream: Option<u32>,
        kind: u32,
        start: usize,
        max: usize,
    ) -> HostResult<Option<Vec<u8>>> {
        match kind {
            0 | 1 => {
                let dir = if kind == 0 {
                    Dir::Request
                } else {
                    Dir::Response
                };
                match self.stream(stream).map(|s| s.half_ref(dir)) {
                    Some(half) if half.body_live => buffer_get(&half.body, start, max),
                    // Envoy wraps a null buffer: size 0, nothing written.
                    _ => Ok(None),
                }
            }
            4 => match &self.delivery {
                Some(Delivery::Http { body, .. }) => buffer_get(body, start, max),
                _ => Err(Status::NotFound),
            },
            9 => match &self.delivery {
                Some(Delivery::Redis(data)) => buffer_get(data, start, max),
                _ => Err(Status::NotFound),
            },
            5 => match &self.delivery {
                Some(Delivery::Grpc(message)) => buffer_get(message, start, max),
                _ => Err(Status::NotFound),
            },
            6 => buffer_get(&self.settings.vm_configuration, start, max),
            7 if self.starting == Some(Starting::Configure) => {
                buffer_get(&self.plugin_config, start, max)
            }
            _ => Err(Status::NotFound),
        }
    }

    pub(super) fn set_buffer(
        &mut self,
        stream: Option<u32>,
        kind: u32,
        start: usize,
        size: usize,
        data: &[u8],
    ) -> HostResult<()> {
        match kind {
            0 | 1 => {
                let dir = if kind == 0 {
                    Dir::Request
                } else {
                    Dir::Response
                };
                match self.stream_mut(stream).map(|s| s.half(dir)) {
                    Some(half) if half.body_live => buffer_set(&mut half.body, start, size, data),
                    _ => Err(Status::NotFound),
                }
            }
            // Constant buffers.
            6 | 7 => Err(Status::BadArgument),
            _ => Err(Status::NotFound),
        }
    }

    // ----- properties -------------------------------------------------------------------

    /// What `proxy_get_property` answers: what was set on the stream (by
    /// the plugin or the test), the test's host properties, then the
    /// built-in attributes.
    pub(super) fn property(&self, stream: Option<u32>, path: &[String]) -> Option<Vec<u8>> {
        self.property_with(self.stream(stream), path)
    }

    /// [`property`](Self::property) for a stream at hand.
    pub(super) fn property_with(
        &self,
        s: Option<&StreamModel>,
        path: &[String],
    ) -> Option<Vec<u8>> {
        if let Some(v) = s.and_then(|s| s.properties.get(path.join("\0").as_bytes())) {
            return Some(v.clone());
        }
        if let Some(v) = self.settings.host_properties.get(path) {
            return Some(v.clone());
        }
        self.builtin_property(s, path)
    }

    fn builtin_property(&self, s: Option<&StreamModel>, path: &[String]) -> Option<Vec<u8>> {
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = |v: &str| Some(v.as_bytes().to_vec());
        // Envoy 1.40 answers the `request.*` attributes from the request
        // headers, so only while those are readable (measured: nothing in
        // the response phase once they continued), and again at access log.
        let req_header = |name: &str| -> Option<Vec<u8>> {
            let s = s?;
            if !s.req.started || !(s.req.headers_live || s.access_log) {
                return None;
            }
            s.req.headers.get(name).map(<[u8]>::to_vec)
        };
        match parts.as_slice() {
            ["plugin_name"] => text(&self.settings.plugin_name),
            ["plugin_root_id"] => text(&self.settings.root_id),
            ["plugin_vm_id"] => text(&self.settings.vm_id),
            ["xds", "route_name"] => s?.route_name.as_deref().and_then(text),
            ["xds", "cluster_name"] => s?.cluster_name.as_deref().and_then(text),
            ["route_name"] if self.higress() => s?.route_name.as_deref().and_then(text),
            ["cluster_name"] if self.higress() => s?.cluster_name.as_deref().and_then(text),
            ["request", "id"] => req_header("x-request-id"),
            ["request", "host"] => req_header(":authority"),
            ["request", "path"] => req_header(":path"),
            ["request", "method"] => req_header(":method"),
            ["request", "scheme"] => req_header(":scheme"),
            ["request", "url_path"] => req_header(":path").map(|p| {
                let end = p.iter().position(|b| *b == b'?').unwrap_or(p.len());
                p.get(..end).map(<[u8]>::to_vec).unwrap_or_default()
            }),
            ["request", "query"] => req_header(":path").map(|p| {
                p.iter()
                    .position(|b| *b == b'?')
                    .and_then(|q| p.get(q + 1..))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()
            }),
            ["request", "headers", name] => req_header(name),
            ["response", "code"] => s?
                .response_code
                .map(|c| i64::from(c).to_le_bytes().to_vec()),
            ["response", "code_details"] => s?.code_details.as_deref().and_then(text),
            ["response", "headers", name] => {
                let s = s?;
                s.resp.headers.get(name).map(<[u8]>::to_vec)
            }
            _ => None,
        }
    }

    /// `proxy_set_property`: stored on the stream, and read back by the same
    /// path. Root contexts have no stream info: `NotFound`, as Envoy.
    pub(super) fn set_property(
        &mut self,
        stream: Option<u32>,
        raw_path: &[u8],
        value: &[u8],
    ) -> HostResult<()> {
        let higress = self.higress();
        let s = self.stream_mut(stream).ok_or(Status::NotFound)?;
        let limit = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
        };
        if higress {
            match raw_path {
                b"set_decoder_buffer_limit" => s.decoder_limit = limit(),
                b"set_encoder_buffer_limit" => s.encoder_limit = limit(),
                _ => {}
            }
        }
        s.properties.insert(raw_path.to_vec(), value.to_vec());
        Ok(())
    }

    // ----- flow -------------------------------------------------------------------------

    pub(super) fn continue_stream(&mut self, stream: Option<u32>, kind: u32) -> HostResult<()> {
        let dir = match kind {
            0 => Dir::Request,
            1 => Dir::Response,
            // Downstream (TCP): nothing to do for HTTP.
            2 => return Ok(()),
            // Envoy answers Unimplemented (12) for upstream, which proxy-wasm
            // 0.2.5's Status cannot represent.
            _ => return Err(Status::BadArgument),
        };
        // Without a stream there are no decoder callbacks: Envoy does nothing.
        if let Some(id) = stream {
            if let Some(s) = self.streams.get_mut(&id) {
                s.half(dir).resumes += 1;
                self.actions
                    .push_back(AfterCall::Continue { stream: id, dir });
            }
        }
        Ok(())
    }

    pub(super) fn close_stream(&mut self, stream: Option<u32>, kind: u32) -> HostResult<()> {
        match kind {
            0 | 1 => {
                if let Some(id) = stream.filter(|id| self.streams.contains_key(id)) {
                    self.actions.push_back(AfterCall::Reset { stream: id });
                }
                Ok(())
            }
            2 | 3 => Ok(()),
            _ => Err(Status::BadArgument),
        }
    }

    pub(super) fn send_local_response(
        &mut self,
        stream: Option<u32>,
        status: u32,
        details: &[u8],
        body: &[u8],
        headers: &[u8],
        grpc_status: i32,
    ) -> HostResult<()> {
        let reply = LocalResponse {
            status,
            details: String::from_utf8_lossy(details).into_owned(),
            headers: public_pairs(
                crate::wire::decode_map(headers)
                    .into_iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), v))
                    .collect(),
            ),
            body: body.to_vec(),
            grpc_status: u32::try_from(grpc_status).ok(),
        };
        // Without decoder callbacks (a root context) Envoy does nothing.
        if let Some(id) = stream.filter(|id| self.streams.contains_key(id)) {
            self.actions.push_back(AfterCall::LocalReply {
                stream: id,
                reply,
                by_plugin: true,
            });
        }
        Ok(())
    }

    /// The response-code details a local reply leaves in the stream info.
    pub(super) fn reply_details(&self, details: &str) -> String {
        // Envoy replaces white space (`StringUtil::replaceAllEmptySpace`).
        let details = details.replace(char::is_whitespace, "_");
        if self.higress() {
            // Higress prefixes `via_wasm::<plugin>`.
            let mut out = format!("via_wasm::{}", self.settings.plugin_name);
            if !details.is_empty() {
                out.push_str("::");
                out.push_str(&details);
            }
            out
        } else {
            details
        }
    }

    // ----- shared data and queues ------------------------------------------------------

    // ----- Higress: upstream selection, injected data ------------------------------------------

    /// The route's cluster hosts, serialized as a pair map. Higress only: the
    /// stock-Envoy model has no such call (Envoy refuses the module). As in
    /// Higress, a context without a request (the root) and an empty list
    /// both answer `Ok` with no bytes.
    pub(super) fn upstream_hosts(&self, stream: Option<u32>) -> HostResult<Vec<u8>> {
        if !self.higress() {
            return Err(Status::InternalFailure);
        }
        if self.stream(stream).is_none() || self.settings.upstream_hosts.is_empty() {
            return Ok(Vec::new());
        }
        let pairs: Vec<(&str, &[u8])> = self
            .settings
            .upstream_hosts
            .iter()
            .map(|(a, m)| (a.as_str(), m.as_bytes()))
            .collect();
        Ok(super::wire::encode_map(&pairs))
    }

    pub(super) fn set_override_host(
        &mut self,
        stream: Option<u32>,
        address: &[u8],
    ) -> HostResult<()> {
        if !self.higress() {
            return Err(Status::InternalFailure);
        }
        let s = self.stream_mut(stream).ok_or(Status::BadArgument)?;
        s.override_host = Some(String::from_utf8_lossy(address).into_owned());
        Ok(())
    }

    pub(super) fn inject_encoded(
        &mut self,
        stream: Option<u32>,
        data: &[u8],
        end: bool,
    ) -> HostResult<()> {
        if !self.higress() {
            return Err(Status::InternalFailure);
        }
        let s = self.stream_mut(stream).ok_or(Status::BadArgument)?;
        s.injected.push((data.to_vec(), end));
        Ok(())
    }

    pub(super) fn get_shared_data(&self, key: &str) -> HostResult<(Vec<u8>, u32)> {
        self.shared_data.get(key).cloned().ok_or(Status::NotFound)
    }

    pub(super) fn set_shared_data(&mut self, key: &str, value: &[u8], cas: u32) -> HostResult<()> {
        if let Some((_, current)) = self.shared_data.get(key) {
            if cas != 0 && cas != *current {
                return Err(Status::CasMismatch);
            }
        }
        let next = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        self.shared_data
            .insert(key.to_owned(), (value.to_vec(), next));
        Ok(())
    }

    pub(super) fn register_queue(&mut self, context: u32, name: &str) -> u32 {
        let vm_id = self.settings.vm_id.clone();
        if let Some(i) = self
            .queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
        {
            return queue_id(i);
        }
        self.queues.push(Queue {
            vm_id,
            name: name.to_owned(),
            owner: context,
            items: VecDeque::new(),
        });
        queue_id(self.queues.len() - 1)
    }

    pub(super) fn resolve_queue(&self, vm_id: &str, name: &str) -> HostResult<u32> {
        self.queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
            .map(queue_id)
            .ok_or(Status::NotFound)
    }

    fn queue_mut(&mut self, id: u32) -> HostResult<&mut Queue> {
        let index = usize::try_from(id).ok().and_then(|i| i.checked_sub(1));
        index
            .and_then(|i| self.queues.get_mut(i))
            .ok_or(Status::NotFound)
    }

    pub(super) fn enqueue(&mut self, id: u32, value: &[u8]) -> HostResult<()> {
        let queue = self.queue_mut(id)?;
        queue.items.push_back(value.to_vec());
        let owner = queue.owner;
        self.actions.push_back(AfterCall::QueueReady {
            context: owner,
            queue: id,
        });
        Ok(())
    }

    pub(super) fn dequeue(&mut self, id: u32) -> HostResult<Vec<u8>> {
        self.queue_mut(id)?.items.pop_front().ok_or(Status::Empty)
    }

    // ----- metrics ----------------------------------------------------------------------

    pub(super) fn define_metric(&mut self, kind: u32, name: &str) -> HostResult<u32> {
        if kind > 2 {
            return Err(Status::BadArgument);
        }
        if let Some(i) = self
            .metrics
            .iter()
            .position(|m| m.name == name && m.kind == kind)
        {
            return Ok(metric_id(i, kind));
        }
        let value = match kind {
            0 => MetricValue::Counter(0),
            1 => MetricValue::Gauge(0),
            _ => MetricValue::Histogram(Vec::new()),
        };
        self.metrics.push(Metric {
            name: name.to_owned(),
            kind,
            value,
        });
        Ok(metric_id(self.metrics.len() - 1, kind))
    }

    fn metric_mut(&mut self, id: u32) -> HostResult<&mut MetricValue> {
        let index = usize::try_from(id >> 2).ok().and_then(|i| i.checked_sub(1));
        match index.and_then(|i| self.metrics.get_mut(i)) {
            Some(m) if m.kind == id & 3 => Ok(&mut m.value),
            _ => Err(Status::NotFound),
        }
    }

    pub(super) fn increment_metric(&mut self, id: u32, offset: i64) -> HostResult<()> {
        match self.metric_mut(id)? {
            MetricValue::Counter(v) if offset > 0 => {
                *v = v.saturating_add(offset.unsigned_abs());
                Ok(())
            }
            MetricValue::Gauge(v) => {
                *v = if offset >= 0 {
                    v.saturating_add(offset.unsigned_abs())
                } else {
                    v.saturating_sub(offset.unsigned_abs())
                };
                Ok(())
            }
            _ => Err(Status::BadArgument),
        }
    }

    pub(super) fn record_metric(&mut self, id: u32, value: u64) -> HostResult<()> {
        match self.metric_mut(id)? {
            MetricValue::Counter(v) => *v = v.saturating_add(value),
            MetricValue::Gauge(v) => *v = value,
            MetricValue::Histogram(values) => values.push(value),
        }
        Ok(())
    }

    pub(super) fn get_metric(&mut self, id: u32) -> HostResult<u64> {
        match self.metric_mut(id)? {
            MetricValue::Counter(v) | MetricValue::Gauge(v) => Ok(*v),
            MetricValue::Histogram(_) => Err(Status::BadArgument),
        }
    }

    // ----- callouts ---------------------------------------------------------------------

    /// The next callout token: one counter per thread, as Envoy keeps one
    /// per VM (proxy-wasm's dispatcher and the SDK key calls by token, so
    /// two hosts on one thread must never hand out the same one).
    fn next_token(&mut self, tag: u32) -> u32 {
        let n = NEXT_CALLOUT.with(|c| {
            let n = c.get();
            c.set(n.wrapping_add(1).max(1));
            n
        });
        (n << 2) | tag
    }

    fn cluster_known(&self, name: &str) -> bool {
        self.settings.redis_servers.contains_key(name)
            || self
                .settings
                .clusters
                .as_ref()
                .is_none_or(|known| known.contains(name))
    }

    /// Where calls to Redis `cluster` go: a real server, or `None` (the
    /// test answers them).
    pub(super) fn redis_route(&self, cluster: &str) -> Option<SocketAddr> {
        self.settings.redis_servers.get(cluster).copied()
    }

    /// The pending callout `token`.
    pub(super) fn pending_callout(&self, token: u32) -> Option<&Callout> {
        self.callouts
            .iter()
            .find(|c| c.token == token && c.state == CalloutState::Pending)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn http_call(
        &mut self,
        context: u32,
        upstream: &[u8],
        headers: &[u8],
        body: &[u8],
        trailers: &[u8],
        timeout_ms: u32,
    ) -> HostResult<u32> {
        let upstream = String::from_utf8_lossy(upstream).into_owned();
        if !self.cluster_known(&upstream) {
            return Err(Status::BadArgument);
        }
        let headers = HeaderMap::from_pairs(&crate::wire::decode_map(headers));
        // Envoy requires :path, :method and :authority.
        if [":path", ":method", ":authority"]
            .iter()
            .any(|h| headers.get(h).is_none())
        {
            return Err(Status::BadArgument);
        }
        let token = self.next_token(TAG_HTTP);
        if timeout_ms > 0 {
            // Envoy's async client answers 504 once the timeout expires.
            let deadline = self
                .now_nanos
                .saturating_add(u64::from(timeout_ms).saturating_mul(1_000_000));
            self.deadlines.insert(token, deadline);
        }
        self.callouts.push(Callout {
            token,
            context_id: context,
            kind: CalloutKind::Http {
                upstream,
                headers: headers.to_public(),
                body: body.to_vec(),
                trailers: public_pairs(crate::wire::decode_map(trailers)),
                timeout: Duration::from_millis(u64::from(timeout_ms)),
            },
            state: CalloutState::Pending,
        });
        Ok(token)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn grpc_call(
        &mut self,
        context: u32,
        upstream: &[u8],
        service: &[u8],
        method: &[u8],
        metadata: &[u8],
        message: &[u8],
        timeout_ms: u32,
        stream: bool,
    ) -> HostResult<u32> {
        let upstream = String::from_utf8_lossy(upstream).into_owned();
        if !self.cluster_known(&upstream) {
            return Err(Status::BadArgument);
        }
        let service = String::from_utf8_lossy(service).into_owned();
        let method = String::from_utf8_lossy(method).into_owned();
        let initial_metadata = public_pairs(crate::wire::decode_map(metadata));
        let (tag, kind) = if stream {
            (
                TAG_GRPC_STREAM,
                CalloutKind::GrpcStream {
                    upstream,
                    service,
                    method,
                    initial_metadata,
                    sent: Vec::new(),
                    half_closed: false,
                },
            )
        } else {
            (
                TAG_GRPC_CALL,
                CalloutKind::Grpc {
                    upstream,
                    service,
                    method,
                    initial_metadata,
                    message: message.to_vec(),
                    timeout: Duration::from_millis(u64::from(timeout_ms)),
                },
            )
        };
        let token = self.next_token(tag);
        self.callouts.push(Callout {
            token,
            context_id: context,
            kind,
            state: CalloutState::Pending,
        });
        Ok(token)
    }

    fn callout_mut(&mut self, token: u32) -> Option<&mut Callout> {
        self.callouts.iter_mut().find(|c| c.token == token)
    }

    pub(super) fn grpc_send(&mut self, token: u32, message: &[u8]) -> HostResult<()> {
        let callout = self.callout_mut(token).ok_or(Status::NotFound)?;
        match (&mut callout.kind, callout.state) {
            (CalloutKind::GrpcStream { sent, .. }, CalloutState::Pending) => {
                sent.push(message.to_vec());
                Ok(())
            }
            (CalloutKind::GrpcStream { .. }, _) => Err(Status::NotFound),
            _ => Err(Status::BadArgument),
        }
    }

    pub(super) fn grpc_end(&mut self, token: u32, state: CalloutState) -> HostResult<()> {
        if let Some(c) = self.callout_mut(token) {
            // A stream's local half-close: replies still come (Envoy's
            // `closeStream`); only a cancel ends it here.
            if let (CalloutKind::GrpcStream { half_closed, .. }, CalloutState::Pending) =
                (&mut c.kind, c.state)
            {
                if state == CalloutState::Closed {
                    *half_closed = true;
                    return Ok(());
                }
            }
        }
        match self.callout_mut(token) {
            Some(c)
                if c.state == CalloutState::Pending
                    && matches!(
                        c.kind,
                        CalloutKind::Grpc { .. } | CalloutKind::GrpcStream { .. }
                    ) =>
            {
                c.state = state;
                Ok(())
            }
            _ => Err(Status::NotFound),
        }
    }

    /// Higress `Context::redisInit`: the cluster is the service up to `?`
    /// (`BadArgument` if unknown); the query string's `db` is selected on
    /// each new connection. The cluster's client is replaced (its
    /// connections closed), for every plugin calling it.
    pub(super) fn redis_init(
        &mut self,
        service: &[u8],
        username: &[u8],
        password: &[u8],
        timeout_ms: u32,
    ) -> HostResult<()> {
        let service = String::from_utf8_lossy(service).into_owned();
        let (cluster, query) = service.split_once('?').unwrap_or((&service, ""));
        if !self.cluster_known(cluster) {
            return Err(Status::BadArgument);
        }
        let cluster = cluster.to_owned();
        let db = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "db")
            .map(|(_, v)| v.to_owned());
        let username = String::from_utf8_lossy(username).into_owned();
        let password = String::from_utf8_lossy(password).into_owned();
        self.redis_clients.insert(
            cluster.clone(),
            RedisClientModel::new(username.clone(), password.clone(), db, timeout_ms),
        );
        self.redis_inits
            .retain(|r| r.service.split('?').next() != Some(cluster.as_str()));
        self.redis_inits.push(RedisInit {
            service,
            username,
            password,
            timeout: Duration::from_millis(u64::from(timeout_ms)),
        });
        Ok(())
    }

    /// Higress `Context::redisCall`: `BadArgument` for an unknown cluster
    /// (the service up to `?`). Without an init the cluster's default
    /// client is used (no auth, database 0).
    pub(super) fn redis_call(
        &mut self,
        context: u32,
        service: &[u8],
        query: &[u8],
    ) -> HostResult<u32> {
        let service = String::from_utf8_lossy(service).into_owned();
        let cluster = service.split('?').next().unwrap_or_default().to_owned();
        if !self.cluster_known(&cluster) {
            return Err(Status::BadArgument);
        }
        let token = self.next_token(TAG_REDIS);
        if self.redis_route(&cluster).is_none() {
            // Answered by the test: the op timeout runs on the host clock.
            let timeout = self
                .redis_clients
                .get(&cluster)
                .map_or(redis_io::DEFAULT_TIMEOUT, |c| c.timeout);
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            self.deadlines
                .insert(token, self.now_nanos.saturating_add(nanos));
        }
        self.callouts.push(Callout {
            token,
            context_id: context,
            kind: CalloutKind::Redis {
                service,
                query: query.to_vec(),
            },
            state: CalloutState::Pending,
        });
        Ok(token)
    }

    // ----- foreign functions ----------------------------------------------------------------

    pub(super) fn foreign(&mut self, name: &str, args: &[u8]) -> HostResult<Foreign> {
        self.foreign_calls.push((name.to_owned(), args.to_vec()));
        if let Some(f) = self.settings.foreign_functions.get(name) {
            return Ok(Foreign::User(Rc::clone(f)));
        }
        match name {
            "get_log_level" if self.higress() => Ok(Foreign::Builtin(Some(
                self.settings.log_level.raw().to_le_bytes().to_vec(),
            ))),
            "clear_route_cache" => Ok(Foreign::Builtin(None)),
            _ => Err(Status::NotFound),
        }
    }
}

fn queue_id(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

fn metric_id(index: usize, kind: u32) -> u32 {
    (u32::try_from(index + 1).unwrap_or(u32::MAX >> 2) << 2) | kind
}

// ----- the per-thread registry ----------------------------------------------------------------

/// Every host on this thread. proxy-wasm's dispatcher is thread-local, so
/// the host is too: `cargo test` runs each test on its own thread.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) next_context_id: u32,
    /// The context host calls act on (0 outside callbacks).
    pub(super) effective: u32,
    pub(super) hosts: BTreeMap<u32, HostModel>,
    /// Context id to the root id of its host.
    pub(super) owners: BTreeMap<u32, u32>,
}

impl Registry {
    pub(super) fn allocate_context(&mut self, root: u32) -> u32 {
        self.next_context_id = self.next_context_id.wrapping_add(1).max(1);
        let id = self.next_context_id;
        self.owners.insert(id, if root == 0 { id } else { root });
        id
    }

    /// The host and stream the effective context belongs to.
    pub(super) fn current(&mut self) -> Option<(&mut HostModel, u32, Option<u32>)> {
        let context = self.effective;
        let root = *self.owners.get(&context)?;
        let host = self.hosts.get_mut(&root)?;
        let stream = (context != root).then_some(context);
        Some((host, context, stream))
    }
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
    /// The callout counter of this thread's "VM".
    static NEXT_CALLOUT: Cell<u32> = const { Cell::new(1) };
}

/// Runs `f` on this thread's registry; `None` if it is already borrowed
/// (a host call made while the host itself runs, e.g. from a panic hook)
/// or the thread is shutting down.
pub(super) fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> Option<R> {
    REGISTRY
        .try_with(|r| r.try_borrow_mut().ok().map(|mut r| f(&mut r)))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_map_orders_pseudo_headers_first_and_lowercases() {
        let mut m = HeaderMap::from_pairs(&[("X-A", "1"), (":Path", "/")]);
        m.add(":method", b"GET");
        m.add("x-a", b"2");
        let names: Vec<&str> = m.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [":path", ":method", "x-a", "x-a"]);
        assert_eq!(m.get("X-A"), Some(&b"1"[..]));
        m.set("x-a", b"3");
        assert_eq!(m.get_all("x-a").len(), 1);
        m.remove("X-A");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn buffer_set_follows_envoy_copy_from() {
        let mut b = b"hello".to_vec();
        assert_eq!(buffer_set(&mut b, 0, 0, b">"), Ok(()));
        assert_eq!(b, b">hello");
        assert_eq!(buffer_set(&mut b, 0, 1, b"<"), Ok(()));
        assert_eq!(b, b"<hello");
        assert_eq!(buffer_set(&mut b, 0, usize::MAX, b"new"), Ok(()));
        assert_eq!(b, b"new");
        assert_eq!(buffer_set(&mut b, 3, 0, b"!"), Ok(()));
        assert_eq!(b, b"new!");
        assert_eq!(buffer_set(&mut b, 1, 1, b"x"), Err(Status::BadArgument));
    }

    #[test]
    fn buffer_get_clamps() {
        assert_eq!(buffer_get(b"abc", 1, 100), Ok(Some(b"bc".to_vec())));
        assert_eq!(buffer_get(b"abc", 3, 1), Ok(None));
        assert_eq!(buffer_get(b"abc", 9, 1), Ok(None));
        assert_eq!(buffer_get(b"abc", 0, 0), Ok(None));
        assert_eq!(buffer_get(b"abc", 2, usize::MAX), Err(Status::BadArgument));
    }
}
