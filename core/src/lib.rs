pub mod error;
#[cfg(feature = "io")]
pub mod io;
pub mod protocol;
