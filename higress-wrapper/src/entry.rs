//! Where the host enters: every `proxy_on_*` export of the module, each a few
//! lines that find the context and hand over to the driver (`root`,
//! `stream`) or to the runtime (`callout`, `task`).
//!
//! The SDK keeps its own table of contexts instead of proxy-wasm's
//! dispatcher: a context id maps to a plugin root or to one request's
//! stream. A callback for an id the table does not know (the host's bug, or
//! a callback after a panic) is ignored, never a panic. Callout replies
//! enter once, here, whatever context the host names: the reply is read
//! while the host's buffers are valid and routed by its token.
//!
//! The exports use the `C-unwind` ABI: on wasm it is the C ABI (a panic
//! aborts the module), and natively a test host can catch a panic in plugin
//! code on its side of the call.
//!
//! The module's own entry, `_initialize`, and its ABI 0.2.100 export come
//! from [`plugin_entry!`](crate::plugin_entry) in the plugin's crate (which
//! `set_ctx!` calls); the build tool puts 0.2.100 before this module's
//! 0.2.1 in the export section, as Higress needs (see `plugin_entry!`).
//!
//! Layering: entry, the top. It imports the driver, the runtime and `host`.
#![allow(unsafe_code)]
#![allow(unreachable_pub)]

use crate::callout::{self, Reply};
use crate::host::{self, BufferType, MapType};
use crate::root::RootDriver;
use crate::stream::{Action, StreamDriver};
use crate::task::{self, Owner};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

type RootFactory = fn(u32) -> Rc<dyn RootDriver>;

/// A live HTTP context: its id and driver.
type StreamEntry = (u32, Rc<dyn StreamDriver>);

thread_local! {
    /// Creates the plugin's root contexts; set once by `_initialize`.
    static FACTORY: Cell<Option<RootFactory>> = const { Cell::new(None) };
    /// Root contexts (one per plugin configuration on this VM): a handful.
    static ROOTS: RefCell<Vec<(u32, Rc<dyn RootDriver>)>> = const { RefCell::new(Vec::new()) };
    /// HTTP contexts, sorted by id (the host hands out increasing ids, so
    /// an insert is a push and a lookup a binary search).
    static STREAMS: RefCell<Vec<StreamEntry>> = const { RefCell::new(Vec::new()) };
}

/// Registers plugin `P`; called from the module's `_initialize`, where only
/// logging host calls are allowed, so it calls none.
pub(crate) fn register<P: crate::HttpPlugin>() {
    crate::log::install();
    FACTORY.with(|f| f.set(Some(crate::root::new_root::<P>)));
}

fn root(id: u32) -> Option<Rc<dyn RootDriver>> {
    ROOTS.with(|r| {
        r.try_borrow()
            .ok()?
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, root)| Rc::clone(root))
    })
}

fn stream(id: u32) -> Option<Rc<dyn StreamDriver>> {
    task::enter(Owner::Stream(id));
    STREAMS.with(|s| {
        let s = s.try_borrow().ok()?;
        let at = s.binary_search_by_key(&id, |(i, _)| *i).ok()?;
        s.get(at).map(|(_, stream)| Rc::clone(stream))
    })
}

fn entered_root(id: u32) -> Option<Rc<dyn RootDriver>> {
    task::enter(Owner::Root(id));
    root(id)
}

/// What a stream callback answers for a context the table does not know.
const UNKNOWN: u32 = Action::Continue as u32;

/// Stock Envoy reads proxy-wasm ABI 0.2.1 here; Higress reads the plugin
/// crate's `proxy_abi_version_0_2_100`, which the build tool puts first
/// (see [`crate::plugin_entry`]).
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host allocates the buffers it hands the plugin here; the SDK takes
/// them back in `host` (a boxed slice whose capacity equals its length).
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    // Uninitialized: the host overwrites every byte it asked for.
    Box::into_raw(Box::<[u8]>::new_uninit_slice(size)).cast::<u8>()
}

// ----- lifecycle -----------------------------------------------------------

