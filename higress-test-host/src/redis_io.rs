//! Redis calls routed to a real server
//! ([`TestHostBuilder::redis_server`](super::TestHostBuilder::redis_server)),
//! as Higress's Envoy makes them: one client per cluster, configured by the
//! last `proxy_redis_init`, one TCP connection kept open between calls.
//!
//! - A new connection first sends `AUTH [user] password` (when a password
//!   or user is set) and `SELECT db` (when the init service carried
//!   `?db=`), without waiting for their replies, exactly like Envoy's
//!   `RawClientImpl::initialize`; their replies are read and discarded, so
//!   a wrong password shows up as the server's `NOAUTH` answer to the
//!   command itself, as in Envoy.
//! - `proxy_redis_init` drops the connection (Envoy closes the client's
//!   connections and replaces its auth and database).
//! - Every read and write is bounded by the init timeout (wall clock), the
//!   client's op timeout: when it expires, or the connection is refused or
//!   closed, the call fails (`NetworkError`, status 1) and the connection
//!   is dropped, as Envoy's client does.
//! - Replies are framed by [`super::resp_frame`], never by the SDK's decoder.

use super::resp_frame::frame_len;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Envoy's default op timeout when a call is made without init.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);

/// The host's Redis client of one cluster.
#[derive(Debug)]
pub(super) struct RedisClientModel {
    username: String,
    password: String,
    /// `db` from the init service's query string.
    db: Option<String>,
    pub(super) timeout: Duration,
    conn: Option<Conn>,
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// Bytes read past the last framed reply.
    buf: Vec<u8>,
}

impl Default for RedisClientModel {
    fn default() -> Self {
        RedisClientModel {
            username: String::new(),
            password: String::new(),
            db: None,
            timeout: DEFAULT_TIMEOUT,
            conn: None,
        }
    }
}

/// Why a routed call failed (delivered as `NetworkError`).
#[derive(Debug)]
pub(super) struct IoFailure(pub(super) String);

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl RedisClientModel {
    /// A client configured by `proxy_redis_init`.
    pub(super) fn new(
        username: String,
        password: String,
        db: Option<String>,
        timeout_ms: u32,
    ) -> Self {
        let timeout = if timeout_ms == 0 {
            DEFAULT_TIMEOUT
        } else {
            Duration::from_millis(u64::from(timeout_ms))
        };
        RedisClientModel {
            username,
            password,
            db,
            timeout,
            conn: None,
        }
    }

    /// Sends `query` (one RESP command, as the plugin encoded it) to `addr`
    /// and returns the raw bytes of its reply.
    pub(super) fn call(&mut self, addr: SocketAddr, query: &[u8]) -> Result<Vec<u8>, IoFailure> {
        let result = self.try_call(addr, query);
        if result.is_err() {
            // Envoy closes a connection whose request failed or timed out.
            self.conn = None;
        }
        result
    }

    fn try_call(&mut self, addr: SocketAddr, query: &[u8]) -> Result<Vec<u8>, IoFailure> {
        let deadline = Instant::now() + self.timeout;
        let mut discard = 0usize;
        let mut out = Vec::new();
        if self.conn.as_ref().is_some_and(|c| !c.is_open()) {
            // Envoy's event loop sees the close at once and reconnects on
            // the next request.
            self.conn = None;
        }
        if self.conn.is_none() {
            let stream = TcpStream::connect_timeout(&addr, self.timeout)
                .map_err(|e| IoFailure(format!("connect to {addr}: {e}")))?;
            let _ = stream.set_nodelay(true);
            if !self.username.is_empty() {
                out.extend(encode(&[
                    b"AUTH",
                    self.username.as_bytes(),
                    self.password.as_bytes(),
                ]));
                discard += 1;
            } else if !self.password.is_empty() {
                out.extend(encode(&[b"AUTH", self.password.as_bytes()]));
                discard += 1;
            }
            if let Some(db) = &self.db {
                out.extend(encode(&[b"SELECT", db.as_bytes()]));
                discard += 1;
            }
            self.conn = Some(Conn {
                stream,
                buf: Vec::new(),
            });
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(IoFailure("no connection".to_owned()));
        };
        out.extend_from_slice(query);
        conn.stream
            .set_write_timeout(Some(remaining(deadline)?))
            .map_err(|e| IoFailure(format!("set write timeout: {e}")))?;
        conn.stream
            .write_all(&out)
            .map_err(|e| IoFailure(format!("write: {e}")))?;
        for _ in 0..discard {
            conn.read_reply(deadline)?;
        }
        conn.read_reply(deadline)
    }
}

fn remaining(deadline: Instant) -> Result<Duration, IoFailure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(IoFailure("timed out".to_owned()))
    } else {
        Ok(left)
    }
}

impl Conn {
    /// Whether the server has not closed the connection (a peek that
    /// finds end of stream or an error means it has).
    fn is_open(&self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let open = match self.stream.peek(&mut byte) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => e.kind() == ErrorKind::WouldBlock,
        };
        self.stream.set_nonblocking(false).is_ok() && open
    }

    /// Reads until one whole reply is buffered and returns it.
    fn read_reply(&mut self, deadline: Instant) -> Result<Vec<u8>, IoFailure> {
        loop {
            match frame_len(&self.buf) {
                Ok(Some(n)) => {
                    let rest = self.buf.split_off(n);
                    return Ok(std::mem::replace(&mut self.buf, rest));
                }
                Ok(None) => {}
                Err(e) => return Err(IoFailure(e.to_string())),
            }
            self.stream
                .set_read_timeout(Some(remaining(deadline)?))
                .map_err(|e| IoFailure(format!("set read timeout: {e}")))?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(IoFailure("connection closed by the server".to_owned())),
                Ok(n) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(IoFailure("timed out".to_owned()))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(IoFailure(format!("read: {e}"))),
            }
        }
    }
}
