//! The host's state for one VM: what the host calls read and write (the
//! wasmtime store's data), with the streams, header maps and buffers.

use crate::fuel::CallbackWork;
use crate::redis::RedisConns;
use crate::shared::SharedState;
use crate::types::{
    AbiVersion, Callout, FailPolicy, HeaderValue, LocalResponse, LogLevel, LogRecord, Properties,
    RedisInit,
};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// A foreign function the test registers.
pub(crate) type ForeignFn = Rc<dyn Fn(&[u8]) -> Option<Vec<u8>>>;

/// proxy-wasm status codes (`WasmResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
}

impl Status {
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

/// An ordered multimap with lowercase names, as Envoy's header maps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HeaderMap(pub(crate) Vec<(String, Vec<u8>)>);

impl HeaderMap {
    pub(crate) fn from_pairs<N: AsRef<str>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Self {
        let mut map = HeaderMap::default();
        for (n, v) in pairs {
            map.add(n.as_ref(), v.as_ref());
        }
        map
    }

    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub(crate) fn get_all(&self, name: &str) -> Vec<HeaderValue> {
        let name = name.to_ascii_lowercase();
        self.0
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| HeaderValue::from(v.clone()))
            .collect()
    }

    pub(crate) fn add(&mut self, name: &str, value: &[u8]) {
        self.0.push((name.to_ascii_lowercase(), value.to_vec()));
    }

    pub(crate) fn remove(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.0.retain(|(n, _)| *n != name);
    }

    /// Envoy's `setCopy`: drop every value, then add one.
    pub(crate) fn set(&mut self, name: &str, value: &[u8]) {
        self.remove(name);
        self.add(name, value);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn to_public(&self) -> Vec<(String, HeaderValue)> {
        self.0
            .iter()
            .map(|(n, v)| (n.clone(), HeaderValue::from(v.clone())))
            .collect()
    }

    /// proxy-wasm's pairs encoding: count, (name len, value len)*, then
    /// `name\0value\0` each.
    pub(crate) fn serialize(&self) -> Vec<u8> {
        serialize_pairs(self.0.iter().map(|(n, v)| (n.as_bytes(), v.as_slice())))
    }

    pub(crate) fn deserialize(bytes: &[u8]) -> Option<HeaderMap> {
        let pairs = deserialize_pairs(bytes)?;
        let mut map = HeaderMap::default();
        for (n, v) in pairs {
            map.add(&String::from_utf8_lossy(&n), &v);
        }
        Some(map)
    }
}

/// The metadata JSON Higress's Envoy answers per host in
/// `proxy_get_upstream_hosts` (`Context::getUpstreamHosts`): a map of
/// `health_status` and, when the health check stored some, `metrics`,
/// printed by nlohmann's `dump(0)` (a newline after `{` and after each
/// member, `": "` between key and value; `\"`, `\\`, `\b`, `\f`, `\n`,
/// `\r`, `\t` and `\u00xx` escapes, UTF-8 as is).
pub(crate) fn higress_host_info(health: &str, metrics: Option<&str>) -> String {
    let escape = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out
    };
    let mut lines = vec![format!("\"health_status\": \"{}\"", escape(health))];
    if let Some(m) = metrics.filter(|m| !m.is_empty()) {
        lines.push(format!("\"metrics\": \"{}\"", escape(m)));
    }
    format!("{{\n{}\n}}", lines.join(",\n"))
}

pub(crate) fn serialize_pairs<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let pairs: Vec<_> = pairs.collect();
    let mut out = Vec::new();
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len32(pairs.len()));
    for (n, v) in &pairs {
        out.extend_from_slice(&len32(n.len()));
        out.extend_from_slice(&len32(v.len()));
    }
    for (n, v) in &pairs {
        out.extend_from_slice(n);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    let arr: [u8; 4] = b.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(arr)).ok()
}

pub(crate) fn deserialize_pairs(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)?;
    let mut sizes = Vec::new();
    let mut at = 4usize;
    for _ in 0..count {
        let n = read_u32(bytes, at)?;
        let v = read_u32(bytes, at.checked_add(4)?)?;
        sizes.push((n, v));
        at = at.checked_add(8)?;
    }
    let mut out = Vec::new();
    for (n, v) in sizes {
        let name = bytes.get(at..at.checked_add(n)?)?.to_vec();
        at = at.checked_add(n)?.checked_add(1)?;
        let value = bytes.get(at..at.checked_add(v)?)?.to_vec();
        at = at.checked_add(v)?.checked_add(1)?;
        out.push((name, value));
    }
    Some(out)
}

