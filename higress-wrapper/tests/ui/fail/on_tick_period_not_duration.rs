// A tick period in milliseconds, as Go's `RegisterTickFunc(5000, f)` takes it.
use higress_wrapper::PluginContext;

#[derive(serde::Deserialize)]
struct MyConfig {}

fn refresh(_ctx: &mut PluginContext<'_, MyConfig>) {}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_tick: [(5000, refresh)],
}

fn main() {}
