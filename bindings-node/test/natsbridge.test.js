'use strict'
// The natsbridge package against a real nats-server (JetStream: the object store) and a real
// Plik: every payload type over both transports, the error codes, and wire compatibility both
// ways with a hand-written nats.js peer (test/peer.js).
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { connect: natsConnect } = require('@nats-io/transport-node')
const arrow = require('apache-arrow')
const nb = require('natsbridge')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { pathToFileURL } = require('node:url')
const peer = require('./peer')
const REPO = process.env.NATSBRIDGE_REPO ?? path.join(__dirname, '../..')
const { startNats, startPlik, freePort } = require(path.join(REPO, 'servers/js/servers.js'))

let nats, small, plik, nc
test.before(async () => {
  ;[nats, small, plik] = await Promise.all([startNats(), startNats({ config: 'max_payload: 65536' }), startPlik()])
  nc = await nb.connect({ servers: nats.url, name: 'node-tests' })
})
test.after(async () => {
  await nc?.close()
  await nb.close()
  await Promise.all([nats?.stop(), small?.stop(), plik?.stop()])
})

let n = 0
const subject = (what) => `node.test.${what}.${++n}`
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex')
const bytes = (size, mul = 7) => Buffer.from(Array.from({ length: size }, (_, i) => (i * mul) % 251))

const SAMPLES = [
  ['greeting', 'Héllo wörld 🌍 "q" \\ \u0001 \n', 'text'],
  ['empty', '', 'text'],
  ['config', { name: 'x', on: true, n: 1.5, list: [1, 'a', null], nested: { deep: {} } }, 'dictionary'],
  ['scalar', 'just a string', 'dictionary'],
  ['rows', [{ id: 1, name: 'a' }, { id: 2, name: null, extra: [1] }], 'jsontable'],
  ['table', [{ id: 1, score: 0.5, name: 'alice', ok: true }, { id: 2, score: -1.25, name: null, ok: false }], 'arrowtable'],
  ['photo', bytes(3000), 'image'],
  ['sound', bytes(1000, 3), 'audio'],
  ['clip', bytes(5000, 11), 'video'],
  ['blob', Buffer.alloc(0), 'binary'],
]

function assertSame(got, [name, value, type]) {
  assert.equal(got[0], name)
  assert.equal(got[2], type)
  if (Buffer.isBuffer(value)) {
    assert.ok(Buffer.isBuffer(got[1]), `${name}: a Buffer`)
    assert.equal(sha(got[1]), sha(value))
  } else {
    assert.deepEqual(got[1], value)
  }
}

for (const transport of ['direct', 'link']) {
  test(`every payload type round-trips one by one and together (${transport}, object store)`, async () => {
    const subj = subject(`all.${transport}`)
    const sub = await nc.subscribe(subj)
    const sizeThreshold = transport === 'direct' ? undefined : 0
    for (const sample of SAMPLES) {
      const [env, msgJson] = await nc.smartsend(subj, [sample], { sizeThreshold })
      assert.equal(env.payloads[0].transport, transport)
      assert.deepEqual(JSON.parse(msgJson), env)
      const got = await sub.next({ timeout: 5000 })
      assert.equal(got.msg_id, env.msg_id)
      assert.deepEqual(got.transports, [transport])
      assertSame(got.payloads[0], sample)
    }
    await nc.smartsend(subj, SAMPLES, { sizeThreshold })
    const all = await sub.next({ timeout: 5000 })
    assert.equal(all.payloads.length, SAMPLES.length)
    SAMPLES.forEach((s, i) => assertSame(all.payloads[i], s))
    await sub.unsubscribe()
  })
}

