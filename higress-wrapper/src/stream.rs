//! The per-request driver: what the host's request callbacks (handed over by
//! `entry`) do. It matches the config once (request headers), decides which
//! body hooks run, calls the plugin's hooks and turns their typed results
//! into host actions.
//!
//! A hook that returns a waiting action ([`HeaderAction::wait`]) is polled at
//! once; if it must wait, the phase is paused and the future becomes a task
//! (see [`crate::task`]). When it completes, the driver applies its result
//! and resumes the stream exactly once. While a headers hook waits, body
//! callbacks hold the data (they never let it pass early), and the body
//! hooks run once the headers hook has decided.
//!
//! A phase the plugin has no hook for returns `Continue` at once: no log
//! scope, no borrow, no host call.
//!
//! Layering: driver. Imports the public API layer (`plugin`, `http_context`)
//! and the runtime below it.

use crate::action::{DataAction, HeaderAction, Waiting};
use crate::config::matcher::{Matched, RuleMatcher};
use crate::host;
use crate::http_context::{Dir, HttpContext, Phase, WaitingOn};
use crate::plugin::HttpPlugin;
use crate::task::{self, Owner, TaskScope};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What a plugin root shares with the requests it creates (built by `root`
/// at configure time; requests in flight keep the one they matched).
pub(crate) struct Shared<C> {
    pub(crate) root_id: u32,
    pub(crate) plugin_id: Option<Rc<str>>,
    pub(crate) matcher: RuleMatcher<C>,
}

/// What a request callback answers the host (proxy-wasm `Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Action {
    Continue = 0,
    Pause = 1,
    /// Body only: `StopIterationNoBuffer`, the chunk goes no further and
    /// Envoy keeps no copy (Go's `DataStopIterationNoBuffer`).
    StopNoBuffer = 3,
}

/// What `entry` calls for an HTTP context. Every method takes the stream's
/// `Rc` so that a hook's pending future can keep the stream alive.
pub(crate) trait StreamDriver {
    fn request_headers(self: Rc<Self>, end_of_stream: bool) -> Action;
    fn request_body(self: Rc<Self>, body_size: usize, end_of_stream: bool) -> Action;
    fn request_trailers(self: Rc<Self>) -> Action;
    fn response_headers(self: Rc<Self>, end_of_stream: bool) -> Action;
    fn response_body(self: Rc<Self>, body_size: usize, end_of_stream: bool) -> Action;
    fn response_trailers(self: Rc<Self>) -> Action;
    /// Stream done (the host's `proxy_on_log`).
    fn log(self: Rc<Self>);
    /// The host deleted the context: nothing may wait for it any more.
    fn delete(self: Rc<Self>);
}

/// Empties the body chunk the host holds for `dir` (a stopped chunk that
/// would otherwise be sent by a resume).
fn drop_chunk(dir: Dir, size: usize) {
    if let Err(e) = host::set_buffer(buffer(dir), 0, size, &[]) {
        log::warn!("dropping a stopped body chunk failed: {e}");
    }
}

/// "The whole buffered body" for a host buffer read.
const WHOLE_BODY: usize = i32::MAX as usize;

fn buffer(dir: Dir) -> host::BufferType {
    match dir {
        Dir::Request => host::BufferType::RequestBody,
        Dir::Response => host::BufferType::ResponseBody,
    }
}

/// What header and data actions share, so one driver applies both.
trait PhaseResult: Default + Sized + 'static {
    /// What the stream waits on while a future of this kind runs.
    const WAITING: WaitingOn;
    /// `Ok(true)`: hold the stream; `Ok(false)`: continue; `Err`: wait.
    fn decide(self) -> Result<bool, Waiting<Self>>;
}

impl PhaseResult for HeaderAction {
    const WAITING: WaitingOn = WaitingOn::Headers;
    fn decide(self) -> Result<bool, Waiting<Self>> {
        match self {
            HeaderAction::Continue => Ok(false),
            HeaderAction::StopIteration => Ok(true),
            HeaderAction::Wait(w) => Err(w),
        }
    }
}

impl PhaseResult for DataAction {
    const WAITING: WaitingOn = WaitingOn::Body;
    fn decide(self) -> Result<bool, Waiting<Self>> {
        match self {
            DataAction::Continue => Ok(false),
            DataAction::StopIterationAndBuffer => Ok(true),
            DataAction::Wait(w) => Err(w),
        }
    }
}

