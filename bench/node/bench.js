'use strict'
// natsbridge (Node binding) against a hand-written nats.js + JSON + Buffer base64 peer and the
// raw nats.js floor, in one run. See bench/node/README.md.
//
//   node bench/node/bench.js [--out FILE] [--only throughput,latency,decode,codec,arrow,link,connections]
//
// Starts its own nats-server (JetStream, a free loopback port, max_payload 8 MiB so a 1 MB
// payload travels direct for both sides). Prints a markdown table (progress on stderr).
const { createRequire } = require('node:module')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { randomUUID } = require('node:crypto')
const nb = require('natsbridge')
const { connect: natsConnect } = require('@nats-io/transport-node')
const { Objm } = require('@nats-io/obj')
const nbRequire = createRequire(require.resolve('natsbridge'))
const arrow = nbRequire('apache-arrow') // the copy natsbridge uses
const REPO = path.resolve(__dirname, '../..')
const { startNats } = require(path.join(REPO, 'servers/js/servers.js'))
const peer = require(path.join(REPO, 'bindings-node/test/peer.js'))

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : def
}
const ONLY = new Set(opt('only', 'throughput,latency,decode,codec,arrow,link,connections').split(','))
const CONNECTS = Number(opt('connects', 300))
const CLIENTS = Number(opt('clients', 1000))
const MSGS = Number(opt('msgs', 50000))
const REPS = Number(opt('reps', 3))
const PINGS = Number(opt('pings', 2000))
const LINK_MB = opt('link-mb', '100').split(',').map(Number)
const DIRECT = 4_000_000 // a size threshold that keeps the 1 MB case direct, as the peer sends it

const log = (...a) => console.error(...a)
const subject = (tag) => `bench.node.${tag}.${randomUUID().slice(0, 8)}`
const now = () => Number(process.hrtime.bigint()) / 1e6 // ms
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]
}
const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const rows = []
const row = (test, metric, a, b, floor, ratio, target, status) =>
  rows.push([test, metric, a, b, floor ?? '', ratio ?? '', target ?? '', status ?? ''])
const fmt = (x, d = 1) => (typeof x === 'number' ? x.toFixed(d) : x)

/** Counts `count` messages with `onMessage`, resolving {first, last, got} (bounded). */
function counter(count) {
  let got = 0
  let last = 0
  let resolve
  const done = new Promise((r) => {
    resolve = r
  })
  const tick = () => {
    got++
    last = now()
    if (got === count) resolve()
  }
  return { tick, done, stats: () => ({ got, last }) }
}

async function bounded(promise, idleCheck, limitMs = 120000) {
  let timer
  const guard = new Promise((r) => {
    const started = now()
    let seen = -1
    timer = setInterval(() => {
      const s = idleCheck()
      if (s === seen || now() - started > limitMs) r('timeout')
      seen = s
    }, 5000)
  })
  const r = await Promise.race([promise, guard])
  clearInterval(timer)
  return r
}

