//! Core's spans handed to a host's OpenTelemetry SDK (spec/PROTOCOL.md §13.2): the Python and
//! Node bindings turn each finished span into their SDK's `ReadableSpan` and give it to the
//! caller's span processor, so natsbridge's send, upload, publish, receive and download spans
//! appear in the caller's traces with the ids the messages carry.
//!
//! [`export_spans`] installs, once per process, a `tracing` subscriber with a
//! `tracing-opentelemetry` layer over an OpenTelemetry SDK tracer provider (parent-based
//! sampling: a caller's unsampled trace stays unrecorded). Each span that ends is written as
//! JSON on the thread that ends it and queued; a thread of its own hands the queue, in batches,
//! to the sink, so a host that must take a lock (Python's GIL) never holds up the runtime.
//!
//! One batch is a JSON array of spans:
//! `{"name", "kind": "internal"|"client"|"producer"|"consumer"|"server", "trace_id", "span_id"
//! (hex), "trace_flags", "trace_state" (header form), "parent_span_id" (hex, or null),
//! "parent_is_remote", "start" and "end" ([seconds, nanoseconds] since the Unix epoch),
//! "attributes" (an object), "links": [{"trace_id", "span_id", "trace_flags", "trace_state",
//! "attributes"}], "events": [{"name", "time", "attributes"}], "status": {"code":
//! "unset"|"ok"|"error", "description"}}`.

use crate::error::{Error, Result};
use opentelemetry::trace::{SpanContext, SpanKind, Status, TracerProvider as _};
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use serde_json::{Map, Value as Json, json};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};
use tracing_subscriber::layer::SubscriberExt;

/// Takes one batch of finished spans (JSON text, see the module's documentation).
pub type SpanSink = Arc<dyn Fn(String) + Send + Sync>;

/// The most spans handed over in one batch.
const BATCH: usize = 512;

static SINK: RwLock<Option<SpanSink>> = RwLock::new(None);
static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// From now on, every span core ends goes to `sink`, in batches, from a thread of its own. A
/// later call replaces the sink. INVALID_ARGUMENT when another `tracing` subscriber already
/// holds the process (a host that installed its own: it gets core's spans from its layer).
pub fn export_spans(sink: SpanSink) -> Result<()> {
    *SINK.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(sink);
    INSTALLED.get_or_init(install).clone().map_err(Error::invalid_argument)
}

fn install() -> std::result::Result<(), String> {
    let (queue, spans) = channel();
    let provider = SdkTracerProvider::builder().with_span_processor(Queue(queue)).build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("natsbridge"));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).map_err(|_| {
        "another tracing subscriber already holds this process: add a tracing-opentelemetry layer to it".to_owned()
    })?;
    std::thread::Builder::new()
        .name("natsbridge-spans".into())
        .spawn(move || hand_over(&spans))
        .map_err(|e| format!("cannot start the span thread: {e}"))?;
    // The provider lives as long as the process: the subscriber's tracer refers to it.
    std::mem::forget(provider);
    Ok(())
}

/// Waits for spans and hands them to the current sink, everything queued at once.
fn hand_over(spans: &Receiver<String>) {
    while let Ok(first) = spans.recv() {
        let mut batch = String::from("[");
        batch.push_str(&first);
        for span in spans.try_iter().take(BATCH - 1) {
            batch.push(',');
            batch.push_str(&span);
        }
        batch.push(']');
        let sink = SINK.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if let Some(sink) = sink {
            sink(batch);
        }
    }
}

/// Writes each ended span as JSON into the queue.
#[derive(Debug)]
struct Queue(Sender<String>);

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        let json = finished(&span).to_string();
        let _ = self.0.send(json);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn finished(span: &SpanData) -> Json {
    let parent =
        (span.parent_span_id != opentelemetry::trace::SpanId::INVALID).then(|| span.parent_span_id.to_string());
    let (code, description) = match &span.status {
        Status::Unset => ("unset", String::new()),
        Status::Ok => ("ok", String::new()),
        Status::Error { description } => ("error", description.to_string()),
    };
    let mut out = context(&span.span_context);
    out.extend([
        ("name".into(), json!(span.name)),
        ("kind".into(), json!(kind(&span.span_kind))),
        ("parent_span_id".into(), json!(parent)),
        ("parent_is_remote".into(), json!(span.parent_span_is_remote)),
        ("start".into(), time(span.start_time)),
        ("end".into(), time(span.end_time)),
        ("attributes".into(), attributes(&span.attributes)),
        ("status".into(), json!({"code": code, "description": description})),
    ]);
    let links = span.links.iter().map(|link| {
        let mut out = context(&link.span_context);
        out.insert("attributes".into(), attributes(&link.attributes));
        Json::Object(out)
    });
    out.insert("links".into(), Json::Array(links.collect()));
    let events = span.events.iter().map(
        |event| json!({"name": event.name, "time": time(event.timestamp), "attributes": attributes(&event.attributes)}),
    );
    out.insert("events".into(), Json::Array(events.collect()));
    Json::Object(out)
}

fn context(context: &SpanContext) -> Map<String, Json> {
    let mut out = Map::new();
    out.insert("trace_id".into(), json!(context.trace_id().to_string()));
    out.insert("span_id".into(), json!(context.span_id().to_string()));
    out.insert("trace_flags".into(), json!(context.trace_flags().to_u8()));
    out.insert("trace_state".into(), json!(context.trace_state().header()));
    out
}

fn kind(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    }
}

/// `[seconds, nanoseconds]`: exact in JSON numbers, as OpenTelemetry JS's `HrTime`.
fn time(at: SystemTime) -> Json {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    json!([since.as_secs(), since.subsec_nanos()])
}

fn attributes(attributes: &[KeyValue]) -> Json {
    Json::Object(attributes.iter().map(|kv| (kv.key.to_string(), value(&kv.value))).collect())
}

fn value(value: &Value) -> Json {
    match value {
        Value::Bool(b) => json!(b),
        Value::I64(i) => json!(i),
        Value::F64(f) => json!(f),
        Value::String(s) => json!(s.as_str()),
        Value::Array(Array::Bool(v)) => json!(v),
        Value::Array(Array::I64(v)) => json!(v),
        Value::Array(Array::F64(v)) => json!(v),
        Value::Array(Array::String(v)) => json!(v.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
        other => json!(other.to_string()),
    }
}
