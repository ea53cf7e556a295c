//! The ABI side of the test host: every host function proxy-wasm 0.2.5
//! imports (plus Higress's Redis calls) as a `#[no_mangle] extern "C"`
//! definition, and the plugin's `proxy_on_*` exports declared for the
//! driver. This is the only file of the test host with `unsafe`.
//!
//! Natively the plugin, the SDK and this host are one binary, so pointers
//! are plain process pointers and sizes are `usize`, exactly as proxy-wasm
//! declares them. Every host function:
//! - decodes its arguments first, then works on the host model in
//!   [`super::model`] (safe code) under a short registry borrow;
//! - never panics: the body runs under `catch_unwind`, and a bug answers
//!   `InternalFailure` and is recorded (`TestHost::abi_errors`);
//! - returns only statuses proxy-wasm's own `Status` enum knows;
//! - hands buffers back through the module's `proxy_on_memory_allocate`,
//!   because the SDK frees them with `Vec::from_raw_parts(ptr, len, len)`.
#![allow(unsafe_code)]
// The ABI fixes the arity of `proxy_http_call` & co.
#![allow(clippy::too_many_arguments)]

use super::model::{with_registry, Foreign, HostModel, HostResult, Status};
use super::types::CalloutState;
use std::panic::{catch_unwind, AssertUnwindSafe};

// ----- the plugin's exports ------------------------------------------------------------

extern "C-unwind" {
    fn proxy_on_memory_allocate(size: usize) -> *mut u8;
    fn proxy_on_context_create(context_id: u32, root_context_id: u32);
    fn proxy_on_vm_start(context_id: u32, vm_configuration_size: usize) -> bool;
    fn proxy_on_configure(context_id: u32, plugin_configuration_size: usize) -> bool;
    fn proxy_on_tick(context_id: u32);
    fn proxy_on_queue_ready(context_id: u32, queue_id: u32);
    fn proxy_on_request_headers(context_id: u32, num_headers: usize, end_of_stream: bool) -> u32;
    fn proxy_on_request_body(context_id: u32, body_size: usize, end_of_stream: bool) -> u32;
    fn proxy_on_request_trailers(context_id: u32, num_trailers: usize) -> u32;
    fn proxy_on_response_headers(context_id: u32, num_headers: usize, end_of_stream: bool) -> u32;
    fn proxy_on_response_body(context_id: u32, body_size: usize, end_of_stream: bool) -> u32;
    fn proxy_on_response_trailers(context_id: u32, num_trailers: usize) -> u32;
    fn proxy_on_log(context_id: u32);
    fn proxy_on_done(context_id: u32) -> bool;
    fn proxy_on_http_call_response(
        context_id: u32,
        token: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    );
    fn proxy_on_delete(context_id: u32);
    fn proxy_on_redis_call_response(context_id: u32, token: u32, status: u32, size: usize);
    fn proxy_on_grpc_receive(context_id: u32, token: u32, response_size: usize);
    fn proxy_on_grpc_close(context_id: u32, token: u32, status_code: u32);
}

// The safe wrappers the driver calls. The driver only passes context ids
// proxy-wasm's dispatcher knows (it panics, and so aborts, on others), and
// never while it holds the registry borrow.

pub(super) fn on_context_create(context_id: u32, root_context_id: u32) {
    // SAFETY: proxy-wasm's export; plain values. The driver creates each
    // context once, its root first.
    unsafe { proxy_on_context_create(context_id, root_context_id) }
}

pub(super) fn on_vm_start(context_id: u32, size: usize) -> bool {
    // SAFETY: proxy-wasm's export; `context_id` is a created root.
    unsafe { proxy_on_vm_start(context_id, size) }
}

pub(super) fn on_configure(context_id: u32, size: usize) -> bool {
    // SAFETY: proxy-wasm's export; `context_id` is a created root.
    unsafe { proxy_on_configure(context_id, size) }
}

pub(super) fn on_tick(context_id: u32) {
    // SAFETY: proxy-wasm's export; `context_id` is a created root.
    unsafe { proxy_on_tick(context_id) }
}