async function throughput(url) {
  const payload = Buffer.alloc(100, 7)
  const results = { natsbridge: [], peer: [], raw: [] }
  const cpu = { natsbridge: [], peer: [], raw: [] }
  const nbSize = { natsbridge: 0, peer: 0 }
  for (let rep = 0; rep < REPS; rep++) {
    // natsbridge: awaited smartsend -> a natsbridge subscription (decoded in the binding).
    {
      const pub = await nb.connect({ servers: url })
      const subc = await nb.connect({ servers: url })
      const subj = subject('tp')
      const sub = await subc.subscribe(subj)
      const c = counter(MSGS)
      const reading = (async () => {
        for await (const env of sub) {
          if (env.payloads[0][1].length !== 100) throw new Error('bad payload')
          c.tick()
          if (c.stats().got === MSGS) break
        }
      })()
      const cpu0 = cpuMs()
      const t0 = now()
      for (let i = 0; i < MSGS; i++) {
        const [, json] = await pub.smartsend(subj, [['m', payload, 'binary']])
        if (i === 0) nbSize.natsbridge = json.length
      }
      const r = await bounded(reading, () => c.stats().got)
      const { got, last } = c.stats()
      results.natsbridge.push(r === 'timeout' ? 0 : got / ((last - t0) / 1000))
      cpu.natsbridge.push(((cpuMs() - cpu0) * 1000) / MSGS)
      if (got !== MSGS) log(`natsbridge lost ${MSGS - got}`)
      await pub.close()
      await subc.close()
    }
    // peer: awaited encode + nats.js publish -> nats.js subscription + decode.
    {
      const pub = await natsConnect({ servers: url })
      const subc = await natsConnect({ servers: url })
      const subj = subject('tp')
      const c = counter(MSGS)
      const sub = subc.subscribe(subj, {
        callback: (err, m) => {
          if (err) throw err
          const env = peer.decode(m.data)
          if (env.payloads[0][1].length !== 100) throw new Error('bad payload')
          c.tick()
        },
      })
      await subc.flush()
      const send = async (i) => {
        const json = peer.encode(subj, [['m', payload, 'binary']], url)
        if (i === 0) nbSize.peer = json.length
        pub.publish(subj, json)
      }
      const cpu0 = cpuMs()
      const t0 = now()
      for (let i = 0; i < MSGS; i++) await send(i)
      const r = await bounded(c.done, () => c.stats().got)
      const { got, last } = c.stats()
      results.peer.push(r === 'timeout' ? 0 : got / ((last - t0) / 1000))
      cpu.peer.push(((cpuMs() - cpu0) * 1000) / MSGS)
      sub.unsubscribe()
      await pub.close()
      await subc.close()
    }
    // raw floor: natsbridge's envelope bytes, published by nats.js, counted by nats.js.
    {
      const pub = await natsConnect({ servers: url })
      const subc = await natsConnect({ servers: url })
      const subj = subject('tp')
      const bytes = Buffer.from(peer.encode(subj, [['m', payload, 'binary']], url))
      const c = counter(MSGS)
      const sub = subc.subscribe(subj, { callback: () => c.tick() })
      await subc.flush()
      const cpu0 = cpuMs()
      const t0 = now()
      for (let i = 0; i < MSGS; i++) pub.publish(subj, bytes)
      const r = await bounded(c.done, () => c.stats().got)
      const { got, last } = c.stats()
      results.raw.push(r === 'timeout' ? 0 : got / ((last - t0) / 1000))
      cpu.raw.push(((cpuMs() - cpu0) * 1000) / MSGS)
      sub.unsubscribe()
      await pub.close()
      await subc.close()
    }
    log(`throughput rep ${rep + 1}: natsbridge ${fmt(results.natsbridge[rep], 0)}, peer ${fmt(results.peer[rep], 0)}, raw ${fmt(results.raw[rep], 0)} msgs/s`)
  }
  // Diagnostics, one rep each: each natsbridge side alone against raw nats.js on the other.
  const diag = {}
  {
    const pub = await nb.connect({ servers: url })
    const raw = await natsConnect({ servers: url })
    const subj = subject('tp')
    const c = counter(MSGS)
    const sub = raw.subscribe(subj, { callback: () => c.tick() })
    await raw.flush()
    const t0 = now()
    for (let i = 0; i < MSGS; i++) await pub.smartsend(subj, [['m', payload, 'binary']])
    await bounded(c.done, () => c.stats().got)
    diag.send = c.stats().got / ((c.stats().last - t0) / 1000)
    sub.unsubscribe()
    await pub.close()
    await raw.close()
  }
  {
    const subc = await nb.connect({ servers: url })
    const raw = await natsConnect({ servers: url })
    const subj = subject('tp')
    const sub = await subc.subscribe(subj)
    const bytes = Buffer.from(peer.encode(subj, [['m', payload, 'binary']], url))
    const c = counter(MSGS)
    const reading = (async () => {
      for await (const env of sub) {
        if (env.payloads[0][1].length !== 100) throw new Error('bad payload')
        c.tick()
        if (c.stats().got === MSGS) break
      }
    })()
    const t0 = now()
    for (let i = 0; i < MSGS; i++) raw.publish(subj, bytes)
    await bounded(reading, () => c.stats().got)
    diag.receive = c.stats().got / ((c.stats().last - t0) / 1000)
    await subc.close()
    await raw.close()
  }
  const a = median(results.natsbridge)
  const b = median(results.peer)
  const ratio = a / b
  const name = `throughput 100 B x ${MSGS} (median of ${REPS})`
  row(name, 'msgs/s end to end', fmt(a, 0), fmt(b, 0), fmt(median(results.raw), 0), `${fmt(ratio, 2)}x`, '>= 5x peer',
    ratio >= 5 ? 'met' : `**missed** (${fmt(ratio, 2)}x)`)
  row(name, 'process CPU us per message (send + receive)', fmt(median(cpu.natsbridge)), fmt(median(cpu.peer)), fmt(median(cpu.raw)),
    `${fmt(median(cpu.peer) / median(cpu.natsbridge), 2)}x`)
  row(name, 'envelope bytes', nbSize.natsbridge, nbSize.peer)
  row(name, 'diagnostic: `await smartsend` -> raw nats.js counter, msgs/s (1 rep)', fmt(diag.send, 0), fmt(b, 0), '', `${fmt(diag.send / b, 2)}x`)
  row(name, 'diagnostic: raw nats.js publish -> natsbridge `for await`, msgs/s (1 rep)', fmt(diag.receive, 0), fmt(b, 0), '', `${fmt(diag.receive / b, 2)}x`)
}

