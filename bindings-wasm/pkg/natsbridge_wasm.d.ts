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
     * is created), replicas (when it is created), chunkSize}`.
     */
    objectStore(): any;
    setJetStream(jetstream: boolean): void;
    /**
     * JetStream mode: `smartsend` publishes durably (the `jetstream` option).
     */
    readonly jetstream: boolean;
    readonly senderId: string;
    /**
     * The settings as text: equal settings, equal keys (the one-call style's shared connections).
     */
    readonly sharedKey: string;
}

/**
 * One durable pull consumer as core's rules see it: its validated options, what to create it
 * with, and how its deliveries that fail to decode are settled.
 */
export class Consuming {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Whether `ack` waits for the server's confirmation, for a delivery with `links` link objects
     * to delete.
     */
    ackWaits(links: number): boolean;
    /**
     * After the dead letter was published (`published`) or not: `{action: "term"}`, or `{action:
     * "nak", delayMs}` (a delivery is never terminated without its dead letter).
     */
    afterDeadLetter(published: boolean, delivered: number): any;
    /**
     * The consumer as @nats-io/jetstream's `ConsumerConfig` takes it (durations in nanoseconds).
     */
    consumerConfig(): any;
    /**
     * A delivery's info from nats.js `JsMsg.info`, as `DeliveryInfo::to_json` writes it.
     */
    deliveryInfo(info: any): any;
    /**
     * `options`: core's consume option names (camelCase or snake_case), durations in ms.
     * INVALID_ARGUMENT for a bad name or setting, or redeliveries that could outlive the links.
     */
    constructor(config: Config, stream: any, durable: any, options: any);
    /**
     * The options of nats.js `consumer.consume()`: `{max_messages: batch, expires, idle_heartbeat}` (ms).
     */
    pullOptions(): any;
    /**
     * The stream's retention policy, as the server reports it: a work-queue stream's link objects
     * are deleted after the final ack.
     */
    setRetention(retention: string): void;
    /**
     * How a delivery that failed to decode with `error` (a NATSBridgeError) on its `delivered`-th
     * delivery is settled: `{action: "nak", delayMs}`, or `{action: "deadLetter"}` (publish its
     * dead letter, then ask `afterDeadLetter`).
     */
    settlement(error: any, delivered: number): any;
    /**
     * The wait before pulling again after `stalls` failed or ended pulls in a row.
     */
    stallDelayMs(stalls: number): number;
    /**
     * Where this consumer's dead letters go.
     */
    readonly deadLetterSubject: string;
    /**
     * Whether an ack deletes the delivery's link objects (then it waits for the server's
     * confirmation first).
     */
    readonly deletesLinks: boolean;
    readonly durable: string;
    /**
     * How often a delivery being decoded is reported in progress: every `ack_wait / 2`.
     */
    readonly keepaliveMs: number;
    readonly stream: string;
}

/**
 * One link payload's bytes on their way to the page. The host asks `open()` where to read
 * from, reports the answer's head (`httpHead` / `objectHead`), hands every chunk of the body to
 * `chunk` (which says how many of its first bytes were already delivered), and calls `end()`
 * when the body ended, or `failed(fact)` when the attempt broke. Each of these throws the
 * stream's error when it is final (DOWNLOAD_FAILED once the retries are spent, CHECKSUM_MISMATCH
 * for other bytes, URL_NOT_ALLOWED for a redirect out of the allowed origins), with the
 * message's correlation id; after it, or after `end()`, the reading is over.
 */
export class LinkReading {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * A chunk of the body, checked as it arrives (CHECKSUM_MISMATCH once there are more bytes
     * than the size). Returns how many of its first bytes were already delivered by an earlier
     * attempt: deliver the rest.
     */
    chunk(bytes: Uint8Array | number[]): number;
    /**
     * The body ended: checks the size and the sha256 (the metadata's, and the object store's
     * own digest). Returns the bytes' hex sha256; CHECKSUM_MISMATCH otherwise.
     */
    end(): string;
    /**
     * The attempt broke (`fact` as `Receiving.fetchFailed` takes it: `{network}` for a failed
     * request or a body cut off, `{digestMismatch}`, `{notFound}`, `{status, detail}`). Returns
     * when another attempt is due (`open()` again); throws the stream's error otherwise.
     */
    failed(fact: any): void;
    /**
     * The head of the HTTP answer (`status` undefined for an opaque redirect; `content_range`
     * undefined when the server does not expose it to the page). Returns `{payload: true}`: read
     * the body, each chunk through `chunk`; `{detail: n}`: an error answer, read at most `n` bytes
     * of it and report `failed({status, detail})`; or null: the attempt failed, `open()` again.
     * A `206` answers the range asked for: it starts where its `Content-Range` says (where it was
     * asked to when the page cannot read that header), never past the bytes delivered.
     */
    httpHead(status?: number | null, location?: string | null, content_length?: number | null, content_range?: string | null): { payload: true } | { detail: number } | null;
    /**
     * The object's info: its `size` (against the envelope's: CHECKSUM_MISMATCH before a byte is
     * read) and `digest` (`SHA-256=<base64url>`, checked at the end). True: read its data from
     * the start, each chunk through `chunk`; false: the attempt failed, `open()` again.
     */
    objectHead(size: number, digest?: string | null): boolean;
    /**
     * Where to read next: `{store: "object", bucket, name, delayMs, attempt}` (the object store
     * has no ranges: it is read from the start) or `{store: "http", url, range, delayMs,
     * attempt}` (`range`: the `Range` header asking for the bytes not delivered yet, or
     * undefined). Sleep `delayMs` first.
     */
    open(): { store: string; bucket?: string; name?: string; url?: string; range?: string; delayMs: number; attempt: number };
    readonly dataname: string;
    readonly payloadType: string;
    /**
     * The hex sha256 of the bytes once `end()` checked them; undefined before.
     */
    readonly sha256: string | undefined;
    /**
     * The envelope's size of the payload.
     */
    readonly size: number;
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
     * Parses the message and checks every payload, within the config's receive limits.
     */
    constructor(message: Uint8Array | number[], config: Config);
    /**
     * The size an object's info announces. Returns how many bytes of its data to read at most
     * (then answer `fetched`), or undefined: the fetch failed by it, read nothing.
     */
    objectHead(config: Config, id: number, size: number): number | undefined;
    /**
     * The object-store objects the link payloads were read from, as `[{bucket, name}]` (the
     * objects a work-queue consumer deletes after the final ack).
     */
    objectLinks(): Array<any>;
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
     * For a receive whose links are read as streams (`sub.nextStreamed()`, spec/PROTOCOL.md
     * §8.3.2), instead of `step`: every link is checked against the config's sources and the
     * download cap (URL_NOT_ALLOWED, PAYLOAD_TOO_LARGE), and the direct payloads are decoded;
     * nothing is fetched. Returns `[envelopeJson, payloads,
     * transports]`: `payloads` as `payloads(rows)` gives them, except that a link payload's value
     * is the `LinkReading` its bytes go through. Ends this receive.
     */
    streams(config: Config, rows: boolean): [string, Array<[string, any, string]>, string[]];
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
 * result) or `{action: "publish"}` (publish `json()` to `subject`). An upload step of a durable
 * publish also carries `metadata`, the object metadata to store with it.
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
     * The dead letter of a delivery that can never decode: the seeds' error response (msg_purpose
     * NACK, the original's correlation id when readable, msg_id `dead-letter-<stream>-<sequence>`,
     * `error` naming where it came from) to the consumer's dead-letter subject, with the
     * original bytes as its one binary payload.
     */
    static deadLetter(config: Config, consuming: Consuming, subject: string, message: Uint8Array | number[], error: any, info: any, max_payload: number): Sending;
    /**
     * Publishes durably to `stream`: the link objects are tagged with the stream and the msg_id
     * (each upload step carries `metadata`).
     */
    durable(stream: string): void;
    /**
     * The envelope JSON to publish, once `step()` said publish.
     */
    json(): string;
    /**
     * A message to `subject` with per-message `options`. `max_payload`: the server's, from its INFO.
     */
    constructor(config: Config, subject: any, options: any, max_payload: number);
    /**
     * The envelope JSON when the message is ready to publish as it is (no upload to make), in
     * the one call a message without links needs: a string, or `[json, headers]` when the
     * message carries trace headers (see `traceHeaders`); else undefined, and `step()` goes on
     * from the step this call took. An error ends the send, as `step()`'s does.
     */
    publishNow(): string | [string, [string, string][]] | undefined;
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
     * The envelope's msg_id: the `Nats-Msg-Id` of a durable publish.
     */
    readonly msgId: string;
    /**
     * Where the message goes.
     */
    readonly subject: string;
    /**
     * The NATS headers to publish with the message (spec/PROTOCOL.md §13.1), as core writes them
     * from the `trace_headers` option: `[[name, value], ...]`, lower-case names; undefined when
     * the message carries no trace context.
     */
    readonly traceHeaders: [string, string][] | undefined;
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

/**
 * Every consumer setting by its canonical name (`consume` options).
 */
export function consumeOptionNames(): string[];

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
 * No stream captures `subject`: a durable send never falls back to core NATS.
 */
export function noStreamError(subject: string, detail: string, correlation_id: string): any;

/**
 * A consumer on a stream that does not exist: INVALID_ARGUMENT.
 */
export function noSuchStream(stream: string, detail: string): any;

/**
 * Every connection option by its canonical name (README "One vocabulary").
 */
export function optionNames(): string[];

/**
 * What the PubAck of a durable publish says, as every binding hands it over.
 */
export function pubAck(stream: string, sequence: number, duplicate: boolean): any;

/**
 * A failed durable publish attempt: `fact` is what nats.js reported — `{timeout: message}`,
 * `{noResponders: message}`, `{api: err_code, message}`, `{maxPayload: message}`, `{closed:
 * message}` or `{network: message}`; `elapsed_ms` since the first attempt began. Returns the ms to wait before publishing again with the same
 * msg_id, or throws the send's error (the failure cannot pass, the retries are spent, or the
 * connection is closed). As core's `Client::confirm_durable`.
 */
export function publishRetry(config: Config, subject: string, correlation_id: string, attempt: number, elapsed_ms: number, fact: any, open: boolean): number;

/**
 * Decodes the messages laid end to end in `data` (message `i` ends at `ends[i]`) in one call,
 * for a subscription's messages that are already waiting, within the config's receive limits. Returns `[json, values]`: `json` is a
 * JSON array with one item per message, in order —
 * `[0, header, payloads, transports, sides]`: decoded. `header` is the envelope as
 * `Receiving::envelopeJson` gives it, with `payloads: []`; `payloads` the
 * `[dataname, value, payload_type]` items `Receiving::payloads` gives, except that for each
 * payload position listed in `sides` the value is an index into `values` (a Uint8Array, or a
 * long string);
 * `[1, code, message, correlation_id]`: the message failed to decode (correlation_id null
 * when the envelope could not be read);
 * `[2]`: it has link payloads, which only the receive machine (`Receiving`) can fetch.
 */
export function receiveBatch(config: Config, data: Uint8Array | number[], ends: Uint32Array | number[], rows: boolean): Array<any>;

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
 * `stream add NAME`: the stream's settings (core's stream option names, camelCase or snake_case,
 * durations in ms) checked and resolved into `[streamConfig, deadLetterConfig | null]` for
 * jsm.streams.add/update. INVALID_ARGUMENT for a bad setting or a max_age that outlives the links.
 */
export function streamConfigs(config: Config, name: any, options: any): Array<any>;

/**
 * Every stream setting by its canonical name (`addStream` options).
 */
export function streamOptionNames(): string[];

/**
 * What `addStream` returns, from the server's StreamInfo: core's `StreamSummary` (the CLI's
 * `stream add` output).
 */
export function streamSummary(info: any, dead_letter_stream?: string | null): any;

/**
 * The trace context of a received message (spec/PROTOCOL.md §13.1) from the values of its
 * `traceparent`, `tracestate` and `baggage` headers ("" or undefined: absent), as the carrier
 * object envelopes carry as `trace_headers`; undefined without a well-formed traceparent. The
 * headers are advisory: a malformed one is dropped, never an error.
 */
export function traceCarrier(traceparent?: string | null, tracestate?: string | null, baggage?: string | null): { traceparent: string; tracestate?: string; baggage?: string } | undefined;

/**
 * The connection options a page cannot use (INVALID_ARGUMENT when given).
 */
export function unavailableOptions(): string[];

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_config_free: (a: number, b: number) => void;
    readonly __wbg_consuming_free: (a: number, b: number) => void;
    readonly __wbg_linkreading_free: (a: number, b: number) => void;
    readonly __wbg_receiving_free: (a: number, b: number) => void;
    readonly __wbg_sending_free: (a: number, b: number) => void;
    readonly callOptions: (a: any, b: number, c: number) => [number, number, number];
    readonly canonicalEnvelopeJson: (a: number, b: number) => [number, number, number, number];
    readonly config_jetstream: (a: number) => number;
    readonly config_natsOptions: (a: number) => [number, number, number];
    readonly config_new: (a: any, b: number, c: number) => [number, number, number];
    readonly config_objectStore: (a: number) => any;
    readonly config_senderId: (a: number) => [number, number];
    readonly config_setJetStream: (a: number, b: number) => [number, number];
    readonly config_sharedKey: (a: number) => [number, number];
    readonly consumeOptionNames: () => [number, number];
    readonly consuming_ackWaits: (a: number, b: number) => number;
    readonly consuming_afterDeadLetter: (a: number, b: number, c: number) => any;
    readonly consuming_consumerConfig: (a: number) => any;
    readonly consuming_deadLetterSubject: (a: number) => [number, number];
    readonly consuming_deletesLinks: (a: number) => number;
    readonly consuming_deliveryInfo: (a: number, b: any) => any;
    readonly consuming_durable: (a: number) => [number, number];
    readonly consuming_keepaliveMs: (a: number) => number;
    readonly consuming_new: (a: number, b: any, c: any, d: any) => [number, number, number];
    readonly consuming_pullOptions: (a: number) => any;
    readonly consuming_setRetention: (a: number, b: number, c: number) => void;
    readonly consuming_settlement: (a: number, b: any, c: number) => any;
    readonly consuming_stallDelayMs: (a: number, b: number) => number;
    readonly consuming_stream: (a: number) => [number, number];
    readonly defaultSizeThreshold: () => number;
    readonly errorCodes: () => [number, number];
    readonly linkreading_chunk: (a: number, b: number, c: number) => [number, number, number];
    readonly linkreading_dataname: (a: number) => [number, number];
    readonly linkreading_end: (a: number) => [number, number, number, number];
    readonly linkreading_failed: (a: number, b: any) => [number, number];
    readonly linkreading_httpHead: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => [number, number, number];
    readonly linkreading_objectHead: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly linkreading_open: (a: number) => [number, number, number];
    readonly linkreading_payloadType: (a: number) => [number, number];
    readonly linkreading_sha256: (a: number) => [number, number];
    readonly linkreading_size: (a: number) => number;
    readonly msgPurposes: () => [number, number];
    readonly noStreamError: (a: number, b: number, c: number, d: number, e: number, f: number) => any;
    readonly noSuchStream: (a: number, b: number, c: number, d: number) => any;
    readonly optionNames: () => [number, number];
    readonly pubAck: (a: number, b: number, c: number, d: number) => any;
    readonly publishRetry: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: any, i: number) => [number, number, number];
    readonly receiveBatch: (a: number, b: number, c: number, d: number, e: number, f: number) => any;
    readonly receiving_correlationId: (a: number) => [number, number];
    readonly receiving_envelopeJson: (a: number) => [number, number];
    readonly receiving_errorReply: (a: number) => any;
    readonly receiving_fetchFailed: (a: number, b: number, c: number, d: any) => void;
    readonly receiving_fetched: (a: number, b: number, c: number, d: number, e: number, f: number) => void;
    readonly receiving_head: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => any;
    readonly receiving_new: (a: number, b: number, c: number) => [number, number, number];
    readonly receiving_objectHead: (a: number, b: number, c: number, d: number) => [number, number];
    readonly receiving_objectLinks: (a: number) => any;
    readonly receiving_payloads: (a: number, b: number) => [number, number, number];
    readonly receiving_step: (a: number, b: number) => [number, number, number];
    readonly receiving_streams: (a: number, b: number, c: number) => [number, number, number];
    readonly receiving_transports: (a: number) => [number, number];
    readonly sendOptionNames: () => [number, number];
    readonly sending_add: (a: number, b: number, c: number, d: number, e: number, f: any) => [number, number];
    readonly sending_addJson: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number];
    readonly sending_bytes: (a: number, b: number) => any;
    readonly sending_correlationId: (a: number) => [number, number];
    readonly sending_dataname: (a: number, b: number) => [number, number];
    readonly sending_deadLetter: (a: number, b: number, c: number, d: number, e: number, f: number, g: any, h: any, i: number) => [number, number, number];
    readonly sending_durable: (a: number, b: number, c: number) => void;
    readonly sending_json: (a: number) => [number, number];
    readonly sending_msgId: (a: number) => [number, number];
    readonly sending_new: (a: number, b: any, c: any, d: number) => [number, number, number];
    readonly sending_publishNow: (a: number) => [number, number, number];
    readonly sending_reply: (a: number, b: any, c: any, d: number) => [number, number, number];
    readonly sending_replyError: (a: number, b: any, c: any, d: any, e: number) => [number, number, number];
    readonly sending_step: (a: number) => [number, number, number];
    readonly sending_subject: (a: number) => [number, number];
    readonly sending_traceHeaders: (a: number) => any;
    readonly sending_uploadFailed: (a: number, b: number, c: number, d: number) => void;
    readonly sending_uploaded: (a: number, b: number, c: number, d: number) => void;
    readonly setErrorClass: (a: any) => void;
    readonly sha256Hex: (a: number, b: number) => [number, number];
    readonly streamConfigs: (a: number, b: any, c: any) => [number, number, number];
    readonly streamOptionNames: () => [number, number];
    readonly streamSummary: (a: any, b: number, c: number) => [number, number, number];
    readonly traceCarrier: (a: number, b: number, c: number, d: number, e: number, f: number) => any;
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
