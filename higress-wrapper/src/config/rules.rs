//! The `_rules_` model: splitting the top level into global config, plugin
//! id and rules, validating each rule's match keys, and handing each rule to
//! its parser.

use std::cell::OnceCell;

use serde_json::{Map, Value};

use super::error::ConfigError;
use super::kind;
use super::matcher::{Category, MatchConditions, RuleMatcherBuilder, RuleSpec};
use super::merge::merged;
use super::redact::redact;
use super::scan::{self, RulesShape, Top, TopObject};

pub(super) const RULES_KEY: &str = "_rules_";
pub(super) const PLUGIN_ID_KEY: &str = "_plugin_id_";
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
    global_json: &'a Value,
    /// Made on first use: a parser that reads only the rule's own keys does
    /// not pay for a copy of the global keys per rule.
    pub(super) merged_json: OnceCell<Value>,
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
    /// [`RuleInput::rule_json`] merge-patched over them
    /// ([`merge_patch`](super::merge_patch); a `null` in the rule removes a
    /// global key). The default rule parser parses this, so a rule inherits
    /// every global key it does not set.
    pub fn merged_json(&self) -> &Value {
        self.merged_json
            .get_or_init(|| merged(self.global_json, &self.rule_json))
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
    pub(crate) matcher: super::matcher::RuleMatcher<C>,
    /// Problems that did not fail the configuration; the caller logs them.
    pub(crate) warnings: Vec<String>,
}

fn invalid_json(err: serde_json::Error) -> ConfigError {
    ConfigError::new(format!("invalid JSON: {}", redact(&err.to_string(), None)))
        .located(PLUGIN_CONFIG, None)
}

/// Parses the plugin configuration bytes into a
/// [`RuleMatcher`](super::matcher::RuleMatcher).
///
/// Follows the Go wrapper's `ParseRuleConfig`, except that the global parser
/// sees the top level without `_rules_` and `_plugin_id_`, a failed global
/// config next to rules becomes a warning, and malformed match keys are
/// errors instead of being ignored.
///
/// The rules are read one at a time from `raw` ([`scan`]): the JSON of a
/// rule is dropped once its parser has run, so memory grows with what the
/// rules keep (their configs and match keys), not with their JSON.
pub(crate) fn parse_plugin_config<C>(
    raw: &[u8],
    parse: &dyn Fn(&Value) -> Result<C, ConfigError>,
    parse_rule: &dyn Fn(&RuleInput<'_, C>) -> Result<C, ConfigError>,
) -> Result<ParsedConfig<C>, ConfigError> {
    let top = if raw.iter().all(u8::is_ascii_whitespace) {
        Top::Object(TopObject::default())
    } else {
        scan::read_top(raw).map_err(invalid_json)?
    };
    let top = match top {
        Top::Object(top) => top,
        Top::NotObject(found) => {
            return Err(ConfigError::new(format!(
                "the top level must be a JSON object, found {found}"
            ))
            .located(PLUGIN_CONFIG, None));
        }
    };

    let mut warnings = Vec::new();
    let plugin_id = match top.plugin_id {
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
    let rule_count = match top.rules {
        None => None,
        Some(RulesShape::Array(count)) => Some(count),
        Some(RulesShape::Other(found)) => {
            return Err(ConfigError::new(format!(
                "expected an array of rule objects, found {found}"
            ))
            .located(RULES_KEY, None));
        }
    };
    let has_global_keys = !top.global.is_empty();
    let global_json = Value::Object(top.global);

    let Some(rule_count) = rule_count else {
        // No `_rules_`: the global config (possibly `{}`) is the whole config.
        let global = parse(&global_json).map_err(|e| e.located(GLOBAL_CONFIG, None))?;
        return Ok(ParsedConfig {
            plugin_id,
            matcher: RuleMatcherBuilder::with_capacity(0).finish(Some(global)),
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
    if rule_count == 0 {
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

    let mut builder = RuleMatcherBuilder::with_capacity(rule_count);
    if rule_count > 0 {
        scan::for_each_rule(
            raw,
            top.rules_keys,
            &mut |index, rule| {
                let spec =
                    parse_rule_entry(index, rule, &global_json, global.as_ref(), parse_rule)?;
                builder.push(spec);
                Ok(())
            },
            invalid_json,
        )?;
    }
    Ok(ParsedConfig {
        plugin_id,
        matcher: builder.finish(global),
        warnings,
    })
}

fn parse_rule_entry<C>(
    index: usize,
    rule: Value,
    global_json: &Value,
    global: Option<&C>,
    parse_rule: &dyn Fn(&RuleInput<'_, C>) -> Result<C, ConfigError>,
) -> Result<RuleSpec<C>, ConfigError> {
    let bare_location = format!("{RULES_KEY}[{index}]");
    let fail = |err: ConfigError| err.located(&bare_location, Some(index));
    let rule = match rule {
        Value::Object(rule) => rule,
        other => {
            return Err(fail(ConfigError::new(format!(
                "a rule must be a JSON object, found {}",
                kind(&other)
            ))));
        }
    };

    let mut routes = string_list(&rule, MATCH_ROUTE_KEY).map_err(fail)?;
    // Go keeps empty domains (an exact match on an empty host).
    let domains = string_list(&rule, MATCH_DOMAIN_KEY).map_err(fail)?;
    let mut services = string_list(&rule, MATCH_SERVICE_KEY).map_err(fail)?;
    let mut route_prefixes = string_list(&rule, MATCH_ROUTE_PREFIX_KEY).map_err(fail)?;

    // Empty route names, services and prefixes are dropped, as in Go.
    let any = |list: &[String]| list.iter().any(|s| !s.is_empty());
    let Some(category) = Category::of(
        any(&routes),
        !domains.is_empty(),
        any(&services),
        any(&route_prefixes),
    ) else {
        return Err(fail(ConfigError::new(format!(
            "a rule needs at least one of {MATCH_ROUTE_KEY}, {MATCH_DOMAIN_KEY}, \
             {MATCH_SERVICE_KEY}, {MATCH_ROUTE_PREFIX_KEY}"
        ))));
    };
    // The description names the lists as written, before the filtering.
    let named: &[(&str, &[String])] = match category {
        Category::Route => &[(MATCH_ROUTE_KEY, &routes)],
        Category::RouteAndService => &[(MATCH_ROUTE_KEY, &routes), (MATCH_SERVICE_KEY, &services)],
        Category::Host => &[(MATCH_DOMAIN_KEY, &domains)],
        Category::Service => &[(MATCH_SERVICE_KEY, &services)],
        Category::RoutePrefix => &[(MATCH_ROUTE_PREFIX_KEY, &route_prefixes)],
    };
    let location = describe(&bare_location, named);
    for list in [&mut routes, &mut services, &mut route_prefixes] {
        list.retain(|s| !s.is_empty());
    }
    let conditions = MatchConditions {
        routes,
        domains,
        services,
        route_prefixes,
    };

    // The rule's own keys, moved out of the rule (by rebuilding, not
    // `Map::remove`; see `merge_patch`).
    let mut own = Map::new();
    for (key, value) in rule {
        if !RULE_RESERVED_KEYS.contains(&key.as_str()) {
            own.insert(key, value);
        }
    }
    let input = RuleInput {
        index,
        location: &location,
        rule_json: Value::Object(own),
        global_json,
        merged_json: OnceCell::new(),
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
