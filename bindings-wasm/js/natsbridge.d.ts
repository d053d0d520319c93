// Types of the public API (js/natsbridge.js). Hand-written; the private WASM module's own
// declarations are generated into ../pkg/natsbridge_wasm.d.ts. Option names are core's
// (README "One vocabulary") in camelCase; their snake_case spellings are accepted too. Durations
// are milliseconds. tests/browser.test.mjs checks these names against the core's.
import type { NatsConnection, Msg } from "@nats-io/nats-core";
import type { Table } from "apache-arrow";

export * as arrow from "apache-arrow";

export type PayloadType =
  | "text" | "dictionary" | "jsontable" | "arrowtable" | "image" | "audio" | "video" | "binary";
export type ErrorCode =
  | "INVALID_PAYLOAD_TYPE" | "UPLOAD_FAILED" | "DOWNLOAD_FAILED" | "INVALID_TRANSPORT"
  | "NATS_CONNECTION_FAILED" | "DESERIALIZATION_ERROR" | "INVALID_ENVELOPE" | "CHECKSUM_MISMATCH"
  | "PAYLOAD_TOO_LARGE" | "URL_NOT_ALLOWED" | "TIMEOUT" | "INVALID_ARGUMENT";
export type ArrowOut = "rows" | "table" | "ipc";

/** text: string; dictionary: any JSON value; jsontable: row objects; arrowtable: an apache-arrow
 * Table, Arrow IPC stream bytes or row objects; image/audio/video/binary: bytes. */
export type PayloadData = string | Uint8Array | ArrayBuffer | ArrayBufferView | Table | unknown;
export type Payload = [dataname: string, data: PayloadData, payload_type: PayloadType];

export declare const ERROR_CODES: readonly ErrorCode[];
export declare const MSG_PURPOSE: Readonly<{
  ACK: "ACK"; NACK: "NACK"; UPDATE_STATUS: "updateStatus"; SHUTDOWN: "shutdown"; CHAT: "chat";
  COMMAND: "command"; EVENT: "event";
}>;

export declare class NATSBridgeError extends Error {
  constructor(code: ErrorCode, message: string, correlationId?: string | null);
  readonly name: "NATSBridgeError";
  readonly code: ErrorCode;
  /** The message without the code and correlation id. */
  readonly reason: string;
  readonly correlation_id: string | null;
}

export interface WirePayload {
  id: string; dataname: string; payload_type: PayloadType; transport: "direct" | "link";
  encoding: string; size: number; data: string | null; metadata: Record<string, unknown>;
}
export interface EnvelopeHeader {
  correlation_id: string; msg_id: string; timestamp: string; send_to: string; msg_purpose: string;
  sender_name: string; sender_id: string; receiver_name: string; receiver_id: string;
  reply_to: string; reply_to_msg_id: string; broker_url: string; metadata: Record<string, unknown>;
  error?: { code: string; message: string; details: unknown };
}
/** What smartsend publishes (in JetStream mode with the stream's PubAck). */
export interface Envelope extends EnvelopeHeader { payloads: WirePayload[]; pub_ack?: PubAck }
/** What the stream said to a durable publish (`duplicate`: it already held this msg_id). */
export interface PubAck { stream: string; sequence: number; duplicate: boolean }
/** What smartreceive returns: payloads decoded, in order, and how each travelled. */
export interface Received extends EnvelopeHeader {
  payloads: [dataname: string, data: any, payload_type: PayloadType][];
  transports: ("direct" | "link")[];
  /** For a nats Msg: the subject it arrived on and its NATS reply subject. */
  subject?: string;
  reply?: string;
  /** The sender's trace context from the message's NATS headers (spec/PROTOCOL.md §13), as W3C
   * headers for `propagation.extract(ROOT_CONTEXT, env.trace_headers)`; absent when it carried
   * none (or only malformed ones, which are dropped). */
  trace_headers?: TraceHeaders;
}
/** W3C trace context headers, as an OpenTelemetry propagator fills a carrier. */
export interface TraceHeaders {
  traceparent: string;
  tracestate?: string;
  baggage?: string;
}

