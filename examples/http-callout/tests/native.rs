//! http-callout in the SDK's native test host: the auth service answered by
//! hand, including the faults of issue 13 (a zero timeout, a reset that may
//! be an oversized response).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

const CONFIG: &str = r#"{"cluster": "auth_service", "path": "/check", "timeout_ms": 300}"#;

higress_test_host::both_modes! {
plugin: http_callout::Plugin,
package: "http-callout",

fn request<'h>(host: &'h TestHost, token: &str) -> HttpStream<'h> {
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(
            &[
                (":path", "/x"),
                (":method", "GET"),
                ("authorization", token),
            ],
            true,
        )
        .unwrap();
    assert_eq!(action, Action::Pause, "waits for the auth service");
    s
}

#[test]
fn the_callout_carries_the_configured_timeout() {
    let host = start(CONFIG).unwrap();
    let s = request(&host, "Bearer good");
    let call = &s.callouts()[0];
    match &call.kind {
        CalloutKind::Http { timeout, .. } => assert_eq!(timeout.as_millis(), 300),
        other => panic!("{other:?}"),
    }
    host.respond_http(call.token, 200, &[("x-user", "alice")], "ok")
        .unwrap();
    assert_eq!(s.upstream_request_header("x-auth-user").unwrap(), "alice");
    host.assert_idle();
}

#[test]
fn a_zero_timeout_is_refused_naming_the_field() {
    let failure =
        start(r#"{"cluster": "auth_service", "timeout_ms": 0}"#).unwrap_err();
    assert!(
        !failure
            .logs_containing("timeout_ms: a timeout of 0 ms would mean no timeout at all")
            .is_empty(),
        "{failure:?}"
    );
}

#[test]
fn a_reset_fails_closed_and_names_the_32_mib_limit() {
    // What Envoy does with a 200 whose body is over 32 MiB: a reset.
    let host = start(CONFIG).unwrap();
    let s = request(&host, "Bearer good");
    host.fail_http(s.callouts()[0].token).unwrap();
    let local = s.local_response().expect("denied");
    assert_eq!(
        (local.status, local.body.as_slice()),
        (403, &b"auth unavailable"[..])
    );
    assert!(s.upstream_request_headers().is_none());
    let errors = host.logs_at(LogLevel::Error);
    assert!(
        errors
            .iter()
            .any(|l| l.message.contains("reset before a complete response")
                && l.message.contains("32 MiB")),
        "{errors:#?}"
    );
    host.assert_idle();
}
}
