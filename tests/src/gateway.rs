//! A real Envoy in front of the test's upstreams, configured from Rust.

use std::fmt;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::build::{envoy_binary, target_dir};
use crate::client::{http_request, http_request_timeout, Response};
use crate::error::{Error, Result};

/// How long [`GatewayBuilder::start`] waits for `/ready` by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How often [`GatewayBuilder::start`] asks `/ready` by default.
pub const DEFAULT_READY_POLL: Duration = Duration::from_millis(20);

/// Name of the listener the builder generates.
const LISTENER_NAME: &str = "main";

/// What Envoy does with a plugin whose VM has failed (`failure_policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// `FAIL_CLOSED`: every request on the worker gets a 503 (Envoy's default).
    #[default]
    FailClosed,
    /// `FAIL_OPEN`: the filter is skipped.
    FailOpen,
    /// `FAIL_RELOAD`: the VM is recreated on the next request (with backoff).
    FailReload,
}

impl FailurePolicy {
    fn as_envoy(self) -> &'static str {
        match self {
            Self::FailClosed => "FAIL_CLOSED",
            Self::FailOpen => "FAIL_OPEN",
            Self::FailReload => "FAIL_RELOAD",
        }
    }
}

/// One `envoy.filters.http.wasm` filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginSpec {
    /// Plugin name (`PluginConfig.name`; shows in `wasm log <name> ...` lines).
    pub name: String,
    /// The compiled module, e.g. from [`crate::wasm_module`].
    pub wasm_path: PathBuf,
    /// Plugin configuration, passed verbatim as a `google.protobuf.StringValue`
    /// (so it reaches `on_configure` byte for byte; usually JSON).
    pub configuration: String,
    /// Behaviour after the VM fails.
    pub failure_policy: FailurePolicy,
    /// Let a `Pause` from request/response headers be a plain `StopIteration`
    /// so the body callbacks still run.
    pub allow_on_headers_stop_iteration: bool,
    /// `PluginConfig.root_id` (may be empty).
    pub root_id: String,
    /// `VmConfig.vm_id` (may be empty).
    pub vm_id: String,
}

impl PluginSpec {
    /// A fail-closed plugin with empty root and VM ids.
    pub fn new(
        name: impl Into<String>,
        wasm_path: impl Into<PathBuf>,
        configuration: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            wasm_path: wasm_path.into(),
            configuration: configuration.into(),
            ..Self::default()
        }
    }

    fn to_filter(&self) -> Value {
        json!({
            "name": format!("wasm.{}", self.name),
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": self.name,
                    "root_id": self.root_id,
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": self.configuration,
                    },
                    "failure_policy": self.failure_policy.as_envoy(),
                    "allow_on_headers_stop_iteration": self.allow_on_headers_stop_iteration,
                    "vm_config": {
                        "vm_id": self.vm_id,
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": { "local": { "filename": self.wasm_path.display().to_string() } },
                    },
                },
            },
        })
    }
}

/// One route: requests whose Host matches one of `domains` and whose path
/// starts with `prefix` go to `cluster`. Routes are matched in the order
/// they were added (within their virtual host), so add `/` last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Route name (`xds.route_name` / `route_name` to the plugin).
    pub name: String,
    /// Virtual-host domains, e.g. `["*"]` or `["a.example.com", "a.example.com:*"]`.
    /// Routes with the same domain list share one virtual host.
    pub domains: Vec<String>,
    /// Path prefix.
    pub prefix: String,
    /// Target cluster name.
    pub cluster: String,
    /// Route by header instead (Envoy's `route.cluster_header`): the request
    /// goes to the cluster its value names, as the filters left it; `cluster`
    /// is then unused. See [`RouteSpec::cluster_header`].
    pub cluster_header: Option<String>,
}

impl RouteSpec {
    /// A route on every domain (`*`).
    pub fn new(
        name: impl Into<String>,
        prefix: impl Into<String>,
        cluster: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            domains: vec!["*".to_owned()],
            prefix: prefix.into(),
            cluster: cluster.into(),
            cluster_header: None,
        }
    }

    /// Routes by the request header `header` (Envoy's `cluster_header`): its
    /// value, after the plugins ran, names the cluster. Envoy answers 503
    /// when it names none.
    #[must_use]
    pub fn cluster_header(mut self, header: impl Into<String>) -> Self {
        self.cluster_header = Some(header.into());
        self
    }

    /// Replaces the domain list.
    #[must_use]
    pub fn domains<S: Into<String>>(mut self, domains: impl IntoIterator<Item = S>) -> Self {
        self.domains = domains.into_iter().map(Into::into).collect();
        self
    }
}

