//! An async Redis client on Higress's Redis host calls.
//!
//! Higress (not stock Envoy) lets a plugin send Redis commands through
//! Envoy's connection pool: `proxy_redis_init` configures the worker's client
//! for a cluster, `proxy_redis_call` sends one RESP command, and the reply
//! comes back later on the root context (`proxy_on_redis_call_response`).
//! This client hides all of it: each command is a future, the SDK pauses and
//! resumes the request around it, and the reply is decoded into a Rust type.
//!
//! ```
//! use higress_wrapper::cluster::FqdnCluster;
//! use higress_wrapper::prelude::*;
//! use higress_wrapper::redis::RedisClient;
//! use std::time::Duration;
//!
//! fn client() -> Result<RedisClient, ConfigError> {
//!     RedisClient::builder(&FqdnCluster::new("redis.static", 6379))
//!         .password("secret")
//!         .database(1)
//!         .timeout(Duration::from_millis(500))
//!         .build()
//! }
//!
//! fn on_request_headers(ctx: &mut HttpContext, redis: &RedisClient) -> HeaderAction {
//!     let get = redis.get("greeting");
//!     let handle = ctx.handle();
//!     HeaderAction::wait(async move {
//!         let value = get.await?; // Result<Option<Vec<u8>>, RedisError>
//!         if let Some(value) = value {
//!             handle.with(|ctx| ctx.set_request_header("x-greeting", value));
//!         }
//!         Ok::<_, higress_wrapper::redis::RedisError>(HeaderAction::Continue)
//!     })
//! }
//! # let _ = (client, on_request_headers);
//! ```
//!
//! Only plugins that call Redis import `proxy_redis_init`/`proxy_redis_call`;
//! stock Envoy refuses to load a module that imports them ("missing import"),
//! so Redis plugins run on Higress only.
//!
//! **Host behaviour to know:** `proxy_redis_init` configures one client per
//! (worker, cluster): it replaces the username, password and database for
//! every plugin on that worker calling that cluster, and closes its
//! connections. The builder therefore refuses, within one configuration,
//! two clients for the same cluster with different credentials or database.

mod commands;
pub mod resp;
mod sha1;

use crate::callout::{self, CallFuture, Reply};
use crate::cluster::Cluster;
use crate::config::ConfigError;
use crate::error::HostError;
mod service;
use crate::task;
pub use resp::{DecodeError, FromValue, FromValueError, Value};
pub use service::RedisService;

/// The SHA-1 digest of `data`, as Redis's `redis.sha1hex` computes it (in
/// bytes): for keys a plugin and its Lua script must agree on, such as
/// ai-load-balancer's prefix hashes, and for `EVALSHA` ids. Not for
/// security.
///
/// ```
/// let hex: String = higress_wrapper::redis::sha1(b"abc")
///     .iter()
///     .map(|b| format!("{b:02x}"))
///     .collect();
/// assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
/// ```
pub fn sha1(data: &[u8]) -> [u8; 20] {
    sha1::digest(data)
}
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

pub use crate::http_client::TimeoutMs;
pub use commands::ToArg;

