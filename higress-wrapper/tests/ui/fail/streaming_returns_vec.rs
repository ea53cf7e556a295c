// A streaming body hook returning `Vec<u8>` instead of `Option<Vec<u8>>`.
use higress_wrapper::prelude::*;

#[derive(serde::Deserialize)]
struct MyConfig {
    some_field: String,
}

fn on_streaming_response_body(
    _ctx: &mut HttpContext,
    _config: &MyConfig,
    chunk: &[u8],
    _end_of_stream: bool,
) -> Vec<u8> {
    chunk.to_vec()
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_streaming_response_body: on_streaming_response_body,
}

fn main() {}
