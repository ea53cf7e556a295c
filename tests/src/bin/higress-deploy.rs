//! `higress-deploy`: the Higress `WasmPlugin` (and `McpBridge` registries)
//! for a plugin and its configuration. See `higress_e2e::deploy`.

use std::path::PathBuf;
use std::process::ExitCode;

use higress_e2e::deploy::{
    mcp_bridge, wasm_plugin, FailStrategy, Phase, ServiceSpec, WasmPluginSpec,
};

const USAGE: &str = "\
usage: cargo run -p higress-e2e --bin higress-deploy -- \\
         --name NAME --config FILE|JSON --url URL
         [--namespace NS] [--phase PHASE] [--priority N] [--fail-strategy S]
         [--service NAME:static:IP[,IP...]:PORT[:PROTOCOL]]...
         [--service NAME:dns:DOMAIN[,DOMAIN...]:PORT[:PROTOCOL]]...
         [--out DIR]

Writes the Higress WasmPlugin that hands the plugin exactly the given config
(its top-level keys as defaultConfig, each _rules_ entry as a matchRules
entry), and, with --service, the McpBridge registries for the services the
plugin calls, with the cluster name each one gets.

  --name NAME          WasmPlugin name (e.g. my-plugin)
  --config FILE|JSON   the plugin config, as served by ./scripts/run.sh
  --url URL            oci://REGISTRY/NS/IMAGE:TAG, file:///path/plugin.wasm,
                       or http(s)://.../plugin.wasm
  --namespace NS       default higress-system
  --phase PHASE        UNSPECIFIED_PHASE (default), AUTHN, AUTHZ or STATS
  --priority N         within a phase, higher runs first (default 0)
  --fail-strategy S    FAIL_CLOSE (default) or FAIL_OPEN
  --service SPEC       a service the plugin calls, e.g. redis:static:10.0.0.5:6379
                       (cluster outbound|6379||redis.static); repeatable
  --out DIR            write DIR/NAME.wasmplugin.yaml (and DIR/mcpbridge.yaml)
                       instead of printing to stdout
";

#[derive(Debug, Default)]
struct Args {
    name: Option<String>,
    namespace: Option<String>,
    config: Option<String>,
    url: Option<String>,
    phase: Option<String>,
    priority: Option<String>,
    fail_strategy: Option<String>,
    services: Vec<String>,
    out: Option<PathBuf>,
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut args = Args::default();
    let mut iter = argv.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = match inline {
            Some(v) => v,
            None => iter
                .next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag {
            "--name" => args.name = Some(value),
            "--namespace" | "-n" => args.namespace = Some(value),
            "--config" | "-c" => args.config = Some(value),
            "--url" => args.url = Some(value),
            "--phase" => args.phase = Some(value),
            "--priority" => args.priority = Some(value),
            "--fail-strategy" => args.fail_strategy = Some(value),
            "--service" => args.services.push(value),
            "--out" | "-o" => args.out = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

fn read_config(arg: &str) -> Result<serde_json::Value, String> {
    let trimmed = arg.trim_start();
    let text = if trimmed.starts_with('{') {
        arg.to_owned()
    } else {
        std::fs::read_to_string(arg).map_err(|e| format!("reading --config {arg}: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("--config {arg}: not valid JSON: {e}"))
}

fn generate(args: Args) -> Result<(), String> {
    let name = args.name.ok_or("--name is required")?;
    let url = args
        .url
        .ok_or("--url is required (oci://..., file://... or http(s)://...)")?;
    let config = read_config(&args.config.ok_or("--config is required")?)?;
    let mut spec = WasmPluginSpec::new(name.clone(), url);
    if let Some(namespace) = args.namespace {
        spec.namespace = namespace;
    }
    if let Some(phase) = args.phase {
        spec.phase = phase.parse::<Phase>().map_err(|e| e.to_string())?;
    }
    if let Some(priority) = args.priority {
        spec.priority = priority
            .parse()
            .map_err(|_| format!("--priority {priority:?} is not an integer"))?;
    }
    if let Some(strategy) = args.fail_strategy {
        spec.fail_strategy = strategy
            .parse::<FailStrategy>()
            .map_err(|e| e.to_string())?;
    }
    let services = args
        .services
        .iter()
        .map(|s| s.parse::<ServiceSpec>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;

    let plugin = wasm_plugin(&spec, &config).map_err(|e| e.to_string())?;
    let bridge = if services.is_empty() {
        None
    } else {
        Some(mcp_bridge(&spec.namespace, &services).map_err(|e| e.to_string())?)
    };
    for warning in &plugin.warnings {
        eprintln!("warning: {warning}");
    }
    match args.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let plugin_path = dir.join(format!("{name}.wasmplugin.yaml"));
            std::fs::write(&plugin_path, &plugin.yaml)
                .map_err(|e| format!("writing {}: {e}", plugin_path.display()))?;
            println!("wrote {}", plugin_path.display());
            let mut apply = vec![plugin_path.display().to_string()];
            if let Some(bridge) = &bridge {
                let bridge_path = dir.join("mcpbridge.yaml");
                std::fs::write(&bridge_path, &bridge.yaml)
                    .map_err(|e| format!("writing {}: {e}", bridge_path.display()))?;
                println!("wrote {}", bridge_path.display());
                for service in &services {
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
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&argv) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("higress-deploy: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match generate(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("higress-deploy: {message}");
            ExitCode::FAILURE
        }
    }
}
