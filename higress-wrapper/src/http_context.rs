//! [`HttpContext`]: everything a hook can do with the request it runs for.
//!
//! Every method goes to the host through the SDK's own host module and never
//! panics: reads return `Option`, writes log a warning if the host refuses.

use crate::action::{DataAction, HeaderAction, PhaseAction, WaitOutput};
use crate::error::HostError;
use crate::host::{self, BufferType, MapType, StreamType};
use crate::log::RequestId;
use std::any::Any;
use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::{Rc, Weak};

/// Size argument meaning "the whole buffer" (the host clamps it).
const WHOLE: usize = i32::MAX as usize;

/// Which phase of the request a hook runs in (Go's `HTTPExecutionPhase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Request headers.
    DecodeHeader,
    /// Request body.
    DecodeData,
    /// Response headers.
    EncodeHeader,
    /// Response body.
    EncodeData,
    /// Stream done.
    Done,
}

/// A header value: raw bytes, with checked and lossy text views. Header
/// values are not guaranteed to be UTF-8; nothing here panics on them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HeaderValue(Vec<u8>);

impl HeaderValue {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The value as text, or `None` if it is not UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
    /// The value as text, invalid bytes replaced by U+FFFD.
    pub fn to_str_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
    /// Takes the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_str_lossy(), f)
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_str_lossy())
    }
}

impl PartialEq<str> for HeaderValue {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for HeaderValue {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl From<Vec<u8>> for HeaderValue {
    fn from(bytes: Vec<u8>) -> HeaderValue {
        HeaderValue(bytes)
    }
}

/// A value in the per-request context map ([`HttpContext::set_context`]),
/// Go's `SetContext(key, interface{})` without `Any` downcasts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ContextValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    String(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// Any JSON value.
    Json(serde_json::Value),
}

impl From<bool> for ContextValue {
    fn from(v: bool) -> Self {
        ContextValue::Bool(v)
    }
}
impl From<i64> for ContextValue {
    fn from(v: i64) -> Self {
        ContextValue::Int(v)
    }
}
impl From<i32> for ContextValue {
    fn from(v: i32) -> Self {
        ContextValue::Int(i64::from(v))
    }
}
impl From<u32> for ContextValue {
    fn from(v: u32) -> Self {
        ContextValue::Int(i64::from(v))
    }
}
impl From<f64> for ContextValue {
    fn from(v: f64) -> Self {
        ContextValue::Float(v)
    }
}
impl From<String> for ContextValue {
    fn from(v: String) -> Self {
        ContextValue::String(v)
    }
}
impl From<&str> for ContextValue {
    fn from(v: &str) -> Self {
        ContextValue::String(v.to_owned())
    }
}
impl From<Vec<u8>> for ContextValue {
    fn from(v: Vec<u8>) -> Self {
        ContextValue::Bytes(v)
    }
}
impl From<&[u8]> for ContextValue {
    fn from(v: &[u8]) -> Self {
        ContextValue::Bytes(v.to_vec())
    }
}
impl From<serde_json::Value> for ContextValue {
    fn from(v: serde_json::Value) -> Self {
        ContextValue::Json(v)
    }
}

/// The property key of the access-log attributes (Go's `CustomLogKey`).
pub const CUSTOM_LOG_KEY: &str = "custom_log";
/// The property key of the AI access-log attributes (Go's `AILogKey`).
pub const AI_LOG_KEY: &str = "ai_log";
/// The property prefix of trace span tags (Go's `TraceSpanTagPrefix`).
pub const TRACE_SPAN_TAG_PREFIX: &str = "trace_span_tag.";

/// Which phase's future a direction of a stream waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum WaitingOn {
    #[default]
    Nothing,
    Headers,
    Body,
}

/// Everything the SDK tracks for one direction (request or response) of a
/// stream, in one place: what the plugin asked for, what the host sent, and
/// what the driver holds.
#[derive(Debug, Default)]
pub(crate) struct DirState {
    /// Body hooks run for this direction (a hook exists and the plugin did
    /// not opt out; not for binary bodies or websockets).
    pub(crate) read_body: bool,
    /// The plugin asked for the buffered body hook over the streaming one.
    pub(crate) buffer_body: bool,
    /// The host announced a body after the headers.
    pub(crate) has_body: bool,
    /// The SDK (or the plugin) paused this direction; a resume is owed.
    pub(crate) paused: bool,
    /// Which hook's future is pending.
    pub(crate) waiting: WaitingOn,
    /// Body data held while a headers hook waited: `(body_size, end_of_stream)`.
    pub(crate) held_body: Option<(usize, bool)>,
    /// The body hooks saw the end of the body.
    pub(crate) body_ended: bool,
}

/// One direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Request,
    Response,
}

/// Request-wide flags the driver reads.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    pub(crate) local_response_sent: bool,
    /// The plugin reset the stream ([`HttpContext::reset_stream`]).
    pub(crate) reset: bool,
    /// What to answer when an awaited hook fails (`None`: continue).
    pub(crate) error_response: Option<(u32, Vec<u8>)>,
}

/// The request a hook runs for: headers, bodies, properties, local responses,
/// your typed per-request state `S`, and Go's context maps.
///
/// One `HttpContext` lives as long as the request. `:scheme`, `:authority`,
/// `:path` and `:method` are read once, on first use, and cached, so they are
/// available in every phase.
pub struct HttpContext<S = ()> {
    pub(crate) context_id: u32,
    pub(crate) phase: Phase,
    pub(crate) flags: Flags,
    /// The request direction's state.
    pub(crate) request: DirState,
    /// Websocket / binary body, captured with the request line.
    pub(crate) request_facts: Option<RequestFacts>,
    /// The response direction's state.
    pub(crate) response: DirState,
    pub(crate) plugin_name: &'static str,
    pub(crate) plugin_id: Option<Rc<str>>,
    pub(crate) root_id: u32,
    /// `x-request-id`, read once at request headers (Envoy drops the request
    /// headers once they continue).
    pub(crate) request_id: RequestId,
    scheme: OnceCell<String>,
    host: OnceCell<String>,
    path: OnceCell<String>,
    method: OnceCell<String>,
    /// Go's context map; a few keys per request, so a `Vec` (less code in
    /// the `.wasm` than a hash map).
    context: Vec<(String, ContextValue)>,
    pub(crate) this: Weak<RefCell<HttpContext<S>>>,
    user_attributes: serde_json::Map<String, serde_json::Value>,
    /// The config matched for this request, for [`HttpContext::wait`].
    pub(crate) matched_config: Option<Rc<dyn Any>>,
    /// Which `_rules_` entry matched (`None`: the global config).
    pub(crate) matched_rule: Option<usize>,
    /// How many `_rules_` entries the configuration has.
    pub(crate) rule_count: usize,
    /// [`HttpContext::need_pause_streaming_response`] was called.
    pub(crate) pause_streaming_response: bool,
    /// What few requests use (Go's buffer queue, a route call), boxed on
    /// first use so that every other request creates, moves and drops less.
    pub(crate) rare: Option<Box<Rare<S>>>,
    state: S,
}

