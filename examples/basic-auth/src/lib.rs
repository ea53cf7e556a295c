//! basic-auth: a port of Higress's `basic-auth` Go plugin.
//!
//! The global config lists the consumers (`name`, `credential` as
//! `user:password`); each `_rules_` entry (a route or domain) names the
//! consumers it `allow`s. A request with valid `Authorization: Basic ...`
//! credentials gets `X-Mse-Consumer: <name>` added; otherwise it is answered
//! 401 (no or bad credentials) or 403 (a consumer not allowed here), with
//! `WWW-Authenticate: Basic realm=MSE Gateway`.
//!
//! Whether requests that match no rule are authenticated is Go's
//! `global_auth`: `true` yes, `false` no, unset: only if there are no rules.
use higress_wrapper::config::from_json;
use higress_wrapper::logging::Truncated;
use higress_wrapper::prelude::*;
use serde::Deserialize;
use std::collections::HashMap;
use std::rc::Rc;

const REALM: &[u8] = b"Basic realm=MSE Gateway";

#[derive(Debug, Deserialize)]
struct ConsumerJson {
    name: Option<String>,
    credential: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GlobalJson {
    global_auth: Option<bool>,
    consumers: Option<Vec<ConsumerJson>>,
}

#[derive(Debug, Deserialize)]
struct RuleJson {
    allow: Option<Vec<String>>,
}

/// The consumers, indexed as Go indexes them.
#[derive(Debug, Default)]
pub struct Consumers {
    /// `user:password` → consumer name.
    pub by_credential: HashMap<String, String>,
    /// user → password (a later consumer with the same user wins, as in Go).
    pub passwords: HashMap<String, String>,
}

/// The parsed config: the global one, or a rule's (the global one plus its
/// `allow` list).
#[derive(Debug, Clone, Default)]
pub struct BasicAuthConfig {
    /// `global_auth`; `None` when not set.
    pub global_auth: Option<bool>,
    /// The consumers of the global config.
    pub consumers: Rc<Consumers>,
    /// The consumers a rule allows; empty in the global config.
    pub allow: Vec<String>,
}

fn required<T>(value: Option<T>, key: &str) -> Result<T, ConfigError> {
    value.ok_or_else(|| ConfigError::new(format!("{key} is required")))
}

/// Splits `user:password`; exactly one `:` is allowed, as in Go.
fn split_credential(credential: &str) -> Option<(&str, &str)> {
    credential
        .split_once(':')
        .filter(|(_, password)| !password.contains(':'))
}

/// Parses the global config with Go's checks and messages (secrets are not
/// echoed: errors name the entry instead).
pub fn parse_config(json: &JsonValue) -> Result<BasicAuthConfig, ConfigError> {
    let raw: GlobalJson = from_json(json)?;
    let list = required(raw.consumers, "consumers")?;
    if list.is_empty() {
        return Err(ConfigError::new("consumers cannot be empty"));
    }
    let mut consumers = Consumers::default();
    for (i, consumer) in list.into_iter().enumerate() {
        let at = |field: &str| format!("consumers[{i}].{field}");
        let name = consumer.name.filter(|n| !n.is_empty());
        let name = name
            .ok_or_else(|| ConfigError::new("consumer name is required").with_path(at("name")))?;
        let credential = consumer.credential.filter(|c| !c.is_empty());
        let credential = credential.ok_or_else(|| {
            ConfigError::new("consumer credential is required").with_path(at("credential"))
        })?;
        if consumers.by_credential.contains_key(&credential) {
            let error = ConfigError::new("duplicate consumer credential");
            return Err(error.with_path(at("credential")));
        }
        let Some((user, password)) = split_credential(&credential) else {
            let error = ConfigError::new("invalid credential format, expected user:password");
            return Err(error.with_path(at("credential")));
        };
        consumers
            .passwords
            .insert(user.to_owned(), password.to_owned());
        consumers.by_credential.insert(credential, name);
    }
    Ok(BasicAuthConfig {
        global_auth: raw.global_auth,
        consumers: Rc::new(consumers),
        ..BasicAuthConfig::default()
    })
}

/// A rule: the global config (empty if there is none) plus a non-empty
/// `allow` list, as Go's `parseOverrideRuleConfig`.
fn parse_rule_config(
    json: &JsonValue,
    global: Option<&BasicAuthConfig>,
) -> Result<BasicAuthConfig, ConfigError> {
    let rule: RuleJson = from_json(json)?;
    let allow = required(rule.allow, "allow")?;
    if allow.is_empty() {
        return Err(ConfigError::new("allow cannot be empty"));
    }
    Ok(BasicAuthConfig {
        allow,
        ..global.cloned().unwrap_or_default()
    })
}

/// Go's `base64.StdEncoding.DecodeString`: padded, `\r` and `\n` ignored,
/// `None` on anything else that is not base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(u32::from(v))
    }
    let clean: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    if clean.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let last = clean.len() / 4;
    for (n, quad) in clean.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && n + 1 != last) {
            return None;
        }
        let mut bits = 0u32;
        for &c in quad.iter().take(4 - pad) {
            bits = bits << 6 | value(c)?;
        }
        bits <<= 6 * pad;
        let bytes = bits.to_be_bytes();
        out.extend(bytes.iter().skip(1).take(3 - pad));
    }
    Some(out)
}

