//! The seven operations on headers, query parameters and bodies.
use crate::config::{Op, Param, Pattern, Source, Step, ValueType};
use crate::json_path::{self, to_text};
use crate::multipart;
use crate::url::{self, Kvs};
use serde_json::Value;

/// What a `map` found.
pub(crate) enum Found {
    Values(Vec<String>),
    Json(Value),
}

/// A body, parsed.
#[derive(Debug)]
pub(crate) enum Body {
    Json(Value),
    Form(Kvs),
    Multipart { boundary: String, fields: Kvs },
}

/// What a transformation can read besides its target.
#[derive(Default)]
pub(crate) struct Sources<'a> {
    pub(crate) headers: Option<&'a Kvs>,
    pub(crate) querys: Option<&'a Kvs>,
    pub(crate) body: Option<&'a Body>,
}

impl Sources<'_> {
    fn find(&self, source: Source, key: &str) -> Option<Found> {
        let kv = |kvs: Option<&Kvs>| kvs?.get(key).cloned().map(Found::Values);
        match source {
            Source::Headers => kv(self.headers),
            Source::Querys => kv(self.querys),
            Source::Body => match self.body? {
                Body::Form(kvs) | Body::Multipart { fields: kvs, .. } => kv(Some(kvs)),
                Body::Json(doc) => json_path::get(doc, key).cloned().map(Found::Json),
            },
        }
    }
}

/// The value of a replace/add/append, through its pattern if it matches.
fn expand(param: &Param, host: &str, path: &str) -> String {
    let (regex, subject) = match &param.pattern {
        Some(Pattern::Host(r)) => (r, host),
        Some(Pattern::Path(r)) => (r, path),
        None => return param.value.clone(),
    };
    if regex.is_match(subject) {
        regex
            .replace_all(subject, param.value.as_str())
            .into_owned()
    } else {
        param.value.clone()
    }
}

/// Go's `strings.Split(s, ",")` first or last piece.
fn split_piece(text: &str, last: bool) -> String {
    let piece = if last {
        text.rsplit(',').next()
    } else {
        text.split(',').next()
    };
    piece.unwrap_or_default().to_owned()
}

/// Applies `steps` to headers, query parameters or a form body.
pub(crate) fn apply_kv(
    steps: &[Step],
    target: Source,
    kvs: &mut Kvs,
    other: &Sources<'_>,
    hp: (&str, &str),
) {
    for step in steps {
        for p in &step.params {
            match step.op {
                Op::Remove => {
                    kvs.remove(&p.key);
                }
                Op::Rename => {
                    if let Some(values) = kvs.remove(&p.key) {
                        kvs.entry(p.value.clone()).or_default().extend(values);
                    }
                }
                Op::Replace => {
                    kvs.insert(p.key.clone(), vec![expand(p, hp.0, hp.1)]);
                }
                Op::Add => {
                    if !kvs.contains_key(&p.key) {
                        kvs.insert(p.key.clone(), vec![expand(p, hp.0, hp.1)]);
                    }
                }
                Op::Append => {
                    let value = expand(p, hp.0, hp.1);
                    kvs.entry(p.key.clone()).or_default().push(value);
                }
                Op::Map => {
                    let found = if step.source == target {
                        kvs.get(&p.key).cloned().map(Found::Values)
                    } else {
                        other.find(step.source, &p.key)
                    };
                    match found {
                        Some(Found::Values(values)) => {
                            kvs.insert(p.value.clone(), values);
                        }
                        Some(Found::Json(json)) => {
                            let text = to_text(&json);
                            if !text.is_empty() {
                                kvs.insert(p.value.clone(), vec![text]);
                            }
                        }
                        None => {}
                    }
                }
                Op::Dedupe => {
                    let Some(values) = kvs.get_mut(&p.key).filter(|v| !v.is_empty()) else {
                        continue;
                    };
                    match p.value.to_uppercase().as_str() {
                        "RETAIN_UNIQUE" => {
                            let mut seen = Vec::new();
                            values.retain(|v| {
                                let new = !seen.contains(v);
                                if new {
                                    seen.push(v.clone());
                                }
                                new
                            });
                        }
                        "RETAIN_LAST" => {
                            let last = values.split_off(values.len().saturating_sub(1));
                            *values = last;
                        }
                        "SPLIT_AND_RETAIN_FIRST" | "SPLIT_AND_RETAIN_LAST" => {
                            let last = p.value.to_uppercase().ends_with("LAST");
                            let first = values.first().cloned().unwrap_or_default();
                            *values = vec![split_piece(&first, last)];
                        }
                        _ => values.truncate(1),
                    }
                }
            }
        }
    }
}

