//! Plugin configuration: the `_rules_` model, JSON helpers and typed errors.
//!
//! Higress hands a plugin one JSON object. Its top-level keys are the
//! **global** config; an optional `_rules_` array holds per-rule configs, each
//! carrying one or more match keys (`_match_route_`, `_match_domain_`,
//! `_match_service_`, `_match_route_prefix_`) next to its own config keys. A
//! top-level `_plugin_id_` string is stripped and only used to tag logs.
//!
//! * [`from_json`] is the default parser: serde with the JSON path of a bad
//!   field in the error (`redis.port: invalid type: string, expected u16`).
//! * [`merge_patch`] is RFC 7386 JSON merge-patch. The default rule parser
//!   reads [`RuleInput::merged_json`], i.e. the global keys overlaid with the
//!   rule's keys.
//! * [`ConfigError`] says where a config is wrong and **never contains a
//!   configured string value**, so a mistyped secret does not end up in the
//!   gateway log.

use serde_json::{Map, Value};

use crate::matcher::{Category, MatchConditions, RuleMatcher, RuleSpec};

const RULES_KEY: &str = "_rules_";
const PLUGIN_ID_KEY: &str = "_plugin_id_";
const MATCH_ROUTE_KEY: &str = "_match_route_";
const MATCH_DOMAIN_KEY: &str = "_match_domain_";
const MATCH_SERVICE_KEY: &str = "_match_service_";
const MATCH_ROUTE_PREFIX_KEY: &str = "_match_route_prefix_";

/// Keys removed from a rule object before it reaches a rule parser.
const RULE_RESERVED_KEYS: [&str; 6] = [
    MATCH_ROUTE_KEY,
    MATCH_DOMAIN_KEY,
    MATCH_SERVICE_KEY,
    MATCH_ROUTE_PREFIX_KEY,
    RULES_KEY,
    PLUGIN_ID_KEY,
];

/// Location label of errors about the configuration as a whole.
const PLUGIN_CONFIG: &str = "plugin config";
/// Location label of errors from the global (top-level) config.
const GLOBAL_CONFIG: &str = "global config";

/// Replaces a configured string value in an error message.
const HIDDEN: &str = "(value hidden)";

/// A plugin configuration error that says where the problem is.
///
/// It is made of an optional location (`global config`, or a rule such as
/// `_rules_[2] (_match_domain_: ["*.a.com"])`), an optional JSON path inside
/// it (`redis.port`, `items[3].name`) and a message, shown joined by `: `:
///
/// ```text
/// _rules_[2] (_match_domain_: ["*.a.com"]): redis.port: invalid type: string, expected u16
/// global config: some_field: invalid type: integer `1`, expected a string
/// ```
///
/// Errors made by this module never contain configured string values:
/// serde's `invalid type: string "hunter2"` becomes `invalid type: string`.
/// Messages given to [`ConfigError::new`] are used as they are, so do not put
/// configured values in them. There is deliberately no error source: the
/// original serde error would carry the unredacted value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    location: Option<String>,
    rule_index: Option<usize>,
    path: Option<String>,
    message: String,
}

impl ConfigError {
    /// A custom error, e.g. from a hand-written parser:
    /// `ConfigError::new("timeout must be positive").with_path("timeout")`.
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            location: None,
            rule_index: None,
            path: None,
            message: message.into(),
        }
    }

    /// Sets the JSON path of the offending value (`redis.port`). An empty
    /// path clears it.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = if path.is_empty() { None } else { Some(path) };
        self
    }

    /// JSON path of the offending value inside the global config or rule,
    /// e.g. `redis.port`, if known.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Index of the `_rules_` entry the error is in, if it is in a rule.
    pub fn rule_index(&self) -> Option<usize> {
        self.rule_index
    }

    /// Where the error is: `global config`, `plugin config`, `_rules_`, or a
    /// rule such as `_rules_[0] (_match_route_: ["default/foo"])`.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// The message alone, without location and path.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Puts the error at `location` (keeping a location it already had after
    /// the new one) and records the rule index.
    pub(crate) fn located(mut self, location: &str, rule_index: Option<usize>) -> Self {
        self.location = Some(match self.location.take() {
            Some(inner) => format!("{location}: {inner}"),
            None => location.to_owned(),
        });
        if rule_index.is_some() {
            self.rule_index = rule_index;
        }
        self
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for part in [self.location.as_deref(), self.path.as_deref()]
            .into_iter()
            .flatten()
        {
            out.push_str(part);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

impl From<serde_json::Error> for ConfigError {
    /// Converts a `serde_json` error, hiding any string value serde quoted in
    /// it. The JSON path is unknown here; [`from_json`] records it.
    fn from(err: serde_json::Error) -> Self {
        ConfigError::new(redact(&err.to_string(), None))
    }
}

/// Deserializes `T` from a JSON value, recording the JSON path of a failure
/// (`redis.port`, `items[3].name`) and hiding configured string values in
/// the message.
///
/// This is the parser plugins get by default. Use it from a custom parser to
/// get the same error quality.
///
/// # Errors
///
/// Any serde error of `T`, with [`ConfigError::path`] set to where it
/// happened (unset at the root).
pub fn from_json<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ConfigError> {
    T::deserialize(de::De(value)).map_err(|err| {
        let mut path = err.path;
        path.reverse();
        let at = lookup(value, &path).and_then(Value::as_str);
        ConfigError {
            location: None,
            rule_index: None,
            path: (!path.is_empty()).then(|| render_path(&path)),
            message: redact(&err.message, at),
        }
    })
}

/// Applies an RFC 7386 JSON merge-patch to `target`.
///
/// An object patch merges key by key, recursively: a `null` member deletes
/// the key, any other member is merged into the key's value (a target that is
/// not an object first becomes `{}`). A patch that is not an object replaces
/// the target.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    // The object is rebuilt rather than edited with `Map::remove`: B-tree
    // removal is kilobytes of `.wasm` that nothing else in a plugin needs.
    let old = match std::mem::take(target) {
        Value::Object(old) => old,
        _ => Map::new(),
    };
    let mut merged = Map::new();
    for (key, value) in old {
        if !patch.get(&key).is_some_and(Value::is_null) {
            merged.insert(key, value);
        }
    }
    for (key, value) in patch {
        if value.is_null() {
            continue;
        }
        match merged.get_mut(key) {
            Some(slot) => merge_patch(slot, value),
            None => {
                let mut slot = Value::Null;
                merge_patch(&mut slot, value);
                merged.insert(key.clone(), slot);
            }
        }
    }
    *target = Value::Object(merged);
}

/// What a rule parser gets for one `_rules_` entry.
#[derive(Debug)]
pub struct RuleInput<'a, C> {
    index: usize,
    location: &'a str,
    rule_json: Value,
    merged_json: Value,
    global: Option<&'a C>,
}

