//! Shared by the wasm-mode tests: builds the workspace's plugin modules for
//! `wasm32-wasip1` (release, as shipped, with the build tool's ABI order)
//! through the Envoy harness's builder, and compiles each once per test
//! binary.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_e2e::abi_order::edit_exports;
use higress_wasm_host::PluginModule;
use std::path::PathBuf;
use std::process::Command;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Workspace package `package` built for wasm32-wasip1 (release, ABI
/// 0.2.100 first, as `cargo higress build` makes it) and compiled, once
/// per test binary.
pub fn module(package: &str) -> PluginModule {
    PluginModule::workspace_package(package).unwrap_or_else(|e| panic!("{e}"))
}

/// `package`'s module with its ABI exports in the wrong order for Higress:
/// `proxy_abi_version_0_2_1` before `proxy_abi_version_0_2_100` (what a
/// plain `cargo build` may produce before the build tool's fix).
pub fn with_abi_1_first(package: &str) -> PluginModule {
    let bytes = std::fs::read(target_path(package)).unwrap();
    let edited = edit_exports(&bytes, |mut exports| {
        let at = exports
            .iter()
            .position(|e| e.name == "proxy_abi_version_0_2_100")
            .expect("a 0_2_100 export");
        let e100 = exports.remove(at);
        let at1 = exports
            .iter()
            .position(|e| e.name == "proxy_abi_version_0_2_1")
            .expect("a 0_2_1 export");
        exports.insert(at1 + 1, e100);
        exports
    })
    .unwrap();
    PluginModule::from_bytes(edited, package).unwrap()
}

/// `package`'s module exporting only `proxy_abi_version_0_2_100`.
pub fn with_only_abi_100(package: &str) -> PluginModule {
    let bytes = std::fs::read(target_path(package)).unwrap();
    let edited = edit_exports(&bytes, |exports| {
        exports
            .into_iter()
            .filter(|e| e.name != "proxy_abi_version_0_2_1")
            .collect()
    })
    .unwrap();
    PluginModule::from_bytes(edited, package).unwrap()
}

fn target_path(package: &str) -> PathBuf {
    higress_e2e::wasm_module(package)
        .unwrap_or_else(|e| panic!("building {package} for wasm32-wasip1: {e}"))
}

/// A real `redis-server` on a free loopback port, killed when dropped.
pub struct Redis {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    dir: PathBuf,
}

impl Redis {
    pub fn start(password: Option<&str>) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("wasm-host-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new("/usr/bin/redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        if let Some(p) = password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd.spawn().expect("start /usr/bin/redis-server");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let redis = Redis { child, addr, dir };
        // Ready when it answers PING (readiness, not timing: bounded tries).
        for _ in 0..200 {
            if let Ok(reply) = redis.try_command(password, &["PING"]) {
                if reply.starts_with(b"+PONG") || reply.starts_with(b"-NOAUTH") {
                    return redis;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("redis-server did not come up on {addr}");
    }

    fn try_command(&self, password: Option<&str>, args: &[&str]) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.addr)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        let mut wire = Vec::new();
        if let Some(p) = password {
            wire.extend_from_slice(&encode(&["AUTH", p]));
        }
        wire.extend_from_slice(&encode(args));
        s.write_all(&wire)?;
        s.shutdown(std::net::Shutdown::Write)?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        if password.is_some() {
            // Drop the AUTH reply line.
            let end = out.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
            out.drain(..end);
        }
        Ok(out)
    }

    /// Runs a command on a fresh connection; the raw reply.
    pub fn command(&self, password: Option<&str>, args: &[&str]) -> Vec<u8> {
        self.try_command(password, args).unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}
