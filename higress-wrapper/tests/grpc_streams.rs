//! gRPC streams (`proxy_grpc_stream`, send, half-close, cancel; replies
//! through `proxy_on_grpc_receive` / `proxy_on_grpc_close`) on the async
//! core: a hook reading a stream is resumed once when it ends, and a
//! request that ends first cancels the stream and drops what comes later.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Action, CalloutKind, CalloutState, DeliveryError, TestHost};
use higress_wrapper::grpc::{GrpcError, GrpcStream};
use higress_wrapper::prelude::*;

#[derive(Debug, Default, serde::Deserialize)]
struct Config {}

/// Server streaming: sends `x-words`, joins every reply into `x-replies`;
/// a failure answers 503 with the error.
fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    let words = ctx
        .request_header("x-words")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    ctx.wait(config, |ctx, _| async move {
        let mut stream = GrpcStream::open("grpc", "hc.Echo", "Split", &[("x-tenant", b"t1")])?;
        stream.send(&words, false)?;
        stream.close()?;
        let mut replies = Vec::new();
        loop {
            match stream.next().await {
                Ok(Some(message)) => replies.push(String::from_utf8_lossy(&message).into_owned()),
                Ok(None) => break,
                Err(GrpcError::Status { code, message }) => {
                    ctx.send_local_response(503, &[], format!("grpc status {code}: {message}"));
                    return Ok(HeaderAction::Continue);
                }
                Err(e) => return Err(e.into()),
            }
        }
        ctx.set_request_header("x-replies", replies.join(","));
        Ok::<_, higress_wrapper::Error>(HeaderAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "grpc-streams",
    plugin: Plugin,
    config: Config,
    on_request_headers: on_request_headers,
}

fn start() -> TestHost {
    TestHost::builder()
        .clusters(["grpc"])
        .start::<Plugin>("{}")
        .unwrap()
}

fn open<'h>(host: &'h TestHost) -> (higress_test_host::HttpStream<'h>, u32) {
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(&[(":path", "/"), ("x-words", "a b c")], true)
        .unwrap();
    assert_eq!(action, Action::Pause, "paused while the stream is open");
    let callouts = s.callouts();
    assert_eq!(callouts.len(), 1);
    match &callouts[0].kind {
        CalloutKind::GrpcStream {
            upstream,
            service,
            method,
            initial_metadata,
            sent,
            half_closed,
        } => {
            assert_eq!(upstream, "grpc");
            assert_eq!(service, "hc.Echo");
            assert_eq!(method, "Split");
            assert_eq!(initial_metadata[0].0, "x-tenant");
            assert_eq!(sent, &vec![b"a b c".to_vec()]);
            assert!(half_closed);
        }
        other => panic!("not a gRPC stream: {other:?}"),
    }
    (s, callouts[0].token)
}

#[test]
fn every_message_is_read_and_the_request_resumes_once_at_the_end() {
    let host = start();
    let (mut s, token) = open(&host);
    for word in ["a", "b", "c"] {
        host.grpc_stream_message(token, word).unwrap();
        assert!(s.is_request_paused(), "still reading");
    }
    host.close_grpc_stream(token, 0, "").unwrap();
    assert!(!s.is_request_paused());
    assert_eq!(s.request_resume_count(), 1);
    assert_eq!(s.upstream_request_header("x-replies").unwrap(), "a,b,c");
    s.done().unwrap();
    assert_eq!(host.pending_calls(), 0);
    host.assert_idle();
}

#[test]
fn a_non_ok_end_carries_its_status() {
    let host = start();
    let (mut s, token) = open(&host);
    host.grpc_stream_message(token, "a").unwrap();
    host.close_grpc_stream(token, 14, "upstream connect error")
        .unwrap();
    let reply = s.local_response().unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, b"grpc status 14: upstream connect error");
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn a_request_that_ends_first_cancels_its_stream() {
    let host = start();
    let (mut s, token) = open(&host);
    host.grpc_stream_message(token, "a").unwrap();
    s.done().unwrap();
    // The plugin cancelled the stream on the host; nothing is left.
    let callout = host
        .callouts()
        .into_iter()
        .find(|c| c.token == token)
        .unwrap();
    assert_eq!(callout.state, CalloutState::Cancelled);
    assert_eq!(host.pending_calls(), 0);
    assert_eq!(host.pending_tasks(), 0);
    assert!(matches!(
        host.grpc_stream_message(token, "late"),
        Err(DeliveryError::NotPending(_))
    ));
    host.assert_idle();
}
