//! HTTP callouts through the native test host, answered the way Envoy
//! answers them: a response (status, headers, body), a timeout (Envoy's
//! local `504 upstream request timeout`), a reset (no headers), an unknown
//! cluster (`BadArgument`). Hooks waiting on sequential calls, the callback
//! style (`ctx.then`), detached work from stream done, and body callbacks
//! arriving while the headers hook still waits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Action, CalloutKind, HttpStream, TestHost};
use higress_wrapper::cluster::TargetCluster;
use higress_wrapper::http_client::{HttpClient, HttpError};
use higress_wrapper::prelude::*;
use std::time::Duration;

fn no_config(_: &JsonValue) -> Result<(), ConfigError> {
    Ok(())
}

fn auth() -> HttpClient {
    HttpClient::new(&TargetCluster::new("auth_service", "auth.local"))
}

fn error_kind(e: &HttpError) -> String {
    match e {
        HttpError::UnknownCluster { cluster } => format!("unknown-cluster {cluster}"),
        HttpError::Timeout { timeout_ms, .. } => format!("timeout {timeout_ms}"),
        HttpError::Reset { .. } => "reset".to_owned(),
        HttpError::Unavailable { detail, .. } => format!("unavailable {detail}"),
        other => format!("other {other}"),
    }
}

fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
    let mode = ctx
        .request_header("x-mode")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let handle = ctx.handle();
    match mode.as_str() {
        // One call; the response's status, a header and a JSON field land
        // in request headers, or the error's kind.
        "single" => {
            let call = auth()
                .get("/user?id=7")
                .header("x-trace", "t1")
                .timeout(Duration::from_millis(300))
                .send();
            HeaderAction::wait(async move {
                match call.await {
                    Ok(response) => {
                        let user: serde_json::Value = response.json()?;
                        handle.with(|ctx| {
                            ctx.set_request_header("x-status", response.status.to_string());
                            ctx.set_request_header(
                                "x-user",
                                user["name"].as_str().unwrap_or_default(),
                            );
                            if let Some(from) = response.header("x-from") {
                                ctx.set_request_header("x-from", from.as_bytes());
                            }
                        });
                    }
                    Err(e) => {
                        handle.with(|ctx| ctx.set_request_header("x-error", error_kind(&e)));
                    }
                }
                Ok::<_, HttpError>(HeaderAction::Continue)
            })
        }
        // Two calls, the second made once the first answered; a 403 from
        // the first answers the client.
        "sequential" => HeaderAction::wait(async move {
            let first = auth().get("/auth").send().await?;
            if first.status != 200 {
                handle.with(|ctx| ctx.send_local_response(403, &[], "denied"));
                return Ok(HeaderAction::Continue);
            }
            let user = String::from_utf8_lossy(&first.body).into_owned();
            let second = auth()
                .post(&format!("/profile/{user}"))
                .json(&[1, 2])
                .send()
                .await?;
            handle.with(|ctx| {
                ctx.set_request_header("x-user", &user);
                ctx.set_request_header("x-profile", second.body);
            });
            Ok::<_, HttpError>(HeaderAction::Continue)
        }),
        // Go's style: a closure gets the context and the reply.
        "then" => ctx.then(auth().get("/auth").send(), |ctx, reply| {
            match reply {
                Ok(response) => ctx.set_request_header("x-status", response.status.to_string()),
                Err(e) => ctx.set_request_header("x-error", error_kind(&e)),
            }
            HeaderAction::Continue
        }),
        // Waits on a call; body hooks must wait for the decision.
        "body" => HeaderAction::wait(async move {
            let response = auth().get("/auth").send().await?;
            log::info!("headers decided: {}", response.status);
            handle.with(|ctx| ctx.set_request_header("x-status", response.status.to_string()));
            Ok::<_, HttpError>(HeaderAction::Continue)
        }),
        _ => HeaderAction::Continue,
    }
}

