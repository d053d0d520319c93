'use strict'
// JetStream mode (spec/PROTOCOL.md §12) against a real nats-server: durable publish and its
// PubAck, streams, durable consumers and their settlement, dead letters, resuming a durable,
// links through a work-queue stream, the sweep. The rules are core's; this checks what reaches
// JavaScript.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const path = require('node:path')
const { connect: natsConnect } = require('@nats-io/transport-node')
const nb = require('natsbridge')
const REPO = process.env.NATSBRIDGE_REPO ?? path.join(__dirname, '../..')
const { startNats } = require(path.join(REPO, 'servers/js/servers.js'))

let nats, nc, raw
test.before(async () => {
  nats = await startNats()
  ;[nc, raw] = await Promise.all([nb.connect({ servers: nats.url, jetstream: true }), natsConnect({ servers: nats.url })])
})
test.after(async () => {
  await Promise.all([nc?.close(), raw?.close()])
  await nats?.stop()
})

const streamName = () => `NODE${crypto.randomBytes(5).toString('hex').toUpperCase()}`
const textOf = (msg) => msg.envelope.payloads[0][1]
const isCode = (code) => (e) => {
  assert.equal(e.code, code, e.message)
  return true
}

test('a durable publish resolves with the PubAck: sequence 1, 2, 3 (also for large direct data)', async () => {
  const name = streamName()
  const summary = await nc.addStream(name, { storage: 'memory' })
  assert.deepEqual(summary, {
    name,
    subjects: [`${name}.>`],
    max_age_ms: 3_600_000, // the object store's TTL (1 h): no message outlives its links
    replicas: 1,
    messages: 0,
    dead_letter_stream: `${name}_DEAD_LETTER`,
  })
  const acks = []
  for (const data of [['n', 1, 'dictionary'], ['msg', 'two', 'text'], ['big', Buffer.alloc(4096, 3), 'binary']]) {
    const [env, msgJson] = await nc.smartsend(`${name}.x`, [data])
    assert.equal(env.payloads[0].transport, 'direct')
    assert.equal(JSON.parse(msgJson).pub_ack, undefined, 'pub_ack is not on the wire')
    acks.push(env.pub_ack)
  }
  assert.deepEqual(acks, [1, 2, 3].map((sequence) => ({ stream: name, sequence, duplicate: false })))
  assert.equal((await nc.addStream(name, { storage: 'memory' })).messages, 3, 'an update keeps the messages')

  const core = await nb.connect({ servers: nats.url })
  const [env] = await core.smartsend(`${name}.x`, [['n', 0, 'dictionary']])
  assert.ok(!('pub_ack' in env), 'core NATS mode: no pub_ack')
  await core.close()
})

test('a subject no stream captures is INVALID_ARGUMENT, before any upload, and nothing is published', async () => {
  const sub = await nc.subscribe('nostream.node')
  await assert.rejects(
    nc.smartsend('nostream.node', [['blob', Buffer.alloc(1000, 1), 'binary']], { sizeThreshold: 1 }),
    (e) => isCode('INVALID_ARGUMENT')(e) && /no JetStream stream captures/.test(e.message),
  )
  await assert.rejects(sub.next({ timeout: 200 }), isCode('TIMEOUT')) // no silent core-NATS publish
  await sub.unsubscribe()
})

