//! `natsbridge`: send, receive and request NATSBridge messages from a shell, and run a local
//! development server.

mod dev;
mod payload_arg;
mod show;

use clap::{Args, Parser, Subcommand};
use natsbridge::error::Error;
use natsbridge::io::{Client, ConnectOptions, FileServerKind, SendOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "natsbridge", version, about = "Send and receive NATSBridge messages over NATS")]
struct Cli {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ConnArgs {
    /// NATS server URL (repeat for several); default $NATS_URL or nats://localhost:4222.
    #[arg(short, long = "server", global = true)]
    servers: Vec<String>,
    /// Connection name shown by the server.
    #[arg(long, global = true)]
    name: Option<String>,
    #[arg(long, global = true, env = "NATS_USER")]
    user: Option<String>,
    #[arg(long, global = true, env = "NATS_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    #[arg(long, global = true, env = "NATS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// An nkey seed (SU...).
    #[arg(long, global = true, env = "NATS_NKEY", hide_env_values = true)]
    nkey: Option<String>,
    #[arg(long, global = true)]
    creds: Option<PathBuf>,
    #[arg(long, global = true)]
    tls_ca: Option<PathBuf>,
    #[arg(long, global = true)]
    tls_cert: Option<PathBuf>,
    #[arg(long, global = true)]
    tls_key: Option<PathBuf>,
    /// File server for link payloads (default $FILESERVER_URL; none: the JetStream object store).
    #[arg(long, global = true)]
    fileserver: Option<String>,
    /// The file server is a plain HTTP PUT/GET server rather than Plik.
    #[arg(long, global = true)]
    http_put: bool,
    /// Plik one-shot uploads (the first download deletes the file).
    #[arg(long, global = true)]
    oneshot: bool,
    /// Further origins link payloads may be downloaded from.
    #[arg(long = "allow-origin", global = true)]
    allowed_origins: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Publish one message. Payloads are `-p TYPE:NAME=VALUE` in order; VALUE `@path` reads a file.
    Send {
        subject: String,
        #[command(flatten)]
        msg: MessageArgs,
        /// Print the published envelope JSON.
        #[arg(long)]
        print: bool,
    },
    /// Subscribe and print decoded messages.
    Sub {
        subject: String,
        #[arg(long)]
        queue: Option<String>,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
        /// Exit with an error when no message arrives for this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
        /// Write binary, arrowtable and link payloads to files here.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// One JSON object per message (for programs).
        #[arg(long)]
        json: bool,
        /// Print a line to stderr once the subscription is live (for scripts).
        #[arg(long)]
        ready: bool,
    },
    /// Send a request and print the reply.
    Request {
        subject: String,
        #[command(flatten)]
        msg: MessageArgs,
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        #[arg(long)]
        json: bool,
    },
    /// Run a local nats-server with JetStream for development (until Ctrl-C).
    Dev {
        #[arg(long, default_value_t = 4222)]
        port: u16,
        /// Also listen for WebSocket clients (browsers) on this port.
        #[arg(long)]
        websocket_port: Option<u16>,
    },
    /// Start a local server, send a message with five payload types, receive it in a second
    /// process and print it.
    Demo {
        /// The receiving program (default: this CLI's `sub`), e.g. `-- python receive.py {server}
        /// {subject}`. It prints `ready:` on stderr once subscribed, then exits 0 after one message.
        #[arg(last = true)]
        receiver: Vec<String>,
    },
}

#[derive(Args)]
struct MessageArgs {
    /// A payload, `TYPE:NAME=VALUE`; types: text dictionary jsontable arrowtable image audio video binary.
    #[arg(short = 'p', long = "payload", required = true)]
    payloads: Vec<String>,
    #[arg(long)]
    purpose: Option<String>,
    #[arg(long)]
    correlation_id: Option<String>,
    #[arg(long)]
    sender_name: Option<String>,
    #[arg(long)]
    receiver_name: Option<String>,
    #[arg(long)]
    reply_to: Option<String>,
    /// Size threshold in bytes for link transport.
    #[arg(long)]
    threshold: Option<usize>,
}

impl MessageArgs {
    fn send_options(&self) -> SendOptions {
        SendOptions {
            size_threshold: self.threshold,
            correlation_id: self.correlation_id.clone(),
            msg_purpose: self.purpose.clone(),
            sender_name: self.sender_name.clone(),
            receiver_name: self.receiver_name.clone(),
            reply_to: self.reply_to.clone(),
            ..Default::default()
        }
    }
}

impl ConnArgs {
    fn options(&self) -> ConnectOptions {
        let mut o = ConnectOptions {
            servers: self.servers.clone(),
            name: self.name.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            token: self.token.clone(),
            nkey: self.nkey.clone(),
            credentials_file: self.creds.clone(),
            tls_ca_file: self.tls_ca.clone(),
            tls_cert_file: self.tls_cert.clone(),
            tls_key_file: self.tls_key.clone(),
            ..Default::default()
        };
        o.bridge.fileserver_url = self.fileserver.clone();
        if self.http_put {
            o.bridge.fileserver_kind = FileServerKind::HttpPut;
        }
        o.bridge.plik.oneshot = self.oneshot;
        o.bridge.allowed_origins = self.allowed_origins.clone();
        o.bridge.sender_name = "natsbridge-cli".into();
        o
    }

