// NATSBridge for browsers. Every rule (options and their defaults, the envelope and codecs, which
// payloads go by link, where a link may be fetched from, retries, size and sha256 checks) is the
// Rust core compiled to WebAssembly (../pkg, built from ../src/lib.rs). This module drives the
// core's send and receive machines with what a browser has: NATS over WebSocket
// (@nats-io/nats-core wsconnect), JetStream (@nats-io/jetstream: durable publish, streams, pull
// consumers), the JetStream object store (@nats-io/obj), fetch, Web Crypto and apache-arrow. It
// reports what happened and does what the machine says next.

import { headers as natsHeaders, errors as natsErrors, wsconnect } from "@nats-io/nats-core";
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from "@nats-io/jetstream";
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

let wasmReady = null;

// Core NATS publishes wait in a connection's outbox until the code sending them stops sending:
// nats.js writes one WebSocket frame per microtask in which something was published, and a loop
// of awaited smartsends publishes once per microtask. The outbox goes to nats.js in one go once
// it has not grown for OUTBOX_IDLE_TICKS microtasks, or at OUTBOX_BYTES of envelope text; both
// before any timer, event or network input runs.
const OUTBOX_IDLE_TICKS = 4;
const OUTBOX_BYTES = 64 * 1024;
/** A subscription decodes at most this many waiting messages in one core call. */
const RECEIVE_BATCH = 256;

// wasm32 has no unwinding: a panic in the core (arrow-ipc panics on some malformed IPC streams,
// which the native core catches as DESERIALIZATION_ERROR) aborts the WASM instance. The module is
// then re-instantiated (wasm-bindgen --experimental-reset-state-function) and the call fails with
// the code of its stage. `coreGeneration` counts resets: core objects from an older generation are
// never freed or used again, and an operation that a reset interrupted runs once more.
let coreGeneration = 0;
const RESTARTED = Symbol("the WASM core restarted");
const CLOSED = Symbol("the receive is over");

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

/** Throws RESTARTED when the core restarted since `generation`: its objects are gone. */
function alive(generation) {
  if (generation !== coreGeneration) throw RESTARTED;
}

/** For a fetch of receive `run`: throws when the core restarted or the receive is over. */
function live(run) {
  alive(run.generation);
  if (!run.open) throw CLOSED;
}

function free(object, generation) {
  if (generation === coreGeneration) object.free();
}

/** Runs `op()` (a value or a promise); when a core restart interrupted it, runs it once more. */
function withCore(op, code) {
  const run = (onError) => {
    try {
      const r = op();
      return r instanceof Promise ? r.catch(onError) : r;
    } catch (e) {
      return onError(e);
    }
  };
  const twice = (e) => {
    throw e === RESTARTED ? new NATSBridgeError(code, "the WASM core restarted twice during this call") : e;
  };
  return run((e) => {
    if (e !== RESTARTED) throw e;
    return run(twice);
  });
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

/** The core's own lists, for checking this module's constants and names against them. */
export async function coreConstants() {
  await init();
  return {
    errorCodes: core.errorCodes(),
    msgPurposes: core.msgPurposes(),
    sizeThreshold: core.defaultSizeThreshold(),
    optionNames: core.optionNames(),
    sendOptionNames: core.sendOptionNames(),
    unavailableOptions: core.unavailableOptions(),
    streamOptionNames: core.streamOptionNames(),
    consumeOptionNames: core.consumeOptionNames(),
  };
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

function optionsObject(opts, what) {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== "object" || Array.isArray(opts)) throw fail("INVALID_ARGUMENT", `${what} options are an object`);
  return opts;
}

/** Refuses keys of a JS-side options object (`{queue}`, `{timeout}`, `{arrow}`) not in `allowed`. */
function hostOptions(opts, allowed, what) {
  optionsObject(opts, what);
  for (const key of Object.keys(opts ?? {})) {
    if (!allowed.includes(key)) {
      throw fail("INVALID_ARGUMENT", `unknown ${what} option ${JSON.stringify(key)}; the options are ${allowed.join(", ")}`);
    }
  }
  return opts ?? {};
}

function checkTimeout(ms, what = "timeout") {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
    throw fail("INVALID_ARGUMENT", `${what} is a number of milliseconds >= 0, not ${String(ms)}`);
  }
}

function arrowMode(mode) {
  if (mode === undefined) return "rows";
  if (mode === "rows" || mode === "table" || mode === "ipc") return mode;
  throw fail("INVALID_ARGUMENT", `arrow must be "rows", "table" or "ipc", not ${JSON.stringify(mode)}`);
}

/**
 * Connects to a nats-server websocket listener (`ws://` or `wss://`). Options by core's names in
 * camelCase or snake_case, durations in milliseconds (README "One vocabulary"): servers, name,
 * user, password, token, maxReconnectAttempts, reconnectTimeWait, connectTimeout, sizeThreshold,
 * objectStore, objectStoreBucket, objectStoreTtl, objectStoreReplicas, allowedOrigins, maxRetries,
 * baseDelay, maxDelay, maxDownloadBytes, the receive limits (maxPayloads, maxMessageBytes,
 * maxJsonDepth, maxArrowColumns, maxArrowBatches, maxArrowValues), senderName, senderId, jetstream (smartsend
 * publishes durably); and arrow ("rows" | "table" | "ipc"), wasm (see init).
 */
export async function connect(opts = {}) {
  const { wasm, arrow, ...options } = optionsObject(opts, "connect");
  await init(wasm);
  arrowMode(arrow);
  const config = new core.Config(options);
  let nc;
  try {
    const natsOptions = config.natsOptions();
    try {
      nc = await wsconnect(natsOptions);
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `cannot connect to ${natsOptions.servers.join(", ")}: ${e.message}`);
    }
  } catch (e) {
    config.free();
    throw e;
  }
  return new Connection(nc, options, config, arrow);
}

export class Connection {
  #options;
  #config;
  #senderId;
  #generation;
  #arrow;
  #buckets = new Map();
  #js = null;
  #jsm = null;
  /** subject -> the stream that captures it, as the server said once. */
  #streamOf = new Map();
  /** Built envelopes not yet handed to nats.js, as subject, json, correlation id, ... */
  #outbox = [];
  #outboxBytes = 0;
  /** The outbox's length when the microtask that watches it last looked (-1: not yet). */
  #outboxSeen = -1;
  #outboxIdle = 0;
  #outboxWatched = false;

  constructor(nc, options, config, arrow) {
    this.nc = nc;
    this.#options = options;
    this.#arrow = arrowMode(arrow);
    this.#adopt(config);
  }

