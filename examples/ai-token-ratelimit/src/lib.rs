//! ai-token-ratelimit: a port of Higress's `ai-token-ratelimit` Go plugin.
//!
//! Token budgets per time window, shared by every gateway through Redis: a
//! `global_threshold` for the route and/or `rule_items` keyed by a header,
//! query parameter, consumer, cookie or client IP. Every matching rule is
//! checked in one `EVAL` before the request goes upstream; a budget already
//! spent answers `rejected_code` (429) with `rejected_msg` and
//! `X-TokenRateLimit-Reset`. The tokens a response used (its `usage`, in a
//! JSON body or an SSE chunk) are charged to every matched rule in a second
//! `EVAL` once the response ends. Redis errors let requests through (fail
//! open), as in Go.
//!
//! Needs Higress (Redis host calls); stock Envoy refuses the module.
use higress_wrapper::cluster::FqdnCluster;
use higress_wrapper::metrics;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, Value};
use higress_wrapper::AI_LOG_KEY;
use regex_lite::Regex;
use std::net::IpAddr;
use std::time::Duration;

mod ip;
mod usage;
use ip::IpNet;
pub use usage::{token_usage, TokenUsage};

const KEY_PREFIX: &str = "higress-token-ratelimit";
const CONSUMER_HEADER: &str = "x-mse-consumer";
const RESET_HEADER: &str = "X-TokenRateLimit-Reset";
/// Go's `MaxRuleItems`.
const MAX_RULE_ITEMS: usize = 10;

/// Request phase, read only: `{threshold, used, ttl}` per key (an unknown
/// key has used nothing and a whole window left).
const CHECK_SCRIPT: &str = r#"
local out = {}
for i, key in ipairs(KEYS) do
  local threshold = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  local used = redis.call('get', key)
  local ttl = redis.call('ttl', key)
  if not used then
    out[i] = {threshold, 0, window}
  else
    if ttl < 0 then ttl = window end
    out[i] = {threshold, tonumber(used), ttl}
  end
end
return out
"#;

/// Response phase: add the tokens to every key not already over its
/// threshold, starting the window on the first charge (or when the key lost
/// its expiry). ARGV is `threshold, window, tokens` per key.
const CHARGE_SCRIPT: &str = r#"
for i, key in ipairs(KEYS) do
  local threshold = tonumber(ARGV[3 * i - 2])
  local window = tonumber(ARGV[3 * i - 1])
  local tokens = tonumber(ARGV[3 * i])
  if tonumber(redis.call('get', key) or '0') <= threshold then
    local used = redis.call('incrby', key, tokens)
    if used == tokens or redis.call('ttl', key) < 0 then
      redis.call('expire', key, window)
    end
  end
end
return #KEYS
"#;

/// `token_per_*` keys and their windows in seconds, in the order tried (Go
/// walks a map, so with several set it picks one at random).
const TIME_WINDOWS: [(&str, i64); 4] = [
    ("token_per_second", 1),
    ("token_per_minute", 60),
    ("token_per_hour", 3600),
    ("token_per_day", 86400),
];

/// Tokens per time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Tokens allowed in the window.
    pub count: i64,
    /// The window, in seconds.
    pub time_window: i64,
}

/// What a rule item limits by (Go's `LimitRuleItemType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitType {
    /// `limit_by_header`
    Header,
    /// `limit_by_param`
    Param,
    /// `limit_by_consumer`
    Consumer,
    /// `limit_by_cookie`
    Cookie,
    /// `limit_by_per_header`
    PerHeader,
    /// `limit_by_per_param`
    PerParam,
    /// `limit_by_per_consumer`
    PerConsumer,
    /// `limit_by_per_cookie`
    PerCookie,
    /// `limit_by_per_ip`
    PerIp,
}

impl LimitType {
    /// The config key, also used in the Redis key.
    pub fn name(self) -> &'static str {
        match self {
            LimitType::Header => "limit_by_header",
            LimitType::Param => "limit_by_param",
            LimitType::Consumer => "limit_by_consumer",
            LimitType::Cookie => "limit_by_cookie",
            LimitType::PerHeader => "limit_by_per_header",
            LimitType::PerParam => "limit_by_per_param",
            LimitType::PerConsumer => "limit_by_per_consumer",
            LimitType::PerCookie => "limit_by_per_cookie",
            LimitType::PerIp => "limit_by_per_ip",
        }
    }

    fn is_per(self) -> bool {
        matches!(
            self,
            LimitType::PerHeader
                | LimitType::PerParam
                | LimitType::PerConsumer
                | LimitType::PerCookie
        )
    }
}

