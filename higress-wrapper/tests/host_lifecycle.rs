//! The test host end to end: plugin start and its failures, tick functions,
//! logging (prefix, levels), stream lifecycle, and panics in plugin code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Action, LogLevel, StartStage, TestHost};
use higress_wrapper::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    refuse: bool,
    #[serde(default)]
    panic_in_start: bool,
}

fn on_plugin_start(ctx: &mut PluginContext<'_, Config>) -> Result<(), StartError> {
    let config = ctx.global_config().expect("a global config");
    if config.panic_in_start {
        panic!("boom in start");
    }
    if config.refuse {
        return Err(StartError::new("refused by the plugin"));
    }
    log::info!(
        "started {} with {} rule(s)",
        ctx.plugin_name(),
        ctx.rule_count()
    );
    log::debug!("a debug line\nwith a newline");
    Ok(())
}

fn tick_fast(_: &mut PluginContext<'_, Config>) {
    log::info!("tick fast");
}

fn tick_slow(_: &mut PluginContext<'_, Config>) {
    log::info!("tick slow");
}

fn on_request_headers(ctx: &mut HttpContext, _: &Config) -> HeaderAction {
    log::info!("request on context {}", ctx.context_id());
    if ctx.request_header("x-panic").is_some() {
        panic!("boom in a hook");
    }
    HeaderAction::Continue
}

fn on_stream_done(ctx: &mut HttpContext, _: &Config) {
    log::info!("done {} in {:?}", ctx.context_id(), ctx.execution_phase());
}

higress_wrapper::set_ctx! {
    name: "lifecycle",
    config: Config,
    on_plugin_start: on_plugin_start,
    on_tick: [(Duration::from_millis(100), tick_fast), (Duration::from_millis(250), tick_slow)],
    on_request_headers: on_request_headers,
    on_stream_done: on_stream_done,
}

fn count(host: &TestHost, needle: &str) -> usize {
    host.logs_containing(needle).len()
}

