//! key-auth: a port of Higress's `key-auth` Go plugin.
//!
//! The global config lists the consumers (name and API key) and where the
//! key is read from (`keys`: header or query parameter names). Each
//! `_rules_` entry (a route or domain) names the consumers it `allow`s. A
//! caller with a known key gets `X-Mse-Consumer: <name>` added to the
//! request; otherwise the request is answered 401 (no key, or several) or
//! 403 (unknown key, or a consumer not allowed here), with
//! `WWW-Authenticate: Key realm=MSE Gateway`.
//!
//! Whether requests that match no rule are authenticated is Go's
//! `global_auth`: `true` yes, `false` no, unset: only if there are no rules.
use higress_wrapper::config::from_json;
use higress_wrapper::prelude::*;
use serde::Deserialize;
use std::collections::HashMap;
use std::rc::Rc;

mod query;

const REALM: &[u8] = b"Key realm=MSE Gateway";

#[derive(Debug, Deserialize)]
struct ConsumerJson {
    name: Option<String>,
    credential: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GlobalJson {
    global_auth: Option<bool>,
    keys: Option<Vec<String>>,
    in_query: Option<bool>,
    in_header: Option<bool>,
    consumers: Option<Vec<ConsumerJson>>,
}

#[derive(Debug, Deserialize)]
struct RuleJson {
    allow: Option<Vec<String>>,
}

/// The parsed config: the global one, or a rule's (the global one plus its
/// `allow` list).
#[derive(Debug, Clone, Default)]
pub struct KeyAuthConfig {
    /// `global_auth`; `None` when not set.
    pub global_auth: Option<bool>,
    /// Header or query parameter names the key is read from.
    pub keys: Vec<String>,
    /// Read the key from the query (only if `in_header` is false, as in Go).
    pub in_query: bool,
    /// Read the key from the headers.
    pub in_header: bool,
    /// Credential → consumer name.
    pub consumers: Rc<HashMap<String, String>>,
    /// The consumers a rule allows; empty in the global config.
    pub allow: Vec<String>,
}

fn required<T>(value: Option<T>, key: &str) -> Result<T, ConfigError> {
    value.ok_or_else(|| ConfigError::new(format!("{key} is required")))
}

/// Parses the global config with Go's checks and messages.
pub fn parse_config(json: &JsonValue) -> Result<KeyAuthConfig, ConfigError> {
    let raw: GlobalJson = from_json(json)?;
    let keys = required(raw.keys, "keys")?;
    if keys.is_empty() {
        return Err(ConfigError::new("keys cannot be empty"));
    }
    if raw.in_query.is_none() && raw.in_header.is_none() {
        return Err(ConfigError::new("must one of in_query/in_header required"));
    }
    let list = required(raw.consumers, "consumers")?;
    if list.is_empty() {
        return Err(ConfigError::new("consumers cannot be empty"));
    }
    let mut consumers = HashMap::new();
    for (i, consumer) in list.into_iter().enumerate() {
        let at = |field: &str| format!("consumers[{i}].{field}");
        let name = consumer.name.filter(|n| !n.is_empty());
        let name = name
            .ok_or_else(|| ConfigError::new("consumer name is required").with_path(at("name")))?;
        let credential = consumer.credential.filter(|c| !c.is_empty());
        let credential = credential.ok_or_else(|| {
            ConfigError::new("consumer credential is required").with_path(at("credential"))
        })?;
        // Go echoes the credential here; a secret stays out of the log.
        if consumers.insert(credential, name).is_some() {
            return Err(
                ConfigError::new("duplicate consumer credential").with_path(at("credential"))
            );
        }
    }
    Ok(KeyAuthConfig {
        global_auth: raw.global_auth,
        keys,
        in_query: raw.in_query.unwrap_or(false),
        in_header: raw.in_header.unwrap_or(false),
        consumers: Rc::new(consumers),
        ..KeyAuthConfig::default()
    })
}

/// A rule: the global config (empty if there is none) plus a non-empty
/// `allow` list, as Go's `parseOverrideRuleConfig`.
fn parse_rule_config(
    json: &JsonValue,
    global: Option<&KeyAuthConfig>,
) -> Result<KeyAuthConfig, ConfigError> {
    let rule: RuleJson = from_json(json)?;
    let allow = required(rule.allow, "allow")?;
    if allow.is_empty() {
        return Err(ConfigError::new("allow cannot be empty"));
    }
    Ok(KeyAuthConfig {
        allow,
        ..global.cloned().unwrap_or_default()
    })
}

fn deny(ctx: &mut HttpContext, status: u32, details: &str, message: &str) -> HeaderAction {
    let headers: [(&str, &[u8]); 1] = [("WWW-Authenticate", REALM)];
    let body = format!("Request denied by Key Auth check. {message}");
    ctx.send_local_response_with_details(status, details, &headers, body);
    HeaderAction::Continue
}

/// The keys the request carries: from the headers if `in_header`, else from
/// the query if `in_query`.
fn tokens(ctx: &HttpContext, config: &KeyAuthConfig) -> Vec<String> {
    if config.in_header {
        config
            .keys
            .iter()
            .filter_map(|key| ctx.request_header(key))
            .map(|value| value.to_str_lossy().into_owned())
            .filter(|value| !value.is_empty())
            .collect()
    } else if config.in_query {
        let pairs = query::query_pairs(ctx.path());
        config
            .keys
            .iter()
            .flat_map(|key| pairs.iter().filter(move |(name, _)| name == key))
            .map(|(_, value)| value.clone())
            .collect()
    } else {
        Vec::new()
    }
}

fn on_request_headers(ctx: &mut HttpContext, config: &KeyAuthConfig) -> HeaderAction {
    // The global config (no `allow`) authenticates only if global_auth says
    // so, by default when the config has no `_rules_` (Go's `ruleSet`); a
    // rule's config always does.
    let global_auth = config.global_auth.unwrap_or(!ctx.has_rules());
    if config.allow.is_empty() && !global_auth {
        log::info!("authorization is not required");
        return HeaderAction::Continue;
    }
    let tokens = tokens(ctx, config);
    let token = match tokens.as_slice() {
        [] => {
            let message = "No Key Authentication information found.";
            return deny(ctx, 401, "key-auth.no_key", message);
        }
        [token] => token,
        _ => {
            let message = "Multi Key Authentication information found.";
            return deny(ctx, 401, "key-auth.multi_key", message);
        }
    };
    let Some(name) = config.consumers.get(token) else {
        log::warn!("credential is not configured");
        return deny(ctx, 403, "key-auth.unauthorized", "Unauthorized consumer.");
    };
    // Added (not replaced) before the allow check, as in Go.
    ctx.add_request_header("X-Mse-Consumer", name);
    if !config.allow.is_empty() && !config.allow.contains(name) {
        log::warn!("consumer {name:?} is not allowed");
        return deny(ctx, 403, "key-auth.unauthorized", "Unauthorized consumer.");
    }
    log::info!("consumer {name:?} authenticated");
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "key-auth",
    plugin: pub Plugin,
    config: KeyAuthConfig,
    parse_config: parse_config,
    parse_rule_config: parse_rule_config,
    on_request_headers: on_request_headers,
}
