//! What a large `_rules_` config costs in memory, counted by the allocator.
//!
//! A counting global allocator records the bytes live on the heap. Starting a
//! plugin with N rules is measured twice: the **peak** (the most bytes live at
//! once while the configuration is parsed, over what was live before) and what
//! stays **retained** once the plugin runs. On wasm32 the module's memory never
//! shrinks, so the peak is what a worker keeps for good.
//!
//! The counts are deterministic for a given build (no timing), so they are
//! asserted. This file is its own test binary (one test) so that no other test
//! allocates while it measures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unsafe_code
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use higress_test_host::TestHost;
use higress_wrapper::prelude::*;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    some_field: String,
    #[serde(default)]
    limit: u32,
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    ctx.set_request_header("x-some-field", &config.some_field);
    ctx.set_request_header("x-limit", config.limit.to_string());
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "config-memory",
    config: Config,
    on_request_headers: on_request_headers,
}

/// A config of the shape the fault run used (about 67 bytes per rule, a
/// small global config), with every kind of match key: mostly exact routes
/// and domains, some wildcard domains, services and route prefixes.
fn config(rules: usize) -> String {
    let mut out = String::from(r#"{"some_field": "global", "limit": 10, "_rules_": ["#);
    for i in 0..rules {
        if i > 0 {
            out.push(',');
        }
        let rule = match i % 8 {
            0..=3 => format!(r#"{{"_match_route_":["default/route-{i:06}"],"some_field":"r{i}"}}"#),
            4 | 5 => {
                format!(r#"{{"_match_domain_":["host-{i:06}.example.com"],"some_field":"d{i}"}}"#)
            }
            6 => format!(r#"{{"_match_domain_":["*.w{i:06}.example.com"],"some_field":"w{i}"}}"#),
            _ => {
                if i % 16 == 7 {
                    format!(
                        r#"{{"_match_service_":["svc-{i:06}.ns.svc.cluster.local:80"],"some_field":"s{i}"}}"#
                    )
                } else {
                    format!(r#"{{"_match_route_prefix_":["api-{i:06}-"],"some_field":"p{i}"}}"#)
                }
            }
        };
        out.push_str(&rule);
    }
    out.push_str("]}");
    out
}

struct Cost {
    config_bytes: usize,
    peak: usize,
    retained: usize,
}

fn measure(rules: usize) -> (Cost, TestHost) {
    let raw = config(rules);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let host = TestHost::start::<Plugin>(&raw).unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let retained = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let cost = Cost {
        config_bytes: raw.len(),
        peak,
        retained,
    };
    (cost, host)
}

fn field_for(host: &TestHost, authority: &str, route: Option<&str>) -> Option<String> {
    let mut s = host.http_stream();
    s.set_authority(authority);
    if let Some(route) = route {
        s.set_route_name(route);
    }
    s.send_request_headers(&[(":path", "/"), (":method", "GET")], true)
        .unwrap();
    s.upstream_request_header("x-some-field")
        .map(|v| v.to_string())
}

#[test]
fn memory_per_rule_is_bounded() {
    const RULES: usize = 20_000;
    let (cost, host) = measure(RULES);
    let per_rule_peak = cost.peak / RULES;
    let per_rule_retained = cost.retained / RULES;
    println!(
        "{RULES} rules, {} bytes of config ({} per rule): peak {} bytes ({per_rule_peak} per rule), \
         retained {} bytes ({per_rule_retained} per rule)",
        cost.config_bytes,
        cost.config_bytes / RULES,
        cost.peak,
        cost.retained
    );

    // The rules still work: first, middle and last of each kind.
    assert_eq!(
        field_for(&host, "x", Some("default/route-000000")).as_deref(),
        Some("r0")
    );
    assert_eq!(
        field_for(&host, "host-019996.example.com", None).as_deref(),
        Some("d19996")
    );
    assert_eq!(
        field_for(&host, "a.w010006.example.com:443", None).as_deref(),
        Some("w10006")
    );
    assert_eq!(
        field_for(&host, "x", Some("api-019999-v1")).as_deref(),
        Some("p19999")
    );
    assert_eq!(
        field_for(&host, "nothing", Some("nothing")).as_deref(),
        Some("global")
    );

    // The host holds the config text and hands the plugin a copy: two copies
    // of the text are the floor of the peak. What the SDK adds on top of them
    // is bounded per rule.
    let sdk_peak = cost.peak.saturating_sub(2 * cost.config_bytes) / RULES;
    println!("peak over the two copies of the config text: {sdk_peak} bytes per rule");
    println!(
        "kept by the running plugin (retained minus the host's copy of the text): {} bytes per rule",
        cost.retained.saturating_sub(cost.config_bytes) / RULES
    );
    assert!(
        sdk_peak <= 400,
        "parsing costs {sdk_peak} bytes per rule at its peak (bound 400)"
    );
    assert!(
        per_rule_retained <= 300,
        "a running plugin keeps {per_rule_retained} bytes per rule (bound 300)"
    );
}
