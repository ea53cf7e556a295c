//! Hiding configured string values in error messages.
//!
//! Every error this module's callers make passes through [`redact`], so a
//! mistyped secret never reaches the gateway log.

/// Replaces a configured string value in an error message.
const HIDDEN: &str = "(value hidden)";

/// serde message prefixes whose only possible value echo is rewritten below;
/// the rest of such a message is type names, field names and numbers.
const SERDE_FORMATS: [&str; 7] = [
    "invalid type: ",
    "invalid value: ",
    "invalid length ",
    "unknown variant ",
    "unknown field ",
    "missing field ",
    "duplicate field ",
];

/// Removes configured string values from a serde error message.
///
/// serde quotes strings as `string "<escaped>"` and characters as
/// ``character `c` ``; both are cut. In ``unknown variant `<value>`, ...``
/// the value becomes `(value hidden)`. `value`, the string at the error's
/// path when known, pins the variant exactly; for messages that are not in a
/// standard serde format (custom errors), every occurrence of it (if it is at
/// least three characters long) is hidden as well.
pub(super) fn redact(message: &str, value: Option<&str>) -> String {
    let mut out = message.to_owned();
    for marker in ["invalid type: string ", "invalid value: string "] {
        out = cut_quoted(&out, marker);
    }
    for marker in ["invalid type: character ", "invalid value: character "] {
        out = cut_char(&out, marker);
    }
    out = hide_variant(&out, value);

    let standard = SERDE_FORMATS.iter().any(|p| message.starts_with(p));
    if let Some(value) = value {
        if !standard && value.chars().count() >= 3 {
            out = crate::wire::replace(&out, value, HIDDEN);
            let escaped = format!("{value:?}");
            let escaped = escaped
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(&escaped);
            if escaped != value {
                out = crate::wire::replace(&out, escaped, HIDDEN);
            }
        }
    }
    out
}

/// Joins `s[..a]` and `s[b..]` with `middle`; `None` if out of bounds.
fn splice(s: &str, a: usize, b: usize, middle: &str) -> Option<String> {
    Some(format!("{}{middle}{}", s.get(..a)?, s.get(b..)?))
}

/// `<marker>"<debug-escaped>"` -> `<marker>` minus its trailing space.
fn cut_quoted(message: &str, marker: &str) -> String {
    let mut out = message.to_owned();
    let mut from = 0;
    while let Some(found) = out
        .as_bytes()
        .get(from..)
        .and_then(|s| crate::wire::find(s, marker.as_bytes()))
    {
        let start = from + found + marker.len();
        let rest = out.get(start..).unwrap_or_default();
        let Some(body) = rest.strip_prefix('"') else {
            from = start;
            continue;
        };
        let Some(close) = closing_quote(body) else {
            break;
        };
        // Cut from the space before the quote to the closing quote.
        let end = start + 1 + close + 1;
        match splice(&out, start - 1, end, "") {
            Some(next) => out = next,
            None => break,
        }
        from = start - 1;
    }
    out
}

/// Byte position of the first `"` not escaped by a backslash.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i);
        }
    }
    None
}

/// ``<marker>`c` `` -> `<marker>` minus its trailing space.
fn cut_char(message: &str, marker: &str) -> String {
    let mut out = message.to_owned();
    let mut from = 0;
    while let Some(found) = out
        .as_bytes()
        .get(from..)
        .and_then(|s| crate::wire::find(s, marker.as_bytes()))
    {
        let start = from + found + marker.len();
        let rest = out.get(start..).unwrap_or_default();
        let mut chars = rest.chars();
        let len = match (chars.next(), chars.next(), chars.next()) {
            (Some('`'), Some(c), Some('`')) => 2 + c.len_utf8(),
            _ => {
                from = start;
                continue;
            }
        };
        match splice(&out, start - 1, start + len, "") {
            Some(next) => out = next,
            None => break,
        }
        from = start - 1;
    }
    out
}

/// ``unknown variant `<value>`, expected ...`` ->
/// `unknown variant (value hidden), expected ...`.
fn hide_variant(message: &str, value: Option<&str>) -> String {
    const MARKER: &str = "unknown variant `";
    let Some(found) = crate::wire::find(message.as_bytes(), MARKER.as_bytes()) else {
        return message.to_owned();
    };
    let body_start = found + MARKER.len();
    let body = message.get(body_start..).unwrap_or_default();
    let exact = value.filter(|v| {
        body.strip_prefix(*v)
            .is_some_and(|after| after.starts_with('`'))
    });
    let close = match exact {
        Some(v) => Some(v.len()),
        None => {
            let body = body.as_bytes();
            crate::wire::rfind(body, b"`, expected ")
                .or_else(|| crate::wire::rfind(body, b"`, there are no variants"))
                .or_else(|| body.iter().rposition(|&b| b == b'`'))
        }
    };
    let Some(close) = close else {
        return message.to_owned();
    };
    // Replace from the opening backtick to the closing one.
    splice(message, body_start - 1, body_start + close + 1, HIDDEN)
        .unwrap_or_else(|| message.to_owned())
}
