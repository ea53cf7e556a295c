//! # higress-wrapper
//!
//! Write [Higress](https://higress.io) and Envoy gateway plugins in Rust the
//! way `wrapper.SetCtx(...)` works in Go: name the plugin, give it a config
//! type, and implement the phase hooks you need. The SDK parses the config
//! (serde by default), applies Higress `_rules_` matching exactly as the Go
//! wrapper does, and calls your hooks with the config that matched.
//!
//! ```
//! use higress_wrapper::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct MyConfig {
//!     some_field: String,
//! }
//!
//! fn on_request_headers(ctx: &mut HttpContext, config: &MyConfig) -> HeaderAction {
//!     log::info!("request received");
//!     ctx.set_request_header("x-custom-header", &config.some_field);
//!     HeaderAction::Continue
//! }
//!
//! higress_wrapper::set_ctx! {
//!     name: "my-plugin",
//!     config: MyConfig,
//!     on_request_headers: on_request_headers,
//! }
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip1` and deploy the
//! `.wasm` to Higress (a `WasmPlugin`) or any Envoy (an `envoy.filters.http.wasm`
//! filter). The module exports `proxy_abi_version_0_2_100` before
//! `proxy_abi_version_0_2_1` (Higress runs it as 0.2.100, stock Envoy as
//! 0.2.1; see [`plugin_entry!`]) and imports only the host calls it uses, so
//! it loads in stock Envoy as well unless it uses a Higress-only call.
//!
//! A hook that waits on Redis or HTTP hands a future to
//! [`HttpContext::wait`]: it gets an owned request handle and the matched
//! config, and `?` turns every SDK error into one [`Error`]. See the guides
//! in the repository's `docs/` (async, `_rules_`, migrating from Go).
//!
//! ## Where things are
//! - A request **enters** in `entry` (private): every `proxy_on_*` export
//!   of the module, each a few lines that find the context and hand over to
//!   the per-request driver `stream` (rule matching, hooks, pause/resume)
//!   or the plugin root `root` (configure, plugin start, ticks).
//! - Config is **parsed** in [`config`] and **matched** per request by the
//!   `_rules_` matcher prepared at configure time (private `config::matcher`).
//! - Host calls **leave** through one private module, `host`: every
//!   `proxy_*` import, raw statuses mapped to [`HostError`]; it never panics
//!   on what the host answers. `host` and `entry` are the only modules with
//!   `unsafe` code (`#[no_mangle]` and raw pointers).
//! - The native test host is the crate `higress-test-host` (a
//!   dev-dependency): it provides the host functions natively and calls the
//!   same exports Envoy calls. The SDK has no test-only code path.
//!
//! ## Layers
//! Modules form layers: each imports only from its own layer or the ones
//! listed before it, and no modules import each other in a cycle. The test
//! `tests/layers.rs` reads this table and checks every source file against
//! it, so a new module must be listed here.
//!
//! | layer | modules | what they are, what they may call |
//! |---|---|---|
//! | 0 leaf | `error`, `wire`, `host` | errors, wire formats, the host imports; nothing of the SDK but each other |
//! | 1 config | `config` | parsing, `_rules_`, merge-patch, the prepared matcher (`config/`); pure (layer 0 at most) |
//! | 2 runtime | `callout`, `log`, `logging`, `task` | the table of calls in flight, logging (and its public helpers: `Truncated`, rate-limited failure lines), the executor; layers 0-1 |
//! | 3 API | `action`, `plugin`, `http_context`, `plugin_context`, `query`, `cluster`, `http_client`, `redis`, `foreign`, `grpc`, `metrics`, `shared_data`, `shared_queue`, `upstream` | what plugins use; layers 0-2 |
//! | 4 driver | `stream`, `root` | one request through the hooks; a plugin root; layers 0-3 |
//! | 5 entry | `entry` | where the host enters; layers 0-4 |
//!
//! ## Dependencies
//! Only `serde`, `serde_json`, `thiserror` and `log` (and the macro crate).
//! The `proxy-wasm` crate is not used: its dispatcher keeps hash maps of
//! boxed contexts and panics on statuses and ids it does not expect, so the
//! SDK declares the ABI itself (`host`, `entry`) — fewer instructions per
//! callback, no panic on host data, and a smaller module. Config
//! errors name the JSON path of the bad field
//! (`redis.port: invalid type: string, expected u16`) through the SDK's own
//! small `&Value` deserializer, which also keeps float formatting out of the
//! module (about 33 KB smaller than `serde_path_to_error`, measured).
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
#![doc(test(attr(deny(warnings))))]

