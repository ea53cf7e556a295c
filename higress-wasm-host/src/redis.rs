//! Higress's Redis host calls relayed to a real `redis-server` over TCP:
//! one connection per cluster, dropped by each `proxy_redis_init` (which
//! replaces the client's auth, db and timeout), opened lazily on the next
//! call with `AUTH` / `SELECT` first (their replies discarded, as Envoy's
//! `RawClientImpl::initialize`). Replies are raw RESP2 frames.

use crate::types::RedisInit;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The longest bulk string or array the reader accepts (Envoy's RESP
/// decoder has no smaller limit that a test would hit; this bounds memory).
const MAX_BULK: usize = 512 * 1024 * 1024;
const MAX_ARRAY: usize = 1 << 20;
const MAX_DEPTH: usize = 32;

/// Open connections, by cluster.
#[derive(Default)]
pub(crate) struct RedisConns(BTreeMap<String, BufReader<TcpStream>>);

impl RedisConns {
    /// Drops the connection of `cluster` (a new init).
    pub(crate) fn close(&mut self, cluster: &str) {
        self.0.remove(cluster);
    }

    /// Sends `query` to the server of `cluster` and reads one reply frame.
    /// A failure drops the connection; the caller answers `NetworkError`.
    pub(crate) fn call(
        &mut self,
        cluster: &str,
        addr: SocketAddr,
        init: Option<&RedisInit>,
        query: &[u8],
    ) -> std::io::Result<Vec<u8>> {
        let result = self.call_inner(cluster, addr, init, query);
        if result.is_err() {
            self.0.remove(cluster);
        }
        result
    }

    fn call_inner(
        &mut self,
        cluster: &str,
        addr: SocketAddr,
        init: Option<&RedisInit>,
        query: &[u8],
    ) -> std::io::Result<Vec<u8>> {
        if !self.0.contains_key(cluster) {
            let timeout = init
                .map(|i| i.timeout)
                .filter(|t| !t.is_zero())
                .unwrap_or(Duration::from_secs(1));
            let stream = TcpStream::connect_timeout(&addr, timeout)?;
            stream.set_read_timeout(Some(timeout))?;
            stream.set_write_timeout(Some(timeout))?;
            stream.set_nodelay(true)?;
            let mut conn = BufReader::new(stream);
            if let Some(init) = init {
                for command in setup_commands(init) {
                    conn.get_mut().write_all(&command)?;
                    let _ = read_frame(&mut conn)?;
                }
            }
            self.0.insert(cluster.to_owned(), conn);
        }
        let conn = self
            .0
            .get_mut(cluster)
            .ok_or_else(|| std::io::Error::other("no connection"))?;
        conn.get_mut().write_all(query)?;
        read_frame(conn)
    }
}

/// `AUTH [user] password` when a password is set, `SELECT db` when the
/// service string has `db=N`.
fn setup_commands(init: &RedisInit) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if !init.password.is_empty() {
        let mut args = vec!["AUTH"];
        if !init.username.is_empty() {
            args.push(&init.username);
        }
        args.push(&init.password);
        out.push(encode(&args));
    }
    if let Some((_, query)) = init.service.split_once('?') {
        for pair in query.split('&') {
            if let Some(("db", n)) = pair.split_once('=') {
                if n != "0" && !n.is_empty() {
                    out.push(encode(&["SELECT", n]));
                }
            }
        }
    }
    out
}

/// RESP2 array of bulk strings.
pub(crate) fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads one complete RESP2 frame, returned as its raw bytes.
pub(crate) fn read_frame(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    read_into(r, &mut out, 0)?;
    Ok(out)
}

fn read_line(r: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 || !line.ends_with(b"\r\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed mid-reply",
        ));
    }
    out.extend_from_slice(&line);
    line.truncate(line.len() - 2);
    Ok(line)
}

fn read_into(r: &mut impl BufRead, out: &mut Vec<u8>, depth: usize) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(bad("RESP nesting too deep"));
    }
    let line = read_line(r, out)?;
    let (kind, rest) = line.split_first().ok_or_else(|| bad("empty RESP line"))?;
    let number = || -> std::io::Result<i64> {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad RESP length"))
    };
    match kind {
        b'+' | b'-' | b':' => Ok(()),
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Ok(());
            }
            let len = usize::try_from(len).map_err(|_| bad("bad bulk length"))?;
            if len > MAX_BULK {
                return Err(bad("bulk string too long"));
            }
            let mut data = vec![0u8; len + 2];
            r.read_exact(&mut data)?;
            out.extend_from_slice(&data);
            Ok(())
        }
        b'*' => {
            let len = number()?;
            if len < 0 {
                return Ok(());
            }
            let len = usize::try_from(len).map_err(|_| bad("bad array length"))?;
            if len > MAX_ARRAY {
                return Err(bad("array too long"));
            }
            for _ in 0..len {
                read_into(r, out, depth + 1)?;
            }
            Ok(())
        }
        _ => Err(bad("unknown RESP type")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn reads_nested_frames_whole_and_one_at_a_time() {
        let wire = b"*2\r\n$5\r\nhello\r\n*1\r\n:7\r\n+OK\r\n";
        let mut r = std::io::Cursor::new(&wire[..]);
        assert_eq!(
            read_frame(&mut r).unwrap(),
            b"*2\r\n$5\r\nhello\r\n*1\r\n:7\r\n"
        );
        assert_eq!(read_frame(&mut r).unwrap(), b"+OK\r\n");
        assert!(read_frame(&mut r).is_err());
    }

    #[test]
    fn a_null_bulk_and_a_truncated_bulk() {
        let mut r = std::io::Cursor::new(&b"$-1\r\n"[..]);
        assert_eq!(read_frame(&mut r).unwrap(), b"$-1\r\n");
        let mut r = std::io::Cursor::new(&b"$5\r\nhel"[..]);
        assert!(read_frame(&mut r).is_err());
    }

    #[test]
    fn init_sends_auth_and_select() {
        let init = RedisInit {
            service: "outbound|6379||r?db=2&buffer_flush_timeout=3".into(),
            username: "u".into(),
            password: "p".into(),
            timeout: Duration::from_millis(5),
        };
        let cmds = setup_commands(&init);
        assert_eq!(cmds[0], encode(&["AUTH", "u", "p"]));
        assert_eq!(cmds[1], encode(&["SELECT", "2"]));
    }
}
