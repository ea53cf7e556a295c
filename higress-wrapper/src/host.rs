//! The one module that talks to the host: every `proxy_*` import the SDK uses,
//! with raw `u32` statuses mapped to [`HostError`].
//!
//! `proxy-wasm` 0.2.5's own wrappers `panic!` on statuses they do not expect
//! (and `unwrap` UTF-8), which fails the whole VM. The SDK therefore declares
//! its own imports here, on the same ABI (`env` module, proxy-wasm 0.2.1), and
//! never panics on anything the host returns. Together with `entry` (where
//! the host calls in) this is the only place with `unsafe` in the crate.
//!
//! Layering: a leaf. It imports nothing of the SDK but the leaf types of
//! `error` and `wire`.
//!
//! Buffers the host hands back were allocated through the module's exported
//! `proxy_on_memory_allocate` (provided by `proxy-wasm`, a boxed slice whose
//! capacity equals its length), so they are taken back with
//! `Vec::from_raw_parts(ptr, len, len)` exactly once.
#![allow(unsafe_code)]
// The ABI fixes the arity of `proxy_http_call` & co.
#![allow(clippy::too_many_arguments)]

use crate::error::HostError;
use std::ptr::null_mut;

/// Which header map a call addresses (proxy-wasm `MapType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum MapType {
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
    /// A gRPC stream's initial metadata, valid inside its callback.
    GrpcReceiveInitialMetadata = 4,
    /// A gRPC stream's trailing metadata, valid inside its callback.
    GrpcReceiveTrailingMetadata = 5,
    HttpCallResponseHeaders = 6,
}

/// Which buffer a call addresses (proxy-wasm `BufferType`, plus Higress's 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum BufferType {
    RequestBody = 0,
    ResponseBody = 1,
    HttpCallResponseBody = 4,
    /// A gRPC call's response message, valid inside its callback.
    GrpcReceiveBuffer = 5,
    PluginConfiguration = 7,
    /// Higress only: the reply of a Redis call, valid inside its callback.
    RedisCallResponse = 9,
}

/// Which stream direction to resume (proxy-wasm `StreamType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum StreamType {
    Request = 0,
    Response = 1,
}

/// Host log levels (proxy-wasm `LogLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub(crate) enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub(crate) fn from_raw(raw: u32) -> LogLevel {
        match raw {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Critical,
        }
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_set_header_map_pairs(map_type: u32, map_data: *const u8, map_size: usize) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_milliseconds: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
}

/// Turns a raw status into `Ok(())` or the typed error.
fn check(status: u32) -> Result<(), HostError> {
    match status {
        0 => Ok(()),
        other => Err(HostError::from_status(other)),
    }
}