/// A context is created: a root (`root_context_id == 0`) or a request.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
    if root_context_id == 0 {
        task::enter(Owner::Root(context_id));
        let Some(factory) = FACTORY.with(Cell::get) else {
            return;
        };
        let root = factory(context_id);
        ROOTS.with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                r.retain(|(i, _)| *i != context_id);
                r.push((context_id, root));
            }
        });
        return;
    }
    let Some(parent) = entered_root(root_context_id) else {
        return;
    };
    task::enter(Owner::Stream(context_id));
    let driver = parent.create_stream(context_id);
    STREAMS.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            match s.binary_search_by_key(&context_id, |(i, _)| *i) {
                Ok(at) => {
                    if let Some(slot) = s.get_mut(at) {
                        slot.1 = driver;
                    }
                }
                Err(at) => s.insert(at, (context_id, driver)),
            }
        }
    });
}

/// The VM started (per worker); nothing to do until configure.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_vm_start(context_id: u32, _vm_configuration_size: usize) -> bool {
    task::enter(Owner::Root(context_id));
    true
}

/// The plugin configuration arrived (start or reload).
#[no_mangle]
pub extern "C-unwind" fn proxy_on_configure(context_id: u32, configuration_size: usize) -> bool {
    entered_root(context_id).is_some_and(|root| root.configure(configuration_size))
}

/// The root's tick period elapsed.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_tick(context_id: u32) {
    if let Some(root) = entered_root(context_id) {
        root.tick();
    }
}

/// A shared queue the plugin registered has data.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_queue_ready(context_id: u32, queue_id: u32) {
    if let Some(root) = entered_root(context_id) {
        root.queue_ready(queue_id);
    }
}

/// The host is done with a context. A root stops its work; a request's
/// stream was already told in `proxy_on_log`.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_done(context_id: u32) -> bool {
    if let Some(root) = entered_root(context_id) {
        root.done();
    }
    true
}

/// The host deleted a context: it leaves the table (and is dropped outside
/// the table's borrow).
#[no_mangle]
pub extern "C-unwind" fn proxy_on_delete(context_id: u32) {
    let removed = STREAMS.with(|s| {
        let mut s = s.try_borrow_mut().ok()?;
        let at = s.binary_search_by_key(&context_id, |(i, _)| *i).ok()?;
        Some(s.remove(at).1)
    });
    if let Some(stream) = removed {
        task::enter(Owner::Stream(context_id));
        stream.delete();
        return;
    }
    let root = ROOTS.with(|r| {
        let mut r = r.try_borrow_mut().ok()?;
        let at = r.iter().position(|(i, _)| *i == context_id)?;
        Some(r.swap_remove(at).1)
    });
    if let Some(root) = root {
        task::enter(Owner::Root(context_id));
        root.done();
    }
}

// ----- a request -----------------------------------------------------------

/// Polls work a hook started but did not wait for (`spawn_detached` from a
/// body hook: a charge in Redis once the response ends), before the host
/// gets the hook's action. Tasks a hook waits on were polled already.
fn after_hook(action: u32) -> u32 {
    task::run_ready();
    action
}

/// Request headers arrived.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_request_headers(
    context_id: u32,
    _num_headers: usize,
    end_of_stream: bool,
) -> u32 {
    after_hook(stream(context_id).map_or(UNKNOWN, |s| s.request_headers(end_of_stream) as u32))
}

/// A request body chunk arrived (`body_size` is all Envoy buffered so far).
#[no_mangle]
pub extern "C-unwind" fn proxy_on_request_body(
    context_id: u32,
    body_size: usize,
    end_of_stream: bool,
) -> u32 {
    after_hook(
        stream(context_id).map_or(UNKNOWN, |s| s.request_body(body_size, end_of_stream) as u32),
    )
}

/// Request trailers arrived.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_request_trailers(context_id: u32, _num_trailers: usize) -> u32 {
    after_hook(stream(context_id).map_or(UNKNOWN, |s| s.request_trailers() as u32))
}

/// Response headers arrived.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_response_headers(
    context_id: u32,
    _num_headers: usize,
    end_of_stream: bool,
) -> u32 {
    after_hook(stream(context_id).map_or(UNKNOWN, |s| s.response_headers(end_of_stream) as u32))
}

/// A response body chunk arrived.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_response_body(
    context_id: u32,
    body_size: usize,
    end_of_stream: bool,
) -> u32 {
    after_hook(stream(context_id).map_or(UNKNOWN, |s| {
        s.response_body(body_size, end_of_stream) as u32
    }))
}

/// Response trailers arrived.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_response_trailers(context_id: u32, _num_trailers: usize) -> u32 {
    after_hook(stream(context_id).map_or(UNKNOWN, |s| s.response_trailers() as u32))
}

