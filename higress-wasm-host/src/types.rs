//! The public value types: what a test reads back. Names and shapes follow
//! the native test host's (`higress_test_host`), so one test body
//! reads the same in both modes.

use std::fmt;
use std::time::Duration;

/// What the host observed when it delivered one event to the plugin.
///
/// `Continue` and `Pause` are the plugin's own answer; `Held` and `Ended`
/// say the host did not call the plugin at all, as Envoy would not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// The plugin was called and let the data continue.
    Continue,
    /// The plugin was called and stopped the stream (any non-zero status).
    Pause,
    /// The plugin was not called: the direction is stopped ("stop all").
    Held,
    /// The plugin was not called: the stream already ended (a local
    /// response, a reset, or a failed VM).
    Ended,
}

/// Host log levels, lowest first (proxy-wasm's `LogLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// `trace`, the most verbose.
    #[default]
    Trace,
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
    /// `critical`.
    Critical,
}

impl LogLevel {
    pub(crate) fn from_raw(raw: u32) -> Option<LogLevel> {
        Some(match raw {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    pub(crate) fn raw(self) -> u32 {
        match self {
            LogLevel::Trace => 0,
            LogLevel::Debug => 1,
            LogLevel::Info => 2,
            LogLevel::Warn => 3,
            LogLevel::Error => 4,
            LogLevel::Critical => 5,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        })
    }
}

/// One line the plugin logged through `proxy_log`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogRecord {
    /// Its level.
    pub level: LogLevel,
    /// The text, lossy UTF-8.
    pub message: String,
}

impl fmt::Display for LogRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.level, self.message)
    }
}

/// A header value: bytes, compared with text in tests. The same methods
/// as the SDK's `HeaderValue`, which the native host returns.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct HeaderValue(Vec<u8>);

impl HeaderValue {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as text, if it is UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The value as text, invalid UTF-8 replaced by U+FFFD.
    pub fn to_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// The raw bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_str_lossy(), f)
    }
}

impl From<Vec<u8>> for HeaderValue {
    fn from(v: Vec<u8>) -> Self {
        HeaderValue(v)
    }
}

impl From<&[u8]> for HeaderValue {
    fn from(v: &[u8]) -> Self {
        HeaderValue(v.to_vec())
    }
}

impl From<&str> for HeaderValue {
    fn from(v: &str) -> Self {
        HeaderValue(v.as_bytes().to_vec())
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl PartialEq<str> for HeaderValue {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for HeaderValue {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// Which host is modelled: its import set, ABI versions and properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Properties {
    /// Stock Envoy 1.40: no Higress host calls (a module importing one
    /// fails to load), ABI `0_2_100` is not recognised, and the
    /// un-prefixed `route_name` / `cluster_name` properties are not found.
    Envoy,
    /// Higress's Envoy: the Redis, upstream-host and injection calls, ABI
    /// `0_2_100`, `route_name` / `cluster_name`, the `get_log_level`
    /// foreign function.
    #[default]
    Higress,
}

/// The ABI a module was run with (the first `proxy_abi_version_*` export the
/// host knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AbiVersion {
    /// `proxy_abi_version_0_2_0`.
    V0_2_0,
    /// `proxy_abi_version_0_2_1`: a headers `StopIteration` is stop-all
    /// unless `allow_on_headers_stop_iteration`.
    V0_2_1,
    /// `proxy_abi_version_0_2_100` (Higress): header statuses 0-4 pass
    /// through unchanged.
    V0_2_100,
}

/// What Envoy does with requests once the VM failed (`failure_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FailPolicy {
    /// `FAIL_CLOSED` (the default): every stream gets a local 503.
    #[default]
    Closed,
    /// `FAIL_OPEN`: the plugin is skipped, requests pass untouched.
    Open,
    /// `FAIL_RELOAD`: the VM is created anew on the first request after the
    /// reload backoff (on the host clock); requests before that get 503.
    Reload,
}

/// A local response the plugin sent (`proxy_send_local_response`), or the
/// host's own (`wasm_fail_stream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// The HTTP status.
    pub status: u32,
    /// Envoy's response-code details.
    pub details: String,
    /// The extra headers (names lowercased).
    pub headers: Vec<(String, HeaderValue)>,
    /// The body.
    pub body: Vec<u8>,
    /// The gRPC status, `None` when the plugin passed -1.
    pub grpc_status: Option<u32>,
}

impl LocalResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Where plugin start stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StartStage {
    /// The module could not be loaded or instantiated (see the logs).
    Load,
    /// `_initialize` / `_start` trapped.
    Initialize,
    /// `proxy_on_vm_start` returned false or trapped.
    VmStart,
    /// `proxy_on_configure` returned false or trapped.
    Configure,
}