impl<C> RuleInput<'_, C> {
    /// The rule's own keys: the rule object without `_match_route_`,
    /// `_match_domain_`, `_match_service_`, `_match_route_prefix_`,
    /// `_rules_` and `_plugin_id_`.
    pub fn rule_json(&self) -> &Value {
        &self.rule_json
    }

    /// The global keys (top level without `_rules_` and `_plugin_id_`) with
    /// [`RuleInput::rule_json`] merge-patched over them ([`merge_patch`]; a
    /// `null` in the rule removes a global key). The default rule parser
    /// parses this, so a rule inherits every global key it does not set.
    pub fn merged_json(&self) -> &Value {
        &self.merged_json
    }

    /// The parsed global config; `None` when there are no global keys or the
    /// global config failed to parse.
    pub fn global(&self) -> Option<&C> {
        self.global
    }

    /// Position of the rule in `_rules_` (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The rule's location for messages, e.g.
    /// `_rules_[1] (_match_domain_: ["*.a.com"])`.
    pub fn location(&self) -> &str {
        self.location
    }
}

/// The result of configure-time parsing.
#[derive(Debug)]
pub(crate) struct ParsedConfig<C> {
    /// The top-level `_plugin_id_`, for logs.
    pub(crate) plugin_id: Option<String>,
    /// Rules and global config, ready for per-request matching.
    pub(crate) matcher: RuleMatcher<C>,
    /// Problems that did not fail the configuration; the caller logs them.
    pub(crate) warnings: Vec<String>,
}

/// Parses the plugin configuration bytes into a [`RuleMatcher`].
///
/// Follows the Go wrapper's `ParseRuleConfig`, except that the global parser
/// sees the top level without `_rules_` and `_plugin_id_`, a failed global
/// config next to rules becomes a warning, and malformed match keys are
/// errors instead of being ignored.
pub(crate) fn parse_plugin_config<C>(
    raw: &[u8],
    parse: &dyn Fn(&Value) -> Result<C, ConfigError>,
    parse_rule: &dyn Fn(&RuleInput<'_, C>) -> Result<C, ConfigError>,
) -> Result<ParsedConfig<C>, ConfigError> {
    let root: Value = if raw.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(raw).map_err(|err| {
            ConfigError::new(format!("invalid JSON: {}", redact(&err.to_string(), None)))
                .located(PLUGIN_CONFIG, None)
        })?
    };
    let Value::Object(all) = root else {
        return Err(ConfigError::new(format!(
            "the top level must be a JSON object, found {}",
            kind(&root)
        ))
        .located(PLUGIN_CONFIG, None));
    };

    // Split off the reserved keys (by rebuilding, not `Map::remove`; see
    // `merge_patch`).
    let mut top = Map::new();
    let mut plugin_id_json = None;
    let mut rules_json = None;
    for (key, value) in all {
        match key.as_str() {
            PLUGIN_ID_KEY => plugin_id_json = Some(value),
            RULES_KEY => rules_json = Some(value),
            _ => {
                top.insert(key, value);
            }
        }
    }
    let mut warnings = Vec::new();
    let plugin_id = match plugin_id_json {
        None => None,
        Some(Value::String(id)) => Some(id),
        Some(other) => {
            warnings.push(format!(
                "{PLUGIN_ID_KEY} ignored: expected a string, found {}",
                kind(&other)
            ));
            None
        }
    };
    let rules = match rules_json {
        None => None,
        Some(Value::Array(rules)) => Some(rules),
        Some(other) => {
            return Err(ConfigError::new(format!(
                "expected an array of rule objects, found {}",
                kind(&other)
            ))
            .located(RULES_KEY, None));
        }
    };
    let global_json = Value::Object(top);
    let has_global_keys = global_json.as_object().is_some_and(|o| !o.is_empty());

    let Some(rules) = rules else {
        // No `_rules_`: the global config (possibly `{}`) is the whole config.
        let global = parse(&global_json).map_err(|e| e.located(GLOBAL_CONFIG, None))?;
        return Ok(ParsedConfig {
            plugin_id,
            matcher: RuleMatcher::new(Vec::new(), Some(global)),
            warnings,
        });
    };

    let mut global = None;
    let mut global_error = None;
    if has_global_keys {
        match parse(&global_json) {
            Ok(config) => global = Some(config),
            Err(err) => global_error = Some(err.located(GLOBAL_CONFIG, None)),
        }
    }
    if rules.is_empty() {
        if let Some(err) = global_error {
            return Err(err);
        }
        if global.is_none() {
            return Err(ConfigError::new(
                "no valid rules and no global config: the array is empty and there are no other keys",
            )
            .located(RULES_KEY, None));
        }
    } else if let Some(err) = &global_error {
        warnings.push(format!(
            "global config ignored because it failed to parse while {RULES_KEY} exist: {err}"
        ));
    }

    let mut specs = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        specs.push(parse_rule_entry(
            index,
            rule,
            &global_json,
            global.as_ref(),
            parse_rule,
        )?);
    }
    Ok(ParsedConfig {
        plugin_id,
        matcher: RuleMatcher::new(specs, global),
        warnings,
    })
}

fn parse_rule_entry<C>(
    index: usize,
    rule: &Value,
    global_json: &Value,
    global: Option<&C>,
    parse_rule: &dyn Fn(&RuleInput<'_, C>) -> Result<C, ConfigError>,
) -> Result<RuleSpec<C>, ConfigError> {
    let bare_location = format!("{RULES_KEY}[{index}]");
    let fail = |err: ConfigError| err.located(&bare_location, Some(index));
    let Value::Object(rule) = rule else {
        return Err(fail(ConfigError::new(format!(
            "a rule must be a JSON object, found {}",
            kind(rule)
        ))));
    };

    let routes = string_list(rule, MATCH_ROUTE_KEY).map_err(fail)?;
    let domains = string_list(rule, MATCH_DOMAIN_KEY).map_err(fail)?;
    let services = string_list(rule, MATCH_SERVICE_KEY).map_err(fail)?;
    let route_prefixes = string_list(rule, MATCH_ROUTE_PREFIX_KEY).map_err(fail)?;
    let non_empty = |list: &[String]| -> Vec<String> {
        let mut out = Vec::with_capacity(list.len());
        for s in list {
            if !s.is_empty() {
                out.push(s.clone());
            }
        }
        out
    };
    let conditions = MatchConditions {
        routes: non_empty(&routes),
        // Go keeps empty domains (an exact match on an empty host).
        domains: domains.clone(),
        services: non_empty(&services),
        route_prefixes: non_empty(&route_prefixes),
    };
    let Some(category) = conditions.category() else {
        return Err(fail(ConfigError::new(format!(
            "a rule needs at least one of {MATCH_ROUTE_KEY}, {MATCH_DOMAIN_KEY}, \
             {MATCH_SERVICE_KEY}, {MATCH_ROUTE_PREFIX_KEY}"
        ))));
    };
    let named: &[(&str, &[String])] = match category {
        Category::Route => &[(MATCH_ROUTE_KEY, &routes)],
        Category::RouteAndService => &[(MATCH_ROUTE_KEY, &routes), (MATCH_SERVICE_KEY, &services)],
        Category::Host => &[(MATCH_DOMAIN_KEY, &domains)],
        Category::Service => &[(MATCH_SERVICE_KEY, &services)],
        Category::RoutePrefix => &[(MATCH_ROUTE_PREFIX_KEY, &route_prefixes)],
    };
    let location = describe(&bare_location, named);

    let mut own = Map::new();
    for (key, value) in rule {
        if !RULE_RESERVED_KEYS.contains(&key.as_str()) {
            own.insert(key.clone(), value.clone());
        }
    }
    let rule_json = Value::Object(own);
    let mut merged_json = global_json.clone();
    merge_patch(&mut merged_json, &rule_json);
    let input = RuleInput {
        index,
        location: &location,
        rule_json,
        merged_json,
        global,
    };
    let config = parse_rule(&input).map_err(|e| e.located(&location, Some(index)))?;
    drop(input);
    Ok(RuleSpec {
        conditions,
        description: location,
        config,
    })
}

/// Reads an optional array-of-strings match key. `null` counts as absent.
fn string_list(rule: &Map<String, Value>, key: &str) -> Result<Vec<String>, ConfigError> {
    let items = match rule.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ConfigError::new(format!(
                "expected an array of strings, found {}",
                kind(other)
            ))
            .with_path(key));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => out.push(s.clone()),
            other => {
                return Err(
                    ConfigError::new(format!("expected a string, found {}", kind(other)))
                        .with_path(format!("{key}[{i}]")),
                )
            }
        }
    }
    Ok(out)
}

