//! Higress deployment files from a plugin and its configuration: the
//! `WasmPlugin` resource and the `McpBridge` registries of the services the
//! plugin calls, as YAML (the `higress-deploy` binary).
//!
//! The plugin configuration is the JSON the plugin receives (what
//! `./scripts/run.sh` serves locally). Higress builds that JSON from a
//! `WasmPlugin`: `defaultConfig` becomes the top-level keys and each
//! `matchRules` entry becomes one element of `_rules_`, with `ingress`,
//! `domain` and `service` turned into `_match_route_`, `_match_domain_` and
//! `_match_service_`. [`wasm_plugin`] runs that conversion backwards and
//! [`plugin_config`] forwards, so a round trip can be checked.
//!
//! ```
//! use higress_e2e::deploy::{plugin_config, wasm_plugin, WasmPluginSpec};
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

use serde_json::{Map, Number, Value};

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

// ---------------------------------------------------------------------------
// A YAML tree with ordered keys, and its emitter
// ---------------------------------------------------------------------------

/// A JSON-like value whose maps keep their key order, for readable YAML
/// (`apiVersion`, `kind`, `metadata`, `spec` in that order).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A JSON number.
    Number(Number),
    /// A string (quoted in YAML whenever a plain scalar could be misread).
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in this key order.
    Map(Vec<(String, Node)>),
}

