//! Everything that touches a socket: the NATS client, link stores, smartsend/smartreceive.

mod client;
mod options;
pub mod store;

pub use client::{
    Client, Incoming, Outgoing, Received, Sent, Subscription, smartreceive_direct, smartreceive_with_store,
};
pub use options::{BridgeOptions, ConnectOptions, DEFAULT_NATS_URL, FileServerKind, SendOptions};
