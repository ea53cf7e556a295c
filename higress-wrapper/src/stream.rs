//! Where a request enters: the per-request driver the host calls for each
//! phase. It matches the config once (request headers), decides which body
//! hooks run, calls the plugin's hooks and turns their typed results into
//! host actions.

use crate::host::{self, BufferType, MapType};
use crate::http_context::{HttpContext, Phase};
use crate::matcher::Matched;
use crate::plugin::{DataAction, HeaderAction, HttpPlugin};
use crate::root::Shared;
use proxy_wasm::traits::Context;
use proxy_wasm::types::Action;
use std::rc::Rc;

pub(crate) struct Stream<P: HttpPlugin> {
    shared: Option<Rc<Shared<P::Config>>>,
    /// The config matched at request headers; `None` keeps the plugin out
    /// of this request.
    config: Option<Rc<P::Config>>,
    ctx: HttpContext<P::State>,
}

/// Text of a property, `None` if absent or empty.
fn property_text(path: &[&str]) -> Option<String> {
    host::get_property(path)
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
        .map(|v| match String::from_utf8(v) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
}

/// Route name on Higress (`route_name`) or stock Envoy (`xds.route_name`).
pub(crate) fn route_name() -> Option<String> {
    property_text(&["route_name"]).or_else(|| property_text(&["xds", "route_name"]))
}

/// Cluster name on Higress (`cluster_name`) or stock Envoy (`xds.cluster_name`).
pub(crate) fn cluster_name() -> Option<String> {
    property_text(&["cluster_name"]).or_else(|| property_text(&["xds", "cluster_name"]))
}

impl<P: HttpPlugin> Stream<P> {
    pub(crate) fn new(context_id: u32, shared: Option<Rc<Shared<P::Config>>>) -> Self {
        Stream {
            shared,
            config: None,
            ctx: HttpContext::new(context_id, P::NAME),
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.ctx.phase = phase;
        let plugin_id = self.shared.as_ref().and_then(|s| s.plugin_id.as_ref());
        crate::log::enter_stream(P::NAME, plugin_id, self.ctx.context_id);
    }

    /// Runs the prepared `_rules_` matcher; reads only the inputs some rule needs.
    fn match_config(shared: &Shared<P::Config>) -> Option<Rc<P::Config>> {
        let m = &shared.matcher;
        let authority = if m.needs_host() {
            host::get_header(MapType::RequestHeaders, ":authority")
                .ok()
                .flatten()
        } else {
            None
        };
        let route = if m.needs_route() { route_name() } else { None };
        let cluster = if m.needs_cluster() { cluster_name() } else { None };
        match m.find(authority.as_deref(), route.as_deref(), cluster.as_deref()) {
            Matched::Rule { index, config } => {
                log::debug!("config matched {}", m.describe_rule(index).unwrap_or("a rule"));
                Some(Rc::clone(config))
            }
            Matched::Global(config) => {
                log::debug!("no rule matched, using the global config");
                Some(Rc::clone(config))
            }
            Matched::None => {
                log::debug!("no rule matched and there is no global config: plugin skipped");
                None
            }
        }
    }

    fn header_result(&mut self, action: HeaderAction, request: bool) -> Action {
        if self.ctx.flags.local_response_sent {
            return Action::Pause;
        }
        match action {
            HeaderAction::Continue => Action::Continue,
            HeaderAction::StopIteration => {
                if request {
                    self.ctx.flags.request_paused = true;
                } else {
                    self.ctx.flags.response_paused = true;
                }
                Action::Pause
            }
        }
    }

    fn data_result(&mut self, action: DataAction, request: bool) -> Action {
        if self.ctx.flags.local_response_sent {
            return Action::Pause;
        }
        match action {
            DataAction::Continue => Action::Continue,
            DataAction::StopIterationAndBuffer => {
                if request {
                    self.ctx.flags.request_paused = true;
                } else {
                    self.ctx.flags.response_paused = true;
                }
                Action::Pause
            }
        }
    }

    /// Shared by both directions: streaming hook per chunk, or buffer until
    /// end of stream and call the buffered hook once.
    fn body(&mut self, body_size: usize, end_of_stream: bool, request: bool) -> Action {
        let Some(config) = self.config.clone() else {
            return Action::Continue;
        };
        let hooks = P::HOOKS;
        let (read, buffer_forced, streaming, buffered, buffer) = if request {
            (
                self.ctx.flags.read_request_body,
                self.ctx.flags.buffer_request_body,
                hooks.streaming_request_body,
                hooks.request_body,
                BufferType::RequestBody,
            )
        } else {
            (
                self.ctx.flags.read_response_body,
                self.ctx.flags.buffer_response_body,
                hooks.streaming_response_body,
                hooks.response_body,
                BufferType::ResponseBody,
            )
        };
        if !read {
            return Action::Continue;
        }
        if streaming && !(buffer_forced && buffered) {
            let chunk = host::get_buffer(buffer, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default();
            let replaced = if request {
                P::on_streaming_request_body(&mut self.ctx, &config, &chunk, end_of_stream)
            } else {
                P::on_streaming_response_body(&mut self.ctx, &config, &chunk, end_of_stream)
            };
            if let Some(new) = replaced {
                if let Err(e) = host::set_buffer(buffer, 0, body_size, &new) {
                    log::warn!("replacing a body chunk failed: {e}");
                }
            }
            return self.data_result(DataAction::Continue, request);
        }
        if !buffered {
            return Action::Continue;
        }
        if !end_of_stream {
            // Keep buffering; `body_size` grows to the whole body.
            return Action::Pause;
        }
        let body = host::get_buffer(buffer, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let action = if request {
            P::on_request_body(&mut self.ctx, &config, &body)
        } else {
            P::on_response_body(&mut self.ctx, &config, &body)
        };
        self.data_result(action, request)
    }
}

impl<P: HttpPlugin> Context for Stream<P> {}

impl<P: HttpPlugin> proxy_wasm::traits::HttpContext for Stream<P> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.enter(Phase::DecodeHeader);
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        self.config = Self::match_config(&shared);
        let Some(config) = self.config.clone() else {
            return Action::Continue;
        };
        let hooks = P::HOOKS;
        let flags = &mut self.ctx.flags;
        flags.has_request_body = !end_of_stream;
        flags.read_request_body =
            !end_of_stream && (hooks.request_body || hooks.streaming_request_body);
        flags.read_response_body = hooks.response_body || hooks.streaming_response_body;
        if flags.read_request_body || flags.read_response_body {
            if self.ctx.is_websocket() {
                self.ctx.flags.read_request_body = false;
                self.ctx.flags.read_response_body = false;
            } else if self.ctx.flags.read_request_body && self.ctx.is_binary_request_body() {
                log::debug!("request body is binary or encoded: body hooks skipped");
                self.ctx.flags.read_request_body = false;
            }
        }
        let action = P::on_request_headers(&mut self.ctx, &config);
        self.header_result(action, true)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.enter(Phase::DecodeData);
        self.body(body_size, end_of_stream, true)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.enter(Phase::EncodeHeader);
        let Some(config) = self.config.clone() else {
            return Action::Continue;
        };
        self.ctx.flags.has_response_body = !end_of_stream;
        if end_of_stream {
            self.ctx.flags.read_response_body = false;
        } else if self.ctx.flags.read_response_body && self.ctx.is_binary_response_body() {
            log::debug!("response body is binary or encoded: body hooks skipped");
            self.ctx.flags.read_response_body = false;
        }
        let action = P::on_response_headers(&mut self.ctx, &config);
        self.header_result(action, false)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.enter(Phase::EncodeData);
        self.body(body_size, end_of_stream, false)
    }

    fn on_log(&mut self) {
        self.enter(Phase::Done);
        if let Some(config) = self.config.clone() {
            P::on_stream_done(&mut self.ctx, &config);
        }
    }
}