  #adopt(config) {
    config.setJetStream(Boolean(this.nc.info?.jetstream));
    this.#config = config;
    this.#senderId = config.senderId;
    this.#generation = coreGeneration;
  }

  /** The connection's core config; a core restart drops it, so it is made again (same sender id). */
  get #cfg() {
    if (this.#generation !== coreGeneration) this.#adopt(new core.Config(this.#options, this.#senderId));
    return this.#config;
  }

  /** The server's max_payload from its INFO. */
  get maxPayload() {
    return this.nc.info.max_payload;
  }

  /** The object store bucket `name`, created (with the TTL as max age) if it is the connection's. */
  #bucket(name) {
    let store = this.#buckets.get(name);
    if (!store) {
      const { bucket, ttl, replicas } = this.#cfg.objectStore();
      const objm = new Objm(this.nc);
      store = name === bucket ? objm.create(name, { ttl, replicas }) : objm.open(name);
      // A failed open is not cached: the next call tries again.
      store.catch(() => this.#buckets.delete(name));
      this.#buckets.set(name, store);
    }
    return store;
  }

  /**
   * Serializes the payloads (`[[dataname, data, payload_type], ...]`), moves large ones to the
   * object store, and publishes the envelope. Returns `[envelope, envelopeJson]`. Options: the
   * per-message options (correlationId, msgPurpose, senderName, senderId, receiverName,
   * receiverId, replyTo, replyToMsgId, metadata, sizeThreshold, traceHeaders), camelCase or
   * snake_case. `traceHeaders` (W3C `{traceparent, tracestate?, baggage?}`, as an OpenTelemetry
   * propagator fills a carrier) is published as the message's NATS headers, as core writes them.
   * With the connection option `jetstream`, the envelope goes to the stream that captures the
   * subject (INVALID_ARGUMENT when none does, before any upload), its link objects tagged with the
   * stream and msg_id, with `Nats-Msg-Id` = msg_id; the PubAck is awaited (a failed publish is
   * retried with the same msg_id) and the envelope gets `pub_ack: {stream, sequence, duplicate}`.
   */
  smartsend(subject, data, opts = {}) {
    const make = (cfg, maxPayload) => new core.Sending(cfg, subject, opts, maxPayload);
    let durable;
    try {
      durable = this.#cfg.jetstream;
    } catch (e) {
      return Promise.reject(e);
    }
    return durable ? this.#sendDurable(make, data) : this.#send(make, data);
  }

  async #sendDurable(make, data) {
    const streamOf = (subject, cid) => this.#streamFor(subject, cid, true);
    const built = await withCore(() => this.#build(make, data, streamOf), "INVALID_PAYLOAD_TYPE");
    return this.#publishDurable(built);
  }

  /** The JetStream client of the connection. */
  get #jetstream() {
    this.#js ??= jetstream(this.nc);
    return this.#js;
  }

  /** The JetStream manager, made once (a failed attempt is not kept). */
  #manager() {
    if (!this.#jsm) {
      const jsm = jetstreamManager(this.nc);
      jsm.catch(() => {
        if (this.#jsm === jsm) this.#jsm = null;
      });
      this.#jsm = jsm;
    }
    return this.#jsm;
  }

  async #managerOrFail() {
    this.#ensureOpen();
    try {
      return await this.#manager();
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `JetStream is not available on this connection: ${e.message}`);
    }
  }

  #ensureOpen() {
    if (this.nc.isClosed() || this.nc.isDraining()) {
      throw fail("NATS_CONNECTION_FAILED", "the connection was closed (drained); connect again");
    }
  }

  /** The stream that captures `subject`, asked once per subject. None: the core's INVALID_ARGUMENT
   * when `required`, else null. */
  async #streamFor(subject, cid, required) {
    const known = this.#streamOf.get(subject);
    if (known) return known;
    let name;
    try {
      name = await (await this.#manager()).streams.find(subject);
    } catch (e) {
      if (!required) return null;
      throw core.noStreamError(subject, e.message, cid);
    }
    this.#streamOf.set(subject, name);
    return name;
  }

  /** Publishes a built envelope durably; a failed attempt is reported to the core, which says
   * how long to wait before the same msg_id is published again, or what the send's error is. */
  async #publishDurable({ subject, json, msgId, headers }) {
    this.#handOver();
    const env = JSON.parse(json);
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      let ack;
      try {
        // The trace headers go beside Nats-Msg-Id (nats.js adds it to the headers given).
        const opts = headers === undefined ? { msgID: msgId } : { msgID: msgId, headers: msgHeaders(headers) };
        ack = await this.#jetstream.publish(subject, json, opts);
      } catch (e) {
        const open = !this.nc.isClosed() && !this.nc.isDraining();
        await sleep(core.publishRetry(this.#cfg, subject, env.correlation_id, attempt, Date.now() - started, publishFact(e), open));
        continue;
      }
      env.pub_ack = core.pubAck(ack.stream, ack.seq, ack.duplicate);
      return [env, json];
    }
  }

  /**
   * Creates the JetStream stream `name` (or updates it to these settings) and, unless
   * `deadLetter: false`, its dead-letter stream `<name>_DEAD_LETTER`. Options by core's stream
   * option names: subjects (default `<name>.>`), storage ("file" | "memory"), replicas, maxAge
   * (ms; default and limit the object store TTL), retention ("limits" | "workqueue" |
   * "interest"), duplicateWindow (ms), deadLetter. Returns core's stream summary.
   */
  async addStream(name, opts = {}) {
    let config, deadLetter;
    try {
      [config, deadLetter] = core.streamConfigs(this.#cfg, name, optionsObject(opts, "addStream"));
    } catch (e) {
      throw coreError(e, "INVALID_ARGUMENT");
    }
    const jsm = await this.#managerOrFail();
    const info = await createStream(jsm, config);
    if (deadLetter) await createStream(jsm, deadLetter);
    return core.streamSummary(info, deadLetter?.name);
  }

  /**
   * A durable pull consumer `durable` on `stream` (created, or updated to these options), as an
   * async iterable of deliveries (see Consumer). Options by core's consume option names: ackWait,
   * maxDeliver, backoff, maxAckPending, doubleAck, nakDelay, deadLetterSubject, filterSubject,
   * batch, deliverFrom (durations in ms); and arrow. INVALID_ARGUMENT for a stream that does not
   * exist or redeliveries that could outlive the link objects.
   */
  async consume(stream, durable, opts = {}) {
    const { arrow, ...options } = optionsObject(opts, "consume");
    arrowMode(arrow);
    const spec = { stream, durable, options, retention: undefined };
    const generation = coreGeneration;
    let consuming;
    try {
      consuming = new core.Consuming(this.#cfg, stream, durable, options);
    } catch (e) {
      throw coreError(e, "INVALID_ARGUMENT");
    }
    const config = consuming.consumerConfig();
    free(consuming, generation);
    const jsm = await this.#managerOrFail();
    let info;
    try {
      info = await jsm.streams.info(stream);
    } catch (e) {
      if (isStreamNotFound(e)) throw core.noSuchStream(stream, e.message);
      throw fail("NATS_CONNECTION_FAILED", `stream info of ${JSON.stringify(stream)} failed: ${e.message}`);
    }
    spec.retention = info.config.retention;
    let handle;
    try {
      await createConsumer(jsm, stream, durable, config);
      handle = await this.#jetstream.consumers.get(stream, durable);
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `cannot create consumer ${JSON.stringify(durable)} on ${JSON.stringify(stream)}: ${e.message}`);
    }
    const driver = {
      cfg: () => this.#cfg,
      open: () => !this.nc.isClosed() && !this.nc.isDraining(),
      receive: (msg, collect) => this.#receive(msg, arrow, false, collect),
      bucket: (name) => this.#bucket(name),
      deadLetter: (consuming, m, error, info) => this.#deadLetter(consuming, m, error, info),
      handOver: () => this.#handOver(),
    };
    return new Consumer(driver, handle, spec);
  }

  /** Publishes the dead letter of delivery `m` (durably when a stream captures its subject). */
  async #deadLetter(consuming, m, error, info) {
    const make = (cfg, maxPayload) => core.Sending.deadLetter(cfg, consuming(), m.subject, m.data, error, info, maxPayload);
    const streamOf = (subject, cid) => this.#streamFor(subject, cid, false);
    const built = await withCore(() => this.#build(make, [], streamOf), "INVALID_PAYLOAD_TYPE");
    if (built.stream) await this.#publishDurable(built);
    else {
      this.#publish(built);
      this.#handOver(); // before the delivery is terminated
    }
  }

  /**
   * Replies to a received request (an envelope from subscribe or smartreceive): to its reply_to,
   * else its NATS reply subject, with its correlation_id, reply_to_msg_id = its msg_id,
   * msg_purpose ACK and the receiver fields naming its sender, unless `opts` sets them.
   */
  reply(request, data, opts = {}) {
    return this.#send((cfg, maxPayload) => core.Sending.reply(cfg, request, opts, maxPayload), data);
  }

  /** Replies with a NACK whose error body carries `code` (one of ERROR_CODES) and `message`. */
  replyError(request, code, message) {
    return this.#send((cfg, maxPayload) => core.Sending.replyError(cfg, request, code, message, maxPayload), []);
  }

  /** Builds and publishes. A message that needs no upload is built and published synchronously:
   * a loop of awaited sends then leaves nats.js one socket write for many messages. */
  #send(make, data) {
    try {
      const built = withCore(() => this.#build(make, data), "INVALID_PAYLOAD_TYPE");
      return built instanceof Promise ? built.then((b) => this.#publish(b)) : Promise.resolve(this.#publish(built));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Queues a built envelope in the outbox (see OUTBOX_IDLE_TICKS); what nats.js would refuse
   * now (a closed or draining connection) is refused here. A message with trace headers takes
   * its place in the outbox like any other: its correlation id's slot holds a Traced. */
  #publish({ subject, json, headers }) {
    const env = JSON.parse(json);
    if (this.nc.isClosed() || this.nc.isDraining()) {
      const state = this.nc.isClosed() ? "closed" : "draining";
      throw fail("NATS_CONNECTION_FAILED", `publish to ${JSON.stringify(subject)} failed: the connection is ${state}`, env.correlation_id);
    }
    this.#outbox.push(subject, json, headers === undefined ? env.correlation_id : new Traced(env.correlation_id, msgHeaders(headers)));
    this.#outboxBytes += json.length;
    if (this.#outboxBytes >= OUTBOX_BYTES) this.#handOver();
    else if (!this.#outboxWatched) {
      this.#outboxWatched = true;
      this.#outboxSeen = -1;
      queueMicrotask(this.#watchOutbox);
    }
    return [env, json];
  }

  /** Hands the outbox over once it stopped growing; looks again a microtask later until then. */
  #watchOutbox = () => {
    const n = this.#outbox.length;
    if (n !== 0 && (n !== this.#outboxSeen || ++this.#outboxIdle < OUTBOX_IDLE_TICKS)) {
      if (n !== this.#outboxSeen) this.#outboxIdle = 0;
      this.#outboxSeen = n;
      queueMicrotask(this.#watchOutbox);
      return;
    }
    this.#outboxWatched = false;
    this.#handOver();
  };

  /** Publishes what the outbox holds, in order (nats.js writes it in one frame per 32 KB). */
  #handOver() {
    const out = this.#outbox;
    if (out.length === 0) return;
    this.#outbox = [];
    this.#outboxBytes = 0;
    for (let i = 0; i < out.length; i += 3) {
      const tag = out[i + 2];
      try {
        if (typeof tag === "string") this.nc.publish(out[i], out[i + 1]);
        else this.nc.publish(out[i], out[i + 1], { headers: tag.headers });
      } catch (e) {
        // Only a connection closed through `nc` itself within the same microtasks gets here.
        const cid = typeof tag === "string" ? tag : tag.correlationId;
        console.warn(`natsbridge: message ${cid} to ${JSON.stringify(out[i])} was not published: ${e.message}`);
      }
    }
  }

  /**
   * `{subject, json, msgId, stream}` to publish, or a promise of it when the machine asks for
   * uploads. `streamOf(subject, cid)` (durable publishes): resolves to the stream the message goes
   * to (null: none, publish on core NATS), asked before any payload is serialized or uploaded.
   */
  #build(make, data, streamOf) {
    if (!Array.isArray(data)) {
      throw fail("INVALID_PAYLOAD_TYPE", "data must be an array of [dataname, data, payload_type] items");
    }
    this.#ensureOpen();
    const generation = coreGeneration;
    let sending;
    try {
      sending = make(this.#cfg, this.maxPayload);
    } catch (e) {
      throw coreError(e, "INVALID_ARGUMENT");
    }
    // Read now: after an abort the instance is not called again.
    const cid = sending.correlationId;
    if (!streamOf) return this.#fill(sending, data, generation, cid, null);
    return streamOf(sending.subject, cid).then(
      (stream) => {
        alive(generation);
        if (stream !== null) sending.durable(stream);
        return this.#fill(sending, data, generation, cid, stream);
      },
      (e) => {
        free(sending, generation);
        throw e;
      },
    );
  }

  #fill(sending, data, generation, cid, stream) {
    let step;
    try {
      for (let i = 0; i < data.length; i++) addPayload(sending, data[i], i);
      const ready = sending.publishNow();
      if (ready !== undefined) {
        // A string, or [json, headers] for a message with trace headers.
        let json = ready;
        let headers;
        if (typeof ready !== "string") [json, headers] = ready;
        const out = { subject: sending.subject, json, msgId: stream === null ? undefined : sending.msgId, stream, headers };
        sending.free();
        return out;
      }
      step = sending.step();
    } catch (e) {
      // coreError first: after an abort it restarts the core, and the dead instance is not freed.
      const error = withCorrelationId(coreError(e, "INVALID_PAYLOAD_TYPE", cid), cid);
      free(sending, generation);
      throw error;
    }
    return this.#uploads(sending, step, generation, cid, stream);
  }

  /** Drives the send machine through its uploads: runs each upload it names, reports each result. */
  async #uploads(sending, first, generation, cid, stream) {
    const running = new Map();
    try {
      for (let step = first; step.action !== "publish"; step = sending.step()) {
        if (step.action === "upload") {
          running.set(step.index, this.#put(sending.bytes(step.index), sending.dataname(step.index), step));
          continue;
        }
        const [index, digest, error] = await Promise.race(running.values());
        alive(generation);
        running.delete(index);
        if (error) sending.uploadFailed(index, error.message);
        else sending.uploaded(index, digest);
      }
      return built(sending, stream);
    } catch (e) {
      if (e === RESTARTED) throw e;
      throw withCorrelationId(coreError(e, "INVALID_PAYLOAD_TYPE", cid), cid);
    } finally {
      free(sending, generation);
    }
  }

  /** One object store upload: `[index, digest]`, or `[index, undefined, error]`. */
  async #put(bytes, dataname, step) {
    try {
      const { chunkSize } = this.#cfg.objectStore();
      const store = await this.#bucket(step.bucket);
      const meta = { name: step.name, options: { max_chunk_size: chunkSize }, metadata: step.metadata };
      const info = await store.putBlob(meta, bytes);
      return [step.index, info.digest];
    } catch (e) {
      return [step.index, undefined, new Error(`object store upload of ${JSON.stringify(dataname)} failed: ${e.message}`)];
    }
  }

  /**
   * Decodes a message (a nats Msg, Uint8Array, ArrayBuffer or string): checks the envelope,
   * fetches link payloads (this connection's object store, or fetch from allowedOrigins, as the
   * core's receive machine says), verifies size and sha256, and deserializes every payload in
   * order. Returns the envelope with `payloads` as `[[dataname, data, payload_type], ...]` and
   * `transports`. Options: arrow ("rows" | "table" | "ipc").
   */
  smartreceive(msg, opts = {}) {
    const { arrow } = hostOptions(opts, ["arrow"], "smartreceive");
    return this.#receive(msg, arrow, false);
  }

  /** `collect(receiving)`: called with the finished receive, before it is freed. */
  #receive(msg, arrow, nack, collect) {
    const links = { config: () => this.#cfg, bucket: (name) => this.#bucket(name), collect };
    return receive(msg, links, arrowMode(arrow ?? this.#arrow), nack);
  }

  /** A message whose link payloads are read as streams (Subscription.nextStreamed). */
  #receiveStreamed(msg, arrow) {
    const links = { config: () => this.#cfg, bucket: (name) => this.#bucket(name) };
    return receiveStreamed(msg, links, arrowMode(arrow ?? this.#arrow));
  }

  /**
   * Sends a request envelope and waits for one reply (`timeout` ms, default 5000): the decoded
   * reply, or the reply's error when it is a NACK. No reply in time, or no responders: TIMEOUT.
   * Options: the per-message options, timeout and arrow.
   */
  async request(subject, data, opts = {}) {
    const { timeout = 5000, arrow, ...options } = optionsObject(opts, "request");
    checkTimeout(timeout);
    const make = (cfg, maxPayload) => new core.Sending(cfg, subject, options, maxPayload);
    const { json, headers } = await withCore(() => this.#build(make, data), "INVALID_PAYLOAD_TYPE");
    const cid = JSON.parse(json).correlation_id;
    this.#handOver();
    let reply;
    try {
      reply = await this.nc.request(subject, json, headers === undefined ? { timeout } : { timeout, headers: msgHeaders(headers) });
    } catch (e) {
      const timedOut = /timeout|no responders/i.test(`${e.name} ${e.message}`);
      throw fail(timedOut ? "TIMEOUT" : "NATS_CONNECTION_FAILED", `request to ${JSON.stringify(subject)}: ${e.message}`, cid);
    }
    return this.#receive(reply, arrow, true);
  }

  /**
   * Subscribes (in queue group `queue`, if given) and resolves once the server has the
   * subscription. The result is an async iterable of decoded envelopes; see Subscription.
   */
  async subscribe(subject, opts = {}) {
    const { queue, arrow } = hostOptions(opts, ["queue", "arrow"], "subscribe");
    if (typeof subject !== "string" || subject === "") throw fail("INVALID_ARGUMENT", "a subject is a non-empty string");
    if (queue !== undefined && (typeof queue !== "string" || queue === "")) {
      throw fail("INVALID_ARGUMENT", "queue is a non-empty string");
    }
    const mode = arrowMode(arrow ?? this.#arrow);
    let subscription;
    try {
      const subscribe = (callback) => this.nc.subscribe(subject, queue ? { queue, callback } : { callback });
      const machine = (msg) => this.#receive(msg, mode, false);
      const streamed = (msg) => this.#receiveStreamed(msg, mode);
      subscription = new Subscription(subscribe, mode, machine, () => this.#cfg, streamed);
      await this.nc.flush();
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `subscribe to ${JSON.stringify(subject)} failed: ${e.message}`);
    }
    return subscription;
  }

  /** Waits until the server has everything published so far. */
  async flush() {
    this.#handOver();
    try {
      await this.nc.flush();
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `flush failed: ${e.message}`);
    }
  }

  /** Delivers what is in flight, unsubscribes everything and closes. */
  async drain() {
    this.#handOver();
    try {
      await this.nc.drain();
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `drain failed: ${e.message}`);
    }
  }

  /** Drains (publishes what is buffered, delivers what is in flight), then closes. */
  async close() {
    this.#handOver();
    if (!this.nc.isClosed() && !this.nc.isDraining()) await this.drain();
    await this.nc.closed();
  }
}

/** An outbox entry's correlation id, for a message published with (trace) headers. */
class Traced {
  constructor(correlationId, headers) {
    this.correlationId = correlationId;
    this.headers = headers;
  }
}

/** nats.js headers of `[[name, value], ...]` (the names as core writes them, lower-case). */
function msgHeaders(pairs) {
  const h = natsHeaders();
  for (const [name, value] of pairs) h.set(name, value);
  return h;
}

/** The trace context a received message's headers carry (spec/PROTOCOL.md §13.1), as core
 * reads it: the carrier object `{traceparent, tracestate?, baggage?}`, or undefined when there
 * is no header or no well-formed traceparent (a malformed header is dropped, never an error). */
function traceOf(msg) {
  const h = msg?.headers;
  if (!h || typeof h.get !== "function") return undefined;
  const traceparent = h.get("traceparent");
  if (!traceparent) return undefined;
  return core.traceCarrier(traceparent, h.get("tracestate"), h.get("baggage"));
}

/** A subscription's message with link payloads: decoded alone, by the receive machine. */
class Linked {
  constructor(msg) {
    this.msg = msg;
  }
}

/** What nats.js reported on a subscription instead of a message: thrown by next() as it is. */
class Reported {
  constructor(error) {
    this.error = error;
  }
}

/**
 * Decodes nats Msgs (their data, subject and reply) in one core call, within the receive limits
 * of `config` (a core Config).
 * For each: the envelope as `receive` makes it, the NATSBridgeError it fails with, or a Linked
 * (its link payloads need the receive machine). After an abort of the core every one is Linked:
 * decoded alone, the message that aborts fails by itself.
 */
function receiveBatch(msgs, arrow, config) {
  let total = 0;
  for (let i = 0; i < msgs.length; i++) total += msgs[i].data.length;
  const data = new Uint8Array(total);
  const ends = new Uint32Array(msgs.length);
  let at = 0;
  for (let i = 0; i < msgs.length; i++) {
    data.set(msgs[i].data, at);
    at += msgs[i].data.length;
    ends[i] = at;
  }
  let items, values;
  try {
    let json;
    [json, values] = core.receiveBatch(config, data, ends, arrow === "rows");
    items = JSON.parse(json);
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) restartCore();
    return msgs.map((m) => new Linked(m));
  }
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const msg = msgs[i];
    if (item[0] === 1) {
      items[i] = new NATSBridgeError(item[1], item[2], item[3]);
      continue;
    }
    if (item[0] === 2) {
      items[i] = new Linked(msg);
      continue;
    }
    const env = item[1];
    const payloads = item[2];
    for (const p of item[4]) payloads[p][1] = values[payloads[p][1]];
    if (arrow === "table") for (const p of payloads) if (p[2] === "arrowtable") p[1] = tableFromIPC(p[1]);
    env.payloads = payloads;
    env.transports = item[3];
    if (typeof msg.subject === "string") env.subject = msg.subject;
    if (msg.reply) env.reply = msg.reply;
    const trace = traceOf(msg);
    if (trace !== undefined) env.trace_headers = trace;
    items[i] = env;
  }
  return items;
}

/** receiveBatch over what a subscription received: Reported items keep their places. */
function decodeArrived(arrived, arrow, config) {
  if (!arrived.some((m) => m instanceof Reported)) return receiveBatch(arrived, arrow, config);
  const decoded = receiveBatch(arrived.filter((m) => !(m instanceof Reported)), arrow, config);
  let next = 0;
  return arrived.map((m) => (m instanceof Reported ? m : decoded[next++]));
}

const WAIT = Symbol("nothing has arrived yet");

/**
 * Decoded envelopes of one subscription: `for await (const env of sub)`, or `await sub.next({timeout})`.
 * A message that cannot be decoded makes `next()` (and the loop) throw its NATSBridgeError; the
 * subscription goes on, so a new loop or `next()` gets the following messages. Messages that
 * arrived while nobody was reading are decoded together, in one core call, when the next read
 * comes; a read that finds one already decoded gets it without waiting for anything.
 */
export class Subscription {
  #sub;
  #arrow;
  #machine;
  #streamed;
  #config;
  /** nats Msgs (or a Reported) in arrival order, not decoded yet. */
  #arrived = [];
  /** The last batch decoded (receiveBatch), read from `#at` on. */
  #decoded = [];
  #at = 0;
  #closed = false;
  /** Resolves the reads waiting for the next arrival, or null when none waits. */
  #wake = null;
  #arrival = null;

  /** `subscribe(callback)`: the nats.js subscription; `machine(msg)`: decodes one message
   * through the receive machine (a promise of its envelope); `config()`: the connection's core
   * Config (its receive limits), asked at each batch as a restarted core makes a new one;
   * `streamed(msg)`: decodes one message with its links as LinkStreams (nextStreamed). */
  constructor(subscribe, arrow, machine, config, streamed) {
    this.#arrow = arrow;
    this.#machine = machine;
    this.#config = config;
    this.#streamed = streamed;
    this.#sub = subscribe((err, msg) => {
      this.#arrived.push(err ? new Reported(err) : msg);
      this.#signal();
    });
    this.#sub.closed.then(() => {
      this.#closed = true;
      this.#signal();
    });
  }

  #signal() {
    if (this.#wake === null) return;
    const wake = this.#wake;
    this.#wake = null;
    this.#arrival = null;
    wake();
  }

  /** The next item (an envelope, an Error, a Reported or a Linked), null once the subscription
   * is closed and read to its end, or WAIT. */
  #take() {
    if (this.#at === this.#decoded.length) {
      const arrived = this.#arrived;
      if (arrived.length === 0) return this.#closed ? null : WAIT;
      let msgs = arrived;
      if (arrived.length > RECEIVE_BATCH) {
        msgs = arrived.splice(0, RECEIVE_BATCH);
      } else {
        this.#arrived = [];
      }
      this.#decoded = decodeArrived(msgs, this.#arrow, this.#config());
      this.#at = 0;
    }
    const item = this.#decoded[this.#at];
    this.#decoded[this.#at++] = undefined;
    return item;
  }

  /** An item as next() gives it: an envelope, a thrown error, or a promise of the machine's. */
  #open(item) {
    if (item instanceof Linked) return this.#machine(item.msg);
    if (item instanceof Reported) throw item.error;
    if (item instanceof Error) throw item;
    return item;
  }

  /** The next envelope, or null once the subscription is closed. TIMEOUT after `timeout` ms
   * (a message that arrives later is not lost: the next read gets it). */
  next(opts = {}) {
    return this.#read(opts, "next", (item) => this.#open(item));
  }

  /**
   * Like `next`, with each link payload's data a LinkStream: its bytes as they arrive, nothing
   * fetched until it is read, checked at its end (spec/PROTOCOL.md §8.3.2). Every link is checked
   * against the allowed origins first (URL_NOT_ALLOWED, no request). Direct payloads are decoded
   * as `next` decodes them; a message without links is as `next` gives it.
   */
  nextStreamed(opts = {}) {
    return this.#read(opts, "nextStreamed", (item) => (item instanceof Linked ? this.#streamed(item.msg) : this.#open(item)));
  }

  async #read(opts, what, open) {
    const { timeout } = hostOptions(opts, ["timeout"], what);
    if (timeout !== undefined) checkTimeout(timeout);
    for (;;) {
      const item = this.#take();
      if (item === null) return null;
      if (item !== WAIT) return open(item);
      await this.#nextArrival(timeout);
    }
  }

  /** Resolves at the next arrival (or close); TIMEOUT after `timeout` ms. */
  #nextArrival(timeout) {
    this.#arrival ??= new Promise((resolve) => {
      this.#wake = resolve;
    });
    if (timeout === undefined) return this.#arrival;
    let timer;
    const expired = {};
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(resolve, timeout, expired);
    });
    return Promise.race([this.#arrival, timedOut]).then((result) => {
      clearTimeout(timer);
      if (result === expired) throw fail("TIMEOUT", `no message within ${timeout} ms`);
    });
  }

  [Symbol.asyncIterator]() {
    const end = { done: true, value: undefined };
    return {
      next: () => {
        // A decoded envelope already here is handed over without an async function's awaits.
        const item = this.#take();
        if (item === null) return Promise.resolve(end);
        if (item === WAIT || item instanceof Linked || item instanceof Reported || item instanceof Error) {
          let env;
          try {
            env = item === WAIT ? this.next() : this.#open(item);
          } catch (e) {
            return Promise.reject(e);
          }
          return Promise.resolve(env).then((value) => (value === null ? end : { done: false, value }));
        }
        return Promise.resolve({ done: false, value: item });
      },
      return: async () => {
        this.unsubscribe();
        return end;
      },
    };
  }

  unsubscribe() {
    this.#sub.unsubscribe();
  }
}

