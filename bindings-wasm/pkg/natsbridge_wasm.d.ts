/* tslint:disable */
/* eslint-disable */

/**
 * One received message, checked by core: direct payloads are decoded and verified, link
 * payloads wait for the host to fetch their bytes (`setLinkBytes` verifies them).
 */
export class Incoming {
    free(): void;
    [Symbol.dispose](): void;
    dataname(index: number): string;
    /**
     * The envelope as JSON (direct payloads' inline data is null; link payloads keep their URL).
     */
    envelopeJson(): string;
    /**
     * The URL of a link payload, or undefined for a direct one.
     */
    linkUrl(index: number): string | undefined;
    constructor(message: Uint8Array | number[]);
    payloadType(index: number): string;
    /**
     * Checks fetched link bytes against the declared size and sha256, and keeps them. `sha256`:
     * the bytes' hex digest when the host has it (Web Crypto, or an object store that checked
     * the bytes against its stored digest), else the bytes are hashed here.
     */
    setLinkBytes(index: number, bytes: Uint8Array | number[], sha256?: string | null): void;
    /**
     * The declared size in bytes (a JS number: exact up to 2^53).
     */
    size(index: number): number;
    /**
     * The payload's value: text → string, dictionary/jsontable → JSON text (the host parses it),
     * arrowtable (checked) and the byte types → Uint8Array.
     */
    value(index: number): any;
    readonly correlationId: string;
    readonly length: number;
}

/**
 * One smartsend without the I/O: the payloads are serialized here, the host uploads the ones
 * this plan names (object store) and publishes `json()`. The transport rules are core's
 * (spec/PROTOCOL.md §7): threshold first, upload failures fall back to direct, and while the
 * envelope is over max_payload the largest direct payload moves to link.
 */
export class SendPlan {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Bytes: Arrow IPC stream bytes for an arrowtable, the raw bytes for the byte types.
     */
    addBytes(dataname: string, payload_type: string, bytes: Uint8Array | number[]): void;
    /**
     * JSON text from the host's `JSON.stringify` (core checks it, and the rows of a jsontable).
     */
    addJson(dataname: string, payload_type: string, json: string): void;
    /**
     * An arrowtable given as JSON rows (`Array<Object>`): core builds the IPC stream.
     */
    addRows(dataname: string, payload_type: string, rows_json: string): void;
    addText(dataname: string, payload_type: string, text: string): void;
    /**
     * The serialized bytes of payload `index` (what an upload stores).
     */
    bytes(index: number): Uint8Array;
    dataname(index: number): string;
    /**
     * Builds the envelope. Returns -1 when it fits max_payload (then `json()` is what to
     * publish), else the index of the payload to upload next; fails with PAYLOAD_TOO_LARGE or
     * UPLOAD_FAILED when nothing more can move to link.
     */
    fit(): number;
    /**
     * The envelope JSON to publish (after `fit()` returned -1).
     */
    json(): string;
    /**
     * `header_json`: the header options as a JSON object (unset fields omitted).
     */
    constructor(subject: string, header_json: string, threshold: number, max_payload: number, has_store: boolean);
    /**
     * Payload `index` was stored at `url`. `sha256`: the hex digest when the store computed it
     * while storing (the object store does), else it is computed here.
     */
    setLink(index: number, url: string, sha256?: string | null): void;
    /**
     * Plans transports by the threshold; returns the indices to upload first.
     */
    start(): Uint32Array;
    /**
     * The upload of payload `index` failed: it goes direct if the envelope still fits.
     */
    uploadFailed(index: number, message: string): void;
    readonly correlationId: string;
}

export function __wbg_reset_state(): void;

/**
 * The JSON-rows view of an Arrow IPC stream (spec/PROTOCOL.md §10.2), as JSON text.
 */
export function arrowRowsJson(ipc: Uint8Array | number[]): string;

/**
 * A message re-serialized as `Envelope::to_json` writes it (nulls and missing fields filled in).
 */
export function canonicalEnvelopeJson(message: Uint8Array | number[]): string;

export function defaultSizeThreshold(): number;

/**
 * The 11 stable error codes, in core's order.
 */
export function errorCodes(): string[];

/**
 * The error an error reply (NACK) carries, with its code (an unknown code reads as
 * INVALID_ENVELOPE) and correlation id; null for any other message.
 */
export function errorReply(message: Uint8Array | number[]): any;

/**
 * The `msg_purpose` values the seeds name.
 */
export function msgPurposes(): string[];

/**
 * Called once by js/natsbridge.js with `NATSBridgeError` (constructor `(code, message, correlationId)`).
 */
export function setErrorClass(_class: Function): void;

/**
 * Lowercase hex SHA-256.
 */
export function sha256Hex(bytes: Uint8Array | number[]): string;

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_incoming_free: (a: number, b: number) => void;
    readonly __wbg_sendplan_free: (a: number, b: number) => void;
    readonly arrowRowsJson: (a: number, b: number) => [number, number, number, number];
    readonly canonicalEnvelopeJson: (a: number, b: number) => [number, number, number, number];
    readonly defaultSizeThreshold: () => number;
    readonly errorCodes: () => [number, number];
    readonly errorReply: (a: number, b: number) => [number, number, number];
    readonly incoming_correlationId: (a: number) => [number, number];
    readonly incoming_dataname: (a: number, b: number) => [number, number];
    readonly incoming_envelopeJson: (a: number) => [number, number];
    readonly incoming_length: (a: number) => number;
    readonly incoming_linkUrl: (a: number, b: number) => [number, number];
    readonly incoming_new: (a: number, b: number) => [number, number, number];
    readonly incoming_payloadType: (a: number, b: number) => [number, number];
    readonly incoming_setLinkBytes: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number];
    readonly incoming_size: (a: number, b: number) => number;
    readonly incoming_value: (a: number, b: number) => [number, number, number];
    readonly msgPurposes: () => [number, number];
    readonly sendplan_addBytes: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number];
    readonly sendplan_addJson: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number];
    readonly sendplan_addRows: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number];
    readonly sendplan_addText: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number];
    readonly sendplan_bytes: (a: number, b: number) => any;
    readonly sendplan_correlationId: (a: number) => [number, number];
    readonly sendplan_dataname: (a: number, b: number) => [number, number];
    readonly sendplan_fit: (a: number) => [number, number, number];
    readonly sendplan_json: (a: number) => [number, number];
    readonly sendplan_new: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number, number];
    readonly sendplan_setLink: (a: number, b: number, c: number, d: number, e: number, f: number) => void;
    readonly sendplan_start: (a: number) => [number, number];
    readonly sendplan_uploadFailed: (a: number, b: number, c: number, d: number) => void;
    readonly setErrorClass: (a: any) => void;
    readonly sha256Hex: (a: number, b: number) => [number, number];
    readonly __wbindgen_exn_store: (a: number) => void;
    readonly __externref_table_alloc: () => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __externref_drop_slice: (a: number, b: number) => void;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
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
