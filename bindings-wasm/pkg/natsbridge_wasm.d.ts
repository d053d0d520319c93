/* tslint:disable */
/* eslint-disable */

/**
 * A connection's settings as core resolves them, and what follows from them: the sender, the
 * threshold, and (after `connected`) the link sources of receives.
 */
export class Config {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The options of nats.js `wsconnect` (INVALID_ARGUMENT when no server is named: a page has
     * no default server).
     */
    natsOptions(): any;
    /**
     * `options`: connection options by core's names (camelCase or snake_case), durations in
     * milliseconds. `sender_id`: the id to keep (a restarted core rebuilds a connection's config).
     */
    constructor(options: any, sender_id?: string | null);
    /**
     * The object store as @nats-io/obj takes it: `{bucket, ttl (ns, the bucket's max age when it
     * is created), chunkSize}`.
     */
    objectStore(): any;
    setJetStream(jetstream: boolean): void;
    readonly senderId: string;
    /**
     * The settings as text: equal settings, equal keys (the one-call style's shared connections).
     */
    readonly sharedKey: string;
}

/**
 * One received message as core's receive machine: `step(config)` says what to do —
 * `{action: "fetch", id, store: "object" | "http", url, bucket, name, size, attempt, delayMs}`
 * (sleep delayMs, fetch, answer with `head`/`objectHead` and `fetched` or `fetchFailed`),
 * `{action: "wait"}` (hand back the next result) or `{action: "done"}` (the payloads are read
 * by `envelopeJson`, `dataname`, `payloadType`, `transport` and `value`).
 */
