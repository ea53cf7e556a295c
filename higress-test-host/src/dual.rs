//! One test body, two hosts: [`both_modes!`](crate::both_modes) and [`Mode`].

/// Which host a [`both_modes!`](crate::both_modes) test body runs in: the
/// constant `MODE` in each generated module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// This crate: the plugin linked natively into the test binary.
    Native,
    /// `higress-wasm-host`: the plugin's compiled `wasm32-wasip1` release
    /// module under wasmtime.
    Wasm,
}

/// Runs the same test bodies natively and as the compiled module.
///
/// ```text
/// higress_test_host::both_modes! {
///     plugin: my_plugin::Plugin,
///     package: "my-plugin",
///
///     #[test]
///     fn sets_the_header() {
///         let host = start(r#"{"some_field": "hi"}"#).unwrap();
///         let mut s = host.http_stream();
///         assert_eq!(s.send_request_headers(&[(":path", "/")], true).unwrap(), Action::Continue);
///         assert_eq!(s.upstream_request_header("x-custom-header").unwrap(), "hi");
///     }
/// }
/// ```
///
/// expands the items after `package:` (tests and the helpers they use)
/// twice, into `mod native` and `mod wasm`; `cargo test native::` or
/// `cargo test wasm::` picks one mode. Each module brings into scope:
/// - the items of the enclosing module (`use super::*`);
/// - its host's test API by the same names: `TestHost`, `TestHostBuilder`,
///   `HttpStream`, `Action`, `LogLevel`, `LogRecord`, `LocalResponse`,
///   `StartFailure`, `StartStage`, `StreamError`, `Callout`,
///   `CalloutKind`, `CalloutState`, `DeliveryError`, `MetricValue`,
///   `Properties`, `RedisInit`, `HeaderValue` (these shadow the enclosing
///   module's, so keep host imports out of it);
/// - `start(config)`, which starts the plugin as Higress runs an SDK module:
///   natively `TestHost::builder().higress().start::<Plugin>(config)`; in
///   wasm mode the package's module, built for `wasm32-wasip1` release with
///   ABI 0.2.100 first
///   (`higress_wasm_host::PluginModule::workspace_package`), under the ABI
///   it exports first, with the plugin's `NAME` as `plugin_name`, and with
///   WASI's clock on the real time (`SystemTime::now()` in the plugin is the
///   real time in both modes; `proxy_get_current_time_nanoseconds` is the
///   host clock in both);
/// - `start_with(config, |b| b.stock_envoy().redis_server(..))`, the same
///   with builder settings (the two builders share their method names;
///   `.stock_envoy()` runs ABI 0.2.1 semantics in both modes);
/// - `MODE`, the [`Mode`];
/// - `native_only! { .. }` and `wasm_only! { .. }`: statements kept in one
///   mode only (e.g. `host.pending_tasks()`, which reads the natively
///   linked SDK, or `host.traps()` of the wasm host).
///
/// The test crate needs `higress-wasm-host` as a dev-dependency for
/// non-wasm targets (this crate does not depend on it: it stays light for
/// native-only tests):
///
/// ```toml
/// [target.'cfg(not(target_arch = "wasm32"))'.dev-dependencies]
/// higress-wasm-host = { path = "../../higress-wasm-host" }
/// ```
///
/// A test that passes in one mode and fails in the other found a bug in
/// one of the hosts (or a difference between the native build and the
/// module): neither mode is the reference.
#[macro_export]
macro_rules! both_modes {
    (
        plugin: $plugin:ty,
        package: $package:literal,
        $($body:tt)*
    ) => {
        /// The test bodies in the native host.
        #[allow(unused_imports, dead_code, unused_macros)]
        mod native {
            use super::*;
            use $crate::{
                Action, Callout, CalloutKind, CalloutState, DeliveryError, HttpStream,
                LocalResponse, LogLevel, LogRecord, MetricValue, Properties, RedisInit,
                StartFailure, StartStage, StreamError, TestHost, TestHostBuilder,
            };
            use $crate::__private::HeaderValue;
            use $crate::__keep_statements as native_only;
            use $crate::__drop_statements as wasm_only;

            /// This module's host.
            pub(crate) const MODE: $crate::Mode = $crate::Mode::Native;

            /// Starts the plugin as Higress runs it.
            pub(crate) fn start(
                config: impl ::core::convert::AsRef<[u8]>,
            ) -> ::core::result::Result<TestHost, StartFailure> {
                start_with(config, |builder| builder)
            }

            /// Starts the plugin with the builder settings `settings` adds.
            pub(crate) fn start_with(
                config: impl ::core::convert::AsRef<[u8]>,
                settings: impl ::core::ops::FnOnce(TestHostBuilder) -> TestHostBuilder,
            ) -> ::core::result::Result<TestHost, StartFailure> {
                settings(TestHost::builder().higress()).start::<$plugin>(config)
            }

            $($body)*
        }

        /// The test bodies in the wasm-mode host, on the compiled module.
        #[allow(unused_imports, dead_code, unused_macros)]
        mod wasm {
            use super::*;
            use ::higress_wasm_host::{
                Action, Callout, CalloutKind, CalloutState, DeliveryError, HeaderValue,
                HttpStream, LocalResponse, LogLevel, LogRecord, MetricValue, Properties,
                RedisInit, StartFailure, StartStage, StreamError, TestHost, TestHostBuilder,
            };
            use $crate::__drop_statements as native_only;
            use $crate::__keep_statements as wasm_only;

            /// This module's host.
            pub(crate) const MODE: $crate::Mode = $crate::Mode::Wasm;

            /// Starts the package's compiled module as Higress runs it.
            pub(crate) fn start(
                config: impl ::core::convert::AsRef<[u8]>,
            ) -> ::core::result::Result<TestHost, StartFailure> {
                start_with(config, |builder| builder)
            }

            /// Starts the module with the builder settings `settings` adds.
            #[allow(clippy::panic)] // a module that does not build fails the test
            pub(crate) fn start_with(
                config: impl ::core::convert::AsRef<[u8]>,
                settings: impl ::core::ops::FnOnce(TestHostBuilder) -> TestHostBuilder,
            ) -> ::core::result::Result<TestHost, StartFailure> {
                let module = match ::higress_wasm_host::PluginModule::workspace_package($package) {
                    ::core::result::Result::Ok(module) => module,
                    ::core::result::Result::Err(e) => ::core::panic!("{e}"),
                };
                let name = <$plugin as $crate::__private::HttpPlugin>::NAME;
                // `SystemTime::now()` reads the real clock natively; so does
                // WASI's clock here (the host clock stays the proxy-wasm one).
                let builder = TestHost::builder()
                    .higress()
                    .plugin_name(name)
                    .wasi_real_time(true);
                settings(builder).start(&module, config)
            }

            $($body)*
        }
    };
}

/// `native_only!` / `wasm_only!` in the mode that keeps the statements.
#[doc(hidden)]
#[macro_export]
macro_rules! __keep_statements {
    ($($t:tt)*) => {
        $($t)*
    };
}

/// `native_only!` / `wasm_only!` in the mode that drops the statements.
#[doc(hidden)]
#[macro_export]
macro_rules! __drop_statements {
    ($($t:tt)*) => {};
}
