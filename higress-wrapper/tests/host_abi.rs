//! The host ABI below the SDK, through a plugin that implements
//! `HttpPlugin` by hand and calls the raw host functions directly
//! (`common::raw_abi`): shared data, queues, metrics, recorded callouts
//! (HTTP, gRPC, Redis), foreign functions, time, effective context, stream
//! reset, configuration buffers, and several hosts on one thread.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// Higress's Redis imports have no proxy-wasm wrapper: called raw here.
#![allow(unsafe_code)]

mod common;

use common::raw_abi::{self as hostcalls, BufferType, MetricType, Status};
use higress_test_host::{Action, CalloutKind, CalloutState, MetricValue, Properties, TestHost};
use higress_wrapper::prelude::*;
use std::time::{Duration, UNIX_EPOCH};

extern "C" {
    fn proxy_redis_init(
        service: *const u8,
        service_size: usize,
        username: *const u8,
        username_size: usize,
        password: *const u8,
        password_size: usize,
        timeout_ms: u32,
    ) -> u32;
    fn proxy_redis_call(
        service: *const u8,
        service_size: usize,
        query: *const u8,
        query_size: usize,
        token: *mut u32,
    ) -> u32;
}

fn redis_init(service: &str, user: &str, password: &str) -> u32 {
    // SAFETY: all buffers live for the call.
    unsafe {
        proxy_redis_init(
            service.as_ptr(),
            service.len(),
            user.as_ptr(),
            user.len(),
            password.as_ptr(),
            password.len(),
            500,
        )
    }
}

fn redis_call(service: &str, query: &[u8]) -> (u32, u32) {
    let mut token = 0;
    // SAFETY: buffers live for the call; `token` is a valid out-pointer.
    let status = unsafe {
        proxy_redis_call(
            service.as_ptr(),
            service.len(),
            query.as_ptr(),
            query.len(),
            &mut token,
        )
    };
    (status, token)
}

struct Abi;

impl HttpPlugin for Abi {
    const NAME: &'static str = "abi";
    type Config = ();
    type State = ();
    const HOOKS: Hooks<Self> = Hooks {
        on_request_headers: Some(Self::on_request_headers),
        ..Hooks::NONE
    };

    fn parse_config(_: &serde_json::Value) -> Result<(), ConfigError> {
        Ok(())
    }

    fn on_plugin_start(_: &mut PluginContext<'_, ()>) -> Result<(), StartError> {
        let fail = |s: Status| StartError::new(format!("{s:?}"));
        let queue = hostcalls::register_shared_queue("jobs").map_err(fail)?;
        let counter = hostcalls::define_metric(MetricType::Counter, "requests").map_err(fail)?;
        let vm = hostcalls::get_buffer(BufferType::VmConfiguration, 0, usize::MAX).map_err(fail)?;
        let config =
            hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).map_err(fail)?;
        log::info!(
            "start queue={queue} counter={counter} vm={:?} config={:?} redis={}",
            vm.map(|v| String::from_utf8(v).unwrap()),
            config.map(|v| String::from_utf8(v).unwrap()),
            redis_init("redis-svc", "user", "secret"),
        );
        Ok(())
    }
}

impl Abi {
    fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
        let op = ctx
            .request_header("x-op")
            .map(|v| v.to_string())
            .unwrap_or_default();
        match op.as_str() {
            "shared" => shared(),
            "queue" => {
                let id = hostcalls::resolve_shared_queue("", "jobs").unwrap();
                let missing = hostcalls::resolve_shared_queue("", "nope").unwrap();
                let mut items = Vec::new();
                while let Some(item) = hostcalls::dequeue_shared_queue(id.unwrap()).unwrap() {
                    items.push(String::from_utf8(item).unwrap());
                }
                log::info!("queue id={id:?} missing={missing:?} items={items:?}");
                let enqueued = hostcalls::enqueue_shared_queue(id.unwrap(), Some(b"from-plugin"));
                let unknown = hostcalls::enqueue_shared_queue(999, Some(b"x"));
                log::info!("enqueue {enqueued:?} unknown {unknown:?}");
            }
            "metrics" => metrics(),
            "callouts" => callouts(),
            "foreign" => {
                let level = hostcalls::call_foreign_function("get_log_level", None);
                let echo = hostcalls::call_foreign_function("echo", Some(b"ping"));
                let missing = hostcalls::call_foreign_function("missing", None);
                log::info!("foreign level={level:?} echo={echo:?} missing={missing:?}");
            }
            "time" => {
                let now = hostcalls::get_current_time().unwrap();
                log::info!(
                    "time {}",
                    now.duration_since(UNIX_EPOCH).unwrap().as_millis()
                );
            }
            "effective" => {
                let unknown = hostcalls::set_effective_context(u32::MAX);
                let own = hostcalls::set_effective_context(ctx.context_id());
                log::info!("effective unknown={unknown:?} own={own:?}");
            }
            "config" => {
                let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX);
                let status = hostcalls::set_tick_period(Duration::from_millis(20));
                log::info!("config after start {config:?} tick={status:?}");
            }
            "reset" => hostcalls::reset_http_request().unwrap(),
            "done" => hostcalls::done().unwrap(),
            _ => {}
        }
        HeaderAction::Continue
    }
}

