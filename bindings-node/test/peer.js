'use strict'
// A hand-written seeds-style peer: nats.js + JSON + Buffer base64, no natsbridge code at all.
// It builds and reads envelopes exactly as the seeds' walkthrough describes (direct transport,
// standard padded base64, payload_bytes in metadata). Used by the tests and by bench/node.
const { randomUUID } = require('node:crypto')

function serialize(data, type) {
  if (type === 'text') return Buffer.from(data, 'utf8')
  if (type === 'dictionary' || type === 'jsontable') return Buffer.from(JSON.stringify(data), 'utf8')
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength) // bytes, arrowtable IPC
}

function deserialize(raw, type) {
  if (type === 'text') return raw.toString('utf8')
  if (type === 'dictionary' || type === 'jsontable') return JSON.parse(raw.toString('utf8'))
  return raw
}

function envelope(subject, payloads, brokerUrl = 'nats://localhost:4222') {
  return {
    correlation_id: randomUUID(),
    msg_id: randomUUID(),
    timestamp: new Date().toISOString(),
    send_to: subject,
    msg_purpose: 'chat',
    sender_name: 'node-peer',
    sender_id: randomUUID(),
    receiver_name: '',
    receiver_id: '',
    reply_to: '',
    reply_to_msg_id: '',
    broker_url: brokerUrl,
    metadata: {},
    payloads: payloads.map(([dataname, data, type]) => {
      const raw = serialize(data, type)
      return {
        id: randomUUID(),
        dataname,
        payload_type: type,
        transport: 'direct',
        encoding: 'base64',
        size: raw.length,
        data: raw.toString('base64'),
        metadata: { payload_bytes: raw.length },
      }
    }),
  }
}

/** The JSON text of an envelope carrying `payloads` ([dataname, data, type] items). */
function encode(subject, payloads, brokerUrl) {
  return JSON.stringify(envelope(subject, payloads, brokerUrl))
}

/** A received message (bytes) as the envelope with payloads as [dataname, data, type]. */
function decode(bytes) {
  const env = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  env.payloads = env.payloads.map((p) => {
    if (p.transport !== 'direct') throw new Error(`the peer reads direct payloads only, not ${p.transport}`)
    const raw = Buffer.from(p.data, 'base64')
    if (raw.length !== p.size) throw new Error(`size mismatch: ${raw.length} != ${p.size}`)
    return [p.dataname, deserialize(raw, p.payload_type), p.payload_type]
  })
  return env
}

module.exports = { encode, decode, envelope }
