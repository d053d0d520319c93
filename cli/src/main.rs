//! `natsbridge`: send, receive and request NATSBridge messages from a shell, and run a local
//! development server.

mod dev;
mod durable;
mod payload_arg;
mod show;

use clap::{Args, Parser, Subcommand};
use natsbridge::error::{Error, ErrorCode};
use natsbridge::io::{Client, ConnectOptions, SendOptions};
use natsbridge::protocol::TimeUnit;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "natsbridge", version, about = "Send and receive NATSBridge messages over NATS")]
struct Cli {
    #[command(flatten)]
    conn: ConnArgs,
    /// When the command ends, print what its connection sent and received (messages, payloads
    /// and bytes by transport, downloads, retries, checksum failures) as JSON on stderr.
    #[arg(long, global = true)]
    metrics: bool,
    #[command(subcommand)]
    command: Command,
}

/// Connection options: each flag is one of core's option names in kebab-case (durations in
/// seconds), so the CLI, Python and C share one vocabulary.
#[derive(Args)]
struct ConnArgs {
    /// NATS server URL (repeat for several); default $NATS_URL or nats://localhost:4222.
    #[arg(short = 's', long = "servers", global = true)]
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
    credentials_file: Option<String>,
    #[arg(long, global = true)]
    tls_ca_file: Option<String>,
    #[arg(long, global = true)]
    tls_cert_file: Option<String>,
    #[arg(long, global = true)]
    tls_key_file: Option<String>,
    #[arg(long, global = true)]
    tls_required: bool,
    /// File server for link payloads (default $FILESERVER_URL; none: the JetStream object store).
    #[arg(long, global = true)]
    fileserver_url: Option<String>,
    /// plik (default), http (a plain PUT/GET server) or s3 (an s3://bucket/prefix URL is S3).
    #[arg(long, global = true)]
    fileserver_kind: Option<String>,
    /// The S3 store's endpoint (default $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, the profile's, AWS).
    #[arg(long, global = true)]
    s3_endpoint: Option<String>,
    /// The S3 store's region (default $AWS_REGION, $AWS_DEFAULT_REGION, the profile's, us-east-1).
    #[arg(long, global = true)]
    s3_region: Option<String>,
    /// The AWS profile of the shared config and credentials files (default $AWS_PROFILE).
    #[arg(long, global = true)]
    s3_profile: Option<String>,
    /// S3 links are presigned https URLs any HTTP client can fetch until they expire.
    #[arg(long, global = true)]
    s3_presign: bool,
    /// Plik one-shot uploads (the first download deletes the file).
    #[arg(long, global = true)]
    plik_oneshot: bool,
    /// Further origins link payloads may be downloaded from (repeatable).
    #[arg(long, global = true)]
    allowed_origins: Vec<String>,
    /// Download attempts per link.
    #[arg(long, global = true)]
    max_retries: Option<String>,
    /// Publish to the JetStream stream capturing the subject and wait for its ack (at least once).
    #[arg(long, global = true)]
    jetstream: bool,
    /// Replicas of the object store bucket when it is created (3 on a cluster).
    #[arg(long, global = true)]
    object_store_replicas: Option<String>,
    /// The client the command connected, for `--metrics`.
    #[arg(skip)]
    connected: std::sync::OnceLock<Client>,
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
    /// Consume a stream through a durable consumer, printing and acking each message.
    Consume {
        stream: String,
        durable: String,
        #[command(flatten)]
        opts: durable::ConsumeArgs,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
        /// Exit with an error when nothing arrives for this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
        #[arg(long)]
        out_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Print a line to stderr once the consumer is live (for scripts).
        #[arg(long)]
        ready: bool,
    },
    /// JetStream streams.
    Stream {
        #[command(subcommand)]
        action: StreamCommand,
    },
    /// Remove object-store link objects of a stream whose message never reached it.
    Sweep {
        stream: String,
        /// Only list them.
        #[arg(long)]
        dry_run: bool,
        /// Only objects older than this many seconds (default: the stream's duplicate window).
        #[arg(long)]
        min_age: Option<f64>,
    },
    /// Run a local nats-server with JetStream for development (until Ctrl-C), with a stream
    /// EVENTS capturing `EVENTS.>`.
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

#[derive(Subcommand)]
enum StreamCommand {
    /// Create a stream (or update it to these settings), and its dead-letter stream.
    Add {
        name: String,
        #[command(flatten)]
        settings: durable::StreamArgs,
    },
}

/// Per-message options: core's send option names in kebab-case.
#[derive(Args)]
struct MessageArgs {
    /// A payload, `TYPE:NAME=VALUE`; types: text dictionary jsontable arrowtable image audio video binary.
    #[arg(short = 'p', long = "payload", required = true)]
    payloads: Vec<String>,
    #[arg(long)]
    msg_purpose: Option<String>,
    #[arg(long)]
    correlation_id: Option<String>,
    #[arg(long)]
    sender_name: Option<String>,
    #[arg(long)]
    receiver_name: Option<String>,
    #[arg(long)]
    reply_to: Option<String>,
    /// Payloads of this many bytes or more go by link.
    #[arg(long)]
    size_threshold: Option<String>,
    /// The caller's W3C trace context, a JSON object: `{"traceparent": "00-…", "tracestate": "…"}`.
    #[arg(long)]
    trace_headers: Option<String>,
}

/// Sets each given `(option name, value)` through core's vocabulary (INVALID_ARGUMENT on a bad value).
fn named<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a String>)>) -> Vec<(&'a str, serde_json::Value)> {
    pairs.into_iter().filter_map(|(name, v)| v.map(|v| (name, serde_json::Value::String(v.clone())))).collect()
}

