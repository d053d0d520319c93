'use strict'
// tests-interop receiver: prints one JSON line per decoded message (tests-interop/README.md).
const crypto = require('node:crypto')
const nb = require('natsbridge')

const HEADER = ['correlation_id', 'msg_id', 'timestamp', 'send_to', 'msg_purpose', 'sender_name', 'sender_id',
  'receiver_name', 'receiver_id', 'reply_to', 'reply_to_msg_id', 'broker_url', 'metadata']

function shown(data, type) {
  if (type === 'arrowtable') return { rows: data }
  if (Buffer.isBuffer(data)) return { size: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex') }
  return data
}

async function main() {
  const [server, subject, count, timeout, stream, durable] = process.argv.slice(2)
  const nc = await nb.connect({ servers: server })
  // JetStream mode (STREAM DURABLE given): a durable consumer, each delivery acked.
  const sub = stream === undefined ? await nc.subscribe(subject) : await nc.consume(stream, durable)
  process.stderr.write(`ready: ${stream === undefined ? 'subscribed to' : 'consuming'} ${subject}\n`)
  for (let i = 0; i < Number(count); i++) {
    let env
    try {
      env = await sub.next({ timeout: Number(timeout) * 1000 })
      if (stream !== undefined) {
        await env.ack()
        env = env.envelope
      }
    } catch (e) {
      process.stderr.write(`error: ${e.message}\n`)
      if (e.code === 'TIMEOUT') process.exit(1)
      continue
    }
    const out = Object.fromEntries(HEADER.map((k) => [k, env[k]]))
    out.payloads = env.payloads.map(([dataname, data, type], j) => ({
      dataname, payload_type: type, transport: env.transports[j], value: shown(data, type),
    }))
    if (env.trace_headers !== undefined) out.trace_headers = env.trace_headers
    process.stdout.write(`${JSON.stringify(out)}\n`)
  }
  await nc.close()
}

main().catch((e) => {
  process.stderr.write(`error: ${e.code ?? ''} ${e.message}\n`)
  process.exit(1)
})
