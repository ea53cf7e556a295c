//! Stock Envoy 1.40 runs a module only under an ABI it knows; Go's
//! wasm-go exports just `proxy_abi_version_0_2_100` (Higress's). For the
//! Envoy run a copy of the Go module gets one more export,
//! `proxy_abi_version_0_2_1`, naming the same function: nothing else in the
//! module changes, and Envoy runs it under 0.2.1 (the Rust ports export both
//! names already).

fn read_leb(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut value: u32 = 0;
    let mut shift = 0;
    loop {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= u32::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

fn write_leb(mut value: u32, out: &mut Vec<u8>) {
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

/// `bytes` with export `alias` added for the function exported as
/// `existing`; `None` if the module has no such export or does not parse.
pub(crate) fn add_export_alias(bytes: &[u8], existing: &str, alias: &str) -> Option<Vec<u8>> {
    let mut out = bytes.get(..8)?.to_vec();
    let mut at = 8;
    let mut added = false;
    while at < bytes.len() {
        let id = *bytes.get(at)?;
        at += 1;
        let size = read_leb(bytes, &mut at)? as usize;
        let body = bytes.get(at..at.checked_add(size)?)?;
        at += size;
        if id != 7 {
            out.push(id);
            write_leb(u32::try_from(size).ok()?, &mut out);
            out.extend_from_slice(body);
            continue;
        }
        // The export section: count, then (name, kind, index) entries.
        let mut p = 0;
        let count = read_leb(body, &mut p)?;
        let entries_start = p;
        let mut target = None;
        for _ in 0..count {
            let len = read_leb(body, &mut p)? as usize;
            let name = body.get(p..p.checked_add(len)?)?;
            p += len;
            let kind = *body.get(p)?;
            p += 1;
            let index = read_leb(body, &mut p)?;
            if kind == 0 && name == existing.as_bytes() {
                target = Some(index);
            }
        }
        let index = target?;
        let mut section = Vec::new();
        write_leb(count.checked_add(1)?, &mut section);
        section.extend_from_slice(body.get(entries_start..)?);
        write_leb(u32::try_from(alias.len()).ok()?, &mut section);
        section.extend_from_slice(alias.as_bytes());
        section.push(0);
        write_leb(index, &mut section);
        out.push(7);
        write_leb(u32::try_from(section.len()).ok()?, &mut out);
        out.extend_from_slice(&section);
        added = true;
    }
    added.then_some(out)
}