fn shared() {
    hostcalls::set_shared_data("k", Some(b"v1"), None).unwrap();
    let (value, cas) = hostcalls::get_shared_data("k").unwrap();
    let stale = hostcalls::set_shared_data("k", Some(b"v2"), cas.map(|c| c + 100));
    let fresh = hostcalls::set_shared_data("k", Some(b"v3"), cas);
    let (after, _) = hostcalls::get_shared_data("k").unwrap();
    let missing = hostcalls::get_shared_data("nope").unwrap();
    log::info!(
        "shared first={:?} stale={stale:?} fresh={fresh:?} after={:?} missing={missing:?}",
        value.map(|v| String::from_utf8(v).unwrap()),
        after.map(|v| String::from_utf8(v).unwrap()),
    );
}

fn metrics() {
    let counter = hostcalls::define_metric(MetricType::Counter, "requests").unwrap();
    hostcalls::increment_metric(counter, 1).unwrap();
    hostcalls::increment_metric(counter, 2).unwrap();
    let negative = hostcalls::increment_metric(counter, -1);
    let gauge = hostcalls::define_metric(MetricType::Gauge, "inflight").unwrap();
    hostcalls::record_metric(gauge, 10).unwrap();
    hostcalls::increment_metric(gauge, -3).unwrap();
    let histogram = hostcalls::define_metric(MetricType::Histogram, "latency").unwrap();
    hostcalls::record_metric(histogram, 5).unwrap();
    hostcalls::record_metric(histogram, 6).unwrap();
    log::info!(
        "metrics counter={:?} negative={negative:?} gauge={:?} histogram={:?} unknown={:?}",
        hostcalls::get_metric(counter),
        hostcalls::get_metric(gauge),
        hostcalls::get_metric(histogram),
        hostcalls::get_metric(0x400),
    );
}

fn callouts() {
    let headers = vec![
        (":path", "/check"),
        (":method", "POST"),
        (":authority", "auth"),
    ];
    let ok = hostcalls::dispatch_http_call(
        "auth-cluster",
        headers,
        Some(b"body"),
        vec![("t", "1")],
        Duration::from_millis(1500),
    );
    let no_path = hostcalls::dispatch_http_call(
        "auth-cluster",
        vec![(":method", "GET"), (":authority", "a")],
        None,
        vec![],
        Duration::from_secs(1),
    );
    let unknown = hostcalls::dispatch_http_call(
        "nowhere",
        vec![(":path", "/"), (":method", "GET"), (":authority", "a")],
        None,
        vec![],
        Duration::from_secs(1),
    );
    let grpc = hostcalls::dispatch_grpc_call(
        "grpc-cluster",
        "pkg.Svc",
        "Do",
        vec![("k", b"v".as_slice())],
        Some(b"msg"),
        Duration::from_secs(2),
    )
    .unwrap();
    let stream = hostcalls::open_grpc_stream("grpc-cluster", "pkg.Svc", "Watch", vec![]).unwrap();
    let sent = hostcalls::send_grpc_stream_message(stream, Some(b"m1"), false);
    let to_call = hostcalls::send_grpc_stream_message(grpc, Some(b"m"), false);
    let cancelled = hostcalls::cancel_grpc_call(grpc);
    let again = hostcalls::cancel_grpc_call(grpc);
    let closed = hostcalls::close_grpc_stream(stream);
    let (redis_status, redis_token) = redis_call("redis-svc", b"*1\r\n$4\r\nPING\r\n");
    let (no_client, _) = redis_call("other-redis", b"*1\r\n$4\r\nPING\r\n");
    log::info!(
        "callouts http={ok:?} no_path={no_path:?} unknown={unknown:?} sent={sent:?} to_call={to_call:?} \
         cancelled={cancelled:?} again={again:?} closed={closed:?} redis={redis_status}/{} no_client={no_client}",
        redis_token & 3
    );
}

