//! An in-process Envoy for `cargo test`: run your plugin natively, drive
//! requests through it and assert on what the upstream and the client
//! would have received. Go's `proxytest` / `pkg/test`, for Rust.
//!
//! Add it to your plugin's `Cargo.toml` as a dev-dependency (beside the
//! SDK, at the same version or path):
//!
//! ```toml
//! [dev-dependencies]
//! higress-test-host = { path = "../higress-wrapper/higress-test-host" }
//! ```
//!
//! ```
//! use higress_wrapper::prelude::*;
//! use higress_test_host::{Action, TestHost};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     greeting: String,
//! }
//!
//! fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
//!     log::info!("path {}", ctx.path());
//!     ctx.set_request_header("x-greeting", &config.greeting);
//!     HeaderAction::Continue
//! }
//!
//! higress_wrapper::set_ctx! {
//!     name: "greeter",
//!     config: Config,
//!     on_request_headers: on_request_headers,
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let host = TestHost::start::<Plugin>(r#"{"greeting": "hello"}"#)?;
//!     let mut stream = host.http_stream();
//!     let action = stream.send_request_headers(&[(":path", "/a"), (":authority", "example.com")], true)?;
//!     assert_eq!(action, Action::Continue);
//!     assert_eq!(stream.upstream_request_header("x-greeting").unwrap(), "hello");
//!     assert_eq!(host.logs_containing("path /a").len(), 1);
//!     Ok(())
//! }
//! ```
//!
//! # How it works
//! The host defines, natively, every `proxy_*` host function of the
//! proxy-wasm ABI (and Higress's `proxy_redis_init` / `proxy_redis_call`),
//! and calls the plugin only through the module's `proxy_on_*` exports, as
//! Envoy does; the SDK has no test-only code path. The exports use the
//! `C-unwind` ABI, so a panic in plugin code reaches this host, which fails
//! the VM and resumes the panic in the test. Its state is per thread, so
//! tests run in parallel without interfering. One test binary holds one
//! SDK, and one plugin per [`TestHost`] (several hosts, even of different
//! plugins, may live on one thread).
//!
//! # What it models (Envoy 1.40, `envoy.filters.http.wasm`)
//! - **Lifecycle.** Context ids come from a per-thread counter. Start runs
//!   `proxy_on_context_create(root, 0)`, `proxy_on_vm_start`,
//!   `proxy_on_configure(root, size)` with the configuration readable
//!   (buffer type 7) only during that call; a `false` is a
//!   [`StartFailure`] carrying the logs. An HTTP context is created when its
//!   request headers arrive; [`HttpStream::done`] runs `proxy_on_log`,
//!   `proxy_on_done`, `proxy_on_delete`.
//! - **Header maps**: ordered multimaps of byte values, names lowercased,
//!   pseudo-headers first; `replace` removes every value then appends. A
//!   map is reachable only while Envoy holds it: request headers from their
//!   callback until they continue (then reads answer `BadArgument`), as in
//!   Envoy where the request headers are gone in the response phase; both
//!   maps again, read-only, in `proxy_on_log`.
//! - **Bodies**: `proxy_set_buffer_bytes` is Envoy's `copyFrom` (start 0
//!   drains `size` bytes then prepends; start at or past the end appends;
//!   anything else is `BadArgument`); reads are clamped. While the plugin
//!   answers `Pause` for a body chunk the host keeps buffering, so the next
//!   callback's size is the total; `Continue` forwards what is buffered.
//!   Buffering past the buffer limit (1 MiB by default) answers 413 (500
//!   for a response), as Envoy's filter manager.
//! - **Pausing.** A `Pause` from a headers callback is stock Envoy's
//!   *stop all* with ABI 0.2.1: body callbacks are held ([`Action::Held`])
//!   and delivered, in one callback, once the plugin calls
//!   `proxy_continue_stream`. With
//!   [`allow_on_headers_stop_iteration`](TestHostBuilder::allow_on_headers_stop_iteration)
//!   (Envoy's option) body callbacks run, and a body `Continue` releases
//!   the headers with the body. Higress picks the rule from the first ABI
//!   version the module exports; this SDK's modules export 0.2.100 first,
//!   which keeps `StopIteration` as it is: [`TestHostBuilder::higress`]
//!   models that.
//! - **Local responses** are recorded ([`LocalResponse`]) and sent after
//!   the callback returns: the request goes no further, and the reply
//!   passes through this filter's response callbacks like any response
//!   (Envoy sends local replies through the whole encoder chain). One sent
//!   while encoding goes straight to the client.
//! - **Properties** ([`Properties::Envoy`] or [`Properties::Higress`]),
//!   `proxy_set_property` (stored on the stream and read back by the same
//!   path), log level and captured log lines, a controllable clock
//!   with tick delivery at the period the plugin set, shared data, queues,
//!   metrics, foreign functions, and recorded callouts (HTTP, gRPC, Redis).
//! - **Higress's upstream calls** (with [`Properties::Higress`]):
//!   `proxy_get_upstream_hosts` answers the pairs given to
//!   [`TestHostBuilder::upstream_hosts`]; the host chosen with
//!   `proxy_set_upstream_override_host` and the data pushed with
//!   `proxy_inject_encoded_data_to_filter_chain` are recorded on the stream
//!   ([`HttpStream::upstream_override_host`],
//!   [`HttpStream::injected_encoded_data`]). On the stock-Envoy model they
//!   fail (`InternalFailure`): stock Envoy refuses such a module.
//! - **Callout replies** (HTTP, unary gRPC and Redis) are delivered the way Envoy
//!   delivers them: never inside the host call that dispatched them, always
//!   on the plugin's root context (Envoy owns every callout by the root;
//!   proxy-wasm then routes an HTTP reply by its own token table), with the
//!   reply readable only during the callback. See [Callouts](#callouts).
//! - **Redis** (Higress's `proxy_redis_init` / `proxy_redis_call`): one
//!   client per cluster, replaced by each init; an unknown cluster is
//!   `BadArgument` for both. Calls to a cluster registered with
//!   [`TestHostBuilder::redis_server`] go to a real server over TCP.
//! - **Panics.** Natively a panic in plugin code is caught inside the
//!   callback, the VM is marked failed (the stream gets Envoy's 503
//!   `wasm_fail_stream`; later callbacks are not delivered), and the panic
//!   is resumed in the test, so `std::panic::catch_unwind` around the call
//!   observes it.
//!
//! # Callouts
//! The host records each call ([`TestHost::callouts`]) and delivers its
//! reply **only when the test says so** — the model is explicit, so a test
//! can act in between (send a body chunk while a hook waits, end the
//! stream, reorder replies):
//! - [`respond_http`](TestHost::respond_http) / [`fail_http`](TestHost::fail_http)
//!   (a reset: the callback gets no headers) and
//!   [`respond_redis`](TestHost::respond_redis) / [`fail_redis`](TestHost::fail_redis)
//!   (status 1, `NetworkError`) answer one call now;
//! - [`advance_time`](TestHost::advance_time) times calls out on the host
//!   clock, as Envoy does: an HTTP call past its timeout gets Envoy's local
//!   `504 upstream request timeout`, a Redis call answered by the test
//!   (no server) past its client's timeout gets `NetworkError`;
//! - [`run_until_idle`](TestHost::run_until_idle) does the host's I/O —
//!   sends the Redis calls routed to a real server
//!   ([`TestHostBuilder::redis_server`]) and reads their replies — and
//!   delivers every ready reply, again while the plugin makes new calls.
//!   [`fetch_redis_replies`](TestHost::fetch_redis_replies) and
//!   [`deliver_ready`](TestHost::deliver_ready) split that in two, to
//!   deliver in an order of the test's choosing;
//! - [`block_on`](TestHost::block_on) runs a future (e.g. a Redis command)
//!   as a task of the root and returns its output.
//!
//! [`assert_idle`](TestHost::assert_idle) ends a test: no stream left
//! paused, no SDK task or call left waiting, no callout left unanswered.
//!
//! ```
//! use higress_wrapper::prelude::*;
//! use higress_wrapper::cluster::TargetCluster;
//! use higress_wrapper::http_client::HttpClient;
//! use higress_test_host::{Action, TestHost};
//!
//! fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
//!     let call = HttpClient::new(&TargetCluster::new("auth", "auth.local")).get("/check").send();
//!     ctx.then(call, |ctx, reply| {
//!         if let Ok(response) = reply {
//!             ctx.set_request_header("x-auth", response.status.to_string());
//!         }
//!         HeaderAction::Continue
//!     })
//! }
//! // A plugin without settings: `()` as the config, parsed by a function
//! // that accepts any JSON (serde would want `null` for `()`).
//! fn no_config(_: &JsonValue) -> Result<(), ConfigError> {
//!     Ok(())
//! }
//!
//! higress_wrapper::set_ctx! {
//!     name: "auth",
//!     config: (),
//!     parse_config: no_config,
//!     on_request_headers: on_request_headers,
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let host = TestHost::start::<Plugin>("{}")?;
//!     let mut stream = host.http_stream();
//!     assert_eq!(stream.send_request_headers(&[(":path", "/")], true)?, Action::Pause);
//!     let token = stream.callouts()[0].token;
//!     host.respond_http(token, 200, &[("x-user", "alice")], "ok")?;
//!     assert!(!stream.is_request_paused());
//!     assert_eq!(stream.upstream_request_header("x-auth").unwrap(), "200");
//!     host.assert_idle();
//!     Ok(())
//! }
//! ```
//!
//! # Both modes
//! [`both_modes!`] runs the same test bodies here and on the plugin's
//! compiled module in the workspace's wasm-mode host (`higress-wasm-host`,
//! wasmtime, as Higress's Envoy hosts the module): the two hosts offer the
//! same test API by name, and a test that passes in one mode and fails in
//! the other found a bug in one of them.
//!
//! # What it does not model
//! gRPC streams (unary gRPC calls are answered by
//! [`respond_grpc`](TestHost::respond_grpc) / [`fail_grpc`](TestHost::fail_grpc)); TCP streams; several worker threads; Envoy's
//! `x-request-id` generation (use [`HttpStream::set_request_id`]); wall
//! clock timeouts of HTTP calls (time is the host clock).
// A native host: on wasm32 the real host provides the ABI, and this crate is empty.
#![cfg(not(target_arch = "wasm32"))]
#![deny(missing_docs)]

mod abi;
mod driver;
mod dual;
mod model;
mod redis_io;
mod resp_frame;
mod stream;
mod types;
mod wire;

pub use dual::Mode;
pub use stream::HttpStream;
pub use types::{
    Action, Callout, CalloutKind, CalloutState, DeliveryError, LocalResponse, LogLevel, LogRecord,
    MetricValue, Properties, RedisInit, StartFailure, StartStage, StreamError,
};

use higress_wrapper::HttpPlugin;

/// What [`both_modes!`] expands to refers to; not an API.
#[doc(hidden)]
pub mod __private {
    pub use higress_wrapper::{HeaderValue, HttpPlugin};
}
use model::{
    with_registry, Answer, ForeignFn, HeaderMap, HostModel, Settings, Starting, StreamModel,
};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The clock's default start: 2024-01-01T00:00:00Z.
const DEFAULT_START_NANOS: u64 = 1_704_067_200_000_000_000;

/// Envoy's default per-connection buffer limit: 1 MiB.
const DEFAULT_BUFFER_LIMIT: usize = 1024 * 1024;

/// One running plugin (a root context) in the in-process host.
///
/// Created by [`TestHost::start`] or [`TestHost::builder`]. All methods take
/// `&self`: the state lives in the thread's host, and streams borrow the
/// host. Dropping it ends the root context (`proxy_on_done`,
/// `proxy_on_delete`). It cannot leave its thread.
pub struct TestHost {
    root: u32,
    _not_send: PhantomData<Rc<()>>,
}

impl fmt::Debug for TestHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestHost")
            .field("root_context_id", &self.root)
            .finish_non_exhaustive()
    }
}