/// Why a Redis call failed. Every variant is something a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The gateway has no cluster of that name.
    #[error(
        "the gateway has no redis cluster `{cluster}` (host answered \"bad argument\"): register the \
         service first (Higress: an McpBridge registry or service source, e.g. a static service \
         `redis` gives `outbound|6379||redis.static`; plain Envoy: a cluster with that name)"
    )]
    UnknownCluster {
        /// The cluster name that was refused.
        cluster: String,
    },
    /// The host refused the call for another reason.
    #[error("the host refused the redis call to `{cluster}`: {source}")]
    Host {
        /// The cluster.
        cluster: String,
        /// The host's status.
        source: HostError,
    },
    /// The connection failed or the call timed out (the host reports both
    /// as a network error).
    #[error("network error or timeout talking to redis cluster `{cluster}`")]
    Network {
        /// The cluster.
        cluster: String,
    },
    /// Redis answered with an error reply (`-ERR ...`).
    #[error("redis error: {0}")]
    Reply(String),
    /// Redis refused the call as unauthenticated (`NOAUTH`), after the
    /// client re-initialized once.
    ///
    /// The host sends `AUTH` when it opens a connection and discards Redis's
    /// answer, so a wrong password, a missing password and an unknown or
    /// disabled user all end in the same `NOAUTH Authentication required.`;
    /// the message says which of them the configuration allows.
    #[error("{}", auth_message(cluster, *password_configured, username, reply))]
    Auth {
        /// The cluster.
        cluster: String,
        /// Whether the client has a password configured.
        password_configured: bool,
        /// The configured user name, if any (empty: the default user).
        username: String,
        /// Redis's reply, e.g. `NOAUTH Authentication required.`.
        reply: String,
    },
    /// The reply was not valid RESP.
    #[error("cannot decode the redis reply: {0}")]
    Decode(DecodeError),
    /// The reply had another shape than the command's result type.
    #[error("unexpected redis reply: {0}")]
    Type(FromValueError),
    /// The request that made the call ended before the reply.
    #[error("the redis call was cancelled: its request has ended")]
    Cancelled,
    /// The command cannot run through the Higress host.
    #[error("`{command}` cannot run through the Higress redis host call: {why}")]
    Unsupported {
        /// The command.
        command: String,
        /// Why not.
        why: &'static str,
    },
}

fn auth_message(cluster: &str, password_configured: bool, username: &str, reply: &str) -> String {
    if password_configured {
        let user = if username.is_empty() {
            "the default user".to_owned()
        } else {
            format!("user `{username}`")
        };
        format!(
            "redis cluster `{cluster}` refused the configured credentials ({user} with the \
             configured password): the password is wrong, or the user is unknown or disabled \
             (the gateway discards Redis's answer to AUTH, so these look alike); redis said: {reply}"
        )
    } else {
        format!(
            "redis cluster `{cluster}` requires authentication but no password is configured for \
             it: set the client's password (and username for an ACL user); redis said: {reply}"
        )
    }
}

impl From<FromValueError> for RedisError {
    fn from(err: FromValueError) -> Self {
        match err {
            FromValueError::Redis(message) => RedisError::Reply(message),
            other => RedisError::Type(other),
        }
    }
}

/// Options of [`RedisClient::builder`] (Go's `Init(username, password,
/// timeout, opts...)`).
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisClientBuilder {
    cluster: String,
    username: String,
    password: String,
    timeout: Duration,
    database: u32,
    buffer_flush_timeout: Duration,
    max_buffer_size: usize,
}

/// Credentials registered per cluster in the configuration being parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    username: String,
    password_hash: [u8; 20],
    database: u32,
}

thread_local! {
    /// Clusters configured by the configuration being parsed (cleared by the
    /// SDK before each configure): two clients for one cluster must agree.
    static REGISTRY: RefCell<Vec<(String, Registration)>> = const { RefCell::new(Vec::new()) };
}

/// Called by the SDK before parsing a new configuration.
pub(crate) fn reset_registry() {
    let _ = REGISTRY.try_with(|r| r.try_borrow_mut().map(|mut r| r.clear()));
}

