//! transformer: a port of Higress's `transformer` Go plugin.
//!
//! Rewrites request headers, query parameters and bodies (JSON,
//! `application/x-www-form-urlencoded`, `multipart/form-data`), and response
//! headers and JSON bodies, with the operations `remove`, `rename`, `replace`, `add`,
//! `append`, `map` and `dedupe`, applied in the order configured:
//!
//! ```json
//! {"reqRules": [{"operate": "add", "headers": [{"key": "x-a", "value": "1"}]}],
//!  "respRules": [{"operate": "remove", "body": [{"key": "secret"}]}]}
//! ```
//!
//! Same config keys, defaults, checks and results as Go; see the README for
//! what is not ported (GJSON wildcards, file parts) and why.
use higress_wrapper::prelude::*;
use ops::{apply_json, apply_kv, body_bytes, media_type, parse_body, Body, Sources};
use url::Kvs;

mod config;
mod json_path;
mod multipart;
mod ops;
mod url;

use config::parse_rule_config;
pub use config::{parse_config, Op, Source, Transform, TransformerConfig};

/// What the headers phase leaves for the body phase.
#[derive(Debug, Default)]
pub struct State {
    host: String,
    path: String,
    content_type: String,
    headers: Kvs,
    querys: Kvs,
    /// Header (and query) changes wait for the body (`mapSource: body`).
    headers_wait_for_body: bool,
}

/// Headers as Go's `convertHeaders`: lowercased names, values in order.
fn to_kvs(headers: Vec<(String, HeaderValue)>) -> Kvs {
    let mut kvs = Kvs::new();
    for (name, value) in headers {
        let value = value.to_str_lossy().into_owned();
        kvs.entry(name.to_lowercase()).or_default().push(value);
    }
    kvs
}

/// Writes the state's headers back as Go does: all of them, sorted by name.
fn replace_headers(ctx: &mut HttpContext<State>, response: bool) {
    let owned: Vec<(String, String)> = ctx
        .state()
        .headers
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |v| (name.clone(), v.clone())))
        .collect();
    let list: Vec<(&str, &[u8])> = owned
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    if response {
        ctx.set_response_headers(&list);
    } else {
        ctx.set_request_headers(&list);
    }
}

/// Header and query changes of the request, then `:path` rebuilt.
fn transform_request_headers(state: &mut State, t: &Transform, body: Option<&Body>) {
    let hp = (state.host.as_str(), state.path.as_str());
    let sources = Sources {
        querys: Some(&state.querys),
        body,
        ..Sources::default()
    };
    apply_kv(
        &t.headers,
        Source::Headers,
        &mut state.headers,
        &sources,
        hp,
    );
    if !t.querys.is_empty() {
        let sources = Sources {
            headers: Some(&state.headers),
            body,
            ..Sources::default()
        };
        apply_kv(&t.querys, Source::Querys, &mut state.querys, &sources, hp);
        let path = url::with_query(&state.path, &state.querys);
        state.headers.insert(":path".to_owned(), vec![path]);
    }
}

