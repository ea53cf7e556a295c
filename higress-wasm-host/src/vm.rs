//! One VM: a wasmtime store and instance of the module, started the way
//! `WasmBase::startVm` does (`_initialize`, then `main`/`__main_void`, or
//! `_start`), with every callback metered in fuel and a trap failing the VM.

use crate::abi::{self, LoadError};
use crate::fuel::{CallbackWork, FUEL_PER_CALL};
use crate::state::{HostState, Phase};
use crate::types::{AbiVersion, LogLevel, LogRecord, Properties};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use wasmtime::{Config, Engine, Instance, Linker, Module, Store, Val};

/// A compiled plugin module, ready to be started any number of times (one
/// VM per [`TestHost`](crate::TestHost), as Envoy runs one per worker).
#[derive(Clone)]
pub struct PluginModule {
    pub(crate) engine: Engine,
    pub(crate) module: Module,
    pub(crate) bytes: Arc<Vec<u8>>,
    pub(crate) name: String,
}

impl std::fmt::Debug for PluginModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginModule")
            .field("name", &self.name)
            .field("size", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl PluginModule {
    /// Compiles the module at `path` (fuel metering on).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| LoadError::Io(format!("{}: {e}", path.display())))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_default();
        Self::from_bytes(bytes, name)
    }

    /// Compiles a module from its bytes; `name` is the default
    /// `plugin_name` property.
    pub fn from_bytes(bytes: Vec<u8>, name: impl Into<String>) -> Result<Self, LoadError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        // Fuel counts wasm operators, whatever the code generator does with
        // them (the same counts under both compilers, checked on my-plugin).
        // Winch, the baseline compiler, loads a 5 MB Go module about 5x
        // faster than Cranelift in a debug build of the host; set
        // HIGRESS_WASM_HOST_COMPILER=cranelift for the optimising one.
        let cranelift = std::env::var("HIGRESS_WASM_HOST_COMPILER").is_ok_and(|c| c == "cranelift");
        if cranelift {
            config.strategy(wasmtime::Strategy::Cranelift);
            config.cranelift_opt_level(wasmtime::OptLevel::None);
        } else {
            config.strategy(wasmtime::Strategy::Winch);
        }
        let engine = Engine::new(&config).map_err(|e| LoadError::Invalid(e.to_string()))?;
        let module =
            Module::new(&engine, &bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        Ok(PluginModule {
            engine,
            module,
            bytes: Arc::new(bytes),
            name: name.into(),
        })
    }

    /// Workspace package `package` built for `wasm32-wasip1` in release, as
    /// shipped (the build tool's order: ABI 0.2.100 first), and compiled:
    /// what the `both_modes!` tests of `higress_test_host` run in wasm
    /// mode. The build (`cargo build --release --target wasm32-wasip1 -p
    /// <package>`, through the Envoy harness's builder, into the
    /// workspace's target directory) and the compilation happen once per
    /// process and package; later calls clone the compiled module.
    pub fn workspace_package(package: &str) -> Result<Self, LoadError> {
        type Cache = Mutex<HashMap<String, Result<PluginModule, LoadError>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        // A test that failed while holding the lock leaves the cache whole.
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.get(package) {
            return cached.clone();
        }
        let built = higress_e2e::wasm_module(package)
            .map_err(|e| LoadError::Build(format!("{package}: {e}")))
            .and_then(|path| {
                let mut module = PluginModule::load(path)?;
                package.clone_into(&mut module.name);
                Ok(module)
            });
        cache.insert(package.to_owned(), built.clone());
        built
    }

    /// The ABI the host in `mode` would run this module with.
    pub fn abi(&self, mode: Properties) -> Result<AbiVersion, LoadError> {
        abi::detect_abi(&self.bytes, mode)
    }

    /// The module's imports, `module.name`, in order.
    pub fn imports(&self) -> Vec<String> {
        abi::imports_of(&self.module)
    }

    /// The module's exports, in export-section order.
    pub fn exports(&self) -> Vec<String> {
        self.module.exports().map(|e| e.name().to_owned()).collect()
    }
}