impl MessageArgs {
    fn send_options(&self) -> Result<SendOptions, Error> {
        let mut opts = SendOptions::default();
        for (name, value) in named([
            ("msg_purpose", self.msg_purpose.as_ref()),
            ("correlation_id", self.correlation_id.as_ref()),
            ("sender_name", self.sender_name.as_ref()),
            ("receiver_name", self.receiver_name.as_ref()),
            ("reply_to", self.reply_to.as_ref()),
            ("size_threshold", self.size_threshold.as_ref()),
        ]) {
            opts.set(name, &value)?;
        }
        if let Some(text) = &self.trace_headers {
            let carrier = serde_json::from_str(text)
                .map_err(|e| Error::invalid_argument(format!("--trace-headers is not JSON: {e}")))?;
            opts.set("trace_headers", &carrier)?;
        }
        Ok(opts)
    }
}

impl ConnArgs {
    fn options(&self) -> Result<ConnectOptions, Error> {
        let mut o = ConnectOptions::default();
        let s = &mut o.settings;
        s.sender_name = "natsbridge-cli".into();
        let flag = |on: bool| on.then(|| "true".to_owned());
        let (tls_required, plik_oneshot, jetstream, s3_presign) =
            (flag(self.tls_required), flag(self.plik_oneshot), flag(self.jetstream), flag(self.s3_presign));
        let lists = [("servers", &self.servers), ("allowed_origins", &self.allowed_origins)];
        for (name, items) in lists {
            s.set(name, &serde_json::json!(items), TimeUnit::Seconds)?;
        }
        for (name, value) in named([
            ("name", self.name.as_ref()),
            ("user", self.user.as_ref()),
            ("password", self.password.as_ref()),
            ("token", self.token.as_ref()),
            ("nkey", self.nkey.as_ref()),
            ("credentials_file", self.credentials_file.as_ref()),
            ("tls_ca_file", self.tls_ca_file.as_ref()),
            ("tls_cert_file", self.tls_cert_file.as_ref()),
            ("tls_key_file", self.tls_key_file.as_ref()),
            ("tls_required", tls_required.as_ref()),
            ("fileserver_url", self.fileserver_url.as_ref()),
            ("fileserver_kind", self.fileserver_kind.as_ref()),
            ("s3_endpoint", self.s3_endpoint.as_ref()),
            ("s3_region", self.s3_region.as_ref()),
            ("s3_profile", self.s3_profile.as_ref()),
            ("s3_presign", s3_presign.as_ref()),
            ("plik_oneshot", plik_oneshot.as_ref()),
            ("max_retries", self.max_retries.as_ref()),
            ("jetstream", jetstream.as_ref()),
            ("object_store_replicas", self.object_store_replicas.as_ref()),
        ]) {
            s.set(name, &value, TimeUnit::Seconds)?;
        }
        Ok(o)
    }