impl TestHost {
    /// Starts plugin `P` with the JSON configuration `config` and the
    /// default settings (Higress properties, log level trace).
    ///
    /// ```
    /// # #[derive(serde::Deserialize)]
    /// # struct Config { #[allow(dead_code)] some_field: String }
    /// # higress_wrapper::set_ctx! { name: "p", config: Config }
    /// # fn main() {
    /// use higress_test_host::TestHost;
    ///
    /// let failure = TestHost::start::<Plugin>(r#"{"some_field": 1}"#).unwrap_err();
    /// assert!(!failure.logs_containing("some_field").is_empty());
    /// # }
    /// ```
    pub fn start<P: HttpPlugin>(config: impl AsRef<[u8]>) -> Result<TestHost, StartFailure> {
        TestHost::builder().start::<P>(config)
    }

    /// Settings for the host before starting a plugin.
    pub fn builder() -> TestHostBuilder {
        TestHostBuilder::default()
    }

    /// The root context id of the plugin.
    pub fn root_context_id(&self) -> u32 {
        self.root
    }

    /// A new HTTP stream (its context id is allocated now; the plugin
    /// creates its context when the request headers arrive).
    pub fn http_stream(&self) -> HttpStream<'_> {
        let root = self.root;
        let id = with_registry(|r| {
            let id = r.allocate_context(root);
            if let Some(h) = r.hosts.get_mut(&root) {
                h.streams.insert(id, StreamModel::default());
            }
            id
        })
        .unwrap_or(0);
        HttpStream::new(self, id)
    }

    fn read<R: Default>(&self, f: impl FnOnce(&HostModel) -> R) -> R {
        driver::with_host(self.root, |h| f(h)).unwrap_or_default()
    }

    fn write(&self, f: impl FnOnce(&mut HostModel)) {
        driver::with_host(self.root, f);
    }

    // ----- logs ------------------------------------------------------------------------

    /// Every line the plugin logged at or above the host's level, in order.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.read(|h| h.logs.clone())
    }

    /// The lines containing `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<LogRecord> {
        self.read(|h| {
            h.logs
                .iter()
                .filter(|l| l.message.contains(needle))
                .cloned()
                .collect()
        })
    }

    /// The lines logged at exactly `level`.
    pub fn logs_at(&self, level: LogLevel) -> Vec<LogRecord> {
        self.read(|h| {
            h.logs
                .iter()
                .filter(|l| l.level == level)
                .cloned()
                .collect()
        })
    }

    /// Forgets the lines logged so far.
    pub fn clear_logs(&self) {
        self.write(|h| h.logs.clear());
    }

    /// How many `proxy_log` calls were below the host's level (Envoy drops
    /// them). The SDK checks the level first, so for it this stays 0.
    pub fn suppressed_log_count(&self) -> usize {
        self.read(|h| h.suppressed_logs)
    }

    /// The host's log level (`proxy_get_log_level`).
    pub fn log_level(&self) -> LogLevel {
        self.read(|h| h.settings.log_level)
    }

    /// Changes the host's log level, as Envoy's admin `/logging` would.
    pub fn set_log_level(&self, level: LogLevel) {
        self.write(|h| h.settings.log_level = level);
    }

    // ----- time ------------------------------------------------------------------------

    /// The host clock (`proxy_get_current_time_nanoseconds`).
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.read(|h| h.now_nanos))
    }

    /// The tick period the plugin set, `None` if it set none (or 0).
    pub fn tick_period(&self) -> Option<Duration> {
        self.read(|h| {
            (h.tick_period_ms > 0).then(|| Duration::from_millis(u64::from(h.tick_period_ms)))
        })
    }

    /// Delivers one `proxy_on_tick` now, whatever the period (Go's `Tick()`).
    pub fn tick(&self) {
        driver::tick(self.root);
    }

    /// Moves the clock forward by `by`, delivering a tick at each period
    /// boundary crossed on the way (the clock reads that instant during the
    /// tick), like Envoy's tick timer.
    pub fn advance_time(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        driver::advance_time(self.root, nanos);
    }

    // ----- what the plugin did ------------------------------------------------------------

    /// Whether the VM failed (a plugin panic); the host then answers every
    /// stream with 503 and calls the plugin no more.
    pub fn vm_failed(&self) -> bool {
        self.read(|h| h.vm_failed)
    }

    /// Every callout the plugin dispatched, in order.
    pub fn callouts(&self) -> Vec<Callout> {
        self.read(|h| h.callouts.clone())
    }

    /// The Redis clients the plugin initialized (Higress `proxy_redis_init`).
    pub fn redis_inits(&self) -> Vec<RedisInit> {
        self.read(|h| h.redis_inits.clone())
    }

    /// A metric the plugin defined, by name.
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        self.read(|h| {
            h.metrics
                .iter()
                .find(|m| m.name == name)
                .map(|m| m.value.clone())
        })
    }

    /// A shared-data value, by key.
    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.read(|h| h.shared_data.get(key).map(|(v, _)| v.clone()))
    }

    /// Sets a shared-data value, as another worker of the VM would.
    pub fn set_shared_data(&self, key: &str, value: impl AsRef<[u8]>) {
        self.write(|h| {
            let _ = h.set_shared_data(key, value.as_ref(), 0);
        });
    }

    /// Pushes `value` onto the shared queue `name` the plugin registered,
    /// and delivers `proxy_on_queue_ready`. `false` if there is no such queue.
    pub fn enqueue_shared_queue(&self, name: &str, value: impl AsRef<[u8]>) -> bool {
        let queued = self.read(|h| h.resolve_queue(&h.settings.vm_id, name).ok());
        let Some(id) = queued else {
            return false;
        };
        let ok =
            driver::with_host(self.root, |h| h.enqueue(id, value.as_ref()).is_ok()) == Some(true);
        driver::drain(self.root);
        ok
    }

    /// Every `proxy_call_foreign_function` call: name and arguments.
    pub fn foreign_function_calls(&self) -> Vec<(String, Vec<u8>)> {
        self.read(|h| h.foreign_calls.clone())
    }

    /// Sets a host property every context reads (e.g. `["node", "id"]`).
    pub fn set_property(&self, path: &[&str], value: impl AsRef<[u8]>) {
        let path = path.iter().map(|p| (*p).to_owned()).collect();
        self.write(|h| {
            h.settings
                .host_properties
                .insert(path, value.as_ref().to_vec());
        });
    }

    /// Futures the SDK still polls for this plugin (hooks waiting on a call,
    /// detached work). A finished test should see 0: nothing left waiting.
    pub fn pending_tasks(&self) -> usize {
        higress_wrapper::pending_work().tasks
    }

    /// Host calls (Redis, HTTP) whose reply the SDK still waits for.
    pub fn pending_calls(&self) -> usize {
        higress_wrapper::pending_work().calls
    }

    /// ABI misuses the host saw (a null pointer, a bug in the host itself).
    /// Empty in a healthy test.
    pub fn abi_errors(&self) -> Vec<String> {
        self.read(|h| h.abi_errors.clone())
    }
}

