//! A wasm-mode host: runs a compiled proxy-wasm plugin module (`.wasm`,
//! `wasm32-wasip1`) under wasmtime the way Higress's Envoy hosts it, behind
//! the same test API as the native test host (`higress_test_host`),
//! and counts the guest's work in wasmtime fuel.
//!
//! ```no_run
//! use higress_wasm_host::{Action, PluginModule, TestHost};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let module = PluginModule::load("target/wasm32-wasip1/release/my_plugin.wasm")?;
//! let host = TestHost::start(&module, r#"{"some_field": "hi"}"#)?;
//! let mut s = host.http_stream();
//! assert_eq!(s.send_request_headers(&[(":path", "/")], true)?, Action::Continue);
//! assert_eq!(s.upstream_request_header("x-custom-header").unwrap(), "hi");
//! println!("{}", higress_wasm_host::fuel::format_table(&host.work()));
//! # Ok(()) }
//! ```
//!
//! # One test, both modes
//! Method names and signatures follow the native host's, so one test body
//! compiles against either: `higress_test_host::both_modes!` expands a
//! test file's tests into a native module and a wasm-mode one, whose
//! `start(config)` loads [`PluginModule::workspace_package`] (the example
//! built for `wasm32-wasip1` release, ABI 0.2.100 first) and starts it with
//! [`TestHostBuilder::higress`]; [`TestHostBuilder::stock_envoy`] runs it
//! as stock Envoy would (ABI 0.2.1). Every example's tests run so. What
//! only this host has (fuel, traps, fail policies, [`SharedState`] across
//! VMs, real HTTP servers for callouts) is used outside that macro.
//!
//! # What it models (Higress's Envoy; stock Envoy 1.40 with [`Properties::Envoy`])
//! - **Loading**: the ABI is the first `proxy_abi_version_*` export the host
//!   knows (`0_2_100` only in Higress mode); every import must be one the
//!   host offers, else the load fails with Envoy's "Failed to load Wasm
//!   module due to a missing import: env.X"; `_initialize` (then `main` /
//!   `__main_void`) or `_start` runs with host calls restricted to logging
//!   and WASI (`restricted_callback` trap otherwise).
//! - **ABI semantics**: with 0.2.1 a non-zero headers status is stop-all
//!   (bodies held) unless `allow_on_headers_stop_iteration` keeps a
//!   `StopIteration`; with 0.2.100 statuses 0-4 pass through.
//! - **Start**: root context, `proxy_on_vm_start` (VM config in buffer 6),
//!   `proxy_on_configure` (plugin config in buffer 7, readable only then).
//! - **Streams**, header maps, bodies (`copyFrom` semantics), trailers,
//!   local replies, resume, reset, log/done/delete; properties as Higress
//!   sets them; a controllable clock with ticks.
//! - **Callouts**: HTTP and Redis replies delivered on the root context,
//!   by the test ([`TestHost::respond_http`], [`TestHost::respond_redis`])
//!   or by real loopback servers ([`TestHost::run_until_idle`]); Redis
//!   relayed over RESP2 with `AUTH`/`SELECT` after each init. Calls the test
//!   answers by hand time out on the host clock
//!   ([`TestHost::advance_time`]).
//! - **Higress calls**: upstream hosts and override, injected data.
//! - **Shared state** across VMs ([`SharedState`]): shared data with CAS,
//!   queues (readiness delivered to the owning VM), metrics.
//! - **Failure**: a trap fails the VM; [`FailPolicy`] decides what this and
//!   the next requests see (503 `wasm_fail_stream`, bypass, or a new VM
//!   after the reload backoff on the host clock).
//! - **Work**: fuel per callback with its host calls ([`fuel::CallbackWork`]).
//!
//! # Running
//! Modules compile with Winch, wasmtime's baseline compiler (a 5 MB Go
//! module loads in about 20 s of CPU in a debug build, against about 2 min
//! with Cranelift); `HIGRESS_WASM_HOST_COMPILER=cranelift` selects
//! Cranelift. Fuel counts are the same under both. For a per-callback fuel
//! table of any module:
//! `cargo run -p higress-wasm-host --bin fuel-table -- plugin.wasm '{"config": 1}'`
//! (`--envoy` for stock-Envoy mode).
//!
//! `tests/sdk_higress.rs` runs the SDK's Higress-only calls compiled
//! (`tests/plugins/hostcalls-higress`): upstream hosts in Higress's exact
//! format, the override, injected data, Redis, metrics, shared data and
//! foreign functions.
//!
//! gRPC calls and streams are answered by the test with the native host's
//! API (`respond_grpc`, `fail_grpc`, `grpc_stream_message`,
//! `close_grpc_stream`; `CalloutKind::Grpc` / `GrpcStream { half_closed }`,
//! `CalloutState::Cancelled` / `Closed`) and reach the module as Envoy
//! calls it: a unary call's success is `proxy_on_grpc_receive` (the message
//! in buffer 5), its failure `proxy_on_grpc_close` (text via
//! `proxy_get_status`); a stream's first message follows
//! `proxy_on_grpc_receive_initial_metadata`, its end is
//! `proxy_on_grpc_receive_trailing_metadata` then `proxy_on_grpc_close`.
//! An unknown cluster is `BadArgument`, as for HTTP callouts. Metadata
//! from the server (maps 4 and 5) is empty; gRPC timeouts are not
//! enforced (the test answers); there is no real gRPC server relay.
//! `tests/grpc.rs` runs the SDK's gRPC on the compiled `e2e-hostcalls`.
//!
//! # Not modelled
//! A real gRPC upstream, TCP filters, buffer
//! limits (413/500), Envoy's own `x-request-id` generation.
#![deny(missing_docs)]

mod abi;
mod callouts;
pub mod fuel;
mod host;
mod http_stream;
mod imports;
mod memory;
mod redis;
mod shared;
mod state;
mod streams;
mod types;
mod vm;
mod wasi;

pub use abi::LoadError;
pub use host::{TestHost, TestHostBuilder};
pub use http_stream::HttpStream;
pub use shared::SharedState;
pub use types::{
    AbiVersion, Action, Callout, CalloutKind, CalloutState, DeliveryError, FailPolicy, HeaderValue,
    LocalResponse, LogLevel, LogRecord, MetricValue, Properties, RedisInit, StartFailure,
    StartStage, StreamError,
};
pub use vm::PluginModule;
