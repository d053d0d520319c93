//! The spans of a send and of a receive (spec/PROTOCOL.md §13.2) as `tracing` spans, and the
//! trace headers a message is published and received with (§13.1). With the `otel` feature and
//! a `tracing-opentelemetry` layer installed they are OpenTelemetry spans: a message carries its
//! publish span's context, a receive span continues the sender's trace, and a download span
//! links to its upload. With no subscriber listening, a span is disabled and costs a branch.

use crate::error::Error;
use crate::protocol::{Envelope, PayloadType, TraceContext};
use async_nats::HeaderMap;
use tracing::Span;
use tracing::field::Empty;

/// The spans of one send: `send` around it all, with an `upload` per link payload and a
/// `publish` (§13.2).
pub(super) struct SendTrace {
    send: Span,
    /// The host's context (a binding's current OpenTelemetry context), when it gave one.
    host: Option<TraceContext>,
    /// Per uploaded payload, its upload span's id, for the receiver's download spans to link to.
    #[cfg(feature = "otel")]
    upload_spans: Vec<(usize, [u8; 8])>,
}

impl SendTrace {
    pub(super) fn start(subject: &str, envelope: &Envelope, host: Option<&TraceContext>) -> SendTrace {
        let send = tracing::info_span!(
            "send",
            otel.name = format!("send {subject}"),
            otel.kind = "internal",
            messaging.system = "nats",
            messaging.destination.name = subject,
            messaging.message.conversation_id = envelope.correlation_id.as_str(),
            messaging.message.id = envelope.msg_id.as_str(),
            messaging.message.body.size = Empty,
            otel.status_code = Empty,
            error.type = Empty,
        );
        #[cfg(feature = "otel")]
        if let Some(host) = host {
            otel::continue_remote(&send, host);
        }
        SendTrace {
            send,
            host: host.cloned(),
            #[cfg(feature = "otel")]
            upload_spans: Vec::new(),
        }
    }

    /// The span of payload `index`'s upload; its id goes in the message's headers.
    pub(super) fn upload(
        &mut self,
        index: usize,
        correlation_id: &str,
        dataname: &str,
        payload_type: PayloadType,
        size: u64,
    ) -> Span {
        let span = tracing::info_span!(
            parent: &self.send,
            "upload",
            otel.name = format!("upload {dataname}"),
            otel.kind = "client",
            messaging.message.conversation_id = correlation_id,
            natsbridge.dataname = dataname,
            natsbridge.payload_type = <&str>::from(payload_type),
            natsbridge.size = int(size),
            otel.status_code = Empty,
            error.type = Empty,
        );
        #[cfg(feature = "otel")]
        if let Some(context) = otel::span_context(&span) {
            self.upload_spans.push((index, context.span_id().to_bytes()));
        }
        #[cfg(not(feature = "otel"))]
        let _ = index;
        span
    }

    /// The publish span and the headers the message goes with: the publish span's context when
    /// it is an OpenTelemetry span, else the host's context unchanged, else none.
    pub(super) fn publish(&self, subject: &str, body_size: usize) -> (Span, Option<HeaderMap>) {
        self.send.record("messaging.message.body.size", int(body_size));
        let span = tracing::info_span!(
            parent: &self.send,
            "publish",
            otel.name = format!("publish {subject}"),
            otel.kind = "producer",
            messaging.system = "nats",
            messaging.destination.name = subject,
            messaging.operation.type = "send",
            otel.status_code = Empty,
            error.type = Empty,
        );
        #[cfg(feature = "otel")]
        let carried = otel::span_context(&span).map(|context| TraceContext {
            traceparent: otel::traceparent(&context),
            tracestate: Some(context.trace_state().header()).filter(|s| !s.is_empty()),
            baggage: self.host.as_ref().and_then(|h| h.baggage.clone()),
            upload_spans: self.upload_spans.clone(),
        });
        #[cfg(not(feature = "otel"))]
        let carried = None;
        let headers = carried.or_else(|| self.host.clone()).map(|trace| headers_of(&trace));
        (span, headers)
    }

    pub(super) fn failed(&self, e: &Error) {
        failed(&self.send, e);
    }
}

/// OpenTelemetry's integers are i64 (`tracing-opentelemetry` records a u64 as text).
fn int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Records how many attempts a download took.
pub(super) fn attempts(span: &Span, attempts: u32) {
    span.record("natsbridge.attempts", i64::from(attempts));
}

/// Marks a span failed with the error's code.
pub(super) fn failed(span: &Span, e: &Error) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", e.code.as_str());
}

fn headers_of(trace: &TraceContext) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in trace.headers() {
        headers.insert(name, value.as_str());
    }
    headers
}