/// The plugin refused to start (or could not); carries its logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// Which step failed.
    pub stage: StartStage,
    /// Every line logged during start; the host's own message (a load
    /// error, a trap) comes last at `critical`.
    pub logs: Vec<LogRecord>,
}

impl StartFailure {
    /// The log lines containing `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<&LogRecord> {
        self.logs
            .iter()
            .filter(|l| l.message.contains(needle))
            .collect()
    }
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin start failed at {:?}", self.stage)?;
        for line in &self.logs {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StartFailure {}

/// The test drove a stream in an order no proxy would.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamError {
    /// This part of the stream was already sent.
    AlreadySent(&'static str),
    /// The direction already ended or its headers were not sent yet.
    OutOfOrder(&'static str),
    /// The upstream cannot answer: the request headers have not reached it.
    UpstreamNotReached,
    /// [`HttpStream::done`](crate::HttpStream::done) was already called.
    Done,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::AlreadySent(what) => write!(f, "{what} were already sent"),
            StreamError::OutOfOrder(what) => write!(f, "out of order: {what}"),
            StreamError::UpstreamNotReached => {
                f.write_str("the request headers have not been forwarded upstream")
            }
            StreamError::Done => f.write_str("the stream is done"),
        }
    }
}

impl std::error::Error for StreamError {}

/// A call the plugin dispatched to another service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Callout {
    /// The token returned to the plugin (low 2 bits: HTTP 0, Redis 3).
    pub token: u32,
    /// The context that was effective when the call was made.
    pub context_id: u32,
    /// What was called.
    pub kind: CalloutKind,
    /// Where the call stands.
    pub state: CalloutState,
}

/// What a [`Callout`] calls.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CalloutKind {
    /// `proxy_http_call`.
    Http {
        /// The cluster.
        upstream: String,
        /// Request headers, pseudo-headers included.
        headers: Vec<(String, HeaderValue)>,
        /// Request body.
        body: Vec<u8>,
        /// Request trailers.
        trailers: Vec<(String, HeaderValue)>,
        /// The timeout the plugin asked for.
        timeout: Duration,
    },
    /// `proxy_grpc_call` (a unary call).
    Grpc {
        /// The upstream (cluster name), lossy text.
        upstream: String,
        /// The gRPC service.
        service: String,
        /// The method.
        method: String,
        /// Initial metadata.
        initial_metadata: Vec<(String, HeaderValue)>,
        /// The serialized request message.
        message: Vec<u8>,
        /// The timeout the plugin asked for.
        timeout: Duration,
    },
    /// `proxy_grpc_stream`.
    GrpcStream {
        /// The upstream (cluster name), lossy text.
        upstream: String,
        /// The gRPC service.
        service: String,
        /// The method.
        method: String,
        /// Initial metadata.
        initial_metadata: Vec<(String, HeaderValue)>,
        /// Messages sent so far with `proxy_grpc_send`.
        sent: Vec<Vec<u8>>,
        /// The plugin half-closed it (`proxy_grpc_close`, or a send with
        /// end of stream); replies may still be delivered.
        half_closed: bool,
    },
    /// Higress `proxy_redis_call`.
    Redis {
        /// The service string as passed.
        service: String,
        /// The RESP-encoded command.
        query: Vec<u8>,
    },
}

/// Where a [`Callout`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CalloutState {
    /// Dispatched, no answer delivered yet.
    Pending,
    /// Its reply (or failure) was delivered to the plugin.
    Delivered,
    /// The plugin cancelled it (`proxy_grpc_cancel`).
    Cancelled,
    /// The plugin closed it (`proxy_grpc_close` on a unary call).
    Closed,
    /// Dropped: the VM failed or the host was reset before it was answered.
    Dropped,
}

/// Why the host could not deliver a reply to a callout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The plugin never made a callout with this token.
    UnknownToken(u32),
    /// The callout was already answered.
    NotPending(u32),
    /// The reply is for another kind of callout.
    WrongKind(u32),
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::UnknownToken(t) => write!(f, "no callout has token {t}"),
            DeliveryError::NotPending(t) => write!(f, "callout {t} is no longer pending"),
            DeliveryError::WrongKind(t) => write!(f, "callout {t} is of another kind"),
        }
    }
}

impl std::error::Error for DeliveryError {}

/// A Redis client the plugin initialized (Higress `proxy_redis_init`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisInit {
    /// The service string as passed (cluster, then `?options`).
    pub service: String,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
    /// The client's op timeout.
    pub timeout: Duration,
}

/// The value of a metric the plugin defined.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricValue {
    /// A counter.
    Counter(u64),
    /// A gauge.
    Gauge(u64),
    /// A histogram: every recorded value, in order.
    Histogram(Vec<u64>),
}