impl RedisClientBuilder {
    /// The Redis username (ACL); empty for none.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = username.into();
        self
    }
    /// The password; empty for none.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = password.into();
        self
    }
    /// Per-call timeout enforced by the host (default 1 s). The host counts
    /// whole milliseconds: a timeout is rounded up to the next millisecond,
    /// and [`build`](Self::build) refuses one under 1 ms (the host would
    /// read 0 as no timeout at all). From configuration, read it as a
    /// [`TimeoutMs`], which refuses 0 naming the field.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// The database (`SELECT n` on each connection; Go's `WithDataBase`).
    pub fn database(mut self, database: u32) -> Self {
        self.database = database;
        self
    }
    /// How long the host batches commands before flushing (default 3 ms;
    /// Go's `WithBufferFlushTimeout`). Zero disables the batching delay;
    /// other values are rounded up to whole milliseconds.
    pub fn buffer_flush_timeout(mut self, timeout: Duration) -> Self {
        self.buffer_flush_timeout = timeout;
        self
    }
    /// How many bytes the host batches before flushing (default 1024; Go's
    /// `WithMaxBufferSizeBeforeFlush`).
    pub fn max_buffer_size(mut self, bytes: usize) -> Self {
        self.max_buffer_size = bytes;
        self
    }
    /// Sends every command at once, for latency-sensitive use (Go's
    /// `WithDisableBuffer`).
    pub fn disable_buffering(mut self) -> Self {
        self.buffer_flush_timeout = Duration::ZERO;
        self.max_buffer_size = 0;
        self
    }

    /// The client. Nothing is sent yet: the host client is initialized on
    /// the first command (and again after a failure). Fails if the timeout
    /// is under 1 ms, or if another client in the same configuration uses
    /// this cluster with other credentials or another database (the host
    /// keeps one per cluster).
    pub fn build(self) -> Result<RedisClient, ConfigError> {
        if self.timeout < Duration::from_millis(1) {
            return Err(ConfigError::new(format!(
                "redis client for `{}`: timeout must be at least 1 ms (got {} µs): the host \
                 would read it as 0, which means no timeout at all",
                self.cluster,
                self.timeout.as_micros()
            )));
        }
        let timeout_ms = crate::http_client::host_timeout_ms(self.timeout).unwrap_or(1);
        let registration = Registration {
            username: self.username.clone(),
            password_hash: sha1::digest(self.password.as_bytes()),
            database: self.database,
        };
        let conflict = REGISTRY
            .try_with(|r| {
                let mut r = r.try_borrow_mut().ok()?;
                match r.iter().find(|(c, _)| *c == self.cluster) {
                    Some((_, existing)) if *existing != registration => Some(true),
                    Some(_) => Some(false),
                    None => {
                        r.push((self.cluster.clone(), registration));
                        Some(false)
                    }
                }
            })
            .ok()
            .flatten()
            .unwrap_or(false);
        if conflict {
            return Err(ConfigError::new(format!(
                "redis cluster `{}` is configured twice with different credentials or database; \
                 the gateway keeps one redis client per cluster and worker, so all rules must agree",
                self.cluster
            )));
        }
        let init_service = format!(
            "{}?db={}&buffer_flush_timeout={}&max_buffer_size_before_flush={}",
            self.cluster,
            self.database,
            // 0 disables buffering; any other value counts in whole
            // milliseconds, rounded up so that 0.5 ms does not become 0.
            crate::http_client::host_timeout_ms(self.buffer_flush_timeout).unwrap_or(0),
            self.max_buffer_size
        );
        Ok(RedisClient {
            inner: Rc::new(ClientInner {
                log_source: format!("redis cluster `{}`", self.cluster),
                cluster: self.cluster,
                init_service,
                username: self.username,
                password: self.password,
                timeout_ms,
                ready: Cell::new(false),
                last_reauth_ms: Cell::new(None),
            }),
        })
    }
}

struct ClientInner {
    /// `redis cluster `<name>``: the source of its failure log lines.
    log_source: String,
    cluster: String,
    init_service: String,
    username: String,
    password: String,
    timeout_ms: u32,
    ready: Cell<bool>,
    last_reauth_ms: Cell<Option<u64>>,
}

/// A Redis client for one cluster (Go's `RedisClusterClient`). Cheap to
/// clone; keep it in your config (build it in `parse_config`).
#[derive(Clone)]
pub struct RedisClient {
    inner: Rc<ClientInner>,
}

impl fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("RedisClient")
            .field("cluster", &self.inner.cluster)
            .field("username", &self.inner.username)
            .field("ready", &self.inner.ready.get())
            .finish_non_exhaustive()
    }
}

impl RedisClient {
    /// Starts building a client for `cluster`.
    pub fn builder(cluster: &dyn Cluster) -> RedisClientBuilder {
        RedisClientBuilder {
            cluster: cluster.cluster_name(),
            username: String::new(),
            password: String::new(),
            timeout: Duration::from_millis(1000),
            database: 0,
            buffer_flush_timeout: Duration::from_millis(3),
            max_buffer_size: 1024,
        }
    }

