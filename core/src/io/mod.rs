//! Everything that touches a socket: the NATS client, link stores, smartsend/smartreceive.

mod client;
mod options;
pub mod store;

pub use client::{Client, Incoming, Outgoing, Received, Sent, Subscription};
pub use options::{BridgeOptions, ConnectOptions, DEFAULT_NATS_URL, FileServerKind, SendOptions};

use crate::error::Result;
use std::collections::HashMap;
use std::sync::LazyLock;
use tokio::sync::Mutex;

static SHARED: LazyLock<Mutex<HashMap<String, Client>>> = LazyLock::new(Default::default);

/// The process-wide client for `url`, connected on first use. The seeds' one-call style
/// (`smartsend(subject, data, broker_url=...)`) goes through this, so it reuses one connection.
pub async fn shared_client(url: &str) -> Result<Client> {
    let mut clients = SHARED.lock().await;
    if let Some(c) = clients.get(url) {
        return Ok(c.clone());
    }
    let client = Client::connect(ConnectOptions::with_server(url)).await?;
    clients.insert(url.to_owned(), client.clone());
    Ok(client)
}
