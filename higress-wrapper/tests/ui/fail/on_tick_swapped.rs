// An `on_tick` entry written `(function, period)`.
use higress_wrapper::PluginContext;

#[derive(serde::Deserialize)]
struct MyConfig {}

fn refresh(_ctx: &mut PluginContext<'_, MyConfig>) {}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_tick: [(refresh, std::time::Duration::from_secs(5))],
}

fn main() {}
