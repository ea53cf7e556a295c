//! Deployment files from a plugin and its configuration (`cargo higress
//! deploy`): the Higress `WasmPlugin` resource, the `McpBridge` registries of
//! the services the plugin calls, and for a plain Envoy the
//! `envoy.filters.http.wasm` filter, as YAML.
//!
//! The plugin configuration is the JSON the plugin receives (what the dev
//! loop serves locally). Higress builds that JSON from a `WasmPlugin`:
//! `defaultConfig` becomes the top-level keys and each `matchRules` entry
//! becomes one element of `_rules_`, with `ingress`, `domain` and `service`
//! turned into `_match_route_`, `_match_domain_` and `_match_service_`.
//! [`wasm_plugin`] runs that conversion backwards and [`plugin_config`]
//! forwards, so a round trip can be checked.
//!
//! # YAML
//!
//! The resources are typed structs ([`WasmPlugin`], [`McpBridge`],
//! [`EnvoyWasmFilter`]) serialized with `serde-saphyr` (maintained, MIT OR
//! Apache-2.0 like this project). `serde_yaml` is archived (its author
//! stopped maintaining it in March 2024). Its maintained forks,
//! `serde_yaml_ng` and `serde_norway`, quote only what YAML 1.2 would misread
//! and write `yes`, `on`, `y` and the key `<<` plain, which a YAML 1.1
//! reader takes for booleans and a merge key; Kubernetes' YAML reader
//! (go-yaml v2) and PyYAML are YAML 1.1 readers, so a plugin setting
//! `"mode": "off"` would receive `false`. `serde-saphyr` quotes every
//! string a YAML 1.1 or 1.2 reader could take for something else (booleans,
//! nulls, numbers with `_`, sexagesimals, timestamps, `<<`, `=`) and escapes
//! control and line-separator characters. The tests read the output back
//! with PyYAML and compare.
//!
//! # Failure policies
//!
//! What happens after a plugin panics depends on the host, and each offers
//! different policies:
//!
//! * Envoy (`failure_policy`, 1.33+): `FAIL_RELOAD` recreates the plugin's
//!   VM on the next request (with a backoff) and so recovers; `FAIL_CLOSED`
//!   (Envoy's default) answers 503 on that worker until Envoy restarts;
//!   `FAIL_OPEN` skips the plugin from then on. [`envoy_filter`] defaults to
//!   `FAIL_RELOAD`.
//! * Higress (`WasmPlugin.spec.failStrategy`): only `FAIL_CLOSE` and
//!   `FAIL_OPEN` exist (Higress API `wasmplugin.proto`; `FAIL_RELOAD` is not
//!   passed through, higress-group/higress#4748). Neither brings the plugin
//!   back: after a panic, `FAIL_CLOSE` answers 503 on that worker and
//!   `FAIL_OPEN` lets requests through without the plugin, until the gateway
//!   pod restarts. [`wasm_plugin`] keeps `FAIL_CLOSE` (a broken security
//!   plugin must not let traffic through) and its comments say how to
//!   recover; the SDK's own defence is that its code does not panic.
//!
//! ```
//! use cargo_higress::deploy::{plugin_config, wasm_plugin, WasmPluginSpec};
//! let config = serde_json::json!({
//!     "some_field": "hello",
//!     "_rules_": [{"_match_route_": ["default/foo"], "some_field": "foo"}],
//! });
//! let spec = WasmPluginSpec::new("my-plugin", "oci://registry.example.com/ns/my-plugin:1.0.0");
//! let rendered = wasm_plugin(&spec, &config).unwrap();
//! assert!(rendered.yaml.contains("matchRules:"));
//! assert_eq!(plugin_config(&rendered.resource.to_json()).unwrap(), config);
//! ```

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The Higress namespace resources go to by default.
pub const DEFAULT_NAMESPACE: &str = "higress-system";

/// Everything that can be wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployError(pub String);

impl fmt::Display for DeployError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeployError {}

fn err<T>(message: impl Into<String>) -> Result<T, DeployError> {
    Err(DeployError(message.into()))
}

/// Block-style YAML for any serializable value, safe for YAML 1.1 and 1.2
/// readers (`serde-saphyr`; list items indented under their key).
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, DeployError> {
    let options = serde_saphyr::ser_options! {
        compact_list_indent: false,
    };
    serde_saphyr::to_string_with_options(value, options)
        .map_err(|e| DeployError(format!("writing YAML: {e}")))
}

/// `metadata` of a Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
}

