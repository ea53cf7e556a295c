//! The raw proxy-wasm host ABI, for tests that call host functions the SDK
//! has no API for yet.
//!
//! A stand-in for `proxy_wasm::hostcalls` and `proxy_wasm::types`: a test
//! binary cannot link the `proxy-wasm` crate, because its dispatcher's
//! `#[no_mangle] proxy_on_*` exports collide with the SDK's own. Each wrapper
//! has the name, signature and status handling of its proxy-wasm 0.2.5
//! counterpart (a status that proxy-wasm does not expect panics), and the
//! enums print the same `Debug` names. Natively, the imports resolve to the
//! `#[no_mangle]` host functions of `higress-test-host`.
#![allow(unsafe_code, clippy::panic)]

use std::ptr::{null, null_mut};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `proxy_wasm::types::Bytes`.
pub type Bytes = Vec<u8>;

/// `proxy_wasm::types::Status`: what a host function returns.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
#[repr(u32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
}

impl Status {
    /// Decodes a host return value; a value outside the ABI panics, as
    /// proxy-wasm does for any status it does not expect.
    fn from_raw(raw: u32) -> Self {
        match raw {
            0 => Self::Ok,
            1 => Self::NotFound,
            2 => Self::BadArgument,
            3 => Self::SerializationFailure,
            4 => Self::ParseFailure,
            7 => Self::Empty,
            8 => Self::CasMismatch,
            10 => Self::InternalFailure,
            other => panic!("unexpected status: {other}"),
        }
    }
}

/// `proxy_wasm::types::BufferType`.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
#[repr(u32)]
pub enum BufferType {
    HttpRequestBody = 0,
    HttpResponseBody = 1,
    DownstreamData = 2,
    UpstreamData = 3,
    HttpCallResponseBody = 4,
    GrpcReceiveBuffer = 5,
    VmConfiguration = 6,
    PluginConfiguration = 7,
    CallData = 8,
}

/// `proxy_wasm::types::MetricType`.
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
#[repr(u32)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

/// `proxy_wasm::types::StreamType` values, for `proxy_close_stream`.
const STREAM_HTTP_REQUEST: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
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
    fn proxy_dequeue_shared_queue(
        queue_id: u32,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_grpc_call(
        upstream_data: *const u8,
        upstream_size: usize,
        service_name_data: *const u8,
        service_name_size: usize,
        method_name_data: *const u8,
        method_name_size: usize,
        initial_metadata_data: *const u8,
        initial_metadata_size: usize,
        message_data_data: *const u8,
        message_data_size: usize,
        timeout: u32,
        return_callout_id: *mut u32,
    ) -> u32;
    fn proxy_grpc_stream(
        upstream_data: *const u8,
        upstream_size: usize,
        service_name_data: *const u8,
        service_name_size: usize,
        method_name_data: *const u8,
        method_name_size: usize,
        initial_metadata_data: *const u8,
        initial_metadata_size: usize,
        return_stream_id: *mut u32,
    ) -> u32;
    fn proxy_grpc_send(
        token: u32,
        message_ptr: *const u8,
        message_len: usize,
        end_stream: bool,
    ) -> u32;
    fn proxy_grpc_cancel(token_id: u32) -> u32;
    fn proxy_grpc_close(token_id: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
    fn proxy_done() -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
}

/// Takes back a buffer the host returned: allocated through the module's
/// `proxy_on_memory_allocate` (a leaked `Box<[u8]>` of exactly `size` bytes),
/// or null when the host returned nothing.
///
/// # Safety
/// A non-null `data` must come from `proxy_on_memory_allocate(size)`, owned
/// by nobody else.
unsafe fn take(data: *mut u8, size: usize) -> Option<Bytes> {
    if data.is_null() {
        None
    } else {
        // SAFETY: per the contract, an allocation of `size` bytes with
        // capacity `size`, fully written by the host.
        Some(unsafe { Vec::from_raw_parts(data, size, size) })
    }
}

/// An optional argument as the ABI's `(pointer, size)`: `(null, 0)` for none.
fn raw_parts(value: Option<&[u8]>) -> (*const u8, usize) {
    value.map_or((null(), 0), |v| (v.as_ptr(), v.len()))
}

/// Milliseconds, truncated to `u32` as proxy-wasm does.
#[allow(clippy::cast_possible_truncation)]
fn millis(d: Duration) -> u32 {
    d.as_millis() as u32
}

/// `u32` length prefix of the wire format.
#[allow(clippy::cast_possible_truncation)]
fn len_u32(len: usize) -> [u8; 4] {
    (len as u32).to_le_bytes()
}

/// Header-map wire format: `u32` LE count, `(u32 name_len, u32 value_len)`
/// per pair, then `name\0value\0` per pair.
fn serialize_map_bytes(map: &[(&str, &[u8])]) -> Bytes {
    let size = 4 + map
        .iter()
        .map(|(n, v)| n.len() + v.len() + 10)
        .sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&len_u32(map.len()));
    for (name, value) in map {
        bytes.extend_from_slice(&len_u32(name.len()));
        bytes.extend_from_slice(&len_u32(value.len()));
    }
    for (name, value) in map {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value);
        bytes.push(0);
    }
    bytes
}

