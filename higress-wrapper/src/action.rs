//! What a hook tells the host: the phase actions ([`HeaderAction`],
//! [`DataAction`]), a waiting action's future, and what a waited-on future
//! may output.
//!
//! Layering: API, below `http_context` and `plugin` (both build actions).

use crate::task::BoxFuture;
use std::fmt;
use std::future::Future;

/// What a request- or response-headers hook tells the host.
///
/// When a pause holds the request and what resumes it:
///
/// | host | `StopIteration` (or a [`wait`](HeaderAction::wait)) from **request** headers |
/// |---|---|
/// | stock Envoy, ABI 0.2.1 (default) | becomes *stop all*: the headers **and the body** are held; body hooks do not run until the stream is resumed (by the SDK when a waited-on future completes, or by [`HttpContext::resume_request`](crate::HttpContext::resume_request)). A request paused by hand to read its body first **hangs**. |
/// | stock Envoy with `allow_on_headers_stop_iteration: true` | headers are held, body hooks run; the headers leave once a body hook returns `Continue` at end of stream, so a header set after reading the body reaches the upstream. |
/// | Higress | the host picks the semantics from the first ABI version the module exports. Modules built with this SDK export `proxy_abi_version_0_2_100` first ([`plugin_entry!`](crate::plugin_entry), which `set_ctx!` calls), so it is the second row: `StopIteration` holds the headers and the body hooks run. |
///
/// In every case a local response ([`HttpContext::send_local_response`](crate::HttpContext::send_local_response))
/// ends the request, whatever the hook returns.
///
/// A hook that must wait for a host call (Redis, HTTP) returns
/// [`HttpContext::wait`](crate::HttpContext::wait) (or [`HeaderAction::wait`] with a future it built): the SDK polls it at once (no cost if
/// it completes without waiting), otherwise pauses the request and resumes
/// it exactly once when the future completes, applying its result. User code
/// never calls resume by hand.
#[derive(Default)]
#[non_exhaustive]
#[must_use]
pub enum HeaderAction {
    /// Let the headers continue to the next filter.
    #[default]
    Continue,
    /// Hold the headers (see the table above for what resumes them).
    StopIteration,
    #[doc(hidden)]
    Wait(Waiting<HeaderAction>),
}

/// What a body hook tells the host.
#[derive(Default)]
#[non_exhaustive]
#[must_use]
pub enum DataAction {
    /// Let the data continue.
    #[default]
    Continue,
    /// Hold the data and keep buffering until resumed.
    StopIterationAndBuffer,
    #[doc(hidden)]
    Wait(Waiting<DataAction>),
}

/// A hook's pending future (see [`HeaderAction::wait`]).
#[doc(hidden)]
pub struct Waiting<A>(pub(crate) BoxFuture<Result<A, String>>);

/// What an async hook may produce: the action itself, or a `Result` whose
/// error is logged and handled by the request's error policy (continue by
/// default, see [`HttpContext::set_error_response`](crate::HttpContext::set_error_response)).
pub trait HookOutput<A> {
    /// Converts to the action, or an error message.
    fn into_action(self) -> Result<A, String>;
}

impl HookOutput<HeaderAction> for HeaderAction {
    fn into_action(self) -> Result<HeaderAction, String> {
        Ok(self)
    }
}

impl HookOutput<DataAction> for DataAction {
    fn into_action(self) -> Result<DataAction, String> {
        Ok(self)
    }
}

impl<A, E: fmt::Display> HookOutput<A> for Result<A, E>
where
    A: HookOutput<A>,
{
    fn into_action(self) -> Result<A, String> {
        self.map_err(|e| e.to_string())
    }
}