// ---------------------------------------------------------------------------
// WasmPlugin
// ---------------------------------------------------------------------------

/// `spec.phase`: where in the filter chain the plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Phase {
    /// `UNSPECIFIED_PHASE`: at the end of the chain, before the router.
    #[default]
    #[serde(rename = "UNSPECIFIED_PHASE")]
    Unspecified,
    /// `AUTHN`: before Istio's authentication filters.
    #[serde(rename = "AUTHN")]
    Authn,
    /// `AUTHZ`: before Istio's authorization filters.
    #[serde(rename = "AUTHZ")]
    Authz,
    /// `STATS`: before Istio's stats filters.
    #[serde(rename = "STATS")]
    Stats,
}

impl Phase {
    /// The value in the resource.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "UNSPECIFIED_PHASE",
            Self::Authn => "AUTHN",
            Self::Authz => "AUTHZ",
            Self::Stats => "STATS",
        }
    }
}

impl FromStr for Phase {
    type Err = DeployError;
    fn from_str(s: &str) -> Result<Self, DeployError> {
        match s.to_ascii_uppercase().as_str() {
            "UNSPECIFIED_PHASE" | "UNSPECIFIED" => Ok(Self::Unspecified),
            "AUTHN" => Ok(Self::Authn),
            "AUTHZ" => Ok(Self::Authz),
            "STATS" => Ok(Self::Stats),
            _ => err(format!(
                "unknown phase {s:?}: use UNSPECIFIED_PHASE, AUTHN, AUTHZ or STATS"
            )),
        }
    }
}

/// `spec.failStrategy`: what Higress does when the plugin's VM fails (a
/// panic). Higress has these two only; neither recovers the plugin (see the
/// module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FailStrategy {
    /// `FAIL_CLOSE` (Higress's default): requests get 503 while the plugin
    /// is broken, so a broken plugin is noticed and nothing skips it.
    #[default]
    #[serde(rename = "FAIL_CLOSE")]
    FailClose,
    /// `FAIL_OPEN`: requests skip the broken plugin. Choose it only for
    /// plugins whose absence is harmless (logging, metrics).
    #[serde(rename = "FAIL_OPEN")]
    FailOpen,
}

impl FailStrategy {
    /// The value in the resource.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FailClose => "FAIL_CLOSE",
            Self::FailOpen => "FAIL_OPEN",
        }
    }
}

impl FromStr for FailStrategy {
    type Err = DeployError;
    fn from_str(s: &str) -> Result<Self, DeployError> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "FAIL_CLOSE" | "FAIL_CLOSED" => Ok(Self::FailClose),
            "FAIL_OPEN" => Ok(Self::FailOpen),
            _ => err(format!(
                "unknown fail strategy {s:?}: use FAIL_CLOSE or FAIL_OPEN"
            )),
        }
    }
}

/// The `WasmPlugin` fields that do not come from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmPluginSpec {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (default [`DEFAULT_NAMESPACE`]).
    pub namespace: String,
    /// `spec.phase`.
    pub phase: Phase,
    /// `spec.priority`: within a phase, higher runs first on the request.
    pub priority: i32,
    /// `spec.failStrategy`.
    pub fail_strategy: FailStrategy,
    /// `spec.url`: `oci://`, `file://`, `http://` or `https://`.
    pub url: String,
}

impl WasmPluginSpec {
    /// Defaults: namespace `higress-system`, `UNSPECIFIED_PHASE`, priority 0,
    /// `FAIL_CLOSE`.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            phase: Phase::default(),
            priority: 0,
            fail_strategy: FailStrategy::default(),
            url: url.into(),
        }
    }
}

/// A `WasmPlugin` (`extensions.higress.io/v1alpha1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmPlugin {
    /// `extensions.higress.io/v1alpha1`.
    pub api_version: String,
    /// `WasmPlugin`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The plugin, its URL and its configuration.
    pub spec: WasmPluginBody,
}

/// `WasmPlugin.spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmPluginBody {
    /// Where in the chain.
    #[serde(default)]
    pub phase: Phase,
    /// Within a phase, higher runs first.
    #[serde(default)]
    pub priority: i32,
    /// After a VM failure.
    #[serde(default)]
    pub fail_strategy: FailStrategy,
    /// The module.
    pub url: String,
    /// `true`: no global config.
    #[serde(default)]
    pub default_config_disable: bool,
    /// The global config (the plugin config's top-level keys).
    #[serde(default)]
    pub default_config: Map<String, Value>,
    /// One per `_rules_` element.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_rules: Vec<MatchRule>,
}