export class Receiving {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The envelope as JSON (direct payloads' inline data is null; link payloads keep their URL).
     */
    envelopeJson(): string;
    /**
     * The error an error reply (NACK) carries, with its code and correlation id; null for any
     * other message.
     */
    errorReply(): any;
    /**
     * Fetch `id` failed: `fact` is what the host saw — `{network: message}`, `{notFound:
     * message}`, `{digestMismatch: message}`, or `{status, detail: Uint8Array}` (the start of an
     * error answer's body). Core decides whether it is tried again.
     */
    fetchFailed(config: Config, id: number, fact: any): void;
    /**
     * The bytes of fetch `id` (at most size + 1 read). `digest`: their sha256 when the host has
     * it, as lowercase hex (Web Crypto) or the object store's `SHA-256=<base64url>`; else core
     * hashes them.
     */
    fetched(id: number, bytes: Uint8Array | number[], digest?: string | null): void;
    /**
     * The head of fetch `id`'s HTTP answer: `status` (undefined for an opaque redirect), its
     * Location and announced length. Returns `{read, payload}`: read at most `read` bytes of the
     * body and answer `fetched(id, ...)` (payload true) or `fetchFailed(id, {status, detail})`;
     * or null: the answer is judged, read no more.
     */
    head(config: Config, id: number, status?: number | null, location?: string | null, content_length?: number | null): any;
    /**
     * Parses the message and checks every payload.
     */
    constructor(message: Uint8Array | number[]);
    /**
     * The size an object's info announces. Returns how many bytes of its data to read at most
     * (then answer `fetched`), or undefined: the fetch failed by it, read nothing.
     */
    objectHead(config: Config, id: number, size: number): number | undefined;
    /**
     * The payloads as `[dataname, value, payload_type]`: text → string, dictionary and
     * jsontable → their JSON value, arrowtable → its rows (with `rows`, spec/PROTOCOL.md §10.2)
     * or its IPC stream bytes, the byte types → Uint8Array.
     */
    payloads(rows: boolean): Array<any>;
    /**
     * What to do next (see the type's description), by the config's sources and limits.
     */
    step(config: Config): any;
    /**
     * How each payload travelled: "direct" or "link".
     */
    transports(): string[];
    readonly correlationId: string;
}

/**
 * One smartsend (or reply) as core's send machine: the host adds the payloads, then asks
 * `step()` what to do — `{action: "upload", index, bucket, name}` (store `bytes(index)` as that
 * object and answer `uploaded` or `uploadFailed`), `{action: "wait"}` (hand back the next upload
 * result) or `{action: "publish"}` (publish `json()` to `subject`).
 */
export class Sending {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * A payload given as JSON text (`JSON.stringify` of a dictionary, a jsontable's rows, or an
     * arrowtable's rows, which core builds into an IPC stream).
     */
    addJson(dataname: string, payload_type: string, json: string): void;
    /**
     * A payload given as a string or bytes (Uint8Array: an arrowtable's IPC stream, or raw bytes).
     */
    add(dataname: string, payload_type: string, value: any): void;
    /**
     * Payload `index`'s serialized bytes: what the upload stores.
     */
    bytes(index: number): Uint8Array;
    dataname(index: number): string;
    /**
     * The envelope JSON to publish, once `step()` said publish.
     */
    json(): string;
    /**
     * A message to `subject` with per-message `options`. `max_payload`: the server's, from its INFO.
     */
    constructor(config: Config, subject: any, options: any, max_payload: number);
    /**
     * A NACK to `request` reporting `code` (one of the error codes) and `message`.
     */
    static replyError(config: Config, request: any, code: any, message: any, max_payload: number): Sending;
    /**
     * A reply to `request` (an envelope from smartreceive or a subscription): to its reply_to,
     * else its NATS reply subject, with the header a reply takes unless `options` sets it.
     */
    static reply(config: Config, request: any, options: any, max_payload: number): Sending;
    /**
     * What to do next (see the type's description). An error ends the send: publish nothing.
     */
    step(): any;
    uploadFailed(index: number, message: string): void;
    /**
     * The upload of payload `index` is stored. `digest`: the object store's digest of the bytes
     * (`SHA-256=<base64url>`), when it has one; else core hashes them.
     */
    uploaded(index: number, digest?: string | null): void;
    readonly correlationId: string;
    /**
     * Where the message goes.
     */
    readonly subject: string;
}

export function __wbg_reset_state(): void;

/**
 * The one-call style's options (`smartsend(subject, data, {brokerUrl, ...})`) for a `purpose`
 * ("send" or "receive"): `broker_url` names the servers, per-message names go to the send, the
 * rest are connection options. Returns `{send, connect, key}`: `key` names the shared connection
 * of those connection options; null for a receive that names no server (it needs none).
 */
export function callOptions(options: any, purpose: string): any;

/**
 * A message re-serialized as `Envelope::to_json` writes it (nulls and missing fields filled in).
 */
export function canonicalEnvelopeJson(message: Uint8Array | number[]): string;

export function defaultSizeThreshold(): number;

/**
 * Core's error codes, in core's order.
 */
export function errorCodes(): string[];

/**
 * The `msg_purpose` values the seeds name.
 */
export function msgPurposes(): string[];

/**
 * Every connection option by its canonical name (README "One vocabulary").
 */
export function optionNames(): string[];

/**
 * Every per-message option by its canonical name.
 */
export function sendOptionNames(): string[];

/**
 * Called once by js/natsbridge.js with `NATSBridgeError` (constructor `(code, message, correlationId)`).
 */
export function setErrorClass(_class: Function): void;

/**
 * Lowercase hex SHA-256.
 */
export function sha256Hex(bytes: Uint8Array | number[]): string;

/**
 * The connection options a page cannot use (INVALID_ARGUMENT when given).
 */
export function unavailableOptions(): string[];

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_config_free: (a: number, b: number) => void;
    readonly __wbg_receiving_free: (a: number, b: number) => void;
    readonly __wbg_sending_free: (a: number, b: number) => void;
    readonly callOptions: (a: any, b: number, c: number) => [number, number, number];
    readonly canonicalEnvelopeJson: (a: number, b: number) => [number, number, number, number];
    readonly config_natsOptions: (a: number) => [number, number, number];
    readonly config_new: (a: any, b: number, c: number) => [number, number, number];
    readonly config_objectStore: (a: number) => any;
    readonly config_senderId: (a: number) => [number, number];
    readonly config_setJetStream: (a: number, b: number) => [number, number];
    readonly config_sharedKey: (a: number) => [number, number];
    readonly defaultSizeThreshold: () => number;
    readonly errorCodes: () => [number, number];
    readonly msgPurposes: () => [number, number];
    readonly optionNames: () => [number, number];
    readonly receiving_correlationId: (a: number) => [number, number];
    readonly receiving_envelopeJson: (a: number) => [number, number];
    readonly receiving_errorReply: (a: number) => any;
    readonly receiving_fetchFailed: (a: number, b: number, c: number, d: any) => void;
    readonly receiving_fetched: (a: number, b: number, c: number, d: number, e: number, f: number) => void;
    readonly receiving_head: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => any;
    readonly receiving_new: (a: number, b: number) => [number, number, number];
    readonly receiving_objectHead: (a: number, b: number, c: number, d: number) => [number, number];
    readonly receiving_payloads: (a: number, b: number) => [number, number, number];
    readonly receiving_step: (a: number, b: number) => [number, number, number];
    readonly receiving_transports: (a: number) => [number, number];
    readonly sendOptionNames: () => [number, number];
    readonly sending_add: (a: number, b: number, c: number, d: number, e: number, f: any) => [number, number];
    readonly sending_addJson: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number];
    readonly sending_bytes: (a: number, b: number) => any;
    readonly sending_correlationId: (a: number) => [number, number];
    readonly sending_dataname: (a: number, b: number) => [number, number];
    readonly sending_json: (a: number) => [number, number];
    readonly sending_new: (a: number, b: any, c: any, d: number) => [number, number, number];
    readonly sending_reply: (a: number, b: any, c: any, d: number) => [number, number, number];
    readonly sending_replyError: (a: number, b: any, c: any, d: any, e: number) => [number, number, number];
    readonly sending_step: (a: number) => [number, number, number];
    readonly sending_subject: (a: number) => [number, number];
    readonly sending_uploadFailed: (a: number, b: number, c: number, d: number) => void;
    readonly sending_uploaded: (a: number, b: number, c: number, d: number) => void;
    readonly setErrorClass: (a: any) => void;
    readonly sha256Hex: (a: number, b: number) => [number, number];
    readonly unavailableOptions: () => [number, number];
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __wbindgen_exn_store: (a: number) => void;
    readonly __externref_table_alloc: () => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __externref_drop_slice: (a: number, b: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