fn host() -> TestHost {
    TestHost::builder()
        .vm_configuration("vm-conf")
        .clusters(["auth-cluster", "grpc-cluster", "redis-svc"])
        .foreign_function("echo", |args| Some([args, b"-pong"].concat()))
        .start::<Abi>(r#"{"a":1}"#)
        .unwrap()
}

fn run(host: &TestHost, op: &str) -> String {
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-op", op)], true)
        .unwrap();
    let needle = format!("] {op} ");
    let lines: Vec<String> = host
        .logs()
        .into_iter()
        .filter(|l| l.message.contains(&needle))
        .map(|l| l.message)
        .collect();
    lines.join("\n")
}

#[test]
fn start_sees_the_configuration_buffers_and_redis_init() {
    let host = host();
    let line = &host.logs_containing("start queue=")[0].message;
    assert!(
        line.ends_with(
            r#"start queue=1 counter=4 vm=Some("vm-conf") config=Some("{\"a\":1}") redis=0"#
        ),
        "{line}"
    );
    let inits = host.redis_inits();
    assert_eq!(inits.len(), 1);
    assert_eq!(
        (
            inits[0].service.as_str(),
            inits[0].username.as_str(),
            inits[0].password.as_str()
        ),
        ("redis-svc", "user", "secret")
    );
    assert_eq!(inits[0].timeout, Duration::from_millis(500));
    // The plugin configuration is only readable during configure.
    assert!(run(&host, "config").ends_with("config after start Ok(None) tick=Ok(())"));
    assert_eq!(host.tick_period(), Some(Duration::from_millis(20)));
}

#[test]
fn shared_data_with_cas() {
    let host = host();
    assert_eq!(
        run(&host, "shared"),
        r#"[abi] [nil] [nil] shared first=Some("v1") stale=Err(CasMismatch) fresh=Ok(()) after=Some("v3") missing=(None, None)"#
    );
    assert_eq!(host.shared_data("k").unwrap(), b"v3");
    host.set_shared_data("k", "from-test");
    assert_eq!(host.shared_data("k").unwrap(), b"from-test");
}

#[test]
fn shared_queues() {
    let host = host();
    assert!(host.enqueue_shared_queue("jobs", "one"));
    assert!(host.enqueue_shared_queue("jobs", "two"));
    assert!(!host.enqueue_shared_queue("nope", "x"));
    let lines = run(&host, "queue");
    assert!(
        lines.contains(r#"queue id=Some(1) missing=None items=["one", "two"]"#),
        "{lines}"
    );
    assert_eq!(
        host.logs_containing("enqueue Ok(()) unknown Err(NotFound)")
            .len(),
        1
    );
    // What the plugin enqueued waits for the next reader.
    assert!(run(&host, "queue").contains(r#"items=["from-plugin"]"#));
}

#[test]
fn metrics_by_kind() {
    let host = host();
    assert_eq!(
        run(&host, "metrics"),
        "[abi] [nil] [nil] metrics counter=Ok(3) negative=Err(BadArgument) gauge=Ok(7) histogram=Err(BadArgument) unknown=Err(NotFound)"
    );
    assert_eq!(host.metric("requests"), Some(MetricValue::Counter(3)));
    assert_eq!(host.metric("inflight"), Some(MetricValue::Gauge(7)));
    assert_eq!(
        host.metric("latency"),
        Some(MetricValue::Histogram(vec![5, 6]))
    );
    assert_eq!(host.metric("none"), None);
}

#[test]
fn callouts_are_recorded_and_validated() {
    let host = host();
    let line = run(&host, "callouts");
    assert!(
        line.ends_with(
            "callouts http=Ok(4) no_path=Err(BadArgument) unknown=Err(BadArgument) sent=Ok(()) \
             to_call=Err(BadArgument) cancelled=Ok(()) again=Err(NotFound) closed=Ok(()) redis=0/3 no_client=2"
        ),
        "{line}"
    );
    let callouts = host.callouts();
    assert_eq!(callouts.len(), 4, "{callouts:?}");
    match &callouts[0].kind {
        CalloutKind::Http {
            upstream,
            headers,
            body,
            trailers,
            timeout,
        } => {
            assert_eq!(upstream, "auth-cluster");
            assert_eq!(headers[0].0, ":path");
            assert_eq!(body, b"body");
            assert_eq!(trailers[0].1, "1");
            assert_eq!(*timeout, Duration::from_millis(1500));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(callouts[0].state, CalloutState::Pending);
    assert!(
        matches!(&callouts[1].kind, CalloutKind::Grpc { service, method, message, .. } if service == "pkg.Svc" && method == "Do" && message == b"msg")
    );
    assert_eq!(callouts[1].state, CalloutState::Cancelled);
    // A local close is a half-close (Envoy's `closeStream`): the stream
    // stays open for the server's replies.
    assert!(
        matches!(&callouts[2].kind, CalloutKind::GrpcStream { sent, half_closed: true, .. } if sent == &[b"m1".to_vec()])
    );
    assert_eq!(callouts[2].state, CalloutState::Pending);
    assert!(
        matches!(&callouts[3].kind, CalloutKind::Redis { service, query } if service == "redis-svc" && query.starts_with(b"*1"))
    );
    // Each records the context that made it; tokens carry their kind.
    let tags: Vec<u32> = callouts.iter().map(|c| c.token & 3).collect();
    assert_eq!(tags, [0, 1, 2, 3]);
    assert!(callouts
        .iter()
        .all(|c| c.context_id == callouts[0].context_id));
    assert_ne!(callouts[0].context_id, host.root_context_id());
}

#[test]
fn foreign_functions() {
    let host = host();
    assert_eq!(
        run(&host, "foreign"),
        r#"[abi] [nil] [nil] foreign level=Ok(Some([0, 0, 0, 0])) echo=Ok(Some([112, 105, 110, 103, 45, 112, 111, 110, 103])) missing=Err(NotFound)"#
    );
    let calls = host.foreign_function_calls();
    assert_eq!(calls[1], ("echo".to_owned(), b"ping".to_vec()));
    // Stock Envoy has no `get_log_level` foreign function.
    let host = TestHost::builder()
        .properties(Properties::Envoy)
        .start::<Abi>("{}")
        .unwrap();
    assert!(run(&host, "foreign").contains("level=Err(NotFound)"));
}

#[test]
fn the_clock_is_the_host_clock() {
    let host = host();
    host.advance_time(Duration::from_millis(1234));
    let line = run(&host, "time");
    let want = host.now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    assert!(line.ends_with(&format!("time {want}")), "{line}");
    assert_eq!(want, 1_704_067_201_234);
}

#[test]
fn set_effective_context_only_to_live_contexts() {
    let host = host();
    assert!(run(&host, "effective").ends_with("effective unknown=Err(BadArgument) own=Ok(())"));
}

#[test]
fn a_reset_ends_the_stream() {
    let host = host();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-op", "reset")], false)
        .unwrap();
    assert!(s.is_reset());
    assert_eq!(s.send_request_body("x", true).unwrap(), Action::Ended);
    assert_eq!(
        s.property(&["response", "code_details"]).unwrap(),
        b"wasm_close_stream"
    );
}

#[test]
fn proxy_done_is_accepted() {
    let host = host();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-op", "done")], true)
        .unwrap();
    assert!(host.abi_errors().is_empty());
}

mod other {
    use higress_wrapper::prelude::*;

    fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
        ctx.set_request_header("x-other", "1");
        HeaderAction::Continue
    }

    fn no_config(_: &serde_json::Value) -> Result<(), ConfigError> {
        Ok(())
    }

    higress_wrapper::set_ctx! {
        name: "other",
        plugin: pub Plugin,
        config: (),
        parse_config: no_config,
        on_request_headers: on_request_headers,
    }
}

#[test]
fn two_plugins_on_one_thread_keep_their_own_contexts() {
    let abi = host();
    let other = TestHost::start::<other::Plugin>("{}").unwrap();
    assert!(other.root_context_id() > abi.root_context_id());
    let mut a = abi.http_stream();
    let mut o = other.http_stream();
    a.send_request_headers(&[(":path", "/"), ("x-op", "time")], true)
        .unwrap();
    o.send_request_headers(&[(":path", "/")], true).unwrap();
    assert_eq!(o.upstream_request_header("x-other").unwrap(), "1");
    assert!(a.upstream_request_header("x-other").is_none());
    assert_eq!(abi.logs_containing("time ").len(), 1);
    assert!(other.logs_containing("time ").is_empty());
}
