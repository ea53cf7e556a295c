//! `cargo higress new PATH`: a plugin crate that builds, tests and runs.
//!
//! Like `cargo new`, it creates the directory and the crate in it, named
//! after the directory (or `--name`). The crate has:
//!
//! * `Cargo.toml`: a `cdylib` + `rlib` library, the SDK as a dependency that
//!   resolves (a path dependency to this checkout: the crates are not on
//!   crates.io yet), the test host and the Envoy harness as
//!   dev-dependencies, the release profile that makes small `.wasm` files,
//!   and an empty `[workspace]` so it is a workspace of its own wherever it
//!   is created;
//! * `src/lib.rs`: one hook that sets a request header from the config;
//! * `config.json`: the config the dev loop and the tests use;
//! * `tests/native.rs`: the plugin in the SDK's native test host;
//! * `tests/envoy.rs`: the plugin built to Wasm and run in a real Envoy;
//! * `README.md` with its two commands, `.gitignore`, and this checkout's
//!   `Cargo.lock` (so the new crate starts from the versions tested here).

use std::fmt;
use std::path::{Path, PathBuf};

/// How generated crates reach the SDK's native test host: the
/// dev-dependency line (`{sdk}` is replaced with the checkout's path) and the
/// `use` line of `tests/native.rs`. The one place to change if the test
/// host moves again (it was `higress-wrapper`'s `test-host` feature, and is
/// now the `higress-test-host` crate).
pub const TEST_HOST: TestHostTemplate = TestHostTemplate {
    dev_dependency: r#"higress-test-host = { path = "{sdk}/higress-test-host" }"#,
    use_line: "use higress_test_host::{Action, TestHost};",
};

/// See [`TEST_HOST`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestHostTemplate {
    /// The `[dev-dependencies]` line.
    pub dev_dependency: &'static str,
    /// The `use` line in `tests/native.rs`.
    pub use_line: &'static str,
}

/// What went wrong creating the crate.
#[derive(Debug)]
pub struct NewError(pub String);

impl fmt::Display for NewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NewError {}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOptions {
    /// The crate's directory (created; must not exist or be empty).
    pub path: PathBuf,
    /// Package name (default: the directory's name).
    pub name: Option<String>,
    /// The higress-wrapper checkout to depend on (default: the one this
    /// tool was built from).
    pub sdk: PathBuf,
}

/// Whether `name` is a package name cargo accepts: ASCII letters, digits,
/// `-` and `_`, not starting with a digit.
pub fn valid_package_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The files of a new crate named `name`, depending on the SDK checkout at
/// `sdk`, as (relative path, contents).
pub fn files(name: &str, sdk: &Path) -> Vec<(&'static str, String)> {
    let lib = name.replace('-', "_");
    let sdk = sdk.display().to_string();
    let fill = |template: &str| {
        template
            .replace("{name}", name)
            .replace("{lib}", &lib)
            .replace("{sdk}", &sdk)
            .replace("{test_host_dev_dependency}", TEST_HOST.dev_dependency)
            .replace("{test_host_use}", TEST_HOST.use_line)
            // TEST_HOST's own `{sdk}`, after it was spliced in.
            .replace("{sdk}", &sdk)
    };
    vec![
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("config.json", fill(CONFIG_JSON)),
        ("tests/native.rs", fill(NATIVE_RS)),
        ("tests/envoy.rs", fill(ENVOY_RS)),
        ("README.md", fill(README_MD)),
        (".gitignore", "/target\n".to_owned()),
    ]
}

/// Creates the crate; returns its package name.
pub fn create(options: &NewOptions) -> Result<String, NewError> {
    let path = &options.path;
    let name = match &options.name {
        Some(name) => name.clone(),
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| NewError(format!("cannot take a name from {}", path.display())))?,
    };
    if !valid_package_name(&name) {
        return Err(NewError(format!(
            "{name:?} is not a valid package name (ASCII letters, digits, '-' and '_', not \
             starting with a digit); pass --name"
        )));
    }
    let occupied = std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some());
    if occupied || path.is_file() {
        return Err(NewError(format!(
            "{} already exists and is not empty",
            path.display()
        )));
    }
    if !options
        .sdk
        .join("higress-wrapper")
        .join("Cargo.toml")
        .is_file()
    {
        return Err(NewError(format!(
            "{} is not a higress-wrapper checkout (no higress-wrapper/Cargo.toml); pass --sdk",
            options.sdk.display()
        )));
    }
    for (relative, contents) in files(&name, &options.sdk) {
        let file = path.join(relative);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| NewError(format!("creating {}: {e}", dir.display())))?;
        }
        std::fs::write(&file, contents)
            .map_err(|e| NewError(format!("writing {}: {e}", file.display())))?;
    }
    // Start from the versions this checkout is tested with; cargo drops
    // what the new crate does not use.
    let lock = options.sdk.join("Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, path.join("Cargo.lock"))
            .map_err(|e| NewError(format!("copying {}: {e}", lock.display())))?;
    }
    Ok(name)
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
# cdylib: the .wasm the gateway loads; rlib: so tests/ can run the plugin natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
# higress-wrapper is not on crates.io yet: this is a path dependency to the
# checkout `cargo higress new` came from ({sdk}).
higress-wrapper = { path = "{sdk}/higress-wrapper" }
serde = { version = "1", features = ["derive"] }
log = "0.4"

