//! A trap poisons the VM; the fail policy decides what this request and
//! the next ones see (the probe plugin panics in the hook named by
//! `x-probe-panic`; release builds abort, so the panic is a wasm trap).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{Action, FailPolicy, TestHost};
use std::time::Duration;

const CONFIG: &str = r#"{"tag": "t"}"#;

fn host(policy: FailPolicy) -> TestHost {
    TestHost::builder()
        .fail_policy(policy)
        .reload_backoff(Duration::from_secs(3))
        .start(&common::module("e2e-probe"), CONFIG)
        .unwrap()
}

fn panicking_request(host: &TestHost) -> (Action, Option<u32>, bool) {
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(&[(":path", "/"), ("x-probe-panic", "headers")], true)
        .unwrap();
    (
        action,
        s.client_response_status(),
        s.upstream_request_headers().is_some(),
    )
}

fn plain_request(host: &TestHost) -> (Action, Option<u32>, Option<String>) {
    let mut s = host.http_stream();
    let action = s.send_request_headers(&[(":path", "/")], true).unwrap();
    (
        action,
        s.client_response_status(),
        s.upstream_request_header("x-probe-tag")
            .map(|v| v.to_string()),
    )
}

#[test]
fn fail_closed_answers_503_now_and_after() {
    let host = host(FailPolicy::Closed);
    assert_eq!(
        plain_request(&host),
        (Action::Continue, None, Some("t".into()))
    );
    let (action, status, proxied) = panicking_request(&host);
    assert_eq!((action, status, proxied), (Action::Ended, Some(503), false));
    assert!(host.vm_failed());
    let traps = host.traps();
    assert_eq!(traps.len(), 1);
    assert!(
        traps[0].starts_with("Function: proxy_on_request_headers failed"),
        "{traps:?}"
    );
    // The panic message reached the log before the trap.
    assert!(
        !host.logs_containing("panicked").is_empty(),
        "{:?}",
        host.logs()
    );
    // The next request never reaches the plugin.
    assert_eq!(plain_request(&host), (Action::Ended, Some(503), None));
    host.advance_time(Duration::from_secs(60));
    assert_eq!(plain_request(&host).1, Some(503));
}

#[test]
fn fail_open_skips_the_plugin() {
    let host = host(FailPolicy::Open);
    let (action, status, proxied) = panicking_request(&host);
    assert_eq!((action, status, proxied), (Action::Continue, None, true));
    // Later requests pass untouched: no tag from the plugin.
    assert_eq!(plain_request(&host), (Action::Continue, None, None));
}

#[test]
fn fail_reload_serves_again_after_the_backoff() {
    let host = host(FailPolicy::Reload);
    assert_eq!(panicking_request(&host).1, Some(503));
    host.advance_time(Duration::from_secs(2));
    assert_eq!(plain_request(&host).1, Some(503), "within the backoff");
    assert_eq!(host.reload_count(), 0);
    host.advance_time(Duration::from_secs(1));
    assert_eq!(
        plain_request(&host),
        (Action::Continue, None, Some("t".into()))
    );
    assert_eq!(host.reload_count(), 1);
    assert!(!host.vm_failed());
    // The new VM ran start again (configured twice in all).
    assert!(
        host.work()
            .iter()
            .filter(|w| w.callback == "proxy_on_configure")
            .count()
            == 2
    );
}
