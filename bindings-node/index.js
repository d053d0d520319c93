'use strict'
// NATSBridge for Node.js: typed payloads over NATS, large ones through claim-check links.
// The protocol, the options and their checks, and all I/O live in the Rust core (the private
// addon loaded by native.js); this file converts JavaScript values only: option names
// (camelCase to core's snake_case), payload values, Arrow tables, async iteration, Error objects.

const { Readable } = require('node:stream')
const { fileURLToPath } = require('node:url')
const native = require('./native.js')

const ERROR_CODES = Object.freeze(native.errorCodes())
const PAYLOAD_TYPES = Object.freeze(native.payloadTypes())
const MSG_PURPOSES = Object.freeze(native.msgPurposes())
const OPTION_NAMES = Object.freeze(native.optionNames())
const SEND_OPTION_NAMES = Object.freeze(native.sendOptionNames())
const STREAM_OPTION_NAMES = Object.freeze(native.streamOptionNames())
const CONSUME_OPTION_NAMES = Object.freeze(native.consumeOptionNames())
const DEFAULT_SIZE_THRESHOLD = native.DEFAULT_SIZE_THRESHOLD

const TEXT = 'text'
const DICTIONARY = 'dictionary'
const ARROWTABLE = 'arrowtable'
const JSONTABLE = 'jsontable'
const IMAGE = 'image'
const AUDIO = 'audio'
const VIDEO = 'video'
const BINARY = 'binary'

const ACK = 'ACK'
const NACK = 'NACK'
const UPDATE_STATUS = 'updateStatus'
const SHUTDOWN = 'shutdown'
const CHAT = 'chat'
const COMMAND = 'command'
const EVENT = 'event'

/** An Error with one of the core's codes, for input that cannot reach the core as it is. */
function codedError(code, message) {
  const e = new Error(`${code}: ${message}`)
  e.code = code
  e.correlationId = null
  return e
}

const invalid = (message) => codedError('INVALID_ARGUMENT', message)

/** The addon returns errors as values (so they keep the core's code); they are thrown here. */
function unwrap(r) {
  if (r instanceof Error) throw r
  return r
}

function kindOf(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'Array'
  if (typeof v === 'object') return v.constructor ? v.constructor.name : 'Object'
  return typeof v
}

// --- options: core's names in camelCase or snake_case, durations in milliseconds -------------

/** Core's spelling of an option name: camelCase becomes snake_case, snake_case stays. */
function snake(key) {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

/** An options object keyed by core's names; undefined values are left out (unset). */
// @opentelemetry/api when the application has it (undefined: not looked up yet, null: absent).
let otel

function openTelemetry() {
  if (otel === undefined) {
    try {
      otel = require('@opentelemetry/api')
    } catch {
      otel = null
    }
  }
  return otel
}

/** Options `o` (or null: none) with the caller's active OpenTelemetry context as
 * `trace_headers` (W3C headers, as the API's propagator injects them) unless `o` has them;
 * unchanged without the API or an active span. */
function traced(o) {
  if (openTelemetry() === null || (o !== null && o.trace_headers != null)) return o
  const carrier = {}
  otel.propagation.inject(otel.context.active(), carrier)
  if (Object.keys(carrier).length === 0) return o
  const out = o ?? {}
  out.trace_headers = carrier
  return out
}

const SPAN_KINDS = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 } // @opentelemetry/api's SpanKind
const STATUS_CODES = { unset: 0, ok: 1, error: 2 } // SpanStatusCode

/** Hands natsbridge's own spans (send, upload, publish, receive, download: spec/PROTOCOL.md
 * §13.2) to an OpenTelemetry SDK span processor, as `ReadableSpan`s: `exportSpans(new
 * BatchSpanProcessor(exporter), { resource })`, or the processor your tracer provider has. They
 * carry the span ids the messages carry, so a receiver's spans continue them, and a send in an
 * active span is its child. `resource`: the spans' resource (default: @opentelemetry/resources'
 * `defaultResource()`). `onEnd` is called on this thread as spans end; a later call replaces the
 * processor. Once called, the spans are made for the rest of the process. */
function exportSpans(processor, options = {}) {
  if (processor == null || typeof processor.onEnd !== 'function') {
    throw codedError('INVALID_ARGUMENT', 'exportSpans takes a span processor (an object with onEnd)')
  }
  const api = openTelemetry()
  if (api === null) throw codedError('INVALID_ARGUMENT', 'exportSpans needs @opentelemetry/api')
  const resource = options.resource ?? require('@opentelemetry/resources').defaultResource()
  const scope = { name: 'natsbridge', version: require('./package.json').version }
  const context = (s, spanId, isRemote) => ({
    traceId: s.trace_id,
    spanId,
    traceFlags: s.trace_flags,
    isRemote,
    traceState: s.trace_state ? api.createTraceState(s.trace_state) : undefined
  })
  const readable = (s) => {
    const own = context(s, s.span_id, false)
    const [start, end] = [s.start, s.end]
    const nanos = end[1] - start[1]
    return {
      name: s.name,
      kind: SPAN_KINDS[s.kind],
      spanContext: () => own,
      parentSpanContext: s.parent_span_id ? context(s, s.parent_span_id, s.parent_is_remote) : undefined,
      startTime: start,
      endTime: end,
      duration: nanos < 0 ? [end[0] - start[0] - 1, nanos + 1e9] : [end[0] - start[0], nanos],
      status: { code: STATUS_CODES[s.status.code], message: s.status.description || undefined },
      attributes: s.attributes,
      links: s.links.map((l) => ({ context: context(l, l.span_id, true), attributes: l.attributes })),
      events: s.events.map((e) => ({ name: e.name, time: e.time, attributes: e.attributes })),
      ended: true,
      resource,
      instrumentationScope: scope,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0
    }
  }
  unwrap(native.exportSpans((batch) => {
    for (const span of JSON.parse(batch)) processor.onEnd(readable(span))
  }))
}

