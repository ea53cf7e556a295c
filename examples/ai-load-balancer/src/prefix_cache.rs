//! `lb_type: endpoint`, `lb_policy: prefix_cache`: requests whose
//! conversation starts like an earlier one go to the endpoint that served
//! it, to reuse its KV cache; a new conversation goes to the endpoint with
//! the fewest requests in flight (the table `global_least_request` keeps).
//!
//! The conversation (`messages[]` of the body) is cut after every `user`
//! turn and after the last message; each piece, `role:content` joined, is
//! hashed (SHA-1, upper-case hex). The Redis key of a prefix is the XOR of
//! its pieces' hashes, its value the endpoint. One `EVAL` of
//! [`PREFIX_CACHE_SCRIPT`] walks the chain while the key exists and names a
//! healthy endpoint (refreshing each key's TTL), else picks the least-loaded
//! endpoint, counts the request (`HINCRBY +1`), and stores the rest of the
//! chain for the pick (`SET` + `EXPIRE redisKeyTTL`). When the stream ends
//! the count is released (`HINCRBY -1`), as in `global_least_request`.
use crate::{bulk_text, int, refuse, release, signal, table_key, Picked, State};
use higress_wrapper::prelude::*;
use higress_wrapper::redis::RedisClient;
use higress_wrapper::upstream;

macro_rules! prefix_cache_script {
    ($on_hit:literal) => {
        concat!(
            r#"
local ttl = tonumber(KEYS[1])
local table_key = KEYS[2]
local healthy = {}
for i = 4, #KEYS do
    healthy[KEYS[i]] = true
end

-- the XOR of two hex strings of the same length, upper case
local function xor_hex(a, b)
    local out = {}
    for i = 1, #a, 2 do
        local x = tonumber(string.sub(a, i, i + 1), 16)
        local y = tonumber(string.sub(b, i, i + 1), 16)
        out[#out + 1] = string.format('%02X', bit.bxor(x, y))
    end
    return table.concat(out)
end

-- the longest stored prefix whose endpoint is healthy
local target, key, current, depth = '', '', '', 1
while depth <= #ARGV do
    if current == '' then
        current = ARGV[depth]
    else
        current = xor_hex(current, ARGV[depth])
    end
    if redis.call('EXISTS', current) == 0 then
        break
    end
    local host = redis.call('GET', current)"#,
            $on_hit,
            r#"
    target = host
    redis.call('EXPIRE', current, ttl)
    depth = depth + 1
end

-- none: the fewest in flight among the endpoints the table knows
if target == '' then
    depth = 1
    target = KEYS[3]
    if redis.call('HEXISTS', table_key, target) == 1 then
        local least = redis.call('HGET', table_key, target)
        for i = 4, #KEYS do
            if redis.call('HEXISTS', table_key, KEYS[i]) == 1 then
                local n = redis.call('HGET', table_key, KEYS[i])
                if tonumber(n) < tonumber(least) then
                    target, least = KEYS[i], n
                elseif n == least and math.random() >= 0.5 then
                    target = KEYS[i]
                end
            end
        end
    end
end

redis.call('HINCRBY', table_key, target, 1)

-- the rest of the chain now leads to the pick
while depth <= #ARGV do
    if key == '' then
        key = ARGV[depth]
    else
        key = xor_hex(key, ARGV[depth])
    end
    redis.call('SET', key, target)
    redis.call('EXPIRE', key, ttl)
    depth = depth + 1
end

return target
"#
        )
    };
}

/// The pick script, with Go's `KEYS` / `ARGV` layout:
///
/// | | |
/// |---|---|
/// | `KEYS[1]` | the TTL of a prefix key, seconds (`redisKeyTTL`) |
/// | `KEYS[2]` | the in-flight table (`higress:global_least_request_table:<route>:<cluster>`) |
/// | `KEYS[3]` | a random healthy endpoint (the least-request start) |
/// | `KEYS[4..]` | the healthy endpoints |
/// | `ARGV` | the prefix hashes, oldest first |
///
/// Returns the endpoint. Like Go's, when a stored prefix names an endpoint
/// that is no longer healthy the rest of the chain is written from the
/// wrong key (the hash of that turn is XORed twice); see
/// [`PREFIX_CACHE_SCRIPT_REMAP`]. It touches keys it does not declare:
/// not for Redis Cluster.
pub const PREFIX_CACHE_SCRIPT: &str = prefix_cache_script!(
    r#"
    key = current -- Go: the walk ends here, but its key is taken already
    if not healthy[host] then
        break
    end"#
);

/// [`PREFIX_CACHE_SCRIPT`] with `remapUnhealthyPrefix: true`: a prefix
/// whose endpoint is no longer healthy is written again, under its own
/// key, for the endpoint picked now (and the chain after it from there).
pub const PREFIX_CACHE_SCRIPT_REMAP: &str = prefix_cache_script!(
    r#"
    if not healthy[host] then
        break
    end
    key = current"#
);

/// The `lb_config` of `prefix_cache`.
#[derive(Debug)]
pub struct PrefixCache {
    /// `serviceFQDN` (required): the Redis service.
    pub service_fqdn: String,
    /// `servicePort` (required).
    pub service_port: u16,
    /// `timeout` in ms (default 3000).
    pub timeout_ms: u64,
    /// `database` (default 0).
    pub database: u32,
    /// `redisKeyTTL`, seconds (default 1800): how long a prefix is
    /// remembered after it was last used.
    pub redis_key_ttl: i64,
    /// `remapUnhealthyPrefix` (default false, Go's script): see
    /// [`PREFIX_CACHE_SCRIPT_REMAP`].
    pub remap_unhealthy_prefix: bool,
    redis: RedisClient,
}

impl PrefixCache {
    pub(crate) fn redis(&self) -> &RedisClient {
        &self.redis
    }

    /// The script this config runs.
    pub fn script(&self) -> &'static str {
        if self.remap_unhealthy_prefix {
            PREFIX_CACHE_SCRIPT_REMAP
        } else {
            PREFIX_CACHE_SCRIPT
        }
    }
}