impl From<&Value> for Node {
    fn from(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => Self::Number(n.clone()),
            Value::String(s) => Self::String(s.clone()),
            Value::Array(items) => Self::Seq(items.iter().map(Self::from).collect()),
            Value::Object(map) => Self::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Self::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for Node {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl Node {
    /// A mapping from `(key, value)` pairs, in order.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Node)>) -> Self {
        Self::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A sequence of strings.
    pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        Self::Seq(
            items
                .into_iter()
                .map(|s| Self::String(s.as_ref().to_owned()))
                .collect(),
        )
    }

    /// The same value as JSON (key order is then serde_json's).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Number(n) => Value::Number(n.clone()),
            Self::String(s) => Value::String(s.clone()),
            Self::Seq(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            Self::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Self::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Block-style YAML for this value, ending with a newline.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        match self {
            Self::Map(entries) if !entries.is_empty() => write_map(entries, 0, &mut out),
            Self::Seq(items) if !items.is_empty() => write_seq(items, 0, &mut out),
            scalar => {
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
        out
    }
}

/// Block-style YAML for a JSON value (keys in serde_json's order).
pub fn to_yaml(value: &Value) -> String {
    Node::from(value).to_yaml()
}

/// A scalar, or an empty collection, on one line.
fn inline(node: &Node) -> String {
    match node {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Number(n) => yaml_number(n),
        Node::String(s) => yaml_string(s),
        Node::Seq(items) if items.is_empty() => "[]".into(),
        Node::Map(entries) if entries.is_empty() => "{}".into(),
        // Not reached for non-empty collections (they are written as blocks).
        Node::Seq(_) | Node::Map(_) => String::new(),
    }
}

fn is_block(node: &Node) -> bool {
    match node {
        Node::Seq(items) => !items.is_empty(),
        Node::Map(entries) => !entries.is_empty(),
        _ => false,
    }
}

fn write_map(entries: &[(String, Node)], indent: usize, out: &mut String) {
    for (key, value) in entries {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_string(key));
        out.push(':');
        match value {
            Node::Map(inner) if !inner.is_empty() => {
                out.push('\n');
                write_map(inner, indent + 2, out);
            }
            Node::Seq(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(items, indent + 2, out);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

fn write_seq(items: &[Node], indent: usize, out: &mut String) {
    for item in items {
        if is_block(item) {
            // Write the block two columns in, then put "- " over the
            // indentation of its first line.
            let mut block = String::new();
            match item {
                Node::Map(entries) => write_map(entries, indent + 2, &mut block),
                Node::Seq(inner) => write_seq(inner, indent + 2, &mut block),
                _ => {}
            }
            out.push_str(&" ".repeat(indent));
            out.push_str("- ");
            out.push_str(block.get(indent + 2..).unwrap_or_default());
        } else {
            out.push_str(&" ".repeat(indent));
            out.push_str("- ");
            out.push_str(&inline(item));
            out.push('\n');
        }
    }
}

/// Words a YAML 1.1 or 1.2 loader reads as something other than a string.
const RESERVED: &[&str] = &[
    "null", "true", "false", "yes", "no", "on", "off", "y", "n", "~",
];

/// Whether `s` can be written as a plain (unquoted) scalar and read back as
/// the same string by any YAML 1.1 or 1.2 loader. Deliberately narrow:
/// letters, digits and `_./-`, starting with a letter, `_` or `/`.
fn plain_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_' || first == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

/// `s` as a YAML scalar: plain when unambiguous, else double-quoted with
/// escapes for `"`, `\` and every character YAML does not allow printed
/// (controls, DEL, NEL, line/paragraph separators, BOM, non-characters).
pub fn yaml_string(s: &str) -> String {
    if plain_ok(s) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}'
                if !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') =>
            {
                out.push(c);
            }
            _ => {
                let code = u32::from(c);
                if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04X}"));
                } else {
                    out.push_str(&format!("\\U{code:08X}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// A JSON number as YAML that YAML 1.1 loaders (PyYAML) also read as a
/// number: floats always have a `.` and a signed exponent (`1.0e+20`).
fn yaml_number(n: &Number) -> String {
    let text = n.to_string();
    if n.is_i64() || n.is_u64() {
        return text;
    }
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m.to_owned(), Some(e.to_owned())),
        None => (text.clone(), None),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa
    } else {
        format!("{mantissa}.0")
    };
    match exponent {
        None => mantissa,
        Some(e) if e.starts_with(['+', '-']) => format!("{mantissa}e{e}"),
        Some(e) => format!("{mantissa}e+{e}"),
    }
}

// ---------------------------------------------------------------------------
// WasmPlugin
// ---------------------------------------------------------------------------

/// `spec.phase`: where in the filter chain the plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// `UNSPECIFIED_PHASE`: at the end of the chain, before the router.
    #[default]
    Unspecified,
    /// `AUTHN`: before Istio's authentication filters.
    Authn,
    /// `AUTHZ`: before Istio's authorization filters.
    Authz,
    /// `STATS`: before Istio's stats filters.
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

/// `spec.failStrategy`: what the gateway does when the plugin's VM fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailStrategy {
    /// `FAIL_CLOSE` (Higress's default): requests get 503 while the plugin
    /// is broken, so a broken plugin is noticed.
    #[default]
    FailClose,
    /// `FAIL_OPEN`: requests skip the broken plugin. Choose it only for
    /// plugins whose absence is harmless (logging, metrics).
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

/// A generated resource: the tree, its YAML (with explanatory comments) and
/// warnings for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The resource.
    pub resource: Node,
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
fn match_rule(index: usize, rule: &Value, warnings: &mut Vec<String>) -> Result<Node, DeployError> {
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
    let mut entries: Vec<(String, Node)> = Vec::new();
    for (key, field) in MATCH_KEYS {
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
        entries.push((field.to_owned(), Node::strings(&list)));
    }
    if entries.is_empty() {
        return err(format!(
            "_rules_[{index}] has no match condition: give it _match_route_, _match_domain_ or \
             _match_service_ (Higress rejects a match rule without one)"
        ));
    }
    let config: Vec<(String, Node)> = rule
        .iter()
        .filter(|(k, _)| !k.starts_with("_match_"))
        .map(|(k, v)| (k.clone(), Node::from(v)))
        .collect();
    entries.push(("config".into(), Node::Map(config)));
    entries.push(("configDisable".into(), Node::Bool(false)));
    Ok(Node::Map(entries))
}

/// Builds the `WasmPlugin` (`extensions.higress.io/v1alpha1`) that makes
/// Higress hand the plugin exactly `config`: its top-level keys (except
/// `_rules_`) become `defaultConfig`, each `_rules_` entry a `matchRules`
/// entry.
///
/// Errors on input Higress would refuse or silently change: a non-object
/// config, a rule without a match key, `_match_route_prefix_` (not
/// expressible in a `WasmPlugin`), a bad name or URL.
pub fn wasm_plugin(spec: &WasmPluginSpec, config: &Value) -> Result<Rendered, DeployError> {
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
    let default_config: Vec<(String, Node)> = object
        .iter()
        .filter(|(k, _)| k.as_str() != "_rules_")
        .map(|(k, v)| (k.clone(), Node::from(v)))
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

    let mut spec_entries = vec![
        ("phase".to_owned(), Node::from(spec.phase.as_str())),
        ("priority".to_owned(), Node::Number(spec.priority.into())),
        (
            "failStrategy".to_owned(),
            Node::from(spec.fail_strategy.as_str()),
        ),
        ("url".to_owned(), Node::String(spec.url.clone())),
        ("defaultConfigDisable".to_owned(), Node::Bool(false)),
        ("defaultConfig".to_owned(), Node::Map(default_config)),
    ];
    if !rules.is_empty() {
        spec_entries.push(("matchRules".to_owned(), Node::Seq(rules)));
    }
    let resource = Node::map([
        ("apiVersion", Node::from("extensions.higress.io/v1alpha1")),
        ("kind", Node::from("WasmPlugin")),
        (
            "metadata",
            Node::map([
                ("name", Node::String(spec.name.clone())),
                ("namespace", Node::String(spec.namespace.clone())),
            ]),
        ),
        ("spec", Node::Map(spec_entries)),
    ]);

    let mut yaml = String::new();
    yaml.push_str(&format!(
        "# WasmPlugin {}/{}, generated by higress-deploy.\n",
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
            FailStrategy::FailClose => "if the plugin fails to load or crashes, requests get 503.",
            FailStrategy::FailOpen => {
                "if the plugin fails, requests pass WITHOUT it: check that it runs."
            }
        }
    ));
    for warning in &warnings {
        yaml.push_str(&format!("# WARNING: {warning}\n"));
    }
    yaml.push_str(&resource.to_yaml());
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryType {
    /// `static`: IPv4 addresses with ports.
    Static,
    /// `dns`: domain names resolved by the gateway.
    Dns,
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
    pub fn registry(&self) -> Node {
        let domain = match self.kind {
            RegistryType::Static => self
                .addresses
                .iter()
                .map(|a| format!("{a}:{}", self.port))
                .collect::<Vec<_>>()
                .join(","),
            RegistryType::Dns => self.addresses.join(","),
        };
        let mut entries = vec![
            ("type".to_owned(), Node::from(self.kind.as_str())),
            ("name".to_owned(), Node::String(self.name.clone())),
            ("domain".to_owned(), Node::String(domain)),
            ("port".to_owned(), Node::Number(self.port.into())),
        ];
        if let Some(protocol) = &self.protocol {
            entries.push(("protocol".to_owned(), Node::String(protocol.clone())));
        }
        Node::Map(entries)
    }
}

/// The `McpBridge` (`networking.higress.io/v1`) registering `services`.
///
/// Higress reads only the McpBridge named `default` in its own namespace, so
/// that is the name used; the comments say to merge these registries into an
/// existing one rather than replace it.
pub fn mcp_bridge(namespace: &str, services: &[ServiceSpec]) -> Result<Rendered, DeployError> {
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
    let resource = Node::map([
        ("apiVersion", Node::from("networking.higress.io/v1")),
        ("kind", Node::from("McpBridge")),
        (
            "metadata",
            Node::map([
                ("name", Node::from("default")),
                ("namespace", Node::String(namespace.to_owned())),
            ]),
        ),
        (
            "spec",
            Node::map([(
                "registries",
                Node::Seq(services.iter().map(ServiceSpec::registry).collect()),
            )]),
        ),
    ]);
    let width = services
        .iter()
        .map(|s| s.fqdn().len())
        .max()
        .unwrap_or_default();
    let mut yaml = String::new();
    yaml.push_str(
        "# McpBridge registries for the services the plugin calls, generated by higress-deploy.\n",
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
    yaml.push_str(&resource.to_yaml());
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
    fn plain_scalars_only_when_unambiguous() {
        for plain in [
            "my-plugin",
            "higress-system",
            "UNSPECIFIED_PHASE",
            "default/foo",
            "_rules_",
            "a.b",
        ] {
            assert_eq!(yaml_string(plain), plain);
        }
        for quoted in [
            "",
            "yes",
            "No",
            "on",
            "null",
            "~",
            "true",
            "1.0",
            "0x1F",
            "1_000",
            "-x",
            ".inf",
            "*.example.com",
            "a: b",
            "a #b",
            "outbound|80||echo.static",
            "oci://r/ns/p:1.0",
            "@type",
            "x\ny",
            "with space",
            "日本",
            "1:20",
        ] {
            let y = yaml_string(quoted);
            assert!(y.starts_with('"') && y.ends_with('"'), "{quoted:?} -> {y}");
        }
        assert_eq!(yaml_string("a\"b\\c\nd\te"), r#""a\"b\\c\nd\te""#);
        assert_eq!(
            yaml_string("\u{7f}\u{85}\u{2028}\u{feff}\u{1}"),
            r#""\u007F\u0085\u2028\uFEFF\u0001""#
        );
        assert_eq!(yaml_string("日本 😀"), "\"日本 😀\"");
    }

    #[test]
    fn numbers_read_back_as_numbers_in_yaml_1_1() {
        let n = |v: Value| yaml_number(v.as_number().unwrap());
        assert_eq!(n(json!(42)), "42");
        assert_eq!(n(json!(-7)), "-7");
        assert_eq!(n(json!(1.5)), "1.5");
        assert_eq!(n(json!(1e20)), "1.0e+20");
        assert_eq!(n(json!(1.5e-7)), "1.5e-7");
    }

    #[test]
    fn block_layout() {
        let v = json!({"a": [1, {"b": 2, "c": [3, []]}, [4, 5]], "d": {}, "e": {"f": null}});
        assert_eq!(
            to_yaml(&v),
            "a:\n  - 1\n  - b: 2\n    c:\n      - 3\n      - []\n  - - 4\n    - 5\nd: {}\ne:\n  f: null\n"
        );
    }

    #[test]
    fn service_specs() {
        let s: ServiceSpec = "redis:static:127.0.0.1:6379".parse().unwrap();
        assert_eq!(s.cluster_name(), "outbound|6379||redis.static");
        assert_eq!(
            s.registry().to_json(),
            json!({"type": "static", "name": "redis", "domain": "127.0.0.1:6379", "port": 6379})
        );
        let d: ServiceSpec = "auth:dns:auth.example.com:443:https".parse().unwrap();
        assert_eq!(d.cluster_name(), "outbound|443||auth.dns");
        assert_eq!(d.registry().get("protocol"), Some(&Node::from("HTTPS")));
        let m: ServiceSpec = "r:static:10.0.0.1,10.0.0.2:6379".parse().unwrap();
        assert_eq!(
            m.registry().get("domain"),
            Some(&Node::from("10.0.0.1:6379,10.0.0.2:6379"))
        );
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
