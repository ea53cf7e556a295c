//! TEMPORARY STUB (being replaced by the real config module).
#![allow(missing_docs, unreachable_pub, dead_code)]
use crate::matcher::RuleMatcher;
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);
impl ConfigError { pub fn new(m: impl Into<String>) -> Self { ConfigError(m.into()) } }
impl From<serde_json::Error> for ConfigError { fn from(e: serde_json::Error) -> Self { ConfigError(e.to_string()) } }
pub struct RuleInput<'a, C> { rule: &'a serde_json::Value, merged: serde_json::Value, global: Option<&'a C>, index: usize }
impl<'a, C> RuleInput<'a, C> {
    pub fn rule_json(&self) -> &serde_json::Value { self.rule }
    pub fn merged_json(&self) -> &serde_json::Value { &self.merged }
    pub fn global(&self) -> Option<&C> { self.global }
    pub fn index(&self) -> usize { self.index }
}
pub fn from_json<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, ConfigError> { Ok(serde_json::from_value(v.clone())?) }
pub(crate) struct ParsedConfig<C> { pub(crate) plugin_id: Option<String>, pub(crate) matcher: RuleMatcher<C>, pub(crate) warnings: Vec<String> }
pub(crate) fn parse_plugin_config<C>(raw: &[u8], parse: &dyn Fn(&serde_json::Value) -> Result<C, ConfigError>, _parse_rule: &dyn Fn(&RuleInput<'_, C>) -> Result<C, ConfigError>) -> Result<ParsedConfig<C>, ConfigError> {
    let v: serde_json::Value = if raw.is_empty() { serde_json::json!({}) } else { serde_json::from_slice(raw)? };
    let g = parse(&v)?;
    Ok(ParsedConfig { plugin_id: None, matcher: RuleMatcher::new(Vec::new(), Some(g)), warnings: Vec::new() })
}
