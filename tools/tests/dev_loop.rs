//! The dev loop (`./scripts/run.sh`, `cargo higress dev`): one round with
//! `--once`, `verify` against a started gateway, reload on change, survival
//! of a refused config, and no Envoy left behind when the loop is killed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime};

use cargo_higress::dev::{
    failed_start_report, find_package, load_config, send_sample, start_dev_gateway, verify,
    CheckStatus, ConfigArg, DevGatewaySpec, VerifyTarget, Watcher, DEV_CLUSTER, DEV_ROUTE,
};
use higress_e2e::{repo_root, wasm_module, ClusterSpec, EchoUpstream, Gateway};

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-higress");

/// `cargo-higress` run from the workspace root, as `./scripts/run.sh` does.
fn tool_command() -> Command {
    let mut command = Command::new(TOOL);
    command.current_dir(repo_root());
    command
}

/// `cargo-higress dev ...` from the workspace root.
fn dev_command() -> Command {
    let mut command = tool_command();
    command.arg("dev");
    command
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("higress-dev-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------
// --once
// ---------------------------------------------------------------------------

#[test]
fn once_shows_the_plugin_header_and_log_line() {
    let port = free_port();
    let output = dev_command()
        .args(["my-plugin", "--once", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "dev --once failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // Where the request went, and what the upstream saw.
    assert!(
        stdout.contains(&format!(
            "--> curl -i http://127.0.0.1:{port}/ -H 'x-user-id: alice'"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("<-- 200"), "{stdout}");
    assert!(
        stdout.contains("      x-custom-header: hello from my-plugin"),
        "the upstream did not get the plugin's header:\n{stdout}"
    );
    // The plugin's log lines, shortened to its messages.
    let request_line = stdout
        .lines()
        .find(|l| l.ends_with("] request received"))
        .unwrap_or_else(|| panic!("no `request received` line:\n{stdout}"));
    assert!(request_line.contains(" info  ["), "{request_line}");
    assert!(stdout.contains("] x-user-id: alice"), "{stdout}");
    // The checklist.
    for expected in [
        "[ok]   gateway up",
        "[ok]   plugin loaded: wasm filter \"my-plugin\"",
        "[ok]   Wasm VM:",
        "[ok]   plugin started: \"plugin started: 0 rule(s), with global config\"",
        "\"some_field\": \"hello from my-plugin\"",
        "default/echo  domains [*]  prefix /  -> cluster outbound|80||echo.static",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("[FAIL]"), "{stdout}");
    // Progress was shown, with timings.
    assert!(
        stdout.contains("==> building my-plugin for wasm32-wasip1 (release): done in "),
        "{stdout}"
    );
    assert!(stdout.contains(": ready in "), "{stdout}");
    // And the gateway is gone.
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port {port} still taken after --once"
    );
}

#[test]
fn once_with_a_refused_config_explains_why_and_fails() {
    let port = free_port();
    let output = dev_command()
        .args([
            "my-plugin",
            "--once",
            "--port",
            &port.to_string(),
            "--config",
            r#"{"some_field": 5}"#,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("==> Envoy refused the plugin"), "{stdout}");
    assert!(
        stdout.contains("invalid plugin config: global config: some_field: invalid type"),
        "the SDK's message is not shown:\n{stdout}"
    );
    assert!(
        stdout.contains("[FAIL] plugin loaded: no: invalid plugin config"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------
// verify, as a library call on gateways started here
// ---------------------------------------------------------------------------

fn my_plugin_gateway(
    configuration: &str,
    upstream: &EchoUpstream,
) -> cargo_higress::dev::DevGateway {
    let spec = DevGatewaySpec {
        plugin_name: "my-plugin".into(),
        wasm: wasm_module("my-plugin").unwrap_or_else(|e| panic!("{e}")),
        configuration: configuration.into(),
        port: free_port(),
        upstream_port: upstream.port(),
        ..DevGatewaySpec::default()
    };
    start_dev_gateway(&spec).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn verify_answers_the_four_questions() {
    let upstream = EchoUpstream::start().unwrap();
    let config = r#"{"some_field": "global",
        "_rules_": [
            {"_match_route_": ["default/echo"], "some_field": "by-route"},
            {"_match_route_": ["echo"], "some_field": "never"},
            {"_match_service_": ["redis.static:6379"], "some_field": "never"}
        ]}"#;
    let gateway = my_plugin_gateway(config, &upstream);
    assert!(gateway.envoy_pid().is_some(), "envoy pid not found");
    let exchange = send_sample(gateway.gateway().listener_addr(), &upstream).unwrap();
    assert_eq!(exchange.response.status, 200);
    assert_eq!(
        exchange
            .upstream
            .as_ref()
            .unwrap()
            .header_str("x-custom-header")
            .as_deref(),
        Some("by-route")
    );
    assert!(gateway
        .gateway()
        .wait_for_log("request received", Duration::from_secs(5)));

    let report = verify(&gateway.verify_target(), 5).unwrap();
    let text = report.to_string();
    assert!(report.passed(), "{text}");
    // Did it load?
    let loaded = report.check("plugin loaded").unwrap();
    assert_eq!(loaded.status, CheckStatus::Ok, "{text}");
    assert!(
        loaded.message.contains("failure_policy FAIL_CLOSED"),
        "{text}"
    );
    assert_eq!(
        report.check("Wasm VM").unwrap().status,
        CheckStatus::Ok,
        "{text}"
    );
    // With which config?
    assert_eq!(report.configuration.as_deref(), Some(config));
    assert!(text.contains("\"some_field\": \"by-route\""), "{text}");
    // Did it start?
    let started = report.check("plugin started").unwrap();
    assert!(
        started
            .message
            .contains("plugin started: 3 rule(s), with global config"),
        "{text}"
    );
    // Real route and cluster names, and rules that can never match here.
    assert_eq!(report.routes.len(), 1);
    assert_eq!(report.routes[0].name, DEV_ROUTE);
    assert_eq!(report.routes[0].cluster, DEV_CLUSTER);
    let warnings: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Warn)
        .map(|c| c.message.as_str())
        .collect();
    assert_eq!(warnings.len(), 2, "{text}");
    assert!(
        warnings[0].starts_with("_rules_[1]: _match_route_ \"echo\" is not a route"),
        "{text}"
    );
    assert!(
        warnings[1].starts_with("_rules_[2]: _match_service_ \"redis.static:6379\""),
        "{text}"
    );
    // What did it log last? Including which rule matched (debug level).
    let last: Vec<&str> = report
        .last_logs
        .iter()
        .map(|l| l.message.as_str())
        .collect();
    assert_eq!(last.len(), 5, "{text}");
    assert!(
        last.iter()
            .any(|m| m.starts_with("config matched _rules_[0]")),
        "{text}"
    );
    assert_eq!(last.last(), Some(&"x-user-id: alice"), "{text}");

    // The same through the binary, pointed at this Envoy's admin and log as
    // one would at a port-forwarded Higress gateway and its saved log.
    let admin = gateway.gateway().admin_addr().to_string();
    let log = gateway.gateway().log_path().to_str().unwrap().to_owned();
    let output = tool_command()
        .args(["verify", "my-plugin", "--admin", &admin, "--log", &log])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "==> checking plugin my-plugin on the Envoy with admin http://{admin}"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("[ok]   plugin started: \"plugin started: 3 rule(s)"),
        "{stdout}"
    );
    // Without the log, what needs it is a warning, not a failure.
    let output = tool_command()
        .args(["verify", "my-plugin", "--admin", &admin])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("[warn] plugin started: cannot tell, no log"),
        "{stdout}"
    );
    // Unnamed, at the workspace root: the workspace's dev package.
    let output = tool_command()
        .args(["verify", "--admin", &admin])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("==> checking plugin my-plugin on the Envoy with admin"),
        "{stdout}"
    );
}

#[test]
fn verify_fails_when_the_plugin_is_not_in_the_chain() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = Gateway::builder()
        .name("dev-no-plugin")
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .start()
        .unwrap();
    let target = VerifyTarget {
        admin: gateway.admin_addr(),
        log_path: gateway.log_path().to_path_buf(),
        plugin_name: "my-plugin".into(),
    };
    let report = verify(&target, 5).unwrap();
    let text = report.to_string();
    assert!(!report.passed(), "{text}");
    assert!(
        text.contains("[FAIL] plugin loaded: no wasm filter named \"my-plugin\" in config_dump"),
        "{text}"
    );
    assert!(
        text.contains("[FAIL] plugin started: no `plugin started` line"),
        "{text}"
    );
}

#[test]
fn a_refused_config_is_reported_with_the_sdk_message() {
    let upstream = EchoUpstream::start().unwrap();
    let spec = DevGatewaySpec {
        plugin_name: "my-plugin".into(),
        wasm: wasm_module("my-plugin").unwrap_or_else(|e| panic!("{e}")),
        configuration: r#"{"_rules_": [{"some_field": "x"}]}"#.into(),
        port: free_port(),
        upstream_port: upstream.port(),
        ..DevGatewaySpec::default()
    };
    let error = start_dev_gateway(&spec).unwrap_err();
    let report = failed_start_report("my-plugin", &error, 5);
    let text = report.to_string();
    assert!(!report.passed());
    assert!(
        text.contains("[FAIL] gateway up: Envoy did not start"),
        "{text}"
    );
    assert!(
        text.contains("[FAIL] plugin loaded: no: invalid plugin config: _rules_[0]"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// Watching
// ---------------------------------------------------------------------------

/// Sets a file's modification time explicitly, so the test does not depend
/// on the file system's timestamp granularity.
fn touch(path: &Path, seconds_from_now: u64) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(seconds_from_now))
        .unwrap();
}

#[test]
fn watcher_sees_edits_additions_and_removals_only() {
    let dir = temp_dir("watch");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("nested")).unwrap();
    std::fs::create_dir_all(src.join("target")).unwrap();
    std::fs::write(src.join("lib.rs"), "fn a() {}").unwrap();
    std::fs::write(src.join("nested").join("m.rs"), "").unwrap();
    std::fs::write(dir.join("Cargo.toml"), "[package]").unwrap();
    let config = dir.join("config.json");
    std::fs::write(&config, "{}").unwrap();

    let mut watcher = Watcher::new([
        src.clone(),
        dir.join("Cargo.toml"),
        config.clone(),
        dir.join("build.rs"),
    ]);
    assert_eq!(watcher.file_count(), 4);
    assert!(watcher.poll().is_empty(), "nothing changed yet");

    // An edit (same size, later mtime).
    std::fs::write(src.join("lib.rs"), "fn b() {}").unwrap();
    touch(&src.join("lib.rs"), 10);
    assert_eq!(watcher.poll(), vec![src.join("lib.rs")]);
    assert!(watcher.poll().is_empty(), "a change is reported once");

    // A new file deep in src/, a config edit, and a watched file appearing.
    std::fs::write(src.join("nested").join("new.rs"), "").unwrap();
    std::fs::write(&config, r#"{"a": 1}"#).unwrap();
    std::fs::write(dir.join("build.rs"), "fn main() {}").unwrap();
    assert_eq!(
        watcher.poll(),
        vec![
            dir.join("build.rs"),
            config.clone(),
            src.join("nested").join("new.rs")
        ]
    );

    // Removal.
    std::fs::remove_file(src.join("nested").join("m.rs")).unwrap();
    assert_eq!(watcher.poll(), vec![src.join("nested").join("m.rs")]);

    // Editor droppings, hidden files and target/ are ignored.
    std::fs::write(src.join(".lib.rs.swp"), "x").unwrap();
    std::fs::write(src.join("lib.rs~"), "x").unwrap();
    std::fs::write(src.join("#lib.rs#"), "x").unwrap();
    std::fs::write(src.join("target").join("out.rs"), "x").unwrap();
    assert!(watcher.poll().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn my_plugin_watch_list_and_default_config() {
    let package = find_package(Some(&repo_root().join("Cargo.toml")), Some("my-plugin")).unwrap();
    let dir = repo_root().join("examples").join("my-plugin");
    assert_eq!(package.lib_name, "my_plugin");
    assert_eq!(package.dir, dir);
    assert!(package.watch.contains(&dir.join("src")));
    assert!(package.watch.contains(&dir.join("Cargo.toml")));
    // The SDK is a path dependency: editing it rebuilds too.
    assert!(package
        .watch
        .contains(&repo_root().join("higress-wrapper").join("src")));

    let config = load_config(&package, &ConfigArg::Default).unwrap();
    assert_eq!(
        config.file.as_deref(),
        Some(dir.join("config.json").as_path())
    );
    let value: serde_json::Value = serde_json::from_str(&config.text).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"some_field": "hello from my-plugin"})
    );

    let err = find_package(
        Some(&repo_root().join("Cargo.toml")),
        Some("no-such-plugin"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("plugin packages:") && err.contains("my-plugin"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// The loop itself: reload, a refused reload, verify from outside, kill -9
// ---------------------------------------------------------------------------

/// The dev process with its stdout lines arriving on a channel.
struct DevProcess {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl DevProcess {
    fn spawn(args: &[&str]) -> Self {
        let mut child = dev_command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing {needle:?} within {timeout:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn custom_header_via(port: u16) -> String {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let response = higress_e2e::http_request(addr, "GET", "/", &[], b"").unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let echo = response.json().unwrap();
    echo["headers"]["x-custom-header"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// State of process `pid`: `None` once it is gone, `Some('Z')` for a zombie.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn the_loop_reloads_keeps_the_old_gateway_on_error_and_leaves_no_envoy() {
    let dir = temp_dir("loop");
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"some_field": "v1"}"#).unwrap();
    let port = free_port();
    let mut dev = DevProcess::spawn(&[
        "my-plugin",
        "--port",
        &port.to_string(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let long = Duration::from_secs(120);
    let short = Duration::from_secs(20);

    // Started: banner, curl hint, admin URL, then the sample request.
    dev.expect(
        &format!("my-plugin is running in Envoy on http://127.0.0.1:{port}"),
        long,
    );
    dev.expect(
        &format!("curl -i http://127.0.0.1:{port}/ -H 'x-user-id: alice'"),
        short,
    );
    dev.expect("admin:          http://127.0.0.1:", short);
    let pid_line = dev.expect("(envoy pid ", short);
    let envoy_pid: u32 = pid_line
        .rsplit_once("(envoy pid ")
        .unwrap()
        .1
        .trim_end_matches(')')
        .parse()
        .unwrap();
    dev.expect("watching examples/my-plugin/src", short);
    dev.expect("verify: ok: plugin loaded, Wasm VM active, started (\"plugin started: 0 rule(s), with global config\")", short);
    dev.expect("x-custom-header: v1", short);
    dev.expect("] request received", short);
    assert_eq!(custom_header_via(port), "v1");

    // `dev verify` from another process finds this gateway (by its port).
    let verify_out = tool_command()
        .args(["verify", "my-plugin", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let verify_text = String::from_utf8_lossy(&verify_out.stdout);
    assert!(verify_out.status.success(), "{verify_text}");
    assert!(
        verify_text.contains("==> checking the running dev gateway of my-plugin"),
        "{verify_text}"
    );
    assert!(
        verify_text.contains("\"some_field\": \"v1\""),
        "{verify_text}"
    );
    assert!(verify_text.contains("request received"), "{verify_text}");

    // A config change: reload on the same port.
    std::fs::write(&config, r#"{"some_field": "v2"}"#).unwrap();
    touch(&config, 5);
    dev.expect("==> changed: ", short);
    dev.expect("==> reloaded in ", short);
    dev.expect("x-custom-header: v2", short);
    assert_eq!(custom_header_via(port), "v2");

    // A config the plugin refuses: the error is shown, v2 keeps serving.
    std::fs::write(&config, r#"{"some_field": 42}"#).unwrap();
    touch(&config, 10);
    dev.expect("==> Envoy refused the plugin", short);
    dev.expect(
        "invalid plugin config: global config: some_field: invalid type",
        short,
    );
    dev.expect(
        "the previous version (module and config) is running again",
        short,
    );
    assert_eq!(custom_header_via(port), "v2");

    // Each reload replaced the first Envoy; it was stopped and reaped.
    assert_eq!(
        process_state(envoy_pid),
        None,
        "the first Envoy is still there"
    );

    // kill -9 the dev process: its watchdog stops Envoy, the port frees up.
    let _ = dev.child.kill();
    let _ = dev.child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cargo_higress::dev::port_is_free(port) {
        assert!(
            Instant::now() < deadline,
            "Envoy still listens on {port} after the dev process was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// Several routes and domains (higress-dev.toml), host semantics
// ---------------------------------------------------------------------------

#[test]
fn dev_file_routes_let_rules_match_by_route_domain_and_service() {
    let dir = temp_dir("routes");
    let dev_file = dir.join("higress-dev.toml");
    std::fs::write(
        &dev_file,
        r#"
        host = "envoy"
        allow_on_headers_stop_iteration = true
        failure_policy = "FAIL_CLOSED"

        [[route]]
        name = "default/api"
        domains = ["api.example.com"]
        prefix = "/api"
        service = "api.static"

        [[route]]
        name = "default/shop"
        domains = ["shop.example.com"]
        "#,
    )
    .unwrap();
    let package = find_package(Some(&repo_root().join("Cargo.toml")), Some("my-plugin")).unwrap();
    let options = cargo_higress::dev::DevOptions {
        dev_file: Some(dev_file),
        ..Default::default()
    };
    let setup = cargo_higress::dev::DevSetup::load(&package, &options).unwrap();
    assert_eq!(setup.routes.len(), 2);
    let config = cargo_higress::dev::PluginConfig {
        text: r#"{"some_field": "global", "_rules_": [
            {"_match_route_": ["default/api"], "some_field": "by-route"},
            {"_match_domain_": ["shop.example.com"], "some_field": "by-domain"},
            {"_match_service_": ["api.static"], "some_field": "never: the route rule comes first"}
        ]}"#
        .into(),
        file: None,
        origin: "test".into(),
    };
    let wasm = wasm_module("my-plugin").unwrap_or_else(|e| panic!("{e}"));
    let upstream = EchoUpstream::start().unwrap();
    let spec = cargo_higress::dev::dev_spec(
        &package,
        &setup,
        &wasm,
        &config,
        free_port(),
        upstream.port(),
    );
    // Forced on, although `host = "envoy"` alone would leave it off.
    assert!(spec.allow_on_headers_stop_iteration);
    let gateway = start_dev_gateway(&spec).unwrap_or_else(|e| panic!("{e}"));
    let listener = gateway.gateway().listener_addr();
    let header_for = |host: &str, path: &str| {
        let before = upstream.requests().len();
        let response =
            higress_e2e::http_request(listener, "GET", path, &[("host", host.as_bytes())], b"")
                .unwrap();
        assert_eq!(response.status, 200, "{host}{path}: {}", response.text());
        let seen = upstream
            .wait_for_requests(before + 1, Duration::from_secs(2))
            .and_then(|all| all.into_iter().nth(before))
            .unwrap();
        seen.header_str("x-custom-header").unwrap_or_default()
    };
    assert_eq!(header_for("api.example.com", "/api/users"), "by-route");
    assert_eq!(header_for("shop.example.com", "/"), "by-domain");
    // Another host: the catch-all route, so the global config.
    assert_eq!(header_for("localhost", "/"), "global");
    // As in Envoy and Higress, a domain with routes of its own is matched
    // against those only: no route for /other there.
    let other = higress_e2e::http_request(
        listener,
        "GET",
        "/other",
        &[("host", b"api.example.com")],
        b"",
    )
    .unwrap();
    assert_eq!(other.status, 404);

    // verify lists every route, and the policies reached Envoy.
    let report = verify(&gateway.verify_target(), 5).unwrap();
    let names: Vec<&str> = report.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["default/api", "default/shop", DEV_ROUTE],
        "{report}"
    );
    let dump = gateway.gateway().admin_get("/config_dump").unwrap().text();
    assert!(
        dump.contains("\"allow_on_headers_stop_iteration\": true"),
        "{dump}"
    );
    assert!(
        dump.contains("\"failure_policy\": \"FAIL_CLOSED\""),
        "{dump}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_request_a_hook_holds_is_reported_with_the_way_out() {
    let port = free_port();
    let mut dev = DevProcess::spawn(&[
        "e2e-probe",
        "--port",
        &port.to_string(),
        "--config",
        r#"{"tag": "stop"}"#,
        "--host",
        "envoy",
        "--no-sample",
    ]);
    dev.expect(
        &format!("e2e-probe is running in Envoy on http://127.0.0.1:{port}"),
        Duration::from_secs(180),
    );
    // The probe pauses in on_request_headers to read the body first; without
    // allow_on_headers_stop_iteration the body never comes.
    let client = std::thread::spawn(move || {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        higress_e2e::http_request_timeout(
            addr,
            "POST",
            "/echo-len",
            &[("x-probe-req-body", b"echo-len")],
            &vec![b'a'; 100_000],
            Duration::from_secs(8),
        )
    });
    let line = dev.expect("request(s) held for", Duration::from_secs(15));
    assert!(
        line.contains("1 not yet sent upstream") && line.contains("on_request_headers"),
        "{line}"
    );
    let hint = dev.expect(
        "allow_on_headers_stop_iteration is off here",
        Duration::from_secs(2),
    );
    assert!(
        hint.contains("run with --allow-on-headers-stop-iteration true"),
        "{hint}"
    );
    // The client gives up; the loop says the request is gone.
    assert!(client.join().unwrap().is_err(), "the request was answered");
    dev.expect(
        "==> the held request(s) have finished",
        Duration::from_secs(10),
    );
}
