//! `cargo-higress`: run as `cargo higress <command>` (or `cargo-higress
//! <command>`). See the library documentation (`cargo_higress`) for what each
//! command does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command as Process, ExitCode};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use cargo_higress::bench::{self, BenchOptions};
use cargo_higress::deploy::{
    envoy_filter, mcp_bridge, wasm_plugin, EnvoyFailurePolicy, FailStrategy, Phase, ServiceSpec,
    WasmPluginSpec, DEFAULT_NAMESPACE,
};
use cargo_higress::dev::{
    build_plugin, find_package, parse_failure_policy, ConfigArg, DevOptions, HostKind,
};
use cargo_higress::instructions::{self, InstrOptions};
use cargo_higress::new::{create, NewOptions};
use higress_e2e::{cargo_bin, ensure_wasm_target, repo_root, target_dir, FailurePolicy};

/// Build, test, serve and deploy higress-wrapper plugins.
#[derive(Debug, Parser)]
#[command(name = "cargo-higress", bin_name = "cargo higress", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a plugin crate at PATH (like `cargo new`).
    New(NewArgs),
    /// Build the plugin for wasm32-wasip1 (release) and print its .wasm.
    Build(CrateArgs),
    /// Run the crate's tests (native test host and real Envoy).
    Test(TestArgs),
    /// The dev loop: serve the plugin through a local Envoy, stream its log,
    /// rebuild and reload on change. Ctrl-C stops everything.
    Dev(DevArgs),
    /// Checklist: did the plugin load, with which config, did it start, what
    /// did it log last (a running dev gateway, a fresh one, or --admin).
    Verify(VerifyArgs),
    /// Kubernetes YAML for Higress (WasmPlugin, McpBridge), or with --envoy
    /// the envoy.filters.http.wasm filter for a plain Envoy.
    Deploy(DeployArgs),
    /// The SDK-versus-raw wrk benchmark of this workspace (docs/benchmark.md);
    /// with --instructions, instructions per request under callgrind.
    Bench(BenchArgs),
    /// Put `proxy_abi_version_0_2_100` before `proxy_abi_version_0_2_1` in a
    /// module built with plain `cargo build` (`build` and `dev` already do):
    /// Higress runs a module with its first ABI export.
    FixAbi(FixAbiArgs),
}