/** What a send hands to its publish (`headers`: the trace headers, or undefined). */
function built(sending, stream) {
  return { subject: sending.subject, json: sending.json(), msgId: sending.msgId, stream, headers: sending.traceHeaders };
}

/** What nats.js said about a failed durable publish, as the core's publishRetry takes it. */
function publishFact(e) {
  const message = e?.message ?? String(e);
  if (e instanceof JetStreamApiError) return { api: e.code, message };
  if (e instanceof natsErrors.TimeoutError) return { timeout: message };
  if (e?.name === "JetStreamNotEnabled" || e instanceof natsErrors.NoRespondersError
    || (e instanceof natsErrors.RequestError && e.isNoResponders())) return { noResponders: message };
  if (e instanceof natsErrors.ClosedConnectionError || e instanceof natsErrors.DrainingConnectionError) return { closed: message };
  if (/max_payload/.test(message)) return { maxPayload: message };
  return { network: message };
}

function isStreamNotFound(e) {
  return e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound;
}

/** Creates a stream as `config` says, or updates the existing one to it. */
async function createStream(jsm, config) {
  try {
    try {
      await jsm.streams.info(config.name);
    } catch (e) {
      if (isStreamNotFound(e)) return await jsm.streams.add(config);
      throw e;
    }
    const { name, ...update } = config;
    return await jsm.streams.update(name, update);
  } catch (e) {
    throw fail("NATS_CONNECTION_FAILED", `cannot create stream ${JSON.stringify(config.name)}: ${e.message}`);
  }
}

