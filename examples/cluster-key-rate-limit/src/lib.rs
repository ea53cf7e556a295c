//! cluster-key-rate-limit: a port of Higress's `cluster-key-rate-limit` Go
//! plugin.
//!
//! Fixed-window rate limits shared by every gateway through Redis: either
//! one `global_threshold` for the route, or `rule_items` keyed by a header,
//! query parameter, consumer, cookie or client IP. Each request runs one
//! `EVAL` of Go's Lua script (count, then compare); over the limit it is
//! answered `rejected_code` (429) with `rejected_msg` and
//! `X-RateLimit-Reset`; with `show_limit_quota_header` the response carries
//! `X-RateLimit-Limit` and `X-RateLimit-Remaining`. Redis errors let the
//! request through (fail open), as in Go.
//!
//! Needs Higress (Redis host calls); stock Envoy refuses the module.
use higress_wrapper::cluster::FqdnCluster;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, RedisError, Value};
use regex_lite::Regex;
use std::net::IpAddr;
use std::time::Duration;

mod ip;
use ip::IpNet;

const KEY_PREFIX: &str = "higress-cluster-key-rate-limit";
const CONSUMER_HEADER: &str = "x-mse-consumer";

/// Go's fixed-window script, unchanged in behaviour: stop counting once
/// over the threshold, set the expiry on the first hit, return
/// `{threshold, current, ttl}`.
const FIXED_WINDOW_SCRIPT: &str = r#"
local key = KEYS[1]
local threshold = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local current = tonumber(redis.call('get', key) or "0")
if current > threshold then
    return {threshold, current, redis.call('ttl', key)}
end
current = redis.call('incr', key)
if current == 1 then
    redis.call('expire', key, window)
end
return {threshold, current, redis.call('ttl', key)}
"#;

/// `query_per_*` keys and their windows in seconds, in the order tried.
const TIME_WINDOWS: [(&str, i64); 4] = [
    ("query_per_second", 1),
    ("query_per_minute", 60),
    ("query_per_hour", 3600),
    ("query_per_day", 86400),
];

/// A count per time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Requests allowed in the window.
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
    /// Its limit.
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
    /// consumers, the source for IPs).
    pub key: String,
    /// For `limit_by_per_ip`.
    pub ip_source: IpSource,
    /// The `limit_keys`.
    pub limit_keys: Vec<LimitKey>,
}

/// The parsed config.
#[derive(Debug)]
pub struct ClusterKeyRateLimitConfig {
    /// `rule_name`, part of every Redis key.
    pub rule_name: String,
    /// `global_threshold`.
    pub global_threshold: Option<Threshold>,
    /// `rule_items`.
    pub rule_items: Vec<RuleItem>,
    /// `show_limit_quota_header`.
    pub show_limit_quota_header: bool,
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

/// gjson's `.Bool()`.
fn boolean(value: &JsonValue) -> bool {
    match value {
        JsonValue::Bool(b) => *b,
        JsonValue::String(s) => matches!(s.as_str(), "1" | "t" | "T" | "TRUE" | "true" | "True"),
        JsonValue::Number(_) => int(value) != 0,
        _ => false,
    }
}

fn get<'a>(json: &'a JsonValue, key: &str) -> Option<&'a JsonValue> {
    json.get(key).filter(|v| !v.is_null())
}

fn error(message: impl Into<String>) -> ConfigError {
    ConfigError::new(message)
}

/// A `query_per_*` count, for the global threshold (`key` `None`) or a
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
    let one_of = "one of 'query_per_second', 'query_per_minute', 'query_per_hour', or 'query_per_day' must be set";
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
    let database = u32::try_from(number("database")).unwrap_or(0);
    RedisClient::builder(&FqdnCluster::new(service, port))
        .username(field("username"))
        .password(field("password"))
        .timeout(Duration::from_millis(timeout))
        .database(database)
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
            let net = IpNet::parse(&key)
                .ok_or_else(|| error(format!("failed to parse IPNet for key '{key}'")))?;
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
        return Err(error("only one of 'limit_by_header' and 'limit_by_param' and 'limit_by_consumer' and 'limit_by_cookie' and 'limit_by_per_header' and 'limit_by_per_param' and 'limit_by_per_consumer' and 'limit_by_per_cookie' and 'limit_by_per_ip' can be set"));
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
pub fn parse_config(json: &JsonValue) -> Result<ClusterKeyRateLimitConfig, ConfigError> {
    let redis = parse_redis(json)?;
    let rule_name = get(json, "rule_name").ok_or_else(|| error("missing rule_name in config"))?;
    let (global, items) = (get(json, "global_threshold"), get(json, "rule_items"));
    let mut config = ClusterKeyRateLimitConfig {
        rule_name: text(rule_name),
        global_threshold: None,
        rule_items: Vec::new(),
        show_limit_quota_header: get(json, "show_limit_quota_header").is_some_and(boolean),
        rejected_code: get(json, "rejected_code")
            .map(|c| u32::try_from(int(c)).unwrap_or(0))
            .unwrap_or(429),
        rejected_msg: get(json, "rejected_msg")
            .map(text)
            .unwrap_or_else(|| "Too many requests".to_owned()),
        redis,
    };
    match (global, items) {
        (None, None) => Err(error(
            "at least one of 'global_threshold' or 'rule_items' must be set",
        )),
        (Some(_), Some(_)) => Err(error(
            "'global_threshold' and 'rule_items' cannot be set at the same time",
        )),
        (Some(global), None) => {
            let threshold = parse_threshold(global, None)
                .map_err(|e| error(format!("failed to parse global_threshold: {}", e.message())))?;
            config.global_threshold = Some(threshold);
            Ok(config)
        }
        (None, Some(items)) => {
            let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
            if items.is_empty() {
                return Err(error("config rule_items cannot be empty"));
            }
            for (i, item) in items.iter().enumerate() {
                let rule =
                    parse_rule_item(item).map_err(|e| e.with_path(format!("rule_items[{i}]")))?;
                config.rule_items.push(rule);
            }
            Ok(config)
        }
    }
}

