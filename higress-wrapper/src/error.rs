//! Typed errors of host calls, and the one plugin-facing [`Error`].

/// A host call failed. The variants are the proxy-wasm statuses; a status the
/// SDK does not know is kept as [`HostError::Other`] instead of panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The host has no such value (status 1).
    #[error("not found")]
    NotFound,
    /// The host refused an argument, e.g. an unknown cluster name (status 2).
    #[error("bad argument")]
    BadArgument,
    /// The host could not serialize a value (status 3).
    #[error("serialization failure")]
    SerializationFailure,
    /// The host could not parse a value (status 4).
    #[error("parse failure")]
    ParseFailure,
    /// The host rejected a pointer (status 6).
    #[error("invalid memory access")]
    InvalidMemoryAccess,
    /// The requested item is empty (status 7).
    #[error("empty")]
    Empty,
    /// A compare-and-swap did not match (status 8).
    #[error("compare-and-swap mismatch")]
    CasMismatch,
    /// The host failed internally, e.g. a capability is restricted (status 10).
    #[error("internal failure")]
    InternalFailure,
    /// The connection behind the call broke (status 11).
    #[error("broken connection")]
    BrokenConnection,
    /// The host does not implement the call (status 12).
    #[error("unimplemented")]
    Unimplemented,
    /// Any other status code.
    #[error("host status {0}")]
    Other(u32),
}

impl HostError {
    pub(crate) fn from_status(status: u32) -> HostError {
        match status {
            1 => HostError::NotFound,
            2 => HostError::BadArgument,
            3 => HostError::SerializationFailure,
            4 => HostError::ParseFailure,
            6 => HostError::InvalidMemoryAccess,
            7 => HostError::Empty,
            8 => HostError::CasMismatch,
            10 => HostError::InternalFailure,
            11 => HostError::BrokenConnection,
            12 => HostError::Unimplemented,
            other => HostError::Other(other),
        }
    }
}

/// The one error type a plugin needs: every SDK error
/// ([`RedisError`](crate::redis::RedisError),
/// [`HttpError`](crate::http_client::HttpError), [`HostError`],
/// [`ConfigError`](crate::ConfigError), …) and any other
/// [`std::error::Error`] converts into it with `?`.
///
/// It is the error of a future handed to
/// [`HttpContext::wait`](crate::HttpContext::wait), so
/// `Ok(HeaderAction::Continue)` needs no type annotation. The original error
/// stays inside: [`downcast_ref`](Error::downcast_ref) gets it back.
///
/// Like `anyhow::Error` it does not implement [`std::error::Error`] itself
/// (that is what lets every error convert into it); it implements
/// [`Display`](std::fmt::Display) and [`Debug`](std::fmt::Debug).
///
/// ```
/// use higress_wrapper::{Error, HostError};
///
/// fn parse(text: &str) -> Result<u32, Error> {
///     let n: u32 = text.parse()?; // ParseIntError converts with `?`
///     if n == 0 {
///         return Err(Error::msg("zero is not a limit"));
///     }
///     Ok(n)
/// }
/// assert_eq!(parse("7").ok(), Some(7));
/// assert_eq!(parse("0").err().map(|e| e.to_string()).as_deref(), Some("zero is not a limit"));
/// let host: Error = HostError::NotFound.into();
/// assert_eq!(host.downcast_ref::<HostError>(), Some(&HostError::NotFound));
/// ```
pub struct Error {
    inner: Box<dyn std::error::Error + 'static>,
}

/// A message given to [`Error::msg`].
#[derive(Debug)]
struct Message(String);

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl Error {
    /// An error with only a message.
    pub fn msg(message: impl std::fmt::Display) -> Error {
        Error {
            inner: Box::new(Message(message.to_string())),
        }
    }

    /// The original error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref::<E>()
    }

    /// Whether the original error is an `E`.
    pub fn is<E: std::error::Error + 'static>(&self) -> bool {
        self.inner.is::<E>()
    }

    /// The original error, as a standard error (for its `source()` chain).
    pub fn as_std_error(&self) -> &(dyn std::error::Error + 'static) {
        &*self.inner
    }
}

impl<E: std::error::Error + 'static> From<E> for Error {
    fn from(err: E) -> Error {
        Error {
            inner: Box::new(err),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
