// NATSBridge for browsers. The wire format (envelope, codecs, checks, transport rules) is the Rust
// core compiled to WebAssembly (../pkg, built from ../src/lib.rs); this module adds what a browser
// has: NATS over WebSocket (@nats-io/nats-core wsconnect), the JetStream object store
// (@nats-io/obj) for link payloads, fetch for HTTP links, and apache-arrow for tables.

import { wsconnect } from "@nats-io/nats-core";
import { Objm } from "@nats-io/obj";
import { tableFromIPC, tableToIPC } from "apache-arrow";
import initWasm, * as core from "../pkg/natsbridge_wasm.js";
import { ERROR_CODES, NATSBridgeError } from "./errors.js";

export { ERROR_CODES, NATSBridgeError };
/** apache-arrow, as bundled: build Tables to send (`arrow.tableFromArrays`) or read received ones. */
export * as arrow from "apache-arrow";

/** msg_purpose values by convention (receivers accept any non-empty string). */
export const MSG_PURPOSE = Object.freeze({
  ACK: "ACK",
  NACK: "NACK",
  UPDATE_STATUS: "updateStatus",
  SHUTDOWN: "shutdown",
  CHAT: "chat",
  COMMAND: "command",
  EVENT: "event",
});

export const OBJECT_STORE_SCHEME = "nats-obj://";

const DEFAULTS = Object.freeze({
  size_threshold: 500_000,
  object_store: true,
  object_store_bucket: "natsbridge",
  object_store_ttl_ms: 3_600_000,
  allowed_origins: [],
  retry: { retries: 5, base_delay_ms: 100, max_delay_ms: 5_000 },
  max_download_bytes: 4 * 1024 ** 3,
  arrow: "rows",
});
const OBJECT_CHUNK_SIZE = 128 * 1024;
const HEADER_FIELDS = [
  "correlation_id", "msg_purpose", "sender_name", "sender_id", "receiver_name", "receiver_id",
  "reply_to", "reply_to_msg_id", "broker_url", "metadata",
];

let wasmReady = null;

// wasm32 has no unwinding: a panic in the core (arrow-ipc panics on some malformed IPC streams,
// which the native core catches as DESERIALIZATION_ERROR) aborts the WASM instance. The module is
// then re-instantiated (wasm-bindgen --experimental-reset-state-function) and the call fails with
// the code of its stage. `coreGeneration` counts resets: core objects from an older generation are
// never freed or used again, and an operation that a reset interrupted runs once more.
let coreGeneration = 0;

function restartCore() {
  core.__wbg_reset_state();
  core.setErrorClass(NATSBridgeError);
  coreGeneration++;
}

/** `e` from a core call as the error to throw: an abort of the core becomes `code`. */
function coreError(e, code, correlationId) {
  if (e instanceof WebAssembly.RuntimeError) {
    restartCore();
    return new NATSBridgeError(code, `the WASM core stopped on this input (${e.message}) and was restarted`, correlationId);
  }
  return e;
}

/** Runs `op()`; when a core restart (by another call) interrupted it, runs it once more. */
async function withCore(op) {
  const generation = coreGeneration;
  try {
    return await op();
  } catch (e) {
    if (generation === coreGeneration || e instanceof NATSBridgeError) throw e;
    return op();
  }
}

/**
 * Loads the WASM core once. `wasm` (optional): its URL, a Response, bytes or a WebAssembly.Module;
 * by default natsbridge_wasm_bg.wasm next to this module.
 */
export function init(wasm) {
  wasmReady ??= initWasm(wasm === undefined ? undefined : { module_or_path: wasm }).then(() => {
    core.setErrorClass(NATSBridgeError);
  });
  return wasmReady;
}

/** The core's own lists, for checking this module's constants against them. */
export async function coreConstants() {
  await init();
  return { errorCodes: core.errorCodes(), msgPurposes: core.msgPurposes(), sizeThreshold: core.defaultSizeThreshold() };
}

/** Lowercase hex SHA-256, computed by the WASM core. */
export async function sha256Hex(bytes) {
  await init();
  return core.sha256Hex(bytes);
}

