//! The hook traits a plugin implements, and the typed phase results.
//!
//! [`set_ctx!`](crate::set_ctx) is thin sugar over [`HttpPlugin`]: it names
//! your functions and fills in the trait. Implementing the trait by hand is
//! equally supported.

use crate::config::{ConfigError, RuleInput};
use crate::http_context::HttpContext;
use crate::plugin_context::PluginContext;
use crate::task::BoxFuture;
use std::fmt;
use std::future::Future;

/// What a request- or response-headers hook tells the host.
///
/// When a pause holds the request and what resumes it:
///
/// | host | `StopIteration` (or a [`wait`](HeaderAction::wait)) from **request** headers |
/// |---|---|
/// | stock Envoy, ABI 0.2.1 (default) | becomes *stop all*: the headers **and the body** are held; body hooks do not run until the stream is resumed (by the SDK when a waited-on future completes, or by [`HttpContext::resume_request`]). A request paused by hand to read its body first **hangs**. |
/// | stock Envoy with `allow_on_headers_stop_iteration: true` | headers are held, body hooks run; the headers leave once a body hook returns `Continue` at end of stream, so a header set after reading the body reaches the upstream. |
/// | Higress | the host picks the semantics from the ABI the module exports. This SDK exports `proxy_abi_version_0_2_1`, so it is the first row (stop all); only modules exporting `0_2_100` keep `StopIteration` (this SDK does not offer that). |
///
/// In every case a local response ([`HttpContext::send_local_response`])
/// ends the request, whatever the hook returns.
///
/// A hook that must wait for a host call (Redis, HTTP) returns
/// [`HeaderAction::wait`] with a future: the SDK polls it at once (no cost if
/// it completes without waiting), otherwise pauses the request and resumes
/// it exactly once when the future completes, applying its result. User code
/// never calls resume by hand.
#[derive(Default)]
#[non_exhaustive]
#[must_use]
pub enum HeaderAction {
    /// Let the headers continue to the next filter.
    #[default]
    Continue,
    /// Hold the headers (see the table above for what resumes them).
    StopIteration,
    #[doc(hidden)]
    Wait(Waiting<HeaderAction>),
}

/// What a body hook tells the host.
#[derive(Default)]
#[non_exhaustive]
#[must_use]
pub enum DataAction {
    /// Let the data continue.
    #[default]
    Continue,
    /// Hold the data and keep buffering until resumed.
    StopIterationAndBuffer,
    #[doc(hidden)]
    Wait(Waiting<DataAction>),
}

/// A hook's pending future (see [`HeaderAction::wait`]).
#[doc(hidden)]
pub struct Waiting<A>(pub(crate) BoxFuture<Result<A, String>>);

/// What an async hook may produce: the action itself, or a `Result` whose
/// error is logged and handled by the request's error policy (continue by
/// default, see [`HttpContext::set_error_response`]).
pub trait HookOutput<A> {
    /// Converts to the action, or an error message.
    fn into_action(self) -> Result<A, String>;
}

impl HookOutput<HeaderAction> for HeaderAction {
    fn into_action(self) -> Result<HeaderAction, String> {
        Ok(self)
    }
}

impl HookOutput<DataAction> for DataAction {
    fn into_action(self) -> Result<DataAction, String> {
        Ok(self)
    }
}

impl<A, E: fmt::Display> HookOutput<A> for Result<A, E>
where
    A: HookOutput<A>,
{
    fn into_action(self) -> Result<A, String> {
        self.map_err(|e| e.to_string())
    }
}