    /// The cluster name commands go to.
    pub fn cluster_name(&self) -> &str {
        &self.inner.cluster
    }

    /// Whether the host client was initialized successfully (Go's `Ready()`).
    pub fn ready(&self) -> bool {
        self.inner.ready.get()
    }

    /// Initializes the host client now (otherwise the first command does).
    /// The call is cheap for the host but closes the worker's connections to
    /// that cluster: don't call it per request.
    pub fn init(&self) -> Result<(), RedisError> {
        let inner = &self.inner;
        match crate::host::redis_init(
            &inner.init_service,
            &inner.username,
            &inner.password,
            inner.timeout_ms,
        ) {
            Ok(()) => {
                inner.ready.set(true);
                log::debug!("redis client for {} initialized", inner.cluster);
                crate::logging::recovered(&inner.log_source);
                Ok(())
            }
            Err(e) => {
                inner.ready.set(false);
                let err = host_error(&inner.cluster, e);
                crate::logging::failure(
                    log::Level::Error,
                    &inner.log_source,
                    format_args!("failed to init redis: {err}; will retry on the next command"),
                );
                Err(err)
            }
        }
    }

    fn ensure_ready(&self) -> Result<(), RedisError> {
        if self.inner.ready.get() {
            Ok(())
        } else {
            self.init()
        }
    }

    /// Re-authenticates after a `NOAUTH` reply, at most once per second.
    fn reauth(&self) -> bool {
        let now = crate::host::current_time_nanos().map_or(0, |n| n / 1_000_000);
        let recent = self
            .inner
            .last_reauth_ms
            .get()
            .is_some_and(|last| now.saturating_sub(last) < 1000);
        if recent {
            return false;
        }
        self.inner.last_reauth_ms.set(Some(now));
        self.inner.ready.set(false);
        log::warn!("redis {}: NOAUTH, re-initializing once", self.inner.cluster);
        self.init().is_ok()
    }

    /// Sends a command given as arguments and returns the raw reply (Go's
    /// `Command`). Binary-safe. Commands the host cannot carry (`SUBSCRIBE`,
    /// `MONITOR`, `HELLO 3`, `MULTI`/`EXEC` across calls) fail with
    /// [`RedisError::Unsupported`].
    pub fn command<A: AsRef<[u8]>>(&self, args: &[A]) -> RedisFuture<Value> {
        let refs: Vec<&[u8]> = args.iter().map(AsRef::as_ref).collect();
        let unsupported = args
            .first()
            .and_then(|first| unsupported(first.as_ref(), args.get(1).map(AsRef::as_ref)));
        match unsupported {
            Some(err) => RedisFuture::failed(err),
            None => self.send(resp::encode_command(&refs), convert_value),
        }
    }

    /// Sends an encoded command; the reply is converted with `convert`.
    pub(crate) fn send<T>(
        &self,
        query: Vec<u8>,
        convert: fn(Value) -> Result<T, RedisError>,
    ) -> RedisFuture<T> {
        RedisFuture {
            client: self.clone(),
            state: State::Ready {
                query,
                retried: false,
            },
            convert,
            fallback: None,
            _out: PhantomData,
        }
    }
}

fn host_error(cluster: &str, err: HostError) -> RedisError {
    match err {
        HostError::BadArgument => RedisError::UnknownCluster {
            cluster: cluster.to_owned(),
        },
        source => RedisError::Host {
            cluster: cluster.to_owned(),
            source,
        },
    }
}

