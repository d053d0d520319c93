'use strict'
// NATSBridge for Node.js: typed payloads over NATS, large ones through claim-check links.
// The protocol and all I/O live in the Rust core (the private addon loaded by native.js); this
// file adds JavaScript idioms only: option names, Arrow tables, async iteration, Error objects.

const native = require('./native.js')

const ERROR_CODES = Object.freeze(native.errorCodes())
const PAYLOAD_TYPES = Object.freeze(native.payloadTypes())
const MSG_PURPOSES = Object.freeze(native.msgPurposes())
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

/** An Error with one of the core's codes, for bad input found before the core sees it. */
function codedError(code, message) {
  const e = new Error(`${code}: ${message}`)
  e.code = code
  e.correlationId = null
  return e
}

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

// JSON.stringify would write NaN and ±Infinity as null: refuse them, as the other bindings do.
function finiteOnly(key, v) {
  if (typeof v === 'number' && !Number.isFinite(v)) {
    throw new RangeError(`${v} is not a JSON number (at key ${JSON.stringify(key)}; NaN and infinities are not allowed)`)
  }
  return v
}

function jsonText(name, type, value) {
  let text
  try {
    text = JSON.stringify(value, finiteOnly)
  } catch (e) {
    throw codedError('INVALID_PAYLOAD_TYPE', `payload ${JSON.stringify(name)} (${type}) is not JSON-serializable: ${e.message}`)
  }
  if (text === undefined) {
    throw codedError('INVALID_PAYLOAD_TYPE', `payload ${JSON.stringify(name)} (${type}) is not JSON-serializable: ${kindOf(value)}`)
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

/** `[[dataname, data, payload_type], ...]` in the two shapes the addon takes: string or bytes. */
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
    let v = value
    if (value instanceof Uint8Array || typeof value === 'string') {
      if (type === ARROWTABLE && typeof value === 'string') {
        throw codedError('INVALID_PAYLOAD_TYPE', `payload ${JSON.stringify(name)}: an arrowtable is an apache-arrow Table, Arrow IPC stream bytes or an array of row objects, not a string`)
      }
      if (typeof value === 'string' && (type === DICTIONARY || type === JSONTABLE)) v = jsonText(name, type, value)
    } else if (value instanceof ArrayBuffer) {
      v = new Uint8Array(value)
    } else if (ArrayBuffer.isView(value)) {
      v = new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    } else if (type === DICTIONARY || type === JSONTABLE) {
      v = jsonText(name, type, value)
    } else if (type === ARROWTABLE && isArrowTable(value)) {
      v = arrow().tableToIPC(value, 'stream')
    } else if (type === ARROWTABLE && Array.isArray(value)) {
      v = jsonText(name, type, value) // rows: the core builds the table
    } else if (PAYLOAD_TYPES.includes(type)) {
      const want = type === TEXT ? 'a string' : type === ARROWTABLE ? 'an apache-arrow Table, IPC bytes or row objects' : 'a Buffer or Uint8Array'
      throw codedError('INVALID_PAYLOAD_TYPE', `payload ${JSON.stringify(name)} has payload_type ${JSON.stringify(type)}, which needs ${want}, not ${kindOf(value)}`)
    } else {
      v = '' // an unknown payload_type: the core names it
    }
    out[i] = [name, v, type]
  }
  return out
}

// Per-message options: camelCase, and the seeds' snake_case names.
const SEND_KEYS = {
  sizeThreshold: 'sizeThreshold', size_threshold: 'sizeThreshold',
  correlationId: 'correlationId', correlation_id: 'correlationId',
  msgPurpose: 'msgPurpose', msg_purpose: 'msgPurpose',
  senderName: 'senderName', sender_name: 'senderName',
  senderId: 'senderId', sender_id: 'senderId',
  receiverName: 'receiverName', receiver_name: 'receiverName',
  receiverId: 'receiverId', receiver_id: 'receiverId',
  replyTo: 'replyTo', reply_to: 'replyTo',
  replyToMsgId: 'replyToMsgId', reply_to_msg_id: 'replyToMsgId',
  metadata: 'metadata',
}
// Keys a call takes besides the per-message options.
const CALL_KEYS = new Set([
  'connection', 'brokerUrl', 'broker_url', 'fileserverUrl', 'fileserver_url', 'arrow', 'timeout',
  'fileserverUploadHandler', 'fileserver_upload_handler',
])