/** Where links may be fetched from and how (links from other origins: URL_NOT_ALLOWED, no request),
 * and what one received message may hold. */
export interface DownloadOptions {
  /** `scheme://host[:port][/path]`: links under it are fetched (no redirects followed). */
  allowedOrigins?: string | string[];
  /** Attempts per link in all (default 5). */
  maxRetries?: number;
  /** ms before the second attempt, doubling after each (default 100). */
  baseDelay?: number;
  /** ms, the longest wait between attempts (default 5000). */
  maxDelay?: number;
  /** Links declaring more bytes are refused with PAYLOAD_TOO_LARGE (default 4 GiB). */
  maxDownloadBytes?: number;
  /** What one received message may hold (spec/PROTOCOL.md §9.4): payloads (default 10,000). */
  maxPayloads?: number;
  /** The payloads' declared sizes together (default 4 GiB). */
  maxMessageBytes?: number;
  /** Nesting of a dictionary or jsontable payload (default and at most 128). */
  maxJsonDepth?: number;
  /** Columns of an arrowtable payload (default 10,000). */
  maxArrowColumns?: number;
  /** Record batches of an arrowtable payload (default 100,000). */
  maxArrowBatches?: number;
  /** Values (rows, and every column's values) of an arrowtable payload beyond 16 per byte of its
   * stream (default 1,000,000): bounds what its rows expand to. */
  maxArrowValues?: number;
}
/** Connection options by core's names (the defaults are core's). */
export interface ConnectOptions extends DownloadOptions {
  /** ws:// or wss:// URLs of nats-server websocket listeners (a comma-separated string or a list). */
  servers?: string | string[];
  name?: string; user?: string; password?: string; token?: string;
  /** -1: forever (the default). */
  maxReconnectAttempts?: number;
  reconnectTimeWait?: number;
  connectTimeout?: number;
  /** Payloads of this many serialized bytes or more go by link (default 500,000). */
  sizeThreshold?: number;
  /** Use the JetStream object store for links (default true). */
  objectStore?: boolean;
  objectStoreBucket?: string;
  /** ms an uploaded object is kept (the bucket's max age when it is created; default 1 h). */
  objectStoreTtl?: number;
  /** Replicas of the object store bucket when it is created (default 1). */
  objectStoreReplicas?: number;
  /** smartsend publishes durably to the stream that captures the subject (default false). */
  jetstream?: boolean;
  senderName?: string;
  /** Default: a UUID made once per connection. */
  senderId?: string;
  /** How an arrowtable is returned (default "rows"). */
  arrow?: ArrowOut;
  /** The WASM module (see init). */
  wasm?: unknown;
}
/** Per-message options by core's names. */
export interface SendOptions {
  sizeThreshold?: number;
  correlationId?: string;
  msgPurpose?: string;
  senderName?: string;
  senderId?: string;
  receiverName?: string;
  receiverId?: string;
  replyTo?: string;
  replyToMsgId?: string;
  metadata?: Record<string, unknown>;
  /** The caller's trace context as W3C headers, as `propagation.inject(context.active(), carrier)`
   * fills a carrier: `traceparent`, optionally `tracestate` and `baggage` (spec/PROTOCOL.md §13),
   * published as the message's NATS headers. A malformed one is INVALID_ARGUMENT, before anything
   * is sent. */
  traceHeaders?: TraceHeaders | Record<string, string>;
}
export type Message = Msg | Uint8Array | ArrayBuffer | string;