/// One `matchRules` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchRule {
    /// Route names (`_match_route_`): `<namespace>/<ingress-name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<String>,
    /// Domains (`_match_domain_`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain: Vec<String>,
    /// Services (`_match_service_`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<String>,
    /// The rule's config.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// `true`: the rule is off.
    #[serde(default)]
    pub config_disable: bool,
}

impl WasmPlugin {
    /// The resource as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A generated resource: the typed object, its YAML (with explanatory
/// comments) and warnings for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered<T> {
    /// The resource.
    pub resource: T,
    /// YAML: comments, then the resource.
    pub yaml: String,
    /// Things that are valid but probably not what was meant.
    pub warnings: Vec<String>,
}

/// Whether `name` is a Kubernetes DNS-1123 subdomain (resource names).
fn valid_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|label| valid_dns_label(label) && label.len() <= 63)
}

fn valid_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

const MATCH_KEYS: [(&str, &str); 3] = [
    ("_match_route_", "ingress"),
    ("_match_domain_", "domain"),
    ("_match_service_", "service"),
];

fn string_list(value: &Value, what: &str) -> Result<Vec<String>, DeployError> {
    let Some(items) = value.as_array() else {
        return err(format!("{what} must be an array of strings, got {value}"));
    };
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(s) => Ok(s.to_owned()),
            None => err(format!("{what} must be an array of strings, got {item}")),
        })
        .collect()
}