/** Splits a call's options into the addon's per-message options and the call's own keys. */
function sendOptions(opts, allowed) {
  if (opts == null) return null
  let send = null
  for (const key of Object.keys(opts)) {
    const value = opts[key]
    if (value === undefined) continue
    const name = SEND_KEYS[key]
    if (name === undefined) {
      if (CALL_KEYS.has(key) && allowed.includes(key)) continue
      throw new TypeError(`unexpected option ${JSON.stringify(key)}`)
    }
    send ??= {}
    send[name] = name === 'metadata' ? metadataText(value) : value
  }
  return send
}

function metadataText(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw codedError('INVALID_ENVELOPE', 'metadata must be a plain object')
  }
  return JSON.stringify(value)
}

function checkSubject(subject) {
  if (typeof subject !== 'string' || subject === '') {
    throw codedError('INVALID_ENVELOPE', `a subject is a non-empty string, not ${kindOf(subject)}`)
  }
}

function arrowMode(mode) {
  if (mode === undefined) return 'rows'
  if (mode === 'rows' || mode === 'table' || mode === 'ipc') return mode
  throw new TypeError(`arrow must be "rows", "table" or "ipc", not ${JSON.stringify(mode)}`)
}

/** The addon's `{h, p, s, r}` as the received envelope: header fields, then `payloads` as
 * `[dataname, data, payload_type]`, `transports`, and `subject` / `reply` from a subscription. */
function toEnvelope(o, mode) {
  const env = JSON.parse(o.h)
  const p = o.p
  const n = p.length / 4
  const payloads = new Array(n)
  const transports = new Array(n)
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    const type = p[j + 2]
    let v = p[j + 1]
    if (type === DICTIONARY || type === JSONTABLE) v = JSON.parse(v)
    else if (type === ARROWTABLE) v = mode === 'rows' ? JSON.parse(v) : mode === 'table' ? arrow().tableFromIPC(v) : v
    payloads[i] = [p[j], v, type]
    transports[i] = p[j + 3]
  }
  env.payloads = payloads
  env.transports = transports
  if (o.s != null) env.subject = o.s
  if (o.r != null) env.reply = o.r
  return env
}

function handlerFn(fn, name) {
  if (typeof fn !== 'function') throw new TypeError(`${name} must be a function, not ${kindOf(fn)}`)
  return fn
}

/** The seeds' upload handler `(fileserverUrl, dataname, data) => {url, ...}` (plain or async)
 * as the addon calls it: always a Promise of the URL string. */
function uploadHandler(fn) {
  handlerFn(fn, 'fileserverUploadHandler')
  return async (server, dataname, data) => {
    const r = await fn(server, dataname, data)
    const url = typeof r === 'string' ? r : r?.url
    if (typeof url !== 'string') throw new Error(`returned ${kindOf(r)}, not {url: string}`)
    return url
  }
}

/** The seeds' download handler `(url, maxRetries, baseDelayMs, maxDelayMs, correlationId) =>
 * bytes` (plain or async), always a Promise of a Uint8Array. */
function downloadHandler(fn) {
  handlerFn(fn, 'fileserverDownloadHandler')
  return async (...args) => {
    const b = await fn(...args)
    if (b instanceof Uint8Array) return b
    if (b instanceof ArrayBuffer) return new Uint8Array(b)
    if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
    throw new Error(`returned ${kindOf(b)}, not bytes`)
  }
}

function sendHandlers(opts) {
  const fn = opts?.fileserverUploadHandler ?? opts?.fileserver_upload_handler
  if (fn == null) return null
  return { upload: uploadHandler(fn), fileserverUrl: opts.fileserverUrl ?? opts.fileserver_url ?? process.env.FILESERVER_URL }
}