    async fn connect(&self, progress: &show::TransferProgress) -> Result<Client, Error> {
        let mut options = self.options();
        options.bridge.transfer_progress = Some(progress.callback());
        Client::connect(options).await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // Warnings (upload fallbacks, slow consumers) by default; NATSBRIDGE_LOG=debug for more.
    let filter = tracing_subscriber::EnvFilter::try_from_env("NATSBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    let progress = show::TransferProgress::new();
    match cli.command {
        Command::Send { subject, msg, print } => {
            let payloads = payload_arg::parse_all(&msg.payloads)?;
            let client = cli.conn.connect(&progress).await?;
            let sent = client.smartsend(&subject, payloads, &msg.send_options()).await;
            progress.finish();
            let sent = sent?;
            client.flush().await?;
            if print {
                println!("{}", sent.json_str());
            } else {
                show::sent_summary(&sent);
            }
            Ok(())
        }
        Command::Sub { subject, queue, count, timeout, out_dir, json, ready } => {
            let client = cli.conn.connect(&progress).await?;
            let mut sub = client.subscribe(&subject, queue.as_deref()).await?;
            if ready {
                eprintln!("ready: subscribed to {subject}");
            }
            let (mut seen, mut failed) = (0u64, 0u64);
            while count.is_none_or(|c| seen < c) {
                let next = match timeout {
                    Some(secs) => sub.next_timeout(Duration::from_secs_f64(secs)).await,
                    None => sub.next().await,
                };
                let Some(result) = next else { break };
                progress.finish();
                match result {
                    Ok(received) => show::received(&received, out_dir.as_deref(), json)?,
                    Err(e) if e.code == natsbridge::error::ErrorCode::Timeout => return Err(e),
                    Err(e) => {
                        failed += 1;
                        show::receive_error(&e, json);
                    }
                }
                seen += 1;
            }
            if failed > 0 {
                return Err(Error::new(
                    natsbridge::error::ErrorCode::DeserializationError,
                    format!("{failed} of {seen} messages could not be decoded"),
                ));
            }
            Ok(())
        }
        Command::Request { subject, msg, timeout, json } => {
            let payloads = payload_arg::parse_all(&msg.payloads)?;
            let client = cli.conn.connect(&progress).await?;
            let reply =
                client.request(&subject, payloads, &msg.send_options(), Duration::from_secs_f64(timeout)).await?;
            show::received(&reply, None, json)
        }
        Command::Dev { port, websocket_port } => dev::run_foreground(port, websocket_port).await,
        Command::Demo { receiver } => dev::demo(receiver).await,
    }
}
