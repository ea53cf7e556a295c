//! [`RedisService`]: the `redis` block every Redis plugin's config has,
//! with the Go plugins' field names and defaults, building a
//! [`RedisClient`]. Re-exported as `higress_wrapper::redis::RedisService`.

use super::RedisClient;
use crate::cluster::FqdnCluster;
use crate::config::ConfigError;
use crate::http_client::TimeoutMs;
use std::fmt;
use std::time::Duration;

/// Where a plugin's Redis is, as Higress's Go plugins configure it
/// (cluster-key-rate-limit, ai-token-ratelimit, ai-load-balancer, …):
///
/// | field | default | meaning |
/// |---|---|---|
/// | `service_name` | required | the service's FQDN as registered in the gateway (`redis.static`, `redis.default.svc.cluster.local`, `redis.dns`) |
/// | `service_port` | 80 for a `.static` service, else 6379 | the port in the cluster name |
/// | `username` | empty | Redis ACL user |
/// | `password` | empty | never shown by `Debug` or in errors |
/// | `timeout` | 1000 | milliseconds per call |
/// | `database` | 0 | `SELECT n` on each connection |
///
/// The cluster is `outbound|<service_port>||<service_name>` (Go's
/// `FQDNCluster`). Use it as a field of your config and build the client
/// while parsing:
///
/// ```
/// use higress_wrapper::prelude::*;
/// use higress_wrapper::redis::{RedisClient, RedisService};
///
/// #[derive(serde::Deserialize)]
/// struct RawConfig {
///     redis: RedisService,
/// }
///
/// struct Config {
///     redis: RedisClient,
/// }
///
/// fn parse_config(json: &JsonValue) -> Result<Config, ConfigError> {
///     let raw: RawConfig = higress_wrapper::config::from_json(json)?;
///     Ok(Config { redis: raw.redis.client()? })
/// }
///
/// let config = parse_config(&serde_json::json!({
///     "redis": { "service_name": "redis.static", "password": "secret" }
/// }));
/// assert_eq!(config.map(|c| c.redis.cluster_name().to_owned()).ok().as_deref(),
///            Some("outbound|80||redis.static"));
/// ```
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisService {
    /// The service's FQDN as registered in the gateway.
    pub service_name: String,
    /// The port; `0` (or absent) means the default: 80 for a `.static`
    /// service, 6379 otherwise.
    #[serde(default)]
    pub service_port: u16,
    /// The Redis ACL user; empty for none.
    #[serde(default)]
    pub username: String,
    /// The password; empty for none.
    #[serde(default)]
    pub password: String,
    /// Milliseconds per call; absent means 1000. `0` is refused (the host
    /// would read it as no timeout at all), naming the field.
    #[serde(default)]
    pub timeout: Option<TimeoutMs>,
    /// The database number.
    #[serde(default)]
    pub database: u32,
}

impl fmt::Debug for RedisService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisService")
            .field("service_name", &self.service_name)
            .field("service_port", &self.port())
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() { "" } else { "***" },
            )
            .field("timeout", &self.timeout_duration())
            .field("database", &self.database)
            .finish()
    }
}

impl RedisService {
    /// The port the cluster name uses (the default applied).
    pub fn port(&self) -> u16 {
        match self.service_port {
            0 if self.service_name.ends_with(".static") => 80,
            0 => 6379,
            port => port,
        }
    }

    /// The per-call timeout (the default applied).
    pub fn timeout_duration(&self) -> Duration {
        self.timeout
            .map_or(Duration::from_millis(1000), TimeoutMs::as_duration)
    }

    /// The gateway cluster: `outbound|<port>||<service_name>`.
    pub fn cluster(&self) -> FqdnCluster {
        FqdnCluster::new(self.service_name.clone(), self.port())
    }

    /// Builds the client (nothing is sent until the first command). Fails
    /// on an empty `service_name`, or as
    /// [`RedisClientBuilder::build`](crate::redis::RedisClientBuilder::build)
    /// does.
    pub fn client(&self) -> Result<RedisClient, ConfigError> {
        if self.service_name.trim().is_empty() {
            return Err(ConfigError::new("must not be empty").with_path("redis.service_name"));
        }
        RedisClient::builder(&self.cluster())
            .username(self.username.clone())
            .password(self.password.clone())
            .timeout(self.timeout_duration())
            .database(self.database)
            .build()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cluster::Cluster;

    fn parse(json: serde_json::Value) -> Result<RedisService, ConfigError> {
        crate::config::from_json(&json)
    }

    #[test]
    fn go_defaults() {
        let s =
            parse(serde_json::json!({"service_name": "redis.default.svc.cluster.local"})).unwrap();
        assert_eq!(s.port(), 6379);
        assert_eq!(s.timeout_duration(), Duration::from_millis(1000));
        assert_eq!(s.database, 0);
        assert_eq!(s.username, "");
        assert_eq!(
            s.cluster().cluster_name(),
            "outbound|6379||redis.default.svc.cluster.local"
        );
    }

    #[test]
    fn static_service_defaults_to_port_80() {
        let s = parse(serde_json::json!({"service_name": "redis.static"})).unwrap();
        assert_eq!(s.port(), 80);
        assert_eq!(s.cluster().cluster_name(), "outbound|80||redis.static");
    }

    #[test]
    fn every_field_is_read() {
        let s = parse(serde_json::json!({
            "service_name": "r.dns", "service_port": 6380, "username": "u",
            "password": "p", "timeout": 250, "database": 3
        }))
        .unwrap();
        assert_eq!(s.port(), 6380);
        assert_eq!(s.timeout_duration(), Duration::from_millis(250));
        let zero = crate::config::from_json::<RedisService>(
            &serde_json::json!({"service_name": "r.static", "timeout": 0}),
        );
        let message = zero.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("timeout"), "{message}");
        assert_eq!(
            (s.username.as_str(), s.password.as_str(), s.database),
            ("u", "p", 3)
        );
    }

    #[test]
    fn missing_name_and_wrong_types_are_config_errors() {
        let err = parse(serde_json::json!({"service_port": 1})).err().unwrap();
        assert!(err.to_string().contains("service_name"), "{err}");
        let err = parse(serde_json::json!({"service_name": "r", "service_port": "x"}))
            .err()
            .unwrap();
        assert_eq!(err.path(), Some("service_port"));
        let err = parse(serde_json::json!({"service_name": " "}))
            .unwrap()
            .client()
            .err()
            .unwrap();
        assert_eq!(err.path(), Some("redis.service_name"));
    }

    #[test]
    fn debug_hides_the_password() {
        let s = parse(serde_json::json!({"service_name": "r", "password": "hunter2"})).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