const RECEIVE_KEYS = new Set(['connection', 'brokerUrl', 'broker_url', 'fileserverUrl', 'fileserver_url', 'arrow',
  'fileserverDownloadHandler', 'fileserver_download_handler', 'allowedOrigins', 'retries', 'baseDelay', 'maxDelay'])

function receiveHandlers(opts) {
  if (opts == null) return null
  for (const key of Object.keys(opts)) {
    if (!RECEIVE_KEYS.has(key)) throw new TypeError(`unexpected receive option ${JSON.stringify(key)}`)
  }
  const fn = opts.fileserverDownloadHandler ?? opts.fileserver_download_handler
  if (fn == null) return null
  if (opts.connection != null) {
    throw new TypeError("a connection's download handler is given to connect(); this one is for calls without a connection")
  }
  return {
    download: downloadHandler(fn),
    fileserverUrl: opts.fileserverUrl ?? opts.fileserver_url ?? process.env.FILESERVER_URL,
    allowedOrigins: opts.allowedOrigins,
    retries: opts.retries,
    baseDelay: opts.baseDelay,
    maxDelay: opts.maxDelay,
  }
}

function target(opts) {
  if (opts == null) return null
  const brokerUrl = opts.brokerUrl ?? opts.broker_url
  const fileserverUrl = opts.fileserverUrl ?? opts.fileserver_url
  return brokerUrl == null && fileserverUrl == null ? null : { brokerUrl, fileserverUrl }
}

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
      const pending = [...openConnections].map((c) => c.drain().catch(warn))
      if (sharedInUse) pending.push(close().catch(warn))
      return Promise.all(pending)
    })
  }
}

function useShared() {
  sharedInUse = true
  hookExit()
}

/** `[env, msgJson]` from what the addon returns: the msg_json, or for large direct data
 * `[msgJson, skeleton, ranges]` (the data strings are slices of msgJson, not parsed again). */
function sentPair(r) {
  if (typeof r === 'string') return [JSON.parse(r), r]
  const [msgJson, skeleton, ranges] = r
  const env = JSON.parse(skeleton)
  let k = 0
  for (const p of env.payloads) {
    if (p.data === null && k < ranges.length) {
      p.data = msgJson.slice(ranges[k], ranges[k + 1])
      k += 2
    }
  }
  return [env, msgJson]
}

const SEND_OPTION_KEYS = ['connection', 'brokerUrl', 'broker_url', 'fileserverUrl', 'fileserver_url',
  'fileserverUploadHandler', 'fileserver_upload_handler']

/**
 * Sends `[[dataname, data, payload_type], ...]` as one envelope to `subject`; resolves to
 * `[env, msgJson]`. Without `opts.connection`, a process-wide connection per `brokerUrl`
 * (else NATS_URL, else nats://localhost:4222) is made on first use.
 */
async function smartsend(subject, data, opts) {
  checkSubject(subject)
  const payloads = toNative(data)
  const send = sendOptions(opts, SEND_OPTION_KEYS)
  const conn = opts?.connection
  if (conn == null) useShared()
  const handlers = sendHandlers(opts)
  const r = native.smartsend(subject, payloads, send, conn == null ? null : conn._open(), conn == null ? target(handlers === null ? opts : { brokerUrl: opts.brokerUrl ?? opts.broker_url }) : null, handlers)
  return sentPair(unwrap(r instanceof Promise ? await r : r))
}

function messageBytes(msg) {
  if (msg instanceof Uint8Array || typeof msg === 'string') return msg
  if (msg instanceof ArrayBuffer) return new Uint8Array(msg)
  if (msg !== null && typeof msg === 'object' && msg.data instanceof Uint8Array) return msg.data // a nats.js Msg
  throw codedError('INVALID_ENVELOPE', `a message is a Buffer, Uint8Array, string or nats.js Msg, not ${kindOf(msg)}`)
}

/**
 * Decodes a message (bytes, a string, or a nats.js `Msg`): checks it, fetches link payloads,
 * verifies them and deserializes every payload. Resolves to the envelope with `payloads` as
 * `[dataname, data, payload_type]`. `opts.arrow`: "rows" (default, Array<Object>), "table"
 * (an apache-arrow Table) or "ipc" (the IPC stream bytes).
 */
