//! transformer in the native test host. Go's plugin has no `main_test.go`
//! (its `utils_test.go` cases are unit tests in `src/`); these tests run the
//! Go README's example configs unchanged (as JSON) with the README's
//! requests, and check the README's results, plus Go's config checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};

higress_test_host::both_modes! {
plugin: transformer::Plugin,
package: "transformer",

fn started(config: &Value) -> TestHost {
    start_with(config.to_string(), |b| b.allow_on_headers_stop_iteration(true))
        .unwrap()
}

fn refused(config: &Value, message: &str) {
    let failure = start(config.to_string()).unwrap_err();
    assert_eq!(failure.stage, StartStage::Configure);
    assert!(!failure.logs_containing(message).is_empty(), "{failure}");
}

fn values(s: &HttpStream<'_>, name: &str) -> Vec<String> {
    s.request_header_values(name)
        .iter()
        .map(|v| v.to_string())
        .collect()
}

#[test]
fn readme_request_headers() {
    let host = started(&json!({"reqRules": [
        {"operate": "remove", "headers": [{"key": "X-remove"}]},
        {"operate": "rename", "headers": [{"oldKey": "X-not-renamed", "newKey": "X-renamed"}]},
        {"operate": "replace", "headers": [{"key": "X-replace", "newValue": "replaced"}]},
        {"operate": "add", "headers": [{"key": "X-add-append", "value": "host-$1",
                                        "host_pattern": r"^(.*)\.com$"}]},
        {"operate": "append", "headers": [{"key": "X-add-append", "appendValue": "path-$1",
                                           "path_pattern": r"^.*?\/(\w+)[\?]{0,1}.*$"}]},
        {"operate": "map", "headers": [{"fromKey": "X-add-append", "toKey": "X-map"}]},
        {"operate": "dedupe", "headers": [
            {"key": "X-dedupe-first", "strategy": "RETAIN_FIRST"},
            {"key": "X-dedupe-last", "strategy": "RETAIN_LAST"},
            {"key": "X-dedupe-unique", "strategy": "RETAIN_UNIQUE"}
        ]}
    ]}));
    let mut s = host.http_stream();
    s.set_authority("foo.bar.com");
    let action = s
        .send_request_headers(
            &[
                (":path", "/get"),
                (":method", "GET"),
                ("x-remove", "exist"),
                ("x-not-renamed", "test"),
                ("x-replace", "not-replaced"),
                ("x-dedupe-first", "1"),
                ("x-dedupe-first", "2"),
                ("x-dedupe-first", "3"),
                ("x-dedupe-last", "a"),
                ("x-dedupe-last", "b"),
                ("x-dedupe-last", "c"),
                ("x-dedupe-unique", "1"),
                ("x-dedupe-unique", "2"),
                ("x-dedupe-unique", "3"),
                ("x-dedupe-unique", "3"),
                ("x-dedupe-unique", "2"),
                ("x-dedupe-unique", "1"),
            ],
            true,
        )
        .unwrap();
    assert_eq!(action, Action::Continue);
    assert!(values(&s, "x-remove").is_empty());
    assert!(values(&s, "x-not-renamed").is_empty());
    assert_eq!(values(&s, "x-renamed"), ["test"]);
    assert_eq!(values(&s, "x-replace"), ["replaced"]);
    assert_eq!(values(&s, "x-add-append"), ["host-foo.bar", "path-get"]);
    assert_eq!(values(&s, "x-map"), ["host-foo.bar", "path-get"]);
    assert_eq!(values(&s, "x-dedupe-first"), ["1"]);
    assert_eq!(values(&s, "x-dedupe-last"), ["c"]);
    assert_eq!(values(&s, "x-dedupe-unique"), ["1", "2", "3"]);
    // Go writes all headers back sorted by name.
    let names: Vec<String> = s.request_headers().into_iter().map(|(n, _)| n).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn readme_request_query() {
    let host = started(&json!({"reqRules": [
        {"operate": "remove", "querys": [{"key": "k1"}]},
        {"operate": "rename", "querys": [{"oldKey": "k2", "newKey": "k2-new"}]},
        {"operate": "replace", "querys": [{"key": "k2-new", "newValue": "v2-new"}]},
        {"operate": "add", "querys": [{"key": "k3", "value": "v31-$1",
                                       "path_pattern": r"^.*?\/(\w+)[\?]{0,1}.*$"}]},
        {"operate": "append", "querys": [{"key": "k3", "appendValue": "v32"}]},
        {"operate": "map", "querys": [{"fromKey": "k3", "toKey": "k4"}]},
        {"operate": "dedupe", "querys": [{"key": "k4", "strategy": "RETAIN_FIRST"}]}
    ]}));
    let mut s = host.http_stream();
    s.set_authority("foo.bar.com");
    s.send_request_headers(&[(":path", "/get?k1=v11&k1=v12&k2=v2")], true)
        .unwrap();
    assert_eq!(
        s.upstream_request_header(":path").unwrap(),
        "/get?k2-new=v2-new&k3=v31-get&k3=v32&k4=v31-get"
    );
}

const BODY_RULES: &str = r#"{"reqRules": [
    {"operate": "remove", "body": [{"key": "a1"}]},
    {"operate": "rename", "body": [{"oldKey": "a2", "newKey": "a2-new"}]},
    {"operate": "replace", "body": [{"key": "a3", "newValue": "t3-new", "value_type": "string"}]},
    {"operate": "add", "body": [{"key": "a1-new", "value": "t1-new", "value_type": "string"}]},
    {"operate": "append", "body": [{"key": "a1-new", "appendValue": "t1-$1-append",
                                    "value_type": "string", "host_pattern": "^(.*)\\.com$"}]},
    {"operate": "map", "body": [{"fromKey": "a1-new", "toKey": "a4"}]},
    {"operate": "dedupe", "body": [{"key": "a4", "strategy": "RETAIN_FIRST"}]}
]}"#;