async function latency(url) {
  const lat = { natsbridge: [], peer: [], raw: [] }
  const cpu = {}
  const payload = Buffer.alloc(100, 7)
  const warm = 200
  // natsbridge: request -> responder subscription replying with an ACK envelope.
  {
    const req = await nb.connect({ servers: url })
    const resp = await nb.connect({ servers: url })
    const subj = subject('rpc')
    const sub = await resp.subscribe(subj)
    const serving = (async () => {
      for await (const env of sub) await resp.reply(env, [['ok', env.payloads[0][1], 'binary']])
    })()
    await timeRoundTrips('natsbridge', lat, cpu, warm,
      () => req.request(subj, [['ping', payload, 'binary']], { timeout: 5000 }),
      (r) => { if (r.payloads[0][1].length !== 100) throw new Error('bad reply') })
    await sub.unsubscribe()
    await serving
    await req.close()
    await resp.close()
  }
  // peer: nats.js request with its encode/decode; the responder decodes and responds.
  {
    const req = await natsConnect({ servers: url })
    const resp = await natsConnect({ servers: url })
    const subj = subject('rpc')
    const sub = resp.subscribe(subj, {
      callback: (err, m) => {
        const env = peer.decode(m.data)
        const ack = peer.envelope(m.reply, [['ok', env.payloads[0][1], 'binary']], url)
        Object.assign(ack, { msg_purpose: 'ACK', correlation_id: env.correlation_id, reply_to_msg_id: env.msg_id })
        m.respond(JSON.stringify(ack))
      },
    })
    await resp.flush()
    await timeRoundTrips('peer', lat, cpu, warm,
      async () => peer.decode((await req.request(subj, peer.encode(subj, [['ping', payload, 'binary']], url), { timeout: 5000 })).data),
      (r) => { if (r.payloads[0][1].length !== 100) throw new Error('bad reply') })
    sub.unsubscribe()
    await req.close()
    await resp.close()
  }
  // raw: nats.js request/respond of fixed envelope bytes, no envelope work.
  {
    const req = await natsConnect({ servers: url })
    const resp = await natsConnect({ servers: url })
    const subj = subject('rpc')
    const bytes = Buffer.from(peer.encode(subj, [['ping', payload, 'binary']], url))
    const sub = resp.subscribe(subj, { callback: (err, m) => m.respond(bytes) })
    await resp.flush()
    await timeRoundTrips('raw', lat, cpu, warm, () => req.request(subj, bytes, { timeout: 5000 }))
    sub.unsubscribe()
    await req.close()
    await resp.close()
  }
  latencyRows(`ping-pong 100 B x ${PINGS}, request() + for await / reply() (after ${warm} warm-up)`, lat, cpu)
}

