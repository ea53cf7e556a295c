//! HTTP callouts under faults, in the native test host: timeouts that would
//! reach the host as 0 (Envoy's "no timeout") or wrap around its 32-bit
//! field, and a reset (what Envoy reports for a response over 32 MiB). Each
//! request ends answered or resumed, nothing left waiting.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Action, CalloutKind, LogLevel, TestHost};
use higress_wrapper::cluster::TargetCluster;
use higress_wrapper::http_client::{HttpClient, HttpError, MAX_TIMEOUT};
use higress_wrapper::prelude::*;
use std::time::Duration;

#[derive(serde::Deserialize)]
struct Config {}

/// Calls `auth` with the timeout given in `x-timeout-ns` nanoseconds.
fn on_request_headers(ctx: &mut HttpContext, _config: &Config) -> HeaderAction {
    let nanos: u64 = ctx
        .request_header("x-timeout-ns")
        .and_then(|v| v.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or(500_000_000);
    let client = HttpClient::new(&TargetCluster::new("auth", "auth.local"));
    let call = client
        .get("/check")
        .timeout(Duration::from_nanos(nanos))
        .send();
    let handle = ctx.handle();
    HeaderAction::wait(async move {
        let response = call.await?;
        handle.with(|ctx| ctx.set_request_header("x-status", response.status.to_string()));
        Ok::<_, HttpError>(HeaderAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "faults-http",
    config: Config,
    on_request_headers: on_request_headers,
}

fn timeout_of(host: &TestHost, index: usize) -> Duration {
    match &host.callouts()[index].kind {
        CalloutKind::Http { timeout, .. } => *timeout,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_zero_timeout_is_never_sent_and_others_round_up() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    // Zero: refused before the host sees it; the request fails open.
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(&[(":path", "/"), ("x-timeout-ns", "0")], true)
        .unwrap();
    assert_eq!(action, Action::Continue);
    assert!(host.callouts().is_empty());
    assert!(s.upstream_request_headers().is_some());
    let errors = host.logs_at(LogLevel::Error);
    assert!(
        errors
            .iter()
            .any(|l| l.message.contains("a timeout of 0 means no timeout")),
        "{errors:#?}"
    );

    // 1 ns, 999.999 µs and 1.000001 ms: 1, 1 and 2 ms; 2^32 ms and more:
    // capped, not wrapped to 0.
    let cases: [(u64, Duration); 5] = [
        (1, Duration::from_millis(1)),
        (999_999, Duration::from_millis(1)),
        (1_000_001, Duration::from_millis(2)),
        ((1 << 32) * 1_000_000, MAX_TIMEOUT),
        (u64::MAX, MAX_TIMEOUT),
    ];
    for (i, (nanos, sent)) in cases.iter().enumerate() {
        let mut s = host.http_stream();
        let nanos = nanos.to_string();
        let action = s
            .send_request_headers(&[(":path", "/"), ("x-timeout-ns", nanos.as_str())], true)
            .unwrap();
        assert_eq!(action, Action::Pause);
        assert_eq!(timeout_of(&host, i), *sent, "{nanos} ns");
        host.respond_http(host.callouts()[i].token, 204, &[], "")
            .unwrap();
        assert_eq!(s.upstream_request_header("x-status").unwrap(), "204");
    }
    host.assert_idle();
}

#[test]
fn a_reset_is_reported_with_the_size_limit_as_a_possible_cause() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    host.fail_http(host.callouts()[0].token).unwrap();
    assert!(s.upstream_request_headers().is_some(), "fail open");
    let errors = host.logs_at(LogLevel::Error);
    assert!(
        errors.iter().any(|l| l.message.contains("32 MiB")),
        "{errors:#?}"
    );
    host.assert_idle();
}