// ----- callout replies -------------------------------------------------------------------

impl TestHost {
    /// The callouts still waiting for a reply, in the order they were made.
    pub fn pending_callouts(&self) -> Vec<Callout> {
        self.read(|h| {
            h.callouts
                .iter()
                .filter(|c| c.state == CalloutState::Pending)
                .cloned()
                .collect()
        })
    }

    /// Answers HTTP callout `token` with a response: `status`, then
    /// `headers` and `body`. Delivered now, on the root context (the
    /// plugin reads the headers and body during the callback only).
    pub fn respond_http(
        &self,
        token: u32,
        status: u16,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Result<(), DeliveryError> {
        let mut map = HeaderMap::default();
        map.add(":status", status.to_string().as_bytes());
        for (name, value) in headers {
            map.add(name, value.as_bytes());
        }
        let answer = Answer::Http {
            headers: map,
            body: body.as_ref().to_vec(),
            trailers: HeaderMap::default(),
        };
        driver::deliver(self.root, token, answer)
    }

    /// Fails HTTP callout `token` as Envoy does for a reset or a refused
    /// connection (`onHttpCallFailure`): the callback gets no headers and no
    /// body, and `proxy_get_status` answers `BrokenConnection` / `reset`.
    pub fn fail_http(&self, token: u32) -> Result<(), DeliveryError> {
        let answer = Answer::Http {
            headers: HeaderMap::default(),
            body: Vec::new(),
            trailers: HeaderMap::default(),
        };
        driver::deliver(self.root, token, answer)
    }

    /// Answers gRPC call `token` with its response `message` (the
    /// serialized protobuf), as Envoy's `onGrpcReceive` for a unary call.
    pub fn respond_grpc(&self, token: u32, message: impl AsRef<[u8]>) -> Result<(), DeliveryError> {
        let answer = Answer::Grpc {
            status: 0,
            message: message.as_ref().to_vec(),
            status_message: String::new(),
        };
        driver::deliver(self.root, token, answer)
    }

    /// Ends gRPC call `token` with a non-OK gRPC `status` (e.g. 14,
    /// UNAVAILABLE) and `message`, as Envoy's `onGrpcClose`; the plugin
    /// reads the message through `proxy_get_status`.
    pub fn fail_grpc(&self, token: u32, status: u32, message: &str) -> Result<(), DeliveryError> {
        let answer = Answer::Grpc {
            status,
            message: Vec::new(),
            status_message: message.to_owned(),
        };
        driver::deliver(self.root, token, answer)
    }

    /// Delivers one `message` on gRPC stream `token` (Envoy's
    /// `onGrpcReceive`); the stream stays open.
    pub fn grpc_stream_message(
        &self,
        token: u32,
        message: impl AsRef<[u8]>,
    ) -> Result<(), DeliveryError> {
        driver::deliver(
            self.root,
            token,
            Answer::GrpcStreamMessage(message.as_ref().to_vec()),
        )
    }

    /// Ends gRPC stream `token` from the server side with gRPC `status`
    /// (0: OK) and `message` (Envoy's `onGrpcClose`).
    pub fn close_grpc_stream(
        &self,
        token: u32,
        status: u32,
        message: &str,
    ) -> Result<(), DeliveryError> {
        let answer = Answer::GrpcStreamClose {
            status,
            status_message: message.to_owned(),
        };
        driver::deliver(self.root, token, answer)
    }

    /// Answers Redis callout `token` with `reply`, the raw RESP bytes of
    /// one reply (`b"$5\r\nhello\r\n"`, `b"-ERR x\r\n"`), status 0.
    pub fn respond_redis(&self, token: u32, reply: impl AsRef<[u8]>) -> Result<(), DeliveryError> {
        let answer = Answer::Redis {
            status: 0,
            data: reply.as_ref().to_vec(),
        };
        driver::deliver(self.root, token, answer)
    }

    /// Fails Redis callout `token` as Envoy reports a connection failure or
    /// timeout: status 1 (`NetworkError`), no data.
    pub fn fail_redis(&self, token: u32) -> Result<(), DeliveryError> {
        driver::deliver(self.root, token, Answer::redis_failure())
    }

    /// Does the host's I/O and delivers every reply that is ready: sends the
    /// pending Redis calls routed to real servers and reads their replies,
    /// delivers them, and repeats while the plugin makes new calls. Calls
    /// the test answers by hand stay pending. Returns how many replies were
    /// delivered.
    pub fn run_until_idle(&self) -> usize {
        driver::run_until_idle(self.root)
    }

    /// The first half of [`run_until_idle`](Self::run_until_idle): sends the
    /// pending Redis calls routed to real servers and reads their replies,
    /// without delivering them. Returns the tokens whose reply is ready;
    /// [`deliver_ready`](Self::deliver_ready) delivers them, in any order.
    pub fn fetch_redis_replies(&self) -> Vec<u32> {
        driver::fetch_redis(self.root);
        self.read(|h| h.ready.iter().map(|(token, _)| *token).collect())
    }

    /// Delivers a reply [`fetch_redis_replies`](Self::fetch_redis_replies)
    /// read.
    pub fn deliver_ready(&self, token: u32) -> Result<(), DeliveryError> {
        let answer = driver::with_host(self.root, |h| {
            let at = h.ready.iter().position(|(t, _)| *t == token)?;
            h.ready.remove(at).map(|(_, answer)| answer)
        })
        .flatten();
        match answer {
            Some(answer) => driver::deliver(self.root, token, answer),
            None => Err(DeliveryError::NotPending(token)),
        }
    }

    /// Why Redis calls routed to a real server failed (connection refused,
    /// closed, timed out, malformed reply), in order: what the plugin saw
    /// as `NetworkError`.
    pub fn redis_failures(&self) -> Vec<String> {
        self.read(|h| h.redis_failures.clone())
    }

    /// Runs `future` inside the plugin's root context (as detached work or a
    /// tick's would run), delivering replies with
    /// [`run_until_idle`](Self::run_until_idle) until it completes, and
    /// returns its output. Handy to test Redis commands directly:
    /// `host.block_on(client.get("k"))`.
    ///
    /// # Panics
    /// If the future still waits when no reply can be delivered any more (a
    /// call the test must answer by hand), or if the plugin panics.
    #[allow(clippy::panic)] // a test helper: failing the test is its job
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        /// Wakes by raising a flag; the loop below polls again.
        struct Flag(AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(AtomicBool::new(true)));
        let waker = Waker::from(Arc::clone(&flag));
        let mut future = Box::pin(future);
        loop {
            if flag.0.swap(false, Ordering::SeqCst) {
                let polled = driver::in_root(self.root, || {
                    future.as_mut().poll(&mut Context::from_waker(&waker))
                });
                if let Some(Poll::Ready(value)) = polled {
                    return value;
                }
            }
            if self.run_until_idle() == 0 && !flag.0.load(Ordering::SeqCst) {
                break;
            }
        }
        panic!(
            "block_on: the future still waits, but no reply can be delivered; pending callouts: {:?}",
            self.pending_callouts()
        );
    }