/** Ping-pong in the seeds' style, no request(): the requester sends with `reply_to` set to its
 * own subject and waits on its subscription; the responder iterates its subscription and answers
 * with `smartsend` to `env.reply_to` (an ACK naming the ping). */
async function pingpong(url) {
  const lat = { natsbridge: [], peer: [], raw: [] }
  const cpu = {}
  const payload = Buffer.alloc(100, 7)
  const warm = 200
  {
    const req = await nb.connect({ servers: url })
    const resp = await nb.connect({ servers: url })
    const subj = subject('pp')
    const back = subject('pp.back')
    const inbox = await req.subscribe(back)
    const sub = await resp.subscribe(subj)
    const serving = (async () => {
      for await (const env of sub) {
        await resp.smartsend(env.reply_to, [['pong', env.payloads[0][1], 'binary']],
          { msgPurpose: 'ACK', correlationId: env.correlation_id, replyToMsgId: env.msg_id })
      }
    })()
    await timeRoundTrips('natsbridge', lat, cpu, warm,
      async () => {
        await req.smartsend(subj, [['ping', payload, 'binary']], { replyTo: back })
        return inbox.next({ timeout: 5000 })
      },
      (r) => { if (r.payloads[0][1].length !== 100 || r.msg_purpose !== 'ACK') throw new Error('bad pong') })
    await sub.unsubscribe()
    await serving
    await req.close()
    await resp.close()
  }
  // peer: nats.js publish/subscribe with its encode/decode on both sides, reply_to in the envelope.
  {
    const req = await natsConnect({ servers: url })
    const resp = await natsConnect({ servers: url })
    const subj = subject('pp')
    const back = subject('pp.back')
    let pending
    req.subscribe(back, { callback: (err, m) => pending(peer.decode(m.data)) })
    resp.subscribe(subj, {
      callback: (err, m) => {
        const env = peer.decode(m.data)
        const ack = peer.envelope(env.reply_to, [['pong', env.payloads[0][1], 'binary']], url)
        Object.assign(ack, { msg_purpose: 'ACK', correlation_id: env.correlation_id, reply_to_msg_id: env.msg_id })
        resp.publish(env.reply_to, JSON.stringify(ack))
      },
    })
    await Promise.all([req.flush(), resp.flush()])
    await timeRoundTrips('peer', lat, cpu, warm,
      () => {
        const got = new Promise((r) => { pending = r })
        const ping = peer.envelope(subj, [['ping', payload, 'binary']], url)
        ping.reply_to = back
        req.publish(subj, JSON.stringify(ping))
        return got
      },
      (r) => { if (r.payloads[0][1].length !== 100 || r.msg_purpose !== 'ACK') throw new Error('bad peer pong') })
    await req.close()
    await resp.close()
  }
  // raw: the same publish/subscribe ping-pong of fixed envelope bytes, no envelope work.
  {
    const req = await natsConnect({ servers: url })
    const resp = await natsConnect({ servers: url })
    const subj = subject('pp')
    const back = subject('pp.back')
    const bytes = Buffer.from(peer.encode(subj, [['ping', payload, 'binary']], url))
    let pending
    req.subscribe(back, { callback: () => pending() })
    resp.subscribe(subj, { callback: () => resp.publish(back, bytes) })
    await Promise.all([req.flush(), resp.flush()])
    await timeRoundTrips('raw', lat, cpu, warm, () => {
      const got = new Promise((r) => { pending = r })
      req.publish(subj, bytes)
      return got
    })
    await req.close()
    await resp.close()
  }
  latencyRows(`ping-pong 100 B x ${PINGS}, smartsend to reply_to + for await (after ${warm} warm-up)`, lat, cpu)
}

