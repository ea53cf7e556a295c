//! Helpers shared by the test binaries: a real `redis-server`, and the raw
//! proxy-wasm host ABI.
#![allow(dead_code, unreachable_pub)]

pub mod raw_abi;
pub mod redis_server;