/** `addStream` settings by core's stream option names (spec/PROTOCOL.md §12.2). */
export interface StreamOptions {
  /** Default `<name>.>`. */
  subjects?: string | string[];
  storage?: "file" | "memory";
  /** 1 to 5. */
  replicas?: number;
  /** ms; default, and at most, the object store TTL (no message outlives its links). */
  maxAge?: number;
  retention?: "limits" | "workqueue" | "interest";
  /** ms within which a publish retried with the same msg_id is stored once (default 120000). */
  duplicateWindow?: number;
  /** Also create `<name>_DEAD_LETTER`, capturing `natsbridge.dead_letter.<name>` (default true). */
  deadLetter?: boolean;
}
/** What `addStream` made (core's stream summary). */
export interface StreamSummary {
  name: string; subjects: string[]; max_age_secs: number; replicas: number; messages: number;
  dead_letter_stream: string | null;
}
/** `consume` settings by core's consume option names (spec/PROTOCOL.md §12.3). */
export interface ConsumeOptions {
  /** ms the server waits for a settlement before delivering again (default 30000). */
  ackWait?: number;
  /** -1 (default): unlimited. */
  maxDeliver?: number;
  /** ms, server-side redelivery delays. */
  backoff?: number[];
  maxAckPending?: number;
  /** ack() waits for the server's confirmation. */
  doubleAck?: boolean;
  /** ms; the nak delay after a failed link download, doubling per delivery (default 1000). */
  nakDelay?: number;
  /** Default `natsbridge.dead_letter.<stream>`. */
  deadLetterSubject?: string;
  filterSubject?: string;
  /** Messages per pull (default 100). */
  batch?: number;
  deliverFrom?: "all" | "new";
  arrow?: ArrowOut;
}
/** Where a delivery came from; `delivered` is 1 on the first delivery. `replayed`: delivered
 * again after a server restart lost its count (then `delivered` says 1); `redelivered` covers both. */
export interface DeliveryInfo {
  stream: string; consumer: string; stream_sequence: number; consumer_sequence: number;
  delivered: number; pending: number; replayed: boolean; redelivered: boolean;
}

export declare function init(wasm?: unknown): Promise<void>;
export declare function connect(opts: ConnectOptions): Promise<Connection>;
/** On `connection`, else on the shared connection of `brokerUrl` and the connection options. */
export declare function smartsend(subject: string, data: Payload[],
  opts: SendOptions & ConnectOptions & { connection?: Connection; brokerUrl?: string }): Promise<[Envelope, string]>;
/** With `connection` or `brokerUrl` links may come from the object store; else from allowedOrigins only. */
export declare function smartreceive(msg: Message,
  opts?: DownloadOptions & { arrow?: ArrowOut; connection?: Connection; brokerUrl?: string; wasm?: unknown }): Promise<Received>;
/** Closes (drains) the shared connections of the one-call style. */
export declare function close(): Promise<void>;
export declare function sha256Hex(bytes: Uint8Array): Promise<string>;
export declare function canonicalEnvelope(message: Message): Promise<string>;
export declare function coreConstants(): Promise<{
  errorCodes: string[]; msgPurposes: string[]; sizeThreshold: number; optionNames: string[];
  sendOptionNames: string[]; unavailableOptions: string[];
}>;

export declare class Connection {
  readonly nc: NatsConnection;
  readonly maxPayload: number;
  /** Without an upload it resolves at once; the envelope goes to nats.js with the other sends of
   * the same burst (README "Batching"), before any timer, event or input runs. */
  smartsend(subject: string, data: Payload[], opts?: SendOptions): Promise<[Envelope, string]>;
  smartreceive(msg: Message, opts?: { arrow?: ArrowOut }): Promise<Received>;
  subscribe(subject: string, opts?: { queue?: string; arrow?: ArrowOut }): Promise<Subscription>;
  /** Resolves with the reply; a NACK reply rejects with its error; no reply in `timeout` ms (default 5000): TIMEOUT. */
  request(subject: string, data: Payload[], opts?: SendOptions & { timeout?: number; arrow?: ArrowOut }): Promise<Received>;
  reply(request: Received, data: Payload[], opts?: SendOptions): Promise<[Envelope, string]>;
  /** Creates (or updates) a JetStream stream and its dead-letter stream. */
  addStream(name: string, opts?: StreamOptions): Promise<StreamSummary>;
  /** A durable pull consumer (created or updated) on an existing stream. */
  consume(stream: string, durable: string, opts?: ConsumeOptions): Promise<Consumer>;
  replyError(request: Received, code: ErrorCode, message: string): Promise<[Envelope, string]>;
  flush(): Promise<void>;
  drain(): Promise<void>;
  /** Drains first: what was published is sent, what is in flight is delivered. */
  close(): Promise<void>;
}

