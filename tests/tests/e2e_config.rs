//! Bad configurations are refused when Envoy loads the plugin, with the
//! SDK's message (where the problem is, never the configured value) in
//! Envoy's log at error level under the plugin's prefix.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_common;

use std::time::Duration;

use e2e_common::{plugin_lines, probe, PROBE_PREFIX};
use higress_e2e::{ClusterSpec, EchoUpstream, FailurePolicy, Gateway, PluginSpec};

/// Starts Envoy with the probe configured with `configuration` (under
/// `policy`), expects it to refuse to start, and returns the plugin's
/// error lines and the whole log.
fn refused(name: &str, configuration: &str, policy: FailurePolicy) -> (Vec<String>, String) {
    let upstream = EchoUpstream::start().unwrap();
    let result = Gateway::builder()
        .name(name)
        .plugin(PluginSpec {
            failure_policy: policy,
            ..probe(configuration)
        })
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .ready_timeout(Duration::from_secs(15))
        .start();
    let log = match result {
        Ok(gateway) => panic!("Envoy accepted {configuration}:\n{}", gateway.logs()),
        Err(e) => e
            .envoy_log()
            .unwrap_or_else(|| panic!("not an Envoy start failure: {e}"))
            .to_owned(),
    };
    let lines: Vec<String> = plugin_lines(&log, "invalid plugin config")
        .into_iter()
        .filter(|l| l.contains("[error]"))
        .collect();
    assert!(!lines.is_empty(), "no error line from the plugin:\n{log}");
    for line in &lines {
        assert!(
            line.contains(&format!(
                "{PROBE_PREFIX} [nil] [nil] invalid plugin config: "
            )),
            "{line}"
        );
    }
    // And Envoy says why it stopped.
    assert!(
        log.contains("Unable to create Wasm plugin"),
        "Envoy did not report the refused plugin:\n{log}"
    );
    (lines, log)
}

#[test]
fn a_wrongly_typed_field_is_refused_with_its_path() {
    let (lines, _) = refused("bad-type", r#"{"tag": 42}"#, FailurePolicy::FailClosed);
    assert!(
        lines[0].contains("global config: tag: invalid type: integer `42`, expected a string"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_configured_string_value_never_reaches_the_log() {
    let (lines, log) = refused(
        "bad-secret",
        r#"{"tag": "t", "buffer_limit": "hunter2-secret"}"#,
        FailurePolicy::FailClosed,
    );
    assert!(
        lines[0].contains("buffer_limit: invalid type: string"),
        "{}",
        lines[0]
    );
    assert!(
        !log.contains("hunter2-secret"),
        "the value leaked into the log:\n{log}"
    );
}

#[test]
fn a_bad_rule_is_refused_naming_the_rule() {
    let config = r#"{"tag": "g", "_rules_": [
        {"_match_domain_": ["ok.example.com"], "tag": "fine"},
        {"_match_route_": ["r2"], "tag": ["not", "a", "string"]}
    ]}"#;
    let (lines, _) = refused("bad-rule", config, FailurePolicy::FailClosed);
    let line = &lines[0];
    assert!(line.contains("_rules_[1]"), "{line}");
    assert!(line.contains("tag: invalid type: sequence"), "{line}");
}

#[test]
fn unknown_fields_and_missing_fields_are_refused() {
    let (lines, _) = refused(
        "unknown-field",
        r#"{"tag": "t", "tga": "x"}"#,
        FailurePolicy::FailClosed,
    );
    assert!(lines[0].contains("unknown field `tga`"), "{}", lines[0]);
    let (lines, _) = refused(
        "missing-field",
        r#"{"buffer_limit": 5}"#,
        FailurePolicy::FailClosed,
    );
    assert!(lines[0].contains("missing field `tag`"), "{}", lines[0]);
}

#[test]
fn fail_open_does_not_rescue_a_bad_config() {
    // The failure policy applies to VMs that fail later, not to a config
    // the plugin refuses at load.
    let (lines, _) = refused("bad-json-open", r#"{"tag": "x""#, FailurePolicy::FailOpen);
    assert!(!lines.is_empty());
}