/** `PINGS` timed round trips after `warm` untimed ones into `lat[name]` and `cpu[name]`: `one()`
 * makes a round trip and gives the reply, `check(reply)` (untimed) throws on a wrong one. */
async function timeRoundTrips(name, lat, cpu, warm, one, check = () => {}) {
  const c0 = cpuMs()
  for (let i = 0; i < PINGS + warm; i++) {
    const t0 = now()
    const r = await one()
    if (i >= warm) lat[name].push((now() - t0) * 1000)
    check(r)
  }
  cpu[name] = ((cpuMs() - c0) * 1000) / (PINGS + warm)
}

/** p50 / p99 / max and CPU rows of a ping-pong; target: p99 at most half the peer's. */
function latencyRows(name, lat, cpu) {
  for (const [metric, f] of [['p50 us', (x) => pct(x, 50)], ['p99 us', (x) => pct(x, 99)], ['max us', (x) => Math.max(...x)]]) {
    const a = f(lat.natsbridge)
    const b = f(lat.peer)
    const isP99 = metric === 'p99 us'
    row(name, metric, fmt(a), fmt(b), fmt(f(lat.raw)), `${fmt(a / b, 2)}x of peer`, isP99 ? "<= 0.5x peer's p99" : '',
      isP99 ? (a <= 0.5 * b ? 'met' : `**missed** (${fmt(a / b, 2)}x of peer)`) : '')
  }
  row(name, 'process CPU us per round trip', fmt(cpu.natsbridge), fmt(cpu.peer), fmt(cpu.raw), `${fmt(cpu.peer / cpu.natsbridge, 2)}x`)
  log(`${name} p50/p99: natsbridge ${fmt(pct(lat.natsbridge, 50))}/${fmt(pct(lat.natsbridge, 99))}, peer ${fmt(pct(lat.peer, 50))}/${fmt(pct(lat.peer, 99))}, raw ${fmt(pct(lat.raw, 50))}/${fmt(pct(lat.raw, 99))} us`)
}

/** The receive call a subscriber makes per message, in a hot loop: natsbridge `smartreceive` of
 * a 100-byte binary envelope, the peer's decode (JSON.parse + Buffer.from base64), and
 * `JSON.parse` alone as the floor. Median over `reps` batches of `n` calls. */
async function decode100(url) {
  const nc = await nb.connect({ servers: url })
  const subj = subject('dec')
  const [, msgJson] = await nc.smartsend(subj, [['m', Buffer.alloc(100, 7), 'binary']])
  const bytes = Buffer.from(msgJson)
  const n = 20000
  const reps = 7
  const perCall = async (f) => {
    const out = []
    for (let r = 0; r < reps + 1; r++) {
      const t0 = now()
      for (let i = 0; i < n; i++) await f()
      if (r > 0) out.push(((now() - t0) * 1000) / n)
    }
    return median(out)
  }
  const text = bytes.toString('utf8')
  const a = await perCall(async () => {
    const env = await nc.smartreceive(bytes)
    if (env.payloads[0][1].length !== 100) throw new Error('bad decode')
  })
  const b = await perCall(async () => {
    const env = peer.decode(bytes)
    if (env.payloads[0][1].length !== 100) throw new Error('bad peer decode')
  })
  const f = await perCall(async () => {
    if (JSON.parse(text).payloads.length !== 1) throw new Error('bad parse')
  })
  const name = `decode 100 B (hot loop, median of ${reps} x ${n}; floor: JSON.parse alone)`
  row(name, 'us per message', fmt(a, 2), fmt(b, 2), fmt(f, 2), `${fmt(b / a, 2)}x`)
  log(`${name}: natsbridge ${fmt(a, 2)}, peer ${fmt(b, 2)}, JSON.parse ${fmt(f, 2)} us`)
  await nc.close()
}