/// A STATIC cluster with the single endpoint `127.0.0.1:port`. The name may
/// be anything, including Istio/Higress style `outbound|80||svc.static`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Cluster name (`xds.cluster_name` / `cluster_name` to the plugin).
    pub name: String,
    /// Port on 127.0.0.1.
    pub port: u16,
}

impl ClusterSpec {
    /// A cluster `name` → `127.0.0.1:port`.
    pub fn new(name: impl Into<String>, port: u16) -> Self {
        Self {
            name: name.into(),
            port,
        }
    }
}

type Patch = Box<dyn FnOnce(&mut Value) + Send>;

/// Builds an Envoy bootstrap and starts it; see [`Gateway::builder`].
pub struct GatewayBuilder {
    name: String,
    plugins: Vec<PluginSpec>,
    routes: Vec<RouteSpec>,
    clusters: Vec<ClusterSpec>,
    concurrency: u32,
    log_level: String,
    extra_args: Vec<String>,
    ready_timeout: Duration,
    ready_poll: Duration,
    patches: Vec<Patch>,
}

impl fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("name", &self.name)
            .field("plugins", &self.plugins)
            .field("routes", &self.routes)
            .field("clusters", &self.clusters)
            .field("concurrency", &self.concurrency)
            .field("log_level", &self.log_level)
            .field("extra_args", &self.extra_args)
            .field("ready_timeout", &self.ready_timeout)
            .field("ready_poll", &self.ready_poll)
            .field("patches", &self.patches.len())
            .finish()
    }
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        Self {
            name: "gateway".to_owned(),
            plugins: Vec::new(),
            routes: Vec::new(),
            clusters: Vec::new(),
            concurrency: 1,
            log_level: "wasm:debug".to_owned(),
            extra_args: Vec::new(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            ready_poll: DEFAULT_READY_POLL,
            patches: Vec::new(),
        }
    }
}

impl GatewayBuilder {
    /// Names the run directory `target/e2e/<name>-<pid>-<n>` (default `gateway`).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds a Wasm filter; filters run in the order added, before the router.
    #[must_use]
    pub fn plugin(mut self, plugin: PluginSpec) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Adds a route. Without any route, one route named `default` sends
    /// everything (`*`, prefix `/`) to the first cluster.
    #[must_use]
    pub fn route(mut self, route: RouteSpec) -> Self {
        self.routes.push(route);
        self
    }

    /// Adds a cluster.
    #[must_use]
    pub fn cluster(mut self, cluster: ClusterSpec) -> Self {
        self.clusters.push(cluster);
        self
    }

    /// Worker threads (`--concurrency`, default 1).
    #[must_use]
    pub fn concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    /// `--component-log-level` value (default `wasm:debug`; empty for none).
    #[must_use]
    pub fn log_level(mut self, levels: impl Into<String>) -> Self {
        self.log_level = levels.into();
        self
    }

