//! `cargo higress deploy` for `examples/ai-load-balancer` with the configs of
//! Go's README, verbatim: the WasmPlugin's `defaultConfig` is each config
//! unchanged (read back with PyYAML), and the port's README shows exactly
//! that output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

use cargo_higress::deploy::plugin_config;
use common::pyyaml_one as pyyaml;
use higress_e2e::repo_root;
use serde_json::Value;

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-higress");
const URL: &str = "oci://registry.example.com/plugins/ai-load-balancer:1.0.0";

/// Go README (`README_EN.md`), "Global Least Request" example.
const GO_GLOBAL_LEAST_REQUEST: &str = "\
lb_type: endpoint
lb_policy: global_least_request
lb_config:
  serviceFQDN: redis.static
  servicePort: 6379
  username: default
  password: '123456'
";

/// Go README (`README_EN.md`), "Cross-service load balancing" example.
const GO_CLUSTER_METRICS: &str = "\
lb_type: cluster
lb_policy: cluster_metrics
lb_config:
  mode: LeastTotalLatency
  rate_limit: 0.6
  service_list:
  - outbound|80||test-1.dns
  - outbound|80||test-2.static
";

/// Go README (`README.md`, Chinese), the same example with `queue_size`
/// and comments.
const GO_CLUSTER_METRICS_ZH: &str = "\
lb_type: cluster
lb_policy: cluster_metrics
lb_config:
  mode: LeastTotalLatency # 策略名称
  queue_size: 100 # 统计指标时使用的最近请求数
  rate_limit: 0.6 # 单个服务承载的最大请求比例
  service_list:
  - outbound|80||test-1.dns
  - outbound|80||test-2.static
";

/// `cargo higress deploy` of `config`, its stdout.
fn deploy(config: &Value) -> String {
    let output = Command::new(TOOL)
        .args([
            "deploy",
            "--name",
            "ai-load-balancer",
            "--url",
            URL,
            "--config",
        ])
        .arg(config.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn go_readme_configs_are_the_wasm_plugins_default_config_unchanged() {
    for go_yaml in [
        GO_GLOBAL_LEAST_REQUEST,
        GO_CLUSTER_METRICS,
        GO_CLUSTER_METRICS_ZH,
    ] {
        let config = pyyaml(go_yaml);
        assert!(config.get("lb_config").is_some(), "{config}");
        let yaml = deploy(&config);
        let resource = pyyaml(&yaml);
        assert_eq!(resource["kind"], "WasmPlugin");
        assert_eq!(resource["metadata"]["name"], "ai-load-balancer");
        assert_eq!(resource["spec"]["url"], URL);
        assert_eq!(resource["spec"]["defaultConfig"], config, "{yaml}");
        assert!(resource["spec"].get("matchRules").is_none(), "{yaml}");
        // What Higress hands the plugin is the config again.
        assert_eq!(plugin_config(&resource).unwrap(), config);
    }
}

/// The port's README shows the WasmPlugin of each Go README example the
/// port runs, exactly as the tool writes it.
#[test]
fn the_ports_readme_shows_the_generated_wasm_plugins() {
    let readme =
        std::fs::read_to_string(repo_root().join("examples/ai-load-balancer/README.md")).unwrap();
    for go_yaml in [GO_GLOBAL_LEAST_REQUEST, GO_CLUSTER_METRICS] {
        let yaml = deploy(&pyyaml(go_yaml));
        assert!(
            readme.contains(&format!("```yaml\n{yaml}```")),
            "examples/ai-load-balancer/README.md lacks this output of cargo higress deploy:\n{yaml}"
        );
    }
}