// Connections whose counts the OpenTelemetry meter observes, and the meter provider that has
// instruments observing them (the API has no proxy meter: a provider installed later needs its own).
const observed = new Set()
let observingProvider = null
// [instrument, unit, key of metrics(), counted by transport, scale]: spec/PROTOCOL.md §13.3; the
// download duration, a histogram in core, is observed as its total (seconds) and its count.
const COUNTERS = [
  ['natsbridge.messages.sent', '{message}', 'messagesSent', false, 1],
  ['natsbridge.messages.received', '{message}', 'messagesReceived', false, 1],
  ['natsbridge.payloads.sent', '{payload}', 'payloadsSent', true, 1],
  ['natsbridge.payloads.received', '{payload}', 'payloadsReceived', true, 1],
  ['natsbridge.bytes.sent', 'By', 'bytesSent', true, 1],
  ['natsbridge.bytes.received', 'By', 'bytesReceived', true, 1],
  ['natsbridge.download.retries', '{retry}', 'downloadRetries', false, 1],
  ['natsbridge.checksum.failures', '{failure}', 'checksumFailures', false, 1],
  ['natsbridge.downloads', '{download}', 'downloads', false, 1],
  ['natsbridge.download.time', 's', 'downloadTimeMs', false, 0.001],
]

/** Makes `conn`'s counts observable through @opentelemetry/api when the application has it
 * (one series per connection, by its senderId); instruments are made on the meter provider
 * installed when a connection is made, once per provider. */
function observeMetrics(conn) {
  if (openTelemetry() === null) return
  const provider = otel.metrics.getMeterProvider()
  if (provider !== observingProvider) {
    observingProvider = provider
    const meter = provider.getMeter('natsbridge')
    for (const [name, unit, key, byTransport, scale] of COUNTERS) {
      const counter = meter.createObservableCounter(name, { unit })
      counter.addCallback((result) => {
        for (const c of observed) {
          const counts = c.metrics()
          const series = { 'natsbridge.sender_id': c.senderId }
          if (byTransport) {
            for (const t of ['direct', 'link']) result.observe(counts[key][t], { ...series, 'natsbridge.transport': t })
          } else {
            result.observe(counts[key] * scale, series)
          }
        }
      })
    }
  }
  observed.add(conn)
}

function byCoreName(opts, what) {
  if (opts == null) return {}
  if (typeof opts !== 'object' || Array.isArray(opts)) throw invalid(`${what} options are an object, not ${kindOf(opts)}`)
  const out = {}
  for (const key of Object.keys(opts)) if (opts[key] !== undefined) out[snake(key)] = opts[key]
  return out
}

/** Takes the keys `names` out of `o`: a call's host-side arguments, which the core never sees. */
function take(o, names) {
  const out = {}
  for (const name of names) {
    if (name in o) {
      out[name] = o[name]
      delete o[name]
    }
  }
  return out
}

function refuseOthers(o, what, allowed) {
  const extra = Object.keys(o)
  if (extra.length > 0) throw invalid(`unknown ${what} option ${JSON.stringify(extra[0])}; the options are ${allowed.join(', ')}`)
}

/** JSON text of options for the core (null when there are none). A value JSON cannot carry is
 * refused here rather than dropped or turned into null by JSON.stringify. */
function optionsJson(o) {
  if (Object.keys(o).length === 0) return null
  try {
    return JSON.stringify(o, (key, v) => {
      if ((typeof v === 'number' && !Number.isFinite(v)) || typeof v === 'function' || typeof v === 'symbol') {
        throw invalid(`option ${JSON.stringify(key)} cannot be ${typeof v === 'number' ? v : `a ${typeof v}`}`)
      }
      return v
    })
  } catch (e) {
    throw e.code === 'INVALID_ARGUMENT' ? e : invalid(`options are not JSON values: ${e.message}`)
  }
}

function arrowMode(mode) {
  if (mode === undefined || mode === null) return 'rows'
  if (mode === 'rows' || mode === 'table' || mode === 'ipc') return mode
  throw invalid(`arrow must be "rows", "table" or "ipc", not ${JSON.stringify(mode)}`)
}

function checkSubject(subject) {
  if (typeof subject !== 'string' || subject === '') throw invalid(`a subject is a non-empty string, not ${kindOf(subject)}`)
}

function checkName(name, what) {
  if (typeof name !== 'string') throw invalid(`a ${what} name is a string, not ${kindOf(name)}`)
}

function checkTimeout(timeout) {
  if (timeout != null && typeof timeout !== 'number') throw invalid(`timeout is a number of milliseconds, not ${kindOf(timeout)}`)
  return timeout ?? null
}

// --- payloads -----------------------------------------------------------------------------------

