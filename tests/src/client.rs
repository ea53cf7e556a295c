//! A deliberately raw HTTP/1.1 client: it sends header bytes exactly as given
//! (0x80-0xFF included), which curl and most libraries would refuse or mangle.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::http::{self, Headers};

/// Read/write timeout of [`http_request`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in wire order, values as raw bytes.
    pub headers: Headers,
    /// The de-chunked body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        http::find(&self.headers, name)
    }

    /// The first value of header `name`, lossily decoded as UTF-8.
    pub fn header_str(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The body, lossily decoded as UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Protocol(format!("response body is not JSON ({e}): {}", self.text()))
        })
    }
}

/// Sends one request on a fresh connection and reads the response, with
/// [`DEFAULT_TIMEOUT`] on connect, reads and writes.
///
/// `headers` are written in order, byte for byte. Unless given there, the
/// client adds `host: <addr>`, `connection: close`, and `content-length`
/// (when there is a body or the method usually has one). A caller that sets
/// `transfer-encoding` must pass `body` already framed.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<Response> {
    http_request_timeout(addr, method, path, headers, body, DEFAULT_TIMEOUT)
}

/// [`http_request`] with an explicit timeout for connect, each read and each
/// write.
pub fn http_request_timeout(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
    timeout: Duration,
) -> Result<Response> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut wire = Vec::with_capacity(256 + body.len());
    wire.extend_from_slice(format!("{method} {path} HTTP/1.1\r\n").as_bytes());
    if !has("host") {
        wire.extend_from_slice(format!("host: {addr}\r\n").as_bytes());
    }
    for (name, value) in headers {
        wire.extend_from_slice(name.as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value);
        wire.extend_from_slice(b"\r\n");
    }
    if !has("connection") {
        wire.extend_from_slice(b"connection: close\r\n");
    }
    let method_has_body = matches!(
        method.to_ascii_uppercase().as_str(),
        "POST" | "PUT" | "PATCH"
    );
    if !has("content-length") && !has("transfer-encoding") && (!body.is_empty() || method_has_body)
    {
        wire.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    wire.extend_from_slice(body);

    let stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| Error::io(format!("connecting to {addr}"), e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| Error::io("setting socket timeouts", e))?;
    let _ = stream.set_nodelay(true);
    (&stream)
        .write_all(&wire)
        .map_err(|e| Error::io(format!("sending {method} {path} to {addr}"), e))?;

    let mut reader = BufReader::new(&stream);
    loop {
        let head = http::read_head(&mut reader)?.ok_or_else(|| {
            Error::Protocol(format!(
                "{addr} closed the connection without a response to {method} {path}"
            ))
        })?;
        let status = parse_status(&head.start_line)?;
        if (100..200).contains(&status) && status != 101 {
            // Interim response (100 Continue and friends): the real one follows.
            continue;
        }
        let body = http::read_response_body(&mut reader, &head.headers, method, status)?;
        return Ok(Response {
            status,
            headers: head.headers,
            body,
        });
    }
}

fn parse_status(line: &str) -> Result<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") {
        return Err(Error::Protocol(format!("bad status line {line:?}")));
    }
    parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| Error::Protocol(format!("bad status line {line:?}")))
}
