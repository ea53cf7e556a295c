//! transformer: a port of Higress's `transformer` Go plugin.
//!
//! Rewrites request headers, query parameters and bodies (JSON,
//! `application/x-www-form-urlencoded`, `multipart/form-data`), and response
//! headers and JSON bodies, with the operations `remove`, `rename`, `replace`, `add`,
//! `append`, `map` and `dedupe`, applied in the order configured:
//!
//! ```json
//! {"reqRules": [{"operate": "add", "headers": [{"key": "x-a", "value": "1"}]}],
//!  "respRules": [{"operate": "remove", "body": [{"key": "secret"}]}]}
//! ```
//!
//! Same config keys, defaults, checks and results as Go; see the README for
//! what is not ported (GJSON wildcards, file parts) and why.
use higress_wrapper::config::from_json;
use higress_wrapper::prelude::*;
use json_path::to_text;
use regex_lite::Regex;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use url::Kvs;

mod json_path;
mod multipart;
mod url;

// ----- config -------------------------------------------------------------------

/// gjson's `.String()`: a string as is, a number or bool as its text.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawParam {
    #[serde(deserialize_with = "text")]
    key: String,
    #[serde(rename = "oldKey", deserialize_with = "text")]
    old_key: String,
    #[serde(rename = "newKey", deserialize_with = "text")]
    new_key: String,
    #[serde(rename = "newValue", deserialize_with = "text")]
    new_value: String,
    #[serde(deserialize_with = "text")]
    value: String,
    #[serde(rename = "appendValue", deserialize_with = "text")]
    append_value: String,
    #[serde(rename = "fromKey", deserialize_with = "text")]
    from_key: String,
    #[serde(rename = "toKey", deserialize_with = "text")]
    to_key: String,
    #[serde(deserialize_with = "text")]
    strategy: String,
    #[serde(deserialize_with = "text")]
    value_type: String,
    #[serde(deserialize_with = "text")]
    host_pattern: String,
    #[serde(deserialize_with = "text")]
    path_pattern: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawRule {
    #[serde(deserialize_with = "text")]
    operate: String,
    #[serde(rename = "mapSource")]
    map_source: Option<String>,
    headers: Vec<RawParam>,
    querys: Vec<RawParam>,
    body: Vec<RawParam>,
}

#[derive(Debug, Deserialize)]
struct RawConfig {
    reroute: Option<bool>,
    #[serde(rename = "reqRules")]
    req_rules: Option<Vec<RawRule>>,
    #[serde(rename = "respRules")]
    resp_rules: Option<Vec<RawRule>>,
}

/// A transformation operation (`operate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Delete `key`.
    Remove,
    /// Move `oldKey`'s values to `newKey`.
    Rename,
    /// Set `key` to `newValue`.
    Replace,
    /// Set `key` to `value` unless it exists.
    Add,
    /// Add `appendValue` to `key`'s values.
    Append,
    /// Copy `fromKey` (of `mapSource`) to `toKey`.
    Map,
    /// Reduce `key`'s values by `strategy`.
    Dedupe,
}

/// Where a `map` reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The headers.
    Headers,
    /// The query parameters.
    Querys,
    /// The body.
    Body,
}

/// `value_type` of a JSON body value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    String,
    Number,
    Boolean,
    Object,
}

/// `host_pattern` / `path_pattern`: the value is a replacement template
/// (`$1`) applied to the host or path when the pattern matches.
#[derive(Debug)]
enum Pattern {
    Host(Regex),
    Path(Regex),
}

#[derive(Debug)]
struct Param {
    /// `key`, `oldKey` or `fromKey`.
    key: String,
    /// `newKey`, `newValue`, `value`, `appendValue`, `toKey` or `strategy`.
    value: String,
    value_type: ValueType,
    pattern: Option<Pattern>,
}

#[derive(Debug)]
struct Step {
    op: Op,
    source: Source,
    params: Vec<Param>,
}

/// The steps for one direction, per target.
#[derive(Debug, Default)]
pub struct Transform {
    headers: Vec<Step>,
    querys: Vec<Step>,
    body: Vec<Step>,
    /// Some `map` reads the body: header and query changes wait for it.
    body_map_source: bool,
}

/// The parsed config.
#[derive(Debug)]
pub struct TransformerConfig {
    /// `reroute` (default true): let the gateway pick the route again after
    /// the headers changed.
    pub reroute: bool,
    /// `reqRules`.
    pub request: Option<Transform>,
    /// `respRules`.
    pub response: Option<Transform>,
}