// JSON.stringify would write NaN and ±Infinity as null: refuse them, as the other bindings do.
function finiteOnly(key, v) {
  if (typeof v === 'number' && !Number.isFinite(v)) {
    throw new RangeError(`${v} is not a JSON number (at key ${JSON.stringify(key)}; NaN and infinities are not allowed)`)
  }
  return v
}

function jsonText(name, value) {
  let text
  try {
    text = JSON.stringify(value, finiteOnly)
  } catch (e) {
    throw codedError('INVALID_PAYLOAD_TYPE', `payload ${JSON.stringify(name)} is not JSON-serializable: ${e.message}`)
  }
  if (text === undefined) {
    throw codedError('INVALID_PAYLOAD_TYPE', `payload ${JSON.stringify(name)} is not JSON-serializable: ${kindOf(value)}`)
  }
  return text
}

let arrowModule
function arrow() {
  if (arrowModule === undefined) {
    try {
      arrowModule = require('apache-arrow')
    } catch {
      throw codedError('INVALID_PAYLOAD_TYPE', 'Arrow tables need the apache-arrow package: npm install apache-arrow')
    }
  }
  return arrowModule
}

function isArrowTable(v) {
  return v !== null && typeof v === 'object' && Array.isArray(v.batches) && v.schema && typeof v.numRows === 'number'
}

// What a string handed to the addon is (`PayloadIn` in src/convert.rs).
const PLAIN = 0
const JSON_TEXT = 1
const FILE_PATH = 2

/** `[[dataname, data, payload_type, kind], ...]` for the addon: data as bytes, a string, JSON
 * text (JSON_TEXT), a file's path (FILE_PATH, from a `file:` URL: read only while it is sent), or
 * a stream's pull function (then `kind` is the stream's size).
 * What each means for its payload_type is the core's rule. */
function toNative(data) {
  if (!Array.isArray(data)) {
    throw codedError('INVALID_PAYLOAD_TYPE', `payloads must be an array of [dataname, data, payload_type], not ${kindOf(data)}`)
  }
  const out = new Array(data.length)
  for (let i = 0; i < data.length; i++) {
    const item = data[i]
    if (!Array.isArray(item) || item.length !== 3 || typeof item[0] !== 'string' || typeof item[2] !== 'string') {
      throw codedError('INVALID_PAYLOAD_TYPE', `payload ${i} must be [dataname: string, data, payload_type: string]`)
    }
    const [name, value, type] = item
    if (typeof value === 'string' || value instanceof Uint8Array) out[i] = [name, value, type, PLAIN]
    else if (value instanceof ArrayBuffer) out[i] = [name, new Uint8Array(value), type, PLAIN]
    else if (ArrayBuffer.isView(value)) out[i] = [name, new Uint8Array(value.buffer, value.byteOffset, value.byteLength), type, PLAIN]
    else if (isArrowTable(value)) out[i] = [name, arrow().tableToIPC(value, 'stream'), type, PLAIN]
    else if (value instanceof URL && value.protocol === 'file:') out[i] = [name, fileURLToPath(value), type, FILE_PATH]
    else if (isSizedStream(value)) {
      if (typeof value.size !== 'number') throw codedError('INVALID_ARGUMENT', `payload ${i}: a stream's size must be a whole number of bytes, not ${kindOf(value.size)}`)
      out[i] = [name, pullFrom(name, value.stream), type, value.size]
    }
    else out[i] = [name, jsonText(name, value), type, JSON_TEXT]
  }
  return out
}

/** `{ stream, size }`: a Readable (or any async iterable of bytes) and how many bytes it gives. */
function isSizedStream(value) {
  return value !== null && typeof value === 'object' && value.stream != null &&
    typeof value.stream[Symbol.asyncIterator] === 'function' && 'size' in value
}

const END_OF_STREAM = new Uint8Array(0)

/** The addon's pull function for a stream: its next non-empty chunk, or an empty one at its end.
 * The addon calls it on this thread while the send reads the stream, one call at a time, so a
 * Readable is only asked for more as fast as the link store takes it. */
function pullFrom(name, stream) {
  const chunks = stream[Symbol.asyncIterator]()
  return async () => {
    for (;;) {
      const { value, done } = await chunks.next()
      if (done) return END_OF_STREAM
      if (!(value instanceof Uint8Array)) {
        throw new TypeError(`payload ${JSON.stringify(name)}: the stream gave a ${kindOf(value)}, not bytes (a Readable with an encoding set gives strings)`)
      }
      if (value.length > 0) return value
    }
  }
}

/** Reads what the addon packs (`Pack` in src/convert.rs): `nums`, a string of numbers (LEB128,
 * a character per seven bits) and of each string's end in its text; `vals`, the texts (one per
 * message) and the values that cross on their own. Strings are slices of their message's text. */
class Unpack {
  constructor(nums, vals) {
    this.n = nums
    this.v = vals
    this.k = 0
    this.i = 0
    this.t = ''
    this.p = 0
  }

  /** The next message's text: the strings from here on are in it. */
  text() {
    this.t = this.v[this.i++]
    this.p = 0
  }

  str() {
    const start = this.p
    this.p = this.num()
    return this.t.slice(start, this.p)
  }

  num() {
    let c = this.n.charCodeAt(this.k++)
    if (c < 128) return c
    let x = c & 127
    let scale = 128
    do {
      c = this.n.charCodeAt(this.k++)
      x += (c & 127) * scale
      scale *= 128
    } while (c >= 128)
    return x
  }

