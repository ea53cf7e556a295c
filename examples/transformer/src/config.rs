//! The transformer's config: Go's keys, read as gjson reads them, checked
//! as Go checks them, prepared once (header names lowercased, patterns
//! compiled).
use higress_wrapper::config::from_json;
use higress_wrapper::prelude::*;
use regex_lite::Regex;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

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
pub(crate) enum ValueType {
    String,
    Number,
    Boolean,
    Object,
}

/// `host_pattern` / `path_pattern`: the value is a replacement template
/// (`$1`) applied to the host or path when the pattern matches.
#[derive(Debug)]
pub(crate) enum Pattern {
    Host(Regex),
    Path(Regex),
}

#[derive(Debug)]
pub(crate) struct Param {
    /// `key`, `oldKey` or `fromKey`.
    pub(crate) key: String,
    /// `newKey`, `newValue`, `value`, `appendValue`, `toKey` or `strategy`.
    pub(crate) value: String,
    pub(crate) value_type: ValueType,
    pub(crate) pattern: Option<Pattern>,
}

#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) op: Op,
    pub(crate) source: Source,
    pub(crate) params: Vec<Param>,
}

/// The steps for one direction, per target.
#[derive(Debug, Default)]
pub struct Transform {
    pub(crate) headers: Vec<Step>,
    pub(crate) querys: Vec<Step>,
    pub(crate) body: Vec<Step>,
    /// Some `map` reads the body: header and query changes wait for it.
    pub(crate) body_map_source: bool,
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
pub(crate) fn parse_rule_config(
    json: &JsonValue,
    _global: Option<&TransformerConfig>,
) -> Result<TransformerConfig, ConfigError> {
    parse_config(json)
}