macro_rules! action_common {
    ($ty:ident, $cont:ident, $stop:ident) => {
        impl $ty {
            /// Waits for `future` (e.g. a Redis or HTTP call) before deciding.
            /// The request is paused while it waits and resumed exactly once
            /// when it completes, with the action it returns. If it returns
            /// an `Err`, the error is logged and the request continues (fail
            /// open) unless [`HttpContext::set_error_response`] chose otherwise.
            /// A future that completes without waiting costs nothing extra.
            pub fn wait<F, R>(future: F) -> $ty
            where
                F: Future<Output = R> + 'static,
                R: HookOutput<$ty> + 'static,
            {
                $ty::Wait(Waiting(Box::pin(async move { future.await.into_action() })))
            }

            /// Whether this is the continue action.
            pub fn is_continue(&self) -> bool {
                matches!(self, $ty::$cont)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $ty::$cont => stringify!($cont),
                    $ty::$stop => stringify!($stop),
                    $ty::Wait(_) => "Wait(..)",
                })
            }
        }

        /// Two actions are equal if both are the same immediate action; a
        /// waiting action equals nothing.
        impl PartialEq for $ty {
            fn eq(&self, other: &$ty) -> bool {
                matches!(
                    (self, other),
                    ($ty::$cont, $ty::$cont) | ($ty::$stop, $ty::$stop)
                )
            }
        }
    };
}

action_common!(HeaderAction, Continue, StopIteration);
action_common!(DataAction, Continue, StopIterationAndBuffer);

impl<A> fmt::Debug for Waiting<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waiting(..)")
    }
}

/// Which optional body hooks a plugin implements, so the SDK buffers or
/// streams only what somebody reads. [`set_ctx!`](crate::set_ctx) fills it
/// in; when you implement [`HttpPlugin`] by hand, set the flags for the body
/// hooks you override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hooks {
    /// [`HttpPlugin::on_request_body`] is implemented.
    pub request_body: bool,
    /// [`HttpPlugin::on_streaming_request_body`] is implemented.
    pub streaming_request_body: bool,
    /// [`HttpPlugin::on_response_body`] is implemented.
    pub response_body: bool,
    /// [`HttpPlugin::on_streaming_response_body`] is implemented.
    pub streaming_response_body: bool,
    /// No hook runs after the request headers (only
    /// [`HttpPlugin::on_request_headers`] is implemented; a future it waits
    /// on still runs while the request headers are held). Envoy lets a plugin read the request headers only until they
    /// continue, so the SDK normally captures `:scheme`, `:authority`,
    /// `:path`, `:method` and `x-request-id` at request headers (one host
    /// call) for later phases; with this flag it skips that call and reads
    /// them on demand. `set_ctx!` sets it; leave it `false` (the safe
    /// default) when implementing the trait by hand unless the same holds.
    pub request_headers_only: bool,
}

impl Hooks {
    /// No body hooks: bodies pass through untouched and unread.
    pub const NONE: Hooks = Hooks {
        request_body: false,
        streaming_request_body: false,
        response_body: false,
        streaming_response_body: false,
        request_headers_only: false,
    };
}

/// Plugin start failed; the host refuses the configuration.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

impl StartError {
    /// A start error with a message.
    pub fn new(message: impl Into<String>) -> StartError {
        StartError(message.into())
    }
}

impl From<&str> for StartError {
    fn from(message: &str) -> StartError {
        StartError(message.to_owned())
    }
}

impl From<String> for StartError {
    fn from(message: String) -> StartError {
        StartError(message)
    }
}

impl From<crate::HostError> for StartError {
    fn from(err: crate::HostError) -> StartError {
        StartError(format!("host call failed: {err}"))
    }
}

impl From<ConfigError> for StartError {
    fn from(err: ConfigError) -> StartError {
        StartError(err.to_string())
    }
}