fn deny(ctx: &mut HttpContext, status: u32, details: &str, message: &str) -> HeaderAction {
    let headers: [(&str, &[u8]); 1] = [("WWW-Authenticate", REALM)];
    let body = format!("Request denied by Basic Auth check. {message}");
    ctx.send_local_response_with_details(status, details, &headers, body);
    HeaderAction::Continue
}

fn no_auth_data(ctx: &mut HttpContext, why: &str) -> HeaderAction {
    log::warn!("{why}");
    let message = "No Basic Authentication information found.";
    deny(ctx, 401, "basic-auth.no_auth_data", message)
}

fn bad_credential(ctx: &mut HttpContext, why: &str) -> HeaderAction {
    log::warn!("{why}");
    let message = "Invalid username and/or password.";
    deny(ctx, 401, "basic-auth.bad_credential", message)
}

fn on_request_headers(ctx: &mut HttpContext, config: &BasicAuthConfig) -> HeaderAction {
    // The global config (no `allow`) authenticates only if global_auth says
    // so; a rule's config always does.
    let global_auth = config.global_auth.unwrap_or(!ctx.has_rules());
    if config.allow.is_empty() && !global_auth {
        log::info!("authorization is not required");
        return HeaderAction::Continue;
    }
    let Some(auth) = ctx.request_header("authorization") else {
        return no_auth_data(ctx, "failed to get authorization: not found");
    };
    let auth = auth.to_str_lossy();
    if auth.is_empty() {
        return no_auth_data(ctx, "authorization is empty");
    }
    let Some(encoded) = auth.strip_prefix("Basic ") else {
        return no_auth_data(ctx, "authorization has no prefix 'Basic '");
    };
    let Some(credential) = decode_base64(encoded).and_then(|b| String::from_utf8(b).ok()) else {
        return bad_credential(ctx, "failed to decode authorization");
    };
    let Some((user, password)) = split_credential(&credential) else {
        return bad_credential(ctx, "invalid credential format");
    };
    match config.consumers.passwords.get(user) {
        None => {
            // The user name is the client's: log a bounded part of it.
            let why = format!(
                "username \"{}\" is not configured",
                Truncated::new(user, 64)
            );
            return bad_credential(ctx, &why);
        }
        Some(correct) if correct != password => {
            let why = format!("credential password is not correct for username {user:?}");
            return bad_credential(ctx, &why);
        }
        Some(_) => {}
    }
    let unauthorized = "Unauthorized consumer.";
    let Some(name) = config.consumers.by_credential.get(&credential) else {
        // Unreachable (user and password came from a configured credential);
        // kept as Go keeps it.
        return deny(ctx, 403, "basic-auth.unauthorized", unauthorized);
    };
    if !config.allow.is_empty() && !config.allow.contains(name) {
        log::warn!("consumer {name:?} is not allowed");
        return deny(ctx, 403, "basic-auth.unauthorized", unauthorized);
    }
    log::info!("consumer {name:?} authenticated");
    ctx.add_request_header("X-Mse-Consumer", name);
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "basic-auth",
    plugin: pub Plugin,
    config: BasicAuthConfig,
    parse_config: parse_config,
    parse_rule_config: parse_rule_config,
    on_request_headers: on_request_headers,
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_like_go_std_encoding() {
        assert_eq!(
            decode_base64("YWRtaW46MTIzNDU2").as_deref(),
            Some(&b"admin:123456"[..])
        );
        assert_eq!(
            decode_base64("Z3Vlc3Q6YWJj").as_deref(),
            Some(&b"guest:abc"[..])
        );
        assert_eq!(decode_base64("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_base64("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(decode_base64("YW\r\nI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
        for bad in ["YQ", "YQ=", "Y===", "YQ==YQ==", "invalid-base64", "YW!i"] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }
}
