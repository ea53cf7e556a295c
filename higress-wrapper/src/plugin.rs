//! The hook trait a plugin implements and its table of hooks (the phase
//! results they return are in `action`).
//!
//! [`set_ctx!`](crate::set_ctx) is thin sugar over [`HttpPlugin`]: it names
//! your functions and fills in the trait. Implementing the trait by hand is
//! equally supported.

use crate::action::{DataAction, HeaderAction};
use crate::config::{ConfigError, RuleInput};
use crate::http_context::HttpContext;
use crate::plugin_context::PluginContext;
use std::fmt;

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

impl From<crate::Error> for StartError {
    fn from(err: crate::Error) -> StartError {
        StartError(err.to_string())
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
    /// Whether the SDK keeps the request line for later phases (default
    /// `true`, `set_ctx!` key `capture_request_line`).
    ///
    /// Envoy lets a plugin read the request headers only until they
    /// continue. So that [`HttpContext::scheme`], [`host`](HttpContext::host),
    /// [`path`](HttpContext::path), [`method`](HttpContext::method) and the
    /// log prefix's `x-request-id` answer in every phase, a plugin with a
    /// hook after the request headers gets them captured at request headers
    /// (one host call that copies the whole header map). A plugin whose later
    /// hooks use none of them can set `false` to skip that call: they are
    /// then read on demand, which answers during the request-headers phase
    /// only (later, the accessors give `""` and the log prefix `nil`). The
    /// facts the body hooks depend on (websocket upgrade, binary or encoded
    /// body) are still read at request headers, with one host call per
    /// header and only when a body hook will run (and not at all with
    /// [`SKIP_BINARY_BODIES`](Self::SKIP_BINARY_BODIES) `false`).
    const CAPTURE_REQUEST_LINE: bool = true;
    /// Whether the body hooks skip bodies they cannot read as text (default
    /// `true`, Go's rule; `set_ctx!` key `skip_binary_bodies`).
    ///
    /// As Go's wrapper does, the SDK runs no body hook for a websocket
    /// upgrade (`connection: upgrade` with `upgrade: websocket`, both
    /// directions), for a request body whose `content-type` names
    /// `octet-stream` or `grpc` or that has any `content-encoding`, nor for
    /// such a response body: those bodies pass untouched (a gzip-encoded
    /// JSON response too, Go's issue alibaba/higress#3467). Deciding this
    /// costs a look at the request headers when a body hook will run (from
    /// the request-line capture, or one host call per header without it).
    ///
    /// Set `false` to run the body hooks on every body: the plugin then
    /// decodes or skips such bodies itself (for example with
    /// [`HttpContext::is_binary_request_body`]), and the SDK reads no header
    /// for the decision.
    const SKIP_BINARY_BODIES: bool = true;
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
