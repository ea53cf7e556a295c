//! [`HttpStream`]: one request/response through the plugin, driven by the
//! test (the client and the upstream). Same methods as the native host's.

use crate::host::TestHost;
use crate::state::{Dir, HeaderMap, StreamState};
use crate::streams;
use crate::types::{Action, Callout, HeaderValue, LocalResponse, StreamError};
use std::fmt;

/// One HTTP stream through the plugin.
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

impl<'h> HttpStream<'h> {
    pub(crate) fn new(host: &'h TestHost, id: u32) -> Self {
        HttpStream { host, id }
    }

    fn read<R: Default>(&self, f: impl FnOnce(&StreamState) -> R) -> R {
        self.host
            .read(|h| h.streams.get(&self.id).map(f))
            .unwrap_or_default()
    }

    fn write(&mut self, f: impl FnOnce(&mut StreamState)) {
        self.host.write(|vm| {
            if let Some(s) = vm.data_mut().streams.get_mut(&self.id) {
                f(s);
            }
        });
    }

    /// The HTTP context id.
    pub fn context_id(&self) -> u32 {
        self.id
    }

    // ----- inputs -------------------------------------------------------------------------

    /// Sets `:authority` on the request headers sent next.
    pub fn set_authority(&mut self, authority: &str) -> &mut Self {
        let a = authority.to_owned();
        self.write(|s| s.authority = Some(a));
        self
    }

    /// Sets `x-request-id` on the request headers sent next.
    pub fn set_request_id(&mut self, request_id: &str) -> &mut Self {
        let r = request_id.to_owned();
        self.write(|s| s.request_id = Some(r));
        self
    }

    /// The route name (`xds.route_name`, and `route_name` on Higress).
    pub fn set_route_name(&mut self, route_name: &str) -> &mut Self {
        let r = route_name.to_owned();
        self.write(|s| s.route_name = Some(r));
        self
    }

    /// The cluster name (`xds.cluster_name`, and `cluster_name` on Higress).
    pub fn set_cluster_name(&mut self, cluster_name: &str) -> &mut Self {
        let c = cluster_name.to_owned();
        self.write(|s| s.cluster_name = Some(c));
        self
    }

    /// Sets a property of this stream.
    pub fn set_property(&mut self, path: &[&str], value: impl AsRef<[u8]>) -> &mut Self {
        let path = path.join("\0").into_bytes();
        let value = value.as_ref().to_vec();
        self.write(|s| {
            s.properties.insert(path, value);
        });
        self
    }

    // ----- driving ------------------------------------------------------------------------