async function smartreceive(msg, opts) {
  const handlers = receiveHandlers(opts)
  const conn = opts?.connection
  if (conn !== undefined && conn !== null) return conn.smartreceive(msg, { arrow: opts.arrow })
  const mode = arrowMode(opts?.arrow)
  const t = handlers === null ? target(opts) : null
  if (t !== null) useShared()
  const r = native.smartreceive(messageBytes(msg), mode === 'rows', null, t, handlers)
  return toEnvelope(unwrap(r instanceof Promise ? await r : r), mode)
}

/** Drains the process-wide connections of the one-call style. */
async function close() {
  sharedInUse = false
  const r = native.closeShared()
  unwrap(r instanceof Promise ? await r : r)
}

function connectOptions(opts) {
  if (typeof opts === 'string') return { servers: opts.split(',').map((s) => s.trim()) }
  if (opts == null) return {}
  const o = { ...opts }
  if (typeof o.servers === 'string') o.servers = o.servers.split(',').map((s) => s.trim())
  if (o.port !== undefined) {
    o.servers = [`nats://127.0.0.1:${o.port}`]
    delete o.port
  }
  if (o.tls != null) {
    o.tlsCaFile = o.tls.caFile
    o.tlsCertFile = o.tls.certFile
    o.tlsKeyFile = o.tls.keyFile
    o.tlsRequired = true
  }
  delete o.tls
  delete o.arrow
  delete o.fileserverUploadHandler
  delete o.fileserverDownloadHandler
  return o
}

function connectHandlers(opts) {
  if (opts === null || typeof opts !== 'object') return null
  const up = opts.fileserverUploadHandler
  const down = opts.fileserverDownloadHandler
  if (up == null && down == null) return null
  return { upload: up == null ? undefined : uploadHandler(up), download: down == null ? undefined : downloadHandler(down) }
}

/**
 * Connects to NATS. Options use nats.js names (`servers`, `name`, `user`, `pass`, `token`,
 * `tls: {caFile, certFile, keyFile}`, `maxReconnectAttempts`, `reconnectTimeWait`, `timeout`)
 * plus the bridge's own (`sizeThreshold`, `fileserverUrl`, `allowedOrigins`, ...; see index.d.ts).
 */
async function connect(opts) {
  const mode = arrowMode(typeof opts === 'object' && opts !== null ? opts.arrow : undefined)
  const r = native.connect(connectOptions(opts), connectHandlers(opts))
  const conn = new Connection(unwrap(r instanceof Promise ? await r : r), mode)
  openConnections.add(conn)
  hookExit()
  return conn
}

function replyTo(env) {
  if (env === null || typeof env !== 'object' || typeof env.correlation_id !== 'string') {
    throw codedError('INVALID_ENVELOPE', 'reply to a received envelope (it has no correlation_id)')
  }
  return {
    correlationId: env.correlation_id,
    msgId: env.msg_id,
    sendTo: env.send_to,
    senderName: env.sender_name,
    senderId: env.sender_id,
    replyTo: env.reply_to,
    subject: env.subject,
    reply: env.reply,
  }
}

/** One NATS connection with the bridge's link stores. */
class Connection {
  constructor(nativeConnection, arrow) {
    this._n = nativeConnection
    this._arrow = arrow
    this._closed = null
  }

  get senderId() {
    return this._n.senderId
  }

  get maxPayload() {
    return this._n.maxPayload
  }

  async smartsend(subject, data, opts) {
    checkSubject(subject)
    const payloads = toNative(data)
    const send = sendOptions(opts, ['connection', 'fileserverUrl', 'fileserver_url', 'fileserverUploadHandler', 'fileserver_upload_handler'])
    const out = native.smartsend(subject, payloads, send, this._n, null, sendHandlers(opts))
    return sentPair(unwrap(out instanceof Promise ? await out : out))
  }

