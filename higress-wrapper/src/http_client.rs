//! An async HTTP client on the host's `proxy_http_call` (Go's `HttpClient` /
//! `ClusterClient`).
//!
//! ```
//! use higress_wrapper::cluster::TargetCluster;
//! use higress_wrapper::http_client::HttpClient;
//! use higress_wrapper::prelude::*;
//! use std::time::Duration;
//!
//! fn on_request_headers(ctx: &mut HttpContext, auth: &HttpClient) -> HeaderAction {
//!     let token = ctx.request_header("authorization").map(|v| v.into_bytes()).unwrap_or_default();
//!     let check = auth
//!         .get("/check")
//!         .header("authorization", String::from_utf8_lossy(&token))
//!         .timeout(Duration::from_millis(300))
//!         .send();
//!     let handle = ctx.handle();
//!     HeaderAction::wait(async move {
//!         let response = check.await?; // Err: unknown cluster, timeout, reset
//!         if response.status == 200 {
//!             handle.with(|ctx| ctx.set_request_header("x-auth", "ok"));
//!             Ok::<_, higress_wrapper::http_client::HttpError>(HeaderAction::Continue)
//!         } else {
//!             handle.with(|ctx| ctx.send_local_response(403, &[], "forbidden"));
//!             Ok(HeaderAction::Continue)
//!         }
//!     })
//! }
//! # let auth = HttpClient::new(&TargetCluster::new("auth_service", "auth.local"));
//! # let _ = (on_request_headers, auth);
//! ```

use crate::callout::{self, CallFuture, Reply};
use crate::cluster::Cluster;
use crate::error::HostError;
use crate::http_context::HeaderValue;
use crate::task;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The default timeout of a call, as in Go: 500 ms.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// Why an HTTP call failed. A response with any status is not an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The gateway has no cluster of that name.
    #[error(
        "the gateway has no cluster `{cluster}` (host answered \"bad argument\"): register the \
         service (Higress: McpBridge registry or service source; plain Envoy: a cluster of that name)"
    )]
    UnknownCluster {
        /// The cluster name that was refused.
        cluster: String,
    },
    /// The host refused the call for another reason.
    #[error("the host refused the call to `{cluster}`: {source}")]
    Host {
        /// The cluster.
        cluster: String,
        /// The host's status.
        source: HostError,
    },
    /// The call got no response within its timeout (Envoy's
    /// `upstream request timeout`).
    #[error("call to `{cluster}` timed out after {timeout_ms} ms")]
    Timeout {
        /// The cluster.
        cluster: String,
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// The host called back with no response at all: the connection was
    /// reset or refused, **or the response body was larger than Envoy's
    /// 32 MiB (33,554,432 bytes) limit for async calls** — Envoy then drops
    /// the response and reports a reset, though the service answered (its
    /// log says `the buffer size limit for async client response body has
    /// been exceeded`; runtime key `http.async_response_buffer_limit`).
    #[error(
        "call to `{cluster}` failed: reset before a complete response (the connection failed, or \
         the response body exceeded the gateway's 32 MiB limit for plugin calls, which Envoy \
         reports as a reset even when the service answered 200)"
    )]
    Reset {
        /// The cluster.
        cluster: String,
    },
    /// The gateway could not reach the service: it answered the call itself
    /// with a 503 (`no healthy upstream`, `upstream connect error ...`).
    #[error("service `{cluster}` unavailable: {detail}")]
    Unavailable {
        /// The cluster.
        cluster: String,
        /// Envoy's reason.
        detail: String,
    },
    /// The URL could not be used.
    #[error("invalid URL `{0}`")]
    InvalidUrl(String),
    /// A JSON body could not be encoded or decoded.
    #[error("JSON: {0}")]
    Json(String),
    /// The request that made the call ended first.
    #[error("the call was cancelled: its request has ended")]
    Cancelled,
    /// The call's timeout was zero, which the host would read as "no
    /// timeout at all" (a request held until the service answers, if ever).
    /// Non-zero timeouts are rounded up to whole milliseconds instead.
    #[error("call to `{cluster}` not sent: a timeout of 0 means no timeout to the host; use at least 1 ms")]
    ZeroTimeout {
        /// The cluster.
        cluster: String,
    },
}

/// The longest timeout the host can take: `u32::MAX` milliseconds (49.7 days).
pub const MAX_TIMEOUT: Duration = Duration::from_millis(u32::MAX as u64);