    /// The client sends the request headers.
    pub fn send_request_headers<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        headers: &[(N, V)],
        end_of_stream: bool,
    ) -> Result<Action, StreamError> {
        let mut map = HeaderMap::from_pairs(headers);
        let (done, started, authority, request_id) = self.read(|s| {
            (
                s.done,
                s.req.started,
                s.authority.clone(),
                s.request_id.clone(),
            )
        });
        if done {
            return Err(StreamError::Done);
        }
        if started {
            return Err(StreamError::AlreadySent("request headers"));
        }
        if let Some(a) = authority {
            map.set(":authority", a.as_bytes());
        }
        if let Some(r) = request_id {
            map.set("x-request-id", r.as_bytes());
        }
        let id = self.id;
        Ok(self
            .host
            .write(|vm| streams::deliver_headers(vm, id, Dir::Request, map, end_of_stream)))
    }

    /// The client sends a chunk of the request body.
    pub fn send_request_body(
        &mut self,
        data: impl AsRef<[u8]>,
        end_of_stream: bool,
    ) -> Result<Action, StreamError> {
        if let Some(a) = self.check(Dir::Request, "request body")? {
            return Ok(a);
        }
        let (id, data) = (self.id, data.as_ref().to_vec());
        Ok(self
            .host
            .write(|vm| streams::deliver_body(vm, id, Dir::Request, data, end_of_stream)))
    }

    /// The client sends the request trailers.
    pub fn send_request_trailers<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        trailers: &[(N, V)],
    ) -> Result<Action, StreamError> {
        if let Some(a) = self.check(Dir::Request, "request trailers")? {
            return Ok(a);
        }
        let (id, map) = (self.id, HeaderMap::from_pairs(trailers));
        Ok(self
            .host
            .write(|vm| streams::deliver_trailers(vm, id, Dir::Request, map)))
    }

    /// The upstream sends the response headers.
    pub fn send_response_headers<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        headers: &[(N, V)],
        end_of_stream: bool,
    ) -> Result<Action, StreamError> {
        let (done, open, started, reached) = self.read(|s| {
            (
                s.done,
                !s.reset && !s.failed && !s.local_reply,
                s.resp.started,
                s.req.headers_sent.is_some(),
            )
        });
        if done {
            return Err(StreamError::Done);
        }
        if !open {
            return Ok(Action::Ended);
        }
        if started {
            return Err(StreamError::AlreadySent("response headers"));
        }
        if !reached {
            return Err(StreamError::UpstreamNotReached);
        }
        let (id, map) = (self.id, HeaderMap::from_pairs(headers));
        Ok(self
            .host
            .write(|vm| streams::deliver_headers(vm, id, Dir::Response, map, end_of_stream)))
    }

    /// The upstream sends a chunk of the response body.
    pub fn send_response_body(
        &mut self,
        data: impl AsRef<[u8]>,
        end_of_stream: bool,
    ) -> Result<Action, StreamError> {
        if let Some(a) = self.check(Dir::Response, "response body")? {
            return Ok(a);
        }
        let (id, data) = (self.id, data.as_ref().to_vec());
        Ok(self
            .host
            .write(|vm| streams::deliver_body(vm, id, Dir::Response, data, end_of_stream)))
    }

    /// The upstream sends the response trailers.
    pub fn send_response_trailers<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        trailers: &[(N, V)],
    ) -> Result<Action, StreamError> {
        if let Some(a) = self.check(Dir::Response, "response trailers")? {
            return Ok(a);
        }
        let (id, map) = (self.id, HeaderMap::from_pairs(trailers));
        Ok(self
            .host
            .write(|vm| streams::deliver_trailers(vm, id, Dir::Response, map)))
    }

    fn check(&self, dir: Dir, what: &'static str) -> Result<Option<Action>, StreamError> {
        let (done, open, started, eos) = self.read(|s| {
            let half = match dir {
                Dir::Request => &s.req,
                Dir::Response => &s.resp,
            };
            let open = match dir {
                Dir::Request => s.request_open() || s.bypass,
                Dir::Response => !s.reset && !s.failed,
            };
            (s.done, open, half.started, half.eos_in)
        });
        if done {
            return Err(StreamError::Done);
        }
        if !open {
            return Ok(Some(Action::Ended));
        }
        if !started || eos {
            return Err(StreamError::OutOfOrder(what));
        }
        Ok(None)
    }

    /// The stream ends: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    pub fn done(&mut self) -> Result<(), StreamError> {
        if self.read(|s| s.done) {
            return Err(StreamError::Done);
        }
        let id = self.id;
        self.host.write(|vm| streams::done(vm, id));
        Ok(())
    }

    // ----- the request --------------------------------------------------------------------

    /// The request headers at the filter.
    pub fn request_headers(&self) -> Vec<(String, HeaderValue)> {
        self.read(|s| s.req.headers.to_public())
    }

    /// The first value of a request header at the filter.
    pub fn request_header(&self, name: &str) -> Option<HeaderValue> {
        self.read(|s| s.req.headers.get(name).map(HeaderValue::from))
    }

    /// Every value of a request header at the filter.
    pub fn request_header_values(&self, name: &str) -> Vec<HeaderValue> {
        self.read(|s| s.req.headers.get_all(name))
    }

    /// The request headers the upstream received.
    pub fn upstream_request_headers(&self) -> Option<Vec<(String, HeaderValue)>> {
        self.read(|s| s.req.headers_sent.as_ref().map(HeaderMap::to_public))
    }

    /// One request header as the upstream received it.
    pub fn upstream_request_header(&self, name: &str) -> Option<HeaderValue> {
        self.read(|s| {
            s.req
                .headers_sent
                .as_ref()
                .and_then(|m| m.get(name))
                .map(HeaderValue::from)
        })
    }

    /// The request body the upstream received so far.
    pub fn upstream_request_body(&self) -> Vec<u8> {
        self.read(|s| s.req.sent_body.clone())
    }

    /// The request trailers the upstream received.
    pub fn upstream_request_trailers(&self) -> Option<Vec<(String, HeaderValue)>> {
        self.read(|s| s.req.trailers_sent.as_ref().map(HeaderMap::to_public))
    }

    /// Whether the whole request reached the upstream.
    pub fn upstream_request_complete(&self) -> bool {
        self.read(|s| s.req.sent_eos)
    }

    /// The request body held at the filter now (buffered while paused).
    pub fn buffered_request_body(&self) -> Vec<u8> {
        self.read(|s| s.req.buffered())
    }

    /// The upstream host the plugin forced (Higress
    /// `proxy_set_upstream_override_host`).
    pub fn upstream_override_host(&self) -> Option<String> {
        self.read(|s| s.upstream_override.clone())
    }

    /// Whether the request is stopped at the filter.
    pub fn is_request_paused(&self) -> bool {
        self.read(|s| s.request_open() && s.req.paused())
    }

    /// Whether either direction is stopped at the filter.
    pub fn is_paused(&self) -> bool {
        self.is_request_paused() || self.is_response_paused()
    }

    /// How many times the plugin resumed the request.
    pub fn request_resume_count(&self) -> u32 {
        self.read(|s| s.req.resumes)
    }

    /// How many times the plugin resumed this stream, both directions.
    pub fn resume_count(&self) -> u32 {
        self.read(|s| s.req.resumes + s.resp.resumes)
    }

    /// How many request-body callbacks the plugin received.
    pub fn request_body_callbacks(&self) -> u32 {
        self.read(|s| s.req.body_calls)
    }

    // ----- the response -------------------------------------------------------------------

    /// The response headers at the filter.
    pub fn response_headers(&self) -> Vec<(String, HeaderValue)> {
        self.read(|s| s.resp.headers.to_public())
    }

    /// One response header at the filter.
    pub fn response_header(&self, name: &str) -> Option<HeaderValue> {
        self.read(|s| s.resp.headers.get(name).map(HeaderValue::from))
    }

    /// The response headers the client received.
    pub fn client_response_headers(&self) -> Option<Vec<(String, HeaderValue)>> {
        self.read(|s| s.resp.headers_sent.as_ref().map(HeaderMap::to_public))
    }

    /// One response header as the client received it.
    pub fn client_response_header(&self, name: &str) -> Option<HeaderValue> {
        self.read(|s| {
            s.resp
                .headers_sent
                .as_ref()
                .and_then(|m| m.get(name))
                .map(HeaderValue::from)
        })
    }

    /// The `:status` the client received.
    pub fn client_response_status(&self) -> Option<u32> {
        self.read(|s| {
            let status = s.resp.headers_sent.as_ref()?.get(":status")?;
            std::str::from_utf8(status).ok()?.parse().ok()
        })
    }

    /// The response body the client received so far.
    pub fn client_response_body(&self) -> Vec<u8> {
        self.read(|s| s.resp.sent_body.clone())
    }

    /// The response trailers the client received.
    pub fn client_response_trailers(&self) -> Option<Vec<(String, HeaderValue)>> {
        self.read(|s| s.resp.trailers_sent.as_ref().map(HeaderMap::to_public))
    }

    /// Whether the whole response reached the client.
    pub fn client_response_complete(&self) -> bool {
        self.read(|s| s.resp.sent_eos)
    }

    /// The response body held at the filter now.
    pub fn buffered_response_body(&self) -> Vec<u8> {
        self.read(|s| s.resp.buffered())
    }

    /// How many times the plugin resumed the response.
    pub fn response_resume_count(&self) -> u32 {
        self.read(|s| s.resp.resumes)
    }

    /// Whether the response is stopped at the filter.
    pub fn is_response_paused(&self) -> bool {
        self.read(|s| !s.reset && !s.failed && s.resp.paused())
    }

    /// How many response-body callbacks the plugin received.
    pub fn response_body_callbacks(&self) -> u32 {
        self.read(|s| s.resp.body_calls)
    }

    /// Data the plugin injected into the response
    /// (`proxy_inject_encoded_data_to_filter_chain`): (data, end of stream).
    pub fn injected_encoded_data(&self) -> Vec<(Vec<u8>, bool)> {
        self.read(|s| s.injected.clone())
    }

    // ----- the rest -----------------------------------------------------------------------

    /// The first local response the plugin sent, or the host's
    /// `wasm_fail_stream` 503.
    pub fn local_response(&self) -> Option<LocalResponse> {
        self.read(|s| s.local_responses.first().cloned())
            .or_else(|| self.fail_response())
    }

    fn fail_response(&self) -> Option<LocalResponse> {
        self.read(|s| {
            (s.failed && s.response_code == Some(503)).then(|| LocalResponse {
                status: 503,
                details: "wasm_fail_stream".to_owned(),
                headers: Vec::new(),
                body: Vec::new(),
                grpc_status: None,
            })
        })
    }

    /// Every local response the plugin sent.
    pub fn local_responses(&self) -> Vec<LocalResponse> {
        self.read(|s| s.local_responses.clone())
    }

    /// What `proxy_get_property` answers for this stream now.
    pub fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let path: Vec<String> = path.iter().map(|p| (*p).to_owned()).collect();
        self.host
            .read(|h| h.property(h.streams.get(&self.id), &path))
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

    /// Whether the plugin reset the stream.
    pub fn is_reset(&self) -> bool {
        self.read(|s| s.reset)
    }

    /// Whether the VM failure ended this stream (fail closed / reload).
    pub fn is_failed(&self) -> bool {
        self.read(|s| s.failed)
    }

    /// Whether [`done`](HttpStream::done) ran.
    pub fn is_done(&self) -> bool {
        self.read(|s| s.done)
    }

    /// Fuel of every callback that served this stream so far.
    pub fn fuel(&self) -> u64 {
        self.host.fuel_of_stream(self.id)
    }
}

impl Drop for HttpStream<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if self.read(|s| !s.done) {
            let _ = self.done();
        }
    }
}
