//! [`TestHost`]: one VM of a compiled module with its root context, and its
//! builder. The method names follow the native test host's.

use crate::abi::LoadError;
use crate::fuel::CallbackWork;
use crate::shared::SharedState;
use crate::state::{ForeignFn, HostState, Settings, StreamState};
use crate::streams;
use crate::types::{
    AbiVersion, Callout, FailPolicy, LogLevel, LogRecord, MetricValue, Properties, RedisInit,
    StartFailure, StartStage,
};
use crate::vm::{PluginModule, Vm};
use crate::HttpStream;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The clock's default start: 2024-01-01T00:00:00Z (as the native host).
const DEFAULT_START_NANOS: u64 = 1_704_067_200_000_000_000;

/// One VM running a compiled plugin module, with its root context started.
pub struct TestHost {
    pub(crate) vm: RefCell<Vm>,
    module: PluginModule,
    config: Vec<u8>,
}

impl fmt::Debug for TestHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestHost")
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

impl TestHost {
    /// Starts `module` with configuration `config` (buffer 7) and the
    /// default settings (Higress, log level trace).
    pub fn start(
        module: &PluginModule,
        config: impl AsRef<[u8]>,
    ) -> Result<TestHost, StartFailure> {
        TestHost::builder().start(module, config)
    }

