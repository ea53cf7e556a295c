//! Callout replies: HTTP, gRPC and Redis, answered by the test or by real
//! loopback servers, delivered on the root context as Envoy does (never
//! from inside the host call that made them), with the reply readable only
//! during the callback.

use crate::host::TestHost;
use crate::state::{CallReply, HeaderMap};
use crate::streams;
use crate::types::{CalloutKind, CalloutState, DeliveryError};
use crate::vm::Vm;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

enum Answer {
    Http(Option<CallReply>),
    Redis(Option<Vec<u8>>),
    /// A unary call's end: status 0 with the message, or a status and its
    /// message.
    Grpc(u32, Vec<u8>, String),
    /// One message on a stream (it stays open).
    GrpcMessage(Vec<u8>),
    /// A stream's end: status and message.
    GrpcClose(u32, String),
}

impl Answer {
    fn fits(&self, kind: &CalloutKind) -> bool {
        matches!(
            (kind, self),
            (CalloutKind::Http { .. }, Answer::Http(_))
                | (CalloutKind::Redis { .. }, Answer::Redis(_))
                | (CalloutKind::Grpc { .. }, Answer::Grpc(..))
                | (
                    CalloutKind::GrpcStream { .. },
                    Answer::GrpcMessage(_) | Answer::GrpcClose(..)
                )
        )
    }
}

fn deliver(vm: &mut Vm, token: u32, answer: Answer) -> Result<(), DeliveryError> {
    let context = {
        let h = vm.data();
        let c = h
            .callouts
            .iter()
            .find(|c| c.token == token)
            .ok_or(DeliveryError::UnknownToken(token))?;
        if c.state != CalloutState::Pending {
            return Err(DeliveryError::NotPending(token));
        }
        if !answer.fits(&c.kind) {
            return Err(DeliveryError::WrongKind(token));
        }
        c.context_id
    };
    if !matches!(answer, Answer::GrpcMessage(_)) {
        if let Some(c) = vm.data_mut().callouts.iter_mut().find(|c| c.token == token) {
            c.state = CalloutState::Delivered;
        }
    }
    if vm.data().vm_failed {
        return Ok(());
    }
    let root = vm.data().root;
    let stream = vm.data().streams.contains_key(&context).then_some(context);
    match answer {
        Answer::Http(reply) => {
            let (nh, nb, nt) = reply.as_ref().map_or((0, 0, 0), |r| {
                (r.headers.len(), r.body.len(), r.trailers.len())
            });
            if reply.is_none() {
                // Envoy's onHttpCallFailure: BrokenConnection / "reset".
                vm.data_mut().status = (11, b"reset".to_vec());
            }
            vm.data_mut().call_reply = Some(reply.unwrap_or_default());
            let _ = vm.call(
                "proxy_on_http_call_response",
                Some(root),
                stream,
                &[root as i32, token as i32, nh as i32, nb as i32, nt as i32],
            );
            vm.data_mut().call_reply = None;
        }
        Answer::Redis(reply) => {
            let (status, size) = match &reply {
                Some(r) => (0, r.len()),
                None => (1, 0),
            };
            if reply.is_none() {
                vm.data_mut().status = (11, b"reset".to_vec());
            }
            vm.data_mut().redis_reply = reply;
            let _ = vm.call(
                "proxy_on_redis_call_response",
                Some(root),
                stream,
                &[root as i32, token as i32, status, size as i32],
            );
            vm.data_mut().redis_reply = None;
        }
        answer => grpc(vm, root, stream, token, answer),
    }
    // `proxy_get_status` answers for the reply's callbacks only.
    vm.data_mut().status = (0, Vec::new());
    streams::drain(vm);
    Ok(())
}

