// An empty plugin name.
#[derive(serde::Deserialize)]
struct MyConfig {}

higress_wrapper::set_ctx! {
    name: "",
    config: MyConfig,
}

fn main() {}
