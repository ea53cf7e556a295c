//! Helpers shared by the test binaries that talk to a real `redis-server`.
#![allow(dead_code, unreachable_pub)]

pub mod redis_server;
