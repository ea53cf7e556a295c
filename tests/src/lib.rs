//! End-to-end harness: run proxy-wasm plugins in a real Envoy.
//!
//! The pieces, all std-only:
//!
//! * [`envoy_binary`] finds Envoy (installing it with `scripts/install-envoy.sh`
//!   when missing) and [`wasm_module`] builds a workspace plugin to
//!   `wasm32-wasip1`.
//! * [`Gateway::builder`] turns [`PluginSpec`]s, [`RouteSpec`]s and
//!   [`ClusterSpec`]s into an Envoy bootstrap, starts Envoy on ephemeral
//!   loopback ports and waits until it is ready.
//! * [`EchoUpstream`] is the backend: it records every request byte for byte
//!   and echoes it back as JSON.
//! * [`http_request`] is a raw HTTP/1.1 client that sends arbitrary header
//!   bytes.
//!
//! ```no_run
//! use higress_e2e::{wasm_module, ClusterSpec, EchoUpstream, Gateway, PluginSpec};
//!
//! # fn main() -> higress_e2e::Result<()> {
//! let upstream = EchoUpstream::start()?;
//! let gateway = Gateway::builder()
//!     .plugin(PluginSpec::new("my_plugin", wasm_module("my-plugin")?, r#"{"some_field":"x"}"#))
//!     .cluster(ClusterSpec::new("echo", upstream.port()))
//!     .start()?;
//! let response = gateway.get("/", &[("x-user-id", b"alice")])?;
//! assert_eq!(response.status, 200);
//! let seen = upstream.last_request();
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod bench;
mod build;
mod client;
pub mod deploy;
pub mod dev;
mod echo;
mod error;
mod gateway;
mod http;
pub mod surface;

pub use build::{envoy_binary, repo_root, target_dir, wasm_module, WASM_TARGET};
pub use client::{http_request, http_request_timeout, Response, DEFAULT_TIMEOUT};
pub use echo::{EchoUpstream, RecordedRequest, ECHO_MODE_HEADER};
pub use error::{Error, Result};
pub use gateway::{
    ClusterSpec, FailurePolicy, Gateway, GatewayBuilder, PluginSpec, RouteSpec,
    DEFAULT_READY_TIMEOUT,
};
pub use http::Headers;