/// How a `limit_keys` entry matches.
#[derive(Debug)]
pub enum KeyMatch {
    /// The value equals `key`.
    Exact,
    /// `*`: every value (`limit_by_per_*`).
    All,
    /// `regexp:...` (`limit_by_per_*`).
    Regexp(Regex),
    /// An IP or CIDR (`limit_by_per_ip`).
    IpNet(IpNet),
}

/// One `limit_keys` entry.
#[derive(Debug)]
pub struct LimitKey {
    /// `key` as written.
    pub key: String,
    /// How it matches.
    pub matcher: KeyMatch,
    /// Its budget.
    pub threshold: Threshold,
}

/// Where `limit_by_per_ip` reads the client IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpSource {
    /// `from-remote-addr`: the `source.address` property.
    RemoteAddr,
    /// `from-header-<name>`: the first address in that header.
    Header(String),
}

/// One `rule_items` entry.
#[derive(Debug)]
pub struct RuleItem {
    /// What it limits by.
    pub limit_type: LimitType,
    /// The header, parameter or cookie name (`x-mse-consumer` for
    /// consumers, the `limit_by_per_ip` value for IPs).
    pub key: String,
    /// For `limit_by_per_ip`.
    pub ip_source: IpSource,
    /// The `limit_keys`.
    pub limit_keys: Vec<LimitKey>,
}

/// The parsed config.
#[derive(Debug)]
pub struct AiTokenRateLimitConfig {
    /// `rule_name`, part of every Redis key.
    pub rule_name: String,
    /// `global_threshold`.
    pub global_threshold: Option<Threshold>,
    /// `rule_items`.
    pub rule_items: Vec<RuleItem>,
    /// `rejected_code` (default 429).
    pub rejected_code: u32,
    /// `rejected_msg` (default `Too many requests`).
    pub rejected_msg: String,
    redis: RedisClient,
}

// ----- config (gjson-style reads, Go's checks and messages) ----------------------

/// gjson's `.String()`.
fn text(value: &JsonValue) -> String {
    match value {
        JsonValue::String(s) => s.clone(),
        JsonValue::Null => String::new(),
        other => other.to_string(),
    }
}

/// gjson's `.Int()`.
fn int(value: &JsonValue) -> i64 {
    match value {
        JsonValue::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        JsonValue::String(s) => s.trim().parse().unwrap_or(0),
        JsonValue::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

fn get<'a>(json: &'a JsonValue, key: &str) -> Option<&'a JsonValue> {
    json.get(key).filter(|v| !v.is_null())
}

fn error(message: impl Into<String>) -> ConfigError {
    ConfigError::new(message)
}

/// A `token_per_*` budget, for the global threshold (`key` `None`) or a
/// `limit_keys` entry, with Go's messages.
fn parse_threshold(json: &JsonValue, key: Option<&str>) -> Result<Threshold, ConfigError> {
    for (name, time_window) in TIME_WINDOWS {
        if let Some(value) = get(json, name) {
            let count = int(value);
            if count <= 0 {
                let whose = key.map(|k| format!(" for key '{k}'")).unwrap_or_default();
                let message = format!("'{name}' must be a positive integer{whose}, got {count}");
                return Err(error(message));
            }
            return Ok(Threshold { count, time_window });
        }
    }
    let one_of = "one of 'token_per_second', 'token_per_minute', 'token_per_hour', or 'token_per_day' must be set";
    Err(error(match key {
        Some(k) => format!("{one_of} for key: {k}"),
        None => format!("{one_of} for global_threshold"),
    }))
}