/** An envelope message re-serialized the way the core writes envelopes (for golden vectors). */
export async function canonicalEnvelope(message) {
  await init();
  try {
    return core.canonicalEnvelopeJson(messageBytes(message));
  } catch (e) {
    throw coreError(e, "INVALID_ENVELOPE");
  }
}

function fail(code, message, correlationId) {
  return new NATSBridgeError(code, message, correlationId);
}

/** Retryable or fatal download failures (core's FetchError). */
class FetchFailure {
  constructor(retryable, error) {
    this.retryable = retryable;
    this.error = error;
  }
}

/**
 * Connects to a nats-server websocket listener (`ws://` or `wss://`).
 * Options: servers (required), name, user, pass, token, size_threshold, sender_name, sender_id,
 * object_store (true), object_store_bucket ("natsbridge"), object_store_ttl_ms (1 h),
 * allowed_origins (HTTP bases links may be fetched from), retry {retries, base_delay_ms,
 * max_delay_ms}, max_download_bytes, arrow ("rows" | "table" | "ipc"), wasm (see init).
 */
export async function connect(opts = {}) {
  await init(opts.wasm);
  const servers = opts.servers ?? opts.broker_url;
  if (!servers || (Array.isArray(servers) && servers.length === 0)) {
    throw fail("NATS_CONNECTION_FAILED", "no server given: pass servers: \"ws://host:port\" (a websocket listener)");
  }
  const list = Array.isArray(servers) ? servers : [servers];
  if (opts.size_threshold !== undefined) checkThreshold(opts.size_threshold);
  downloadOptions(opts);
  let nc;
  try {
    const auth = {};
    for (const k of ["name", "user", "pass", "token"]) if (opts[k] !== undefined) auth[k] = opts[k];
    nc = await wsconnect({ servers: list, ...auth, maxReconnectAttempts: opts.max_reconnects ?? 10 });
  } catch (e) {
    throw fail("NATS_CONNECTION_FAILED", `cannot connect to ${list.join(", ")}: ${e.message}`);
  }
  return new Connection(nc, list.join(","), opts);
}

export class Connection {
  #objectStores = new Map();

  constructor(nc, brokerUrl, opts) {
    this.nc = nc;
    this.broker_url = brokerUrl;
    this.options = {
      ...DEFAULTS,
      ...opts,
      ...downloadOptions(opts),
      sender_id: opts.sender_id ?? crypto.randomUUID(),
      sender_name: opts.sender_name ?? "",
    };
  }

  /** The server's max_payload from its INFO. */
  get maxPayload() {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  get #hasObjectStore() {
    return Boolean(this.options.object_store && this.nc.info?.jetstream);
  }

  /** The bucket, created (TTL as max age) the first time it is needed. */
  #bucket(name) {
    let store = this.#objectStores.get(name);
    if (!store) {
      const objm = new Objm(this.nc);
      store = name === this.options.object_store_bucket
        ? objm.create(name, { ttl: this.options.object_store_ttl_ms * 1_000_000 })
        : objm.open(name);
      // A failed open is not cached: the next call tries again.
      store.catch(() => this.#objectStores.delete(name));
      this.#objectStores.set(name, store);
    }
    return store;
  }