/// Commands the Higress host cannot relay.
fn unsupported(command: &[u8], first_arg: Option<&[u8]>) -> Option<RedisError> {
    let name = String::from_utf8_lossy(command).to_ascii_uppercase();
    let why = match name.as_str() {
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "MONITOR" => {
            "each call gets exactly one reply, so pushed messages cannot be delivered"
        }
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" => {
            "consecutive calls may use different pooled connections; use EVAL for atomic work"
        }
        "HELLO" if first_arg.is_some_and(|a| a != b"2") => {
            "the host relays RESP2 only (Envoy's redis codec)"
        }
        "SELECT" | "AUTH" => "set the database and credentials on the client builder instead",
        _ => return None,
    };
    Some(RedisError::Unsupported { command: name, why })
}

fn convert_value(v: Value) -> Result<Value, RedisError> {
    Ok(v)
}

enum State {
    Ready {
        query: Vec<u8>,
        retried: bool,
    },
    Sent {
        call: CallFuture,
        query: Vec<u8>,
        retried: bool,
    },
    Failed(RedisError),
    Done,
}

/// A Redis command in flight; `.await` it (inside a future you pass to
/// [`HeaderAction::wait`](crate::HeaderAction::wait) or
/// [`HttpContext::spawn_detached`](crate::HttpContext::spawn_detached)).
/// It is sent on first poll.
#[must_use = "a redis command is sent only when awaited"]
pub struct RedisFuture<T> {
    client: RedisClient,
    state: State,
    convert: fn(Value) -> Result<T, RedisError>,
    /// EVALSHA: the EVAL to send on `NOSCRIPT`.
    fallback: Option<Vec<u8>>,
    _out: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for RedisFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFuture")
            .field("cluster", &self.client.inner.cluster)
            .finish_non_exhaustive()
    }
}

impl<T> RedisFuture<T> {
    fn failed(err: RedisError) -> Self
    where
        T: 'static,
    {
        RedisFuture {
            client: RedisClient {
                inner: Rc::new(ClientInner {
                    cluster: String::new(),
                    init_service: String::new(),
                    username: String::new(),
                    password: String::new(),
                    timeout_ms: 1,
                    ready: Cell::new(false),
                    last_reauth_ms: Cell::new(None),
                    log_source: String::new(),
                }),
            },
            state: State::Failed(err),
            convert: |_| Err(RedisError::Cancelled),
            fallback: None,
            _out: PhantomData,
        }
    }

    pub(crate) fn with_fallback(mut self, query: Vec<u8>) -> Self {
        self.fallback = Some(query);
        self
    }
}

impl<T> Unpin for RedisFuture<T> {}

impl<T> Future for RedisFuture<T> {
    type Output = Result<T, RedisError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Ready { query, retried } => {
                    if let Err(e) = this.client.ensure_ready() {
                        return Poll::Ready(Err(e));
                    }
                    let token = match crate::host::redis_call(&this.client.inner.cluster, &query) {
                        Ok(token) => token,
                        Err(e) => {
                            this.client.inner.ready.set(false);
                            return Poll::Ready(Err(host_error(&this.client.inner.cluster, e)));
                        }
                    };
                    let call = callout::register(token, task::current_owner());
                    this.state = State::Sent {
                        call,
                        query,
                        retried,
                    };
                }
                State::Sent {
                    mut call,
                    query,
                    retried,
                } => {
                    let reply = match Pin::new(&mut call).poll(cx) {
                        Poll::Pending => {
                            this.state = State::Sent {
                                call,
                                query,
                                retried,
                            };
                            return Poll::Pending;
                        }
                        Poll::Ready(reply) => reply,
                    };
                    let (status, data) = match reply {
                        Some(Reply::Redis { status, data }) => (status, data),
                        _ => return Poll::Ready(Err(RedisError::Cancelled)),
                    };
                    if status != 0 {
                        return Poll::Ready(Err(RedisError::Network {
                            cluster: this.client.inner.cluster.clone(),
                        }));
                    }
                    crate::logging::recovered(&this.client.inner.log_source);
                    let value = match resp::decode(&data) {
                        Ok(v) => v,
                        Err(e) => return Poll::Ready(Err(RedisError::Decode(e))),
                    };
                    if let Value::Error(message) = &value {
                        if message.starts_with("NOAUTH") {
                            if !retried && this.client.reauth() {
                                this.state = State::Ready {
                                    query,
                                    retried: true,
                                };
                                continue;
                            }
                            let inner = &this.client.inner;
                            return Poll::Ready(Err(RedisError::Auth {
                                cluster: inner.cluster.clone(),
                                password_configured: !inner.password.is_empty(),
                                username: inner.username.clone(),
                                reply: message.clone(),
                            }));
                        }
                        if message.starts_with("NOSCRIPT") {
                            if let Some(eval) = this.fallback.take() {
                                this.state = State::Ready {
                                    query: eval,
                                    retried,
                                };
                                continue;
                            }
                        }
                        return Poll::Ready(Err(RedisError::Reply(message.clone())));
                    }
                    return Poll::Ready((this.convert)(value));
                }
                State::Failed(err) => return Poll::Ready(Err(err)),
                State::Done => return Poll::Ready(Err(RedisError::Cancelled)),
            }
        }
    }
}

