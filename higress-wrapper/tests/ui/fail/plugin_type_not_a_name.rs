// `plugin` given a string instead of a type name.
#[derive(serde::Deserialize)]
struct MyConfig {}

higress_wrapper::set_ctx! {
    name: "my-plugin",
    config: MyConfig,
    plugin: "Other",
}

fn main() {}
