//! `ConfigError`: where a configuration is wrong, without its values.

use super::redact::redact;

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
    pub(super) location: Option<String>,
    pub(super) rule_index: Option<usize>,
    pub(super) path: Option<String>,
    pub(super) message: String,
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
    /// it. The JSON path is unknown here; [`from_json`](super::from_json) records it.
    fn from(err: serde_json::Error) -> Self {
        ConfigError::new(redact(&err.to_string(), None))
    }
}
