//! The pairs compared: each Rust port under `examples/`, the Go plugin it
//! ports, the Go README's config (made to do its work on the request, see
//! each `note`) and one request driven the same way through both modules.

use higress_wasm_host::{HttpStream, StreamError, TestHost};

/// What a scenario needs from the host besides the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Nothing.
    Plain,
    /// A real `redis-server` as cluster [`REDIS_CLUSTER`].
    Redis,
    /// Redis and healthy upstream hosts (Higress's `get_upstream_hosts`).
    RedisAndHosts,
}

/// The Redis cluster every Redis config here names (`redis.static:6379`).
pub(crate) const REDIS_CLUSTER: &str = "outbound|6379||redis.static";

/// One request as a client sends it through Envoy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnvoyRequest {
    /// The request line's path.
    pub path: &'static str,
    /// Extra headers (`host` included).
    pub headers: &'static [(&'static str, &'static str)],
    /// Text the upstream's echo (the JSON of what it received) must hold:
    /// the plugin did its work.
    pub marker: &'static str,
}

/// One row of the table.
pub(crate) struct Scenario {
    /// The plugin's name (Go's `extensions/<name>`, the port's package).
    pub plugin: &'static str,
    /// What is sent, in a few words.
    pub request: &'static str,
    /// The port's cargo package.
    pub package: &'static str,
    /// Go's lines of code at the recorded commit (see `loc`).
    pub go_loc: usize,
    /// The plugin directory in `gpustack-higress-plugins`, when it ships a
    /// build of the same Go plugin.
    pub go_build: Option<&'static str>,
    /// The plugin configuration (JSON), the same for both modules.
    pub config: &'static str,
    /// Host set-up.
    pub needs: Needs,
    /// Drives one request and checks that the plugin did its work.
    pub drive: fn(&TestHost) -> Result<(), String>,
    /// The same request through a real Envoy (`None`: stock Envoy refuses
    /// the module, or the request is not a plain GET).
    pub envoy: Option<EnvoyRequest>,
    /// How the config differs from the Go README's, if at all.
    pub note: &'static str,
}

fn stream_err(e: StreamError) -> String {
    e.to_string()
}

fn passed(s: &HttpStream<'_>) -> Result<(), String> {
    if let Some(r) = s.local_response() {
        return Err(format!(
            "the plugin answered {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    if s.upstream_request_headers().is_none() {
        return Err("the request did not reach the upstream".into());
    }
    Ok(())
}

fn header_is(s: &HttpStream<'_>, name: &str, want: &str) -> Result<(), String> {
    passed(s)?;
    match s.upstream_request_header(name) {
        Some(v) if v == want => Ok(()),
        other => Err(format!(
            "upstream {name}: {:?}, expected {want:?}",
            other.map(|v| v.to_string())
        )),
    }
}

fn respond(s: &mut HttpStream<'_>, body: &str) -> Result<(), String> {
    s.send_response_headers(
        &[(":status", "200"), ("content-type", "application/json")],
        false,
    )
    .map_err(stream_err)?;
    s.send_response_body(body, true).map_err(stream_err)?;
    Ok(())
}

const KEY_AUTH: &str = r#"{"global_auth": true,
  "consumers": [{"credential": "2bda943c-ba2b-11ec-ba07-00163e1250b5", "name": "consumer1"},
                {"credential": "c8c8e9ca-558e-4a2d-bb62-e700dcc40e35", "name": "consumer2"}],
  "keys": ["apikey", "x-api-key"], "in_header": true}"#;

fn key_auth(host: &TestHost) -> Result<(), String> {
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":method", "GET"),
            (":path", "/get"),
            (":authority", "foo.example.com"),
            ("x-api-key", "2bda943c-ba2b-11ec-ba07-00163e1250b5"),
        ],
        true,
    )
    .map_err(stream_err)?;
    header_is(&s, "x-mse-consumer", "consumer1")
}

const BASIC_AUTH: &str = r#"{"global_auth": true,
  "consumers": [{"credential": "admin:123456", "name": "consumer1"},
                {"credential": "guest:abc", "name": "consumer2"}]}"#;