  async #upload(plan, index) {
    if (!this.#hasObjectStore) {
      throw fail("UPLOAD_FAILED", "no link store is configured (the object store needs JetStream on the server)");
    }
    const bucket = this.options.object_store_bucket;
    try {
      const store = await this.#bucket(bucket);
      const name = crypto.randomUUID();
      const info = await store.putBlob({ name, options: { max_chunk_size: OBJECT_CHUNK_SIZE } }, plan.bytes(index));
      return { url: `${OBJECT_STORE_SCHEME}${bucket}/${name}`, sha256: objectDigestHex(info.digest) };
    } catch (e) {
      throw fail("UPLOAD_FAILED", `object store upload of ${JSON.stringify(plan.dataname(index))} failed: ${e.message}`);
    }
  }

  /**
   * Serializes the payloads (`[[dataname, data, payload_type], ...]`), moves large ones to the
   * object store, and publishes the envelope. Returns `[envelope, envelopeJson]`.
   * Options: the envelope header fields (correlation_id, msg_purpose, sender_name, sender_id,
   * receiver_name, receiver_id, reply_to, reply_to_msg_id, metadata) and size_threshold.
   */
  smartsend(subject, data, opts = {}) {
    return this.#send(subject, data, opts);
  }

  #send(subject, data, opts, error) {
    // A message that needs no upload is built and published synchronously: a loop of awaited
    // sends then leaves nats.js one socket write for many messages instead of one each.
    try {
      const built = this.#build(subject, data, opts, error);
      if (typeof built === "string") return Promise.resolve(this.#publish(subject, built));
      return built.then((json) => this.#publish(subject, json));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #publish(subject, json) {
    const env = JSON.parse(json);
    try {
      this.nc.publish(subject, json);
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `publish to ${JSON.stringify(subject)} failed: ${e.message}`, env.correlation_id);
    }
    return [env, json];
  }

  /** The envelope JSON, or a promise of it when payloads go to the object store. */
  #build(subject, data, opts, error) {
    if (typeof subject !== "string" || subject === "") {
      throw fail("INVALID_ENVELOPE", "subject must be a non-empty string");
    }
    if (!Array.isArray(data)) {
      throw fail("INVALID_PAYLOAD_TYPE", "data must be an array of [dataname, data, payload_type] items");
    }
    const threshold = opts.size_threshold ?? this.options.size_threshold;
    checkThreshold(threshold);
    const header = {
      sender_name: this.options.sender_name,
      sender_id: this.options.sender_id,
      broker_url: this.broker_url,
    };
    for (const k of HEADER_FIELDS) if (opts[k] !== undefined && opts[k] !== null) header[k] = opts[k];
    if (error) header.error = error;
    return this.#buildWithoutUploads(subject, data, threshold, header)
      ?? withCore(() => this.#buildOnce(subject, data, threshold, header));
  }

  /** The envelope JSON when no payload needs the object store, else null (and nothing sent). */
  #buildWithoutUploads(subject, data, threshold, header) {
    const generation = coreGeneration;
    const plan = new core.SendPlan(subject, JSON.stringify(header), threshold, this.maxPayload, this.#hasObjectStore);
    const cid = plan.correlationId;
    try {
      data.forEach((item, i) => addPayload(plan, item, i));
      return plan.start().length === 0 && plan.fit() === -1 ? plan.json() : null;
    } catch (e) {
      throw withCorrelationId(coreError(e, "INVALID_PAYLOAD_TYPE", cid), cid);
    } finally {
      if (generation === coreGeneration) plan.free();
    }
  }

  async #buildOnce(subject, data, threshold, header) {
    const generation = coreGeneration;
    const plan = new core.SendPlan(subject, JSON.stringify(header), threshold, this.maxPayload, this.#hasObjectStore);
    // Read now: after an abort the instance is not called again.
    const cid = plan.correlationId;
    try {
      data.forEach((item, i) => addPayload(plan, item, i));
      const first = plan.start();
      const uploads = await Promise.allSettled(Array.from(first, (i) => this.#upload(plan, i)));
      uploads.forEach((r, k) => {
        if (r.status === "fulfilled") plan.setLink(first[k], r.value.url, r.value.sha256);
        else plan.uploadFailed(first[k], r.reason.message);
      });
      for (let i = plan.fit(); i >= 0; i = plan.fit()) {
        const { url, sha256 } = await this.#upload(plan, i);
        plan.setLink(i, url, sha256);
      }
      return plan.json();
    } catch (e) {
      if (generation !== coreGeneration) throw e;
      throw withCorrelationId(coreError(e, "INVALID_PAYLOAD_TYPE", cid), cid);
    } finally {
      if (generation === coreGeneration) plan.free();
    }
  }

  /**
   * Decodes a message (a nats Msg, Uint8Array, ArrayBuffer or string): checks the envelope,
   * fetches link payloads (object store of this connection, or fetch from allowed_origins, with
   * backoff), verifies size and sha256, and deserializes every payload in order. Returns the
   * envelope with `payloads` as `[[dataname, data, payload_type], ...]` and `transports`.
   * Options: arrow ("rows" | "table" | "ipc").
   */
  smartreceive(msg, opts = {}) {
    return receive(msg, { ...this.options, ...opts, bucket: (name) => this.#bucket(name), connected: this.#hasObjectStore });
  }

  /**
   * Sends a request envelope and waits for one reply (`timeout_ms`, default 5000): the decoded
   * reply, or the reply's error when it is a NACK. No reply in time, or no responders: TIMEOUT.
   */
  async request(subject, data, opts = {}) {
    const timeout = opts.timeout_ms ?? 5000;
    const json = await this.#build(subject, data, opts);
    const cid = JSON.parse(json).correlation_id;
    let reply;
    try {
      reply = await this.nc.request(subject, json, { timeout });
    } catch (e) {
      const timedOut = /timeout|no responders/i.test(`${e.name} ${e.message}`);
      throw fail(timedOut ? "TIMEOUT" : "NATS_CONNECTION_FAILED", `request to ${JSON.stringify(subject)}: ${e.message}`, cid);
    }
    const env = await this.smartreceive(reply, opts);
    if (env.error) throw core.errorReply(reply.data);
    return env;
  }

  /**
   * Replies to a received request (an envelope from subscribe): to its reply_to, else its NATS
   * reply subject, with its correlation_id, reply_to_msg_id = its msg_id, msg_purpose ACK and
   * the receiver fields naming its sender, unless `opts` sets them. Returns `[envelope, json]`.
   */
  async reply(request, data, opts = {}) {
    const subject = replySubject(request);
    return this.#send(subject, data, { ...replyDefaults(request, "ACK"), ...opts });
  }

  /** Replies with a NACK carrying `error` (a NATSBridgeError, or {code, message}) as its error body. */
  async replyError(request, error) {
    const subject = replySubject(request);
    const body = {
      code: error.code,
      message: error.reason ?? error.message,
      details: { correlation_id: request.correlation_id },
    };
    return this.#send(subject, [], replyDefaults(request, "NACK"), body);
  }

  /**
   * Subscribes (optionally in a queue group) and resolves once the server has the subscription.
   * The result is an async iterable of decoded envelopes; see Subscription.
   */
  async subscribe(subject, opts = {}) {
    let sub;
    try {
      sub = this.nc.subscribe(subject, opts.queue ? { queue: opts.queue } : undefined);
      await this.nc.flush();
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `subscribe to ${JSON.stringify(subject)} failed: ${e.message}`);
    }
    return new Subscription(this, sub, opts);
  }

  /** Delivers what is in flight, unsubscribes everything and closes. */
  async drain() {
    try {
      await this.nc.drain();
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `drain failed: ${e.message}`);
    }
  }

  async close() {
    await this.nc.close();
  }
}

/**
 * Decoded envelopes of one subscription: `for await (const env of sub)`, or `await sub.next({timeout_ms})`.
 * A message that cannot be decoded makes `next()` (and the loop) throw its NATSBridgeError; the
 * subscription goes on, so a new loop or `next()` gets the following messages.
 */
export class Subscription {
  #conn;
  #sub;
  #messages;
  #pending = null;
  #opts;

  constructor(conn, sub, opts) {
    this.#conn = conn;
    this.#sub = sub;
    this.#messages = sub[Symbol.asyncIterator]();
    this.#opts = opts;
  }

  /** The next envelope, or null once the subscription is closed. TIMEOUT after `timeout_ms`. */
  async next(opts = {}) {
    // The pending read outlives a timeout, so the message it gets is not lost.
    this.#pending ??= this.#messages.next();
    let result;
    if (opts.timeout_ms === undefined) {
      result = await this.#pending;
    } else {
      let timer;
      const timeout = new Promise((resolve) => {
        timer = setTimeout(resolve, opts.timeout_ms, "timeout");
      });
      result = await Promise.race([this.#pending, timeout]);
      clearTimeout(timer);
      if (result === "timeout") throw fail("TIMEOUT", `no message within ${opts.timeout_ms} ms`);
    }
    this.#pending = null;
    if (result.done) return null;
    const env = await this.#conn.smartreceive(result.value, this.#opts);
    return env;
  }

  [Symbol.asyncIterator]() {
    return {
      next: async () => {
        const env = await this.next();
        return env === null ? { done: true, value: undefined } : { done: false, value: env };
      },
      return: async () => {
        this.unsubscribe();
        return { done: true, value: undefined };
      },
    };
  }

  unsubscribe() {
    this.#sub.unsubscribe();
  }
}

// The seeds' one-call style: a connection per broker URL, made on first use.
const shared = new Map();

async function sharedConnection(opts) {
  const url = opts.broker_url;
  if (!url) throw fail("NATS_CONNECTION_FAILED", "pass broker_url (a ws:// URL) or connection");
  let conn = shared.get(url);
  if (!conn) {
    conn = connect({ ...opts, servers: url });
    conn.catch(() => shared.delete(url));
    shared.set(url, conn);
  }
  return conn;
}

/** `smartsend(subject, [[dataname, data, payload_type], ...], {broker_url | connection, ...})`. */
export async function smartsend(subject, data, opts = {}) {
  const conn = opts.connection ?? (await sharedConnection(opts));
  return conn.smartsend(subject, data, opts);
}

/**
 * `smartreceive(msg, opts)`. With `connection`, link payloads may come from its object store;
 * without one, only direct payloads and fetch links from `allowed_origins` can be read.
 */
export async function smartreceive(msg, opts = {}) {
  if (opts.connection) return opts.connection.smartreceive(msg, opts);
  await init(opts.wasm);
  return receive(msg, { ...DEFAULTS, ...opts, ...downloadOptions(opts), connected: false });
}

/** The download options with defaults, checked (a bad retry count would retry without end). */
function downloadOptions(opts) {
  const retry = { ...DEFAULTS.retry, ...(opts.retry ?? {}) };
  const bad = (what, v) => fail("INVALID_ENVELOPE", `${what} must be ${v}`);
  if (!Number.isSafeInteger(retry.retries) || retry.retries < 1) throw bad("retry.retries", "an integer >= 1");
  for (const k of ["base_delay_ms", "max_delay_ms"]) {
    if (!Number.isFinite(retry[k]) || retry[k] < 0) throw bad(`retry.${k}`, "a number >= 0");
  }
  const origins = opts.allowed_origins ?? DEFAULTS.allowed_origins;
  if (!Array.isArray(origins) || origins.some((o) => typeof o !== "string")) throw bad("allowed_origins", "an array of URLs");
  const cap = opts.max_download_bytes ?? DEFAULTS.max_download_bytes;
  if (!Number.isFinite(cap) || cap < 0) throw bad("max_download_bytes", "a number >= 0");
  return { retry, allowed_origins: origins, max_download_bytes: cap };
}

function replySubject(request) {
  const subject = request?.reply_to || request?.reply;
  if (!subject) {
    throw fail("INVALID_ENVELOPE", "the message has no reply_to and no NATS reply subject", request?.correlation_id);
  }
  return subject;
}

function replyDefaults(request, purpose) {
  return {
    correlation_id: request.correlation_id,
    reply_to_msg_id: request.msg_id,
    msg_purpose: purpose,
    receiver_name: request.sender_name,
    receiver_id: request.sender_id,
  };
}

function checkThreshold(t) {
  if (!Number.isSafeInteger(t) || t < 0) {
    // The core's code for a bad SIZE_THRESHOLD.
    throw fail("INVALID_ENVELOPE", `size_threshold must be a non-negative integer byte count, not ${String(t)}`);
  }
}

function withCorrelationId(e, cid) {
  if (e instanceof NATSBridgeError) {
    return e.correlation_id ? e : new NATSBridgeError(e.code, e.reason, cid);
  }
  return e;
}

function isArrowTable(v) {
  return v !== null && typeof v === "object" && Array.isArray(v.batches) && v.schema !== undefined
    && typeof v.getChild === "function";
}

/** JSON text of a dictionary/jsontable value. JSON.stringify would turn NaN into null and drop
 * undefined members; those are refused instead, so nothing changes silently on the way. */
function strictJson(value, dataname) {
  const refuse = (what) =>
    fail("INVALID_PAYLOAD_TYPE", `payload ${JSON.stringify(dataname)} holds ${what}, which JSON cannot carry`);
  const text = JSON.stringify(value, (key, v) => {
    if (typeof v === "number" && !Number.isFinite(v)) throw refuse(String(v));
    if (v === undefined || typeof v === "function" || typeof v === "symbol" || typeof v === "bigint") {
      throw refuse(typeof v === "bigint" ? "a BigInt" : String(typeof v));
    }
    return v;
  });
  return text;
}

function addPayload(plan, item, position) {
  if (!Array.isArray(item) || item.length !== 3) {
    throw fail("INVALID_PAYLOAD_TYPE", `payload ${position} must be [dataname, data, payload_type]`);
  }
  const [name, value, type] = item;
  if (typeof name !== "string" || typeof type !== "string") {
    throw fail("INVALID_PAYLOAD_TYPE", `payload ${position}: dataname and payload_type must be strings`);
  }
  if (typeof value === "string") plan.addText(name, type, value);
  else if (value instanceof Uint8Array) plan.addBytes(name, type, value);
  else if (value instanceof ArrayBuffer) plan.addBytes(name, type, new Uint8Array(value));
  else if (ArrayBuffer.isView(value)) plan.addBytes(name, type, new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  else if (isArrowTable(value)) plan.addBytes(name, type, tableToIPC(value, "stream"));
  else if (type === "arrowtable" && Array.isArray(value)) plan.addRows(name, type, strictJson(value, name));
  else plan.addJson(name, type, strictJson(value, name));
}

function messageBytes(msg) {
  if (msg instanceof Uint8Array) return msg;
  if (msg instanceof ArrayBuffer) return new Uint8Array(msg);
  if (typeof msg === "string") return new TextEncoder().encode(msg);
  if (msg && msg.data instanceof Uint8Array) return msg.data;
  throw fail("INVALID_ENVELOPE", "a message is a nats Msg (with .data), Uint8Array, ArrayBuffer or string");
}

/** Whether `url` lies under the HTTP base `base`: same scheme, host and port, path below. */
function underBase(base, url) {
  let b, u;
  try {
    b = new URL(base);
    u = new URL(url);
  } catch {
    return false;
  }
  if (b.protocol !== u.protocol || b.hostname !== u.hostname || b.port !== u.port) return false;
  if (u.username || u.password) return false;
  const prefix = b.pathname.endsWith("/") ? b.pathname : `${b.pathname}/`;
  return u.pathname === b.pathname || u.pathname.startsWith(prefix);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The sleep after failed attempt `attempt` (1-based): base, doubling, capped (core's RetryPolicy). */
function delayAfter(retry, attempt) {
  return Math.min(retry.base_delay_ms * 2 ** (attempt - 1), retry.max_delay_ms);
}

async function downloadWithRetry(fetchOnce, url, retry) {
  const attempts = Math.max(1, retry.retries);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchOnce();
    } catch (e) {
      if (!(e instanceof FetchFailure)) throw e;
      if (!e.retryable) throw e.error;
      if (attempt >= attempts) {
        throw fail("DOWNLOAD_FAILED", `failed to fetch ${url} after ${attempts} attempts: ${e.error.message}`);
      }
      await sleep(delayAfter(retry, attempt));
    }
  }
}

/** An object store digest (`SHA-256=<base64url>`) as lowercase hex; undefined if it is not one. */
function objectDigestHex(digest) {
  if (typeof digest !== "string" || !digest.startsWith("SHA-256=")) return undefined;
  const b64 = digest.slice(8).replace(/-/g, "+").replace(/_/g, "/");
  let bytes;
  try {
    bytes = Uint8Array.from(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
  return bytes.length === 32 ? hex(bytes) : undefined;
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 by Web Crypto (many times faster than hashing in WASM); undefined outside a secure
 * context, where the core hashes instead. */
async function webCryptoSha256(bytes) {
  if (!globalThis.crypto?.subtle) return undefined;
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

function displayUrl(url) {
  return url.split(/[?#]/)[0];
}

/** One GET: status before body, no redirects, at most `size` bytes read (core's HTTP rules). */
async function httpGetOnce(url, size) {
  const shown = displayUrl(url);
  const retryable = (m) => new FetchFailure(true, fail("DOWNLOAD_FAILED", `GET ${shown}: ${m}`));
  const fatal = (code, m) => new FetchFailure(false, fail(code, `GET ${shown}: ${m}`));
  let resp;
  try {
    resp = await fetch(url, { redirect: "manual", cache: "no-store", credentials: "omit" });
  } catch (e) {
    throw retryable(e.message);
  }
  if (resp.type === "opaqueredirect" || (resp.status >= 300 && resp.status < 400)) {
    throw fatal("DOWNLOAD_FAILED", "redirected, refusing");
  }
  if (!resp.ok) {
    const body = (await resp.text().catch(() => "")).trim().slice(0, 512);
    const m = body ? `HTTP ${resp.status}: ${body}` : `HTTP ${resp.status}`;
    throw resp.status >= 500 || resp.status === 429 ? retryable(m) : fatal("DOWNLOAD_FAILED", m);
  }
  const announced = resp.headers.get("content-length");
  if (announced !== null && Number(announced) !== size) {
    throw fatal("CHECKSUM_MISMATCH", `server announces ${announced} bytes, the envelope says ${size}`);
  }
  const buf = new Uint8Array(size);
  let filled = 0;
  const reader = resp.body.getReader();
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw retryable(`reading body: ${e.message}`);
    }
    if (chunk.done) break;
    if (chunk.value.length > size - filled) {
      await reader.cancel().catch(() => {});
      throw fatal("CHECKSUM_MISMATCH", `body is longer than the expected ${size} bytes`);
    }
    buf.set(chunk.value, filled);
    filled += chunk.value.length;
  }
  if (filled !== size) throw fatal("CHECKSUM_MISMATCH", `body has ${filled} bytes, the envelope says ${size}`);
  return { bytes: buf, sha256: await webCryptoSha256(buf) };
}

async function objectGetOnce(ctx, url, size) {
  const rest = url.slice(OBJECT_STORE_SCHEME.length);
  const slash = rest.indexOf("/");
  const fatal = (code, m) => new FetchFailure(false, fail(code, m));
  const retryable = (m) => new FetchFailure(true, fail("DOWNLOAD_FAILED", m));
  if (slash <= 0) throw fatal("DOWNLOAD_FAILED", `not an object store URL: ${url}`);
  const [bucket, name] = [rest.slice(0, slash), rest.slice(slash + 1)];
  const shown = `object ${JSON.stringify(name)} in bucket ${JSON.stringify(bucket)}`;
  let store;
  try {
    store = await ctx.bucket(bucket);
  } catch (e) {
    throw fatal("DOWNLOAD_FAILED", `object store bucket ${JSON.stringify(bucket)} not available: ${e.message}`);
  }
  let object;
  try {
    object = await store.get(name);
  } catch (e) {
    throw retryable(`object store get of ${shown} failed: ${e.message}`);
  }
  if (object === null) throw fatal("DOWNLOAD_FAILED", `${shown} not found`);
  if (object.info.size !== size) {
    await object.data.cancel().catch(() => {});
    throw fatal("CHECKSUM_MISMATCH", `${shown} has ${object.info.size} bytes, the envelope says ${size}`);
  }
  const buf = new Uint8Array(size);
  let filled = 0;
  const reader = object.data.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.length > size - filled) {
        await reader.cancel().catch(() => {});
        throw fatal("CHECKSUM_MISMATCH", `${shown} is longer than its ${size} bytes`);
      }
      buf.set(value, filled);
      filled += value.length;
    }
  } catch (e) {
    if (e instanceof FetchFailure) throw e;
    // nats.js checks the bytes against the stored digest at the end of the read.
    if (/digest/.test(e.message)) throw fatal("CHECKSUM_MISMATCH", `${shown}: ${e.message}`);
    throw retryable(`object store read of ${shown} failed: ${e.message}`);
  }
  const error = await object.error;
  if (error) {
    if (/digest/.test(error.message)) throw fatal("CHECKSUM_MISMATCH", `${shown}: ${error.message}`);
    throw retryable(`object store read of ${shown} failed: ${error.message}`);
  }
  if (filled !== size) throw fatal("CHECKSUM_MISMATCH", `${shown} has ${filled} bytes, the envelope says ${size}`);
  // The bytes matched the stored digest (checked by nats.js just now), so that digest is theirs.
  return { bytes: buf, sha256: objectDigestHex(object.info.digest) };
}

/** Allowed origin (no request otherwise) and download cap, then the fetch with retries. */
function planDownload(ctx, url, size, dataname) {
  const ours = url.startsWith(OBJECT_STORE_SCHEME) && ctx.connected;
  const allowed = ours || ctx.allowed_origins.some((base) => underBase(base, url));
  if (!allowed) {
    throw fail("URL_NOT_ALLOWED",
      `payload ${JSON.stringify(dataname)} links to ${displayUrl(url)}, which is not an allowed origin; no request was made`);
  }
  if (size > ctx.max_download_bytes) {
    throw fail("PAYLOAD_TOO_LARGE",
      `payload ${JSON.stringify(dataname)} is ${size} bytes, over the download limit of ${ctx.max_download_bytes}`);
  }
  const once = ours ? () => objectGetOnce(ctx, url, size) : () => httpGetOnce(url, size);
  return () => downloadWithRetry(once, displayUrl(url), ctx.retry);
}

function toHost(value, type, arrow) {
  if (type === "dictionary" || type === "jsontable") return JSON.parse(value);
  if (type !== "arrowtable") return value;
  switch (arrow) {
    case "rows":
      return JSON.parse(core.arrowRowsJson(value));
    case "table":
      return tableFromIPC(value);
    case "ipc":
      return value;
    default:
      throw fail("INVALID_PAYLOAD_TYPE", `arrow must be "rows", "table" or "ipc", not ${JSON.stringify(arrow)}`);
  }
}

async function receive(msg, ctx) {
  const env = await withCore(() => receiveOnce(messageBytes(msg), ctx));
  // Where a nats Msg came from, for replies (as the Python binding's `subject` and `reply`).
  if (typeof msg?.subject === "string") env.subject = msg.subject;
  if (msg?.reply) env.reply = msg.reply;
  return env;
}

async function receiveOnce(bytes, ctx) {
  const generation = coreGeneration;
  let incoming;
  try {
    incoming = new core.Incoming(bytes);
  } catch (e) {
    throw coreError(e, "INVALID_ENVELOPE");
  }
  try {
    const cid = incoming.correlationId;
    try {
      const downloads = [];
      for (let i = 0; i < incoming.length; i++) {
        const url = incoming.linkUrl(i);
        if (url !== undefined) downloads.push([i, planDownload(ctx, url, incoming.size(i), incoming.dataname(i))]);
      }
      const fetched = await Promise.allSettled(downloads.map(([, run]) => run()));
      fetched.forEach((r, k) => {
        if (r.status === "rejected") throw r.reason;
        incoming.setLinkBytes(downloads[k][0], r.value.bytes, r.value.sha256);
      });
      const env = JSON.parse(incoming.envelopeJson());
      env.transports = env.payloads.map((p) => p.transport);
      const payloads = [];
      for (let i = 0; i < incoming.length; i++) {
        const type = incoming.payloadType(i);
        payloads.push([incoming.dataname(i), toHost(incoming.value(i), type, ctx.arrow), type]);
      }
      env.payloads = payloads;
      return env;
    } catch (e) {
      if (generation !== coreGeneration) throw e;
      throw withCorrelationId(coreError(e, "DESERIALIZATION_ERROR", cid), cid);
    }
  } finally {
    if (generation === coreGeneration) incoming.free();
  }
}
