//! The fault-test kit against the real binaries: SIGKILL and restart on the same ports and store
//! (nats-server, Plik), and the 3-node JetStream cluster. The NATS client here is the wire
//! protocol over a std TcpStream (request/reply on the JetStream API), so nothing but the
//! servers is under test.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use natsbridge_servers::{NatsCluster, NatsConfig, NatsServer, Plik};
use serde_json::{Value, json};

/// One request on a fresh connection: None when no reply came within `timeout` (e.g. while the
/// JetStream API has no leader) or the connection failed.
fn request_once(port: u16, subject: &str, body: &[u8], timeout: Duration) -> Option<Value> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let mut writer = stream.try_clone().ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    if !line.starts_with("INFO") {
        return None;
    }
    let mut out = b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB _INBOX.faults 1\r\n".to_vec();
    out.extend_from_slice(format!("PUB {subject} _INBOX.faults {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
    writer.write_all(&out).ok()?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line.starts_with("PING") {
            writer.write_all(b"PONG\r\n").ok()?;
        } else if line.starts_with("-ERR") {
            panic!("the server refused {subject}: {line}");
        } else if line.starts_with("MSG ") {
            let len: usize = line.split_whitespace().last()?.parse().ok()?;
            let mut payload = vec![0; len + 2];
            reader.read_exact(&mut payload).ok()?;
            return serde_json::from_slice(&payload[..len]).ok();
        }
    }
    None
}