/// The timeout to give the host for `timeout`: whole milliseconds, rounded
/// up (a sub-millisecond timeout is 1 ms, never 0), at most [`MAX_TIMEOUT`]
/// (more would wrap around in the host's 32-bit field). `None` for zero.
pub(crate) fn host_timeout_ms(timeout: Duration) -> Option<u32> {
    if timeout.is_zero() {
        return None;
    }
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    Some(u32::try_from(ms).unwrap_or(u32::MAX))
}

/// A call timeout read from configuration, in whole milliseconds: a JSON
/// integer from 1 to 4294967295.
///
/// A timeout of 0 is what Envoy and Higress read as "no timeout", so a
/// configured `0` would hold requests until the service answers (120 s and
/// more were measured). Deserializing refuses it, naming the field:
///
/// ```
/// use higress_wrapper::http_client::TimeoutMs;
///
/// #[derive(serde::Deserialize)]
/// struct Config {
///     #[serde(default = "default_timeout")]
///     timeout_ms: TimeoutMs,
/// }
/// fn default_timeout() -> TimeoutMs {
///     TimeoutMs::from_millis(500)
/// }
///
/// let json = serde_json::json!({"timeout_ms": 0});
/// let err = higress_wrapper::config::from_json::<Config>(&json).err().map(|e| e.to_string());
/// assert_eq!(
///     err.as_deref(),
///     Some("timeout_ms: a timeout of 0 ms would mean no timeout at all; use at least 1")
/// );
/// let ok: Config = higress_wrapper::config::from_json(&serde_json::json!({})).map_err(|e| e.to_string())?;
/// assert_eq!(ok.timeout_ms.as_duration(), std::time::Duration::from_millis(500));
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeoutMs(u32);

impl TimeoutMs {
    /// `ms` milliseconds, for defaults: 0 becomes 1 ms and values above
    /// `u32::MAX` become `u32::MAX` (the host's range).
    pub const fn from_millis(ms: u64) -> TimeoutMs {
        if ms == 0 {
            TimeoutMs(1)
        } else if ms > u32::MAX as u64 {
            TimeoutMs(u32::MAX)
        } else {
            TimeoutMs(ms as u32)
        }
    }

    /// The timeout in milliseconds (at least 1).
    pub const fn as_millis(self) -> u32 {
        self.0
    }

    /// The timeout as a [`Duration`].
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64)
    }
}

impl From<TimeoutMs> for Duration {
    fn from(timeout: TimeoutMs) -> Duration {
        timeout.as_duration()
    }
}

impl<'de> serde::Deserialize<'de> for TimeoutMs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let ms = u64::deserialize(deserializer)?;
        if ms == 0 {
            return Err(D::Error::custom(
                "a timeout of 0 ms would mean no timeout at all; use at least 1",
            ));
        }
        u32::try_from(ms).map(TimeoutMs).map_err(|_| {
            D::Error::custom(format_args!(
                "a timeout of {ms} ms is more than the host takes (at most {} ms)",
                u32::MAX
            ))
        })
    }
}

impl serde::Serialize for TimeoutMs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

/// A response to an HTTP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Response headers, pseudo-headers excluded.
    pub headers: Vec<(String, HeaderValue)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Json(e.to_string()))
    }
}

/// An HTTP client for one cluster (Go's `ClusterClient`). Cheap to clone;
/// keep it in your config.
#[derive(Clone)]
pub struct HttpClient {
    cluster: Rc<str>,
    host: Rc<str>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client calling `cluster`.
    pub fn new(cluster: &dyn Cluster) -> HttpClient {
        HttpClient {
            cluster: Rc::from(cluster.cluster_name()),
            host: Rc::from(cluster.host_name()),
        }
    }

    /// The cluster name calls go to.
    pub fn cluster_name(&self) -> &str {
        &self.cluster
    }

    /// A request with any method (Go's `Call`).
    pub fn request(&self, method: &str, url: &str) -> HttpRequest {
        HttpRequest {
            client: self.clone(),
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            error: None,
        }
    }
    /// `GET url`.
    pub fn get(&self, url: &str) -> HttpRequest {
        self.request("GET", url)
    }
    /// `HEAD url`.
    pub fn head(&self, url: &str) -> HttpRequest {
        self.request("HEAD", url)
    }
    /// `OPTIONS url`.
    pub fn options(&self, url: &str) -> HttpRequest {
        self.request("OPTIONS", url)
    }
    /// `POST url` (add a body with [`HttpRequest::body`] or [`HttpRequest::json`]).
    pub fn post(&self, url: &str) -> HttpRequest {
        self.request("POST", url)
    }
    /// `PUT url`.
    pub fn put(&self, url: &str) -> HttpRequest {
        self.request("PUT", url)
    }
    /// `PATCH url`.
    pub fn patch(&self, url: &str) -> HttpRequest {
        self.request("PATCH", url)
    }
    /// `DELETE url`.
    pub fn delete(&self, url: &str) -> HttpRequest {
        self.request("DELETE", url)
    }
}

