//! Puts `proxy_abi_version_0_2_100` before `proxy_abi_version_0_2_1` in a
//! built module's export section.
//!
//! Higress's host (higress-group/proxy-wasm-cpp-host,
//! `BytecodeUtil::getAbiVersion`) runs a module with the FIRST
//! `proxy_abi_version_*` export it finds; stock Envoy skips versions it does
//! not know. An SDK module exports both, and must list 0.2.100 first to get
//! Higress's 0.2.100 semantics. The linker orders exports by function index,
//! which follows how LTO merged the crates — not something the source can
//! fix (measured: my-plugin came out right, the benchmark twins wrong). So
//! the build tool rewrites the export section after every build: only the
//! order of the entries changes, nothing else in the module.
//!
//! [`edit_exports`] is the general export-section rewriter behind it; the
//! wasm-mode host's tests use it to make modules with other ABI exports.

use crate::error::{Error, Result};
use std::path::Path;

const FIRST: &[u8] = b"proxy_abi_version_0_2_100";
const ABI_PREFIX: &[u8] = b"proxy_abi_version_";
const EXPORT_SECTION: u8 = 7;

fn read_leb(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(value).ok();
        }
    }
    None
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// One entry of a module's export section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The export's name.
    pub name: String,
    /// Its kind byte: 0 function, 1 table, 2 memory, 3 global, 4 tag.
    pub kind: u8,
    /// The index of the exported item in its index space.
    pub index: u32,
}

fn parse_exports(payload: &[u8]) -> Option<Vec<Export>> {
    let mut at = 0;
    let count = read_leb(payload, &mut at)?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let len = usize::try_from(read_leb(payload, &mut at)?).ok()?;
        let name = payload.get(at..at.checked_add(len)?)?;
        at += len;
        let kind = *payload.get(at)?;
        at += 1;
        let index = read_leb(payload, &mut at)?;
        entries.push(Export {
            name: String::from_utf8(name.to_vec()).ok()?,
            kind,
            index,
        });
    }
    (at == payload.len()).then_some(entries)
}

/// Rewrites the export section of `module`: `edit` gets the entries in
/// order and returns the new list (reordered, filtered, renamed, added);
/// every other section is copied byte for byte. A module without an export
/// section comes back unchanged, without calling `edit`. An invalid module
/// is an error.
pub fn edit_exports(
    module: &[u8],
    edit: impl FnOnce(Vec<Export>) -> Vec<Export>,
) -> Result<Vec<u8>> {
    let bad = |what: &str| Error::Protocol(format!("not a valid Wasm module: {what}"));
    if module.get(..4) != Some(b"\0asm".as_slice()) || module.len() < 8 {
        return Err(bad("no Wasm header"));
    }
    let mut at = 8;
    while at < module.len() {
        let section_start = at;
        let id = *module.get(at).ok_or_else(|| bad("section id"))?;
        at += 1;
        let size = usize::try_from(read_leb(module, &mut at).ok_or_else(|| bad("section size"))?)
            .map_err(|_| bad("section size"))?;
        let payload_end = at.checked_add(size).ok_or_else(|| bad("section size"))?;
        let payload = module
            .get(at..payload_end)
            .ok_or_else(|| bad("truncated section"))?;
        at = payload_end;
        if id != EXPORT_SECTION {
            continue;
        }
        let entries = edit(parse_exports(payload).ok_or_else(|| bad("export section"))?);
        let mut new_payload = Vec::with_capacity(payload.len());
        let count = u32::try_from(entries.len()).map_err(|_| bad("export count"))?;
        write_leb(&mut new_payload, count);
        for entry in entries {
            let len = u32::try_from(entry.name.len()).map_err(|_| bad("export name"))?;
            write_leb(&mut new_payload, len);
            new_payload.extend_from_slice(entry.name.as_bytes());
            new_payload.push(entry.kind);
            write_leb(&mut new_payload, entry.index);
        }
        let mut out = Vec::with_capacity(module.len() + 4);
        out.extend_from_slice(module.get(..section_start).unwrap_or_default());
        out.push(EXPORT_SECTION);
        let len = u32::try_from(new_payload.len()).map_err(|_| bad("section size"))?;
        write_leb(&mut out, len);
        out.extend_from_slice(&new_payload);
        out.extend_from_slice(module.get(payload_end..).unwrap_or_default());
        return Ok(out);
    }
    Ok(module.to_vec())
}