fn serialize_map(map: &[(&str, &str)]) -> Bytes {
    let as_bytes: Vec<(&str, &[u8])> = map.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    serialize_map_bytes(&as_bytes)
}

/// Property-path wire format: the parts joined by `\0`.
pub fn serialize_property_path(path: &[&str]) -> Bytes {
    path.join("\0").into_bytes()
}

fn unexpected(status: Status) -> ! {
    panic!("unexpected status: {}", status as u32)
}

pub fn get_current_time() -> Result<SystemTime, Status> {
    let mut return_time: u64 = 0;
    // SAFETY: the out-pointer is a local.
    let status = Status::from_raw(unsafe { proxy_get_current_time_nanoseconds(&mut return_time) });
    match status {
        Status::Ok => Ok(UNIX_EPOCH + Duration::from_nanos(return_time)),
        status => unexpected(status),
    }
}

pub fn set_tick_period(period: Duration) -> Result<(), Status> {
    // SAFETY: no pointers.
    let status = Status::from_raw(unsafe { proxy_set_tick_period_milliseconds(millis(period)) });
    match status {
        Status::Ok => Ok(()),
        status => unexpected(status),
    }
}

pub fn get_buffer(
    buffer_type: BufferType,
    start: usize,
    max_size: usize,
) -> Result<Option<Bytes>, Status> {
    let mut return_data: *mut u8 = null_mut();
    let mut return_size: usize = 0;
    // SAFETY: the out-pointers are locals.
    let status = Status::from_raw(unsafe {
        proxy_get_buffer_bytes(
            buffer_type as u32,
            start,
            max_size,
            &mut return_data,
            &mut return_size,
        )
    });
    match status {
        // SAFETY: on success, a buffer the host allocated for us.
        Status::Ok => Ok(unsafe { take(return_data, return_size) }),
        Status::NotFound => Ok(None),
        status => unexpected(status),
    }
}

pub fn get_shared_data(key: &str) -> Result<(Option<Bytes>, Option<u32>), Status> {
    let mut return_data: *mut u8 = null_mut();
    let mut return_size: usize = 0;
    let mut return_cas: u32 = 0;
    // SAFETY: `key` lives for the call; the out-pointers are locals.
    let status = Status::from_raw(unsafe {
        proxy_get_shared_data(
            key.as_ptr(),
            key.len(),
            &mut return_data,
            &mut return_size,
            &mut return_cas,
        )
    });
    match status {
        Status::Ok => {
            let cas = (return_cas != 0).then_some(return_cas);
            // SAFETY: on success, a buffer the host allocated for us.
            Ok((unsafe { take(return_data, return_size) }, cas))
        }
        Status::NotFound => Ok((None, None)),
        status => unexpected(status),
    }
}

pub fn set_shared_data(key: &str, value: Option<&[u8]>, cas: Option<u32>) -> Result<(), Status> {
    let (value_data, value_size) = raw_parts(value);
    // SAFETY: `key` and `value` live for the call.
    let status = Status::from_raw(unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            value_data,
            value_size,
            cas.unwrap_or(0),
        )
    });
    match status {
        Status::Ok => Ok(()),
        Status::CasMismatch => Err(Status::CasMismatch),
        status => unexpected(status),
    }
}

pub fn register_shared_queue(name: &str) -> Result<u32, Status> {
    let mut return_id: u32 = 0;
    // SAFETY: `name` lives for the call; the out-pointer is a local.
    let status = Status::from_raw(unsafe {
        proxy_register_shared_queue(name.as_ptr(), name.len(), &mut return_id)
    });
    match status {
        Status::Ok => Ok(return_id),
        status => unexpected(status),
    }
}

pub fn resolve_shared_queue(vm_id: &str, name: &str) -> Result<Option<u32>, Status> {
    let mut return_id: u32 = 0;
    // SAFETY: the strings live for the call; the out-pointer is a local.
    let status = Status::from_raw(unsafe {
        proxy_resolve_shared_queue(
            vm_id.as_ptr(),
            vm_id.len(),
            name.as_ptr(),
            name.len(),
            &mut return_id,
        )
    });
    match status {
        Status::Ok => Ok(Some(return_id)),
        Status::NotFound => Ok(None),
        status => unexpected(status),
    }
}