test('a direct payload is on the wire as the seeds describe: base64 of the serialized bytes', async () => {
  const [env, msgJson] = await nc.smartsend(subject('wire'), [['photo', bytes(300), 'image'], ['d', { a: [1] }, 'dictionary']])
  const wire = JSON.parse(msgJson)
  assert.equal(wire.payloads[0].encoding, 'base64')
  assert.equal(wire.payloads[0].size, 300)
  assert.equal(wire.payloads[0].data, bytes(300).toString('base64'))
  assert.equal(wire.payloads[0].metadata.payload_bytes, 300)
  assert.equal(Buffer.from(wire.payloads[1].data, 'base64').toString(), '{"a":[1]}')
  // Large direct data reaches env without a second parse (slices of msgJson): same result.
  const [big, bigJson] = await nc.smartsend(subject('wire'), [
    ['a', bytes(100_000), 'binary'], ['t', 'x', 'text'], ['l', bytes(600_000), 'binary'], ['b', bytes(20_000, 3), 'image'],
  ])
  assert.deepEqual(big, JSON.parse(bigJson))
  assert.deepEqual(big.payloads.map((p) => p.transport), ['direct', 'direct', 'link', 'direct'])
  assert.equal(big.payloads[3].data, bytes(20_000, 3).toString('base64'))
  const [uni, uniJson] = await nc.smartsend(subject('wire'), [['ü', bytes(100_000), 'binary']])
  assert.deepEqual(uni, JSON.parse(uniJson))
  // The slicing path is taken (not its fallback), also with message metadata.
  const native = require(require.resolve('natsbridge').replace(/index\.js$/, 'native.js'))
  const meta = JSON.stringify({ metadata: { a: { data: 'x', payloads: [1] }, b: 'y' } })
  const r = native.smartsend(subject('wire'), [['a', bytes(100_000), 'binary', 0]], meta, nc._n, null, null)
  assert.ok(Array.isArray(r) && r.length === 3, 'sliced')
  assert.match(env.correlation_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  assert.match(env.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  assert.equal(env.msg_purpose, 'chat')
})

test('link payloads go to Plik when a file server is configured', async () => {
  const conn = await nb.connect({ servers: nats.url, fileserverUrl: plik.url })
  try {
    const subj = subject('plik')
    const sub = await conn.subscribe(subj)
    const big = bytes(600_000)
    const [env] = await conn.smartsend(subj, [['big', big, 'binary'], ['small', 'hi', 'text']])
    assert.equal(env.payloads[0].transport, 'link')
    assert.ok(env.payloads[0].data.startsWith(`${plik.url}/file/`), env.payloads[0].data)
    assert.equal(env.payloads[0].metadata.sha256, sha(big))
    assert.equal(env.payloads[1].transport, 'direct')
    const got = await sub.next({ timeout: 10000 })
    assert.deepEqual(got.transports, ['link', 'direct'])
    assert.equal(sha(got.payloads[0][1]), sha(big))
    assert.equal(got.payloads[1][1], 'hi')
  } finally {
    await conn.close()
  }
})

test('a file: URL is a file sent while it is read: a link when too large for direct, else direct', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natsbridge-node-'))
  try {
    const big = bytes(2_000_000, 11)
    const bigPath = path.join(dir, 'big.bin')
    fs.writeFileSync(bigPath, big)
    fs.writeFileSync(path.join(dir, 'small.bin'), 'tiny')
    for (const conn of [nc, await nb.connect({ servers: nats.url, fileserverUrl: plik.url })]) {
      const subj = subject('file')
      const sub = await conn.subscribe(subj)
      const payloads = [['big', pathToFileURL(bigPath), 'binary'], ['small', pathToFileURL(path.join(dir, 'small.bin')), 'image']]
      const [env] = await conn.smartsend(subj, payloads)
      assert.deepEqual(env.payloads.map((p) => [p.transport, p.size]), [['link', 2_000_000], ['direct', 4]])
      assert.equal(env.payloads[0].metadata.sha256, sha(big))
      const got = await sub.next({ timeout: 10000 })
      assert.equal(sha(got.payloads[0][1]), sha(big))
      assert.equal(got.payloads[1][1].toString(), 'tiny')
      if (conn !== nc) await conn.close()
    }
    await assert.rejects(nc.smartsend(subject('file'), [['x', pathToFileURL(path.join(dir, 'missing.bin')), 'binary']]),
      (e) => e.code === 'INVALID_ARGUMENT' && e.message.includes('missing.bin'))
    await assert.rejects(nc.smartsend(subject('file'), [['x', pathToFileURL(bigPath), 'text']]),
      (e) => e.code === 'INVALID_PAYLOAD_TYPE')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('{ stream, size }: a Readable is pulled while it is sent, as fast as the store takes it', async () => {
  const { Readable } = require('node:stream')
  const big = bytes(2_000_000, 13)
  for (const conn of [nc, await nb.connect({ servers: nats.url, fileserverUrl: plik.url })]) {
    const subj = subject('stream')
    const sub = await conn.subscribe(subj)
    // 1,000 chunks of 2,000 bytes; an async generator is a stream too.
    const pulled = []
    const readable = Readable.from((function * () {
      for (let at = 0; at < big.length; at += 2000) { pulled.push(at); yield big.subarray(at, at + 2000) }
    })())
    async function * small () { yield Buffer.from('ti'); yield new Uint8Array(0); yield Buffer.from('ny') }
    const [env] = await conn.smartsend(subj, [['big', { stream: readable, size: big.length }, 'binary'],
      ['small', { stream: small(), size: 4 }, 'image']])
    assert.deepEqual(env.payloads.map((p) => [p.transport, p.size]), [['link', 2_000_000], ['direct', 4]])
    assert.equal(env.payloads[0].metadata.sha256, sha(big))
    assert.equal(pulled.length, 1000)
    const got = await sub.next({ timeout: 10000 })
    assert.equal(sha(got.payloads[0][1]), sha(big))
    assert.equal(got.payloads[1][1].toString(), 'tiny')
    if (conn !== nc) await conn.close()
  }
})

test('{ stream, size }: a stream of another size, of strings or that throws is UPLOAD_FAILED, nothing published', async () => {
  const { Readable } = require('node:stream')
  const subj = subject('stream-bad')
  const sub = await nc.subscribe(subj)
  const big = bytes(2_000_000, 17)
  const cases = [
    [{ stream: Readable.from([big]), size: big.length + 1 }, /fewer bytes than its size/],
    [{ stream: Readable.from([big, Buffer.from('x')]), size: big.length }, /more bytes than its size/],
    [{ stream: Readable.from(['text'], { objectMode: true }), size: 4 }, /gave a string, not bytes/],
    [{ stream: (async function * () { yield big.subarray(0, 10); throw new Error('socket hang up') })(), size: big.length }, /socket hang up/]
  ]
  for (const [data, message] of cases) {
    await assert.rejects(nc.smartsend(subj, [['x', data, 'binary']]),
      (e) => e.code === 'UPLOAD_FAILED' && message.test(e.message), `${message}`)
  }
  await assert.rejects(sub.next({ timeout: 300 }), (e) => e.code === 'TIMEOUT')
  for (const size of [-1, 1.5, Number.NaN, 2 ** 60, '4', undefined]) {
    await assert.rejects(nc.smartsend(subj, [['x', { stream: Readable.from([]), size }, 'binary']]),
      (e) => e.code === 'INVALID_ARGUMENT' && e.message.includes("stream's size"), `${size}`)
  }
  await assert.rejects(nc.smartsend(subj, [['x', { stream: Readable.from([]), size: 0 }, 'text']]),
    (e) => e.code === 'INVALID_PAYLOAD_TYPE')
})

test('nextStreamed: a link payload is a Readable or saved to a file; other bytes are CHECKSUM_MISMATCH', async () => {
  const { pipeline } = require('node:stream/promises')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natsbridge-node-'))
  const conn = await nb.connect({ servers: nats.url, fileserverUrl: plik.url })
  try {
    const subj = subject('streamed')
    const sub = await conn.subscribe(subj)
    const big = bytes(2_000_000, 13)
    const [env, msgJson] = await conn.smartsend(subj, [['big', big, 'binary'], ['note', 'hi', 'text']])
    const got = await sub.nextStreamed({ timeout: 10000 })
    const link = got.payloads[0][1]
    assert.ok(link instanceof nb.LinkStream)
    assert.deepEqual([link.dataname, link.payloadType, link.size, link.sha256], ['big', 'binary', 2_000_000, null])
    assert.deepEqual([got.payloads[1], got.transports], [['note', 'hi', 'text'], ['link', 'direct']])
    const chunks = []
    for await (const chunk of link) chunks.push(chunk)
    assert.equal(sha(Buffer.concat(chunks)), sha(big))
    assert.equal(link.sha256, sha(big))

    // Piped to a file, then saved by `save`, from two more copies of the message.
    await conn.smartsend(subj, [['big', big, 'binary']])
    await pipeline((await sub.nextStreamed({ timeout: 10000 })).payloads[0][1], fs.createWriteStream(path.join(dir, 'piped.bin')))
    assert.equal(sha(fs.readFileSync(path.join(dir, 'piped.bin'))), sha(big))
    await conn.smartsend(subj, [['big', big, 'binary']])
    const saved = await (await sub.nextStreamed({ timeout: 10000 })).payloads[0][1].save(path.join(dir, 'saved.bin'))
    assert.equal(saved, 2_000_000)
    assert.equal(sha(fs.readFileSync(path.join(dir, 'saved.bin'))), sha(big))

    // The first message with the sha256 of other bytes: the stream errors, save leaves no file.
    const forged = msgJson.replace(env.payloads[0].metadata.sha256, sha(Buffer.from('other')))
    const raw = await natsConnect({ servers: nats.url })
    raw.publish(subj, forged)
    raw.publish(subj, forged)
    await raw.flush()
    await raw.close()
    const bad = (await sub.nextStreamed({ timeout: 10000 })).payloads[0][1]
    await assert.rejects(pipeline(bad, fs.createWriteStream(path.join(dir, 'bad.bin'))), (e) => e.code === 'CHECKSUM_MISMATCH')
    fs.rmSync(path.join(dir, 'bad.bin'))
    const badSave = (await sub.nextStreamed({ timeout: 10000 })).payloads[0][1]
    await assert.rejects(badSave.save(path.join(dir, 'forged.bin')), (e) => e.code === 'CHECKSUM_MISMATCH')
    assert.deepEqual(fs.readdirSync(dir).sort(), ['piped.bin', 'saved.bin'])
  } finally {
    await conn.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('the threshold: 499,999 bytes go direct, 500,000 go by link (default)', async () => {
  const [a] = await nc.smartsend(subject('t'), [['a', Buffer.alloc(499_999), 'binary']])
  const [b] = await nc.smartsend(subject('t'), [['b', Buffer.alloc(500_000), 'binary']])
  assert.equal(a.payloads[0].transport, 'direct')
  assert.equal(b.payloads[0].transport, 'link')
})

test('arrowtable: apache-arrow Table in; rows, Table or IPC bytes out', async () => {
  const table = arrow.tableFromArrays({
    id: BigInt64Array.from([1n, 9007199254740993n]),
    score: Float64Array.from([0.5, NaN]),
    name: ['alice', 'bob'],
  })
  const subj = subject('arrow')
  const rows = await nc.subscribe(subj)
  const tables = await nc.subscribe(subj, { arrow: 'table' })
  const ipc = await nc.subscribe(subj, { arrow: 'ipc' })
  await nc.smartsend(subj, [['t', table, 'arrowtable']])
  const r = await rows.next({ timeout: 5000 })
  // The JSON-rows view: int64 beyond 2^53 as a decimal string, NaN as null (spec §10.2).
  assert.deepEqual(r.payloads[0][1], [
    { id: 1, score: 0.5, name: 'alice' },
    { id: '9007199254740993', score: null, name: 'bob' },
  ])
  assert.doesNotThrow(() => JSON.stringify(r.payloads[0][1]))
  const t = (await tables.next({ timeout: 5000 })).payloads[0][1]
  assert.ok(t instanceof arrow.Table)
  assert.equal(t.numRows, 2)
  assert.equal(t.getChild('id').get(1), 9007199254740993n)
  const b = (await ipc.next({ timeout: 5000 })).payloads[0][1]
  assert.ok(Buffer.isBuffer(b))
  assert.equal(arrow.tableFromIPC(b).getChild('name').get(0), 'alice')
  for (const s of [rows, tables, ipc]) await s.unsubscribe()
})

test('wire compatibility: the hand-written nats.js peer reads what natsbridge sends', async () => {
  const raw = await natsConnect({ servers: nats.url })
  try {
    const subj = subject('to-peer')
    const sub = raw.subscribe(subj, { max: 1 })
    await raw.flush()
    const direct = SAMPLES.filter(([, , t]) => t !== 'arrowtable')
    const table = arrow.tableFromJSON([{ a: 1, b: 'x' }])
    await nc.smartsend(subj, [...direct, ['t', table, 'arrowtable']])
    for await (const m of sub) {
      const env = peer.decode(m.data)
      direct.forEach((s, i) => assertSame(env.payloads[i], s))
      const got = arrow.tableFromIPC(env.payloads[direct.length][1])
      assert.deepEqual(got.toArray().map((r) => r.toJSON()), [{ a: 1, b: 'x' }])
    }
  } finally {
    await raw.close()
  }
})

test('wire compatibility: natsbridge reads what the hand-written nats.js peer sends', async () => {
  const raw = await natsConnect({ servers: nats.url })
  try {
    const subj = subject('from-peer')
    const sub = await nc.subscribe(subj)
    const direct = SAMPLES.filter(([, , t]) => t !== 'arrowtable')
    const ipc = arrow.tableToIPC(arrow.tableFromJSON([{ a: 1, b: 'x' }]), 'stream')
    raw.publish(subj, peer.encode(subj, [...direct, ['t', ipc, 'arrowtable']]))
    await raw.flush()
    const env = await sub.next({ timeout: 5000 })
    direct.forEach((s, i) => assertSame(env.payloads[i], s))
    assert.deepEqual(env.payloads[direct.length][1], [{ a: 1, b: 'x' }])
    assert.equal(env.sender_name, 'node-peer')
    // smartreceive also takes the nats.js Msg itself.
    const one = raw.subscribe(subj, { max: 1 })
    await raw.flush()
    raw.publish(subj, peer.encode(subj, [['m', 'from a Msg', 'text']]))
    for await (const m of one) assert.equal((await nb.smartreceive(m)).payloads[0][1], 'from a Msg')
    await sub.unsubscribe()
  } finally {
    await raw.close()
  }
})

test('one-call style: smartsend with brokerUrl reuses one process-wide connection', async () => {
  const raw = await natsConnect({ servers: nats.url })
  try {
    const subj = subject('one-call')
    const sub = raw.subscribe(subj, { max: 2 })
    await raw.flush()
    await nb.smartsend(subj, [['a', 'one', 'text']], { brokerUrl: nats.url, msg_purpose: nb.EVENT })
    const [env] = await nb.smartsend(subj, [['b', 'two', 'text']], { broker_url: nats.url })
    assert.equal(env.broker_url, nats.url)
    const got = []
    for await (const m of sub) got.push(await nb.smartreceive(m))
    assert.deepEqual(got.map((e) => e.payloads[0][1]), ['one', 'two'])
    assert.equal(got[0].msg_purpose, 'event')
    assert.equal(got[0].sender_id, got[1].sender_id) // one client
  } finally {
    await raw.close()
  }
})

test('request / reply, and a NACK reply rejects with its code and correlation id', async () => {
  const subj = subject('rpc')
  const server = await nc.subscribe(subj)
  const serving = (async () => {
    for await (const req of server) {
      if (req.payloads[0][1] === 'fail') await nc.replyError(req, 'DOWNLOAD_FAILED', 'no such file')
      else await nc.reply(req, [['answer', { got: req.payloads[0][1] }, 'dictionary']])
    }
  })()
  const rep = await nc.request(subj, [['q', 'hello', 'text']], { timeout: 5000, correlationId: 'cid-1' })
  assert.deepEqual(rep.payloads[0][1], { got: 'hello' })
  assert.equal(rep.msg_purpose, 'ACK')
  assert.equal(rep.correlation_id, 'cid-1')
  await assert.rejects(nc.request(subj, [['q', 'fail', 'text']], { correlationId: 'cid-2' }), (e) => {
    assert.equal(e.code, 'DOWNLOAD_FAILED')
    assert.equal(e.correlationId, 'cid-2')
    assert.match(e.message, /no such file/)
    return true
  })
  await server.unsubscribe()
  await serving
  await assert.rejects(nc.request(subject('nobody'), [['q', 'x', 'text']], { timeout: 300 }), { code: 'TIMEOUT' })
})

// The addon hands envelopes over packed (strings and numbers, no JSON.parse of the header):
// what JS builds must be exactly what parsing the wire JSON gives, key order included.
const HEADER = ['correlation_id', 'msg_id', 'timestamp', 'send_to', 'msg_purpose', 'sender_name', 'sender_id',
  'receiver_name', 'receiver_id', 'reply_to', 'reply_to_msg_id', 'broker_url', 'metadata']
const sameAsWire = (env, msgJson) => {
  assert.deepStrictEqual(env, JSON.parse(msgJson))
  assert.equal(JSON.stringify(env), JSON.stringify(JSON.parse(msgJson))) // key order
}

test('the sent env is JSON.parse(msgJson): small and large direct data, links, unicode, metadata', async () => {
  const subj = subject('packed')
  const sub = await nc.subscribe(subj)
  const opts = { senderName: 'Zoë 🌍 "q" \\', receiverName: 'ünï', replyTo: 'r.1', correlationId: 'cid-ß',
    metadata: { ключ: 'значение', n: 1.5, big: 2 ** 53, nested: { a: [1, null, 'x\u0001'] }, '': 'empty key' } }
  const cases = [
    [['t', 'hello', 'text']],
    [['b', bytes(100), 'binary'], ['d', { x: [1, 'ü'] }, 'dictionary'], ['e', '', 'text']],
    [['big', bytes(10_000), 'binary'], ['t', 'Héllo'.repeat(600), 'text'], ['small', bytes(3), 'image']],
    [['link', bytes(3000), 'binary'], ['direct', bytes(3000, 3), 'binary']],
  ]
  for (const [i, payloads] of cases.entries()) {
    const extra = i === 3 ? { sizeThreshold: 2000 } : {}
    for (const o of [{}, opts]) {
      const [env, msgJson] = await nc.smartsend(subj, payloads, { ...o, ...extra })
      sameAsWire(env, msgJson)
      assert.equal(env.payloads.length, payloads.length)
      if (i === 3) assert.deepEqual(env.payloads.map((p) => p.transport), ['link', 'link'])
      const got = await sub.next({ timeout: 5000 })
      assert.deepEqual(Object.keys(got), [...HEADER, 'payloads', 'transports', 'subject'])
      for (const k of HEADER) assert.deepStrictEqual(got[k], env[k], k)
      assert.equal(got.subject, subj)
      payloads.forEach((p, j) => assertSame(got.payloads[j], p))
      assert.deepEqual(got.transports, env.payloads.map((p) => p.transport))
    }
  }
  await sub.unsubscribe()
})

test('a NACK is packed with its error body; a request carries reply', async () => {
  const subj = subject('packed-rpc')
  const server = await nc.subscribe(subj)
  const sent = []
  const serving = (async () => {
    for await (const req of server) {
      assert.deepEqual(Object.keys(req), [...HEADER, 'payloads', 'transports', 'subject', 'reply'])
      assert.match(req.reply, /^_INBOX\./)
      sent.push(await nc.replyError(req, 'DOWNLOAD_FAILED', 'nö such file'))
    }
  })()
  await assert.rejects(nc.request(subj, [['q', 'x', 'text']], { timeout: 5000 }), { code: 'DOWNLOAD_FAILED' })
  await server.unsubscribe()
  await serving
  const [env, msgJson] = sent[0]
  sameAsWire(env, msgJson)
  assert.deepEqual(Object.keys(env), [...HEADER, 'payloads', 'error'])
  assert.equal(env.error.code, 'DOWNLOAD_FAILED')
  assert.equal(env.error.message, 'nö such file')
  const got = await nc.smartreceive(msgJson)
  assert.deepEqual(Object.keys(got), [...HEADER, 'error', 'payloads', 'transports'])
  assert.deepStrictEqual(got.error, env.error)
  assert.deepEqual(got.payloads, [])
})

test('a subscription delivers many messages in order, and a bad one throws without ending it', async () => {
  const subj = subject('many')
  const sub = await nc.subscribe(subj)
  const raw = await natsConnect({ servers: nats.url })
  for (let i = 0; i < 1000; i++) await nc.smartsend(subj, [['i', { i }, 'dictionary']])
  for (let i = 0; i < 1000; i++) assert.equal((await sub.next({ timeout: 5000 })).payloads[0][1].i, i)
  raw.publish(subj, 'not json')
  await raw.flush() // the server has it before the next send
  await nc.smartsend(subj, [['i', { i: 1000 }, 'dictionary']])
  await assert.rejects(sub.next({ timeout: 5000 }), { code: 'INVALID_ENVELOPE' })
  assert.equal((await sub.next({ timeout: 5000 })).payloads[0][1].i, 1000)
  await raw.close()
  await sub.unsubscribe()
})

test('sends made before JS gets back to its event loop go out together, in order, at its next turn', async () => {
  const subj = subject('deferred')
  const sub = await nc.subscribe(subj)
  // Not awaited: each call queues its message; one kick per burst (setImmediate) hands them over,
  // and a burst over the queue's 128 messages goes out by itself meanwhile.
  const sends = Array.from({ length: 300 }, (_, i) => nc.smartsend(subj, [['i', i, 'dictionary']]))
  const sent = await Promise.all(sends)
  const got = []
  for (let i = 0; i < 300; i++) got.push(await sub.next({ timeout: 5000 }))
  assert.deepEqual(got.map((e) => e.payloads[0][1]), [...Array(300).keys()])
  assert.deepEqual(got.map((e) => e.msg_id), sent.map(([env]) => env.msg_id))
  // A lone send is handed over at the next turn too, and flush() hands over what is queued.
  nc.smartsend(subj, [['i', 'lone', 'dictionary']])
  assert.equal((await sub.next({ timeout: 5000 })).payloads[0][1], 'lone')
  await nc.smartsend(subj, [['i', 'flushed', 'dictionary']])
  await nc.flush()
  assert.equal((await sub.next({ timeout: 5000 })).payloads[0][1], 'flushed')
  await sub.unsubscribe()
})

test('smartreceive of the bytes (a view of the message) gives the subscription\'s envelope, key for key', async () => {
  const subj = subject('view')
  const sub = await nc.subscribe(subj)
  const [env] = await nc.smartsend(subj, [['m', { k: 1 }, 'dictionary'], ['b', bytes(300), 'binary']],
    { correlationId: 'cid-view', metadata: { n: [1, 'x'] }, receiverName: 'rx' })
  const got = await sub.next({ timeout: 5000 })
  const { subject: _s, reply: _r, ...routed } = got
  const direct = await nb.smartreceive(Buffer.from(JSON.stringify(env)))
  assert.deepEqual(Object.keys(direct), Object.keys(routed))
  assert.deepEqual(direct, routed)
  const escaped = { ...env, sender_name: 'é "q" \\ \u2603', error: { code: 'TIMEOUT', message: 'm', details: [1] } }
  const back = await nb.smartreceive(Buffer.from(JSON.stringify(escaped)))
  assert.equal(back.sender_name, escaped.sender_name)
  assert.deepEqual(back.error, escaped.error)
  await sub.unsubscribe()
})

test('concurrent next calls lose nothing and keep the order', async () => {
  const subj = subject('concurrent')
  const sub = await nc.subscribe(subj)
  const waiting = Array.from({ length: 10 }, () => sub.next({ timeout: 5000 }))
  for (let i = 0; i < 300; i++) await nc.smartsend(subj, [['i', i, 'dictionary']])
  const first = await Promise.all(waiting)
  const rest = []
  for (let i = 10; i < 300; i++) rest.push((await sub.next({ timeout: 5000 })).payloads[0][1])
  assert.deepEqual([...first.map((e) => e.payloads[0][1]), ...rest], [...Array(300).keys()])
  await sub.unsubscribe()
})

test('unsubscribe ends a waiting for-await loop; drain ends every subscription', async () => {
  const sub = await nc.subscribe(subject('stop'))
  const loop = (async () => {
    let count = 0
    for await (const _ of sub) count++
    return count
  })()
  await new Promise((r) => setTimeout(r, 50))
  await sub.unsubscribe()
  assert.equal(await loop, 0)
  const conn = await nb.connect(nats.url)
  const s2 = await conn.subscribe(subject('drained'))
  const waiting = s2.next()
  await conn.drain()
  assert.equal(await waiting, null)
  await assert.rejects(conn.smartsend(subject('after'), [['a', 'b', 'text']]), { code: 'NATS_CONNECTION_FAILED' })
})

test('queue groups share the messages', async () => {
  const subj = subject('queue')
  const a = await nc.subscribe(subj, { queue: 'workers' })
  const b = await nc.subscribe(subj, { queue: 'workers' })
  for (let i = 0; i < 20; i++) await nc.smartsend(subj, [['i', String(i), 'text']])
  await nc.flush()
  const seen = []
  for (const s of [a, b]) {
    for (;;) {
      try {
        seen.push((await s.next({ timeout: 300 })).payloads[0][1])
      } catch (e) {
        assert.equal(e.code, 'TIMEOUT')
        break
      }
    }
  }
  assert.deepEqual(seen.map(Number).sort((x, y) => x - y), [...Array(20).keys()])
  await a.unsubscribe()
  await b.unsubscribe()
})

test('errors: bad input fails before anything is sent, with the core code', async () => {
  const s = subject('bad')
  const cases = [
    [[['x', 1, 'nope']], 'INVALID_PAYLOAD_TYPE', /unknown payload_type "nope"/],
    [[['x', 5, 'text']], 'INVALID_PAYLOAD_TYPE', /cannot hold a JSON value/],
    [[['x', Buffer.from([0xff, 0xfe]), 'text']], 'INVALID_PAYLOAD_TYPE', /not UTF-8/],
    [[['x', 'text', 'image']], 'INVALID_PAYLOAD_TYPE', /needs bytes/],
    [[['x', { a: 1 }, 'jsontable']], 'INVALID_PAYLOAD_TYPE', /array of row objects/],
    [[['x', [1, 2], 'jsontable']], 'INVALID_PAYLOAD_TYPE', /./],
    [[['x', { a: 1n }, 'dictionary']], 'INVALID_PAYLOAD_TYPE', /BigInt/],
    [[['x', undefined, 'dictionary']], 'INVALID_PAYLOAD_TYPE', /not JSON-serializable/],
    [[['x', { a: [1, NaN] }, 'dictionary']], 'INVALID_PAYLOAD_TYPE', /NaN is not a JSON number/],
    [[['x', [{ v: Infinity }], 'jsontable']], 'INVALID_PAYLOAD_TYPE', /Infinity is not a JSON number/],
    [[['x', Buffer.from('not arrow'), 'arrowtable']], 'INVALID_PAYLOAD_TYPE', /./],
    [[['x', 'a,b', 'arrowtable']], 'INVALID_PAYLOAD_TYPE', /cannot hold a string/],
    [[['x', { a: 1 }, 'arrowtable']], 'INVALID_PAYLOAD_TYPE', /./],
    [[['x', 'a']], 'INVALID_PAYLOAD_TYPE', /payload 0/],
    ['not a list', 'INVALID_PAYLOAD_TYPE', /array/],
  ]
  for (const [payloads, code, message] of cases) {
    await assert.rejects(nc.smartsend(s, payloads), (e) => {
      assert.ok(e instanceof Error)
      assert.equal(e.code, code, `${require('node:util').inspect(payloads)}: ${e.message}`)
      assert.match(e.message, message)
      assert.ok('correlationId' in e)
      return true
    })
  }
  // UTF-8 bytes are text (the core's rule for host values).
  const [utf8] = await nc.smartsend(s, [['x', Buffer.from('héllo'), 'text']])
  assert.equal(Buffer.from(utf8.payloads[0].data, 'base64').toString(), 'héllo')
  await assert.rejects(nb.smartreceive(42), { code: 'INVALID_ENVELOPE' })
})

test('errors: receiving carries the code and the message correlation id', async () => {
  const good = JSON.parse((await nc.smartsend(subject('r'), [['p', bytes(10), 'binary']]))[1])
  const tamper = (f) => {
    const env = structuredClone(good)
    f(env)
    return Buffer.from(JSON.stringify(env))
  }
  const cases = [
    [tamper((e) => { e.payloads[0].size = 11 }), 'CHECKSUM_MISMATCH'],
    [tamper((e) => { e.payloads[0].metadata.sha256 = 'ab'.repeat(32) }), 'CHECKSUM_MISMATCH'],
    [tamper((e) => { e.payloads[0].transport = 'pigeon' }), 'INVALID_TRANSPORT'],
    [tamper((e) => { e.payloads[0].payload_type = 'Binary' }), 'INVALID_PAYLOAD_TYPE'],
    [tamper((e) => { e.payloads[0].data = '%%%%' }), 'DESERIALIZATION_ERROR'],
    [tamper((e) => { Object.assign(e.payloads[0], { transport: 'link', encoding: 'none', data: 'http://127.0.0.1:9/x' }) }), 'URL_NOT_ALLOWED'],
  ]
  for (const [msg, code] of cases) {
    await assert.rejects(nc.smartreceive(msg), (e) => {
      assert.equal(e.code, code, e.message)
      assert.equal(e.correlationId, good.correlation_id)
      return true
    })
  }
  await assert.rejects(nc.smartreceive(Buffer.from('{"payloads": 3}')), { code: 'INVALID_ENVELOPE', correlationId: null })
})

test('errors: DOWNLOAD_FAILED after the retries, PAYLOAD_TOO_LARGE and UPLOAD_FAILED', async () => {
  const port = await freePort() // nothing listens there
  const origin = `http://127.0.0.1:${port}`
  const conn = await nb.connect({ servers: nats.url, allowedOrigins: [origin], maxRetries: 2, baseDelay: 10 })
  const link = JSON.parse((await nc.smartsend(subject('l'), [['p', 'x', 'text']], { sizeThreshold: 0 }))[1])
  Object.assign(link.payloads[0], { data: `${origin}/file/x` })
  const t0 = Date.now()
  await assert.rejects(conn.smartreceive(Buffer.from(JSON.stringify(link))), { code: 'DOWNLOAD_FAILED' })
  assert.ok(Date.now() - t0 < 5000)
  await conn.close()

  // No object store and max_payload 64 KiB: nowhere to put 100 KB.
  const tight = await nb.connect({ servers: small.url, objectStore: false })
  assert.equal(tight.maxPayload, 65536)
  await assert.rejects(tight.smartsend(subject('big'), [['b', Buffer.alloc(100_000), 'binary']]), (e) => {
    assert.equal(e.code, 'PAYLOAD_TOO_LARGE')
    assert.match(e.correlationId, /^[0-9a-f-]{36}$/)
    return true
  })
  await tight.close()
  const failing = await nb.connect({ servers: small.url, fileserverUrl: origin, maxRetries: 1, objectStore: false })
  await assert.rejects(failing.smartsend(subject('up'), [['b', Buffer.alloc(100_000), 'binary']]), { code: 'UPLOAD_FAILED' })
  await failing.close()
})

test('errors: NATS_CONNECTION_FAILED for a server that is not there', async () => {
  const port = await freePort()
  await assert.rejects(nb.connect({ servers: `nats://127.0.0.1:${port}`, connectTimeout: 500, maxReconnectAttempts: 0 }), {
    code: 'NATS_CONNECTION_FAILED',
  })
})

test('errors: a closed connection refuses to send or subscribe (nothing is dropped silently)', async () => {
  const c = await nb.connect({ servers: nats.url })
  await c.close()
  await assert.rejects(c.smartsend(subject('late'), [['m', 'late', 'text']], { correlationId: 'cid-closed' }), {
    code: 'NATS_CONNECTION_FAILED',
    correlationId: 'cid-closed',
  })
  await assert.rejects(c.subscribe(subject('late')), { code: 'NATS_CONNECTION_FAILED' })
})

test('constants: payload types, msg purposes, error codes', () => {
  assert.deepEqual(nb.PAYLOAD_TYPES, ['text', 'dictionary', 'arrowtable', 'jsontable', 'image', 'audio', 'video', 'binary'])
  assert.deepEqual(nb.MSG_PURPOSES, ['ACK', 'NACK', 'updateStatus', 'shutdown', 'chat', 'command', 'event'])
  // The addon's list comes from an exhaustive match over core's codes; index.d.ts must agree.
  const dts = fs.readFileSync(require.resolve('natsbridge').replace(/index\.js$/, 'index.d.ts'), 'utf8')
  const union = dts.slice(dts.indexOf('export type ErrorCode'), dts.indexOf('/** What every error'))
  assert.deepEqual(nb.ERROR_CODES, [...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]))
  assert.equal(nb.ERROR_CODES.length, 12)
  assert.equal(nb.ERROR_CODES.at(-1), 'INVALID_ARGUMENT')
  assert.equal(nb.DEFAULT_SIZE_THRESHOLD, 500000)
  assert.equal(nb.ARROWTABLE, 'arrowtable')
  assert.equal(nb.UPDATE_STATUS, 'updateStatus')
})

test('custom upload and download handlers (the seeds contracts) carry link payloads', async () => {
  const store = new Map()
  const calls = []
  const conn = await nb.connect({
    servers: nats.url,
    fileserverUrl: 'mem://bucket',
    fileserverUploadHandler: async (server, dataname, data) => {
      const id = `${store.size}`
      store.set(id, Buffer.from(data))
      return { status: 200, uploadid: id, fileid: id, url: `${server}/${id}/${dataname}` }
    },
    // A plain (not async) function works too.
    fileserverDownloadHandler: (url, retries, baseDelay, maxDelay, correlationId) => {
      calls.push([retries, baseDelay, maxDelay, correlationId])
      return store.get(url.split('/')[3])
    },
  })
  try {
    const subj = subject('handlers')
    const sub = await conn.subscribe(subj)
    const big = bytes(600_000)
    const [env] = await conn.smartsend(subj, [['big', big, 'binary'], ['t', 'x', 'text']], { correlationId: 'h-1' })
    assert.equal(env.payloads[0].data, 'mem://bucket/0/big')
    const got = await sub.next({ timeout: 5000 })
    assert.deepEqual(got.transports, ['link', 'direct'])
    assert.equal(sha(got.payloads[0][1]), sha(big))
    assert.deepEqual(calls, [[5, 100, 5000, 'h-1']])
    // A URL the handler does not serve is refused before it is called.
    const wire = JSON.parse((await conn.smartsend(subj, [['b', big, 'binary']]))[1])
    await sub.next({ timeout: 5000 })
    wire.payloads[0].data = 'other://x/0/b'
    await assert.rejects(conn.smartreceive(Buffer.from(JSON.stringify(wire))), { code: 'URL_NOT_ALLOWED' })
    assert.equal(calls.length, 2)
    // One call, no connection: the message's own download handler.
    wire.payloads[0].data = 'mem://bucket/1/b'
    const one = await nb.smartreceive(Buffer.from(JSON.stringify(wire)), {
      fileserverDownloadHandler: async (url) => store.get(url.split('/')[3]),
      allowedOrigins: ['mem:'],
    })
    assert.equal(sha(one.payloads[0][1]), sha(big))
  } finally {
    await conn.close()
  }
})

test('handler failures: UPLOAD_FAILED / DOWNLOAD_FAILED with the handler message; direct fallback', async () => {
  const failing = { fileserverUploadHandler: async () => { throw new Error('disk full') } }
  // The upload fails but the envelope still fits: the payload goes direct.
  const [env] = await nc.smartsend(subject('fb'), [['p', 'small', 'text']], { sizeThreshold: 0, ...failing })
  assert.equal(env.payloads[0].transport, 'direct')
  const tight = await nb.connect({ servers: small.url, ...failing })
  await assert.rejects(tight.smartsend(subject('uf'), [['b', Buffer.alloc(100_000), 'binary']]), (e) => {
    assert.equal(e.code, 'UPLOAD_FAILED')
    assert.match(e.message, /disk full/)
    return true
  })
  // A handler returning junk fails the same way; here direct still fits.
  const [junk] = await tight.smartsend(subject('uf'), [['b', 'x', 'text']], { sizeThreshold: 0, fileserverUploadHandler: () => 42 })
  assert.equal(junk.payloads[0].transport, 'direct')
  await assert.rejects(tight.smartsend(subject('uf'), [['b', Buffer.alloc(100_000), 'binary']], { fileserverUploadHandler: () => 42 }),
    (e) => e.code === 'UPLOAD_FAILED' && /returned a number, not an object with a "url"/.test(e.message))
  // The seeds' reply object: a status outside 2xx fails the upload.
  const status = { fileserverUploadHandler: () => ({ status: 503, url: 'mem://x' }) }
  await assert.rejects(tight.smartsend(subject('uf'), [['b', Buffer.alloc(100_000), 'binary']], status),
    (e) => e.code === 'UPLOAD_FAILED' && /returned status 503/.test(e.message))
  await tight.close()
  const link = JSON.parse((await nc.smartsend(subject('df'), [['p', 'x', 'text']], { sizeThreshold: 0 }))[1])
  link.payloads[0].data = 'mem://bucket/x'
  for (const handler of [async () => { throw new Error('gone') }, () => 'not bytes']) {
    await assert.rejects(nb.smartreceive(Buffer.from(JSON.stringify(link)), {
      fileserverDownloadHandler: handler, allowedOrigins: ['mem://bucket'],
    }), (e) => e.code === 'DOWNLOAD_FAILED' && e.correlationId === link.correlation_id)
  }
})

test('connect options: token and user/password reach the server', async () => {
  const tokenServer = await startNats({ config: 'authorization { token: "s3cret" }' })
  const userServer = await startNats({ config: 'authorization { user: "alice", password: "pw" }' })
  try {
    const ok = await nb.connect({ servers: tokenServer.url, token: 's3cret', name: 'tok' })
    const [env] = await ok.smartsend(subject('auth'), [['a', 'b', 'text']])
    assert.equal(env.broker_url, tokenServer.url)
    await ok.close()
    const bad = { connectTimeout: 1000, maxReconnectAttempts: 0 }
    await assert.rejects(nb.connect({ servers: tokenServer.url, token: 'wrong', ...bad }), { code: 'NATS_CONNECTION_FAILED' })
    const alice = await nb.connect({ servers: [userServer.url], user: 'alice', password: 'pw' })
    await alice.close()
    // snake_case spellings of core's names work too.
    const snake = await nb.connect({ servers: userServer.url, user: 'alice', password: 'pw', connect_timeout: 2000, sender_name: 'snake' })
    assert.equal((await snake.smartsend(subject('auth'), [['a', 'b', 'text']]))[0].sender_name, 'snake')
    await snake.close()
    await assert.rejects(nb.connect({ servers: userServer.url, user: 'alice', password: 'nope', ...bad }), { code: 'NATS_CONNECTION_FAILED' })
  } finally {
    await Promise.all([tokenServer.stop(), userServer.stop()])
  }
})

test('INVALID_ARGUMENT for every caller mistake, before anything is sent', async () => {
  const s = subject('invalid')
  const msg = [['a', 'b', 'text']]
  const request = (await nc.smartsend(s, msg))[0]
  const cases = [
    ['unknown connect option', () => nb.connect({ servers: nats.url, pass: 'x' }), /unknown option "pass"/],
    ['nested tls object', () => nb.connect({ servers: nats.url, tls: { caFile: 'x' } }), /unknown option "tls"/],
    ['bad duration', () => nb.connect({ servers: nats.url, connectTimeout: -5 }), /connect_timeout/],
    ['duration as text', () => nb.connect({ servers: nats.url, reconnectTimeWait: 'soon' }), /reconnect_time_wait/],
    ['NaN option', () => nb.connect({ servers: nats.url, maxDelay: NaN }), /max_delay/],
    ['bad file-server kind', () => nb.connect({ servers: nats.url, fileserverKind: 'http_put' }), /"plik", "http" or "s3"/],
    ['bad threshold', () => nb.connect({ servers: nats.url, sizeThreshold: 1.5 }), /size_threshold/],
    ['zero retries', () => nb.connect({ servers: nats.url, maxRetries: 0 }), /max_retries/],
    ['user without password', () => nb.connect({ servers: nats.url, user: 'u' }), /together/],
    ['bad arrow mode', () => nb.connect({ servers: nats.url, arrow: 'csv' }), /arrow/],
    ['options not an object', () => nb.connect(42), /object/],
    ['handler not a function', () => nb.connect({ servers: nats.url, fileserverUploadHandler: 'nope' }), /must be a function/],
    ['download handler serving nothing', () => nb.connect({ servers: nats.url, fileserverDownloadHandler: () => null }), /allowed_origins/],
    ['unknown send option', () => nc.smartsend(s, msg, { bogus: 1 }), /unknown send option "bogus"/],
    ['negative threshold', () => nc.smartsend(s, msg, { sizeThreshold: -1 }), /size_threshold/],
    ['empty msg purpose', () => nc.smartsend(s, msg, { msgPurpose: '' }), /msg_purpose/],
    ['metadata not an object', () => nc.smartsend(s, msg, { metadata: [1] }), /metadata/],
    ['empty subject', () => nc.smartsend('', msg), /subject/],
    ['send handler not a function', () => nc.smartsend(s, msg, { fileserverUploadHandler: 'nope' }), /must be a function/],
    ['one-call: connection and brokerUrl', () => nb.smartsend(s, msg, { connection: nc, brokerUrl: nats.url }), /either/],
    ['one-call: not a connection', () => nb.smartsend(s, msg, { connection: {} }), /Connection/],
    ['unknown receive option', () => nb.smartreceive('{}', { timeout: 5 }), /unknown smartreceive option "timeout"/],
    ['receive handler with a connection', () => nb.smartreceive('{}', { connection: nc, allowedOrigins: ['x:'] }), /only arrow/],
    ['bad request timeout', () => nc.request(s, msg, { timeout: -1 }), /timeout/],
    ['request timeout as text', () => nc.request(s, msg, { timeout: '5s' }), /timeout/],
    ['unknown subscribe option', () => nc.subscribe(s, { queue_group: 'q' }), /unknown subscribe option "queue_group"/],
    ['empty queue', () => nc.subscribe(s, { queue: '' }), /queue/],
    ['reply to a non-envelope', () => nc.reply('nope', msg), /received envelope/],
    ['reply to an envelope without correlation_id', () => nc.reply({ msg_id: 'm' }, msg), /correlation_id/],
    ['unknown error code', () => nc.replyError({ ...request, reply_to: s }, 'OOPS', 'x'), /unknown error code "OOPS"/],
  ]
  for (const [what, call, message] of cases) {
    await assert.rejects(call(), (e) => {
      assert.ok(e instanceof Error, what)
      assert.equal(e.code, 'INVALID_ARGUMENT', `${what}: ${e.message}`)
      assert.match(e.message, message, what)
      return true
    })
  }
  const sub = await nc.subscribe(s)
  await assert.rejects(sub.next({ timeout: -1 }), { code: 'INVALID_ARGUMENT' })
  await assert.rejects(sub.next({ timeoutMs: 5 }), { code: 'INVALID_ARGUMENT' })
  await sub.unsubscribe()
})

test('a NACK with INVALID_ARGUMENT reaches the requester with that code', async () => {
  const subj = subject('nack-invalid')
  const server = await nc.subscribe(subj)
  const serving = (async () => {
    for await (const req of server) await nc.replyError(req, 'INVALID_ARGUMENT', 'x must be positive')
  })()
  await assert.rejects(nc.request(subj, [['x', -1, 'dictionary']], { correlationId: 'cid-ia' }), {
    code: 'INVALID_ARGUMENT',
    correlationId: 'cid-ia',
  })
  await server.unsubscribe()
  await serving
})

test('sub.next resolves to the envelope; for await uses a separate iterator', async () => {
  const subj = subject('iter')
  const sub = await nc.subscribe(subj)
  const it = sub[Symbol.asyncIterator]()
  assert.notEqual(it, sub)
  assert.equal(it[Symbol.asyncIterator](), it)
  await nc.smartsend(subj, [['n', 1, 'dictionary']])
  await nc.smartsend(subj, [['n', 2, 'dictionary']])
  assert.equal((await sub.next({ timeout: 5000 })).payloads[0][1], 1)
  const step = await it.next()
  assert.equal(step.done, false)
  assert.equal(step.value.payloads[0][1], 2)
  assert.deepEqual(await it.return(), { value: undefined, done: true })
  assert.equal(await sub.next(), null) // return() unsubscribed
})

test('connect options take core names: file server, Plik, limits, sender id', async () => {
  const conn = await nb.connect({
    servers: nats.url, fileserverUrl: plik.url, fileserverKind: 'plik', plikOneshot: false, plikTtl: 60_000,
    pendingMsgsLimit: 10, maxDownloadBytes: 1_000_000, senderId: 'me', reconnectTimeWait: 100, objectStoreTtl: 60_000,
  })
  try {
    const subj = subject('names')
    const sub = await conn.subscribe(subj)
    const [env] = await conn.smartsend(subj, [['big', bytes(600_000), 'binary']])
    assert.equal(env.sender_id, 'me')
    assert.ok(env.payloads[0].data.startsWith(`${plik.url}/file/`))
    assert.equal(sha((await sub.next({ timeout: 10000 })).payloads[0][1]), sha(bytes(600_000)))
  } finally {
    await conn.close()
  }
  // maxDownloadBytes is the receiver's limit: a larger link payload is refused.
  const limited = await nb.connect({ servers: nats.url, max_download_bytes: 1000 })
  const wire = (await nc.smartsend(subject('limit'), [['b', bytes(5000), 'binary']], { sizeThreshold: 0 }))[1]
  await assert.rejects(limited.smartreceive(wire), { code: 'PAYLOAD_TOO_LARGE' })
  await limited.close()
})

test('receive limits (spec/PROTOCOL.md §9.4) hold as one-call options, on a connection and in its subscriptions', async () => {
  const texts = (n) => Array.from({ length: n }, (_, i) => [`t${i}`, 'x', 'text'])
  const [, three] = await nc.smartsend(subject('limits'), texts(3))
  const [, deep] = await nc.smartsend(subject('limits'), [['d', { a: [[[1]]] }, 'dictionary']])
  await assert.rejects(nb.smartreceive(three, { maxPayloads: 2 }), { code: 'INVALID_ENVELOPE' })
  assert.equal((await nb.smartreceive(three, { max_payloads: 3 })).payloads.length, 3)
  await assert.rejects(nb.smartreceive(three, { maxMessageBytes: 2 }), { code: 'PAYLOAD_TOO_LARGE' })
  const limited = await nb.connect({ servers: nats.url, maxPayloads: 2, maxJsonDepth: 3 })
  try {
    await assert.rejects(limited.smartreceive(deep), { code: 'PAYLOAD_TOO_LARGE' })
    await assert.rejects(limited.smartreceive(three), { code: 'INVALID_ENVELOPE' })
    const subj = subject('limits.sub')
    const sub = await limited.subscribe(subj)
    await limited.smartsend(subj, texts(2))
    await limited.smartsend(subj, texts(3))
    assert.equal((await sub.next({ timeout: 5000 })).payloads.length, 2)
    await assert.rejects(sub.next({ timeout: 5000 }), { code: 'INVALID_ENVELOPE' })
  } finally {
    await limited.close()
  }
  await assert.rejects(nb.connect({ servers: nats.url, maxJsonDepth: 129 }), { code: 'INVALID_ARGUMENT' })
})
