// Types of the natsbridge package (hand-written; the addon's own are in native.d.ts).

/// <reference types="node" />

import { Readable } from 'node:stream'

export type PayloadType = 'text' | 'dictionary' | 'arrowtable' | 'jsontable' | 'image' | 'audio' | 'video' | 'binary'

/** The core's stable error codes (an `Error` thrown by this package has one in `.code`). */
export type ErrorCode =
  | 'INVALID_PAYLOAD_TYPE'
  | 'UPLOAD_FAILED'
  | 'DOWNLOAD_FAILED'
  | 'INVALID_TRANSPORT'
  | 'NATS_CONNECTION_FAILED'
  | 'DESERIALIZATION_ERROR'
  | 'INVALID_ENVELOPE'
  | 'CHECKSUM_MISMATCH'
  | 'PAYLOAD_TOO_LARGE'
  | 'URL_NOT_ALLOWED'
  | 'TIMEOUT'
  | 'INVALID_ARGUMENT'

/** What every error of this package is: an `Error` with the core's code and, when the message
 * is known, its correlation id. */
export interface NATSBridgeError extends Error {
  code: ErrorCode
  correlationId: string | null
}

/** An apache-arrow `Table` (structural, so apache-arrow stays an optional dependency). */
export interface ArrowTableLike {
  readonly schema: unknown
  readonly batches: unknown[]
  readonly numRows: number
}

/** `[dataname, data, payload_type]`. data: text → string; dictionary → any JSON value;
 * jsontable → array of row objects; arrowtable → apache-arrow Table, Arrow IPC stream bytes or
 * an array of row objects; image/audio/video/binary → Buffer / Uint8Array / ArrayBuffer, or a
 * file as a `file:` URL (`pathToFileURL(path)`), or a {@link SizedStream}, read only while it is
 * sent: one too large to go direct is streamed to the link store, never held whole. */
export type Payload = [dataname: string, data: unknown, payloadType: PayloadType | string]

/** A byte payload read from a stream while it is sent: `stream` (a `Readable`, or any async
 * iterable of Buffers / Uint8Arrays) must give exactly `size` bytes, else the send fails with
 * UPLOAD_FAILED and nothing is published. It is read by one send. */
export interface SizedStream {
  stream: AsyncIterable<Uint8Array>
  size: number
}

/** A received payload: text → string; dictionary/jsontable → the JSON value; arrowtable →
 * Array<Object> (default), an apache-arrow Table (`arrow: 'table'`) or IPC bytes (`'ipc'`);
 * byte types → Buffer. */
export type ReceivedPayload = [dataname: string, data: any, payloadType: PayloadType]

export interface WirePayload {
  id: string
  dataname: string
  payload_type: PayloadType
  transport: 'direct' | 'link'
  encoding: string
  size: number
  data: string
  metadata: Record<string, unknown>
}

interface Header {
  correlation_id: string
  msg_id: string
  timestamp: string
  send_to: string
  msg_purpose: string
  sender_name: string
  sender_id: string
  receiver_name: string
  receiver_id: string
  reply_to: string
  reply_to_msg_id: string
  broker_url: string
  metadata: Record<string, unknown>
  /** On error replies (NACK). */
  error?: { code: string; message: string; details: unknown }
}

/** What the stream said to a durable publish (`duplicate`: it already held this msg_id, so the
 * message is stored once). */
export interface PubAck {
  stream: string
  sequence: number
  duplicate: boolean
}

/** The envelope as sent (`payloads` as on the wire). */
export interface SentEnvelope extends Header {
  payloads: WirePayload[]
  /** JetStream mode (`jetstream: true`) only: the stream's acknowledgement. Not on the wire. */
  pub_ack?: PubAck
}

/** A decoded message. */
export interface Envelope extends Header {
  payloads: ReceivedPayload[]
  /** One per payload: how it travelled. */
  transports: Array<'direct' | 'link'>
  /** The subject it arrived on (from a subscription). */
  subject?: string
  /** Its NATS reply subject, if any. */
  reply?: string
  /** The sender's trace context as W3C headers (`traceparent`, `tracestate`, `baggage`), for
   * `propagation.extract(ROOT_CONTEXT, env.trace_headers)`; absent when it carried none. */
  trace_headers?: Record<string, string>
}

export type ArrowOut = 'rows' | 'table' | 'ipc'

/** The seeds' `fileserver_upload_handler(fileserver_url, dataname, data) -> {url, ...}`: stores
 * the bytes and returns where a receiver fetches them (a URL string also works; a `status`
 * outside 2xx fails the upload). */