/// `_rules_[i] (<key>: <values as JSON>[, ...])`, naming the keys that
/// decide the rule's category with their lists as written (compact JSON, as
/// `serde_json` prints them).
///
/// Written by hand rather than with `Value`'s `Display`, which would link
/// serde_json's whole serializer into every plugin for this one message.
fn describe(bare: &str, named: &[(&str, &[String])]) -> String {
    let mut out = String::with_capacity(bare.len() + 32);
    out.push_str(bare);
    out.push_str(" (");
    for (i, (key, values)) in named.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(key);
        out.push_str(": [");
        for (j, value) in values.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_json_string(&mut out, value);
        }
        out.push(']');
    }
    out.push(')');
    out
}

/// Appends `s` as a JSON string literal, escaped exactly as `serde_json`
/// escapes it: `"` and `\`, and control characters (`\b \t \n \f \r`, the
/// rest as `\u00XX`); everything else as is.
fn push_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => {
                let b = u32::from(c) as usize;
                out.push_str("\\u00");
                for nibble in [b >> 4, b & 0xf] {
                    out.push(char::from(HEX.get(nibble).copied().unwrap_or(b'0')));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The JSON type name of a value, for messages that must not show the value.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value an error path points at, if it can be followed.
fn lookup<'v>(root: &'v Value, path: &[de::Segment]) -> Option<&'v Value> {
    let mut current = root;
    for segment in path {
        current = match segment {
            de::Segment::Index(index) => current.get(*index)?,
            de::Segment::Key(key) => current.get(key.as_str())?,
            // Externally tagged `{"variant": ...}`; a unit variant is the
            // string itself.
            de::Segment::Variant(variant) => current.get(variant.as_str()).unwrap_or(current),
        };
    }
    Some(current)
}