/// The parts of an [`HttpContext`] few requests use.
pub(crate) struct Rare<S> {
    /// Go's `PushBuffer` / `PopBuffer` queue.
    buffer_queue: VecDeque<Vec<u8>>,
    /// [`HttpContext::route_call`]'s callback, until the response arrived.
    pub(crate) route_call: Option<RouteCallback<S>>,
}

/// The callback of [`HttpContext::route_call`].
pub(crate) type RouteCallback<S> = Box<dyn FnOnce(&mut HttpContext<S>, RouteResponse)>;

/// The route upstream's answer to [`HttpContext::route_call`] (Go's
/// `RouteResponseCallback` arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteResponse {
    /// The response status (`:status`; 500 if absent, as in Go).
    pub status: u32,
    /// The response headers, pseudo-headers included.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole response body (empty if the headers ended the response).
    pub body: Vec<u8>,
}

impl<S: fmt::Debug> fmt::Debug for HttpContext<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpContext")
            .field("context_id", &self.context_id)
            .field("phase", &self.phase)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<S: Default> HttpContext<S> {
    pub(crate) fn new(context_id: u32, plugin_name: &'static str) -> Self {
        HttpContext {
            context_id,
            phase: Phase::DecodeHeader,
            flags: Flags::default(),
            request: DirState::default(),
            request_facts: None,
            response: DirState::default(),
            plugin_name,
            plugin_id: None,
            root_id: 0,
            request_id: Rc::new(OnceCell::new()),
            scheme: OnceCell::new(),
            host: OnceCell::new(),
            path: OnceCell::new(),
            method: OnceCell::new(),
            context: Vec::new(),
            this: Weak::new(),
            user_attributes: serde_json::Map::new(),
            matched_config: None,
            matched_rule: None,
            rule_count: 0,
            pause_streaming_response: false,
            rare: None,
            state: S::default(),
        }
    }
}

/// `(authority, path)` of a route-call URL: an absolute URL's host, and
/// what follows it (path, query and fragment as written; `/` if none).
fn split_url(url: &str) -> (&str, String) {
    let (authority, rest) = match url.split_once("://") {
        Some((_, after)) => {
            let at = after.find(['/', '?', '#']).unwrap_or(after.len());
            after.split_at(at)
        }
        None => ("", url),
    };
    let path = if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    };
    (authority, path)
}

fn warn_failed(what: &str, name: &str, err: HostError) {
    log::warn!("{what} {name} failed: {err}");
}

fn text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Text of a property, `None` if absent or empty.
fn property_text(path: &[&str]) -> Option<String> {
    host::get_property(path)
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
        .map(text)
}

/// Route name on Higress (`route_name`) or stock Envoy (`xds.route_name`).
pub(crate) fn route_name() -> Option<String> {
    property_text(&["route_name"]).or_else(|| property_text(&["xds", "route_name"]))
}

/// Cluster name on Higress (`cluster_name`) or stock Envoy (`xds.cluster_name`).
pub(crate) fn cluster_name() -> Option<String> {
    property_text(&["cluster_name"]).or_else(|| property_text(&["xds", "cluster_name"]))
}

fn pseudo<'a>(cell: &'a OnceCell<String>, name: &str) -> &'a str {
    cell.get_or_init(|| {
        host::get_header(MapType::RequestHeaders, name)
            .ok()
            .flatten()
            .map(text)
            .unwrap_or_default()
    })
}

impl<S> HttpContext<S> {
    /// Envoy drops the request headers once they continue (neither the map
    /// nor the `request.*` properties answer afterwards, measured on 1.40):
    /// capture the request line and request id now, in one host call, so
    /// they are there in every phase. Returns `:authority` for matching.
    pub(crate) fn capture_request_line(&mut self) -> Option<Vec<u8>> {
        let bytes = host::get_header_map_bytes(MapType::RequestHeaders)
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut authority = None;
        let mut request_id = None;
        // What the body decisions need, from the same call (each would
        // otherwise be a host call of its own).
        let (mut connection_upgrade, mut upgrade_websocket) = (false, false);
        let (mut seen_type, mut seen_encoding, mut binary) = (false, false, false);
        let as_text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        crate::wire::for_each_pair(&bytes, |name, value| match name {
            b"connection" => {
                connection_upgrade |= crate::wire::contains_ignore_ascii_case(value, b"upgrade");
            }
            b"upgrade" => {
                upgrade_websocket |= crate::wire::contains_ignore_ascii_case(value, b"websocket");
            }
            // The first value of each counts, as `request_header` reads it.
            b"content-type" if !seen_type => {
                seen_type = true;
                binary |= is_binary_bytes(Some(value), None);
            }
            b"content-encoding" if !seen_encoding => {
                seen_encoding = true;
                binary |= is_binary_bytes(None, Some(value));
            }
            b":scheme" => {
                let _ = self.scheme.set(as_text(value));
            }
            b":path" => {
                let _ = self.path.set(as_text(value));
            }
            b":method" => {
                let _ = self.method.set(as_text(value));
            }
            b":authority" => {
                let _ = self.host.set(as_text(value));
                authority = Some(value.to_vec());
            }
            b"x-request-id" if !value.is_empty() => {
                request_id = Some(Rc::from(as_text(value)));
            }
            _ => {}
        });
        if request_id.is_some() {
            let _ = self.request_id.set(request_id);
        }
        self.request_facts = Some(RequestFacts {
            websocket: connection_upgrade && upgrade_websocket,
            binary,
        });
        authority
    }

    /// The state of one direction of this stream.
    pub(crate) fn dir_mut(&mut self, dir: Dir) -> &mut DirState {
        match dir {
            Dir::Request => &mut self.request,
            Dir::Response => &mut self.response,
        }
    }

    // ----- identity -------------------------------------------------------

    /// The host's id of this request's context.
    pub fn context_id(&self) -> u32 {
        self.context_id
    }

    /// An owned handle to this request, to use inside a future the hook
    /// waits on (see [`HttpHandle`]). [`wait`](Self::wait) hands one to the
    /// future it builds; take one yourself for
    /// [`HeaderAction::wait`](crate::HeaderAction::wait) or detached work.
    pub fn handle(&self) -> HttpHandle<S> {
        HttpHandle {
            ctx: Weak::clone(&self.this),
        }
    }