/// Why a callback did not complete (Envoy's `Function: X failed: ...`).
#[derive(Debug)]
pub(crate) struct Trap(#[allow(dead_code)] pub(crate) String);

/// A running instance.
pub(crate) struct Vm {
    pub(crate) store: Store<HostState>,
    instance: Instance,
}

impl Vm {
    /// Checks the imports, links, instantiates and runs the module's
    /// start functions (with host calls restricted, as Envoy).
    #[allow(clippy::result_large_err)] // hands the state back once, on a failed load
    pub(crate) fn instantiate(
        module: &PluginModule,
        mut state: HostState,
    ) -> Result<Vm, (LoadError, HostState)> {
        let mode = state.settings.mode;
        if let Some(missing) = abi::first_missing_import(&module.module, mode) {
            return Err((LoadError::MissingImport(missing), state));
        }
        let has = |n: &str| module.module.get_export(n).is_some();
        if !has("malloc") && !has("proxy_on_memory_allocate") {
            return Err((LoadError::MissingMalloc, state));
        }
        let mut linker = Linker::new(&module.engine);
        let linked = crate::imports::define(&mut linker, mode)
            .and_then(|_| crate::wasi::define(&mut linker, &module.module));
        if let Err(e) = linked {
            return Err((LoadError::Instantiate(format!("{e:#}")), state));
        }
        state.phase = Phase::Initialize;
        let mut store = Store::new(&module.engine, state);
        let _ = store.set_fuel(FUEL_PER_CALL);
        let instance = match linker.instantiate(&mut store, &module.module) {
            Ok(i) => i,
            Err(e) => return Err((LoadError::Instantiate(format!("{e:#}")), store.into_data())),
        };
        Ok(Vm { store, instance })
    }

    /// `_initialize` then `main(0, 0)` / `__main_void`, else `_start`.
    pub(crate) fn run_start(&mut self) -> Result<(), Trap> {
        if self.has_export("_initialize") {
            self.call("_initialize", None, None, &[])?;
            if self.has_export("main") {
                self.call("main", None, None, &[0, 0])?;
            } else if self.has_export("__main_void") {
                self.call("__main_void", None, None, &[])?;
            }
        } else if self.has_export("_start") {
            self.call("_start", None, None, &[])?;
        }
        self.store.data_mut().phase = Phase::Running;
        Ok(())
    }

    pub(crate) fn has_export(&mut self, name: &str) -> bool {
        self.instance.get_func(&mut self.store, name).is_some()
    }

    pub(crate) fn data(&self) -> &HostState {
        self.store.data()
    }

    pub(crate) fn data_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    /// Calls export `name` with `args` (as i32) on `context` (made the
    /// effective context), metering fuel and recording the host calls.
    /// A missing export is `Ok(None)` (Envoy skips callbacks a module does
    /// not export). A trap fails the VM and is returned.
    pub(crate) fn call(
        &mut self,
        name: &'static str,
        context: Option<u32>,
        stream: Option<u32>,
        args: &[i32],
    ) -> Result<Option<i32>, Trap> {
        if self.store.data().vm_failed {
            return Err(Trap("the VM has failed".to_owned()));
        }
        let Some(func) = self.instance.get_func(&mut self.store, name) else {
            return Ok(None);
        };
        let ty = func.ty(&self.store);
        let params: Vec<Val> = ty
            .params()
            .enumerate()
            .map(|(i, t)| {
                let v = args.get(i).copied().unwrap_or(0);
                match t {
                    wasmtime::ValType::I64 => Val::I64(i64::from(v as u32)),
                    _ => Val::I32(v),
                }
            })
            .collect();
        let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
        {
            let data = self.store.data_mut();
            if let Some(ctx) = context {
                data.effective = ctx;
            }
            data.hostcalls.clear();
        }
        let _ = self.store.set_fuel(FUEL_PER_CALL);
        let outcome = func.call(&mut self.store, &params, &mut results);
        let left = self.store.get_fuel().unwrap_or(0);
        let data = self.store.data_mut();
        let hostcalls = std::mem::take(&mut data.hostcalls);
        data.work.push(CallbackWork {
            callback: name,
            context_id: context.unwrap_or(0),
            stream,
            fuel: FUEL_PER_CALL.saturating_sub(left),
            hostcalls,
        });
        match outcome {
            Ok(()) => Ok(results.first().map(|v| match v {
                Val::I32(x) => *x,
                Val::I64(x) => *x as i32,
                _ => 0,
            })),
            Err(e) => {
                let message = format!("Function: {name} failed: {e:#}");
                data.vm_failed = true;
                data.failed_at_nanos = data.now_nanos;
                data.traps.push(message.clone());
                data.logs.push(LogRecord {
                    level: LogLevel::Critical,
                    message: message.clone(),
                });
                Err(Trap(message))
            }
        }
    }
}