/// What runs when a phase's future completes.
type Complete<P, A> = fn(&Rc<Stream<P>>, Dir, Result<A, String>);

/// One request through plugin `P`.
pub(crate) struct Stream<P: HttpPlugin> {
    shared: Option<Rc<Shared<P::Config>>>,
    /// The config matched at request headers; `None` keeps the plugin out
    /// of this request.
    config: RefCell<Option<Rc<P::Config>>>,
    ctx: Rc<RefCell<HttpContext<P::State>>>,
    context_id: u32,
    /// `proxy_on_log` ran: its tasks and calls are already gone.
    ended: Cell<bool>,
}

impl<P: HttpPlugin> Stream<P> {
    pub(crate) fn new(context_id: u32, shared: Option<Rc<Shared<P::Config>>>) -> Self {
        let ctx = Rc::new(RefCell::new(HttpContext::new(context_id, P::NAME)));
        if let Ok(mut c) = ctx.try_borrow_mut() {
            c.this = Rc::downgrade(&ctx);
            c.plugin_id = shared.as_ref().and_then(|s| s.plugin_id.clone());
            c.root_id = shared.as_ref().map_or(0, |s| s.root_id);
        }
        Stream {
            shared,
            config: RefCell::new(None),
            ctx,
            context_id,
            ended: Cell::new(false),
        }
    }

    fn plugin_id(&self) -> Option<&Rc<str>> {
        self.shared.as_ref().and_then(|s| s.plugin_id.as_ref())
    }

    fn enter(&self, phase: Phase) {
        let request_id = self.with_ctx(|c| {
            c.phase = phase;
            Rc::clone(&c.request_id)
        });
        crate::log::enter_stream(
            P::NAME,
            self.plugin_id(),
            self.context_id,
            request_id.as_ref(),
        );
    }

    fn config(&self) -> Option<Rc<P::Config>> {
        self.config.try_borrow().ok().and_then(|c| c.clone())
    }

    /// Runs `f` on the context; `None` only if it is already borrowed
    /// (which the driver never does across a hook call).
    fn with_ctx<R>(&self, f: impl FnOnce(&mut HttpContext<P::State>) -> R) -> Option<R> {
        self.ctx.try_borrow_mut().ok().map(|mut c| f(&mut c))
    }

    fn waiting(&self, dir: Dir) -> WaitingOn {
        self.with_ctx(|c| c.dir_mut(dir).waiting)
            .unwrap_or_default()
    }

    fn set_waiting(&self, dir: Dir, waiting: WaitingOn) {
        self.with_ctx(|c| c.dir_mut(dir).waiting = waiting);
    }

    /// Runs the prepared `_rules_` matcher; reads only the inputs some rule needs.
    /// Returns the config and, if a rule matched, its index.
    fn match_config(
        shared: &Shared<P::Config>,
        authority: Option<&[u8]>,
    ) -> Option<(Rc<P::Config>, Option<usize>)> {
        let m = &shared.matcher;
        let authority = if m.needs_host() { authority } else { None };
        let route = if m.needs_route() {
            crate::http_context::route_name()
        } else {
            None
        };
        let cluster = if m.needs_cluster() {
            crate::http_context::cluster_name()
        } else {
            None
        };
        match m.find(authority, route.as_deref(), cluster.as_deref()) {
            Matched::Rule { index, config } => {
                log::debug!(
                    "config matched {}",
                    m.describe_rule(index).unwrap_or("a rule")
                );
                Some((Rc::clone(config), Some(index)))
            }
            Matched::Global(config) => {
                // Without rules there is nothing to explain (and no need to
                // ask the host for its log level on every request).
                if m.rule_count() > 0 {
                    log::debug!("no rule matched, using the global config");
                }
                Some((Rc::clone(config), None))
            }
            Matched::None => {
                log::debug!("no rule matched and there is no global config: plugin skipped");
                None
            }
        }
    }

    /// The plugin ended the request: a local response, or a reset.
    fn ended_by_plugin(&self) -> bool {
        self.with_ctx(|c| c.flags.local_response_sent || c.flags.reset)
            .unwrap_or(false)
    }

    fn set_paused(&self, dir: Dir, paused: bool) {
        self.with_ctx(|c| c.dir_mut(dir).paused = paused);
    }