  async smartreceive(msg, opts) {
    const mode = arrowMode(opts?.arrow ?? this._arrow)
    const r = native.smartreceive(messageBytes(msg), mode === 'rows', this._n, null, null)
    return toEnvelope(unwrap(r instanceof Promise ? await r : r), mode)
  }

  /** Resolves once the server has the subscription. Options: `queue`, `arrow`. */
  async subscribe(subject, opts) {
    checkSubject(subject)
    const mode = arrowMode(opts?.arrow ?? this._arrow)
    const r = this._n.subscribe(subject, opts?.queue ?? null, mode === 'rows')
    return new Subscription(unwrap(r instanceof Promise ? await r : r), mode)
  }

  /** Sends a request envelope and resolves to the reply; a NACK reply rejects with its code.
   * Options: the per-message ones, `timeout` (ms, default 5000), `arrow`. */
  async request(subject, data, opts) {
    checkSubject(subject)
    const payloads = toNative(data)
    const mode = arrowMode(opts?.arrow ?? this._arrow)
    const send = sendOptions(opts, ['timeout', 'arrow'])
    return toEnvelope(unwrap(await this._n.request(subject, payloads, send, opts?.timeout ?? null, mode === 'rows')), mode)
  }

  /** Replies to a received request envelope (ACK unless `msgPurpose` says otherwise). */
  async reply(env, data, opts) {
    const payloads = toNative(data)
    const r = this._n.reply(replyTo(env), payloads, sendOptions(opts, []))
    return sentPair(unwrap(r instanceof Promise ? await r : r))
  }

  /** Replies with a NACK carrying `{code, message}`. */
  async replyError(env, code, message) {
    const r = this._n.replyError(replyTo(env), String(code), String(message))
    return sentPair(unwrap(r instanceof Promise ? await r : r))
  }

  async flush() {
    unwrap(await this._n.flush())
  }

  /** Writes out pending publishes, delivers what is in flight, unsubscribes and closes. */
  async drain() {
    openConnections.delete(this)
    this._closed ??= this._n.drain()
    unwrap(await this._closed)
  }

  /** Same as `drain()`: nothing published before is lost, and nothing keeps the process alive. */
  async close() {
    return this.drain()
  }

  async [Symbol.asyncDispose]() {
    return this.drain()
  }
}

const BATCH = 256

/** Decoded envelopes from one subscription, in arrival order: `for await (const env of sub)`.
 * A message that fails to decode throws its error; the subscription goes on. */
class Subscription {
  constructor(nativeSubscription, arrow) {
    this._n = nativeSubscription
    this._arrow = arrow
    this._queue = []
    this._at = 0
    this._done = false
    this._fetching = null
  }

  /** The next envelope, or null once the subscription is closed. TIMEOUT error when nothing
   * arrives within `opts.timeout` ms. Concurrent calls share one fetch from the addon. */
  async nextMessage(opts) {
    while (this._at === this._queue.length) {
      if (this._done) return null
      if (this._fetching === null) {
        const r = this._n.nextBatch(BATCH, opts?.timeout ?? null)
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
    return toEnvelope(unwrap(item), this._arrow)
  }

  /** A batch from the addon: appended to what is left, or null once closed. */
  _accept(r) {
    unwrap(r)
    if (r === null) {
      this._done = true
    } else if (this._at < this._queue.length) {
      for (const item of r) this._queue.push(item)
    } else {
      this._queue = r
      this._at = 0
    }
  }

  async next() {
    const env = await this.nextMessage()
    return env === null ? { value: undefined, done: true } : { value: env, done: false }
  }

  async return() {
    await this.unsubscribe()
    return { value: undefined, done: true }
  }

  [Symbol.asyncIterator]() {
    return this
  }

  async unsubscribe() {
    this._done = true
    this._queue = []
    this._at = 0
    unwrap(await this._n.unsubscribe())
  }
}

module.exports = {
  smartsend,
  smartreceive,
  connect,
  close,
  Connection,
  Subscription,
  ERROR_CODES,
  PAYLOAD_TYPES,
  MSG_PURPOSES,
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
