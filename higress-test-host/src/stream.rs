//! [`HttpStream`]: one request/response through the plugin.

use super::driver::{self, with_stream};
use super::model::{Dir, HeaderMap, HostModel, StreamModel};
use super::types::{Action, Callout, LocalResponse, StreamError};
use super::TestHost;
use higress_wrapper::HeaderValue;
use std::fmt;

/// One HTTP stream through the plugin: the test plays the client
/// (`send_request_*`) and the upstream (`send_response_*`), then reads what
/// each side received.
///
/// ```
/// # use higress_wrapper::prelude::*;
/// # fn deny(ctx: &mut HttpContext, _: &()) -> HeaderAction {
/// #     ctx.send_local_response(403, &[("x-why", b"denied")], "no");
/// #     HeaderAction::Continue
/// # }
/// # fn parse(_: &serde_json::Value) -> Result<(), ConfigError> { Ok(()) }
/// # higress_wrapper::set_ctx! { name: "deny", config: (), parse_config: parse, on_request_headers: deny }
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use higress_test_host::{Action, TestHost};
///
/// let host = TestHost::start::<Plugin>("{}")?;
/// let mut s = host.http_stream();
/// assert_eq!(s.send_request_headers(&[(":path", "/")], false)?, Action::Pause);
/// let reply = s.local_response().unwrap();
/// assert_eq!((reply.status, reply.body.as_slice()), (403, &b"no"[..]));
/// assert!(s.upstream_request_headers().is_none()); // never proxied
/// assert_eq!(s.send_request_body(b"late", true)?, Action::Ended);
/// # Ok(()) }
/// ```
///
/// Dropping a stream that is not [`done`](HttpStream::done) ends it as
/// Envoy would (`proxy_on_log`, `proxy_on_done`, `proxy_on_delete`).
pub struct HttpStream<'h> {
    host: &'h TestHost,
    id: u32,
}

impl fmt::Debug for HttpStream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpStream")
            .field("context_id", &self.id)
            .finish_non_exhaustive()
    }
}

fn pairs<N: AsRef<str>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> HeaderMap {
    HeaderMap::from_pairs(pairs)
}

impl<'h> HttpStream<'h> {
    pub(super) fn new(host: &'h TestHost, id: u32) -> Self {
        HttpStream { host, id }
    }

    fn root(&self) -> u32 {
        self.host.root
    }

    fn read<R: Default>(&self, f: impl FnOnce(&HostModel, &StreamModel) -> R) -> R {
        with_stream(self.root(), self.id, |h, s| f(h, s)).unwrap_or_default()
    }

    fn write(&mut self, f: impl FnOnce(&mut StreamModel)) {
        with_stream(self.root(), self.id, |_, s| f(s));
    }

    /// The HTTP context id (what `HttpContext::context_id` returns).
    pub fn context_id(&self) -> u32 {
        self.id
    }

    // ----- inputs ----------------------------------------------------------------------

    /// Sets `:authority` on the request headers sent next (replacing one
    /// given there). Also what `request.host` answers.
    pub fn set_authority(&mut self, authority: &str) -> &mut Self {
        let authority = authority.to_owned();
        self.write(|s| s.authority = Some(authority));
        self
    }

    /// Sets `x-request-id` on the request headers sent next (Envoy's
    /// connection manager generates one; the host does not). Also what
    /// `request.id` answers.
    pub fn set_request_id(&mut self, request_id: &str) -> &mut Self {
        let request_id = request_id.to_owned();
        self.write(|s| s.request_id = Some(request_id));
        self
    }

    /// The route name: `xds.route_name`, and `route_name` on Higress.
    pub fn set_route_name(&mut self, route_name: &str) -> &mut Self {
        let route_name = route_name.to_owned();
        self.write(|s| s.route_name = Some(route_name));
        self
    }

    /// The upstream cluster name (`outbound|80||svc.ns.svc.cluster.local`
    /// on Higress): `xds.cluster_name`, and `cluster_name` on Higress.
    pub fn set_cluster_name(&mut self, cluster_name: &str) -> &mut Self {
        let cluster_name = cluster_name.to_owned();
        self.write(|s| s.cluster_name = Some(cluster_name));
        self
    }

    /// Sets a property of this stream, e.g. `["source", "address"]`, or one
    /// an earlier filter wrote (`["custom_log"]`). It takes precedence over
    /// the built-in attributes, and the plugin's `set_property` overwrites it.
    pub fn set_property(&mut self, path: &[&str], value: impl AsRef<[u8]>) -> &mut Self {
        let path = path.join("\0").into_bytes();
        let value = value.as_ref().to_vec();
        self.write(|s| {
            s.properties.insert(path, value);
        });
        self
    }

