//! `cargo higress deploy`: the WasmPlugin and McpBridge YAML generated from a
//! plugin config. Checks the exact output for a config with rules, the
//! errors for what a WasmPlugin cannot express, and that the YAML parses
//! back (with PyYAML, a real YAML parser) to the same JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

use cargo_higress::deploy::{
    mcp_bridge, plugin_config, to_yaml, wasm_plugin, FailStrategy, Phase, ServiceSpec,
    WasmPluginSpec,
};
use common::pyyaml_load;
use higress_e2e::repo_root;
use serde_json::{json, Value};

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-higress");

/// `cargo-higress deploy ...`.
fn deploy_command() -> Command {
    let mut command = Command::new(TOOL);
    command.arg("deploy");
    command
}

fn spec() -> WasmPluginSpec {
    WasmPluginSpec::new(
        "my-plugin",
        "oci://registry.example.com/plugins/my-plugin:1.0.0",
    )
}

fn rules_config() -> Value {
    json!({
        "some_field": "hello",
        "_rules_": [
            {"_match_route_": ["default/foo", "prod/bar"], "some_field": "for-routes"},
            {"_match_domain_": ["*.example.com", "api.example.com"], "some_field": "for-domains"},
            {"_match_service_": ["redis.static:6379", "outbound|80||echo.static"], "some_field": "for-services"},
            {"_match_route_": ["default/foo"], "_match_service_": ["echo.static"], "some_field": "both"}
        ]
    })
}

#[test]
fn wasm_plugin_with_routes_domains_and_services() {
    let mut spec = spec();
    spec.phase = Phase::Authn;
    spec.priority = 100;
    spec.fail_strategy = FailStrategy::FailOpen;
    let rendered = wasm_plugin(&spec, &rules_config()).unwrap();
    assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);
    let body = rendered
        .yaml
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        body,
        r#"apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata:
  name: my-plugin
  namespace: higress-system
spec:
  phase: AUTHN
  priority: 100
  failStrategy: FAIL_OPEN
  url: oci://registry.example.com/plugins/my-plugin:1.0.0
  defaultConfigDisable: false
  defaultConfig:
    some_field: hello
  matchRules:
    - ingress:
        - default/foo
        - prod/bar
      config:
        some_field: for-routes
      configDisable: false
    - domain:
        - "*.example.com"
        - api.example.com
      config:
        some_field: for-domains
      configDisable: false
    - service:
        - redis.static:6379
        - outbound|80||echo.static
      config:
        some_field: for-services
      configDisable: false
    - ingress:
        - default/foo
      service:
        - echo.static
      config:
        some_field: both
      configDisable: false"#
    );
    // The comments explain the mapping and the fail strategy.
    assert!(rendered
        .yaml
        .starts_with("# WasmPlugin higress-system/my-plugin"));
    assert!(rendered
        .yaml
        .contains("# failStrategy FAIL_OPEN: if the plugin fails, requests pass WITHOUT it"));
    assert!(rendered.yaml.contains("<namespace>/<ingress-name>"));

    // Higress's conversion of this resource gives back exactly the config.
    assert_eq!(
        plugin_config(&rendered.resource.to_json()).unwrap(),
        rules_config()
    );
}

#[test]
fn defaults_and_a_config_without_rules() {
    let rendered = wasm_plugin(&spec(), &json!({"some_field": "x"})).unwrap();
    let resource = rendered.resource.to_json();
    assert_eq!(
        resource["spec"],
        json!({
            "phase": "UNSPECIFIED_PHASE",
            "priority": 0,
            "failStrategy": "FAIL_CLOSE",
            "url": "oci://registry.example.com/plugins/my-plugin:1.0.0",
            "defaultConfigDisable": false,
            "defaultConfig": {"some_field": "x"},
        })
    );
    assert!(rendered.yaml.contains(
        "# failStrategy FAIL_CLOSE: if the plugin fails to load or crashes, requests get 503."
    ));
    // Rules only: an empty defaultConfig, and the round trip still holds.
    let rules_only = json!({"_rules_": [{"_match_domain_": ["a.com"], "some_field": "a"}]});
    let rendered = wasm_plugin(&spec(), &rules_only).unwrap();
    assert!(
        rendered.yaml.contains("  defaultConfig: {}\n"),
        "{}",
        rendered.yaml
    );
    assert_eq!(
        plugin_config(&rendered.resource.to_json()).unwrap(),
        rules_only
    );
    // The default FAIL_CLOSE says what a panic leads to on Higress, how to
    // recover, and where a reload policy exists.
    assert!(rendered.yaml.contains(
        "# failStrategy FAIL_CLOSE: if the plugin fails to load or crashes, requests get 503."
    ));
    assert!(rendered.yaml.contains("until the gateway pod restarts"));
    assert!(rendered.yaml.contains("kubectl rollout restart"));
    assert!(rendered
        .yaml
        .contains("Higress has no FAIL_RELOAD (plain Envoy does: cargo higress deploy --envoy)"));
}