  more() {
    return this.k < this.n.length
  }

  val() {
    return this.v[this.i++]
  }
}

/** A JSON object's text as the addon packs it: "" is an empty object. */
const jsonObject = (text) => (text === '' ? {} : JSON.parse(text))

/** The envelope's header fields in the seeds' order, then `metadata` (`Pack::header` in
 * src/convert.rs); the caller adds the rest in wire order. */
function readHeader(u) {
  return {
    correlation_id: u.str(),
    msg_id: u.str(),
    timestamp: u.str(),
    send_to: u.str(),
    msg_purpose: u.str(),
    sender_name: u.str(),
    sender_id: u.str(),
    receiver_name: u.str(),
    receiver_id: u.str(),
    reply_to: u.str(),
    reply_to_msg_id: u.str(),
    broker_url: u.str(),
    metadata: jsonObject(u.str())
  }
}

/** A received message from the addon's pack (`pack_ready` in src/convert.rs) as the envelope:
 * header fields, then `payloads` as `[dataname, data, payload_type]` (data as the addon gave
 * it: see `finishEnvelope`), `transports`, `subject` / `reply` from a subscription, and
 * `trace_headers` when the message carried a trace context. */
function readEnvelope(u) {
  u.text()
  const env = readHeader(u)
  const error = u.str()
  const subject = u.num() === 1 ? u.str() : null
  const reply = u.num() === 1 ? u.str() : null
  const trace = u.num() === 1 ? u.str() : null
  const n = u.num()
  const payloads = new Array(n)
  const transports = new Array(n)
  for (let i = 0; i < n; i++) {
    const dataname = u.str()
    const type = u.str()
    transports[i] = u.str()
    payloads[i] = [dataname, u.num() === 0 ? u.str() : u.val(), type]
  }
  if (error !== '') env.error = JSON.parse(error)
  env.payloads = payloads
  env.transports = transports
  if (subject !== null) env.subject = subject
  if (reply !== null) env.reply = reply
  if (trace !== null) env.trace_headers = JSON.parse(trace)
  return env
}

/** The payload values as the user gets them: JSON parsed, Arrow as `mode` asks. */
function finishEnvelope(env, mode) {
  for (const p of env.payloads) {
    if (p[1] instanceof LinkStream) continue
    const type = p[2]
    if (type === DICTIONARY || type === JSONTABLE) p[1] = JSON.parse(p[1])
    else if (type === ARROWTABLE) p[1] = mode === 'rows' ? JSON.parse(p[1]) : mode === 'table' ? arrow().tableFromIPC(p[1]) : p[1]
  }
  return env
}

/** One received message from the addon (`[nums, vals]`) as the envelope. */
function toEnvelope(r, mode) {
  return finishEnvelope(readEnvelope(new Unpack(r[0], r[1])), mode)
}

/** `[env, msgJson]` from what the addon returns (`sent_to_js` in src/convert.rs): `[msgJson,
 * nums, vals]`, the envelope's fields packed, so `env` is what `JSON.parse(msgJson)` gives
 * without parsing it (large direct data as slices of msgJson), with a fourth item for a
 * durable publish: the stream's PubAck (`env.pub_ack`, not on the wire). */
function sentPair(r) {
  const msgJson = r[0]
  const u = new Unpack(r[1], r[2])
  u.text()
  const env = readHeader(u)
  const n = u.num()
  const payloads = new Array(n)
  for (let i = 0; i < n; i++) {
    const id = u.str()
    const dataname = u.str()
    const payload_type = u.str()
    const transport = u.str()
    const encoding = u.str()
    const size = u.num()
    const kind = u.num()
    let data
    if (kind === 0) data = u.str()
    else if (kind === 1) data = msgJson.slice(u.num(), u.num())
    else data = JSON.parse(u.str())
    payloads[i] = { id, dataname, payload_type, transport, encoding, size, data, metadata: jsonObject(u.str()) }
  }
  env.payloads = payloads
  const error = u.str()
  if (error !== '') env.error = JSON.parse(error)
  if (r.length > 3) env.pub_ack = r[3]
  return [env, msgJson]
}

function messageBytes(msg) {
  if (msg instanceof Uint8Array || typeof msg === 'string') return msg
  if (msg instanceof ArrayBuffer) return new Uint8Array(msg)
  if (msg !== null && typeof msg === 'object' && msg.data instanceof Uint8Array) return msg.data // a nats.js Msg
  throw codedError('INVALID_ENVELOPE', `a message is a Buffer, Uint8Array, string or nats.js Msg, not ${kindOf(msg)}`)
}

/** The JSON of a received envelope's header (with `reply`): what the core reads a reply's
 * subject and header from. */
function requestJson(request) {
  if (request === null || typeof request !== 'object') return JSON.stringify(request ?? null)
  const { payloads, transports, ...header } = request
  try {
    return JSON.stringify(header)
  } catch (e) {
    throw invalid(`the request is not a received envelope: ${e.message}`)
  }
}

// --- handlers: the seeds' contracts (README "One vocabulary") -------------------------------------

function checkHandler(fn, name) {
  if (typeof fn !== 'function') throw invalid(`${name} must be a function, not ${kindOf(fn)}`)
}

