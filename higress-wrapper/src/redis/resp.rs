//! RESP2 codec for the Higress Redis host calls.
//!
//! The Higress host takes **one complete RESP-encoded command** per
//! `proxy_redis_call` and hands back the reply as the raw RESP bytes that
//! Envoy's Redis codec relayed. Envoy speaks RESP2 only, and a Redis `-ERR`
//! reply arrives with host status 0, so errors from Redis are values here
//! ([`Value::Error`]), not decode failures.
//!
//! * Encoding: `encode_command` (crate-internal) for a slice of arguments,
//!   [`CommandBuilder`] to add arguments one by one (bytes, integers,
//!   floats).
//! * Decoding: [`decode`] reads exactly one complete value and never panics.
//!   Its limits: arrays nest at most [`MAX_DEPTH`] deep, and an array may not
//!   declare more elements than the rest of the input could hold (each element
//!   takes at least 3 bytes), so a hostile length cannot make it allocate.
//! * Conversions: the accessors on [`Value`] and the [`FromValue`] trait.
//!
//! Design choices:
//!
//! * The null bulk string `$-1` and the null array `*-1` both decode to
//!   [`Value::Nil`]. Which one Redis sends is fixed by the command, RESP3 has
//!   a single null, and `Option<T>` handles both the same way; a separate
//!   `NilArray` variant would only add a case every caller must match.
//! * RESP3 type bytes (`_ , # ( ! = % ~ > |`) are rejected with
//!   [`DecodeError::UnsupportedType`]: Envoy cannot relay them, so code that
//!   accepted them would never run against a real host.
//! * Simple strings and errors are decoded with invalid UTF-8 replaced by
//!   U+FFFD: a Redis error message should reach the caller even if it quotes
//!   a binary argument.

use std::fmt;

/// How many arrays may nest inside each other in a decoded reply.
///
/// Redis replies nest a few levels at most (`XREAD` uses four); the limit
/// bounds the decoder's recursion.
pub const MAX_DEPTH: usize = 64;

/// Arrays reserve at most this many elements up front; larger ones grow as
/// their elements are actually decoded.
const PREALLOC_LIMIT: usize = 1024;

/// The smallest encoded RESP value is 3 bytes (`+\r\n`).
const MIN_VALUE_LEN: usize = 3;

/// First allocation of a [`CommandBuilder`]: most commands fit.
const INITIAL_CAPACITY: usize = 128;

/// Room for the array header `*<count>\r\n` with a count of up to 20 digits.
const HEADER_ROOM: usize = 1 + 20 + 2;

const CRLF: &[u8] = b"\r\n";

// ---------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------

/// Number of decimal digits of `n`.
fn dec_len(n: usize) -> usize {
    match n.checked_ilog10() {
        Some(log) => log as usize + 1,
        None => 1,
    }
}

/// Writes `n` in decimal into the end of `buf` and returns the digits.
fn u64_digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        start -= 1;
        if n == 0 {
            break;
        }
    }
    buf.get(start..).unwrap_or_default()
}

/// Appends `n` in decimal.
fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0; 20];
    out.extend_from_slice(u64_digits(n, &mut buf));
}

/// Appends `n` in decimal, with a leading `-` when negative.
fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends a bulk string: `$<len>\r\n<data>\r\n`.
fn push_bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    push_u64(out, data.len() as u64);
    out.extend_from_slice(CRLF);
    out.extend_from_slice(data);
    out.extend_from_slice(CRLF);
}

/// Encoded size of a bulk string holding `len` bytes.
fn bulk_size(len: usize) -> usize {
    (1 + 2 + 2 + dec_len(len)).saturating_add(len)
}

/// Encodes one command as a RESP2 array of bulk strings.
///
/// Arguments are binary-safe. The returned buffer is allocated once, with
/// exactly the capacity it needs.
#[must_use]
pub(crate) fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let size = args.iter().fold(3 + dec_len(args.len()), |acc, arg| {
        acc.saturating_add(bulk_size(arg.len()))
    });
    let mut out = Vec::with_capacity(size);
    out.push(b'*');
    push_u64(&mut out, args.len() as u64);
    out.extend_from_slice(CRLF);
    for arg in args {
        push_bulk(&mut out, arg);
    }
    out
}

/// Builds one RESP2 command argument by argument.
///
/// Arguments are written straight into the output buffer behind a reserved
/// gap for the array header; [`finish`](Self::finish) writes the header into
/// the end of that gap and shifts the bytes once, so no argument is stored
/// twice.
///
/// `arg*` methods return `&mut Self`, so calls chain
/// (`CommandBuilder::new().arg("GET").arg(key).finish()`) and also work in a
/// loop on a `let mut` builder.
#[derive(Clone, Debug, Default)]
pub struct CommandBuilder {
    /// `HEADER_ROOM` placeholder bytes followed by the encoded arguments, or
    /// empty before the first argument.
    buf: Vec<u8>,
    /// Number of arguments written so far.
    args: usize,
}

