//! Reading a request body the way Go's `gjson` does, for the fields the
//! endpoint policies look at (`model`, `messages[].role` / `.content`): a
//! value's text is gjson's `.String()` of it, so an object or array is its
//! raw text as sent (whitespace and key order kept) and both ports hash the
//! same bytes.
use serde_json::value::RawValue;
use std::collections::HashMap;

/// The members of a JSON object, values left raw. `None` when `json` is
/// not an object (or not JSON).
pub(crate) fn object(json: &str) -> Option<HashMap<String, &RawValue>> {
    if !json.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// [`object`] over bytes.
pub(crate) fn object_bytes(json: &[u8]) -> Option<HashMap<String, &RawValue>> {
    object(std::str::from_utf8(json).ok()?)
}

/// gjson's `.Array()`: an array's elements; `null` gives none, any other
/// value is an array of itself.
pub(crate) fn array(value: &RawValue) -> Vec<&RawValue> {
    let text = value.get();
    if text.starts_with('[') {
        serde_json::from_str(text).unwrap_or_default()
    } else if text == "null" {
        Vec::new()
    } else {
        vec![value]
    }
}

/// gjson's `.String()`: a string unescaped; `true` / `false`; `null` is
/// empty; an integer as written, another number in Go's shortest `'f'`
/// form; an object or array as its raw text.
pub(crate) fn text(value: &RawValue) -> String {
    let raw = value.get();
    match raw.as_bytes().first() {
        Some(b'"') => serde_json::from_str(raw).unwrap_or_default(),
        Some(b'n') => String::new(),
        Some(b'-' | b'0'..=b'9') => {
            let digits = raw.strip_prefix('-').unwrap_or(raw);
            if digits.bytes().all(|b| b.is_ascii_digit()) {
                raw.to_owned()
            } else {
                raw.parse::<f64>()
                    .map_or_else(|_| raw.to_owned(), |f| f.to_string())
            }
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }

    #[test]
    fn text_is_gjsons_string() {
        assert_eq!(text(&raw(r#""a\"b""#)), "a\"b");
        assert_eq!(text(&raw("null")), "");
        assert_eq!(text(&raw("true")), "true");
        assert_eq!(text(&raw("-12")), "-12");
        assert_eq!(text(&raw("1.50")), "1.5");
        assert_eq!(text(&raw("1e3")), "1000");
        assert_eq!(
            text(&raw(r#"[ {"type": "text", "b": 1, "a": 2} ]"#)),
            r#"[ {"type": "text", "b": 1, "a": 2} ]"#
        );
    }

    #[test]
    fn array_is_gjsons_array() {
        assert_eq!(array(&raw("[1, 2]")).len(), 2);
        assert!(array(&raw("null")).is_empty());
        assert_eq!(array(&raw(r#"{"a":1}"#)).len(), 1);
    }
}