/// One direction of a stream at the filter.
#[derive(Debug, Default)]
pub(crate) struct Half {
    pub(crate) started: bool,
    pub(crate) headers: HeaderMap,
    /// The plugin may read/write the headers (their callback, or paused).
    pub(crate) headers_live: bool,
    pub(crate) headers_sent: Option<HeaderMap>,
    /// Headers stopped: `Some(true)` stop-all (bodies held), `Some(false)`
    /// StopIteration (bodies still delivered).
    pub(crate) headers_held: Option<bool>,
    pub(crate) eos_in: bool,
    pub(crate) body: Vec<u8>,
    pub(crate) body_live: bool,
    pub(crate) buffering: bool,
    pub(crate) held: Option<(Vec<u8>, bool)>,
    pub(crate) sent_body: Vec<u8>,
    pub(crate) sent_eos: bool,
    pub(crate) trailers: Option<HeaderMap>,
    pub(crate) trailers_sent: Option<HeaderMap>,
    pub(crate) resumes: u32,
    pub(crate) body_calls: u32,
}

impl Half {
    /// The body held at the filter: buffered, then held by a stop-all.
    pub(crate) fn buffered(&self) -> Vec<u8> {
        let mut body = self.body.clone();
        if let Some((held, _)) = &self.held {
            body.extend_from_slice(held);
        }
        body
    }

    pub(crate) fn stop_all(&self) -> bool {
        self.headers_held == Some(true)
    }

    pub(crate) fn paused(&self) -> bool {
        self.headers_held.is_some() || self.buffering
    }

    pub(crate) fn forward_headers(&mut self) {
        self.headers_held = None;
        if self.headers_sent.is_none() {
            self.headers_sent = Some(self.headers.clone());
            if self.eos_in && self.held.is_none() && self.body.is_empty() && self.trailers.is_none()
            {
                self.sent_eos = true;
            }
        }
    }

    pub(crate) fn forward_body(&mut self) {
        self.buffering = false;
        let body = std::mem::take(&mut self.body);
        self.sent_body.extend_from_slice(&body);
        if self.eos_in && self.trailers.is_none() {
            self.sent_eos = true;
        }
    }
}

/// Direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Request,
    Response,
}

/// One HTTP stream.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    pub(crate) created: bool,
    pub(crate) done: bool,
    pub(crate) deleted: bool,
    pub(crate) failed: bool,
    pub(crate) reset: bool,
    pub(crate) local_reply: bool,
    pub(crate) access_log: bool,
    pub(crate) authority: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) route_name: Option<String>,
    pub(crate) cluster_name: Option<String>,
    pub(crate) properties: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(crate) req: Half,
    pub(crate) resp: Half,
    pub(crate) local_responses: Vec<LocalResponse>,
    pub(crate) response_code: Option<u32>,
    pub(crate) upstream_override: Option<String>,
    pub(crate) injected: Vec<(Vec<u8>, bool)>,
    /// The plugin was skipped (fail open after a VM failure).
    pub(crate) bypass: bool,
}

impl StreamState {
    pub(crate) fn half(&mut self, dir: Dir) -> &mut Half {
        match dir {
            Dir::Request => &mut self.req,
            Dir::Response => &mut self.resp,
        }
    }

    pub(crate) fn request_open(&self) -> bool {
        !self.reset && !self.failed && !self.local_reply
    }
}

/// Work a host call asks for, done after the callback returns (Envoy's
/// "after VM call" actions).
#[derive(Debug)]
pub(crate) enum AfterCall {
    Continue { stream: u32, dir: Dir },
    LocalReply { stream: u32, reply: LocalResponse },
    Reset { stream: u32 },
}

/// The reply of a callout being delivered (readable only during the
/// callback).
#[derive(Debug, Default)]
pub(crate) struct CallReply {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: HeaderMap,
}

/// Which part of start is running: restricts the host calls (Envoy's
/// "restricted callbacks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Initialize,
    Running,
}

