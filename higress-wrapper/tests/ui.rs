//! Compile-time tests of `set_ctx!`: what must compile (`ui/pass`), and what
//! a mistake looks like to the user (`ui/fail`, each with its `.stderr`).
//!
//! The `.stderr` snapshots are the output of rustc 1.95 (stable); another
//! compiler version may word a diagnostic differently and fail this test
//! without anything being wrong in the macro. To regenerate:
//!
//! ```text
//! TRYBUILD=overwrite cargo test -p higress-wrapper --test ui
//! ```
//!
//! then read every changed `.stderr`: each error must point at the user's
//! code and say what is expected. rustc prints a type by its bare name when
//! that name is unique in the whole crate graph (`Value` rather than
//! `serde_json::Value`), so adding a type to the SDK can change a snapshot
//! without any change in meaning.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
