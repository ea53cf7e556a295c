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
