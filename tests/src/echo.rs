//! A recording HTTP/1.1 echo server to stand behind Envoy.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::http::{self, Headers};

/// Request header that selects how [`EchoUpstream`] answers. Its value is a
/// comma-separated list of directives:
///
/// * `slow:<ms>` — wait that long before answering;
/// * `status:<code>` — answer with that status instead of 200;
/// * `body-size:<n>` — answer with `n` bytes of `x` instead of the JSON echo;
/// * `chunked` — send the response body with chunked transfer encoding;
/// * `type:<mime>` — answer with that `content-type`;
/// * `pace:<ms>` — with `chunked`, write each 16 KiB chunk separately, that
///   long apart (so Envoy sees the body in several data callbacks);
/// * `header:<name>=<value>` — add a response header (no commas in it);
/// * `close` — close the connection after the response.
///
/// An unknown directive gets a 400 whose body names it.
pub const ECHO_MODE_HEADER: &str = "x-echo-mode";

/// One request as the upstream received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Request target as sent (path and query).
    pub path: String,
    /// Headers in wire order; values are the raw bytes received.
    pub headers: Headers,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive), raw bytes.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        http::find(&self.headers, name)
    }

    /// The first value of header `name`, lossily decoded as UTF-8.
    pub fn header_str(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Every value of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    arrived: Condvar,
    stop: AtomicBool,
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A real HTTP/1.1 server on `127.0.0.1:<ephemeral>` that records every request
/// and answers with a JSON echo of it:
/// `{"method", "path", "headers": {name: value}, "body_length"}` (values
/// lossily decoded, repeated headers joined with `, `).
///
/// One thread per connection, keep-alive, `Content-Length` and chunked
/// request bodies. See [`ECHO_MODE_HEADER`] for per-request behaviours.
/// Stops (and closes every connection) on drop.
#[derive(Debug)]
pub struct EchoUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl EchoUpstream {
    /// Binds `127.0.0.1:0` and starts serving.
    pub fn start() -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| Error::io("binding the echo upstream", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the echo upstream address", e))?;
        let shared = Arc::new(Shared::default());
        let acceptor_shared = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("echo-accept-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &acceptor_shared))
            .map_err(|e| Error::io("spawning the echo accept thread", e))?;
        Ok(Self {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The most recent request, if any.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).last().cloned()
    }

    /// Forgets the requests recorded so far.
    pub fn clear(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Waits until at least `count` requests have been recorded; returns
    /// them, or `None` on timeout.
    pub fn wait_for_requests(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Option<Vec<RecordedRequest>> {
        let deadline = Instant::now() + timeout;
        let mut requests = lock(&self.shared.requests);
        while requests.len() < count {
            let left = deadline.checked_duration_since(Instant::now())?;
            requests = self
                .shared
                .arrived
                .wait_timeout(requests, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Some(requests.clone())
    }

    /// Stops accepting and closes every open connection.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for (_, conn) in lock(&self.shared.connections).drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.connections).insert(id, clone);
        }
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("echo-conn-{id}"))
            .spawn(move || {
                let _ = serve_connection(&stream, &conn_shared);
                let _ = stream.shutdown(Shutdown::Both);
                lock(&conn_shared.connections).remove(&id);
            });
        if spawned.is_err() {
            lock(&shared.connections).remove(&id);
        }
    }
}

/// Per-request behaviour parsed from [`ECHO_MODE_HEADER`].
#[derive(Debug, Default)]
struct Mode {
    delay: Option<Duration>,
    status: Option<u16>,
    body_size: Option<usize>,
    chunked: bool,
    pace: Option<Duration>,
    content_type: Option<String>,
    close: bool,
    extra_headers: Vec<(String, String)>,
}

fn parse_mode(value: &[u8]) -> std::result::Result<Mode, String> {
    let mut mode = Mode::default();
    for directive in String::from_utf8_lossy(value).split(',') {
        let directive = directive.trim();
        if directive.is_empty() {
            continue;
        }
        let (key, arg) = directive.split_once(':').unwrap_or((directive, ""));
        let number = |what: &str| {
            arg.trim()
                .parse::<u64>()
                .map_err(|_| format!("{ECHO_MODE_HEADER}: bad {what} in {directive:?}"))
        };
        match key.trim() {
            "slow" => mode.delay = Some(Duration::from_millis(number("milliseconds")?)),
            "status" => {
                let code = number("status")?;
                mode.status = Some(
                    u16::try_from(code)
                        .ok()
                        .filter(|c| (100..1000).contains(c))
                        .ok_or_else(|| {
                            format!("{ECHO_MODE_HEADER}: bad status in {directive:?}")
                        })?,
                );
            }
            "body-size" => {
                mode.body_size = Some(
                    usize::try_from(number("size")?)
                        .map_err(|_| format!("{ECHO_MODE_HEADER}: size too large"))?,
                );
            }
            "chunked" => mode.chunked = true,
            "type" => mode.content_type = Some(arg.trim().to_owned()),
            "pace" => mode.pace = Some(Duration::from_millis(number("milliseconds")?)),
            "close" => mode.close = true,
            "header" => {
                let (name, value) = arg.split_once('=').ok_or_else(|| {
                    format!("{ECHO_MODE_HEADER}: expected header:<name>=<value>, got {directive:?}")
                })?;
                mode.extra_headers
                    .push((name.trim().to_owned(), value.trim().to_owned()));
            }
            other => return Err(format!("{ECHO_MODE_HEADER}: unknown directive {other:?}")),
        }
    }
    Ok(mode)
}

fn echo_json(request: &RecordedRequest) -> Vec<u8> {
    let mut headers = serde_json::Map::new();
    for (name, value) in &request.headers {
        let value = String::from_utf8_lossy(value).into_owned();
        let key = name.to_ascii_lowercase();
        let joined = match headers.get(&key).and_then(|v| v.as_str()) {
            Some(previous) => format!("{previous}, {value}"),
            None => value,
        };
        headers.insert(key, serde_json::Value::String(joined));
    }
    let echo = serde_json::json!({
        "method": request.method,
        "path": request.path,
        "headers": headers,
        "body_length": request.body.len(),
    });
    echo.to_string().into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn serve_connection(stream: &TcpStream, shared: &Shared) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    let mut writer = stream;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(head) = http::read_head(&mut reader)? else {
            return Ok(());
        };
        let mut parts = head.start_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let version = parts.next().unwrap_or("HTTP/1.1").to_owned();

        let expects_continue = http::find(&head.headers, "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        if expects_continue {
            writer
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|e| Error::io("writing 100 Continue", e))?;
        }
        let body = http::read_request_body(&mut reader, &head.headers)?;
        let connection = http::find(&head.headers, "connection")
            .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase())
            .unwrap_or_default();
        let keep_alive = if version == "HTTP/1.0" {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        };
        let mode = parse_mode(http::find(&head.headers, ECHO_MODE_HEADER).unwrap_or_default());

        let is_head = method.eq_ignore_ascii_case("HEAD");
        let request = RecordedRequest {
            method,
            path,
            headers: head.headers,
            body,
        };
        let echo = echo_json(&request);
        {
            let mut requests = lock(&shared.requests);
            requests.push(request);
            shared.arrived.notify_all();
        }

        let (mode, status, content_type, body) = match mode {
            Ok(mode) => {
                let status = mode.status.unwrap_or(200);
                match mode.body_size {
                    Some(size) => (mode, status, "application/octet-stream", vec![b'x'; size]),
                    None => (mode, status, "application/json", echo),
                }
            }
            Err(message) => (Mode::default(), 400, "text/plain", message.into_bytes()),
        };
        if let Some(delay) = mode.delay {
            std::thread::sleep(delay);
        }
        let close = mode.close || !keep_alive;
        let content_type = mode.content_type.as_deref().unwrap_or(content_type);

        let mut out = Vec::with_capacity(body.len() + 256);
        out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
        out.extend_from_slice(format!("content-type: {content_type}\r\n").as_bytes());
        for (name, value) in &mode.extra_headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        if mode.chunked {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            for chunk in body.chunks(16 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
                if let Some(pace) = mode.pace {
                    writer
                        .write_all(&std::mem::take(&mut out))
                        .and_then(|()| writer.flush())
                        .map_err(|e| Error::io("writing a paced chunk", e))?;
                    std::thread::sleep(pace);
                }
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else if status == 204 || status == 304 {
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
            if !is_head {
                out.extend_from_slice(&body);
            }
        }
        writer
            .write_all(&out)
            .map_err(|e| Error::io("writing the echo response", e))?;
        if close {
            return Ok(());
        }
    }
}
