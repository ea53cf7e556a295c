//! Unary gRPC callouts on the host's `proxy_grpc_call`, awaited like HTTP
//! and Redis calls: a hook that waits on one is paused and resumed exactly
//! once when the reply (or the failure) arrives; a request that ends first
//! drops its call and the late reply is ignored.
//!
//! Messages are bytes: serialize the request and parse the response with
//! the protobuf library of your choice. The cluster must speak HTTP/2
//! (on Envoy: `http2_protocol_options` on the cluster).
//!
//! ```
//! use higress_wrapper::grpc::{GrpcCall, GrpcError};
//! use higress_wrapper::prelude::*;
//! use std::time::Duration;
//!
//! fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
//!     // A serialized `CheckRequest { user: "alice" }` (field 1, a string).
//!     let request = b"\x0a\x05alice".to_vec();
//!     let call = GrpcCall::new("authz", "authz.v1.Authz", "Check", request)
//!         .metadata("x-tenant", "t1")
//!         .timeout(Duration::from_millis(500))
//!         .send();
//!     ctx.then(call, |ctx, reply: Result<Vec<u8>, GrpcError>| {
//!         match reply {
//!             Ok(response) => ctx.set_request_header("x-authz", response),
//!             Err(e) => ctx.send_local_response(503, &[], e.to_string()),
//!         }
//!         HeaderAction::Continue
//!     })
//! }
//! # let _ = on_request_headers;
//! ```

use crate::callout::{self, Reply};
use crate::error::HostError;
use crate::host;
use crate::task;
use std::time::Duration;

/// Why a gRPC call has no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrpcError {
    /// The host refused to dispatch it (e.g. `BadArgument`: unknown cluster).
    #[error("dispatch failed: {0}")]
    Dispatch(HostError),
    /// The call ended with a non-OK gRPC status (e.g. 14 `UNAVAILABLE`, 4
    /// `DEADLINE_EXCEEDED` on timeout) and the host's status message.
    #[error("grpc status {code}: {message}")]
    Status {
        /// The gRPC status code.
        code: u32,
        /// The status message.
        message: String,
    },
    /// The request (or plugin) that owned the call ended first.
    #[error("cancelled")]
    Cancelled,
}

/// A unary gRPC call to prepare and [`send`](GrpcCall::send).
#[derive(Debug, Clone)]
#[must_use = "a call does nothing until sent and awaited"]
pub struct GrpcCall {
    cluster: String,
    service: String,
    method: String,
    metadata: Vec<(String, Vec<u8>)>,
    message: Vec<u8>,
    timeout: Duration,
}

impl GrpcCall {
    /// A call of `service`/`method` (e.g. `"helloworld.Greeter"`,
    /// `"SayHello"`) on Envoy cluster `cluster`, with the serialized request
    /// `message`. The timeout is 500 ms unless set.
    pub fn new(
        cluster: impl Into<String>,
        service: impl Into<String>,
        method: impl Into<String>,
        message: impl Into<Vec<u8>>,
    ) -> GrpcCall {
        GrpcCall {
            cluster: cluster.into(),
            service: service.into(),
            method: method.into(),
            metadata: Vec::new(),
            message: message.into(),
            timeout: Duration::from_millis(500),
        }
    }

