//! The SDK's modules form the layers written in the crate docs (src/lib.rs,
//! "## Layers"): a module imports only from its own layer or the ones before
//! it, no modules import each other in a cycle, `host` imports only leaves,
//! and `unsafe` code lives only in `host` and `entry`.
//!
//! It reads the sources as text: a module is a file `src/NAME.rs` or a
//! directory `src/NAME/`; an import is any `crate::NAME` outside comments,
//! with names re-exported at the crate root (`crate::HttpContext`) mapped to
//! the module they come from.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layer table: module name -> layer number.
fn layer_table(lib: &str) -> BTreeMap<String, u32> {
    let mut table = BTreeMap::new();
    let mut in_section = false;
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.trim();
        if doc.starts_with("## ") {
            in_section = doc == "## Layers";
            continue;
        }
        if !in_section || !doc.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = doc.split('|').map(str::trim).collect();
        // ["", "0 leaf", "`error`, `wire`, `host`", "...", ""]
        let Some(layer) = cells
            .get(1)
            .and_then(|c| c.split(' ').next()?.parse::<u32>().ok())
        else {
            continue;
        };
        for name in cells[2].split(',') {
            let name = name.trim().trim_matches('`');
            assert!(
                table.insert(name.to_owned(), layer).is_none(),
                "{name} listed twice"
            );
        }
    }
    table
}

/// Source files by module, comments and doc comments removed.
fn sources() -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |module: String, path: &Path| {
        let text = fs::read_to_string(path).unwrap();
        let code: String = text
            .lines()
            .map(|l| match l.find("//") {
                Some(at) => &l[..at],
                None => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        out.entry(module).or_default().push_str(&code);
    };
    for entry in fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let mut stack = vec![path];
            while let Some(dir) = stack.pop() {
                for e in fs::read_dir(dir).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "rs") {
                        add(name.clone(), &p);
                    }
                }
            }
        } else if path.extension().is_some_and(|x| x == "rs") && name != "lib" {
            add(name, &path);
        }
    }
    out
}

/// Names the crate root re-exports (`pub use module::{A, B}`), by module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let code: String = lib
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        let Some(rest) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        let module = module.trim();
        if module == "crate" || module == "self" || module == "super" {
            // The prelude re-exports the root's own names.
            continue;
        }
        let names = names.trim_start_matches('{').trim_end_matches('}');
        for name in names.split(',') {
            let name = name.trim();
            if !name.is_empty() {
                out.entry(name.to_owned())
                    .or_insert_with(|| module.to_owned());
            }
        }
    }
    out
}

/// `module -> modules it imports` (other than itself).
fn imports(
    sources: &BTreeMap<String, String>,
    reexports: &BTreeMap<String, String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (module, code) in sources {
        let mut set = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let first: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let target = if first.chars().next().is_some_and(char::is_uppercase) {
                reexports.get(&first).cloned()
            } else {
                Some(first)
            };
            if let Some(target) = target {
                if &target != module && sources.contains_key(&target) {
                    set.insert(target);
                }
            }
        }
        out.insert(module.clone(), set);
    }
    out
}

#[test]
fn every_module_is_in_the_layer_table_and_imports_only_downward() {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let table = layer_table(&lib);
    assert!(
        table.len() >= 15,
        "layer table not found or short: {table:?}"
    );
    let sources = sources();
    let graph = imports(&sources, &root_reexports(&lib));
    for module in sources.keys() {
        assert!(
            table.contains_key(module),
            "module `{module}` is missing from the layer table in src/lib.rs"
        );
    }
    for name in table.keys() {
        assert!(
            sources.contains_key(name),
            "the layer table lists `{name}`, which has no source"
        );
    }
    for (module, deps) in &graph {
        for dep in deps {
            assert!(
                table[dep] <= table[module],
                "`{module}` (layer {}) imports `{dep}` (layer {}): a module may import only its own layer or lower",
                table[module],
                table[dep]
            );
        }
    }
    // `host` talks to the host: it may use only the other leaves.
    for dep in &graph["host"] {
        assert_eq!(table[dep], 0, "host imports `{dep}`");
    }
}

#[test]
fn no_import_cycle() {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let graph = imports(&sources(), &root_reexports(&lib));
    // Depth-first search for a back edge, reporting the cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("import cycle: {} -> {node}", path[at..].join(" -> "));
        }
        path.push(node.to_owned());
        for next in &graph[node] {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn unsafe_code_lives_only_where_the_host_is_called() {
    for (module, code) in sources() {
        let allows_unsafe = code.contains("allow(unsafe_code)");
        assert_eq!(
            allows_unsafe,
            module == "host" || module == "entry",
            "`{module}`: unsafe code is allowed only in host and entry"
        );
    }
}

#[test]
fn the_checker_finds_a_cycle_and_an_upward_import() {
    // The checks above must be able to fail: feed them a made-up crate.
    let lib = "//! ## Layers\n//! | layer | modules | x |\n//! |---|---|---|\n//! | 0 leaf | `a` | x |\n//! | 1 top | `b` | x |\npub use b::Thing;\n";
    let table = layer_table(lib);
    assert_eq!(table.get("a"), Some(&0));
    assert_eq!(table.get("b"), Some(&1));
    let mut sources = BTreeMap::new();
    sources.insert("a".to_owned(), "use crate::Thing; fn f() {}".to_owned());
    sources.insert(
        "b".to_owned(),
        "use crate::a::f; pub struct Thing;".to_owned(),
    );
    let graph = imports(&sources, &root_reexports(lib));
    assert!(graph["a"].contains("b"), "{graph:?}");
    assert!(graph["b"].contains("a"), "{graph:?}");
    assert!(table["b"] > table["a"]);
}