test('stream and consume options reach core by their names; bad ones are INVALID_ARGUMENT', async () => {
  const snake = (n) => n.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
  const camel = (n) => n.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
  for (const name of nb.STREAM_OPTION_NAMES) {
    for (const spelling of new Set([name, camel(name)])) {
      await assert.rejects(nc.addStream('BAD', { [spelling]: {} }), (e) =>
        isCode('INVALID_ARGUMENT')(e) && e.message.includes(`option "${snake(spelling)}" needs`))
    }
  }
  for (const name of nb.CONSUME_OPTION_NAMES) {
    for (const spelling of new Set([name, camel(name)])) {
      await assert.rejects(nc.consume('BAD', 'w', { [spelling]: {} }), (e) =>
        isCode('INVALID_ARGUMENT')(e) && e.message.includes(`option "${snake(spelling)}" needs`))
    }
  }
  for (const call of [
    () => nc.addStream('BAD', { retention: 'queue' }),
    () => nc.addStream('BAD', { replicas: 9 }),
    () => nc.addStream('BAD.NAME'),
    () => nc.addStream('BAD', { maxage: 1 }),
    () => nc.addStream(7),
    () => nc.consume('NOSUCHSTREAM', 'w'),
    () => nc.consume('BAD', 'w', { ackWait: 10 }), // ms: under 100
    () => nc.consume('BAD', 'w', { deliverFrom: 'last' }),
    () => nc.consume('BAD', 'w', { arrow: 'csv' }),
    () => nc.sweepLinks('BAD', { dryRun: 'yes' }),
    () => nc.sweepLinks('BAD', { minAge: -1 }),
    () => nc.sweepLinks('BAD', { force: true }),
  ]) {
    await assert.rejects(call(), isCode('INVALID_ARGUMENT'))
  }
})

test('for await yields deliveries to settle: delivered 1, a nak comes back as delivered 2, settling twice is INVALID_ARGUMENT', async () => {
  const name = streamName()
  await nc.addStream(name, { storage: 'memory' })
  const [sent] = await nc.smartsend(`${name}.x`, [['msg', 'one', 'text']], { correlationId: 'c-1' })
  await nc.smartsend(`${name}.x`, [['msg', 'two', 'text']])
  const consumer = await nc.consume(name, 'worker')
  assert.equal(consumer.stream, name)
  const seen = []
  for await (const msg of consumer) {
    assert.ok(msg instanceof nb.Delivery)
    seen.push([textOf(msg), msg.info.delivered])
    if (seen.length === 1) {
      assert.equal(msg.envelope.msg_id, sent.msg_id)
      assert.equal(msg.envelope.correlation_id, 'c-1')
      assert.equal(msg.envelope.subject, `${name}.x`)
      assert.deepEqual(msg.envelope.transports, ['direct'])
      assert.deepEqual(msg.info, {
        stream: name,
        consumer: 'worker',
        stream_sequence: 1,
        consumer_sequence: 1,
        delivered: 1,
        pending: 1,
        replayed: false,
        redelivered: false,
      })
      await msg.inProgress()
      await msg.nak() // at once
      for (const settle of ['ack', 'nak', 'term', 'inProgress']) {
        await assert.rejects(msg[settle](), isCode('INVALID_ARGUMENT'), settle)
      }
      continue
    }
    await msg.ack()
    await assert.rejects(msg.ack(), isCode('INVALID_ARGUMENT'))
    if (textOf(msg) === 'one') {
      assert.equal(msg.info.redelivered, true)
      assert.equal(msg.info.stream_sequence, 1)
    }
    if (seen.length === 3) break // leaving the loop closes the consumer
  }
  assert.deepEqual(seen.sort(), [['one', 1], ['one', 2], ['two', 1]])
  assert.equal(await consumer.next(), null)

  const again = await nc.consume(name, 'worker')
  await assert.rejects(again.next({ timeout: 300 }), isCode('TIMEOUT')) // everything was acked
  const waiting = again.next()
  await again.close()
  assert.equal(await waiting, null, 'close ends a waiting next')
})

test('what never decodes is dead-lettered to <NAME>_DEAD_LETTER and never yielded', async () => {
  const name = streamName()
  await nc.addStream(name, { storage: 'memory' })
  const garbage = Buffer.from('{"correlation_id": "c-node", "payloads": 7}')
  // Published raw (a core request to a stream subject is a JetStream publish: the reply is the PubAck).
  const ack = JSON.parse(Buffer.from((await raw.request(`${name}.x`, garbage, { timeout: 2000 })).data).toString())
  assert.equal(ack.seq, 1)
  await nc.smartsend(`${name}.x`, [['msg', 'fine', 'text']])
  const consumer = await nc.consume(name, 'w', { ackWait: 1000 })
  const good = await consumer.next({ timeout: 5000 })
  assert.deepEqual([textOf(good), good.info.stream_sequence], ['fine', 2])
  await good.ack()
  await assert.rejects(consumer.next({ timeout: 300 }), isCode('TIMEOUT'))
  await consumer.close()

  const audit = await nc.consume(`${name}_DEAD_LETTER`, 'audit')
  const letter = await audit.next({ timeout: 5000 })
  const env = letter.envelope
  assert.equal(letter.info.stream, `${name}_DEAD_LETTER`)
  assert.deepEqual([env.msg_purpose, env.correlation_id, env.error.code], ['NACK', 'c-node', 'INVALID_ENVELOPE'])
  assert.equal(env.error.details.stream, name)
  assert.equal(env.error.details.stream_sequence, 1)
  assert.deepEqual(env.payloads, [['original_message', garbage, 'binary']])
  await letter.ack()
  await audit.close()
})

