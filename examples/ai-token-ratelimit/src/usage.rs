//! Token usage in a response chunk (Go's `tokenusage.GetTokenUsage`, for
//! the usual shapes): a JSON body, or SSE events `data: {...}` separated by
//! blank lines. The last event with a usage wins.

use serde_json::Value;

/// Tokens a response reported.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TokenUsage {
    /// `usage.prompt_tokens` (OpenAI), `usage.input_tokens` (Anthropic,
    /// OpenAI responses), `usageMetadata.promptTokenCount` (Gemini).
    pub input: i64,
    /// `usage.completion_tokens`, `usage.output_tokens`,
    /// `usageMetadata.candidatesTokenCount`.
    pub output: i64,
    /// `usage.total_tokens`, `usageMetadata.totalTokenCount`, else
    /// input + output.
    pub total: i64,
}

fn first(json: &Value, paths: &[&str]) -> Option<i64> {
    paths
        .iter()
        .find_map(|p| json.pointer(p).and_then(Value::as_i64))
}

fn from_json(json: &Value) -> Option<TokenUsage> {
    let input = first(
        json,
        &[
            "/usage/prompt_tokens",
            "/usage/input_tokens",
            "/response/usage/input_tokens",
            "/message/usage/input_tokens",
            "/usageMetadata/promptTokenCount",
        ],
    );
    let output = first(
        json,
        &[
            "/usage/completion_tokens",
            "/usage/output_tokens",
            "/response/usage/output_tokens",
            "/usageMetadata/candidatesTokenCount",
        ],
    );
    if input.is_none() && output.is_none() {
        return None;
    }
    let (input, output) = (input.unwrap_or(0), output.unwrap_or(0));
    let total = first(
        json,
        &[
            "/usage/total_tokens",
            "/response/usage/total_tokens",
            "/usageMetadata/totalTokenCount",
        ],
    )
    .unwrap_or(input + output);
    Some(TokenUsage {
        input,
        output,
        total,
    })
}

/// The usage in `chunk`, if it reports a positive total (as Go requires).
pub fn token_usage(chunk: &[u8]) -> Option<TokenUsage> {
    let text = String::from_utf8_lossy(chunk).replace("\r\n", "\n");
    let mut found = None;
    for event in text.split("\n\n") {
        if !event.contains("\"usage\"") && !event.contains("\"usageMetadata\"") {
            continue;
        }
        // An SSE event's data lines, or the chunk itself.
        let data: String = if event.trim_start().starts_with('{') {
            event.to_owned()
        } else {
            event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect()
        };
        if let Some(usage) = serde_json::from_str(&data)
            .ok()
            .as_ref()
            .and_then(from_json)
        {
            found = Some(usage);
        }
    }
    found.filter(|u| u.total > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_json_and_sse() {
        let body = br#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":15,"total_tokens":25}}"#;
        let want = TokenUsage {
            input: 10,
            output: 15,
            total: 25,
        };
        assert_eq!(token_usage(body), Some(want));
        let sse = b"data: {\"choices\":[{\"delta\":{}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":15,\"total_tokens\":25}}\n\ndata: [DONE]\n\n";
        assert_eq!(token_usage(sse), Some(want));
        assert_eq!(token_usage(br#"{"message": "Hello, world!"}"#), None);
        assert_eq!(
            token_usage(br#"{"usage":{"prompt_tokens":0,"completion_tokens":0}}"#),
            None
        );
    }

    #[test]
    fn anthropic_and_gemini() {
        let a = br#"{"type":"message","usage":{"input_tokens":3,"output_tokens":4}}"#;
        assert_eq!(token_usage(a).map(|u| u.total), Some(7));
        let g = br#"{"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":5,"totalTokenCount":7}}"#;
        assert_eq!(token_usage(g).map(|u| (u.input, u.output)), Some((2, 5)));
    }
}