    /// Resumes `dir` if (and only if) the SDK paused it.
    fn resume(&self, dir: Dir) {
        self.with_ctx(|c| match dir {
            Dir::Request => c.resume_request(),
            Dir::Response => c.resume_response(),
        });
    }

    fn task_scope(&self) -> TaskScope {
        TaskScope {
            plugin_name: P::NAME,
            plugin_id: self.plugin_id().cloned(),
            root_id: self.shared.as_ref().map_or(0, |s| s.root_id),
            request_id: self.ctx.try_borrow().ok().map(|c| Rc::clone(&c.request_id)),
        }
    }

    /// Turns a hook's result into the host action. A waiting result is
    /// polled at once; if it must wait, the phase is paused and `complete`
    /// runs when it finishes. `sent_before`: a local response was already
    /// sent before this hook ran (its own response headers then pass).
    fn apply<A: PhaseResult>(
        self: &Rc<Self>,
        action: A,
        dir: Dir,
        sent_before: bool,
        complete: Complete<P, A>,
    ) -> Action {
        let hold = match action.decide() {
            Ok(hold) => hold,
            Err(Waiting(future)) => {
                let this = Rc::clone(self);
                let done = task::run_or_spawn(
                    Owner::Stream(self.context_id),
                    self.task_scope(),
                    future,
                    move |out| complete(&this, dir, out),
                );
                match done {
                    Some(out) => matches!(self.settle(out, dir).map(A::decide), Some(Ok(true))),
                    None => {
                        self.with_ctx(|c| {
                            let state = c.dir_mut(dir);
                            state.waiting = A::WAITING;
                            state.paused = true;
                        });
                        return Action::Pause;
                    }
                }
            }
        };
        if !sent_before && self.ended_by_plugin() {
            return Action::Pause;
        }
        if hold {
            self.set_paused(dir, true);
            Action::Pause
        } else {
            Action::Continue
        }
    }

    /// A completed future asked to wait again: chain the next one.
    fn chain<A: PhaseResult>(
        self: &Rc<Self>,
        dir: Dir,
        Waiting(future): Waiting<A>,
        complete: Complete<P, A>,
    ) {
        let this = Rc::clone(self);
        task::spawn_after(
            Owner::Stream(self.context_id),
            self.task_scope(),
            future,
            move |out| complete(&this, dir, out),
        );
        self.set_waiting(dir, A::WAITING);
    }

    /// The result of a finished future: the action, or the error policy.
    /// `None` means a local response was sent for the error.
    fn settle<A: Default>(&self, out: Result<A, String>, dir: Dir) -> Option<A> {
        let (side, source) = match dir {
            Dir::Request => ("request", "request hook"),
            Dir::Response => ("response", "response hook"),
        };
        match out {
            Ok(a) => {
                crate::logging::recovered(source);
                Some(a)
            }
            Err(e) => {
                let policy = self.with_ctx(|c| c.flags.error_response.clone()).flatten();
                let e = crate::logging::Truncated::new(&e, 1024);
                let error = log::Level::Error;
                match policy {
                    Some((status, body)) => {
                        let line = format_args!("{side} hook failed: {e}; answering {status}");
                        crate::logging::failure(error, source, line);
                        self.with_ctx(|c| c.send_local_response(status, &[], &body));
                        None
                    }
                    None => {
                        let line = format_args!("{side} hook failed: {e}; continuing (fail open)");
                        crate::logging::failure(error, source, line);
                        Some(A::default())
                    }
                }
            }
        }
    }

    /// A headers future completed: apply it, run body hooks on data held
    /// meanwhile, and resume the stream exactly once.
    fn complete_headers(self: &Rc<Self>, dir: Dir, out: Result<HeaderAction, String>) {
        self.set_waiting(dir, WaitingOn::Nothing);
        let Some(action) = self.settle(out, dir) else {
            return;
        };
        if self.ended_by_plugin() {
            return;
        }
        match action.decide() {
            Ok(true) => {} // paused by the plugin's choice
            Err(next) => self.chain(dir, next, Self::complete_headers),
            Ok(false) => {
                let held = self.with_ctx(|c| c.dir_mut(dir).held_body.take()).flatten();
                if let Some((size, end_of_stream)) = held {
                    // The body arrived while the headers hook waited.
                    match self.body(size, end_of_stream, dir) {
                        // Still buffering (or a body hook waits): the body
                        // path resumes the stream when it is done.
                        Action::Pause => return,
                        // The resume below sends what the host holds: drop
                        // the chunk the plugin stopped.
                        Action::StopNoBuffer => drop_chunk(dir, size),
                        Action::Continue => {}
                    }
                }
                self.resume(dir);
            }
        }
    }

