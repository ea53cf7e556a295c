//! `cargo run --release -p higress-e2e --bin bench [-- --rounds N --seconds S --quick]`
//!
//! Runs the SDK-versus-raw benchmark (see `higress_e2e::bench` and
//! `docs/benchmark.md`), prints the table and writes `results.md`,
//! `results.json` and `overhead.svg` under `target/bench/`.
//! `scripts/bench.sh` installs `wrk` first if it is missing.

use std::process::ExitCode;
use std::time::Duration;

use higress_e2e::bench::{self, BenchOptions};
use higress_e2e::target_dir;

const USAGE: &str = "usage: bench [--rounds N] [--seconds S] [--connections C] [--quick]
  --rounds N       rounds over all candidates (default 5; medians are taken over them)
  --seconds S      length of each latency and throughput run (default 4)
  --connections C  connections of the throughput runs (default 16)
  --quick          2 rounds of 1-second runs, to check the setup";

fn parse_args() -> Result<BenchOptions, String> {
    let mut options = BenchOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{name} needs a positive number\n{USAGE}"))
        };
        match arg.as_str() {
            "--rounds" => options.rounds = value("--rounds")? as usize,
            "--seconds" => {
                let s = Duration::from_secs(value("--seconds")?);
                options.latency_run = s;
                options.throughput_run = s;
            }
            "--connections" => {
                options.connections = u32::try_from(value("--connections")?)
                    .map_err(|_| "--connections is too large".to_owned())?;
            }
            "--quick" => {
                options.rounds = 2;
                options.warmup = Duration::from_secs(1);
                options.latency_run = Duration::from_secs(1);
                options.throughput_run = Duration::from_secs(1);
                options.ready_samples = 2;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let report = match bench::run(&options) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("bench failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!();
    println!("{}", report.envoy_version);
    println!(
        "Envoy --concurrency 1, wrk on loopback, medians of {} rounds ({:.0} s in all)",
        report.options.rounds,
        report.elapsed.as_secs_f64()
    );
    println!();
    print!("{}", report.table());
    match bench::write_report(&report, &target_dir().join("bench")) {
        Ok(paths) => {
            println!();
            for path in paths {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("could not write the report: {e}");
            ExitCode::FAILURE
        }
    }
}