fn post<'h>(host: &'h TestHost, content_type: &str, body: &str) -> HttpStream<'h> {
    let mut s = host.http_stream();
    s.set_authority("foo.bar.com");
    s.send_request_headers(
        &[
            (":path", "/post"),
            (":method", "POST"),
            ("content-type", content_type),
            ("content-length", &body.len().to_string()),
        ],
        false,
    )
    .unwrap();
    s.send_request_body(body, true).unwrap();
    s
}

#[test]
fn readme_request_json_body() {
    let host = started(&serde_json::from_str(BODY_RULES).unwrap());
    let s = post(
        &host,
        "application/json",
        r#"{"a1":"t1","a2":"t2","a3":"t3"}"#,
    );
    let body: Value = serde_json::from_slice(&s.upstream_request_body()).unwrap();
    assert_eq!(
        body,
        json!({"a1-new": ["t1-new", "t1-foo.bar-append"], "a2-new": "t2", "a3": "t3-new", "a4": "t1-new"})
    );
    // The length changed, so Go drops content-length.
    assert!(s.upstream_request_header("content-length").is_none());
}

#[test]
fn readme_request_form_body() {
    let host = started(&serde_json::from_str(BODY_RULES).unwrap());
    let s = post(
        &host,
        "application/x-www-form-urlencoded",
        "a1=t1&a2=t2&a3=t3",
    );
    assert_eq!(
        String::from_utf8(s.upstream_request_body()).unwrap(),
        "a1-new=t1-new&a1-new=t1-foo.bar-append&a2-new=t2&a3=t3-new&a4=t1-new"
    );
}

#[test]
fn readme_request_multipart_body() {
    let host = started(&serde_json::from_str(BODY_RULES).unwrap());
    let b = "------------------------1118b3fab5afbc4e";
    let field = |name: &str, value: &str| {
        format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    };
    // What `curl -F a1=t1 -F a2=t2 -F a3=t3` sends.
    let body = format!(
        "{}{}{}--{b}--\r\n",
        field("a1", "t1"),
        field("a2", "t2"),
        field("a3", "t3")
    );
    let s = post(&host, &format!("multipart/form-data; boundary={b}"), &body);
    let sent = String::from_utf8(s.upstream_request_body()).unwrap();
    let want = [
        ("a1-new", "t1-new"),
        ("a1-new", "t1-foo.bar-append"),
        ("a2-new", "t2"),
        ("a3", "t3-new"),
        ("a4", "t1-new"),
    ];
    let want: String = want.iter().map(|(n, v)| field(n, v)).collect();
    assert_eq!(sent, format!("{want}--{b}--\r\n"));

    // A file upload is passed on untouched (Go would drop the file part).
    let file = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"a1\"; filename=\"a.txt\"\r\n\r\ndata\r\n--{b}--\r\n"
    );
    let s = post(&host, &format!("multipart/form-data; boundary={b}"), &file);
    assert_eq!(s.upstream_request_body(), file.as_bytes());
}

