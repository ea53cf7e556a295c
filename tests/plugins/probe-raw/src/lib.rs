//! `e2e-probe-raw`: `examples/my-plugin` written directly on `proxy-wasm`,
//! the baseline of the SDK benchmark (`scripts/bench.sh`).
//!
//! It does exactly the observable work my-plugin does through the SDK, per
//! request and in the same order:
//!
//! * reads request header `x-user-id`,
//! * writes two info lines, byte for byte what the SDK writes
//!   (`[my-plugin] [nil] [<x-request-id>] request received` and
//!   `[my-plugin] [nil] [<x-request-id>] x-user-id: <value>`; the request id
//!   is read once, for the first line, as the SDK does),
//! * sets request header `x-custom-header` to the configured `some_field`.
//!
//! Config: `{"some_field": "<string>"}`, nothing else (no `_rules_`). A
//! missing, non-string or unknown field makes `on_configure` fail, as with
//! my-plugin. It depends only on `proxy-wasm` and `log`, so the JSON is
//! read by a few lines of hand-written code rather than serde.
//!
//! Logging goes through proxy-wasm's own logger at level `Trace`: every
//! `log::info!` is formatted and handed to the host, which drops it if its
//! `wasm` log level is above info. That is what a plugin on raw proxy-wasm
//! usually does; the SDK instead asks the host for its level first.
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;

/// The plugin name written in the log prefix (the same as my-plugin's).
const NAME: &str = "my-plugin";

/// The root context: holds the parsed `some_field`.
#[derive(Debug, Default)]
pub struct RawRoot {
    some_field: Option<Rc<str>>,
}

/// One request.
#[derive(Debug)]
pub struct RawHttp {
    some_field: Option<Rc<str>>,
}

impl Context for RawRoot {}

impl RootContext for RawRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        match parse_config(&raw) {
            Ok(value) => {
                self.some_field = Some(Rc::from(value));
                log::info!("[{NAME}] [nil] [nil] plugin started (raw proxy-wasm)");
                true
            }
            Err(message) => {
                log::error!("[{NAME}] [nil] [nil] invalid plugin config: {message}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(RawHttp {
            some_field: self.some_field.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl Context for RawHttp {}

impl HttpContext for RawHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(some_field) = self.some_field.clone() else {
            return Action::Continue;
        };
        let request_id = self
            .get_http_request_header_bytes("x-request-id")
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "nil".to_owned());
        log::info!("[{NAME}] [nil] [{request_id}] request received");
        match self.get_http_request_header_bytes("x-user-id") {
            Some(user) => log::info!(
                "[{NAME}] [nil] [{request_id}] x-user-id: {}",
                String::from_utf8_lossy(&user)
            ),
            None => log::info!("[{NAME}] [nil] [{request_id}] x-user-id: (none)"),
        }
        self.set_http_request_header_bytes("x-custom-header", Some(some_field.as_bytes()));
        Action::Continue
    }
}

/// Reads `{"some_field": "<string>"}` (whitespace allowed, string escapes
/// decoded); anything else is an error naming what is wrong.
pub fn parse_config(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "config is not UTF-8".to_owned())?;
    let mut chars = text.chars().peekable();
    let mut some_field = None;
    skip_ws(&mut chars);
    expect(&mut chars, '{')?;
    skip_ws(&mut chars);
    if chars.peek() == Some(&'}') {
        chars.next();
    } else {
        loop {
            skip_ws(&mut chars);
            let key = string(&mut chars)?;
            skip_ws(&mut chars);
            expect(&mut chars, ':')?;
            skip_ws(&mut chars);
            if key != "some_field" {
                return Err(format!("unknown field `{key}`, expected `some_field`"));
            }
            if chars.peek() != Some(&'"') {
                return Err("some_field: expected a string".to_owned());
            }
            some_field = Some(string(&mut chars)?);
            skip_ws(&mut chars);
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                _ => return Err("expected `,` or `}`".to_owned()),
            }
        }
    }
    skip_ws(&mut chars);
    if chars.next().is_some() {
        return Err("trailing characters after the object".to_owned());
    }
    some_field.ok_or_else(|| "missing field `some_field`".to_owned())
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_ws(chars: &mut Chars<'_>) {
    while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
        chars.next();
    }
}

fn expect(chars: &mut Chars<'_>, want: char) -> Result<(), String> {
    match chars.next() {
        Some(c) if c == want => Ok(()),
        _ => Err(format!("expected `{want}`")),
    }
}

fn string(chars: &mut Chars<'_>) -> Result<String, String> {
    expect(chars, '"')?;
    let mut out = String::new();
    loop {
        match chars.next().ok_or("unterminated string")? {
            '"' => return Ok(out),
            '\\' => match chars.next().ok_or("unterminated escape")? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).map_err(|_| "bad \\u escape")?;
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                }
                _ => return Err("bad escape".to_owned()),
            },
            c => out.push(c),
        }
    }
}

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RawRoot::default()) });
}}

#[cfg(test)]
mod tests {
    use super::parse_config;

    #[test]
    fn parses_the_my_plugin_config() {
        assert_eq!(parse_config(br#"{"some_field": "x"}"#).as_deref(), Ok("x"));
        assert_eq!(
            parse_config(b" { \"some_field\" : \"a\\\"b\\u0041\" } ").as_deref(),
            Ok("a\"bA")
        );
        assert!(parse_config(br#"{"some_field": 1}"#).is_err());
        assert!(parse_config(br#"{"other": "x"}"#).is_err());
        assert!(parse_config(br#"{}"#).is_err());
        assert!(parse_config(br#"{"some_field": "x""#).is_err());
    }
}
