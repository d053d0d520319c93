//! TLS to a real nats-server with a CA, server and client certificates generated here.

mod common;

use natsbridge::error::ErrorCode;
use natsbridge::io::{Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::{Data, PayloadType};
use natsbridge_servers::NatsServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let new_ca = || {
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap()
        };
        let ca = new_ca();
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
        write("ca.pem", ca.pem());
        // A CA that signed nothing here: trusting it alone must not make the server trusted.
        write("other-ca.pem", new_ca().pem());
        for (who, names) in
            [("server", vec!["127.0.0.1".to_string(), "localhost".to_string()]), ("client", vec!["client".to_string()])]
        {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
            write(&format!("{who}.pem"), cert.pem());
            write(&format!("{who}-key.pem"), key.serialize_pem());
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn server_config(pki: &Pki) -> String {
    let p = |n: &str| pki.path(n).display().to_string();
    format!(
        "tls {{ cert_file: {:?}, key_file: {:?}, ca_file: {:?}, verify: true, timeout: 2 }}",
        p("server.pem"),
        p("server-key.pem"),
        p("ca.pem")
    )
}

fn options(server: &NatsServer, ca: Option<&Path>, client_cert: bool, pki: &Pki) -> ConnectOptions {
    let mut o = ConnectOptions::with_server(&format!("tls://127.0.0.1:{}", server.port));
    o.settings.tls_ca_file = ca.map(Path::to_path_buf);
    if client_cert {
        o.settings.tls_cert_file = Some(pki.path("client.pem"));
        o.settings.tls_key_file = Some(pki.path("client-key.pem"));
    }
    o.settings.tls_required = true;
    o.settings.max_reconnect_attempts = Some(1);
    o.settings.connect_timeout = Duration::from_secs(3);
    o
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_ca_and_client_certificate() {
    let pki = Pki::new();
    let server = NatsServer::with_config(&server_config(&pki));
    let ca = pki.path("ca.pem");

    let c = Client::connect(options(&server, Some(&ca), true, &pki)).await.unwrap();
    let mut sub = c.subscribe("tls.t", None).await.unwrap();
    c.smartsend(
        "tls.t",
        vec![Outgoing::new("m", Data::Text("over tls".into()), PayloadType::Text)],
        &SendOptions::default(),
    )
    .await
    .unwrap();
    let got = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(got.payloads[0].data, Data::Text("over tls".into()));

    // The server requires a client certificate.
    let e = Client::connect(options(&server, Some(&ca), false, &pki)).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::NatsConnectionFailed, "{e}");
    // Without our CA, or with another CA, the server's certificate is not trusted.
    let e = Client::connect(options(&server, None, true, &pki)).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::NatsConnectionFailed, "{e}");
    let e = Client::connect(options(&server, Some(&pki.path("other-ca.pem")), true, &pki)).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::NatsConnectionFailed, "{e}");
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");
}
