//! The benchmark's two candidates do the same observable work:
//! `examples/my-plugin` (SDK) and `tests/plugins/probe-raw` (the same
//! behaviour on raw proxy-wasm) send the same headers upstream and write the
//! same log lines at the same levels, byte for byte, for the same request.
//! (The SDK also writes debug lines, e.g. which config matched; those are
//! below the info level the benchmark runs at.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_common;

use std::time::Duration;

use e2e_common::{exchange, start};
use higress_e2e::{wasm_module, ClusterSpec, EchoUpstream, Gateway, PluginSpec};

/// Plugin log lines of one request at info level and above, as
/// `(level, message)` with the request id replaced by `<id>`.
fn lines_of(gateway: &Gateway, request_id: &str) -> Vec<(String, String)> {
    gateway
        .logs()
        .lines()
        .filter(|l| l.contains("wasm log") && l.contains(request_id))
        .filter_map(|l| {
            let level = ["[info]", "[warning]", "[error]", "[critical]"]
                .into_iter()
                .find(|lvl| l.contains(lvl))?;
            let message = l.split_once("wasm log ")?.1.split_once(": ")?.1;
            Some((level.to_owned(), message.replace(request_id, "<id>")))
        })
        .collect()
}

/// Runs `package` with `config`, sends the same requests, returns for each
/// what the upstream got (`x-custom-header`, `x-user-id`) and the log lines.
type Seen = Vec<(Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, String)>)>;

fn run(package: &str, config: &str) -> Seen {
    let upstream = EchoUpstream::start().unwrap();
    let wasm = wasm_module(package).unwrap_or_else(|e| panic!("building {package}: {e}"));
    let gateway = start(
        Gateway::builder()
            .name(format!("twin-{package}"))
            .log_level("wasm:info")
            .plugin(PluginSpec::new("twin", wasm, config))
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    let user_ids: [Option<&[u8]>; 3] = [Some(b"alice"), None, Some(b"caf\xc3\xa9 \xff")];
    let mut seen = Vec::new();
    for user in user_ids {
        let headers: Vec<(&str, &[u8])> = user.map(|u| ("x-user-id", u)).into_iter().collect();
        let x = exchange(&gateway, &upstream, "GET", "/twin", &headers, b"");
        assert_eq!(x.response.status, 200, "{package}: {}", x.response.text());
        let request = x.upstream.unwrap();
        let request_id = request.header_str("x-request-id").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut lines = lines_of(&gateway, &request_id);
        while lines.len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(25));
            lines = lines_of(&gateway, &request_id);
        }
        seen.push((
            request.header("x-custom-header").map(<[u8]>::to_vec),
            request.header("x-user-id").map(<[u8]>::to_vec),
            lines,
        ));
    }
    seen
}

#[test]
fn sdk_and_raw_plugins_do_the_same_observable_work() {
    let config = r#"{"some_field": "twin \"value\" é"}"#;
    let sdk = run("my-plugin", config);
    let raw = run("e2e-probe-raw", config);
    assert_eq!(sdk, raw, "SDK and raw differ");

    // And what they do is what my-plugin promises.
    let (header, user, lines) = &sdk[0];
    assert_eq!(header.as_deref(), Some("twin \"value\" é".as_bytes()));
    assert_eq!(user.as_deref(), Some(&b"alice"[..]));
    assert_eq!(
        lines,
        &vec![
            (
                "[info]".to_owned(),
                "[my-plugin] [nil] [<id>] request received".to_owned()
            ),
            (
                "[info]".to_owned(),
                "[my-plugin] [nil] [<id>] x-user-id: alice".to_owned()
            ),
        ]
    );
    assert_eq!(sdk[1].2[1].1, "[my-plugin] [nil] [<id>] x-user-id: (none)");
    assert_eq!(
        sdk[2].2[1].1,
        "[my-plugin] [nil] [<id>] x-user-id: café \u{fffd}"
    );
}

