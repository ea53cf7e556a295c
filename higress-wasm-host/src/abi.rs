//! What the host recognises in a module before running it: the ABI version
//! (first `proxy_abi_version_*` export wins, as `BytecodeUtil::getAbiVersion`)
//! and the imports it offers (a missing one fails the load eagerly, with
//! Envoy's message).

use crate::types::{AbiVersion, Properties};
use std::fmt;

/// Why a module cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    Io(String),
    /// The bytes are not a valid module (wasmtime's message).
    Invalid(String),
    /// No `proxy_abi_version_*` export this host knows.
    UnknownAbi,
    /// An import the host does not offer, as `module.name`.
    MissingImport(String),
    /// Neither `malloc` nor `proxy_on_memory_allocate` is exported.
    MissingMalloc,
    /// Instantiation failed (wasmtime's message, e.g. a type mismatch).
    Instantiate(String),
    /// Building a workspace package for `wasm32-wasip1` failed
    /// ([`PluginModule::workspace_package`](crate::PluginModule::workspace_package)):
    /// the command and its output.
    Build(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read the Wasm module: {e}"),
            LoadError::Invalid(e) => write!(f, "Failed to load Wasm code: {e}"),
            LoadError::UnknownAbi => f.write_str("Missing or unknown Proxy-Wasm ABI version"),
            LoadError::MissingImport(name) => write!(
                f,
                "Failed to load Wasm module due to a missing import: {name}"
            ),
            LoadError::MissingMalloc => f.write_str("Wasm module is missing malloc function."),
            LoadError::Instantiate(e) => write!(f, "Failed to create new Wasm instance: {e}"),
            LoadError::Build(e) => write!(f, "cannot build the Wasm module: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// The first ABI export the host knows, in export-section order. Stock
/// Envoy knows `0_2_0` and `0_2_1` (skipping any other name); Higress also
/// `0_2_100`. (`0_1_0` is known to both but not supported here: it is
/// reported as unknown.)
pub(crate) fn detect_abi(bytes: &[u8], mode: Properties) -> Result<AbiVersion, LoadError> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| LoadError::Invalid(e.to_string()))?;
        if let wasmparser::Payload::ExportSection(reader) = payload {
            for export in reader {
                let export = export.map_err(|e| LoadError::Invalid(e.to_string()))?;
                let abi = match export.name {
                    "proxy_abi_version_0_2_0" => Some(AbiVersion::V0_2_0),
                    "proxy_abi_version_0_2_1" => Some(AbiVersion::V0_2_1),
                    "proxy_abi_version_0_2_100" if mode == Properties::Higress => {
                        Some(AbiVersion::V0_2_100)
                    }
                    "proxy_abi_version_0_1_0" => return Err(LoadError::UnknownAbi),
                    _ => None,
                };
                if let Some(abi) = abi {
                    return Ok(abi);
                }
            }
            return Err(LoadError::UnknownAbi);
        }
    }
    Err(LoadError::UnknownAbi)
}

/// The `env` host calls every mode offers (upstream cpp-host, ABI 0.2.x).
pub(crate) const ENV_COMMON: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_send_local_response",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_get_buffer_status",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_current_time_nanoseconds",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_call_foreign_function",
];

/// The Higress-only `env` host calls.
pub(crate) const ENV_HIGRESS: &[&str] = &[
    "proxy_redis_init",
    "proxy_redis_call",
    "proxy_get_upstream_hosts",
    "proxy_set_upstream_override_host",
    "proxy_inject_encoded_data_to_filter_chain",
];

/// The WASI functions Envoy's host registers (both `wasi_snapshot_preview1`
/// and `wasi_unstable`).
pub(crate) const WASI: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_close",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "clock_res_get",
    "fd_advise",
    "fd_allocate",
    "fd_datasync",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_pwrite",
    "fd_readdir",
    "fd_renumber",
    "fd_sync",
    "fd_tell",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
    "random_get",
    "sched_yield",
    "poll_oneoff",
    "proc_exit",
    "path_open",
    "fd_prestat_get",
    "fd_prestat_dir_name",
];

/// Whether the host in `mode` offers import `module.name`.
pub(crate) fn offers(mode: Properties, module: &str, name: &str) -> bool {
    match module {
        "env" => {
            ENV_COMMON.contains(&name)
                || (mode == Properties::Higress && ENV_HIGRESS.contains(&name))
        }
        "wasi_snapshot_preview1" | "wasi_unstable" => WASI.contains(&name),
        _ => false,
    }
}

/// The first import the host does not offer, as `module.name`.
pub(crate) fn first_missing_import(module: &wasmtime::Module, mode: Properties) -> Option<String> {
    module
        .imports()
        .find(|i| {
            !matches!(i.ty(), wasmtime::ExternType::Func(_)) || !offers(mode, i.module(), i.name())
        })
        .map(|i| format!("{}.{}", i.module(), i.name()))
}

/// The imports of a module, `module.name`, in order (for tools).
pub(crate) fn imports_of(module: &wasmtime::Module) -> Vec<String> {
    module
        .imports()
        .map(|i| format!("{}.{}", i.module(), i.name()))
        .collect()
}
