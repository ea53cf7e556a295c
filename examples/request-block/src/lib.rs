//! request-block: a port of Higress's `request-block` Go plugin.
//!
//! Blocks a request whose URL, headers or body contain a configured string
//! (or whose URL equals one, or matches a regular expression), answering
//! `blocked_code` (default 403) with `blocked_message` as the body.
//!
//! ```json
//! {"block_urls": ["swagger.html", "foo=bar"], "case_sensitive": false}
//! ```
//!
//! Same config keys, defaults and errors as Go: `blocked_code` outside
//! 101..=599 means 403, empty strings are skipped, a config with nothing
//! to block is refused, and so is a regular expression that does not compile.
//! A `_rules_` entry is parsed on its own keys, as Go's `ParseConfigBy` does
//! (it does not inherit the global block lists).
use higress_wrapper::config::from_json;
use higress_wrapper::prelude::*;
use regex_lite::Regex;
use serde::Deserialize;

/// The config as written (Go reads the same keys with gjson).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawConfig {
    blocked_code: Option<i64>,
    blocked_message: String,
    case_sensitive: bool,
    block_urls: Vec<String>,
    block_exact_urls: Vec<String>,
    block_regexp_urls: Vec<String>,
    block_headers: Vec<String>,
    block_bodies: Vec<String>,
}

/// The parsed config. With `case_sensitive: false` (the default in Go's
/// code) every pattern is stored lowercased and compared with the
/// lowercased request.
#[derive(Debug)]
pub struct RequestBlockConfig {
    /// Status of the block response.
    pub blocked_code: u32,
    /// Body of the block response.
    pub blocked_message: String,
    /// Whether matching is case-sensitive.
    pub case_sensitive: bool,
    /// Blocked when the path contains one of these.
    pub block_urls: Vec<String>,
    /// Blocked when the path equals one of these.
    pub block_exact_urls: Vec<String>,
    /// Blocked when the path matches one of these.
    pub block_regexp_urls: Vec<Regex>,
    /// Blocked when the headers (`name\nvalue` lines) contain one of these.
    pub block_headers: Vec<String>,
    /// Blocked when the body contains one of these.
    pub block_bodies: Vec<String>,
}

/// Parses a config the way Go's `parseConfig` does.
pub fn parse_config(json: &JsonValue) -> Result<RequestBlockConfig, ConfigError> {
    let raw: RawConfig = from_json(json)?;
    let case_sensitive = raw.case_sensitive;
    let fold = |list: Vec<String>| -> Vec<String> {
        list.into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| if case_sensitive { s } else { s.to_lowercase() })
            .collect()
    };
    let mut block_regexp_urls = Vec::new();
    for (i, pattern) in fold(raw.block_regexp_urls).iter().enumerate() {
        let regex = Regex::new(pattern).map_err(|e| {
            ConfigError::new(format!("invalid regexp pattern: {e}"))
                .with_path(format!("block_regexp_urls[{i}]"))
        })?;
        block_regexp_urls.push(regex);
    }
    let config = RequestBlockConfig {
        blocked_code: match raw.blocked_code {
            Some(code @ 101..=599) => code.try_into().unwrap_or(403),
            _ => 403,
        },
        blocked_message: raw.blocked_message,
        case_sensitive,
        block_urls: fold(raw.block_urls),
        block_exact_urls: fold(raw.block_exact_urls),
        block_regexp_urls,
        block_headers: fold(raw.block_headers),
        block_bodies: fold(raw.block_bodies),
    };
    if config.block_urls.is_empty()
        && config.block_exact_urls.is_empty()
        && config.block_regexp_urls.is_empty()
        && config.block_headers.is_empty()
        && config.block_bodies.is_empty()
    {
        return Err(ConfigError::new("there is no block rules"));
    }
    Ok(config)
}

/// A `_rules_` entry stands alone, as with Go's `ParseConfigBy`.
fn parse_rule_config(
    json: &JsonValue,
    _global: Option<&RequestBlockConfig>,
) -> Result<RequestBlockConfig, ConfigError> {
    parse_config(json)
}

impl RequestBlockConfig {
    fn fold(&self, text: String) -> String {
        if self.case_sensitive {
            text
        } else {
            text.to_lowercase()
        }
    }

    fn block(&self, ctx: &mut HttpContext, details: &str) {
        let body = self.blocked_message.as_bytes();
        ctx.send_local_response_with_details(self.blocked_code, details, &[], body);
    }

    /// Which URL check blocks `path`, as Envoy's response-code details.
    fn url_blocked(&self, path: &str) -> Option<&'static str> {
        if self.block_exact_urls.iter().any(|u| u == path) {
            Some("request-block.url_blocked.exact")
        } else if self.block_urls.iter().any(|u| path.contains(u.as_str())) {
            Some("request-block.url_blocked.keyword")
        } else if self.block_regexp_urls.iter().any(|r| r.is_match(path)) {
            Some("request-block.url_blocked.regexp")
        } else {
            None
        }
    }
}

fn on_request_headers(ctx: &mut HttpContext, config: &RequestBlockConfig) -> HeaderAction {
    let checks_url = !(config.block_urls.is_empty()
        && config.block_exact_urls.is_empty()
        && config.block_regexp_urls.is_empty());
    if checks_url {
        let Some(path) = ctx.request_header(":path") else {
            log::warn!("get path failed: no :path header");
            return HeaderAction::Continue;
        };
        let path = config.fold(path.to_str_lossy().into_owned());
        if let Some(details) = config.url_blocked(&path) {
            config.block(ctx, details);
            return HeaderAction::Continue;
        }
    }
    if !config.block_headers.is_empty() {
        // Go matches against "name\nvalue" pairs joined by "\n".
        let lines: Vec<String> = ctx
            .request_headers()
            .into_iter()
            .map(|(name, value)| format!("{name}\n{value}"))
            .collect();
        let headers = config.fold(lines.join("\n"));
        if config
            .block_headers
            .iter()
            .any(|h| headers.contains(h.as_str()))
        {
            // Go reports header blocks with this (body) detail too.
            config.block(ctx, "request-block.body_blocked");
            return HeaderAction::Continue;
        }
    }
    if config.block_bodies.is_empty() {
        ctx.dont_read_request_body();
    }
    HeaderAction::Continue
}

fn on_request_body(ctx: &mut HttpContext, config: &RequestBlockConfig, body: &[u8]) -> DataAction {
    let body = config.fold(String::from_utf8_lossy(body).into_owned());
    if config
        .block_bodies
        .iter()
        .any(|b| body.contains(b.as_str()))
    {
        config.block(ctx, "request-block.body_blocked");
    }
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "request-block",
    plugin: pub Plugin,
    config: RequestBlockConfig,
    parse_config: parse_config,
    parse_rule_config: parse_rule_config,
    on_request_headers: on_request_headers,
    on_request_body: on_request_body,
}