/** `(fileserverUrl, dataname, data) => {url, ...} | url` (plain or async) as the addon calls it:
 * a Promise of the JSON text of its answer, which the core reads. */
function uploadHandler(fn) {
  if (fn == null) return null
  checkHandler(fn, 'fileserverUploadHandler')
  return async (server, dataname, data) => JSON.stringify(await fn(server, dataname, data)) ?? 'null'
}

/** `(url, maxRetries, baseDelayMs, maxDelayMs, correlationId) => bytes` (plain or async) as the
 * addon calls it: a Promise of a Uint8Array. */
function downloadHandler(fn) {
  if (fn == null) return null
  checkHandler(fn, 'fileserverDownloadHandler')
  return async (...args) => {
    const b = await fn(...args)
    if (b instanceof Uint8Array) return b
    if (b instanceof ArrayBuffer) return new Uint8Array(b)
    if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
    throw new Error(`returned ${kindOf(b)}, not bytes`)
  }
}

// --- lifetimes -----------------------------------------------------------------------------------

// The connections live on the addon's threads and do not keep the event loop alive. So that a
// script that ends without close() loses nothing it sent, the connections still open are
// drained when the loop runs empty ('beforeExit'; not on process.exit()).
const openConnections = new Set()
let sharedInUse = false
let exitHooked = false
function hookExit() {
  if (!exitHooked) {
    exitHooked = true
    process.on('beforeExit', () => {
      if (!sharedInUse && openConnections.size === 0) return
      const warn = (e) => process.emitWarning(`natsbridge: draining at exit failed: ${e.message}`, { code: e.code })
      const pending = [...openConnections].map((c) => c.close().catch(warn))
      if (sharedInUse) pending.push(close().catch(warn))
      return Promise.all(pending)
    })
  }
}

function useShared() {
  sharedInUse = true
  hookExit()
}

// --- the one-call style ------------------------------------------------------------------------

function checkConnection(c) {
  if (!(c instanceof Connection)) throw invalid(`connection must be a Connection from connect(), not ${kindOf(c)}`)
  return c
}

/**
 * Sends `[[dataname, data, payload_type], ...]` as one envelope to `subject`; resolves to
 * `[env, msgJson]`. Without `opts.connection`, a process-wide connection per `brokerUrl` (else
 * NATS_URL, else nats://localhost:4222) and `fileserverUrl` is made on first use.
 */
async function smartsend(subject, data, opts) {
  const o = traced(byCoreName(opts, 'smartsend'))
  const { connection, broker_url: brokerUrl } = take(o, ['connection', 'broker_url'])
  if (connection != null) {
    if (brokerUrl != null) throw invalid('give either connection or brokerUrl, not both')
    return checkConnection(connection).smartsend(subject, data, o)
  }
  checkSubject(subject)
  const payloads = toNative(data)
  const { fileserver_upload_handler: upload, ...call } = take(o, ['fileserver_upload_handler', 'fileserver_url'])
  if (brokerUrl != null) call.broker_url = brokerUrl
  useShared()
  const r = native.smartsend(subject, payloads, optionsJson(o), null, optionsJson(call), uploadHandler(upload))
  return sentPair(unwrap(r instanceof Promise ? await r : r))
}

/**
 * Decodes a message (bytes, a string, or a nats.js `Msg`): checks it, fetches link payloads,
 * verifies them and deserializes every payload. Resolves to the envelope with `payloads` as
 * `[dataname, data, payload_type]`. `opts.arrow`: "rows" (default, Array<Object>), "table"
 * (an apache-arrow Table) or "ipc" (the IPC stream bytes).
 */
async function smartreceive(msg, opts) {
  const o = byCoreName(opts, 'smartreceive')
  const host = take(o, ['connection', 'arrow', 'fileserver_download_handler'])
  if (host.connection != null) {
    if (host.fileserver_download_handler != null || Object.keys(o).length > 0) {
      throw invalid("with a connection, smartreceive takes only arrow: the connection's options and handlers apply")
    }
    return checkConnection(host.connection).smartreceive(msg, { arrow: host.arrow })
  }
  const mode = arrowMode(host.arrow)
  const download = downloadHandler(host.fileserver_download_handler)
  useShared()
  const r = native.smartreceive(messageBytes(msg), mode === 'rows', null, optionsJson(o), download)
  return toEnvelope(unwrap(r instanceof Promise ? await r : r), mode)
}

/** Drains the process-wide connections of the one-call style. */
async function close() {
  sharedInUse = false
  const r = native.closeShared()
  unwrap(r instanceof Promise ? await r : r)
}

// --- connections ---------------------------------------------------------------------------------

/**
 * Connects to NATS. Options by core's names in camelCase (or snake_case), durations in
 * milliseconds: `servers` (string or array), `name`, `user`, `password`, `token`, `nkey`,
 * `credentialsFile`, `tlsCaFile`, ..., `sizeThreshold`, `fileserverUrl`, ... (index.d.ts lists
 * them); and `arrow`, `fileserverUploadHandler`, `fileserverDownloadHandler`. A string is the
 * servers.
 */
async function connect(opts) {
  const o = typeof opts === 'string' ? { servers: opts } : byCoreName(opts, 'connect')
  const host = take(o, ['arrow', 'fileserver_upload_handler', 'fileserver_download_handler'])
  const mode = arrowMode(host.arrow)
  const upload = uploadHandler(host.fileserver_upload_handler)
  const download = downloadHandler(host.fileserver_download_handler)
  const r = native.connect(optionsJson(o), upload, download)
  const conn = new Connection(unwrap(r instanceof Promise ? await r : r), mode)
  openConnections.add(conn)
  hookExit()
  return conn
}