    // ----- driving ---------------------------------------------------------------------

    /// The client sends the request headers (`end_of_stream`: no body).
    /// Values are bytes or text: `&[(":path", "/")]` or
    /// `&[("x-bin", &b"\xff"[..])]`.
    pub fn send_request_headers<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        headers: &[(N, V)],
        end_of_stream: bool,
    ) -> Result<Action, StreamError> {
        let mut map = pairs(headers);
        let map = with_stream(self.root(), self.id, |_, s| {
            if s.done {
                return Err(StreamError::Done);
            }
            if s.req.started {
                return Err(StreamError::AlreadySent("request headers"));
            }
            if let Some(authority) = &s.authority {
                map.set(":authority", authority.as_bytes());
            }
            if let Some(id) = &s.request_id {
                map.set("x-request-id", id.as_bytes());
            }
            Ok(map)
        })
        .ok_or(StreamError::Gone)??;
        Ok(driver::deliver_headers(
            self.root(),
            self.id,
            Dir::Request,
            map,
            end_of_stream,
        ))
    }

    /// The client sends a chunk of the request body.
    pub fn send_request_body(
        &mut self,
        data: impl AsRef<[u8]>,
        end_of_stream: bool,
    ) -> Result<Action, StreamError> {
        self.check_data(Dir::Request, "request body")?.map_or_else(
            || {
                Ok(driver::deliver_body(
                    self.root(),
                    self.id,
                    Dir::Request,
                    data.as_ref().to_vec(),
                    end_of_stream,
                ))
            },
            Ok,
        )
    }

    /// The client sends the request trailers (they end the request).
    pub fn send_request_trailers<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        trailers: &[(N, V)],
    ) -> Result<Action, StreamError> {
        let map = pairs(trailers);
        self.check_data(Dir::Request, "request trailers")?
            .map_or_else(
                || {
                    Ok(driver::deliver_trailers(
                        self.root(),
                        self.id,
                        Dir::Request,
                        map,
                    ))
                },
                Ok,
            )
    }

    /// The upstream sends the response headers (`:status` included).
    pub fn send_response_headers<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        headers: &[(N, V)],
        end_of_stream: bool,
    ) -> Result<Action, StreamError> {
        let checked = with_stream(self.root(), self.id, |_, s| {
            if s.done {
                return Err(StreamError::Done);
            }
            if !s.upstream_response_open() {
                return Ok(false);
            }
            if s.resp.started {
                return Err(StreamError::AlreadySent("response headers"));
            }
            if s.req.headers_sent.is_none() {
                return Err(StreamError::UpstreamNotReached);
            }
            Ok(true)
        })
        .ok_or(StreamError::Gone)??;
        if !checked {
            return Ok(Action::Ended);
        }
        Ok(driver::deliver_headers(
            self.root(),
            self.id,
            Dir::Response,
            pairs(headers),
            end_of_stream,
        ))
    }

    /// The upstream sends a chunk of the response body.
    pub fn send_response_body(
        &mut self,
        data: impl AsRef<[u8]>,
        end_of_stream: bool,
    ) -> Result<Action, StreamError> {
        self.check_data(Dir::Response, "response body")?
            .map_or_else(
                || {
                    Ok(driver::deliver_body(
                        self.root(),
                        self.id,
                        Dir::Response,
                        data.as_ref().to_vec(),
                        end_of_stream,
                    ))
                },
                Ok,
            )
    }

    /// The upstream sends the response trailers.
    pub fn send_response_trailers<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        trailers: &[(N, V)],
    ) -> Result<Action, StreamError> {
        let map = pairs(trailers);
        self.check_data(Dir::Response, "response trailers")?
            .map_or_else(
                || {
                    Ok(driver::deliver_trailers(
                        self.root(),
                        self.id,
                        Dir::Response,
                        map,
                    ))
                },
                Ok,
            )
    }

    /// `Ok(Some(Ended))` when the direction no longer reaches the plugin,
    /// `Ok(None)` to deliver.
    fn check_data(&self, dir: Dir, what: &'static str) -> Result<Option<Action>, StreamError> {
        with_stream(self.root(), self.id, |_, s| {
            if s.done {
                return Err(StreamError::Done);
            }
            let open = match dir {
                Dir::Request => s.request_open(),
                Dir::Response => s.upstream_response_open(),
            };
            if !open {
                return Ok(Some(Action::Ended));
            }
            let half = s.half_ref(dir);
            if !half.started {
                return Err(StreamError::OutOfOrder(what));
            }
            if half.eos_in {
                return Err(StreamError::OutOfOrder(what));
            }
            Ok(None)
        })
        .ok_or(StreamError::Gone)?
    }

    /// The stream ends: `proxy_on_log` (the plugin's stream-done hook; both
    /// header maps readable), `proxy_on_done`, `proxy_on_delete`.
    pub fn done(&mut self) -> Result<(), StreamError> {
        driver::done(self.root(), self.id)
    }

    // ----- the request --------------------------------------------------------------------

    /// The request headers at the filter, as the plugin left them.
    pub fn request_headers(&self) -> Vec<(String, HeaderValue)> {
        self.read(|_, s| s.req.headers.to_public())
    }

    /// The first value of a request header at the filter.
    pub fn request_header(&self, name: &str) -> Option<HeaderValue> {
        self.read(|_, s| {
            s.req
                .headers
                .get(name)
                .map(|v| HeaderValue::from(v.to_vec()))
        })
    }

    /// Every value of a request header at the filter.
    pub fn request_header_values(&self, name: &str) -> Vec<HeaderValue> {
        self.read(|_, s| s.req.headers.get_all(name))
    }

    /// The request headers the upstream received; `None` while they have
    /// not left the filter (paused, or a local response ended the request).
    pub fn upstream_request_headers(&self) -> Option<Vec<(String, HeaderValue)>> {
        self.read(|_, s| s.req.headers_sent.as_ref().map(HeaderMap::to_public))
    }

    /// One request header as the upstream received it.
    pub fn upstream_request_header(&self, name: &str) -> Option<HeaderValue> {
        self.read(|_, s| {
            s.req
                .headers_sent
                .as_ref()
                .and_then(|m| m.get(name))
                .map(|v| HeaderValue::from(v.to_vec()))
        })
    }

    /// The request body bytes the upstream received so far.
    pub fn upstream_request_body(&self) -> Vec<u8> {
        self.read(|_, s| s.req.sent_body.clone())
    }

    /// The request trailers the upstream received.
    pub fn upstream_request_trailers(&self) -> Option<Vec<(String, HeaderValue)>> {
        self.read(|_, s| s.req.trailers_sent.as_ref().map(HeaderMap::to_public))
    }

    /// Whether the whole request (end of stream) reached the upstream.
    pub fn upstream_request_complete(&self) -> bool {
        self.read(|_, s| s.req.sent_eos)
    }

    /// The request body held at the filter now (buffered while paused).
    pub fn buffered_request_body(&self) -> Vec<u8> {
        self.read(|_, s| {
            let mut body = s.req.body.clone();
            if let Some((held, _)) = &s.req.held {
                body.extend_from_slice(held);
            }
            body
        })
    }

    /// Whether the request is stopped at the filter (headers or body held).
    pub fn is_request_paused(&self) -> bool {
        self.read(|_, s| s.request_open() && s.req.paused())
    }

    /// Whether either direction is stopped at the filter.
    pub fn is_paused(&self) -> bool {
        self.is_request_paused() || self.is_response_paused()
    }

    /// How many times the plugin resumed the request (`proxy_continue_stream`).
    pub fn request_resume_count(&self) -> u32 {
        self.read(|_, s| s.req.resumes)
    }

    /// How many times the plugin resumed this stream, both directions.
    pub fn resume_count(&self) -> u32 {
        self.read(|_, s| s.req.resumes + s.resp.resumes)
    }

    /// How many request-body callbacks the plugin received.
    pub fn request_body_callbacks(&self) -> u32 {
        self.read(|_, s| s.req.body_calls)
    }

    // ----- the response --------------------------------------------------------------------

    /// The response headers at the filter, as the plugin left them (the
    /// upstream's, or those of a local reply).
    pub fn response_headers(&self) -> Vec<(String, HeaderValue)> {
        self.read(|_, s| s.resp.headers.to_public())
    }

    /// The first value of a response header at the filter.
    pub fn response_header(&self, name: &str) -> Option<HeaderValue> {
        self.read(|_, s| {
            s.resp
                .headers
                .get(name)
                .map(|v| HeaderValue::from(v.to_vec()))
        })
    }

    /// The response headers the client received; `None` while none left
    /// the filter.
    pub fn client_response_headers(&self) -> Option<Vec<(String, HeaderValue)>> {
        self.read(|_, s| s.resp.headers_sent.as_ref().map(HeaderMap::to_public))
    }

    /// One response header as the client received it.
    pub fn client_response_header(&self, name: &str) -> Option<HeaderValue> {
        self.read(|_, s| {
            s.resp
                .headers_sent
                .as_ref()
                .and_then(|m| m.get(name))
                .map(|v| HeaderValue::from(v.to_vec()))
        })
    }

    /// The `:status` the client received.
    pub fn client_response_status(&self) -> Option<u32> {
        self.read(|_, s| {
            let status = s.resp.headers_sent.as_ref()?.get(":status")?;
            std::str::from_utf8(status).ok()?.parse().ok()
        })
    }

    /// The response body bytes the client received so far.
    pub fn client_response_body(&self) -> Vec<u8> {
        self.read(|_, s| s.resp.sent_body.clone())
    }

    /// The response body bytes the plugin stopped with
    /// `StopIterationNoBuffer` (Go's `NeedPauseStreamingResponse`): Envoy
    /// sends them nowhere and keeps no copy.
    pub fn dropped_response_body(&self) -> Vec<u8> {
        self.read(|_, s| s.resp.dropped_body.clone())
    }

    /// The response trailers the client received.
    pub fn client_response_trailers(&self) -> Option<Vec<(String, HeaderValue)>> {
        self.read(|_, s| s.resp.trailers_sent.as_ref().map(HeaderMap::to_public))
    }

    /// Whether the whole response (end of stream) reached the client.
    pub fn client_response_complete(&self) -> bool {
        self.read(|_, s| s.resp.sent_eos)
    }

    /// The response body held at the filter now.
    pub fn buffered_response_body(&self) -> Vec<u8> {
        self.read(|_, s| {
            let mut body = s.resp.body.clone();
            if let Some((held, _)) = &s.resp.held {
                body.extend_from_slice(held);
            }
            body
        })
    }

    /// Whether the response is stopped at the filter.
    pub fn is_response_paused(&self) -> bool {
        self.read(|_, s| !s.reset && !s.failed && s.resp.paused())
    }

    /// How many times the plugin resumed the response.
    pub fn response_resume_count(&self) -> u32 {
        self.read(|_, s| s.resp.resumes)
    }

    /// How many response-body callbacks the plugin received.
    pub fn response_body_callbacks(&self) -> u32 {
        self.read(|_, s| s.resp.body_calls)
    }

    // ----- the rest ----------------------------------------------------------------------

    /// The first local response the plugin sent (the one the client got).
    pub fn local_response(&self) -> Option<LocalResponse> {
        self.read(|_, s| s.local_responses.first().cloned())
    }

    /// Every local response the plugin sent (a second one is ignored by
    /// Envoy).
    pub fn local_responses(&self) -> Vec<LocalResponse> {
        self.read(|_, s| s.local_responses.clone())
    }

    /// What `proxy_get_property` answers for this stream now.
    pub fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let path: Vec<String> = path.iter().map(|p| (*p).to_owned()).collect();
        self.read(|h, s| h.property_with(Some(s), &path))
    }

    /// The callouts this stream dispatched.
    pub fn callouts(&self) -> Vec<Callout> {
        let id = self.id;
        self.host
            .callouts()
            .into_iter()
            .filter(|c| c.context_id == id)
            .collect()
    }

    /// Higress: the upstream host the plugin chose with
    /// `proxy_set_upstream_override_host`, if any.
    pub fn upstream_override_host(&self) -> Option<String> {
        self.read(|_, s| s.override_host.clone())
    }

    /// Higress: the data the plugin injected with
    /// `proxy_inject_encoded_data_to_filter_chain`, with its end-of-stream
    /// flag, in order.
    pub fn injected_encoded_data(&self) -> Vec<(Vec<u8>, bool)> {
        self.read(|_, s| s.injected.clone())
    }

    /// Whether the plugin reset the stream (`proxy_close_stream`).
    pub fn is_reset(&self) -> bool {
        self.read(|_, s| s.reset)
    }

    /// Whether [`done`](HttpStream::done) ran.
    pub fn is_done(&self) -> bool {
        self.read(|_, s| s.done)
    }
}

impl Drop for HttpStream<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let pending = self.read(|_, s| s.created && !s.done);
        if pending {
            let _ = self.done();
        }
    }
}