fn on_request_body(ctx: &mut HttpContext, _: &(), body: &[u8]) -> DataAction {
    log::info!("body hook saw {:?}", String::from_utf8_lossy(body));
    ctx.set_request_header("x-from-body", body.len().to_string());
    if body == b"detach" {
        // Work a body hook starts without waiting: sent before the hook
        // returns to the host, not at some later callback.
        let release = auth().post("/release").body("from-body").send();
        ctx.spawn_detached(async move {
            if let Ok(response) = release.await {
                log::info!("released from body: {}", response.status);
            }
        });
    }
    DataAction::Continue
}

fn on_stream_done(ctx: &mut HttpContext, _: &()) {
    if ctx.request_header("x-release").is_some() {
        let release = auth().post("/release").body("slot-1").send();
        ctx.spawn_detached(async move {
            match release.await {
                Ok(response) => log::info!("released: {}", response.status),
                Err(e) => log::warn!("release failed: {e}"),
            }
        });
    }
}

higress_wrapper::set_ctx! {
    name: "http-callouts",
    config: (),
    parse_config: no_config,
    on_request_headers: on_request_headers,
    on_request_body: on_request_body,
    on_stream_done: on_stream_done,
}

fn request<'h>(host: &'h TestHost, mode: &str, end_of_stream: bool) -> HttpStream<'h> {
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(
            &[
                (":path", "/"),
                (":method", "GET"),
                (":authority", "gw"),
                ("x-mode", mode),
            ],
            end_of_stream,
        )
        .unwrap();
    assert_eq!(action, Action::Pause, "the hook waits on the call");
    assert!(s.is_request_paused());
    s
}

fn only_callout(s: &HttpStream<'_>) -> u32 {
    let callouts = s.callouts();
    assert_eq!(callouts.len(), 1, "{callouts:?}");
    callouts[0].token
}

#[test]
fn a_response_with_status_headers_and_json_body() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let s = request(&host, "single", true);
    let callout = &host.callouts()[0];
    assert_eq!(callout.token & 3, 0, "HTTP tokens are 0 mod 4");
    assert_eq!(callout.context_id, s.context_id());
    match &callout.kind {
        CalloutKind::Http {
            upstream,
            headers,
            timeout,
            ..
        } => {
            assert_eq!(upstream, "auth_service");
            let get = |n: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.to_string())
            };
            assert_eq!(get(":method").as_deref(), Some("GET"));
            assert_eq!(get(":path").as_deref(), Some("/user?id=7"));
            assert_eq!(get(":authority").as_deref(), Some("auth.local"));
            assert_eq!(get("x-trace").as_deref(), Some("t1"));
            assert_eq!(*timeout, Duration::from_millis(300));
        }
        other => panic!("{other:?}"),
    }
    host.respond_http(
        callout.token,
        200,
        &[("content-type", "application/json"), ("x-from", "auth")],
        r#"{"name": "alice"}"#,
    )
    .unwrap();
    assert!(!s.is_request_paused());
    assert_eq!(s.request_resume_count(), 1);
    assert_eq!(s.upstream_request_header("x-status").unwrap(), "200");
    assert_eq!(s.upstream_request_header("x-user").unwrap(), "alice");
    assert_eq!(s.upstream_request_header("x-from").unwrap(), "auth");
    host.assert_idle();
}

#[test]
fn any_status_is_a_response() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let s = request(&host, "single", true);
    host.respond_http(only_callout(&s), 503, &[], r#"{"name": "x"}"#)
        .unwrap();
    assert_eq!(s.upstream_request_header("x-status").unwrap(), "503");
    // Envoy's own "no healthy upstream" is a typed error instead.
    let s2 = request(&host, "single", true);
    host.respond_http(only_callout(&s2), 503, &[], "no healthy upstream")
        .unwrap();
    assert_eq!(
        s2.upstream_request_header("x-error").unwrap(),
        "unavailable no healthy upstream"
    );
    host.assert_idle();
}

