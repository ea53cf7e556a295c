//! Tests of the config layer as a whole: errors, `from_json`, merge-patch
//! and `_rules_` parsing.

use super::redact::redact;
use super::rules::{describe, push_json_string, MATCH_ROUTE_KEY, MATCH_SERVICE_KEY};
use super::*;
use serde::Deserialize;
use serde_json::json;
use std::cell::RefCell;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Redis {
    host: Option<String>,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cfg {
    #[serde(default)]
    name: String,
    #[serde(default)]
    redis: Option<Redis>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Item {
    name: u32,
}

/// A type whose `TryFrom<String>` error echoes the input, like a careless
/// user type would.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct Echo(#[allow(dead_code)] String);

impl TryFrom<String> for Echo {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Err(format!("bad token {s} (wanted \"x-...\")"))
    }
}

fn err_of<T: std::fmt::Debug>(result: Result<T, ConfigError>) -> ConfigError {
    match result {
        Ok(value) => ConfigError::new(format!("UNEXPECTED OK: {value:?}")),
        Err(err) => err,
    }
}

fn from_json_err<T: serde::de::DeserializeOwned + std::fmt::Debug>(v: Value) -> ConfigError {
    err_of(from_json::<T>(&v))
}

fn parse_cfg(v: &Value) -> Result<Cfg, ConfigError> {
    from_json(v)
}

fn parse_cfg_rule(r: &RuleInput<'_, Cfg>) -> Result<Cfg, ConfigError> {
    from_json(r.merged_json())
}

fn parse(raw: &str) -> Result<ParsedConfig<Cfg>, ConfigError> {
    parse_plugin_config(raw.as_bytes(), &parse_cfg, &parse_cfg_rule)
}

fn parse_err(raw: &str) -> String {
    match parse(raw) {
        Ok(parsed) => format!("UNEXPECTED OK: {parsed:?}"),
        Err(err) => err.to_string(),
    }
}

// ---- ConfigError -------------------------------------------------------

#[test]
fn error_display_and_accessors() {
    let plain = ConfigError::new("boom");
    assert_eq!(plain.to_string(), "boom");
    assert_eq!(plain.path(), None);
    assert_eq!(plain.rule_index(), None);
    assert_eq!(plain.location(), None);
    assert_eq!(plain.message(), "boom");

    let with_path = ConfigError::new("must be positive").with_path("redis.port");
    assert_eq!(with_path.to_string(), "redis.port: must be positive");
    assert_eq!(with_path.path(), Some("redis.port"));
    assert_eq!(with_path.clone().with_path("").path(), None);

    let located = with_path.located("_rules_[2] (_match_domain_: [\"*.a.com\"])", Some(2));
    assert_eq!(
        located.to_string(),
        "_rules_[2] (_match_domain_: [\"*.a.com\"]): redis.port: must be positive"
    );
    assert_eq!(located.rule_index(), Some(2));
    assert_eq!(located.message(), "must be positive");

    let twice = ConfigError::new("m")
        .located("inner", None)
        .located("outer", Some(1));
    assert_eq!(twice.to_string(), "outer: inner: m");
    assert_eq!(twice.rule_index(), Some(1));

    let boxed: Box<dyn std::error::Error> = Box::new(ConfigError::new("x"));
    assert!(boxed.source().is_none());
}

#[test]
fn from_serde_json_error_is_redacted() {
    let err = err_of(serde_json::from_str::<u16>("\"hunter2\"").map_err(ConfigError::from));
    assert_eq!(
        err.to_string(),
        "invalid type: string, expected u16 at line 1 column 9"
    );
    let syntax = err_of(serde_json::from_str::<Value>("{x").map_err(ConfigError::from));
    assert_eq!(
        syntax.to_string(),
        "key must be a string at line 1 column 2"
    );
    let variant = err_of(
        serde_json::from_value::<Mode>(json!("s3cr`et, expected x")).map_err(ConfigError::from),
    );
    assert_eq!(
        variant.to_string(),
        "unknown variant (value hidden), expected `allow` or `deny`"
    );
}

// ---- from_json ---------------------------------------------------------

#[test]
fn from_json_reports_paths() {
    let err = from_json_err::<Cfg>(json!({"redis": {"port": "6379x"}}));
    assert_eq!(err.path(), Some("redis.port"));
    assert_eq!(
        err.to_string(),
        "redis.port: invalid type: string, expected u16"
    );

    let err = from_json_err::<Cfg>(
        json!({"items": [{"name": 1}, {"name": 2}, {"name": 3}, {"name": true}]}),
    );
    assert_eq!(
        err.to_string(),
        "items[3].name: invalid type: boolean `true`, expected u32"
    );

    let err = from_json_err::<Cfg>(json!({"redis": {"host": "h"}}));
    assert_eq!(err.to_string(), "redis: missing field `port`");

    let err = from_json_err::<Cfg>(json!({"nmae": "x"}));
    assert_eq!(err.path(), Some("nmae"));
    assert!(err
        .message()
        .starts_with("unknown field `nmae`, expected one of"));

    let err = from_json_err::<Cfg>(json!("hunter2"));
    assert_eq!(err.path(), None);
    assert_eq!(err.to_string(), "invalid type: string, expected struct Cfg");

    let err = from_json_err::<Cfg>(json!({"limit": 5_000_000_000_u64}));
    assert_eq!(
        err.to_string(),
        "limit: invalid value: integer `5000000000`, expected u32"
    );

    let ok: Cfg = match from_json(&json!({"name": "n", "redis": {"port": 1}})) {
        Ok(cfg) => cfg,
        Err(err) => Cfg {
            name: err.to_string(),
            redis: None,
            mode: None,
            items: Vec::new(),
            limit: None,
        },
    };
    assert_eq!(ok.name, "n");
    assert_eq!(ok.redis.map(|r| r.port), Some(1));
}

#[test]
fn secrets_never_appear_in_messages() {
    let secret = "hunter2-P@ss\"w`o\\rd";
    let cases: Vec<(ConfigError, &str)> = vec![
        (
            from_json_err::<Cfg>(json!({"redis": {"port": secret}})),
            "redis.port: invalid type: string, expected u16",
        ),
        (
            from_json_err::<Cfg>(json!({"mode": secret})),
            "mode: unknown variant (value hidden), expected `allow` or `deny`",
        ),
        (
            from_json_err::<Cfg>(json!({"name": 12})),
            "name: invalid type: integer `12`, expected a string",
        ),
        (
            from_json_err::<char>(json!(secret)),
            "invalid value: string, expected a character",
        ),
        (
            from_json_err::<Echo>(json!(secret)),
            "bad token (value hidden) (wanted \"x-...\")",
        ),
        (
            from_json_err::<Vec<Mode>>(json!(["allow", secret])),
            "[1]: unknown variant (value hidden), expected `allow` or `deny`",
        ),
    ];
    for (err, want) in cases {
        let shown = err.to_string();
        let debug = format!("{err:?}");
        assert_eq!(shown, want);
        for leak in ["hunter2", "P@ss"] {
            assert!(!shown.contains(leak), "{shown}");
            assert!(!debug.contains(leak), "{debug}");
        }
    }
}

#[test]
fn redact_rewrites() {
    assert_eq!(
        redact("invalid type: string \"a\\\"b\", expected u8", None),
        "invalid type: string, expected u8"
    );
    assert_eq!(
        redact("invalid value: string \"\", expected a thing", None),
        "invalid value: string, expected a thing"
    );
    assert_eq!(
        redact("invalid value: character `é`, expected a digit", None),
        "invalid value: character, expected a digit"
    );
    assert_eq!(
        redact("unknown variant `x`, there are no variants", None),
        "unknown variant (value hidden), there are no variants"
    );
    // With the value known, the variant end is exact even if it contains
    // the separator serde uses.
    assert_eq!(
        redact(
            "unknown variant `a`, expected b`, expected `c`",
            Some("a`, expected b")
        ),
        "unknown variant (value hidden), expected `c`"
    );
    // Keys and numbers stay; standard formats are not scanned for the value.
    assert_eq!(
        redact("unknown field `token`, expected `a`", Some("token")),
        "unknown field `token`, expected `a`"
    );
    assert_eq!(
        redact(
            "invalid type: string \"string\", expected u8",
            Some("string")
        ),
        "invalid type: string, expected u8"
    );
    // Custom messages: long values are hidden, very short ones are not
    // (they would mangle the message and hide little).
    assert_eq!(redact("no ab here", Some("ab")), "no ab here");
    assert_eq!(redact("bad: abc!", Some("abc")), "bad: (value hidden)!");
    assert_eq!(
        redact("bad: \"q\\\"x\"", Some("q\"x")),
        "bad: \"(value hidden)\""
    );
    // Unterminated quote: left alone rather than guessed.
    assert_eq!(
        redact("invalid type: string \"abc", None),
        "invalid type: string \"abc"
    );
}

// ---- merge_patch -------------------------------------------------------

#[test]
fn merge_patch_rfc7386_examples() {
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        (json!({"a": "foo"}), json!(null), json!(null)),
        (json!({"a": "foo"}), json!("bar"), json!("bar")),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!([1, 2]),
            json!({"a": "b", "c": null}),
            json!({"a": "b"}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
    ];
    for (target, patch, want) in cases {
        let mut got = target.clone();
        merge_patch(&mut got, &patch);
        assert_eq!(got, want, "target={target} patch={patch}");
    }
}

// ---- parse_plugin_config ----------------------------------------------

#[test]
fn empty_config_calls_the_parser_with_an_empty_object() {
    for raw in ["", "  \n\t ", "{}", "{\"_plugin_id_\": \"p-1\"}"] {
        let seen = RefCell::new(Vec::new());
        let parse = |v: &Value| -> Result<u32, ConfigError> {
            seen.borrow_mut().push(v.clone());
            Ok(7)
        };
        let rule = |_: &RuleInput<'_, u32>| -> Result<u32, ConfigError> { Ok(0) };
        let parsed = parse_plugin_config(raw.as_bytes(), &parse, &rule);
        let global = parsed
            .as_ref()
            .ok()
            .and_then(|p| p.matcher.global().map(|g| **g));
        assert_eq!(global, Some(7), "{raw:?}");
        assert_eq!(seen.borrow().as_slice(), &[json!({})], "{raw:?}");
        assert_eq!(parsed.map(|p| p.matcher.rule_count()).ok(), Some(0));
    }
}

#[test]
fn empty_config_parser_error_fails() {
    let parse = |_: &Value| -> Result<u32, ConfigError> {
        Err(ConfigError::new("token is required").with_path("token"))
    };
    let rule = |_: &RuleInput<'_, u32>| -> Result<u32, ConfigError> { Ok(0) };
    let err = err_of(parse_plugin_config(b"", &parse, &rule));
    assert_eq!(err.to_string(), "global config: token: token is required");
    assert_eq!(err.location(), Some("global config"));
}

#[test]
fn invalid_json_and_non_objects() {
    assert_eq!(
        parse_err("{\"a\": \"hunter2"),
        "plugin config: invalid JSON: EOF while parsing a string at line 1 column 14"
    );
    assert_eq!(
        parse_err("{ x"),
        "plugin config: invalid JSON: key must be a string at line 1 column 3"
    );
    assert_eq!(
        parse_err("[1]"),
        "plugin config: the top level must be a JSON object, found an array"
    );
    assert_eq!(
        parse_err("\"hunter2\""),
        "plugin config: the top level must be a JSON object, found a string"
    );
}

#[test]
fn plugin_id_is_stripped() {
    let parsed = parse(r#"{"_plugin_id_": "plugin-a", "name": "n"}"#);
    assert_eq!(
        parsed.as_ref().ok().and_then(|p| p.plugin_id.clone()),
        Some("plugin-a".to_owned())
    );
    // `deny_unknown_fields` did not trip over `_plugin_id_`.
    assert_eq!(
        parsed
            .ok()
            .and_then(|p| p.matcher.global().map(|g| g.name.clone())),
        Some("n".to_owned())
    );

    let odd = parse(r#"{"_plugin_id_": 5, "name": "n"}"#);
    assert_eq!(odd.as_ref().ok().map(|p| p.plugin_id.is_none()), Some(true));
    assert_eq!(
        odd.ok().map(|p| p.warnings),
        Some(vec![
            "_plugin_id_ ignored: expected a string, found a number".to_owned()
        ])
    );
}

#[test]
fn global_only() {
    let parsed = parse(r#"{"name": "g", "redis": {"port": 1}}"#);
    let p = match parsed {
        Ok(p) => p,
        Err(err) => return assert_eq!(err.to_string(), ""),
    };
    assert_eq!(p.matcher.rule_count(), 0);
    assert!(p.warnings.is_empty());
    assert_eq!(p.matcher.global().map(|g| g.name.as_str()), Some("g"));

    assert_eq!(
        parse_err(r#"{"redis": {"port": "hunter2"}}"#),
        "global config: redis.port: invalid type: string, expected u16"
    );
}

#[test]
fn global_parser_never_sees_rules_or_plugin_id() {
    let seen = RefCell::new(Vec::new());
    let parse = |v: &Value| -> Result<u8, ConfigError> {
        seen.borrow_mut().push(v.clone());
        Ok(1)
    };
    let rule = |_: &RuleInput<'_, u8>| -> Result<u8, ConfigError> { Ok(2) };
    let raw = r#"{"_plugin_id_": "x", "a": 1, "_rules_": [{"_match_route_": ["r"]}]}"#;
    let parsed = parse_plugin_config(raw.as_bytes(), &parse, &rule);
    assert!(parsed.is_ok());
    assert_eq!(seen.borrow().as_slice(), &[json!({"a": 1})]);

    // Only `_rules_`: there are no global keys, so no global parse.
    seen.borrow_mut().clear();
    let parsed = parse_plugin_config(br#"{"_rules_": [{"_match_route_": ["r"]}]}"#, &parse, &rule);
    assert!(parsed.is_ok_and(|p| p.matcher.global().is_none()));
    assert!(seen.borrow().is_empty());
}

#[test]
fn failed_global_with_rules_is_a_warning() {
    let raw = r#"{"redis": {"port": "hunter2"}, "_rules_": [{"_match_domain_": ["a.com"], "name": "r"}]}"#;
    let globals_seen = RefCell::new(Vec::new());
    let rule = |r: &RuleInput<'_, Cfg>| -> Result<Cfg, ConfigError> {
        globals_seen.borrow_mut().push(r.global().is_some());
        from_json(r.rule_json())
    };
    let parsed = parse_plugin_config(raw.as_bytes(), &parse_cfg, &rule);
    let p = match parsed {
        Ok(p) => p,
        Err(err) => return assert_eq!(err.to_string(), ""),
    };
    assert!(p.matcher.global().is_none());
    assert_eq!(p.matcher.rule_count(), 1);
    assert_eq!(globals_seen.borrow().as_slice(), &[false]);
    assert_eq!(
        p.warnings,
        vec![
            "global config ignored because it failed to parse while _rules_ exist: \
             global config: redis.port: invalid type: string, expected u16"
                .to_owned()
        ]
    );
    assert!(!p.warnings.iter().any(|w| w.contains("hunter2")));
}

#[test]
fn no_rules_and_no_global() {
    assert_eq!(
        parse_err(r#"{"_rules_": []}"#),
        "_rules_: no valid rules and no global config: the array is empty and there are no other keys"
    );
    // Global failed and the rules are empty: the global error.
    assert_eq!(
        parse_err(r#"{"limit": "x", "_rules_": []}"#),
        "global config: limit: invalid type: string, expected u32"
    );
    // Global fine, rules empty: fine.
    assert!(parse(r#"{"limit": 3, "_rules_": []}"#)
        .is_ok_and(|p| p.matcher.global().is_some_and(|g| g.limit == Some(3))));
}

#[test]
fn rules_shape_errors() {
    assert_eq!(
        parse_err(r#"{"_rules_": {"_match_route_": ["r"]}}"#),
        "_rules_: expected an array of rule objects, found an object"
    );
    assert_eq!(
        parse_err(r#"{"_rules_": null}"#),
        "_rules_: expected an array of rule objects, found null"
    );
    assert_eq!(
        parse_err(r#"{"_rules_": [{"_match_route_": ["r"]}, "hunter2"]}"#),
        "_rules_[1]: a rule must be a JSON object, found a string"
    );
    assert_eq!(
        parse_err(r#"{"_rules_": [{"_match_route_": "default/foo"}]}"#),
        "_rules_[0]: _match_route_: expected an array of strings, found a string"
    );
    assert_eq!(
        parse_err(r#"{"_rules_": [{"_match_route_": ["r"]}, {"_match_domain_": ["a", 1]}]}"#),
        "_rules_[1]: _match_domain_[1]: expected a string, found a number"
    );
    assert_eq!(
        parse_err(r#"{"_rules_": [{"_match_service_": {}}]}"#),
        "_rules_[0]: _match_service_: expected an array of strings, found an object"
    );
    assert_eq!(
        parse_err(r#"{"_rules_": [{"_match_route_prefix_": [null]}]}"#),
        "_rules_[0]: _match_route_prefix_[0]: expected a string, found null"
    );
    let err = err_of(parse(
        r#"{"_rules_": [{"_match_route_": ["r"]}, {"_match_route_": 3}]}"#,
    ));
    assert_eq!(err.rule_index(), Some(1));
    assert_eq!(err.path(), Some("_match_route_"));
}

#[test]
fn rule_without_match_keys() {
    let want = "_rules_[0]: a rule needs at least one of _match_route_, _match_domain_, \
                _match_service_, _match_route_prefix_";
    assert_eq!(parse_err(r#"{"_rules_": [{"name": "x"}]}"#), want);
    // Empty lists, empty strings (dropped as in Go) and nulls count as absent.
    assert_eq!(
        parse_err(
            r#"{"_rules_": [{"_match_route_": [""], "_match_service_": [], "_match_route_prefix_": [""], "_match_domain_": null}]}"#
        ),
        want
    );
    let err = err_of(parse(
        r#"{"name": "g", "_rules_": [{"_match_route_": ["r"]}, {}]}"#,
    ));
    assert_eq!(err.rule_index(), Some(1));
    assert!(err.to_string().starts_with("_rules_[1]: a rule needs"));
    // An empty domain is kept, as in Go, so this rule is valid.
    assert!(parse(r#"{"_rules_": [{"_match_domain_": [""]}]}"#).is_ok());
}

#[test]
fn rule_parse_error_is_located() {
    let raw = r#"{"name": "g", "_rules_": [
        {"_match_route_": ["a"]},
        {"_match_route_": ["b"]},
        {"_match_domain_": ["*.a.com"], "redis": {"port": "hunter2"}},
        {"_match_route_": ["never parsed"], "redis": {"port": "x"}}
    ]}"#;
    let err = err_of(parse(raw));
    assert_eq!(
        err.to_string(),
        "_rules_[2] (_match_domain_: [\"*.a.com\"]): redis.port: invalid type: string, expected u16"
    );
    assert_eq!(err.rule_index(), Some(2));
    assert_eq!(err.path(), Some("redis.port"));
    assert_eq!(
        err.location(),
        Some("_rules_[2] (_match_domain_: [\"*.a.com\"])")
    );

    // deny_unknown_fields sees the rule without its match keys.
    assert_eq!(
        parse_err(r#"{"_rules_": [{"_match_service_": ["s:80"], "nmae": 1}]}"#)
            .split(", expected")
            .next(),
        Some("_rules_[0] (_match_service_: [\"s:80\"]): nmae: unknown field `nmae`")
    );
    // Both category keys are named for route + service.
    assert_eq!(
        parse_err(r#"{"_rules_": [{"_match_route_": ["r"], "_match_service_": ["s"], "_match_domain_": ["d"], "limit": -1}]}"#),
        "_rules_[0] (_match_route_: [\"r\"], _match_service_: [\"s\"]): limit: invalid value: integer `-1`, expected u32"
    );
}

#[test]
fn rule_description_escapes_like_serde_json() {
    let values = ["a\"b\\c/\u{e9}", "\u{1}\u{8}\t\n\u{c}\r\u{1f}\u{7f}", ""];
    let mut got = String::new();
    for v in values {
        got.clear();
        push_json_string(&mut got, v);
        assert_eq!(got, Value::String(v.to_owned()).to_string());
    }
    let list: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    let first = list.get(..1).unwrap_or_default();
    assert_eq!(
        describe(
            "_rules_[3]",
            &[(MATCH_ROUTE_KEY, &list), (MATCH_SERVICE_KEY, first)]
        ),
        format!(
            "_rules_[3] (_match_route_: {}, _match_service_: {})",
            json!(list),
            json!(first)
        )
    );
}

#[test]
fn rule_inputs() {
    let raw = r#"{"_plugin_id_": "p", "name": "global", "limit": 5, "redis": {"host": "h", "port": 1},
        "_rules_": [
            {"_match_route_": ["r"], "_match_domain_": ["d"], "_match_service_": [], "_match_route_prefix_": null,
             "_rules_": [], "_plugin_id_": "q", "limit": 9, "redis": {"port": 2}},
            {"_match_route_prefix_": ["api-"], "limit": null}
        ]}"#;
    let seen = RefCell::new(Vec::new());
    let rule = |r: &RuleInput<'_, Cfg>| -> Result<Cfg, ConfigError> {
        seen.borrow_mut().push((
            r.index(),
            r.location().to_owned(),
            r.rule_json().clone(),
            r.merged_json().clone(),
            r.global().map(|g| g.name.clone()),
        ));
        from_json(r.merged_json())
    };
    let parsed = parse_plugin_config(raw.as_bytes(), &parse_cfg, &rule);
    let p = match parsed {
        Ok(p) => p,
        Err(err) => return assert_eq!(err.to_string(), ""),
    };
    let global = Some("global".to_owned());
    assert_eq!(
        seen.borrow().as_slice(),
        &[
            (
                0,
                "_rules_[0] (_match_route_: [\"r\"])".to_owned(),
                json!({"limit": 9, "redis": {"port": 2}}),
                json!({"name": "global", "limit": 9, "redis": {"host": "h", "port": 2}}),
                global.clone(),
            ),
            (
                1,
                "_rules_[1] (_match_route_prefix_: [\"api-\"])".to_owned(),
                json!({"limit": null}),
                json!({"name": "global", "redis": {"host": "h", "port": 1}}),
                global,
            ),
        ]
    );
    assert_eq!(p.plugin_id.as_deref(), Some("p"));
    assert_eq!(p.matcher.rule_count(), 2);
    assert_eq!(
        p.matcher.describe_rule(0),
        Some("_rules_[0] (_match_route_: [\"r\"])")
    );
    assert_eq!(
        p.matcher.describe_rule(1),
        Some("_rules_[1] (_match_route_prefix_: [\"api-\"])")
    );
    // The rule is a Route rule: its domain is ignored.
    assert!(p.matcher.needs_route() && !p.matcher.needs_host() && !p.matcher.needs_cluster());
    match p.matcher.find(Some(b"d"), Some("r"), None) {
        crate::config::matcher::Matched::Rule { index, config } => {
            assert_eq!(index, 0);
            assert_eq!(config.limit, Some(9));
            assert_eq!(config.redis.as_ref().map(|r| r.port), Some(2));
        }
        _ => assert_eq!("no match", "rule 0"),
    }
    match p.matcher.find(None, Some("api-v1"), None) {
        crate::config::matcher::Matched::Rule { index, config } => {
            assert_eq!(index, 1);
            assert_eq!(config.limit, None);
        }
        _ => assert_eq!("no match", "rule 1"),
    }
    match p.matcher.find(None, Some("other"), None) {
        crate::config::matcher::Matched::Global(g) => assert_eq!(g.name, "global"),
        _ => assert_eq!("no match", "global"),
    }
}

#[test]
fn rules_are_kept_in_order_and_first_match_wins() {
    let raw = r#"{"_rules_": [
        {"_match_domain_": ["*.a.com"], "name": "wild"},
        {"_match_domain_": ["www.a.com"], "name": "exact"},
        {"_match_service_": ["svc.ns.svc.cluster.local:8080"], "name": "svc"}
    ]}"#;
    let p = match parse(raw) {
        Ok(p) => p,
        Err(err) => return assert_eq!(err.to_string(), ""),
    };
    let name = |host: &[u8], cluster: Option<&str>| match p.matcher.find(Some(host), None, cluster)
    {
        crate::config::matcher::Matched::Rule { config, .. } => config.name.clone(),
        crate::config::matcher::Matched::Global(_) => "global".to_owned(),
        crate::config::matcher::Matched::None => "none".to_owned(),
    };
    assert_eq!(name(b"www.a.com:443", None), "wild");
    assert_eq!(name(b"a.com", None), "none");
    assert_eq!(
        name(b"b.com", Some("outbound|8080||svc.ns.svc.cluster.local")),
        "svc"
    );
    assert!(p.matcher.needs_host() && p.matcher.needs_cluster() && !p.matcher.needs_route());
    assert_eq!(
        p.matcher.describe_rule(2),
        Some("_rules_[2] (_match_service_: [\"svc.ns.svc.cluster.local:8080\"])")
    );
}

#[test]
fn custom_rule_parser_can_use_the_global() {
    let parse = |v: &Value| -> Result<u32, ConfigError> {
        v.get("base")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| ConfigError::new("expected a u32").with_path("base"))
    };
    let rule = |r: &RuleInput<'_, u32>| -> Result<u32, ConfigError> {
        let add = r
            .rule_json()
            .get("add")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let add = u32::try_from(add).map_err(|_| ConfigError::new("too big").with_path("add"))?;
        Ok(r.global().copied().unwrap_or(0) + add)
    };
    let raw = br#"{"base": 10, "_rules_": [{"_match_route_": ["r"], "add": 5}]}"#;
    let p = parse_plugin_config(raw, &parse, &rule);
    let got = p
        .ok()
        .and_then(|p| match p.matcher.find(None, Some("r"), None) {
            crate::config::matcher::Matched::Rule { config, .. } => Some(**config),
            _ => None,
        });
    assert_eq!(got, Some(15));

    let raw = br#"{"base": 10, "_rules_": [{"_match_route_": ["r"], "add": 5000000000}]}"#;
    let err = err_of(parse_plugin_config(raw, &parse, &rule));
    assert_eq!(
        err.to_string(),
        "_rules_[0] (_match_route_: [\"r\"]): add: too big"
    );
}

// ---- reading the rules one at a time -------------------------------------

#[test]
fn merged_is_merge_patch_over_a_copy() {
    let targets = [
        json!({"a": "b", "n": {"x": 1, "y": [1, 2]}, "z": null}),
        json!({}),
        json!([1, 2]),
        json!("s"),
        json!(null),
    ];
    let patches = [
        json!({"a": null, "n": {"x": null, "w": {"k": null, "v": 2}}, "q": 3}),
        json!({"n": 5, "z": {"deep": null}}),
        json!({}),
        json!([{"a": null}]),
        json!(null),
        json!(7),
    ];
    for target in &targets {
        for patch in &patches {
            let mut want = target.clone();
            merge_patch(&mut want, patch);
            assert_eq!(
                super::merge::merged(target, patch),
                want,
                "target={target} patch={patch}"
            );
        }
    }
}

#[test]
fn rules_are_read_like_one_json_value() {
    // `_rules_` before the global keys; a key given twice counts once, with
    // its last value (as `serde_json::Value` reads it).
    let raw = r#"{"_rules_": [{"_match_route_": ["old"], "name": "old"}],
        "name": "first", "_plugin_id_": "p1",
        "_rules_": [{"_match_route_": ["a"], "name": "a", "name": "a2"}, {"_match_route_": ["b"]}],
        "name": "g", "_plugin_id_": "p2"}"#;
    let p = match parse(raw) {
        Ok(p) => p,
        Err(err) => return assert_eq!(err.to_string(), ""),
    };
    assert_eq!(p.plugin_id.as_deref(), Some("p2"));
    assert_eq!(p.matcher.global().map(|g| g.name.as_str()), Some("g"));
    assert_eq!(p.matcher.rule_count(), 2);
    let name = |route: &str| match p.matcher.find(None, Some(route), None) {
        crate::config::matcher::Matched::Rule { config, .. } => config.name.clone(),
        crate::config::matcher::Matched::Global(g) => format!("global {}", g.name),
        crate::config::matcher::Matched::None => "none".to_owned(),
    };
    assert_eq!(name("a"), "a2");
    assert_eq!(name("b"), "g");
    assert_eq!(name("old"), "global g");

    // The last `_rules_` decides the shape.
    assert_eq!(
        parse_err(r#"{"_rules_": [{"_match_route_": ["r"]}], "_rules_": 5}"#),
        "_rules_: expected an array of rule objects, found a number"
    );
    assert!(parse(r#"{"name": "g", "_rules_": 5, "_rules_": []}"#).is_ok());
}

#[test]
fn bad_json_anywhere_is_reported_before_any_rule_is_parsed() {
    let calls = RefCell::new(0);
    let rule = |r: &RuleInput<'_, Cfg>| -> Result<Cfg, ConfigError> {
        *calls.borrow_mut() += 1;
        from_json(r.merged_json())
    };
    // Rule 0 is wrong and rule 1 is not JSON: the JSON error wins, and no
    // rule parser ran.
    for (raw, want) in [
        (
            r#"{"_rules_": [{"_match_route_": ["r"], "limit": "x"}, {"_match_route_": [1e999]}]}"#,
            "plugin config: invalid JSON: number out of range at line 1 column ",
        ),
        (
            r#"{"_rules_": [{"_match_route_": ["r"]}], "name": "g"} x"#,
            "plugin config: invalid JSON: trailing characters at line 1 column ",
        ),
        (
            r#"[{"_match_route_": ["r"]}, {"a": tru}]"#,
            "plugin config: invalid JSON: expected ident at line 1 column ",
        ),
    ] {
        let got = err_of(parse_plugin_config(raw.as_bytes(), &parse_cfg, &rule)).to_string();
        assert!(got.starts_with(want), "{got}");
        // Word for word what parsing the whole text into a `Value` says.
        let whole = serde_json::from_str::<Value>(raw).map(|_| ());
        assert_eq!(
            whole.map_err(|e| format!("plugin config: invalid JSON: {e}")),
            Err(got),
            "{raw}"
        );
    }
    assert_eq!(*calls.borrow(), 0);
}

#[test]
fn a_failing_rule_stops_the_reading() {
    let seen = RefCell::new(Vec::new());
    let rule = |r: &RuleInput<'_, u8>| -> Result<u8, ConfigError> {
        seen.borrow_mut().push(r.index());
        if r.index() == 1 {
            Err(ConfigError::new("no"))
        } else {
            Ok(0)
        }
    };
    let global = |_: &Value| -> Result<u8, ConfigError> { Ok(0) };
    let raw = br#"{"_rules_": [{"_match_route_": ["a"]}, {"_match_route_": ["b"]}, {"_match_route_": ["c"]}]}"#;
    let err = err_of(parse_plugin_config(raw, &global, &rule));
    assert_eq!(err.to_string(), "_rules_[1] (_match_route_: [\"b\"]): no");
    assert_eq!(seen.borrow().as_slice(), &[0, 1]);
}

#[test]
fn merged_json_is_made_only_when_asked_for() {
    // A parser reading only the rule's own keys never triggers the merge;
    // the value it would see is unchanged either way.
    let rule = |r: &RuleInput<'_, u8>| -> Result<u8, ConfigError> {
        assert!(r.merged_json.get().is_none());
        assert_eq!(r.rule_json(), &json!({"b": 2}));
        assert_eq!(r.merged_json(), &json!({"a": 1, "b": 2}));
        assert!(r.merged_json.get().is_some());
        Ok(1)
    };
    let global = |_: &Value| -> Result<u8, ConfigError> { Ok(0) };
    let raw = br#"{"a": 1, "_rules_": [{"_match_route_": ["r"], "b": 2}]}"#;
    assert!(parse_plugin_config(raw, &global, &rule).is_ok());
}
