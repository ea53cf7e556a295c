//! Query strings as Go's `net/url` reads and writes them (the SDK has no
//! query parser yet).

use std::collections::BTreeMap;

/// Names to their values, sorted by name: Go keeps them in a map and
/// `url.Values.Encode` sorts by name.
pub(crate) type Kvs = BTreeMap<String, Vec<String>>;

/// Go's `url.ParseQuery`: `None` if any pair is bad (a `;`, or a bad `%`
/// escape), as the form-body parser treats an error.
pub(crate) fn parse_strict(query: &str) -> Option<Kvs> {
    let mut kvs = Kvs::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if pair.contains(';') {
            return None;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        kvs.entry(unescape(name)?)
            .or_default()
            .push(unescape(value)?);
    }
    Some(kvs)
}

/// Go's `url.Parse(path).Query()`: bad pairs are skipped.
pub(crate) fn query_of(path: &str) -> Kvs {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    let mut kvs = Kvs::new();
    for pair in query.split('&') {
        if let Some(parsed) = parse_strict(pair) {
            for (name, values) in parsed {
                kvs.entry(name).or_default().extend(values);
            }
        }
    }
    kvs
}

/// Go's `url.Values.Encode`: sorted by name, `QueryEscape`d.
pub(crate) fn encode(kvs: &Kvs) -> String {
    let mut out = String::new();
    for (name, values) in kvs {
        for value in values {
            if !out.is_empty() {
                out.push('&');
            }
            escape_into(&mut out, name);
            out.push('=');
            escape_into(&mut out, value);
        }
    }
    out
}

/// `path` with its query replaced by `kvs` (no `?` when empty), as Go's
/// `constructPath`.
pub(crate) fn with_query(path: &str, kvs: &Kvs) -> String {
    let base = escape_path(path.split_once('?').map_or(path, |(p, _)| p));
    let query = encode(kvs);
    if query.is_empty() {
        base
    } else {
        format!("{base}?{query}")
    }
}

/// Escapes what Go's `URL.EscapedPath` would (a space becomes `%20`),
/// keeping existing `%XX` escapes.
fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@!'()*[]%".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn escape_into(out: &mut String, text: &str) {
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// Go's `url.QueryUnescape`: `+` is a space, `None` on a bad escape.
fn unescape(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi << 4 | lo).ok()?);
            }
            _ => out.push(b),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn parse_query_by_path() {
        // Go's utils_test.go TestParseQueryByPath: common, empty query,
        // multiple values, encoded url.
        let common = kvs(&[("k1", &["v1"]), ("k2", &["v2"]), ("k3", &["v3"])]);
        assert_eq!(query_of("/get?k1=v1&k2=v2&k3=v3"), common);
        assert_eq!(query_of("www.example.com/get"), Kvs::new());
        assert_eq!(
            query_of("www.example.com/get?k1=v11&k1=v12&k2=v2&k1=v13"),
            kvs(&[("k1", &["v11", "v12", "v13"]), ("k2", &["v2"])])
        );
        assert_eq!(
            query_of("/get%20with%3Freserved%20characters?key=Hello+World"),
            kvs(&[("key", &["Hello World"])])
        );
        // Bad pairs are skipped, as url.Query() does.
        assert_eq!(query_of("/?a=%zz&b=1;c&d=2"), kvs(&[("d", &["2"])]));
    }

    #[test]
    fn construct_path() {
        // TestConstructPath: common, empty query, encoded url.
        let common = kvs(&[("k1", &["v1"]), ("k2", &["v2"]), ("k3", &["v3"])]);
        assert_eq!(with_query("/get", &common), "/get?k1=v1&k2=v2&k3=v3");
        assert_eq!(
            with_query("www.example.com/get", &Kvs::new()),
            "www.example.com/get"
        );
        assert_eq!(
            with_query("/get with?", &kvs(&[("key", &["Hello World"])])),
            "/get%20with?key=Hello+World"
        );
    }

    #[test]
    fn form_bodies() {
        // TestParseBody / TestConstructBody, application/x-www-form-urlencoded.
        let parsed = parse_strict("k1=v11&k1=v12&k2=v2&k3=v3");
        let want = kvs(&[("k1", &["v11", "v12"]), ("k2", &["v2"]), ("k3", &["v3"])]);
        assert_eq!(parsed, Some(want));
        assert_eq!(encode(&kvs(&[("k1", &["v11", "v12"])])), "k1=v11&k1=v12");
        assert_eq!(parse_strict("a=1&b=%zz"), None);
        assert_eq!(encode(&kvs(&[("a b", &["x/y&z"])])), "a+b=x%2Fy%26z");
    }
}