/** The `{arrow}` of a call that takes nothing else. */
function arrowOption(opts, fallback) {
  const o = byCoreName(opts, 'smartreceive')
  const { arrow } = take(o, ['arrow'])
  refuseOthers(o, 'Connection.smartreceive', ['arrow'])
  return arrowMode(arrow ?? fallback)
}

/** One NATS connection with the bridge's link stores. */
class Connection {
  constructor(nativeConnection, arrow) {
    this._n = nativeConnection
    this._arrow = arrow
    this._closed = null
    observeMetrics(this)
  }

  get senderId() {
    return this._n.senderId
  }

  get maxPayload() {
    return this._n.maxPayload
  }

  /** What this connection sent and received since it connected (spec/PROTOCOL.md §13.3). With
   * @opentelemetry/api the same counts are observable instruments of the `natsbridge` meter. */
  metrics() {
    return JSON.parse(this._n.metrics(), function (key, value) {
      if (key === '' || key.indexOf('_') < 0) return value
      this[key.replace(/_([a-z])/g, (_, c) => c.toUpperCase())] = value // messages_sent -> messagesSent
      return undefined
    })
  }

  /** Per-message options, and `fileserverUrl` / `fileserverUploadHandler` for this message. */
  async smartsend(subject, data, opts) {
    checkSubject(subject)
    const payloads = toNative(data)
    let r
    const o = traced(opts == null ? null : byCoreName(opts, 'smartsend'))
    if (o === null) {
      r = native.smartsend(subject, payloads, null, this._n, null, null)
    } else {
      const { fileserver_upload_handler: upload, ...call } = take(o, ['fileserver_upload_handler', 'fileserver_url'])
      r = native.smartsend(subject, payloads, optionsJson(o), this._n, optionsJson(call), uploadHandler(upload))
    }
    return sentPair(unwrap(r instanceof Promise ? await r : r))
  }

  async smartreceive(msg, opts) {
    const mode = opts == null ? this._arrow : arrowOption(opts, this._arrow)
    const r = native.smartreceive(messageBytes(msg), mode === 'rows', this._n, null, null)
    return toEnvelope(unwrap(r instanceof Promise ? await r : r), mode)
  }

  /** Resolves once the server has the subscription. Options: `queue`, `arrow`. */
  async subscribe(subject, opts) {
    checkSubject(subject)
    const o = byCoreName(opts, 'subscribe')
    const { queue, arrow } = take(o, ['queue', 'arrow'])
    refuseOthers(o, 'subscribe', ['queue', 'arrow'])
    if (queue != null && (typeof queue !== 'string' || queue === '')) throw invalid(`queue is a non-empty string, not ${kindOf(queue)}`)
    const mode = arrowMode(arrow ?? this._arrow)
    const r = this._n.subscribe(subject, queue ?? null, mode === 'rows')
    return new Subscription(unwrap(r instanceof Promise ? await r : r), mode)
  }

  /** Sends a request envelope and resolves to the reply; a NACK reply rejects with its code.
   * Options: the per-message ones, `timeout` (ms, default 5000), `arrow`. */
  async request(subject, data, opts) {
    checkSubject(subject)
    const payloads = toNative(data)
    const o = traced(byCoreName(opts, 'request'))
    const { timeout, arrow } = take(o, ['timeout', 'arrow'])
    const mode = arrowMode(arrow ?? this._arrow)
    const r = this._n.request(subject, payloads, optionsJson(o), checkTimeout(timeout), mode === 'rows')
    return toEnvelope(unwrap(await r), mode)
  }

  /** Replies to a received request envelope (ACK unless `msgPurpose` says otherwise). */
  async reply(request, data, opts) {
    const payloads = toNative(data)
    const r = this._n.reply(requestJson(request), payloads, optionsJson(traced(byCoreName(opts, 'reply'))))
    return sentPair(unwrap(r instanceof Promise ? await r : r))
  }

  /** Replies with a NACK carrying `{code, message}`; `code` is one of ERROR_CODES. */
  async replyError(request, code, message) {
    const r = this._n.replyError(requestJson(request), String(code), String(message))
    return sentPair(unwrap(r instanceof Promise ? await r : r))
  }

  /** Creates (or updates) a JetStream stream and, unless `deadLetter: false`, its dead-letter
   * stream `<name>_DEAD_LETTER`. Options: core's stream option names (`STREAM_OPTION_NAMES`),
   * durations in ms. Resolves to core's summary. */
  async addStream(name, opts) {
    checkName(name, 'stream')
    const r = this._n.addStream(name, optionsJson(byCoreName(opts, 'addStream')))
    return JSON.parse(unwrap(r instanceof Promise ? await r : r))
  }

  /** A durable pull consumer (created, or updated to these options) on an existing stream.
   * Options: core's consume option names (`CONSUME_OPTION_NAMES`), durations in ms; `arrow`. */
  async consume(stream, durable, opts) {
    checkName(stream, 'stream')
    checkName(durable, 'durable')
    const o = byCoreName(opts, 'consume')
    const { arrow } = take(o, ['arrow'])
    const mode = arrowMode(arrow ?? this._arrow)
    const r = this._n.consume(stream, durable, optionsJson(o), mode === 'rows')
    return new Consumer(unwrap(r instanceof Promise ? await r : r), mode, stream, durable)
  }