    /// What keeps the host from being idle, `None` when it is: streams
    /// left paused, SDK tasks and calls still waiting, callouts not
    /// answered. See [`assert_idle`](Self::assert_idle).
    pub fn idle_report(&self) -> Option<String> {
        let mut problems: Vec<String> = self.read(|h| {
            let mut out = Vec::new();
            for (id, s) in &h.streams {
                if !s.created || s.done || s.deleted {
                    continue;
                }
                if s.request_open() && s.req.paused() {
                    out.push(format!(
                        "stream {id}: the request is paused (resumed {} time(s))",
                        s.req.resumes
                    ));
                }
                if !s.reset && !s.failed && s.resp.paused() {
                    out.push(format!(
                        "stream {id}: the response is paused (resumed {} time(s))",
                        s.resp.resumes
                    ));
                }
            }
            for c in &h.callouts {
                if c.state != CalloutState::Pending {
                    continue;
                }
                match &c.kind {
                    types::CalloutKind::Http { upstream, .. } => out.push(format!(
                        "HTTP callout {} to {upstream} (context {}) was never answered",
                        c.token, c.context_id
                    )),
                    types::CalloutKind::Redis { service, .. } => out.push(format!(
                        "Redis callout {} to {service} (context {}) was never answered",
                        c.token, c.context_id
                    )),
                    _ => {}
                }
            }
            out
        });
        let tasks = self.pending_tasks();
        if tasks > 0 {
            problems.push(format!("{tasks} SDK task(s) still waiting"));
        }
        let calls = self.pending_calls();
        if calls > 0 {
            problems.push(format!("{calls} SDK call(s) still waiting for a reply"));
        }
        if problems.is_empty() {
            None
        } else {
            Some(problems.join("; "))
        }
    }