impl CommandBuilder {
    /// Creates an empty builder. It allocates on the first argument.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an empty builder whose buffer holds `bytes` bytes of encoded
    /// arguments before it grows.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER_ROOM.saturating_add(bytes));
        buf.resize(HEADER_ROOM, 0);
        Self { buf, args: 0 }
    }

    /// Counts one more argument and returns the buffer, with the header gap in
    /// place, ready for `extra` more bytes.
    fn next_arg(&mut self, extra: usize) -> &mut Vec<u8> {
        if self.buf.is_empty() {
            self.buf
                .reserve(HEADER_ROOM.saturating_add(extra).max(INITIAL_CAPACITY));
            self.buf.resize(HEADER_ROOM, 0);
        } else {
            self.buf.reserve(extra);
        }
        self.args += 1;
        &mut self.buf
    }

    /// Appends one binary-safe argument.
    pub fn arg(&mut self, arg: impl AsRef<[u8]>) -> &mut Self {
        let arg = arg.as_ref();
        push_bulk(self.next_arg(bulk_size(arg.len())), arg);
        self
    }

    /// Appends an integer argument in decimal, as Redis parses it.
    pub fn arg_int(&mut self, n: i64) -> &mut Self {
        let mut digits = [0; 20];
        let magnitude = u64_digits(n.unsigned_abs(), &mut digits);
        let len = magnitude.len() + usize::from(n < 0);
        let out = self.next_arg(bulk_size(len));
        out.push(b'$');
        push_u64(out, len as u64);
        out.extend_from_slice(CRLF);
        if n < 0 {
            out.push(b'-');
        }
        out.extend_from_slice(magnitude);
        out.extend_from_slice(CRLF);
        self
    }

    /// Appends a float argument in text Redis parses back to the same value
    /// (`INCRBYFLOAT`, `HINCRBYFLOAT`, `ZADD`, `ZINCRBY`, ...).
    ///
    /// The text is the shortest decimal that round-trips, never in exponent
    /// form: `1.5`, `0.1`, `3`, `-0`, `inf`, `-inf` (so `1e300` is written
    /// out in 301 digits, which Redis accepts). NaN is written as `nan`,
    /// which Redis rejects with an error reply.
    ///
    /// Size note: this links core's float formatting (about 20 KiB of
    /// `.wasm`), only into plugins that call it. Integral values below 2^53
    /// take the integer path and allocate nothing.
    pub fn arg_float(&mut self, x: f64) -> &mut Self {
        /// Integral values below 2^53 in magnitude are exact as `i64`.
        const EXACT_INT: f64 = 9_007_199_254_740_992.0;
        if x.is_nan() {
            return self.arg("nan");
        }
        if x != 0.0 && x.fract() == 0.0 && x.abs() < EXACT_INT {
            return self.arg_int(x as i64);
        }
        // `Display` prints infinities as `inf`/`-inf` and zero as `0`/`-0`.
        self.arg(format!("{x}"))
    }

    /// Number of arguments added since the builder was created or last
    /// finished.
    pub fn arg_count(&self) -> usize {
        self.args
    }

    /// Returns the encoded command and leaves the builder empty for reuse.
    ///
    /// A builder without arguments yields `*0\r\n`, which is no command:
    /// callers must not send it.
    #[must_use = "the encoded command is returned, the builder is left empty"]
    pub fn finish(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        let count = std::mem::take(&mut self.args);
        if buf.len() < HEADER_ROOM {
            return b"*0\r\n".to_vec();
        }
        let mut digits = [0; 20];
        let digits = u64_digits(count as u64, &mut digits);
        let start = HEADER_ROOM - 3 - digits.len();
        if let Some(gap) = buf.get_mut(start..HEADER_ROOM) {
            let header = [b"*", digits, CRLF];
            for (slot, byte) in gap.iter_mut().zip(header.into_iter().flatten()) {
                *slot = *byte;
            }
        }
        buf.drain(..start);
        buf
    }
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// One decoded RESP2 reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// The null bulk string `$-1` or the null array `*-1`: a missing key, a
    /// timed-out blocking pop, an aborted `EXEC`.
    Nil,
    /// An integer reply (`:`).
    Int(i64),
    /// A simple string reply (`+`), such as `OK` or `QUEUED`.
    Status(String),
    /// An error reply (`-`), such as `ERR unknown command` or `NOAUTH ...`.
    Error(String),
    /// A bulk string reply (`$`): binary-safe bytes.
    Bulk(Vec<u8>),
    /// An array reply (`*`).
    Array(Vec<Value>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("Nil"),
            Value::Int(n) => write!(f, "Int({n})"),
            Value::Status(s) => write!(f, "Status({s:?})"),
            Value::Error(s) => write!(f, "Error({s:?})"),
            Value::Bulk(b) => write!(f, "Bulk(b\"{}\")", b.escape_ascii()),
            Value::Array(items) => {
                f.write_str("Array")?;
                f.debug_list().entries(items).finish()
            }
        }
    }
}

/// Parses a whole slice as a decimal `i64`: an optional `-`, then digits.
fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut acc: i64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(byte - b'0');
        acc = acc.checked_mul(10)?;
        acc = if negative {
            acc.checked_sub(digit)?
        } else {
            acc.checked_add(digit)?
        };
    }
    Some(acc)
}

/// Parses a whole slice of ASCII digits as a `u64`.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &byte| {
        if byte.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(byte - b'0'))
        } else {
            None
        }
    })
}

impl Value {
    /// The kind of value, for messages: `"nil"`, `"integer"`, `"status"`,
    /// `"error"`, `"bulk string"` or `"array"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Int(_) => "integer",
            Value::Status(_) => "status",
            Value::Error(_) => "error",
            Value::Bulk(_) => "bulk string",
            Value::Array(_) => "array",
        }
    }

    /// Whether this is [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The bytes of a bulk string or status reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(bytes) => Some(bytes),
            Value::Status(text) => Some(text.as_bytes()),
            _ => None,
        }
    }

    /// The bytes of a bulk string or status reply, or the value unchanged.
    pub fn into_bytes(self) -> Result<Vec<u8>, Value> {
        match self {
            Value::Bulk(bytes) => Ok(bytes),
            Value::Status(text) => Ok(text.into_bytes()),
            other => Err(other),
        }
    }

    /// The text of a status reply, or of a bulk string that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Status(text) => Some(text),
            Value::Bulk(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// An integer reply, or a bulk string or status holding a decimal
    /// integer (Lua scripts and some commands return numbers as strings).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Bulk(_) | Value::Status(_) => parse_i64(self.as_bytes()?),
            _ => None,
        }
    }

    /// An integer reply, or a bulk string or status holding a number, as
    /// Redis returns floats (`ZSCORE`, `INCRBYFLOAT`, `HINCRBYFLOAT`):
    /// `1.5`, `3`, `1e+20`, `inf`, `-inf`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Bulk(_) | Value::Status(_) => self.as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// The elements of an array reply, or the value unchanged.
    pub fn into_array(self) -> Result<Vec<Value>, Value> {
        match self {
            Value::Array(items) => Ok(items),
            other => Err(other),
        }
    }

    /// `Err` with the message of an error reply, `Ok` with any other value.
    ///
    /// Only the top-level value is checked: a `MULTI`/`EXEC` reply may hold
    /// error replies among its elements.
    pub fn into_result(self) -> Result<Value, String> {
        match self {
            Value::Error(message) => Err(message),
            other => Ok(other),
        }
    }

    /// Encodes the value as RESP2, as a Redis server would send it.
    ///
    /// Meant for tests and mock hosts. [`Value::Nil`] becomes `$-1`; CR and LF
    /// inside a status or error, which RESP cannot carry, become spaces.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Nil => out.extend_from_slice(b"$-1\r\n"),
            Value::Int(n) => {
                out.push(b':');
                push_i64(out, *n);
                out.extend_from_slice(CRLF);
            }
            Value::Status(text) | Value::Error(text) => {
                out.push(if matches!(self, Value::Status(_)) {
                    b'+'
                } else {
                    b'-'
                });
                out.extend(text.bytes().map(|b| match b {
                    b'\r' | b'\n' => b' ',
                    other => other,
                }));
                out.extend_from_slice(CRLF);
            }
            Value::Bulk(bytes) => push_bulk(out, bytes),
            Value::Array(items) => {
                out.push(b'*');
                push_u64(out, items.len() as u64);
                out.extend_from_slice(CRLF);
                for item in items {
                    item.encode_into(out);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------

/// Why a reply could not be decoded. Every variant carries the byte offset
/// into the input where the problem was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value (this includes empty input).
    #[error("truncated RESP reply: the value at byte {offset} is incomplete")]
    Truncated {
        /// Start of the incomplete line, payload or value.
        offset: usize,
    },
    /// The byte at `offset` starts no RESP value.
    #[error("invalid RESP type byte '{}' at byte {offset}", .byte.escape_ascii())]
    InvalidType {
        /// Position of the type byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// A RESP3 type byte; the Higress host relays RESP2 only.
    #[error(
        "unsupported RESP type byte '{}' at byte {offset} (RESP3; the host speaks RESP2)",
        .byte.escape_ascii()
    )]
    UnsupportedType {
        /// Position of the type byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// A bulk string or array length that is not `-1` or a decimal count.
    #[error("invalid RESP length at byte {offset}")]
    InvalidLength {
        /// Start of the length text.
        offset: usize,
    },
    /// An integer reply that is not a decimal `i64`.
    #[error("invalid RESP integer at byte {offset}")]
    InvalidInteger {
        /// Start of the integer text.
        offset: usize,
    },
    /// A line or bulk payload not ended by `\r\n`.
    #[error("expected CRLF at byte {offset}")]
    ExpectedCrlf {
        /// Where the `\r\n` should have been.
        offset: usize,
    },
    /// Arrays nested more than [`MAX_DEPTH`] deep.
    #[error("RESP arrays nested deeper than {} at byte {offset}", MAX_DEPTH)]
    TooDeep {
        /// Position of the array that is one level too deep.
        offset: usize,
    },
    /// An array declaring more elements than the rest of the input can hold.
    #[error(
        "RESP array at byte {offset} declares {len} elements but only {remaining} bytes follow"
    )]
    ArrayTooLong {
        /// Position of the array's type byte.
        offset: usize,
        /// The declared element count.
        len: usize,
        /// Bytes left in the input after the header.
        remaining: usize,
    },
    /// Bytes left over after one complete value.
    #[error("{count} unexpected bytes after the RESP reply at byte {offset}")]
    TrailingBytes {
        /// End of the complete value.
        offset: usize,
        /// How many bytes follow it.
        count: usize,
    },
}