pub(super) fn on_queue_ready(context_id: u32, queue_id: u32) {
    // SAFETY: proxy-wasm's export; `context_id` is a created root.
    unsafe { proxy_on_queue_ready(context_id, queue_id) }
}

pub(super) fn on_request_headers(context_id: u32, num_headers: usize, end_of_stream: bool) -> u32 {
    // SAFETY: proxy-wasm's export; `context_id` is a created, live stream.
    unsafe { proxy_on_request_headers(context_id, num_headers, end_of_stream) }
}

pub(super) fn on_request_body(context_id: u32, body_size: usize, end_of_stream: bool) -> u32 {
    // SAFETY: as above.
    unsafe { proxy_on_request_body(context_id, body_size, end_of_stream) }
}

pub(super) fn on_request_trailers(context_id: u32, num_trailers: usize) -> u32 {
    // SAFETY: as above.
    unsafe { proxy_on_request_trailers(context_id, num_trailers) }
}

pub(super) fn on_response_headers(context_id: u32, num_headers: usize, end_of_stream: bool) -> u32 {
    // SAFETY: as above.
    unsafe { proxy_on_response_headers(context_id, num_headers, end_of_stream) }
}

pub(super) fn on_response_body(context_id: u32, body_size: usize, end_of_stream: bool) -> u32 {
    // SAFETY: as above.
    unsafe { proxy_on_response_body(context_id, body_size, end_of_stream) }
}

pub(super) fn on_response_trailers(context_id: u32, num_trailers: usize) -> u32 {
    // SAFETY: as above.
    unsafe { proxy_on_response_trailers(context_id, num_trailers) }
}

pub(super) fn on_log(context_id: u32) {
    // SAFETY: as above.
    unsafe { proxy_on_log(context_id) }
}

pub(super) fn on_http_call_response(
    context_id: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
    num_trailers: usize,
) {
    // SAFETY: proxy-wasm's export; `context_id` is a created root and
    // `token` one proxy-wasm registered when the plugin dispatched the call.
    unsafe { proxy_on_http_call_response(context_id, token, num_headers, body_size, num_trailers) }
}

/// Higress's Redis reply callback, exported by the SDK itself.
pub(super) fn on_redis_call_response(context_id: u32, token: u32, status: u32, size: usize) {
    // SAFETY: the SDK's export; plain values.
    unsafe { proxy_on_redis_call_response(context_id, token, status, size) }
}

/// A gRPC call's response message arrived (size in buffer type 5).
pub(super) fn on_grpc_receive(context_id: u32, token: u32, size: usize) {
    // SAFETY: the SDK's export; plain values.
    unsafe { proxy_on_grpc_receive(context_id, token, size) }
}

/// A gRPC call ended with a non-OK status.
pub(super) fn on_grpc_close(context_id: u32, token: u32, status: u32) {
    // SAFETY: the SDK's export; plain values.
    unsafe { proxy_on_grpc_close(context_id, token, status) }
}

pub(super) fn on_done(context_id: u32) -> bool {
    // SAFETY: as above (root or stream).
    unsafe { proxy_on_done(context_id) }
}

pub(super) fn on_delete(context_id: u32) {
    // SAFETY: as above; the driver never calls into a deleted context.
    unsafe { proxy_on_delete(context_id) }
}

// ----- argument decoding ----------------------------------------------------------------

/// Records an ABI misuse (or a host bug) on the current host.
fn abi_error(message: String) {
    with_registry(|r| {
        if let Some((host, _, _)) = r.current() {
            host.abi_errors.push(message);
        }
    });
}

/// Borrows `len` bytes the plugin passed.
///
/// # Safety
/// When `len > 0` and `ptr` is non-null, `ptr` must point to `len` readable
/// bytes that stay valid and unmodified while the result is used, which is
/// what every proxy-wasm caller guarantees for the duration of the call.
unsafe fn bytes<'a>(what: &str, ptr: *const u8, len: usize) -> HostResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        abi_error(format!("{what}: null pointer with size {len}"));
        return Err(Status::BadArgument);
    }
    // SAFETY: non-null, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Text the plugin passed (names, keys), lossily decoded.
