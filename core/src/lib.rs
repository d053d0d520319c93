pub mod error;
pub mod protocol;
#[cfg(feature = "io")]
pub mod io;