    /// Settings before starting.
    pub fn builder() -> TestHostBuilder {
        TestHostBuilder::default()
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&HostState) -> R) -> R {
        f(self.vm.borrow().data())
    }

    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Vm) -> R) -> R {
        f(&mut self.vm.borrow_mut())
    }

    /// The root context id.
    pub fn root_context_id(&self) -> u32 {
        self.read(|h| h.root)
    }

    /// The ABI the module runs with.
    pub fn abi(&self) -> AbiVersion {
        self.read(|h| h.abi)
    }

    /// A new HTTP stream (its context is created when its request headers
    /// arrive). If the VM failed under `FAIL_RELOAD` and the backoff passed,
    /// the VM is created anew first, as Envoy does for the next request.
    pub fn http_stream(&self) -> HttpStream<'_> {
        self.maybe_reload();
        let id = self.write(|vm| {
            let h = vm.data_mut();
            let root = h.root;
            let id = h.allocate_context(root);
            h.streams.insert(id, StreamState::default());
            id
        });
        HttpStream::new(self, id)
    }

    // ----- logs -----------------------------------------------------------------------------

    /// Every line logged at or above the host level, in order (host
    /// messages such as traps at `critical` included).
    pub fn logs(&self) -> Vec<LogRecord> {
        self.read(|h| h.logs.clone())
    }

    /// The lines containing `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<LogRecord> {
        self.read(|h| {
            h.logs
                .iter()
                .filter(|l| l.message.contains(needle))
                .cloned()
                .collect()
        })
    }

    /// The lines logged at exactly `level`.
    pub fn logs_at(&self, level: LogLevel) -> Vec<LogRecord> {
        self.read(|h| {
            h.logs
                .iter()
                .filter(|l| l.level == level)
                .cloned()
                .collect()
        })
    }

    /// Forgets the lines logged so far.
    pub fn clear_logs(&self) {
        self.write(|vm| vm.data_mut().logs.clear());
    }

    /// What the module wrote to stdout (info) and stderr (error) via WASI.
    pub fn stdio(&self) -> Vec<LogRecord> {
        self.read(|h| h.stdio.clone())
    }

    /// How many `proxy_log` calls were below the host level.
    pub fn suppressed_log_count(&self) -> usize {
        self.read(|h| h.suppressed_logs)
    }

    /// The host's log level.
    pub fn log_level(&self) -> LogLevel {
        self.read(|h| h.settings.log_level)
    }

    /// Changes the host's log level.
    pub fn set_log_level(&self, level: LogLevel) {
        self.write(|vm| vm.data_mut().settings.log_level = level);
    }

    // ----- time -----------------------------------------------------------------------------

    /// The host clock.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.read(|h| h.now_nanos))
    }

    /// The tick period the plugin set.
    pub fn tick_period(&self) -> Option<Duration> {
        self.read(|h| {
            (h.tick_period_ms > 0).then(|| Duration::from_millis(u64::from(h.tick_period_ms)))
        })
    }

    /// Delivers one `proxy_on_tick` now.
    pub fn tick(&self) {
        self.write(|vm| {
            let root = vm.data().root;
            if !vm.data().vm_failed {
                let _ = vm.call("proxy_on_tick", Some(root), None, &[root as i32]);
                streams::drain(vm);
            }
        });
    }

    /// Moves the clock by `by`, delivering a tick at each period boundary
    /// crossed (the clock reads that instant during the tick), then times
    /// out the callouts past their deadline that the test answers by hand
    /// (HTTP: Envoy's local `504 upstream request timeout`; Redis:
    /// `NetworkError` after the client's timeout).
    pub fn advance_time(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.write(|vm| {
            let end = vm.data().now_nanos.saturating_add(by);
            loop {
                let h = vm.data_mut();
                let due = h.next_tick_nanos.filter(|t| *t <= end && !h.vm_failed);
                let Some(at) = due else { break };
                h.now_nanos = at;
                let period = u64::from(h.tick_period_ms).saturating_mul(1_000_000);
                h.next_tick_nanos = (period > 0).then(|| at.saturating_add(period));
                let root = h.root;
                let _ = vm.call("proxy_on_tick", Some(root), None, &[root as i32]);
                streams::drain(vm);
            }
            vm.data_mut().now_nanos = end;
            crate::callouts::expire(vm);
        });
    }

    // ----- failure --------------------------------------------------------------------------

    /// Whether the VM failed (a trap).
    pub fn vm_failed(&self) -> bool {
        self.read(|h| h.vm_failed)
    }

    /// The traps so far, Envoy's `Function: X failed: ...` text.
    pub fn traps(&self) -> Vec<String> {
        self.read(|h| h.traps.clone())
    }

    /// How many times the VM was created anew (`FAIL_RELOAD`).
    pub fn reload_count(&self) -> u32 {
        self.read(|h| h.vm_generation)
    }

    fn maybe_reload(&self) {
        let due = self.read(|h| {
            h.vm_failed
                && h.settings.fail_policy == FailPolicy::Reload
                && h.now_nanos
                    >= h.failed_at_nanos.saturating_add(
                        u64::try_from(h.settings.reload_backoff.as_nanos()).unwrap_or(u64::MAX),
                    )
        });
        if !due {
            return;
        }
        let mut vm = self.vm.borrow_mut();
        // The records move to a fresh instance; the failed one is dropped.
        let old = vm.data_mut();
        let mut state = HostState::new(old.settings.clone(), old.abi, old.shared.clone());
        carry_over(old, &mut state);
        state.vm_generation = old.vm_generation + 1;
        for c in &mut state.callouts {
            if c.state == crate::types::CalloutState::Pending {
                c.state = crate::types::CalloutState::Dropped;
            }
        }
        match start_vm(&self.module, state, &self.config, true) {
            Ok(new) => *vm = new,
            Err((_, mut state)) => {
                // Still failed: keep the records, back off again.
                let old = vm.data_mut();
                carry_over(&mut state, old);
                old.failed_at_nanos = old.now_nanos;
            }
        }
    }

    // ----- what the plugin did --------------------------------------------------------------

    /// Every callout the plugin made.
    pub fn callouts(&self) -> Vec<Callout> {
        self.read(|h| h.callouts.clone())
    }

    /// Callouts not answered yet.
    pub fn pending_callouts(&self) -> Vec<Callout> {
        self.read(|h| {
            h.callouts
                .iter()
                .filter(|c| c.state == crate::types::CalloutState::Pending)
                .cloned()
                .collect()
        })
    }

    /// Every `proxy_redis_init` the plugin made.
    pub fn redis_inits(&self) -> Vec<RedisInit> {
        self.read(|h| h.redis_inits.clone())
    }

    /// The handle on the process-wide state (shared data, queues,
    /// metrics); pass it to another host's builder to model a second
    /// worker.
    pub fn shared_state(&self) -> SharedState {
        self.read(|h| h.shared.clone())
    }

    /// A metric by name.
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        self.read(|h| h.shared.metric(name))
    }

    /// Every metric by name.
    pub fn metrics(&self) -> BTreeMap<String, MetricValue> {
        self.read(|h| h.shared.metrics())
    }

    /// A shared-data value (of this host's `vm_id`).
    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.read(|h| h.shared.shared_data(&h.settings.vm_id, key))
    }

    /// Sets a shared-data value (of this host's `vm_id`), as another worker
    /// of the VM would (CAS 0: always written, the CAS moves on).
    pub fn set_shared_data(&self, key: &str, value: impl AsRef<[u8]>) {
        self.read(|h| {
            let _ = h
                .shared
                .set_data(&h.settings.vm_id, key, value.as_ref().to_vec(), 0);
        });
    }

    // ----- work -----------------------------------------------------------------------------

    /// Every callback made so far with its fuel and host calls.
    pub fn work(&self) -> Vec<CallbackWork> {
        self.read(|h| h.work.clone())
    }

    /// Forgets the work recorded so far (e.g. after start).
    pub fn clear_work(&self) {
        self.write(|vm| vm.data_mut().work.clear());
    }

    /// Fuel of every callback that served stream `context_id` (its own
    /// callbacks and the callout replies it waited for).
    pub fn fuel_of_stream(&self, context_id: u32) -> u64 {
        self.read(|h| {
            h.work
                .iter()
                .filter(|w| w.stream == Some(context_id))
                .map(|w| w.fuel)
                .sum()
        })
    }

    /// What keeps the host from being idle, `None` when it is: streams
    /// left paused, callouts not answered (as the native host's).
    pub fn idle_report(&self) -> Option<String> {
        let problems = self.read(|h| {
            let mut out = Vec::new();
            for (id, s) in &h.streams {
                if !s.created || s.done || s.failed || s.reset || s.bypass {
                    continue;
                }
                if s.request_open() && s.req.paused() {
                    out.push(format!("stream {id}: the request is paused"));
                }
                if s.resp.paused() {
                    out.push(format!("stream {id}: the response is paused"));
                }
            }
            for c in &h.callouts {
                if c.state == crate::types::CalloutState::Pending {
                    out.push(format!("callout {} was never answered", c.token));
                }
            }
            out
        });
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    /// Asserts no stream is left paused and no callout unanswered.
    ///
    /// # Panics
    /// With what is left, if anything.
    #[track_caller]
    #[allow(clippy::panic)] // an assertion: failing the test is its job
    pub fn assert_idle(&self) {
        if let Some(report) = self.idle_report() {
            panic!("the wasm host is not idle: {report}");
        }
    }

    /// Runs `proxy_on_configure` again with a new configuration.
    pub fn reconfigure(&self, config: impl AsRef<[u8]>) -> Result<(), Vec<LogRecord>> {
        let config = config.as_ref().to_vec();
        let ok = self.write(|vm| {
            let root = vm.data().root;
            let size = config.len() as i32;
            let h = vm.data_mut();
            h.plugin_config = config;
            h.configuring = true;
            let r = vm.call("proxy_on_configure", Some(root), None, &[root as i32, size]);
            vm.data_mut().configuring = false;
            streams::drain(vm);
            matches!(r, Ok(Some(v)) if v != 0) || matches!(r, Ok(None))
        });
        if ok {
            Ok(())
        } else {
            Err(self.logs())
        }
    }
}