///
/// # Safety
/// As [`bytes`].
unsafe fn text(what: &str, ptr: *const u8, len: usize) -> HostResult<String> {
    // SAFETY: forwarded contract.
    let raw = unsafe { bytes(what, ptr, len) }?;
    Ok(String::from_utf8_lossy(raw).into_owned())
}

/// Writes one out-value.
///
/// # Safety
/// A non-null `ptr` must be valid for a write of `T` (the plugin passes the
/// address of a local of that type).
unsafe fn put<T>(what: &str, ptr: *mut T, value: T) -> HostResult<()> {
    if ptr.is_null() {
        abi_error(format!("{what}: null out-pointer"));
        return Err(Status::BadArgument);
    }
    // SAFETY: non-null and valid for writes per the contract; unaligned
    // writes are accepted so a packed caller cannot cause UB.
    unsafe { ptr.write_unaligned(value) };
    Ok(())
}

/// Hands `data` to the plugin: allocated by the module's own
/// `proxy_on_memory_allocate(len)`, so the SDK may free it with
/// `Vec::from_raw_parts(ptr, len, len)`.
///
/// # Safety
/// As [`put`], for both out-pointers.
unsafe fn give(
    what: &str,
    data: &[u8],
    ptr_out: *mut *mut u8,
    size_out: *mut usize,
) -> HostResult<()> {
    if ptr_out.is_null() || size_out.is_null() {
        abi_error(format!("{what}: null out-pointer"));
        return Err(Status::BadArgument);
    }
    // SAFETY: proxy-wasm's allocator export: returns a leaked boxed slice of
    // exactly `data.len()` bytes (a dangling, non-null pointer for 0).
    let ptr = unsafe { proxy_on_memory_allocate(data.len()) };
    if ptr.is_null() {
        return Err(Status::InternalFailure);
    }
    if !data.is_empty() {
        // SAFETY: `ptr` owns `data.len()` writable bytes, freshly allocated,
        // so the regions cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
    }
    // SAFETY: both out-pointers checked non-null; contract as `put`.
    unsafe {
        put(what, ptr_out, ptr)?;
        put(what, size_out, data.len())
    }
}

/// Runs a host function body: never unwinds into the plugin.
fn host_call(name: &'static str, body: impl FnOnce() -> HostResult<()>) -> u32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => Status::Ok as u32,
        Ok(Err(status)) => status as u32,
        Err(_) => {
            abi_error(format!("{name} panicked: this is a test-host bug"));
            Status::InternalFailure as u32
        }
    }
}

/// Runs `f` on the host of the effective context: `(host, context, stream)`.
fn with_current<T>(
    f: impl FnOnce(&mut HostModel, u32, Option<u32>) -> HostResult<T>,
) -> HostResult<T> {
    with_registry(|r| match r.current() {
        Some((host, context, stream)) => f(host, context, stream),
        // No plugin is running on this thread (e.g. called outside a callback).
        None => Err(Status::BadArgument),
    })
    .unwrap_or(Err(Status::InternalFailure))
}

