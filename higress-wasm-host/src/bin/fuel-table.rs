//! Prints a module's ABI and imports, then runs one request through it in
//! the wasm-mode host and prints the fuel and host calls of each callback.
//!
//! `fuel-table <module.wasm> [config] [--envoy]`

use higress_wasm_host::{fuel, PluginModule, Properties, TestHost};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let envoy = args.iter().any(|a| a == "--envoy");
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let Some(path) = positional.first() else {
        eprintln!("usage: fuel-table <module.wasm> [config-json] [--envoy]");
        return ExitCode::from(2);
    };
    let config = positional.get(1).map_or("{}", |c| c.as_str());
    let mode = if envoy {
        Properties::Envoy
    } else {
        Properties::Higress
    };
    let module = match PluginModule::load(path.as_str()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("module: {path}");
    println!("abi: {:?}", module.abi(mode));
    println!("imports: {}", module.imports().join(" "));
    let host = match TestHost::builder().properties(mode).start(&module, config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("\nstart:\n{}", fuel::format_table(&host.work()));
    host.clear_work();
    {
        let mut s = host.http_stream();
        s.set_request_id("req-1").set_route_name("route-a");
        let request = [
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "example.com"),
            ("content-type", "application/json"),
        ];
        let steps = s
            .send_request_headers(&request, false)
            .and_then(|_| s.send_request_body(br#"{"model":"m","messages":[]}"#, true))
            .and_then(|_| {
                s.send_response_headers(
                    &[(":status", "200"), ("content-type", "application/json")],
                    false,
                )
            })
            .and_then(|_| s.send_response_body(br#"{"ok":true}"#, true))
            .and_then(|_| s.done());
        if let Err(e) = steps {
            println!("(the request stopped early: {e})");
        }
    }
    println!("one request:\n{}", fuel::format_table(&host.work()));
    for line in host.logs() {
        println!("log {line}");
    }
    ExitCode::SUCCESS
}
