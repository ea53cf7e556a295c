//! The public value types of the test host: what a test reads back.

use higress_wrapper::HeaderValue;
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
    /// The plugin was called and paused the stream (proxy-wasm `Pause`:
    /// `StopIteration` for headers, `StopIterationAndBuffer` for bodies).
    Pause,
    /// The plugin was not called: the direction is stopped ("stop all" after
    /// a header pause). The host keeps the data and delivers it, in one
    /// callback, once the plugin resumes the stream.
    Held,
    /// The plugin was not called: the stream already ended (a local
    /// response, a reset, or a failed VM). The data is dropped.
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
    /// `critical` (panics are logged here).
    Critical,
}

impl LogLevel {
    pub(super) fn from_raw(raw: u32) -> Option<LogLevel> {
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

    pub(super) fn raw(self) -> u32 {
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
    /// The text, prefix included (`[plugin] [id] [request-id] message`).
    /// Invalid UTF-8 is replaced by U+FFFD.
    pub message: String,
}

impl fmt::Display for LogRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.level, self.message)
    }
}

/// Which host the properties model: what `proxy_get_property` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Properties {
    /// Stock Envoy 1.40: `xds.route_name`, `xds.cluster_name`, `request.*`,
    /// `response.code(_details)`, `plugin_name`, `plugin_root_id`,
    /// `plugin_vm_id`. The un-prefixed `route_name` / `cluster_name` are not
    /// found, and the Higress buffer-limit properties have no effect.
    Envoy,
    /// Higress: everything stock Envoy has, plus `route_name` and
    /// `cluster_name`, the `get_log_level` foreign function, and the
    /// `set_decoder_buffer_limit` / `set_encoder_buffer_limit` properties.
    #[default]
    Higress,
}

/// A local response the plugin sent (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// The HTTP status.
    pub status: u32,
    /// Envoy's response-code details, as the plugin passed them.
    pub details: String,
    /// The extra headers the plugin passed (names lowercased, as Envoy does).
    pub headers: Vec<(String, HeaderValue)>,
    /// The body.
    pub body: Vec<u8>,
    /// The gRPC status, `None` when the plugin passed -1 (not gRPC).
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
    /// `proxy_on_vm_start` returned false.
    VmStart,
    /// `proxy_on_configure` returned false: the host refuses the
    /// configuration (Envoy rejects the listener update).
    Configure,
}

/// The plugin refused to start; carries everything it logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// Which callback returned false.
    pub stage: StartStage,
    /// Every line logged during start, at every level the host kept.
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
        let stage = match self.stage {
            StartStage::VmStart => "proxy_on_vm_start",
            StartStage::Configure => "proxy_on_configure",
        };
        write!(f, "plugin start failed: {stage} returned false")?;
        if self.logs.is_empty() {
            return f.write_str(" (nothing was logged)");
        }
        f.write_str("; the plugin logged:")?;
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
    /// This part of the stream was already sent (e.g. request headers twice).
    AlreadySent(&'static str),
    /// The direction already ended (`end_of_stream` was sent) or its
    /// headers were not sent yet.
    OutOfOrder(&'static str),
    /// The upstream cannot answer: the request headers have not reached it.
    UpstreamNotReached,
    /// [`HttpStream::done`](super::HttpStream::done) was already called.
    Done,
    /// The host state of this stream is gone (its host was dropped).
    Gone,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::AlreadySent(what) => write!(f, "{what} were already sent"),
            StreamError::OutOfOrder(what) => write!(f, "out of order: {what}"),
            StreamError::UpstreamNotReached => f.write_str(
                "the upstream cannot respond: the request headers have not been forwarded to it",
            ),
            StreamError::Done => f.write_str("the stream is done"),
            StreamError::Gone => f.write_str("the stream's host state is gone"),
        }
    }
}

impl std::error::Error for StreamError {}

/// A call the plugin dispatched to another service, recorded by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Callout {
    /// The token the host returned (its low 2 bits are the kind, as in
    /// proxy-wasm-cpp-host: HTTP 0, gRPC call 1, gRPC stream 2, Redis 3).
    pub token: u32,
    /// The context that was effective when the call was made. (Envoy
    /// itself owns every callout by the plugin's root context and delivers
    /// the reply there; proxy-wasm then routes it by its own table.)
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
    /// `proxy_grpc_call`.
    Grpc {
        /// The upstream (cluster name or serialized `GrpcService`), lossy text.
        upstream: String,
        /// The gRPC service.
        service: String,
        /// The method.
        method: String,
        /// Initial metadata.
        initial_metadata: Vec<(String, HeaderValue)>,
        /// The serialized request message.
        message: Vec<u8>,
        /// The timeout.
        timeout: Duration,
    },
    /// `proxy_grpc_stream`.
    GrpcStream {
        /// The upstream, lossy text.
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
        /// The Redis service (cluster) name, as passed.
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
    /// The plugin cancelled it (`proxy_grpc_cancel`).
    Cancelled,
    /// The plugin closed it (`proxy_grpc_close`).
    Closed,
    /// Its reply (or failure) was delivered to the plugin.
    Delivered,
}

/// Why the host could not deliver a reply to a callout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The plugin never made a callout with this token.
    UnknownToken(u32),
    /// The callout was already answered, cancelled or closed.
    NotPending(u32),
    /// The reply is for another kind of callout (an HTTP reply to a Redis
    /// call, or the reverse).
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
/// The host keeps one client per cluster: a later init replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisInit {
    /// The service string as passed: the cluster name, then options
    /// (`outbound|6379||redis.static?db=1&buffer_flush_timeout=3&...`).
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