/// A request being built; [`send`](HttpRequest::send) it and `.await`.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until sent and awaited"]
pub struct HttpRequest {
    client: HttpClient,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
    error: Option<HttpError>,
}

impl HttpRequest {
    /// Adds a header (`:method`, `:path`, `:authority` are set by the client).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    /// Sets a JSON body and `content-type: application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.body = body;
                self.headers
                    .push(("content-type".to_owned(), "application/json".to_owned()));
            }
            Err(e) => self.error = Some(HttpError::Json(e.to_string())),
        }
        self
    }
    /// The call's timeout (default 500 ms, as Go). The host counts whole
    /// milliseconds: a timeout is rounded up to the next millisecond (so
    /// 0.2 ms is 1 ms, never 0) and capped at [`MAX_TIMEOUT`]. A zero
    /// timeout is refused when the call is sent
    /// ([`HttpError::ZeroTimeout`]): the host would read 0 as "no timeout".
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// The call; it is dispatched on first poll.
    pub fn send(self) -> HttpCall {
        HttpCall {
            state: CallState::Ready(Box::new(self)),
        }
    }
}

/// `(path with query, authority)` of a URL: `http://host:port/p?q#f` or `/p?q`.
fn split_url(url: &str) -> Result<(String, Option<String>), HttpError> {
    let (rest, authority) = match url.split_once("://") {
        Some((scheme, rest)) => {
            if scheme.is_empty()
                || !scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                return Err(HttpError::InvalidUrl(url.to_owned()));
            }
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, rest) = rest.split_at(end);
            // Drop userinfo.
            let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if authority.is_empty() {
                return Err(HttpError::InvalidUrl(url.to_owned()));
            }
            (rest, Some(authority.to_owned()))
        }
        None => (url, None),
    };
    let without_fragment = rest.split_once('#').map_or(rest, |(p, _)| p);
    let path = if without_fragment.starts_with('/') {
        without_fragment.to_owned()
    } else {
        format!("/{without_fragment}")
    };
    if path
        .chars()
        .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(HttpError::InvalidUrl(url.to_owned()));
    }
    Ok((path, authority))
}

enum CallState {
    Ready(Box<HttpRequest>),
    Sent {
        call: CallFuture,
        cluster: Rc<str>,
        timeout: Duration,
    },
    Done,
}

/// An HTTP call in flight; resolves to the response or an [`HttpError`].
#[must_use = "an HTTP call is dispatched only when awaited"]
pub struct HttpCall {
    state: CallState,
}

impl fmt::Debug for HttpCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpCall")
    }
}

fn dispatch(req: &HttpRequest, timeout_ms: u32) -> Result<u32, HttpError> {
    if let Some(err) = &req.error {
        return Err(err.clone());
    }
    let (path, authority) = split_url(&req.url)?;
    let authority = authority.unwrap_or_else(|| req.client.host.to_string());
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(req.headers.len() + 3);
    headers.push((":method", &req.method));
    headers.push((":path", &path));
    headers.push((":authority", &authority));
    for (n, v) in &req.headers {
        if !matches!(n.as_str(), ":method" | ":path" | ":authority") {
            headers.push((n, v));
        }
    }
    let body = if req.body.is_empty() {
        None
    } else {
        Some(req.body.as_slice())
    };
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    crate::host::http_call(&req.client.cluster, &headers, body, timeout).map_err(|e| match e {
        HostError::BadArgument => HttpError::UnknownCluster {
            cluster: req.client.cluster.to_string(),
        },
        source => HttpError::Host {
            cluster: req.client.cluster.to_string(),
            source,
        },
    })
}

