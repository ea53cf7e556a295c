// A rule parser in Go's shape: global config by value and an out-parameter.
use higress_wrapper::prelude::*;

#[derive(Clone, serde::Deserialize)]
struct MyConfig {
    limit: u64,
}

fn parse_rule(
    _json: &serde_json::Value,
    global: MyConfig,
    config: &mut MyConfig,
) -> Result<(), ConfigError> {
    *config = global;
    Ok(())
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    parse_rule_config: parse_rule,
}

fn main() {}