/// The `matchRules` entry for `_rules_[index]`.
fn match_rule(
    index: usize,
    rule: &Value,
    warnings: &mut Vec<String>,
) -> Result<MatchRule, DeployError> {
    let Some(rule) = rule.as_object() else {
        return err(format!("_rules_[{index}] must be an object, got {rule}"));
    };
    if rule.contains_key("_match_route_prefix_") {
        return err(format!(
            "_rules_[{index}]: _match_route_prefix_ cannot be expressed in a WasmPlugin: Higress \
             builds _rules_ from matchRules ingress/domain/service only, so a route prefix never \
             reaches the plugin. List the full route names in _match_route_ instead \
             (Higress route names are <namespace>/<ingress-name>)"
        ));
    }
    if let Some(unknown) = rule
        .keys()
        .find(|k| k.starts_with("_match_") && !MATCH_KEYS.iter().any(|(m, _)| m == k))
    {
        return err(format!(
            "_rules_[{index}]: unknown match key {unknown:?} (a WasmPlugin can express \
             _match_route_, _match_domain_ and _match_service_)"
        ));
    }
    let mut out = MatchRule {
        ingress: Vec::new(),
        domain: Vec::new(),
        service: Vec::new(),
        config: Map::new(),
        config_disable: false,
    };
    for (key, _) in MATCH_KEYS {
        let Some(value) = rule.get(key) else { continue };
        let list = string_list(value, &format!("_rules_[{index}].{key}"))?;
        if list.is_empty() {
            continue;
        }
        if key == "_match_route_" {
            for name in list.iter().filter(|n| !n.contains('/')) {
                warnings.push(format!(
                    "_rules_[{index}]: route {name:?} has no namespace: Higress route names are \
                     <namespace>/<ingress-name> (e.g. default/{name}), so this rule will never match"
                ));
            }
        }
        match key {
            "_match_route_" => out.ingress = list,
            "_match_domain_" => out.domain = list,
            _ => out.service = list,
        }
    }
    if out.ingress.is_empty() && out.domain.is_empty() && out.service.is_empty() {
        return err(format!(
            "_rules_[{index}] has no match condition: give it _match_route_, _match_domain_ or \
             _match_service_ (Higress rejects a match rule without one)"
        ));
    }
    out.config = rule
        .iter()
        .filter(|(k, _)| !k.starts_with("_match_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(out)
}

/// Builds the `WasmPlugin` (`extensions.higress.io/v1alpha1`) that makes
/// Higress hand the plugin exactly `config`: its top-level keys (except
/// `_rules_`) become `defaultConfig`, each `_rules_` entry a `matchRules`
/// entry.
///
/// Errors on input Higress would refuse or silently change: a non-object
/// config, a rule without a match key, `_match_route_prefix_` (not
/// expressible in a `WasmPlugin`), a bad name or URL.
pub fn wasm_plugin(
    spec: &WasmPluginSpec,
    config: &Value,
) -> Result<Rendered<WasmPlugin>, DeployError> {
    if !valid_resource_name(&spec.name) {
        return err(format!(
            "--name {:?} is not a valid resource name (lowercase letters, digits, '-' and '.')",
            spec.name
        ));
    }
    if !valid_resource_name(&spec.namespace) {
        return err(format!(
            "--namespace {:?} is not a valid namespace",
            spec.namespace
        ));
    }
    let schemes = ["oci://", "file://", "http://", "https://"];
    if !schemes.iter().any(|s| spec.url.starts_with(s)) || schemes.contains(&spec.url.as_str()) {
        return err(format!(
            "--url {:?} must start with oci://, file://, http:// or https://",
            spec.url
        ));
    }
    let Some(object) = config.as_object() else {
        return err(format!(
            "the plugin config must be a JSON object, got {config}"
        ));
    };
    let mut warnings = Vec::new();
    let default_config: Map<String, Value> = object
        .iter()
        .filter(|(k, _)| k.as_str() != "_rules_")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let rules = match object.get("_rules_") {
        None => Vec::new(),
        Some(Value::Array(rules)) => rules
            .iter()
            .enumerate()
            .map(|(i, rule)| match_rule(i, rule, &mut warnings))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return err(format!("_rules_ must be an array, got {other}")),
    };

    let resource = WasmPlugin {
        api_version: "extensions.higress.io/v1alpha1".into(),
        kind: "WasmPlugin".into(),
        metadata: ObjectMeta {
            name: spec.name.clone(),
            namespace: spec.namespace.clone(),
        },
        spec: WasmPluginBody {
            phase: spec.phase,
            priority: spec.priority,
            fail_strategy: spec.fail_strategy,
            url: spec.url.clone(),
            default_config_disable: false,
            default_config,
            match_rules: rules,
        },
    };

    let mut yaml = String::new();
    yaml.push_str(&format!(
        "# WasmPlugin {}/{}, generated by cargo higress deploy.\n",
        spec.namespace, spec.name
    ));
    yaml.push_str(
        "# Higress hands the plugin one JSON: defaultConfig as its top-level keys, and each\n",
    );
    yaml.push_str(
        "# matchRules entry as one _rules_ element (ingress -> _match_route_, domain ->\n",
    );
    yaml.push_str(
        "# _match_domain_, service -> _match_service_). The first matching rule wins, else\n",
    );
    yaml.push_str(
        "# defaultConfig. `ingress` entries are Higress route names: <namespace>/<ingress-name>.\n",
    );
    yaml.push_str(&format!(
        "# failStrategy {}: {}\n",
        spec.fail_strategy.as_str(),
        match spec.fail_strategy {
            FailStrategy::FailClose => {
                "if the plugin fails to load or crashes, requests get 503.\n\
                 #   After a panic that worker keeps answering 503 until the gateway pod restarts\n\
                 #   (kubectl rollout restart deployment/higress-gateway -n higress-system):\n\
                 #   Higress has no FAIL_RELOAD (plain Envoy does: cargo higress deploy --envoy)."
            }
            FailStrategy::FailOpen => {
                "if the plugin fails, requests pass WITHOUT it: check that it runs.\n\
                 #   After a panic that worker skips the plugin until the gateway pod restarts."
            }
        }
    ));
    for warning in &warnings {
        yaml.push_str(&format!("# WARNING: {warning}\n"));
    }
    yaml.push_str(&to_yaml(&resource)?);
    Ok(Rendered {
        resource,
        yaml,
        warnings,
    })
}

/// The plugin configuration Higress builds from a `WasmPlugin` (as JSON):
/// `defaultConfig` (unless `defaultConfigDisable`) as the top-level keys and
/// each `matchRules` entry without `configDisable: true` as a `_rules_`
/// element. The inverse of [`wasm_plugin`].
pub fn plugin_config(resource: &Value) -> Result<Value, DeployError> {
    let Some(spec) = resource.get("spec") else {
        return err("the resource has no spec");
    };
    let mut out = Map::new();
    let disabled = spec
        .get("defaultConfigDisable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !disabled {
        if let Some(default) = spec.get("defaultConfig").and_then(Value::as_object) {
            out.extend(default.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let mut rules = Vec::new();
    for (i, rule) in spec
        .get("matchRules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if rule.get("configDisable").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let mut converted = Map::new();
        if let Some(config) = rule.get("config").and_then(Value::as_object) {
            converted.extend(config.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut has_condition = false;
        for (key, field) in MATCH_KEYS {
            if let Some(list) = rule.get(field).and_then(Value::as_array) {
                if !list.is_empty() {
                    has_condition = true;
                    converted.insert(key.to_owned(), Value::Array(list.clone()));
                }
            }
        }
        if !has_condition {
            return err(format!("invalid match rule {i}: it has no match condition"));
        }
        rules.push(Value::Object(converted));
    }
    if !rules.is_empty() {
        out.insert("_rules_".into(), Value::Array(rules));
    }
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------
// McpBridge registries
// ---------------------------------------------------------------------------

/// A registry type that points at fixed backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryType {
    /// `static`: IPv4 addresses with ports.
    Static,
    /// `dns`: domain names resolved by the gateway.
    Dns,
}

/// One `McpBridge.spec.registries` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// `static` or `dns`.
    #[serde(rename = "type")]
    pub kind: RegistryType,
    /// Registry name.
    pub name: String,
    /// `ip:port[,ip:port]` (static) or `domain[,domain]` (dns).
    pub domain: String,
    /// Service port.
    pub port: u16,
    /// `HTTP`, `HTTPS`, `GRPC` or `GRPCS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// An `McpBridge` (`networking.higress.io/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McpBridge {
    /// `networking.higress.io/v1`.
    pub api_version: String,
    /// `McpBridge`.
    pub kind: String,
    /// Always `default` (the only one Higress reads) and a namespace.
    pub metadata: ObjectMeta,
    /// The registries.
    pub spec: McpBridgeBody,
}

/// `McpBridge.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpBridgeBody {
    /// The services.
    pub registries: Vec<Registry>,
}

impl McpBridge {
    /// The resource as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl RegistryType {
    /// The value in the resource, also the service's domain suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Dns => "dns",
        }
    }
}

/// One service the plugin calls, registered through the McpBridge.
///
/// Parsed from `NAME:static:IP[,IP...]:PORT[:PROTOCOL]` or
/// `NAME:dns:DOMAIN[,DOMAIN...]:PORT[:PROTOCOL]`, e.g.
/// `redis:static:127.0.0.1:6379` or `auth:dns:auth.example.com:443:https`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Registry name; the service is `<name>.<type>`.
    pub name: String,
    /// Registry type.
    pub kind: RegistryType,
    /// IPv4 addresses (static) or domains (dns).
    pub addresses: Vec<String>,
    /// Service port.
    pub port: u16,
    /// `HTTP`, `HTTPS`, `GRPC` or `GRPCS`, when given.
    pub protocol: Option<String>,
}

/// Higress's check for dns-registry domains:
/// `^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,6}$`.
fn higress_domain_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let Some((tld, rest)) = labels.split_last() else {
        return false;
    };
    !rest.is_empty()
        && (2..=6).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && rest.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl FromStr for ServiceSpec {
    type Err = DeployError;
    fn from_str(s: &str) -> Result<Self, DeployError> {
        let usage = "expected NAME:static:IP[,IP...]:PORT[:PROTOCOL] or \
                     NAME:dns:DOMAIN[,DOMAIN...]:PORT[:PROTOCOL]";
        let parts: Vec<&str> = s.split(':').collect();
        let (name, kind, addresses, port, protocol) = match parts.as_slice() {
            [name, kind, addresses, port] => (*name, *kind, *addresses, *port, None),
            [name, kind, addresses, port, protocol] => {
                (*name, *kind, *addresses, *port, Some(*protocol))
            }
            _ => return err(format!("--service {s:?}: {usage}")),
        };
        if !valid_dns_label(name) || name.len() > 63 {
            return err(format!(
                "--service {s:?}: name {name:?} must be a DNS label (lowercase letters, digits, '-')"
            ));
        }
        let kind = match kind {
            "static" => RegistryType::Static,
            "dns" => RegistryType::Dns,
            other => {
                return err(format!(
                    "--service {s:?}: type {other:?} is not static or dns (for nacos, consul, \
                     ... registries see the Higress McpBridge docs)"
                ))
            }
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| DeployError(format!("--service {s:?}: bad port {port:?}")))?;
        let addresses: Vec<String> = addresses.split(',').map(str::to_owned).collect();
        for address in &addresses {
            let ok = match kind {
                RegistryType::Static => address.parse::<Ipv4Addr>().is_ok(),
                RegistryType::Dns => higress_domain_ok(address),
            };
            if !ok {
                return err(match kind {
                    RegistryType::Static => format!(
                        "--service {s:?}: {address:?} is not an IPv4 address (Higress's static \
                         registry takes IPv4 ip:port endpoints only)"
                    ),
                    RegistryType::Dns => format!(
                        "--service {s:?}: {address:?} is not a domain Higress accepts (letters, \
                         digits and '-' labels, a 2-6 letter top-level domain)"
                    ),
                });
            }
        }
        let protocol = match protocol.map(str::to_ascii_uppercase) {
            None => None,
            Some(p) if matches!(p.as_str(), "HTTP" | "HTTPS" | "GRPC" | "GRPCS") => Some(p),
            Some(p) => {
                return err(format!(
                    "--service {s:?}: protocol {p:?} is not HTTP, HTTPS, GRPC or GRPCS"
                ))
            }
        };
        Ok(Self {
            name: name.to_owned(),
            kind,
            addresses,
            port,
            protocol,
        })
    }
}

impl ServiceSpec {
    /// The service's FQDN in Higress: `<name>.static` / `<name>.dns`.
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.name, self.kind.as_str())
    }

    /// The Envoy cluster name the plugin must call:
    /// `outbound|<port>||<name>.<type>`.
    pub fn cluster_name(&self) -> String {
        format!("outbound|{}||{}", self.port, self.fqdn())
    }

    /// How to name the service in plugin code with this SDK.
    pub fn sdk_cluster(&self) -> String {
        match self.kind {
            RegistryType::Static => format!("StaticIpCluster::new({:?}, {})", self.name, self.port),
            RegistryType::Dns => format!(
                "DnsCluster::new({:?}, {:?}, {})",
                self.name,
                self.addresses.first().map_or("", String::as_str),
                self.port
            ),
        }
    }

    /// The `spec.registries` entry.
    pub fn registry(&self) -> Registry {
        let domain = match self.kind {
            RegistryType::Static => self
                .addresses
                .iter()
                .map(|a| format!("{a}:{}", self.port))
                .collect::<Vec<_>>()
                .join(","),
            RegistryType::Dns => self.addresses.join(","),
        };
        Registry {
            kind: self.kind,
            name: self.name.clone(),
            domain,
            port: self.port,
            protocol: self.protocol.clone(),
        }
    }
}

