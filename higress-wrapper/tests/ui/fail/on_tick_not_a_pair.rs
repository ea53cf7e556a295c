// An `on_tick` entry without its period.
use higress_wrapper::PluginContext;

#[derive(serde::Deserialize)]
struct MyConfig {}

fn refresh(_ctx: &mut PluginContext<'_, MyConfig>) {}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_tick: [refresh],
}

fn main() {}