  /** Lists the object-store link objects tagged with `stream` whose message is not in it and
   * that are older than `minAge` ms (default: the stream's duplicate window), and removes them
   * when `dryRun` is false (default true). Resolves to core's report. */
  async sweepLinks(stream, opts) {
    checkName(stream, 'stream')
    const o = byCoreName(opts, 'sweepLinks')
    const { dry_run: dryRun, min_age: minAge } = take(o, ['dry_run', 'min_age'])
    refuseOthers(o, 'sweepLinks', ['dryRun', 'minAge'])
    if (dryRun != null && typeof dryRun !== 'boolean') throw invalid(`dryRun is a boolean, not ${kindOf(dryRun)}`)
    if (minAge != null && typeof minAge !== 'number') throw invalid(`minAge is a number of milliseconds, not ${kindOf(minAge)}`)
    const r = this._n.sweepLinks(stream, dryRun ?? true, minAge ?? null)
    return JSON.parse(unwrap(r instanceof Promise ? await r : r))
  }

  async flush() {
    unwrap(await this._n.flush())
  }

  /** Writes out pending publishes, delivers what is in flight, unsubscribes and closes; nothing
   * keeps the process alive after it. */
  async close() {
    openConnections.delete(this)
    observed.delete(this)
    this._closed ??= this._n.drain()
    unwrap(await this._closed)
  }

  /** Same as `close()`. */
  async drain() {
    return this.close()
  }

  async [Symbol.asyncDispose]() {
    return this.close()
  }
}

const BATCH = 256

function nextTimeout(opts) {
  const o = byCoreName(opts, 'next')
  const { timeout } = take(o, ['timeout'])
  refuseOthers(o, 'next', ['timeout'])
  return checkTimeout(timeout)
}

/** Decoded envelopes from one subscription, in arrival order: `await sub.next({timeout})` or
 * `for await (const env of sub)`. A message that fails to decode throws its error; the
 * subscription goes on. */
/** What subscriptions and consumers share: items fetched from the addon in batches (every item
 * already waiting, in one call), handed out one at a time; concurrent reads share one fetch. */
class Batched {
  constructor(native, arrow) {
    this._n = native
    this._arrow = arrow
    this._queue = []
    this._at = 0
    this._done = false
    this._fetching = null
  }

  /** The next raw item from the addon, or null once ended; `ms`: the time limit (null: none). */
  async _nextItem(ms) {
    while (this._at === this._queue.length) {
      if (this._done) return null
      if (this._fetching === null) {
        const r = this._n.nextBatch(BATCH, ms)
        if (!(r instanceof Promise)) {
          this._accept(r)
          continue
        }
        this._fetching = r.then(
          (v) => {
            this._fetching = null
            this._accept(v)
          },
          (e) => {
            this._fetching = null
            throw e
          },
        )
      }
      await this._fetching
    }
    const item = this._queue[this._at]
    this._queue[this._at++] = undefined
    return unwrap(item)
  }

  /** A batch from the addon (`batch_to_js` in src/convert.rs): its items read now (`_read`)
   * and appended to what is left, or null once closed. An item that failed to decode is its
   * Error. */
  _accept(r) {
    unwrap(r)
    if (r === null) {
      this._done = true
      return
    }
    if (this._at === this._queue.length) {
      this._queue = []
      this._at = 0
    }
    const u = new Unpack(r[0], r[1])
    while (u.more()) this._queue.push(u.num() === 0 ? this._read(u) : u.val())
  }

  /** Ends reading here: what is queued is dropped, every later read gives null. */
  _end() {
    this._done = true
    this._queue = []
    this._at = 0
  }

  /** An iterator over `next()`; leaving a `for await` loop calls `stop`. */
  _iterator(stop) {
    const reader = this
    return {
      async next() {
        const value = await reader.next()
        return value === null ? { value: undefined, done: true } : { value, done: false }
      },
      async return() {
        await stop()
        return { value: undefined, done: true }
      },
      [Symbol.asyncIterator]() {
        return this
      },
    }
  }
}

/** A link payload's bytes as they arrive (`sub.nextStreamed()`): a `Readable` of Buffers, or
 * `await link.save(path)`; read it one way, once. Nothing is fetched until it is read. The last
 * read checks the size and sha256: the stream errors (CHECKSUM_MISMATCH) rather than end on other
 * bytes. `save` writes `<path>.partial` and renames it once the bytes are checked. */
class LinkStream extends Readable {
  constructor(nativeLink) {
    super()
    this._n = nativeLink
    this.dataname = nativeLink.dataname
    this.payloadType = nativeLink.payloadType
    this.size = nativeLink.size
  }

  /** The bytes' sha256 (hex) once every byte was read and checked; null before. */
  get sha256() {
    return this._n.sha256 ?? null
  }

  _read() {
    this._n.nextChunk().then(
      (chunk) => (chunk instanceof Error ? this.destroy(chunk) : this.push(chunk)),
      (e) => this.destroy(e),
    )
  }

  /** Writes the bytes to `path` as they arrive; the number of bytes written. */
  async save(path) {
    return unwrap(await this._n.save(path))
  }
}

