//! `dev`: the one-command dev loop (`./scripts/run.sh` runs it).
//!
//! ```text
//! dev [PACKAGE] [--config FILE|JSON] [--port N] [--once] [--no-sample] [--lines N]
//! dev verify [PACKAGE] [--config FILE|JSON] [--port N] [--lines N]
//! ```
//!
//! See `higress_e2e::dev` for what it does.

use std::process::ExitCode;

use higress_e2e::dev::{run, run_verify, ConfigArg, DevOptions, DEFAULT_PACKAGE};

const USAGE: &str = "\
usage: ./scripts/run.sh [PACKAGE] [--config FILE|JSON] [--port N] [--once] [--no-sample]
       ./scripts/run.sh verify [PACKAGE] [--config FILE|JSON] [--port N] [--lines N]
       ./scripts/run.sh verify PLUGIN --admin IP:PORT [--log FILE]

Builds workspace plugin PACKAGE (default my-plugin) for wasm32-wasip1, serves
it through a local Envoy in front of an echo server, prints where to send
requests, streams the plugin's log lines, and rebuilds and reloads when its
sources or config file change. Ctrl-C stops everything.

  --config FILE|JSON  plugin configuration: a file (watched) or inline JSON;
                      default: config.json in the package directory, else {}
  --port N            listener port on 127.0.0.1 (default 10000 if free,
                      else any free port)
  --once              build, start, send one sample request, print the
                      response, the plugin's log lines and the verify
                      checklist, then stop (exit code 1 if anything failed)
  --no-sample         do not send the sample request after each (re)start
  --lines N           how many plugin log lines verify shows (default 10)

verify: answers, as a checklist, whether the plugin loaded, with which
config, whether it started and what it logged last, for the gateway a running
./scripts/run.sh serves PACKAGE on (the one on --port N if given), or else for
a freshly started one. With --admin, for any Envoy instead, e.g. a Higress
gateway (kubectl port-forward -n higress-system deploy/higress-gateway 15000)
with its log saved to FILE (kubectl logs ... > FILE).
";

fn parse(args: &[String]) -> Result<(bool, DevOptions), String> {
    let mut options = DevOptions::default();
    let mut verify = false;
    let mut package: Option<String> = None;
    let mut iter = args.iter();
    let value = |iter: &mut std::slice::Iter<'_, String>, flag: &str| {
        iter.next()
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))
    };
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let take = |iter: &mut std::slice::Iter<'_, String>| match &inline {
            Some(v) => Ok(v.clone()),
            None => value(iter, flag),
        };
        match flag {
            "-h" | "--help" => return Err(String::new()),
            "--config" | "-c" => options.config = ConfigArg::parse(&take(&mut iter)?),
            "--port" | "-p" => {
                let text = take(&mut iter)?;
                let port = text
                    .parse::<u16>()
                    .map_err(|_| format!("--port {text:?} is not a port number"))?;
                options.port = Some(port);
            }
            "--lines" | "-n" => {
                let text = take(&mut iter)?;
                options.log_lines = text
                    .parse()
                    .map_err(|_| format!("--lines {text:?} is not a number"))?;
            }
            "--admin" => {
                let text = take(&mut iter)?;
                let text = text
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned();
                options.admin = Some(
                    text.parse()
                        .map_err(|_| format!("--admin {text:?}: expected IP:PORT"))?,
                );
            }
            "--log" => options.log_file = Some(take(&mut iter)?.into()),
            "--once" => options.once = true,
            "--no-sample" => options.sample = false,
            "--verify" | "verify" if package.is_none() && !verify => verify = true,
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other => {
                if package.is_some() {
                    return Err(format!("unexpected argument {other:?}"));
                }
                package = Some(other.to_owned());
            }
        }
    }
    options.package = package.unwrap_or_else(|| DEFAULT_PACKAGE.to_owned());
    Ok((verify, options))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (verify, options) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            if message.is_empty() {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("dev: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = if verify {
        run_verify(options)
    } else {
        run(options)
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("dev: {e}");
            ExitCode::FAILURE
        }
    }
}
