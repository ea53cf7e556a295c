// No `config`.
higress_wrapper::set_ctx! {
    name: "my-plugin",
}

fn main() {}