/// What the future of [`HttpContext::wait`](crate::HttpContext::wait) may output: the action itself,
/// or `Result<action, higress_wrapper::Error>`. There is exactly one
/// `Result` form, so `Ok(HeaderAction::Continue)` needs no type annotation,
/// and `?` converts every SDK error (and any other error) into
/// [`Error`](crate::Error).
#[diagnostic::on_unimplemented(
    message = "the future given to `ctx.wait` outputs `{Self}`, but it must output the hook's action or `Result<action, higress_wrapper::Error>`",
    label = "this future's output is not an action or `Result<action, higress_wrapper::Error>`",
    note = "end the future with `Ok(HeaderAction::Continue)` (`Ok(DataAction::Continue)` in a body hook), without a type annotation: `?` converts RedisError, HttpError, HostError, ConfigError and any std error into `higress_wrapper::Error`",
    note = "for an error of your own that is not a `std::error::Error`, return `Err(higress_wrapper::Error::msg(..))`"
)]
pub trait WaitOutput<A>: sealed::Sealed {
    /// Converts to the action, or the error message to log.
    #[doc(hidden)]
    fn into_result(self) -> Result<A, String>;
}

impl WaitOutput<HeaderAction> for HeaderAction {
    fn into_result(self) -> Result<HeaderAction, String> {
        Ok(self)
    }
}

impl WaitOutput<DataAction> for DataAction {
    fn into_result(self) -> Result<DataAction, String> {
        Ok(self)
    }
}

impl<A: PhaseAction> WaitOutput<A> for Result<A, crate::Error> {
    fn into_result(self) -> Result<A, String> {
        self.map_err(|e| e.to_string())
    }
}

/// A phase result a hook can wait for: [`HeaderAction`] or [`DataAction`].
pub trait PhaseAction: sealed::Sealed + Sized + 'static {
    /// The waiting form of this action.
    #[doc(hidden)]
    fn waiting(future: BoxFuture<Result<Self, String>>) -> Self;
}

impl PhaseAction for HeaderAction {
    fn waiting(future: BoxFuture<Result<Self, String>>) -> Self {
        HeaderAction::Wait(Waiting(future))
    }
}

impl PhaseAction for DataAction {
    fn waiting(future: BoxFuture<Result<Self, String>>) -> Self {
        DataAction::Wait(Waiting(future))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::HeaderAction {}
    impl Sealed for super::DataAction {}
    impl<A> Sealed for Result<A, crate::Error> {}
}

macro_rules! action_common {
    ($ty:ident, $cont:ident, $stop:ident) => {
        impl $ty {
            /// Waits for `future` (e.g. a Redis or HTTP call) before deciding.
            /// Usually [`HttpContext::wait`](crate::HttpContext::wait) is shorter: it hands the future
            /// the request and the config, and needs no type annotation.
            /// The request is paused while it waits and resumed exactly once
            /// when it completes, with the action it returns. If it returns
            /// an `Err`, the error is logged and the request continues (fail
            /// open) unless [`HttpContext::set_error_response`](crate::HttpContext::set_error_response) chose otherwise.
            /// A future that completes without waiting costs nothing extra.
            pub fn wait<F, R>(future: F) -> $ty
            where
                F: Future<Output = R> + 'static,
                R: HookOutput<$ty> + 'static,
            {
                $ty::Wait(Waiting(Box::pin(async move { future.await.into_action() })))
            }

            /// Whether this is the continue action.
            pub fn is_continue(&self) -> bool {
                matches!(self, $ty::$cont)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $ty::$cont => stringify!($cont),
                    $ty::$stop => stringify!($stop),
                    $ty::Wait(_) => "Wait(..)",
                })
            }
        }

        /// Two actions are equal if both are the same immediate action; a
        /// waiting action equals nothing.
        impl PartialEq for $ty {
            fn eq(&self, other: &$ty) -> bool {
                matches!(
                    (self, other),
                    ($ty::$cont, $ty::$cont) | ($ty::$stop, $ty::$stop)
                )
            }
        }
    };
}

action_common!(HeaderAction, Continue, StopIteration);
action_common!(DataAction, Continue, StopIterationAndBuffer);

impl<A> fmt::Debug for Waiting<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waiting(..)")
    }
}