fn basic_auth(host: &TestHost) -> Result<(), String> {
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":method", "GET"),
            (":path", "/get"),
            (":authority", "foo.example.com"),
            ("authorization", "Basic YWRtaW46MTIzNDU2"),
        ],
        true,
    )
    .map_err(stream_err)?;
    header_is(&s, "x-mse-consumer", "consumer1")
}

const REQUEST_BLOCK: &str = r#"{"block_urls": ["swagger.html", "foo=bar"],
  "block_headers": ["example-key", "example-value"], "case_sensitive": false}"#;

fn request_block(host: &TestHost) -> Result<(), String> {
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":method", "GET"),
            (":path", "/api/items?page=2&sort=name"),
            (":authority", "example.com"),
            ("user-agent", "curl/8.0"),
            ("accept", "*/*"),
        ],
        true,
    )
    .map_err(stream_err)?;
    passed(&s)
}

const TRANSFORMER_HEADERS: &str = r#"{"reqRules": [
  {"operate": "remove", "headers": [{"key": "X-remove"}]},
  {"operate": "rename", "headers": [{"oldKey": "X-not-renamed", "newKey": "X-renamed"}]},
  {"operate": "replace", "headers": [{"key": "X-replace", "newValue": "replaced"}]},
  {"operate": "add", "headers": [{"key": "X-add-append", "value": "host-$1", "host_pattern": "^(.*)\\.com$"}]},
  {"operate": "append", "headers": [{"key": "X-add-append", "appendValue": "path-$1", "path_pattern": "^.*?\\/(\\w+)[\\?]{0,1}.*$"}]},
  {"operate": "map", "headers": [{"fromKey": "X-add-append", "toKey": "X-map"}]},
  {"operate": "dedupe", "headers": [
    {"key": "X-dedupe-first", "strategy": "RETAIN_FIRST"},
    {"key": "X-dedupe-last", "strategy": "RETAIN_LAST"},
    {"key": "X-dedupe-unique", "strategy": "RETAIN_UNIQUE"}]}
]}"#;

/// The Go README's request for its header example (client view).
const TRANSFORMER_HEADER_LIST: &[(&str, &str)] = &[
    ("x-remove", "exist"),
    ("x-not-renamed", "test"),
    ("x-replace", "not-replaced"),
    ("x-dedupe-first", "1"),
    ("x-dedupe-first", "2"),
    ("x-dedupe-first", "3"),
    ("x-dedupe-last", "a"),
    ("x-dedupe-last", "b"),
    ("x-dedupe-last", "c"),
    ("x-dedupe-unique", "1"),
    ("x-dedupe-unique", "2"),
    ("x-dedupe-unique", "3"),
    ("x-dedupe-unique", "3"),
    ("x-dedupe-unique", "2"),
    ("x-dedupe-unique", "1"),
];

fn transformer_headers(host: &TestHost) -> Result<(), String> {
    let mut s = host.http_stream();
    let mut headers = vec![
        (":method", "GET"),
        (":path", "/get"),
        (":authority", "foo.bar.com"),
    ];
    headers.extend_from_slice(TRANSFORMER_HEADER_LIST);
    s.send_request_headers(&headers, true).map_err(stream_err)?;
    header_is(&s, "x-renamed", "test")?;
    header_is(&s, "x-replace", "replaced")
}

const TRANSFORMER_BODY: &str = r#"{"reqRules": [
  {"operate": "remove", "body": [{"key": "a1"}]},
  {"operate": "rename", "body": [{"oldKey": "a2", "newKey": "a2-new"}]},
  {"operate": "replace", "body": [{"key": "a3", "newValue": "t3-new", "value_type": "string"}]},
  {"operate": "add", "body": [{"key": "a1-new", "value": "t1-new", "value_type": "string"}]},
  {"operate": "append", "body": [{"key": "a1-new", "appendValue": "t1-$1-append", "value_type": "string", "host_pattern": "^(.*)\\.com$"}]},
  {"operate": "map", "body": [{"fromKey": "a1-new", "toKey": "a4"}]},
  {"operate": "dedupe", "body": [{"key": "a4", "strategy": "RETAIN_FIRST"}]}
]}"#;

