//! A TCP proxy on 127.0.0.1 in front of a real server, for the resume tests: it passes every
//! connection through, but closes the first `cuts` connections whose request is a GET once
//! `after` bytes of the answer went back, the way a network that drops a long transfer does. It
//! keeps the head of every request it saw.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct CutProxy {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl CutProxy {
    /// Forwards to `upstream` (host:port).
    pub async fn start(upstream: SocketAddr, cuts: usize, after: usize) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let cuts_left = Arc::new(Mutex::new(cuts));
        let seen = heads.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, seen.clone(), cuts_left.clone(), after));
            }
        });
        CutProxy { addr, heads, task }
    }

    /// `http://127.0.0.1:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request heads (request line and headers) of the GETs it saw, in order.
    pub fn gets(&self) -> Vec<String> {
        self.heads.lock().unwrap().iter().filter(|h| h.starts_with("GET ")).cloned().collect()
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection (HTTP/1.1 keep-alive: each request on it is seen as it passes).
async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    cuts_left: Arc<Mutex<usize>>,
    after: usize,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    let (mut client_rx, mut client_tx) = client.split();
    let (mut server_rx, mut server_tx) = server.split();
    let cut = Arc::new(Mutex::new(false));
    let requests = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let text = String::from_utf8_lossy(&buf[..n]);
            if let Some(head) = text
                .split("\r\n\r\n")
                .next()
                .filter(|h| h.starts_with("GET ") || h.starts_with("PUT ") || h.starts_with("POST "))
            {
                if head.starts_with("GET ") {
                    let mut left = cuts_left.lock().unwrap();
                    if *left > 0 {
                        *left -= 1;
                        *cut.lock().unwrap() = true;
                    }
                }
                heads.lock().unwrap().push(head.to_owned());
            }
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let answers = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let cutting = *cut.lock().unwrap();
            let n = if cutting { n.min(after.saturating_sub(sent)) } else { n };
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
            sent += n;
            if cutting && sent >= after {
                break; // drop the connection mid-answer
            }
        }
    };
    // Either side ending ends the connection (a cut answer closes it for the client).
    tokio::select! {
        _ = requests => {}
        _ = answers => {}
    }
}