/// The `McpBridge` (`networking.higress.io/v1`) registering `services`.
///
/// Higress reads only the McpBridge named `default` in its own namespace, so
/// that is the name used; the comments say to merge these registries into an
/// existing one rather than replace it.
pub fn mcp_bridge(
    namespace: &str,
    services: &[ServiceSpec],
) -> Result<Rendered<McpBridge>, DeployError> {
    if services.is_empty() {
        return err("no services given");
    }
    for (i, service) in services.iter().enumerate() {
        if services
            .iter()
            .skip(i + 1)
            .any(|other| other.name == service.name && other.kind == service.kind)
        {
            return err(format!("service {} is given twice", service.fqdn()));
        }
    }
    let resource = McpBridge {
        api_version: "networking.higress.io/v1".into(),
        kind: "McpBridge".into(),
        metadata: ObjectMeta {
            name: "default".into(),
            namespace: namespace.to_owned(),
        },
        spec: McpBridgeBody {
            registries: services.iter().map(ServiceSpec::registry).collect(),
        },
    };
    let width = services
        .iter()
        .map(|s| s.fqdn().len())
        .max()
        .unwrap_or_default();
    let mut yaml = String::new();
    yaml.push_str(
        "# McpBridge registries for the services the plugin calls, generated by cargo higress deploy.\n",
    );
    yaml.push_str(
        "# Higress reads only the McpBridge named `default` in its namespace, and applying this\n",
    );
    yaml.push_str("# file replaces its whole registries list: if one exists already\n");
    yaml.push_str(&format!(
        "# (kubectl get mcpbridge default -n {namespace} -o yaml), add these entries to it instead.\n"
    ));
    yaml.push_str(
        "# Do not edit host files inside the gateway container: the controller rewrites them.\n",
    );
    yaml.push_str("#\n# Cluster names the plugin must use (FQDN -> Envoy cluster -> in Rust):\n");
    for service in services {
        yaml.push_str(&format!(
            "#   {:<width$}  {}  {}\n",
            service.fqdn(),
            service.cluster_name(),
            service.sdk_cluster()
        ));
    }
    yaml.push_str(&to_yaml(&resource)?);
    Ok(Rendered {
        resource,
        yaml,
        warnings: Vec::new(),
    })
}