impl DecodeError {
    /// The byte offset into the input where the problem was found.
    pub fn offset(&self) -> usize {
        match self {
            DecodeError::Truncated { offset }
            | DecodeError::InvalidType { offset, .. }
            | DecodeError::UnsupportedType { offset, .. }
            | DecodeError::InvalidLength { offset }
            | DecodeError::InvalidInteger { offset }
            | DecodeError::ExpectedCrlf { offset }
            | DecodeError::TooDeep { offset }
            | DecodeError::ArrayTooLong { offset, .. }
            | DecodeError::TrailingBytes { offset, .. } => *offset,
        }
    }
}

/// Decodes exactly one complete RESP2 value; anything after it is an error.
///
/// Never panics, whatever the input. See the [module docs](self) for the
/// limits it enforces.
///
/// # Errors
///
/// A [`DecodeError`] naming the problem and its byte offset when the input is
/// not exactly one well-formed RESP2 value within those limits.
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut parser = Parser {
        input: bytes,
        pos: 0,
    };
    let value = parser.value(0)?;
    if parser.pos < bytes.len() {
        return Err(DecodeError::TrailingBytes {
            offset: parser.pos,
            count: bytes.len() - parser.pos,
        });
    }
    Ok(value)
}

/// Cursor over the input. `pos <= input.len()` always holds.
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let start = self.pos;
        let Some(&type_byte) = self.input.get(start) else {
            return Err(DecodeError::Truncated { offset: start });
        };
        self.pos = start + 1;
        match type_byte {
            b'+' => Ok(Value::Status(lossy(self.line()?))),
            b'-' => Ok(Value::Error(lossy(self.line()?))),
            b':' => {
                let offset = self.pos;
                parse_i64(self.line()?)
                    .map(Value::Int)
                    .ok_or(DecodeError::InvalidInteger { offset })
            }
            b'$' => match self.length()? {
                None => Ok(Value::Nil),
                Some(len) => self.bulk(len),
            },
            b'*' => match self.length()? {
                None => Ok(Value::Nil),
                Some(len) => self.array(start, len, depth),
            },
            b'_' | b',' | b'#' | b'(' | b'!' | b'=' | b'%' | b'~' | b'>' | b'|' => {
                Err(DecodeError::UnsupportedType {
                    offset: start,
                    byte: type_byte,
                })
            }
            byte => Err(DecodeError::InvalidType {
                offset: start,
                byte,
            }),
        }
    }

    /// Reads up to the next `\r\n` and moves past it. A bare `\r` or `\n`
    /// inside the line is an error, so decoded lines never contain either.
    fn line(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let rest = self.input.get(start..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            return Err(DecodeError::Truncated { offset: start });
        };
        let end = start + len;
        match rest.get(len..len + 2) {
            Some(b"\r\n") => {}
            None if rest.get(len) == Some(&b'\r') => {
                return Err(DecodeError::Truncated { offset: start })
            }
            _ => return Err(DecodeError::ExpectedCrlf { offset: end }),
        }
        self.pos = end + 2;
        Ok(rest.get(..len).unwrap_or_default())
    }

    /// Reads a length line: `None` for `-1`, else a decimal count.
    fn length(&mut self) -> Result<Option<usize>, DecodeError> {
        let offset = self.pos;
        let text = self.line()?;
        if text == b"-1" {
            return Ok(None);
        }
        parse_u64(text)
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or(DecodeError::InvalidLength { offset })
    }

    fn bulk(&mut self, len: usize) -> Result<Value, DecodeError> {
        let start = self.pos;
        let rest = self.input.get(start..).unwrap_or_default();
        let Some(data) = rest.get(..len) else {
            return Err(DecodeError::Truncated { offset: start });
        };
        let end = start + len;
        let tail = rest.get(len..).unwrap_or_default();
        if !tail.starts_with(CRLF) {
            return Err(if CRLF.starts_with(tail) {
                DecodeError::Truncated { offset: start }
            } else {
                DecodeError::ExpectedCrlf { offset: end }
            });
        }
        self.pos = end + 2;
        Ok(Value::Bulk(data.to_vec()))
    }

    fn array(&mut self, start: usize, len: usize, depth: usize) -> Result<Value, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep { offset: start });
        }
        let remaining = self.input.len() - self.pos;
        if len > remaining / MIN_VALUE_LEN {
            return Err(DecodeError::ArrayTooLong {
                offset: start,
                len,
                remaining,
            });
        }
        let mut items = Vec::with_capacity(len.min(PREALLOC_LIMIT));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }
}

fn lossy(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

// ---------------------------------------------------------------------------
// Typed conversions
// ---------------------------------------------------------------------------

/// Longest status text quoted in a [`FromValueError`].
const PREVIEW_CHARS: usize = 32;

/// A reply that does not convert to the requested type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FromValueError {
    /// The reply, or an element of it, was an error reply.
    #[error("redis error: {0}")]
    Redis(String),
    /// The reply had another type or content than the target type needs.
    #[error("expected {expected}, got {found}")]
    Unexpected {
        /// What the target type accepts, e.g. `"integer"`.
        expected: &'static str,
        /// What arrived: its kind and size, or a short preview of a status
        /// or an integer; never the contents of a bulk string.
        found: String,
    },
}

