//! The test host's own RESP framer: it only finds where one complete reply
//! ends in the bytes read from a real `redis-server`, the way Envoy's codec
//! splits the stream before handing one reply to the plugin.
//!
//! It is deliberately independent of the SDK's decoder
//! (`higress_wrapper::redis::resp`): if both shared code, a bug in the
//! decoder could cancel itself out in the tests against a real server.
//! RESP3 types are framed too (a server only sends them after `HELLO 3`,
//! which the SDK refuses, but framing them costs nothing).

use std::fmt;

/// The bytes are not RESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FrameError {
    /// Where the bad byte or line starts.
    pub(super) offset: usize,
    /// What was wrong.
    pub(super) reason: &'static str,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed RESP at byte {}: {}", self.offset, self.reason)
    }
}

fn bad(offset: usize, reason: &'static str) -> FrameError {
    FrameError { offset, reason }
}

/// The length of the first complete reply in `buf`: `Ok(Some(n))` when the
/// first `n` bytes are one whole reply, `Ok(None)` when more bytes are
/// needed, `Err` when the bytes cannot be RESP.
pub(super) fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut pos = 0usize;
    // Values still to read; an aggregate adds its elements.
    let mut remaining: u64 = 1;
    while remaining > 0 {
        let Some(rest) = buf.get(pos..) else {
            return Ok(None);
        };
        let Some(line_len) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let Some((&kind, line)) = rest.get(..line_len).and_then(<[u8]>::split_first) else {
            return Err(bad(pos, "empty line"));
        };
        let after_line = pos + line_len + 2;
        remaining -= 1;
        match kind {
            // Simple values: status, error, integer, and RESP3 double,
            // null, boolean, big number.
            b'+' | b'-' | b':' | b',' | b'_' | b'#' | b'(' => pos = after_line,
            // Bulk string, RESP3 blob error and verbatim string.
            b'$' | b'!' | b'=' => {
                let n = length(line).ok_or_else(|| bad(pos, "bad bulk length"))?;
                match n {
                    None => pos = after_line,
                    Some(n) => {
                        let end = after_line
                            .checked_add(n)
                            .and_then(|e| e.checked_add(2))
                            .ok_or_else(|| bad(pos, "bulk length overflows"))?;
                        match buf.get(end - 2..end) {
                            None => return Ok(None),
                            Some(b"\r\n") => pos = end,
                            Some(_) => return Err(bad(end - 2, "bulk not followed by CRLF")),
                        }
                    }
                }
            }
            // Array, RESP3 set and push: n elements.
            b'*' | b'~' | b'>' => {
                let n = length(line).ok_or_else(|| bad(pos, "bad array length"))?;
                remaining = remaining.saturating_add(n.map_or(0, |n| n as u64));
                pos = after_line;
            }
            // RESP3 map and attribute: n pairs.
            b'%' | b'|' => {
                let n = length(line).ok_or_else(|| bad(pos, "bad map length"))?;
                let items = n.map_or(0, |n| (n as u64).saturating_mul(2));
                // An attribute precedes the value it describes.
                let extra = u64::from(kind == b'|');
                remaining = remaining.saturating_add(items).saturating_add(extra);
                pos = after_line;
            }
            _ => return Err(bad(pos, "unknown type byte")),
        }
    }
    Ok(Some(pos))
}

/// A length line: `Some(None)` for `-1` (nil), `Some(Some(n))`, or `None`
/// if it is not a valid length.
fn length(line: &[u8]) -> Option<Option<usize>> {
    if line == b"-1" {
        return Some(None);
    }
    if line.is_empty() || !line.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(line).ok()?.parse().ok().map(Some)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn frames_every_reply_type() {
        for reply in [
            &b"+OK\r\n"[..],
            b"-ERR x\r\n",
            b":42\r\n",
            b"$3\r\nabc\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"$4\r\na\r\nb\r\n",
            b"%1\r\n+k\r\n+v\r\n",
            b"|1\r\n+k\r\n+v\r\n:1\r\n",
            b"_\r\n",
        ] {
            assert_eq!(frame_len(reply), Ok(Some(reply.len())), "{reply:?}");
            let mut more = reply.to_vec();
            more.extend_from_slice(b"+next\r\n");
            assert_eq!(frame_len(&more), Ok(Some(reply.len())), "{reply:?}");
            for cut in 0..reply.len() {
                assert_eq!(frame_len(&reply[..cut]), Ok(None), "{reply:?} cut {cut}");
            }
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(frame_len(b"?x\r\n").is_err());
        assert!(frame_len(b"$x\r\n").is_err());
        assert!(frame_len(b"$1\r\nab\r\n").is_err());
        assert!(frame_len(b"*-2\r\n").is_err());
        assert!(frame_len(b"\r\n").is_err());
    }
}