    /// Which `_rules_` entry matched this request: its index in `_rules_`,
    /// or `None` when the global config applies (Go's key-auth keeps a
    /// `ruleSet` flag for this).
    ///
    /// ```
    /// # use higress_wrapper::prelude::*;
    /// # #[derive(serde::Deserialize)] struct Config { global_auth: Option<bool> }
    /// // Go key-auth: with rules configured and `global_auth` not set,
    /// // requests that no rule matched pass unchecked.
    /// fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    ///     if ctx.has_rules() && ctx.matched_rule().is_none() && config.global_auth != Some(true) {
    ///         return HeaderAction::Continue;
    ///     }
    ///     // ... check the key ...
    ///     HeaderAction::Continue
    /// }
    /// # let _ = on_request_headers;
    /// ```
    pub fn matched_rule(&self) -> Option<usize> {
        self.matched_rule
    }

    /// Whether the configuration has any `_rules_` entries.
    pub fn has_rules(&self) -> bool {
        self.rule_count > 0
    }

    /// How many `_rules_` entries the configuration has.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// The plugin's name.
    pub fn plugin_name(&self) -> &'static str {
        self.plugin_name
    }

    /// The phase the current hook runs in.
    pub fn execution_phase(&self) -> Phase {
        self.phase
    }

    // ----- request line ---------------------------------------------------

    /// `:scheme` of the request (`http`, `https`).
    pub fn scheme(&self) -> &str {
        pseudo(&self.scheme, ":scheme")
    }

    /// `:authority` of the request, port included if the client sent one.
    pub fn host(&self) -> &str {
        pseudo(&self.host, ":authority")
    }

    /// `:path` of the request, query included.
    pub fn path(&self) -> &str {
        pseudo(&self.path, ":path")
    }

    /// `:path` without the query string.
    pub fn path_without_query(&self) -> &str {
        let path = self.path();
        path.split_once('?').map_or(path, |(p, _)| p)
    }

    /// Every parameter of the query string, in order, percent-decoded (and
    /// `+` as a space); a key given twice appears twice. See
    /// [`query`](crate::query) for the decoding rules.
    pub fn query_params(&self) -> Vec<(String, String)> {
        crate::query::parse(self.path())
    }

    /// The first value of query parameter `key` (decoded), `None` if absent.
    /// `?a` and `?a=` both give `Some("")`.
    pub fn query_param(&self, key: &str) -> Option<String> {
        crate::query::first(self.path(), key)
    }

    /// Every value of query parameter `key` (decoded), in order.
    pub fn query_param_all(&self, key: &str) -> Vec<String> {
        crate::query::all(self.path(), key)
    }

    /// `:method` of the request.
    pub fn method(&self) -> &str {
        pseudo(&self.method, ":method")
    }

    // ----- typed state and Go's context maps --------------------------------

    /// Your per-request state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Your per-request state, mutable.
    pub fn state_mut(&mut self) -> &mut S {
        &mut self.state
    }

    /// Stores a value in the request's context map (Go's `SetContext`).
    pub fn set_context(&mut self, key: impl Into<String>, value: impl Into<ContextValue>) {
        let key = key.into();
        let value = value.into();
        match self.context.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => *slot = value,
            None => self.context.push((key, value)),
        }
    }

    /// A value from the context map (Go's `GetContext`).
    pub fn get_context(&self, key: &str) -> Option<&ContextValue> {
        self.context.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes and returns a value from the context map.
    pub fn remove_context(&mut self, key: &str) -> Option<ContextValue> {
        let at = self.context.iter().position(|(k, _)| k == key)?;
        Some(self.context.swap_remove(at).1)
    }

    /// A boolean from the context map, or `default` if absent or not a bool.
    pub fn get_bool_context(&self, key: &str, default: bool) -> bool {
        match self.get_context(key) {
            Some(ContextValue::Bool(b)) => *b,
            _ => default,
        }
    }

    /// An integer from the context map, or `default`.
    pub fn get_int_context(&self, key: &str, default: i64) -> i64 {
        match self.get_context(key) {
            Some(ContextValue::Int(i)) => *i,
            _ => default,
        }
    }

    /// Text from the context map, or `default`.
    pub fn get_string_context<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        match self.get_context(key) {
            Some(ContextValue::String(s)) => s,
            _ => default,
        }
    }

    /// Bytes from the context map, or `default`.
    pub fn get_bytes_context<'a>(&'a self, key: &str, default: &'a [u8]) -> &'a [u8] {
        match self.get_context(key) {
            Some(ContextValue::Bytes(b)) => b,
            _ => default,
        }
    }

    // ----- user attributes (access log and tracing) ------------------------

    /// Sets an attribute for the access log / trace (Go's `SetUserAttribute`).
    pub fn set_user_attribute(
        &mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) {
        self.user_attributes.insert(key.into(), value.into());
    }

    /// An attribute set before.
    pub fn get_user_attribute(&self, key: &str) -> Option<&serde_json::Value> {
        self.user_attributes.get(key)
    }

    /// All attributes.
    pub fn user_attributes(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.user_attributes
    }

    /// Replaces all attributes (Go's `SetUserAttributeMap`).
    pub fn set_user_attribute_map(&mut self, map: serde_json::Map<String, serde_json::Value>) {
        self.user_attributes = map;
    }

    /// Writes the attributes to the `custom_log` access-log property.
    pub fn write_user_attribute_to_log(&self) -> Result<(), HostError> {
        self.write_user_attribute_to_log_with_key(CUSTOM_LOG_KEY)
    }

    /// Writes the attributes to an access-log property (`custom_log`,
    /// `ai_log`), merged into what earlier plugins wrote there. The property
    /// holds a JSON object in escaped-string form, as the Go wrapper writes it.
    pub fn write_user_attribute_to_log_with_key(&self, key: &str) -> Result<(), HostError> {
        let mut merged = host::get_property(&[key])?
            .and_then(|raw| unescape_json_string(&raw))
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|v| match v {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        for (k, v) in &self.user_attributes {
            merged.insert(k.clone(), v.clone());
        }
        let text = serde_json::Value::Object(merged).to_string();
        host::set_property(&[key], escape_json_string(&text).as_bytes())
    }

    /// Writes each attribute as a trace span tag (`trace_span_tag.<key>`).
    /// Empty values are skipped with an error log line, as in Go.
    pub fn write_user_attribute_to_trace(&self) -> Result<(), HostError> {
        for (k, v) in &self.user_attributes {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if text.is_empty() {
                log::error!("trace span tag {k} has an empty value, skipped");
                continue;
            }
            let path = format!("{}{k}", TRACE_SPAN_TAG_PREFIX);
            host::set_property(&[path.as_str()], text.as_bytes())?;
        }
        Ok(())
    }

    // ----- headers ----------------------------------------------------------

    /// A request header, `None` if absent.
    pub fn request_header(&self, name: &str) -> Option<HeaderValue> {
        host::get_header(MapType::RequestHeaders, name)
            .ok()
            .flatten()
            .map(HeaderValue)
    }

    /// All request headers, pseudo-headers included, in order.
    pub fn request_headers(&self) -> Vec<(String, HeaderValue)> {
        header_pairs(MapType::RequestHeaders)
    }

    /// Sets a request header, replacing any value it had.
    pub fn set_request_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        if let Err(e) = host::replace_header(MapType::RequestHeaders, name, value.as_ref()) {
            warn_failed("setting request header", name, e);
        }
    }

    /// Adds a request header value (an existing value is kept).
    pub fn add_request_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        if let Err(e) = host::add_header(MapType::RequestHeaders, name, value.as_ref()) {
            warn_failed("adding request header", name, e);
        }
    }

    /// Removes a request header.
    pub fn remove_request_header(&mut self, name: &str) {
        if let Err(e) = host::remove_header(MapType::RequestHeaders, name) {
            warn_failed("removing request header", name, e);
        }
    }

    /// Replaces all request headers.
    pub fn set_request_headers(&mut self, headers: &[(&str, &[u8])]) {
        if let Err(e) = host::set_header_pairs(MapType::RequestHeaders, headers) {
            warn_failed("replacing request headers", "", e);
        }
    }

    /// A response header, `None` if absent (or before response headers).
    pub fn response_header(&self, name: &str) -> Option<HeaderValue> {
        host::get_header(MapType::ResponseHeaders, name)
            .ok()
            .flatten()
            .map(HeaderValue)
    }

    /// All response headers, in order.
    pub fn response_headers(&self) -> Vec<(String, HeaderValue)> {
        header_pairs(MapType::ResponseHeaders)
    }

    /// Sets a response header, replacing any value it had.
    pub fn set_response_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        if let Err(e) = host::replace_header(MapType::ResponseHeaders, name, value.as_ref()) {
            warn_failed("setting response header", name, e);
        }
    }

    /// Adds a response header value.
    pub fn add_response_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        if let Err(e) = host::add_header(MapType::ResponseHeaders, name, value.as_ref()) {
            warn_failed("adding response header", name, e);
        }
    }

    /// Removes a response header.
    pub fn remove_response_header(&mut self, name: &str) {
        if let Err(e) = host::remove_header(MapType::ResponseHeaders, name) {
            warn_failed("removing response header", name, e);
        }
    }

    // ----- trailers -------------------------------------------------------

    /// All request trailers (in a trailers hook, [`Hooks::on_request_trailers`](crate::Hooks::on_request_trailers)).
    pub fn request_trailers(&self) -> Vec<(String, HeaderValue)> {
        header_pairs(MapType::RequestTrailers)
    }

    /// One request trailer.
    pub fn request_trailer(&self, name: &str) -> Option<HeaderValue> {
        host::get_header(MapType::RequestTrailers, name)
            .ok()
            .flatten()
            .map(HeaderValue::from)
    }

    /// Sets (replaces) a request trailer.
    pub fn set_request_trailer(&mut self, name: &str, value: impl AsRef<[u8]>) {
        if let Err(e) = host::replace_header(MapType::RequestTrailers, name, value.as_ref()) {
            warn_failed("setting request trailer", name, e);
        }
    }

    /// All response trailers (in [`Hooks::on_response_trailers`](crate::Hooks::on_response_trailers)).
    pub fn response_trailers(&self) -> Vec<(String, HeaderValue)> {
        header_pairs(MapType::ResponseTrailers)
    }

    /// One response trailer.
    pub fn response_trailer(&self, name: &str) -> Option<HeaderValue> {
        host::get_header(MapType::ResponseTrailers, name)
            .ok()
            .flatten()
            .map(HeaderValue::from)
    }

    /// Sets (replaces) a response trailer.
    pub fn set_response_trailer(&mut self, name: &str, value: impl AsRef<[u8]>) {
        if let Err(e) = host::replace_header(MapType::ResponseTrailers, name, value.as_ref()) {
            warn_failed("setting response trailer", name, e);
        }
    }

    /// Replaces all response headers.
    pub fn set_response_headers(&mut self, headers: &[(&str, &[u8])]) {
        if let Err(e) = host::set_header_pairs(MapType::ResponseHeaders, headers) {
            warn_failed("replacing response headers", "", e);
        }
    }

    // ----- bodies -------------------------------------------------------------

    /// The request body the host holds now (in a body hook: what was
    /// buffered so far), `None` if there is none.
    pub fn request_body(&self) -> Option<Vec<u8>> {
        host::get_buffer(BufferType::RequestBody, 0, WHOLE)
            .ok()
            .flatten()
    }

    /// Replaces the request body held by the host.
    ///
    /// **If the length changes**, the `content-length` the client sent is
    /// now wrong, and the request headers have usually left already (a body
    /// hook runs after them): remove it in the request-headers hook
    /// (`ctx.remove_request_header("content-length")`), as Higress's plugins
    /// do, or the upstream gets a truncated body (checked in a real Envoy:
    /// tests/tests/e2e_bodies.rs).
    pub fn replace_request_body(&mut self, body: impl AsRef<[u8]>) {
        if let Err(e) = host::set_buffer(BufferType::RequestBody, 0, WHOLE, body.as_ref()) {
            warn_failed("replacing", "request body", e);
        }
    }

    /// Appends to the request body held by the host.
    pub fn append_request_body(&mut self, data: impl AsRef<[u8]>) {
        if let Err(e) = host::set_buffer(BufferType::RequestBody, WHOLE, 0, data.as_ref()) {
            warn_failed("appending to", "request body", e);
        }
    }

    /// The response body the host holds now.
    pub fn response_body(&self) -> Option<Vec<u8>> {
        host::get_buffer(BufferType::ResponseBody, 0, WHOLE)
            .ok()
            .flatten()
    }

    /// Replaces the response body held by the host. As for the request,
    /// remove `content-length` in the response-headers hook if the length
    /// may change.
    pub fn replace_response_body(&mut self, body: impl AsRef<[u8]>) {
        if let Err(e) = host::set_buffer(BufferType::ResponseBody, 0, WHOLE, body.as_ref()) {
            warn_failed("replacing", "response body", e);
        }
    }

    /// Appends to the response body held by the host.
    pub fn append_response_body(&mut self, data: impl AsRef<[u8]>) {
        if let Err(e) = host::set_buffer(BufferType::ResponseBody, WHOLE, 0, data.as_ref()) {
            warn_failed("appending to", "response body", e);
        }
    }

    /// Do not call the request body hooks for this request (call it before
    /// the body arrives, e.g. in the request-headers hook).
    pub fn dont_read_request_body(&mut self) {
        self.request.read_body = false;
    }

    /// Do not call the response body hooks for this request.
    pub fn dont_read_response_body(&mut self) {
        self.response.read_body = false;
    }

    /// Use the buffered request body hook even if a streaming one exists.
    pub fn buffer_request_body(&mut self) {
        self.request.buffer_body = true;
    }

    /// Use the buffered response body hook even if a streaming one exists.
    pub fn buffer_response_body(&mut self) {
        self.response.buffer_body = true;
    }

    /// Go's `NeedPauseStreamingResponse`: from now on, every response chunk
    /// the streaming response-body hook sees stops there (after the hook's
    /// replacement, if any, is written): it is not sent on and the host keeps
    /// no copy (proxy-wasm `StopIterationNoBuffer`). The plugin keeps what it
    /// needs ([`push_buffer`](Self::push_buffer)) and sends it later:
    ///
    /// - on Higress, with [`upstream::inject_encoded_data`] (e.g. once an
    ///   HTTP callout judged the text; Go's ai-security-guard), ending the
    ///   response with `end_stream = true`;
    /// - on any host, by calling
    ///   [`resume_streaming_response`](Self::resume_streaming_response) and
    ///   returning the kept bytes as the replacement of a later chunk.
    ///
    /// Call it before the response body arrives (e.g. in the response-headers
    /// hook). Only the streaming response-body hook is affected.
    ///
    /// ```
    /// use higress_wrapper::prelude::*;
    ///
    /// // Hold the whole streamed answer, then send it as the last chunk.
    /// fn on_response_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
    ///     ctx.need_pause_streaming_response();
    ///     HeaderAction::Continue
    /// }
    ///
    /// fn on_streaming_response_body(
    ///     ctx: &mut HttpContext,
    ///     _: &(),
    ///     chunk: &[u8],
    ///     end_of_stream: bool,
    /// ) -> Option<Vec<u8>> {
    ///     ctx.push_buffer(chunk.to_vec());
    ///     if !end_of_stream {
    ///         return None; // stopped here, kept in the queue
    ///     }
    ///     ctx.resume_streaming_response();
    ///     let mut all = Vec::new();
    ///     while let Some(part) = ctx.pop_buffer() {
    ///         all.extend(part);
    ///     }
    ///     Some(all)
    /// }
    /// # let _ = (on_response_headers, on_streaming_response_body);
    /// ```
    ///
    /// [`upstream::inject_encoded_data`]: crate::upstream::inject_encoded_data
    pub fn need_pause_streaming_response(&mut self) {
        self.pause_streaming_response = true;
    }

    /// Undoes [`need_pause_streaming_response`](Self::need_pause_streaming_response):
    /// chunks continue again, from the one the hook is handling now (an SDK
    /// addition; Go has no way back).
    pub fn resume_streaming_response(&mut self) {
        self.pause_streaming_response = false;
    }

    /// Whether response chunks are being stopped
    /// ([`need_pause_streaming_response`](Self::need_pause_streaming_response)).
    pub fn is_streaming_response_paused(&self) -> bool {
        self.pause_streaming_response
    }

    /// Go's `RouteCall`: re-targets this request — still held, so call it
    /// from the request-body hook after the request-headers hook returned
    /// [`HeaderAction::StopIteration`] — to the current route's upstream
    /// with a new `method`, `url` (`/path?query`, or absolute: its host
    /// becomes `:authority`), `headers` (each replaces the header of that
    /// name) and `body`, and hands the upstream's whole answer to
    /// `callback` instead of the response hooks, which do not run for this
    /// request. The callback rewrites the response (e.g.
    /// [`replace_response_body`](Self::replace_response_body),
    /// [`set_response_header`](Self::set_response_header)); the response
    /// headers are held until it returned.
    ///
    /// As in Go: `accept-encoding` and `content-length` are removed from
    /// the request, the original method, path and host are kept in
    /// `x-envoy-original-method`, `x-envoy-original-path` and
    /// `x-envoy-original-host`, and `content-length` is removed from the
    /// response. Holding headers while the body hooks run needs Higress
    /// (ABI 0.2.100) or stock Envoy with `allow_on_headers_stop_iteration`.
    ///
    /// ```
    /// use higress_wrapper::prelude::*;
    ///
    /// fn on_request_headers(_: &mut HttpContext, _: &()) -> HeaderAction {
    ///     HeaderAction::StopIteration
    /// }
    ///
    /// fn on_request_body(ctx: &mut HttpContext, _: &(), body: &[u8]) -> DataAction {
    ///     let query = format!("/v3/weather?q={}", String::from_utf8_lossy(body));
    ///     let sent = ctx.route_call("GET", &query, &[("accept", b"application/json")], b"", |ctx, answer| {
    ///         let text = format!("{{\"status\":{},\"result\":{}}}", answer.status, answer.body.len());
    ///         ctx.replace_response_body(text);
    ///     });
    ///     if let Err(e) = sent {
    ///         ctx.send_local_response(500, &[], e.to_string());
    ///     }
    ///     DataAction::Continue
    /// }
    /// # let _ = (on_request_headers, on_request_body);
    /// ```
    ///
    /// [`HeaderAction::StopIteration`]: crate::HeaderAction::StopIteration
    pub fn route_call(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &[u8])],
        body: impl AsRef<[u8]>,
        callback: impl FnOnce(&mut HttpContext<S>, RouteResponse) + 'static,
    ) -> Result<(), crate::error::Error> {
        if self.phase != Phase::DecodeData {
            return Err(crate::error::Error::msg(
                "route_call: call it from the request-body hook (the request-headers hook returns StopIteration)",
            ));
        }
        let (authority, path) = split_url(url);
        let map = MapType::RequestHeaders;
        for name in ["accept-encoding", "content-length"] {
            host::remove_header(map, name).map_err(crate::error::Error::from)?;
        }
        for (from, to) in [
            (":method", "x-envoy-original-method"),
            (":path", "x-envoy-original-path"),
            (":authority", "x-envoy-original-host"),
        ] {
            if let Some(value) = host::get_header(map, from).map_err(crate::error::Error::from)? {
                host::replace_header(map, to, &value).map_err(crate::error::Error::from)?;
            }
        }
        host::replace_header(map, ":method", method.as_bytes())
            .map_err(crate::error::Error::from)?;
        host::replace_header(map, ":path", path.as_bytes()).map_err(crate::error::Error::from)?;
        if !authority.is_empty() {
            host::replace_header(map, ":authority", authority.as_bytes())
                .map_err(crate::error::Error::from)?;
        }
        for (name, value) in headers {
            host::replace_header(map, name, value).map_err(crate::error::Error::from)?;
        }
        host::set_buffer(BufferType::RequestBody, 0, WHOLE, body.as_ref())
            .map_err(crate::error::Error::from)?;
        self.rare_mut().route_call = Some(Box::new(callback));
        Ok(())
    }

    /// Go's `PushBuffer`: appends `data` to this request's queue of kept
    /// chunks (first in, first out).
    pub fn push_buffer(&mut self, data: impl Into<Vec<u8>>) {
        self.rare_mut().buffer_queue.push_back(data.into());
    }

    /// The rarely used parts, created on first use.
    fn rare_mut(&mut self) -> &mut Rare<S> {
        self.rare.get_or_insert_with(|| {
            Box::new(Rare {
                buffer_queue: VecDeque::new(),
                route_call: None,
            })
        })
    }

    /// Takes [`HttpContext::route_call`]'s callback, if one waits.
    pub(crate) fn take_route_call(&mut self) -> Option<RouteCallback<S>> {
        self.rare.as_mut()?.route_call.take()
    }

    /// Whether a [`HttpContext::route_call`] waits for its response.
    pub(crate) fn route_call_pending(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.route_call.is_some())
    }

    /// Go's `PopBuffer`: takes the oldest kept chunk, `None` when the queue
    /// is empty (Go returns a nil slice).
    pub fn pop_buffer(&mut self) -> Option<Vec<u8>> {
        self.rare.as_mut()?.buffer_queue.pop_front()
    }

    /// Go's `BufferQueueSize`: how many chunks are kept.
    pub fn buffer_queue_size(&self) -> usize {
        self.rare.as_ref().map_or(0, |r| r.buffer_queue.len())
    }

    /// Raises (or lowers) this request's body buffer limit in bytes
    /// (Higress property `set_decoder_buffer_limit`; stock Envoy ignores it).
    pub fn set_request_body_buffer_limit(&mut self, bytes: u32) {
        let value = bytes.to_string();
        if let Err(e) = host::set_property(&["set_decoder_buffer_limit"], value.as_bytes()) {
            warn_failed("setting", "request body buffer limit", e);
        }
    }

    /// Raises (or lowers) this response's body buffer limit in bytes
    /// (Higress property `set_encoder_buffer_limit`).
    pub fn set_response_body_buffer_limit(&mut self, bytes: u32) {
        let value = bytes.to_string();
        if let Err(e) = host::set_property(&["set_encoder_buffer_limit"], value.as_bytes()) {
            warn_failed("setting", "response body buffer limit", e);
        }
    }

    /// Whether the request has a body (its headers did not end the stream).
    pub fn has_request_body(&self) -> bool {
        self.request.has_body
    }

    /// Whether the response has a body (valid from the response-headers hook).
    pub fn has_response_body(&self) -> bool {
        self.response.has_body
    }

    /// `connection: upgrade` with `upgrade: websocket` (case-insensitive).
    pub fn is_websocket(&self) -> bool {
        if let Some(facts) = &self.request_facts {
            return facts.websocket;
        }
        let has = |name: &str, want: &str| {
            self.request_header(name).is_some_and(|v| {
                crate::wire::contains_ignore_ascii_case(v.as_bytes(), want.as_bytes())
            })
        };
        has("connection", "upgrade") && has("upgrade", "websocket")
    }

    /// Request content-type contains `octet-stream` or `grpc`, or any
    /// content-encoding is set (Go's rule: body hooks skip such bodies).
    pub fn is_binary_request_body(&self) -> bool {
        if let Some(facts) = &self.request_facts {
            return facts.binary;
        }
        is_binary(
            self.request_header("content-type"),
            self.request_header("content-encoding"),
        )
    }

    /// The same rule for the response.
    pub fn is_binary_response_body(&self) -> bool {
        is_binary(
            self.response_header("content-type"),
            self.response_header("content-encoding"),
        )
    }

    // ----- routing ------------------------------------------------------------

    /// Stops Envoy from re-selecting the route when this plugin changes
    /// request headers (Higress property `clear_route_cache = off`). Call it
    /// before modifying headers.
    pub fn disable_reroute(&mut self) {
        if let Err(e) = host::set_property(&["clear_route_cache"], b"off") {
            warn_failed("disabling", "reroute", e);
        }
    }

    // ----- properties -----------------------------------------------------------

    /// Any host property by path, e.g. `&["request", "id"]`.
    pub fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        host::get_property(path).ok().flatten()
    }

    /// Calls a host foreign function by name (e.g. Higress's
    /// `get_log_level`, Envoy's `compress`); returns its result bytes.
    pub fn call_foreign_function(
        &self,
        name: &str,
        arguments: &[u8],
    ) -> Result<Option<Vec<u8>>, HostError> {
        host::call_foreign_function(name, arguments)
    }

    /// Writes a host property.
    pub fn set_property(
        &mut self,
        path: &[&str],
        value: impl AsRef<[u8]>,
    ) -> Result<(), HostError> {
        host::set_property(path, value.as_ref())
    }

    /// The route name: Higress's `route_name`, else stock Envoy's `xds.route_name`.
    pub fn route_name(&self) -> Option<String> {
        route_name()
    }

    /// The upstream cluster name: `cluster_name`, else `xds.cluster_name`.
    pub fn cluster_name(&self) -> Option<String> {
        cluster_name()
    }

    /// The `x-request-id` of the request, if any.
    pub fn request_id(&self) -> Option<String> {
        self.request_id
            .get_or_init(crate::log::load_request_id)
            .as_deref()
            .map(str::to_owned)
    }

    // ----- flow ---------------------------------------------------------------------

    /// Answers the client directly instead of proxying. The request ends
    /// here: whatever the hook returns, the SDK holds the stream.
    pub fn send_local_response(
        &mut self,
        status: u32,
        headers: &[(&str, &[u8])],
        body: impl AsRef<[u8]>,
    ) {
        self.send_local_response_with_details(status, "", headers, body);
    }

    /// [`send_local_response`](Self::send_local_response) with Envoy's
    /// response-code details (shown as `%RESPONSE_CODE_DETAILS%` in access logs).
    pub fn send_local_response_with_details(
        &mut self,
        status: u32,
        details: &str,
        headers: &[(&str, &[u8])],
        body: impl AsRef<[u8]>,
    ) {
        match host::send_local_response(status, details, headers, body.as_ref(), -1) {
            Ok(()) => self.flags.local_response_sent = true,
            Err(e) => warn_failed("sending local response", &status.to_string(), e),
        }
    }

    /// What a paused request does when the future its hook waits on fails
    /// (returns `Err`): by default it continues (fail open) after logging the
    /// error; after this call it is answered with `status` and `body` instead
    /// (fail closed).
    pub fn set_error_response(&mut self, status: u32, body: impl Into<Vec<u8>>) {
        self.flags.error_response = Some((status, body.into()));
    }

    /// Runs `future` to completion even if this request ends first: it is
    /// owned by the plugin's root context, not by the request. For work that
    /// must happen regardless, e.g. releasing a counter in stream done (the
    /// Go ai-load-balancer's `HINCRBY -1`). Its calls (Redis, HTTP) belong
    /// to the root: their replies reach it after the request has ended.
    ///
    /// It starts at once: polled here, so its first call is sent before
    /// this returns (a hook that waits on its outcome does not wait for
    /// some later host callback). Polling it here rather than after the
    /// hook is deliberate: work that finishes at once (a Redis call that
    /// fails to dispatch) has finished before the hook's own `wait` is first
    /// polled, so that wait completes without pausing the request, instead
    /// of resuming it from inside the callback that is about to pause it.
    /// Inside that first poll the request's context is in use, so a handle's
    /// `with` answers `None` until the hook has returned.
    pub fn spawn_detached(&self, future: impl std::future::Future<Output = ()> + 'static) {
        let _ = crate::task::run_or_spawn(
            crate::task::Owner::Root(self.root_id),
            crate::task::TaskScope {
                plugin_name: self.plugin_name,
                plugin_id: self.plugin_id.clone(),
                root_id: self.root_id,
                request_id: Some(Rc::clone(&self.request_id)),
            },
            Box::pin(future),
            |()| {},
        );
    }

    /// Waits for the future `f` builds before deciding this phase: `f` gets
    /// an owned handle to this request and an `Rc` of the config this hook
    /// received, so the future needs no clone and no handle of its own.
    /// Name the handle `ctx`: inside the future it then stands for the
    /// request (the borrowed `ctx` of the hook cannot live past `.await`).
    ///
    /// The future outputs the action, or `Result<action, Error>` — `?` turns
    /// every SDK error into [`Error`](crate::Error), so `Ok(...)` needs no
    /// annotation. The request is paused while it waits and resumed exactly
    /// once when it completes; an `Err` is logged and the request continues
    /// (fail open) unless [`set_error_response`](Self::set_error_response)
    /// chose otherwise. A future that completes without waiting costs one
    /// allocation; a hook that does not call `wait` costs nothing.
    ///
    /// ```
    /// use higress_wrapper::prelude::*;
    /// use higress_wrapper::redis::RedisClient;
    ///
    /// struct Config { redis: RedisClient, header: String }
    ///
    /// fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    ///     ctx.wait(config, |ctx, config| async move {
    ///         if let Some(value) = config.redis.get("greeting").await? {
    ///             ctx.set_request_header(&config.header, value);
    ///         }
    ///         Ok(HeaderAction::Continue)
    ///     })
    /// }
    /// # let _ = on_request_headers;
    /// ```
    ///
    /// `config` must be the config the hook received (it is how the SDK
    /// finds its `Rc`); given anything else, the wait fails with an error
    /// saying so, handled as any failed wait.
    pub fn wait<C, A, F, Fut>(&self, config: &C, f: F) -> A
    where
        C: 'static,
        A: PhaseAction,
        F: FnOnce(HttpHandle<S>, Rc<C>) -> Fut,
        Fut: std::future::Future + 'static,
        Fut::Output: WaitOutput<A>,
        S: 'static,
    {
        let matched = self
            .matched_config
            .as_ref()
            .and_then(|any| Rc::clone(any).downcast::<C>().ok())
            .filter(|rc| std::ptr::eq(Rc::as_ptr(rc), config));
        match matched {
            Some(config) => {
                let future = f(self.handle(), config);
                A::waiting(Box::pin(
                    async move { WaitOutput::into_result(future.await) },
                ))
            }
            None => A::waiting(Box::pin(async {
                Err(
                    "ctx.wait(config, ..): `config` is not the config this hook received"
                        .to_owned(),
                )
            })),
        }
    }

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

    /// Whether a local response was sent for this request.
    pub fn local_response_sent(&self) -> bool {
        self.flags.local_response_sent
    }

    /// Resets the stream (proxy-wasm `close_stream` of the request; Envoy
    /// resets the downstream stream: the client gets no response, the
    /// upstream request is abandoned). The request ends here: the SDK
    /// resumes nothing afterwards, whatever the hook returns.
    ///
    /// ```
    /// # use higress_wrapper::prelude::*;
    /// fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
    ///     if ctx.request_header("x-abuse").is_some() {
    ///         ctx.reset_stream();
    ///     }
    ///     HeaderAction::Continue
    /// }
    /// # let _ = on_request_headers;
    /// ```
    pub fn reset_stream(&mut self) {
        match host::close_stream(StreamType::Request) {
            Ok(()) => self.flags.reset = true,
            Err(e) => warn_failed("resetting", "stream", e),
        }
    }

    /// Whether this plugin reset the stream ([`reset_stream`](Self::reset_stream)).
    pub fn is_reset(&self) -> bool {
        self.flags.reset
    }

    /// The config that matched this request (Go's `GetMatchConfig`): the
    /// `_rules_` entry's or the global config, as the hooks receive it. For
    /// code that only has the context, e.g. a [`then`](Self::then)
    /// callback or a future holding an [`HttpHandle`]. `None` before
    /// request headers, or if `C` is not the plugin's config type.
    ///
    /// ```
    /// # use higress_wrapper::prelude::*;
    /// #[derive(serde::Deserialize)]
    /// struct Config { tag: String }
    ///
    /// fn tag(ctx: &mut HttpContext) {
    ///     if let Some(config) = ctx.match_config::<Config>() {
    ///         ctx.set_request_header("x-tag", config.tag.as_str());
    ///     }
    /// }
    /// # let _ = tag;
    /// ```
    pub fn match_config<C: 'static>(&self) -> Option<Rc<C>> {
        self.matched_config.clone()?.downcast::<C>().ok()
    }

    /// Appends `message` to a shared queue (see
    /// [`shared_queue`](crate::shared_queue)); the worker that registered it
    /// is told through its `on_queue_ready`.
    pub fn enqueue(
        &self,
        queue: crate::shared_queue::SharedQueue,
        message: impl AsRef<[u8]>,
    ) -> Result<(), HostError> {
        queue.enqueue(message.as_ref())
    }

    /// Resumes a request a hook paused with `StopIteration`. Only needed if
    /// you paused by hand; a no-op if the request is not paused.
    pub fn resume_request(&mut self) {
        if std::mem::take(&mut self.request.paused) {
            if let Err(e) = host::continue_stream(StreamType::Request) {
                warn_failed("resuming", "request", e);
            }
        }
    }

    /// Resumes a response a hook paused. A no-op if it is not paused.
    pub fn resume_response(&mut self) {
        if std::mem::take(&mut self.response.paused) {
            if let Err(e) = host::continue_stream(StreamType::Response) {
                warn_failed("resuming", "response", e);
            }
        }
    }
}