/** encode (send, no subscriber) and decode of one payload, median of `reps` each. */
async function codec(url, name, item, reps, target, opts = {}) {
  const nc = await nb.connect({ servers: url, arrow: opts.arrow })
  const raw = await natsConnect({ servers: url })
  const subj = subject('codec')
  const t = { nbEnc: [], nbDec: [], peerEnc: [], peerDec: [] }
  const [, msgJson] = await nc.smartsend(subj, [item], { sizeThreshold: DIRECT })
  const nbBytes = Buffer.from(msgJson)
  const peerItem = opts.peerItem ?? ((x) => x)
  const peerBytes = Buffer.from(peer.encode(subj, [peerItem(item)], url))
  const peerDecode = opts.peerDecode ?? ((b) => peer.decode(b))
  for (let i = 0; i < reps + 2; i++) {
    let t0 = now()
    await nc.smartsend(subj, [item], { sizeThreshold: DIRECT })
    const e1 = now() - t0
    t0 = now()
    const env = await nc.smartreceive(nbBytes)
    const d1 = now() - t0
    if (env.payloads.length !== 1) throw new Error('bad decode')
    t0 = now()
    raw.publish(subj, peer.encode(subj, [peerItem(item)], url))
    const e2 = now() - t0
    t0 = now()
    const penv = peerDecode(peerBytes)
    const d2 = now() - t0
    if (penv.payloads.length !== 1) throw new Error('bad peer decode')
    if (i >= 2) {
      t.nbEnc.push(e1)
      t.nbDec.push(d1)
      t.peerEnc.push(e2)
      t.peerDec.push(d2)
    }
    await Promise.all([nc.flush(), raw.flush()]) // untimed: nothing queued across reps
  }
  const unit = opts.unit ?? 'ms'
  const k = unit === 'us' ? 1000 : 1
  const total = (a, b) => t[a].map((x, i) => x + t[b][i])
  const a = median(total('nbEnc', 'nbDec')) * k
  const b = median(total('peerEnc', 'peerDec')) * k
  const label = `${name} (median of ${reps})`
  row(label, `encode + decode ${unit}`, fmt(a, 2), fmt(b, 2), '', `${fmt(b / a, 2)}x`, target ? `>= ${target}x peer` : '',
    target ? (b / a >= target ? 'met' : `**missed** (${fmt(b / a, 2)}x)`) : '')
  row(label, `encode (send, no subscriber) ${unit}`, fmt(median(t.nbEnc) * k, 2), fmt(median(t.peerEnc) * k, 2), '', `${fmt(median(t.peerEnc) / median(t.nbEnc), 2)}x`)
  row(label, `decode ${unit}`, fmt(median(t.nbDec) * k, 2), fmt(median(t.peerDec) * k, 2), '', `${fmt(median(t.peerDec) / median(t.nbDec), 2)}x`)
  log(`${name}: natsbridge ${fmt(a, 2)} vs peer ${fmt(b, 2)} ${unit}`)
  await nc.close()
  await raw.close()
}

function table10k() {
  const n = 10000
  return arrow.tableFromArrays({
    id: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
    score: Float64Array.from({ length: n }, (_, i) => i * 0.5),
    name: Array.from({ length: n }, (_, i) => `name-${i}`),
    ok: Array.from({ length: n }, (_, i) => i % 2 === 0),
    at: arrow.vectorFromArray(Array.from({ length: n }, (_, i) => 1_700_000_000_000 + i), new arrow.TimestampMillisecond('UTC')),
  })
}

