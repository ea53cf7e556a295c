//! The `go-compare` bin (docs/benchmark.md, "Rust ports next to the Go
//! plugins") on one pair, transformer: the table has its columns, both
//! transformer rows, sizes read from the module files and fuel above zero.
//! Timings are printed, never checked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

fn size(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.2} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.1} KB", bytes as f64 / 1e3)
    }
}

fn number(cell: &str) -> Option<u64> {
    cell.replace(',', "").parse().ok()
}

fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_owned())
        .collect()
}

fn go_transformer() -> Option<PathBuf> {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .join("target/gpustack-higress-plugins/gpustack_higress_plugins/plugins/transformer");
    let version = std::fs::read_dir(base).ok()?.next()?.ok()?.path();
    Some(version.join("plugin.wasm"))
}

#[test]
fn transformer_pair_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_go-compare"))
        .args(["--only", "transformer", "--samples", "1", "--requests", "3"])
        .arg("--no-envoy")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let header = cells(lines[0]);
    assert_eq!(
        header,
        [
            "plugin",
            "request",
            "LOC Go",
            "LOC Rust",
            ".wasm Go",
            ".wasm Rust",
            "compile + start Go",
            "compile + start Rust",
            "fuel / request Go",
            "fuel / request Rust",
            "Envoy latency Go",
            "Envoy latency Rust"
        ]
    );
    let rows: Vec<Vec<String>> = lines
        .iter()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| cells(l))
        .collect();
    assert_eq!(rows.len(), 2, "the header and the body scenario: {stdout}");

    let rust_wasm = higress_e2e::wasm_module("transformer").unwrap();
    let rust_size = size(std::fs::metadata(&rust_wasm).unwrap().len());
    let go_wasm = go_transformer().filter(|p| p.is_file());
    if go_wasm.is_none() {
        eprintln!("SKIPPED the Go side: gpustack-higress-plugins is not installed");
    }
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{row:?}");
        assert_eq!(row[0], "transformer");
        assert!(number(&row[2]).is_some_and(|n| n > 0), "Go LOC {row:?}");
        assert!(number(&row[3]).is_some_and(|n| n > 0), "Rust LOC {row:?}");
        assert_eq!(row[5], rust_size, "{row:?}");
        assert!(row[7].ends_with(" ms"), "{row:?}");
        assert!(number(&row[9]).is_some_and(|n| n > 0), "Rust fuel {row:?}");
        assert_eq!(row[10], "--no-envoy");
        assert_eq!(row[11], "--no-envoy");
        if let Some(go) = &go_wasm {
            assert_eq!(
                row[4],
                size(std::fs::metadata(go).unwrap().len()),
                "{row:?}"
            );
            assert!(row[6].ends_with(" ms"), "{row:?}");
            assert!(number(&row[8]).is_some_and(|n| n > 0), "Go fuel {row:?}");
        }
    }
    // The detail table and the notes follow.
    assert!(stdout.contains("| plugin | request | compile Go | compile Rust |"));
    assert!(stdout.contains("Go lines: non-test `.go` files"));
}