pub fn dequeue_shared_queue(queue_id: u32) -> Result<Option<Bytes>, Status> {
    let mut return_data: *mut u8 = null_mut();
    let mut return_size: usize = 0;
    // SAFETY: the out-pointers are locals.
    let status = Status::from_raw(unsafe {
        proxy_dequeue_shared_queue(queue_id, &mut return_data, &mut return_size)
    });
    match status {
        // SAFETY: on success, a buffer the host allocated for us.
        Status::Ok => Ok(unsafe { take(return_data, return_size) }),
        Status::Empty => Ok(None),
        Status::NotFound => Err(Status::NotFound),
        status => unexpected(status),
    }
}

pub fn enqueue_shared_queue(queue_id: u32, value: Option<&[u8]>) -> Result<(), Status> {
    let (value_data, value_size) = raw_parts(value);
    // SAFETY: `value` lives for the call.
    let status =
        Status::from_raw(unsafe { proxy_enqueue_shared_queue(queue_id, value_data, value_size) });
    match status {
        Status::Ok => Ok(()),
        Status::NotFound => Err(Status::NotFound),
        status => unexpected(status),
    }
}

pub fn reset_http_request() -> Result<(), Status> {
    // SAFETY: no pointers.
    let status = Status::from_raw(unsafe { proxy_close_stream(STREAM_HTTP_REQUEST) });
    match status {
        Status::Ok => Ok(()),
        status => unexpected(status),
    }
}

pub fn dispatch_http_call(
    upstream: &str,
    headers: Vec<(&str, &str)>,
    body: Option<&[u8]>,
    trailers: Vec<(&str, &str)>,
    timeout: Duration,
) -> Result<u32, Status> {
    let serialized_headers = serialize_map(&headers);
    let serialized_trailers = serialize_map(&trailers);
    let (body_data, body_size) = raw_parts(body);
    let mut return_token: u32 = 0;
    // SAFETY: every buffer lives for the call; the out-pointer is a local.
    let status = Status::from_raw(unsafe {
        proxy_http_call(
            upstream.as_ptr(),
            upstream.len(),
            serialized_headers.as_ptr(),
            serialized_headers.len(),
            body_data,
            body_size,
            serialized_trailers.as_ptr(),
            serialized_trailers.len(),
            millis(timeout),
            &mut return_token,
        )
    });
    match status {
        Status::Ok => Ok(return_token),
        Status::BadArgument => Err(Status::BadArgument),
        Status::InternalFailure => Err(Status::InternalFailure),
        status => unexpected(status),
    }
}