/// A replace/add/append value as its `value_type` (Go's `convertByJsonType`).
pub(crate) fn convert(value: String, value_type: ValueType) -> Option<Value> {
    match value_type {
        ValueType::String => Some(Value::String(value)),
        ValueType::Object => serde_json::from_str(&value).ok(),
        ValueType::Boolean => match value.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(Value::Bool(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(Value::Bool(false)),
            _ => None,
        },
        ValueType::Number => {
            let n: f64 = value.trim().parse().ok()?;
            // Go marshals 3.0 as 3.
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Some(Value::from(n as i64))
            } else {
                serde_json::Number::from_f64(n).map(Value::Number)
            }
        }
    }
}

/// Applies `steps` to a JSON body; `None` (body left as it was) when an
/// operation fails, as Go gives up on the whole body.
pub(crate) fn apply_json(
    steps: &[Step],
    doc: &mut Value,
    other: &Sources<'_>,
    hp: (&str, &str),
) -> Option<()> {
    use json_path::{delete, get, set};
    for step in steps {
        for p in &step.params {
            let typed = |p: &Param| {
                let value = match p.value_type {
                    ValueType::String => expand(p, hp.0, hp.1),
                    _ => p.value.clone(),
                };
                convert(value, p.value_type)
            };
            match step.op {
                Op::Remove => {
                    delete(doc, &p.key);
                }
                Op::Rename => {
                    if let Some(value) = get(doc, &p.key).cloned() {
                        set(doc, &p.value, value).then_some(())?;
                        delete(doc, &p.key);
                    }
                }
                Op::Replace => set(doc, &p.key, typed(p)?).then_some(())?,
                Op::Add => {
                    if get(doc, &p.key).is_none() {
                        set(doc, &p.key, typed(p)?).then_some(())?;
                    }
                }
                Op::Append => {
                    let new = typed(p)?;
                    let value = match get(doc, &p.key) {
                        None => new,
                        Some(Value::Array(items)) => {
                            let mut items = items.clone();
                            items.push(new);
                            Value::Array(items)
                        }
                        Some(old) => Value::Array(vec![old.clone(), new]),
                    };
                    set(doc, &p.key, value).then_some(())?;
                }
                Op::Map => {
                    let found = if step.source == Source::Body {
                        get(doc, &p.key).cloned().map(Found::Json)
                    } else {
                        other.find(step.source, &p.key)
                    };
                    let value = match found {
                        Some(Found::Values(values)) => Value::from(values),
                        Some(Found::Json(json)) => json,
                        None => continue,
                    };
                    set(doc, &p.value, value).then_some(())?;
                }
                Op::Dedupe => {
                    let Some(Value::Array(values)) = get(doc, &p.key) else {
                        continue;
                    };
                    let Some(first) = values.first() else {
                        continue;
                    };
                    let strategy = p.value.to_uppercase();
                    let deduped = match strategy.as_str() {
                        "RETAIN_UNIQUE" => {
                            let mut seen = Vec::new();
                            let mut unique = Vec::new();
                            for v in values {
                                if !seen.contains(&to_text(v)) {
                                    seen.push(to_text(v));
                                    unique.push(v.clone());
                                }
                            }
                            match unique.len() {
                                1 => unique.swap_remove(0),
                                _ => Value::Array(unique),
                            }
                        }
                        "RETAIN_LAST" => values.last().cloned().unwrap_or(Value::Null),
                        "SPLIT_AND_RETAIN_FIRST" | "SPLIT_AND_RETAIN_LAST" => {
                            let last = strategy.ends_with("LAST");
                            Value::String(split_piece(&to_text(first), last))
                        }
                        _ => first.clone(),
                    };
                    set(doc, &p.key, deduped).then_some(())?;
                }
            }
        }
    }
    Some(())
}

