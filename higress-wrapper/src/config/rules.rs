//! The `_rules_` model: splitting the top level into global config, plugin
//! id and rules, validating each rule's match keys, and handing each rule to
//! its parser.

use serde_json::{Map, Value};

use super::error::ConfigError;
use super::kind;
use super::matcher::{Category, MatchConditions, RuleMatcher, RuleSpec};
use super::merge::merge_patch;
use super::redact::redact;

const RULES_KEY: &str = "_rules_";
const PLUGIN_ID_KEY: &str = "_plugin_id_";
pub(super) const MATCH_ROUTE_KEY: &str = "_match_route_";
pub(super) const MATCH_DOMAIN_KEY: &str = "_match_domain_";
pub(super) const MATCH_SERVICE_KEY: &str = "_match_service_";
pub(super) const MATCH_ROUTE_PREFIX_KEY: &str = "_match_route_prefix_";

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
pub(super) fn describe(bare: &str, named: &[(&str, &[String])]) -> String {
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
pub(super) fn push_json_string(out: &mut String, s: &str) {
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