// ---------------------------------------------------------------------------
// A plain Envoy: the envoy.filters.http.wasm filter
// ---------------------------------------------------------------------------

/// Envoy's `failure_policy` for a Wasm plugin (1.33+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EnvoyFailurePolicy {
    /// `FAIL_RELOAD` (the default here): the VM is recreated on the next
    /// request after a panic (rate-limited by a backoff, 1 s base), so the
    /// plugin recovers; the requests in flight when it failed get 503.
    #[default]
    #[serde(rename = "FAIL_RELOAD")]
    FailReload,
    /// `FAIL_CLOSED` (Envoy's own default): after a panic every request on
    /// that worker gets 503 until Envoy restarts.
    #[serde(rename = "FAIL_CLOSED")]
    FailClosed,
    /// `FAIL_OPEN`: after a panic requests skip the plugin.
    #[serde(rename = "FAIL_OPEN")]
    FailOpen,
}

impl FromStr for EnvoyFailurePolicy {
    type Err = DeployError;
    fn from_str(s: &str) -> Result<Self, DeployError> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "FAIL_RELOAD" => Ok(Self::FailReload),
            "FAIL_CLOSED" | "FAIL_CLOSE" => Ok(Self::FailClosed),
            "FAIL_OPEN" => Ok(Self::FailOpen),
            _ => err(format!(
                "unknown failure policy {s:?}: use FAIL_RELOAD, FAIL_CLOSED or FAIL_OPEN"
            )),
        }
    }
}