/// A gateway plugin: its config, its per-request state and its phase hooks.
///
/// Every hook has a default that does nothing and continues, so implement
/// only what you need. Hooks run only for requests where a config matched
/// (a `_rules_` entry or the global config); otherwise the plugin stays out
/// of the request entirely, as in the Go wrapper.
///
/// ```
/// use higress_wrapper::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct Config { header: String }
///
/// struct AddHeader;
///
/// impl HttpPlugin for AddHeader {
///     const NAME: &'static str = "add-header";
///     type Config = Config;
///     type State = ();
///
///     fn parse_config(json: &serde_json::Value) -> Result<Config, ConfigError> {
///         higress_wrapper::config::from_json(json)
///     }
///
///     fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
///         ctx.set_request_header("x-added", &config.header);
///         HeaderAction::Continue
///     }
/// }
/// # let config = AddHeader::parse_config(&serde_json::json!({"header": "v"}));
/// # assert_eq!(config.map(|c| c.header).ok().as_deref(), Some("v"));
/// # let _ = AddHeader;
/// ```
pub trait HttpPlugin: Sized + 'static {
    /// The plugin name, the first part of every log line: `[name] [id] [request-id] ...`.
    const NAME: &'static str;
    /// Which body hooks are implemented (see [`Hooks`]).
    const HOOKS: Hooks = Hooks::NONE;
    /// The parsed configuration (global, or one per `_rules_` entry).
    type Config: 'static;
    /// Your per-request state, created with `Default` for each request and
    /// reached through [`HttpContext::state`] / [`HttpContext::state_mut`].
    type State: Default + 'static;

    /// Parses a configuration object. Called with `{}` for an empty config,
    /// as Go does. The usual body is
    /// [`config::from_json(json)`](crate::config::from_json).
    fn parse_config(json: &serde_json::Value) -> Result<Self::Config, ConfigError>;

    /// Parses one `_rules_` entry. The default parses the global config
    /// overlaid with the rule's own keys (JSON merge-patch), so rules only
    /// state what differs. Override it to build a rule config from the parsed
    /// global config yourself (Go's `ParseOverrideConfig`).
    fn parse_rule_config(rule: &RuleInput<'_, Self::Config>) -> Result<Self::Config, ConfigError> {
        Self::parse_config(rule.merged_json())
    }

    /// Runs once the configuration parsed, on each plugin start and reload.
    /// Register tick functions here. An error makes the host refuse the config.
    fn on_plugin_start(_ctx: &mut PluginContext<'_, Self::Config>) -> Result<(), StartError> {
        Ok(())
    }

    /// Request headers arrived.
    fn on_request_headers(
        _ctx: &mut HttpContext<Self::State>,
        _config: &Self::Config,
    ) -> HeaderAction {
        HeaderAction::Continue
    }

    /// The whole request body, called once at end of stream (buffered mode).
    /// Not called without a body, after [`HttpContext::dont_read_request_body`],
    /// for binary or encoded bodies, or for websocket upgrades.
    fn on_request_body(
        _ctx: &mut HttpContext<Self::State>,
        _config: &Self::Config,
        _body: &[u8],
    ) -> DataAction {
        DataAction::Continue
    }

    /// One chunk of the request body (streaming mode). Return `Some(bytes)` to
    /// replace the chunk, `None` to pass it on unchanged (no copy). Takes
    /// priority over [`HttpPlugin::on_request_body`] unless
    /// [`HttpContext::buffer_request_body`] was called.
    fn on_streaming_request_body(
        _ctx: &mut HttpContext<Self::State>,
        _config: &Self::Config,
        _chunk: &[u8],
        _end_of_stream: bool,
    ) -> Option<Vec<u8>> {
        None
    }

    /// Response headers arrived.
    fn on_response_headers(
        _ctx: &mut HttpContext<Self::State>,
        _config: &Self::Config,
    ) -> HeaderAction {
        HeaderAction::Continue
    }

    /// The whole response body, called once at end of stream (buffered mode).
    fn on_response_body(
        _ctx: &mut HttpContext<Self::State>,
        _config: &Self::Config,
        _body: &[u8],
    ) -> DataAction {
        DataAction::Continue
    }

    /// One chunk of the response body (streaming mode); see
    /// [`HttpPlugin::on_streaming_request_body`].
    fn on_streaming_response_body(
        _ctx: &mut HttpContext<Self::State>,
        _config: &Self::Config,
        _chunk: &[u8],
        _end_of_stream: bool,
    ) -> Option<Vec<u8>> {
        None
    }

    /// The stream is done (the host's `proxy_on_log`); the last hook of a request.
    fn on_stream_done(_ctx: &mut HttpContext<Self::State>, _config: &Self::Config) {}
}