fn parse_redis(json: &JsonValue) -> Result<RedisClient, ConfigError> {
    let redis = get(json, "redis").ok_or_else(|| error("missing redis in config"))?;
    let field = |key: &str| get(redis, key).map(text).unwrap_or_default();
    let number = |key: &str| get(redis, key).map(int).unwrap_or(0);
    let service = field("service_name");
    if service.is_empty() {
        return Err(error("redis service name must not be empty").with_path("redis.service_name"));
    }
    let port = match number("service_port") {
        0 if service.ends_with(".static") => 80,
        0 => 6379,
        port => u16::try_from(port)
            .map_err(|_| error("invalid port").with_path("redis.service_port"))?,
    };
    let timeout = match number("timeout") {
        0 => 1000,
        ms => u64::try_from(ms).unwrap_or(1000),
    };
    RedisClient::builder(&FqdnCluster::new(service, port))
        .username(field("username"))
        .password(field("password"))
        .timeout(Duration::from_millis(timeout))
        .database(u32::try_from(number("database")).unwrap_or(0))
        .build()
}

fn parse_limit_keys(json: &JsonValue, rule: &mut RuleItem) -> Result<(), ConfigError> {
    let keys = get(json, "limit_keys").ok_or_else(|| error("missing limit_keys in config"))?;
    let keys = keys.as_array().map(Vec::as_slice).unwrap_or_default();
    if keys.is_empty() {
        return Err(error("config limit_keys cannot be empty"));
    }
    for item in keys {
        let key = get(item, "key").map(text).unwrap_or_default();
        if key.is_empty() {
            return Err(error("limit_keys key is required"));
        }
        let matcher = if rule.limit_type == LimitType::PerIp {
            let net = IpNet::parse(&key).ok_or_else(|| {
                error(format!(
                    "failed to parse IPNet for key '{key}': invalid IP[{key}]"
                ))
            })?;
            KeyMatch::IpNet(net)
        } else if rule.limit_type.is_per() {
            if key == "*" {
                KeyMatch::All
            } else if let Some(pattern) = key.strip_prefix("regexp:") {
                let regex = Regex::new(pattern)
                    .map_err(|e| error(format!("failed to compile regex for key '{key}': {e}")))?;
                KeyMatch::Regexp(regex)
            } else {
                return Err(error(format!(
                    "the '{}' restriction must start with 'regexp:' or be exactly '*'",
                    rule.limit_type.name()
                )));
            }
        } else {
            KeyMatch::Exact
        };
        let threshold = parse_threshold(item, Some(&key))?;
        rule.limit_keys.push(LimitKey {
            key,
            matcher,
            threshold,
        });
    }
    Ok(())
}

fn parse_rule_item(json: &JsonValue) -> Result<RuleItem, ConfigError> {
    let mut found: Option<(LimitType, String)> = None;
    // Later keys win, in Go's order.
    let named = [
        LimitType::Header,
        LimitType::Param,
        LimitType::Cookie,
        LimitType::PerHeader,
        LimitType::PerParam,
        LimitType::PerCookie,
    ];
    for limit_type in named {
        let value = get(json, limit_type.name()).map(text).unwrap_or_default();
        if !value.is_empty() {
            found = Some((limit_type, value));
        }
    }
    for limit_type in [LimitType::Consumer, LimitType::PerConsumer] {
        if get(json, limit_type.name()).is_some() {
            found = Some((limit_type, CONSUMER_HEADER.to_owned()));
        }
    }
    let mut ip_source = IpSource::RemoteAddr;
    let per_ip = get(json, "limit_by_per_ip").map(text).unwrap_or_default();
    if !per_ip.is_empty() {
        ip_source = if let Some(header) = per_ip.strip_prefix("from-header-") {
            if header.is_empty() {
                return Err(error(
                    "limit_by_per_ip parse error: empty after 'from-header-'",
                ));
            }
            IpSource::Header(header.to_owned())
        } else if per_ip == "from-remote-addr" {
            IpSource::RemoteAddr
        } else {
            return Err(error("the 'limit_by_per_ip' restriction must start with 'from-header-' or be exactly 'from-remote-addr'"));
        };
        found = Some((LimitType::PerIp, per_ip));
    }
    let Some((limit_type, key)) = found else {
        return Err(error("at least one of 'limit_by_header', 'limit_by_param', 'limit_by_consumer', 'limit_by_cookie', 'limit_by_per_header', 'limit_by_per_param', 'limit_by_per_consumer', 'limit_by_per_cookie', 'limit_by_per_ip' must be set"));
    };
    let mut rule = RuleItem {
        limit_type,
        key,
        ip_source,
        limit_keys: Vec::new(),
    };
    parse_limit_keys(json, &mut rule)?;
    Ok(rule)
}