fn transformer_body(host: &TestHost) -> Result<(), String> {
    let body = r#"{"a1":"t1","a2":"t2","a3":"t3"}"#;
    let mut s = host.http_stream();
    let length = body.len().to_string();
    s.send_request_headers(
        &[
            (":method", "POST"),
            (":path", "/post"),
            (":authority", "foo.bar.com"),
            ("content-type", "application/json"),
            ("content-length", length.as_str()),
        ],
        false,
    )
    .map_err(stream_err)?;
    s.send_request_body(body, true).map_err(stream_err)?;
    passed(&s)?;
    let sent = String::from_utf8_lossy(&s.upstream_request_body()).into_owned();
    // Go's build leaves out README's `a4` (its `map` from an array value);
    // the check is the part both do: `a1` gone, `a3` replaced.
    if sent.contains("t3-new") && sent.contains("a2-new") && !sent.contains("\"a1\"") {
        Ok(())
    } else {
        Err(format!("upstream body not rewritten: {sent}"))
    }
}

const CLUSTER_KEY_RATE_LIMIT: &str = r#"{"rule_name": "routeA-global-limit-rule",
  "global_threshold": {"query_per_minute": 100000000},
  "redis": {"service_name": "redis.static", "service_port": 6379, "timeout": 1000},
  "show_limit_quota_header": true, "rejected_code": 429, "rejected_msg": "Too many requests"}"#;

fn cluster_key_rate_limit(host: &TestHost) -> Result<(), String> {
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":method", "GET"),
            (":path", "/get"),
            (":authority", "example.com"),
        ],
        true,
    )
    .map_err(stream_err)?;
    host.run_until_idle();
    passed(&s)?;
    respond(&mut s, "{}")?;
    match s.client_response_header("x-ratelimit-remaining") {
        Some(_) => Ok(()),
        None => Err("no x-ratelimit-remaining on the response".into()),
    }
}

const AI_TOKEN_RATELIMIT: &str = r#"{"rule_name": "ai-token-global-limit",
  "global_threshold": {"token_per_minute": 1000000000},
  "redis": {"service_name": "redis.static", "service_port": 6379, "timeout": 1000}}"#;

fn ai_token_ratelimit(host: &TestHost) -> Result<(), String> {
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "llm.example.com"),
            ("content-type", "application/json"),
        ],
        true,
    )
    .map_err(stream_err)?;
    host.run_until_idle();
    passed(&s)?;
    respond(
        &mut s,
        r#"{"id":"c1","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello"}}],"usage":{"prompt_tokens":15,"completion_tokens":25,"total_tokens":40}}"#,
    )?;
    s.done().map_err(stream_err)?;
    host.run_until_idle();
    Ok(())
}

const AI_LOAD_BALANCER: &str = r#"{"lb_type": "endpoint", "lb_policy": "global_least_request",
  "lb_config": {"serviceFQDN": "redis.static", "servicePort": 6379}}"#;

fn ai_load_balancer(host: &TestHost) -> Result<(), String> {
    let mut s = host.http_stream();
    s.set_route_name("llm-route")
        .set_cluster_name("outbound|8000||vllm.static");
    s.send_request_headers(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "llm.example.com"),
            ("content-type", "application/json"),
        ],
        false,
    )
    .map_err(stream_err)?;
    s.send_request_body(
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        true,
    )
    .map_err(stream_err)?;
    host.run_until_idle();
    passed(&s)?;
    if s.upstream_override_host().is_none() {
        return Err("no upstream override host picked".into());
    }
    if s.is_request_paused() {
        return Err("the request is still paused".into());
    }
    respond(&mut s, "{}")?;
    s.done().map_err(stream_err)?;
    host.run_until_idle();
    Ok(())
}