/// An owned handle to a request, for use inside a future a hook waits on
/// ([`HeaderAction::wait`](crate::HeaderAction::wait)), where `&mut
/// HttpContext` cannot be held across `.await`.
///
/// It does not keep the request alive: once the request has ended,
/// [`with`](HttpHandle::with) returns `None`.
pub struct HttpHandle<S = ()> {
    ctx: Weak<RefCell<HttpContext<S>>>,
}

impl<S> Clone for HttpHandle<S> {
    fn clone(&self) -> Self {
        HttpHandle {
            ctx: Weak::clone(&self.ctx),
        }
    }
}

impl<S> fmt::Debug for HttpHandle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpHandle")
            .field("alive", &(self.ctx.strong_count() > 0))
            .finish()
    }
}

impl<S> HttpHandle<S> {
    /// Runs `f` with the request's context (host calls then act on this
    /// request). `None` if the request has ended, or if the context is
    /// already in use further up the stack.
    pub fn with<R>(&self, f: impl FnOnce(&mut HttpContext<S>) -> R) -> Option<R> {
        let ctx = self.ctx.upgrade()?;
        let mut ctx = ctx.try_borrow_mut().ok()?;
        host::set_effective_context(ctx.context_id).ok()?;
        Some(f(&mut ctx))
    }

