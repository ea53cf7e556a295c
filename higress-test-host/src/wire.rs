//! The host's side of the proxy-wasm header-map wire format, written
//! independently of the SDK's, so a test also checks the SDK's encoding:
//! `u32 LE count`, then `(u32 LE name_len, u32 LE value_len)` per pair, then
//! `name \0 value \0` per pair.

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(raw)).ok()
}

/// Serializes header pairs as the host hands them to the plugin.
pub(crate) fn encode_map(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let count = u32::try_from(pairs.len()).unwrap_or(u32::MAX);
    let mut sizes = Vec::with_capacity(4 + pairs.len() * 8);
    let mut data = Vec::new();
    sizes.extend_from_slice(&count.to_le_bytes());
    for (name, value) in pairs {
        for len in [name.len(), value.len()] {
            sizes.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
        }
        data.extend_from_slice(name.as_bytes());
        data.push(0);
        data.extend_from_slice(value);
        data.push(0);
    }
    sizes.extend_from_slice(&data);
    sizes
}

/// Decodes what the plugin sent; a malformed buffer yields the pairs that
/// could be read (the host model then reports what it got).
pub(crate) fn decode_map(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Some(count) = u32_at(bytes, 0) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut at = 4usize.saturating_add(count.saturating_mul(8));
    for i in 0..count {
        let (Some(name_len), Some(value_len)) =
            (u32_at(bytes, 4 + 8 * i), u32_at(bytes, 8 + 8 * i))
        else {
            break;
        };
        let name_end = at.saturating_add(name_len);
        let value_start = name_end.saturating_add(1);
        let value_end = value_start.saturating_add(value_len);
        let (Some(name), Some(value)) =
            (bytes.get(at..name_end), bytes.get(value_start..value_end))
        else {
            break;
        };
        out.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
        at = value_end.saturating_add(1);
    }
    out
}

/// The metadata JSON Higress's Envoy answers per host in
/// `proxy_get_upstream_hosts` (`Context::getUpstreamHosts`): a
/// `std::map<string, string>` of `health_status` and, when the health check
/// stored some, `metrics`, printed by nlohmann's `dump(0)` — a newline
/// after `{` and after each member, `": "` between key and value, keys in
/// map order, strings escaped as nlohmann does (`\"`, `\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, other bytes below 0x20 as `\u00xx`; UTF-8 as is).
pub(crate) fn higress_host_info(health: &str, metrics: Option<&str>) -> String {
    let mut members = vec![("health_status", health)];
    if let Some(m) = metrics.filter(|m| !m.is_empty()) {
        members.push(("metrics", m));
    }
    let lines: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("\"{}\": \"{}\"", nlohmann_escape(k), nlohmann_escape(v)))
        .collect();
    format!("{{\n{}\n}}", lines.join(",\n"))
}

fn nlohmann_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let pairs: &[(&str, &[u8])] = &[(":path", b"/a"), ("x", b"\xff\x00y")];
        let bytes = encode_map(pairs);
        let back = decode_map(&bytes);
        assert_eq!(back.len(), 2);
        assert_eq!(back[1], ("x".to_owned(), b"\xff\x00y".to_vec()));
        assert_eq!(decode_map(&bytes[..bytes.len() - 3]).len(), 1);
        assert!(decode_map(&[1, 0]).is_empty());
    }

    #[test]
    fn host_info_is_printed_as_higress_prints_it() {
        // Higress's Envoy: nlohmann::json(std::map{...}).dump(0).
        assert_eq!(
            higress_host_info(
                "Healthy",
                Some("# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"qwen\"} 2\n")
            ),
            "{\n\"health_status\": \"Healthy\",\n\"metrics\": \"# TYPE vllm:num_requests_waiting gauge\\nvllm:num_requests_waiting{model_name=\\\"qwen\\\"} 2\\n\"\n}"
        );
        assert_eq!(
            higress_host_info("Unhealthy", Some("")),
            "{\n\"health_status\": \"Unhealthy\"\n}"
        );
        assert_eq!(
            higress_host_info("Healthy", Some("a\tb\u{1}\\ é")),
            "{\n\"health_status\": \"Healthy\",\n\"metrics\": \"a\\tb\\u0001\\\\ é\"\n}"
        );
    }
}
