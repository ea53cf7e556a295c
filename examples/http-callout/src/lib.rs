//! http-callout: checks each request with an external auth service.
//!
//! Config:
//!
//! ```json
//! {"cluster": "auth_service", "authority": "auth.local", "path": "/check", "timeout_ms": 300}
//! ```
//!
//! `cluster` is the gateway's cluster name (Higress: e.g.
//! `outbound|8080||auth.static`; plain Envoy: any cluster in the bootstrap).
//! For each request it sends `GET <path>` with the request's
//! `authorization` header. A 200 lets the request through with
//! `x-auth-user` set from the auth service's `x-user` header; any other
//! status answers 403. If the auth service is down, too slow or unknown,
//! the request is denied too (fail closed): 403 `auth unavailable`.
//! `timeout_ms` must be at least 1 (0 is refused: the host would read it as
//! no timeout at all and hold requests until the service answers). An auth
//! service answering with a body over 32 MiB counts as down: Envoy drops
//! such a response and reports a reset, which the log line names.
use higress_wrapper::cluster::TargetCluster;
use higress_wrapper::http_client::{HttpClient, HttpError, TimeoutMs};
use higress_wrapper::prelude::*;
use serde::Deserialize;
use std::rc::Rc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    cluster: String,
    #[serde(default)]
    authority: String,
    #[serde(default = "default_path")]
    path: String,
    #[serde(default = "default_timeout")]
    timeout_ms: TimeoutMs,
}

fn default_path() -> String {
    "/check".to_owned()
}

fn default_timeout() -> TimeoutMs {
    TimeoutMs::from_millis(500)
}

/// The parsed config.
#[derive(Debug)]
pub struct Config {
    auth: HttpClient,
    path: Rc<str>,
    timeout: Duration,
}

fn parse_config(json: &JsonValue) -> Result<Config, ConfigError> {
    let raw: RawConfig = higress_wrapper::config::from_json(json)?;
    if raw.cluster.is_empty() {
        return Err(ConfigError::new("cluster must not be empty").with_path("cluster"));
    }
    Ok(Config {
        auth: HttpClient::new(&TargetCluster::new(raw.cluster, raw.authority)),
        path: raw.path.into(),
        timeout: raw.timeout_ms.into(),
    })
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    // Fail closed: if the check itself fails, deny.
    ctx.set_error_response(403, "auth unavailable");
    let authorization = ctx
        .request_header("authorization")
        .map(|v| v.to_str_lossy().into_owned())
        .unwrap_or_default();
    let check = config
        .auth
        .get(&config.path)
        .header("authorization", authorization)
        .timeout(config.timeout)
        .send();
    let request = ctx.handle();
    HeaderAction::wait(async move {
        let response = check.await?;
        request.with(|ctx| {
            if response.status == 200 {
                let user = response.header("x-user").map(|v| v.as_bytes().to_vec());
                ctx.set_request_header("x-auth-user", user.unwrap_or_default());
                log::info!("auth ok");
            } else {
                log::info!("auth denied: status {}", response.status);
                ctx.send_local_response(403, &[("content-type", b"text/plain")], "forbidden");
            }
        });
        Ok::<_, HttpError>(HeaderAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "http-callout",
    // Public so that tests (`tests/native.rs`) can start it in the test host.
    plugin: pub Plugin,
    config: Config,
    parse_config: parse_config,
    on_request_headers: on_request_headers,
}