/// Settings fixed at start.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) mode: Properties,
    pub(crate) log_level: LogLevel,
    pub(crate) allow_on_headers_stop_iteration: bool,
    pub(crate) plugin_name: String,
    pub(crate) root_id: String,
    pub(crate) vm_id: String,
    pub(crate) vm_configuration: Vec<u8>,
    pub(crate) host_properties: BTreeMap<Vec<String>, Vec<u8>>,
    pub(crate) start_time_nanos: u64,
    pub(crate) clusters: Option<Vec<String>>,
    pub(crate) foreign_functions: BTreeMap<String, ForeignFn>,
    pub(crate) redis_servers: BTreeMap<String, SocketAddr>,
    pub(crate) http_servers: BTreeMap<String, SocketAddr>,
    pub(crate) upstream_hosts: Vec<(String, String)>,
    pub(crate) fail_policy: FailPolicy,
    pub(crate) reload_backoff: Duration,
    pub(crate) env: Vec<(String, String)>,
    /// WASI clocks answer the real time instead of the host clock.
    pub(crate) wasi_real_time: bool,
}

/// The store data of one VM.
pub(crate) struct HostState {
    pub(crate) settings: Settings,
    pub(crate) abi: AbiVersion,
    pub(crate) phase: Phase,
    pub(crate) root: u32,
    pub(crate) next_context: u32,
    pub(crate) effective: u32,
    pub(crate) contexts: BTreeMap<u32, u32>,
    pub(crate) streams: BTreeMap<u32, StreamState>,
    pub(crate) plugin_config: Vec<u8>,
    pub(crate) configuring: bool,
    pub(crate) vm_starting: bool,
    pub(crate) logs: Vec<LogRecord>,
    pub(crate) suppressed_logs: usize,
    pub(crate) stdio: Vec<LogRecord>,
    pub(crate) now_nanos: u64,
    pub(crate) tick_period_ms: u32,
    pub(crate) next_tick_nanos: Option<u64>,
    pub(crate) after: VecDeque<AfterCall>,
    pub(crate) callouts: Vec<Callout>,
    /// When each pending callout times out on the host clock (nanos).
    pub(crate) deadlines: BTreeMap<u32, u64>,
    pub(crate) next_token: u32,
    pub(crate) call_reply: Option<CallReply>,
    /// During a gRPC callback: initial metadata (map 4), the message
    /// (buffer 5) and trailing metadata (map 5).
    pub(crate) grpc_reply: Option<CallReply>,
    /// gRPC streams whose initial metadata was delivered.
    pub(crate) grpc_initial_sent: Vec<u32>,
    pub(crate) redis_reply: Option<Vec<u8>>,
    pub(crate) foreign_arg: Option<Vec<u8>>,
    pub(crate) redis_inits: Vec<RedisInit>,
    pub(crate) redis_conns: RedisConns,
    pub(crate) shared: SharedState,
    pub(crate) host_uid: u64,
    pub(crate) status: (u32, Vec<u8>),
    pub(crate) work: Vec<CallbackWork>,
    pub(crate) hostcalls: Vec<&'static str>,
    pub(crate) random_state: u64,
    pub(crate) vm_failed: bool,
    pub(crate) failed_at_nanos: u64,
    pub(crate) traps: Vec<String>,
    pub(crate) vm_generation: u32,
}

impl HostState {
    pub(crate) fn new(settings: Settings, abi: AbiVersion, shared: SharedState) -> Self {
        let now = settings.start_time_nanos;
        let host_uid = shared.next_uid();
        HostState {
            settings,
            abi,
            phase: Phase::Initialize,
            root: 0,
            next_context: 1,
            effective: 0,
            contexts: BTreeMap::new(),
            streams: BTreeMap::new(),
            plugin_config: Vec::new(),
            configuring: false,
            vm_starting: false,
            logs: Vec::new(),
            suppressed_logs: 0,
            stdio: Vec::new(),
            now_nanos: now,
            tick_period_ms: 0,
            next_tick_nanos: None,
            after: VecDeque::new(),
            callouts: Vec::new(),
            deadlines: BTreeMap::new(),
            next_token: 0,
            call_reply: None,
            grpc_reply: None,
            grpc_initial_sent: Vec::new(),
            redis_reply: None,
            foreign_arg: None,
            redis_inits: Vec::new(),
            redis_conns: RedisConns::default(),
            shared,
            host_uid,
            status: (0, Vec::new()),
            work: Vec::new(),
            hostcalls: Vec::new(),
            random_state: 0x9E37_79B9_7F4A_7C15,
            vm_failed: false,
            failed_at_nanos: 0,
            traps: Vec::new(),
            vm_generation: 0,
        }
    }

