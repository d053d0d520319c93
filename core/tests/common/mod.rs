//! Test-only helpers of the integration tests (the real servers come from the `servers` crate).
#![allow(dead_code)]

pub mod cut_proxy;
pub mod flaky_http;
pub mod links;
pub mod schema;