/// Takes ownership of a host-returned buffer (allocated by
/// `proxy_on_memory_allocate`). A null pointer means "no value".
fn take_buffer(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    if size == 0 {
        // A zero-length boxed slice owns no allocation; nothing to free.
        return Some(Vec::new());
    }
    // SAFETY: the host filled `data` with `size` bytes it obtained from our
    // `proxy_on_memory_allocate(size)`, which leaks a `Box<[u8]>` of exactly
    // `size` bytes. We reclaim it exactly once, here.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// Maps `NotFound` to `Ok(None)`, which is how the host says "absent".
fn optional(status: u32, data: *mut u8, size: usize) -> Result<Option<Vec<u8>>, HostError> {
    match status {
        0 => Ok(take_buffer(data, size)),
        1 => {
            // Defensive: a host that answers NotFound should not have
            // allocated, but never leak if it did.
            drop(take_buffer(data, size));
            Ok(None)
        }
        other => {
            drop(take_buffer(data, size));
            Err(HostError::from_status(other))
        }
    }
}

/// Writes a log line at `level`. Failures are ignored: there is nowhere
/// else to report them.
pub(crate) fn log(level: LogLevel, message: &str) {
    // SAFETY: pointer and length describe a live `&str`.
    let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}

/// The host's current log level (Envoy's `wasm` logger level).
pub(crate) fn log_level() -> Result<LogLevel, HostError> {
    let mut level: u32 = 0;
    // SAFETY: `level` is a valid out-pointer for the duration of the call.
    check(unsafe { proxy_get_log_level(&mut level) })?;
    Ok(LogLevel::from_raw(level))
}

/// Wall-clock time in nanoseconds since the Unix epoch.
pub(crate) fn current_time_nanos() -> Result<u64, HostError> {
    let mut t: u64 = 0;
    // SAFETY: `t` is a valid out-pointer.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

/// Sets the root context's tick period (0 stops ticks).
pub(crate) fn set_tick_period_ms(period: u32) -> Result<(), HostError> {
    // SAFETY: plain value call.
    check(unsafe { proxy_set_tick_period_milliseconds(period) })
}

/// Reads `max_size` bytes from `start` of a buffer. `Ok(None)` when absent.
pub(crate) fn get_buffer(
    buffer: BufferType,
    start: usize,
    max_size: usize,
) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers are valid; the result is taken by `optional`.
    let status =
        unsafe { proxy_get_buffer_bytes(buffer as u32, start, max_size, &mut data, &mut size) };
    optional(status, data, size)
}

/// Replaces `size` bytes at `start` of a buffer with `value`.
pub(crate) fn set_buffer(
    buffer: BufferType,
    start: usize,
    size: usize,
    value: &[u8],
) -> Result<(), HostError> {
    // SAFETY: pointer and length describe a live slice.
    check(unsafe {
        proxy_set_buffer_bytes(buffer as u32, start, size, value.as_ptr(), value.len())
    })
}

/// All headers of a map, names as text (Envoy names are ASCII) and values as
/// raw bytes. A malformed serialization from the host yields what could be
/// decoded, never a panic.
pub(crate) fn get_header_pairs(map: MapType) -> Result<Vec<(String, Vec<u8>)>, HostError> {
    Ok(get_header_map_bytes(map)?
        .map(|bytes| crate::wire::decode_map(&bytes))
        .unwrap_or_default())
}

/// A header map as the host serializes it (see [`crate::wire::for_each_pair`]).
pub(crate) fn get_header_map_bytes(map: MapType) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers are valid; the result is taken by `optional`.
    let status = unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    optional(status, data, size)
}

/// Replaces a whole header map.
pub(crate) fn set_header_pairs(map: MapType, pairs: &[(&str, &[u8])]) -> Result<(), HostError> {
    let bytes = crate::wire::encode_map(pairs);
    // SAFETY: pointer and length describe a live vector.
    check(unsafe { proxy_set_header_map_pairs(map as u32, bytes.as_ptr(), bytes.len()) })
}

/// One header value as raw bytes; `Ok(None)` when absent.
pub(crate) fn get_header(map: MapType, name: &str) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: name is a live &str; out-pointers are valid.
    let status = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    optional(status, data, size)
}

