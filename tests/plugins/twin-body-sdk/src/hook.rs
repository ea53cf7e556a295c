//! The body twins' plugin code, shared by `twin-body-sdk` and
//! `twin-body-sdk-all` (which differ only in their `set_ctx!` keys).

use higress_wrapper::prelude::*;

/// No settings.
#[derive(serde::Deserialize)]
pub(crate) struct Config {}

/// A body containing `deny` is answered 403; anything else passes.
pub(crate) fn on_request_body(ctx: &mut HttpContext, _: &Config, body: &[u8]) -> DataAction {
    if body.windows(4).any(|w| w == b"deny") {
        ctx.send_local_response(403, &[], b"denied");
    }
    DataAction::Continue
}
