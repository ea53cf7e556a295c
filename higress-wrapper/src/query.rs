//! The query string of a request path, decoded.
//!
//! [`HttpContext::query_params`](crate::HttpContext::query_params) and
//! [`query_param`](crate::HttpContext::query_param) read the request's
//! `:path`; the functions here take any path or bare query string.
//!
//! Decoding follows `application/x-www-form-urlencoded`, as Go's
//! `url.ParseQuery` does for the pairs it accepts:
//! - pairs are split on `&`; empty pairs are skipped; a pair without `=`
//!   is a key with an empty value;
//! - `+` is a space, `%XX` is the byte `XX` (either case);
//! - a `%` not followed by two hex digits is kept as it is (Go rejects the
//!   pair instead; a gateway plugin is better served by the literal text);
//! - bytes that are not UTF-8 after decoding become U+FFFD;
//! - a `#fragment` is not part of the query.
//!
//! ```
//! use higress_wrapper::query;
//!
//! let params = query::parse("/login?user=a%20b&tag=x&tag=y+z&flag");
//! assert_eq!(params[0], ("user".to_owned(), "a b".to_owned()));
//! assert_eq!(query::all("/login?tag=x&tag=y+z", "tag"), ["x", "y z"]);
//! assert_eq!(query::first("/login?flag", "flag").as_deref(), Some(""));
//! assert_eq!(query::first("/login", "user"), None);
//! ```

/// The query part of `path_or_query`: what follows the first `?` (without a
/// `#fragment`), or the whole text if it has no `?` and does not start with
/// `/`.
fn query_part(path_or_query: &str) -> &str {
    let query = match path_or_query.split_once('?') {
        Some((_, query)) => query,
        None if path_or_query.starts_with('/') => "",
        None => path_or_query,
    };
    query.split_once('#').map_or(query, |(q, _)| q)
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes one key or value: `+` is a space, `%XX` a byte; a malformed
/// `%` stays literal; invalid UTF-8 becomes U+FFFD.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex);
                let lo = bytes.get(i + 2).copied().and_then(hex);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// The raw (still encoded) pairs of the query, in order.
fn raw_pairs(path_or_query: &str) -> impl Iterator<Item = (&str, &str)> {
    query_part(path_or_query)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// Every `(key, value)` of the query, decoded, in order (a key given twice
/// appears twice).
pub fn parse(path_or_query: &str) -> Vec<(String, String)> {
    raw_pairs(path_or_query)
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// The first value of `key` (compared after decoding), decoded.
pub fn first(path_or_query: &str, key: &str) -> Option<String> {
    raw_pairs(path_or_query)
        .find(|(k, _)| decode(k) == key)
        .map(|(_, v)| decode(v))
}

/// Every value of `key` (compared after decoding), decoded, in order.
pub fn all(path_or_query: &str, key: &str) -> Vec<String> {
    raw_pairs(path_or_query)
        .filter(|(k, _)| decode(k) == key)
        .map(|(_, v)| decode(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn splits_pairs_in_order_and_keeps_repeats() {
        assert_eq!(
            parse("/p?a=1&b=2&a=3"),
            pairs(&[("a", "1"), ("b", "2"), ("a", "3")])
        );
        assert_eq!(all("/p?a=1&b=2&a=3", "a"), ["1", "3"]);
        assert_eq!(first("/p?a=1&b=2&a=3", "a").as_deref(), Some("1"));
    }

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode("%E4%BD%A0%e5%a5%bd"), "你好");
        assert_eq!(decode("100%25"), "100%");
        assert_eq!(decode("a%2Bb"), "a+b");
        // keys are decoded too, and compared decoded
        assert_eq!(first("/p?api%5Fkey=k1", "api_key").as_deref(), Some("k1"));
    }

    #[test]
    fn malformed_percent_stays_literal() {
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%zz1"), "%zz1");
        assert_eq!(decode("50%+off"), "50% off");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(decode("a%FFb"), "a\u{FFFD}b");
    }

    #[test]
    fn empty_and_bare_keys() {
        assert!(parse("/p").is_empty());
        assert!(parse("/p?").is_empty());
        assert_eq!(
            parse("/p?&&a&b=&=v"),
            pairs(&[("a", ""), ("b", ""), ("", "v")])
        );
        assert_eq!(first("/p?a", "a").as_deref(), Some(""));
        assert_eq!(first("/p?a", "b"), None);
    }

    #[test]
    fn value_may_contain_equals_and_question_marks() {
        assert_eq!(first("/p?t=a=b?c", "t").as_deref(), Some("a=b?c"));
    }

    #[test]
    fn fragment_is_not_query() {
        assert_eq!(parse("/p?a=1#b=2"), pairs(&[("a", "1")]));
    }

    #[test]
    fn bare_query_string_is_accepted() {
        assert_eq!(parse("a=1&b=2"), pairs(&[("a", "1"), ("b", "2")]));
        assert!(parse("/only/a/path").is_empty());
    }
}