    /// Whether the request is still in flight.
    pub fn is_alive(&self) -> bool {
        self.ctx.strong_count() > 0
    }

    /// [`HttpContext::request_header`]; `None` also once the request ended.
    pub fn request_header(&self, name: &str) -> Option<HeaderValue> {
        self.with(|ctx| ctx.request_header(name)).flatten()
    }

    /// [`HttpContext::set_request_header`]; nothing once the request ended.
    pub fn set_request_header(&self, name: &str, value: impl AsRef<[u8]>) {
        self.with(|ctx| ctx.set_request_header(name, value));
    }

    /// [`HttpContext::add_request_header`]; nothing once the request ended.
    pub fn add_request_header(&self, name: &str, value: impl AsRef<[u8]>) {
        self.with(|ctx| ctx.add_request_header(name, value));
    }

    /// [`HttpContext::remove_request_header`]; nothing once the request ended.
    pub fn remove_request_header(&self, name: &str) {
        self.with(|ctx| ctx.remove_request_header(name));
    }

    /// [`HttpContext::response_header`]; `None` also once the request ended.
    pub fn response_header(&self, name: &str) -> Option<HeaderValue> {
        self.with(|ctx| ctx.response_header(name)).flatten()
    }

    /// [`HttpContext::set_response_header`]; nothing once the request ended.
    pub fn set_response_header(&self, name: &str, value: impl AsRef<[u8]>) {
        self.with(|ctx| ctx.set_response_header(name, value));
    }