/// `redis.port`, `items[3].name`: keys joined by `.`, indexes in brackets.
fn render_path(path: &[de::Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            de::Segment::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
            de::Segment::Key(name) | de::Segment::Variant(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
        }
    }
    out
}

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
fn redact(message: &str, value: Option<&str>) -> String {
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

/// The deserializer behind [`from_json`]: `serde_json`'s `&Value`
/// deserializer, ported, with its own error type that records the JSON path.
///
/// Why not `serde_json` (plus `serde_path_to_error` for the path): every
/// `serde_json` type error is formatted through serde's `Unexpected` display,
/// which links the whole of core's float formatting (about 20 KB of `.wasm`)
/// into every plugin, although a JSON config never shows a float that way.
/// This error type formats `Unexpected` itself (floats through `serde_json`'s
/// own `Number` display, as `serde_json` does) and hides string values at the
/// source. Behaviour follows `serde_json` 1.0's `impl Deserializer for &Value`
/// visit for visit; messages are the ones `serde_json` produced, after
/// [`redact`]; paths are the ones `serde_path_to_error` produced.
mod de {
    use serde::de::{
        self, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess, SeqAccess,
        Unexpected, VariantAccess, Visitor,
    };
    use serde::forward_to_deserialize_any;
    use serde_json::{Map, Number, Value};
    use std::fmt;

    /// One step of an error's JSON path.
    #[derive(Debug)]
    pub(super) enum Segment {
        /// An array element.
        Index(usize),
        /// An object member (or a map key that failed).
        Key(String),
        /// The content of an externally tagged enum variant.
        Variant(String),
    }

    /// A deserialization error and where it happened.
    #[derive(Debug)]
    pub(super) struct Error {
        pub(super) message: String,
        /// Innermost step first (steps are added while the error unwinds).
        pub(super) path: Vec<Segment>,
    }

    impl Error {
        fn at(mut self, segment: Segment) -> Self {
            self.path.push(segment);
            self
        }
    }

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.message)
        }
    }

    impl std::error::Error for Error {}

    impl de::Error for Error {
        fn custom<T: fmt::Display>(msg: T) -> Self {
            Error {
                message: msg.to_string(),
                path: Vec::new(),
            }
        }

        fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
            de::Error::custom(format_args!(
                "invalid type: {}, expected {}",
                Shown(unexp),
                exp
            ))
        }

        fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
            de::Error::custom(format_args!(
                "invalid value: {}, expected {}",
                Shown(unexp),
                exp
            ))
        }
    }

    /// `Unexpected` as `serde_json` shows it (`null` for unit, floats as
    /// JSON prints them), with strings and characters already hidden the way
    /// [`super::redact`] hides them (`string`, `character`).
    struct Shown<'a>(Unexpected<'a>);

    impl fmt::Display for Shown<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0 {
                Unexpected::Bool(b) => write!(f, "boolean `{b}`"),
                Unexpected::Unsigned(i) => write!(f, "integer `{i}`"),
                Unexpected::Signed(i) => write!(f, "integer `{i}`"),
                Unexpected::Float(x) => {
                    f.write_str("floating point `")?;
                    match Number::from_f64(x) {
                        Some(n) => fmt::Display::fmt(&n, f)?,
                        None if x.is_nan() => f.write_str("NaN")?,
                        None if x < 0.0 => f.write_str("-inf")?,
                        None => f.write_str("inf")?,
                    }
                    f.write_str("`")
                }
                Unexpected::Char(_) => f.write_str("character"),
                Unexpected::Str(_) => f.write_str("string"),
                Unexpected::Bytes(_) => f.write_str("byte array"),
                Unexpected::Unit => f.write_str("null"),
                Unexpected::Option => f.write_str("Option value"),
                Unexpected::NewtypeStruct => f.write_str("newtype struct"),
                Unexpected::Seq => f.write_str("sequence"),
                Unexpected::Map => f.write_str("map"),
                Unexpected::Enum => f.write_str("enum"),
                Unexpected::UnitVariant => f.write_str("unit variant"),
                Unexpected::NewtypeVariant => f.write_str("newtype variant"),
                Unexpected::TupleVariant => f.write_str("tuple variant"),
                Unexpected::StructVariant => f.write_str("struct variant"),
                Unexpected::Other(other) => f.write_str(other),
            }
        }
    }

    fn unexpected(value: &Value) -> Unexpected<'_> {
        match value {
            Value::Null => Unexpected::Unit,
            Value::Bool(b) => Unexpected::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Unexpected::Unsigned(u),
                (None, Some(i)) => Unexpected::Signed(i),
                (None, None) => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Unexpected::Str(s),
            Value::Array(_) => Unexpected::Seq,
            Value::Object(_) => Unexpected::Map,
        }
    }

    fn invalid_type(value: &Value, exp: &dyn Expected) -> Error {
        de::Error::invalid_type(unexpected(value), exp)
    }

    fn visit_number<'de, V: Visitor<'de>>(n: &Number, visitor: V) -> Result<V::Value, Error> {
        match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => visitor.visit_u64(u),
            (None, Some(i)) => visitor.visit_i64(i),
            (None, None) => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
        }
    }

    fn visit_array<'de, V: Visitor<'de>>(
        array: &'de [Value],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut seq = Seq {
            iter: array.iter(),
            index: 0,
        };
        let out = visitor.visit_seq(&mut seq)?;
        if seq.iter.len() == 0 {
            Ok(out)
        } else {
            Err(de::Error::invalid_length(
                array.len(),
                &"fewer elements in array",
            ))
        }
    }

    fn visit_object<'de, V: Visitor<'de>>(
        object: &'de Map<String, Value>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut map = Members {
            iter: object.iter(),
            value: None,
        };
        let out = visitor.visit_map(&mut map)?;
        if map.iter.len() == 0 {
            Ok(out)
        } else {
            Err(de::Error::invalid_length(
                object.len(),
                &"fewer elements in map",
            ))
        }
    }

    /// Deserializes from one JSON value.
    pub(super) struct De<'de>(pub(super) &'de Value);

    macro_rules! number {
        ($($method:ident)*) => {$(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                match self.0 {
                    Value::Number(n) => visit_number(n, visitor),
                    other => Err(invalid_type(other, &visitor)),
                }
            }
        )*};
    }

    impl<'de> de::Deserializer<'de> for De<'de> {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Null => visitor.visit_unit(),
                Value::Bool(b) => visitor.visit_bool(*b),
                Value::Number(n) => visit_number(n, visitor),
                Value::String(s) => visitor.visit_borrowed_str(s),
                Value::Array(a) => visit_array(a, visitor),
                Value::Object(o) => visit_object(o, visitor),
            }
        }

        number!(
            deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
            deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
            deserialize_f32 deserialize_f64
        );

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Null => visitor.visit_none(),
                _ => visitor.visit_some(self),
            }
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            match self.0 {
                Value::Object(object) => {
                    // An enum is a map with a single key.
                    let mut members = object.iter();
                    match (members.next(), members.next()) {
                        (Some((variant, value)), None) => visitor.visit_enum(Variant {
                            name: variant,
                            value: Some(value),
                        }),
                        _ => Err(de::Error::invalid_value(
                            Unexpected::Map,
                            &"map with a single key",
                        )),
                    }
                }
                Value::String(variant) => visitor.visit_enum(Variant {
                    name: variant,
                    value: None,
                }),
                other => Err(invalid_type(other, &"string or map")),
            }
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Bool(b) => visitor.visit_bool(*b),
                other => Err(invalid_type(other, &visitor)),
            }
        }

        fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_str(visitor)
        }

        fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::String(s) => visitor.visit_borrowed_str(s),
                other => Err(invalid_type(other, &visitor)),
            }
        }

        fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_str(visitor)
        }

        fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::String(s) => visitor.visit_borrowed_str(s),
                Value::Array(a) => visit_array(a, visitor),
                other => Err(invalid_type(other, &visitor)),
            }
        }

        fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_bytes(visitor)
        }

        fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Null => visitor.visit_unit(),
                other => Err(invalid_type(other, &visitor)),
            }
        }

        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            self.deserialize_unit(visitor)
        }

        fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Array(a) => visit_array(a, visitor),
                other => Err(invalid_type(other, &visitor)),
            }
        }

        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, Error> {
            self.deserialize_seq(visitor)
        }

        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, Error> {
            self.deserialize_seq(visitor)
        }

        fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Object(o) => visit_object(o, visitor),
                other => Err(invalid_type(other, &visitor)),
            }
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            match self.0 {
                Value::Array(a) => visit_array(a, visitor),
                Value::Object(o) => visit_object(o, visitor),
                other => Err(invalid_type(other, &visitor)),
            }
        }

        fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_str(visitor)
        }

        fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_unit()
        }
    }

    /// The elements of an array; an element's error gets its index.
    struct Seq<'de> {
        iter: std::slice::Iter<'de, Value>,
        index: usize,
    }

    impl<'de> SeqAccess<'de> for Seq<'de> {
        type Error = Error;

        fn next_element_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<Option<T::Value>, Error> {
            let Some(value) = self.iter.next() else {
                return Ok(None);
            };
            let index = self.index;
            self.index += 1;
            seed.deserialize(De(value))
                .map(Some)
                .map_err(|e| e.at(Segment::Index(index)))
        }

        fn size_hint(&self) -> Option<usize> {
            Some(self.iter.len())
        }
    }

    /// The members of an object; an error in a key or a value gets the key.
    struct Members<'de> {
        iter: serde_json::map::Iter<'de>,
        value: Option<(&'de String, &'de Value)>,
    }

    impl<'de> MapAccess<'de> for Members<'de> {
        type Error = Error;

        fn next_key_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<Option<T::Value>, Error> {
            let Some((key, value)) = self.iter.next() else {
                return Ok(None);
            };
            self.value = Some((key, value));
            seed.deserialize(Key(key))
                .map(Some)
                .map_err(|e| e.at(Segment::Key(key.clone())))
        }

        fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
            match self.value.take() {
                Some((key, value)) => seed
                    .deserialize(De(value))
                    .map_err(|e| e.at(Segment::Key(key.clone()))),
                None => Err(de::Error::custom("value is missing")),
            }
        }

        fn size_hint(&self) -> Option<usize> {
            Some(self.iter.len())
        }
    }

    /// An object key: a string, or a number or boolean written as one.
    struct Key<'de>(&'de str);

    /// A number key is parsed by `serde_json` itself, exactly as its own map
    /// key deserializer does (only plugins with number-keyed maps link this).
    fn number_key<'de, T>(
        key: &'de str,
        parse: impl FnOnce(
            &mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
        ) -> Result<T, serde_json::Error>,
    ) -> Result<T, Error> {
        let not_a_number =
            || de::Error::custom("invalid value: expected key to be a number in quotes");
        if !matches!(key.as_bytes().first(), Some(b'0'..=b'9' | b'-')) {
            return Err(not_a_number());
        }
        let mut parser = serde_json::Deserializer::from_str(key);
        let out = parse(&mut parser).map_err(de::Error::custom)?;
        let trailing_space = key
            .as_bytes()
            .last()
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        if trailing_space || parser.end().is_err() {
            return Err(not_a_number());
        }
        Ok(out)
    }

    macro_rules! number_key {
        ($($method:ident)*) => {$(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                number_key(self.0, |parser| de::Deserializer::$method(parser, visitor))
            }
        )*};
    }

    impl<'de> de::Deserializer<'de> for Key<'de> {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_borrowed_str(self.0)
        }

        number_key!(
            deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
            deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
            deserialize_f32 deserialize_f64
        );

        fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                other => Err(de::Error::invalid_type(Unexpected::Str(other), &visitor)),
            }
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            // Map keys cannot be null.
            visitor.visit_some(self)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            IntoDeserializer::<Error>::into_deserializer(self.0)
                .deserialize_enum(name, variants, visitor)
        }

        forward_to_deserialize_any! {
            char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
            map struct identifier ignored_any
        }
    }

    /// An enum: a string (unit variant) or a single-key object.
    struct Variant<'de> {
        name: &'de str,
        value: Option<&'de Value>,
    }

    impl<'de> EnumAccess<'de> for Variant<'de> {
        type Error = Error;
        type Variant = Self;

        fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
            let name = IntoDeserializer::<Error>::into_deserializer(self.name);
            seed.deserialize(name).map(|v| (v, self))
        }
    }

    impl<'de> Variant<'de> {
        fn located<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
            result.map_err(|e| e.at(Segment::Variant(self.name.to_owned())))
        }
    }

    impl<'de> VariantAccess<'de> for Variant<'de> {
        type Error = Error;

        fn unit_variant(self) -> Result<(), Error> {
            let result = match self.value {
                Some(value) => serde::Deserialize::deserialize(De(value)),
                None => Ok(()),
            };
            self.located(result)
        }

        fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
            let result = match self.value {
                Some(value) => seed.deserialize(De(value)),
                None => Err(de::Error::invalid_type(
                    Unexpected::UnitVariant,
                    &"newtype variant",
                )),
            };
            self.located(result)
        }

        fn tuple_variant<V: Visitor<'de>>(
            self,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, Error> {
            let result = match self.value {
                Some(Value::Array(a)) if a.is_empty() => visitor.visit_unit(),
                Some(Value::Array(a)) => visit_array(a, visitor),
                Some(other) => Err(invalid_type(other, &"tuple variant")),
                None => Err(de::Error::invalid_type(
                    Unexpected::UnitVariant,
                    &"tuple variant",
                )),
            };
            self.located(result)
        }

        fn struct_variant<V: Visitor<'de>>(
            self,
            _fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            let result = match self.value {
                Some(Value::Object(o)) => visit_object(o, visitor),
                Some(other) => Err(invalid_type(other, &"struct variant")),
                None => Err(de::Error::invalid_type(
                    Unexpected::UnitVariant,
                    &"struct variant",
                )),
            };
            self.located(result)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;
    use std::cell::RefCell;

    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    struct Redis {
        host: Option<String>,
        port: u16,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Allow,
        Deny,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        #[serde(default)]
        name: String,
        #[serde(default)]
        redis: Option<Redis>,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        limit: Option<u32>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    struct Item {
        name: u32,
    }

    /// A type whose `TryFrom<String>` error echoes the input, like a careless
    /// user type would.
    #[derive(Debug, Deserialize)]
    #[serde(try_from = "String")]
    struct Echo(#[allow(dead_code)] String);

    impl TryFrom<String> for Echo {
        type Error = String;
        fn try_from(s: String) -> Result<Self, String> {
            Err(format!("bad token {s} (wanted \"x-...\")"))
        }
    }

    fn err_of<T: std::fmt::Debug>(result: Result<T, ConfigError>) -> ConfigError {
        match result {
            Ok(value) => ConfigError::new(format!("UNEXPECTED OK: {value:?}")),
            Err(err) => err,
        }
    }

    fn from_json_err<T: serde::de::DeserializeOwned + std::fmt::Debug>(v: Value) -> ConfigError {
        err_of(from_json::<T>(&v))
    }

    fn parse_cfg(v: &Value) -> Result<Cfg, ConfigError> {
        from_json(v)
    }

    fn parse_cfg_rule(r: &RuleInput<'_, Cfg>) -> Result<Cfg, ConfigError> {
        from_json(r.merged_json())
    }

    fn parse(raw: &str) -> Result<ParsedConfig<Cfg>, ConfigError> {
        parse_plugin_config(raw.as_bytes(), &parse_cfg, &parse_cfg_rule)
    }

    fn parse_err(raw: &str) -> String {
        match parse(raw) {
            Ok(parsed) => format!("UNEXPECTED OK: {parsed:?}"),
            Err(err) => err.to_string(),
        }
    }

    // ---- ConfigError -------------------------------------------------------

    #[test]
    fn error_display_and_accessors() {
        let plain = ConfigError::new("boom");
        assert_eq!(plain.to_string(), "boom");
        assert_eq!(plain.path(), None);
        assert_eq!(plain.rule_index(), None);
        assert_eq!(plain.location(), None);
        assert_eq!(plain.message(), "boom");

        let with_path = ConfigError::new("must be positive").with_path("redis.port");
        assert_eq!(with_path.to_string(), "redis.port: must be positive");
        assert_eq!(with_path.path(), Some("redis.port"));
        assert_eq!(with_path.clone().with_path("").path(), None);

        let located = with_path.located("_rules_[2] (_match_domain_: [\"*.a.com\"])", Some(2));
        assert_eq!(
            located.to_string(),
            "_rules_[2] (_match_domain_: [\"*.a.com\"]): redis.port: must be positive"
        );
        assert_eq!(located.rule_index(), Some(2));
        assert_eq!(located.message(), "must be positive");

        let twice = ConfigError::new("m")
            .located("inner", None)
            .located("outer", Some(1));
        assert_eq!(twice.to_string(), "outer: inner: m");
        assert_eq!(twice.rule_index(), Some(1));

        let boxed: Box<dyn std::error::Error> = Box::new(ConfigError::new("x"));
        assert!(boxed.source().is_none());
    }

    #[test]
    fn from_serde_json_error_is_redacted() {
        let err = err_of(serde_json::from_str::<u16>("\"hunter2\"").map_err(ConfigError::from));
        assert_eq!(
            err.to_string(),
            "invalid type: string, expected u16 at line 1 column 9"
        );
        let syntax = err_of(serde_json::from_str::<Value>("{x").map_err(ConfigError::from));
        assert_eq!(
            syntax.to_string(),
            "key must be a string at line 1 column 2"
        );
        let variant = err_of(
            serde_json::from_value::<Mode>(json!("s3cr`et, expected x")).map_err(ConfigError::from),
        );
        assert_eq!(
            variant.to_string(),
            "unknown variant (value hidden), expected `allow` or `deny`"
        );
    }

    // ---- from_json ---------------------------------------------------------

    #[test]
    fn from_json_reports_paths() {
        let err = from_json_err::<Cfg>(json!({"redis": {"port": "6379x"}}));
        assert_eq!(err.path(), Some("redis.port"));
        assert_eq!(
            err.to_string(),
            "redis.port: invalid type: string, expected u16"
        );

        let err = from_json_err::<Cfg>(
            json!({"items": [{"name": 1}, {"name": 2}, {"name": 3}, {"name": true}]}),
        );
        assert_eq!(
            err.to_string(),
            "items[3].name: invalid type: boolean `true`, expected u32"
        );

        let err = from_json_err::<Cfg>(json!({"redis": {"host": "h"}}));
        assert_eq!(err.to_string(), "redis: missing field `port`");

        let err = from_json_err::<Cfg>(json!({"nmae": "x"}));
        assert_eq!(err.path(), Some("nmae"));
        assert!(err
            .message()
            .starts_with("unknown field `nmae`, expected one of"));

        let err = from_json_err::<Cfg>(json!("hunter2"));
        assert_eq!(err.path(), None);
        assert_eq!(err.to_string(), "invalid type: string, expected struct Cfg");

        let err = from_json_err::<Cfg>(json!({"limit": 5_000_000_000_u64}));
        assert_eq!(
            err.to_string(),
            "limit: invalid value: integer `5000000000`, expected u32"
        );

        let ok: Cfg = match from_json(&json!({"name": "n", "redis": {"port": 1}})) {
            Ok(cfg) => cfg,
            Err(err) => Cfg {
                name: err.to_string(),
                redis: None,
                mode: None,
                items: Vec::new(),
                limit: None,
            },
        };
        assert_eq!(ok.name, "n");
        assert_eq!(ok.redis.map(|r| r.port), Some(1));
    }

    #[test]
    fn secrets_never_appear_in_messages() {
        let secret = "hunter2-P@ss\"w`o\\rd";
        let cases: Vec<(ConfigError, &str)> = vec![
            (
                from_json_err::<Cfg>(json!({"redis": {"port": secret}})),
                "redis.port: invalid type: string, expected u16",
            ),
            (
                from_json_err::<Cfg>(json!({"mode": secret})),
                "mode: unknown variant (value hidden), expected `allow` or `deny`",
            ),
            (
                from_json_err::<Cfg>(json!({"name": 12})),
                "name: invalid type: integer `12`, expected a string",
            ),
            (
                from_json_err::<char>(json!(secret)),
                "invalid value: string, expected a character",
            ),
            (
                from_json_err::<Echo>(json!(secret)),
                "bad token (value hidden) (wanted \"x-...\")",
            ),
            (
                from_json_err::<Vec<Mode>>(json!(["allow", secret])),
                "[1]: unknown variant (value hidden), expected `allow` or `deny`",
            ),
        ];
        for (err, want) in cases {
            let shown = err.to_string();
            let debug = format!("{err:?}");
            assert_eq!(shown, want);
            for leak in ["hunter2", "P@ss"] {
                assert!(!shown.contains(leak), "{shown}");
                assert!(!debug.contains(leak), "{debug}");
            }
        }
    }

    #[test]
    fn redact_rewrites() {
        assert_eq!(
            redact("invalid type: string \"a\\\"b\", expected u8", None),
            "invalid type: string, expected u8"
        );
        assert_eq!(
            redact("invalid value: string \"\", expected a thing", None),
            "invalid value: string, expected a thing"
        );
        assert_eq!(
            redact("invalid value: character `é`, expected a digit", None),
            "invalid value: character, expected a digit"
        );
        assert_eq!(
            redact("unknown variant `x`, there are no variants", None),
            "unknown variant (value hidden), there are no variants"
        );
        // With the value known, the variant end is exact even if it contains
        // the separator serde uses.
        assert_eq!(
            redact(
                "unknown variant `a`, expected b`, expected `c`",
                Some("a`, expected b")
            ),
            "unknown variant (value hidden), expected `c`"
        );
        // Keys and numbers stay; standard formats are not scanned for the value.
        assert_eq!(
            redact("unknown field `token`, expected `a`", Some("token")),
            "unknown field `token`, expected `a`"
        );
        assert_eq!(
            redact(
                "invalid type: string \"string\", expected u8",
                Some("string")
            ),
            "invalid type: string, expected u8"
        );
        // Custom messages: long values are hidden, very short ones are not
        // (they would mangle the message and hide little).
        assert_eq!(redact("no ab here", Some("ab")), "no ab here");
        assert_eq!(redact("bad: abc!", Some("abc")), "bad: (value hidden)!");
        assert_eq!(
            redact("bad: \"q\\\"x\"", Some("q\"x")),
            "bad: \"(value hidden)\""
        );
        // Unterminated quote: left alone rather than guessed.
        assert_eq!(
            redact("invalid type: string \"abc", None),
            "invalid type: string \"abc"
        );
    }

    // ---- merge_patch -------------------------------------------------------

    #[test]
    fn merge_patch_rfc7386_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, want) in cases {
            let mut got = target.clone();
            merge_patch(&mut got, &patch);
            assert_eq!(got, want, "target={target} patch={patch}");
        }
    }

    // ---- parse_plugin_config ----------------------------------------------

    #[test]
    fn empty_config_calls_the_parser_with_an_empty_object() {
        for raw in ["", "  \n\t ", "{}", "{\"_plugin_id_\": \"p-1\"}"] {
            let seen = RefCell::new(Vec::new());
            let parse = |v: &Value| -> Result<u32, ConfigError> {
                seen.borrow_mut().push(v.clone());
                Ok(7)
            };
            let rule = |_: &RuleInput<'_, u32>| -> Result<u32, ConfigError> { Ok(0) };
            let parsed = parse_plugin_config(raw.as_bytes(), &parse, &rule);
            let global = parsed
                .as_ref()
                .ok()
                .and_then(|p| p.matcher.global().map(|g| **g));
            assert_eq!(global, Some(7), "{raw:?}");
            assert_eq!(seen.borrow().as_slice(), &[json!({})], "{raw:?}");
            assert_eq!(parsed.map(|p| p.matcher.rule_count()).ok(), Some(0));
        }
    }

    #[test]
    fn empty_config_parser_error_fails() {
        let parse = |_: &Value| -> Result<u32, ConfigError> {
            Err(ConfigError::new("token is required").with_path("token"))
        };
        let rule = |_: &RuleInput<'_, u32>| -> Result<u32, ConfigError> { Ok(0) };
        let err = err_of(parse_plugin_config(b"", &parse, &rule));
        assert_eq!(err.to_string(), "global config: token: token is required");
        assert_eq!(err.location(), Some("global config"));
    }

    #[test]
    fn invalid_json_and_non_objects() {
        assert_eq!(
            parse_err("{\"a\": \"hunter2"),
            "plugin config: invalid JSON: EOF while parsing a string at line 1 column 14"
        );
        assert_eq!(
            parse_err("{ x"),
            "plugin config: invalid JSON: key must be a string at line 1 column 3"
        );
        assert_eq!(
            parse_err("[1]"),
            "plugin config: the top level must be a JSON object, found an array"
        );
        assert_eq!(
            parse_err("\"hunter2\""),
            "plugin config: the top level must be a JSON object, found a string"
        );
    }

    #[test]
    fn plugin_id_is_stripped() {
        let parsed = parse(r#"{"_plugin_id_": "plugin-a", "name": "n"}"#);
        assert_eq!(
            parsed.as_ref().ok().and_then(|p| p.plugin_id.clone()),
            Some("plugin-a".to_owned())
        );
        // `deny_unknown_fields` did not trip over `_plugin_id_`.
        assert_eq!(
            parsed
                .ok()
                .and_then(|p| p.matcher.global().map(|g| g.name.clone())),
            Some("n".to_owned())
        );

        let odd = parse(r#"{"_plugin_id_": 5, "name": "n"}"#);
        assert_eq!(odd.as_ref().ok().map(|p| p.plugin_id.is_none()), Some(true));
        assert_eq!(
            odd.ok().map(|p| p.warnings),
            Some(vec![
                "_plugin_id_ ignored: expected a string, found a number".to_owned()
            ])
        );
    }

    #[test]
    fn global_only() {
        let parsed = parse(r#"{"name": "g", "redis": {"port": 1}}"#);
        let p = match parsed {
            Ok(p) => p,
            Err(err) => return assert_eq!(err.to_string(), ""),
        };
        assert_eq!(p.matcher.rule_count(), 0);
        assert!(p.warnings.is_empty());
        assert_eq!(p.matcher.global().map(|g| g.name.as_str()), Some("g"));

        assert_eq!(
            parse_err(r#"{"redis": {"port": "hunter2"}}"#),
            "global config: redis.port: invalid type: string, expected u16"
        );
    }

    #[test]
    fn global_parser_never_sees_rules_or_plugin_id() {
        let seen = RefCell::new(Vec::new());
        let parse = |v: &Value| -> Result<u8, ConfigError> {
            seen.borrow_mut().push(v.clone());
            Ok(1)
        };
        let rule = |_: &RuleInput<'_, u8>| -> Result<u8, ConfigError> { Ok(2) };
        let raw = r#"{"_plugin_id_": "x", "a": 1, "_rules_": [{"_match_route_": ["r"]}]}"#;
        let parsed = parse_plugin_config(raw.as_bytes(), &parse, &rule);
        assert!(parsed.is_ok());
        assert_eq!(seen.borrow().as_slice(), &[json!({"a": 1})]);

        // Only `_rules_`: there are no global keys, so no global parse.
        seen.borrow_mut().clear();
        let parsed =
            parse_plugin_config(br#"{"_rules_": [{"_match_route_": ["r"]}]}"#, &parse, &rule);
        assert!(parsed.is_ok_and(|p| p.matcher.global().is_none()));
        assert!(seen.borrow().is_empty());
    }

    #[test]
    fn failed_global_with_rules_is_a_warning() {
        let raw = r#"{"redis": {"port": "hunter2"}, "_rules_": [{"_match_domain_": ["a.com"], "name": "r"}]}"#;
        let globals_seen = RefCell::new(Vec::new());
        let rule = |r: &RuleInput<'_, Cfg>| -> Result<Cfg, ConfigError> {
            globals_seen.borrow_mut().push(r.global().is_some());
            from_json(r.rule_json())
        };
        let parsed = parse_plugin_config(raw.as_bytes(), &parse_cfg, &rule);
        let p = match parsed {
            Ok(p) => p,
            Err(err) => return assert_eq!(err.to_string(), ""),
        };
        assert!(p.matcher.global().is_none());
        assert_eq!(p.matcher.rule_count(), 1);
        assert_eq!(globals_seen.borrow().as_slice(), &[false]);
        assert_eq!(
            p.warnings,
            vec![
                "global config ignored because it failed to parse while _rules_ exist: \
                 global config: redis.port: invalid type: string, expected u16"
                    .to_owned()
            ]
        );
        assert!(!p.warnings.iter().any(|w| w.contains("hunter2")));
    }

    #[test]
    fn no_rules_and_no_global() {
        assert_eq!(
            parse_err(r#"{"_rules_": []}"#),
            "_rules_: no valid rules and no global config: the array is empty and there are no other keys"
        );
        // Global failed and the rules are empty: the global error.
        assert_eq!(
            parse_err(r#"{"limit": "x", "_rules_": []}"#),
            "global config: limit: invalid type: string, expected u32"
        );
        // Global fine, rules empty: fine.
        assert!(parse(r#"{"limit": 3, "_rules_": []}"#)
            .is_ok_and(|p| p.matcher.global().is_some_and(|g| g.limit == Some(3))));
    }

    #[test]
    fn rules_shape_errors() {
        assert_eq!(
            parse_err(r#"{"_rules_": {"_match_route_": ["r"]}}"#),
            "_rules_: expected an array of rule objects, found an object"
        );
        assert_eq!(
            parse_err(r#"{"_rules_": null}"#),
            "_rules_: expected an array of rule objects, found null"
        );
        assert_eq!(
            parse_err(r#"{"_rules_": [{"_match_route_": ["r"]}, "hunter2"]}"#),
            "_rules_[1]: a rule must be a JSON object, found a string"
        );
        assert_eq!(
            parse_err(r#"{"_rules_": [{"_match_route_": "default/foo"}]}"#),
            "_rules_[0]: _match_route_: expected an array of strings, found a string"
        );
        assert_eq!(
            parse_err(r#"{"_rules_": [{"_match_route_": ["r"]}, {"_match_domain_": ["a", 1]}]}"#),
            "_rules_[1]: _match_domain_[1]: expected a string, found a number"
        );
        assert_eq!(
            parse_err(r#"{"_rules_": [{"_match_service_": {}}]}"#),
            "_rules_[0]: _match_service_: expected an array of strings, found an object"
        );
        assert_eq!(
            parse_err(r#"{"_rules_": [{"_match_route_prefix_": [null]}]}"#),
            "_rules_[0]: _match_route_prefix_[0]: expected a string, found null"
        );
        let err = err_of(parse(
            r#"{"_rules_": [{"_match_route_": ["r"]}, {"_match_route_": 3}]}"#,
        ));
        assert_eq!(err.rule_index(), Some(1));
        assert_eq!(err.path(), Some("_match_route_"));
    }

    #[test]
    fn rule_without_match_keys() {
        let want = "_rules_[0]: a rule needs at least one of _match_route_, _match_domain_, \
                    _match_service_, _match_route_prefix_";
        assert_eq!(parse_err(r#"{"_rules_": [{"name": "x"}]}"#), want);
        // Empty lists, empty strings (dropped as in Go) and nulls count as absent.
        assert_eq!(
            parse_err(
                r#"{"_rules_": [{"_match_route_": [""], "_match_service_": [], "_match_route_prefix_": [""], "_match_domain_": null}]}"#
            ),
            want
        );
        let err = err_of(parse(
            r#"{"name": "g", "_rules_": [{"_match_route_": ["r"]}, {}]}"#,
        ));
        assert_eq!(err.rule_index(), Some(1));
        assert!(err.to_string().starts_with("_rules_[1]: a rule needs"));
        // An empty domain is kept, as in Go, so this rule is valid.
        assert!(parse(r#"{"_rules_": [{"_match_domain_": [""]}]}"#).is_ok());
    }

    #[test]
    fn rule_parse_error_is_located() {
        let raw = r#"{"name": "g", "_rules_": [
            {"_match_route_": ["a"]},
            {"_match_route_": ["b"]},
            {"_match_domain_": ["*.a.com"], "redis": {"port": "hunter2"}},
            {"_match_route_": ["never parsed"], "redis": {"port": "x"}}
        ]}"#;
        let err = err_of(parse(raw));
        assert_eq!(
            err.to_string(),
            "_rules_[2] (_match_domain_: [\"*.a.com\"]): redis.port: invalid type: string, expected u16"
        );
        assert_eq!(err.rule_index(), Some(2));
        assert_eq!(err.path(), Some("redis.port"));
        assert_eq!(
            err.location(),
            Some("_rules_[2] (_match_domain_: [\"*.a.com\"])")
        );

        // deny_unknown_fields sees the rule without its match keys.
        assert_eq!(
            parse_err(r#"{"_rules_": [{"_match_service_": ["s:80"], "nmae": 1}]}"#)
                .split(", expected")
                .next(),
            Some("_rules_[0] (_match_service_: [\"s:80\"]): nmae: unknown field `nmae`")
        );
        // Both category keys are named for route + service.
        assert_eq!(
            parse_err(r#"{"_rules_": [{"_match_route_": ["r"], "_match_service_": ["s"], "_match_domain_": ["d"], "limit": -1}]}"#),
            "_rules_[0] (_match_route_: [\"r\"], _match_service_: [\"s\"]): limit: invalid value: integer `-1`, expected u32"
        );
    }

    #[test]
    fn rule_description_escapes_like_serde_json() {
        let values = ["a\"b\\c/\u{e9}", "\u{1}\u{8}\t\n\u{c}\r\u{1f}\u{7f}", ""];
        let mut got = String::new();
        for v in values {
            got.clear();
            push_json_string(&mut got, v);
            assert_eq!(got, Value::String(v.to_owned()).to_string());
        }
        let list: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let first = list.get(..1).unwrap_or_default();
        assert_eq!(
            describe(
                "_rules_[3]",
                &[(MATCH_ROUTE_KEY, &list), (MATCH_SERVICE_KEY, first)]
            ),
            format!(
                "_rules_[3] (_match_route_: {}, _match_service_: {})",
                json!(list),
                json!(first)
            )
        );
    }

    #[test]
    fn rule_inputs() {
        let raw = r#"{"_plugin_id_": "p", "name": "global", "limit": 5, "redis": {"host": "h", "port": 1},
            "_rules_": [
                {"_match_route_": ["r"], "_match_domain_": ["d"], "_match_service_": [], "_match_route_prefix_": null,
                 "_rules_": [], "_plugin_id_": "q", "limit": 9, "redis": {"port": 2}},
                {"_match_route_prefix_": ["api-"], "limit": null}
            ]}"#;
        let seen = RefCell::new(Vec::new());
        let rule = |r: &RuleInput<'_, Cfg>| -> Result<Cfg, ConfigError> {
            seen.borrow_mut().push((
                r.index(),
                r.location().to_owned(),
                r.rule_json().clone(),
                r.merged_json().clone(),
                r.global().map(|g| g.name.clone()),
            ));
            from_json(r.merged_json())
        };
        let parsed = parse_plugin_config(raw.as_bytes(), &parse_cfg, &rule);
        let p = match parsed {
            Ok(p) => p,
            Err(err) => return assert_eq!(err.to_string(), ""),
        };
        let global = Some("global".to_owned());
        assert_eq!(
            seen.borrow().as_slice(),
            &[
                (
                    0,
                    "_rules_[0] (_match_route_: [\"r\"])".to_owned(),
                    json!({"limit": 9, "redis": {"port": 2}}),
                    json!({"name": "global", "limit": 9, "redis": {"host": "h", "port": 2}}),
                    global.clone(),
                ),
                (
                    1,
                    "_rules_[1] (_match_route_prefix_: [\"api-\"])".to_owned(),
                    json!({"limit": null}),
                    json!({"name": "global", "redis": {"host": "h", "port": 1}}),
                    global,
                ),
            ]
        );
        assert_eq!(p.plugin_id.as_deref(), Some("p"));
        assert_eq!(p.matcher.rule_count(), 2);
        assert_eq!(
            p.matcher.describe_rule(0),
            Some("_rules_[0] (_match_route_: [\"r\"])")
        );
        assert_eq!(
            p.matcher.describe_rule(1),
            Some("_rules_[1] (_match_route_prefix_: [\"api-\"])")
        );
        // The rule is a Route rule: its domain is ignored.
        assert!(p.matcher.needs_route() && !p.matcher.needs_host() && !p.matcher.needs_cluster());
        match p.matcher.find(Some(b"d"), Some("r"), None) {
            crate::matcher::Matched::Rule { index, config } => {
                assert_eq!(index, 0);
                assert_eq!(config.limit, Some(9));
                assert_eq!(config.redis.as_ref().map(|r| r.port), Some(2));
            }
            _ => assert_eq!("no match", "rule 0"),
        }
        match p.matcher.find(None, Some("api-v1"), None) {
            crate::matcher::Matched::Rule { index, config } => {
                assert_eq!(index, 1);
                assert_eq!(config.limit, None);
            }
            _ => assert_eq!("no match", "rule 1"),
        }
        match p.matcher.find(None, Some("other"), None) {
            crate::matcher::Matched::Global(g) => assert_eq!(g.name, "global"),
            _ => assert_eq!("no match", "global"),
        }
    }

    #[test]
    fn rules_are_kept_in_order_and_first_match_wins() {
        let raw = r#"{"_rules_": [
            {"_match_domain_": ["*.a.com"], "name": "wild"},
            {"_match_domain_": ["www.a.com"], "name": "exact"},
            {"_match_service_": ["svc.ns.svc.cluster.local:8080"], "name": "svc"}
        ]}"#;
        let p = match parse(raw) {
            Ok(p) => p,
            Err(err) => return assert_eq!(err.to_string(), ""),
        };
        let name =
            |host: &[u8], cluster: Option<&str>| match p.matcher.find(Some(host), None, cluster) {
                crate::matcher::Matched::Rule { config, .. } => config.name.clone(),
                crate::matcher::Matched::Global(_) => "global".to_owned(),
                crate::matcher::Matched::None => "none".to_owned(),
            };
        assert_eq!(name(b"www.a.com:443", None), "wild");
        assert_eq!(name(b"a.com", None), "none");
        assert_eq!(
            name(b"b.com", Some("outbound|8080||svc.ns.svc.cluster.local")),
            "svc"
        );
        assert!(p.matcher.needs_host() && p.matcher.needs_cluster() && !p.matcher.needs_route());
        assert_eq!(
            p.matcher.describe_rule(2),
            Some("_rules_[2] (_match_service_: [\"svc.ns.svc.cluster.local:8080\"])")
        );
    }

    #[test]
    fn custom_rule_parser_can_use_the_global() {
        let parse = |v: &Value| -> Result<u32, ConfigError> {
            v.get("base")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ConfigError::new("expected a u32").with_path("base"))
        };
        let rule = |r: &RuleInput<'_, u32>| -> Result<u32, ConfigError> {
            let add = r
                .rule_json()
                .get("add")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let add =
                u32::try_from(add).map_err(|_| ConfigError::new("too big").with_path("add"))?;
            Ok(r.global().copied().unwrap_or(0) + add)
        };
        let raw = br#"{"base": 10, "_rules_": [{"_match_route_": ["r"], "add": 5}]}"#;
        let p = parse_plugin_config(raw, &parse, &rule);
        let got = p
            .ok()
            .and_then(|p| match p.matcher.find(None, Some("r"), None) {
                crate::matcher::Matched::Rule { config, .. } => Some(**config),
                _ => None,
            });
        assert_eq!(got, Some(15));

        let raw = br#"{"base": 10, "_rules_": [{"_match_route_": ["r"], "add": 5000000000}]}"#;
        let err = err_of(parse_plugin_config(raw, &parse, &rule));
        assert_eq!(
            err.to_string(),
            "_rules_[0] (_match_route_: [\"r\"]): add: too big"
        );
    }
}