    /// Asserts the host is idle: no live stream is paused (each was resumed
    /// or answered), no SDK task or call waits (the counts are per thread),
    /// and every HTTP and Redis callout was answered.
    ///
    /// # Panics
    /// With the list of what is left, if anything is.
    #[track_caller]
    #[allow(clippy::panic)] // an assertion: failing the test is its job
    pub fn assert_idle(&self) {
        if let Some(report) = self.idle_report() {
            panic!("the test host is not idle: {report}");
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let root = self.root;
        // Never call the plugin while a test is already failing: a second
        // panic would abort.
        let call =
            !std::thread::panicking() && driver::with_host(root, |h| !h.vm_failed) == Some(true);
        if call {
            // Contexts a leaked stream left behind.
            let live: Vec<u32> = self.read(|h| {
                h.streams
                    .iter()
                    .filter(|(_, s)| s.created && !s.deleted)
                    .map(|(id, _)| *id)
                    .collect()
            });
            for id in live {
                driver::invoke(root, id, || abi::on_delete(id));
            }
            driver::invoke(root, root, || abi::on_done(root));
            driver::invoke(root, root, || abi::on_delete(root));
        }
        with_registry(|r| {
            r.hosts.remove(&root);
            r.owners.retain(|_, owner| *owner != root);
        });
    }
}

/// Settings of a [`TestHost`], then [`start`](TestHostBuilder::start).
///
/// ```
/// # #[derive(serde::Deserialize)]
/// # struct Config {}
/// # higress_wrapper::set_ctx! { name: "p", config: Config }
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use higress_test_host::{LogLevel, Properties, TestHost};
///
/// let host = TestHost::builder()
///     .properties(Properties::Envoy)
///     .log_level(LogLevel::Info)
///     .allow_on_headers_stop_iteration(true)
///     .start::<Plugin>("{}")?;
/// assert_eq!(host.log_level(), LogLevel::Info);
/// # Ok(()) }
/// ```
#[must_use]
pub struct TestHostBuilder {
    settings: Settings,
    plugin_name: Option<String>,
}

impl fmt::Debug for TestHostBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("TestHostBuilder")
            .field("properties", &s.properties)
            .field("log_level", &s.log_level)
            .field(
                "allow_on_headers_stop_iteration",
                &s.allow_on_headers_stop_iteration,
            )
            .field("plugin_name", &self.plugin_name)
            .field("root_id", &s.root_id)
            .field("buffer_limit", &s.buffer_limit)
            .finish_non_exhaustive()
    }
}