/// A gRPC reply as Envoy's handlers call the module: a unary call's
/// success is `proxy_on_grpc_receive` (message in buffer 5), its failure
/// `proxy_on_grpc_close` (the message via `proxy_get_status`); a stream's
/// first message comes after `proxy_on_grpc_receive_initial_metadata`, its
/// end is `proxy_on_grpc_receive_trailing_metadata` then
/// `proxy_on_grpc_close` (any status). Metadata maps 4 and 5 are empty.
fn grpc(vm: &mut Vm, root: u32, stream: Option<u32>, token: u32, answer: Answer) {
    let call = |vm: &mut Vm, name: &'static str, third: usize| {
        let args = [root as i32, token as i32, third as i32];
        let _ = vm.call(name, Some(root), stream, &args);
    };
    let reply = |body: Vec<u8>| {
        Some(CallReply {
            headers: HeaderMap::default(),
            body,
            trailers: HeaderMap::default(),
        })
    };
    match answer {
        Answer::Grpc(0, message, _) => {
            let size = message.len();
            vm.data_mut().grpc_reply = reply(message);
            call(vm, "proxy_on_grpc_receive", size);
        }
        Answer::Grpc(status, _, text) => {
            vm.data_mut().status = (status, text.into_bytes());
            call(vm, "proxy_on_grpc_close", status as usize);
        }
        Answer::GrpcMessage(message) => {
            vm.data_mut().grpc_reply = reply(Vec::new());
            if !vm.data().grpc_initial_sent.contains(&token) {
                vm.data_mut().grpc_initial_sent.push(token);
                call(vm, "proxy_on_grpc_receive_initial_metadata", 0);
            }
            let size = message.len();
            vm.data_mut().grpc_reply = reply(message);
            call(vm, "proxy_on_grpc_receive", size);
        }
        Answer::GrpcClose(status, text) => {
            vm.data_mut().grpc_reply = reply(Vec::new());
            vm.data_mut().grpc_initial_sent.retain(|t| *t != token);
            call(vm, "proxy_on_grpc_receive_trailing_metadata", 0);
            vm.data_mut().grpc_reply = None;
            vm.data_mut().status = (status, text.into_bytes());
            call(vm, "proxy_on_grpc_close", status as usize);
        }
        Answer::Http(_) | Answer::Redis(_) => {}
    }
    vm.data_mut().grpc_reply = None;
}

/// Times out, on the host clock, the callouts the test answers by hand
/// (those with a real server are answered by `run_until_idle`): an HTTP
/// call gets Envoy's local `504 upstream request timeout`, a Redis call
/// `NetworkError`.
pub(crate) fn expire(vm: &mut Vm) {
    loop {
        let due = {
            let h = vm.data();
            h.callouts
                .iter()
                .filter(|c| c.state == CalloutState::Pending)
                .filter(|c| h.deadlines.get(&c.token).is_some_and(|d| *d <= h.now_nanos))
                .find(|c| match &c.kind {
                    CalloutKind::Http { upstream, .. } => {
                        !h.settings.http_servers.contains_key(upstream)
                    }
                    CalloutKind::Redis { service, .. } => !h
                        .settings
                        .redis_servers
                        .contains_key(service.split('?').next().unwrap_or_default()),
                    // gRPC calls are answered by the test (no deadline).
                    CalloutKind::Grpc { .. } | CalloutKind::GrpcStream { .. } => false,
                })
                .map(|c| (c.token, matches!(c.kind, CalloutKind::Http { .. })))
        };
        let Some((token, http)) = due else { return };
        let answer = if http {
            let mut headers = HeaderMap::default();
            headers.add(":status", b"504");
            headers.add("content-length", b"24");
            headers.add("content-type", b"text/plain");
            Answer::Http(Some(CallReply {
                headers,
                body: b"upstream request timeout".to_vec(),
                trailers: HeaderMap::default(),
            }))
        } else {
            Answer::Redis(None)
        };
        let _ = deliver(vm, token, answer);
    }
}

