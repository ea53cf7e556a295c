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

const AUTH_CONFIG: &str = r#"{"cluster": "outbound|8080||auth.static", "authority": "auth.local", "path": "/check", "timeout_ms": 300}"#;

#[test]
fn a_reply_from_the_test_lets_the_request_through() {
    let host = start(AUTH_CONFIG).unwrap();
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(&[(":path", "/"), ("authorization", "Bearer t")], true)
        .unwrap();
    assert_eq!(action, Action::Pause);
    let calls = s.callouts();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].token & 3, 0, "HTTP tokens are 0 mod 4");
    match &calls[0].kind {
        CalloutKind::Http { upstream, headers, .. } => {
            assert_eq!(upstream, "outbound|8080||auth.static");
            let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.to_string());
            assert_eq!(get(":path").as_deref(), Some("/check"));
            assert_eq!(get(":authority").as_deref(), Some("auth.local"));
            assert_eq!(get("authorization").as_deref(), Some("Bearer t"));
        }
        other => panic!("{other:?}"),
    }
    host.respond_http(calls[0].token, 200, &[("x-user", "alice")], "").unwrap();
    assert!(!s.is_request_paused());
    assert_eq!(s.upstream_request_header("x-auth-user").unwrap(), "alice");
    host.assert_idle();
}

#[test]
fn an_unanswered_call_times_out_on_the_host_clock() {
    let host = start(AUTH_CONFIG).unwrap();
    let mut s = host.http_stream();
    assert_eq!(s.send_request_headers(&[(":path", "/")], true).unwrap(), Action::Pause);
    host.advance_time(std::time::Duration::from_millis(299));
    assert!(s.is_request_paused(), "not yet: the timeout is 300 ms");
    host.advance_time(std::time::Duration::from_millis(1));
    // Envoy answers the call with its local 504, which the SDK reads as a
    // timeout; the plugin denies.
    assert_eq!(s.client_response_status(), Some(403));
    assert_eq!(host.logs_containing("timed out after 300 ms").len(), 1, "{:?}", host.logs());
    host.assert_idle();
}
}
