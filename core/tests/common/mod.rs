//! Real servers for the integration tests, each started on a free loopback port and stopped on drop.
#![allow(dead_code)]

pub mod flaky_http;
pub mod nats;
pub mod plik;
pub mod schema;
