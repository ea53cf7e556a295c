//! The Redis keys `global_least_request` and `prefix_cache` share (Go reads
//! the same ones in both): `serviceFQDN`, `servicePort`, `username`,
//! `password`, `timeout` (ms, default 3000), `database` (default 0).
use crate::{int, refuse, text};
use higress_wrapper::cluster::FqdnCluster;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::RedisClient;
use std::time::Duration;

/// The Redis service and the client built for it.
#[derive(Debug)]
pub(crate) struct RedisService {
    pub(crate) service_fqdn: String,
    pub(crate) service_port: u16,
    pub(crate) timeout_ms: u64,
    pub(crate) database: u32,
    pub(crate) client: RedisClient,
}

/// Parses the Redis keys of `lb_config`; errors name the field
/// (`lb_config.servicePort`).
pub(crate) fn parse(json: &JsonValue) -> Result<RedisService, ConfigError> {
    let field = |key: &str| json.get(key).filter(|v| !v.is_null());
    let service_fqdn = text(field("serviceFQDN"));
    if service_fqdn.is_empty() {
        return Err(refuse(
            "lb_config.serviceFQDN",
            "invalid redis service config: serviceFQDN is required",
        ));
    }
    let port = int(field("servicePort"));
    if port == 0 {
        return Err(refuse(
            "lb_config.servicePort",
            "invalid redis service config: servicePort is required",
        ));
    }
    let service_port = u16::try_from(port).map_err(|_| {
        refuse(
            "lb_config.servicePort",
            format!("invalid redis service config: {port} is not a port"),
        )
    })?;
    let timeout_ms = match int(field("timeout")) {
        0 => 3000,
        ms => u64::try_from(ms)
            .map_err(|_| refuse("lb_config.timeout", format!("a timeout of {ms} ms")))?,
    };
    let database = int(field("database"));
    let database = u32::try_from(database)
        .map_err(|_| refuse("lb_config.database", format!("no database {database}")))?;
    let client = RedisClient::builder(&FqdnCluster::new(&service_fqdn, service_port))
        .username(text(field("username")))
        .password(text(field("password")))
        .timeout(Duration::from_millis(timeout_ms))
        .database(database)
        .build()
        .map_err(|e| {
            let message = e.message().to_owned();
            refuse("lb_config", message)
        })?;
    Ok(RedisService {
        service_fqdn,
        service_port,
        timeout_ms,
        database,
        client,
    })
}