/// One entry of an HTTP connection manager's `http_filters`: the plugin as
/// an `envoy.filters.http.wasm` filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvoyWasmFilter {
    /// `wasm.<plugin name>`.
    pub name: String,
    /// The `Wasm` filter config.
    pub typed_config: EnvoyWasm,
}

/// `envoy.extensions.filters.http.wasm.v3.Wasm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvoyWasm {
    /// The type URL.
    #[serde(rename = "@type")]
    pub type_url: String,
    /// The plugin.
    pub config: EnvoyPluginConfig,
}

/// `envoy.extensions.wasm.v3.PluginConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvoyPluginConfig {
    /// Plugin name (shows in the log lines).
    pub name: String,
    /// The plugin configuration as a `google.protobuf.StringValue`.
    pub configuration: EnvoyStringValue,
    /// After a VM failure.
    pub failure_policy: EnvoyFailurePolicy,
    /// Let a `Pause` from a headers hook still run the body callbacks.
    pub allow_on_headers_stop_iteration: bool,
    /// The VM.
    pub vm_config: EnvoyVmConfig,
}

/// `google.protobuf.StringValue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvoyStringValue {
    /// The type URL.
    #[serde(rename = "@type")]
    pub type_url: String,
    /// The plugin configuration string.
    pub value: String,
}

/// `envoy.extensions.wasm.v3.VmConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvoyVmConfig {
    /// `envoy.wasm.runtime.v8`.
    pub runtime: String,
    /// The module.
    pub code: EnvoyCode,
}

/// `AsyncDataSource` with a local file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvoyCode {
    /// The file.
    pub local: EnvoyLocalFile,
}

/// `DataSource.filename`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvoyLocalFile {
    /// Path of the `.wasm` on the Envoy host.
    pub filename: String,
}

