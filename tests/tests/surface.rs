//! The import/export surface of every plugin module, as built by a
//! whole-workspace `cargo build --release --target wasm32-wasip1` (cargo
//! merges features across the workspace, so this is what users and CI get).
//!
//! Each module must load in stock Envoy 1.40: it exports the ABI version
//! Envoy knows and the entry points it calls, and imports only the standard
//! proxy-wasm host functions and WASI. Higress-only imports (Redis) are
//! allowed only in plugins that use them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use higress_e2e::surface::{build_workspace_modules, ModuleSurface};

/// Modules that use Redis, and so may (and must) import Higress's
/// `proxy_redis_*` host calls. Stock Envoy refuses them at load.
const REDIS_USERS: &[&str] = &[
    "redis_plugin",
    "cluster_key_rate_limit",
    "ai_load_balancer",
    "ai_token_ratelimit",
    "e2e_hostcalls_higress",
];

/// Modules that pick upstream endpoints, and so may import Higress's
/// `proxy_get_upstream_hosts` / `proxy_set_upstream_override_host`.
const UPSTREAM_USERS: &[&str] = &["ai_load_balancer", "e2e_hostcalls_higress"];

/// Higress-only host calls (envoy.md §2.3).
const HIGRESS_ONLY: &[&str] = &[
    "proxy_redis_init",
    "proxy_redis_call",
    "proxy_inject_encoded_data_to_filter_chain",
    "proxy_set_upstream_override_host",
    "proxy_get_upstream_hosts",
];

/// Upper bound for `my_plugin.wasm` (decimal kilobytes).
const MY_PLUGIN_MAX_BYTES: u64 = 250_000;

fn modules() -> &'static [ModuleSurface] {
    static MODULES: OnceLock<Vec<ModuleSurface>> = OnceLock::new();
    MODULES.get_or_init(|| {
        let modules = build_workspace_modules().unwrap_or_else(|e| panic!("{e}"));
        eprintln!("module sizes (whole-workspace release build):");
        for m in &modules {
            eprintln!("  {:<24} {:>8} bytes", format!("{}.wasm", m.name), m.size);
        }
        modules
    })
}

fn module(name: &str) -> &'static ModuleSurface {
    modules()
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no {name}.wasm among {:?}", names()))
}

fn names() -> Vec<&'static str> {
    modules().iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn the_workspace_builds_the_expected_modules() {
    let names = names();
    for expected in ["my_plugin", "e2e_probe", "e2e_probe_raw"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

/// Modules built on raw proxy-wasm (the benchmark's twins), which declare
/// only ABI 0.2.1.
const RAW_PROXY_WASM: &[&str] = &[
    "e2e_probe_raw",
    "twin_fixed_raw",
    "twin_body_raw",
    "twin_body_raw_go_rule",
];

#[test]
fn every_sdk_module_runs_as_0_2_100_on_higress_and_0_2_1_on_envoy() {
    for m in modules() {
        if RAW_PROXY_WASM.contains(&m.name.as_str()) {
            assert_eq!(
                m.abi_versions(),
                vec!["proxy_abi_version_0_2_1"],
                "{}",
                m.name
            );
            continue;
        }
        assert_eq!(
            m.abi_versions(),
            vec!["proxy_abi_version_0_2_100", "proxy_abi_version_0_2_1"],
            "{}: ABI exports, in export-section order",
            m.name
        );
        assert_eq!(
            m.higress_abi(),
            Some("proxy_abi_version_0_2_100"),
            "{}",
            m.name
        );
        assert_eq!(m.envoy_abi(), Some("proxy_abi_version_0_2_1"), "{}", m.name);
    }
}

#[test]
fn every_module_exports_the_abi_stock_envoy_knows() {
    for m in modules() {
        assert_eq!(m.envoy_abi(), Some("proxy_abi_version_0_2_1"), "{}", m.name);
        for export in ["_initialize", "proxy_on_memory_allocate", "memory"] {
            assert!(m.exports(export), "{} does not export {export}", m.name);
        }
        // The callbacks Envoy calls for HTTP plugins.
        for export in [
            "proxy_on_context_create",
            "proxy_on_configure",
            "proxy_on_request_headers",
        ] {
            assert!(m.exports(export), "{} does not export {export}", m.name);
        }
    }
}

#[test]
fn every_module_imports_only_proxy_wasm_and_wasi() {
    for m in modules() {
        for (module, name) in &m.imports {
            match module.as_str() {
                "env" => assert!(
                    name.starts_with("proxy_"),
                    "{}: unexpected import env.{name}",
                    m.name
                ),
                "wasi_snapshot_preview1" => {}
                other => panic!("{}: import from module {other:?} ({name})", m.name),
            }
        }
        // Every SDK module logs (at least its start line); the raw
        // benchmark twins log only if their observable work does.
        if !RAW_PROXY_WASM.contains(&m.name.as_str()) {
            assert!(
                m.imports
                    .iter()
                    .any(|(module, name)| module == "env" && name == "proxy_log"),
                "{}: no proxy_log import (is this a plugin?)",
                m.name
            );
        }
    }
}

#[test]
fn higress_only_imports_appear_only_in_plugins_that_use_them() {
    for m in modules() {
        let higress_only: Vec<&str> = HIGRESS_ONLY
            .iter()
            .copied()
            .filter(|name| m.imports("env", name))
            .collect();
        let upstream = higress_only
            .iter()
            .any(|name| name.contains("upstream_hosts") || name.contains("override_host"));
        assert_eq!(
            upstream,
            UPSTREAM_USERS.contains(&m.name.as_str()),
            "{}: upstream-host imports {higress_only:?}",
            m.name
        );
        if REDIS_USERS.contains(&m.name.as_str()) {
            assert!(
                higress_only.contains(&"proxy_redis_init")
                    && higress_only.contains(&"proxy_redis_call"),
                "{} uses Redis but imports {higress_only:?}",
                m.name
            );
        } else {
            assert!(
                higress_only.is_empty(),
                "{} imports Higress-only host calls {higress_only:?}: stock Envoy would refuse it",
                m.name
            );
        }
    }
}

#[test]
fn the_raw_twin_is_the_smallest_plugin() {
    // probe-raw has no serde, no SDK: a floor for what the SDK costs in size.
    let raw = module("e2e_probe_raw");
    for m in modules() {
        if RAW_PROXY_WASM.contains(&m.name.as_str()) {
            // The other raw twins do less than my-plugin's twin.
            continue;
        }
        assert!(
            raw.size <= m.size,
            "{} ({} bytes) is smaller than the raw twin ({})",
            m.name,
            m.size,
            raw.size
        );
    }
}

#[test]
fn my_plugin_stays_within_its_size_budget() {
    let m = module("my_plugin");
    assert!(
        m.size <= MY_PLUGIN_MAX_BYTES,
        "my_plugin.wasm is {} bytes ({:.1} KB), over the {} KB budget",
        m.size,
        m.size as f64 / 1000.0,
        MY_PLUGIN_MAX_BYTES / 1000
    );
}
