//! Work counted: wasmtime fuel (operators executed) per callback, and the
//! host calls each callback made. Deterministic for a given module and
//! input, unlike wall-clock time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Fuel given to every callback: far more than any plugin needs, so only a
/// runaway loop runs out (it traps, failing the VM, as a V8 watchdog would).
pub(crate) const FUEL_PER_CALL: u64 = 10_000_000_000;

/// The work of one callback into the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackWork {
    /// The export called, e.g. `proxy_on_request_headers`.
    pub callback: &'static str,
    /// The context id it was called with.
    pub context_id: u32,
    /// The HTTP stream it served: its own context, or the stream that made
    /// the callout a reply belongs to; `None` for root-only work.
    pub stream: Option<u32>,
    /// Fuel consumed (wasm operators executed, wasmtime's default costs),
    /// guest allocations made for host calls included.
    pub fuel: u64,
    /// The host calls it made, in order (`proxy_log`, `fd_write`, ...).
    pub hostcalls: Vec<&'static str>,
}

/// Fuel per callback name, summed over `work`.
pub fn fuel_by_callback(work: &[CallbackWork]) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for w in work {
        *out.entry(w.callback).or_insert(0) += w.fuel;
    }
    out
}

/// A printable table: one row per callback, with its fuel and host calls.
pub fn format_table(work: &[CallbackWork]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>7} {:>12}  host calls",
        "callback", "context", "fuel"
    );
    for w in work {
        let mut calls: Vec<String> = Vec::new();
        let mut last: Option<(&str, usize)> = None;
        for c in &w.hostcalls {
            match &mut last {
                Some((name, n)) if name == c => *n += 1,
                _ => {
                    if let Some((name, n)) = last.take() {
                        calls.push(if n > 1 {
                            format!("{name} x{n}")
                        } else {
                            name.to_owned()
                        });
                    }
                    last = Some((c, 1));
                }
            }
        }
        if let Some((name, n)) = last {
            calls.push(if n > 1 {
                format!("{name} x{n}")
            } else {
                name.to_owned()
            });
        }
        let _ = writeln!(
            out,
            "{:<34} {:>7} {:>12}  {}",
            w.callback,
            w.context_id,
            w.fuel,
            calls.join(", ")
        );
    }
    let total: u64 = work.iter().map(|w| w.fuel).sum();
    let _ = writeln!(out, "{:<34} {:>7} {:>12}", "total", "", total);
    out
}
