//! Typed errors of host calls.

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
