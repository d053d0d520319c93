//! What the CLI's integration tests share: running the built `natsbridge` binary.

use std::process::{Child, Command, Stdio};

/// Starts `natsbridge --servers <url> <args>` with its output piped.
pub fn natsbridge(url: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_natsbridge"))
        .args(["--servers", url])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run natsbridge")
}

/// Waits for a `sub --ready` child's "ready" line on stderr; the rest of its stderr, to read
/// (dropped, the pipe closes: the child must then write nothing more there).
pub fn wait_ready(sub: &mut Child) -> std::io::BufReader<std::process::ChildStderr> {
    let mut stderr = std::io::BufReader::new(sub.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.starts_with("ready"), "natsbridge sub said {line:?}");
    stderr
}