export type UploadHandler = (
  fileserverUrl: string,
  dataname: string,
  data: Buffer,
) => { url: string; [key: string]: unknown } | string | Promise<{ url: string; [key: string]: unknown } | string>
/** The seeds' `fileserver_download_handler(url, max_retries, base_delay_ms, max_delay_ms,
 * correlation_id) -> bytes` (delays in whole milliseconds); it retries on its own. */
export type DownloadHandler = (
  url: string,
  maxRetries: number,
  baseDelayMs: number,
  maxDelayMs: number,
  correlationId: string,
) => Uint8Array | ArrayBuffer | Promise<Uint8Array | ArrayBuffer>

/** Per-message options: core's names (`SEND_OPTION_NAMES`) in camelCase; the snake_case
 * spelling is accepted too. An unknown name or a bad value is INVALID_ARGUMENT. */
export interface SendOptions {
  /** Payloads at or over this many serialized bytes go by link (default: the connection's). */
  sizeThreshold?: number
  correlationId?: string
  msgPurpose?: string
  senderName?: string
  senderId?: string
  receiverName?: string
  receiverId?: string
  replyTo?: string
  replyToMsgId?: string
  metadata?: Record<string, unknown>
  /** The caller's trace context as W3C headers, as `propagation.inject(context.active(), carrier)`
   * fills a carrier: `{traceparent, tracestate?, baggage?}` (spec/PROTOCOL.md §13). */
  traceHeaders?: Record<string, string>
}

/** Where a one-call `smartsend` goes without a connection. */
export interface CallTarget {
  connection?: Connection
  /** Default: NATS_URL, else nats://localhost:4222. One connection per URL and file server per
   * process. */
  brokerUrl?: string
  /** A Plik server for link payloads (default FILESERVER_URL, else the JetStream object store);
   * with an upload handler, the handler's first argument. */
  fileserverUrl?: string
  /** Store this message's link payloads with your own function. */
  fileserverUploadHandler?: UploadHandler
}

/** A one-call `smartreceive`: links through the process-wide connection of `brokerUrl`, or
 * fetched by your own function (no connection needed), which serves URLs under the origin of
 * `fileserverUrl` and `allowedOrigins` (`scheme://host[:port][/path]`, or `scheme:` for a whole
 * custom scheme). */
export interface ReceiveOptions {
  connection?: Connection
  brokerUrl?: string
  fileserverUrl?: string
  fileserverDownloadHandler?: DownloadHandler
  allowedOrigins?: string[]
  /** Given to the download handler: attempts, first delay and cap in milliseconds. */
  maxRetries?: number
  baseDelay?: number
  maxDelay?: number
  /** How received arrowtables are given (default 'rows'). */
  arrow?: ArrowOut
}

/** Connection options: core's names (`OPTION_NAMES`) in camelCase, durations in milliseconds;
 * the snake_case spelling is accepted too. An unknown name or a bad value is INVALID_ARGUMENT. */