    async fn connect(&self, progress: &show::TransferProgress) -> Result<Client, Error> {
        let mut options = self.options()?;
        options.transfer_progress = Some(progress.callback());
        let client = Client::connect(options).await?;
        let _ = self.connected.set(client.clone());
        Ok(client)
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
    let done = run_command(cli.command, &cli.conn, &progress).await;
    if cli.metrics
        && let Some(client) = cli.conn.connected.get()
    {
        // Not eprintln!: a closed stderr must not turn a finished command into a panic.
        let _ = writeln!(std::io::stderr(), "metrics: {}", client.metrics().to_json());
    }
    done
}

async fn run_command(command: Command, conn: &ConnArgs, progress: &show::TransferProgress) -> Result<(), Error> {
    match command {
        Command::Send { subject, msg, print } => {
            let payloads = payload_arg::parse_all(&msg.payloads)?;
            let client = conn.connect(progress).await?;
            let sent = client.smartsend(&subject, payloads, &msg.send_options()?).await;
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
            let timeout = timeout
                .map(|secs| {
                    Duration::try_from_secs_f64(secs).map_err(|_| {
                        Error::new(ErrorCode::InvalidArgument, format!("--timeout {secs}: not a number of seconds"))
                    })
                })
                .transpose()?;
            let client = conn.connect(progress).await?;
            let mut sub = client.subscribe(&subject, queue.as_deref()).await?;
            if ready {
                eprintln!("ready: subscribed to {subject}");
            }
            let (mut seen, mut failed) = (0u64, 0u64);
            while count.is_none_or(|c| seen < c) {
                // With --out-dir, link payloads go to their files as they arrive: a payload of
                // any size, never whole in memory.
                let shown = match &out_dir {
                    Some(dir) => {
                        let next = match timeout {
                            Some(timeout) => sub.next_streamed_timeout(timeout).await,
                            None => sub.next_streamed().await,
                        };
                        let Some(next) = next else { break };
                        match next {
                            Ok(message) => show::streamed(message, dir, client.receive_limits(), json).await,
                            Err(e) => Err(e),
                        }
                    }
                    None => {
                        let next = match timeout {
                            Some(timeout) => sub.next_timeout(timeout).await,
                            None => sub.next().await,
                        };
                        let Some(next) = next else { break };
                        next.and_then(|received| show::received(&received, None, json))
                    }
                };
                progress.finish();
                match shown {
                    Ok(()) => {}
                    Err(e) if e.code == ErrorCode::Timeout => return Err(e),
                    Err(e) => {
                        failed += 1;
                        show::receive_error(&e, json);
                    }
                }
                seen += 1;
            }
            if failed > 0 {
                return Err(Error::new(
                    ErrorCode::DeserializationError,
                    format!("{failed} of {seen} messages could not be decoded"),
                ));
            }
            Ok(())
        }
        Command::Request { subject, msg, timeout, json } => {
            let payloads = payload_arg::parse_all(&msg.payloads)?;
            let client = conn.connect(progress).await?;
            let reply =
                client.request(&subject, payloads, &msg.send_options()?, Duration::from_secs_f64(timeout)).await?;
            show::received(&reply, None, json)
        }
        Command::Consume { stream, durable, opts, count, timeout, out_dir, json, ready } => {
            let opts = opts.options()?;
            let client = conn.connect(progress).await?;
            let run = durable::ConsumeRun { count, timeout, out_dir, json, ready };
            durable::consume(&client, &stream, &durable, opts, run, progress).await
        }
        Command::Stream { action: StreamCommand::Add { name, settings } } => {
            let settings = settings.settings(&name)?;
            durable::add_stream(&conn.connect(progress).await?, &settings).await
        }
        Command::Sweep { stream, dry_run, min_age } => {
            durable::sweep(&conn.connect(progress).await?, &stream, dry_run, min_age).await
        }
        Command::Dev { port, websocket_port } => dev::run_foreground(port, websocket_port).await,
        Command::Demo { receiver } => dev::demo(receiver).await,
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;
    use natsbridge::error::ErrorCode;
    use natsbridge::protocol::{OptionName, SendOptionName};

    fn flags(cmd: &clap::Command) -> Vec<String> {
        cmd.get_arguments().filter_map(|a| a.get_long()).map(|l| l.replace('-', "_")).collect()
    }

    /// The CLI's connection and message flags are core's option names (README "One vocabulary").
    #[test]
    fn flags_are_core_option_names() {
        let cli = Cli::command();
        let options: Vec<&str> = OptionName::ALL.iter().map(|o| o.as_str()).collect();
        let conn_flags: Vec<String> = flags(&cli).into_iter().filter(|f| f != "metrics").collect();
        assert!(conn_flags.len() >= 15, "{conn_flags:?}");
        for flag in conn_flags {
            assert!(options.contains(&flag.as_str()), "--{flag} is not a core option name");
        }
        let send_options: Vec<&str> = SendOptionName::ALL.iter().map(|o| o.as_str()).collect();
        for command in ["send", "request"] {
            let sub = cli.find_subcommand(command).unwrap();
            for flag in
                flags(sub).into_iter().filter(|f| !matches!(f.as_str(), "payload" | "print" | "timeout" | "json"))
            {
                assert!(send_options.contains(&flag.as_str()), "{command} --{flag} is not a core send option name");
            }
        }
    }

    /// `consume` and `stream add` flags are core's consume and stream option names.
    #[test]
    fn durable_flags_are_core_option_names() {
        use natsbridge::protocol::durable::{ConsumeOptionName, StreamOptionName};
        let cli = Cli::command();
        let consume: Vec<&str> = ConsumeOptionName::ALL.iter().map(|o| o.as_str()).collect();
        let run_flags = ["count", "timeout", "out_dir", "json", "ready"];
        let flags_of_consume = flags(cli.find_subcommand("consume").unwrap());
        assert_eq!(flags_of_consume.len(), consume.len() + run_flags.len(), "{flags_of_consume:?}");
        for flag in flags_of_consume.iter().filter(|f| !run_flags.contains(&f.as_str())) {
            assert!(consume.contains(&flag.as_str()), "consume --{flag} is not a core consume option name");
        }
        let stream: Vec<&str> = StreamOptionName::ALL.iter().map(|o| o.as_str()).collect();
        let add = cli.find_subcommand("stream").unwrap().find_subcommand("add").unwrap();
        let mut add_flags = flags(add);
        add_flags.sort();
        let mut expected: Vec<String> = stream.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(add_flags, expected);
    }

    #[test]
    fn durable_flag_values_go_through_core() {
        use clap::Parser;
        let cli = Cli::parse_from(["natsbridge", "consume", "S", "d", "--backoff", "1,2", "--max-deliver", "-1"]);
        let super::Command::Consume { opts, .. } = cli.command else { panic!("consume") };
        let o = opts.options().unwrap();
        assert_eq!((o.backoff.len(), o.max_deliver), (2, None));
        let cli = Cli::parse_from(["natsbridge", "consume", "S", "d", "--deliver-from", "last"]);
        let super::Command::Consume { opts, .. } = cli.command else { panic!("consume") };
        assert_eq!(opts.options().unwrap_err().code, ErrorCode::InvalidArgument);
        let cli = Cli::parse_from(["natsbridge", "stream", "add", "S", "--retention", "workqueue", "--replicas", "3"]);
        let super::Command::Stream { action: super::StreamCommand::Add { name, settings } } = cli.command else {
            panic!("stream add")
        };
        let s = settings.settings(&name).unwrap();
        assert_eq!((s.replicas, s.retention), (3, natsbridge::protocol::durable::Retention::WorkQueue));
    }

    #[test]
    fn bad_option_values_are_invalid_arguments() {
        use clap::Parser;
        let cli = Cli::parse_from(["natsbridge", "--fileserver-kind", "ftp", "send", "s", "-p", "text:a=b"]);
        let e = cli.conn.options().err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        let cli = Cli::parse_from(["natsbridge", "send", "s", "-p", "text:a=b", "--size-threshold=lots"]);
        let super::Command::Send { msg, .. } = cli.command else { panic!("send") };
        assert_eq!(msg.send_options().err().unwrap().code, ErrorCode::InvalidArgument);
    }
}
