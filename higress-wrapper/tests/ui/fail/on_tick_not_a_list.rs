// `on_tick` given one pair instead of a list of pairs.
use higress_wrapper::PluginContext;

#[derive(serde::Deserialize)]
struct MyConfig {}

fn refresh(_ctx: &mut PluginContext<'_, MyConfig>) {}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    on_tick: (std::time::Duration::from_secs(5), refresh),
}

fn main() {}