/// [`request_once`] retried until a reply without `error` comes, for up to `within`.
fn request(port: u16, subject: &str, body: Value, within: Duration) -> Value {
    let body = body.to_string();
    let deadline = Instant::now() + within;
    let mut last;
    loop {
        match request_once(port, subject, body.as_bytes(), Duration::from_secs(2)) {
            Some(reply) if reply.get("error").is_none() => return reply,
            other => last = other,
        }
        assert!(Instant::now() < deadline, "no good reply to {subject} on port {port} within {within:?}: {last:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn add_stream(port: u16, name: &str, replicas: u32) {
    let config = json!({"name": name, "subjects": [format!("{name}.>")], "storage": "file", "num_replicas": replicas});
    let reply = request(port, &format!("$JS.API.STREAM.CREATE.{name}"), config, Duration::from_secs(20));
    assert_eq!(reply["config"]["num_replicas"], replicas, "{reply}");
}

fn publish(port: u16, subject: &str, seq: u64) {
    let ack = request(port, subject, json!({"n": seq}), Duration::from_secs(20));
    assert_eq!(ack["seq"], seq, "publish ack: {ack}");
}

fn stream_info(port: u16, name: &str) -> Value {
    request(port, &format!("$JS.API.STREAM.INFO.{name}"), json!({}), Duration::from_secs(20))
}

fn answers_info(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok_and(|s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("INFO")
    })
}

/// `/proc/<pid>` is gone: the process was killed and reaped.
fn reaped(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn restart_keeps_the_ports_and_a_file_streams_messages() {
    let config = NatsConfig { websocket_port: Some(0), monitor_port: Some(0), ..Default::default() };
    let mut server = NatsServer::launch(config).unwrap();
    let (port, ws, monitor, url) = (server.port, server.websocket_port, server.monitor_port, server.url());
    add_stream(port, "KEEP", 1);
    for seq in 1..=5 {
        publish(port, "KEEP.x", seq);
    }
    // A client still connected when the server dies (the server side of it ends in TIME_WAIT).
    let held = TcpStream::connect(("127.0.0.1", port)).unwrap();

    let pid = server.pid().unwrap();
    server.kill();
    assert!(!server.is_running() && server.pid().is_none());
    assert!(reaped(pid), "killed and waited for");
    assert!(!answers_info(port), "nothing answers on the port after the kill");

    let t = Instant::now();
    server.restart().unwrap();
    eprintln!("nats-server restart on the same port: {:?}", t.elapsed());
    drop(held);
    assert!(server.is_running());
    assert_ne!(server.pid(), Some(pid), "a new process");
    assert_eq!((server.port, server.websocket_port, server.monitor_port), (port, ws, monitor));
    assert_eq!(server.url(), url);
    assert!(TcpStream::connect(("127.0.0.1", ws.unwrap())).is_ok(), "the WebSocket port is back");
    assert!(server.monitor("/varz").is_some_and(|v| v["port"] == port), "the monitoring port is back");
    let info = stream_info(port, "KEEP");
    assert_eq!((info["state"]["messages"].clone(), info["state"]["last_seq"].clone()), (json!(5), json!(5)), "{info}");
    publish(port, "KEEP.x", 6);

    // restart() on a running server kills it first; drop kills the last one.
    server.restart().unwrap();
    assert_eq!(stream_info(port, "KEEP")["state"]["messages"], 6);
    let pid = server.pid().unwrap();
    drop(server);
    assert!(reaped(pid) && !answers_info(port), "drop kills it");
}

#[test]
fn restart_gives_up_within_its_bound_when_another_process_holds_the_port() {
    let mut server = NatsServer::start();
    let port = server.port;
    server.kill();
    let squatter = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let t = Instant::now();
    let e = server.restart().unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(20), "bounded: {:?}", t.elapsed());
    assert!(e.contains("address already in use") || e.contains("exited"), "{e}");
    assert!(!server.is_running());
    drop(squatter);
    server.restart().unwrap();
    assert!(answers_info(port));
}

/// The distinct server names a node routes to (`/routez` lists one entry per pooled connection).
fn route_peers(node: &NatsServer) -> BTreeSet<String> {
    let routez = node.monitor("/routez").expect("/routez");
    routez["routes"].as_array().unwrap().iter().map(|r| r["remote_name"].as_str().unwrap().to_owned()).collect()
}

fn names(all: &[&str]) -> BTreeSet<String> {
    all.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_three_node_cluster_forms_replicates_and_survives_killing_its_stream_leader() {
    let t = Instant::now();
    let mut cluster = NatsCluster::start(3).unwrap();
    eprintln!("cluster formed with a meta leader in {:?}", t.elapsed());
    assert_eq!(cluster.len(), 3);
    assert_eq!((0..3).map(|i| cluster.server_name(i)).collect::<Vec<_>>(), ["n1", "n2", "n3"]);
    assert_eq!(cluster.urls().iter().collect::<BTreeSet<_>>().len(), 3, "{:?}", cluster.urls());
    assert_eq!(cluster.urls()[1], cluster[1].url());
    let everyone = names(&["n1", "n2", "n3"]);
    let mut leaders = BTreeSet::new();
    for (i, node) in cluster.nodes().iter().enumerate() {
        let mut others = everyone.clone();
        others.remove(cluster.server_name(i));
        assert_eq!(route_peers(node), others, "n{} routes to both others", i + 1);
        let jsz = node.monitor("/jsz").unwrap();
        assert_eq!(jsz["meta_cluster"]["cluster_size"], 3, "{jsz}");
        leaders.insert(jsz["meta_cluster"]["leader"].as_str().unwrap().to_owned());
    }
    let meta = cluster.meta_leader().expect("a meta leader");
    assert_eq!(leaders, names(&[cluster.server_name(meta)]), "every node names the same meta leader");

    // An R3 stream made through n1, written through n2, seen through n3.
    add_stream(cluster[0].port, "R3", 3);
    for seq in 1..=10 {
        publish(cluster[1].port, "R3.x", seq);
    }
    let info = stream_info(cluster[2].port, "R3");
    assert_eq!(info["state"]["messages"], 10, "{info}");
    let leader = cluster.stream_leader("R3").expect("the stream has a leader");
    assert_eq!(info["cluster"]["leader"], cluster.server_name(leader), "{info}");

    // Kill the stream leader: another node takes over with every message.
    let t = Instant::now();
    cluster.kill(leader);
    assert!(cluster[leader].pid().is_none());
    let next = cluster.wait_stream_leader("R3", Duration::from_secs(30)).unwrap();
    eprintln!("new stream leader {} after {:?}", cluster.server_name(next), t.elapsed());
    assert_ne!(next, leader);
    let survivor = (0..3).find(|&i| i != leader).unwrap();
    assert_eq!(stream_info(cluster[survivor].port, "R3")["state"]["messages"], 10);
    publish(cluster[survivor].port, "R3.x", 11);

    // Restart it: same port, back in the cluster, and it catches up from its own store.
    let port = cluster[leader].port;
    let t = Instant::now();
    cluster.restart(leader).unwrap();
    eprintln!("killed node back in the cluster after {:?}", t.elapsed());
    assert_eq!(cluster[leader].port, port);
    let mut others = everyone.clone();
    others.remove(cluster.server_name(leader));
    assert_eq!(route_peers(&cluster[leader]), others);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let jsz = cluster[leader].monitor("/jsz?accounts=true&streams=true").unwrap_or_default();
        let local = jsz["account_details"][0]["stream_detail"][0]["state"]["messages"].clone();
        if local == 11 {
            break;
        }
        assert!(Instant::now() < deadline, "the restarted node's replica caught up: {local}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(stream_info(cluster[leader].port, "R3")["state"]["messages"], 11);
}

/// One HTTP/1.0 exchange on loopback: (status, body).
fn http(port: u16, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
    let status = String::from_utf8_lossy(&buf[9..12]).parse().unwrap();
    (status, buf[split + 4..].to_vec())
}

#[test]
fn plik_restart_keeps_the_port_and_an_uploaded_file() {
    let mut plik = Plik::start();
    let port = plik.port;
    let content = b"kept across a SIGKILL and a restart\n";
    // Plik's quick upload (what `curl -F file=@f <plik>` does): the reply is the file's URL.
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"kept.txt\"\r\n".to_vec();
    body.extend_from_slice(b"Content-Type: text/plain\r\n\r\n");
    body.extend_from_slice(content);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let head = format!(
        "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (status, reply) = http(port, &head, &body);
    let reply = String::from_utf8(reply).unwrap();
    assert_eq!(status, 200, "{reply}\n{}", plik.log());
    let path = reply.trim().strip_prefix(&plik.url).unwrap_or_else(|| panic!("a file URL: {reply}")).to_owned();
    let get = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n\r\n");

    let pid = plik.pid().unwrap();
    plik.kill();
    assert!(!plik.is_running() && reaped(pid));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens after the kill");
    let t = Instant::now();
    plik.restart().unwrap();
    eprintln!("plikd restart on the same port: {:?}", t.elapsed());
    assert!(plik.is_running() && plik.pid() != Some(pid));
    assert_eq!(plik.port, port);
    let (status, got) = http(port, &get, b"");
    assert_eq!((status, got.as_slice()), (200, content.as_slice()), "{}", plik.log());
}
