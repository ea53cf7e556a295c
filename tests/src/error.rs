//! The one error type of the harness.

use std::fmt;
use std::io;

/// Result alias used throughout the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building plugins, running Envoy or
/// talking HTTP.
#[derive(Debug)]
pub enum Error {
    /// An I/O operation failed; `context` says which.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// An external command (cargo, rustup, the install script) failed.
    Command {
        /// The command line, for humans.
        command: String,
        /// Its exit status and the tail of its output.
        output: String,
    },
    /// Envoy exited, or did not become ready in time.
    EnvoyStart {
        /// Why the start was considered failed.
        reason: String,
        /// Everything Envoy logged before it was stopped.
        log: String,
    },
    /// A peer spoke malformed HTTP, or a response could not be decoded.
    Protocol(String),
    /// Something did not happen within its deadline.
    Timeout(String),
    /// A builder was given inconsistent input.
    Config(String),
}

impl Error {
    /// Wraps an [`io::Error`] with a description of what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Envoy's log for a failed start ([`Error::EnvoyStart`]), `None` otherwise.
    pub fn envoy_log(&self) -> Option<&str> {
        match self {
            Self::EnvoyStart { log, .. } => Some(log),
            _ => None,
        }
    }
}

/// The last `max_lines` lines of `text`.
pub fn tail(text: &str, max_lines: usize) -> &str {
    let mut cut = text.len();
    let mut seen = 0usize;
    let trimmed = text.trim_end_matches('\n');
    for (idx, _) in trimmed.match_indices('\n').rev() {
        seen += 1;
        if seen >= max_lines {
            cut = idx + 1;
            break;
        }
    }
    if seen < max_lines {
        return text;
    }
    text.get(cut..).unwrap_or(text)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { context, source } => write!(f, "{context}: {source}"),
            Self::Command { command, output } => write!(f, "`{command}` failed: {output}"),
            Self::EnvoyStart { reason, log } => {
                write!(
                    f,
                    "envoy did not start: {reason}\n---- envoy log (tail) ----\n{}",
                    tail(log, 40)
                )
            }
            Self::Protocol(msg) => write!(f, "HTTP protocol error: {msg}"),
            Self::Timeout(msg) => write!(f, "timed out: {msg}"),
            Self::Config(msg) => write!(f, "invalid harness configuration: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