export declare class Subscription implements AsyncIterable<Received> {
  /** The next envelope, null once closed; TIMEOUT after `timeout` ms; a bad message throws its code.
   * Messages already waiting are decoded together, in one core call. */
  next(opts?: { timeout?: number }): Promise<Received | null>;
  /** Like `next`, with each link payload's data a LinkStream (spec/PROTOCOL.md §8.3.2): nothing is
   * fetched until it is read. Every link is checked against the allowed origins first
   * (URL_NOT_ALLOWED, no request); direct payloads are decoded as `next` decodes them. */
  nextStreamed(opts?: { timeout?: number }): Promise<Received | null>;
  [Symbol.asyncIterator](): AsyncIterator<Received>;
  unsubscribe(): void;
}

/** A link payload's bytes as they arrive (`sub.nextStreamed()`): read `stream`, or the LinkStream
 * itself with `for await`, or collect it with `bytes()` / `arrayBuffer()`; one way, once. Nothing is
 * fetched before the first read. Each chunk is checked as it arrives and the end checks the size
 * and sha256, so a stream that ends without an error delivered exactly the sender's bytes; else it
 * errors with CHECKSUM_MISMATCH (or DOWNLOAD_FAILED once the retries are spent). The bytes are the
 * payload's serialized bytes (an arrowtable's IPC stream, a dictionary's JSON text). */
export declare class LinkStream implements AsyncIterable<Uint8Array> {
  readonly dataname: string;
  readonly payload_type: PayloadType;
  /** The same as `payload_type`. */
  readonly payloadType: PayloadType;
  /** The envelope's size of the payload, in bytes. */
  readonly size: number;
  /** The bytes' sha256 (lowercase hex) once every byte was read and checked; null before. */
  readonly sha256: string | null;
  /** The bytes, pulled as they are read (`pipeTo` a file's writable, `for await`, `getReader()`). */
  readonly stream: ReadableStream<Uint8Array>;
  /** Every byte, checked; INVALID_ARGUMENT once the stream was read (it would miss those bytes). */
  bytes(): Promise<Uint8Array>;
  arrayBuffer(): Promise<ArrayBuffer>;
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>;
}

/** Decoded deliveries of a durable consumer. Deliveries that fail to decode are settled by the
 * core's rule (nak, or dead letter then term) and never yielded. */
export declare class Consumer implements AsyncIterable<Delivery> {
  readonly stream: string;
  readonly durable: string;
  /** The next delivery, null once stopped or closed; TIMEOUT after `timeout` ms. */
  next(opts?: { timeout?: number }): Promise<Delivery | null>;
  [Symbol.asyncIterator](): AsyncIterator<Delivery>;
  /** Stops pulling; the durable consumer stays on the server. */
  stop(): void;
}

/** One decoded delivery; settle it once (a second settlement is INVALID_ARGUMENT). */
export declare class Delivery {
  readonly envelope: Received;
  readonly info: DeliveryInfo;
  ack(): Promise<void>;
  /** Delivered again after `delayMs` (default at once). */
  nak(delayMs?: number): Promise<void>;
  /** Still working: the server waits another ackWait. */
  inProgress(): Promise<void>;
  term(): Promise<void>;
}