/// One request to a body twin: its headers and body.
type BodyRequest<'a> = (&'a [(&'a str, &'a [u8])], &'a [u8]);

/// For each request (headers, body): the status the client got and the
/// body the upstream received (`None` if nothing arrived).
fn body_twin_run(package: &str, requests: &[BodyRequest<'_>]) -> Vec<(u16, Option<Vec<u8>>)> {
    let upstream = EchoUpstream::start().unwrap();
    let wasm = wasm_module(package).unwrap_or_else(|e| panic!("building {package}: {e}"));
    let gateway = start(
        Gateway::builder()
            .name(format!("twin-{package}"))
            .plugin(PluginSpec::new("twin", wasm, "{}"))
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    requests
        .iter()
        .map(|(headers, body)| {
            let x = exchange(&gateway, &upstream, "POST", "/twin", headers, body);
            (x.response.status, x.upstream.map(|r| r.body.clone()))
        })
        .collect()
}

/// The body twins' requests: a plain body with `deny`, a plain `hello`,
/// then a gzip-encoded, a gRPC and an octet-stream body, each with `deny`.
const BODY_REQUESTS: [BodyRequest<'static>; 5] = [
    (&[("content-type", b"text/plain")], b"please deny this"),
    (&[("content-type", b"text/plain")], b"hello"),
    (
        &[
            ("content-type", b"text/plain"),
            ("content-encoding", b"gzip"),
        ],
        b"gzip bytes that say deny",
    ),
    (&[("content-type", b"application/grpc")], b"deny"),
    (&[("content-type", b"application/octet-stream")], b"deny"),
];

/// The SDK body twin skips its body hook for encoded, gRPC and
/// octet-stream bodies (Go's rule); `twin-body-raw-go-rule` makes the same
/// check on raw proxy-wasm, so both pass such a body untouched even when it
/// contains `deny`, and both answer 403 to a plain body that does.
/// (`twin-body-raw` does not make the check: it would deny the gzip body.)
#[test]
fn the_sdk_body_twin_and_the_raw_twin_with_go_s_rule_agree() {
    let sdk = body_twin_run("twin-body-sdk", &BODY_REQUESTS);
    let raw = body_twin_run("twin-body-raw-go-rule", &BODY_REQUESTS);
    assert_eq!(sdk, raw, "SDK and raw-with-Go's-rule body twins differ");
    assert_eq!(sdk[0], (403, None), "a plain body saying deny is denied");
    assert_eq!(sdk[1], (200, Some(b"hello".to_vec())));
    for (i, (_, body)) in BODY_REQUESTS.iter().enumerate().skip(2) {
        assert_eq!(
            sdk[i],
            (200, Some(body.to_vec())),
            "request {i}: an encoded or binary body passes untouched"
        );
    }
}

/// With `skip_binary_bodies: false` the SDK body twin runs its hook on every
/// body, as `twin-body-raw` does: both deny the gzip, gRPC and octet-stream
/// bodies that say `deny` (the default twins pass those untouched, above).
#[test]
fn the_sdk_body_twin_without_go_s_rule_and_the_plain_raw_twin_agree() {
    let sdk = body_twin_run("twin-body-sdk-all", &BODY_REQUESTS);
    let raw = body_twin_run("twin-body-raw", &BODY_REQUESTS);
    assert_eq!(sdk, raw, "SDK (every body) and raw body twins differ");
    assert_eq!(sdk[0], (403, None));
    assert_eq!(sdk[1], (200, Some(b"hello".to_vec())));
    assert_eq!(sdk[2], (403, None), "the gzip body reaches the hook");
    // Envoy answers a gRPC request's local reply as gRPC: HTTP 200 with a
    // `grpc-status`; the upstream got nothing.
    assert_eq!(sdk[3], (200, None), "the gRPC body reaches the hook");
    assert_eq!(
        sdk[4],
        (403, None),
        "the octet-stream body reaches the hook"
    );
}