// ----- logging, time ------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32 {
    host_call("proxy_log", || {
        // SAFETY: proxy-wasm passes the message it owns for the call.
        let message = unsafe { bytes("proxy_log", message_data, message_size) }?;
        let logged = with_registry(|r| match r.current() {
            Some((host, _, _)) => host.log(level, message),
            // A line from outside any callback (e.g. the SDK's panic hook on
            // a thread without a host): nobody to keep it.
            None => Ok(()),
        });
        // Registry busy: a log from inside the host itself (a panic hook
        // while a host function runs); drop it rather than fail.
        logged.unwrap_or(Ok(()))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_get_log_level(return_level: *mut u32) -> u32 {
    host_call("proxy_get_log_level", || {
        let level = with_registry(|r| match r.current() {
            Some((host, _, _)) => host.settings.log_level.raw(),
            None => 0,
        })
        .unwrap_or(0);
        // SAFETY: the plugin passes the address of a `u32`/`LogLevel` local.
        unsafe { put("proxy_get_log_level", return_level, level) }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32 {
    host_call("proxy_get_current_time_nanoseconds", || {
        let now = with_current(|host, _, _| Ok(host.now_nanos))?;
        // SAFETY: the address of a `u64` local.
        unsafe { put("proxy_get_current_time_nanoseconds", return_time, now) }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_set_tick_period_milliseconds(period: u32) -> u32 {
    host_call("proxy_set_tick_period_milliseconds", || {
        // Envoy sets the timer of the calling context's root.
        with_current(|host, _, _| {
            host.set_tick_period(period);
            Ok(())
        })
    })
}

// ----- buffers ------------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn proxy_get_buffer_bytes(
    buffer_type: u32,
    start: usize,
    max_size: usize,
    return_buffer_data: *mut *mut u8,
    return_buffer_size: *mut usize,
) -> u32 {
    host_call("proxy_get_buffer_bytes", || {
        let data =
            with_current(|host, _, stream| host.get_buffer(stream, buffer_type, start, max_size))?;
        match data {
            // SAFETY: out-pointers of a `*mut u8` and a `usize` local.
            Some(data) => unsafe {
                give(
                    "proxy_get_buffer_bytes",
                    &data,
                    return_buffer_data,
                    return_buffer_size,
                )
            },
            // Nothing to return: cpp-host leaves the out-pointers untouched.
            None => Ok(()),
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_set_buffer_bytes(
    buffer_type: u32,
    start: usize,
    size: usize,
    buffer_data: *const u8,
    buffer_size: usize,
) -> u32 {
    host_call("proxy_set_buffer_bytes", || {
        // SAFETY: the plugin's data, valid for the call.
        let data = unsafe { bytes("proxy_set_buffer_bytes", buffer_data, buffer_size) }?;
        with_current(|host, _, stream| host.set_buffer(stream, buffer_type, start, size, data))
    })
}

// ----- header maps --------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn proxy_get_header_map_pairs(
    map_type: u32,
    return_map_data: *mut *mut u8,
    return_map_size: *mut usize,
) -> u32 {
    host_call("proxy_get_header_map_pairs", || {
        let data = with_current(|host, _, stream| host.header_pairs(stream, map_type))?;
        // SAFETY: out-pointers of locals.
        unsafe {
            give(
                "proxy_get_header_map_pairs",
                &data,
                return_map_data,
                return_map_size,
            )
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_set_header_map_pairs(
    map_type: u32,
    map_data: *const u8,
    map_size: usize,
) -> u32 {
    host_call("proxy_set_header_map_pairs", || {
        // SAFETY: the plugin's serialized map, valid for the call.
        let data = unsafe { bytes("proxy_set_header_map_pairs", map_data, map_size) }?;
        with_current(|host, _, stream| host.set_header_pairs(stream, map_type, data))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_get_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> u32 {
    host_call("proxy_get_header_map_value", || {
        // SAFETY: the plugin's key, valid for the call.
        let key = unsafe { text("proxy_get_header_map_value", key_data, key_size) }?;
        let value = with_current(|host, _, stream| host.header_value(stream, map_type, &key))?;
        // SAFETY: out-pointers of locals.
        unsafe {
            give(
                "proxy_get_header_map_value",
                &value,
                return_value_data,
                return_value_size,
            )
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_replace_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> u32 {
    host_call("proxy_replace_header_map_value", || {
        // SAFETY: the plugin's key and value, valid for the call.
        let (key, value) = unsafe {
            (
                text("proxy_replace_header_map_value", key_data, key_size)?,
                bytes("proxy_replace_header_map_value", value_data, value_size)?,
            )
        };
        with_current(|host, _, stream| host.replace_header(stream, map_type, &key, value))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_remove_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
) -> u32 {
    host_call("proxy_remove_header_map_value", || {
        // SAFETY: the plugin's key, valid for the call.
        let key = unsafe { text("proxy_remove_header_map_value", key_data, key_size) }?;
        with_current(|host, _, stream| host.remove_header(stream, map_type, &key))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_add_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> u32 {
    host_call("proxy_add_header_map_value", || {
        // SAFETY: the plugin's key and value, valid for the call.
        let (key, value) = unsafe {
            (
                text("proxy_add_header_map_value", key_data, key_size)?,
                bytes("proxy_add_header_map_value", value_data, value_size)?,
            )
        };
        with_current(|host, _, stream| host.add_header(stream, map_type, &key, value))
    })
}

// ----- properties ---------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn proxy_get_property(
    path_data: *const u8,
    path_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> u32 {
    host_call("proxy_get_property", || {
        // SAFETY: the plugin's serialized path, valid for the call.
        let raw = unsafe { bytes("proxy_get_property", path_data, path_size) }?;
        let path: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        let value =
            with_current(|host, _, stream| host.property(stream, &path).ok_or(Status::NotFound))?;
        // SAFETY: out-pointers of locals.
        unsafe {
            give(
                "proxy_get_property",
                &value,
                return_value_data,
                return_value_size,
            )
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_set_property(
    path_data: *const u8,
    path_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> u32 {
    host_call("proxy_set_property", || {
        // SAFETY: the plugin's path and value, valid for the call.
        let (path, value) = unsafe {
            (
                bytes("proxy_set_property", path_data, path_size)?,
                bytes("proxy_set_property", value_data, value_size)?,
            )
        };
        with_current(|host, _, stream| host.set_property(stream, path, value))
    })
}

// ----- shared data and queues -------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn proxy_get_shared_data(
    key_data: *const u8,
    key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
    return_cas: *mut u32,
) -> u32 {
    host_call("proxy_get_shared_data", || {
        // SAFETY: the plugin's key, valid for the call.
        let key = unsafe { text("proxy_get_shared_data", key_data, key_size) }?;
        let (value, cas) = with_current(|host, _, _| host.get_shared_data(&key))?;
        // SAFETY: out-pointers of locals.
        unsafe {
            give(
                "proxy_get_shared_data",
                &value,
                return_value_data,
                return_value_size,
            )?;
            put("proxy_get_shared_data", return_cas, cas)
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_set_shared_data(
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
    cas: u32,
) -> u32 {
    host_call("proxy_set_shared_data", || {
        // SAFETY: the plugin's key and value, valid for the call.
        let (key, value) = unsafe {
            (
                text("proxy_set_shared_data", key_data, key_size)?,
                bytes("proxy_set_shared_data", value_data, value_size)?,
            )
        };
        with_current(|host, _, _| host.set_shared_data(&key, value, cas))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_register_shared_queue(
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> u32 {
    host_call("proxy_register_shared_queue", || {
        // SAFETY: the plugin's name, valid for the call.
        let name = unsafe { text("proxy_register_shared_queue", name_data, name_size) }?;
        let id = with_current(|host, context, _| Ok(host.register_queue(context, &name)))?;
        // SAFETY: out-pointer of a local.
        unsafe { put("proxy_register_shared_queue", return_id, id) }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_resolve_shared_queue(
    vm_id_data: *const u8,
    vm_id_size: usize,
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> u32 {
    host_call("proxy_resolve_shared_queue", || {
        // SAFETY: the plugin's strings, valid for the call.
        let (vm_id, name) = unsafe {
            (
                text("proxy_resolve_shared_queue", vm_id_data, vm_id_size)?,
                text("proxy_resolve_shared_queue", name_data, name_size)?,
            )
        };
        let id = with_current(|host, _, _| host.resolve_queue(&vm_id, &name))?;
        // SAFETY: out-pointer of a local.
        unsafe { put("proxy_resolve_shared_queue", return_id, id) }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_dequeue_shared_queue(
    queue_id: u32,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> u32 {
    host_call("proxy_dequeue_shared_queue", || {
        let value = with_current(|host, _, _| host.dequeue(queue_id))?;
        // SAFETY: out-pointers of locals.
        unsafe {
            give(
                "proxy_dequeue_shared_queue",
                &value,
                return_value_data,
                return_value_size,
            )
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_enqueue_shared_queue(
    queue_id: u32,
    value_data: *const u8,
    value_size: usize,
) -> u32 {
    host_call("proxy_enqueue_shared_queue", || {
        // SAFETY: the plugin's value, valid for the call.
        let value = unsafe { bytes("proxy_enqueue_shared_queue", value_data, value_size) }?;
        with_current(|host, _, _| host.enqueue(queue_id, value))
    })
}

// ----- stream flow ------------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn proxy_continue_stream(stream_type: u32) -> u32 {
    host_call("proxy_continue_stream", || {
        with_current(|host, _, stream| host.continue_stream(stream, stream_type))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_close_stream(stream_type: u32) -> u32 {
    host_call("proxy_close_stream", || {
        with_current(|host, _, stream| host.close_stream(stream, stream_type))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_send_local_response(
    status_code: u32,
    status_code_details_data: *const u8,
    status_code_details_size: usize,
    body_data: *const u8,
    body_size: usize,
    headers_data: *const u8,
    headers_size: usize,
    grpc_status: i32,
) -> u32 {
    host_call("proxy_send_local_response", || {
        // SAFETY: the plugin's buffers, valid for the call.
        let (details, body, headers) = unsafe {
            (
                bytes(
                    "proxy_send_local_response",
                    status_code_details_data,
                    status_code_details_size,
                )?,
                bytes("proxy_send_local_response", body_data, body_size)?,
                bytes("proxy_send_local_response", headers_data, headers_size)?,
            )
        };
        with_current(|host, _, stream| {
            host.send_local_response(stream, status_code, details, body, headers, grpc_status)
        })
    })
}

// ----- callouts -----------------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn proxy_http_call(
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
) -> u32 {
    host_call("proxy_http_call", || {
        // SAFETY: the plugin's buffers, valid for the call.
        let (upstream, headers, body, trailers) = unsafe {
            (
                bytes("proxy_http_call", upstream_data, upstream_size)?,
                bytes("proxy_http_call", headers_data, headers_size)?,
                bytes("proxy_http_call", body_data, body_size)?,
                bytes("proxy_http_call", trailers_data, trailers_size)?,
            )
        };
        let token = with_current(|host, context, _| {
            host.http_call(context, upstream, headers, body, trailers, timeout)
        })?;
        // SAFETY: out-pointer of a local.
        unsafe { put("proxy_http_call", return_token, token) }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_grpc_call(
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
) -> u32 {
    host_call("proxy_grpc_call", || {
        // SAFETY: the plugin's buffers, valid for the call.
        let (upstream, service, method, metadata, message) = unsafe {
            (
                bytes("proxy_grpc_call", upstream_data, upstream_size)?,
                bytes("proxy_grpc_call", service_name_data, service_name_size)?,
                bytes("proxy_grpc_call", method_name_data, method_name_size)?,
                bytes(
                    "proxy_grpc_call",
                    initial_metadata_data,
                    initial_metadata_size,
                )?,
                bytes("proxy_grpc_call", message_data_data, message_data_size)?,
            )
        };
        let token = with_current(|host, context, _| {
            host.grpc_call(
                context, upstream, service, method, metadata, message, timeout, false,
            )
        })?;
        // SAFETY: out-pointer of a local.
        unsafe { put("proxy_grpc_call", return_callout_id, token) }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_grpc_stream(
    upstream_data: *const u8,
    upstream_size: usize,
    service_name_data: *const u8,
    service_name_size: usize,
    method_name_data: *const u8,
    method_name_size: usize,
    initial_metadata_data: *const u8,
    initial_metadata_size: usize,
    return_stream_id: *mut u32,
) -> u32 {
    host_call("proxy_grpc_stream", || {
        // SAFETY: the plugin's buffers, valid for the call.
        let (upstream, service, method, metadata) = unsafe {
            (
                bytes("proxy_grpc_stream", upstream_data, upstream_size)?,
                bytes("proxy_grpc_stream", service_name_data, service_name_size)?,
                bytes("proxy_grpc_stream", method_name_data, method_name_size)?,
                bytes(
                    "proxy_grpc_stream",
                    initial_metadata_data,
                    initial_metadata_size,
                )?,
            )
        };
        let token = with_current(|host, context, _| {
            host.grpc_call(context, upstream, service, method, metadata, &[], 0, true)
        })?;
        // SAFETY: out-pointer of a local.
        unsafe { put("proxy_grpc_stream", return_stream_id, token) }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_grpc_send(
    token: u32,
    message_ptr: *const u8,
    message_len: usize,
    end_stream: bool,
) -> u32 {
    host_call("proxy_grpc_send", || {
        // SAFETY: the plugin's message, valid for the call.
        let message = unsafe { bytes("proxy_grpc_send", message_ptr, message_len) }?;
        with_current(|host, _, _| {
            host.grpc_send(token, message)?;
            if end_stream {
                host.grpc_end(token, CalloutState::Closed)?;
            }
            Ok(())
        })
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_grpc_cancel(token_id: u32) -> u32 {
    host_call("proxy_grpc_cancel", || {
        with_current(|host, _, _| host.grpc_end(token_id, CalloutState::Cancelled))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_grpc_close(token_id: u32) -> u32 {
    host_call("proxy_grpc_close", || {
        with_current(|host, _, _| host.grpc_end(token_id, CalloutState::Closed))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_get_status(
    return_code: *mut u32,
    return_message_data: *mut *mut u8,
    return_message_size: *mut usize,
) -> u32 {
    host_call("proxy_get_status", || {
        let (code, message) = with_current(|host, _, _| Ok(host.status.clone()))?;
        // SAFETY: out-pointers of locals.
        unsafe {
            put("proxy_get_status", return_code, code)?;
            give(
                "proxy_get_status",
                &message,
                return_message_data,
                return_message_size,
            )
        }
    })
}

/// Higress: initializes the Redis client of `service` (on the root).
#[no_mangle]
unsafe extern "C" fn proxy_redis_init(
    service_ptr: *const u8,
    service_size: usize,
    username_ptr: *const u8,
    username_size: usize,
    password_ptr: *const u8,
    password_size: usize,
    timeout_ms: u32,
) -> u32 {
    host_call("proxy_redis_init", || {
        // SAFETY: the plugin's strings, valid for the call.
        let (service, username, password) = unsafe {
            (
                bytes("proxy_redis_init", service_ptr, service_size)?,
                bytes("proxy_redis_init", username_ptr, username_size)?,
                bytes("proxy_redis_init", password_ptr, password_size)?,
            )
        };
        with_current(|host, _, _| host.redis_init(service, username, password, timeout_ms))
    })
}

/// Higress: sends a RESP command to `service`; the reply arrives later
/// through `proxy_on_redis_call_response`.
#[no_mangle]
unsafe extern "C" fn proxy_redis_call(
    service_ptr: *const u8,
    service_size: usize,
    query_ptr: *const u8,
    query_size: usize,
    token_ptr: *mut u32,
) -> u32 {
    host_call("proxy_redis_call", || {
        // SAFETY: the plugin's buffers, valid for the call.
        let (service, query) = unsafe {
            (
                bytes("proxy_redis_call", service_ptr, service_size)?,
                bytes("proxy_redis_call", query_ptr, query_size)?,
            )
        };
        let token = with_current(|host, context, _| host.redis_call(context, service, query))?;
        // SAFETY: out-pointer of a local.
        unsafe { put("proxy_redis_call", token_ptr, token) }
    })
}

// ----- contexts, foreign functions ------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn proxy_set_effective_context(context_id: u32) -> u32 {
    host_call("proxy_set_effective_context", || {
        with_registry(|r| {
            // Only contexts of the running plugin's host, still alive.
            let current_root = r.owners.get(&r.effective).copied();
            let target_root = r.owners.get(&context_id).copied();
            let alive = target_root
                .and_then(|root| r.hosts.get(&root))
                .is_some_and(|h| {
                    target_root == Some(context_id)
                        || h.streams.get(&context_id).is_some_and(|s| !s.deleted)
                });
            if alive && (current_root.is_none() || current_root == target_root) {
                r.effective = context_id;
                Ok(())
            } else {
                Err(Status::BadArgument)
            }
        })
        .unwrap_or(Err(Status::InternalFailure))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_call_foreign_function(
    function_name_data: *const u8,
    function_name_size: usize,
    arguments_data: *const u8,
    arguments_size: usize,
    results_data: *mut *mut u8,
    results_size: *mut usize,
) -> u32 {
    host_call("proxy_call_foreign_function", || {
        // SAFETY: the plugin's buffers, valid for the call.
        let (name, args) = unsafe {
            (
                text(
                    "proxy_call_foreign_function",
                    function_name_data,
                    function_name_size,
                )?,
                bytes(
                    "proxy_call_foreign_function",
                    arguments_data,
                    arguments_size,
                )?,
            )
        };
        let result = match with_current(|host, _, _| host.foreign(&name, args))? {
            // The test's function runs outside the registry borrow; a panic
            // in it is a test bug, answered like a host failure.
            Foreign::User(f) => match catch_unwind(AssertUnwindSafe(|| f(args))) {
                Ok(result) => result,
                Err(_) => {
                    abi_error(format!("foreign function {name} panicked"));
                    return Err(Status::InternalFailure);
                }
            },
            Foreign::Builtin(result) => result,
        };
        match result {
            // SAFETY: out-pointers of locals.
            Some(data) => unsafe {
                give(
                    "proxy_call_foreign_function",
                    &data,
                    results_data,
                    results_size,
                )
            },
            None => Ok(()),
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_done() -> u32 {
    host_call("proxy_done", || {
        with_current(|host, _, _| {
            host.done_calls += 1;
            Ok(())
        })
    })
}

// ----- Higress: upstream selection, injected data -------------------------------------------------

/// Higress: the route's cluster hosts as `(address, metadata JSON)` pairs.
#[no_mangle]
unsafe extern "C" fn proxy_get_upstream_hosts(
    return_data: *mut *mut u8,
    return_size: *mut usize,
) -> u32 {
    host_call("proxy_get_upstream_hosts", || {
        let hosts = with_current(|host, _, stream| host.upstream_hosts(stream))?;
        // SAFETY: out-pointers of locals.
        unsafe { give("proxy_get_upstream_hosts", &hosts, return_data, return_size) }
    })
}

/// Higress: sends the current request to one upstream host.
#[no_mangle]
unsafe extern "C" fn proxy_set_upstream_override_host(
    address_data: *const u8,
    address_size: usize,
) -> u32 {
    host_call("proxy_set_upstream_override_host", || {
        // SAFETY: the plugin's address, valid for the call.
        let address = unsafe {
            bytes(
                "proxy_set_upstream_override_host",
                address_data,
                address_size,
            )
        }?;
        with_current(|host, _, stream| host.set_override_host(stream, address))
    })
}

/// Higress: injects response data into the filter chain.
#[no_mangle]
unsafe extern "C" fn proxy_inject_encoded_data_to_filter_chain(
    body_data: *const u8,
    body_size: usize,
    end_stream: u32,
) -> u32 {
    host_call("proxy_inject_encoded_data_to_filter_chain", || {
        // SAFETY: the plugin's data, valid for the call.
        let body = unsafe {
            bytes(
                "proxy_inject_encoded_data_to_filter_chain",
                body_data,
                body_size,
            )
        }?;
        with_current(|host, _, stream| host.inject_encoded(stream, body, end_stream != 0))
    })
}

// ----- metrics ------------------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn proxy_define_metric(
    metric_type: u32,
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> u32 {
    host_call("proxy_define_metric", || {
        // SAFETY: the plugin's name, valid for the call.
        let name = unsafe { text("proxy_define_metric", name_data, name_size) }?;
        let id = with_current(|host, _, _| host.define_metric(metric_type, &name))?;
        // SAFETY: out-pointer of a local.
        unsafe { put("proxy_define_metric", return_id, id) }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> u32 {
    host_call("proxy_get_metric", || {
        let value = with_current(|host, _, _| host.get_metric(metric_id))?;
        // SAFETY: out-pointer of a local.
        unsafe { put("proxy_get_metric", return_value, value) }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_record_metric(metric_id: u32, value: u64) -> u32 {
    host_call("proxy_record_metric", || {
        with_current(|host, _, _| host.record_metric(metric_id, value))
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32 {
    host_call("proxy_increment_metric", || {
        with_current(|host, _, _| host.increment_metric(metric_id, offset))
    })
}