#[test]
fn start_runs_plugin_start_and_logs_with_the_prefix() {
    let host = TestHost::start::<Plugin>(r#"{"_plugin_id_": "pid-1"}"#).unwrap();
    let started = host.logs_containing("started lifecycle");
    assert_eq!(started.len(), 1, "{:?}", host.logs());
    assert_eq!(started[0].level, LogLevel::Info);
    assert_eq!(
        started[0].message,
        "[lifecycle] [pid-1] [nil] started lifecycle with 0 rule(s)"
    );
    // Newlines are escaped so a record stays on one line.
    let debug = host.logs_containing("a debug line");
    assert_eq!(
        debug[0].message,
        "[lifecycle] [pid-1] [nil] a debug line\\nwith a newline"
    );
    assert!(host.abi_errors().is_empty());
}

#[test]
fn lines_below_the_host_level_are_not_emitted() {
    let host = TestHost::builder()
        .log_level(LogLevel::Info)
        .start::<Plugin>("{}")
        .unwrap();
    assert_eq!(count(&host, "started lifecycle"), 1);
    assert_eq!(count(&host, "a debug line"), 0);
    // The SDK checks the level before calling proxy_log at all.
    assert_eq!(host.suppressed_log_count(), 0);
    assert!(host.logs().iter().all(|l| l.level >= LogLevel::Info));

    host.set_log_level(LogLevel::Error);
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert_eq!(count(&host, "request on context"), 0);
    host.set_log_level(LogLevel::Trace);
    s.done().unwrap();
    assert_eq!(count(&host, "done "), 1);
}

#[test]
fn a_bad_config_fails_start_with_the_reason_in_the_logs() {
    let failure = TestHost::start::<Plugin>(r#"{"refuse": "yes"}"#).unwrap_err();
    assert_eq!(failure.stage, StartStage::Configure);
    let lines = failure.logs_containing("refuse");
    assert!(!lines.is_empty(), "{failure}");
    assert!(
        lines.iter().all(|l| l.level == LogLevel::Error),
        "{failure}"
    );
    // The configured value itself is not echoed.
    assert!(!failure.to_string().contains("\"yes\""), "{failure}");
}

#[test]
fn invalid_json_and_unknown_fields_fail_start() {
    let failure = TestHost::start::<Plugin>("{not json").unwrap_err();
    assert_eq!(failure.stage, StartStage::Configure);
    assert!(!failure.logs.is_empty());
    let failure = TestHost::start::<Plugin>(r#"{"nope": 1}"#).unwrap_err();
    assert!(!failure.logs_containing("nope").is_empty(), "{failure}");
}

#[test]
fn a_start_error_from_the_plugin_fails_start() {
    let failure = TestHost::start::<Plugin>(r#"{"refuse": true}"#).unwrap_err();
    assert_eq!(failure.stage, StartStage::Configure);
    assert!(
        !failure.logs_containing("refused by the plugin").is_empty(),
        "{failure}"
    );
    assert!(failure.to_string().contains("refused by the plugin"));
}

#[test]
fn tick_functions_run_at_their_periods() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    // The host timer runs at the gcd of the periods.
    assert_eq!(host.tick_period(), Some(Duration::from_millis(50)));
    let t0 = host.now();
    host.advance_time(Duration::from_millis(1000));
    assert_eq!(
        host.now().duration_since(t0).unwrap(),
        Duration::from_millis(1000)
    );
    // Ticks at 50, 100, ..., 1000 ms; every function also runs on the first.
    assert_eq!(count(&host, "tick fast"), 10); // 50, 150, ..., 950
    assert_eq!(count(&host, "tick slow"), 4); // 50, 300, 550, 800
    host.advance_time(Duration::from_millis(49));
    assert_eq!(count(&host, "tick fast"), 10);
    host.advance_time(Duration::from_millis(1));
    assert_eq!(count(&host, "tick fast"), 11);
}

#[test]
fn tick_delivers_one_tick_now() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    host.tick();
    assert_eq!(count(&host, "tick fast"), 1);
    assert_eq!(count(&host, "tick slow"), 1);
    // Same instant: no period has elapsed for either function.
    host.tick();
    assert_eq!(count(&host, "tick fast"), 1);
}

#[test]
fn a_stream_runs_stream_done_once_and_on_drop() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let id = {
        let mut s = host.http_stream();
        let id = s.context_id();
        assert_ne!(id, host.root_context_id());
        assert_eq!(
            s.send_request_headers(&[(":path", "/")], true).unwrap(),
            Action::Continue
        );
        assert_eq!(count(&host, &format!("request on context {id}")), 1);
        s.done().unwrap();
        assert_eq!(s.done(), Err(higress_test_host::StreamError::Done));
        assert!(s.is_done());
        id
    };
    assert_eq!(count(&host, &format!("done {id} in Done")), 1);
    // Dropping a stream ends it too.
    let id = {
        let mut s = host.http_stream();
        s.send_request_headers(&[(":path", "/")], true).unwrap();
        s.context_id()
    };
    assert_eq!(count(&host, &format!("done {id} in Done")), 1);
    // A stream that never sent anything never reached the plugin.
    drop(host.http_stream());
    assert_eq!(count(&host, "done "), 2);
}

#[test]
fn a_panic_in_a_hook_is_logged_critical_and_fails_the_vm() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.set_request_id("rid-7");
    let result = catch_unwind(AssertUnwindSafe(|| {
        s.send_request_headers(&[(":path", "/"), ("x-panic", "1")], true)
    }));
    let payload = result.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in a hook"));
    let critical = host.logs_at(LogLevel::Critical);
    assert_eq!(critical.len(), 1, "{:?}", host.logs());
    assert!(
        critical[0]
            .message
            .starts_with("[lifecycle] [nil] [rid-7] panicked: "),
        "{}",
        critical[0].message
    );
    assert!(critical[0].message.contains("boom in a hook"));
    // Envoy fails the stream closed and the VM stays failed.
    assert!(host.vm_failed());
    assert_eq!(s.client_response_status(), Some(503));
    assert_eq!(
        s.property(&["response", "code_details"]).unwrap(),
        b"wasm_fail_stream"
    );
    assert!(s.upstream_request_headers().is_none());
    let mut next = host.http_stream();
    assert_eq!(
        next.send_request_headers(&[(":path", "/")], true).unwrap(),
        Action::Ended
    );
    assert_eq!(next.client_response_status(), Some(503));
    host.tick(); // not delivered, no panic
    assert_eq!(count(&host, "tick fast"), 0);
}

#[test]
fn a_panic_in_plugin_start_reaches_the_test() {
    let result =
        catch_unwind(|| TestHost::start::<Plugin>(r#"{"panic_in_start": true}"#).map(drop));
    let payload = result.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in start"));
    // The thread's host is still usable afterwards.
    let host = TestHost::start::<Plugin>("{}").unwrap();
    assert_eq!(count(&host, "started lifecycle"), 1);
}