async function link(url) {
  for (const mb of LINK_MB) {
    const size = mb * 1_000_000
    const data = Buffer.alloc(size)
    for (let i = 0; i < size; i += 4096) data[i] = i & 0xff
    const reps = Number(opt('link-reps', 3))
    const nbT = []
    const peerT = []
    const a = await nb.connect({ servers: url })
    const b = await nb.connect({ servers: url })
    const raw = await natsConnect({ servers: url })
    const objm = new Objm(raw)
    const bucket = await objm.create(`peer${mb}`)
    for (let i = 0; i < reps + 1; i++) {
      let t0 = now()
      const [, msgJson] = await a.smartsend(subject('link'), [['big', data, 'binary']])
      const up = now() - t0
      t0 = now()
      const env = await b.smartreceive(Buffer.from(msgJson))
      const down = now() - t0
      if (env.payloads[0][1].length !== size) throw new Error('bad link')
      // peer: nats.js object store put + an envelope with the link, then get.
      const name = randomUUID()
      t0 = now()
      await bucket.putBlob({ name }, data)
      raw.publish(subject('link'), JSON.stringify({ payloads: [{ transport: 'link', data: `nats-obj://peer/${name}`, size }] }))
      const pup = now() - t0
      t0 = now()
      const got = await bucket.getBlob(name)
      const pdown = now() - t0
      if (got.length !== size) throw new Error('bad peer link')
      await bucket.delete(name)
      if (i > 0) {
        nbT.push([up, down])
        peerT.push([pup, pdown])
      }
      log(`link ${mb} MB rep ${i}: natsbridge ${fmt(up, 0)}+${fmt(down, 0)} ms, peer ${fmt(pup, 0)}+${fmt(pdown, 0)} ms`)
    }
    const rate = (ms) => mb / (ms / 1000)
    const med = (xs, f) => median(xs.map(f))
    const label = `link ${mb} MB via object store (median of ${reps})`
    const tn = med(nbT, ([u, d]) => u + d)
    const tp = med(peerT, ([u, d]) => u + d)
    row(label, 'total MB/s (send + receive); peer: @nats-io/obj putBlob + getBlob', fmt(rate(tn)), fmt(rate(tp)), '', `${fmt(tp / tn, 2)}x`)
    row(label, 'upload MB/s (send)', fmt(rate(med(nbT, ([u]) => u))), fmt(rate(med(peerT, ([u]) => u))), '', '')
    row(label, 'download MB/s (receive)', fmt(rate(med(nbT, ([, d]) => d))), fmt(rate(med(peerT, ([, d]) => d))), '', '')
    await objm.destroy?.(`peer${mb}`).catch(() => {})
    await a.close()
    await b.close()
    await raw.close()
  }
}

/** Milliseconds each of CONNECTS sequential connects took until connected (each closed after). */
async function connectTimes(connect) {
  for (let i = 0; i < 10; i++) await (await connect()).close()
  const times = []
  for (let i = 0; i < CONNECTS; i++) {
    const t0 = now()
    const c = await connect()
    times.push(now() - t0)
    await c.close()
  }
  return times
}

/** Connect latency beside nats.js's own connect; then CLIENTS bridge connections in one process,
 * each subscribed to its own subject and sending one message to the next, with memory each. */
async function connections(url) {
  const mine = await connectTimes(() => nb.connect({ servers: url }))
  const theirs = await connectTimes(() => natsConnect({ servers: url }))
  const test = `connect x ${CONNECTS} (sequential, loopback)`
  for (const p of [50, 99]) {
    const [a, b] = [pct(mine, p), pct(theirs, p)]
    row(test, `p${p} ms`, fmt(a, 2), fmt(b, 2), '', `${(b / a).toFixed(2)}x`, p === 99 ? '< 10 ms' : '', p === 99 ? (a < 10 ? 'met' : '**missed**') : '')
    log(`  connect p${p}: natsbridge ${a.toFixed(2)} ms, nats.js ${b.toFixed(2)} ms`)
  }
  global.gc?.()
  const before = process.memoryUsage().rss
  const t0 = now()
  const clients = []
  for (let i = 0; i < CLIENTS; i += 64) {
    const batch = Array.from({ length: Math.min(64, CLIENTS - i) }, () => nb.connect({ servers: url }))
    clients.push(...(await Promise.all(batch)))
  }
  const connected = now() - t0
  const subs = []
  for (const [i, c] of clients.entries()) subs.push(await c.subscribe(`ring.${i}`))
  const perClient = (process.memoryUsage().rss - before) / CLIENTS
  const t1 = now()
  await Promise.all(clients.map((c, i) => c.smartsend(`ring.${(i + 1) % CLIENTS}`, [['from', String(i), 'text']])))
  const got = await Promise.all(subs.map((s) => s.next({ timeout: 30000 })))
  const all = now() - t1
  const delivered = got.filter((env, i) => env.payloads[0][1] === String((i + CLIENTS - 1) % CLIENTS)).length
  await Promise.all(clients.map((c) => c.close()))
  const t = `${CLIENTS} connections in one process`
  row(t, 'connect all (64 at a time), ms', fmt(connected, 0), '', '', '', '', '')
  row(t, 'resident memory per connection (with its subscription), KiB', fmt(perClient / 1024, 1), '', '', '', '', '')
  row(t, 'delivered, checked', `${delivered} of ${CLIENTS}`, '', '', '', `${CLIENTS} of ${CLIENTS}`, delivered === CLIENTS ? 'met' : '**missed**')
  row(t, 'send all and receive all, ms', fmt(all, 0), '', '', '', '', '')
  log(`  ${CLIENTS} connections: ${delivered} delivered, ${(perClient / 1024).toFixed(1)} KiB each`)
}