[dev-dependencies]
# The SDK's native test host (tests/native.rs).
{test_host_dev_dependency}
# The real-Envoy harness (tests/envoy.rs).
higress-e2e = { path = "{sdk}/tests" }

# Small .wasm files: V8 compiles the whole module before Envoy is ready;
# "s" is a few % larger for 2-3% fewer instructions per request
# (docs/benchmark.md in the SDK, "Release profile").
[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
strip = true
debug = false

# A workspace of its own, wherever it lives.
[workspace]
"#;

const LIB_RS: &str = r#"//! {name}: a Higress / Envoy plugin written with higress-wrapper.
//!
//! Config: `{"greeting": "<string>"}`. On request headers the plugin logs
//! `adding x-hello` and sets request header `x-hello` to the greeting.
use higress_wrapper::prelude::*;
use serde::Deserialize;

/// The plugin configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The value of the `x-hello` request header.
    pub greeting: String,
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    log::info!("adding x-hello");
    ctx.set_request_header("x-hello", &config.greeting);
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "{name}",
    // Public so that tests/native.rs can start it in the test host.
    plugin: pub Plugin,
    config: Config,
    on_request_headers: on_request_headers,
}
"#;

const CONFIG_JSON: &str = r#"{"greeting": "hello from {name}"}
"#;

const NATIVE_RS: &str = r#"//! {name} in the SDK's native test host: no Wasm, no Envoy, plain `cargo test`.
{test_host_use}
use {lib}::Plugin;

#[test]
fn sets_x_hello_from_the_config() {
    let host = match TestHost::start::<Plugin>(include_str!("../config.json")) {
        Ok(host) => host,
        Err(failure) => panic!("the plugin did not start: {failure:?}"),
    };
    let mut stream = host.http_stream();
    let action = stream.send_request_headers(&[(":method", "GET"), (":path", "/")], true);
    assert_eq!(action.ok(), Some(Action::Continue));
    assert_eq!(
        stream.upstream_request_header("x-hello").map(|v| v.to_string()),
        Some("hello from {name}".to_owned())
    );
}

#[test]
fn a_config_without_a_greeting_is_refused() {
    assert!(TestHost::start::<Plugin>("{}").is_err());
}
"#;

const ENVOY_RS: &str = r#"//! {name} built for wasm32-wasip1 and run in a real Envoy (installed on first use).
use higress_e2e::{wasm_module_in, ClusterSpec, EchoUpstream, Gateway, PluginSpec};

#[test]
fn the_upstream_gets_x_hello_through_envoy() -> higress_e2e::Result<()> {
    let wasm = wasm_module_in(env!("CARGO_MANIFEST_DIR"))?;
    let upstream = EchoUpstream::start()?;
    let gateway = Gateway::builder()
        .plugin(PluginSpec::new("{name}", wasm, include_str!("../config.json")))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .start()?;
    let response = gateway.get("/", &[])?;
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = upstream.last_request().map(|r| r.header_str("x-hello"));
    assert_eq!(seen, Some(Some("hello from {name}".to_owned())));
    Ok(())
}
"#;

const README_MD: &str = r#"# {name}

A Higress / Envoy gateway plugin written in Rust with
[higress-wrapper](file://{sdk}).

```sh
cargo higress dev    # build it, serve it through a local Envoy, show its logs; edit and save to reload
cargo test           # tests/native.rs (the SDK's test host) and tests/envoy.rs (a real Envoy)
```

`cargo higress build` gives `target/wasm32-wasip1/release/{lib}.wasm`
(`cargo build --release --target wasm32-wasip1`), and `cargo higress deploy`
the Higress `WasmPlugin` for it. `config.json` is the config the dev loop and
the tests use; `higress-dev.toml` (optional) adds routes and domains to the
dev gateway so `_rules_` can be tried.

## The SDK dependency

higress-wrapper is not published on crates.io yet. `Cargo.toml` depends on it
(and on its test host and Envoy harness) by **path**, on the checkout this
crate was created from: `{sdk}`. Move that checkout and the paths in
`Cargo.toml` must follow.
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn package_names() {
        for ok in ["my-plugin", "p", "_x", "a_b-c9"] {
            assert!(valid_package_name(ok), "{ok}");
        }
        for bad in ["", "9lives", "a b", "ü", "a.b", "-x"] {
            assert!(!valid_package_name(bad), "{bad}");
        }
    }

    #[test]
    fn templates_are_filled() {
        let files = files("hello-plugin", Path::new("/sdk"));
        for (path, text) in &files {
            assert!(!text.contains("{name}"), "{path}");
            assert!(!text.contains("{lib}"), "{path}");
            assert!(!text.contains("{sdk}"), "{path}");
            assert!(!text.contains("{test_host"), "{path}");
        }
        let cargo = &files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        assert!(cargo.contains(r#"higress-wrapper = { path = "/sdk/higress-wrapper" }"#));
        assert!(cargo.contains("/sdk/tests"));
        assert!(cargo.contains("[workspace]"));
        let native = &files
            .iter()
            .find(|(p, _)| *p == "tests/native.rs")
            .unwrap()
            .1;
        assert!(native.contains(TEST_HOST.use_line));
        assert!(native.contains("use hello_plugin::Plugin;"));
    }
}
