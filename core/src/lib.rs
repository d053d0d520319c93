pub mod error;
pub mod protocol;