/// Moves what outlives a VM (records, streams, the clock) between states.
fn carry_over(from: &mut HostState, to: &mut HostState) {
    use std::mem::take;
    to.logs = take(&mut from.logs);
    to.stdio = take(&mut from.stdio);
    to.suppressed_logs = from.suppressed_logs;
    to.work = take(&mut from.work);
    to.callouts = take(&mut from.callouts);
    to.streams = take(&mut from.streams);
    to.contexts = take(&mut from.contexts);
    to.next_context = from.next_context;
    to.next_token = from.next_token;
    to.root = from.root;
    to.now_nanos = from.now_nanos;
    to.traps = take(&mut from.traps);
    to.redis_inits = take(&mut from.redis_inits);
    to.random_state = from.random_state;
    to.host_uid = from.host_uid;
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let vm = self.vm.get_mut();
        if vm.data().vm_failed {
            return;
        }
        let live: Vec<u32> = vm
            .data()
            .streams
            .iter()
            .filter(|(_, s)| s.created && !s.deleted)
            .map(|(id, _)| *id)
            .collect();
        for id in live {
            let _ = vm.call("proxy_on_delete", Some(id), Some(id), &[id as i32]);
        }
        let root = vm.data().root;
        let _ = vm.call("proxy_on_done", Some(root), None, &[root as i32]);
        let _ = vm.call("proxy_on_delete", Some(root), None, &[root as i32]);
    }
}