/// Parses a config with Go's checks and messages.
pub fn parse_config(json: &JsonValue) -> Result<AiTokenRateLimitConfig, ConfigError> {
    let redis = parse_redis(json)?;
    let rule_name = get(json, "rule_name").ok_or_else(|| error("missing rule_name in config"))?;
    let (global, items) = (get(json, "global_threshold"), get(json, "rule_items"));
    if global.is_none() && items.is_none() {
        return Err(error(
            "at least one of 'global_threshold' or 'rule_items' must be set",
        ));
    }
    let global_threshold = match global {
        Some(global) => Some(
            parse_threshold(global, None)
                .map_err(|e| error(format!("failed to parse global_threshold: {}", e.message())))?,
        ),
        None => None,
    };
    let mut rule_items = Vec::new();
    if let Some(items) = items {
        let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
        if items.is_empty() {
            return Err(error("config rule_items cannot be empty"));
        }
        if items.len() > MAX_RULE_ITEMS {
            let n = items.len();
            return Err(error(format!(
                "rule_items length {n} exceeds maximum {MAX_RULE_ITEMS}"
            )));
        }
        for (i, item) in items.iter().enumerate() {
            let rule = parse_rule_item(item).map_err(|e| {
                let message = format!("failed to parse rule_item in rule_items: {}", e.message());
                error(message).with_path(format!("rule_items[{i}]"))
            })?;
            let duplicate = rule_items
                .iter()
                .any(|r: &RuleItem| r.limit_type == rule.limit_type && r.key == rule.key);
            if duplicate {
                let (kind, key) = (rule.limit_type.name(), &rule.key);
                log::warn!("duplicate rule found: {kind}='{key}' in rule_items");
            }
            rule_items.push(rule);
        }
    }
    Ok(AiTokenRateLimitConfig {
        rule_name: text(rule_name),
        global_threshold,
        rule_items,
        rejected_code: get(json, "rejected_code")
            .map(|c| u32::try_from(int(c)).unwrap_or(0))
            .unwrap_or(429),
        rejected_msg: get(json, "rejected_msg")
            .map(text)
            .unwrap_or_else(|| "Too many requests".to_owned()),
        redis,
    })
}

// ----- the request --------------------------------------------------------------------

/// A rule the request matched: its Redis key and budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The Redis key.
    pub key: String,
    /// Its budget.
    pub threshold: Threshold,
}

/// Per request: the matched rules (Go's `LimitRedisContext`) and the
/// tokens the response reported so far.
#[derive(Debug, Default)]
pub struct State {
    matched: Vec<Matched>,
    usage: Option<TokenUsage>,
}

/// Go's `ExtractCookieValueByKey` (a pair without `=` yields nothing).
fn cookie_value(cookie: &str, key: &str) -> String {
    cookie
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == key)
        .map(|(_, value)| value.split('=').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// Go's `url.ParseQuery(rawQuery)`: `None` on any bad pair.
fn query_value(path: &str, key: &str) -> Option<String> {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    let mut first = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if pair.contains(';') {
            return None;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (unescape(name)?, unescape(value)?);
        if name == key && first.is_none() {
            first = Some(value);
        }
    }
    first
}

fn unescape(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi << 4 | lo).ok()?);
            }
            _ => out.push(b),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `util.ParseIP` then `net.ParseIP`.
fn parse_client_ip(source: &str) -> Option<IpAddr> {
    let text = if source.contains('.') {
        source.split(':').next().unwrap_or_default()
    } else if let Some((inside, _)) = source.split_once(']') {
        inside.strip_prefix('[').unwrap_or(inside)
    } else {
        source
    };
    text.parse().ok()
}