    /// [`HttpContext::add_response_header`]; nothing once the request ended.
    pub fn add_response_header(&self, name: &str, value: impl AsRef<[u8]>) {
        self.with(|ctx| ctx.add_response_header(name, value));
    }

    /// [`HttpContext::remove_response_header`]; nothing once the request ended.
    pub fn remove_response_header(&self, name: &str) {
        self.with(|ctx| ctx.remove_response_header(name));
    }

    /// [`HttpContext::send_local_response`]; nothing once the request ended.
    pub fn send_local_response(
        &self,
        status: u32,
        headers: &[(&str, &[u8])],
        body: impl AsRef<[u8]>,
    ) {
        self.with(|ctx| ctx.send_local_response(status, headers, body));
    }

    /// [`HttpContext::set_user_attribute`]; nothing once the request ended.
    pub fn set_user_attribute(&self, key: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.with(|ctx| ctx.set_user_attribute(key, value));
    }
}

fn header_pairs(map: MapType) -> Vec<(String, HeaderValue)> {
    host::get_header_pairs(map)
        .unwrap_or_default()
        .into_iter()
        .map(|(n, v)| (n, HeaderValue(v)))
        .collect()
}

fn is_binary(content_type: Option<HeaderValue>, content_encoding: Option<HeaderValue>) -> bool {
    is_binary_bytes(
        content_type.as_ref().map(HeaderValue::as_bytes),
        content_encoding.as_ref().map(HeaderValue::as_bytes),
    )
}