export interface ConnectOptions {
  /** Default: NATS_URL, else nats://localhost:4222. A string may list several, comma-separated. */
  servers?: string | string[]
  name?: string
  user?: string
  password?: string
  token?: string
  /** An nkey seed (`SU...`). */
  nkey?: string
  credentialsFile?: string
  tlsCaFile?: string
  tlsCertFile?: string
  tlsKeyFile?: string
  tlsRequired?: boolean
  /** -1: forever (default). */
  maxReconnectAttempts?: number
  /** Milliseconds. */
  reconnectTimeWait?: number
  /** Milliseconds (default 5000). */
  connectTimeout?: number
  /** Messages buffered per subscription. */
  pendingMsgsLimit?: number
  /** Payloads at or over this many serialized bytes go by link (default SIZE_THRESHOLD env, else 500000). */
  sizeThreshold?: number
  /** Default: FILESERVER_URL. */
  fileserverUrl?: string
  /** 'plik' (default), 'http' (PUT and GET on `{fileserverUrl}/{id}/{name}`) or 's3' (an
   * `s3://bucket/prefix` URL is an S3 store). */
  fileserverKind?: 'plik' | 'http' | 's3'
  objectStore?: boolean
  objectStoreBucket?: string
  /** Milliseconds. */
  objectStoreTtl?: number
  /** Replicas of the object store bucket when it is created (3 on a cluster). */
  objectStoreReplicas?: number
  /** smartsend publishes to the JetStream stream capturing the subject and awaits its PubAck
   * (`env.pub_ack`); a subject no stream captures is INVALID_ARGUMENT. */
  jetstream?: boolean
  /** Plik one-shot uploads: the first download consumes the file. */
  plikOneshot?: boolean
  /** Milliseconds. */
  plikTtl?: number
  plikToken?: string
  /** The S3 store (spec/PROTOCOL.md §8.5): unset ones come from the AWS environment variables and
   * the shared config and credentials files, as in the AWS SDKs. */
  s3Endpoint?: string
  s3Region?: string
  s3Profile?: string
  /** Default: 'path' with an endpoint, 'virtual' without. */
  s3AddressingStyle?: 'path' | 'virtual'
  s3AccessKeyId?: string
  s3SecretAccessKey?: string
  s3SessionToken?: string
  /** Links are presigned https URLs any HTTP client fetches until the TTL ends. */
  s3Presign?: boolean
  /** Milliseconds (default one hour). */
  s3Ttl?: number
  /** Further origins (`scheme://host[:port][/path]`) link payloads may be downloaded from. */
  allowedOrigins?: string[]
  /** Download attempts (default 5), first delay and cap in milliseconds (100, 5000). */
  maxRetries?: number
  baseDelay?: number
  maxDelay?: number
  maxDownloadBytes?: number
  /** What one received message may hold (spec/PROTOCOL.md §9.4): payloads (default 10,000). */
  maxPayloads?: number
  /** The payloads' declared sizes together (default 4 GiB). */
  maxMessageBytes?: number
  /** Nesting of a dictionary or jsontable payload (default and at most 128). */
  maxJsonDepth?: number
  /** Columns of an arrowtable payload (default 10,000). */
  maxArrowColumns?: number
  /** Record batches of an arrowtable payload (default 100,000). */
  maxArrowBatches?: number
  /** Values (rows, and every column's values) of an arrowtable payload beyond 16 per byte of its
   * stream (default 1,000,000): bounds what its rows expand to. */
  maxArrowValues?: number
  senderName?: string
  senderId?: string
  /** How received arrowtables are given (default 'rows'). */
  arrow?: ArrowOut
  /** Your own link store for the connection: uploads go to it first; the download handler
   * serves URLs under the origin of `fileserverUrl` and `allowedOrigins`. */
  fileserverUploadHandler?: UploadHandler
  fileserverDownloadHandler?: DownloadHandler
}

/** `addStream` settings: core's stream option names (`STREAM_OPTION_NAMES`) in camelCase,
 * durations in milliseconds (spec/PROTOCOL.md §12.2). */
export interface StreamOptions {
  /** Default `<name>.>`. An array, or one comma-separated string. */
  subjects?: string | string[]
  storage?: 'file' | 'memory'
  /** 1 to 5. */
  replicas?: number
  /** Milliseconds; default, and at most, the link store's TTL (no message outlives its links). */
  maxAge?: number
  retention?: 'limits' | 'workqueue' | 'interest'
  /** Milliseconds within which a publish retried with the same msg_id is stored once (default
   * 120000, or maxAge when shorter; longer than maxAge is INVALID_ARGUMENT). */
  duplicateWindow?: number
  /** Also create `<name>_DEAD_LETTER`, capturing `natsbridge.dead_letter.<name>` (default true). */
  deadLetter?: boolean
}

/** What `addStream` made (core's summary, core's names). */
export interface StreamSummary {
  name: string
  subjects: string[]
  /** Milliseconds; 0: unlimited. */
  max_age_ms: number
  replicas: number
  messages: number
  dead_letter_stream: string | null
}

/** `consume` settings: core's consume option names (`CONSUME_OPTION_NAMES`) in camelCase,
 * durations in milliseconds (spec/PROTOCOL.md §12.3); and the host's `arrow`. */
export interface ConsumeOptions {
  /** Milliseconds the server waits for a settlement before delivering again (default 30000). */
  ackWait?: number
  /** -1 (default): unlimited. */
  maxDeliver?: number
  /** Milliseconds: server-side redelivery delays. */
  backoff?: number[]
  maxAckPending?: number
  /** `ack()` waits for the server's confirmation. */
  doubleAck?: boolean
  /** Milliseconds: the nak delay after a failed link download, doubling per delivery (default 1000). */
  nakDelay?: number
  /** Default `natsbridge.dead_letter.<stream>`. */
  deadLetterSubject?: string
  filterSubject?: string
  /** Messages per pull (default 100). */
  batch?: number
  deliverFrom?: 'all' | 'new'
  /** How received arrowtables are given (default: the connection's). */
  arrow?: ArrowOut
}

