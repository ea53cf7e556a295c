//! Higress only: upstream host selection and data injection.
//!
//! - [`upstream_hosts`]: the endpoints of the current route's cluster with
//!   their health and the metadata the host reports (Go's
//!   `proxywasm.GetUpstreamHosts`);
//! - [`set_upstream_override_host`]: send this request to one of them,
//!   bypassing the cluster's load balancer (Go's `SetUpstreamOverrideHost`);
//! - [`inject_encoded_data`]: push response data into the filter chain, for
//!   streaming responses (Go's `InjectEncodedDataToFilterChain`).
//!
//! These host calls exist only on Higress's Envoy: stock Envoy refuses to
//! load a module that imports them. Each is imported only when a plugin
//! calls the function here, so a plugin that does not use them still loads
//! on stock Envoy.
//!
//! The override takes effect only while the request headers are still held:
//! as in Go's `ai-load-balancer`, return [`HeaderAction::StopIteration`]
//! from the request-headers hook and choose the host in the body hook (on
//! Higress this module runs with ABI 0.2.100, so the body hooks still run).
//!
//! ```
//! use higress_wrapper::prelude::*;
//! use higress_wrapper::upstream;
//!
//! fn on_request_headers(_: &mut HttpContext, _: &()) -> HeaderAction {
//!     HeaderAction::StopIteration
//! }
//!
//! fn on_request_body(_: &mut HttpContext, _: &(), _body: &[u8]) -> DataAction {
//!     let Ok(hosts) = upstream::upstream_hosts() else {
//!         return DataAction::Continue; // fail open: the cluster's balancer picks
//!     };
//!     if let Some(host) = hosts.iter().find(|h| h.is_healthy()) {
//!         if let Err(e) = upstream::set_upstream_override_host(&host.address) {
//!             log::warn!("override {}: {e}", host.address);
//!         }
//!     }
//!     DataAction::Continue
//! }
//! # let _ = (on_request_headers, on_request_body);
//! ```
//!
//! [`HeaderAction::StopIteration`]: crate::HeaderAction::StopIteration

use crate::error::HostError;
use crate::host;

/// One endpoint of the route's cluster, as Higress reports it.
///
/// Higress's Envoy (`Context::getUpstreamHosts`) walks every priority of the
/// route's cluster and answers, per host, its address (`ip:port`,
/// `[v6]:port` for IPv6) and a JSON object with `health_status` (`Healthy`,
/// `Degraded` or `Unhealthy`, Envoy's coarse health) and, only when the
/// cluster's health check stores the endpoint's metrics, `metrics` (that
/// text, e.g. vLLM's Prometheus exposition). The object is printed by
/// nlohmann's `dump(0)`: one member per line, `": "` between key and value.
/// Verbatim, for a host with metrics:
///
/// ```text
/// {
/// "health_status": "Healthy",
/// "metrics": "vllm:num_requests_waiting 2\n"
/// }
/// ```
///
/// If the host cannot print the object (metrics that are not UTF-8) it
/// answers `{"error": "Failed to get host info"}` instead, kept in
/// [`error`](Self::error). No weight or locality is reported.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UpstreamHost {
    /// `ip:port`, the value [`set_upstream_override_host`] takes.
    pub address: String,
    /// The host's `health_status` as sent (`Healthy`, `Degraded`,
    /// `Unhealthy`); empty if absent. See [`health`](Self::health).
    pub health_status: String,
    /// The endpoint's `metrics` text, if the cluster's health check stores it.
    pub metrics: Option<String>,
    /// The `error` the host sent instead of the host's information, if any.
    pub error: Option<String>,
    /// The whole metadata object, for fields a later host may add.
    pub metadata: serde_json::Value,
}

/// An endpoint's health as Higress reports it (Envoy's coarse health).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostHealth {
    /// `Healthy` (also what Envoy reports for a host no check has failed).
    Healthy,
    /// `Degraded`: usable, but the load balancer prefers healthy hosts.
    Degraded,
    /// `Unhealthy`: failed its health check.
    Unhealthy,
    /// Missing or another value (e.g. the host's `error` answer).
    Unknown,
}

impl UpstreamHost {
    /// Parses one `(address, metadata JSON)` pair. Metadata that is not a
    /// JSON object leaves every field empty (and `metadata` null).
    pub fn from_pair(address: &str, metadata: &[u8]) -> UpstreamHost {
        let metadata: serde_json::Value =
            serde_json::from_slice(metadata).unwrap_or(serde_json::Value::Null);
        let text = |key: &str| {
            metadata
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        UpstreamHost {
            address: address.to_owned(),
            health_status: text("health_status").unwrap_or_default(),
            metrics: text("metrics"),
            error: text("error"),
            metadata,
        }
    }

    /// The reported health, typed.
    pub fn health(&self) -> HostHealth {
        match self.health_status.as_str() {
            "Healthy" => HostHealth::Healthy,
            "Degraded" => HostHealth::Degraded,
            "Unhealthy" => HostHealth::Unhealthy,
            _ => HostHealth::Unknown,
        }
    }

    /// Whether the host reports it `Healthy` (the only hosts Go's
    /// `ai-load-balancer` picks).
    pub fn is_healthy(&self) -> bool {
        self.health() == HostHealth::Healthy
    }
}

/// Higress only: the endpoints of the current route's cluster, in the
/// host's order (priority by priority). Call it from a request hook: outside
/// one, or before a route has chosen a cluster, Higress answers an empty
/// list (so does a cluster without hosts). Unlike Go's `GetUpstreamHosts`,
/// which turns that empty answer into `ErrorStatusNotFound`, an empty answer
/// is `Ok(vec![])`.
pub fn upstream_hosts() -> Result<Vec<UpstreamHost>, HostError> {
    let bytes = host::get_upstream_hosts()?.unwrap_or_default();
    let mut hosts = Vec::new();
    crate::wire::for_each_pair(&bytes, |address, metadata| {
        hosts.push(UpstreamHost::from_pair(
            &String::from_utf8_lossy(address),
            metadata,
        ));
    });
    Ok(hosts)
}

/// Higress only: sends the current request to `address` (`ip:port`, one of
/// [`upstream_hosts`]) instead of the host the load balancer would pick.
pub fn set_upstream_override_host(address: &str) -> Result<(), HostError> {
    host::set_upstream_override_host(address.as_bytes())
}

/// Higress only: injects `data` into the response (encoded) direction of
/// the filter chain, as if it came from upstream; `end_stream` ends the
/// response.
pub fn inject_encoded_data(data: &[u8], end_stream: bool) -> Result<(), HostError> {
    host::inject_encoded_data(data, end_stream)
}