/// Healthy upstream hosts for ai-load-balancer.
pub(crate) const UPSTREAM_HOSTS: &[(&str, &str)] = &[
    ("10.0.0.1:8000", r#"{"health_status":"Healthy"}"#),
    ("10.0.0.2:8000", r#"{"health_status":"Healthy"}"#),
    ("10.0.0.3:8000", r#"{"health_status":"Healthy"}"#),
];

/// Every scenario, in table order.
pub(crate) fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            plugin: "key-auth",
            request: "GET, key in `x-api-key`",
            package: "key-auth",
            go_loc: 209,
            go_build: None,
            config: KEY_AUTH,
            needs: Needs::Plain,
            drive: key_auth,
            envoy: Some(EnvoyRequest {
                path: "/get",
                headers: &[
                    ("host", "foo.example.com"),
                    ("x-api-key", "2bda943c-ba2b-11ec-ba07-00163e1250b5"),
                ],
                marker: "\"x-mse-consumer\":\"consumer1\"",
            }),
            note: "README's `global_auth: true` example plus `in_header: true` (Go refuses the example without `in_header`/`in_query`)",
        },
        Scenario {
            plugin: "basic-auth",
            request: "GET, `Authorization: Basic`",
            package: "basic-auth",
            go_loc: 203,
            go_build: None,
            config: BASIC_AUTH,
            needs: Needs::Plain,
            drive: basic_auth,
            envoy: Some(EnvoyRequest {
                path: "/get",
                headers: &[
                    ("host", "foo.example.com"),
                    ("authorization", "Basic YWRtaW46MTIzNDU2"),
                ],
                marker: "\"x-mse-consumer\":\"consumer1\"",
            }),
            note: "README's consumers with `global_auth: true` instead of per-route `allow` rules",
        },
        Scenario {
            plugin: "request-block",
            request: "GET that passes every check",
            package: "request-block",
            go_loc: 172,
            go_build: None,
            config: REQUEST_BLOCK,
            needs: Needs::Plain,
            drive: request_block,
            envoy: Some(EnvoyRequest {
                path: "/api/items?page=2&sort=name",
                headers: &[("host", "example.com"), ("user-agent", "curl/8.0")],
                marker: "\"path\":\"/api/items?page=2&sort=name\"",
            }),
            note: "README's URL and header examples in one config",
        },
        Scenario {
            plugin: "transformer",
            request: "README header rules, 15 headers",
            package: "transformer",
            go_loc: 1413,
            go_build: Some("transformer"),
            config: TRANSFORMER_HEADERS,
            needs: Needs::Plain,
            drive: transformer_headers,
            envoy: Some(EnvoyRequest {
                path: "/get",
                headers: &[
                    ("host", "foo.bar.com"),
                    ("x-remove", "exist"),
                    ("x-not-renamed", "test"),
                    ("x-replace", "not-replaced"),
                    ("x-dedupe-first", "1"),
                    ("x-dedupe-first", "2"),
                    ("x-dedupe-first", "3"),
                    ("x-dedupe-last", "a"),
                    ("x-dedupe-last", "b"),
                    ("x-dedupe-last", "c"),
                    ("x-dedupe-unique", "1"),
                    ("x-dedupe-unique", "2"),
                    ("x-dedupe-unique", "3"),
                ],
                marker: "\"x-renamed\":\"test\"",
            }),
            note: "README's header example, unchanged",
        },
        Scenario {
            plugin: "transformer",
            request: "README JSON body rules, POST",
            package: "transformer",
            go_loc: 1413,
            go_build: Some("transformer"),
            config: TRANSFORMER_BODY,
            needs: Needs::Plain,
            drive: transformer_body,
            envoy: None,
            note: "README's body example, unchanged",
        },
        Scenario {
            plugin: "cluster-key-rate-limit",
            request: "GET under a global threshold",
            package: "cluster-key-rate-limit",
            go_loc: 612,
            go_build: None,
            config: CLUSTER_KEY_RATE_LIMIT,
            needs: Needs::Redis,
            drive: cluster_key_rate_limit,
            envoy: None,
            note: "README's `global_threshold` example with a limit no run reaches",
        },
        Scenario {
            plugin: "ai-token-ratelimit",
            request: "chat request + response with `usage`",
            package: "ai-token-ratelimit",
            go_loc: 699,
            go_build: None,
            config: AI_TOKEN_RATELIMIT,
            needs: Needs::Redis,
            drive: ai_token_ratelimit,
            envoy: None,
            note: "README's `global_threshold` example with a budget no run reaches",
        },
        Scenario {
            plugin: "ai-load-balancer",
            request: "chat request, `global_least_request` pick",
            package: "ai-load-balancer",
            go_loc: 1545,
            go_build: None,
            config: AI_LOAD_BALANCER,
            needs: Needs::RedisAndHosts,
            drive: ai_load_balancer,
            envoy: None,
            note: "README's `global_least_request` example, 3 healthy hosts. Go's lines are the whole plugin (every `lb_type`); its `main.go` and `global_least_request/`, what the port covers so far, are 373",
        },
    ]
}
