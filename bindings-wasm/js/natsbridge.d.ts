// Types of the public API (js/natsbridge.js). Hand-written; the private WASM module's own
// declarations are generated into ../pkg/natsbridge_wasm.d.ts.
import type { NatsConnection, Msg } from "@nats-io/nats-core";
import type { Table } from "apache-arrow";

export * as arrow from "apache-arrow";

export type PayloadType =
  | "text" | "dictionary" | "jsontable" | "arrowtable" | "image" | "audio" | "video" | "binary";
export type ErrorCode =
  | "INVALID_PAYLOAD_TYPE" | "UPLOAD_FAILED" | "DOWNLOAD_FAILED" | "INVALID_TRANSPORT"
  | "NATS_CONNECTION_FAILED" | "DESERIALIZATION_ERROR" | "INVALID_ENVELOPE" | "CHECKSUM_MISMATCH"
  | "PAYLOAD_TOO_LARGE" | "URL_NOT_ALLOWED" | "TIMEOUT";
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
export declare const OBJECT_STORE_SCHEME: "nats-obj://";

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
/** What smartsend publishes. */
export interface Envelope extends EnvelopeHeader { payloads: WirePayload[] }
/** What smartreceive returns: payloads decoded, in order, and how each travelled. */
export interface Received extends EnvelopeHeader {
  payloads: [dataname: string, data: any, payload_type: PayloadType][];
  transports: ("direct" | "link")[];
  /** For a nats Msg: the subject it arrived on and its NATS reply subject. */
  subject?: string;
  reply?: string;
}

export interface RetryOptions { retries?: number; base_delay_ms?: number; max_delay_ms?: number }
export interface ReceiveOptions {
  arrow?: ArrowOut;
  allowed_origins?: string[];
  retry?: RetryOptions;
  max_download_bytes?: number;
}
export interface ConnectOptions extends ReceiveOptions {
  servers?: string | string[];
  broker_url?: string;
  name?: string; user?: string; pass?: string; token?: string;
  max_reconnects?: number;
  size_threshold?: number;
  sender_name?: string; sender_id?: string;
  object_store?: boolean; object_store_bucket?: string; object_store_ttl_ms?: number;
  wasm?: unknown;
}
export interface SendOptions {
  correlation_id?: string; msg_purpose?: string; sender_name?: string; sender_id?: string;
  receiver_name?: string; receiver_id?: string; reply_to?: string; reply_to_msg_id?: string;
  broker_url?: string; metadata?: Record<string, unknown>; size_threshold?: number;
}
export type Message = Msg | Uint8Array | ArrayBuffer | string;

export declare function init(wasm?: unknown): Promise<void>;
export declare function connect(opts: ConnectOptions): Promise<Connection>;
export declare function smartsend(subject: string, data: Payload[],
  opts: SendOptions & ConnectOptions & { connection?: Connection }): Promise<[Envelope, string]>;
export declare function smartreceive(msg: Message,
  opts?: ReceiveOptions & { connection?: Connection; wasm?: unknown }): Promise<Received>;
export declare function sha256Hex(bytes: Uint8Array): Promise<string>;
export declare function canonicalEnvelope(message: Message): Promise<string>;
export declare function coreConstants(): Promise<{ errorCodes: string[]; msgPurposes: string[]; sizeThreshold: number }>;

export declare class Connection {
  readonly nc: NatsConnection;
  readonly broker_url: string;
  readonly maxPayload: number;
  smartsend(subject: string, data: Payload[], opts?: SendOptions): Promise<[Envelope, string]>;
  smartreceive(msg: Message, opts?: { arrow?: ArrowOut }): Promise<Received>;
  subscribe(subject: string, opts?: { queue?: string; arrow?: ArrowOut }): Promise<Subscription>;
  /** Resolves with the reply; a NACK reply rejects with its error; no reply in time: TIMEOUT. */
  request(subject: string, data: Payload[], opts?: SendOptions & { timeout_ms?: number; arrow?: ArrowOut }): Promise<Received>;
  reply(request: Received, data: Payload[], opts?: SendOptions): Promise<[Envelope, string]>;
  replyError(request: Received, error: NATSBridgeError | { code: ErrorCode; message: string }): Promise<[Envelope, string]>;
  drain(): Promise<void>;
  close(): Promise<void>;
}

export declare class Subscription implements AsyncIterable<Received> {
  /** The next envelope, null once closed; TIMEOUT after timeout_ms; a bad message throws its code. */
  next(opts?: { timeout_ms?: number }): Promise<Received | null>;
  [Symbol.asyncIterator](): AsyncIterator<Received>;
  unsubscribe(): void;
}
