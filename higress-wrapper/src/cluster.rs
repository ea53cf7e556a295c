//! Upstream clusters for Redis and HTTP calls, named exactly as the Go
//! wrapper names them (`cluster_wrapper.go`).
//!
//! The cluster must already exist in the gateway: in Higress, a registered
//! service (a service source or an McpBridge registry entry); in plain Envoy,
//! a cluster of that name in the bootstrap. Otherwise the host refuses the
//! call with "bad argument".
//!
//! ```
//! use higress_wrapper::cluster::{Cluster, FqdnCluster, StaticIpCluster};
//!
//! let redis = FqdnCluster::new("redis.static", 6379);
//! assert_eq!(redis.cluster_name(), "outbound|6379||redis.static");
//! let auth = StaticIpCluster::new("auth", 8080);
//! assert_eq!(auth.cluster_name(), "outbound|8080||auth.static");
//! assert_eq!(auth.host_name(), "auth");
//! ```

use std::fmt;

/// An upstream cluster: the Envoy cluster name to call, and the host name
/// used as `:authority` when a URL has none.
pub trait Cluster: fmt::Debug {
    /// The Envoy cluster name, e.g. `outbound|6379||redis.static`.
    fn cluster_name(&self) -> String;
    /// The `:authority` to send when the URL has no host.
    fn host_name(&self) -> String;
}

fn or<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.is_empty() {
        fallback
    } else {
        value
    }
}

/// A service by fully qualified name: `outbound|<port>||<fqdn>`
/// (`redis.static`, `foo.dns`, `svc.ns.svc.cluster.local`). Go's `FQDNCluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FqdnCluster {
    /// The service's FQDN as registered in the gateway.
    pub fqdn: String,
    /// The service port.
    pub port: u16,
    /// `:authority` override (default: the FQDN).
    pub host: String,
}

impl FqdnCluster {
    /// A cluster for `fqdn:port`.
    pub fn new(fqdn: impl Into<String>, port: u16) -> Self {
        FqdnCluster {
            fqdn: fqdn.into(),
            port,
            host: String::new(),
        }
    }
}

impl Cluster for FqdnCluster {
    fn cluster_name(&self) -> String {
        format!("outbound|{}||{}", self.port, self.fqdn)
    }
    fn host_name(&self) -> String {
        or(&self.host, &self.fqdn).to_owned()
    }
}

/// A Kubernetes service: `outbound|<port>|<version>|<name>.<namespace>.svc.cluster.local`.
/// Go's `K8sCluster` (an empty namespace means `default`, for the host name too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sCluster {
    /// Service name.
    pub service_name: String,
    /// Namespace (default `default`).
    pub namespace: String,
    /// Service port.
    pub port: u16,
    /// Subset / version (usually empty).
    pub version: String,
    /// `:authority` override.
    pub host: String,
}

impl K8sCluster {
    /// A cluster for `service.namespace:port`.
    pub fn new(service_name: impl Into<String>, namespace: impl Into<String>, port: u16) -> Self {
        K8sCluster {
            service_name: service_name.into(),
            namespace: namespace.into(),
            port,
            version: String::new(),
            host: String::new(),
        }
    }
    fn fqdn(&self) -> String {
        format!(
            "{}.{}.svc.cluster.local",
            self.service_name,
            or(&self.namespace, "default")
        )
    }
}

impl Cluster for K8sCluster {
    fn cluster_name(&self) -> String {
        format!("outbound|{}|{}|{}", self.port, self.version, self.fqdn())
    }
    fn host_name(&self) -> String {
        if self.host.is_empty() {
            self.fqdn()
        } else {
            self.host.clone()
        }
    }
}

/// A Nacos service:
/// `outbound|<port>|<version>|<name>.<group>.<namespace_id>.nacos` (`.nacos-ext`
/// for an external registry). Go's `NacosCluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NacosCluster {
    /// Service name.
    pub service_name: String,
    /// Group (default `DEFAULT-GROUP`; `_` becomes `-`).
    pub group: String,
    /// Namespace id.
    pub namespace_id: String,
    /// Service port.
    pub port: u16,
    /// Registered as an external registry.
    pub is_ext_registry: bool,
    /// Subset / version.
    pub version: String,
    /// `:authority` override.
    pub host: String,
}

impl NacosCluster {
    /// A cluster for a Nacos service.
    pub fn new(
        service_name: impl Into<String>,
        group: impl Into<String>,
        namespace_id: impl Into<String>,
        port: u16,
    ) -> Self {
        NacosCluster {
            service_name: service_name.into(),
            group: group.into(),
            namespace_id: namespace_id.into(),
            port,
            is_ext_registry: false,
            version: String::new(),
            host: String::new(),
        }
    }
}

impl Cluster for NacosCluster {
    fn cluster_name(&self) -> String {
        let group = or(&self.group, "DEFAULT-GROUP").replace('_', "-");
        let tail = if self.is_ext_registry {
            "nacos-ext"
        } else {
            "nacos"
        };
        format!(
            "outbound|{}|{}|{}.{}.{}.{}",
            self.port, self.version, self.service_name, group, self.namespace_id, tail
        )
    }
    fn host_name(&self) -> String {
        or(&self.host, &self.service_name).to_owned()
    }
}

