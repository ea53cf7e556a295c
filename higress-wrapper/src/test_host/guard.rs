//! Panics in plugin code, natively.
//!
//! On wasm a panic aborts the VM. Natively, unwinding out of proxy-wasm's
//! `extern "C"` exports would abort the whole test binary, so under the
//! test host the SDK's root and HTTP contexts are wrapped (see
//! `root::register`): every callback the dispatcher makes runs under
//! `catch_unwind`, the payload is parked here, the callback returns a
//! harmless value, and the driver — once back outside the export — marks
//! the VM failed (as Envoy does after a trap) and resumes the panic in the
//! test, where `std::panic::catch_unwind` can observe it.

use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType};
use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

type Payload = Box<dyn Any + Send>;

thread_local! {
    static PANIC: RefCell<Option<Payload>> = const { RefCell::new(None) };
}

/// Runs plugin code; on a panic parks the payload and returns `fallback`.
fn catch<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let _ = PANIC.try_with(|slot| {
                if let Ok(mut slot) = slot.try_borrow_mut() {
                    // Keep the first panic: later ones are consequences.
                    slot.get_or_insert(payload);
                }
            });
            fallback
        }
    }
}

/// Runs an SDK export that proxy-wasm's dispatcher does not wrap (Higress's
/// `proxy_on_redis_call_response`) so that a panic inside it is parked
/// like one in a context callback, never unwinding through `extern "C"`.
pub(crate) fn guard_export(f: impl FnOnce()) {
    catch((), f);
}

/// The panic a callback parked, if any.
pub(super) fn take_panic() -> Option<Payload> {
    PANIC
        .try_with(|slot| slot.try_borrow_mut().ok().and_then(|mut s| s.take()))
        .ok()
        .flatten()
}

/// Wraps the SDK's root context so its callbacks cannot unwind into the
/// dispatcher's `extern "C"` frames.
pub(crate) fn guard_root(inner: Box<dyn RootContext>) -> Box<dyn RootContext> {
    Box::new(GuardedRoot(inner))
}

struct GuardedRoot(Box<dyn RootContext>);
struct GuardedHttp(Box<dyn HttpContext>);
/// Stands in for an HTTP context whose creation panicked (the dispatcher
/// aborts if `create_http_context` returns `None`); the VM is failed, so
/// the host never calls it.
struct FailedHttp;

/// The `Context` callbacks proxy-wasm's dispatcher delivers; the other
/// trait methods are helpers the dispatcher never calls.
macro_rules! context_callbacks {
    () => {
        fn on_http_call_response(
            &mut self,
            token_id: u32,
            num_headers: usize,
            body_size: usize,
            num_trailers: usize,
        ) {
            catch((), || {
                self.0
                    .on_http_call_response(token_id, num_headers, body_size, num_trailers)
            })
        }
        fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
            catch((), || {
                self.0
                    .on_grpc_call_response(token_id, status_code, response_size)
            })
        }
        fn on_grpc_stream_initial_metadata(&mut self, token_id: u32, num_elements: u32) {
            catch((), || {
                self.0
                    .on_grpc_stream_initial_metadata(token_id, num_elements)
            })
        }
        fn on_grpc_stream_message(&mut self, token_id: u32, message_size: usize) {
            catch((), || self.0.on_grpc_stream_message(token_id, message_size))
        }
        fn on_grpc_stream_trailing_metadata(&mut self, token_id: u32, num_elements: u32) {
            catch((), || {
                self.0
                    .on_grpc_stream_trailing_metadata(token_id, num_elements)
            })
        }
        fn on_grpc_stream_close(&mut self, token_id: u32, status_code: u32) {
            catch((), || self.0.on_grpc_stream_close(token_id, status_code))
        }
        fn on_foreign_function(&mut self, function_id: u32, arguments_size: usize) {
            catch((), || {
                self.0.on_foreign_function(function_id, arguments_size)
            })
        }
        fn on_done(&mut self) -> bool {
            catch(true, || self.0.on_done())
        }
    };
}

impl Context for GuardedRoot {
    context_callbacks!();
}

impl RootContext for GuardedRoot {
    fn on_vm_start(&mut self, vm_configuration_size: usize) -> bool {
        catch(false, || self.0.on_vm_start(vm_configuration_size))
    }
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        catch(false, || self.0.on_configure(plugin_configuration_size))
    }
    fn on_tick(&mut self) {
        catch((), || self.0.on_tick())
    }
    fn on_queue_ready(&mut self, queue_id: u32) {
        catch((), || self.0.on_queue_ready(queue_id))
    }
    fn on_log(&mut self) {
        catch((), || self.0.on_log())
    }
    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let created = catch(Err(()), || Ok(self.0.create_http_context(context_id)));
        match created {
            Ok(Some(inner)) => Some(Box::new(GuardedHttp(inner))),
            Ok(None) => None,
            Err(()) => Some(Box::new(FailedHttp)),
        }
    }
    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        catch(None, || self.0.create_stream_context(context_id))
    }
    fn get_type(&self) -> Option<ContextType> {
        catch(Some(ContextType::HttpContext), || self.0.get_type())
    }
}

impl Context for GuardedHttp {
    context_callbacks!();
}

impl HttpContext for GuardedHttp {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        catch(Action::Pause, || {
            self.0.on_http_request_headers(num_headers, end_of_stream)
        })
    }
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        catch(Action::Pause, || {
            self.0.on_http_request_body(body_size, end_of_stream)
        })
    }
    fn on_http_request_trailers(&mut self, num_trailers: usize) -> Action {
        catch(Action::Pause, || {
            self.0.on_http_request_trailers(num_trailers)
        })
    }
    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        catch(Action::Pause, || {
            self.0.on_http_response_headers(num_headers, end_of_stream)
        })
    }
    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        catch(Action::Pause, || {
            self.0.on_http_response_body(body_size, end_of_stream)
        })
    }
    fn on_http_response_trailers(&mut self, num_trailers: usize) -> Action {
        catch(Action::Pause, || {
            self.0.on_http_response_trailers(num_trailers)
        })
    }
    fn on_log(&mut self) {
        catch((), || self.0.on_log())
    }
}

impl Context for FailedHttp {}
impl HttpContext for FailedHttp {}
