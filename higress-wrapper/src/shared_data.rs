//! Shared data: a key-value store every worker of one VM id shares (Envoy
//! keeps it per `vm_id`, so all worker threads of a plugin see the same
//! values), with compare-and-swap.
//!
//! Each value carries a CAS number the host changes on every write. A write
//! given the CAS of what it read fails with [`SharedDataError::CasMismatch`]
//! if another worker wrote in between; [`update`] retries such a
//! read-modify-write for you. Values are bytes ([`get_bytes`],
//! [`set_bytes`]) or any serde type, stored as JSON ([`get`], [`set`]).
//!
//! ```
//! use higress_wrapper::prelude::*;
//! use higress_wrapper::shared_data::{self, SharedDataError};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct Seen {
//!     requests: u64,
//! }
//!
//! fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
//!     // Counts across every worker; retried when two workers race.
//!     match shared_data::update("seen", 8, |seen: Option<Seen>| {
//!         let mut seen = seen.unwrap_or_default();
//!         seen.requests += 1;
//!         seen
//!     }) {
//!         Ok(seen) => ctx.set_request_header("x-seen", seen.requests.to_string()),
//!         Err(SharedDataError::CasMismatch) => log::warn!("too much contention"),
//!         Err(e) => log::warn!("shared data: {e}"),
//!     }
//!     HeaderAction::Continue
//! }
//! # let _ = on_request_headers;
//! ```
//!
//! The first write of a key is unconditional on Envoy (a CAS applies only
//! to a key that exists): two workers creating the same key at the same
//! moment may both succeed, the later one winning. Create keys that must
//! not lose a write at plugin start.

use crate::error::HostError;
use crate::host;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a shared-data call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SharedDataError {
    /// The key has no value.
    #[error("not found")]
    NotFound,
    /// The value changed since it was read (its CAS differs).
    #[error("compare-and-swap mismatch")]
    CasMismatch,
    /// The stored value is not valid JSON of the requested type, or the
    /// value could not be serialized.
    #[error("value: {0}")]
    Value(String),
    /// The host refused the call otherwise.
    #[error("host: {0}")]
    Host(HostError),
}

impl From<HostError> for SharedDataError {
    fn from(err: HostError) -> SharedDataError {
        match err {
            HostError::NotFound => SharedDataError::NotFound,
            HostError::CasMismatch => SharedDataError::CasMismatch,
            other => SharedDataError::Host(other),
        }
    }
}

/// A value with the CAS number it was read with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Pass it to a write to make the write conditional on no change since.
    pub cas: u32,
}

/// The raw value of `key` and its CAS.
pub fn get_bytes(key: &str) -> Result<Versioned<Vec<u8>>, SharedDataError> {
    let (value, cas) = host::get_shared_data(key)?;
    Ok(Versioned { value, cas })
}

/// Writes the raw value of `key`. With `cas: Some(n)` the write happens
/// only if the value still has CAS `n` (else [`SharedDataError::CasMismatch`]);
/// `None` writes unconditionally.
pub fn set_bytes(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedDataError> {
    host::set_shared_data(key, value, cas.unwrap_or(0)).map_err(SharedDataError::from)
}

/// The value of `key`, parsed from JSON.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Versioned<T>, SharedDataError> {
    let Versioned { value, cas } = get_bytes(key)?;
    let value =
        serde_json::from_slice(&value).map_err(|e| SharedDataError::Value(e.to_string()))?;
    Ok(Versioned { value, cas })
}

/// Writes `value` as JSON (see [`set_bytes`] for `cas`).
pub fn set<T: Serialize + ?Sized>(
    key: &str,
    value: &T,
    cas: Option<u32>,
) -> Result<(), SharedDataError> {
    let bytes = serde_json::to_vec(value).map_err(|e| SharedDataError::Value(e.to_string()))?;
    set_bytes(key, &bytes, cas)
}

/// Read-modify-write with compare-and-swap: reads `key` (`None` if absent),
/// computes the new value with `f` and writes it conditionally, retrying on
/// a CAS mismatch up to `attempts` times in all. Returns the value written;
/// [`SharedDataError::CasMismatch`] if every attempt lost a race.
pub fn update<T, F>(key: &str, attempts: u32, mut f: F) -> Result<T, SharedDataError>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> T,
{
    let mut last = SharedDataError::CasMismatch;
    for _ in 0..attempts.max(1) {
        let (current, cas) = match get::<T>(key) {
            Ok(Versioned { value, cas }) => (Some(value), Some(cas)),
            Err(SharedDataError::NotFound) => (None, None),
            Err(e) => return Err(e),
        };
        let next = f(current);
        match set(key, &next, cas) {
            Ok(()) => return Ok(next),
            Err(SharedDataError::CasMismatch) => last = SharedDataError::CasMismatch,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// [`update`] for raw bytes.
pub fn update_bytes<F>(key: &str, attempts: u32, mut f: F) -> Result<Vec<u8>, SharedDataError>
where
    F: FnMut(Option<&[u8]>) -> Vec<u8>,
{
    let mut last = SharedDataError::CasMismatch;
    for _ in 0..attempts.max(1) {
        let (next, cas) = match get_bytes(key) {
            Ok(Versioned { value, cas }) => (f(Some(&value)), Some(cas)),
            Err(SharedDataError::NotFound) => (f(None), None),
            Err(e) => return Err(e),
        };
        match set_bytes(key, &next, cas) {
            Ok(()) => return Ok(next),
            Err(SharedDataError::CasMismatch) => last = SharedDataError::CasMismatch,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}