fn client_ip(ctx: &HttpContext<State>, source: &IpSource) -> Option<IpAddr> {
    let raw = match source {
        IpSource::Header(name) => {
            let value = ctx.request_header(name)?.to_str_lossy().into_owned();
            value.trim_matches(' ').split(',').next()?.to_owned()
        }
        IpSource::RemoteAddr => {
            String::from_utf8_lossy(&ctx.property(&["source", "address"])?).into_owned()
        }
    };
    let ip = parse_client_ip(&raw);
    if ip.is_none() {
        log::warn!("failed to get down stream ip: invalid ip[{raw}]");
    }
    ip
}

/// The value a rule item limits, and the `limit_keys` entry it matches.
fn hit<'c>(ctx: &HttpContext<State>, rule: &'c RuleItem) -> Option<(String, &'c LimitKey)> {
    let header = |name: &str| {
        ctx.request_header(name)
            .map(|v| v.to_str_lossy().into_owned())
    };
    let value = match rule.limit_type {
        LimitType::Header | LimitType::PerHeader | LimitType::Consumer | LimitType::PerConsumer => {
            header(&rule.key)?
        }
        LimitType::Param | LimitType::PerParam => query_value(ctx.path(), &rule.key)?,
        LimitType::Cookie | LimitType::PerCookie => {
            Some(cookie_value(&header("cookie")?, &rule.key)).filter(|v| !v.is_empty())?
        }
        LimitType::PerIp => {
            let ip = client_ip(ctx, &rule.ip_source)?;
            let item = rule.limit_keys.iter().find(|k| match &k.matcher {
                KeyMatch::IpNet(net) => net.contains(ip),
                _ => false,
            })?;
            return Some((ip.to_string(), item));
        }
    };
    let item = rule.limit_keys.iter().find(|k| {
        let per = rule.limit_type.is_per()
            && match &k.matcher {
                KeyMatch::All => true,
                KeyMatch::Regexp(r) => r.is_match(&value),
                _ => false,
            };
        per || k.key == value
    })?;
    Some((value, item))
}

/// Go's `collectMatchedRules`: the global threshold first, then every rule
/// item that matches, in order. `{rule}` is a Redis Cluster hash tag: all
/// of a request's keys land in one slot.
pub fn matched_rules(ctx: &HttpContext<State>, config: &AiTokenRateLimitConfig) -> Vec<Matched> {
    let rule_name = &config.rule_name;
    let global = config.global_threshold.map(|t| Matched {
        key: format!(
            "{KEY_PREFIX}:{{{rule_name}}}:global_threshold:{}",
            t.time_window
        ),
        threshold: t,
    });
    let items = config.rule_items.iter().filter_map(|rule| {
        let (value, item) = hit(ctx, rule)?;
        let t = item.threshold;
        Some(Matched {
            key: format!(
                "{KEY_PREFIX}:{{{rule_name}}}:{}:{}:{}:{value}",
                rule.limit_type.name(),
                t.time_window,
                rule.key
            ),
            threshold: t,
        })
    });
    global.into_iter().chain(items).collect()
}

/// `{threshold, used, ttl}` as integers, if the reply has that shape.
fn triple(reply: &Value) -> Option<[i64; 3]> {
    let Value::Array(items) = reply else {
        return None;
    };
    match items.as_slice() {
        [Value::Int(t), Value::Int(u), Value::Int(r)] => Some([*t, *u, *r]),
        _ => None,
    }
}

fn on_request_headers(
    ctx: &mut HttpContext<State>,
    config: &AiTokenRateLimitConfig,
) -> HeaderAction {
    ctx.disable_reroute();
    let matched = matched_rules(ctx, config);
    if matched.is_empty() {
        return HeaderAction::Continue;
    }
    let keys: Vec<&str> = matched.iter().map(|m| m.key.as_str()).collect();
    let args: Vec<i64> = matched
        .iter()
        .flat_map(|m| [m.threshold.count, m.threshold.time_window])
        .collect();
    let check = config.redis.eval(CHECK_SCRIPT, &keys, &args);
    let expected = matched.len();
    ctx.state_mut().matched = matched;
    ctx.wait(config, |ctx, config| async move {
        let reply = check.await?;
        let rules = match &reply {
            Value::Array(rules) if rules.len() == expected => rules.as_slice(),
            _ => {
                log::error!("redis response length mismatch: {reply:?}, want {expected} rules");
                return Ok(HeaderAction::Continue);
            }
        };
        for rule in rules {
            let Some([threshold, used, ttl]) = triple(rule) else {
                log::error!("redis sub-array length mismatch: {rule:?}");
                return Ok(HeaderAction::Continue);
            };
            if used > threshold {
                ctx.with(|ctx| reject(ctx, &config, ttl));
                return Ok(HeaderAction::Continue);
            }
        }
        Ok(HeaderAction::Continue)
    })
}