impl Default for TestHostBuilder {
    fn default() -> Self {
        TestHostBuilder {
            settings: Settings {
                properties: Properties::default(),
                log_level: LogLevel::Trace,
                allow_on_headers_stop_iteration: false,
                plugin_name: String::new(),
                root_id: String::new(),
                vm_id: String::new(),
                vm_configuration: Vec::new(),
                host_properties: BTreeMap::new(),
                buffer_limit: DEFAULT_BUFFER_LIMIT,
                start_time_nanos: DEFAULT_START_NANOS,
                clusters: None,
                foreign_functions: BTreeMap::new(),
                redis_servers: BTreeMap::new(),
                upstream_hosts: Vec::new(),
            },
            plugin_name: None,
        }
    }
}

impl TestHostBuilder {
    /// Which host's properties to model (default [`Properties::Higress`]).
    pub fn properties(mut self, properties: Properties) -> Self {
        self.settings.properties = properties;
        self
    }

    /// The host's log level (default trace: everything is kept).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.settings.log_level = level;
        self
    }

    /// Higress running this SDK's module: Higress's properties and ABI
    /// 0.2.100 semantics (the module's first ABI export), where a `Pause`
    /// from a headers callback keeps the body callbacks running, as
    /// [`allow_on_headers_stop_iteration`](Self::allow_on_headers_stop_iteration)
    /// does on stock Envoy.
    pub fn higress(self) -> Self {
        self.properties(Properties::Higress)
            .allow_on_headers_stop_iteration(true)
    }

    /// Stock Envoy running the module as ABI 0.2.1 with default options:
    /// Envoy's properties, and a `Pause` from a headers callback becomes
    /// *stop all*.
    pub fn stock_envoy(self) -> Self {
        self.properties(Properties::Envoy)
            .allow_on_headers_stop_iteration(false)
    }

    /// Envoy's `allow_on_headers_stop_iteration` (default false, as stock
    /// Envoy runs a 0.2.1 module): whether a `Pause` from a headers callback
    /// lets body callbacks run.
    pub fn allow_on_headers_stop_iteration(mut self, allow: bool) -> Self {
        self.settings.allow_on_headers_stop_iteration = allow;
        self
    }

    /// The `plugin_name` property (default: the plugin's `NAME`).
    pub fn plugin_name(mut self, name: impl Into<String>) -> Self {
        self.plugin_name = Some(name.into());
        self
    }

    /// The `plugin_root_id` property (default empty, as Envoy's `root_id`).
    pub fn root_id(mut self, root_id: impl Into<String>) -> Self {
        self.settings.root_id = root_id.into();
        self
    }

    /// The `plugin_vm_id` property (default empty).
    pub fn vm_id(mut self, vm_id: impl Into<String>) -> Self {
        self.settings.vm_id = vm_id.into();
        self
    }

    /// The VM configuration (buffer type 6, `proxy_on_vm_start`'s size).
    pub fn vm_configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.settings.vm_configuration = configuration.into();
        self
    }

    /// A host property every context reads, e.g. `["node", "id"]`.
    pub fn property(mut self, path: &[&str], value: impl AsRef<[u8]>) -> Self {
        let path = path.iter().map(|p| (*p).to_owned()).collect();
        self.settings
            .host_properties
            .insert(path, value.as_ref().to_vec());
        self
    }

    /// The per-stream buffer limit in bytes (default 1 MiB).
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.settings.buffer_limit = bytes;
        self
    }

    /// The clock's start (default 2024-01-01T00:00:00Z).
    pub fn start_time(mut self, time: SystemTime) -> Self {
        let nanos = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.settings.start_time_nanos = nanos;
        self
    }

    /// Restricts the clusters callouts may target (default: any); a call to
    /// another answers `BadArgument`, as Envoy for an unknown cluster.
    pub fn clusters<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.clusters = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Routes the Redis calls to `cluster` (the cluster name, e.g.
    /// `outbound|6379||redis.static`) to a real server at `address`, as
    /// Higress's Envoy would: one connection per cluster, opened on the
    /// first call after each `proxy_redis_init`, which sends `AUTH` and
    /// `SELECT` from the init's arguments first (their replies discarded, as
    /// Envoy's `RawClientImpl::initialize`). Each call is sent and its reply
    /// read by [`TestHost::run_until_idle`], within the client's timeout
    /// (wall clock); a refused, closed or timed-out connection answers the
    /// call with `NetworkError`. The cluster counts as known even when
    /// [`clusters`](Self::clusters) restricts the others.
    pub fn redis_server(mut self, cluster: impl Into<String>, address: SocketAddr) -> Self {
        self.settings.redis_servers.insert(cluster.into(), address);
        self
    }

    /// Higress: adds one host of the route's cluster to what
    /// `proxy_get_upstream_hosts` answers, with the metadata Higress's Envoy
    /// prints for it, byte for byte: `health` is `Healthy`, `Degraded` or
    /// `Unhealthy`, `metrics` the text the cluster's health check stored
    /// (left out when `None` or empty, as Higress does). For
    /// `("10.0.0.1:80", "Healthy", Some("m 1\n"))` the metadata is
    /// `"{\n\"health_status\": \"Healthy\",\n\"metrics\": \"m 1\\n\"\n}"`.
    /// Answered only with [`Properties::Higress`].
    pub fn upstream_host(
        mut self,
        address: impl Into<String>,
        health: &str,
        metrics: Option<&str>,
    ) -> Self {
        let info = wire::higress_host_info(health, metrics);
        self.settings.upstream_hosts.push((address.into(), info));
        self
    }

    /// Higress: the hosts `proxy_get_upstream_hosts` reports for the route's
    /// cluster, as raw `(address, metadata JSON)` pairs (replacing any
    /// given before), for metadata Higress would not send; prefer
    /// [`upstream_host`](Self::upstream_host). Answered only with
    /// [`Properties::Higress`] (stock Envoy has no such call).
    pub fn upstream_hosts<I, A, M>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = (A, M)>,
        A: Into<String>,
        M: Into<String>,
    {
        self.settings.upstream_hosts = hosts
            .into_iter()
            .map(|(a, m)| (a.into(), m.into()))
            .collect();
        self
    }

    /// Registers a foreign function (`proxy_call_foreign_function`): its
    /// result is returned to the plugin (`None`: no data).
    pub fn foreign_function(
        mut self,
        name: impl Into<String>,
        f: impl Fn(&[u8]) -> Option<Vec<u8>> + 'static,
    ) -> Self {
        let f: ForeignFn = Rc::new(f);
        self.settings.foreign_functions.insert(name.into(), f);
        self
    }

    /// Registers plugin `P` on this thread and starts it with the JSON
    /// configuration `config`. On failure the logs explain why.
    pub fn start<P: HttpPlugin>(self, config: impl AsRef<[u8]>) -> Result<TestHost, StartFailure> {
        let mut settings = self.settings;
        settings.plugin_name = self.plugin_name.unwrap_or_else(|| P::NAME.to_owned());
        let config = config.as_ref().to_vec();
        let vm_size = settings.vm_configuration.len();
        let config_size = config.len();
        // What the module's `_initialize` does on wasm.
        higress_wrapper::__private::register::<P>();
        let root = with_registry(|r| {
            let root = r.allocate_context(0);
            r.hosts.insert(root, HostModel::new(settings, config));
            root
        });
        let Some(root) = root else {
            return Err(StartFailure {
                stage: StartStage::VmStart,
                logs: Vec::new(),
            });
        };
        // From here on, dropping `host` (also while unwinding) cleans up.
        let host = TestHost {
            root,
            _not_send: PhantomData,
        };
        driver::invoke(root, root, || abi::on_context_create(root, 0));
        let starting = |stage| host.write(|h| h.starting = stage);
        starting(Some(Starting::VmStart));
        let vm_ok = driver::invoke(root, root, || abi::on_vm_start(root, vm_size));
        starting(None);
        if !vm_ok {
            return Err(host.fail(StartStage::VmStart));
        }
        starting(Some(Starting::Configure));
        let configured = driver::invoke(root, root, || abi::on_configure(root, config_size));
        starting(None);
        driver::drain(root);
        if !configured {
            return Err(host.fail(StartStage::Configure));
        }
        Ok(host)
    }
}

impl TestHost {
    /// Reconfigures the plugin with a new configuration, as Envoy does on a
    /// config update that keeps the VM: `proxy_on_configure` runs again on
    /// the same root. Requests already in flight keep the config they
    /// matched; new ones use the new config. On `Err` (the plugin refused
    /// the config, with the reason in the logs) the old config stays.
    pub fn reconfigure(&self, config: impl AsRef<[u8]>) -> Result<(), Vec<LogRecord>> {
        let config = config.as_ref().to_vec();
        let size = config.len();
        let root = self.root;
        self.write(|h| {
            h.plugin_config = config;
            h.starting = Some(Starting::Configure);
        });
        let configured = driver::invoke(root, root, || abi::on_configure(root, size));
        self.write(|h| h.starting = None);
        driver::drain(root);
        if configured {
            Ok(())
        } else {
            Err(self.logs())
        }
    }

    fn fail(self, stage: StartStage) -> StartFailure {
        let logs = self.logs();
        drop(self);
        StartFailure { stage, logs }
    }
}