/// Parses `lb_config` for `prefix_cache` (Go's keys and defaults); errors
/// name the field.
pub fn parse(json: &JsonValue) -> Result<PrefixCache, ConfigError> {
    let field = |key: &str| json.get(key).filter(|v| !v.is_null());
    let redis = crate::redis_config::parse(json)?;
    let redis_key_ttl = match int(field("redisKeyTTL")) {
        0 => 1800,
        ttl if ttl < 0 => {
            return Err(refuse(
                "lb_config.redisKeyTTL",
                format!("a TTL of {ttl} seconds"),
            ))
        }
        ttl => ttl,
    };
    let remap_unhealthy_prefix = match field("remapUnhealthyPrefix") {
        None => false,
        Some(JsonValue::Bool(b)) => *b,
        Some(other) => {
            return Err(refuse(
                "lb_config.remapUnhealthyPrefix",
                format!("expected true or false, got {other}"),
            ))
        }
    };
    log::info!(
        "redis client init, serviceFQDN: {}, servicePort: {}, timeout: {}, database: {}, redisKeyTTL: {}",
        redis.service_fqdn,
        redis.service_port,
        redis.timeout_ms,
        redis.database,
        redis_key_ttl
    );
    Ok(PrefixCache {
        service_fqdn: redis.service_fqdn,
        service_port: redis.service_port,
        timeout_ms: redis.timeout_ms,
        database: redis.database,
        redis_key_ttl,
        remap_unhealthy_prefix,
        redis: redis.client,
    })
}