/// The media type of a `content-type`, lowercased, without parameters.
pub(crate) fn media_type(content_type: &str) -> String {
    let media = content_type.split(';').next().unwrap_or_default();
    media.trim().to_ascii_lowercase()
}

/// The body as its content type says (JSON, form, multipart fields); `None`
/// for other types, an empty or a malformed body.
pub(crate) fn parse_body(content_type: &str, body: &[u8]) -> Option<Body> {
    match media_type(content_type).as_str() {
        "application/json" => serde_json::from_slice(body).ok().map(Body::Json),
        "application/x-www-form-urlencoded" => {
            url::parse_strict(&String::from_utf8_lossy(body)).map(Body::Form)
        }
        "multipart/form-data" => {
            let boundary = multipart::boundary(content_type)?;
            let fields = multipart::parse(body, &boundary)?;
            Some(Body::Multipart { boundary, fields })
        }
        _ => None,
    }
}

/// The body written back: JSON pretty with a final newline, as Go's
/// `pretty.Pretty` ends it; forms and multipart as Go encodes them.
pub(crate) fn body_bytes(body: &Body) -> Vec<u8> {
    match body {
        Body::Json(doc) => {
            let mut bytes = serde_json::to_vec_pretty(doc).unwrap_or_default();
            bytes.push(b'\n');
            bytes
        }
        Body::Form(kvs) => url::encode(kvs).into_bytes(),
        Body::Multipart { boundary, fields } => multipart::write(fields, boundary),
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_body_by_media_type() {
        // Go's utils_test.go TestParseBody: application/json, unsupported
        // content type, empty body (the form case is in url.rs).
        let text = br#"{"k1": "v2", "k2": 20, "k3": true, "k4": [1, 2, 3], "k5": {"k6": "v6"}}"#;
        match parse_body("application/json", text) {
            Some(Body::Json(doc)) => {
                let k6 = doc.get("k5").and_then(|v| v.get("k6"));
                assert_eq!(k6, Some(&json!("v6")));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_body("application/json; charset=utf-8", b"[1]").is_some());
        assert!(parse_body("plain/text", b"qwe").is_none());
        assert!(parse_body("application/json", b"").is_none());
    }

    #[test]
    fn construct_json_body() {
        // TestConstructBody / application/json: the same JSON, pretty, with
        // a final newline (whitespace inside differs from Go's `pretty`).
        let doc = json!({"k1": {"k2": [1, 2, 3]}});
        let bytes = body_bytes(&Body::Json(doc.clone()));
        assert!(bytes.ends_with(b"}\n"));
        let back: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(back, doc);
    }

    #[test]
    fn convert_by_json_type() {
        // TestConvertByJsonType: object, boolean, boolean: failed, number,
        // string, unsupported type (read as string when parsing the config).
        assert_eq!(
            convert(r#"{"a": [1, "b"]}"#.into(), ValueType::Object),
            Some(json!({"a": [1, "b"]}))
        );
        assert_eq!(
            convert("true".into(), ValueType::Boolean),
            Some(json!(true))
        );
        assert_eq!(convert("T".into(), ValueType::Boolean), Some(json!(true)));
        assert_eq!(convert("yes".into(), ValueType::Boolean), None);
        assert_eq!(convert("3".into(), ValueType::Number), Some(json!(3)));
        assert_eq!(convert("2.5".into(), ValueType::Number), Some(json!(2.5)));
        assert_eq!(convert("x".into(), ValueType::Number), None);
        assert_eq!(convert("s".into(), ValueType::String), Some(json!("s")));
    }
}