#[test]
fn route_prefix_and_other_inexpressible_configs_are_errors() {
    let error = wasm_plugin(
        &spec(),
        &json!({"_rules_": [
            {"_match_domain_": ["a.com"], "x": 1},
            {"_match_route_prefix_": ["default/api-"], "x": 2}
        ]}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("_rules_[1]: _match_route_prefix_ cannot be expressed in a WasmPlugin"),
        "{error}"
    );
    assert!(error.contains("<namespace>/<ingress-name>"), "{error}");

    let cases = [
        (
            json!({"_rules_": [{"x": 1}]}),
            "_rules_[0] has no match condition",
        ),
        (
            json!({"_rules_": [{"_match_route_": [], "x": 1}]}),
            "_rules_[0] has no match condition",
        ),
        (
            json!({"_rules_": [{"_match_host_": ["a"]}]}),
            "unknown match key \"_match_host_\"",
        ),
        (
            json!({"_rules_": [{"_match_route_": "default/foo"}]}),
            "must be an array of strings",
        ),
        (json!({"_rules_": {}}), "_rules_ must be an array"),
        (json!(["not", "an", "object"]), "must be a JSON object"),
    ];
    for (config, expected) in cases {
        let error = wasm_plugin(&spec(), &config).unwrap_err().to_string();
        assert!(error.contains(expected), "{config}: {error}");
    }
    let mut bad = spec();
    bad.url = "registry.example.com/p:1".into();
    assert!(wasm_plugin(&bad, &json!({}))
        .unwrap_err()
        .to_string()
        .contains("--url"));
    let mut bad = spec();
    bad.name = "My_Plugin".into();
    assert!(wasm_plugin(&bad, &json!({}))
        .unwrap_err()
        .to_string()
        .contains("--name"));
}

#[test]
fn a_route_name_without_namespace_is_flagged() {
    let rendered = wasm_plugin(
        &spec(),
        &json!({"_rules_": [{"_match_route_": ["foo"], "x": 1}]}),
    )
    .unwrap();
    assert_eq!(rendered.warnings.len(), 1);
    assert!(rendered.warnings[0].contains("route \"foo\" has no namespace"));
    assert!(rendered
        .yaml
        .contains("# WARNING: _rules_[0]: route \"foo\" has no namespace"));
}

#[test]
fn mcp_bridge_registries_and_cluster_names() {
    let services: Vec<ServiceSpec> = [
        "redis:static:10.0.0.5:6379",
        "auth:dns:auth.example.com:443:https",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let rendered = mcp_bridge("higress-system", &services).unwrap();
    assert_eq!(
        rendered.resource.to_json(),
        json!({
            "apiVersion": "networking.higress.io/v1",
            "kind": "McpBridge",
            "metadata": {"name": "default", "namespace": "higress-system"},
            "spec": {"registries": [
                {"type": "static", "name": "redis", "domain": "10.0.0.5:6379", "port": 6379},
                {"type": "dns", "name": "auth", "domain": "auth.example.com", "port": 443, "protocol": "HTTPS"},
            ]},
        })
    );
    // The comment tells which cluster name the plugin must use.
    assert!(
        rendered.yaml.contains(
            "#   redis.static  outbound|6379||redis.static  StaticIpCluster::new(\"redis\", 6379)\n"
        ),
        "{}",
        rendered.yaml
    );
    assert!(rendered.yaml.contains(
        "#   auth.dns      outbound|443||auth.dns  DnsCluster::new(\"auth\", \"auth.example.com\", 443)\n"
    ));
    assert!(rendered.yaml.contains("add these entries to it instead"));
    assert!(rendered
        .yaml
        .contains("Do not edit host files inside the gateway container"));
    assert!(rendered.yaml.ends_with(
        "spec:\n  registries:\n    - type: static\n      name: redis\n      domain: 10.0.0.5:6379\n      port: 6379\n    - type: dns\n      name: auth\n      domain: auth.example.com\n      port: 443\n      protocol: HTTPS\n"
    ), "{}", rendered.yaml);
    let twice = vec![services[0].clone(), services[0].clone()];
    assert!(mcp_bridge("higress-system", &twice).is_err());
}

/// Strings that break naive YAML: `|`, `:`, `#`, a leading `*`, `&`, `!`,
/// `-`, `?`, `%`, `@`, quotes, backslashes, newlines, tabs, control
/// characters, YAML 1.1 booleans and numbers, unicode.
fn tricky_strings() -> Vec<&'static str> {
    vec![
        "outbound|6379||redis.static",
        "a: b",
        "key:",
        "# not a comment",
        "value # trailing",
        "*.example.com",
        "*",
        "&anchor",
        "!tag",
        "- item",
        "-",
        "? key",
        "%directive",
        "@at",
        "`backtick",
        "{braces}",
        "[brackets]",
        ">folded",
        "|literal",
        "'single'",
        "\"double\"",
        "back\\slash",
        "line1\nline2\n",
        "\ttab",
        "trailing space ",
        " leading space",
        "",
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "null",
        "~",
        "true",
        "1",
        "0o17",
        "0x1F",
        "1_000",
        "1e3",
        "1:20",
        ".inf",
        ".NaN",
        "2001-12-14",
        "=",
        "<<",
        "中文 配置",
        "emoji 😀",
        "\u{7f}\u{1}\u{1b}[31m",
        "\u{85}\u{2028}\u{2029}\u{feff}",
        "e\u{301}",
    ]
}

#[test]
fn yaml_quoting_survives_a_real_parser() {
    let strings = tricky_strings();
    let mut config = serde_json::Map::new();
    config.insert("values".into(), json!(strings));
    // The same strings as keys.
    let keyed: serde_json::Map<String, Value> = strings
        .iter()
        .enumerate()
        .map(|(i, s)| ((*s).to_owned(), json!(i)))
        .collect();
    config.insert("as_keys".into(), Value::Object(keyed));
    config.insert(
        "numbers".into(),
        json!([
            0,
            -1,
            42,
            u64::MAX,
            i64::MIN,
            1.5,
            -0.25,
            1e20,
            1.5e-7,
            123456.789
        ]),
    );
    config.insert(
        "others".into(),
        json!([true, false, null, [], {}, [[1, [2]], {"a": []}]]),
    );
    config.insert(
        "_rules_".into(),
        json!([{"_match_domain_": ["*.example.com", "*"], "some|field": "a: b # c"}]),
    );
    let config = Value::Object(config);

    let rendered = wasm_plugin(&spec(), &config).unwrap();
    let parsed = pyyaml_load(&rendered.yaml);
    assert_eq!(
        parsed,
        vec![rendered.resource.to_json()],
        "YAML:\n{}",
        rendered.yaml
    );
    // And Higress's conversion of what PyYAML read is the original config.
    assert_eq!(plugin_config(&parsed[0]).unwrap(), config);

    // The plain JSON -> YAML helper, on its own.
    let parsed = pyyaml_load(&to_yaml(&config).unwrap());
    assert_eq!(parsed, vec![config]);
}

#[test]
fn the_cli_writes_both_files_and_they_parse() {
    let out = std::env::temp_dir().join(format!("higress-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let config = repo_root()
        .join("examples")
        .join("my-plugin")
        .join("config.json");
    let output = deploy_command()
        .args([
            "--name",
            "my-plugin",
            "--config",
            config.to_str().unwrap(),
            "--url",
            "oci://registry.example.com/plugins/my-plugin:1.0.0",
            "--phase",
            "authz",
            "--priority",
            "10",
            "--service",
            "redis:static:127.0.0.1:6379",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("service redis.static -> cluster outbound|6379||redis.static"),
        "{stdout}"
    );
    assert!(stdout.contains("kubectl apply -f"), "{stdout}");
    let plugin_yaml = std::fs::read_to_string(out.join("my-plugin.wasmplugin.yaml")).unwrap();
    let bridge_yaml = std::fs::read_to_string(out.join("mcpbridge.yaml")).unwrap();
    let plugin = pyyaml_load(&plugin_yaml);
    assert_eq!(plugin[0]["spec"]["phase"], "AUTHZ");
    assert_eq!(plugin[0]["spec"]["priority"], 10);
    assert_eq!(
        plugin_config(&plugin[0]).unwrap(),
        json!({"some_field": "hello from my-plugin"})
    );
    let bridge = pyyaml_load(&bridge_yaml);
    assert_eq!(
        bridge[0]["spec"]["registries"][0]["domain"],
        "127.0.0.1:6379"
    );

    // Without --out: one stream, McpBridge first, then the WasmPlugin.
    let output = deploy_command()
        .args([
            "--name=my-plugin",
            r#"--config={"some_field":"x"}"#,
            "--url=file:///opt/plugins/my-plugin.wasm",
            "--service=auth:dns:auth.example.com:443",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let docs = pyyaml_load(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["kind"], "McpBridge");
    assert_eq!(docs[1]["kind"], "WasmPlugin");
    assert_eq!(docs[1]["spec"]["url"], "file:///opt/plugins/my-plugin.wasm");

    // A route prefix is refused with the reason, exit code 1.
    let output = deploy_command()
        .args([
            "--name=p",
            r#"--config={"_rules_":[{"_match_route_prefix_":["default/"],"a":1}]}"#,
            "--url=oci://r/p:1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("_match_route_prefix_ cannot be expressed in a WasmPlugin"));
    let _ = std::fs::remove_dir_all(&out);
}

// ---------------------------------------------------------------------------
// deploy --envoy: the filter loads in a real Envoy, with FAIL_RELOAD
// ---------------------------------------------------------------------------

#[test]
fn the_envoy_filter_it_writes_runs_in_envoy_with_fail_reload() {
    let wasm = higress_e2e::wasm_module("my-plugin").unwrap_or_else(|e| panic!("{e}"));
    let output = deploy_command()
        .args([
            "--envoy",
            "--name=my-plugin",
            r#"--config={"some_field":"from the generated filter"}"#,
        ])
        .arg(format!("--url=file://{}", wasm.display()))
        .output()
        .unwrap();
    let yaml = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{yaml}");
    assert!(
        yaml.contains("# failure_policy FAIL_RELOAD: after a plugin panic the VM is recreated"),
        "{yaml}"
    );
    let docs = pyyaml_load(&yaml);
    let filters = docs[0].as_array().unwrap().clone();
    assert_eq!(filters.len(), 1, "{yaml}");
    assert_eq!(
        filters[0]["typed_config"]["config"]["failure_policy"],
        "FAIL_RELOAD"
    );

    // Envoy with exactly that filter in front of the router.
    let upstream = higress_e2e::EchoUpstream::start().unwrap();
    let gateway = higress_e2e::Gateway::builder()
        .name("deploy-envoy-filter")
        .cluster(higress_e2e::ClusterSpec::new("echo", upstream.port()))
        .patch_bootstrap(move |bootstrap| {
            let http_filters = bootstrap
                .pointer_mut(
                    "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters",
                )
                .and_then(Value::as_array_mut)
                .unwrap();
            for (i, filter) in filters.into_iter().enumerate() {
                http_filters.insert(i, filter);
            }
        })
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let response = gateway.get("/", &[]).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        upstream
            .last_request()
            .and_then(|r| r.header_str("x-custom-header")),
        Some("from the generated filter".to_owned())
    );
    let dump = gateway.admin_get("/config_dump").unwrap().text();
    assert!(
        dump.contains("FAIL_RELOAD"),
        "config_dump lacks FAIL_RELOAD"
    );
}

#[test]
fn in_a_plugin_crate_the_name_and_config_come_from_it() {
    let output = deploy_command()
        .arg("--url=oci://registry.example.com/plugins/my-plugin:1.0.0")
        .current_dir(repo_root().join("examples").join("my-plugin"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs = pyyaml_load(&stdout);
    assert_eq!(docs[0]["metadata"]["name"], "my-plugin");
    assert_eq!(
        plugin_config(&docs[0]).unwrap(),
        json!({"some_field": "hello from my-plugin"})
    );
}