#[test]
fn a_timeout_is_envoys_504_and_a_typed_error() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let s = request(&host, "single", true);
    host.advance_time(Duration::from_millis(299));
    assert!(s.is_request_paused());
    host.advance_time(Duration::from_millis(1));
    assert!(!s.is_request_paused());
    assert_eq!(s.upstream_request_header("x-error").unwrap(), "timeout 300");
    // Answering after the timeout is refused: it was delivered.
    assert!(host
        .respond_http(s.callouts()[0].token, 200, &[], "")
        .is_err());
    host.assert_idle();
}

#[test]
fn a_reset_is_a_typed_error() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let s = request(&host, "single", true);
    host.fail_http(only_callout(&s)).unwrap();
    assert!(!s.is_request_paused());
    assert_eq!(s.upstream_request_header("x-error").unwrap(), "reset");
    host.assert_idle();
}

#[test]
fn an_unknown_cluster_fails_at_once() {
    let host = TestHost::builder()
        .clusters(["other"])
        .start::<Plugin>("{}")
        .unwrap();
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(&[(":path", "/"), ("x-mode", "single")], true)
        .unwrap();
    // Nothing to wait for: no pause.
    assert_eq!(action, Action::Continue);
    assert_eq!(
        s.upstream_request_header("x-error").unwrap(),
        "unknown-cluster auth_service"
    );
    assert!(host.callouts().is_empty());
    host.assert_idle();
}

#[test]
fn two_sequential_calls_in_one_hook() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let s = request(&host, "sequential", true);
    let first = only_callout(&s);
    host.respond_http(first, 200, &[], "bob").unwrap();
    // The second call is made once the first answered, and the request
    // still waits.
    let pending = host.pending_callouts();
    assert_eq!(pending.len(), 1);
    assert!(s.is_request_paused());
    match &pending[0].kind {
        CalloutKind::Http { headers, body, .. } => {
            let path = headers.iter().find(|(k, _)| k == ":path").unwrap();
            assert_eq!(path.1, "/profile/bob");
            assert_eq!(body, b"[1,2]");
        }
        other => panic!("{other:?}"),
    }
    host.respond_http(pending[0].token, 200, &[], "vip")
        .unwrap();
    assert!(!s.is_request_paused());
    assert_eq!(s.request_resume_count(), 1, "resumed exactly once");
    assert_eq!(s.upstream_request_header("x-user").unwrap(), "bob");
    assert_eq!(s.upstream_request_header("x-profile").unwrap(), "vip");
    host.assert_idle();
}

#[test]
fn a_local_response_instead_of_resuming() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let s = request(&host, "sequential", true);
    host.respond_http(only_callout(&s), 401, &[], "").unwrap();
    assert_eq!(s.client_response_status(), Some(403));
    assert!(s.upstream_request_headers().is_none());
    assert_eq!(
        s.request_resume_count(),
        0,
        "a local response is not resumed"
    );
    assert!(!s.is_request_paused());
    host.assert_idle();
}

#[test]
fn the_callback_style() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let s = request(&host, "then", true);
    host.respond_http(only_callout(&s), 204, &[], "").unwrap();
    assert_eq!(s.upstream_request_header("x-status").unwrap(), "204");
    assert_eq!(s.request_resume_count(), 1);
    let s2 = request(&host, "then", true);
    host.fail_http(only_callout(&s2)).unwrap();
    assert_eq!(s2.upstream_request_header("x-error").unwrap(), "reset");
    assert_eq!(s2.request_resume_count(), 1);
    host.assert_idle();
}

#[test]
fn detached_work_from_stream_done_outlives_the_stream() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-release", "1")], true)
        .unwrap();
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    s.done().unwrap();
    // The stream is gone; its detached call is in flight, owned by the root.
    let pending = host.pending_callouts();
    assert_eq!(pending.len(), 1);
    assert_eq!(host.pending_tasks(), 1);
    host.respond_http(pending[0].token, 200, &[], "").unwrap();
    assert_eq!(host.logs_containing("released: 200").len(), 1);
    host.assert_idle();
}

