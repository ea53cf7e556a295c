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
//!
//! The module is a layer of its own: besides the leaf `wire` helpers (byte
//! search and replace) it imports nothing of the SDK, neither the runtime
//! nor the plugin API above it. Its files:
//!
//! | file | what it does |
//! |---|---|
//! | `mod.rs` | the public API: [`from_json`], re-exports |
//! | `error.rs` | [`ConfigError`] |
//! | `redact.rs` | hides configured strings in error messages |
//! | `de.rs` | the `&Value` deserializer behind [`from_json`], with error paths |
//! | `merge.rs` | [`merge_patch`] (RFC 7386) |
//! | `rules.rs` | the `_rules_` model: global config, rules, [`RuleInput`] |
//! | `scan.rs` | reads the text in two passes, handing over one rule at a time |
//! | `matcher.rs` | per-request rule matching, prepared at configure time |

use serde_json::Value;

mod de;
mod error;
pub(crate) mod matcher;
mod merge;
mod redact;
mod rules;
mod scan;
#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use merge::merge_patch;
pub use rules::RuleInput;
pub(crate) use rules::{parse_plugin_config, ParsedConfig};

use redact::redact;

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
        let at = de::lookup(value, &path).and_then(Value::as_str);
        ConfigError {
            location: None,
            rule_index: None,
            path: (!path.is_empty()).then(|| de::render_path(&path)),
            message: redact(&err.message, at),
        }
    })
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