// Layer 0 — leaves: wire formats, errors, and where host calls leave.
mod error;
mod host;
mod wire;
// Layer 1 — config: parsing, `_rules_`, merge-patch, matcher (pure; config/).
pub mod config;
// Layer 2 — runtime: logging, the call table, the executor.
mod callout;
mod log;
pub mod logging;
mod task;
// Layer 3 — the public API: hooks, contexts, clients.
mod action;
pub mod cluster;
pub mod foreign;
pub mod grpc;
pub mod http_client;
mod http_context;
pub mod metrics;
mod plugin;
mod plugin_context;
pub mod query;
pub mod redis;
pub mod shared_data;
pub mod shared_queue;
pub mod upstream;
// Layer 4 — the drivers: a plugin root, one request.
mod root;
mod stream;
// Layer 5 — where the host enters.
mod entry;

pub use action::{DataAction, HeaderAction, HookOutput, PhaseAction, WaitOutput};
pub use config::{ConfigError, RuleInput};
pub use error::{Error, HostError, Result};
pub use http_context::{ContextValue, HeaderValue, HttpContext, HttpHandle, Phase, RouteResponse};
pub use plugin::{
    BodyHook, DoneHook, HeaderHook, Hooks, HttpPlugin, StartError, StreamingBodyHook, TrailersHook,
};
pub use plugin_context::PluginContext;

/// Registers a plugin, like Go's `wrapper.SetCtx(name, options...)`.
///
/// Keys (any order; `name` and `config` are required):
///
/// | key | Go option | your function |
/// |---|---|---|
/// | `name: "my-plugin"` | `SetCtx(name, …)` | |
/// | `config: MyConfig` | `PluginConfig` type | derives `serde::Deserialize` unless `parse_config` is given |
/// | `state: MyState` | `SetContext` | per-request state, `Default`; reached with `ctx.state_mut()`; default `()` |
/// | `parse_config: f` | `ParseConfig` | `fn(&serde_json::Value) -> Result<MyConfig, ConfigError>` |
/// | `parse_rule_config: f` | `ParseOverrideConfig` | `fn(&serde_json::Value, Option<&MyConfig>) -> Result<MyConfig, ConfigError>` (the rule's own keys, the global config) |
/// | `on_plugin_start: f` | `PrePluginStartOrReload` | `fn(&mut PluginContext<MyConfig>) -> Result<(), StartError>` |
/// | `on_tick: [(Duration, f), …]` | `RegisterTickFunc` | `fn(&mut PluginContext<MyConfig>)` |
/// | `on_queue_ready: f` | | `fn(&mut PluginContext<MyConfig>, u32)`: a message arrived on a shared queue the plugin registered (see [`shared_queue`]) |
/// | `capture_request_line: false` | | skip the request-line capture for later phases when they use neither the request line nor the log prefix's request id (see [`HttpPlugin::CAPTURE_REQUEST_LINE`]); default `true` |
/// | `skip_binary_bodies: false` | | run the body hooks on every body, including websocket upgrades and binary or encoded (`content-encoding`) bodies, which Go's wrapper and the SDK skip by default (see [`HttpPlugin::SKIP_BINARY_BODIES`]); default `true` |
/// | `on_request_headers: f` | `ProcessRequestHeaders` | `fn(&mut HttpContext<MyState>, &MyConfig) -> HeaderAction` |
/// | `on_request_body: f` | `ProcessRequestBody` | `fn(&mut HttpContext<MyState>, &MyConfig, &[u8]) -> DataAction` |
/// | `on_streaming_request_body: f` | `ProcessStreamingRequestBody` | `fn(&mut HttpContext<MyState>, &MyConfig, &[u8], bool) -> Option<Vec<u8>>` |
/// | `on_response_headers: f` | `ProcessResponseHeaders` | as request headers |
/// | `on_response_body: f` | `ProcessResponseBody` | as request body |
/// | `on_streaming_response_body: f` | `ProcessStreamingResponseBody` | as streaming request body |
/// | `on_stream_done: f` | `ProcessStreamDone` | `fn(&mut HttpContext<MyState>, &MyConfig)` |
/// | `plugin: Name` / `plugin: pub Name` | | the generated type's name (default `Plugin`), private to the calling module unless given a visibility (then config and state must be `pub` too) |
///
/// It defines `struct Plugin` implementing [`HttpPlugin`] and, on wasm,
/// the module's `_initialize` entry. A wrong signature or an unknown key is
/// a compile error pointing at your code.
pub use higress_wrapper_macros::set_ctx;

