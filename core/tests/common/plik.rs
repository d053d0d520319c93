//! The real Plik server (built by scripts/install-plik.sh) on a free loopback port.
//!
//! Binary: `$PLIK_BIN`, else `<repo>/.tmp/bin/plikd`. Missing → panic (tests never skip silently).
//! Configuration goes through an empty `--config` file plus `PLIKD_*` environment overrides (the
//! field names of that build's `server/common/config.go` in SCREAMING_SNAKE case); data and the
//! sqlite metadata live in a temp dir. Readiness: `GET /version` (this build has no `/health`).
//! The process is killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Server settings for one test.
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

pub struct Plik {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub port: u16,
    /// The user token when `require_token` was set.
    pub token: Option<String>,
    child: Child,
    dir: tempfile::TempDir,
}

pub fn plik_bin() -> PathBuf {
    let bin = match std::env::var_os("PLIK_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("core/ has a parent")
            .join(".tmp/bin/plikd"),
    };
    if !bin.is_file() {
        panic!(
            "Plik server binary not found at {}: run scripts/install-plik.sh (or set PLIK_BIN to a plikd binary)",
            bin.display()
        );
    }
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}

fn command(bin: &PathBuf, dir: &std::path::Path, port: u16, config: &PlikConfig) -> Command {
    let mut cmd = Command::new(bin);
    // An empty config file: never pick up ./plikd.cfg or /etc/plikd.cfg.
    cmd.arg("--config").arg(dir.join("plikd.cfg")).current_dir(dir);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PLIKD_") {
            cmd.env_remove(k);
        }
    }
    let files = dir.join("files");
    let db = dir.join("plik.db");
    cmd.env("PLIKD_LISTEN_ADDRESS", "127.0.0.1")
        .env("PLIKD_LISTEN_PORT", port.to_string())
        .env("PLIKD_NO_WEB_INTERFACE", "true")
        .env("PLIKD_DATA_BACKEND", "file")
        .env("PLIKD_DATA_BACKEND_CONFIG", serde_json::json!({ "Directory": files }).to_string())
        .env(
            "PLIKD_METADATA_BACKEND_CONFIG",
            serde_json::json!({ "Driver": "sqlite3", "ConnectionString": db }).to_string(),
        )
        .env("PLIKD_DEFAULT_TTL_STR", config.default_ttl)
        .env("PLIKD_MAX_TTL_STR", config.max_ttl)
        .env("PLIKD_ONE_SHOT", "true");
    if config.require_token {
        cmd.env("PLIKD_AUTHENTICATION", "true").env("PLIKD_NO_ANONYMOUS_UPLOADS", "true");
    } else {
        cmd.env("PLIKD_AUTHENTICATION", "false");
    }
    cmd
}

/// Runs a plikd CLI subcommand against the same metadata database, bounded.
fn run_cli(bin: &PathBuf, dir: &std::path::Path, port: u16, config: &PlikConfig, args: &[&str]) -> String {
    let mut cmd = command(bin, dir, port, config);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {} {args:?}: {e}", bin.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                status.success(),
                "plikd {args:?} failed ({status}): {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return stdout;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("plikd {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET /version` over a raw socket; true on a 200.
async fn ready(port: u16) -> bool {
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"GET /version HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n\r\n").await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), probe).await.ok().flatten().unwrap_or(false)
}

impl Plik {
    pub async fn start() -> Plik {
        Plik::start_with(PlikConfig::default()).await
    }

    pub async fn start_with(config: PlikConfig) -> Plik {
        let bin = plik_bin();
        let mut last_log = String::new();
        // A port found free can be taken before plikd binds it: try a few.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join("plikd.cfg"), "").unwrap();
            let port = free_port();
            let token = if config.require_token {
                // The CLI writes straight into the sqlite database the server then opens.
                run_cli(
                    &bin,
                    dir.path(),
                    port,
                    &config,
                    &["user", "create", "--login", "natsbridge", "--password", "natsbridge-test-pw"],
                );
                let out = run_cli(
                    &bin,
                    dir.path(),
                    port,
                    &config,
                    &["token", "create", "--login", "natsbridge", "--comment", "tests"],
                );
                let token = out
                    .lines()
                    .find_map(|l| l.strip_prefix("Token created : "))
                    .unwrap_or_else(|| panic!("no token in `plikd token create` output: {out}"))
                    .trim()
                    .to_owned();
                Some(token)
            } else {
                None
            };
            let log = std::fs::File::create(dir.path().join("plikd.log")).unwrap();
            let mut child = command(&bin, dir.path(), port, &config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    last_log = format!(
                        "plikd exited with {status}: {}",
                        std::fs::read_to_string(dir.path().join("plikd.log")).unwrap_or_default()
                    );
                    break;
                }
                if ready(port).await {
                    return Plik { url: format!("http://127.0.0.1:{port}"), port, token, child, dir };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "Plik did not answer GET /version on 127.0.0.1:{port} within 30 s; log:\n{}",
                        std::fs::read_to_string(dir.path().join("plikd.log")).unwrap_or_default()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("Plik failed to start 3 times; last: {last_log}");
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("plikd.log")).unwrap_or_default()
    }
}

impl Drop for Plik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
