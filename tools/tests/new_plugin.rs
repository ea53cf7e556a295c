//! What a new user does, end to end: from an empty directory outside this
//! workspace, `cargo higress new`, build the crate for wasm32-wasip1, run its
//! own `cargo test` (native test host and real Envoy), and serve it once with
//! `cargo higress dev --once` through a real Envoy, checking that the header
//! its hook sets reaches the upstream.
//!
//! The generated crate shares this workspace's target directory
//! (`CARGO_TARGET_DIR`), so the SDK and its dependencies are not compiled a
//! second time, and cargo runs offline (the new crate starts from this
//! checkout's `Cargo.lock`, whose crates are already downloaded).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use higress_e2e::{repo_root, target_dir};

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-higress");

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cargo-higress ARGS` in `dir`, with the shared target directory, offline.
fn tool(dir: &Path, args: &[&str]) -> Output {
    Command::new(TOOL)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {}\n---- stdout ----\n{}\n---- stderr ----\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn empty_dir_outside_the_workspace() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("higress-new-user-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    assert!(
        !dir.starts_with(repo_root()),
        "{} is inside the workspace",
        dir.display()
    );
    dir
}

#[test]
fn new_build_test_and_serve_a_plugin_outside_the_workspace() {
    let home = empty_dir_outside_the_workspace();

    // cargo higress new hello-plugin
    let output = tool(&home, &["new", "hello-plugin"]);
    assert!(output.status.success(), "{}", text(&output));
    let krate = home.join("hello-plugin");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "config.json",
        "tests/native.rs",
        "tests/envoy.rs",
        "README.md",
    ] {
        assert!(krate.join(file).is_file(), "new did not write {file}");
    }
    let readme = std::fs::read_to_string(krate.join("README.md")).unwrap();
    assert!(readme.contains("cargo higress dev"), "{readme}");
    assert!(readme.contains("cargo test"), "{readme}");
    assert!(
        readme.contains(&repo_root().display().to_string()),
        "the README does not say which checkout the path dependency points at:\n{readme}"
    );
    // A second `new` on the same path refuses.
    let again = tool(&home, &["new", "hello-plugin"]);
    assert!(!again.status.success(), "{}", text(&again));

    // cargo higress build: the .wasm for wasm32-wasip1.
    let output = tool(&krate, &["build"]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let wasm = target_dir()
        .join("wasm32-wasip1")
        .join("release")
        .join("hello_plugin.wasm");
    assert!(
        stdout.contains(&wasm.display().to_string()),
        "{}",
        text(&output)
    );
    let surface = higress_e2e::surface::inspect(&wasm).unwrap();
    assert!(surface.exports("proxy_on_request_headers"), "{surface:?}");

    // Its own tests: the native test host and a real Envoy.
    let output = tool(&krate, &["test"]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        all.contains("test sets_x_hello_from_the_config ... ok"),
        "{all}"
    );
    assert!(
        all.contains("test a_config_without_a_greeting_is_refused ... ok"),
        "{all}"
    );
    assert!(
        all.contains("test the_upstream_gets_x_hello_through_envoy ... ok"),
        "{all}"
    );

    // The dev loop, once, from the crate's directory.
    let port = free_port();
    let output = tool(&krate, &["dev", "--once", "--port", &port.to_string()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", text(&output));
    assert!(stdout.contains("<-- 200"), "{stdout}");
    assert!(
        stdout.contains("      x-hello: hello from hello-plugin"),
        "the upstream did not get the plugin's header:\n{stdout}"
    );
    assert!(stdout.contains("] adding x-hello"), "{stdout}");
    assert!(
        stdout.contains("[ok]   plugin loaded: wasm filter \"hello-plugin\""),
        "{stdout}"
    );
    assert!(!stdout.contains("[FAIL]"), "{stdout}");

    let _ = std::fs::remove_dir_all(&home);
}
