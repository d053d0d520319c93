'use strict'
// exportSpans: natsbridge's own spans reach the OpenTelemetry SDK as ReadableSpans, under the
// caller's active span, with the ids the message carries. Its own file (node --test runs each
// file in its own process): once exported, spans are made for the rest of the process.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { connect: natsConnect } = require('@nats-io/transport-node')
const api = require('@opentelemetry/api')
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
const { W3CTraceContextPropagator } = require('@opentelemetry/core')
const { resourceFromAttributes } = require('@opentelemetry/resources')
const nb = require('natsbridge')
const REPO = process.env.NATSBRIDGE_REPO ?? path.join(__dirname, '../..')
const { startNats } = require(path.join(REPO, 'servers/js/servers.js'))

const exporter = new InMemorySpanExporter()
const processor = new SimpleSpanProcessor(exporter)
api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [processor] }))
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
api.propagation.setGlobalPropagator(new W3CTraceContextPropagator())

test('exportSpans: send, upload, publish, receive and download spans under the caller span', async () => {
  assert.throws(() => nb.exportSpans({}), (e) => e.code === 'INVALID_ARGUMENT')
  nb.exportSpans(processor, { resource: resourceFromAttributes({ 'service.name': 'node-test' }) })
  const nats = await startNats()
  const nc = await nb.connect({ servers: nats.url, objectStore: true })
  const raw = await natsConnect({ servers: nats.url })
  try {
    const wire = raw.subscribe('node.export', { max: 1 })
    await raw.flush()
    const sub = await nc.subscribe('node.export')
    const caller = await api.trace.getTracer('t').startActiveSpan('caller', async (span) => {
      await nc.smartsend('node.export', [['blob', Buffer.alloc(700_000, 5), 'binary']])
      span.end()
      return span.spanContext()
    })
    let message
    for await (const m of wire) message = m
    await sub.next({ timeout: 20000 })

    const names = ['send node.export', 'upload blob', 'publish node.export', 'receive node.export', 'download blob']
    let spans = []
    for (let i = 0; i < 300 && spans.length < names.length; i++) {
      spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === caller.traceId && names.includes(s.name))
      if (spans.length < names.length) await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const [send, upload, publish, receive, download] = names.map((name) => {
      const found = spans.filter((s) => s.name === name)
      assert.equal(found.length, 1, `one span ${name} among ${spans.map((s) => s.name)}`)
      return found[0]
    })
    assert.equal(send.parentSpanContext.spanId, caller.spanId)
    assert.equal(send.parentSpanContext.isRemote, true)
    assert.equal(upload.parentSpanContext.spanId, send.spanContext().spanId)
    assert.equal(publish.parentSpanContext.spanId, send.spanContext().spanId)
    const [, traceId, spanId] = message.headers.get('traceparent').split('-')
    assert.deepEqual([traceId, spanId], [caller.traceId, publish.spanContext().spanId], 'the message names the publish span')
    assert.equal(receive.parentSpanContext.spanId, publish.spanContext().spanId)
    assert.equal(download.parentSpanContext.spanId, receive.spanContext().spanId)
    assert.deepEqual(download.links.map((l) => l.context.spanId), [upload.spanContext().spanId])
    const { SpanKind } = api
    assert.deepEqual([send, upload, publish, receive, download].map((s) => s.kind),
      [SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.CLIENT])
    assert.equal(upload.attributes['natsbridge.size'], 700_000)
    assert.equal(send.resource.attributes['service.name'], 'node-test')
    assert.equal(send.instrumentationScope.name, 'natsbridge')
    assert.equal(send.status.code, api.SpanStatusCode.UNSET)
    const ns = (t) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])
    assert.ok(ns(send.startTime) <= ns(send.endTime) && ns(send.duration) === ns(send.endTime) - ns(send.startTime))
  } finally {
    await raw.close()
    await nc.close()
    await nats.stop()
  }
})