    pub(crate) fn higress(&self) -> bool {
        self.settings.mode == Properties::Higress
    }

    pub(crate) fn allocate_context(&mut self, root: u32) -> u32 {
        let id = self.next_context;
        self.next_context = self.next_context.saturating_add(1);
        self.contexts.insert(id, root);
        id
    }

    /// The stream the effective context belongs to.
    pub(crate) fn effective_stream(&mut self) -> Option<&mut StreamState> {
        let id = self.effective;
        self.streams.get_mut(&id)
    }

    pub(crate) fn cluster_known(&self, cluster: &str) -> bool {
        self.settings
            .clusters
            .as_ref()
            .is_none_or(|c| c.iter().any(|n| n == cluster))
            || self.settings.redis_servers.contains_key(cluster)
            || self.settings.http_servers.contains_key(cluster)
    }

    /// A new callout token of `kind` (HTTP 0, Redis 3), as cpp-host: the
    /// low two bits are the kind, the counter steps by 4.
    pub(crate) fn token(&mut self, kind: u32) -> u32 {
        self.next_token = self.next_token.wrapping_add(4);
        (self.next_token & !3) | (kind & 3)
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        if level < self.settings.log_level {
            self.suppressed_logs += 1;
            return;
        }
        self.logs.push(LogRecord { level, message });
    }

    /// A property as the host answers it for the effective context.
    pub(crate) fn property(
        &self,
        stream: Option<&StreamState>,
        path: &[String],
    ) -> Option<Vec<u8>> {
        if let Some(v) = stream.and_then(|s| s.properties.get(path.join("\0").as_bytes())) {
            return Some(v.clone());
        }
        if let Some(v) = self.settings.host_properties.get(path) {
            return Some(v.clone());
        }
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = |v: &str| Some(v.as_bytes().to_vec());
        let req_header = |name: &str| -> Option<Vec<u8>> {
            let s = stream?;
            if !s.req.started || !(s.req.headers_live || s.access_log) {
                return None;
            }
            s.req.headers.get(name).map(<[u8]>::to_vec)
        };
        match parts.as_slice() {
            ["plugin_name"] => text(&self.settings.plugin_name),
            ["plugin_root_id"] => text(&self.settings.root_id),
            ["plugin_vm_id"] => text(&self.settings.vm_id),
            ["xds", "route_name"] => stream?.route_name.as_deref().and_then(text),
            ["xds", "cluster_name"] => stream?.cluster_name.as_deref().and_then(text),
            ["route_name"] if self.higress() => stream?.route_name.as_deref().and_then(text),
            ["cluster_name"] if self.higress() => stream?.cluster_name.as_deref().and_then(text),
            ["request", "id"] | ["x_request_id"] => req_header("x-request-id"),
            ["request", "host"] => req_header(":authority"),
            ["request", "path"] => req_header(":path"),
            ["request", "method"] => req_header(":method"),
            ["request", "scheme"] => req_header(":scheme"),
            ["request", "url_path"] => req_header(":path").map(|p| {
                let end = p.iter().position(|b| *b == b'?').unwrap_or(p.len());
                p.get(..end).map(<[u8]>::to_vec).unwrap_or_default()
            }),
            ["request", "headers", name] => req_header(name),
            ["response", "code"] => stream?
                .response_code
                .map(|c| i64::from(c).to_le_bytes().to_vec()),
            ["response", "headers", name] => stream?.resp.headers.get(name).map(<[u8]>::to_vec),
            _ => None,
        }
    }

    /// Deterministic bytes for `random_get` (splitmix64): the same module
    /// run the same way draws the same numbers, so fuel counts repeat.
    pub(crate) fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            self.random_state = self.random_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.random_state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            out.extend_from_slice(&z.to_le_bytes());
        }
        out.truncate(n);
        out
    }
}