pub use http_context::{AI_LOG_KEY, CUSTOM_LOG_KEY, TRACE_SPAN_TAG_PREFIX};

/// The JSON value config parsers receive (`serde_json::Value`).
pub use serde_json::Value as JsonValue;

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::config::{ConfigError, RuleInput};
    pub use crate::JsonValue;
    pub use crate::{
        ContextValue, DataAction, Error, HeaderAction, HeaderValue, Hooks, HostError, HttpContext,
        HttpHandle, HttpPlugin, Phase, PluginContext, StartError,
    };
}

/// What the SDK has in flight on this VM (its thread): futures waiting on a
/// host call, and host calls waiting for a reply. Both return to zero once
/// every request has ended and no plugin-owned work is running, so a test
/// (or a tick function) can check that nothing was left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingWork {
    /// Futures (async hooks, spawned work) waiting to be polled again.
    pub tasks: usize,
    /// Host calls (HTTP, Redis) waiting for their reply.
    pub calls: usize,
}

/// What is in flight right now (see [`PendingWork`]).
///
/// ```
/// let work = higress_wrapper::pending_work();
/// assert_eq!(work, higress_wrapper::PendingWork { tasks: 0, calls: 0 });
/// ```
pub fn pending_work() -> PendingWork {
    PendingWork {
        tasks: task::pending_tasks(),
        calls: callout::pending_calls(),
    }
}

/// The host's clock (`proxy_get_current_time_nanoseconds`): Envoy's wall
/// clock, the time Go's `time.Now()` reads in a plugin. Prefer it to
/// `SystemTime::now()` for durations a plugin measures (latencies,
/// windows): the test hosts move this clock
/// (`TestHost::advance_time`), so such code is tested without sleeping.
/// The Unix epoch if the host does not answer.
///
/// ```
/// use higress_wrapper::prelude::*;
/// use std::time::UNIX_EPOCH;
///
/// fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
///     let ms = higress_wrapper::now()
///         .duration_since(UNIX_EPOCH)
///         .map_or(0, |d| d.as_millis());
///     ctx.set_request_header("x-started-ms", ms.to_string());
///     HeaderAction::Continue
/// }
/// # let _ = on_request_headers;
/// ```
pub fn now() -> std::time::SystemTime {
    let nanos = host::current_time_nanos().unwrap_or(0);
    std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos)
}

