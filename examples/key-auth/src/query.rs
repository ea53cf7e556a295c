//! Query-string parsing as Go's `url.Parse(path).Query()` does it (the SDK
//! has no query parser yet).

/// The decoded `(name, value)` pairs of `path`'s query, in order. Like Go:
/// pairs are split on `&`, a pair containing `;` or an invalid `%` escape is
/// skipped, `+` is a space, and a pair without `=` has an empty value.
pub(crate) fn query_pairs(path: &str) -> Vec<(String, String)> {
    let Some((_, query)) = path.split_once('?') else {
        return Vec::new();
    };
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape(name)?, unescape(value)?))
        })
        .collect()
}

/// Go's `url.QueryUnescape`: `None` on a bad `%` escape.
fn unescape(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex(bytes.next()?)?;
                let lo = hex(bytes.next()?)?;
                out.push(hi << 4 | lo);
            }
            _ => out.push(b),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::query_pairs;

    #[test]
    fn parses_like_go() {
        let pairs = query_pairs("/p?a=1&b=x+y%21&&c&d=%zz&e;f=2&a=3#frag");
        let want = [("a", "1"), ("b", "x y!"), ("c", ""), ("a", "3")];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(pairs, want);
        assert!(query_pairs("/no-query").is_empty());
    }
}
