// A tick function in Go's shape: no arguments.
use std::time::Duration;

#[derive(serde::Deserialize)]
struct MyConfig {}

fn refresh() {}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_tick: [(Duration::from_secs(5), refresh)],
}

fn main() {}
