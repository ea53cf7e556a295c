//! Logging: the `log` crate's macros, written through the host as
//! `[plugin-name] [plugin-id] [request-id] message`, like the Go wrapper.
//!
//! Use `log::info!` and friends anywhere in a plugin. A line below the host's
//! current level (Envoy's `wasm` logger, `proxy_get_log_level`) is dropped
//! before its arguments are formatted. The level is read on configure and
//! tick, and at least every 128 request callbacks, so a change through
//! Envoy's admin `/logging` takes effect within that many callbacks. A panic is logged at critical level,
//! with the same prefix, before the VM stops.

use crate::host::{self, LogLevel, MapType};
use std::cell::{OnceCell, RefCell};
use std::fmt::Write as _;
use std::rc::Rc;

/// The request's `x-request-id`, read once, on first use, and shared between
/// the request's context and the log prefix of its lines.
pub(crate) type RequestId = Rc<OnceCell<Option<Rc<str>>>>;

/// Reads `x-request-id` (or, without one, the `request.id` property).
pub(crate) fn load_request_id() -> Option<Rc<str>> {
    host::get_header(MapType::RequestHeaders, "x-request-id")
        .ok()
        .flatten()
        .or_else(|| host::get_property(&["request", "id"]).ok().flatten())
        .filter(|v| !v.is_empty())
        .map(|v| match String::from_utf8(v) {
            Ok(s) => Rc::from(s),
            Err(e) => Rc::from(String::from_utf8_lossy(e.as_bytes())),
        })
}

/// Who is logging: set by the SDK each time the host enters the plugin.
#[derive(Debug)]
struct Scope {
    plugin_name: &'static str,
    plugin_id: Option<Rc<str>>,
    /// The HTTP context being served, if any.
    stream: Option<u32>,
    /// `x-request-id` of `stream`, read on the first line it logs.
    request_id: Option<RequestId>,
    /// The host's log level. It can change at runtime (Envoy's admin
    /// `/logging`), so it is asked again on every root entry (configure,
    /// tick) and after [`LEVEL_REFRESH_ENTRIES`] request entries; a host
    /// call per request would cost more than the lines it saves.
    level: Option<LogLevel>,
    /// Request entries since `level` was read.
    entries: u32,
}

/// How many request callbacks may use a cached host log level.
const LEVEL_REFRESH_ENTRIES: u32 = 128;

thread_local! {
    static SCOPE: RefCell<Scope> = const {
        RefCell::new(Scope {
            plugin_name: "",
            plugin_id: None,
            stream: None,
            request_id: None,
            level: None,
            entries: 0,
        })
    };
}

/// Marks that the host entered the root context of `plugin_name`.
pub(crate) fn enter_root(plugin_name: &'static str, plugin_id: Option<&Rc<str>>) {
    let _ = SCOPE.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.plugin_name = plugin_name;
            s.plugin_id = plugin_id.cloned();
            s.stream = None;
            s.request_id = None;
            s.level = None;
        }
    });
}

/// Marks that the host entered HTTP context `context_id`.
pub(crate) fn enter_stream(
    plugin_name: &'static str,
    plugin_id: Option<&Rc<str>>,
    context_id: u32,
    request_id: Option<&RequestId>,
) {
    let _ = SCOPE.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.plugin_name = plugin_name;
            s.plugin_id = plugin_id.cloned();
            s.stream = Some(context_id);
            s.request_id = request_id.cloned();
            s.entries += 1;
            if s.entries >= LEVEL_REFRESH_ENTRIES {
                s.level = None;
            }
        }
    });
}

fn to_host_level(level: log::Level) -> LogLevel {
    match level {
        log::Level::Error => LogLevel::Error,
        log::Level::Warn => LogLevel::Warn,
        log::Level::Info => LogLevel::Info,
        log::Level::Debug => LogLevel::Debug,
        log::Level::Trace => LogLevel::Trace,
    }
}

/// Whether the host would keep a line at `level`. If the host cannot say,
/// everything is logged (as Go does).
pub(crate) fn host_enabled(level: LogLevel) -> bool {
    let cached = SCOPE
        .try_with(|s| s.try_borrow().ok().and_then(|s| s.level))
        .ok()
        .flatten();
    let min = match cached {
        Some(min) => min,
        None => {
            // Unknown: log everything (as Go does) and ask again next time.
            let Ok(min) = host::log_level() else {
                return true;
            };
            let _ = SCOPE.try_with(|s| {
                s.try_borrow_mut().map(|mut s| {
                    s.level = Some(min);
                    s.entries = 0;
                })
            });
            min
        }
    };
    level >= min
}

/// Formats the prefix and writes one line. Newlines are escaped so each
/// record stays on one line of the gateway log.
fn write_line(level: LogLevel, args: &std::fmt::Arguments<'_>) {
    let mut line = String::with_capacity(96);
    let _ = SCOPE.try_with(|s| {
        if let Ok(s) = s.try_borrow() {
            let request_id = s
                .request_id
                .as_ref()
                .and_then(|cell| cell.get_or_init(load_request_id).clone());
            let request_id = request_id.as_deref().unwrap_or("nil");
            // Plain pushes: the prefix needs no formatting machinery.
            for part in [
                s.plugin_name,
                s.plugin_id.as_deref().unwrap_or("nil"),
                request_id,
            ] {
                line.push('[');
                line.push_str(part);
                line.push_str("] ");
            }
        }
    });
    let start = line.len();
    match args.as_str() {
        // A message without arguments is copied as it is.
        Some(text) => line.push_str(text),
        None => {
            let _ = line.write_fmt(*args);
        }
    }
    if line
        .as_bytes()
        .get(start..)
        .is_some_and(|m| m.contains(&b'\n'))
    {
        let body = line.split_off(start);
        line.push_str(&crate::wire::replace(&body, "\n", "\\n"));
    }
    host::log(level, &line);
}

/// Whether records logged on this thread may come from the plugin. On wasm
/// every line is the plugin's. Natively (tests) the `log` facade is the
/// whole process's: a thread that never entered a plugin callback is not
/// running the plugin (e.g. a wasm-mode host compiling a module next to
/// native tests, with wasmtime's trace lines), and its records are dropped
/// before they are formatted.
fn plugin_thread() -> bool {
    #[cfg(target_arch = "wasm32")]
    return true;
    #[cfg(not(target_arch = "wasm32"))]
    SCOPE
        .try_with(|s| s.try_borrow().is_ok_and(|s| !s.plugin_name.is_empty()))
        .unwrap_or(false)
}

struct HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        host_enabled(to_host_level(metadata.level()))
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = to_host_level(record.level());
        if plugin_thread() && host_enabled(level) {
            write_line(level, record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: HostLogger = HostLogger;

/// Installs the host logger and the panic hook; idempotent.
pub(crate) fn install() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
        // Natively (tests), keep the usual panic report as well. On wasm the
        // default hook is not kept: holding it would link std's whole
        // stderr/backtrace/env machinery into every plugin.
        #[cfg(not(target_arch = "wasm32"))]
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            write_line(LogLevel::Critical, &format_args!("panicked: {info}"));
            #[cfg(not(target_arch = "wasm32"))]
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_levels_map_in_order() {
        assert!(to_host_level(log::Level::Error) > to_host_level(log::Level::Warn));
        assert!(to_host_level(log::Level::Trace) < to_host_level(log::Level::Debug));
        assert_eq!(LogLevel::from_raw(99), LogLevel::Critical);
    }
}