/** JetStream's "consumer already exists" (with another configuration). */
const CONSUMER_EXISTS = 10148;

/** Creates a durable consumer as `config` says, or updates the existing one to it (nats.js has
 * no create-or-update action). */
async function createConsumer(jsm, stream, durable, config) {
  try {
    await jsm.consumers.add(stream, config);
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.code === CONSUMER_EXISTS)) throw e;
    const { durable_name: _, ...update } = config;
    await jsm.consumers.update(stream, durable, update);
  }
}

/**
 * A durable pull consumer: `for await (const msg of consumer)`, or `await consumer.next({timeout})`.
 * Each delivery is decoded like a subscription's message and yielded as a Delivery, to be settled
 * by the application. A delivery that fails to decode is settled as the core says and not
 * yielded: nak'd for a later delivery (a failed link download), or published to the dead-letter
 * subject and terminated (it can never decode). After a server restart or a reconnect it pulls
 * again by itself.
 */
export class Consumer {
  #driver;
  #handle;
  #spec;
  #consuming = null;
  #generation = -1;
  #messages = null;
  #iterator = null;
  #pending = null;
  #stalls = 0;
  #stopped = false;

  constructor(driver, handle, spec) {
    this.#driver = driver;
    this.#handle = handle;
    this.#spec = spec;
  }

