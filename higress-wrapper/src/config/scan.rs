//! Reading the configuration text without holding every rule at once.
//!
//! A config with many `_rules_` is mostly rules. Parsed into one
//! `serde_json::Value`, every rule's object would be alive at once, several
//! times the size of the text. Instead the text is read twice with the same
//! `serde_json` parser:
//!
//! 1. [`read_top`] checks the whole document exactly as parsing it into a
//!    `Value` would (same errors, same positions), keeps the top-level keys
//!    other than `_rules_`, and only notes the shape of `_rules_`, parsing
//!    each rule into a `Value` and dropping it at once.
//! 2. [`for_each_rule`] reads the text again and hands the rules one by one,
//!    each as its own `Value`, to a callback that may keep what it needs and
//!    drop the rest before the next rule is read.
//!
//! As with a `Value`, a key given twice counts once, with its last value.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::error::ConfigError;
use super::rules::{PLUGIN_ID_KEY, RULES_KEY};

/// The top level, as [`read_top`] found it.
#[derive(Debug)]
pub(super) enum Top {
    /// The document is not an object; its kind (`an array`, `null`, …).
    NotObject(&'static str),
    /// The document is an object.
    Object(TopObject),
}

/// A top-level object without its rules.
#[derive(Debug, Default)]
pub(super) struct TopObject {
    /// Every key but `_rules_` and `_plugin_id_`: the global config.
    pub(super) global: Map<String, Value>,
    /// The `_plugin_id_` value, if given.
    pub(super) plugin_id: Option<Value>,
    /// The shape of `_rules_`, if given.
    pub(super) rules: Option<RulesShape>,
    /// How many `_rules_` keys the object has (the last one counts).
    pub(super) rules_keys: usize,
}

/// What `_rules_` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RulesShape {
    /// An array of this many elements.
    Array(usize),
    /// Something else, of this kind.
    Other(&'static str),
}

/// Reads and checks the whole document: the first pass.
///
/// # Errors
///
/// The `serde_json` error parsing `raw` into a `Value` gives.
pub(super) fn read_top(raw: &[u8]) -> Result<Top, serde_json::Error> {
    Ok(match read(raw, None)? {
        Read::Top(top) => Top::Object(top),
        Read::Kind(kind) => Top::NotObject(kind),
        Read::Array(_) => Top::NotObject("an array"),
    })
}

/// Calls `each` with the index and the JSON of every element of the last
/// `_rules_` key of the top-level object (there are `rules_keys` of them),
/// in order, each rule read only after the previous one was handled: the
/// second pass, on a document [`read_top`] accepted.
///
/// # Errors
///
/// The first error `each` returns (the rules after it are read but not
/// handed over), or, should the text not parse, the `serde_json` error made
/// a [`ConfigError`] by `invalid_json`.
pub(super) fn for_each_rule(
    raw: &[u8],
    rules_keys: usize,
    each: &mut dyn FnMut(usize, Value) -> Result<(), ConfigError>,
    invalid_json: fn(serde_json::Error) -> ConfigError,
) -> Result<(), ConfigError> {
    let mut failed = None;
    let rules = Rules {
        rules_keys,
        each,
        failed: &mut failed,
    };
    let read = read(raw, Some(rules));
    match (failed, read) {
        (Some(err), _) => Err(err),
        (None, Err(err)) => Err(invalid_json(err)),
        (None, Ok(_)) => Ok(()),
    }
}

/// Reads the whole text: the first pass without `rules`, the second with.
fn read(raw: &[u8], rules: Option<Rules<'_>>) -> Result<Read, serde_json::Error> {
    let mut parser = serde_json::Deserializer::from_slice(raw);
    let read = de::Deserializer::deserialize_any(&mut parser, Pass::Top(rules))?;
    parser.end()?;
    Ok(read)
}

/// The callback of the second pass and where it stores its first error.
struct Rules<'a> {
    rules_keys: usize,
    each: &'a mut dyn FnMut(usize, Value) -> Result<(), ConfigError>,
    failed: &'a mut Option<ConfigError>,
}

/// What a [`Pass`] reads. One visitor type for every job, so that the
/// module links one more copy of `serde_json`'s `deserialize_any`, not one
/// per job. Only `deserialize_any` is used: the typed entry points
/// (`deserialize_map`, ...) and `de::Error::custom` would link
/// `serde_json`'s error formatting, floats included, into every plugin.
enum Pass<'a> {
    /// The top level: keep everything but the rules (first pass), or find
    /// the last `_rules_` and hand its rules over (second pass, with
    /// `Some`).
    Top(Option<Rules<'a>>),
    /// The value of a `_rules_` key that is not handed over: its shape.
    RulesShape,
    /// The rules array of the second pass: hand each rule over.
    EachRule(Rules<'a>),
}

/// What a [`Pass`] found.
enum Read {
    /// A top-level object.
    Top(TopObject),
    /// An array of this many elements.
    Array(usize),
    /// Any other value, of this kind.
    Kind(&'static str),
}

impl<'de> DeserializeSeed<'de> for Pass<'_> {
    type Value = Read;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_any(self)
    }
}

/// A map key as a `String`, read through `deserialize_any` (see [`Pass`]).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
        Ok(key.to_owned())
    }
}

impl<'de> Visitor<'de> for Pass<'_> {
    type Value = Read;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Read, E> {
        Ok(Read::Kind("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Read, E> {
        Ok(Read::Kind("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Read, E> {
        Ok(Read::Kind("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Read, E> {
        Ok(Read::Kind("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Read, E> {
        Ok(Read::Kind("a string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Read, E> {
        Ok(Read::Kind("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Read, A::Error> {
        let mut rules = match self {
            Pass::EachRule(rules) => Some(rules),
            Pass::Top(_) | Pass::RulesShape => None,
        };
        let mut count = 0usize;
        while let Some(element) = seq.next_element::<Value>()? {
            if let Some(rules) = rules.as_mut().filter(|r| r.failed.is_none()) {
                if let Err(err) = (rules.each)(count, element) {
                    // The rest is read, not handed over.
                    *rules.failed = Some(err);
                }
            }
            count += 1;
        }
        Ok(Read::Array(count))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        let (mut rules, top_level) = match self {
            Pass::Top(rules) => (rules, true),
            Pass::RulesShape | Pass::EachRule(_) => (None, false),
        };
        let second_pass = rules.is_some();
        let mut top = TopObject::default();
        while let Some(key) = map.next_key_seed(Key)? {
            if top_level && key == RULES_KEY {
                top.rules_keys += 1;
                let seed = match rules.take_if(|r| r.rules_keys == top.rules_keys) {
                    Some(rules) => Pass::EachRule(rules),
                    None => Pass::RulesShape,
                };
                top.rules = Some(match map.next_value_seed(seed)? {
                    Read::Array(count) => RulesShape::Array(count),
                    Read::Top(_) => RulesShape::Other("an object"),
                    Read::Kind(kind) => RulesShape::Other(kind),
                });
                continue;
            }
            // Every other value is read as a `Value`, in both passes: no
            // second way of skipping JSON is linked into the module.
            let value: Value = map.next_value()?;
            if top_level && !second_pass {
                if key == PLUGIN_ID_KEY {
                    top.plugin_id = Some(value);
                } else {
                    top.global.insert(key, value);
                }
            }
        }
        Ok(Read::Top(top))
    }
}