    /// Extra command-line arguments for Envoy.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// How long to wait for `/ready` (default [`DEFAULT_READY_TIMEOUT`]).
    #[must_use]
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How often `/ready` is asked while Envoy starts (default
    /// [`DEFAULT_READY_POLL`]). Each poll is an admin request Envoy serves;
    /// a benchmark that counts Envoy's start-up work asks less often.
    #[must_use]
    pub fn ready_poll(mut self, interval: Duration) -> Self {
        self.ready_poll = interval;
        self
    }

    /// Edits the generated bootstrap JSON before Envoy sees it, for anything
    /// the builder has no method for. Patches run in the order added.
    #[must_use]
    pub fn patch_bootstrap(mut self, patch: impl FnOnce(&mut Value) + Send + 'static) -> Self {
        self.patches.push(Box::new(patch));
        self
    }

    fn effective_routes(&self) -> Result<Vec<RouteSpec>> {
        if !self.routes.is_empty() {
            for route in self.routes.iter().filter(|r| r.cluster_header.is_none()) {
                if !self.clusters.iter().any(|c| c.name == route.cluster) {
                    return Err(Error::Config(format!(
                        "route {:?} targets unknown cluster {:?}",
                        route.name, route.cluster
                    )));
                }
            }
            return Ok(self.routes.clone());
        }
        let cluster = self.clusters.first().ok_or_else(|| {
            Error::Config("a gateway needs at least one cluster (or route)".into())
        })?;
        Ok(vec![RouteSpec::new("default", "/", cluster.name.clone())])
    }

    /// The bootstrap (without patches applied) that [`GatewayBuilder::start`]
    /// would write, with listener and admin on port 0 (Envoy picks).
    pub fn bootstrap(&self) -> Result<Value> {
        let routes = self.effective_routes()?;
        // One virtual host per distinct domain list, in order of appearance.
        let mut vhosts: Vec<(Vec<String>, Vec<Value>)> = Vec::new();
        for route in &routes {
            let target = match &route.cluster_header {
                Some(header) => json!({ "cluster_header": header }),
                None => json!({ "cluster": route.cluster }),
            };
            let entry = json!({
                "name": route.name,
                "match": { "prefix": route.prefix },
                "route": target,
            });
            match vhosts
                .iter_mut()
                .find(|(domains, _)| *domains == route.domains)
            {
                Some((_, list)) => list.push(entry),
                None => vhosts.push((route.domains.clone(), vec![entry])),
            }
        }
        let virtual_hosts: Vec<Value> = vhosts
            .into_iter()
            .enumerate()
            .map(|(i, (domains, routes))| {
                json!({ "name": format!("vhost{i}"), "domains": domains, "routes": routes })
            })
            .collect();

        let mut http_filters: Vec<Value> = self.plugins.iter().map(PluginSpec::to_filter).collect();
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
        }));

        let clusters: Vec<Value> = self
            .clusters
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": c.name,
                        "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                            "socket_address": { "address": "127.0.0.1", "port_value": c.port }
                        } } }] }],
                    },
                })
            })
            .collect();

        Ok(json!({
            "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } } },
            "static_resources": {
                "listeners": [{
                    "name": LISTENER_NAME,
                    "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } },
                    "filter_chains": [{ "filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "ingress_http",
                            "codec_type": "AUTO",
                            "route_config": { "name": "local_route", "virtual_hosts": virtual_hosts },
                            "http_filters": http_filters,
                        },
                    }] }],
                }],
                "clusters": clusters,
            },
        }))
    }

    /// Writes the bootstrap, starts Envoy and waits until its admin `/ready`
    /// answers 200.
    ///
    /// If Envoy exits first, or is not ready within the timeout, it is killed
    /// and the result is [`Error::EnvoyStart`] carrying Envoy's whole log
    /// (see [`Error::envoy_log`]), so a test can assert why a config was
    /// refused.
    pub fn start(self) -> Result<Gateway> {
        let mut bootstrap = self.bootstrap()?;
        for patch in self.patches {
            patch(&mut bootstrap);
        }
        let envoy = envoy_binary()?;
        let dir = run_dir(&self.name)?;
        let bootstrap_path = dir.join("bootstrap.json");
        let text = serde_json::to_string_pretty(&bootstrap)
            .map_err(|e| Error::Config(format!("bootstrap does not serialize: {e}")))?;
        std::fs::write(&bootstrap_path, text)
            .map_err(|e| Error::io(format!("writing {}", bootstrap_path.display()), e))?;

        // The hot-restart base id must be unique among live Envoys. Holding a
        // port for the gateway's lifetime and using its number makes it so.
        let reservation = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| Error::io("reserving a port for --base-id", e))?;
        let base_id = reservation
            .local_addr()
            .map_err(|e| Error::io("reading the reserved port", e))?
            .port();

        let log_path = dir.join("envoy.log");
        let admin_path = dir.join("admin-address");
        let log = File::create(&log_path)
            .map_err(|e| Error::io(format!("creating {}", log_path.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io("duplicating the log file handle", e))?;
        let mut command = Command::new(&envoy);
        command
            .arg("-c")
            .arg(&bootstrap_path)
            .arg("--concurrency")
            .arg(self.concurrency.to_string())
            .arg("--base-id")
            .arg(base_id.to_string())
            .arg("--admin-address-path")
            .arg(&admin_path);
        if !self.log_level.is_empty() {
            command.arg("--component-log-level").arg(&self.log_level);
        }
        command
            .args(&self.extra_args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", envoy.display()), e))?;

        let mut gateway = Gateway {
            child: Some(child),
            listener: None,
            admin: None,
            dir,
            log_path,
            base_id,
            _reservation: reservation,
        };
        match gateway.wait_ready(&admin_path, self.ready_timeout, self.ready_poll) {
            Ok(()) => Ok(gateway),
            Err(reason) => {
                gateway.stop();
                Err(Error::EnvoyStart {
                    reason,
                    log: gateway.logs(),
                })
            }
        }
    }
}

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Run directories older than this are deleted by the first gateway a
/// process starts.
const KEEP_RUNS_FOR: Duration = Duration::from_secs(24 * 60 * 60);

fn prune_old_runs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > KEEP_RUNS_FOR);
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn run_dir(name: &str) -> Result<PathBuf> {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let n = RUN_COUNTER.fetch_add(1, Ordering::SeqCst);
    let root = target_dir().join("e2e");
    if n == 0 {
        prune_old_runs(&root);
    }
    let dir = root.join(format!("{safe}-{}-{n}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| Error::io(format!("clearing {}", dir.display()), e))?;
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

/// A running Envoy. Killed on drop.
#[derive(Debug)]
pub struct Gateway {
    child: Option<Child>,
    listener: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    dir: PathBuf,
    log_path: PathBuf,
    base_id: u16,
    _reservation: TcpListener,
}

impl Gateway {
    /// Starts describing a gateway.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    fn wait_ready(
        &mut self,
        admin_path: &Path,
        timeout: Duration,
        poll: Duration,
    ) -> std::result::Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => return Err(format!("envoy exited with {status}")),
                    Ok(None) => {}
                    Err(e) => return Err(format!("could not poll envoy: {e}")),
                }
            }
            if self.admin.is_none() {
                self.admin = std::fs::read_to_string(admin_path)
                    .ok()
                    .and_then(|text| text.trim().parse::<SocketAddr>().ok());
            }
            if let Some(admin) = self.admin {
                let ready =
                    http_request_timeout(admin, "GET", "/ready", &[], b"", Duration::from_secs(2))
                        .is_ok_and(|r| r.status == 200);
                if ready {
                    let listener = listener_address(admin)?;
                    self.listener = Some(listener);
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready after {timeout:?}"));
            }
            std::thread::sleep(poll);
        }
    }

    /// Envoy's process id (`None` once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where clients connect (the HTTP listener).
    pub fn listener_addr(&self) -> SocketAddr {
        self.listener
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The admin interface.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The `--base-id` this Envoy runs with.
    pub fn base_id(&self) -> u16 {
        self.base_id
    }

    /// This run's directory (`bootstrap.json`, `envoy.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of Envoy's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything Envoy has logged so far (stdout and stderr).
    pub fn logs(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The log lines containing `needle`.
    pub fn log_lines_containing(&self, needle: &str) -> Vec<String> {
        self.logs()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// Polls the log until it contains `needle`; false on timeout.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.logs().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Sends a request through the gateway (see [`http_request`]).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Result<Response> {
        http_request(self.listener_addr(), method, path, headers, body)
    }

    /// `GET path` through the gateway with the given headers.
    pub fn get(&self, path: &str, headers: &[(&str, &[u8])]) -> Result<Response> {
        self.request("GET", path, headers, b"")
    }

    /// `GET` on the admin interface, e.g. `/stats?filter=wasm`.
    pub fn admin_get(&self, path: &str) -> Result<Response> {
        http_request(self.admin_addr(), "GET", path, &[], b"")
    }

    /// `POST` on the admin interface, e.g. `/logging?wasm=trace`.
    pub fn admin_post(&self, path: &str) -> Result<Response> {
        http_request(self.admin_addr(), "POST", path, &[], b"")
    }

    /// The value of one counter or gauge from `/stats`, `None` if absent.
    pub fn stat(&self, name: &str) -> Result<Option<u64>> {
        let response = self.admin_get(&format!("/stats?filter=^{}$", regex_escape(name)))?;
        Ok(response.text().lines().find_map(|line| {
            let (key, value) = line.split_once(": ")?;
            if key == name {
                value.trim().parse().ok()
            } else {
                None
            }
        }))
    }

    /// Whether Envoy is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills Envoy (SIGKILL) and reaps it. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // Hot-restart shared memory outlives a killed Envoy.
            let shm = PathBuf::from(format!(
                "/dev/shm/envoy_shared_memory_{}",
                u32::from(self.base_id) * 10
            ));
            let _ = std::fs::remove_file(shm);
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

/// The bound address of the generated listener, from admin `/listeners`.
fn listener_address(admin: SocketAddr) -> std::result::Result<SocketAddr, String> {
    let response = http_request(admin, "GET", "/listeners?format=json", &[], b"")
        .map_err(|e| format!("admin /listeners failed: {e}"))?;
    let json = response
        .json()
        .map_err(|e| format!("admin /listeners: {e}"))?;
    let statuses = json
        .get("listener_statuses")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("admin /listeners: unexpected answer {json}"))?;
    let status = statuses
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(LISTENER_NAME))
        .or_else(|| statuses.first())
        .ok_or_else(|| "envoy reports no listener".to_owned())?;
    let socket = status
        .get("local_address")
        .and_then(|a| a.get("socket_address"))
        .ok_or_else(|| format!("listener without a socket address: {status}"))?;
    let ip = socket
        .get("address")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("listener without an address: {status}"))?;
    let port = socket
        .get("port_value")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("listener without a port: {status}"))?;
    format!("{ip}:{port}")
        .parse()
        .map_err(|e| format!("listener address {ip}:{port}: {e}"))
}
