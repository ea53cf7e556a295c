//! Where a request enters: the per-request driver the host calls for each
//! phase. It matches the config once (request headers), decides which body
//! hooks run, calls the plugin's hooks and turns their typed results into
//! host actions.
//!
//! A hook that returns a waiting action ([`HeaderAction::wait`]) is polled at
//! once; if it must wait, the phase is paused and the future becomes a task
//! (see [`crate::task`]). When it completes, [`Inner::complete`] applies its
//! result and resumes the stream exactly once. While a headers hook waits,
//! body callbacks hold the data (they never let it pass early), and the body
//! hooks run once the headers hook has decided.

use crate::host::{self, BufferType};
use crate::http_context::{HttpContext, Phase};
use crate::matcher::Matched;
use crate::plugin::{DataAction, HeaderAction, HttpPlugin, Waiting};
use crate::root::Shared;
use crate::task::{self, Owner, TaskScope};
use proxy_wasm::traits::Context;
use proxy_wasm::types::Action;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Which phase's future a stream waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitingOn {
    Nothing,
    Headers,
    Body,
}

/// One direction (request or response) of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Request,
    Response,
}

impl Dir {
    fn buffer(self) -> BufferType {
        match self {
            Dir::Request => BufferType::RequestBody,
            Dir::Response => BufferType::ResponseBody,
        }
    }
}

/// Per-direction bookkeeping of waits and held body data.
#[derive(Debug)]
struct DirState {
    waiting: Cell<WaitingOn>,
    /// Body data held while a headers hook waited: `(body_size, end_of_stream)`.
    held_body: Cell<Option<(usize, bool)>>,
    /// The body hooks saw the end of the body.
    body_ended: Cell<bool>,
}

impl DirState {
    fn new() -> Self {
        DirState {
            waiting: Cell::new(WaitingOn::Nothing),
            held_body: Cell::new(None),
            body_ended: Cell::new(false),
        }
    }
}

/// The state tasks reach after the hook that spawned them returned.
pub(crate) struct Inner<P: HttpPlugin> {
    shared: Option<Rc<Shared<P::Config>>>,
    /// The config matched at request headers; `None` keeps the plugin out
    /// of this request.
    config: RefCell<Option<Rc<P::Config>>>,
    ctx: Rc<RefCell<HttpContext<P::State>>>,
    context_id: u32,
    request: DirState,
    response: DirState,
}

pub(crate) struct Stream<P: HttpPlugin> {
    inner: Rc<Inner<P>>,
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
type Complete<P, A> = fn(&Rc<Inner<P>>, Dir, Result<A, String>);

impl<P: HttpPlugin> Stream<P> {
    pub(crate) fn new(context_id: u32, shared: Option<Rc<Shared<P::Config>>>) -> Self {
        let ctx = Rc::new(RefCell::new(HttpContext::new(context_id, P::NAME)));
        if let Ok(mut c) = ctx.try_borrow_mut() {
            c.this = Rc::downgrade(&ctx);
            c.plugin_id = shared.as_ref().and_then(|s| s.plugin_id.clone());
            c.root_id = shared.as_ref().map_or(0, |s| s.root_id);
        }
        Stream {
            inner: Rc::new(Inner {
                shared,
                config: RefCell::new(None),
                ctx,
                context_id,
                request: DirState::new(),
                response: DirState::new(),
            }),
        }
    }
}

impl<P: HttpPlugin> Inner<P> {
    fn dir(&self, dir: Dir) -> &DirState {
        match dir {
            Dir::Request => &self.request,
            Dir::Response => &self.response,
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

    /// Runs the prepared `_rules_` matcher; reads only the inputs some rule needs.
    fn match_config(shared: &Shared<P::Config>, authority: Option<&[u8]>) -> Option<Rc<P::Config>> {
        let m = &shared.matcher;
        let authority = if m.needs_host() { authority } else { None };
        let route = if m.needs_route() { route_name() } else { None };
        let cluster = if m.needs_cluster() {
            cluster_name()
        } else {
            None
        };
        match m.find(authority, route.as_deref(), cluster.as_deref()) {
            Matched::Rule { index, config } => {
                log::debug!(
                    "config matched {}",
                    m.describe_rule(index).unwrap_or("a rule")
                );
                Some(Rc::clone(config))
            }
            Matched::Global(config) => {
                // Without rules there is nothing to explain (and no need to
                // ask the host for its log level on every request).
                if m.rule_count() > 0 {
                    log::debug!("no rule matched, using the global config");
                }
                Some(Rc::clone(config))
            }
            Matched::None => {
                log::debug!("no rule matched and there is no global config: plugin skipped");
                None
            }
        }
    }

    fn local_response_sent(&self) -> bool {
        self.with_ctx(|c| c.flags.local_response_sent)
            .unwrap_or(false)
    }

    fn set_paused(&self, dir: Dir, paused: bool) {
        self.with_ctx(|c| match dir {
            Dir::Request => c.flags.request_paused = paused,
            Dir::Response => c.flags.response_paused = paused,
        });
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
                        self.dir(dir).waiting.set(A::WAITING);
                        self.set_paused(dir, true);
                        return Action::Pause;
                    }
                }
            }
        };
        if !sent_before && self.local_response_sent() {
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
        self.dir(dir).waiting.set(A::WAITING);
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
        let state = self.dir(dir);
        state.waiting.set(WaitingOn::Nothing);
        let Some(action) = self.settle(out, dir) else {
            return;
        };
        if self.local_response_sent() {
            return;
        }
        match action.decide() {
            Ok(true) => {} // paused by the plugin's choice
            Err(next) => self.chain(dir, next, Self::complete_headers),
            Ok(false) => {
                if let Some((size, end_of_stream)) = state.held_body.take() {
                    // The body arrived while the headers hook waited.
                    if self.body(size, end_of_stream, dir) == Action::Pause {
                        // Still buffering (or a body hook waits): the body
                        // path resumes the stream when it is done.
                        return;
                    }
                }
                self.resume(dir);
            }
        }
    }