/// A Lua script with its SHA-1 computed once, for
/// [`RedisClient::eval_script`]: sent as `EVALSHA`, falling back to `EVAL`
/// when the server does not have it cached (`NOSCRIPT`).
#[derive(Debug, Clone)]
pub struct Script {
    source: Rc<str>,
    sha1_hex: String,
}

impl Script {
    /// Prepares a script (hash it once, e.g. while parsing config).
    pub fn new(source: &str) -> Script {
        let digest = sha1::digest(source.as_bytes());
        let mut hex = String::with_capacity(40);
        for b in digest {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            hex.push(char::from(
                HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            hex.push(char::from(
                HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'),
            ));
        }
        Script {
            source: Rc::from(source),
            sha1_hex: hex,
        }
    }
    /// The script's SHA-1 in hex, as `SCRIPT LOAD` returns it.
    pub fn sha1(&self) -> &str {
        &self.sha1_hex
    }
    /// The script's source.
    pub fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_commands_are_refused() {
        assert!(unsupported(b"subscribe", None).is_some());
        assert!(unsupported(b"MULTI", None).is_some());
        assert!(unsupported(b"hello", Some(b"3")).is_some());
        assert!(unsupported(b"hello", Some(b"2")).is_none());
        assert!(unsupported(b"GET", Some(b"k")).is_none());
    }

    #[test]
    fn script_sha1_matches_redis() {
        // redis-cli SCRIPT LOAD "return 1" => e0e1f9fabfc9d4800c877a703b823ac0578ff8db
        assert_eq!(
            Script::new("return 1").sha1(),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }

    #[test]
    fn timeouts_never_reach_the_host_as_zero() {
        reset_registry();
        let c = crate::cluster::FqdnCluster::new("redis.static", 6379);
        for bad in [Duration::ZERO, Duration::from_micros(999)] {
            let err = RedisClient::builder(&c).timeout(bad).build().err();
            let msg = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains("at least 1 ms"), "{msg}");
        }
        let client = RedisClient::builder(&c)
            .timeout(Duration::from_micros(1500))
            .buffer_flush_timeout(Duration::from_micros(500))
            .build();
        let inner = client.map(|c| c.inner);
        assert_eq!(inner.as_ref().map(|i| i.timeout_ms).ok(), Some(2));
        assert!(inner
            .as_ref()
            .is_ok_and(|i| i.init_service.contains("&buffer_flush_timeout=1&")));
        reset_registry();
    }

    #[test]
    fn conflicting_credentials_are_refused() {
        reset_registry();
        let c = crate::cluster::FqdnCluster::new("redis.static", 6379);
        assert!(RedisClient::builder(&c).password("a").build().is_ok());
        assert!(RedisClient::builder(&c).password("a").build().is_ok());
        let err = RedisClient::builder(&c).password("b").build().err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("outbound|6379||redis.static"), "{msg}");
        assert!(!msg.contains('b') || !msg.contains("\"b\""));
        assert!(RedisClient::builder(&c)
            .password("a")
            .database(2)
            .build()
            .is_err());
        reset_registry();
        assert!(RedisClient::builder(&c).password("b").build().is_ok());
    }
}