/// Go's `rejected`: the local response, the `ai_log` attribute and the
/// `token_ratelimit_count` counter.
fn reject(ctx: &mut HttpContext<State>, config: &AiTokenRateLimitConfig, ttl: i64) {
    ctx.set_user_attribute("token_ratelimit_status", "limited");
    if let Err(e) = ctx.write_user_attribute_to_log_with_key(AI_LOG_KEY) {
        log::warn!("writing ai_log: {e}");
    }
    let reset = ttl.to_string();
    ctx.send_local_response_with_details(
        config.rejected_code,
        "ai-token-ratelimit.rejected",
        &[(RESET_HEADER, reset.as_bytes())],
        config.rejected_msg.as_bytes(),
    );
    let route = ctx.route_name().unwrap_or_else(|| "-".to_owned());
    let cluster = ctx.cluster_name().unwrap_or_else(|| "-".to_owned());
    let consumer = ctx
        .request_header(CONSUMER_HEADER)
        .map_or_else(|| "none".to_owned(), |v| v.to_str_lossy().into_owned());
    let labels = [
        ("route", route.as_str()),
        ("upstream", cluster.as_str()),
        ("model", "none"),
        ("consumer", consumer.as_str()),
        ("metric", "token_ratelimit_count"),
    ];
    let name = metrics::metric_name(&labels, "");
    if let Err(e) = metrics::increment_counter(&name, 1) {
        log::warn!("metric {name}: {e}");
    }
}

fn on_streaming_response_body(
    ctx: &mut HttpContext<State>,
    config: &AiTokenRateLimitConfig,
    chunk: &[u8],
    end_of_stream: bool,
) -> Option<Vec<u8>> {
    if let Some(usage) = token_usage(chunk) {
        ctx.state_mut().usage = Some(usage);
    }
    if !end_of_stream {
        return None;
    }
    let state = ctx.state();
    let (Some(usage), false) = (state.usage, state.matched.is_empty()) else {
        return None;
    };
    let tokens = usage.input + usage.output;
    let keys: Vec<&str> = state.matched.iter().map(|m| m.key.as_str()).collect();
    let args: Vec<i64> = state
        .matched
        .iter()
        .flat_map(|m| [m.threshold.count, m.threshold.time_window, tokens])
        .collect();
    let charge = config.redis.eval(CHARGE_SCRIPT, &keys, &args);
    // Charged even if the client goes away before Redis answers.
    ctx.spawn_detached(async move {
        if let Err(e) = charge.await {
            log::error!("redis call failed: {e}");
        }
    });
    None
}

higress_wrapper::set_ctx! {
    name: "ai-token-ratelimit",
    plugin: pub Plugin,
    config: AiTokenRateLimitConfig,
    state: State,
    parse_config: parse_config,
    on_request_headers: on_request_headers,
    on_streaming_response_body: on_streaming_response_body,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `util/utils_test.go` cases for the cookie and IP helpers.
    #[test]
    fn cookies_queries_and_ips_as_go() {
        assert_eq!(cookie_value("key1=value1; other=value", "key1"), "value1");
        assert_eq!(cookie_value("other=value;key1=v", "key1"), "v");
        assert_eq!(cookie_value("key1", "key1"), "");
        assert_eq!(
            query_value("/a?apikey=x&b=1", "apikey").as_deref(),
            Some("x")
        );
        assert_eq!(query_value("/a?apikey=x&b=%zz", "apikey"), None);
        assert_eq!(parse_client_ip("1.1.1.1:8080"), "1.1.1.1".parse().ok());
        assert_eq!(parse_client_ip("[::1]:80"), "::1".parse().ok());
        assert_eq!(parse_client_ip("nope"), None);
    }
}