fn parse_op(operate: &str) -> Option<Op> {
    Some(match operate {
        "remove" => Op::Remove,
        "rename" => Op::Rename,
        "replace" => Op::Replace,
        "add" => Op::Add,
        "append" => Op::Append,
        "map" => Op::Map,
        "dedupe" => Op::Dedupe,
        _ => return None,
    })
}

fn parse_param(raw: RawParam, op: Op, target: Source, source: Source) -> Result<Param, String> {
    let headers = target == Source::Headers;
    let lower = |s: String, yes: bool| if yes { s.to_lowercase() } else { s };
    let (key, value) = match op {
        Op::Remove => (lower(raw.key, headers), String::new()),
        Op::Rename => (lower(raw.old_key, headers), lower(raw.new_key, headers)),
        Op::Replace => (lower(raw.key, headers), raw.new_value),
        Op::Add => (lower(raw.key, headers), raw.value),
        Op::Append => (lower(raw.key, headers), raw.append_value),
        Op::Map => (
            lower(raw.from_key, source == Source::Headers),
            lower(raw.to_key, headers),
        ),
        Op::Dedupe => (lower(raw.key, headers), raw.strategy),
    };
    let value_type = match raw.value_type.to_lowercase().as_str() {
        "" | "string" => ValueType::String,
        "number" => ValueType::Number,
        "boolean" => ValueType::Boolean,
        "object" => ValueType::Object,
        _ if target == Source::Body => return Err("invalid body params type".to_owned()),
        _ => ValueType::String,
    };
    let compile = |p: &str| Regex::new(p).map_err(|e| format!("failed to new reg: {e}"));
    // Only replace, add and append use patterns; the host one wins.
    let pattern = match op {
        Op::Replace | Op::Add | Op::Append if !raw.host_pattern.is_empty() => {
            Some(Pattern::Host(compile(&raw.host_pattern)?))
        }
        Op::Replace | Op::Add | Op::Append if !raw.path_pattern.is_empty() => {
            Some(Pattern::Path(compile(&raw.path_pattern)?))
        }
        _ => None,
    };
    Ok(Param {
        key,
        value,
        value_type,
        pattern,
    })
}

fn parse_rules(rules: Vec<RawRule>, field: &str) -> Result<Transform, ConfigError> {
    let mut transform = Transform::default();
    for (i, rule) in rules.into_iter().enumerate() {
        let at = format!("{field}[{i}]");
        let operate = rule.operate.to_lowercase();
        let op = parse_op(&operate).ok_or_else(|| {
            ConfigError::new("invalid operate type").with_path(format!("{at}.operate"))
        })?;
        let explicit = match rule.map_source.as_deref() {
            _ if op != Op::Map => None,
            None | Some("self") => None,
            Some("headers") => Some(Source::Headers),
            Some("querys") => Some(Source::Querys),
            Some("body") => Some(Source::Body),
            Some(_) => {
                let e = ConfigError::new("invalid map source");
                return Err(e.with_path(format!("{at}.mapSource")));
            }
        };
        transform.body_map_source |= explicit == Some(Source::Body);
        let targets = [
            (
                Source::Headers,
                "headers",
                rule.headers,
                &mut transform.headers,
            ),
            (Source::Querys, "querys", rule.querys, &mut transform.querys),
            (Source::Body, "body", rule.body, &mut transform.body),
        ];
        for (target, name, raw, steps) in targets {
            let source = explicit.unwrap_or(target);
            let mut params = Vec::new();
            for (j, p) in raw.into_iter().enumerate() {
                let param = parse_param(p, op, target, source)
                    .map_err(|e| ConfigError::new(e).with_path(format!("{at}.{name}[{j}]")))?;
                params.push(param);
            }
            if !params.is_empty() {
                steps.push(Step { op, source, params });
            }
        }
    }
    Ok(transform)
}

/// Parses a config with Go's checks (`reqRules` or `respRules` required).
pub fn parse_config(json: &JsonValue) -> Result<TransformerConfig, ConfigError> {
    let raw: RawConfig = from_json(json)?;
    if raw.req_rules.is_none() && raw.resp_rules.is_none() {
        return Err(ConfigError::new("transformer rule not exist in yaml"));
    }
    let request = raw.req_rules.map(|r| parse_rules(r, "reqRules"));
    let response = raw.resp_rules.map(|r| parse_rules(r, "respRules"));
    Ok(TransformerConfig {
        reroute: raw.reroute.unwrap_or(true),
        request: request.transpose()?,
        response: response.transpose()?,
    })
}

