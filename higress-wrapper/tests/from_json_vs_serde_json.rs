//! The SDK's config deserializer (`higress_wrapper::config::from_json`)
//! against `serde_json::from_value`, on the same random documents.
//!
//! `from_json` is a port of `serde_json`'s `&Value` deserializer with its own
//! error type (JSON paths, hidden secrets, no float formatting). This test
//! holds it to the original: for every document and every target type, both
//! must accept with equal values or both must reject (the wording of the
//! errors may differ).
//!
//! Documents are made from valid examples of each type, mutated: a node
//! replaced by a random value (numbers at and just past every integer limit,
//! floats such as `1.0`, variant and field names as strings, nested arrays
//! and objects), a member removed or added, a value wrapped in an array or
//! an object. Every document is checked against every type, so each type
//! also sees documents made for the others.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use higress_wrapper::config::from_json;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Number, Value};

// ---- the types plugins use --------------------------------------------------

#[derive(Debug, PartialEq, Deserialize)]
struct Unit;

#[derive(Debug, PartialEq, Deserialize)]
struct Newtype(u32);

#[derive(Debug, PartialEq, Deserialize)]
struct Pair(i8, String);

#[derive(Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Allow,
    DryRun,
    #[serde(rename = "deny!")]
    Deny,
    #[serde(alias = "off")]
    Disabled,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Ints {
    a: i8,
    b: i16,
    c: i32,
    d: i64,
    e: u8,
    f: u16,
    g: u32,
    h: u64,
    i: i128,
    j: u128,
    k: isize,
    l: usize,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Floats {
    x: f32,
    y: f64,
    #[serde(default)]
    z: Option<f32>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Strict {
    #[serde(rename = "id")]
    ident: u32,
    #[serde(default)]
    name: String,
    #[serde(alias = "colour")]
    color: Option<String>,
    mode: Option<Mode>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Camel {
    first_name: String,
    #[serde(default)]
    max_retries: u8,
    inner: Option<Inner>,
    #[serde(rename = "ok?")]
    ok: bool,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
struct Defaults {
    a: u16,
    b: Vec<String>,
    c: bool,
    d: Option<char>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Inner {
    x: i32,
    #[serde(default)]
    y: Option<f64>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Flat {
    name: String,
    #[serde(flatten)]
    inner: Inner,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct FlatTyped {
    #[serde(flatten)]
    inner: Inner,
    #[serde(flatten)]
    numbers: HashMap<String, u8>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum External {
    Unit,
    New(u8),
    Tup(u8, String),
    Struct { a: bool },
    Inner(Inner),
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "type")]
enum Internal {
    A,
    B(Inner),
    C {
        n: u64,
    },
    #[serde(rename = "d-d")]
    D {},
    E(BTreeMap<String, u8>),
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "type")]
enum InternalOther {
    Known {
        v: i16,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    U,
    N(i16),
    T(u8, u8),
    S { s: String },
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Null(()),
    Small(u8),
    Big(i64),
    Float(f64),
    Text(String),
    Obj { k: bool },
    Tagged(Adjacent),
    List(Vec<u16>),
}

#[derive(Debug, PartialEq, Deserialize)]
struct Everything {
    unit: Unit,
    newtype: Newtype,
    pair: Pair,
    tuple: (u8, bool, char),
    array: [i32; 2],
    list: Vec<Adjacent>,
    map: HashMap<String, Untagged>,
    sorted: BTreeMap<String, External>,
    #[serde(default)]
    internal: Option<Internal>,
    #[serde(default)]
    nested: Option<Vec<Option<Mode>>>,
    ch: char,
    text: String,
    boxed: Box<str>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Others {
    ip: std::net::IpAddr,
    duration: std::time::Duration,
    #[serde(default)]
    unit: (),
    numbers: BTreeMap<u32, bool>,
    signed: BTreeMap<i8, String>,
    flags: BTreeMap<bool, u8>,
}

/// A type read through `deserialize_byte_buf`, as byte-string types are
/// (a JSON string's bytes, or an array of numbers).
#[derive(Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bytes, E> {
                Ok(Bytes(v.as_bytes().to_vec()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Bytes, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Bytes(out))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

// ---- documents -----------------------------------------------------------------

/// Valid (or nearly valid) examples of the types above: the starting points
/// of the mutations.
fn templates() -> Vec<Value> {
    vec![
        json!(null),
        json!(7),
        json!(-3),
        json!(1.5),
        json!(true),
        json!("z"),
        json!("allow"),
        json!([1, "x"]),
        json!({
            "a": -128, "b": 32767, "c": -2147483648_i64, "d": i64::MIN, "e": 255, "f": 65535,
            "g": 4294967295_u64, "h": u64::MAX, "i": i64::MIN, "j": u64::MAX, "k": -1, "l": 0
        }),
        json!({"x": 1.5, "y": -0.0, "z": 3.4028234663852886e38}),
        json!({"id": 1, "name": "n", "colour": "red", "mode": "dry_run"}),
        json!({"id": 2, "color": null, "mode": "deny!"}),
        json!({"firstName": "a", "maxRetries": 3, "inner": {"x": 1, "y": 2.5}, "ok?": true}),
        json!({"a": 1, "b": ["x", "y"], "c": true, "d": "c"}),
        json!({}),
        json!({"name": "n", "x": -5, "y": null, "extra": [1, {"k": 2}]}),
        json!({"x": 1, "p": 2, "q": 255}),
        json!("unit"),
        json!({"new": 5}),
        json!({"tup": [1, "s"]}),
        json!({"struct": {"a": false}}),
        json!({"inner": {"x": 3}}),
        json!({"type": "A"}),
        json!({"type": "B", "x": 1, "y": 1.0}),
        json!({"type": "C", "n": u64::MAX}),
        json!({"type": "d-d"}),
        json!({"type": "E", "k": 1, "l": 2}),
        json!({"type": "Known", "v": -1}),
        json!({"type": "Whatever"}),
        json!({"t": "U"}),
        json!({"t": "N", "c": -32768}),
        json!({"t": "T", "c": [1, 2]}),
        json!({"c": {"s": "str"}, "t": "S"}),
        json!({"k": true}),
        json!([1, 2, 65535]),
        json!({
            "unit": null, "newtype": 4294967295_u64, "pair": [-1, "p"], "tuple": [1, true, "z"],
            "array": [1, -1], "list": [{"t": "U"}, {"t": "N", "c": 1}],
            "map": {"a": 1, "b": "s", "c": {"k": false}, "d": null, "e": [1]},
            "sorted": {"x": "unit", "y": {"new": 1}},
            "internal": {"type": "C", "n": 1}, "nested": ["allow", null, "off"],
            "ch": "é", "text": "t", "boxed": "b"
        }),
        json!({
            "ip": "127.0.0.1", "duration": {"secs": 1, "nanos": 5}, "unit": null,
            "numbers": {"1": true, "4294967295": false}, "signed": {"-128": "a", "127": "b"},
            "flags": {"true": 1, "false": 0}
        }),
        json!({"ip": "::1", "duration": [3, 0], "numbers": {}, "signed": {}, "flags": {}}),
    ]
}

/// Object keys the mutations use: the field, variant and tag names above
/// and some near misses.
const KEYS: &[&str] = &[
    "a",
    "b",
    "c",
    "d",
    "x",
    "y",
    "z",
    "k",
    "n",
    "s",
    "t",
    "v",
    "id",
    "ident",
    "name",
    "color",
    "colour",
    "mode",
    "firstName",
    "first_name",
    "maxRetries",
    "inner",
    "ok?",
    "ok",
    "type",
    "unit",
    "new",
    "tup",
    "struct",
    "secs",
    "nanos",
    "ip",
    "duration",
    "numbers",
    "signed",
    "flags",
    "1",
    "-1",
    "01",
    "1.5",
    "true",
    "256",
    "-129",
    "",
    "extra",
];

/// Strings the mutations use: variant and tag names, characters, numbers as
/// text, and some near misses.
const STRINGS: &[&str] = &[
    "", "a", "é", "ab", "allow", "dry_run", "DryRun", "deny!", "deny", "off", "disabled", "unit",
    "new", "tup", "struct", "inner", "A", "B", "C", "d-d", "E", "Known", "Other", "U", "N", "T",
    "S", "1", "true", "null", "::1", "10.0.0.1", "1.2.3", "\u{0}", "😀", "ab\"c",
];

/// Integers at and just past every width's limits, and floats that sit on
/// integers, limits and the edges of `f32`.
fn numbers() -> Vec<Number> {
    let mut out: Vec<Number> = Vec::new();
    let signed = [
        0,
        1,
        -1,
        i64::from(i8::MIN),
        i64::from(i8::MAX),
        i64::from(i16::MIN),
        i64::from(i16::MAX),
        i64::from(i32::MIN),
        i64::from(i32::MAX),
        i64::MIN,
        i64::MAX,
    ];
    for n in signed {
        out.push(n.into());
        out.push(n.saturating_add(1).into());
        out.push(n.saturating_sub(1).into());
    }
    for n in [
        u64::from(u8::MAX),
        u64::from(u16::MAX),
        u64::from(u32::MAX),
        u64::MAX,
        u64::MAX - 1,
        1 << 53,
        (1 << 53) + 1,
    ] {
        out.push(n.into());
        out.push((n.wrapping_add(1)).into());
    }
    for f in [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        1.5,
        255.0,
        256.0,
        -129.0,
        65535.0,
        4294967296.0,
        9007199254740993.0,
        1e20,
        -1e20,
        1.8446744073709552e19,
        -9.223372036854776e18,
        f64::from(f32::MAX),
        f64::from(f32::MAX) * 2.0,
        f64::from(f32::MIN_POSITIVE),
        1e-320,
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        0.1,
    ] {
        if let Some(n) = Number::from_f64(f) {
            out.push(n);
        }
    }
    out
}

fn leaf() -> impl Strategy<Value = Value> {
    let numbers = numbers();
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        proptest::sample::select(numbers).prop_map(Value::Number),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        proptest::sample::select(STRINGS).prop_map(|s| Value::String(s.to_owned())),
        any::<char>().prop_map(|c| Value::String(c.to_string())),
        "[a-z]{0,6}".prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z0-9]{0,4}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One change to a document, at the node `at` (modulo the node count, in
/// pre-order).
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Value),
    RemoveMember(usize, usize),
    AddMember(usize, String, Value),
    WrapInArray(usize),
    WrapInObject(usize, String),
    Duplicate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        4 => (at, json_value()).prop_map(|(at, v)| Mutation::Replace(at, v)),
        2 => (at, any::<usize>()).prop_map(|(at, i)| Mutation::RemoveMember(at, i)),
        2 => (at, key(), json_value()).prop_map(|(at, k, v)| Mutation::AddMember(at, k, v)),
        1 => at.prop_map(Mutation::WrapInArray),
        1 => (at, key()).prop_map(|(at, k)| Mutation::WrapInObject(at, k)),
        1 => at.prop_map(Mutation::Duplicate),
    ]
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(members) => members.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The `n`-th node in pre-order.
fn node_mut(v: &mut Value, n: usize) -> Option<&mut Value> {
    fn walk<'v>(v: &'v mut Value, n: &mut usize) -> Option<&'v mut Value> {
        if *n == 0 {
            return Some(v);
        }
        *n -= 1;
        match v {
            Value::Array(items) => items.iter_mut().find_map(|c| walk(c, n)),
            Value::Object(members) => members.values_mut().find_map(|c| walk(c, n)),
            _ => None,
        }
    }
    let mut n = n;
    walk(v, &mut n)
}

fn apply(doc: &mut Value, m: &Mutation) {
    let nodes = count_nodes(doc);
    let pick = |at: usize| at % nodes;
    match m {
        Mutation::Replace(at, value) => {
            if let Some(node) = node_mut(doc, pick(*at)) {
                *node = value.clone();
            }
        }
        Mutation::RemoveMember(at, i) => match node_mut(doc, pick(*at)) {
            Some(Value::Object(members)) if !members.is_empty() => {
                let key = members.keys().nth(i % members.len()).cloned();
                if let Some(key) = key {
                    members.remove(&key);
                }
            }
            Some(Value::Array(items)) if !items.is_empty() => {
                items.remove(i % items.len());
            }
            _ => {}
        },
        Mutation::AddMember(at, key, value) => match node_mut(doc, pick(*at)) {
            Some(Value::Object(members)) => {
                members.insert(key.clone(), value.clone());
            }
            Some(Value::Array(items)) => items.push(value.clone()),
            _ => {}
        },
        Mutation::WrapInArray(at) => {
            if let Some(node) = node_mut(doc, pick(*at)) {
                *node = Value::Array(vec![node.take()]);
            }
        }
        Mutation::WrapInObject(at, key) => {
            if let Some(node) = node_mut(doc, pick(*at)) {
                let mut members = Map::new();
                members.insert(key.clone(), node.take());
                *node = Value::Object(members);
            }
        }
        Mutation::Duplicate(at) => {
            if let Some(node) = node_mut(doc, pick(*at)) {
                let copy = node.clone();
                *node = Value::Array(vec![copy.clone(), copy]);
            }
        }
    }
}

fn document() -> impl Strategy<Value = Value> {
    let templates = templates();
    (
        proptest::sample::select(templates),
        proptest::collection::vec(mutation(), 0..4),
    )
        .prop_map(|(mut doc, mutations)| {
            for m in &mutations {
                apply(&mut doc, m);
            }
            doc
        })
}

// ---- the comparison -----------------------------------------------------------

/// Both accept with equal values, or both reject. Records the decision
/// under the type's name.
fn same<T: DeserializeOwned + PartialEq + Debug>(
    doc: &Value,
    seen: &mut dyn FnMut(&'static str, bool),
) -> Result<(), TestCaseError> {
    let ours = from_json::<T>(doc);
    let theirs = serde_json::from_value::<T>(doc.clone());
    let name = std::any::type_name::<T>();
    seen(name, ours.is_ok());
    match (ours, theirs) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{} on {}", name, doc),
        (Err(_), Err(_)) => {}
        (Ok(a), Err(e)) => {
            prop_assert!(
                false,
                "{name} on {doc}: from_json accepted {a:?}, serde_json: {e}"
            )
        }
        (Err(e), Ok(b)) => {
            prop_assert!(
                false,
                "{name} on {doc}: from_json rejected ({e}), serde_json: {b:?}"
            )
        }
    }
    Ok(())
}

/// Every type above and the primitives, each on `doc`.
fn all_types(doc: &Value, seen: &mut dyn FnMut(&'static str, bool)) -> Result<(), TestCaseError> {
    same::<()>(doc, seen)?;
    same::<bool>(doc, seen)?;
    same::<i8>(doc, seen)?;
    same::<i16>(doc, seen)?;
    same::<i32>(doc, seen)?;
    same::<i64>(doc, seen)?;
    same::<i128>(doc, seen)?;
    same::<u8>(doc, seen)?;
    same::<u16>(doc, seen)?;
    same::<u32>(doc, seen)?;
    same::<u64>(doc, seen)?;
    same::<u128>(doc, seen)?;
    same::<f32>(doc, seen)?;
    same::<f64>(doc, seen)?;
    same::<char>(doc, seen)?;
    same::<String>(doc, seen)?;
    same::<Option<u32>>(doc, seen)?;
    same::<Option<Option<bool>>>(doc, seen)?;
    same::<Vec<i16>>(doc, seen)?;
    same::<(u8, String)>(doc, seen)?;
    same::<Unit>(doc, seen)?;
    same::<Newtype>(doc, seen)?;
    same::<Pair>(doc, seen)?;
    same::<Mode>(doc, seen)?;
    same::<Vec<Mode>>(doc, seen)?;
    same::<Ints>(doc, seen)?;
    same::<Floats>(doc, seen)?;
    same::<Strict>(doc, seen)?;
    same::<Camel>(doc, seen)?;
    same::<Defaults>(doc, seen)?;
    same::<Flat>(doc, seen)?;
    same::<FlatTyped>(doc, seen)?;
    same::<External>(doc, seen)?;
    same::<Option<External>>(doc, seen)?;
    same::<Internal>(doc, seen)?;
    same::<InternalOther>(doc, seen)?;
    same::<Vec<Internal>>(doc, seen)?;
    same::<Adjacent>(doc, seen)?;
    same::<Untagged>(doc, seen)?;
    same::<Everything>(doc, seen)?;
    same::<Others>(doc, seen)?;
    same::<BTreeMap<String, i64>>(doc, seen)?;
    same::<HashMap<String, Option<u8>>>(doc, seen)?;
    same::<Value>(doc, seen)?;
    same::<Bytes>(doc, seen)?;
    same::<Vec<Bytes>>(doc, seen)?;
    // Maps whose keys are not strings: JSON keys read as numbers, booleans,
    // characters and enum variants.
    same::<BTreeMap<u32, bool>>(doc, seen)?;
    same::<BTreeMap<i8, Value>>(doc, seen)?;
    same::<BTreeMap<i128, u8>>(doc, seen)?;
    same::<BTreeMap<bool, Value>>(doc, seen)?;
    same::<BTreeMap<char, Value>>(doc, seen)?;
    same::<HashMap<Mode, Value>>(doc, seen)?;
    same::<HashMap<u64, Option<Value>>>(doc, seen)?;
    same::<BTreeMap<String, BTreeMap<u8, i8>>>(doc, seen)?;
    same::<std::num::NonZeroU32>(doc, seen)?;
    same::<std::path::PathBuf>(doc, seen)?;
    same::<Box<[u16]>>(doc, seen)?;
    same::<Option<()>>(doc, seen)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // With the sweep below: 4,096 documents in all, each against every
        // type.
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Mutated examples, against every type.
    #[test]
    fn from_json_agrees_with_serde_json(doc in document()) {
        all_types(&doc, &mut |_, _| {})?;
    }

    /// Random documents, against every type.
    #[test]
    fn from_json_agrees_with_serde_json_on_any_json(doc in json_value()) {
        all_types(&doc, &mut |_, _| {})?;
    }
}

/// A fixed sweep of 2,048 mutated documents (the same ones every run), which
/// also counts the decisions: every type must have been seen both accepting
/// and rejecting, so the comparison is known to cover both.
#[test]
fn fixed_sweep_sees_both_decisions_for_every_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = document();
    let mut decisions: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let mut record = |name: &'static str, ok: bool| {
        let entry = decisions.entry(name).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    };
    for doc in templates() {
        all_types(&doc, &mut record).unwrap();
    }
    for _ in 0..2048 {
        let doc = strategy.new_tree(&mut runner).unwrap().current();
        if let Err(err) = all_types(&doc, &mut record) {
            panic!("{err}");
        }
    }
    for (name, (accepted, rejected)) in &decisions {
        println!("{name}: {accepted} accepted, {rejected} rejected");
    }
    let one_sided: Vec<_> = decisions
        .iter()
        // A `Value` takes any document: it is compared, never rejected.
        .filter(|(name, _)| !name.ends_with("::Value"))
        .filter(|(_, (accepted, rejected))| *accepted == 0 || *rejected == 0)
        .collect();
    assert!(
        one_sided.is_empty(),
        "types seen with one decision only: {one_sided:?}"
    );
    assert!(decisions.len() >= 55, "{} types", decisions.len());
}