// ----- the request --------------------------------------------------------------------

/// What the response headers need (Go's `LimitContext`).
#[derive(Debug, Default, Clone, Copy)]
pub struct State {
    /// `(limit, remaining)` once Redis allowed the request.
    quota: Option<(i64, i64)>,
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
            let value = value.trim_matches(' ').to_owned();
            value.split(',').next().unwrap_or_default().to_owned()
        }
        IpSource::RemoteAddr => {
            String::from_utf8_lossy(&ctx.property(&["source", "address"])?).into_owned()
        }
    };
    parse_client_ip(&raw)
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

fn on_request_headers(
    ctx: &mut HttpContext<State>,
    config: &ClusterKeyRateLimitConfig,
) -> HeaderAction {
    ctx.disable_reroute();
    let (key, threshold) = match config.global_threshold {
        Some(t) => (
            format!(
                "{KEY_PREFIX}:{}:global_threshold:{}",
                config.rule_name, t.time_window
            ),
            t,
        ),
        None => {
            let Some((value, rule, item)) = config
                .rule_items
                .iter()
                .find_map(|rule| hit(ctx, rule).map(|(v, item)| (v, rule, item)))
            else {
                return HeaderAction::Continue;
            };
            let t = item.threshold;
            let key = format!(
                "{KEY_PREFIX}:{}:{}:{}:{}:{value}",
                config.rule_name,
                rule.limit_type.name(),
                t.time_window,
                rule.key
            );
            (key, t)
        }
    };
    let eval = config.redis.eval(
        FIXED_WINDOW_SCRIPT,
        &[key],
        &[threshold.count, threshold.time_window],
    );
    let (show, code, message) = (
        config.show_limit_quota_header,
        config.rejected_code,
        config.rejected_msg.clone(),
    );
    let request = ctx.handle();
    HeaderAction::wait(async move {
        let reply = eval.await?;
        let [Value::Int(limit), Value::Int(current), Value::Int(ttl)] = reply_triple(reply) else {
            log::error!("redis response parse error");
            return Ok::<_, RedisError>(HeaderAction::Continue);
        };
        request.with(|ctx| {
            if current > limit {
                let reset = ttl.to_string();
                let limit = limit.to_string();
                let mut headers: Vec<(&str, &[u8])> = Vec::new();
                if show {
                    headers.push(("X-RateLimit-Limit", limit.as_bytes()));
                    headers.push(("X-RateLimit-Remaining", b"0"));
                }
                headers.push(("X-RateLimit-Reset", reset.as_bytes()));
                let details = "cluster-key-rate-limit.rejected";
                ctx.send_local_response_with_details(code, details, &headers, message.as_bytes());
            } else {
                ctx.state_mut().quota = Some((limit, limit - current));
            }
        });
        Ok(HeaderAction::Continue)
    })
}

/// The script's `{threshold, current, ttl}`, or something else.
fn reply_triple(reply: Value) -> [Value; 3] {
    match reply {
        Value::Array(items) => match <[Value; 3]>::try_from(items) {
            Ok(triple) => triple,
            Err(_) => [Value::Nil, Value::Nil, Value::Nil],
        },
        _ => [Value::Nil, Value::Nil, Value::Nil],
    }
}

fn on_response_headers(
    ctx: &mut HttpContext<State>,
    config: &ClusterKeyRateLimitConfig,
) -> HeaderAction {
    if let (Some((limit, remaining)), true) = (ctx.state().quota, config.show_limit_quota_header) {
        ctx.set_response_header("X-RateLimit-Limit", limit.to_string());
        ctx.set_response_header("X-RateLimit-Remaining", remaining.to_string());
    }
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "cluster-key-rate-limit",
    plugin: pub Plugin,
    config: ClusterKeyRateLimitConfig,
    state: State,
    parse_config: parse_config,
    on_request_headers: on_request_headers,
    on_response_headers: on_response_headers,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_queries_and_ips_as_go() {
        assert_eq!(cookie_value("key1=value1; other=value", "key1"), "value1");
        assert_eq!(cookie_value("other=value;key1=v", "key1"), "v");
        assert_eq!(cookie_value("key1", "key1"), "");
        assert_eq!(
            query_value("/a?apikey=x&b=1", "apikey").as_deref(),
            Some("x")
        );
        assert_eq!(
            query_value("/a?apikey=x&apikey=y", "apikey").as_deref(),
            Some("x")
        );
        assert_eq!(query_value("/a?apikey=x&b=%zz", "apikey"), None);
        assert_eq!(parse_client_ip("1.1.1.1:8080"), "1.1.1.1".parse().ok());
        assert_eq!(parse_client_ip("[::1]:80"), "::1".parse().ok());
        assert_eq!(parse_client_ip("::1"), "::1".parse().ok());
        assert_eq!(parse_client_ip("nope"), None);
    }
}
