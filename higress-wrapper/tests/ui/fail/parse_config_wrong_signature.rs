// A custom parser taking the JSON by value and returning `Result<_, String>`.
struct MyConfig {
    limit: u64,
}

fn parse(json: serde_json::Value) -> Result<MyConfig, String> {
    let limit = json
        .get("limit")
        .and_then(serde_json::Value::as_u64)
        .ok_or("no limit")?;
    Ok(MyConfig { limit })
}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    parse_config: parse,
}

fn main() {}