impl TestHost {
    /// Answers HTTP callout `token` with `status`, `headers` and `body`
    /// (the native host's signature, so `&[]` works for no headers).
    pub fn respond_http(
        &self,
        token: u32,
        status: u16,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Result<(), DeliveryError> {
        let mut map = HeaderMap::default();
        map.add(":status", status.to_string().as_bytes());
        for (n, v) in headers {
            map.add(n, v.as_bytes());
        }
        let reply = CallReply {
            headers: map,
            body: body.as_ref().to_vec(),
            trailers: HeaderMap::default(),
        };
        self.write(|vm| deliver(vm, token, Answer::Http(Some(reply))))
    }

    /// Fails HTTP callout `token` (a reset: the callback gets no headers).
    pub fn fail_http(&self, token: u32) -> Result<(), DeliveryError> {
        self.write(|vm| deliver(vm, token, Answer::Http(None)))
    }

    /// Answers Redis callout `token` with raw RESP bytes (status Ok).
    pub fn respond_redis(&self, token: u32, resp: impl AsRef<[u8]>) -> Result<(), DeliveryError> {
        let reply = resp.as_ref().to_vec();
        self.write(|vm| deliver(vm, token, Answer::Redis(Some(reply))))
    }

    /// Fails Redis callout `token` (`NetworkError`, size 0).
    pub fn fail_redis(&self, token: u32) -> Result<(), DeliveryError> {
        self.write(|vm| deliver(vm, token, Answer::Redis(None)))
    }

    /// Answers gRPC call `token` with its response `message` (the
    /// serialized protobuf), as Envoy's `onGrpcReceive` for a unary call.
    pub fn respond_grpc(&self, token: u32, message: impl AsRef<[u8]>) -> Result<(), DeliveryError> {
        let answer = Answer::Grpc(0, message.as_ref().to_vec(), String::new());
        self.write(|vm| deliver(vm, token, answer))
    }

    /// Ends gRPC call `token` with a non-OK gRPC `status` (e.g. 14,
    /// UNAVAILABLE) and `message`, as Envoy's `onGrpcClose`; the plugin
    /// reads the message through `proxy_get_status`.
    pub fn fail_grpc(&self, token: u32, status: u32, message: &str) -> Result<(), DeliveryError> {
        let answer = Answer::Grpc(status, Vec::new(), message.to_owned());
        self.write(|vm| deliver(vm, token, answer))
    }

    /// Delivers one `message` on gRPC stream `token` (Envoy's
    /// `onGrpcReceive`, after `onGrpcReceiveInitialMetadata` for the first
    /// one); the stream stays open.
    pub fn grpc_stream_message(
        &self,
        token: u32,
        message: impl AsRef<[u8]>,
    ) -> Result<(), DeliveryError> {
        let answer = Answer::GrpcMessage(message.as_ref().to_vec());
        self.write(|vm| deliver(vm, token, answer))
    }

    /// Ends gRPC stream `token` from the server side with gRPC `status`
    /// (0: OK) and `message` (Envoy's `onGrpcReceiveTrailingMetadata`, then
    /// `onGrpcClose`).
    pub fn close_grpc_stream(
        &self,
        token: u32,
        status: u32,
        message: &str,
    ) -> Result<(), DeliveryError> {
        let answer = Answer::GrpcClose(status, message.to_owned());
        self.write(|vm| deliver(vm, token, answer))
    }

    /// Does the host's I/O: sends pending Redis calls and HTTP callouts
    /// whose cluster has a real server, and delivers their replies, again
    /// while the plugin makes new ones; delivers `proxy_on_queue_ready` for
    /// items other VMs enqueued. Returns how many callbacks it delivered.
    pub fn run_until_idle(&self) -> usize {
        let mut delivered = 0;
        loop {
            let next = self.read(|h| {
                h.callouts
                    .iter()
                    .find(|c| {
                        c.state == CalloutState::Pending
                            && match &c.kind {
                                CalloutKind::Redis { service, .. } => h
                                    .settings
                                    .redis_servers
                                    .contains_key(service.split('?').next().unwrap_or_default()),
                                CalloutKind::Http { upstream, .. } => {
                                    h.settings.http_servers.contains_key(upstream)
                                }
                                CalloutKind::Grpc { .. } | CalloutKind::GrpcStream { .. } => false,
                            }
                    })
                    .cloned()
            });
            let Some(call) = next else {
                // Queue readiness owed to this VM (another VM enqueued).
                let ready = self.write(streams::drain);
                if ready == 0 {
                    return delivered;
                }
                delivered += ready;
                continue;
            };
            let answer = match &call.kind {
                CalloutKind::Redis { service, query } => {
                    let cluster = service.split('?').next().unwrap_or_default().to_owned();
                    self.write(|vm| {
                        let h = vm.data_mut();
                        let Some(addr) = h.settings.redis_servers.get(&cluster).copied() else {
                            return Answer::Redis(None);
                        };
                        let init = h
                            .redis_inits
                            .iter()
                            .rev()
                            .find(|i| i.service.split('?').next() == Some(cluster.as_str()))
                            .cloned();
                        Answer::Redis(
                            h.redis_conns
                                .call(&cluster, addr, init.as_ref(), query)
                                .ok(),
                        )
                    })
                }
                CalloutKind::Http {
                    upstream,
                    headers,
                    body,
                    timeout,
                    ..
                } => {
                    let addr = self.read(|h| h.settings.http_servers.get(upstream).copied());
                    Answer::Http(addr.and_then(|a| http_request(a, headers, body, *timeout).ok()))
                }
                // Not selected above: gRPC is answered by the test.
                CalloutKind::Grpc { .. } | CalloutKind::GrpcStream { .. } => continue,
            };
            let _ = self.write(|vm| deliver(vm, call.token, answer));
            delivered += 1;
        }
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`),
/// the reply read to the end (content-length or close).
fn http_request(
    addr: SocketAddr,
    headers: &[(String, crate::types::HeaderValue)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<CallReply> {
    let timeout = if timeout.is_zero() {
        Duration::from_secs(5)
    } else {
        timeout
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    let mut req = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
        get(":method"),
        get(":path"),
        get(":authority"),
        body.len()
    )
    .into_bytes();
    for (k, v) in headers {
        if k.starts_with(':') || k == "content-length" || k == "connection" || k == "host" {
            continue;
        }
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    stream.write_all(&req)?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| std::io::Error::other("bad status line"))?
        .to_owned();
    let mut map = HeaderMap::default();
    map.add(":status", status.as_bytes());
    let mut length: Option<usize> = None;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse().ok();
            }
            map.add(&k, v.as_bytes());
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body)?;
        }
        None => {
            r.read_to_end(&mut body)?;
        }
    }
    Ok(CallReply {
        headers: map,
        body,
        trailers: HeaderMap::default(),
    })
}