test('a consumer opened again with the same durable resumes after what was acked', async () => {
  const name = streamName()
  await nc.addStream(name, { storage: 'memory' })
  for (const word of ['a', 'b']) await nc.smartsend(`${name}.x`, [['msg', word, 'text']])
  const seen = []
  for await (const msg of await nc.consume(name, 'w', { ackWait: 500 })) {
    seen.push(textOf(msg))
    await msg.ack()
    if (seen.length === 2) break
  }
  assert.deepEqual(seen, ['a', 'b'])
  await nc.smartsend(`${name}.x`, [['msg', 'c', 'text']])
  const resumed = await nc.consume(name, 'w', { ackWait: 500 })
  const c = await resumed.next({ timeout: 5000 })
  assert.deepEqual([textOf(c), c.info.stream_sequence, c.info.delivered], ['c', 3, 1])
  await c.ack()
  await resumed.close()
})

test('a link payload through a work-queue stream arrives equal; its ack deletes the link object', async () => {
  const name = streamName()
  await nc.addStream(name, { storage: 'memory', retention: 'workqueue' })
  const blob = crypto.randomBytes(20_000)
  const [env] = await nc.smartsend(`${name}.x`, [['blob', blob, 'binary']], { sizeThreshold: 1 })
  assert.equal(env.payloads[0].transport, 'link')
  assert.equal(env.pub_ack.sequence, 1)
  const before = await nc.sweepLinks(name)
  assert.deepEqual(before, { stream: name, checked: 1, orphans: [], dry_run: true })

  const consumer = await nc.consume(name, 'w', { arrow: 'ipc' })
  const msg = await consumer.next({ timeout: 5000 })
  assert.deepEqual(msg.envelope.transports, ['link'])
  assert.ok(Buffer.isBuffer(msg.envelope.payloads[0][1]))
  assert.ok(msg.envelope.payloads[0][1].equals(blob))
  await msg.ack() // waits for the server's confirmation, then deletes the link object
  await consumer.close()
  assert.equal((await nc.sweepLinks(name, { dryRun: false, minAge: 0 })).checked, 0)

  // An orphan: a link object whose message left the stream unconsumed.
  const [lost] = await nc.smartsend(`${name}.x`, [['blob', blob, 'binary']], { sizeThreshold: 1 })
  const reply = await raw.request(`$JS.API.STREAM.MSG.DELETE.${name}`, JSON.stringify({ seq: lost.pub_ack.sequence }))
  assert.equal(JSON.parse(reply.string()).success, true)
  const report = await nc.sweepLinks(name, { minAge: 0 })
  assert.equal(report.orphans.length, 1)
  const [orphan] = report.orphans
  assert.deepEqual([orphan.msg_id, orphan.url, orphan.size], [lost.msg_id, lost.payloads[0].data, 20_000])
  assert.ok(Number.isInteger(orphan.age_ms) && orphan.age_ms >= 0 && orphan.age_ms < 60_000, `age_ms ${orphan.age_ms}`)
  await nc.sweepLinks(name, { dryRun: false, minAge: 0 })
  assert.deepEqual(await nc.sweepLinks(name, { minAge: 0 }), { stream: name, checked: 0, orphans: [], dry_run: true })
})