async function main() {
  const server = await startNats({ config: `max_payload: ${8 * 1024 * 1024}` })
  const started = Date.now()
  const load0 = os.loadavg().map((x) => x.toFixed(2)).join(' ')
  try {
    if (ONLY.has('throughput')) await throughput(server.url)
    if (ONLY.has('latency')) {
      await latency(server.url)
      await pingpong(server.url)
    }
    if (ONLY.has('decode')) await decode100(server.url)
    if (ONLY.has('codec')) {
      const b10k = Buffer.alloc(10_000, 3)
      const b1m = Buffer.alloc(1_000_000, 5)
      await codec(server.url, 'encode+decode binary 10 KB', ['b', b10k, 'binary'], 2000, 0, { unit: 'us' })
      await codec(server.url, 'encode+decode binary 1 MB (direct)', ['b', b1m, 'binary'], 100, 20)
    }
    if (ONLY.has('arrow')) {
      const t = table10k()
      const toIpc = (item) => [item[0], arrow.tableToIPC(item[1], 'stream'), 'arrowtable']
      const fromIpc = (b) => {
        const env = peer.decode(b)
        env.payloads = env.payloads.map(([n, v, ty]) => [n, arrow.tableFromIPC(v), ty])
        return env
      }
      await codec(server.url, 'encode+decode arrow Table 10,000 x 5 (Table in, Table out)', ['t', t, 'arrowtable'], 40, 5,
        { arrow: 'table', peerItem: toIpc, peerDecode: fromIpc })
      await codec(server.url, 'diagnostic: arrow Table 10,000 x 5, natsbridge default Array<Object> out (peer: Table out)', ['t', t, 'arrowtable'], 20, 0,
        { peerItem: toIpc, peerDecode: fromIpc })
    }
    if (ONLY.has('link')) await link(server.url)
    if (ONLY.has('connections')) await connections(server.url)
  } finally {
    await server.stop()
  }
  let head = ''
  try {
    head = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']).toString().trim()
  } catch {}
  const header = ['Test', 'Metric', 'natsbridge', 'peer (nats.js + JSON + Buffer base64)', 'raw nats.js floor', 'Ratio', 'Target', 'Status']
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i >= 2 && i <= 5 ? '---:' : '---')).join('|')}|`]
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`)
  const version = (req, name) => {
    let dir = path.dirname(req.resolve(name))
    while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir)
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version
  }
  const nats = version(require, '@nats-io/transport-node')
  const arrowV = version(nbRequire, 'apache-arrow')
  lines.push('', `- repo HEAD ${head}; node ${process.version}; @nats-io/transport-node ${nats}; apache-arrow ${arrowV}; ` +
    `${os.cpus().length} CPUs (${os.cpus()[0].model}); load average at start ${load0}, at end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; run took ${((Date.now() - started) / 1000).toFixed(0)} s`)
  const out = `${lines.join('\n')}\n`
  process.stdout.write(out)
  const file = opt('out')
  if (file) fs.writeFileSync(file, out)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