/// A rule stands alone, as with Go's `ParseConfigBy`.
fn parse_rule_config(
    json: &JsonValue,
    _global: Option<&TransformerConfig>,
) -> Result<TransformerConfig, ConfigError> {
    parse_config(json)
}

// ----- operations ------------------------------------------------------------------

/// What a `map` found.
enum Found {
    Values(Vec<String>),
    Json(Value),
}

/// A body, parsed.
#[derive(Debug)]
enum Body {
    Json(Value),
    Form(Kvs),
    Multipart { boundary: String, fields: Kvs },
}

/// What a transformation can read besides its target.
#[derive(Default)]
struct Sources<'a> {
    headers: Option<&'a Kvs>,
    querys: Option<&'a Kvs>,
    body: Option<&'a Body>,
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
fn apply_kv(steps: &[Step], target: Source, kvs: &mut Kvs, other: &Sources<'_>, hp: (&str, &str)) {
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
fn convert(value: String, value_type: ValueType) -> Option<Value> {
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
fn apply_json(
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

// ----- the request and response ---------------------------------------------------

/// What the headers phase leaves for the body phase.
#[derive(Debug, Default)]
pub struct State {
    host: String,
    path: String,
    content_type: String,
    headers: Kvs,
    querys: Kvs,
    /// Header (and query) changes wait for the body (`mapSource: body`).
    headers_wait_for_body: bool,
}

fn media_type(content_type: &str) -> String {
    let media = content_type.split(';').next().unwrap_or_default();
    media.trim().to_ascii_lowercase()
}

fn to_kvs(headers: Vec<(String, HeaderValue)>) -> Kvs {
    let mut kvs = Kvs::new();
    for (name, value) in headers {
        let value = value.to_str_lossy().into_owned();
        kvs.entry(name.to_lowercase()).or_default().push(value);
    }
    kvs
}

/// Writes the state's headers back as Go does: all of them, sorted by name.
fn replace_headers(ctx: &mut HttpContext<State>, response: bool) {
    let owned: Vec<(String, String)> = ctx
        .state()
        .headers
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |v| (name.clone(), v.clone())))
        .collect();
    let list: Vec<(&str, &[u8])> = owned
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    if response {
        ctx.set_response_headers(&list);
    } else {
        ctx.set_request_headers(&list);
    }
}

fn parse_body(content_type: &str, body: &[u8]) -> Option<Body> {
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

fn body_bytes(body: &Body) -> Vec<u8> {
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

/// Header and query changes of the request, then `:path` rebuilt.
fn transform_request_headers(state: &mut State, t: &Transform, body: Option<&Body>) {
    let hp = (state.host.as_str(), state.path.as_str());
    let sources = Sources {
        querys: Some(&state.querys),
        body,
        ..Sources::default()
    };
    apply_kv(
        &t.headers,
        Source::Headers,
        &mut state.headers,
        &sources,
        hp,
    );
    if !t.querys.is_empty() {
        let sources = Sources {
            headers: Some(&state.headers),
            body,
            ..Sources::default()
        };
        apply_kv(&t.querys, Source::Querys, &mut state.querys, &sources, hp);
        let path = url::with_query(&state.path, &state.querys);
        state.headers.insert(":path".to_owned(), vec![path]);
    }
}

fn on_request_headers(ctx: &mut HttpContext<State>, config: &TransformerConfig) -> HeaderAction {
    if !config.reroute {
        ctx.disable_reroute();
    }
    let (host, path) = (ctx.host().to_owned(), ctx.path().to_owned());
    let Some(t) = &config.request else {
        ctx.dont_read_request_body();
        return HeaderAction::Continue;
    };
    let mut headers = to_kvs(ctx.request_headers());
    if !headers.contains_key(":authority") || !headers.contains_key(":path") {
        log::warn!("failed to get request host or path");
        ctx.dont_read_request_body();
        return HeaderAction::Continue;
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let valid = matches!(
        media_type(&content_type).as_str(),
        "application/json" | "application/x-www-form-urlencoded" | "multipart/form-data"
    );
    let body_change = !t.body.is_empty();
    if body_change && valid {
        headers.remove("content-length");
    }
    let querys = url::query_of(&path);
    let reads_body = valid && (body_change || t.body_map_source) && ctx.has_request_body();
    *ctx.state_mut() = State {
        host,
        path,
        content_type,
        headers,
        querys,
        headers_wait_for_body: reads_body && t.body_map_source,
    };
    if !reads_body {
        ctx.dont_read_request_body();
    } else if t.body_map_source {
        return HeaderAction::StopIteration;
    }
    let state = ctx.state_mut();
    transform_request_headers(state, t, None);
    replace_headers(ctx, false);
    HeaderAction::Continue
}

fn on_request_body(
    ctx: &mut HttpContext<State>,
    config: &TransformerConfig,
    body: &[u8],
) -> DataAction {
    let Some(t) = &config.request else {
        return DataAction::Continue;
    };
    if body.is_empty() {
        return DataAction::Continue;
    }
    let Some(mut parsed) = parse_body(&ctx.state().content_type, body) else {
        log::warn!("failed to parse request body");
        return DataAction::Continue;
    };
    if ctx.state().headers_wait_for_body {
        let state = ctx.state_mut();
        transform_request_headers(state, t, Some(&parsed));
        replace_headers(ctx, false);
    }
    if t.body.is_empty() {
        return DataAction::Continue;
    }
    let state = ctx.state();
    let hp = (state.host.as_str(), state.path.as_str());
    let sources = Sources {
        headers: Some(&state.headers),
        querys: Some(&state.querys),
        body: None,
    };
    let changed = match &mut parsed {
        Body::Json(doc) => apply_json(&t.body, doc, &sources, hp).is_some(),
        Body::Form(kvs) | Body::Multipart { fields: kvs, .. } => {
            apply_kv(&t.body, Source::Body, kvs, &sources, hp);
            true
        }
    };
    if changed {
        ctx.replace_request_body(body_bytes(&parsed));
    } else {
        log::warn!("failed to transform request body");
    }
    DataAction::Continue
}

fn on_response_headers(ctx: &mut HttpContext<State>, config: &TransformerConfig) -> HeaderAction {
    let Some(t) = &config.response else {
        ctx.dont_read_response_body();
        return HeaderAction::Continue;
    };
    let mut headers = to_kvs(ctx.response_headers());
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let valid = media_type(&content_type) == "application/json";
    let body_change = !t.body.is_empty();
    if body_change && valid {
        headers.remove("content-length");
    }
    let reads_body = valid && (body_change || t.body_map_source) && ctx.has_response_body();
    let state = ctx.state_mut();
    state.content_type = content_type;
    state.headers = headers;
    state.headers_wait_for_body = reads_body && t.body_map_source;
    if !reads_body {
        ctx.dont_read_response_body();
    } else if t.body_map_source {
        return HeaderAction::StopIteration;
    }
    let state = ctx.state_mut();
    let hp = (state.host.as_str(), state.path.as_str());
    apply_kv(
        &t.headers,
        Source::Headers,
        &mut state.headers,
        &Sources::default(),
        hp,
    );
    replace_headers(ctx, true);
    HeaderAction::Continue
}

fn on_response_body(
    ctx: &mut HttpContext<State>,
    config: &TransformerConfig,
    body: &[u8],
) -> DataAction {
    let Some(t) = &config.response else {
        return DataAction::Continue;
    };
    let Some(Body::Json(mut doc)) = parse_body(&ctx.state().content_type, body) else {
        return DataAction::Continue;
    };
    if ctx.state().headers_wait_for_body {
        let state = ctx.state_mut();
        let hp = (state.host.as_str(), state.path.as_str());
        let parsed = Body::Json(doc.clone());
        let sources = Sources {
            body: Some(&parsed),
            ..Sources::default()
        };
        apply_kv(
            &t.headers,
            Source::Headers,
            &mut state.headers,
            &sources,
            hp,
        );
        replace_headers(ctx, true);
    }
    if t.body.is_empty() {
        return DataAction::Continue;
    }
    let state = ctx.state();
    let hp = (state.host.as_str(), state.path.as_str());
    let sources = Sources {
        headers: Some(&state.headers),
        ..Sources::default()
    };
    if apply_json(&t.body, &mut doc, &sources, hp).is_some() {
        ctx.replace_response_body(body_bytes(&Body::Json(doc)));
    } else {
        log::warn!("failed to transform response body");
    }
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "transformer",
    plugin: pub Plugin,
    config: TransformerConfig,
    state: State,
    parse_config: parse_config,
    parse_rule_config: parse_rule_config,
    on_request_headers: on_request_headers,
    on_request_body: on_request_body,
    on_response_headers: on_response_headers,
    on_response_body: on_response_body,
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
