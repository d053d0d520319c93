//! nkey and decentralized (JWT, .creds file) authentication against real nats-servers: the
//! nkey pairs are made here (the `nkeys` crate async-nats signs with), the JWTs by `nsc`.

use natsbridge::error::{Error, ErrorCode};
use natsbridge::io::{Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::{Data, PayloadType, Settings};
use natsbridge_servers::{JwtAuth, NatsServer};
use std::time::Duration;

fn options(server: &NatsServer, auth: impl FnOnce(&mut Settings)) -> ConnectOptions {
    let mut o = ConnectOptions::with_server(&server.url());
    o.settings.max_reconnect_attempts = Some(1);
    o.settings.connect_timeout = Duration::from_secs(3);
    auth(&mut o.settings);
    o
}

async fn round_trip(opts: ConnectOptions) {
    let c = Client::connect(opts).await.unwrap();
    let mut sub = c.subscribe("auth.t", None).await.unwrap();
    let sent = vec![Outgoing::new("m", Data::Text("authenticated".into()), PayloadType::Text)];
    c.smartsend("auth.t", sent, &SendOptions::default()).await.unwrap();
    let got = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(got.payloads[0].data, Data::Text("authenticated".into()));
    c.drain().await.unwrap();
}

async fn refused(opts: ConnectOptions) -> Error {
    Client::connect(opts).await.err().expect("the server let an unauthenticated client in")
}

#[tokio::test(flavor = "multi_thread")]
async fn nkey_seed_authenticates_and_another_seed_is_refused() {
    let user = nkeys::KeyPair::new_user();
    let server =
        NatsServer::with_config(&format!("authorization {{ users: [ {{ nkey: {:?} }} ] }}", user.public_key()));

    round_trip(options(&server, |s| s.nkey = Some(user.seed().unwrap()))).await;

    // A valid seed of another user: the server's nonce is signed, but not by the key it knows.
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let e = refused(options(&server, |s| s.nkey = Some(stranger))).await;
    assert_eq!(e.code, ErrorCode::NatsConnectionFailed, "{e}");
    assert!(e.to_string().contains("authorization violation"), "{e}");
    let e = refused(options(&server, |_| {})).await;
    assert_eq!(e.code, ErrorCode::NatsConnectionFailed, "{e}");
    // Not a seed at all (a public key, a truncated seed): a configuration mistake, found before
    // connecting, and the message does not repeat the secret.
    let seed = user.seed().unwrap();
    for not_a_seed in [user.public_key(), seed[..seed.len() - 1].to_owned(), "SUAnot-a-seed".into()] {
        let e = refused(options(&server, |s| s.nkey = Some(not_a_seed.clone()))).await;
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
        assert!(!e.to_string().contains(&not_a_seed), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn creds_file_authenticates_against_an_operator_and_foreign_creds_are_refused() {
    let jwt = JwtAuth::create().unwrap_or_else(|e| panic!("{e}"));
    let server = NatsServer::with_config(&jwt.config);

    round_trip(options(&server, |s| s.credentials_file = Some(jwt.creds.clone()))).await;

    // A user of another operator: its JWT does not chain to the operator the server trusts.
    let e = refused(options(&server, |s| s.credentials_file = Some(jwt.foreign_creds.clone()))).await;
    assert_eq!(e.code, ErrorCode::NatsConnectionFailed, "{e}");
    assert!(e.to_string().contains("authorization violation"), "{e}");
    let e = refused(options(&server, |_| {})).await;
    assert_eq!(e.code, ErrorCode::NatsConnectionFailed, "{e}");
    // A creds file that is not there is a configuration mistake, found before connecting.
    let missing = jwt.creds.with_file_name("missing.creds");
    let e = refused(options(&server, |s| s.credentials_file = Some(missing))).await;
    assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
    assert!(e.to_string().contains("missing.creds"), "{e}");
}