/** Where a delivery came from (core's `DeliveryInfo`, core's names as on the envelope).
 * `delivered` is 1 on the first delivery; `replayed`: delivered again after a server restart lost
 * its count (then `delivered` says 1); `redelivered` covers both. */
export interface DeliveryInfo {
  stream: string
  consumer: string
  stream_sequence: number
  consumer_sequence: number
  delivered: number
  pending: number
  replayed: boolean
  redelivered: boolean
}

export interface SweepOptions {
  /** Only list what would be removed (default true). */
  dryRun?: boolean
  /** Milliseconds; default the stream's duplicate window. */
  minAge?: number
}

/** What a sweep found (and removed, unless it was a dry run). */
export interface SweepReport {
  stream: string
  /** Link objects uploaded for the stream's messages. */
  checked: number
  /** Those whose message is not in the stream and that are older than `minAge`. */
  orphans: Array<{ name: string; url: string; size: number; msg_id: string; age_ms: number }>
  dry_run: boolean
}

export declare function smartsend(
  subject: string,
  data: Payload[],
  opts?: SendOptions & CallTarget,
): Promise<[env: SentEnvelope, msgJson: string]>

/** msg: the message bytes, its text, or a nats.js `Msg`. */
export declare function smartreceive(
  msg: Uint8Array | ArrayBuffer | string | { data: Uint8Array },
  opts?: ReceiveOptions,
): Promise<Envelope>

/** Counts by transport: `direct` (envelopes on NATS) and `link` (link payloads). */
export interface ByTransport {
  direct: number
  link: number
}

/** A connection's counts (spec/PROTOCOL.md §13.3). */
export interface Metrics {
  messagesSent: number
  messagesReceived: number
  payloadsSent: ByTransport
  payloadsReceived: ByTransport
  /** Envelope bytes published (`direct`), link payload bytes uploaded (`link`). */
  bytesSent: ByTransport
  /** Envelope bytes received (`direct`), link payload bytes downloaded and verified (`link`). */
  bytesReceived: ByTransport
  downloadRetries: number
  checksumFailures: number
  downloads: number
  downloadTimeMs: number
}

/** A string is `servers`. */
export declare function connect(opts?: ConnectOptions | string): Promise<Connection>

/** Drains the process-wide connections of the one-call style. */
export declare function close(): Promise<void>

/** Hands natsbridge's own spans (send, upload, publish, receive, download) to an OpenTelemetry
 * SDK span processor as `ReadableSpan`s, with the span ids the messages carry. `resource`
 * defaults to @opentelemetry/resources' `defaultResource()`. A later call replaces the
 * processor; once called, the spans are made for the rest of the process. */
export declare function exportSpans(
  processor: { onEnd(span: any): void },
  options?: { resource?: unknown },
): void