fn on_request_headers(ctx: &mut HttpContext<State>, config: &TransformerConfig) -> HeaderAction {
    if !config.reroute {
        ctx.disable_reroute();
    }
    // The response phase matches host_pattern / path_pattern on these too.
    let (host, path) = (ctx.host().to_owned(), ctx.path().to_owned());
    let state = ctx.state_mut();
    state.host.clone_from(&host);
    state.path.clone_from(&path);
    let Some(t) = &config.request else {
        ctx.dont_read_request_body();
        return HeaderAction::Continue;
    };
    let mut headers = to_kvs(ctx.request_headers());
    if !headers.contains_key(":authority") || !headers.contains_key(":path") {
        log::warn!("failed to get request host or path");
        ctx.dont_read_request_body();
        return HeaderAction::Continue;
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let valid = matches!(
        media_type(&content_type).as_str(),
        "application/json" | "application/x-www-form-urlencoded" | "multipart/form-data"
    );
    let body_change = !t.body.is_empty();
    if body_change && valid {
        headers.remove("content-length");
    }
    let querys = url::query_of(&path);
    let reads_body = valid && (body_change || t.body_map_source) && ctx.has_request_body();
    *ctx.state_mut() = State {
        host,
        path,
        content_type,
        headers,
        querys,
        headers_wait_for_body: reads_body && t.body_map_source,
    };
    if !reads_body {
        ctx.dont_read_request_body();
    } else if t.body_map_source {
        return HeaderAction::StopIteration;
    }
    let state = ctx.state_mut();
    transform_request_headers(state, t, None);
    replace_headers(ctx, false);
    HeaderAction::Continue
}

fn on_request_body(
    ctx: &mut HttpContext<State>,
    config: &TransformerConfig,
    body: &[u8],
) -> DataAction {
    let Some(t) = &config.request else {
        return DataAction::Continue;
    };
    if body.is_empty() {
        return DataAction::Continue;
    }
    let Some(mut parsed) = parse_body(&ctx.state().content_type, body) else {
        log::warn!("failed to parse request body");
        return DataAction::Continue;
    };
    if ctx.state().headers_wait_for_body {
        let state = ctx.state_mut();
        transform_request_headers(state, t, Some(&parsed));
        replace_headers(ctx, false);
    }
    if t.body.is_empty() {
        return DataAction::Continue;
    }
    let state = ctx.state();
    let hp = (state.host.as_str(), state.path.as_str());
    let sources = Sources {
        headers: Some(&state.headers),
        querys: Some(&state.querys),
        body: None,
    };
    let changed = match &mut parsed {
        Body::Json(doc) => apply_json(&t.body, doc, &sources, hp).is_some(),
        Body::Form(kvs) | Body::Multipart { fields: kvs, .. } => {
            apply_kv(&t.body, Source::Body, kvs, &sources, hp);
            true
        }
    };
    if changed {
        ctx.replace_request_body(body_bytes(&parsed));
    } else {
        log::warn!("failed to transform request body");
    }
    DataAction::Continue
}

fn on_response_headers(ctx: &mut HttpContext<State>, config: &TransformerConfig) -> HeaderAction {
    let Some(t) = &config.response else {
        ctx.dont_read_response_body();
        return HeaderAction::Continue;
    };
    let mut headers = to_kvs(ctx.response_headers());
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let valid = media_type(&content_type) == "application/json";
    let body_change = !t.body.is_empty();
    if body_change && valid {
        headers.remove("content-length");
    }
    let reads_body = valid && (body_change || t.body_map_source) && ctx.has_response_body();
    let state = ctx.state_mut();
    state.content_type = content_type;
    state.headers = headers;
    state.headers_wait_for_body = reads_body && t.body_map_source;
    if !reads_body {
        ctx.dont_read_response_body();
    } else if t.body_map_source {
        return HeaderAction::StopIteration;
    }
    let state = ctx.state_mut();
    let hp = (state.host.as_str(), state.path.as_str());
    apply_kv(
        &t.headers,
        Source::Headers,
        &mut state.headers,
        &Sources::default(),
        hp,
    );
    replace_headers(ctx, true);
    HeaderAction::Continue
}

fn on_response_body(
    ctx: &mut HttpContext<State>,
    config: &TransformerConfig,
    body: &[u8],
) -> DataAction {
    let Some(t) = &config.response else {
        return DataAction::Continue;
    };
    let Some(Body::Json(mut doc)) = parse_body(&ctx.state().content_type, body) else {
        return DataAction::Continue;
    };
    if ctx.state().headers_wait_for_body {
        let state = ctx.state_mut();
        let hp = (state.host.as_str(), state.path.as_str());
        let parsed = Body::Json(doc.clone());
        let sources = Sources {
            body: Some(&parsed),
            ..Sources::default()
        };
        apply_kv(
            &t.headers,
            Source::Headers,
            &mut state.headers,
            &sources,
            hp,
        );
        replace_headers(ctx, true);
    }
    if t.body.is_empty() {
        return DataAction::Continue;
    }
    let state = ctx.state();
    let hp = (state.host.as_str(), state.path.as_str());
    let sources = Sources {
        headers: Some(&state.headers),
        ..Sources::default()
    };
    if apply_json(&t.body, &mut doc, &sources, hp).is_some() {
        ctx.replace_response_body(body_bytes(&Body::Json(doc)));
    } else {
        log::warn!("failed to transform response body");
    }
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "transformer",
    plugin: pub Plugin,
    config: TransformerConfig,
    state: State,
    parse_config: parse_config,
    parse_rule_config: parse_rule_config,
    on_request_headers: on_request_headers,
    on_request_body: on_request_body,
    on_response_headers: on_response_headers,
    on_response_body: on_response_body,
}
