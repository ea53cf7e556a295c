#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod e2e_common;
use e2e_common::*;
use higress_e2e::*;
use std::time::Duration;

fn show(name: &str, r: &higress_e2e::Result<Exchange>) {
    match r {
        Ok(x) => {
            let hdrs: Vec<String> = x.response.headers.iter().map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v))).collect();
            let body = x.response.text();
            let b = if body.len() > 200 { format!("{}... ({} bytes)", &body[..200], body.len()) } else { body };
            println!("== {name}: status {} headers {:?}\n   body {b}", x.response.status, hdrs);
            match &x.upstream {
                Some(u) => println!("   upstream: {} hdrs {:?} body {} bytes first {:?}", u.path, u.headers.iter().map(|(n,v)| format!("{n}={}", String::from_utf8_lossy(&v[..v.len().min(60)]))).collect::<Vec<_>>(), u.body.len(), String::from_utf8_lossy(&u.body[..u.body.len().min(40)])),
                None => println!("   upstream: nothing"),
            }
        }
        Err(e) => println!("== {name}: ERROR {e}"),
    }
}

#[test]
fn explore() {
    let up = EchoUpstream::start().unwrap();
    let gw = start(Gateway::builder().name("explore").plugin(probe(r#"{"tag":"t1"}"#)).cluster(ClusterSpec::new("echo", up.port())));
    let t = Duration::from_secs(4);
    show("reply418", &try_exchange(&gw, &up, "GET", "/r", &[("x-probe-reply", b"418")], b"", t));
    show("append", &try_exchange(&gw, &up, "POST", "/a", &[("x-probe-req-body", b"append:XYZ")], b"hello", t));
    show("append-then-next", &try_exchange(&gw, &up, "GET", "/n", &[], b"", t));
    show("upper", &try_exchange(&gw, &up, "POST", "/u", &[("x-probe-req-body", b"upper")], b"hello", t));
    show("echo-len-noflag", &try_exchange(&gw, &up, "POST", "/e", &[("x-probe-req-body", b"echo-len")], b"hello", t));
    show("after-hang", &try_exchange(&gw, &up, "GET", "/n2", &[], b"", t));
    let big = lower_text(2_000_000);
    show("big-buffered", &try_exchange(&gw, &up, "POST", "/big", &[("x-probe-req-body", b"upper")], &big, t));
    show("big-buffered-limit", &try_exchange(&gw, &up, "POST", "/bigl", &[("x-probe-req-body", b"upper"), ("x-probe-limit", b"8000000")], &big, t));
    show("big-stream", &try_exchange(&gw, &up, "POST", "/bigs", &[("x-probe-stream-req", b"upper")], &big, t));
    show("resp-upper", &try_exchange(&gw, &up, "GET", "/ru", &[("x-probe-resp-body", b"append:TAIL"), ("x-echo-mode", b"body-size:100")], b"", t));
    show("resp-echo-len", &try_exchange(&gw, &up, "GET", "/rl", &[("x-probe-resp-body", b"echo-len"), ("x-echo-mode", b"body-size:100")], b"", t));
    show("resp-big-buffered", &try_exchange(&gw, &up, "GET", "/rb", &[("x-probe-resp-body", b"upper"), ("x-echo-mode", b"body-size:2000000")], b"", t));
    show("resp-big-stream", &try_exchange(&gw, &up, "GET", "/rs", &[("x-probe-stream-resp", b"upper"), ("x-echo-mode", b"body-size:2000000")], b"", t));
    show("props", &try_exchange(&gw, &up, "GET", "/p", &[("x-probe-props", b"1")], b"", t));
    show("final", &try_exchange(&gw, &up, "GET", "/f", &[], b"", t));
    let logs = gw.logs();
    for l in logs.lines().filter(|l| l.contains("wasm") || l.contains("error")) { println!("{}", &l[..l.len().min(300)]); }

    let gw2 = start(Gateway::builder().name("explore2").plugin(PluginSpec{allow_on_headers_stop_iteration: true, ..probe(r#"{"tag":"t2"}"#)}).cluster(ClusterSpec::new("echo", up.port())));
    show("F echo-len", &try_exchange(&gw2, &up, "POST", "/e", &[("x-probe-req-body", b"echo-len")], &lower_text(100_000), t));
    show("F append", &try_exchange(&gw2, &up, "POST", "/a", &[("x-probe-req-body", b"append:XYZ")], b"hello", t));
    show("F reply@body", &try_exchange(&gw2, &up, "POST", "/rb", &[("x-probe-reply", b"403@body")], b"hello", t));
    show("F resp-echo-len", &try_exchange(&gw2, &up, "GET", "/rl", &[("x-probe-resp-body", b"echo-len"), ("x-echo-mode", b"body-size:100")], b"", t));
    show("F final", &try_exchange(&gw2, &up, "GET", "/f", &[], b"", t));
}
