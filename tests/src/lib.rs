//! Run proxy-wasm plugins in a real Envoy, from any plugin crate's tests.
//!
//! This is a public library: the SDK's own end-to-end tests use it, `cargo
//! higress` (the `tools/` crate) builds its dev loop and benchmark on it, and
//! a plugin outside this workspace uses it in its own `tests/` as a
//! dev-dependency (the crate `cargo higress new` generates does).
//!
//! The pieces, all std-only:
//!
//! * [`envoy_binary`] finds Envoy (installing it with `scripts/install-envoy.sh`
//!   when missing); [`wasm_module_in`] builds the plugin crate in a directory
//!   (any crate: cargo reports where its `.wasm` went) and [`wasm_module`] a
//!   package of this workspace, to `wasm32-wasip1`.
//! * [`Gateway::builder`] turns [`PluginSpec`]s, [`RouteSpec`]s and
//!   [`ClusterSpec`]s into an Envoy bootstrap, starts Envoy on ephemeral
//!   loopback ports and waits until it is ready.
//! * [`EchoUpstream`] is the backend: it records every request byte for byte
//!   and echoes it back as JSON.
//! * [`http_request`] is a raw HTTP/1.1 client that sends arbitrary header
//!   bytes.
//!
//! ```no_run
//! use higress_e2e::{wasm_module_in, ClusterSpec, EchoUpstream, Gateway, PluginSpec};
//!
//! # fn main() -> higress_e2e::Result<()> {
//! // In a plugin crate's `tests/envoy.rs`: build this crate's own .wasm.
//! let wasm = wasm_module_in(env!("CARGO_MANIFEST_DIR"))?;
//! let upstream = EchoUpstream::start()?;
//! let gateway = Gateway::builder()
//!     .plugin(PluginSpec::new("my_plugin", wasm, r#"{"some_field":"x"}"#))
//!     .cluster(ClusterSpec::new("echo", upstream.port()))
//!     .start()?;
//! let response = gateway.get("/", &[("x-user-id", b"alice")])?;
//! assert_eq!(response.status, 200);
//! let seen = upstream.last_request();
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod abi_order;
mod build;
mod client;
mod echo;
mod error;
mod gateway;
mod http;
pub mod surface;

pub use build::{
    cargo_bin, ensure_wasm_target, envoy_binary, repo_root, target_dir, wasm_from_messages,
    wasm_module, wasm_module_in, wasm_module_with_features, WASM_TARGET,
};
pub use client::{http_request, http_request_timeout, Response, DEFAULT_TIMEOUT};
pub use echo::{EchoUpstream, RecordedRequest, ECHO_MODE_HEADER};
pub use error::{tail, Error, Result};
pub use gateway::{
    ClusterSpec, FailurePolicy, Gateway, GatewayBuilder, PluginSpec, RouteSpec, DEFAULT_READY_POLL,
    DEFAULT_READY_TIMEOUT,
};
pub use http::Headers;
