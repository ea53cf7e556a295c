//! The subset of GJSON / SJSON paths the transformer's README documents:
//! `a.b.c` nests, `\.` escapes a dot, and a number indexes an array
//! (`friends.1.first`), and `#` over an array when setting (`users.#.age`).
//! No other wildcards, queries or modifiers.

use serde_json::{Map, Value};

fn segments(path: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), out.last_mut()) {
                    last.push(next);
                }
            }
            '.' => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

fn child<'v>(value: &'v Value, segment: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    }
}

/// The value at `path`, if there is one.
pub(crate) fn get<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    segments(path)
        .iter()
        .try_fold(root, |value, segment| child(value, segment))
}

/// Sets `path` to `new`, creating objects on the way (and padding arrays
/// with `null`, as SJSON does); `#` sets the rest of the path in every
/// element of an array (`users.#.age`, the README's replace). `false` if a
/// scalar is in the way.
pub(crate) fn set(root: &mut Value, path: &str, new: Value) -> bool {
    set_at(root, &segments(path), &new)
}

fn set_at(value: &mut Value, segments: &[String], new: &Value) -> bool {
    let Some((segment, rest)) = segments.split_first() else {
        *value = new.clone();
        return true;
    };
    if value.is_null() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Array(items) if segment == "#" => {
            // Every element, even after one fails.
            let mut ok = true;
            for item in items.iter_mut() {
                ok &= set_at(item, rest, new);
            }
            ok
        }
        Value::Object(map) => {
            let slot = map.entry(segment.clone()).or_insert(Value::Null);
            set_at(slot, rest, new)
        }
        Value::Array(items) => {
            let Ok(index) = segment.parse::<usize>() else {
                return false;
            };
            if items.len() <= index {
                items.resize(index + 1, Value::Null);
            }
            items
                .get_mut(index)
                .is_some_and(|slot| set_at(slot, rest, new))
        }
        _ => false,
    }
}

/// Removes `path`; `true` if something was removed.
pub(crate) fn delete(root: &mut Value, path: &str) -> bool {
    let mut segments = segments(path);
    let Some(leaf) = segments.pop() else {
        return false;
    };
    let mut value = root;
    for segment in &segments {
        let next = match value {
            Value::Object(map) => map.get_mut(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        value = next;
    }
    match value {
        Value::Object(map) => map.remove(&leaf).is_some(),
        Value::Array(items) => match leaf.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// GJSON's `Result.String()`: strings unquoted, everything else as JSON
/// text, `null` as the empty string.
pub(crate) fn to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_as_the_go_readme_documents() {
        let doc = json!({
            "name": {"first": "Tom", "last": "Anderson"},
            "age": 37,
            "children": ["Sara", "Alex", "Jack"],
            "fav.movie": "Deer Hunter",
            "friends": [{"first": "Dale"}, {"first": "Roger", "last": "Craig"}]
        });
        assert_eq!(get(&doc, "name.last"), Some(&json!("Anderson")));
        assert_eq!(get(&doc, "age"), Some(&json!(37)));
        assert_eq!(get(&doc, "children.1"), Some(&json!("Alex")));
        assert_eq!(get(&doc, "friends.1.first"), Some(&json!("Roger")));
        assert_eq!(get(&doc, r"fav\.movie"), Some(&json!("Deer Hunter")));
        assert_eq!(get(&doc, "fav.movie"), None);

        let mut doc = json!({"users": [{"123": {"name": "z"}}, {"456": {"name": "l"}}]});
        assert!(set(&mut doc, "foo.bar", json!("value")));
        assert!(set(&mut doc, r"foo\.bar", json!(1)));
        assert!(set(&mut doc, "users.1.456.age", json!(19)));
        assert!(delete(&mut doc, "users.0"));
        assert!(!delete(&mut doc, "users.9"));
        assert_eq!(
            doc,
            json!({"foo": {"bar": "value"}, "foo.bar": 1,
                   "users": [{"456": {"name": "l", "age": 19}}]})
        );
        assert!(!set(&mut json!({"a": 1}), "a.b", json!(2)));
        let mut doc = json!({"users": [{"age": 18}, {"age": 19}]});
        assert!(set(&mut doc, "users.#.age", json!("20")));
        assert_eq!(doc, json!({"users": [{"age": "20"}, {"age": "20"}]}));
    }
}
