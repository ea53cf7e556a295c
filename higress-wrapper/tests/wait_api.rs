//! The async style without ceremony (`ctx.wait`), the query-string
//! accessors and rule awareness, end to end through the test host.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Action, TestHost};
use higress_wrapper::cluster::TargetCluster;
use higress_wrapper::http_client::HttpClient;
use higress_wrapper::prelude::*;

#[derive(serde::Deserialize)]
struct Config {
    header: String,
    #[serde(default)]
    wrong_config: bool,
    #[serde(default)]
    other: Option<Box<Config>>,
}

fn auth() -> HttpClient {
    HttpClient::new(&TargetCluster::new("auth_service", "auth.local"))
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    // Rule awareness and the query string, read before any wait.
    let rule = ctx
        .matched_rule()
        .map_or("global".to_owned(), |i| format!("rule {i}"));
    ctx.set_request_header("x-rule", rule);
    ctx.set_request_header("x-has-rules", ctx.has_rules().to_string());
    ctx.set_request_header("x-tags", ctx.query_param_all("tag").join(","));
    if let Some(user) = ctx.query_param("user") {
        ctx.set_request_header("x-user", user);
    }
    if ctx.query_param("wait").is_none() {
        return HeaderAction::Continue;
    }
    if config.wrong_config {
        // Not the config this hook received: the wait fails (fail open).
        let other = config.other.as_deref().unwrap_or(config);
        return ctx.wait(
            other,
            |_ctx, _config| async move { Ok(HeaderAction::Continue) },
        );
    }
    ctx.wait(config, |ctx, config| async move {
        // The first poll runs right after the hook returned: the handle
        // reaches the request before any `.await`, too.
        ctx.set_request_header("x-before-await", "1");
        let answer = auth().get("/check").send().await?;
        if answer.status == 403 {
            ctx.send_local_response(403, &[], "denied");
            return Ok(HeaderAction::Continue);
        }
        if answer.status != 200 {
            return Err(Error::msg(format!("auth answered {}", answer.status)));
        }
        ctx.set_request_header(&config.header, "allowed");
        Ok(HeaderAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "wait-api",
    config: Config,
    on_request_headers: on_request_headers,
}

const CONFIG: &str = r#"{
    "header": "x-auth",
    "_rules_": [
        {"_match_domain_": ["wrong.com"], "wrong_config": true, "other": {"header": "x-other"}},
        {"_match_domain_": ["rule.com"], "header": "x-auth-rule"}
    ]
}"#;

fn send<'h>(
    host: &'h TestHost,
    authority: &str,
    path: &str,
) -> (higress_test_host::HttpStream<'h>, Action) {
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(
            &[
                (":path", path),
                (":method", "GET"),
                (":authority", authority),
            ],
            true,
        )
        .unwrap();
    (s, action)
}

fn header(s: &higress_test_host::HttpStream<'_>, name: &str) -> Option<String> {
    s.upstream_request_header(name).map(|v| v.to_string())
}

#[test]
fn the_future_gets_the_request_and_the_matched_config() {
    let host = TestHost::start::<Plugin>(CONFIG).unwrap();
    let (s, action) = send(&host, "rule.com", "/?wait=1");
    assert_eq!(action, Action::Pause);
    let token = host.callouts()[0].token;
    host.respond_http(token, 200, &[], "").unwrap();
    assert_eq!(s.request_resume_count(), 1);
    // The rule's config reached the future (its header name).
    assert_eq!(header(&s, "x-auth-rule").as_deref(), Some("allowed"));
    assert_eq!(header(&s, "x-auth"), None);
    assert_eq!(header(&s, "x-rule").as_deref(), Some("rule 1"));
    assert_eq!(header(&s, "x-before-await").as_deref(), Some("1"));
    host.assert_idle();
}

#[test]
fn a_local_response_from_the_handle_ends_the_request() {
    let host = TestHost::start::<Plugin>(CONFIG).unwrap();
    let (s, _) = send(&host, "a.com", "/?wait=1");
    let token = host.callouts()[0].token;
    host.respond_http(token, 403, &[], "").unwrap();
    assert_eq!(s.local_response().map(|r| r.status), Some(403));
    assert_eq!(s.request_resume_count(), 0);
    host.assert_idle();
}

#[test]
fn an_error_from_the_future_is_logged_and_the_request_continues() {
    let host = TestHost::start::<Plugin>(CONFIG).unwrap();
    let (s, _) = send(&host, "a.com", "/?wait=1");
    let token = host.callouts()[0].token;
    host.respond_http(token, 500, &[], "").unwrap();
    assert!(!host.logs_containing("auth answered 500").is_empty());
    assert_eq!(s.request_resume_count(), 1);
    assert_eq!(header(&s, "x-auth"), None);
    host.assert_idle();
}

#[test]
fn a_config_other_than_the_hooks_fails_the_wait() {
    let host = TestHost::start::<Plugin>(CONFIG).unwrap();
    let (s, action) = send(&host, "wrong.com", "/?wait=1");
    // The failure is immediate: no pause, logged, the request continues.
    assert_eq!(action, Action::Continue);
    assert!(!host
        .logs_containing("is not the config this hook received")
        .is_empty());
    assert!(host.callouts().is_empty());
    drop(s);
    host.assert_idle();
}

#[test]
fn query_params_are_decoded_and_multi_valued() {
    let host = TestHost::start::<Plugin>(CONFIG).unwrap();
    let (s, action) = send(&host, "a.com", "/p?user=a%20b+c&tag=x&tag=%E4%BD%A0");
    assert_eq!(action, Action::Continue);
    assert_eq!(header(&s, "x-user").as_deref(), Some("a b c"));
    assert_eq!(header(&s, "x-tags").as_deref(), Some("x,你"));
}

#[test]
fn rule_awareness_with_and_without_rules() {
    let host = TestHost::start::<Plugin>(CONFIG).unwrap();
    let (s, _) = send(&host, "a.com", "/");
    assert_eq!(header(&s, "x-rule").as_deref(), Some("global"));
    assert_eq!(header(&s, "x-has-rules").as_deref(), Some("true"));

    let host = TestHost::start::<Plugin>(r#"{"header": "x-auth"}"#).unwrap();
    let (s, _) = send(&host, "rule.com", "/");
    assert_eq!(header(&s, "x-rule").as_deref(), Some("global"));
    assert_eq!(header(&s, "x-has-rules").as_deref(), Some("false"));
}