test('close() ends a next() that waits without a timeout: it gives null, and so does every later one', async () => {
  const name = streamName()
  await nc.addStream(name, { storage: 'memory' })
  const consumer = await nc.consume(name, 'w')
  const waiting = consumer.next()
  await new Promise((resolve) => setTimeout(resolve, 200))
  await consumer.close()
  assert.equal(await waiting, null)
  assert.equal(await consumer.next(), null)
  const seen = []
  for await (const msg of consumer) seen.push(msg)
  assert.deepEqual(seen, [])
})

const bytes = (size, mul = 7) => Buffer.from(Array.from({ length: size }, (_, i) => (i * mul) % 251))
const SAMPLES = [
  ['greeting', 'Héllo wörld 🌍', 'text'],
  ['config', { name: 'x', on: true, n: 1.5, list: [1, 'a', null] }, 'dictionary'],
  ['rows', [{ id: 1, name: 'a' }, { id: 2, name: null }], 'jsontable'],
  ['table', [{ id: 1, score: 0.5, name: 'alice' }, { id: 2, score: -1.25, name: null }], 'arrowtable'],
  ['photo', bytes(3000), 'image'],
  ['sound', bytes(1000, 3), 'audio'],
  ['clip', bytes(5000, 11), 'video'],
  ['blob', bytes(777, 5), 'binary'],
]

for (const transport of ['direct', 'link']) {
  test(`consume decodes every payload type as a subscription does (${transport}, object store)`, async () => {
    const name = streamName()
    await nc.addStream(name, { storage: 'memory' })
    const sizeThreshold = transport === 'direct' ? undefined : 0
    const [sent] = await nc.smartsend(`${name}.all`, SAMPLES, { sizeThreshold })
    assert.deepEqual(sent.payloads.map((p) => p.transport), SAMPLES.map(() => transport))
    const consumer = await nc.consume(name, 'w')
    const msg = await consumer.next(5000) // a number alone is the timeout
    assert.equal(msg.envelope.msg_id, sent.msg_id)
    assert.deepEqual(msg.envelope.transports, SAMPLES.map(() => transport))
    assert.equal(msg.envelope.payloads.length, SAMPLES.length)
    SAMPLES.forEach(([dataname, value, type], i) => {
      const [gotName, got, gotType] = msg.envelope.payloads[i]
      assert.deepEqual([gotName, gotType], [dataname, type])
      if (Buffer.isBuffer(value)) assert.ok(Buffer.isBuffer(got) && got.equals(value), dataname)
      else assert.deepEqual(got, value, dataname)
    })
    assert.deepEqual([msg.info.stream_sequence, msg.info.delivered, msg.info.redelivered], [1, 1, false])
    await msg.ack()
    await assert.rejects(consumer.next(300), isCode('TIMEOUT')) // acked: not delivered again
    await consumer.close()
  })
}

test('many deliveries come in order, each once; ack and term are final, a nak with a delay comes back later', async () => {
  const name = streamName()
  await nc.addStream(name, { storage: 'memory' })
  const N = 300
  for (let i = 0; i < N; i++) await nc.smartsend(`${name}.n`, [['i', i, 'dictionary']])
  const consumer = await nc.consume(name, 'w', { batch: 50, ackWait: 5000 })
  const sequences = []
  for (let i = 0; i < N; i++) {
    const msg = await consumer.next({ timeout: 5000 })
    assert.equal(textOf(msg), i)
    sequences.push(msg.info.stream_sequence)
    if (i === 7) await msg.term() // never delivered again
    else if (i === N - 1) await msg.nak(300)
    else await msg.ack()
  }
  assert.deepEqual(sequences, Array.from({ length: N }, (_, i) => i + 1))
  const again = await consumer.next({ timeout: 5000 })
  assert.deepEqual([textOf(again), again.info.stream_sequence, again.info.delivered, again.info.redelivered], [N - 1, N, 2, true])
  await again.ack()
  await assert.rejects(consumer.next({ timeout: 500 }), isCode('TIMEOUT')) // the term'd one stays away
  await consumer.close()
  await assert.rejects(consumer.next('soon'), isCode('INVALID_ARGUMENT'))
})