/// SHA-1 of `data` as upper-case hex (Go's `computeSHA1`).
pub fn sha1_hex(data: &[u8]) -> String {
    higress_wrapper::redis::sha1(data)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// What the body gives the script: the prefix hashes (Go's `params`).
#[derive(Debug, PartialEq, Eq)]
pub enum Prefixes {
    /// One hash per piece of the conversation, oldest first.
    Hashes(Vec<String>),
    /// No `messages` (or none): nothing to match, the cluster's balancer
    /// picks.
    Empty,
    /// A message without `role` or `content`: Go skips the request
    /// ("cannot extract role or content from request body").
    Malformed,
}

/// The prefix hashes of a chat body, as Go computes them: `role:content`
/// of each message concatenated, hashed after every `user` message and
/// after the last one.
pub fn prefix_hashes(body: &[u8]) -> Prefixes {
    let Some(messages) = crate::json_text::object_bytes(body)
        .and_then(|top| top.get("messages").map(|m| crate::json_text::array(m)))
    else {
        return Prefixes::Empty;
    };
    let last = messages.len().saturating_sub(1);
    let mut hashes = Vec::new();
    let mut piece = String::new();
    for (index, message) in messages.into_iter().enumerate() {
        let fields = crate::json_text::object(message.get());
        let (Some(role), Some(content)) = (
            fields.as_ref().and_then(|f| f.get("role")),
            fields.as_ref().and_then(|f| f.get("content")),
        ) else {
            return Prefixes::Malformed;
        };
        let role = crate::json_text::text(role);
        piece.push_str(&role);
        piece.push(':');
        piece.push_str(&crate::json_text::text(content));
        if role == "user" || index == last {
            hashes.push(sha1_hex(piece.as_bytes()));
            piece.clear();
        }
    }
    if hashes.is_empty() {
        Prefixes::Empty
    } else {
        Prefixes::Hashes(hashes)
    }
}

/// Holds the headers while the body is read (the override only takes
/// effect while they are held); a request without a body has no
/// conversation and goes on at once.
pub(crate) fn on_request_headers(ctx: &mut HttpContext<State>, _lb: &PrefixCache) -> HeaderAction {
    if ctx.has_request_body() {
        HeaderAction::StopIteration
    } else {
        HeaderAction::Continue
    }
}

pub(crate) fn on_request_body(
    ctx: &mut HttpContext<State>,
    lb: &PrefixCache,
    body: &[u8],
) -> DataAction {
    match select(ctx, lb, body) {
        Some(done) => DataAction::wait(async move {
            done.await;
            DataAction::Continue
        }),
        None => DataAction::Continue,
    }
}

/// Starts the pick; `None`: the cluster's balancer picks (Go's fallbacks).
fn select(ctx: &mut HttpContext<State>, lb: &PrefixCache, body: &[u8]) -> Option<signal::Receiver> {
    let route = ctx.route_name().filter(|r| !r.is_empty())?;
    let cluster = ctx.cluster_name().filter(|c| !c.is_empty())?;
    let hosts = match upstream::upstream_hosts() {
        Ok(hosts) => hosts,
        Err(e) => {
            log::error!("get upstream cluster endpoints failed: {e}");
            return None;
        }
    };
    let healthy: Vec<String> = hosts
        .into_iter()
        .filter(|h| h.is_healthy())
        .map(|h| h.address)
        .collect();
    if healthy.is_empty() {
        log::info!("upstream cluster has no healthy endpoints");
        return None;
    }
    let default_host = healthy.get(crate::random::below(healthy.len()))?.clone();
    let hashes = match prefix_hashes(body) {
        Prefixes::Hashes(hashes) => hashes,
        Prefixes::Empty => return None,
        Prefixes::Malformed => {
            log::info!("cannot extract role or content from request body, skip llm load balancing");
            return None;
        }
    };
    let table = table_key(&route, &cluster);
    let mut keys = vec![lb.redis_key_ttl.to_string(), table.clone(), default_host];
    keys.extend(healthy);
    let eval = lb.redis.eval(lb.script(), &keys, &hashes);
    let redis = lb.redis.clone();
    let request = ctx.handle();
    let (done, wait) = signal::channel();
    // Owned by the plugin root: when the client goes away while Redis
    // answers, the count the script took is still released.
    ctx.spawn_detached(async move {
        let reply = match eval.await {
            Ok(reply) => reply,
            Err(e) => {
                log::error!("Redis eval failed, fallback to default lb policy: {e}");
                return;
            }
        };
        let Some(host) = bulk_text(reply) else {
            log::error!("redis eval lua result format error, expect a host");
            return;
        };
        let picked = Picked { table, host };
        let sent = request.with(|ctx| {
            if let Err(e) = upstream::set_upstream_override_host(&picked.host) {
                log::error!("override upstream host failed, fallback to default lb policy, error informations: {e}");
                return false;
            }
            log::debug!("host_selected: {}", picked.host);
            ctx.state_mut().picked = Some(picked.clone());
            true
        });
        drop(done);
        if sent != Some(true) {
            release(&redis, &picked).await;
        }
    });
    Some(wait)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_answers() {
        assert_eq!(sha1_hex(b""), "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709");
        assert_eq!(sha1_hex(b"abc"), "A9993E364706816ABA3E25717850C26C9CD0D89D");
        let long = [b'a'; 1000];
        assert_eq!(sha1_hex(&long), "291E9A6C66994949B57BA5E650361E98FC36B1BA");
    }
}