pub fn dispatch_grpc_call(
    upstream_name: &str,
    service_name: &str,
    method_name: &str,
    initial_metadata: Vec<(&str, &[u8])>,
    message: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32, Status> {
    let serialized_initial_metadata = serialize_map_bytes(&initial_metadata);
    let (message_data, message_size) = raw_parts(message);
    let mut return_callout_id: u32 = 0;
    // SAFETY: every buffer lives for the call; the out-pointer is a local.
    let status = Status::from_raw(unsafe {
        proxy_grpc_call(
            upstream_name.as_ptr(),
            upstream_name.len(),
            service_name.as_ptr(),
            service_name.len(),
            method_name.as_ptr(),
            method_name.len(),
            serialized_initial_metadata.as_ptr(),
            serialized_initial_metadata.len(),
            message_data,
            message_size,
            millis(timeout),
            &mut return_callout_id,
        )
    });
    match status {
        Status::Ok => Ok(return_callout_id),
        Status::ParseFailure => Err(Status::ParseFailure),
        Status::InternalFailure => Err(Status::InternalFailure),
        status => unexpected(status),
    }
}

pub fn open_grpc_stream(
    upstream_name: &str,
    service_name: &str,
    method_name: &str,
    initial_metadata: Vec<(&str, &[u8])>,
) -> Result<u32, Status> {
    let serialized_initial_metadata = serialize_map_bytes(&initial_metadata);
    let mut return_stream_id: u32 = 0;
    // SAFETY: every buffer lives for the call; the out-pointer is a local.
    let status = Status::from_raw(unsafe {
        proxy_grpc_stream(
            upstream_name.as_ptr(),
            upstream_name.len(),
            service_name.as_ptr(),
            service_name.len(),
            method_name.as_ptr(),
            method_name.len(),
            serialized_initial_metadata.as_ptr(),
            serialized_initial_metadata.len(),
            &mut return_stream_id,
        )
    });
    match status {
        Status::Ok => Ok(return_stream_id),
        Status::ParseFailure => Err(Status::ParseFailure),
        Status::InternalFailure => Err(Status::InternalFailure),
        status => unexpected(status),
    }
}

pub fn send_grpc_stream_message(
    token: u32,
    message: Option<&[u8]>,
    end_stream: bool,
) -> Result<(), Status> {
    let (message_data, message_size) = raw_parts(message);
    // SAFETY: `message` lives for the call.
    let status =
        Status::from_raw(unsafe { proxy_grpc_send(token, message_data, message_size, end_stream) });
    match status {
        Status::Ok => Ok(()),
        Status::BadArgument => Err(Status::BadArgument),
        Status::NotFound => Err(Status::NotFound),
        status => unexpected(status),
    }
}

pub fn cancel_grpc_call(token_id: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    let status = Status::from_raw(unsafe { proxy_grpc_cancel(token_id) });
    match status {
        Status::Ok => Ok(()),
        Status::NotFound => Err(Status::NotFound),
        status => unexpected(status),
    }
}

pub fn close_grpc_stream(token_id: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    let status = Status::from_raw(unsafe { proxy_grpc_close(token_id) });
    match status {
        Status::Ok => Ok(()),
        Status::NotFound => Err(Status::NotFound),
        status => unexpected(status),
    }
}

pub fn set_effective_context(context_id: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    let status = Status::from_raw(unsafe { proxy_set_effective_context(context_id) });
    match status {
        Status::Ok => Ok(()),
        Status::BadArgument => Err(Status::BadArgument),
        status => unexpected(status),
    }
}

pub fn call_foreign_function(
    function_name: &str,
    arguments: Option<&[u8]>,
) -> Result<Option<Bytes>, Status> {
    let (arguments_data, arguments_size) = raw_parts(arguments);
    let mut return_data: *mut u8 = null_mut();
    let mut return_size: usize = 0;
    // SAFETY: the inputs live for the call; the out-pointers are locals.
    let status = Status::from_raw(unsafe {
        proxy_call_foreign_function(
            function_name.as_ptr(),
            function_name.len(),
            arguments_data,
            arguments_size,
            &mut return_data,
            &mut return_size,
        )
    });
    match status {
        // SAFETY: on success, a buffer the host allocated for us (or none).
        Status::Ok => Ok(unsafe { take(return_data, return_size) }),
        Status::NotFound => Err(Status::NotFound),
        Status::BadArgument => Err(Status::BadArgument),
        Status::SerializationFailure => Err(Status::SerializationFailure),
        Status::InternalFailure => Err(Status::InternalFailure),
        status => unexpected(status),
    }
}

pub fn done() -> Result<(), Status> {
    // SAFETY: no pointers.
    let status = Status::from_raw(unsafe { proxy_done() });
    match status {
        Status::Ok => Ok(()),
        status => unexpected(status),
    }
}

pub fn define_metric(metric_type: MetricType, name: &str) -> Result<u32, Status> {
    let mut return_id: u32 = 0;
    // SAFETY: `name` lives for the call; the out-pointer is a local.
    let status = Status::from_raw(unsafe {
        proxy_define_metric(
            metric_type as u32,
            name.as_ptr(),
            name.len(),
            &mut return_id,
        )
    });
    match status {
        Status::Ok => Ok(return_id),
        status => unexpected(status),
    }
}

pub fn get_metric(metric_id: u32) -> Result<u64, Status> {
    let mut return_value: u64 = 0;
    // SAFETY: the out-pointer is a local.
    let status = Status::from_raw(unsafe { proxy_get_metric(metric_id, &mut return_value) });
    match status {
        Status::Ok => Ok(return_value),
        Status::NotFound => Err(Status::NotFound),
        Status::BadArgument => Err(Status::BadArgument),
        status => unexpected(status),
    }
}

pub fn record_metric(metric_id: u32, value: u64) -> Result<(), Status> {
    // SAFETY: no pointers.
    let status = Status::from_raw(unsafe { proxy_record_metric(metric_id, value) });
    match status {
        Status::Ok => Ok(()),
        Status::NotFound => Err(Status::NotFound),
        status => unexpected(status),
    }
}

pub fn increment_metric(metric_id: u32, offset: i64) -> Result<(), Status> {
    // SAFETY: no pointers.
    let status = Status::from_raw(unsafe { proxy_increment_metric(metric_id, offset) });
    match status {
        Status::Ok => Ok(()),
        Status::NotFound => Err(Status::NotFound),
        Status::BadArgument => Err(Status::BadArgument),
        status => unexpected(status),
    }
}
