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
/// | Higress | the host picks the semantics from the first ABI version the module exports. Modules built with this SDK export `proxy_abi_version_0_2_100` first ([`plugin_entry!`](crate::plugin_entry)), so Higress keeps `StopIteration` as it is: the second row, without any option. |
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

/// A request- or response-headers hook (see [`Hooks`]).
pub type HeaderHook<P> =
    fn(&mut HttpContext<<P as HttpPlugin>::State>, &<P as HttpPlugin>::Config) -> HeaderAction;
/// A buffered body hook: the whole body, once, at end of stream.
pub type BodyHook<P> =
    fn(&mut HttpContext<<P as HttpPlugin>::State>, &<P as HttpPlugin>::Config, &[u8]) -> DataAction;
/// A streaming body hook: one chunk and whether it is the last; return
/// `Some(bytes)` to replace the chunk.
pub type StreamingBodyHook<P> = fn(
    &mut HttpContext<<P as HttpPlugin>::State>,
    &<P as HttpPlugin>::Config,
    &[u8],
    bool,
) -> Option<Vec<u8>>;
/// A trailers hook: the trailers are reached through the context.
pub type TrailersHook<P> =
    fn(&mut HttpContext<<P as HttpPlugin>::State>, &<P as HttpPlugin>::Config) -> HeaderAction;
/// The stream-done hook.
pub type DoneHook<P> = fn(&mut HttpContext<<P as HttpPlugin>::State>, &<P as HttpPlugin>::Config);

/// The phase hooks a plugin implements: each one is there or not, so the SDK
/// knows from the same place which bodies to read and which phases to skip
/// (a phase without a hook costs no more than the host's crossing). There is
/// no flag to keep in step with the hooks by hand.
///
/// [`set_ctx!`](crate::set_ctx) fills it in. Implementing [`HttpPlugin`] by
/// hand, name your functions and leave the rest to [`Hooks::NONE`]:
///
/// ```
/// use higress_wrapper::prelude::*;
///
/// # #[allow(dead_code)]
/// struct Tag;
///
/// # #[allow(dead_code)]
/// impl Tag {
///     fn request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
///         ctx.set_request_header("x-tag", "1");
///         HeaderAction::Continue
///     }
/// }
///
/// impl HttpPlugin for Tag {
///     const NAME: &'static str = "tag";
///     type Config = ();
///     type State = ();
///     const HOOKS: Hooks<Self> = Hooks {
///         on_request_headers: Some(Self::request_headers),
///         ..Hooks::NONE
///     };
///     fn parse_config(_: &serde_json::Value) -> Result<(), ConfigError> {
///         Ok(())
///     }
/// }
/// ```
pub struct Hooks<P: HttpPlugin> {
    /// Request headers arrived (Go's `ProcessRequestHeaders`).
    pub on_request_headers: Option<HeaderHook<P>>,
    /// The whole request body, called once at end of stream (buffered
    /// mode). Not called without a body, after
    /// [`HttpContext::dont_read_request_body`], for binary or encoded
    /// bodies, or for websocket upgrades.
    pub on_request_body: Option<BodyHook<P>>,
    /// One chunk of the request body (streaming mode). Takes priority over
    /// `on_request_body` unless [`HttpContext::buffer_request_body`] was
    /// called.
    pub on_streaming_request_body: Option<StreamingBodyHook<P>>,
    /// Request trailers arrived (after the body hooks saw the end of the
    /// body); read them with [`HttpContext::request_trailers`].
    pub on_request_trailers: Option<TrailersHook<P>>,
    /// Response headers arrived.
    pub on_response_headers: Option<HeaderHook<P>>,
    /// The whole response body, called once at end of stream.
    pub on_response_body: Option<BodyHook<P>>,
    /// One chunk of the response body (streaming mode).
    pub on_streaming_response_body: Option<StreamingBodyHook<P>>,
    /// Response trailers arrived; read them with
    /// [`HttpContext::response_trailers`].
    pub on_response_trailers: Option<TrailersHook<P>>,
    /// The stream is done (the host's `proxy_on_log`); the last hook of a
    /// request.
    pub on_stream_done: Option<DoneHook<P>>,
}

impl<P: HttpPlugin> Hooks<P> {
    /// No hooks: the plugin stays out of every request.
    pub const NONE: Hooks<P> = Hooks {
        on_request_headers: None,
        on_request_body: None,
        on_streaming_request_body: None,
        on_request_trailers: None,
        on_response_headers: None,
        on_response_body: None,
        on_streaming_response_body: None,
        on_response_trailers: None,
        on_stream_done: None,
    };

    /// A request body hook (buffered or streaming) is there.
    pub const fn reads_request_body(&self) -> bool {
        self.on_request_body.is_some() || self.on_streaming_request_body.is_some()
    }

    /// A response body hook (buffered or streaming) is there.
    pub const fn reads_response_body(&self) -> bool {
        self.on_response_body.is_some() || self.on_streaming_response_body.is_some()
    }

