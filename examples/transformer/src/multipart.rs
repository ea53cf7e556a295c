//! `multipart/form-data` fields, read and written as Go's `mime/multipart`
//! does for the transformer (the SDK has no multipart codec).

use crate::url::Kvs;

/// The `boundary` parameter of a `multipart/form-data` content type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// A `name="value"` parameter of a `Content-Disposition` header.
fn disposition_param(header: &str, param: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        (name.trim() == param).then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The form fields of `body`. `None` if it is not well-formed, or if it
/// carries a file: Go drops file parts when it rewrites the body; the port
/// leaves such a body alone instead.
pub(crate) fn parse(body: &[u8], boundary: &str) -> Option<Kvs> {
    let delimiter = format!("--{boundary}");
    let mut rest = body.get(find(body, delimiter.as_bytes())? + delimiter.len()..)?;
    let next = format!("\r\n--{boundary}");
    let mut kvs = Kvs::new();
    loop {
        if rest.starts_with(b"--") {
            return Some(kvs);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let end = find(rest, next.as_bytes())?;
        let part = rest.get(..end)?;
        rest = rest.get(end + next.len()..)?;
        let split = find(part, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(part.get(..split)?);
        let content = part.get(split + 4..)?;
        let disposition = headers.split("\r\n").find(|line| {
            line.to_ascii_lowercase()
                .starts_with("content-disposition:")
        })?;
        if disposition_param(disposition, "filename").is_some() {
            return None;
        }
        if let Some(name) = disposition_param(disposition, "name").filter(|n| !n.is_empty()) {
            let value = String::from_utf8_lossy(content).into_owned();
            kvs.entry(name).or_default().push(value);
        }
    }
}

/// Go's `multipart.Writer` with `WriteField` per value, names sorted.
pub(crate) fn write(kvs: &Kvs, boundary: &str) -> Vec<u8> {
    let mut out = String::new();
    for (name, values) in kvs {
        let name = name.replace('\\', "\\\\").replace('"', "\\\"");
        for value in values {
            let lead = if out.is_empty() { "" } else { "\r\n" };
            out.push_str(&format!(
                "{lead}--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}"
            ));
        }
    }
    let lead = if out.is_empty() { "" } else { "\r\n" };
    out.push_str(&format!("{lead}--{boundary}--\r\n"));
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDARY: &str = "--------------------------962785348548682888818907";

    fn kvs(pairs: &[(&str, &[&str])]) -> Kvs {
        pairs
            .iter()
            .map(|(k, vs)| {
                (
                    (*k).to_owned(),
                    vs.iter().map(|v| (*v).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn parse_body_multipart() {
        // Go's utils_test.go TestParseBody / multipart/form-data.
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        assert_eq!(boundary(&content_type).as_deref(), Some(BOUNDARY));
        let body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"k1\"\r\n\r\nv11\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"k1\"\r\n\r\nv12\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"k2\"\r\n\r\nv2\r\n\
             --{BOUNDARY}--\r\n"
        );
        let want = kvs(&[("k1", &["v11", "v12"]), ("k2", &["v2"])]);
        assert_eq!(parse(body.as_bytes(), BOUNDARY), Some(want));
        // A file part: left alone.
        let file = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
        );
        assert_eq!(parse(file.as_bytes(), BOUNDARY), None);
        assert_eq!(parse(b"garbage", BOUNDARY), None);
    }

    #[test]
    fn construct_body_multipart() {
        // TestConstructBody / multipart/form-data: byte for byte.
        let want = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"k1\"\r\n\r\nv11\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"k1\"\r\n\r\nv12\r\n\
             --{BOUNDARY}--\r\n"
        );
        let body = write(&kvs(&[("k1", &["v11", "v12"])]), BOUNDARY);
        assert_eq!(String::from_utf8_lossy(&body), want);
        let round = parse(&body, BOUNDARY);
        assert_eq!(round, Some(kvs(&[("k1", &["v11", "v12"])])));
    }
}