/// The `envoy.filters.http.wasm` filter for plugin `name`, loading the module
/// at `wasm_path` with `config` (as compact JSON), under `policy`. Put it in
/// `http_filters` before the router.
pub fn envoy_filter(
    name: &str,
    wasm_path: &str,
    config: &Value,
    policy: EnvoyFailurePolicy,
) -> Result<Rendered<EnvoyWasmFilter>, DeployError> {
    if name.is_empty() {
        return err("the plugin name is empty");
    }
    let resource = EnvoyWasmFilter {
        name: format!("wasm.{name}"),
        typed_config: EnvoyWasm {
            type_url: "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm".into(),
            config: EnvoyPluginConfig {
                name: name.to_owned(),
                configuration: EnvoyStringValue {
                    type_url: "type.googleapis.com/google.protobuf.StringValue".into(),
                    value: config.to_string(),
                },
                failure_policy: policy,
                allow_on_headers_stop_iteration: false,
                vm_config: EnvoyVmConfig {
                    runtime: "envoy.wasm.runtime.v8".into(),
                    code: EnvoyCode {
                        local: EnvoyLocalFile {
                            filename: wasm_path.to_owned(),
                        },
                    },
                },
            },
        },
    };
    let mut yaml = String::new();
    yaml.push_str(&format!(
        "# envoy.filters.http.wasm filter for {name}, generated by cargo higress deploy --envoy.\n"
    ));
    yaml.push_str("# Add it to the HTTP connection manager's http_filters, before the router.\n");
    yaml.push_str(&format!(
        "# failure_policy {}: {}\n",
        match policy {
            EnvoyFailurePolicy::FailReload => "FAIL_RELOAD",
            EnvoyFailurePolicy::FailClosed => "FAIL_CLOSED",
            EnvoyFailurePolicy::FailOpen => "FAIL_OPEN",
        },
        match policy {
            EnvoyFailurePolicy::FailReload => {
                "after a plugin panic the VM is recreated on the next request (recommended)."
            }
            EnvoyFailurePolicy::FailClosed => {
                "after a plugin panic that worker answers 503 until Envoy restarts."
            }
            EnvoyFailurePolicy::FailOpen => {
                "after a plugin panic requests pass WITHOUT the plugin until Envoy restarts."
            }
        }
    ));
    yaml.push_str(&to_yaml(&[&resource])?);
    Ok(Rendered {
        resource,
        yaml,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use serde_json::json;

    #[test]
    fn ambiguous_strings_are_quoted() {
        for quoted in [
            "yes",
            "No",
            "on",
            "null",
            "~",
            "true",
            "1.0",
            "0x1F",
            "*.example.com",
        ] {
            let y = to_yaml(&[quoted]).unwrap();
            assert!(
                y.contains(&format!("'{quoted}'")) || y.contains(&format!("\"{quoted}\"")),
                "{quoted:?} -> {y}"
            );
        }
        assert_eq!(to_yaml(&["my-plugin"]).unwrap(), "- my-plugin\n");
    }

    #[test]
    fn envoy_filter_defaults_to_fail_reload() {
        let rendered = envoy_filter(
            "my-plugin",
            "/etc/envoy/my_plugin.wasm",
            &json!({"a": 1}),
            EnvoyFailurePolicy::default(),
        )
        .unwrap();
        let value = serde_json::to_value(&rendered.resource).unwrap();
        assert_eq!(
            value["typed_config"]["config"]["failure_policy"],
            "FAIL_RELOAD"
        );
        assert_eq!(
            value["typed_config"]["config"]["configuration"]["value"],
            r#"{"a":1}"#
        );
        assert!(rendered.yaml.contains("failure_policy: FAIL_RELOAD"));
        assert_eq!(
            "fail-closed".parse::<EnvoyFailurePolicy>().unwrap(),
            EnvoyFailurePolicy::FailClosed
        );
    }

    #[test]
    fn service_specs() {
        let s: ServiceSpec = "redis:static:127.0.0.1:6379".parse().unwrap();
        assert_eq!(s.cluster_name(), "outbound|6379||redis.static");
        assert_eq!(
            serde_json::to_value(s.registry()).unwrap(),
            json!({"type": "static", "name": "redis", "domain": "127.0.0.1:6379", "port": 6379})
        );
        let d: ServiceSpec = "auth:dns:auth.example.com:443:https".parse().unwrap();
        assert_eq!(d.cluster_name(), "outbound|443||auth.dns");
        assert_eq!(d.registry().protocol.as_deref(), Some("HTTPS"));
        let m: ServiceSpec = "r:static:10.0.0.1,10.0.0.2:6379".parse().unwrap();
        assert_eq!(m.registry().domain, "10.0.0.1:6379,10.0.0.2:6379");
        for bad in [
            "redis:static:localhost:6379",
            "redis:static:::1:6379",
            "Redis:static:1.2.3.4:6379",
            "redis:nacos:1.2.3.4:6379",
            "redis:static:1.2.3.4:0",
            "redis:dns:localhost:80",
            "redis:static:1.2.3.4:80:ftp",
            "redis",
        ] {
            assert!(bad.parse::<ServiceSpec>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn phases_and_strategies_parse() {
        assert_eq!("authn".parse::<Phase>().unwrap(), Phase::Authn);
        assert_eq!("UNSPECIFIED".parse::<Phase>().unwrap(), Phase::Unspecified);
        assert!("later".parse::<Phase>().is_err());
        assert_eq!(
            "fail-open".parse::<FailStrategy>().unwrap(),
            FailStrategy::FailOpen
        );
        assert_eq!(
            "FAIL_CLOSED".parse::<FailStrategy>().unwrap(),
            FailStrategy::FailClose
        );
    }
}