/// A static-IP service: `outbound|<port>||<name>.static`. Go's `StaticIpCluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticIpCluster {
    /// Service name.
    pub service_name: String,
    /// Service port.
    pub port: u16,
    /// `:authority` override.
    pub host: String,
}

impl StaticIpCluster {
    /// A cluster for a static-IP service.
    pub fn new(service_name: impl Into<String>, port: u16) -> Self {
        StaticIpCluster {
            service_name: service_name.into(),
            port,
            host: String::new(),
        }
    }
}

impl Cluster for StaticIpCluster {
    fn cluster_name(&self) -> String {
        format!("outbound|{}||{}.static", self.port, self.service_name)
    }
    fn host_name(&self) -> String {
        or(&self.host, &self.service_name).to_owned()
    }
}

/// A DNS service: `outbound|<port>||<name>.dns`, `:authority` is the domain.
/// Go's `DnsCluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCluster {
    /// Service name.
    pub service_name: String,
    /// The domain, used as `:authority`.
    pub domain: String,
    /// Service port.
    pub port: u16,
}

impl DnsCluster {
    /// A cluster for a DNS service.
    pub fn new(service_name: impl Into<String>, domain: impl Into<String>, port: u16) -> Self {
        DnsCluster {
            service_name: service_name.into(),
            domain: domain.into(),
            port,
        }
    }
}

impl Cluster for DnsCluster {
    fn cluster_name(&self) -> String {
        format!("outbound|{}||{}.dns", self.port, self.service_name)
    }
    fn host_name(&self) -> String {
        self.domain.clone()
    }
}

/// A Consul service: `outbound|<port>||<name>.<datacenter>.consul`. Go's `ConsulCluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsulCluster {
    /// Service name.
    pub service_name: String,
    /// Datacenter.
    pub datacenter: String,
    /// Service port.
    pub port: u16,
    /// `:authority` override.
    pub host: String,
}

impl ConsulCluster {
    /// A cluster for a Consul service.
    pub fn new(service_name: impl Into<String>, datacenter: impl Into<String>, port: u16) -> Self {
        ConsulCluster {
            service_name: service_name.into(),
            datacenter: datacenter.into(),
            port,
            host: String::new(),
        }
    }
}

impl Cluster for ConsulCluster {
    fn cluster_name(&self) -> String {
        format!(
            "outbound|{}||{}.{}.consul",
            self.port, self.service_name, self.datacenter
        )
    }
    fn host_name(&self) -> String {
        or(&self.host, &self.service_name).to_owned()
    }
}

/// A cluster named verbatim (any Envoy cluster, e.g. `auth_service` in a
/// plain Envoy bootstrap). Go's `TargetCluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetCluster {
    /// The cluster name, used as is.
    pub cluster: String,
    /// The `:authority` to send.
    pub host: String,
}

impl TargetCluster {
    /// A cluster named `cluster`, called with `:authority` `host`.
    pub fn new(cluster: impl Into<String>, host: impl Into<String>) -> Self {
        TargetCluster {
            cluster: cluster.into(),
            host: host.into(),
        }
    }
}

impl Cluster for TargetCluster {
    fn cluster_name(&self) -> String {
        self.cluster.clone()
    }
    fn host_name(&self) -> String {
        self.host.clone()
    }
}

/// The current request's route upstream (property `cluster_name`, or
/// `xds.cluster_name` on stock Envoy). Go's `RouteCluster`. Only meaningful
/// while a request is being served.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteCluster {
    /// `:authority` override (default: the request's `:authority`).
    pub host: String,
}

impl Cluster for RouteCluster {
    fn cluster_name(&self) -> String {
        crate::http_context::cluster_name().unwrap_or_default()
    }
    fn host_name(&self) -> String {
        if !self.host.is_empty() {
            return self.host.clone();
        }
        crate::host::get_header(crate::host::MapType::RequestHeaders, ":authority")
            .ok()
            .flatten()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_go() {
        assert_eq!(
            K8sCluster::new("redis", "", 6379).cluster_name(),
            "outbound|6379||redis.default.svc.cluster.local"
        );
        assert_eq!(
            K8sCluster::new("redis", "", 6379).host_name(),
            "redis.default.svc.cluster.local"
        );
        let mut nacos = NacosCluster::new("svc", "my_group", "ns1", 8080);
        assert_eq!(
            nacos.cluster_name(),
            "outbound|8080||svc.my-group.ns1.nacos"
        );
        nacos.is_ext_registry = true;
        nacos.group.clear();
        assert_eq!(
            nacos.cluster_name(),
            "outbound|8080||svc.DEFAULT-GROUP.ns1.nacos-ext"
        );
        assert_eq!(
            DnsCluster::new("httpbin", "httpbin.org", 80).cluster_name(),
            "outbound|80||httpbin.dns"
        );
        assert_eq!(
            DnsCluster::new("httpbin", "httpbin.org", 80).host_name(),
            "httpbin.org"
        );
        assert_eq!(
            ConsulCluster::new("svc", "dc1", 80).cluster_name(),
            "outbound|80||svc.dc1.consul"
        );
        assert_eq!(
            TargetCluster::new("auth_service", "auth").cluster_name(),
            "auth_service"
        );
        let mut f = FqdnCluster::new("redis.static", 6379);
        f.host = "redis.local".into();
        assert_eq!(f.host_name(), "redis.local");
    }
}