    /// A body future completed: apply it and resume the stream exactly once.
    fn complete_body(self: &Rc<Self>, dir: Dir, out: Result<DataAction, String>) {
        self.set_waiting(dir, WaitingOn::Nothing);
        let Some(action) = self.settle(out, dir) else {
            return;
        };
        if self.ended_by_plugin() {
            return;
        }
        match action.decide() {
            Ok(true) => {}
            Err(next) => self.chain(dir, next, Self::complete_body),
            Ok(false) => self.resume(dir),
        }
    }

    /// Shared by both directions: streaming hook per chunk, or buffer until
    /// end of stream and call the buffered hook once.
    fn body(self: &Rc<Self>, body_size: usize, end_of_stream: bool, dir: Dir) -> Action {
        let Some(config) = self.config() else {
            return Action::Continue;
        };
        let sent_before = self.ended_by_plugin();
        let hooks = P::HOOKS;
        let (streaming, buffered) = match dir {
            Dir::Request => (hooks.on_streaming_request_body, hooks.on_request_body),
            Dir::Response => (hooks.on_streaming_response_body, hooks.on_response_body),
        };
        // Decide under one borrow what this chunk is for.
        let decision = self.with_ctx(|c| {
            let state = c.dir_mut(dir);
            match state.waiting {
                WaitingOn::Headers => {
                    // Hold the data until the headers hook has decided.
                    state.held_body = Some((body_size, end_of_stream));
                    return Err(Action::Pause);
                }
                WaitingOn::Body => return Err(Action::Pause),
                WaitingOn::Nothing => {}
            }
            if end_of_stream {
                state.body_ended = true;
            }
            if !state.read_body {
                return Err(Action::Continue);
            }
            Ok(state.buffer_body)
        });
        let buffer_forced = match decision {
            Some(Ok(forced)) => forced,
            Some(Err(action)) => return action,
            None => return Action::Continue,
        };
        if let Some(hook) = streaming.filter(|_| !(buffer_forced && buffered.is_some())) {
            let chunk = host::get_buffer(buffer(dir), 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default();
            let replaced = self
                .with_ctx(|c| hook(c, &config, &chunk, end_of_stream))
                .flatten();
            if let Some(new) = replaced {
                if let Err(e) = host::set_buffer(buffer(dir), 0, body_size, &new) {
                    log::warn!("replacing a body chunk failed: {e}");
                }
            }
            let action = self.apply(DataAction::Continue, dir, sent_before, Self::complete_body);
            // Go's `NeedPauseStreamingResponse`: the chunk stops here; the
            // plugin keeps what it needs and emits it later.
            let pause = dir == Dir::Response
                && self
                    .with_ctx(|c| c.pause_streaming_response)
                    .unwrap_or(false);
            if action == Action::Continue && pause {
                return Action::StopNoBuffer;
            }
            return action;
        }
        let Some(hook) = buffered else {
            return Action::Continue;
        };
        if !end_of_stream {
            // Keep buffering; `body_size` grows to the whole body.
            return Action::Pause;
        }
        let body = host::get_buffer(buffer(dir), 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        match self.with_ctx(|c| hook(c, &config, &body)) {
            Some(action) => self.apply(action, dir, sent_before, Self::complete_body),
            None => Action::Continue,
        }
    }

    /// A body or trailers callback for a direction without body hooks: held
    /// while a hook's future waits, passed (releasing what was held) otherwise.
    fn pass_body(&self, dir: Dir) -> Action {
        self.with_ctx(|c| {
            let state = c.dir_mut(dir);
            if state.waiting == WaitingOn::Nothing {
                state.paused = false;
                Action::Continue
            } else {
                Action::Pause
            }
        })
        .unwrap_or(Action::Continue)
    }

    /// A [`HttpContext::route_call`] waits for the response. It can only
    /// have been made in the request-data phase, so a plugin without a hook
    /// there never asks its context.
    fn route_call_pending(&self) -> bool {
        let hooks = P::HOOKS;
        (hooks.reads_request_body() || hooks.on_request_trailers.is_some())
            && self.with_ctx(|c| c.route_call_pending()).unwrap_or(false)
    }

    /// The route call's response is complete: hand it to the callback
    /// (`body_size`: the buffered body, `None` when the headers ended it),
    /// then let the response go on.
    fn route_response(self: &Rc<Self>, body_size: Option<usize>) -> Action {
        let Some(callback) = self.with_ctx(|c| c.take_route_call()).flatten() else {
            return Action::Continue;
        };
        let body = body_size
            .and_then(|size| host::get_buffer(host::BufferType::ResponseBody, 0, size).ok())
            .flatten()
            .unwrap_or_default();
        if let Err(e) = host::remove_header(host::MapType::ResponseHeaders, "content-length") {
            log::warn!("route call: removing content-length failed: {e}");
        }
        let headers = host::get_header_pairs(host::MapType::ResponseHeaders).unwrap_or_default();
        let status = headers
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(500);
        let response = crate::http_context::RouteResponse {
            status,
            headers,
            body,
        };
        self.with_ctx(|c| callback(c, response));
        Action::Continue
    }

    /// A body callback from the host; continuing releases whatever was held.
    fn body_callback(self: &Rc<Self>, body_size: usize, end_of_stream: bool, dir: Dir) -> Action {
        let action = self.body(body_size, end_of_stream, dir);
        if action == Action::Continue {
            // Continuing here releases whatever was held: nothing to resume.
            self.set_paused(dir, false);
        }
        action
    }

    /// Trailers end the body: body hooks that did not see an end of stream
    /// get it now (buffered: the whole body; streaming: an empty last chunk),
    /// then the trailers hook runs.
    fn trailers(self: &Rc<Self>, dir: Dir) -> Action {
        if self.waiting(dir) != WaitingOn::Nothing {
            return Action::Pause;
        }
        let Some(config) = self.config() else {
            return Action::Continue;
        };
        let ended = self.with_ctx(|c| c.dir_mut(dir).body_ended).unwrap_or(true);
        if !ended {
            const WHOLE: usize = i32::MAX as usize;
            let action = self.body(WHOLE, true, dir);
            if action == Action::Pause {
                return action;
            }
            if action == Action::StopNoBuffer {
                // Trailers cannot stop a chunk: empty it instead.
                drop_chunk(dir, WHOLE);
            }
            self.set_paused(dir, false);
        }
        let hook = match dir {
            Dir::Request => P::HOOKS.on_request_trailers,
            Dir::Response => P::HOOKS.on_response_trailers,
        };
        let Some(hook) = hook else {
            return Action::Continue;
        };
        let sent_before = self.ended_by_plugin();
        match self.with_ctx(|c| hook(c, &config)) {
            Some(action) => self.apply(action, dir, sent_before, Self::complete_headers),
            None => Action::Continue,
        }
    }

    fn headers(self: &Rc<Self>, end_of_stream: bool, dir: Dir) -> Action {
        let Some(config) = self.config() else {
            return Action::Continue;
        };
        let hook = match dir {
            Dir::Request => P::HOOKS.on_request_headers,
            Dir::Response => P::HOOKS.on_response_headers,
        };
        let sent_before = self.ended_by_plugin();
        let action = self.with_ctx(|c| {
            if dir == Dir::Response {
                let state = &mut c.response;
                state.has_body = !end_of_stream;
                if end_of_stream {
                    state.read_body = false;
                } else if P::SKIP_BINARY_BODIES && state.read_body && c.is_binary_response_body() {
                    log::debug!("response body is binary or encoded: body hooks skipped");
                    c.response.read_body = false;
                }
            }
            hook.map(|hook| hook(c, &config))
        });
        match action.flatten() {
            Some(action) => self.apply(action, dir, sent_before, Self::complete_headers),
            None => Action::Continue,
        }
    }
}

impl<P: HttpPlugin> StreamDriver for Stream<P> {
    fn request_headers(self: Rc<Self>, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let hooks = P::HOOKS;
        // Domain rules need `:authority` before matching; otherwise the
        // request line is captured only for requests the plugin serves, only
        // when a later phase may need it, and only if the plugin did not
        // opt out (`CAPTURE_REQUEST_LINE`: then the body facts below are
        // read one header at a time, only when a body hook will run).
        let early = shared.matcher.needs_host();
        let authority = if early {
            self.with_ctx(|c| c.capture_request_line()).flatten()
        } else {
            None
        };
        self.enter(Phase::DecodeHeader);
        let (config, rule) = match Self::match_config(&shared, authority.as_deref()) {
            Some((config, rule)) => (Some(config), rule),
            None => (None, None),
        };
        if config.is_some() && !early && !hooks.request_headers_only() && P::CAPTURE_REQUEST_LINE {
            self.with_ctx(|c| c.capture_request_line());
        }
        let Some(config) = config else {
            return Action::Continue;
        };
        let for_wait: Rc<dyn std::any::Any> = Rc::clone(&config) as Rc<dyn std::any::Any>;
        if let Ok(mut slot) = self.config.try_borrow_mut() {
            *slot = Some(config);
        }
        let rule_count = shared.matcher.rule_count();
        self.with_ctx(|c| {
            c.matched_config = Some(for_wait);
            c.matched_rule = rule;
            c.rule_count = rule_count;
            c.request.has_body = !end_of_stream;
            c.request.read_body = !end_of_stream && hooks.reads_request_body();
            c.response.read_body = hooks.reads_response_body();
            if P::SKIP_BINARY_BODIES && (c.request.read_body || c.response.read_body) {
                if c.is_websocket() {
                    c.request.read_body = false;
                    c.response.read_body = false;
                } else if c.request.read_body && c.is_binary_request_body() {
                    log::debug!("request body is binary or encoded: body hooks skipped");
                    c.request.read_body = false;
                }
            }
        });
        self.headers(end_of_stream, Dir::Request)
    }

    fn request_body(self: Rc<Self>, body_size: usize, end_of_stream: bool) -> Action {
        if !P::HOOKS.reads_request_body() {
            return self.pass_body(Dir::Request);
        }
        self.enter(Phase::DecodeData);
        self.body_callback(body_size, end_of_stream, Dir::Request)
    }

    fn request_trailers(self: Rc<Self>) -> Action {
        let hooks = P::HOOKS;
        if !hooks.reads_request_body() && hooks.on_request_trailers.is_none() {
            return self.pass_body(Dir::Request);
        }
        self.enter(Phase::DecodeData);
        self.trailers(Dir::Request)
    }

    fn response_headers(self: Rc<Self>, end_of_stream: bool) -> Action {
        if self.route_call_pending() {
            self.enter(Phase::EncodeHeader);
            if end_of_stream {
                return self.route_response(None);
            }
            // Hold the headers; the body is buffered for the callback.
            return Action::Pause;
        }
        let hooks = P::HOOKS;
        if hooks.on_response_headers.is_none() && !hooks.reads_response_body() {
            return Action::Continue;
        }
        self.enter(Phase::EncodeHeader);
        self.headers(end_of_stream, Dir::Response)
    }

    fn response_body(self: Rc<Self>, body_size: usize, end_of_stream: bool) -> Action {
        if self.route_call_pending() {
            self.enter(Phase::EncodeData);
            if !end_of_stream {
                return Action::Pause;
            }
            return self.route_response(Some(body_size));
        }
        if !P::HOOKS.reads_response_body() {
            return self.pass_body(Dir::Response);
        }
        self.enter(Phase::EncodeData);
        self.body_callback(body_size, end_of_stream, Dir::Response)
    }

    fn response_trailers(self: Rc<Self>) -> Action {
        if self.route_call_pending() {
            self.enter(Phase::EncodeData);
            return self.route_response(Some(WHOLE_BODY));
        }
        let hooks = P::HOOKS;
        if !hooks.reads_response_body() && hooks.on_response_trailers.is_none() {
            return self.pass_body(Dir::Response);
        }
        self.enter(Phase::EncodeData);
        self.trailers(Dir::Response)
    }

    fn log(self: Rc<Self>) {
        // The stream is over: its pending futures are dropped (and their
        // calls forgotten) before stream done runs.
        task::cancel_owner(Owner::Stream(self.context_id));
        self.ended.set(true);
        let Some(hook) = P::HOOKS.on_stream_done else {
            return;
        };
        self.enter(Phase::Done);
        if let Some(config) = self.config() {
            self.with_ctx(|c| hook(c, &config));
        }
        // Stream done may have started detached work owned by the root.
        task::run_ready();
    }

    fn delete(self: Rc<Self>) {
        // The host deleted the context (normally after `on_log`, which
        // already cancelled; on a reset without it): nothing may wait for it
        // any more.
        if !self.ended.get() {
            task::cancel_owner(Owner::Stream(self.context_id));
        }
    }
}