impl FromValueError {
    /// The error for `value` when `expected` was needed. An error reply
    /// becomes [`FromValueError::Redis`].
    fn mismatch(expected: &'static str, value: Value) -> Self {
        // Built by hand rather than with `format!`: string `Debug` escaping
        // and integer `Display` would add kilobytes to every plugin.
        let mut found = String::new();
        let count = |found: &mut String, label: &str, n: usize, unit: &str| {
            found.push_str(label);
            push_decimal(found, n as u64);
            found.push_str(unit);
        };
        match value {
            Value::Error(message) => return FromValueError::Redis(message),
            Value::Nil => found.push_str("nil"),
            Value::Int(n) => {
                found.push_str("integer ");
                if n < 0 {
                    found.push('-');
                }
                push_decimal(&mut found, n.unsigned_abs());
            }
            Value::Status(text) => {
                found.push_str("status \"");
                let mut chars = text.chars();
                found.extend(
                    chars
                        .by_ref()
                        .take(PREVIEW_CHARS)
                        .flat_map(char::escape_default),
                );
                if chars.next().is_some() {
                    found.push_str("...");
                }
                found.push('"');
            }
            Value::Bulk(bytes) => count(&mut found, "bulk string of ", bytes.len(), " bytes"),
            Value::Array(items) => count(&mut found, "array of ", items.len(), " elements"),
        }
        FromValueError::Unexpected { expected, found }
    }
}

/// Appends `n` in decimal to a `String`.
fn push_decimal(out: &mut String, n: u64) {
    let mut buf = [0; 20];
    out.extend(u64_digits(n, &mut buf).iter().copied().map(char::from));
}

/// Conversion from a decoded reply into a Rust type.
///
/// | type | accepts |
/// |---|---|
/// | [`Value`] | anything, including error replies |
/// | `Vec<u8>` | bulk string, status |
/// | `String` | bulk string (UTF-8 checked), status, integer (as decimal) |
/// | `i64`, `i32`, `u64`, `u32`, `usize` | integer, or a bulk string or status holding one, in range |
/// | `f64` | integer, or a bulk string or status holding a float (`inf` too) |
/// | `bool` | `0` or `1`, as an integer, bulk string or status |
/// | `()` | any status (`OK`, `QUEUED`, ...) |
/// | `Option<T>` | nil as `None`, else `T` |
/// | `Vec<T>` | array of `T` (a nil array is not accepted: use `Option<Vec<T>>`) |
/// | `(A, B)` | two-element array |
/// | `Vec<(A, B)>` | flat array of pairs (`HGETALL`, `ZRANGE ... WITHSCORES`), or an array of two-element arrays |
///
/// An error reply converts only to [`Value`]; for every other type it gives
/// [`FromValueError::Redis`].
pub trait FromValue: Sized {
    /// Converts one reply.
    ///
    /// # Errors
    ///
    /// [`FromValueError::Redis`] for an error reply,
    /// [`FromValueError::Unexpected`] for a reply of another shape.
    fn from_value(value: Value) -> Result<Self, FromValueError>;

    /// Converts the elements of an array reply; `Vec<T>` calls this.
    ///
    /// The default converts each element. `(A, B)` overrides it to read
    /// flattened key/value arrays.
    fn from_values(items: Vec<Value>) -> Result<Vec<Self>, FromValueError> {
        items.into_iter().map(Self::from_value).collect()
    }
}

impl FromValue for Value {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        Ok(value)
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        value
            .into_bytes()
            .map_err(|other| FromValueError::mismatch("bulk string", other))
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        match value {
            Value::Status(text) => Ok(text),
            Value::Bulk(bytes) => String::from_utf8(bytes).map_err(|err| {
                FromValueError::mismatch("UTF-8 string", Value::Bulk(err.into_bytes()))
            }),
            Value::Int(n) => {
                let mut text = String::with_capacity(20);
                if n < 0 {
                    text.push('-');
                }
                push_decimal(&mut text, n.unsigned_abs());
                Ok(text)
            }
            other => Err(FromValueError::mismatch("string", other)),
        }
    }
}

impl FromValue for i64 {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        match value.as_i64() {
            Some(n) => Ok(n),
            None => Err(FromValueError::mismatch("integer", value)),
        }
    }
}

impl FromValue for u64 {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        let parsed = match &value {
            Value::Int(n) => u64::try_from(*n).ok(),
            Value::Bulk(_) | Value::Status(_) => value.as_bytes().and_then(parse_u64),
            _ => None,
        };
        parsed.ok_or_else(|| FromValueError::mismatch("non-negative integer", value))
    }
}

/// `FromValue` for integer types narrower than `i64`, checked for range.
macro_rules! from_value_narrow_int {
    ($($ty:ty => $expected:literal),* $(,)?) => {$(
        impl FromValue for $ty {
            fn from_value(value: Value) -> Result<Self, FromValueError> {
                match value.as_i64().and_then(|n| <$ty>::try_from(n).ok()) {
                    Some(n) => Ok(n),
                    None => Err(FromValueError::mismatch($expected, value)),
                }
            }
        }
    )*};
}

from_value_narrow_int! {
    i32 => "32-bit integer",
    u32 => "32-bit non-negative integer",
    usize => "non-negative integer",
}

impl FromValue for f64 {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        match value.as_f64() {
            Some(x) => Ok(x),
            None => Err(FromValueError::mismatch("number", value)),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        match value.as_i64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(FromValueError::mismatch("0 or 1", value)),
        }
    }
}

