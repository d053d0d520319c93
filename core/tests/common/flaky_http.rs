//! An HTTP server that fails N times, then serves: for the download backoff tests.
//!
//! A tiny hand-rolled HTTP/1.1 server on 127.0.0.1 (a generic HTTP server, not a fake of Plik).
//! Every response carries `Connection: close`, so each request arrives on its own connection and
//! the request log is exact. It records every request (time, method, path, User-Agent).
//!
//! * GET: the first `fail_first` GETs get `failure` (a status, or the connection closed without an
//!   answer); later GETs get the body stored by an earlier PUT on the same path, else `serve`.
//! * PUT: stores the body in memory under the path and answers 201.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How a failing GET fails.
#[derive(Clone, Debug)]
pub enum Failure {
    /// Answer with this status (e.g. 503, 429, 500) and a short plain-text body.
    Status(u16),
    /// Read the request, then close the connection without answering.
    Close,
}

/// What a successful GET gets (when no PUT stored something on that path).
#[derive(Clone, Debug)]
pub enum Serve {
    /// 200 with this body and an exact Content-Length.
    Body(Vec<u8>),
    /// 200 with this body, no Content-Length (read until close), then the connection stays open
    /// for `hold` before closing: a client that does not stop reading on its own hangs that long.
    BodyNoLength { body: Vec<u8>, hold: Duration },
    /// 200 announcing `declared` bytes in Content-Length but sending only `body`, then holding the
    /// connection open for `hold`: a client that trusts the body instead of the header hangs.
    Declared { declared: u64, body: Vec<u8>, hold: Duration },
    /// A redirect (e.g. 302) to `location`.
    Redirect { status: u16, location: String },
    /// 404 with a plain-text body.
    NotFound,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub user_agent: Option<String>,
}

struct State {
    fail_first: usize,
    failure: Failure,
    serve: Serve,
    gets: usize,
    requests: Vec<Request>,
    stored: HashMap<String, Vec<u8>>,
}

pub struct FlakyHttp {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl FlakyHttp {
    /// Serves `serve` to every GET.
    pub async fn start(serve: Serve) -> FlakyHttp {
        FlakyHttp::start_flaky(0, Failure::Status(503), serve).await
    }

    /// Fails the first `fail_first` GETs with `failure`, then serves `serve`.
    pub async fn start_flaky(fail_first: usize, failure: Failure, serve: Serve) -> FlakyHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            fail_first,
            failure,
            serve,
            gets: 0,
            requests: Vec::new(),
            stored: HashMap::new(),
        }));
        let task = serve_on(listener, state.clone());
        FlakyHttp { addr, state, task }
    }

    /// Closes the listener and every connection: the port refuses connections until `restart`.
    pub fn stop(&mut self) {
        self.task.abort();
    }

    /// Listens again on the same port, with what PUTs stored before.
    pub async fn restart(&mut self) {
        self.task.abort();
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.task = serve_on(listener, self.state.clone());
    }

    /// `http://127.0.0.1:port` + `path` (path starts with '/').
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn gets(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.method == "GET").collect()
    }

    /// The body a PUT stored on `path` (the raw, still percent-encoded request path).
    pub fn stored(&self, path: &str) -> Option<Vec<u8>> {
        self.state.lock().unwrap().stored.get(path).cloned()
    }
}

impl Drop for FlakyHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn serve_on(listener: TcpListener, st: Arc<Mutex<State>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Connection tasks live in the JoinSet: aborting this task aborts them all.
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((sock, _)) = accepted else { continue };
                    conns.spawn(handle(sock, st.clone()));
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    })
}

const MAX_HEAD: usize = 64 * 1024;

async fn handle(mut sock: TcpStream, state: Arc<Mutex<State>>) {
    // Bounded: a client that stalls mid-request is dropped.
    let _ = tokio::time::timeout(Duration::from_secs(30), serve_one(&mut sock, &state)).await;
}

async fn serve_one(sock: &mut TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Ok(());
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let mut content_length = 0usize;
    let mut user_agent = None;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("user-agent") {
                user_agent = Some(v.to_owned());
            }
        }
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < content_length {
        let mut chunk = vec![0u8; (content_length - body.len()).min(64 * 1024)];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }

    enum Action {
        Respond { status: u16, headers: Vec<(String, String)>, body: Vec<u8>, length: bool, hold: Duration },
        Lie { declared: u64, body: Vec<u8>, hold: Duration },
        Close,
    }
    let action = {
        let mut st = state.lock().unwrap();
        st.requests.push(Request { at: Instant::now(), method: method.clone(), path: path.clone(), user_agent });
        match method.as_str() {
            "PUT" => {
                st.stored.insert(path.clone(), body);
                Action::Respond {
                    status: 201,
                    headers: vec![],
                    body: b"created".to_vec(),
                    length: true,
                    hold: Duration::ZERO,
                }
            }
            "GET" => {
                st.gets += 1;
                if st.gets <= st.fail_first {
                    match st.failure.clone() {
                        Failure::Status(s) => Action::Respond {
                            status: s,
                            headers: vec![],
                            body: format!("failure {} of {}", st.gets, st.fail_first).into_bytes(),
                            length: true,
                            hold: Duration::ZERO,
                        },
                        Failure::Close => Action::Close,
                    }
                } else if let Some(stored) = st.stored.get(&path) {
                    Action::Respond {
                        status: 200,
                        headers: vec![],
                        body: stored.clone(),
                        length: true,
                        hold: Duration::ZERO,
                    }
                } else {
                    match st.serve.clone() {
                        Serve::Body(b) => Action::Respond {
                            status: 200,
                            headers: vec![],
                            body: b,
                            length: true,
                            hold: Duration::ZERO,
                        },
                        Serve::BodyNoLength { body, hold } => {
                            Action::Respond { status: 200, headers: vec![], body, length: false, hold }
                        }
                        Serve::Declared { declared, body, hold } => Action::Lie { declared, body, hold },
                        Serve::Redirect { status, location } => Action::Respond {
                            status,
                            headers: vec![("Location".into(), location)],
                            body: b"moved".to_vec(),
                            length: true,
                            hold: Duration::ZERO,
                        },
                        Serve::NotFound => Action::Respond {
                            status: 404,
                            headers: vec![],
                            body: b"no such object".to_vec(),
                            length: true,
                            hold: Duration::ZERO,
                        },
                    }
                }
            }
            _ => Action::Respond {
                status: 405,
                headers: vec![],
                body: b"method not allowed".to_vec(),
                length: true,
                hold: Duration::ZERO,
            },
        }
    };

    match action {
        Action::Close => Ok(()),
        Action::Lie { declared, body, hold } => {
            let head = format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {declared}\r\n\r\n");
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(&body).await?;
            sock.flush().await?;
            tokio::time::sleep(hold).await;
            Ok(())
        }
        Action::Respond { status, headers, body, length, hold } => {
            let mut head =
                format!("HTTP/1.1 {status} {}\r\nConnection: close\r\nContent-Type: text/plain\r\n", reason(status));
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            if length {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            head.push_str("\r\n");
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(&body).await?;
            sock.flush().await?;
            if !hold.is_zero() {
                tokio::time::sleep(hold).await;
            }
            let _ = sock.shutdown().await;
            Ok(())
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