fn response(
    cluster: &str,
    timeout: Duration,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
) -> Result<HttpResponse, HttpError> {
    let status = headers
        .iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .and_then(|s| s.trim().parse::<u16>().ok());
    let Some(status) = status else {
        // No response at all: Envoy calls back with no headers on a reset
        // or connection failure.
        return Err(HttpError::Reset {
            cluster: cluster.to_owned(),
        });
    };
    // Envoy's own answers (not the service's): it generated them locally.
    if status == 503
        && (body.starts_with(b"upstream connect error") || body == b"no healthy upstream")
    {
        return Err(HttpError::Unavailable {
            cluster: cluster.to_owned(),
            detail: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    if status == 504 && body == b"upstream request timeout" {
        return Err(HttpError::Timeout {
            cluster: cluster.to_owned(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        });
    }
    Ok(HttpResponse {
        status,
        headers: headers
            .into_iter()
            .filter(|(n, _)| !n.starts_with(':'))
            .map(|(n, v)| (n, HeaderValue::from(v)))
            .collect(),
        body,
    })
}

impl Future for HttpCall {
    type Output = Result<HttpResponse, HttpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match std::mem::replace(&mut self.state, CallState::Done) {
                CallState::Ready(req) => {
                    let Some(timeout_ms) = host_timeout_ms(req.timeout) else {
                        return Poll::Ready(Err(HttpError::ZeroTimeout {
                            cluster: req.client.cluster.to_string(),
                        }));
                    };
                    let token = match dispatch(&req, timeout_ms) {
                        Ok(token) => token,
                        Err(e) => return Poll::Ready(Err(e)),
                    };
                    self.state = CallState::Sent {
                        call: callout::register(token, task::current_owner()),
                        cluster: Rc::clone(&req.client.cluster),
                        timeout: Duration::from_millis(u64::from(timeout_ms)),
                    };
                }
                CallState::Sent {
                    mut call,
                    cluster,
                    timeout,
                } => match Pin::new(&mut call).poll(cx) {
                    Poll::Pending => {
                        self.state = CallState::Sent {
                            call,
                            cluster,
                            timeout,
                        };
                        return Poll::Pending;
                    }
                    Poll::Ready(Some(Reply::Http { headers, body })) => {
                        return Poll::Ready(response(&cluster, timeout, headers, body))
                    }
                    Poll::Ready(_) => return Poll::Ready(Err(HttpError::Cancelled)),
                },
                CallState::Done => return Poll::Ready(Err(HttpError::Cancelled)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_like_go() {
        assert_eq!(
            split_url("http://auth.example.com:8080/check?x=1#frag").ok(),
            Some((
                "/check?x=1".to_owned(),
                Some("auth.example.com:8080".to_owned())
            ))
        );
        assert_eq!(split_url("/p").ok(), Some(("/p".to_owned(), None)));
        assert_eq!(split_url("p?q").ok(), Some(("/p?q".to_owned(), None)));
        assert_eq!(
            split_url("http://h").ok(),
            Some(("/".to_owned(), Some("h".to_owned())))
        );
        assert!(split_url("http:///x").is_err());
        assert!(split_url("/a b").is_err());
    }

    #[test]
    fn the_host_never_gets_a_zero_or_wrapped_timeout() {
        assert_eq!(host_timeout_ms(Duration::ZERO), None);
        assert_eq!(host_timeout_ms(Duration::from_nanos(1)), Some(1));
        assert_eq!(host_timeout_ms(Duration::from_micros(999)), Some(1));
        assert_eq!(host_timeout_ms(Duration::from_micros(1001)), Some(2));
        assert_eq!(host_timeout_ms(Duration::from_millis(300)), Some(300));
        // 2^32 ms would wrap to 0 in a 32-bit field: capped instead.
        assert_eq!(
            host_timeout_ms(Duration::from_millis(1 << 32)),
            Some(u32::MAX)
        );
        assert_eq!(host_timeout_ms(Duration::MAX), Some(u32::MAX));
        assert_eq!(TimeoutMs::from_millis(0).as_millis(), 1);
        assert_eq!(TimeoutMs::from_millis(u64::MAX).as_millis(), u32::MAX);
    }

    #[test]
    fn a_reset_names_the_32_mib_limit() {
        let text = HttpError::Reset {
            cluster: "auth".into(),
        }
        .to_string();
        assert!(text.contains("`auth`") && text.contains("32 MiB"), "{text}");
    }

    #[test]
    fn no_status_is_a_reset_and_timeout_is_typed() {
        let t = Duration::from_millis(200);
        assert_eq!(
            response("c", t, vec![], vec![]),
            Err(HttpError::Reset {
                cluster: "c".into()
            })
        );
        let timeout = response(
            "c",
            t,
            vec![(":status".into(), b"504".to_vec())],
            b"upstream request timeout".to_vec(),
        );
        assert_eq!(
            timeout,
            Err(HttpError::Timeout {
                cluster: "c".into(),
                timeout_ms: 200
            })
        );
        let ok = response(
            "c",
            t,
            vec![
                (":status".into(), b"200".to_vec()),
                ("x".into(), b"y".to_vec()),
            ],
            b"hi".to_vec(),
        );
        assert_eq!(
            ok.map(|r| (r.status, r.headers.len(), r.body)),
            Ok((200, 1, b"hi".to_vec()))
        );
    }
}