    /// Adds an initial-metadata entry (a request header of the call).
    pub fn metadata(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> GrpcCall {
        self.metadata.push((name.into(), value.as_ref().to_vec()));
        self
    }

    /// The call's timeout.
    pub fn timeout(mut self, timeout: Duration) -> GrpcCall {
        self.timeout = timeout;
        self
    }

    /// Dispatches the call when first polled; resolves to the response
    /// message.
    pub async fn send(self) -> Result<Vec<u8>, GrpcError> {
        let metadata: Vec<(&str, &[u8])> = self
            .metadata
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let token = host::grpc_call(
            &self.cluster,
            &self.service,
            &self.method,
            &metadata,
            &self.message,
            self.timeout,
        )
        .map_err(GrpcError::Dispatch)?;
        match callout::register(token, task::current_owner()).await {
            Some(Reply::Grpc {
                status: 0, message, ..
            }) => Ok(message),
            Some(Reply::Grpc {
                status,
                status_message,
                ..
            }) => Err(GrpcError::Status {
                code: status,
                message: status_message,
            }),
            _ => Err(GrpcError::Cancelled),
        }
    }
}

/// A gRPC stream (`proxy_grpc_stream`): server-streaming, client-streaming
/// or bidirectional. Send with [`send`](GrpcStream::send), receive with
/// [`next`](GrpcStream::next) from a hook's future (or a root task); the
/// stream belongs to the request (or plugin) that opened it.
///
/// The same guarantee as unary calls: a hook waiting on `next` is resumed
/// once, when a message, the end or a failure arrives; if the request ends
/// first, the future is dropped, the stream is cancelled on the host and
/// whatever arrives later is dropped. Dropping the handle before the stream
/// ended cancels it too.
///
/// ```
/// use higress_wrapper::grpc::GrpcStream;
/// use higress_wrapper::prelude::*;
///
/// // Server streaming: one request, read every reply, join them in a header.
/// fn on_request_headers(ctx: &mut HttpContext, config: &()) -> HeaderAction {
///     ctx.wait(config, |ctx, _| async move {
///         let mut stream = GrpcStream::open("grpc", "hc.Echo", "Split", &[("x-tenant", b"t1")])?;
///         stream.send(b"a b c", true)?;
///         let mut words = Vec::new();
///         while let Some(message) = stream.next().await? {
///             words.push(String::from_utf8_lossy(&message).into_owned());
///         }
///         ctx.set_request_header("x-words", words.join(","));
///         Ok::<_, Error>(HeaderAction::Continue)
///     })
/// }
/// # let _ = on_request_headers;
/// ```
#[derive(Debug)]
pub struct GrpcStream {
    token: u32,
    inbox: std::rc::Rc<std::cell::RefCell<callout::StreamInbox>>,
    /// The plugin cancelled it: nothing to cancel on drop.
    cancelled: bool,
}

impl GrpcStream {
    /// Opens a stream of `service`/`method` on Envoy cluster `cluster` (which
    /// must speak HTTP/2) with initial `metadata`.
    pub fn open(
        cluster: &str,
        service: &str,
        method: &str,
        metadata: &[(&str, &[u8])],
    ) -> Result<GrpcStream, GrpcError> {
        let token =
            host::grpc_stream(cluster, service, method, metadata).map_err(GrpcError::Dispatch)?;
        let inbox = callout::open_stream(token, task::current_owner());
        Ok(GrpcStream {
            token,
            inbox,
            cancelled: false,
        })
    }

    /// The host's token for this stream.
    pub fn token(&self) -> u32 {
        self.token
    }

    /// Sends one serialized message; `end_of_stream` half-closes the stream
    /// (the server then sees the end of the requests).
    pub fn send(&self, message: &[u8], end_of_stream: bool) -> Result<(), GrpcError> {
        host::grpc_send(self.token, message, end_of_stream).map_err(GrpcError::Dispatch)
    }

    /// Half-closes the stream: no more messages from the plugin; replies
    /// still arrive (`proxy_grpc_close`).
    pub fn close(&self) -> Result<(), GrpcError> {
        host::grpc_close(self.token).map_err(GrpcError::Dispatch)
    }

    /// Cancels the stream (`proxy_grpc_cancel`): the host resets it and
    /// delivers nothing more.
    pub fn cancel(mut self) {
        self.cancel_now();
    }

    fn cancel_now(&mut self) {
        if self.cancelled {
            return;
        }
        self.cancelled = true;
        let open = self
            .inbox
            .try_borrow()
            .is_ok_and(|i| i.closed.is_none() && !i.cancelled);
        callout::forget_stream(self.token);
        if open {
            // Already gone on the host if it answers NotFound: fine.
            let _ = host::grpc_cancel(self.token);
        }
    }

    /// The next message: `Ok(Some(message))`, `Ok(None)` once the server
    /// ended the stream with status OK, `Err(Status)` for another status
    /// (e.g. 14 `UNAVAILABLE`), `Err(Cancelled)` if the stream's owner ended
    /// or the plugin cancelled it.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, GrpcError> {
        std::future::poll_fn(|cx| {
            let Ok(mut inbox) = self.inbox.try_borrow_mut() else {
                return std::task::Poll::Pending;
            };
            if let Some(message) = inbox.messages.pop_front() {
                return std::task::Poll::Ready(Ok(Some(message)));
            }
            if let Some((code, message)) = &inbox.closed {
                return std::task::Poll::Ready(if *code == 0 {
                    Ok(None)
                } else {
                    Err(GrpcError::Status {
                        code: *code,
                        message: message.clone(),
                    })
                });
            }
            if inbox.cancelled || self.cancelled {
                return std::task::Poll::Ready(Err(GrpcError::Cancelled));
            }
            inbox.waker = Some(cx.waker().clone());
            std::task::Poll::Pending
        })
        .await
    }

    /// The initial metadata the server sent (empty until it arrived).
    pub fn initial_metadata(&self) -> Vec<(String, Vec<u8>)> {
        self.inbox
            .try_borrow()
            .map(|i| i.initial_metadata.clone())
            .unwrap_or_default()
    }

    /// The trailing metadata the server sent (empty until it arrived).
    pub fn trailing_metadata(&self) -> Vec<(String, Vec<u8>)> {
        self.inbox
            .try_borrow()
            .map(|i| i.trailing_metadata.clone())
            .unwrap_or_default()
    }
}

impl Drop for GrpcStream {
    fn drop(&mut self) {
        self.cancel_now();
    }
}