    /// A body future completed: apply it and resume the stream exactly once.
    fn complete_body(self: &Rc<Self>, dir: Dir, out: Result<DataAction, String>) {
        self.dir(dir).waiting.set(WaitingOn::Nothing);
        let Some(action) = self.settle(out, dir) else {
            return;
        };
        if self.local_response_sent() {
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
        let sent_before = self.local_response_sent();
        let state = self.dir(dir);
        match state.waiting.get() {
            WaitingOn::Headers => {
                // Hold the data until the headers hook has decided.
                state.held_body.set(Some((body_size, end_of_stream)));
                return Action::Pause;
            }
            WaitingOn::Body => return Action::Pause,
            WaitingOn::Nothing => {}
        }
        if end_of_stream {
            state.body_ended.set(true);
        }
        let hooks = P::HOOKS;
        let flags = self.with_ctx(|c| match dir {
            Dir::Request => (c.flags.read_request_body, c.flags.buffer_request_body),
            Dir::Response => (c.flags.read_response_body, c.flags.buffer_response_body),
        });
        let Some((read, buffer_forced)) = flags else {
            return Action::Continue;
        };
        let (streaming, buffered) = match dir {
            Dir::Request => (hooks.streaming_request_body, hooks.request_body),
            Dir::Response => (hooks.streaming_response_body, hooks.response_body),
        };
        if !read {
            return Action::Continue;
        }
        if streaming && !(buffer_forced && buffered) {
            let chunk = host::get_buffer(dir.buffer(), 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default();
            let replaced = self
                .with_ctx(|c| match dir {
                    Dir::Request => P::on_streaming_request_body(c, &config, &chunk, end_of_stream),
                    Dir::Response => {
                        P::on_streaming_response_body(c, &config, &chunk, end_of_stream)
                    }
                })
                .flatten();
            if let Some(new) = replaced {
                if let Err(e) = host::set_buffer(dir.buffer(), 0, body_size, &new) {
                    log::warn!("replacing a body chunk failed: {e}");
                }
            }
            return self.apply(DataAction::Continue, dir, sent_before, Self::complete_body);
        }
        if !buffered {
            return Action::Continue;
        }
        if !end_of_stream {
            // Keep buffering; `body_size` grows to the whole body.
            return Action::Pause;
        }
        let body = host::get_buffer(dir.buffer(), 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let action = self.with_ctx(|c| match dir {
            Dir::Request => P::on_request_body(c, &config, &body),
            Dir::Response => P::on_response_body(c, &config, &body),
        });
        match action {
            Some(action) => self.apply(action, dir, sent_before, Self::complete_body),
            None => Action::Continue,
        }
    }

    /// Trailers end the body: body hooks that did not see an end of stream
    /// get it now (buffered: the whole body; streaming: an empty last chunk).
    fn trailers(self: &Rc<Self>, dir: Dir) -> Action {
        let state = self.dir(dir);
        if state.waiting.get() != WaitingOn::Nothing {
            return Action::Pause;
        }
        if state.body_ended.get() || self.config().is_none() {
            return Action::Continue;
        }
        const WHOLE: usize = i32::MAX as usize;
        let action = self.body(WHOLE, true, dir);
        if action == Action::Continue {
            self.set_paused(dir, false);
        }
        action
    }

    fn headers(self: &Rc<Self>, end_of_stream: bool, dir: Dir) -> Action {
        let Some(config) = self.config() else {
            return Action::Continue;
        };
        let sent_before = self.local_response_sent();
        let action = self.with_ctx(|c| match dir {
            Dir::Request => P::on_request_headers(c, &config),
            Dir::Response => {
                c.flags.has_response_body = !end_of_stream;
                if end_of_stream {
                    c.flags.read_response_body = false;
                } else if c.flags.read_response_body && c.is_binary_response_body() {
                    log::debug!("response body is binary or encoded: body hooks skipped");
                    c.flags.read_response_body = false;
                }
                P::on_response_headers(c, &config)
            }
        });
        match action {
            Some(action) => self.apply(action, dir, sent_before, Self::complete_headers),
            None => Action::Continue,
        }
    }
}

impl<P: HttpPlugin> Context for Stream<P> {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        crate::callout::on_http_call_response(token_id, body_size);
    }
}

impl<P: HttpPlugin> proxy_wasm::traits::HttpContext for Stream<P> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let inner = &self.inner;
        let Some(shared) = inner.shared.clone() else {
            return Action::Continue;
        };
        // Domain rules need `:authority` before matching; otherwise the
        // request line is captured only for requests the plugin serves.
        let early = shared.matcher.needs_host();
        let authority = if early {
            inner.with_ctx(|c| c.capture_request_line()).flatten()
        } else {
            None
        };
        inner.enter(Phase::DecodeHeader);
        let config = Inner::<P>::match_config(&shared, authority.as_deref());
        if config.is_some() && !early && !P::HOOKS.request_headers_only {
            inner.with_ctx(|c| c.capture_request_line());
        }
        let matched = config.is_some();
        if let Ok(mut slot) = inner.config.try_borrow_mut() {
            *slot = config;
        }
        if !matched {
            return Action::Continue;
        }
        let hooks = P::HOOKS;
        inner.with_ctx(|c| {
            let flags = &mut c.flags;
            flags.has_request_body = !end_of_stream;
            flags.read_request_body =
                !end_of_stream && (hooks.request_body || hooks.streaming_request_body);
            flags.read_response_body = hooks.response_body || hooks.streaming_response_body;
            if c.flags.read_request_body || c.flags.read_response_body {
                if c.is_websocket() {
                    c.flags.read_request_body = false;
                    c.flags.read_response_body = false;
                } else if c.flags.read_request_body && c.is_binary_request_body() {
                    log::debug!("request body is binary or encoded: body hooks skipped");
                    c.flags.read_request_body = false;
                }
            }
        });
        inner.headers(end_of_stream, Dir::Request)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.inner.enter(Phase::DecodeData);
        let action = self.inner.body(body_size, end_of_stream, Dir::Request);
        if action == Action::Continue {
            // Continuing here releases whatever was held: nothing to resume.
            self.inner.set_paused(Dir::Request, false);
        }
        action
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.inner.enter(Phase::EncodeHeader);
        self.inner.headers(end_of_stream, Dir::Response)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.inner.enter(Phase::EncodeData);
        let action = self.inner.body(body_size, end_of_stream, Dir::Response);
        if action == Action::Continue {
            self.inner.set_paused(Dir::Response, false);
        }
        action
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.inner.enter(Phase::DecodeData);
        self.inner.trailers(Dir::Request)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.inner.enter(Phase::EncodeData);
        self.inner.trailers(Dir::Response)
    }

    fn on_log(&mut self) {
        let inner = &self.inner;
        inner.enter(Phase::Done);
        // The stream is over: its pending futures are dropped (and their
        // calls forgotten) before stream done runs.
        task::cancel_owner(Owner::Stream(inner.context_id));
        if let Some(config) = inner.config() {
            inner.with_ctx(|c| P::on_stream_done(c, &config));
        }
        // Stream done may have started detached work owned by the root.
        task::run_ready();
    }
}

impl<P: HttpPlugin> Drop for Stream<P> {
    fn drop(&mut self) {
        // The host deleted the context (normally after `on_log`, but also on
        // a reset): nothing may wait for it any more.
        task::cancel_owner(Owner::Stream(self.inner.context_id));
    }
}
