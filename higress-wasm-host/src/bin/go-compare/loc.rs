//! Lines of code, counted the same way for Go and Rust: non-blank lines that
//! are not only a comment (`//` lines, `/* ... */` blocks, doc comments
//! included). Rust: every `.rs` file under the port's `src/`, without
//! `#[cfg(test)]` items. Go: the plugin directory's `.go` files without
//! `*_test.go`, subpackages included.

use std::path::Path;
use std::process::Command;

/// Code lines of one source text. With `rust`, `#[cfg(test)]` items are
/// left out (the attribute, then the item up to its closing brace or `;`;
/// braces are counted naively, which holds for the sources measured here).
pub(crate) fn count(text: &str, rust: bool) -> usize {
    let mut lines = 0;
    let mut in_block = false;
    // Some(depth) while skipping a #[cfg(test)] item.
    let mut skipping: Option<i64> = None;
    let mut skip_started = false;
    for raw in text.lines() {
        let mut line = raw.trim();
        if in_block {
            match line.find("*/") {
                Some(end) => {
                    in_block = false;
                    line = line.get(end + 2..).unwrap_or("").trim();
                }
                None => continue,
            }
        }
        if let Some(rest) = line.strip_prefix("/*") {
            match rest.find("*/") {
                Some(end) => line = rest.get(end + 2..).unwrap_or("").trim(),
                None => {
                    in_block = true;
                    continue;
                }
            }
        }
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        if rust {
            if let Some(depth) = skipping.as_mut() {
                if line.starts_with("#[") && !skip_started {
                    continue;
                }
                skip_started = true;
                *depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
                if *depth <= 0 && (line.ends_with('}') || line.ends_with(';')) {
                    skipping = None;
                }
                continue;
            }
            if line == "#[cfg(test)]" {
                skipping = Some(0);
                skip_started = false;
                continue;
            }
        }
        lines += 1;
    }
    lines
}

/// Code lines of every `.rs` file under `dir` (recursively).
pub(crate) fn rust_dir(dir: &Path) -> Result<usize, String> {
    let mut total = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            total += rust_dir(&path)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            total += count(&text, true);
        }
    }
    Ok(total)
}

/// Go's counts as recorded from `alibaba/higress` at [`RECORDED_COMMIT`]
/// (`--higress-src` recounts them from a checkout).
pub(crate) const RECORDED_COMMIT: &str = "4e0d6914";

/// Where Go's sources come from.
pub(crate) enum GoSource<'a> {
    /// The counts recorded at [`RECORDED_COMMIT`].
    Recorded,
    /// A checkout (work tree) or a bare git directory of `alibaba/higress`.
    Checkout(&'a Path),
}

/// Code lines of `plugins/wasm-go/extensions/<plugin>` (non-test `.go`
/// files) and the commit counted.
pub(crate) fn go_plugin(
    source: &GoSource<'_>,
    plugin: &str,
    recorded: usize,
) -> Result<(usize, String), String> {
    let dir = match source {
        GoSource::Recorded => return Ok((recorded, RECORDED_COMMIT.to_owned())),
        GoSource::Checkout(dir) => *dir,
    };
    let sub = format!("plugins/wasm-go/extensions/{plugin}");
    let tree = dir.join(&sub);
    if tree.is_dir() {
        let total = go_dir(&tree)?;
        let commit = git(dir, &["rev-parse", "--short=8", "HEAD"]).unwrap_or_default();
        return Ok((total, commit.trim().to_owned()));
    }
    // A bare repository (e.g. a mirror): read the files from HEAD.
    let listing = git(dir, &["ls-tree", "-r", "--name-only", "HEAD", &sub])?;
    let mut total = 0;
    let mut files = 0;
    for path in listing.lines() {
        if path.ends_with(".go") && !path.ends_with("_test.go") {
            total += count(&git(dir, &["show", &format!("HEAD:{path}")])?, false);
            files += 1;
        }
    }
    if files == 0 {
        return Err(format!("no Go files under {sub} in {}", dir.display()));
    }
    let commit = git(dir, &["rev-parse", "--short=8", "HEAD"])?;
    Ok((total, commit.trim().to_owned()))
}

fn go_dir(dir: &Path) -> Result<usize, String> {
    let mut total = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let name = path.to_string_lossy();
        if path.is_dir() {
            total += go_dir(&path)?;
        } else if name.ends_with(".go") && !name.ends_with("_test.go") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            total += count(&text, false);
        }
    }
    Ok(total)
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(if dir.join(".git").exists() {
            dir.join(".git")
        } else {
            dir.to_path_buf()
        })
        .args(args)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {} in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn comments_blanks_and_test_modules_are_not_code() {
        let rust = "//! doc\n\nuse a;\n/* block\n still */ fn f() {}\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() { let x = 1; }\n}\nfn g() {}\n";
        assert_eq!(count(rust, true), 3);
        assert_eq!(count(rust, false), 8);
        let go = "package main\n\n// comment\nfunc f() {\n\t/* x */\n\treturn\n}\n";
        assert_eq!(count(go, false), 4);
    }
}
