//! Everything that touches a socket: the NATS client and the link stores, driving the machines
//! of `protocol`; and the process-wide parts the bindings share (runtime, one-call clients).

mod byte_source;
mod client;
mod jetstream;
mod link_stream;
mod metrics;
pub mod one_call;
mod options;
mod outbox;
#[cfg(feature = "otel")]
pub mod span_export;
mod stop;
pub mod store;
mod trace;

pub use crate::protocol::{
    DEFAULT_NATS_URL, FileServerKind, Incoming, Outgoing, Received, ReplyTo, SendOptions, Sent, Settings,
};
pub use byte_source::ByteSource;
pub use client::{Arrival, Client, Subscription, smartreceive_direct, smartreceive_with_store};
pub use jetstream::{Consumer, Delivery, DeliveryAck, StreamSummary, SweepReport};
pub use link_stream::{LinkStream, StreamedMessage, StreamedPayload};
pub use metrics::{ByTransport, Metrics};
pub use options::ConnectOptions;
pub use outbox::Kick;
pub use stop::Stopper;