/// The module's entry points for plugin `$plugin`: `_initialize` (the WASI
/// reactor start, which registers the plugin) and the proxy-wasm ABI version
/// export `proxy_abi_version_0_2_100`, which must come **before** the SDK's
/// own `proxy_abi_version_0_2_1`.
///
/// Higress's host takes the first `proxy_abi_version_*` export in the
/// module (0.2.100: a `Pause` from a headers callback keeps the body flowing
/// to the plugin, as stock Envoy does with `allow_on_headers_stop_iteration`);
/// stock Envoy skips versions it does not know and runs the module as 0.2.1.
/// One `.wasm` serves both — once 0.2.100 is the first of the two in the
/// module's export section. The linker orders exports by function index,
/// which follows how link-time optimisation merged the crates, not the
/// source: measured here, some plugins come out with 0.2.1 first. So
/// `cargo higress build` (and `dev`, and the test harness) rewrites the
/// export order after every build; after a plain `cargo build`, run
/// `cargo higress fix-abi target/wasm32-wasip1/release/<plugin>.wasm`.
/// A module left with 0.2.1 first still works on Higress, with 0.2.1
/// semantics (a headers `Pause` becomes stop-all). The workspace checks the
/// order of every module with Higress's first-match rule.
///
/// [`set_ctx!`](crate::set_ctx) calls it; call it yourself once when you
/// implement [`HttpPlugin`] by hand:
///
/// ```
/// # use higress_wrapper::prelude::*;
/// # #[allow(dead_code)]
/// # struct MyPlugin;
/// # impl HttpPlugin for MyPlugin {
/// #     const NAME: &'static str = "p";
/// #     type Config = ();
/// #     type State = ();
/// #     fn parse_config(_: &serde_json::Value) -> Result<(), ConfigError> { Ok(()) }
/// # }
/// higress_wrapper::plugin_entry!(MyPlugin);
/// ```
/// It expands to nothing on native targets.
#[macro_export]
macro_rules! plugin_entry {
    ($plugin:ty) => {
        /// The module's start (WASI reactor): registers the plugin.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        #[allow(unsafe_code)]
        pub extern "C" fn _initialize() {
            $crate::__private::register::<$plugin>();
        }

        /// Higress reads the first ABI version export: 0.2.100.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        #[allow(unsafe_code)]
        pub extern "C" fn proxy_abi_version_0_2_100() {}
    };
}

/// Used by the code `set_ctx!` generates; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use serde_json;

    /// Registers `P` with the host; called from `_initialize`.
    pub fn register<P: crate::HttpPlugin>() {
        crate::entry::register::<P>();
    }

    /// The default config parser `set_ctx!` uses.
    pub fn from_json<C: serde::de::DeserializeOwned>(
        json: &serde_json::Value,
    ) -> Result<C, crate::ConfigError> {
        crate::config::from_json(json)
    }
}

/// Every ```` ```rust ```` block of the README and the guides is compiled
/// (and run) as a doctest of this crate, so the docs cannot drift from the
/// API. Only under `cargo test --doc`: a packaged crate never reads these
/// files.
#[cfg(doctest)]
#[doc(test(attr(allow(dead_code, unused_imports, unused_variables))))]
mod docs_check {
    #[doc = include_str!("../../README.md")]
    struct Readme;
    #[doc = include_str!("../../docs/quickstart.md")]
    struct Quickstart;
    #[doc = include_str!("../../docs/config-and-rules.md")]
    struct ConfigAndRules;
    #[doc = include_str!("../../docs/async-redis-http.md")]
    struct AsyncRedisHttp;
    #[doc = include_str!("../../docs/migration-from-go.md")]
    struct MigrationFromGo;
    #[doc = include_str!("../../docs/zh-CN/migration-from-go.md")]
    struct MigrationFromGoZh;
    #[doc = include_str!("../../docs/zh-CN/quickstart.md")]
    struct QuickstartZh;
    #[doc = include_str!("../../docs/zh-CN/config-and-rules.md")]
    struct ConfigAndRulesZh;
    #[doc = include_str!("../../docs/zh-CN/async-redis-http.md")]
    struct AsyncRedisHttpZh;
}