#[derive(Debug, Args)]
struct FixAbiArgs {
    /// The `.wasm` modules to fix in place.
    #[arg(required = true)]
    modules: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct NewArgs {
    /// Directory to create.
    path: PathBuf,
    /// Package name (default: the directory's name).
    #[arg(long)]
    name: Option<String>,
    /// The higress-wrapper checkout to depend on (default: the one this tool
    /// was built from).
    #[arg(long)]
    sdk: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct CrateArgs {
    /// The plugin package (default: the one in the current directory).
    #[arg(short, long)]
    package: Option<String>,
    /// Path to Cargo.toml.
    #[arg(long)]
    manifest_path: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct TestArgs {
    #[command(flatten)]
    krate: CrateArgs,
    /// Passed to `cargo test` (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
}

/// How the local gateway is set up.
#[derive(Debug, Args)]
struct GatewayArgs {
    /// Plugin configuration: a file (watched) or inline JSON; default
    /// config.json in the package directory, else {}.
    #[arg(short, long, value_name = "FILE|JSON")]
    config: Option<String>,
    /// Listener port on 127.0.0.1 (default 10000 if free, else any).
    #[arg(short, long)]
    port: Option<u16>,
    /// Routes, domains and host semantics (default: higress-dev.toml in the
    /// package directory, if there).
    #[arg(long, value_name = "FILE")]
    routes: Option<PathBuf>,
    /// Host semantics: higress (default: a Pause in a headers hook lets the
    /// body run when the module exports ABI 0.2.100) or envoy (stock Envoy).
    #[arg(long, value_parser = parse_host)]
    host: Option<HostKind>,
    /// Force Envoy's allow_on_headers_stop_iteration (overrides --host).
    #[arg(long, value_name = "BOOL")]
    allow_on_headers_stop_iteration: Option<bool>,
    /// After a plugin panic: FAIL_RELOAD (default, recovers), FAIL_CLOSED
    /// (503 until restart) or FAIL_OPEN (skip the plugin).
    #[arg(long, value_parser = parse_policy)]
    failure_policy: Option<FailurePolicy>,
    /// How many plugin log lines the checklist shows.
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: usize,
}

#[derive(Debug, Args)]
struct DevArgs {
    /// The plugin package (default: the one in the current directory, or
    /// the workspace's `[workspace.metadata.higress] dev-package`).
    package: Option<String>,
    /// Path to Cargo.toml.
    #[arg(long)]
    manifest_path: Option<PathBuf>,
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Build, start, send one sample request, print the response, the
    /// plugin's log lines and the checklist, stop (exit 1 if anything failed).
    #[arg(long)]
    once: bool,
    /// Do not send the sample request after each (re)start.
    #[arg(long)]
    no_sample: bool,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The plugin package (with --admin: the plugin's name in that Envoy).
    package: Option<String>,
    /// Path to Cargo.toml.
    #[arg(long)]
    manifest_path: Option<PathBuf>,
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Check the Envoy with this admin address instead (e.g. a Higress
    /// gateway behind `kubectl port-forward ... 15000`).
    #[arg(long, value_name = "IP:PORT", value_parser = parse_admin)]
    admin: Option<SocketAddr>,
    /// With --admin: that Envoy's log saved to a file (`kubectl logs ... > FILE`).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DeployArgs {
    /// WasmPlugin (or Envoy plugin) name (default: the package in the
    /// current directory).
    #[arg(long)]
    name: Option<String>,
    /// The plugin config (a file or inline JSON), as the dev loop serves it
    /// (default: config.json of the package in the current directory).
    #[arg(short, long, value_name = "FILE|JSON")]
    config: Option<String>,
    /// oci://REGISTRY/NS/IMAGE:TAG, file:///path/plugin.wasm or
    /// http(s)://.../plugin.wasm (with --envoy: the .wasm's path on the Envoy host).
    #[arg(long)]
    url: String,
    /// Kubernetes namespace.
    #[arg(short, long, default_value = DEFAULT_NAMESPACE)]
    namespace: String,
    /// UNSPECIFIED_PHASE, AUTHN, AUTHZ or STATS.
    #[arg(long, default_value = "UNSPECIFIED_PHASE", value_parser = parse_phase)]
    phase: Phase,
    /// Within a phase, higher runs first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    priority: i32,
    /// Higress failStrategy: FAIL_CLOSE (default: 503 while the plugin is
    /// broken) or FAIL_OPEN (requests skip it). Higress has no reload policy:
    /// after a panic, restart the gateway pods.
    #[arg(long, default_value = "FAIL_CLOSE", value_parser = parse_strategy)]
    fail_strategy: FailStrategy,
    /// A service the plugin calls, e.g. redis:static:10.0.0.5:6379
    /// (cluster outbound|6379||redis.static); repeatable.
    #[arg(long = "service", value_name = "NAME:static|dns:ADDRS:PORT[:PROTOCOL]", value_parser = parse_service)]
    services: Vec<ServiceSpec>,
    /// Write DIR/NAME.wasmplugin.yaml (and DIR/mcpbridge.yaml) instead of
    /// printing them.
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the envoy.filters.http.wasm filter for a plain Envoy instead.
    #[arg(long)]
    envoy: bool,
    /// With --envoy: FAIL_RELOAD (default: the VM is recreated after a
    /// panic), FAIL_CLOSED or FAIL_OPEN.
    #[arg(long, default_value = "FAIL_RELOAD", value_parser = parse_envoy_policy)]
    failure_policy: EnvoyFailurePolicy,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Rounds over all candidates (medians are taken over them).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Length of each latency and throughput run, in seconds.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Connections of the throughput runs.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// 2 rounds of 1-second runs, to check the setup.
    #[arg(long)]
    quick: bool,
    /// Count instructions per request instead (Envoy under valgrind's
    /// callgrind, SDK and raw twins against Envoy without a plugin).
    #[arg(long)]
    instructions: bool,
    /// With --instructions: requests counted per Envoy.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// With --instructions: requests sent before the counters are zeroed.
    #[arg(long, default_value_t = 50)]
    warmup: u64,
    /// With --instructions: independent runs (each Envoy started afresh).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// With --instructions: windows of --requests measured one after the
    /// other in each Envoy.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    windows: u64,
    /// With --instructions: only these twins (set-header, fixed, body, or a
    /// package name); repeatable.
    #[arg(long, value_name = "TWIN")]
    only: Vec<String>,
    /// Measure only Envoy's time to ready: N starts of each candidate (no
    /// plugin, then the SDK and raw twins), interleaved.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    ready: Option<u64>,
}

fn parse_host(s: &str) -> Result<HostKind, String> {
    s.parse()
}

fn parse_policy(s: &str) -> Result<FailurePolicy, String> {
    parse_failure_policy(s)
}

fn parse_admin(s: &str) -> Result<SocketAddr, String> {
    let text = s.trim_start_matches("http://").trim_end_matches('/');
    text.parse()
        .map_err(|_| format!("{text:?}: expected IP:PORT"))
}

fn parse_phase(s: &str) -> Result<Phase, String> {
    s.parse()
        .map_err(|e: cargo_higress::deploy::DeployError| e.0)
}

fn parse_strategy(s: &str) -> Result<FailStrategy, String> {
    s.parse()
        .map_err(|e: cargo_higress::deploy::DeployError| e.0)
}

fn parse_envoy_policy(s: &str) -> Result<EnvoyFailurePolicy, String> {
    s.parse()
        .map_err(|e: cargo_higress::deploy::DeployError| e.0)
}

fn parse_service(s: &str) -> Result<ServiceSpec, String> {
    s.parse()
        .map_err(|e: cargo_higress::deploy::DeployError| e.0)
}

fn main() -> ExitCode {
    // `cargo higress x` runs `cargo-higress higress x`.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "higress") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::New(args) => new(args),
        Command::Build(args) => build(&args),
        Command::Test(args) => test(args),
        Command::Dev(args) => dev(args),
        Command::Verify(args) => verify(args),
        Command::Deploy(args) => deploy(args),
        Command::Bench(args) => run_bench(&args),
        Command::FixAbi(args) => fix_abi(&args),
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(message) => {
            eprintln!("cargo higress: {message}");
            ExitCode::FAILURE
        }
    }
}

type Outcome = Result<i32, String>;

fn new(args: NewArgs) -> Outcome {
    let options = NewOptions {
        path: args.path.clone(),
        name: args.name,
        sdk: args.sdk.unwrap_or_else(repo_root),
    };
    let name = create(&options).map_err(|e| e.to_string())?;
    let path = args.path.display();
    println!("created plugin crate `{name}` in {path}");
    println!("  SDK: path dependency on {}", options.sdk.display());
    println!("next:\n  cd {path}\n  cargo higress dev    # serve it through a local Envoy\n  cargo test           # native test host + real Envoy");
    Ok(0)
}

fn fix_abi(args: &FixAbiArgs) -> Outcome {
    for module in &args.modules {
        let changed = higress_e2e::abi_order::fix_module_file(module).map_err(|e| e.to_string())?;
        let what = if changed {
            "moved proxy_abi_version_0_2_100 first"
        } else {
            "already in order"
        };
        println!("{}: {what}", module.display());
    }
    Ok(0)
}

fn build(args: &CrateArgs) -> Outcome {
    let package = find_package(args.manifest_path.as_deref(), args.package.as_deref())
        .map_err(|e| e.to_string())?;
    ensure_wasm_target().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let built = build_plugin(&package, &mut |krate| eprintln!("   Compiling {krate}"));
    match built {
        Ok(built) => {
            for warning in &built.warnings {
                eprint!("{warning}");
            }
            println!(
                "built {} in {:.1}s: {} ({} bytes)",
                package.name,
                started.elapsed().as_secs_f64(),
                built.path.display(),
                built.size
            );
            Ok(0)
        }
        Err(higress_e2e::Error::Command { output, .. }) => {
            eprint!("{output}");
            Ok(1)
        }
        Err(e) => Err(e.to_string()),
    }
}

fn test(args: TestArgs) -> Outcome {
    ensure_wasm_target().map_err(|e| e.to_string())?;
    let mut command = Process::new(cargo_bin());
    command.arg("test");
    if let Some(manifest) = &args.krate.manifest_path {
        command.arg("--manifest-path").arg(manifest);
    }
    if let Some(package) = &args.krate.package {
        command.args(["-p", package]);
    }
    if !args.args.is_empty() {
        command.arg("--").args(&args.args);
    }
    let status = command
        .status()
        .map_err(|e| format!("could not run cargo test: {e}"))?;
    Ok(status.code().unwrap_or(1))
}

fn dev_options(
    package: Option<String>,
    manifest_path: Option<PathBuf>,
    gateway: GatewayArgs,
) -> DevOptions {
    DevOptions {
        package,
        manifest_path,
        config: gateway
            .config
            .as_deref()
            .map_or(ConfigArg::Default, ConfigArg::parse),
        dev_file: gateway.routes,
        host: gateway.host,
        allow_on_headers_stop_iteration: gateway.allow_on_headers_stop_iteration,
        failure_policy: gateway.failure_policy,
        port: gateway.port,
        log_lines: gateway.lines,
        ..DevOptions::default()
    }
}

fn dev(args: DevArgs) -> Outcome {
    let mut options = dev_options(args.package, args.manifest_path, args.gateway);
    options.once = args.once;
    options.sample = !args.no_sample;
    cargo_higress::dev::run(options).map_err(|e| e.to_string())
}

fn verify(args: VerifyArgs) -> Outcome {
    let mut options = dev_options(args.package, args.manifest_path, args.gateway);
    options.admin = args.admin;
    options.log_file = args.log;
    cargo_higress::dev::run_verify(options).map_err(|e| e.to_string())
}

fn read_config(arg: &str) -> Result<serde_json::Value, String> {
    let text = if arg.trim_start().starts_with('{') {
        arg.to_owned()
    } else {
        std::fs::read_to_string(arg).map_err(|e| format!("reading --config {arg}: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("--config {arg}: not valid JSON: {e}"))
}

fn write(path: &std::path::Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn deploy(args: DeployArgs) -> Outcome {
    // What is not given comes from the plugin crate here.
    let (name, config_arg) = match (args.name.clone(), args.config.clone()) {
        (Some(name), Some(config)) => (name, config),
        (name, config) => {
            let package = find_package(None, None)
                .map_err(|e| format!("{e} (or give --name and --config)"))?;
            let config =
                config.unwrap_or_else(|| package.dir.join("config.json").display().to_string());
            (name.unwrap_or(package.name), config)
        }
    };
    let config = read_config(&config_arg)?;
    if args.envoy {
        let path = args.url.strip_prefix("file://").unwrap_or(&args.url);
        let rendered =
            envoy_filter(&name, path, &config, args.failure_policy).map_err(|e| e.to_string())?;
        match &args.out {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                write(
                    &dir.join(format!("{name}.envoy-filter.yaml")),
                    &rendered.yaml,
                )?;
            }
            None => print!("{}", rendered.yaml),
        }
        return Ok(0);
    }
    let mut spec = WasmPluginSpec::new(name.clone(), args.url);
    spec.namespace = args.namespace;
    spec.phase = args.phase;
    spec.priority = args.priority;
    spec.fail_strategy = args.fail_strategy;
    let plugin = wasm_plugin(&spec, &config).map_err(|e| e.to_string())?;
    let bridge = if args.services.is_empty() {
        None
    } else {
        Some(mcp_bridge(&spec.namespace, &args.services).map_err(|e| e.to_string())?)
    };
    for warning in &plugin.warnings {
        eprintln!("warning: {warning}");
    }
    match args.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let plugin_path = dir.join(format!("{name}.wasmplugin.yaml"));
            write(&plugin_path, &plugin.yaml)?;
            let mut apply = vec![plugin_path.display().to_string()];
            if let Some(bridge) = &bridge {
                let bridge_path = dir.join("mcpbridge.yaml");
                write(&bridge_path, &bridge.yaml)?;
                for service in &args.services {
                    println!(
                        "  service {} -> cluster {} ({} in Rust)",
                        service.fqdn(),
                        service.cluster_name(),
                        service.sdk_cluster()
                    );
                }
                apply.insert(0, bridge_path.display().to_string());
                println!(
                    "merge mcpbridge.yaml into the existing `default` McpBridge if there is one"
                );
            }
            println!("apply with: kubectl apply -f {}", apply.join(" -f "));
        }
        None => {
            if let Some(bridge) = &bridge {
                println!("{}---", bridge.yaml);
            }
            print!("{}", plugin.yaml);
        }
    }
    Ok(0)
}

fn run_instructions(args: &BenchArgs) -> Outcome {
    let options = InstrOptions {
        requests: usize::try_from(args.requests).map_err(|e| e.to_string())?,
        warmup: usize::try_from(args.warmup).map_err(|e| e.to_string())?,
        runs: usize::try_from(args.runs).map_err(|e| e.to_string())?,
        windows: usize::try_from(args.windows).map_err(|e| e.to_string())?,
        only: args.only.clone(),
        ..InstrOptions::default()
    };
    let report = instructions::run(&options).map_err(|e| format!("bench failed: {e}"))?;
    println!();
    println!("{}; {}", report.envoy_version, report.valgrind_version);
    println!(
        "Envoy --concurrency 1 under callgrind, {} requests per window on one keep-alive connection after {} warm-up, {} run(s) x {} window(s) ({:.0} s in all)",
        options.requests,
        options.warmup,
        options.runs,
        options.windows,
        report.elapsed.as_secs_f64()
    );
    println!();
    print!("{}", report.table());
    Ok(0)
}

fn run_ready(samples: u64) -> Outcome {
    let samples = usize::try_from(samples).map_err(|e| e.to_string())?;
    let twins = [
        ("sdk", "my-plugin"),
        ("raw", "e2e-probe-raw"),
        ("sdk", "twin-fixed-sdk"),
        ("raw", "twin-fixed-raw"),
        ("sdk", "twin-body-sdk-all"),
        ("raw", "twin-body-raw"),
        ("sdk", "twin-body-sdk"),
        ("raw", "twin-body-raw-go-rule"),
    ];
    let started = std::time::Instant::now();
    let report = bench::ready_times(samples, &twins).map_err(|e| format!("bench failed: {e}"))?;
    println!();
    println!(
        "Envoy --concurrency 1, time from start to admin /ready answering 200, {samples} starts per candidate, interleaved ({:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    println!();
    print!("{}", report.table());
    Ok(0)
}

fn run_bench(args: &BenchArgs) -> Outcome {
    if let Some(samples) = args.ready {
        return run_ready(samples);
    }
    if args.instructions {
        return run_instructions(args);
    }
    let mut options = BenchOptions::default();
    if args.quick {
        options.rounds = 2;
        options.warmup = Duration::from_secs(1);
        options.latency_run = Duration::from_secs(1);
        options.throughput_run = Duration::from_secs(1);
        options.ready_samples = 2;
    } else {
        options.rounds = usize::try_from(args.rounds).map_err(|e| e.to_string())?;
        options.latency_run = Duration::from_secs(args.seconds);
        options.throughput_run = Duration::from_secs(args.seconds);
    }
    options.connections = args.connections;
    let report = bench::run(&options).map_err(|e| format!("bench failed: {e}"))?;
    println!();
    println!("{}", report.envoy_version);
    println!(
        "Envoy --concurrency 1, wrk on loopback, medians of {} rounds ({:.0} s in all)",
        report.options.rounds,
        report.elapsed.as_secs_f64()
    );
    println!();
    print!("{}", report.table());
    let paths = bench::write_report(&report, &target_dir().join("bench"))
        .map_err(|e| format!("could not write the report: {e}"))?;
    println!();
    for path in paths {
        println!("wrote {}", path.display());
    }
    Ok(0)
}
