//! RFC 7386 JSON merge-patch: how a rule inherits the global config.

use serde_json::{Map, Value};

/// Applies an RFC 7386 JSON merge-patch to `target`.
///
/// An object patch merges key by key, recursively: a `null` member deletes
/// the key, any other member is merged into the key's value (a target that is
/// not an object first becomes `{}`). A patch that is not an object replaces
/// the target.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    // The object is rebuilt rather than edited with `Map::remove`: B-tree
    // removal is kilobytes of `.wasm` that nothing else in a plugin needs.
    let old = match std::mem::take(target) {
        Value::Object(old) => old,
        _ => Map::new(),
    };
    let mut merged = Map::new();
    for (key, value) in old {
        if !patch.get(&key).is_some_and(Value::is_null) {
            merged.insert(key, value);
        }
    }
    for (key, value) in patch {
        if value.is_null() {
            continue;
        }
        match merged.get_mut(key) {
            Some(slot) => merge_patch(slot, value),
            None => {
                let mut slot = Value::Null;
                merge_patch(&mut slot, value);
                merged.insert(key.clone(), slot);
            }
        }
    }
    *target = Value::Object(merged);
}

/// `patch` merge-patched over a copy of `target`, as
/// `{ let mut t = target.clone(); merge_patch(&mut t, patch); t }` gives,
/// without first copying the parts of `target` that `patch` replaces or
/// removes.
pub(super) fn merged(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let target = match target {
        Value::Object(target) => Some(target),
        _ => None,
    };
    let mut out = Map::new();
    for (key, value) in target.into_iter().flatten() {
        if !patch.contains_key(key) {
            out.insert(key.clone(), value.clone());
        }
    }
    for (key, value) in patch {
        if value.is_null() {
            continue;
        }
        let base = target.and_then(|t| t.get(key)).unwrap_or(&Value::Null);
        out.insert(key.clone(), merged(base, value));
    }
    Value::Object(out)
}
