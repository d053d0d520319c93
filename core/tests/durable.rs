//! JetStream mode against a real nats-server: durable publish, durable consumers and their
//! settlement, dead letters, and link objects tied to their messages.

use natsbridge::error::ErrorCode;
use natsbridge::io::{Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::durable::{ConsumeOptions, Retention, StreamSettings};
use natsbridge::protocol::{Data, PayloadType, TimeUnit};
use natsbridge_servers::NatsServer;
use serde_json::json;
use std::time::Duration;

async fn client(server: &NatsServer, jetstream: bool) -> Client {
    let mut opts = ConnectOptions::with_server(&server.url());
    opts.settings.jetstream = jetstream;
    Client::connect(opts).await.unwrap()
}

fn text(s: &str) -> Vec<Outgoing> {
    vec![Outgoing::new("msg", Data::Text(s.to_owned()), PayloadType::Text)]
}

fn consume_opts(v: serde_json::Value) -> ConsumeOptions {
    ConsumeOptions::from_json(v.as_object().unwrap(), TimeUnit::Seconds).unwrap()
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn a_subject_no_stream_captures_is_an_error_not_a_core_publish() {
    let server = NatsServer::start();
    let c = client(&server, true).await;
    let mut core_sub = c.subscribe("nostream.x", None).await.unwrap();
    let e = c.smartsend("nostream.x", text("lost?"), &SendOptions::default()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
    assert!(e.message.contains("no JetStream stream captures"), "{e}");
    assert!(e.correlation_id.is_some());
    let nothing = core_sub.next_timeout(Duration::from_millis(300)).await.unwrap();
    assert_eq!(nothing.unwrap_err().code, ErrorCode::Timeout, "nothing went out on core NATS");
}

#[tokio::test(flavor = "multi_thread")]
async fn durable_publish_is_acked_deduplicated_and_consumed_with_delivery_info() {
    let server = NatsServer::start();
    let c = client(&server, true).await;
    let summary = c.add_stream(&StreamSettings::new("ORDERS")).await.unwrap();
    assert_eq!(summary.subjects, ["ORDERS.>"]);
    assert_eq!(summary.max_age, Duration::from_secs(3600), "max_age defaults to the object store's TTL");
    assert_eq!(summary.to_json(TimeUnit::Millis)["max_age_ms"], 3_600_000);
    assert_eq!(summary.to_json(TimeUnit::Seconds)["max_age_secs"], 3600.0);
    assert_eq!(summary.dead_letter_stream.as_deref(), Some("ORDERS_DEAD_LETTER"));

    let first = c.smartsend("ORDERS.new", text("one"), &SendOptions::default()).await.unwrap();
    let ack = first.pub_ack.clone().unwrap();
    assert_eq!((ack.stream.as_str(), ack.sequence, ack.duplicate), ("ORDERS", 1, false));
    // The same msg_id again (a retried publish) is stored once.
    let mut again = first.clone();
    again.pub_ack = None;
    let headers = {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", first.envelope.msg_id.as_str());
        h
    };
    let js = async_nats::jetstream::new(c.nats().clone());
    let dup = js.publish_with_headers("ORDERS.new", headers, again.json.clone()).await.unwrap().await.unwrap();
    assert!(dup.duplicate && dup.sequence == 1, "{dup:?}");
    let second = c.smartsend("ORDERS.new", text("two"), &SendOptions::default()).await.unwrap();
    assert_eq!(second.pub_ack.unwrap().sequence, 2);

    let mut consumer = c.consume("ORDERS", "worker", consume_opts(json!({"ack_wait": 2}))).await.unwrap();
    let d1 = consumer.next_timeout(WAIT).await.unwrap().unwrap();
    assert_eq!(d1.received.payloads[0].data, Data::Text("one".into()));
    assert_eq!(d1.received.envelope.msg_id, first.envelope.msg_id);
    assert_eq!(d1.received.subject.as_deref(), Some("ORDERS.new"));
    assert_eq!((d1.info.stream_sequence, d1.info.delivered, d1.info.redelivered()), (1, 1, false));
    d1.ack.ack().await.unwrap();
    assert_eq!(d1.ack.ack().await.unwrap_err().code, ErrorCode::InvalidArgument, "settled twice");
    let d2 = consumer.next_timeout(WAIT).await.unwrap().unwrap();
    assert_eq!(d2.info.stream_sequence, 2);
    d2.ack.nak(None).await.unwrap();
    let d2_again = consumer.next_timeout(WAIT).await.unwrap().unwrap();
    assert_eq!((d2_again.info.stream_sequence, d2_again.info.delivered), (2, 2));
    assert!(d2_again.info.redelivered());
    d2_again.ack.ack().await.unwrap();
    let e = consumer.next_timeout(Duration::from_millis(500)).await.unwrap().err().unwrap();
    assert_eq!(e.code, ErrorCode::Timeout, "both acked: nothing more");

    // A second consumer process with the same durable name resumes after the acked ones.
    drop(consumer);
    c.smartsend("ORDERS.new", text("three"), &SendOptions::default()).await.unwrap();
    let mut resumed = c.consume("ORDERS", "worker", consume_opts(json!({"ack_wait": 2}))).await.unwrap();
    let d3 = resumed.next_timeout(WAIT).await.unwrap().unwrap();
    assert_eq!((d3.info.stream_sequence, d3.info.delivered), (3, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn what_never_decodes_goes_to_the_dead_letter_stream_with_its_bytes_and_is_terminated() {
    let server = NatsServer::start();
    let c = client(&server, true).await;
    c.add_stream(&StreamSettings::new("JOBS")).await.unwrap();
    let js = async_nats::jetstream::new(c.nats().clone());
    let garbage = br#"{"correlation_id":"c-bad","payloads":"nope"}"#;
    js.publish("JOBS.x", garbage.as_slice().into()).await.unwrap().await.unwrap();
    c.smartsend("JOBS.x", text("fine"), &SendOptions::default()).await.unwrap();

    let mut consumer = c.consume("JOBS", "w", consume_opts(json!({"ack_wait": 1}))).await.unwrap();
    let good = consumer.next_timeout(WAIT).await.unwrap().unwrap();
    assert_eq!(good.info.stream_sequence, 2, "the bad one is not yielded");
    good.ack.ack().await.unwrap();

    let mut dead = c.consume("JOBS_DEAD_LETTER", "audit", ConsumeOptions::default()).await.unwrap();
    let letter = dead.next_timeout(WAIT).await.unwrap().unwrap();
    let env = &letter.received.envelope;
    assert_eq!(env.msg_purpose, "NACK");
    assert_eq!(env.correlation_id, "c-bad");
    let error = env.error.as_ref().unwrap();
    assert_eq!(error.code, "INVALID_ENVELOPE");
    assert_eq!(error.details["stream"], "JOBS");
    assert_eq!(error.details["stream_sequence"], 1);
    assert_eq!(error.details["subject"], "JOBS.x");
    assert_eq!(letter.received.payloads[0].dataname, "original_message");
    assert_eq!(letter.received.payloads[0].data, Data::Bytes(garbage.as_slice().into()));
    // Terminated: not delivered again after ack_wait.
    let e = consumer.next_timeout(Duration::from_millis(2500)).await.unwrap().err().unwrap();
    assert_eq!(e.code, ErrorCode::Timeout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_link_download_is_naked_then_dead_lettered_at_max_deliver() {
    let server = NatsServer::start();
    let c = client(&server, true).await;
    c.add_stream(&StreamSettings::new("FILES")).await.unwrap();
    let opts = SendOptions { size_threshold: Some(1), ..Default::default() };
    let sent = c.smartsend("FILES.x", text("big enough"), &opts).await.unwrap();
    let url = sent.envelope.payloads[0].data.as_str().unwrap().to_owned();
    // The object vanishes before the receiver gets to it.
    let name = url.rsplit('/').next().unwrap();
    let js = async_nats::jetstream::new(c.nats().clone());
    js.get_object_store("natsbridge").await.unwrap().delete(name).await.unwrap();

    let mut settings = ConnectOptions::with_server(&server.url());
    settings.settings.retry.retries = 1;
    let receiver = Client::connect(settings).await.unwrap();
    let mut consumer = receiver
        .consume("FILES", "w", consume_opts(json!({"ack_wait": 1, "max_deliver": 3, "nak_delay": 0.1})))
        .await
        .unwrap();
    let e = consumer.next_timeout(Duration::from_secs(3)).await.unwrap().err().unwrap();
    assert_eq!(e.code, ErrorCode::Timeout, "never yielded");
    let mut dead = c.consume("FILES_DEAD_LETTER", "audit", ConsumeOptions::default()).await.unwrap();
    let letter = dead.next_timeout(WAIT).await.unwrap().unwrap();
    let error = letter.received.envelope.error.clone().unwrap();
    assert_eq!(error.code, "DOWNLOAD_FAILED");
    assert_eq!(error.details["delivered"], 3, "nak'd twice, dead-lettered on the last delivery");
}

#[tokio::test(flavor = "multi_thread")]
async fn work_queue_links_are_deleted_after_the_final_ack_and_the_sweep_finds_orphans() {
    let server = NatsServer::start();
    let c = client(&server, true).await;
    let mut s = StreamSettings::new("WQ");
    s.retention = Retention::WorkQueue;
    c.add_stream(&s).await.unwrap();
    let big = SendOptions { size_threshold: Some(1), ..Default::default() };
    let sent = c.smartsend("WQ.x", text("linked"), &big).await.unwrap();
    let objects = async_nats::jetstream::new(c.nats().clone()).get_object_store("natsbridge").await.unwrap();
    let name = sent.envelope.payloads[0].data.as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    assert!(objects.info(&name).await.is_ok());

    let mut consumer = c.consume("WQ", "w", ConsumeOptions::default()).await.unwrap();
    let d = consumer.next_timeout(WAIT).await.unwrap().unwrap();
    assert_eq!(d.received.payloads[0].data, Data::Text("linked".into()));
    d.ack.ack().await.unwrap();
    let gone = objects.info(&name).await;
    assert!(gone.as_ref().map_or(true, |i| i.deleted), "deleted after the final ack: {gone:?}");

    // An orphan: its message is gone from the stream (as if the publish had failed).
    let orphan = c.smartsend("WQ.x", text("orphan"), &big).await.unwrap();
    let kept = c.smartsend("WQ.x", text("kept"), &big).await.unwrap();
    let js = async_nats::jetstream::new(c.nats().clone());
    js.get_stream("WQ").await.unwrap().delete_message(orphan.pub_ack.unwrap().sequence).await.unwrap();
    let report = c.sweep_links("WQ", Some(Duration::ZERO), true).await.unwrap();
    assert_eq!(report.checked, 2);
    assert_eq!(report.orphans.len(), 1);
    assert_eq!(report.orphans[0].msg_id, orphan.envelope.msg_id);
    let shown = report.to_json(TimeUnit::Millis);
    assert_eq!(shown["orphans"][0]["msg_id"], orphan.envelope.msg_id.as_str());
    assert!(shown["orphans"][0]["age_ms"].is_u64(), "an age in the host's unit: {shown}");
    assert_eq!(c.sweep_links("WQ", None, true).await.unwrap().orphans.len(), 0, "younger than the duplicate window");
    c.sweep_links("WQ", Some(Duration::ZERO), false).await.unwrap();
    let after = c.sweep_links("WQ", Some(Duration::ZERO), true).await.unwrap();
    assert_eq!((after.checked, after.orphans.len()), (1, 0));
    let kept_name = kept.envelope.payloads[0].data.as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    assert!(objects.info(&kept_name).await.is_ok(), "the linked message's object stays");
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_publish_keeps_every_message_once_in_order() {
    let server = NatsServer::start();
    let c = client(&server, true).await;
    c.add_stream(&StreamSettings::new("BATCH")).await.unwrap();
    let messages =
        (0..500).map(|i| ("BATCH.x".to_owned(), text(&i.to_string()), SendOptions::default())).collect::<Vec<_>>();
    let results = c.publish_durable_batch(messages).await;
    let seqs: Vec<u64> = results.into_iter().map(|r| r.unwrap().pub_ack.unwrap().sequence).collect();
    assert_eq!(seqs, (1..=500).collect::<Vec<_>>());
    let mut consumer = c.consume("BATCH", "w", ConsumeOptions::default()).await.unwrap();
    for i in 0..500 {
        let d = consumer.next_timeout(WAIT).await.unwrap().unwrap();
        assert_eq!(d.received.payloads[0].data, Data::Text(i.to_string()));
        d.ack.ack().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_and_consumers_refuse_to_outlive_their_links() {
    let server = NatsServer::start();
    let c = client(&server, true).await;
    let mut s = StreamSettings::new("LONG");
    s.max_age = Some(Duration::from_secs(7200));
    assert_eq!(c.add_stream(&s).await.unwrap_err().code, ErrorCode::InvalidArgument);
    c.add_stream(&StreamSettings::new("SHORT")).await.unwrap();
    let long_redelivery = consume_opts(json!({"ack_wait": 600, "max_deliver": 10}));
    let e = c.consume("SHORT", "w", long_redelivery).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
    let e = c.consume("MISSING", "w", ConsumeOptions::default()).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
}

/// Bindings run a consumer's futures on a multi-threaded runtime: they must be Send.
#[allow(dead_code)]
fn consumer_futures_are_send(consumer: &mut natsbridge::io::Consumer, ack: natsbridge::io::DeliveryAck) {
    fn send<T: Send>(_: T) {}
    send(consumer.next());
    send(async move { ack.ack().await });
}

/// A `next` that runs out of time while its delivery's link downloads loses nothing: the next
/// call hands out that same delivery, still on its first delivery (not dropped, then redelivered
/// after ack_wait).
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_still_decoding_when_next_times_out_comes_with_the_next_call() {
    use futures::FutureExt;
    use natsbridge::io::store::{DownloadCall, UploadCall, UploadReply};
    let server = NatsServer::start();
    let mut sender_opts = ConnectOptions::with_server(&server.url());
    sender_opts.settings.jetstream = true;
    sender_opts.upload_handler = Some(std::sync::Arc::new(|call: UploadCall| {
        async move { Ok(UploadReply { status: None, url: Some(format!("slow://store/{}", call.dataname)) }) }.boxed()
    }));
    let sender = Client::connect(sender_opts).await.unwrap();
    sender.add_stream(&StreamSettings::new("SLOW")).await.unwrap();
    let opts = SendOptions { size_threshold: Some(1), ..Default::default() };
    sender.smartsend("SLOW.x", text("worth the wait"), &opts).await.unwrap();

    let mut receiver_opts = ConnectOptions::with_server(&server.url());
    receiver_opts.settings.allowed_origins = vec!["slow:".into()];
    receiver_opts.download_handler = Some(std::sync::Arc::new(|_: DownloadCall| {
        async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            Ok(bytes::Bytes::from_static(b"worth the wait"))
        }
        .boxed()
    }));
    let receiver = Client::connect(receiver_opts).await.unwrap();
    let mut consumer = receiver.consume("SLOW", "w", consume_opts(json!({"ack_wait": 30}))).await.unwrap();
    let e = consumer.next_timeout(Duration::from_millis(300)).await.unwrap().err().unwrap();
    assert_eq!(e.code, ErrorCode::Timeout, "the download takes 800 ms");
    let delivery = consumer.next_timeout(WAIT).await.unwrap().unwrap();
    assert_eq!(delivery.received.payloads[0].data, Data::Text("worth the wait".into()));
    assert_eq!(delivery.info.delivered, 1, "the same delivery, not a redelivery after ack_wait");
    delivery.ack.ack().await.unwrap();
}

/// Request/reply stays on core NATS in JetStream mode: a reply goes to the requester's inbox,
/// which no stream captures (it was INVALID_ARGUMENT, "no JetStream stream captures _INBOX...").
#[tokio::test(flavor = "multi_thread")]
async fn a_jetstream_client_replies_on_core_nats() {
    use natsbridge::io::ReplyTo;
    let server = NatsServer::start();
    let responder = client(&server, true).await;
    let mut service = responder.subscribe("svc.echo", None).await.unwrap();
    let serving = tokio::spawn(async move {
        let req = service.next().await.unwrap().unwrap();
        let echo = req.payloads[0].data.clone();
        let sent = responder
            .reply(&ReplyTo::of(&req), vec![Outgoing::new("echo", echo, PayloadType::Text)], &SendOptions::default())
            .await
            .unwrap();
        assert!(sent.pub_ack.is_none(), "a core-NATS publish");
        responder.flush().await.unwrap(); // before the client is dropped
    });
    let requester = client(&server, true).await;
    let reply = requester.request("svc.echo", text("ping"), &SendOptions::default(), Duration::from_secs(3)).await;
    serving.await.unwrap();
    assert_eq!(reply.unwrap().payloads[0].data, Data::Text("ping".into()));
}

/// A consumer hands over the deliveries that are ready in one batch, and its stopper ends a
/// waiting `next` from another task.
#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_batches_what_is_ready_and_a_stopper_ends_its_wait() {
    let server = NatsServer::start();
    let c = client(&server, true).await;
    c.add_stream(&StreamSettings::new("BATCH")).await.unwrap();
    for i in 0..4 {
        c.smartsend("BATCH.x", text(&i.to_string()), &SendOptions::default()).await.unwrap();
    }
    let mut consumer = c.consume("BATCH", "b", consume_opts(json!({}))).await.unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < 4 && tokio::time::Instant::now() < deadline {
        let batch = consumer.next_batch(10).await.unwrap();
        for d in batch {
            let d = d.unwrap();
            got.push(d.received.payloads[0].data.clone());
            d.ack.ack().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // let the rest be pulled
    }
    let want: Vec<Data> = (0..4).map(|i| Data::Text(i.to_string())).collect();
    assert_eq!(got, want);
    let stopper = consumer.stopper();
    let waiting = tokio::spawn(async move { consumer.next().await.is_none() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stopper.stop();
    assert!(tokio::time::timeout(Duration::from_secs(2), waiting).await.expect("stopped in time").unwrap());
}