/// Instantiates and starts a VM: start functions, root context, VM start,
/// configure. On failure returns the stage with the state (logs kept).
#[allow(clippy::result_large_err)] // hands the state back once, on a failed start
fn start_vm(
    module: &PluginModule,
    state: HostState,
    config: &[u8],
    reload: bool,
) -> Result<Vm, (StartStage, HostState)> {
    let mut vm = match Vm::instantiate(module, state) {
        Ok(vm) => vm,
        Err((e, mut state)) => {
            state.logs.push(LogRecord {
                level: LogLevel::Critical,
                message: e.to_string(),
            });
            return Err((StartStage::Load, state));
        }
    };
    if vm.run_start().is_err() {
        return Err((StartStage::Initialize, vm.store.into_data()));
    }
    let root = {
        let h = vm.data_mut();
        if !reload {
            h.root = h.allocate_context(0);
        }
        h.plugin_config = config.to_vec();
        h.root
    };
    let _ = vm.call(
        "proxy_on_context_create",
        Some(root),
        None,
        &[root as i32, 0],
    );
    let vm_size = vm.data().settings.vm_configuration.len() as i32;
    vm.data_mut().vm_starting = true;
    let started = vm.call(
        "proxy_on_vm_start",
        Some(root),
        None,
        &[root as i32, vm_size],
    );
    vm.data_mut().vm_starting = false;
    if !matches!(started, Ok(Some(v)) if v != 0) && !matches!(started, Ok(None)) {
        return Err((StartStage::VmStart, vm.store.into_data()));
    }
    vm.data_mut().configuring = true;
    let size = config.len() as i32;
    let configured = vm.call("proxy_on_configure", Some(root), None, &[root as i32, size]);
    vm.data_mut().configuring = false;
    if !matches!(configured, Ok(Some(v)) if v != 0) && !matches!(configured, Ok(None)) {
        return Err((StartStage::Configure, vm.store.into_data()));
    }
    streams::drain(&mut vm);
    Ok(vm)
}

/// Settings of a [`TestHost`], then [`start`](TestHostBuilder::start).
#[must_use]
pub struct TestHostBuilder {
    settings: Settings,
    plugin_name: Option<String>,
    shared: Option<SharedState>,
}

impl fmt::Debug for TestHostBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestHostBuilder")
            .field("mode", &self.settings.mode)
            .field("log_level", &self.settings.log_level)
            .field("fail_policy", &self.settings.fail_policy)
            .finish_non_exhaustive()
    }
}