/// The module with its 0.2.100 export moved in front of every other ABI
/// version export, or `None` when nothing needs to move (no 0.2.100 export,
/// or it is already the first ABI export). An invalid module is an error.
pub fn put_0_2_100_first(module: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut moved = false;
    let out = edit_exports(module, |mut entries| {
        let is_abi = |e: &Export| e.name.as_bytes().starts_with(ABI_PREFIX);
        let first_abi = entries.iter().position(is_abi);
        let want = entries.iter().position(|e| e.name.as_bytes() == FIRST);
        if let (Some(first_abi), Some(want)) = (first_abi, want) {
            if want != first_abi {
                let entry = entries.remove(want);
                entries.insert(first_abi, entry);
                moved = true;
            }
        }
        entries
    })?;
    Ok(moved.then_some(out))
}

/// Rewrites the module at `path` in place if its 0.2.100 export is not the
/// first ABI export. Returns whether it changed the file.
pub fn fix_module_file(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    match put_0_2_100_first(&bytes)? {
        None => Ok(false),
        Some(fixed) => {
            std::fs::write(path, fixed)
                .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))?;
            Ok(true)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A module with one function exported under `names`, in that order.
    fn module(names: &[&str]) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // type section: one type () -> ()
        m.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]);
        // function section: one function of type 0
        m.extend_from_slice(&[3, 2, 1, 0]);
        let mut exports = Vec::new();
        write_leb(&mut exports, names.len() as u32);
        for name in names {
            write_leb(&mut exports, name.len() as u32);
            exports.extend_from_slice(name.as_bytes());
            exports.extend_from_slice(&[0, 0]);
        }
        m.push(7);
        write_leb(&mut m, exports.len() as u32);
        m.extend_from_slice(&exports);
        // code section: one empty body
        m.extend_from_slice(&[10, 4, 1, 2, 0, 0x0b]);
        m
    }

    fn export_names(module: &[u8]) -> Vec<String> {
        crate::surface::inspect_bytes(Path::new("t.wasm"), module)
            .unwrap()
            .exports
    }

    #[test]
    fn moves_0_2_100_before_0_2_1_and_keeps_everything_else() {
        let wrong = module(&[
            "_initialize",
            "proxy_abi_version_0_2_1",
            "proxy_on_configure",
            "proxy_abi_version_0_2_100",
        ]);
        let fixed = put_0_2_100_first(&wrong).unwrap().unwrap();
        assert_eq!(
            export_names(&fixed),
            [
                "_initialize",
                "proxy_abi_version_0_2_100",
                "proxy_abi_version_0_2_1",
                "proxy_on_configure"
            ]
        );
        assert_eq!(fixed.len(), wrong.len());
        // Idempotent, and a right module is left alone.
        assert!(put_0_2_100_first(&fixed).unwrap().is_none());
        let raw = module(&["proxy_abi_version_0_2_1"]);
        assert!(put_0_2_100_first(&raw).unwrap().is_none());
    }

    #[test]
    fn edit_exports_rewrites_only_the_export_section() {
        let m = module(&["proxy_abi_version_0_2_1", "proxy_on_tick"]);
        let edited = edit_exports(&m, |entries| {
            assert_eq!(entries[1].name, "proxy_on_tick");
            assert_eq!((entries[1].kind, entries[1].index), (0, 0));
            entries
                .into_iter()
                .filter(|e| e.name != "proxy_abi_version_0_2_1")
                .collect()
        })
        .unwrap();
        assert_eq!(export_names(&edited), ["proxy_on_tick"]);
        // Everything before and after the export section is untouched.
        let removed = 1 + "proxy_abi_version_0_2_1".len() + 2;
        assert_eq!(edited.len(), m.len() - removed);
        assert_eq!(edited[..14], m[..14]);
        assert_eq!(edited[edited.len() - 6..], m[m.len() - 6..]);
        assert!(edit_exports(b"nope", |e| e).is_err());
    }

    #[test]
    fn refuses_what_is_not_a_module() {
        assert!(put_0_2_100_first(b"not wasm").is_err());
        let mut truncated = module(&["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_100"]);
        truncated.truncate(truncated.len() - 8);
        assert!(put_0_2_100_first(&truncated).is_err());
    }
}
