//! Proxy-wasm wire formats: header maps and property paths.
//!
//! Map: `u32 LE count`, then `(u32 LE name_len, u32 LE value_len)` per pair,
//! then `name \0 value \0` per pair. Decoding never panics: a truncated or
//! inconsistent buffer yields the pairs that could be read.

/// Serializes header pairs for the host.
pub(crate) fn encode_map(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(n, v)| 8 + n.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&len_u32(name.len()).to_le_bytes());
        out.extend_from_slice(&len_u32(value.len()).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    let arr: [u8; 4] = b.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(arr)).ok()
}

/// Calls `f(name, value)` for each pair of a serialized header map, in
/// order, borrowing from `bytes` (nothing is allocated). A truncated or
/// inconsistent buffer yields the pairs that could be read.
pub(crate) fn for_each_pair(bytes: &[u8], mut f: impl FnMut(&[u8], &[u8])) {
    let Some(count) = read_u32(bytes, 0) else {
        return;
    };
    let Some(mut data) = count.checked_mul(8).and_then(|n| n.checked_add(4)) else {
        return;
    };
    for i in 0..count {
        let Some(name_len) = read_u32(bytes, 4 + i * 8) else {
            break;
        };
        let Some(value_len) = read_u32(bytes, 8 + i * 8) else {
            break;
        };
        let Some(name) = data
            .checked_add(name_len)
            .and_then(|end| bytes.get(data..end))
        else {
            break;
        };
        data += name_len + 1;
        let Some(value) = data
            .checked_add(value_len)
            .and_then(|end| bytes.get(data..end))
        else {
            break;
        };
        data += value_len + 1;
        f(name, value);
    }
}

/// Deserializes a header map from the host. Names are decoded lossily (Envoy
/// header names are ASCII); values stay raw bytes.
pub(crate) fn decode_map(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    // Each pair needs at least 10 bytes: never pre-allocate more than the
    // buffer can describe.
    let count = read_u32(bytes, 0).unwrap_or(0);
    let mut out = Vec::with_capacity(count.min(bytes.len() / 10));
    for_each_pair(bytes, |name, value| {
        out.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    });
    out
}

/// Serializes a property path: segments separated by `\0`.
pub(crate) fn encode_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.iter().map(|p| p.len() + 1).sum());
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Byte position of the first `needle` in `hay`.
///
/// A plain scan, used instead of `str::find`/`contains`/`replace` with a
/// string pattern: the SDK only searches short texts, and core's two-way
/// searcher costs kilobytes of `.wasm` per use site. On `&str`s whose bytes
/// are given, a match always starts and ends on a character boundary.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Byte position of the last `needle` in `hay`.
pub(crate) fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(hay.len());
    }
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Whether `hay` contains `needle`, ASCII letters compared case-insensitively.
pub(crate) fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// `text` with every `from` replaced by `to` (`str::replace`; an empty
/// `from` replaces nothing).
pub(crate) fn replace(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = (!from.is_empty())
        .then(|| find(rest.as_bytes(), from.as_bytes()))
        .flatten()
    {
        out.push_str(rest.get(..at).unwrap_or_default());
        out.push_str(to);
        rest = rest.get(at + from.len()..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_search_matches_str_search() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("abc", ""),
            ("abc", "abcd"),
            ("aaa", "aa"),
            ("x`, expected y`, expected", "`, expected "),
            ("h\\u{e9}llo h\\u{e9}", "h\\u{e9}"),
            ("h\u{e9}llo h\u{e9}", "\u{e9}"),
        ];
        for (hay, needle) in cases {
            assert_eq!(find(hay.as_bytes(), needle.as_bytes()), hay.find(needle));
            assert_eq!(rfind(hay.as_bytes(), needle.as_bytes()), hay.rfind(needle));
            assert_eq!(
                contains_ignore_ascii_case(hay.to_ascii_uppercase().as_bytes(), needle.as_bytes()),
                hay.contains(needle),
                "{hay:?} {needle:?}"
            );
            if !needle.is_empty() {
                assert_eq!(replace(hay, needle, "<>"), hay.replace(needle, "<>"));
            }
        }
        assert_eq!(replace("abc", "", "x"), "abc");
    }

    #[test]
    fn map_round_trips_binary_values() {
        let value: &[u8] = &[0x80, 0xff, b'a'];
        let pairs: &[(&str, &[u8])] = &[(":path", b"/x"), ("x-user-id", value), ("empty", b"")];
        let decoded = decode_map(&encode_map(pairs));
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded.get(1).map(|p| p.1.as_slice()), Some(value));
        assert_eq!(decoded.get(2).map(|p| p.0.as_str()), Some("empty"));
    }

    #[test]
    fn truncated_map_never_panics() {
        let full = encode_map(&[("a", b"1"), ("bb", b"22")]);
        for cut in 0..full.len() {
            let got = decode_map(full.get(..cut).unwrap_or_default());
            assert!(got.len() <= 2);
        }
        // A count far larger than the buffer must not allocate or panic.
        let mut lying = vec![0xff, 0xff, 0xff, 0x7f];
        lying.extend_from_slice(&[1, 0, 0, 0]);
        assert!(decode_map(&lying).is_empty());
    }

    #[test]
    fn path_is_nul_separated() {
        assert_eq!(
            encode_path(&["xds", "route_name"]),
            b"xds\0route_name".to_vec()
        );
        assert_eq!(encode_path(&["route_name"]), b"route_name".to_vec());
        assert!(encode_path(&[]).is_empty());
    }
}