  get stream() {
    return this.#spec.stream;
  }

  get durable() {
    return this.#spec.durable;
  }

  /** The consumer's core rules; a core restart drops them, so they are made again. */
  get #core() {
    if (this.#generation !== coreGeneration) {
      const { stream, durable, options, retention } = this.#spec;
      this.#consuming = new core.Consuming(this.#driver.cfg(), stream, durable, options);
      this.#consuming.setRetention(retention);
      this.#generation = coreGeneration;
    }
    return this.#consuming;
  }

  /** The next decoded delivery, or null once the consumer is stopped or the connection closed.
   * TIMEOUT after `timeout` ms (the delivery being waited for is not lost). */
  async next(opts = {}) {
    const { timeout } = hostOptions(opts, ["timeout"], "next");
    if (timeout !== undefined) checkTimeout(timeout);
    const pending = (this.#pending ??= this.#nextDelivery());
    let result;
    try {
      if (timeout === undefined) {
        result = await pending;
      } else {
        let timer;
        const expired = {};
        const timedOut = new Promise((resolve) => {
          timer = setTimeout(resolve, timeout, expired);
        });
        result = await Promise.race([pending, timedOut]);
        clearTimeout(timer);
        if (result === expired) throw fail("TIMEOUT", `no delivery within ${timeout} ms`);
      }
    } catch (e) {
      if (e?.code !== "TIMEOUT" && this.#pending === pending) this.#pending = null;
      throw e;
    }
    this.#pending = null;
    return result;
  }

  async #nextDelivery() {
    for (;;) {
      if (this.#stopped || !this.#driver.open()) return null;
      if (!this.#iterator) {
        try {
          this.#messages = await this.#handle.consume(this.#core.pullOptions());
          this.#iterator = this.#messages[Symbol.asyncIterator]();
        } catch {
          await this.#stall();
          continue;
        }
      }
      let r;
      try {
        r = await this.#iterator.next();
      } catch {
        r = { done: true };
      }
      if (r.done) {
        this.#messages = null;
        this.#iterator = null;
        if (this.#stopped || !this.#driver.open()) return null;
        await this.#stall();
        continue;
      }
      this.#stalls = 0;
      const delivery = await this.#decode(r.value);
      if (delivery) return delivery;
    }
  }

  /** Waits as the core says before pulling again. */
  async #stall() {
    this.#stalls++;
    await sleep(this.#core.stallDelayMs(this.#stalls));
  }

  /** Decodes one delivery, reporting it in progress while links download; a failure is settled
   * here and gives null. */
  async #decode(m) {
    let info;
    try {
      info = this.#core.deliveryInfo(m.info);
    } catch {
      return null; // a delivery without JetStream metadata: skipped, as core does
    }
    let objects = [];
    const collect = (receiving) => {
      objects = receiving.objectLinks();
    };
    const keepalive = setInterval(() => {
      try {
        m.working();
      } catch {
        // the server delivers it again after ack_wait
      }
    }, this.#core.keepaliveMs);
    let envelope;
    try {
      envelope = await this.#driver.receive({ data: m.data, subject: m.subject, headers: m.headers }, collect);
    } catch (e) {
      clearInterval(keepalive);
      await this.#settleFailure(m, e, info);
      return null;
    } finally {
      clearInterval(keepalive);
    }
    const settle = {
      ackWaits: () => this.#core.ackWaits(objects.length),
      deletesLinks: () => this.#core.deletesLinks,
      bucket: this.#driver.bucket,
      // What the application sent before settling goes out before the settlement.
      handOver: this.#driver.handOver,
    };
    return new Delivery(envelope, info, m, settle, objects);
  }

  async #settleFailure(m, error, info) {
    let step = this.#core.settlement(error, info.delivered);
    if (step.action === "deadLetter") {
      let published = true;
      try {
        await this.#driver.deadLetter(() => this.#core, m, error, info);
      } catch (e) {
        published = false;
        console.warn(`natsbridge: the dead letter of ${info.stream} #${info.stream_sequence} was not published (${e.message}); nak instead of term`);
      }
      step = this.#core.afterDeadLetter(published, info.delivered);
    }
    try {
      if (step.action === "term") m.term();
      else m.nak(step.delayMs);
    } catch {
      // the server delivers it again after ack_wait
    }
  }

  [Symbol.asyncIterator]() {
    return {
      next: async () => {
        const delivery = await this.next();
        return delivery === null ? { done: true, value: undefined } : { done: false, value: delivery };
      },
      return: async () => {
        this.stop();
        return { done: true, value: undefined };
      },
    };
  }

  /** Stops pulling (the durable consumer stays on the server). */
  stop() {
    this.#stopped = true;
    this.#messages?.stop();
  }
}

/** One decoded delivery: `envelope` (as a subscription yields it), `info` (stream, consumer,
 * stream_sequence, consumer_sequence, delivered, pending, redelivered) and how to settle it, once. */
export class Delivery {
  #m;
  #settle;
  #objects;
  #settled = false;

  constructor(envelope, info, m, settle, objects) {
    this.envelope = envelope;
    this.info = info;
    this.#m = m;
    this.#settle = settle;
    this.#objects = objects;
  }

  #settleOnce() {
    if (this.#settled) throw fail("INVALID_ARGUMENT", "the delivery was already settled (ack, nak or term)");
    this.#settled = true;
    this.#settle.handOver();
  }

  /** Processed: not delivered again. With doubleAck (or link objects to delete, on a work-queue
   * stream) it waits for the server's confirmation. */
  async ack() {
    this.#settleOnce();
    try {
      if (this.#settle.ackWaits()) await this.#m.ackAck();
      else this.#m.ack();
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `ack failed: ${e.message}`);
    }
    if (!this.#settle.deletesLinks()) return;
    for (const { bucket, name } of this.#objects) {
      try {
        await (await this.#settle.bucket(bucket)).delete(name);
      } catch {
        // a sweep removes it
      }
    }
  }

  /** Not processed: delivered again after `delayMs` (default at once). */
  async nak(delayMs) {
    if (delayMs !== undefined) checkTimeout(delayMs, "a nak delay");
    this.#settleOnce();
    try {
      this.#m.nak(delayMs);
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `nak failed: ${e.message}`);
    }
  }

  /** Still working on it: the server waits another ack_wait before delivering again. */
  async inProgress() {
    if (this.#settled) throw fail("INVALID_ARGUMENT", "the delivery was already settled");
    try {
      this.#m.working();
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `in_progress failed: ${e.message}`);
    }
  }

  /** Never to be processed: not delivered again. */
  async term() {
    this.#settleOnce();
    try {
      this.#m.term();
    } catch (e) {
      throw fail("NATS_CONNECTION_FAILED", `term failed: ${e.message}`);
    }
  }
}

// The seeds' one-call style: one connection per connection settings, under the key the core
// makes of them, connected on first use.
const shared = new Map();

function sharedConnection(call) {
  let conn = shared.get(call.key);
  if (!conn) {
    conn = connect(call.connect);
    conn.catch(() => shared.delete(call.key));
    shared.set(call.key, conn);
  }
  return conn;
}

/**
 * `smartsend(subject, [[dataname, data, payload_type], ...], options)`. With `connection`, on that
 * connection; else on the shared connection of `brokerUrl` (a ws:// URL) and the connection
 * options given, made on first use.
 */
export async function smartsend(subject, data, opts = {}) {
  const { connection, wasm, ...options } = optionsObject(opts, "smartsend");
  if (connection) return connection.smartsend(subject, data, options);
  await init(wasm);
  const call = core.callOptions(options, "send");
  return (await sharedConnection(call)).smartsend(subject, data, call.send);
}

/**
 * `smartreceive(msg, options)`. With `connection`, link payloads may come from its object store;
 * with `brokerUrl`, through the shared connection of the one-call style; otherwise only direct
 * payloads and links under `allowedOrigins` can be read. Options: arrow, and the download options
 * (allowedOrigins, maxRetries, baseDelay, maxDelay, maxDownloadBytes) and the receive limits.
 */
export async function smartreceive(msg, opts = {}) {
  const { connection, wasm, arrow, ...options } = optionsObject(opts, "smartreceive");
  if (connection) return connection.smartreceive(msg, { arrow, ...options });
  await init(wasm);
  const call = core.callOptions(options, "receive");
  if (call.key !== null) return (await sharedConnection(call)).smartreceive(msg, { arrow });
  const links = { config: () => new core.Config(call.connect), release: (config) => config.free() };
  return receive(msg, links, arrowMode(arrow), false);
}

/** Closes (drains) the shared connections of the one-call style. */
export async function close() {
  const conns = [...shared.values()];
  shared.clear();
  const closing = await Promise.allSettled(conns.map(async (c) => (await c).close()));
  const failed = closing.find((r) => r.status === "rejected" && r.reason instanceof NATSBridgeError);
  if (failed) throw failed.reason;
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

/** JSON text of a value. JSON.stringify would turn NaN into null and drop undefined members;
 * those are refused instead, so nothing changes silently on the way. */
function strictJson(value, dataname) {
  const refuse = (what) =>
    fail("INVALID_PAYLOAD_TYPE", `payload ${JSON.stringify(dataname)} holds ${what}, which JSON cannot carry`);
  return JSON.stringify(value, (key, v) => {
    if (typeof v === "number" && !Number.isFinite(v)) throw refuse(String(v));
    if (v === undefined || typeof v === "function" || typeof v === "symbol" || typeof v === "bigint") {
      throw refuse(typeof v === "bigint" ? "a BigInt" : String(typeof v));
    }
    return v;
  });
}

/** A payload as the core takes it: a string, bytes (an apache-arrow Table as its IPC stream), or
 * JSON text of any other value; the core decides what it is by its payload_type. */
function addPayload(sending, item, position) {
  if (!Array.isArray(item) || item.length !== 3) {
    throw fail("INVALID_PAYLOAD_TYPE", `payload ${position} must be [dataname, data, payload_type]`);
  }
  const [name, value, type] = item;
  if (typeof name !== "string" || typeof type !== "string") {
    throw fail("INVALID_PAYLOAD_TYPE", `payload ${position}: dataname and payload_type must be strings`);
  }
  if (typeof value === "string" || value instanceof Uint8Array) sending.add(name, type, value);
  else if (value instanceof ArrayBuffer) sending.add(name, type, new Uint8Array(value));
  else if (ArrayBuffer.isView(value)) sending.add(name, type, new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  else if (isArrowTable(value)) sending.add(name, type, tableToIPC(value, "stream"));
  else sending.addJson(name, type, strictJson(value, name));
}

function messageBytes(msg) {
  if (msg instanceof Uint8Array) return msg;
  if (msg instanceof ArrayBuffer) return new Uint8Array(msg);
  if (typeof msg === "string") return new TextEncoder().encode(msg);
  if (msg && msg.data instanceof Uint8Array) return msg.data;
  throw fail("INVALID_ENVELOPE", "a message is a nats Msg (with .data), Uint8Array, ArrayBuffer or string");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 by Web Crypto (many times faster than hashing in WASM); undefined outside a secure
 * context, where the core hashes instead. */
async function webCryptoSha256(bytes) {
  if (!globalThis.crypto?.subtle) return undefined;
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** `[bytes, ended]`: at most `limit` bytes of a body stream, and whether it ended there (else
 * the rest is cancelled unread). */
async function readAtMost(stream, limit) {
  if (!stream) return [new Uint8Array(0), true];
  const buf = new Uint8Array(limit);
  let filled = 0;
  const reader = stream.getReader();
  while (filled < limit) {
    const { done, value } = await reader.read();
    if (done) return [buf.subarray(0, filled), true];
    const n = Math.min(value.length, limit - filled);
    buf.set(value.subarray(0, n), filled);
    filled += n;
  }
  await reader.cancel().catch(() => {});
  return [buf, false];
}

/** One GET of fetch step `f`, no redirects followed; the core judges the head, then the bytes. */
async function httpGet(receiving, config, f, run) {
  let resp;
  try {
    resp = await fetch(f.url, { redirect: "manual", cache: "no-store", credentials: "omit" });
  } catch (e) {
    live(run);
    return receiving.fetchFailed(config, f.id, { network: e.message });
  }
  live(run);
  const length = resp.headers.get("content-length");
  const status = resp.type === "opaqueredirect" ? undefined : resp.status;
  const head = receiving.head(config, f.id, status, resp.headers.get("location") ?? undefined,
    length === null ? undefined : Number(length));
  if (head === null) {
    await resp.body?.cancel().catch(() => {});
    return undefined;
  }
  let bytes;
  try {
    [bytes] = await readAtMost(resp.body, head.read);
  } catch (e) {
    live(run);
    return receiving.fetchFailed(config, f.id, { network: `reading body: ${e.message}` });
  }
  if (!head.payload) {
    live(run);
    return receiving.fetchFailed(config, f.id, { status: resp.status, detail: bytes });
  }
  const sha256 = await webCryptoSha256(bytes);
  live(run);
  return receiving.fetched(f.id, bytes, sha256);
}

/** One object store get of fetch step `f`. */
async function objectGet(receiving, config, f, links, run) {
  const shown = `object ${JSON.stringify(f.name)} in bucket ${JSON.stringify(f.bucket)}`;
  const report = (fact) => {
    live(run);
    receiving.fetchFailed(config, f.id, fact);
  };
  let store;
  try {
    store = await links.bucket(f.bucket);
  } catch (e) {
    return report({ notFound: `object store bucket ${JSON.stringify(f.bucket)} not available: ${e.message}` });
  }
  let object;
  try {
    object = await store.get(f.name);
  } catch (e) {
    return report({ network: `object store get of ${shown} failed: ${e.message}` });
  }
  if (object === null) return report({ notFound: `${shown} not found` });
  live(run);
  const read = receiving.objectHead(config, f.id, object.info.size);
  if (read === undefined) {
    await object.data.cancel().catch(() => {});
    return undefined;
  }
  let bytes;
  try {
    let ended;
    [bytes, ended] = await readAtMost(object.data, read);
    // nats.js checks the bytes against the stored digest at the end of the read.
    const error = ended ? await object.error : null;
    if (error) throw error;
  } catch (e) {
    const digest = /digest/.test(e.message);
    return report(digest ? { digestMismatch: `${shown}: ${e.message}` } : { network: `object store read of ${shown} failed: ${e.message}` });
  }
  live(run);
  // The bytes matched the stored digest, so that digest is theirs.
  return receiving.fetched(f.id, bytes, object.info.digest);
}

/** Sleeps the delay the machine names, then makes the fetch; resolves to its id once reported. */
async function fetchLink(receiving, config, f, links, run) {
  if (f.delayMs > 0) await sleep(f.delayMs);
  live(run);
  if (f.store === "object") await objectGet(receiving, config, f, links, run);
  else await httpGet(receiving, config, f, run);
  return f.id;
}

/** `links`: {config() -> the core config of the receive, bucket(name)?, release(config)?}. */
async function receive(msg, links, arrow, nack) {
  const bytes = messageBytes(msg);
  const env = await withCore(() => receiveOnce(bytes, links, arrow, nack), "DESERIALIZATION_ERROR");
  // Where a nats Msg came from, for replies (as the Python binding's `subject` and `reply`).
  if (typeof msg?.subject === "string") env.subject = msg.subject;
  if (msg?.reply) env.reply = msg.reply;
  const trace = traceOf(msg);
  if (trace !== undefined) env.trace_headers = trace;
  return env;
}

/** Drives the receive machine: makes each fetch it names, then reads the decoded payloads. */
async function receiveOnce(bytes, links, arrow, nack) {
  const generation = coreGeneration;
  let receiving;
  let config;
  try {
    config = links.config();
    receiving = new core.Receiving(bytes, config);
  } catch (e) {
    if (config) links.release?.(config);
    throw coreError(e, "INVALID_ENVELOPE");
  }
  const cid = receiving.correlationId;
  const run = { generation, open: true };
  const running = new Map();
  try {
    for (let step = receiving.step(config); step.action !== "done"; step = receiving.step(config)) {
      if (step.action === "fetch") {
        running.set(step.id, fetchLink(receiving, config, step, links, run));
        continue;
      }
      running.delete(await Promise.race(running.values()));
      alive(generation);
    }
    const env = JSON.parse(receiving.envelopeJson());
    const error = nack ? receiving.errorReply() : null;
    if (error) throw error;
    env.payloads = receiving.payloads(arrow === "rows");
    if (arrow === "table") for (const p of env.payloads) if (p[2] === "arrowtable") p[1] = tableFromIPC(p[1]);
    env.transports = receiving.transports();
    links.collect?.(receiving);
    return env;
  } catch (e) {
    if (e === RESTARTED) throw e;
    throw withCorrelationId(coreError(e, "DESERIALIZATION_ERROR", cid), cid);
  } finally {
    // Fetches still running after a failure find the receive closed and stop.
    run.open = false;
    for (const fetching of running.values()) fetching.catch(() => {});
    if (generation === coreGeneration) {
      receiving.free();
      links.release?.(config);
    }
  }
}

/** `receive` for a message whose links are read as streams: `links` as receive takes them. */
async function receiveStreamed(msg, links, arrow) {
  const bytes = messageBytes(msg);
  const env = await withCore(() => streamedOnce(bytes, links, arrow), "DESERIALIZATION_ERROR");
  if (typeof msg?.subject === "string") env.subject = msg.subject;
  if (msg?.reply) env.reply = msg.reply;
  const trace = traceOf(msg);
  if (trace !== undefined) env.trace_headers = trace;
  return env;
}

/** Decodes the message and checks every link against the allowed origins; fetches nothing. */
function streamedOnce(bytes, links, arrow) {
  const generation = coreGeneration;
  const config = links.config();
  let receiving;
  try {
    receiving = new core.Receiving(bytes, config);
  } catch (e) {
    throw coreError(e, "INVALID_ENVELOPE");
  }
  const cid = receiving.correlationId;
  try {
    const [json, payloads, transports] = receiving.streams(config, arrow === "rows");
    const env = JSON.parse(json);
    for (const p of payloads) {
      if (p[1] instanceof core.LinkReading) p[1] = new LinkStream(p[1], links, cid);
      else if (arrow === "table" && p[2] === "arrowtable") p[1] = tableFromIPC(p[1]);
    }
    env.payloads = payloads;
    env.transports = transports;
    return env;
  } catch (e) {
    throw withCorrelationId(coreError(e, "DESERIALIZATION_ERROR", cid), cid);
  } finally {
    free(receiving, generation);
  }
}

/** What a broken object store read means: the store's digest check, or a network failure. */
function objectReadFact(e, shown) {
  const message = e?.message ?? String(e);
  return /digest/.test(message)
    ? { digestMismatch: `${shown}: ${message}` }
    : { network: `object store read of ${shown} failed: ${message}` };
}

/**
 * A link payload's bytes as they arrive (`sub.nextStreamed()`, spec/PROTOCOL.md §8.3.2):
 * `link.stream` is a `ReadableStream<Uint8Array>` (`for await (const chunk of link)` reads it
 * too; `await link.bytes()` / `link.arrayBuffer()` collect it whole). Read it one way, once.
 * Nothing is fetched until it is read; each chunk is checked as it arrives and the end checks the
 * size and sha256 (the core's LinkCheck), so a stream that ends without error delivered exactly
 * the sender's bytes; otherwise it errors with CHECKSUM_MISMATCH (or DOWNLOAD_FAILED once the
 * retries are spent; a broken HTTP download resumes with a range request).
 */
export class LinkStream {
  #reading;
  #links;
  #cid;
  #generation;
  /** The open body: {reader, object?} (object: the object store's get result). */
  #body = null;
  #sha256 = null;
  #started = false;
  #over = false;

  constructor(reading, links, correlationId) {
    this.#reading = reading;
    this.#links = links;
    this.#cid = correlationId;
    this.#generation = coreGeneration;
    this.dataname = reading.dataname;
    this.payload_type = reading.payloadType;
    this.size = reading.size;
    /** The bytes as a `ReadableStream<Uint8Array>` (pulled: no fetch before the first read). */
    this.stream = new ReadableStream(
      { pull: (controller) => this.#pull(controller), cancel: () => this.#close() },
      { highWaterMark: 0 },
    );
  }

  /** The payload_type (as `payload_type`). */
  get payloadType() {
    return this.payload_type;
  }

  /** The bytes' sha256 (hex) once every byte was read and checked; null before. */
  get sha256() {
    return this.#sha256;
  }

  /** A call to the core's LinkReading; an abort of the core fails the stream. CLOSED once the
   * stream was cancelled (the reading is freed). */
  #core(call) {
    if (this.#over) throw CLOSED;
    if (this.#generation !== coreGeneration) {
      throw fail("DOWNLOAD_FAILED", `the WASM core restarted while ${JSON.stringify(this.dataname)} was read`, this.#cid);
    }
    try {
      return call(this.#reading);
    } catch (e) {
      throw withCorrelationId(coreError(e, "DOWNLOAD_FAILED", this.#cid), this.#cid);
    }
  }

  async #pull(controller) {
    this.#started = true;
    try {
      for (;;) {
        if (this.#over) return;
        if (this.#body === null) {
          const open = this.#core((r) => r.open());
          if (open.delayMs > 0) await sleep(open.delayMs);
          const body = open.store === "object" ? await this.#openObject(open) : await this.#openHttp(open);
          if (this.#over) {
            body?.reader.cancel().catch(() => {});
            return;
          }
          this.#body = body;
          continue;
        }
        let r;
        try {
          r = await this.#body.reader.read();
          if (r.done && this.#body.object) {
            // nats.js checked the bytes against the stored digest at the end of the read.
            const error = await this.#body.object.error;
            if (error) throw error;
          }
        } catch (e) {
          if (this.#over) return;
          const fact = this.#body.object ? objectReadFact(e, this.#body.shown) : { network: `reading body: ${e?.message ?? e}` };
          this.#body = null;
          this.#core((reading) => reading.failed(fact));
          continue;
        }
        if (this.#over) return;
        if (r.done) {
          this.#body = null;
          this.#sha256 = this.#core((reading) => reading.end());
          this.#close();
          controller.close();
          return;
        }
        const skip = this.#core((reading) => reading.chunk(r.value));
        const chunk = skip === 0 ? r.value : r.value.subarray(skip);
        if (chunk.length > 0) {
          controller.enqueue(chunk);
          return;
        }
      }
    } catch (e) {
      if (e === CLOSED) return;
      this.#close();
      throw e;
    }
  }

  /** One GET (no redirects followed); the core judges the head. The body's reader, or null. */
  async #openHttp(open) {
    const init = { redirect: "manual", cache: "no-store", credentials: "omit" };
    if (open.range !== undefined) init.headers = { range: open.range };
    let resp;
    try {
      resp = await fetch(open.url, init);
    } catch (e) {
      this.#core((r) => r.failed({ network: e.message }));
      return null;
    }
    const length = resp.headers.get("content-length");
    const status = resp.type === "opaqueredirect" ? undefined : resp.status;
    let head;
    try {
      head = this.#core((r) => r.httpHead(status, resp.headers.get("location") ?? undefined,
        length === null ? undefined : Number(length), resp.headers.get("content-range") ?? undefined));
    } catch (e) {
      await resp.body?.cancel().catch(() => {});
      throw e;
    }
    if (head === null) {
      await resp.body?.cancel().catch(() => {});
      return null;
    }
    if (head.detail !== undefined) {
      let detail;
      try {
        [detail] = await readAtMost(resp.body, head.detail);
      } catch (e) {
        this.#core((r) => r.failed({ network: `reading body: ${e.message}` }));
        return null;
      }
      this.#core((r) => r.failed({ status: resp.status, detail }));
      return null;
    }
    return { reader: (resp.body ?? new Blob([]).stream()).getReader() };
  }

  /** One object store get: the data's reader (from the start: the store has no ranges), or null. */
  async #openObject(open) {
    const shown = `object ${JSON.stringify(open.name)} in bucket ${JSON.stringify(open.bucket)}`;
    let object;
    try {
      let store;
      try {
        store = await this.#links.bucket(open.bucket);
      } catch (e) {
        this.#core((r) => r.failed({ notFound: `object store bucket ${JSON.stringify(open.bucket)} not available: ${e.message}` }));
        return null;
      }
      object = await store.get(open.name);
    } catch (e) {
      this.#core((r) => r.failed({ network: `object store get of ${shown} failed: ${e.message}` }));
      return null;
    }
    if (object === null) {
      this.#core((r) => r.failed({ notFound: `${shown} not found` }));
      return null;
    }
    // Rejections of `error` come through the data's reader too.
    object.error?.catch?.(() => {});
    let read;
    try {
      read = this.#core((r) => r.objectHead(object.info.size, object.info.digest));
    } finally {
      if (!read) await object.data.cancel().catch(() => {});
    }
    return read ? { reader: object.data.getReader(), object, shown } : null;
  }

  /** Over: the body is cancelled and the core's reading freed (the sha256 stays). */
  #close() {
    if (this.#over) return;
    this.#over = true;
    const body = this.#body;
    this.#body = null;
    body?.reader.cancel().catch(() => {});
    free(this.#reading, this.#generation);
  }

  /** Every byte, checked, in one Uint8Array of `size` bytes; INVALID_ARGUMENT once the stream
   * was read (it would miss the bytes already read). */
  async bytes() {
    if (this.#started || this.stream.locked) {
      throw fail("INVALID_ARGUMENT", `bytes of ${JSON.stringify(this.dataname)} were already read; only a link not yet read can be collected whole`, this.#cid);
    }
    const out = new Uint8Array(this.size);
    let at = 0;
    for await (const chunk of this) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  /** `bytes()` as an ArrayBuffer. */
  async arrayBuffer() {
    return (await this.bytes()).buffer;
  }

  [Symbol.asyncIterator]() {
    const reader = this.stream.getReader();
    return {
      next: () => reader.read(),
      return: async () => {
        await reader.cancel().catch(() => {});
        reader.releaseLock();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}