    /// No hook runs after the request headers. Envoy lets a plugin read the
    /// request headers only until they continue, so the SDK normally
    /// captures `:scheme`, `:authority`, `:path`, `:method` and
    /// `x-request-id` at request headers (one host call) for later phases;
    /// for such a plugin it skips that call and reads them on demand.
    pub const fn request_headers_only(&self) -> bool {
        !self.reads_request_body()
            && self.on_request_trailers.is_none()
            && self.on_response_headers.is_none()
            && !self.reads_response_body()
            && self.on_response_trailers.is_none()
            && self.on_stream_done.is_none()
    }
}

impl<P: HttpPlugin> Clone for Hooks<P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: HttpPlugin> Copy for Hooks<P> {}

impl<P: HttpPlugin> fmt::Debug for Hooks<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_request_headers", &self.on_request_headers.is_some())
            .field("on_request_body", &self.on_request_body.is_some())
            .field(
                "on_streaming_request_body",
                &self.on_streaming_request_body.is_some(),
            )
            .field("on_request_trailers", &self.on_request_trailers.is_some())
            .field("on_response_headers", &self.on_response_headers.is_some())
            .field("on_response_body", &self.on_response_body.is_some())
            .field(
                "on_streaming_response_body",
                &self.on_streaming_response_body.is_some(),
            )
            .field("on_response_trailers", &self.on_response_trailers.is_some())
            .field("on_stream_done", &self.on_stream_done.is_some())
            .finish()
    }
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
/// The phase hooks are listed in [`HttpPlugin::HOOKS`]: a phase without a
/// hook is skipped. Hooks run only for requests where a config matched
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
/// fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
///     ctx.set_request_header("x-added", &config.header);
///     HeaderAction::Continue
/// }
///
/// impl HttpPlugin for AddHeader {
///     const NAME: &'static str = "add-header";
///     type Config = Config;
///     type State = ();
///     const HOOKS: Hooks<Self> = Hooks {
///         on_request_headers: Some(on_request_headers),
///         ..Hooks::NONE
///     };
///
///     fn parse_config(json: &serde_json::Value) -> Result<Config, ConfigError> {
///         higress_wrapper::config::from_json(json)
///     }
/// }
/// # let config = AddHeader::parse_config(&serde_json::json!({"header": "v"}));
/// # assert_eq!(config.map(|c| c.header).ok().as_deref(), Some("v"));
/// # let _ = AddHeader;
/// ```
pub trait HttpPlugin: Sized + 'static {
    /// The plugin name, the first part of every log line: `[name] [id] [request-id] ...`.
    const NAME: &'static str;
    /// The phase hooks (see [`Hooks`]); none by default.
    const HOOKS: Hooks<Self> = Hooks::NONE;
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

    /// A message arrived on a shared queue this plugin registered (the
    /// host's `proxy_on_queue_ready`). The SDK itself uses no queue: every
    /// queue id is the plugin's.
    fn on_queue_ready(_ctx: &mut PluginContext<'_, Self::Config>, _queue_id: u32) {}
}

/// The callback style of waiting (defined here, beside the actions it
/// builds, so that `http_context` does not depend on this module).
impl<S> HttpContext<S> {
    /// The callback style, for authors coming from Go: waits for `call` (a
    /// Redis or HTTP call), then runs `callback` with this request's context
    /// and the result; the action it returns is applied and the request
    /// resumed by the SDK. Return it from a headers hook:
    ///
    /// ```
    /// # use higress_wrapper::prelude::*;
    /// # use higress_wrapper::redis::RedisClient;
    /// fn on_request_headers(ctx: &mut HttpContext, redis: &RedisClient) -> HeaderAction {
    ///     ctx.then(redis.get("k"), |ctx, reply| {
    ///         if let Ok(Some(v)) = reply {
    ///             ctx.set_request_header("x-v", v);
    ///         }
    ///         HeaderAction::Continue
    ///     })
    /// }
    /// # let _ = on_request_headers;
    /// ```
    pub fn then<F, T>(
        &self,
        call: F,
        callback: impl FnOnce(&mut HttpContext<S>, T) -> HeaderAction + 'static,
    ) -> HeaderAction
    where
        F: std::future::Future<Output = T> + 'static,
        S: 'static,
    {
        let handle = self.handle();
        HeaderAction::wait(async move {
            let result = call.await;
            handle
                .with(|ctx| callback(ctx, result))
                .unwrap_or(HeaderAction::Continue)
        })
    }

    /// [`then`](Self::then) for body hooks.
    pub fn then_data<F, T>(
        &self,
        call: F,
        callback: impl FnOnce(&mut HttpContext<S>, T) -> DataAction + 'static,
    ) -> DataAction
    where
        F: std::future::Future<Output = T> + 'static,
        S: 'static,
    {
        let handle = self.handle();
        DataAction::wait(async move {
            let result = call.await;
            handle
                .with(|ctx| callback(ctx, result))
                .unwrap_or(DataAction::Continue)
        })
    }
}
