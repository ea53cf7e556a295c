//! The import/export surface of built plugin modules.
//!
//! A module loads in stock Envoy only if every import is one Envoy provides
//! and it exports an ABI version Envoy knows (`proxy_abi_version_0_2_1`);
//! Higress-only imports such as `env.proxy_redis_init` make stock Envoy
//! refuse the module. Because cargo merges features across everything it
//! builds at once, [`build_workspace_modules`] builds the whole workspace the
//! way CI and users do, and the surface is checked on those modules.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::build::{repo_root, target_dir, WASM_TARGET};
use crate::error::{tail, Error, Result};

/// What one `.wasm` module imports and exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSurface {
    /// The module's file.
    pub path: PathBuf,
    /// Its file name without `.wasm` (the crate's lib name).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Imports as `(module, name)`, in module order.
    pub imports: Vec<(String, String)>,
    /// Export names, in module order.
    pub exports: Vec<String>,
}

impl ModuleSurface {
    /// Whether the module exports `name`.
    pub fn exports(&self, name: &str) -> bool {
        self.exports.iter().any(|e| e == name)
    }

    /// Whether the module imports `module.name`.
    pub fn imports(&self, module: &str, name: &str) -> bool {
        self.imports.iter().any(|(m, n)| m == module && n == name)
    }

    /// The ABI version Higress's host runs the module with: the FIRST
    /// `proxy_abi_version_*` export in the export section
    /// (higress-group/proxy-wasm-cpp-host `BytecodeUtil::getAbiVersion`).
    pub fn higress_abi(&self) -> Option<&str> {
        self.abi_versions().first().copied()
    }

    /// The ABI version stock Envoy 1.40 runs the module with: the first
    /// export among the versions it knows (0.1.0, 0.2.0, 0.2.1); it skips
    /// names it does not know, such as 0.2.100.
    pub fn envoy_abi(&self) -> Option<&str> {
        const KNOWN: [&str; 3] = [
            "proxy_abi_version_0_1_0",
            "proxy_abi_version_0_2_0",
            "proxy_abi_version_0_2_1",
        ];
        self.abi_versions().into_iter().find(|v| KNOWN.contains(v))
    }

    /// The `proxy_abi_version_*` exports, in export-section order.
    pub fn abi_versions(&self) -> Vec<&str> {
        self.exports
            .iter()
            .filter(|e| e.starts_with("proxy_abi_version_"))
            .map(String::as_str)
            .collect()
    }
}

/// Parses a module's import and export sections.
pub fn inspect_bytes(path: &Path, bytes: &[u8]) -> Result<ModuleSurface> {
    let bad = |e: wasmparser::BinaryReaderError| {
        Error::Protocol(format!(
            "{} is not a valid Wasm module: {e}",
            path.display()
        ))
    };
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.map_err(bad)? {
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(bad)?;
                    imports.push((import.module.to_owned(), import.name.to_owned()));
                }
            }
            wasmparser::Payload::ExportSection(reader) => {
                for export in reader {
                    exports.push(export.map_err(bad)?.name.to_owned());
                }
            }
            _ => {}
        }
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(ModuleSurface {
        path: path.to_path_buf(),
        name,
        size: bytes.len() as u64,
        imports,
        exports,
    })
}

/// Reads and parses the module at `path`.
pub fn inspect(path: &Path) -> Result<ModuleSurface> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    inspect_bytes(path, &bytes)
}

/// Builds every workspace plugin as users and CI do (`cargo build --release
/// --target wasm32-wasip1 --workspace`, without the host-only crates
/// `higress-e2e` and `cargo-higress`) and parses
/// each `cdylib` it produced, right after the build (a later `-p` build
/// could replace a file with a differently-featured one). Sorted by name.
pub fn build_workspace_modules() -> Result<Vec<ModuleSurface>> {
    let cargo = std::env::var_os("CARGO")
        .filter(|c| !c.is_empty())
        .map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let args = [
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "--workspace",
        "--exclude",
        "higress-e2e",
        "--exclude",
        "cargo-higress",
        "--exclude",
        "higress-wasm-host",
        "--message-format=json-render-diagnostics",
    ];
    let what = format!("{} {}", cargo.display(), args.join(" "));
    crate::build::ensure_wasm_target()?;
    let output = Command::new(&cargo)
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("could not run {what}"), e))?;
    if !output.status.success() {
        return Err(Error::Command {
            command: what,
            output: format!(
                "{}\n{}",
                output.status,
                tail(&String::from_utf8_lossy(&output.stderr), 60)
            ),
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut paths: Vec<PathBuf> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg.get("reason").and_then(|r| r.as_str()) == Some("compiler-artifact"))
        .filter_map(|msg| msg.get("filenames").and_then(|f| f.as_array()).cloned())
        .flatten()
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .filter(|f| f.extension().is_some_and(|e| e == "wasm"))
        .collect();
    if paths.is_empty() {
        // Fully fresh builds still report their artifacts, but be safe.
        let dir = target_dir().join(WASM_TARGET).join("release");
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        paths = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
    }
    paths.sort();
    paths.dedup();
    // As `cargo higress build` and the harness do after every build: put
    // ABI 0.2.100 first (see `abi_order`).
    paths
        .iter()
        .map(|p| {
            crate::abi_order::fix_module_file(p)?;
            inspect(p)
        })
        .collect()
}