export declare class Connection {
  private constructor()
  readonly senderId: string
  readonly maxPayload: number
  /** What this connection sent and received since it connected (spec/PROTOCOL.md §13.3); with
   * @opentelemetry/api also observable instruments of the `natsbridge` meter. */
  metrics(): Metrics
  smartsend(
    subject: string,
    data: Payload[],
    opts?: SendOptions & { fileserverUrl?: string; fileserverUploadHandler?: UploadHandler },
  ): Promise<[env: SentEnvelope, msgJson: string]>
  smartreceive(msg: Uint8Array | ArrayBuffer | string | { data: Uint8Array }, opts?: { arrow?: ArrowOut }): Promise<Envelope>
  /** Resolves once the server has the subscription. */
  subscribe(subject: string, opts?: { queue?: string; arrow?: ArrowOut }): Promise<Subscription>
  /** A NACK reply rejects with its code; no reply within `timeout` ms (default 5000): TIMEOUT. */
  request(subject: string, data: Payload[], opts?: SendOptions & { timeout?: number; arrow?: ArrowOut }): Promise<Envelope>
  reply(request: Envelope, data: Payload[], opts?: SendOptions): Promise<[env: SentEnvelope, msgJson: string]>
  replyError(request: Envelope, code: ErrorCode, message: string): Promise<[env: SentEnvelope, msgJson: string]>
  /** Creates (or updates) a JetStream stream and its dead-letter stream. */
  addStream(name: string, opts?: StreamOptions): Promise<StreamSummary>
  /** A durable pull consumer (created, or updated to these options) on an existing stream. */
  consume(stream: string, durable: string, opts?: ConsumeOptions): Promise<Consumer>
  /** Object-store link objects of `stream` whose message never reached it: listed, and removed
   * when `dryRun` is false. */
  sweepLinks(stream: string, opts?: SweepOptions): Promise<SweepReport>
  flush(): Promise<void>
  /** Writes out pending publishes, delivers what is in flight, unsubscribes and closes. */
  close(): Promise<void>
  /** Same as close(). */
  drain(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export declare class Subscription implements AsyncIterable<Envelope> {
  private constructor()
  /** The next envelope, null once closed; TIMEOUT when nothing arrives within `timeout` ms. */
  next(opts?: { timeout?: number }): Promise<Envelope | null>
  /** Like `next`, with each link payload's data a `LinkStream` (nothing is fetched until it is
   * read); messages a `for await` loop already took come first, as `next` gives them. */
  nextStreamed(opts?: { timeout?: number }): Promise<Envelope | null>
  /** Leaving a `for await` loop unsubscribes. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Envelope>
  unsubscribe(): Promise<void>
}

/** A link payload's bytes as they arrive (`sub.nextStreamed()`): a `Readable` of Buffers, or
 * `save(path)`; read it one way, once. The last read checks the size and sha256: the stream
 * errors with CHECKSUM_MISMATCH rather than end on other bytes. */
export declare class LinkStream extends Readable {
  private constructor()
  readonly dataname: string
  readonly payloadType: PayloadType
  /** The envelope's size in bytes. */
  readonly size: number
  /** The bytes' sha256 (hex) once every byte was read and checked; null before. */
  readonly sha256: string | null
  /** Writes the bytes to `path` through `<path>.partial`, renamed once they are checked; the
   * number of bytes written. */
  save(path: string): Promise<number>
}

/** Decoded deliveries of a durable consumer. A delivery that fails to decode is settled by the
 * core's rule (nak, or dead letter then term) and never yielded. */
export declare class Consumer implements AsyncIterable<Delivery> {
  private constructor()
  readonly stream: string
  readonly durable: string
  /** The next delivery, null once closed; TIMEOUT when nothing arrives within `timeout` ms (a
   * number alone is the timeout too). */
  next(opts?: { timeout?: number } | number): Promise<Delivery | null>
  /** Leaving a `for await` loop closes the consumer. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Delivery>
  /** Stops pulling; the durable consumer stays on the server, where the same name resumes. */
  close(): Promise<void>
  /** Same as close(). */
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** One decoded delivery; settle it once (a second settlement is INVALID_ARGUMENT). */
export declare class Delivery {
  private constructor()
  /** Decoded as a subscription yields it. */
  readonly envelope: Envelope
  readonly info: DeliveryInfo
  /** Processed: not delivered again. */
  ack(): Promise<void>
  /** Delivered again after `delayMs` (default at once). */
  nak(delayMs?: number): Promise<void>
  /** Still working on it: the server waits another ackWait. May be repeated. */
  inProgress(): Promise<void>
  /** Never to be processed: not delivered again. */
  term(): Promise<void>
}

export declare const ERROR_CODES: readonly ErrorCode[]
export declare const PAYLOAD_TYPES: readonly PayloadType[]
export declare const MSG_PURPOSES: readonly string[]
/** Every connection option by core's canonical snake_case name. */
export declare const OPTION_NAMES: readonly string[]
/** Every per-message option by core's canonical snake_case name. */
export declare const SEND_OPTION_NAMES: readonly string[]
/** Every stream setting (`addStream`) by core's canonical snake_case name. */
export declare const STREAM_OPTION_NAMES: readonly string[]
/** Every consumer setting (`consume`) by core's canonical snake_case name. */
export declare const CONSUME_OPTION_NAMES: readonly string[]
export declare const DEFAULT_SIZE_THRESHOLD: number

export declare const TEXT: 'text'
export declare const DICTIONARY: 'dictionary'
export declare const ARROWTABLE: 'arrowtable'
export declare const JSONTABLE: 'jsontable'
export declare const IMAGE: 'image'
export declare const AUDIO: 'audio'
export declare const VIDEO: 'video'
export declare const BINARY: 'binary'

export declare const ACK: 'ACK'
export declare const NACK: 'NACK'
export declare const UPDATE_STATUS: 'updateStatus'
export declare const SHUTDOWN: 'shutdown'
export declare const CHAT: 'chat'
export declare const COMMAND: 'command'
export declare const EVENT: 'event'
