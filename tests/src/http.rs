//! HTTP/1.1 message framing shared by the echo upstream and the client.
//!
//! Header values are kept as raw bytes: the point of the harness is to see
//! exactly what crossed the wire, including bytes that are not UTF-8.

use std::io::{BufRead, Read};

use crate::error::{Error, Result};

/// Upper bound for a request or status line plus headers.
const MAX_HEAD: usize = 1 << 20;
/// Upper bound for one message body.
const MAX_BODY: usize = 256 << 20;

/// Header list as it was on the wire: name (as sent) and raw value bytes.
pub type Headers = Vec<(String, Vec<u8>)>;

/// The first value of header `name` (ASCII case-insensitive).
pub(crate) fn find<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

fn trim_bytes(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if first.is_ascii_whitespace() {
            bytes = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = bytes {
        if last.is_ascii_whitespace() {
            bytes = rest;
        } else {
            break;
        }
    }
    bytes
}

/// A message head: its first line and its headers.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) start_line: String,
    pub(crate) headers: Headers,
}

/// Reads one message head. `Ok(None)` on a clean end of stream before the
/// first byte (the peer closed an idle keep-alive connection).
pub(crate) fn read_head(reader: &mut impl BufRead) -> Result<Option<Head>> {
    let mut start_line: Option<String> = None;
    let mut headers = Headers::new();
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("reading HTTP head", e))?;
        if n == 0 {
            if start_line.is_none() && total == 0 {
                return Ok(None);
            }
            return Err(Error::Protocol(
                "connection closed inside the HTTP head".into(),
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(Error::Protocol(format!(
                "HTTP head longer than {MAX_HEAD} bytes"
            )));
        }
        let line = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(&line);
        match start_line {
            None => {
                if line.is_empty() {
                    // Tolerate stray CRLF between pipelined messages.
                    continue;
                }
                start_line = Some(String::from_utf8_lossy(line).into_owned());
            }
            Some(start_line) if line.is_empty() => {
                return Ok(Some(Head {
                    start_line,
                    headers,
                }));
            }
            Some(_) => {
                let colon = line.iter().position(|&b| b == b':').ok_or_else(|| {
                    Error::Protocol(format!(
                        "header line without ':': {:?}",
                        String::from_utf8_lossy(line)
                    ))
                })?;
                let (name, value) = line.split_at(colon);
                let value = value.get(1..).unwrap_or_default();
                headers.push((
                    String::from_utf8_lossy(name).trim().to_owned(),
                    trim_bytes(value).to_vec(),
                ));
            }
        }
    }
}

fn is_chunked(headers: &[(String, Vec<u8>)]) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .any(|(_, v)| {
            String::from_utf8_lossy(v)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("chunked"))
        })
}

fn content_length(headers: &[(String, Vec<u8>)]) -> Result<Option<usize>> {
    match find(headers, "content-length") {
        None => Ok(None),
        Some(v) => {
            let text = String::from_utf8_lossy(v);
            let len = text
                .trim()
                .parse::<usize>()
                .map_err(|_| Error::Protocol(format!("bad content-length {text:?}")))?;
            if len > MAX_BODY {
                return Err(Error::Protocol(format!("content-length {len} too large")));
            }
            Ok(Some(len))
        }
    }
}

fn read_exact_vec(reader: &mut impl Read, len: usize) -> Result<Vec<u8>> {
    let mut body = vec![0u8; len];
    reader
        .read_exact(&mut body)
        .map_err(|e| Error::io(format!("reading a {len}-byte body"), e))?;
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = Vec::new();
        reader
            .read_until(b'\n', &mut size_line)
            .map_err(|e| Error::io("reading a chunk size", e))?;
        if size_line.is_empty() {
            return Err(Error::Protocol(
                "connection closed inside a chunked body".into(),
            ));
        }
        let text = String::from_utf8_lossy(&size_line);
        let hex = text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16)
            .map_err(|_| Error::Protocol(format!("bad chunk size line {text:?}")))?;
        if size == 0 {
            // Trailers (ignored) end with an empty line.
            loop {
                let mut line = Vec::new();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| Error::io("reading chunked trailers", e))?;
                if n == 0 || trim_bytes(&line).is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(Error::Protocol("chunked body too large".into()));
        }
        body.extend(read_exact_vec(reader, size)?);
        let mut crlf = Vec::new();
        reader
            .read_until(b'\n', &mut crlf)
            .map_err(|e| Error::io("reading the end of a chunk", e))?;
    }
}

/// Reads a request body framed by `Transfer-Encoding: chunked` or
/// `Content-Length` (no framing means no body).
pub(crate) fn read_request_body(
    reader: &mut impl BufRead,
    headers: &[(String, Vec<u8>)],
) -> Result<Vec<u8>> {
    if is_chunked(headers) {
        return read_chunked(reader);
    }
    match content_length(headers)? {
        Some(len) => read_exact_vec(reader, len),
        None => Ok(Vec::new()),
    }
}

/// Reads a response body; without framing it runs to the end of the stream.
pub(crate) fn read_response_body(
    reader: &mut impl BufRead,
    headers: &[(String, Vec<u8>)],
    request_method: &str,
    status: u16,
) -> Result<Vec<u8>> {
    if request_method.eq_ignore_ascii_case("HEAD")
        || status == 204
        || status == 304
        || (100..200).contains(&status)
    {
        return Ok(Vec::new());
    }
    if is_chunked(headers) {
        return read_chunked(reader);
    }
    if let Some(len) = content_length(headers)? {
        return read_exact_vec(reader, len);
    }
    let mut body = Vec::new();
    reader
        .take(MAX_BODY as u64)
        .read_to_end(&mut body)
        .map_err(|e| Error::io("reading a response body up to end of stream", e))?;
    Ok(body)
}
