// No `name`.
#[derive(serde::Deserialize)]
struct MyConfig {}

higress_wrapper::set_ctx! {
    config: MyConfig,
}

fn main() {}