#[test]
fn a_reply_after_the_stream_ended_is_dropped() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = request(&host, "single", true);
    let token = only_callout(&s);
    s.done().unwrap();
    assert_eq!((host.pending_tasks(), host.pending_calls()), (0, 0));
    host.respond_http(token, 200, &[], r#"{"name": "late"}"#)
        .unwrap();
    assert!(!host.vm_failed());
    assert!(s.upstream_request_headers().is_none());
    host.assert_idle();
}

#[test]
fn body_waits_for_the_headers_decision_with_stop_iteration_allowed() {
    let host = TestHost::builder()
        .allow_on_headers_stop_iteration(true)
        .start::<Plugin>("{}")
        .unwrap();
    let mut s = request(&host, "body", false);
    // The body arrives while the headers hook waits: the SDK holds it and
    // does not run the body hook yet.
    assert_eq!(s.send_request_body("payload", true).unwrap(), Action::Pause);
    assert!(host.logs_containing("body hook").is_empty());
    assert!(s.upstream_request_headers().is_none());
    assert!(s.upstream_request_body().is_empty());
    host.respond_http(only_callout(&s), 200, &[], "").unwrap();
    // Then: the headers decision, the body hook on the held body, one resume.
    let logs: Vec<String> = host.logs().into_iter().map(|l| l.message).collect();
    let decided = logs
        .iter()
        .position(|l| l.contains("headers decided: 200"))
        .unwrap();
    let body = logs
        .iter()
        .position(|l| l.contains(r#"body hook saw "payload""#))
        .unwrap();
    assert!(decided < body, "{logs:?}");
    assert!(!s.is_request_paused());
    assert_eq!(s.request_resume_count(), 1);
    assert_eq!(s.upstream_request_header("x-status").unwrap(), "200");
    assert_eq!(s.upstream_request_header("x-from-body").unwrap(), "7");
    assert_eq!(s.upstream_request_body(), b"payload");
    assert!(s.upstream_request_complete());
    host.assert_idle();
}

#[test]
fn body_waits_for_the_headers_decision_with_stop_all() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = request(&host, "body", false);
    // Stock Envoy stops all: the host holds the body itself.
    assert_eq!(s.send_request_body("payload", true).unwrap(), Action::Held);
    host.respond_http(only_callout(&s), 200, &[], "").unwrap();
    assert!(!s.is_request_paused());
    assert_eq!(s.request_resume_count(), 1);
    assert_eq!(host.logs_containing(r#"body hook saw "payload""#).len(), 1);
    assert_eq!(s.upstream_request_body(), b"payload");
    assert!(s.upstream_request_complete());
    host.assert_idle();
}

#[test]
fn assert_idle_reports_a_paused_request() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let s = request(&host, "single", true);
    let report = host.idle_report().unwrap();
    assert!(
        report.contains(&format!("stream {}: the request is paused", s.context_id())),
        "{report}"
    );
    assert!(report.contains("HTTP callout"), "{report}");
    assert!(report.contains("1 SDK task(s)"), "{report}");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.assert_idle()));
    assert!(caught.is_err());
    host.fail_http(only_callout(&s)).unwrap();
    host.assert_idle();
}

#[test]
fn detached_work_from_a_body_hook_is_sent_at_once() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    let headers = [(":path", "/"), (":method", "POST"), (":authority", "gw")];
    assert_eq!(
        s.send_request_headers(&headers, false).unwrap(),
        Action::Continue
    );
    assert_eq!(
        s.send_request_body("detach", true).unwrap(),
        Action::Continue
    );
    let calls = host.pending_callouts();
    assert_eq!(calls.len(), 1, "{calls:?}");
    host.respond_http(calls[0].token, 200, &[], "").unwrap();
    assert!(!host.logs_containing("released from body: 200").is_empty());
    host.assert_idle();
}