impl FromValue for () {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        match value {
            Value::Status(_) => Ok(()),
            other => Err(FromValueError::mismatch("status reply", other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        match value {
            Value::Nil => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        match value {
            Value::Array(items) => T::from_values(items),
            other => Err(FromValueError::mismatch("array", other)),
        }
    }
}

impl<A: FromValue, B: FromValue> FromValue for (A, B) {
    fn from_value(value: Value) -> Result<Self, FromValueError> {
        match value {
            Value::Array(items) => match <[Value; 2]>::try_from(items) {
                Ok([a, b]) => Ok((A::from_value(a)?, B::from_value(b)?)),
                Err(items) => Err(FromValueError::mismatch(
                    "array of 2 elements",
                    Value::Array(items),
                )),
            },
            other => Err(FromValueError::mismatch("array of 2 elements", other)),
        }
    }

    /// Reads an array of two-element arrays pair by pair; any other array is
    /// read as flattened pairs `[a1, b1, a2, b2, ...]`, as RESP2 sends
    /// `HGETALL`, `CONFIG GET` and `... WITHSCORES`.
    fn from_values(items: Vec<Value>) -> Result<Vec<Self>, FromValueError> {
        let nested = !items.is_empty()
            && items
                .iter()
                .all(|item| matches!(item, Value::Array(pair) if pair.len() == 2));
        if nested {
            return items.into_iter().map(Self::from_value).collect();
        }
        if items.len() % 2 != 0 {
            return Err(FromValueError::mismatch(
                "array of key/value pairs (even length)",
                Value::Array(items),
            ));
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(a), Some(b)) = (items.next(), items.next()) {
            pairs.push((A::from_value(a)?, B::from_value(b)?));
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(bytes: &[u8]) -> Value {
        Value::Bulk(bytes.to_vec())
    }

    fn status(text: &str) -> Value {
        Value::Status(text.to_owned())
    }

    // ---- encoder ----

    #[test]
    fn encodes_a_command() {
        let cmd = encode_command(&[b"SET", b"key", b"value"]);
        assert_eq!(cmd, b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
        assert_eq!(cmd.len(), cmd.capacity());
    }

    #[test]
    fn encoding_is_binary_safe_and_exactly_sized() {
        let binary = [0u8, b'\r', b'\n', 0xff, b'$', b'*'];
        let cmd = encode_command(&[b"SET", b"", &binary]);
        assert_eq!(cmd, b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$6\r\n\0\r\n\xff$*\r\n");
        assert_eq!(cmd.len(), cmd.capacity());
        assert_eq!(encode_command(&[]), b"*0\r\n");

        let args: Vec<Vec<u8>> = (0..1234).map(|i| vec![b'a'; i % 17]).collect();
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let cmd = encode_command(&refs);
        assert_eq!(cmd.len(), cmd.capacity());
        let expected = Value::Array(args.iter().map(|a| bulk(a)).collect());
        assert_eq!(decode(&cmd), Ok(expected));
    }

    #[test]
    fn builder_matches_encode_command() {
        let cmd = CommandBuilder::new()
            .arg("SET")
            .arg(b"key")
            .arg(String::from("value"))
            .arg(vec![0u8, 13, 10])
            .finish();
        assert_eq!(cmd, encode_command(&[b"SET", b"key", b"value", b"\0\r\n"]));

        for count in [0usize, 1, 9, 10, 99, 100, 1000] {
            let mut builder = CommandBuilder::with_capacity(8);
            let args: Vec<String> = (0..count).map(|i| i.to_string()).collect();
            for a in &args {
                builder.arg(a);
            }
            assert_eq!(builder.arg_count(), count);
            let refs: Vec<&[u8]> = args.iter().map(String::as_bytes).collect();
            assert_eq!(builder.finish(), encode_command(&refs), "count {count}");
        }
    }

    #[test]
    fn builder_is_reusable_after_finish() {
        let mut builder = CommandBuilder::new();
        builder.arg("PING");
        assert_eq!(builder.finish(), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(builder.arg_count(), 0);
        assert_eq!(builder.finish(), b"*0\r\n");
        builder.arg("GET").arg("k");
        assert_eq!(builder.finish(), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }

    #[test]
    fn builder_writes_integers() {
        let cmd = CommandBuilder::new()
            .arg("INCRBY")
            .arg_int(0)
            .arg_int(-1)
            .arg_int(42)
            .arg_int(i64::MIN)
            .arg_int(i64::MAX)
            .finish();
        let expected = encode_command(&[
            b"INCRBY",
            b"0",
            b"-1",
            b"42",
            b"-9223372036854775808",
            b"9223372036854775807",
        ]);
        assert_eq!(cmd, expected);
    }

    fn float_text(x: f64) -> String {
        let cmd = CommandBuilder::new().arg_float(x).finish();
        decode(&cmd)
            .ok()
            .and_then(|v| v.into_array().ok())
            .and_then(|items| items.into_iter().next())
            .and_then(|v| String::from_value(v).ok())
            .unwrap_or_default()
    }

    #[test]
    fn builder_writes_redis_floats() {
        let cases: [(f64, &str); 14] = [
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (3.0, "3"),
            (-7.0, "-7"),
            (0.0, "0"),
            (-0.0, "-0"),
            (0.1, "0.1"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (1.5e-7, "0.00000015"),
            (123456.789, "123456.789"),
            (9007199254740993.0, "9007199254740992"),
            (1e16, "10000000000000000"),
        ];
        for (x, text) in cases {
            assert_eq!(float_text(x), text, "{x:?}");
        }
        assert_eq!(float_text(1e300), format!("1{}", "0".repeat(300)));
    }

    #[test]
    fn float_text_round_trips() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let x = f64::from_bits(rng.next());
            let text = float_text(x);
            let back: f64 = text.parse().unwrap_or(f64::NAN);
            if x.is_nan() {
                assert_eq!(text, "nan");
            } else {
                assert_eq!(back.to_bits(), x.to_bits(), "{x:?} -> {text}");
            }
        }
    }

    // ---- decoder ----

    #[test]
    fn decodes_every_type() {
        assert_eq!(decode(b"+OK\r\n"), Ok(status("OK")));
        assert_eq!(decode(b"+\r\n"), Ok(status("")));
        assert_eq!(
            decode(b"-ERR unknown command\r\n"),
            Ok(Value::Error("ERR unknown command".to_owned()))
        );
        assert_eq!(decode(b":0\r\n"), Ok(Value::Int(0)));
        assert_eq!(decode(b":-0\r\n"), Ok(Value::Int(0)));
        assert_eq!(decode(b":007\r\n"), Ok(Value::Int(7)));
        assert_eq!(
            decode(b":-9223372036854775808\r\n"),
            Ok(Value::Int(i64::MIN))
        );
        assert_eq!(
            decode(b":9223372036854775807\r\n"),
            Ok(Value::Int(i64::MAX))
        );
        assert_eq!(decode(b"$5\r\nhello\r\n"), Ok(bulk(b"hello")));
        assert_eq!(decode(b"$0\r\n\r\n"), Ok(bulk(b"")));
        assert_eq!(decode(b"$4\r\n\r\n\r\n\r\n"), Ok(bulk(b"\r\n\r\n")));
        assert_eq!(decode(b"$-1\r\n"), Ok(Value::Nil));
        assert_eq!(decode(b"*-1\r\n"), Ok(Value::Nil));
        assert_eq!(decode(b"*0\r\n"), Ok(Value::Array(vec![])));
        assert_eq!(
            decode(b"*3\r\n:1\r\n$-1\r\n*2\r\n+a\r\n-b\r\n"),
            Ok(Value::Array(vec![
                Value::Int(1),
                Value::Nil,
                Value::Array(vec![status("a"), Value::Error("b".to_owned())]),
            ]))
        );
        // Invalid UTF-8 in a status or error is replaced, not rejected.
        assert_eq!(
            decode(b"-ERR \xff\r\n"),
            Ok(Value::Error("ERR \u{fffd}".to_owned()))
        );
    }

    fn err(input: &[u8]) -> Option<DecodeError> {
        decode(input).err()
    }

    #[test]
    fn truncated_input() {
        use DecodeError::Truncated;
        let cases: [(&[u8], usize); 12] = [
            (b"", 0),
            (b"+", 1),
            (b"+OK", 1),
            (b"+OK\r", 1),
            (b":12", 1),
            (b"$", 1),
            (b"$3", 1),
            (b"$3\r\nab", 4),
            (b"$3\r\nabc", 4),
            (b"$3\r\nabc\r", 4),
            (b"*2\r\n:1\r\n:2", 9),
            (b"*1\r\n", 4),
        ];
        for (input, offset) in cases {
            let expected = if input == b"*1\r\n" {
                // No room for even one element: caught before recursing.
                DecodeError::ArrayTooLong {
                    offset: 0,
                    len: 1,
                    remaining: 0,
                }
            } else {
                Truncated { offset }
            };
            assert_eq!(err(input), Some(expected), "{}", input.escape_ascii());
        }
    }

    #[test]
    fn bad_type_bytes() {
        assert_eq!(
            err(b"?x\r\n"),
            Some(DecodeError::InvalidType {
                offset: 0,
                byte: b'?'
            })
        );
        assert_eq!(
            err(b"*1\r\n\xff\r\n"),
            Some(DecodeError::InvalidType {
                offset: 4,
                byte: 0xff
            })
        );
        for byte in *b"_,#(!=%~>|" {
            let input = [byte, b'1', b'\r', b'\n'];
            assert_eq!(
                err(&input),
                Some(DecodeError::UnsupportedType { offset: 0, byte })
            );
        }
        let message = err(b"%1\r\n+a\r\n+b\r\n").map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("unsupported RESP type byte '%' at byte 0 (RESP3; the host speaks RESP2)")
        );
        let message = err(b"\x01").map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("invalid RESP type byte '\\x01' at byte 0")
        );
    }

    #[test]
    fn bad_lengths() {
        for input in [
            &b"$-2\r\n"[..],
            b"$\r\n",
            b"$abc\r\n",
            b"$+1\r\n",
            b"$ 1\r\n",
            b"$1 \r\n",
            b"$--1\r\n",
            b"$-1x\r\n",
            b"$99999999999999999999999\r\n",
            b"*-5\r\n",
            b"*-0\r\n",
            b"*1.5\r\n",
        ] {
            assert_eq!(
                err(input),
                Some(DecodeError::InvalidLength { offset: 1 }),
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn bad_integers() {
        for input in [
            &b":\r\n"[..],
            b":-\r\n",
            b":+1\r\n",
            b":1.0\r\n",
            b": 1\r\n",
            b":abc\r\n",
            b":9223372036854775808\r\n",
            b":-9223372036854775809\r\n",
        ] {
            assert_eq!(
                err(input),
                Some(DecodeError::InvalidInteger { offset: 1 }),
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn bad_line_endings() {
        let cases: [(&[u8], usize); 7] = [
            (b"+OK\rX", 3),
            (b"+OK\n", 3),
            (b"+O\nK\r\n", 2),
            (b":1\n\r", 2),
            (b"$3\r\nabcX\r\n", 7),
            (b"$3\r\nabc\n\r", 7),
            (b"$3\n", 2),
        ];
        for (input, offset) in cases {
            assert_eq!(
                err(input),
                Some(DecodeError::ExpectedCrlf { offset }),
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn trailing_bytes() {
        assert_eq!(
            err(b"+OK\r\nX"),
            Some(DecodeError::TrailingBytes {
                offset: 5,
                count: 1
            })
        );
        assert_eq!(
            err(b":1\r\n:2\r\n"),
            Some(DecodeError::TrailingBytes {
                offset: 4,
                count: 4
            })
        );
    }

    #[test]
    fn absurd_array_lengths_do_not_allocate() {
        assert_eq!(
            err(b"*1000\r\n:1\r\n"),
            Some(DecodeError::ArrayTooLong {
                offset: 0,
                len: 1000,
                remaining: 4
            })
        );
        assert_eq!(
            err(b"*18446744073709551615\r\n"),
            Some(DecodeError::ArrayTooLong {
                offset: 0,
                len: usize::MAX,
                remaining: 0
            })
        );
        // Exactly as many elements as the input can hold is fine.
        assert_eq!(
            decode(b"*3\r\n+\r\n+\r\n+\r\n"),
            Ok(Value::Array(vec![status(""), status(""), status("")]))
        );
        // Nested: the inner array is checked against what is left.
        assert_eq!(
            err(b"*1\r\n*9\r\n:1\r\n"),
            Some(DecodeError::ArrayTooLong {
                offset: 4,
                len: 9,
                remaining: 4
            })
        );
    }

    fn nested(depth: usize) -> Vec<u8> {
        let mut input = b"*1\r\n".repeat(depth);
        input.extend_from_slice(b":1\r\n");
        input
    }

    #[test]
    fn nesting_limit() {
        let mut expected = Value::Int(1);
        for _ in 0..MAX_DEPTH {
            expected = Value::Array(vec![expected]);
        }
        assert_eq!(decode(&nested(MAX_DEPTH)), Ok(expected));
        assert_eq!(
            err(&nested(MAX_DEPTH + 1)),
            Some(DecodeError::TooDeep {
                offset: 4 * MAX_DEPTH
            })
        );
        assert!(matches!(
            err(&nested(100_000)),
            Some(DecodeError::TooDeep { .. })
        ));
        // Null arrays below the limit do not recurse.
        let mut input = b"*1\r\n".repeat(MAX_DEPTH);
        input.extend_from_slice(b"*-1\r\n");
        assert!(decode(&input).is_ok());
    }

    #[test]
    fn error_messages_and_offsets() {
        let cases: [(&[u8], &str); 9] = [
            (
                b"+OK",
                "truncated RESP reply: the value at byte 1 is incomplete",
            ),
            (b"?", "invalid RESP type byte '?' at byte 0"),
            (b"$-3\r\n", "invalid RESP length at byte 1"),
            (b":x\r\n", "invalid RESP integer at byte 1"),
            (b"+a\rb", "expected CRLF at byte 2"),
            (&nested(65), "RESP arrays nested deeper than 64 at byte 256"),
            (
                b"*7\r\n",
                "RESP array at byte 0 declares 7 elements but only 0 bytes follow",
            ),
            (
                b"+a\r\nzz",
                "2 unexpected bytes after the RESP reply at byte 4",
            ),
            (
                b"_\r\n",
                "unsupported RESP type byte '_' at byte 0 (RESP3; the host speaks RESP2)",
            ),
        ];
        for (input, message) in cases {
            let error = err(input);
            assert_eq!(
                error.as_ref().map(ToString::to_string).as_deref(),
                Some(message)
            );
            assert!(error.is_some_and(|e| e.offset() <= input.len()));
        }
    }

    #[test]
    fn big_bulk_round_trips() {
        let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
        let cmd = encode_command(&[b"SET", b"big", &payload]);
        assert_eq!(cmd.len(), cmd.capacity());
        let expected = Value::Array(vec![bulk(b"SET"), bulk(b"big"), bulk(&payload)]);
        assert_eq!(decode(&cmd), Ok(expected));

        let reply = Value::Bulk(payload.clone()).encode();
        assert_eq!(decode(&reply), Ok(Value::Bulk(payload)));
        let cut = reply.get(..reply.len() - 3).unwrap_or_default();
        assert_eq!(err(cut), Some(DecodeError::Truncated { offset: 10 }));
    }

    #[test]
    fn nested_arrays_round_trip() {
        // XREAD-shaped reply: [[stream, [[id, [field, value]]]]].
        let entry = Value::Array(vec![
            bulk(b"1-0"),
            Value::Array(vec![bulk(b"field"), bulk(b"value")]),
        ]);
        let stream = Value::Array(vec![bulk(b"mystream"), Value::Array(vec![entry])]);
        let reply = Value::Array(vec![stream, Value::Nil, Value::Array(vec![])]);
        assert_eq!(decode(&reply.encode()), Ok(reply));

        let wide = Value::Array((0..10_000).map(Value::Int).collect());
        assert_eq!(decode(&wide.encode()), Ok(wide));
    }

    #[test]
    fn encode_value_keeps_lines_intact() {
        let value = Value::Error("ERR a\r\nb".to_owned());
        assert_eq!(value.encode(), b"-ERR a  b\r\n");
        assert_eq!(Value::Nil.encode(), b"$-1\r\n");
        assert_eq!(Value::Int(-5).encode(), b":-5\r\n");
    }

    #[test]
    fn debug_shows_bulk_as_text() {
        let value = Value::Array(vec![bulk(b"a\xff"), Value::Int(1), Value::Nil]);
        assert_eq!(
            format!("{value:?}"),
            r#"Array[Bulk(b"a\xff"), Int(1), Nil]"#
        );
    }

    // ---- conversions ----

    #[test]
    fn accessors() {
        assert_eq!(bulk(b"12").as_i64(), Some(12));
        assert_eq!(status("-3").as_i64(), Some(-3));
        assert_eq!(Value::Int(7).as_i64(), Some(7));
        assert_eq!(bulk(b"1.5").as_i64(), None);
        assert_eq!(Value::Nil.as_i64(), None);

        assert_eq!(bulk(b"10.5").as_f64(), Some(10.5));
        assert_eq!(bulk(b"1e+20").as_f64(), Some(1e20));
        assert_eq!(bulk(b"inf").as_f64(), Some(f64::INFINITY));
        assert_eq!(bulk(b"-inf").as_f64(), Some(f64::NEG_INFINITY));
        assert_eq!(Value::Int(2).as_f64(), Some(2.0));
        assert_eq!(bulk(b"x").as_f64(), None);
        assert_eq!(Value::Error("1".to_owned()).as_f64(), None);

        assert_eq!(bulk(b"hi").as_str(), Some("hi"));
        assert_eq!(status("OK").as_str(), Some("OK"));
        assert_eq!(bulk(b"\xff").as_str(), None);
        assert_eq!(Value::Int(1).as_str(), None);

        assert_eq!(bulk(b"x").as_bytes(), Some(&b"x"[..]));
        assert_eq!(status("OK").as_bytes(), Some(&b"OK"[..]));
        assert_eq!(Value::Nil.as_bytes(), None);
        assert_eq!(bulk(b"x").into_bytes(), Ok(b"x".to_vec()));
        assert_eq!(Value::Int(1).into_bytes(), Err(Value::Int(1)));

        assert_eq!(
            Value::Array(vec![Value::Nil]).into_array(),
            Ok(vec![Value::Nil])
        );
        assert_eq!(Value::Nil.into_array(), Err(Value::Nil));
        assert!(Value::Nil.is_nil());
        assert!(!Value::Int(0).is_nil());

        assert_eq!(
            Value::Error("ERR x".to_owned()).into_result(),
            Err("ERR x".to_owned())
        );
        assert_eq!(status("OK").into_result(), Ok(status("OK")));
        assert_eq!(Value::Bulk(vec![]).kind(), "bulk string");
    }

    fn unexpected(expected: &'static str, found: &str) -> FromValueError {
        FromValueError::Unexpected {
            expected,
            found: found.to_owned(),
        }
    }

    #[test]
    fn scalar_conversions() {
        assert_eq!(i64::from_value(Value::Int(-4)), Ok(-4));
        assert_eq!(i64::from_value(bulk(b"17")), Ok(17));
        assert_eq!(
            i64::from_value(Value::Nil),
            Err(unexpected("integer", "nil"))
        );
        assert_eq!(u64::from_value(Value::Int(4)), Ok(4));
        assert_eq!(u64::from_value(bulk(b"18446744073709551615")), Ok(u64::MAX));
        assert_eq!(
            u64::from_value(Value::Int(-1)),
            Err(unexpected("non-negative integer", "integer -1"))
        );
        assert_eq!(i32::from_value(Value::Int(-5)), Ok(-5));
        assert_eq!(
            u32::from_value(Value::Int(1 << 40)),
            Err(unexpected(
                "32-bit non-negative integer",
                "integer 1099511627776"
            ))
        );
        assert_eq!(usize::from_value(Value::Int(3)), Ok(3));

        assert_eq!(f64::from_value(bulk(b"3.25")), Ok(3.25));
        assert_eq!(
            f64::from_value(bulk(b"abc")),
            Err(unexpected("number", "bulk string of 3 bytes"))
        );

        assert_eq!(bool::from_value(Value::Int(1)), Ok(true));
        assert_eq!(bool::from_value(Value::Int(0)), Ok(false));
        assert_eq!(bool::from_value(bulk(b"1")), Ok(true));
        assert_eq!(
            bool::from_value(Value::Int(2)),
            Err(unexpected("0 or 1", "integer 2"))
        );

        assert_eq!(<()>::from_value(status("OK")), Ok(()));
        assert_eq!(
            <()>::from_value(Value::Int(1)),
            Err(unexpected("status reply", "integer 1"))
        );

        assert_eq!(
            String::from_value(bulk(b"caf\xc3\xa9")),
            Ok("café".to_owned())
        );
        assert_eq!(String::from_value(status("PONG")), Ok("PONG".to_owned()));
        assert_eq!(String::from_value(Value::Int(-12)), Ok("-12".to_owned()));
        assert_eq!(
            String::from_value(bulk(b"\xff\xfe")),
            Err(unexpected("UTF-8 string", "bulk string of 2 bytes"))
        );
        assert_eq!(Vec::<u8>::from_value(bulk(b"\xff")), Ok(vec![0xff]));
        assert_eq!(
            Vec::<u8>::from_value(Value::Array(vec![])),
            Err(unexpected("bulk string", "array of 0 elements"))
        );
        assert_eq!(
            Value::from_value(Value::Error("E".to_owned())),
            Ok(Value::Error("E".to_owned()))
        );
    }

    #[test]
    fn error_replies_and_previews() {
        assert_eq!(
            i64::from_value(Value::Error("WRONGTYPE Operation".to_owned())),
            Err(FromValueError::Redis("WRONGTYPE Operation".to_owned()))
        );
        let long_status = status(&"Q".repeat(100));
        let error = i64::from_value(long_status).err().map(|e| e.to_string());
        let expected = format!("expected integer, got status \"{}...\"", "Q".repeat(32));
        assert_eq!(error, Some(expected));
        // Bulk contents are never echoed.
        let error = i64::from_value(bulk(b"secret-token"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("expected integer, got bulk string of 12 bytes")
        );
        let error = FromValueError::Redis("NOAUTH Authentication required.".to_owned());
        assert_eq!(
            error.to_string(),
            "redis error: NOAUTH Authentication required."
        );
    }

    #[test]
    fn compound_conversions() {
        // MGET
        let reply = Value::Array(vec![bulk(b"a"), Value::Nil, bulk(b"c")]);
        assert_eq!(
            Vec::<Option<String>>::from_value(reply),
            Ok(vec![Some("a".to_owned()), None, Some("c".to_owned())])
        );
        assert_eq!(Option::<Vec<String>>::from_value(Value::Nil), Ok(None));
        assert_eq!(
            Vec::<String>::from_value(Value::Nil),
            Err(unexpected("array", "nil"))
        );
        // An error inside an EXEC reply.
        let reply = Value::Array(vec![status("OK"), Value::Error("ERR x".to_owned())]);
        assert_eq!(
            Vec::<String>::from_value(reply.clone()),
            Err(FromValueError::Redis("ERR x".to_owned()))
        );
        assert_eq!(
            Vec::<Value>::from_value(reply),
            Ok(vec![status("OK"), Value::Error("ERR x".to_owned())])
        );
        // HGETALL, flat.
        let reply = Value::Array(vec![bulk(b"f1"), bulk(b"v1"), bulk(b"f2"), bulk(b"v2")]);
        assert_eq!(
            Vec::<(String, String)>::from_value(reply),
            Ok(vec![
                ("f1".to_owned(), "v1".to_owned()),
                ("f2".to_owned(), "v2".to_owned())
            ])
        );
        // ZRANGE ... WITHSCORES, flat, with typed scores.
        let reply = Value::Array(vec![bulk(b"m"), bulk(b"1.5"), bulk(b"n"), bulk(b"inf")]);
        assert_eq!(
            Vec::<(String, f64)>::from_value(reply),
            Ok(vec![("m".to_owned(), 1.5), ("n".to_owned(), f64::INFINITY)])
        );
        // Array of pairs (GEOPOS-like) and an empty reply.
        let reply = Value::Array(vec![
            Value::Array(vec![bulk(b"1"), bulk(b"2")]),
            Value::Array(vec![bulk(b"3"), bulk(b"4")]),
        ]);
        assert_eq!(
            Vec::<(i64, i64)>::from_value(reply),
            Ok(vec![(1, 2), (3, 4)])
        );
        assert_eq!(
            Vec::<(String, String)>::from_value(Value::Array(vec![])),
            Ok(vec![])
        );
        assert_eq!(
            Vec::<(String, String)>::from_value(Value::Array(vec![bulk(b"k")])),
            Err(unexpected(
                "array of key/value pairs (even length)",
                "array of 1 elements"
            ))
        );
        // SCAN: [cursor, [keys]]; BLPOP: [list, value] or nil.
        let reply = Value::Array(vec![bulk(b"0"), Value::Array(vec![bulk(b"k1")])]);
        assert_eq!(
            <(u64, Vec<String>)>::from_value(reply),
            Ok((0, vec!["k1".to_owned()]))
        );
        assert_eq!(Option::<(String, String)>::from_value(Value::Nil), Ok(None));
        assert_eq!(
            <(String, String)>::from_value(Value::Array(vec![bulk(b"a")])),
            Err(unexpected("array of 2 elements", "array of 1 elements"))
        );
    }

    // ---- fuzz ----

    /// xorshift64* (deterministic, no dependencies).
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        fn byte(&mut self) -> u8 {
            const ALPHABET: &[u8] = b"+-:$*\r\n0123456789-1ab%_\xff";
            if self.below(4) == 0 {
                self.next() as u8
            } else {
                ALPHABET
                    .get(self.below(ALPHABET.len()))
                    .copied()
                    .unwrap_or(b'0')
            }
        }

        fn text(&mut self) -> String {
            let len = self.below(12);
            (0..len)
                .map(|_| char::from(b' ' + self.below(95) as u8))
                .collect()
        }

        fn bytes(&mut self, max: usize) -> Vec<u8> {
            let len = self.below(max);
            (0..len).map(|_| self.byte()).collect()
        }

        fn value(&mut self, depth: usize) -> Value {
            let kinds = if depth >= 4 { 5 } else { 6 };
            match self.below(kinds) {
                0 => Value::Nil,
                1 => Value::Int(match self.below(4) {
                    0 => i64::MIN,
                    1 => i64::MAX,
                    _ => self.next() as i64 >> self.below(64),
                }),
                2 => Value::Status(self.text()),
                3 => Value::Error(self.text()),
                4 => Value::Bulk(self.bytes(40)),
                _ => {
                    let len = self.below(6);
                    Value::Array((0..len).map(|_| self.value(depth + 1)).collect())
                }
            }
        }
    }

    /// Decoding never panics, errors point inside the input, and whatever
    /// decodes re-encodes to something that decodes to the same value.
    fn check_any(input: &[u8]) {
        match decode(input) {
            Ok(value) => assert_eq!(decode(&value.encode()), Ok(value)),
            Err(error) => assert!(error.offset() <= input.len(), "{error:?}"),
        }
    }

    #[test]
    fn fuzz() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..100_000 {
            // Valid values round-trip.
            let value = rng.value(0);
            let encoded = value.encode();
            assert_eq!(decode(&encoded), Ok(value.clone()));

            // Commands round-trip.
            let args: Vec<Vec<u8>> = (0..rng.below(5)).map(|_| rng.bytes(20)).collect();
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let command = encode_command(&refs);
            let expected = Value::Array(args.iter().map(|a| bulk(a)).collect());
            assert_eq!(decode(&command), Ok(expected));

            // Every strict prefix is an error.
            let cut = rng.below(encoded.len());
            let prefix = encoded.get(..cut).unwrap_or_default();
            assert!(decode(prefix).is_err());
            check_any(prefix);

            // Extra bytes are an error.
            let mut longer = encoded.clone();
            longer.push(rng.byte());
            assert_eq!(
                decode(&longer),
                Err(DecodeError::TrailingBytes {
                    offset: encoded.len(),
                    count: 1
                })
            );

            // Mutations never panic.
            let mut mutated = encoded;
            for _ in 0..=rng.below(3) {
                let at = rng.below(mutated.len() + 1);
                match rng.below(3) {
                    0 => {
                        if let Some(slot) = mutated.get_mut(at) {
                            *slot = rng.byte();
                        }
                    }
                    1 => mutated.insert(at, rng.byte()),
                    _ => {
                        if at < mutated.len() {
                            mutated.remove(at);
                        }
                    }
                }
            }
            check_any(&mutated);

            // Random bytes never panic.
            check_any(&rng.bytes(30));
        }
    }
}