fn is_binary_bytes(content_type: Option<&[u8]>, content_encoding: Option<&[u8]>) -> bool {
    if content_encoding.is_some_and(|v| !v.is_empty()) {
        return true;
    }
    content_type.is_some_and(|t| {
        crate::wire::find(t, b"octet-stream").is_some() || crate::wire::find(t, b"grpc").is_some()
    })
}

/// Facts about the request headers, read with the request line in one host
/// call (Envoy answers no header reads once the request headers continued).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts {
    websocket: bool,
    binary: bool,
}

/// Go's `MarshalStr`: the JSON-escaped text without the surrounding quotes.
fn escape_json_string(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_owned()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map(str::to_owned)
        .unwrap_or(quoted)
}

/// Go's `UnmarshalStr`: reads escaped text back.
fn unescape_json_string(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    serde_json::from_str::<String>(&format!("\"{text}\"")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips() {
        let text = r#"{"a":"b\"c","n":1}"#;
        let escaped = escape_json_string(text);
        assert_eq!(escaped, r#"{\"a\":\"b\\\"c\",\"n\":1}"#);
        assert_eq!(
            unescape_json_string(escaped.as_bytes()).as_deref(),
            Some(text)
        );
    }

    #[test]
    fn binary_rule() {
        let v = |s: &str| Some(HeaderValue(s.as_bytes().to_vec()));
        assert!(is_binary(v("application/octet-stream"), None));
        assert!(is_binary(v("application/grpc"), None));
        assert!(is_binary(v("application/json"), v("gzip")));
        assert!(!is_binary(v("application/json"), None));
        assert!(!is_binary(None, None));
    }
}