/// Sets (replaces) a header value.
pub(crate) fn replace_header(map: MapType, name: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: both slices are live for the call.
    check(unsafe {
        proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Appends a header value (a second value for the same name is kept).
pub(crate) fn add_header(map: MapType, name: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: both slices are live for the call.
    check(unsafe {
        proxy_add_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Removes every value of a header.
pub(crate) fn remove_header(map: MapType, name: &str) -> Result<(), HostError> {
    // SAFETY: name is a live &str.
    check(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// Reads a property by path (`["xds", "route_name"]`); `Ok(None)` when absent.
pub(crate) fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    let serialized = crate::wire::encode_path(path);
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: serialized is live; out-pointers are valid.
    let status =
        unsafe { proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size) };
    optional(status, data, size)
}

/// Writes a property by path.
pub(crate) fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    let serialized = crate::wire::encode_path(path);
    // SAFETY: both buffers are live for the call.
    check(unsafe {
        proxy_set_property(
            serialized.as_ptr(),
            serialized.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Resumes a paused request or response.
pub(crate) fn continue_stream(stream: StreamType) -> Result<(), HostError> {
    // SAFETY: plain value call.
    check(unsafe { proxy_continue_stream(stream as u32) })
}

/// Sends a local response to the client instead of proxying.
pub(crate) fn send_local_response(
    status: u32,
    details: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
    grpc_status: i32,
) -> Result<(), HostError> {
    let headers = crate::wire::encode_map(headers);
    // SAFETY: all buffers are live for the call.
    check(unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            grpc_status,
        )
    })
}

/// Makes `context_id` the context later host calls act on.
pub(crate) fn set_effective_context(context_id: u32) -> Result<(), HostError> {
    // SAFETY: plain value call.
    check(unsafe { proxy_set_effective_context(context_id) })
}

/// Calls a host foreign function (e.g. Higress's `get_log_level`).
pub(crate) fn call_foreign_function(
    name: &str,
    arguments: &[u8],
) -> Result<Option<Vec<u8>>, HostError> {
    match call_foreign(name, arguments) {
        Ok(result) => Ok((!result.is_empty()).then_some(result)),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`call_foreign_function`], with an unknown function (`NotFound`) an
/// error and no result data an empty vector.
pub(crate) fn call_foreign(name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: buffers are live; out-pointers are valid.
    let status = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            arguments.as_ptr(),
            arguments.len(),
            &mut data,
            &mut size,
        )
    };
    let result = take_buffer(data, size);
    check(status)?;
    Ok(result.unwrap_or_default())
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_redis_init(
        service_data: *const u8,
        service_size: usize,
        username_data: *const u8,
        username_size: usize,
        password_data: *const u8,
        password_size: usize,
        timeout_milliseconds: u32,
    ) -> u32;
    fn proxy_redis_call(
        service_data: *const u8,
        service_size: usize,
        query_data: *const u8,
        query_size: usize,
        return_token: *mut u32,
    ) -> u32;
}

/// Higress only: (re)initializes the worker's Redis client for `service`
/// (cluster name plus `?db=..&..` options). Imported only by plugins that
/// use Redis: stock Envoy refuses modules that import it.
pub(crate) fn redis_init(
    service: &str,
    username: &str,
    password: &str,
    timeout_ms: u32,
) -> Result<(), HostError> {
    // SAFETY: all buffers are live for the call.
    check(unsafe {
        proxy_redis_init(
            service.as_ptr(),
            service.len(),
            username.as_ptr(),
            username.len(),
            password.as_ptr(),
            password.len(),
            timeout_ms,
        )
    })
}

/// Higress only: sends one RESP-encoded command; returns the call's token.
pub(crate) fn redis_call(service: &str, query: &[u8]) -> Result<u32, HostError> {
    let mut token: u32 = 0;
    // SAFETY: buffers are live; `token` is a valid out-pointer.
    check(unsafe {
        proxy_redis_call(
            service.as_ptr(),
            service.len(),
            query.as_ptr(),
            query.len(),
            &mut token,
        )
    })?;
    Ok(token)
}

/// Dispatches an HTTP call to `cluster`; returns the host's token. The
/// reply arrives through `proxy_on_http_call_response` (see `entry`).
pub(crate) fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: std::time::Duration,
) -> Result<u32, HostError> {
    let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    let headers = crate::wire::encode_map(&pairs);
    // An empty map, serialized, as proxy-wasm sends it.
    let trailers = crate::wire::encode_map(&[]);
    let body = body.unwrap_or_default();
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let mut token: u32 = 0;
    // SAFETY: all buffers are live for the call; `token` is a valid out-pointer.
    check(unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

// ----- metrics, shared data, shared queues, stream close ---------------------

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_register_shared_queue(
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_resolve_shared_queue(
        vm_id_data: *const u8,
        vm_id_size: usize,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_dequeue_shared_queue(
        queue_id: u32,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
}

/// Defines (or finds) a metric; `kind` is 0 counter, 1 gauge, 2 histogram.
pub(crate) fn define_metric(kind: u32, name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: `name` is live; `id` is a valid out-pointer.
    check(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds `offset` to a counter or gauge.
pub(crate) fn increment_metric(id: u32, offset: i64) -> Result<(), HostError> {
    // SAFETY: plain value call.
    check(unsafe { proxy_increment_metric(id, offset) })
}

/// Sets a gauge, or records a histogram sample.
pub(crate) fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: plain value call.
    check(unsafe { proxy_record_metric(id, value) })
}

/// A counter's or gauge's current value.
pub(crate) fn get_metric(id: u32) -> Result<u64, HostError> {
    let mut value: u64 = 0;
    // SAFETY: `value` is a valid out-pointer.
    check(unsafe { proxy_get_metric(id, &mut value) })?;
    Ok(value)
}

/// A shared-data value and its CAS; `Err(NotFound)` when the key is absent.
pub(crate) fn get_shared_data(key: &str) -> Result<(Vec<u8>, u32), HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: `key` is live; out-pointers are valid; the buffer is taken once.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    let value = take_buffer(data, size);
    check(status)?;
    Ok((value.unwrap_or_default(), cas))
}

/// Writes a shared-data value; `cas` 0 writes unconditionally.
pub(crate) fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: both buffers are live for the call.
    check(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Registers a shared queue owned by the calling plugin's root context.
pub(crate) fn register_shared_queue(name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: `name` is live; `id` is a valid out-pointer.
    check(unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Finds a queue another VM (or this one) registered.
pub(crate) fn resolve_shared_queue(vm_id: &str, name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: both strings are live; `id` is a valid out-pointer.
    check(unsafe {
        proxy_resolve_shared_queue(
            vm_id.as_ptr(),
            vm_id.len(),
            name.as_ptr(),
            name.len(),
            &mut id,
        )
    })?;
    Ok(id)
}

/// Appends a message to a queue.
pub(crate) fn enqueue_shared_queue(id: u32, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: `value` is live for the call.
    check(unsafe { proxy_enqueue_shared_queue(id, value.as_ptr(), value.len()) })
}

/// Takes the oldest message of a queue; `Err(Empty)` when there is none.
pub(crate) fn dequeue_shared_queue(id: u32) -> Result<Vec<u8>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers are valid; the buffer is taken once.
    let status = unsafe { proxy_dequeue_shared_queue(id, &mut data, &mut size) };
    let value = take_buffer(data, size);
    check(status)?;
    Ok(value.unwrap_or_default())
}

/// Resets one direction of the stream (Envoy: `resetStream()`).
pub(crate) fn close_stream(stream: StreamType) -> Result<(), HostError> {
    // SAFETY: plain value call.
    check(unsafe { proxy_close_stream(stream as u32) })
}

// ----- Higress only: upstream host selection, injected data -------------------
//
// Stock Envoy refuses a module importing these; each is reached only through
// a public function that is linked only when a plugin calls it.

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_upstream_hosts(return_data: *mut *mut u8, return_size: *mut usize) -> u32;
    fn proxy_set_upstream_override_host(address_data: *const u8, address_size: usize) -> u32;
    fn proxy_inject_encoded_data_to_filter_chain(
        body_data: *const u8,
        body_size: usize,
        end_stream: u32,
    ) -> u32;
}

/// Higress only: the route's cluster hosts, serialized as a pair map
/// (address, JSON metadata).
pub(crate) fn get_upstream_hosts() -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers are valid; the result is taken by `optional`.
    let status = unsafe { proxy_get_upstream_hosts(&mut data, &mut size) };
    optional(status, data, size)
}

/// Higress only: sends this request to `address` (`ip:port`).
pub(crate) fn set_upstream_override_host(address: &[u8]) -> Result<(), HostError> {
    // SAFETY: `address` is live for the call.
    check(unsafe { proxy_set_upstream_override_host(address.as_ptr(), address.len()) })
}

/// Higress only: pushes response (encoded) data into the filter chain.
pub(crate) fn inject_encoded_data(body: &[u8], end_stream: bool) -> Result<(), HostError> {
    // SAFETY: `body` is live for the call.
    check(unsafe {
        proxy_inject_encoded_data_to_filter_chain(body.as_ptr(), body.len(), u32::from(end_stream))
    })
}

// ----- gRPC ------------------------------------------------------------------

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_grpc_call(
        upstream_data: *const u8,
        upstream_size: usize,
        service_name_data: *const u8,
        service_name_size: usize,
        method_name_data: *const u8,
        method_name_size: usize,
        initial_metadata_data: *const u8,
        initial_metadata_size: usize,
        message_data: *const u8,
        message_size: usize,
        timeout_milliseconds: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_get_status(
        return_code: *mut u32,
        return_message_data: *mut *mut u8,
        return_message_size: *mut usize,
    ) -> u32;
}

/// Dispatches a unary gRPC call to `cluster`; returns the host's token. The
/// reply arrives through `proxy_on_grpc_receive` or `proxy_on_grpc_close`.
pub(crate) fn grpc_call(
    cluster: &str,
    service: &str,
    method: &str,
    metadata: &[(&str, &[u8])],
    message: &[u8],
    timeout: std::time::Duration,
) -> Result<u32, HostError> {
    let metadata = crate::wire::encode_map(metadata);
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let mut token: u32 = 0;
    // SAFETY: all buffers are live for the call; `token` is a valid out-pointer.
    check(unsafe {
        proxy_grpc_call(
            cluster.as_ptr(),
            cluster.len(),
            service.as_ptr(),
            service.len(),
            method.as_ptr(),
            method.len(),
            metadata.as_ptr(),
            metadata.len(),
            message.as_ptr(),
            message.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_grpc_stream(
        upstream_data: *const u8,
        upstream_size: usize,
        service_name_data: *const u8,
        service_name_size: usize,
        method_name_data: *const u8,
        method_name_size: usize,
        initial_metadata_data: *const u8,
        initial_metadata_size: usize,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_grpc_send(token: u32, message_data: *const u8, message_size: usize, end: u32) -> u32;
    fn proxy_grpc_close(token: u32) -> u32;
    fn proxy_grpc_cancel(token: u32) -> u32;
}

/// Opens a gRPC stream to `cluster`; returns the host's token. Messages
/// arrive through `proxy_on_grpc_receive`, the end through
/// `proxy_on_grpc_close`.
pub(crate) fn grpc_stream(
    cluster: &str,
    service: &str,
    method: &str,
    metadata: &[(&str, &[u8])],
) -> Result<u32, HostError> {
    let metadata = crate::wire::encode_map(metadata);
    let mut token: u32 = 0;
    // SAFETY: all buffers are live for the call; `token` is a valid out-pointer.
    check(unsafe {
        proxy_grpc_stream(
            cluster.as_ptr(),
            cluster.len(),
            service.as_ptr(),
            service.len(),
            method.as_ptr(),
            method.len(),
            metadata.as_ptr(),
            metadata.len(),
            &mut token,
        )
    })?;
    Ok(token)
}

/// Sends one message on gRPC stream `token`; `end_of_stream` half-closes it.
pub(crate) fn grpc_send(token: u32, message: &[u8], end_of_stream: bool) -> Result<(), HostError> {
    // SAFETY: `message` is live for the call.
    check(unsafe {
        proxy_grpc_send(
            token,
            message.as_ptr(),
            message.len(),
            u32::from(end_of_stream),
        )
    })
}

/// Half-closes gRPC stream `token` (no more messages from the plugin).
pub(crate) fn grpc_close(token: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check(unsafe { proxy_grpc_close(token) })
}

/// Cancels (resets) gRPC stream or call `token`.
pub(crate) fn grpc_cancel(token: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check(unsafe { proxy_grpc_cancel(token) })
}

/// The status of the last callout (code, message), e.g. a gRPC status.
pub(crate) fn get_status() -> Result<(u32, Vec<u8>), HostError> {
    let mut code: u32 = 0;
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers are valid; the buffer is taken once.
    let status = unsafe { proxy_get_status(&mut code, &mut data, &mut size) };
    let message = take_buffer(data, size);
    check(status)?;
    Ok((code, message.unwrap_or_default()))
}
