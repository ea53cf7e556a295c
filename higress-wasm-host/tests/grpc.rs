//! gRPC in wasm mode: the compiled `e2e-hostcalls` module (the one the
//! Envoy end-to-end test drives against a real gRPC server) with its unary
//! calls and streams answered by the test through the native host's API
//! (`respond_grpc`, `fail_grpc`, `grpc_stream_message`,
//! `close_grpc_stream`), delivered as Envoy calls the module.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{Action, CalloutKind, CalloutState, DeliveryError, HttpStream, TestHost};

fn start(clusters: &[&str]) -> TestHost {
    TestHost::builder()
        .clusters(clusters.iter().copied())
        .start(&common::module("e2e-hostcalls"), "{}")
        .unwrap()
}

/// A request running `op` with `x-hc-message`; paused on its one callout.
fn request<'h>(host: &'h TestHost, op: &str, message: &str) -> (HttpStream<'h>, u32) {
    let mut s = host.http_stream();
    let headers = [
        (":path", "/"),
        ("x-hc-op", op),
        ("x-hc-method", "Say"),
        ("x-hc-message", message),
    ];
    assert_eq!(
        s.send_request_headers(&headers, true).unwrap(),
        Action::Pause
    );
    let callouts = s.callouts();
    assert_eq!(callouts.len(), 1, "{callouts:?}");
    (s, callouts[0].token)
}

fn json(s: &HttpStream<'_>) -> serde_json::Value {
    serde_json::from_slice(&s.local_response().unwrap().body).unwrap()
}

#[test]
fn a_unary_call_answered_by_the_test() {
    let host = start(&["grpc"]);
    let (mut s, token) = request(&host, "grpc", "hello");
    let call = host.callouts().into_iter().next().unwrap();
    match &call.kind {
        CalloutKind::Grpc {
            upstream,
            service,
            method,
            initial_metadata,
            message,
            timeout,
        } => {
            assert_eq!(upstream, "grpc");
            assert_eq!(service, "hc.Echo");
            assert_eq!(method, "Say");
            assert_eq!(message, b"hello");
            assert_eq!(timeout.as_secs(), 5);
            assert!(initial_metadata
                .iter()
                .any(|(k, v)| k == "x-tenant" && v == "t1"));
        }
        other => panic!("not a unary gRPC call: {other:?}"),
    }
    host.respond_grpc(token, "HELLO").unwrap();
    assert_eq!(s.local_response().unwrap().status, 200);
    assert_eq!(json(&s)["grpc"], "HELLO");
    assert_eq!(host.callouts()[0].state, CalloutState::Delivered);
    // Envoy's `onGrpcReceive`, the message read from buffer 5.
    let work = host.work();
    let receive = work
        .iter()
        .find(|w| w.callback == "proxy_on_grpc_receive")
        .unwrap();
    assert_eq!(receive.stream, Some(s.context_id()));
    assert!(receive.hostcalls.contains(&"proxy_get_buffer_bytes"));
    // Answered once: a second answer is refused.
    assert_eq!(
        host.respond_grpc(token, "again"),
        Err(DeliveryError::NotPending(token))
    );
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn a_failure_status_reaches_the_plugin_with_its_message() {
    let host = start(&["grpc"]);
    let (mut s, token) = request(&host, "grpc", "hello");
    assert_eq!(
        host.grpc_stream_message(token, "x"),
        Err(DeliveryError::WrongKind(token))
    );
    host.fail_grpc(token, 14, "upstream connect error").unwrap();
    assert_eq!(s.local_response().unwrap().status, 503);
    let error = json(&s)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("14"), "{error}");
    assert!(error.contains("upstream connect error"), "{error}");
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn an_unknown_cluster_is_bad_argument_as_in_envoy() {
    let host = start(&["other"]);
    let mut s = host.http_stream();
    let headers = [(":path", "/"), ("x-hc-op", "grpc"), ("x-hc-message", "m")];
    s.send_request_headers(&headers, true).unwrap();
    assert!(host.callouts().is_empty());
    assert_eq!(s.local_response().unwrap().status, 503);
    let error = json(&s)["error"].as_str().unwrap().to_owned();
    assert!(error.to_lowercase().contains("bad"), "{error}");
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn a_server_stream_delivers_several_messages_then_closes() {
    let host = start(&["grpc"]);
    let (mut s, token) = request(&host, "grpc-stream", "a,b");
    match &host.callouts()[0].kind {
        CalloutKind::GrpcStream {
            upstream,
            service,
            method,
            sent,
            half_closed,
            ..
        } => {
            assert_eq!((upstream.as_str(), service.as_str()), ("grpc", "hc.Echo"));
            assert_eq!(method, "Say");
            assert_eq!(sent, &vec![b"a".to_vec(), b"b".to_vec()]);
            assert!(half_closed, "the last send ended the stream");
        }
        other => panic!("not a gRPC stream: {other:?}"),
    }
    host.clear_work();
    for word in ["one", "two", "three"] {
        host.grpc_stream_message(token, word).unwrap();
        assert!(s.local_response().is_none(), "still reading");
        assert_eq!(host.callouts()[0].state, CalloutState::Pending);
    }
    host.close_grpc_stream(token, 0, "").unwrap();
    assert_eq!(s.local_response().unwrap().status, 200);
    assert_eq!(
        json(&s)["replies"],
        serde_json::json!(["one", "two", "three"])
    );
    // Envoy's stream callbacks, in order, on the root context.
    let grpc: Vec<&str> = host
        .work()
        .iter()
        .filter(|w| w.callback.contains("grpc"))
        .map(|w| w.callback)
        .collect();
    assert_eq!(
        grpc,
        [
            "proxy_on_grpc_receive_initial_metadata",
            "proxy_on_grpc_receive",
            "proxy_on_grpc_receive",
            "proxy_on_grpc_receive",
            "proxy_on_grpc_receive_trailing_metadata",
            "proxy_on_grpc_close",
        ]
    );
    assert_eq!(host.callouts()[0].state, CalloutState::Delivered);
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn a_stream_closed_with_an_error_status() {
    let host = start(&["grpc"]);
    let (mut s, token) = request(&host, "grpc-stream", "a");
    host.grpc_stream_message(token, "one").unwrap();
    host.close_grpc_stream(token, 14, "no healthy upstream")
        .unwrap();
    assert_eq!(s.local_response().unwrap().status, 503);
    let body = json(&s);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no healthy upstream"),
        "{body}"
    );
    assert_eq!(body["replies"], serde_json::json!(["one"]));
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn a_request_that_ends_first_cancels_its_stream() {
    let host = start(&["grpc"]);
    let (mut s, token) = request(&host, "grpc-stream", "a");
    host.grpc_stream_message(token, "one").unwrap();
    s.done().unwrap();
    // The SDK cancelled the stream on the host (`proxy_grpc_cancel`).
    assert_eq!(host.callouts()[0].state, CalloutState::Cancelled);
    assert!(host.pending_callouts().is_empty());
    assert_eq!(
        host.grpc_stream_message(token, "late"),
        Err(DeliveryError::NotPending(token))
    );
    assert_eq!(
        host.close_grpc_stream(token, 0, ""),
        Err(DeliveryError::NotPending(token))
    );
    assert!(!host.vm_failed());
    host.assert_idle();
}