#[test]
fn readme_route_by_body_parameter() {
    let config = json!({"reqRules": [
        {"operate": "map", "headers": [{"fromKey": "userId", "toKey": "x-user-id"}], "mapSource": "body"}
    ]});
    let host = started(&config);
    // JSON: headers wait for the body, then carry the value.
    let mut s = host.http_stream();
    s.set_authority("localhost");
    let action = s
        .send_request_headers(
            &[(":path", "/"), ("content-type", "application/json")],
            false,
        )
        .unwrap();
    assert_eq!(action, Action::Pause, "headers wait for the body");
    s.send_request_body(r#"{"userId":12, "userName":"johnlanni"}"#, true)
        .unwrap();
    assert_eq!(s.upstream_request_header("x-user-id").unwrap(), "12");
    assert_eq!(
        s.upstream_request_body(),
        br#"{"userId":12, "userName":"johnlanni"}"#,
        "the body is not changed"
    );
    // Form body.
    let s = post(
        &host,
        "application/x-www-form-urlencoded",
        "userId=12&userName=johnlanni",
    );
    assert_eq!(s.upstream_request_header("x-user-id").unwrap(), "12");
}

#[test]
fn readme_json_path_map() {
    let host = started(
        &json!({"reqRules": [{"operate": "map", "mapSource": "body", "headers": [
            {"fromKey": "friends.1.first", "toKey": "x-first-name"},
            {"fromKey": "friends.1.last", "toKey": "x-last-name"}
        ]}]}),
    );
    let doc = json!({
        "name": {"first": "Tom", "last": "Anderson"},
        "age": 37,
        "children": ["Sara", "Alex", "Jack"],
        "fav.movie": "Deer Hunter",
        "friends": [
            {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
            {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
            {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]}
        ]
    });
    let s = post(&host, "application/json", &doc.to_string());
    assert_eq!(s.upstream_request_header("x-first-name").unwrap(), "Roger");
    assert_eq!(s.upstream_request_header("x-last-name").unwrap(), "Craig");
}

#[test]
fn readme_reroute_false_still_replaces() {
    // `newValue: true` is a YAML boolean; Go reads it as the text "true".
    let host = started(&json!({"reroute": false, "reqRules": [
        {"operate": "replace", "headers": [{"key": "reroute", "newValue": true}]}
    ]}));
    let mut s = host.http_stream();
    s.set_authority("foo.bar.com");
    s.send_request_headers(&[(":path", "/get"), ("reroute", "false")], true)
        .unwrap();
    assert_eq!(s.upstream_request_header("reroute").unwrap(), "true");
    // reroute: false is Higress's `clear_route_cache = off`.
    assert_eq!(
        s.property(&["clear_route_cache"]).as_deref(),
        Some(&b"off"[..])
    );
    // By default the route is picked again (the property is not touched).
    let host = started(&json!({"reqRules": [
        {"operate": "replace", "headers": [{"key": "reroute", "newValue": true}]}
    ]}));
    let mut s = host.http_stream();
    s.set_authority("foo.bar.com");
    s.send_request_headers(&[(":path", "/get")], true).unwrap();
    assert_eq!(s.property(&["clear_route_cache"]), None);
}

#[test]
fn readme_response_body_nested_and_escaped_keys() {
    let host = started(&json!({"respRules": [
        {"operate": "add", "body": [{"key": "foo.bar", "value": "value"}]},
        {"operate": "add", "body": [{"key": r"foo\.bar", "value": "value"}]}
    ]}));
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/get")], true).unwrap();
    s.send_response_headers(
        &[(":status", "200"), ("content-type", "application/json")],
        false,
    )
    .unwrap();
    s.send_response_body(r#"{"url": "x"}"#, true).unwrap();
    let body: Value = serde_json::from_slice(&s.client_response_body()).unwrap();
    assert_eq!(
        body,
        json!({"url": "x", "foo": {"bar": "value"}, "foo.bar": "value"})
    );
}

#[test]
fn readme_json_array_paths() {
    let users = r#"{"users":[{"123":{"name":"zhangsan"}},{"456":{"name":"lisi"}}]}"#;
    let sent = |rules: Value, body: &str| {
        let host = started(&json!({ "reqRules": rules }));
        let s = post(&host, "application/json", body);
        serde_json::from_slice::<Value>(&s.upstream_request_body()).unwrap()
    };
    // Remove the first element.
    let rules = json!([{"operate": "remove", "body": [{"key": "users.0"}]}]);
    assert_eq!(
        sent(rules, users),
        json!({"users": [{"456": {"name": "lisi"}}]})
    );
    // Rename a key inside the first element (the README's YAML says
    // `first`; its prose says `msg`).
    let rules = json!([{"operate": "rename", "body": [{"oldKey": "users.0.123", "newKey": "users.0.first"}]}]);
    assert_eq!(
        sent(rules, users),
        json!({"users": [{"first": {"name": "zhangsan"}}, {"456": {"name": "lisi"}}]})
    );
    // `#` walks the array (replace only).
    let rules = json!([{"operate": "replace", "body": [{"key": "users.#.age", "newValue": 20}]}]);
    let body = r#"{"users":[{"name":"zhangsan","age":18},{"name":"lisi","age":19}]}"#;
    assert_eq!(
        sent(rules, body),
        json!({"users": [{"name": "zhangsan", "age": "20"}, {"name": "lisi", "age": "20"}]})
    );
}

#[test]
fn response_headers_and_typed_body_values() {
    let host = started(&json!({"respRules": [
        {"operate": "remove", "headers": [{"key": "Server"}]},
        {"operate": "add", "headers": [{"key": "X-Added", "value": "1"}]},
        {"operate": "replace", "body": [
            {"key": "n", "newValue": "3", "value_type": "number"},
            {"key": "b", "newValue": "false", "value_type": "boolean"},
            {"key": "o", "newValue": "{\"k\": [1]}", "value_type": "object"}
        ]},
        {"operate": "dedupe", "body": [{"key": "list", "strategy": "RETAIN_UNIQUE"}]}
    ]}));
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    s.send_response_headers(
        &[
            (":status", "200"),
            ("content-type", "application/json"),
            ("server", "upstream"),
        ],
        false,
    )
    .unwrap();
    s.send_response_body(r#"{"list": [1, 2, 1, 2], "n": "old"}"#, true)
        .unwrap();
    assert!(s.client_response_header("server").is_none());
    assert_eq!(s.client_response_header("x-added").unwrap(), "1");
    let body: Value = serde_json::from_slice(&s.client_response_body()).unwrap();
    assert_eq!(
        body,
        json!({"list": [1, 2], "n": 3, "b": false, "o": {"k": [1]}})
    );
}

#[test]
fn response_patterns_see_the_request_host_and_path() {
    // Only respRules: the request's host and path still feed the patterns.
    let host = started(&json!({"respRules": [
        {"operate": "add", "headers": [{"key": "x-served-for", "value": "$1", "host_pattern": r"^(\w+)\."}]},
        {"operate": "add", "headers": [{"key": "x-api", "value": "v$1", "path_pattern": r"^/api/v(\d+)/"}]}
    ]}));
    let mut s = host.http_stream();
    s.set_authority("shop.example.com");
    s.send_request_headers(&[(":path", "/api/v2/items")], true)
        .unwrap();
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    assert_eq!(
        s.client_response_header("x-served-for").unwrap(),
        "shopexample.com"
    );
    assert_eq!(s.client_response_header("x-api").unwrap(), "v2items");
}

#[test]
fn a_body_that_is_not_json_or_form_is_left_alone() {
    let host = started(&serde_json::from_str(BODY_RULES).unwrap());
    let s = post(&host, "text/plain", "a1=t1");
    assert_eq!(s.upstream_request_body(), b"a1=t1");
    assert_eq!(
        s.upstream_request_header("content-length").unwrap(),
        "5",
        "kept when the body is not transformed"
    );
}

#[test]
fn config_checks_as_go() {
    refused(
        &json!({"reroute": true}),
        "transformer rule not exist in yaml",
    );
    refused(
        &json!({"reqRules": [{"operate": "map", "mapSource": "cookies", "headers": [{"fromKey": "a", "toKey": "b"}]}]}),
        "reqRules[0].mapSource: invalid map source",
    );
    refused(
        &json!({"respRules": [{"operate": "add", "body": [{"key": "a", "value": "1", "value_type": "date"}]}]}),
        "respRules[0].body[0]: invalid body params type",
    );
    refused(
        &json!({"reqRules": [{"operate": "add", "headers": [{"key": "a", "value": "1", "host_pattern": "("}]}]}),
        "reqRules[0].headers[0]: failed to new reg",
    );
    // Go silently drops this rule and the ones after it; the port refuses.
    refused(
        &json!({"reqRules": [{"operate": "upsert", "headers": [{"key": "a"}]}]}),
        "reqRules[0].operate: invalid operate type",
    );
}
}
