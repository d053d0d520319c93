'use strict'
// Trace context (spec/PROTOCOL.md §13) with the real OpenTelemetry SDK: a send joins the
// caller's active span, the receiver continues its trace from `trace_headers`, explicit headers
// win, and malformed ones are refused on send and dropped on receive.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { connect: natsConnect, headers: natsHeaders } = require('@nats-io/transport-node')
const api = require('@opentelemetry/api')
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = require('@opentelemetry/core')
const nb = require('natsbridge')
const REPO = process.env.NATSBRIDGE_REPO ?? path.join(__dirname, '../..')
const { startNats } = require(path.join(REPO, 'servers/js/servers.js'))

const exporter = new InMemorySpanExporter()
api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
api.propagation.setGlobalPropagator(
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] })
)
const tracer = api.trace.getTracer('natsbridge-test')

let nats, nc, raw
test.before(async () => {
  nats = await startNats()
  nc = await nb.connect({ servers: nats.url, objectStore: true })
  raw = await natsConnect({ servers: nats.url })
})
test.after(async () => {
  await raw?.close()
  await nc?.close()
  await nats?.stop()
})

let n = 0
const subject = (what) => `node.trace.${what}.${++n}`
const ids = (traceparent) => {
  const [, traceId, spanId] = traceparent.split('-')
  return { traceId, spanId }
}

test('a send joins the active span and the receiver continues its trace', async () => {
  const subj = subject('join')
  const wire = raw.subscribe(subj, { max: 1 })
  await raw.flush()
  const sub = await nc.subscribe(subj)
  const blob = Buffer.alloc(1_000_000, 7)
  const caller = await tracer.startActiveSpan('caller', async (span) => {
    await nc.smartsend(subj, [['blob', blob, 'binary'], ['note', 'hi', 'text']])
    span.end()
    return span.spanContext()
  })
  let message
  for await (const m of wire) message = m
  const traceparent = message.headers.get('traceparent')
  assert.deepEqual(ids(traceparent), { traceId: caller.traceId, spanId: caller.spanId })

  const env = await sub.next({ timeout: 20000 })
  assert.ok(env.payloads[0][1].equals(blob))
  assert.deepEqual(env.trace_headers, { traceparent })
  const parent = api.propagation.extract(api.ROOT_CONTEXT, env.trace_headers)
  tracer.startSpan('process', {}, parent).end()
  const process = exporter.getFinishedSpans().find((s) => s.name === 'process' && s.spanContext().traceId === caller.traceId)
  assert.ok(process, 'the receiver span is in the caller trace')
  assert.equal(process.parentSpanContext.spanId, caller.spanId)
})

test('explicit trace headers win, and a send outside a span carries none', async () => {
  const subj = subject('explicit')
  const sub = await nc.subscribe(subj)
  const given = {
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    tracestate: 'congo=t61rcWkgMzE',
    baggage: 'tenant=acme',
  }
  await tracer.startActiveSpan('ignored', async (span) => {
    await nc.smartsend(subj, [['n', 'x', 'text']], { traceHeaders: given })
    span.end()
  })
  await nc.smartsend(subj, [['n', 'y', 'text']], { trace_headers: given })
  await nc.smartsend(subj, [['n', 'z', 'text']])
  const [a, b, c] = [await sub.next({ timeout: 10000 }), await sub.next({ timeout: 10000 }), await sub.next({ timeout: 10000 })]
  assert.deepEqual(a.trace_headers, given)
  assert.deepEqual(b.trace_headers, given)
  assert.equal(c.trace_headers, undefined)
})

test('requests and replies carry the active trace too', async () => {
  const subj = subject('request')
  const sub = await nc.subscribe(subj)
  const served = (async () => {
    const request = await sub.next({ timeout: 10000 })
    const parent = api.propagation.extract(api.ROOT_CONTEXT, request.trace_headers)
    await tracer.startActiveSpan('replier', {}, parent, async (span) => {
      await nc.reply(request, [['answer', 'yes', 'text']])
      span.end()
    })
    return request
  })()
  const caller = tracer.startSpan('requester')
  const reply = await api.context.with(api.trace.setSpan(api.context.active(), caller), () =>
    nc.request(subj, [['q', 'ok?', 'text']], { timeout: 10000 })
  )
  caller.end()
  const request = await served
  assert.equal(ids(request.trace_headers.traceparent).spanId, caller.spanContext().spanId)
  assert.equal(ids(reply.trace_headers.traceparent).traceId, caller.spanContext().traceId, 'the replier joined the trace')
})

test('malformed trace headers are INVALID_ARGUMENT on send and dropped on receive', async () => {
  const subj = subject('bad')
  for (const traceHeaders of [{ traceparent: '00-zz' }, '00-zz', { traceparent: 7 }]) {
    await assert.rejects(nc.smartsend(subj, [['n', 'x', 'text']], { traceHeaders }), (e) => {
      assert.equal(e.code, 'INVALID_ARGUMENT')
      assert.match(e.message, /trace/)
      return true
    })
  }
  const [, json] = await nc.smartsend(subject('built'), [['n', 'x', 'text']])
  const sub = await nc.subscribe(subj)
  const h = natsHeaders()
  h.set('traceparent', 'garbage')
  h.set('baggage', 'a=b')
  raw.publish(subj, json, { headers: h })
  const env = await sub.next({ timeout: 10000 })
  assert.deepEqual(env.payloads, [['n', 'x', 'text']])
  assert.equal(env.trace_headers, undefined)
})

test('metrics count per connection and are observable through the OpenTelemetry meter', async () => {
  const { MeterProvider, InMemoryMetricExporter, PeriodicExportingMetricReader, AggregationTemporality } = require('@opentelemetry/sdk-metrics')
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60000 })
  api.metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }))
  const sender = await nb.connect({ servers: nats.url })
  const receiver = await nb.connect({ servers: nats.url })
  try {
    const subj = subject('metrics')
    const sub = await receiver.subscribe(subj)
    const blob = Buffer.alloc(700_000, 3)
    const [, first] = await sender.smartsend(subj, [['n', 'x', 'text']])
    const [, second] = await sender.smartsend(subj, [['blob', blob, 'binary'], ['n', 'y', 'text']])
    for (let i = 0; i < 2; i++) await sub.next({ timeout: 20000 })
    const envelopes = Buffer.byteLength(first) + Buffer.byteLength(second)
    const sent = sender.metrics()
    assert.equal(sent.messagesSent, 2)
    assert.deepEqual(sent.payloadsSent, { direct: 2, link: 1 })
    assert.deepEqual(sent.bytesSent, { direct: envelopes, link: blob.length })
    const got = receiver.metrics()
    assert.equal(got.messagesReceived, 2)
    assert.deepEqual(got.bytesReceived, { direct: envelopes, link: blob.length })
    assert.equal(got.downloads, 1)
    assert.ok(got.downloadTimeMs > 0)

    await reader.forceFlush()
    const points = new Map()
    for (const rm of exporter.getMetrics()) {
      for (const sm of rm.scopeMetrics) {
        for (const m of sm.metrics) {
          for (const p of m.dataPoints) {
            if (p.attributes['natsbridge.sender_id'] !== receiver.senderId) continue
            points.set(`${m.descriptor.name} ${p.attributes['natsbridge.transport'] ?? ''}`, p.value)
          }
        }
      }
    }
    assert.equal(points.get('natsbridge.messages.received '), 2)
    assert.equal(points.get('natsbridge.bytes.received link'), blob.length)
    assert.equal(points.get('natsbridge.downloads '), 1)
  } finally {
    await sender.close()
    await receiver.close()
  }
})
