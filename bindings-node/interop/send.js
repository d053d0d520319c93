'use strict'
// tests-interop sender: one message per run from a send spec (tests-interop/README.md).
const fs = require('node:fs')
const nb = require('natsbridge')

function value(p) {
  if (['image', 'audio', 'video', 'binary'].includes(p.payload_type)) return fs.readFileSync(p.file)
  if (p.payload_type === 'arrowtable') return p.input.rows // row objects: the core builds the table
  return p.input
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
  // JetStream mode: a durable publish, confirmed by the stream's PubAck.
  const nc = await nb.connect({ servers: spec.server, jetstream: spec.jetstream ?? false })
  await nc.smartsend(spec.subject, spec.payloads.map((p) => [p.dataname, value(p), p.payload_type]), {
    sizeThreshold: spec.threshold,
    traceHeaders: spec.trace_headers,
  })
  await nc.close() // writes out the message first
}

main().catch((e) => {
  console.error(`error: ${e.code ?? ''} ${e.message}`)
  process.exit(1)
})