class Subscription extends Batched {
  _read(u) {
    return readEnvelope(u)
  }

  /** Like `next`, with each link payload's data a `LinkStream` (nothing is fetched until it is
   * read); messages a `for await` loop already took come first, as `next` gives them. */
  async nextStreamed(opts) {
    const ms = opts == null ? null : nextTimeout(opts)
    if (this._at < this._queue.length) return this.next()
    const r = unwrap(await this._n.nextStreamed(ms))
    if (r === null) return null
    const env = readEnvelope(new Unpack(r[0], r[1]))
    for (const p of env.payloads) if (p[1] instanceof native.LinkStream) p[1] = new LinkStream(p[1])
    return finishEnvelope(env, this._arrow)
  }

  /** The next envelope, or null once the subscription is closed. TIMEOUT error when nothing
   * arrives within `opts.timeout` ms. Concurrent calls share one fetch from the addon. */
  async next(opts) {
    const item = await this._nextItem(opts == null ? null : nextTimeout(opts))
    return item === null ? null : finishEnvelope(item, this._arrow)
  }

  /** An iterator over the envelopes; leaving a `for await` loop unsubscribes. */
  [Symbol.asyncIterator]() {
    return this._iterator(() => this.unsubscribe())
  }

  async unsubscribe() {
    this._end()
    unwrap(await this._n.unsubscribe())
  }
}

/** Decoded deliveries of a durable consumer, in order: `await consumer.next({timeout})` (or
 * `next(ms)`) or `for await (const msg of consumer)`. A delivery that fails to decode is settled
 * by core's rule (nak, or dead letter then term) and never yielded. Deliveries come from the
 * addon in batches, as a subscription's messages do. */
class Consumer extends Batched {
  constructor(nativeConsumer, arrow, stream, durable) {
    super(nativeConsumer, arrow)
    this.stream = stream
    this.durable = durable
  }

  /** A delivery as the addon packs it: the message, its info's JSON text, its settlement. */
  _read(u) {
    const envelope = readEnvelope(u)
    return [envelope, u.str(), u.val()]
  }

  /** The next delivery, or null once closed (or the connection is). TIMEOUT error when nothing
   * arrives within `opts.timeout` ms (a number alone is the timeout too). Concurrent calls share
   * one fetch from the addon. */
  async next(opts) {
    const ms = opts == null ? null : typeof opts === 'number' ? checkTimeout(opts) : nextTimeout(opts)
    const item = await this._nextItem(ms)
    return item === null ? null : new Delivery(item, this._arrow)
  }

  /** An iterator over the deliveries; leaving a `for await` loop closes the consumer. */
  [Symbol.asyncIterator]() {
    return this._iterator(() => this.close())
  }

  /** Stops pulling: a waiting and every later `next()` gives null. The durable consumer stays on
   * the server, where `consume` with the same durable name resumes after what was acked;
   * deliveries taken but not settled come back after `ackWait`. */
  async close() {
    this._end()
    unwrap(await this._n.close())
  }

  /** Same as `close()` (Python's and the browser's name). */
  async stop() {
    return this.close()
  }

  async [Symbol.asyncDispose]() {
    return this.close()
  }
}

/** One decoded delivery: `envelope` (as a subscription yields it) and `info` (core's delivery
 * info: stream, consumer, stream_sequence, consumer_sequence, delivered, pending, replayed,
 * redelivered). Settle it once: a second settlement is INVALID_ARGUMENT. */
class Delivery {
  constructor([envelope, info, ack], arrow) {
    this.envelope = finishEnvelope(envelope, arrow)
    this.info = JSON.parse(info)
    this._a = ack
  }

  /** Processed: not delivered again. */
  async ack() {
    const r = this._a.ack()
    unwrap(r instanceof Promise ? await r : r)
  }

  /** Not processed: delivered again after `delayMs` (default at once). */
  async nak(delayMs) {
    if (delayMs != null && typeof delayMs !== 'number') throw invalid(`a nak delay is a number of milliseconds, not ${kindOf(delayMs)}`)
    const r = this._a.nak(delayMs ?? null)
    unwrap(r instanceof Promise ? await r : r)
  }

  /** Still working on it: the server waits another ackWait before delivering again. */
  async inProgress() {
    const r = this._a.inProgress()
    unwrap(r instanceof Promise ? await r : r)
  }

  /** Never to be processed: not delivered again. */
  async term() {
    const r = this._a.term()
    unwrap(r instanceof Promise ? await r : r)
  }
}

module.exports = {
  smartsend,
  exportSpans,
  smartreceive,
  connect,
  close,
  Connection,
  Subscription,
  LinkStream,
  Consumer,
  Delivery,
  ERROR_CODES,
  PAYLOAD_TYPES,
  MSG_PURPOSES,
  OPTION_NAMES,
  SEND_OPTION_NAMES,
  STREAM_OPTION_NAMES,
  CONSUME_OPTION_NAMES,
  DEFAULT_SIZE_THRESHOLD,
  TEXT,
  DICTIONARY,
  ARROWTABLE,
  JSONTABLE,
  IMAGE,
  AUDIO,
  VIDEO,
  BINARY,
  ACK,
  NACK,
  UPDATE_STATUS,
  SHUTDOWN,
  CHAT,
  COMMAND,
  EVENT,
}