impl Default for TestHostBuilder {
    fn default() -> Self {
        TestHostBuilder {
            settings: Settings {
                mode: Properties::Higress,
                log_level: LogLevel::Trace,
                allow_on_headers_stop_iteration: false,
                plugin_name: String::new(),
                root_id: String::new(),
                vm_id: String::new(),
                vm_configuration: Vec::new(),
                host_properties: BTreeMap::new(),
                start_time_nanos: DEFAULT_START_NANOS,
                clusters: None,
                foreign_functions: BTreeMap::new(),
                redis_servers: BTreeMap::new(),
                http_servers: BTreeMap::new(),
                upstream_hosts: Vec::new(),
                fail_policy: FailPolicy::Closed,
                reload_backoff: Duration::from_secs(1),
                env: Vec::new(),
                wasi_real_time: false,
            },
            plugin_name: None,
            shared: None,
        }
    }
}

impl TestHostBuilder {
    /// Which host to model (default [`Properties::Higress`]): its import
    /// set, ABI versions and properties.
    pub fn properties(mut self, properties: Properties) -> Self {
        self.settings.mode = properties;
        self
    }

    /// The host log level (default trace).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.settings.log_level = level;
        self
    }

    /// Higress running the module, as the native host's `higress()`:
    /// Higress's host calls and properties, and the module's first ABI
    /// export decides the semantics (an SDK module built by `cargo higress
    /// build` exports 0.2.100 first: header statuses pass through, so a
    /// `Pause` from a headers callback keeps the body callbacks running).
    /// This is the default.
    pub fn higress(self) -> Self {
        self.properties(Properties::Higress)
    }

    /// Stock Envoy running the module, as the native host's
    /// `stock_envoy()`: ABI 0.2.1 (0.2.100 is not recognised) with default
    /// options, so a `Pause` from a headers callback becomes *stop all*;
    /// Envoy's properties; a module importing a Higress-only call fails to
    /// load.
    pub fn stock_envoy(self) -> Self {
        self.properties(Properties::Envoy)
            .allow_on_headers_stop_iteration(false)
    }

    /// Envoy's `allow_on_headers_stop_iteration` (ABI 0.2.x only).
    pub fn allow_on_headers_stop_iteration(mut self, allow: bool) -> Self {
        self.settings.allow_on_headers_stop_iteration = allow;
        self
    }

    /// The `plugin_name` property (default: the module file's stem).
    pub fn plugin_name(mut self, name: impl Into<String>) -> Self {
        self.plugin_name = Some(name.into());
        self
    }

    /// The `plugin_root_id` property.
    pub fn root_id(mut self, root_id: impl Into<String>) -> Self {
        self.settings.root_id = root_id.into();
        self
    }

    /// The `plugin_vm_id` property (also the shared-data namespace).
    pub fn vm_id(mut self, vm_id: impl Into<String>) -> Self {
        self.settings.vm_id = vm_id.into();
        self
    }

    /// The VM configuration (buffer 6).
    pub fn vm_configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.settings.vm_configuration = configuration.into();
        self
    }

    /// A host property every context reads.
    pub fn property(mut self, path: &[&str], value: impl AsRef<[u8]>) -> Self {
        let path = path.iter().map(|p| (*p).to_owned()).collect();
        self.settings
            .host_properties
            .insert(path, value.as_ref().to_vec());
        self
    }

    /// The clock's start.
    pub fn start_time(mut self, time: SystemTime) -> Self {
        self.settings.start_time_nanos = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self
    }

    /// Restricts the clusters callouts may target (default: any).
    pub fn clusters<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.clusters = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Routes Redis calls for `cluster` to a real server at `address`.
    pub fn redis_server(mut self, cluster: impl Into<String>, address: SocketAddr) -> Self {
        self.settings.redis_servers.insert(cluster.into(), address);
        self
    }

    /// Routes HTTP callouts for `cluster` to a real HTTP/1.1 server at
    /// `address` (sent by [`TestHost::run_until_idle`]).
    pub fn http_server(mut self, cluster: impl Into<String>, address: SocketAddr) -> Self {
        self.settings.http_servers.insert(cluster.into(), address);
        self
    }

    /// Adds one host of the route's cluster to what
    /// `proxy_get_upstream_hosts` answers, with the metadata Higress's
    /// Envoy prints for it, byte for byte: `health` is `Healthy`,
    /// `Degraded` or `Unhealthy`; `metrics` the text the health check
    /// stored (left out when `None` or empty, as Higress does), e.g.
    /// `"{\n\"health_status\": \"Healthy\"\n}"` for a host without metrics.
    pub fn upstream_host(
        mut self,
        address: impl Into<String>,
        health: &str,
        metrics: Option<&str>,
    ) -> Self {
        let info = crate::state::higress_host_info(health, metrics);
        self.settings.upstream_hosts.push((address.into(), info));
        self
    }

    /// The hosts `proxy_get_upstream_hosts` answers, as raw (address,
    /// metadata) pairs (replacing any given before), for metadata Higress
    /// would not send; prefer [`upstream_host`](Self::upstream_host).
    pub fn upstream_hosts<I, A, M>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = (A, M)>,
        A: Into<String>,
        M: Into<String>,
    {
        self.settings.upstream_hosts = hosts
            .into_iter()
            .map(|(a, m)| (a.into(), m.into()))
            .collect();
        self
    }

    /// Registers a foreign function.
    pub fn foreign_function(
        mut self,
        name: impl Into<String>,
        f: impl Fn(&[u8]) -> Option<Vec<u8>> + 'static,
    ) -> Self {
        let f: ForeignFn = Rc::new(f);
        self.settings.foreign_functions.insert(name.into(), f);
        self
    }

    /// Envoy's `failure_policy` (default [`FailPolicy::Closed`]).
    pub fn fail_policy(mut self, policy: FailPolicy) -> Self {
        self.settings.fail_policy = policy;
        self
    }

    /// The `FAIL_RELOAD` backoff on the host clock (default 1 s).
    pub fn reload_backoff(mut self, backoff: Duration) -> Self {
        self.settings.reload_backoff = backoff;
        self
    }

    /// Whether WASI's `clock_time_get` (what `std::time::SystemTime::now()`
    /// reads in a Rust module, `time.Now()` in a Go one) answers the real
    /// time, as Envoy does, instead of the host clock (default false: the
    /// host clock, which [`TestHost::advance_time`] moves and which makes
    /// work counts repeat). `higress_test_host::both_modes!` turns it on:
    /// natively the plugin's `SystemTime::now()` is the OS clock, which no
    /// test host can steer, so both modes see the real time there and the
    /// host clock through `proxy_get_current_time_nanoseconds`.
    pub fn wasi_real_time(mut self, real: bool) -> Self {
        self.settings.wasi_real_time = real;
        self
    }

    /// An environment variable (WASI `environ_get`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.env.push((key.into(), value.into()));
        self
    }

    /// Shares shared data, queues and metrics with other hosts (workers).
    pub fn shared_state(mut self, shared: SharedState) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Loads and starts `module` with configuration `config`.
    pub fn start(
        self,
        module: &PluginModule,
        config: impl AsRef<[u8]>,
    ) -> Result<TestHost, StartFailure> {
        let mut settings = self.settings;
        settings.plugin_name = self.plugin_name.unwrap_or_else(|| module.name.clone());
        let shared = self.shared.unwrap_or_default();
        let abi = match module.abi(settings.mode) {
            Ok(abi) => abi,
            Err(e) => return Err(load_failure(&e)),
        };
        let config = config.as_ref().to_vec();
        let state = HostState::new(settings, abi, shared);
        match start_vm(module, state, &config, false) {
            Ok(vm) => Ok(TestHost {
                vm: RefCell::new(vm),
                module: module.clone(),
                config,
            }),
            Err((stage, state)) => Err(StartFailure {
                stage,
                logs: state.logs,
            }),
        }
    }
}

fn load_failure(e: &LoadError) -> StartFailure {
    StartFailure {
        stage: StartStage::Load,
        logs: vec![LogRecord {
            level: LogLevel::Critical,
            message: e.to_string(),
        }],
    }
}