/// The request is done (access-log time): stream done runs.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_log(context_id: u32) {
    if let Some(s) = stream(context_id) {
        s.log();
    }
}

// ----- callout replies: read now, routed by token ----------------------------

/// An HTTP call's reply (on the context that dispatched it).
#[no_mangle]
pub extern "C-unwind" fn proxy_on_http_call_response(
    context_id: u32,
    token: u32,
    _num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    enter_any(context_id);
    if !callout::is_pending(token) {
        return;
    }
    let headers = host::get_header_pairs(MapType::HttpCallResponseHeaders).unwrap_or_default();
    let body = if body_size == 0 {
        Vec::new()
    } else {
        host::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    callout::deliver(token, Reply::Http { headers, body });
    task::run_ready();
}

/// Higress: a Redis call's reply, on the root context, readable from
/// buffer 9 during this callback.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_redis_call_response(
    context_id: u32,
    token: u32,
    status: u32,
    response_size: usize,
) {
    enter_any(context_id);
    if !callout::is_pending(token) {
        return;
    }
    let data = if status == 0 && response_size > 0 {
        host::get_buffer(BufferType::RedisCallResponse, 0, response_size)
            .ok()
            .flatten()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    callout::deliver(token, Reply::Redis { status, data });
    task::run_ready();
}

/// A unary gRPC call's response message: its size in buffer type 5,
/// readable during this callback.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_grpc_receive(context_id: u32, token: u32, response_size: usize) {
    enter_any(context_id);
    let stream = callout::is_stream(token);
    if !stream && !callout::is_pending(token) {
        return;
    }
    let message = if response_size == 0 {
        Vec::new()
    } else {
        host::get_buffer(BufferType::GrpcReceiveBuffer, 0, response_size)
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    if stream {
        callout::stream_event(token, false, |i| i.messages.push_back(message));
        task::run_ready();
        return;
    }
    let reply = Reply::Grpc {
        status: 0,
        message,
        status_message: String::new(),
    };
    callout::deliver(token, reply);
    task::run_ready();
}

/// A gRPC call ended without a response (non-OK status, timeout, reset);
/// the host's status message is read now.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_grpc_close(context_id: u32, token: u32, status_code: u32) {
    enter_any(context_id);
    let stream = callout::is_stream(token);
    if !stream && !callout::is_pending(token) {
        return;
    }
    let status_message = host::get_status()
        .map(|(_, m)| String::from_utf8_lossy(&m).into_owned())
        .unwrap_or_default();
    if stream {
        // A stream's end: status 0 is a clean end.
        callout::stream_event(token, true, |i| {
            i.closed = Some((status_code, status_message));
        });
        task::run_ready();
        return;
    }
    // A close with status 0 and no message is still the end of the call.
    let reply = Reply::Grpc {
        status: if status_code == 0 { 2 } else { status_code },
        message: Vec::new(),
        status_message,
    };
    callout::deliver(token, reply);
    task::run_ready();
}

/// A gRPC stream's initial metadata, readable during this callback.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_grpc_receive_initial_metadata(
    context_id: u32,
    token: u32,
    _headers: u32,
) {
    grpc_metadata(context_id, token, MapType::GrpcReceiveInitialMetadata);
}

/// A gRPC stream's trailing metadata, readable during this callback.
#[no_mangle]
pub extern "C-unwind" fn proxy_on_grpc_receive_trailing_metadata(
    context_id: u32,
    token: u32,
    _trailers: u32,
) {
    grpc_metadata(context_id, token, MapType::GrpcReceiveTrailingMetadata);
}

fn grpc_metadata(context_id: u32, token: u32, map: MapType) {
    enter_any(context_id);
    if !callout::is_stream(token) {
        return;
    }
    let pairs = host::get_header_pairs(map).unwrap_or_default();
    callout::stream_event(token, false, |i| match map {
        MapType::GrpcReceiveInitialMetadata => i.initial_metadata = pairs,
        _ => i.trailing_metadata = pairs,
    });
}

/// Records the context a reply arrived on, root or stream.
fn enter_any(context_id: u32) {
    let is_stream = STREAMS.with(|s| {
        s.try_borrow()
            .is_ok_and(|s| s.binary_search_by_key(&context_id, |(i, _)| *i).is_ok())
    });
    task::enter(if is_stream {
        Owner::Stream(context_id)
    } else {
        Owner::Root(context_id)
    });
}