/// The trace context of a received message's headers (§13.1); `is_link(i)`: payload `i` came
/// by link.
pub(super) fn received_context(headers: Option<&HeaderMap>, is_link: impl Fn(usize) -> bool) -> Option<TraceContext> {
    let headers = headers?;
    TraceContext::from_headers(|name| headers.get(name).map(|v| v.as_str()), is_link)
}

/// The span of a receive, a child of the sender's publish span when the message carried its
/// context; the envelope's ids are recorded once it is decoded ([`identified`]).
pub(super) fn receive_span(subject: Option<&str>, body_size: usize, trace: Option<&TraceContext>) -> Span {
    let span = tracing::info_span!(
        "receive",
        otel.name = subject.map_or_else(|| "receive".to_owned(), |s| format!("receive {s}")),
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.destination.name = subject,
        messaging.operation.type = "receive",
        messaging.message.body.size = int(body_size),
        messaging.message.conversation_id = Empty,
        messaging.message.id = Empty,
        otel.status_code = Empty,
        error.type = Empty,
    );
    #[cfg(feature = "otel")]
    if let Some(trace) = trace {
        otel::continue_remote(&span, trace);
    }
    #[cfg(not(feature = "otel"))]
    let _ = trace;
    span
}

/// Records a received envelope's correlation id and msg_id on its receive span.
pub(super) fn identified(span: &Span, correlation_id: &str, msg_id: &str) {
    span.record("messaging.message.conversation_id", correlation_id);
    span.record("messaging.message.id", msg_id);
}

/// The trace context of a message off a subscription that was decoded at once (direct payloads
/// only), and its receive span, which ends here.
pub(super) fn received_now(
    message: &async_nats::Message,
    outcome: Result<(&str, &str), &Error>,
) -> Option<TraceContext> {
    let trace = received_context(message.headers.as_ref(), |_| false);
    let span = receive_span(Some(message.subject.as_str()), message.payload.len(), trace.as_ref());
    match outcome {
        Ok((correlation_id, msg_id)) => identified(&span, correlation_id, msg_id),
        Err(e) => failed(&span, e),
    }
    trace
}

/// The span of one link payload's download, linked to its upload when the sender named it.
pub(super) fn download_span(
    receive: &Span,
    index: usize,
    dataname: &str,
    payload_type: PayloadType,
    size: u64,
    trace: Option<&TraceContext>,
) -> Span {
    let span = tracing::info_span!(
        parent: receive,
        "download",
        otel.name = format!("download {dataname}"),
        otel.kind = "client",
        natsbridge.dataname = dataname,
        natsbridge.payload_type = <&str>::from(payload_type),
        natsbridge.size = int(size),
        natsbridge.attempts = Empty,
        otel.status_code = Empty,
        error.type = Empty,
    );
    #[cfg(feature = "otel")]
    if let Some((trace, upload)) = trace.and_then(|t| Some((t, t.upload_span(index)?))) {
        otel::link_upload(&span, trace, upload);
    }
    #[cfg(not(feature = "otel"))]
    let _ = (index, trace);
    span
}

#[cfg(feature = "otel")]
mod otel {
    use crate::protocol::{TraceContext, Traceparent};
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
    use std::str::FromStr;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// The OpenTelemetry span context of `span`, when a `tracing-opentelemetry` layer made it one.
    pub(super) fn span_context(span: &Span) -> Option<SpanContext> {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        span_context.is_valid().then_some(span_context)
    }

    pub(super) fn traceparent(context: &SpanContext) -> Traceparent {
        Traceparent {
            trace_id: context.trace_id().to_bytes(),
            span_id: context.span_id().to_bytes(),
            flags: context.trace_flags().to_u8(),
        }
    }

    fn remote(trace: &TraceContext, span_id: [u8; 8]) -> SpanContext {
        let state = trace.tracestate.as_deref().and_then(|s| TraceState::from_str(s).ok()).unwrap_or_default();
        let tp = &trace.traceparent;
        SpanContext::new(
            TraceId::from_bytes(tp.trace_id),
            SpanId::from_bytes(span_id),
            TraceFlags::new(tp.flags),
            true,
            state,
        )
    }

    /// Makes `span` (not yet entered) a child of the remote span `trace` names.
    pub(super) fn continue_remote(span: &Span, trace: &TraceContext) {
        let parent = opentelemetry::Context::new().with_remote_span_context(remote(trace, trace.traceparent.span_id));
        // Fails only when no OpenTelemetry layer is installed: the span is then no OTel span.
        let _ = span.set_parent(parent);
    }

    pub(super) fn link_upload(span: &Span, trace: &TraceContext, upload: [u8; 8]) {
        span.add_link(remote(trace, upload));
    }
}
