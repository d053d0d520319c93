'use strict'
// spec/vectors: every golden envelope decodes to its expected values, every bad one fails with
// exactly its code. No server needed: direct payloads decode without a connection.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const nb = require('natsbridge')
const REPO = process.env.NATSBRIDGE_REPO ?? path.join(__dirname, '../..')
const { startNats } = require(path.join(REPO, 'servers/js/servers.js'))

const DIR = path.join(REPO, 'spec/vectors')
const vectors = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()

function message(v) {
  if ('raw' in v) return Buffer.from(v.raw, 'utf8')
  if ('raw_base64' in v) return Buffer.from(v.raw_base64, 'base64')
  return Buffer.from(JSON.stringify(v.envelope), 'utf8')
}

function expected(p, got) {
  const want = p.value
  if (['image', 'audio', 'video', 'binary'].includes(p.payload_type)) {
    assert.ok(Buffer.isBuffer(got), `${p.dataname} is a Buffer`)
    if ('base64' in want) assert.equal(got.toString('base64'), want.base64)
    else assert.deepEqual({ size: got.length, sha256: crypto.createHash('sha256').update(got).digest('hex') }, want)
  } else if (p.payload_type === 'arrowtable') {
    assert.deepEqual(got, want.rows)
  } else {
    assert.deepEqual(got, want)
  }
}

let nats
let conn
test.before(async () => {
  nats = await startNats()
  conn = await nb.connect({ servers: nats.url })
})
test.after(async () => {
  await conn?.close()
  await nats?.stop()
})

test('there are golden vectors', () => assert.ok(vectors.length > 50, `${vectors.length} vectors`))

for (const file of vectors) {
  const v = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'))
  const hasLink = (v.expect.payloads ?? []).some((p) => p.transport === 'link')
  test(`vector ${file}`, async () => {
    if (v.expect.error) {
      await assert.rejects(nb.smartreceive(message(v)), (e) => e instanceof Error && e.code === v.expect.error)
      return
    }
    if (hasLink) {
      // Links need a connection's stores. Its object store serves nats-obj:// (the vector's
      // object does not exist there); no store serves the others: refused, no request made.
      const url = v.expect.payloads.find((p) => p.transport === 'link').value.url
      const code = url.startsWith('nats-obj://') ? 'DOWNLOAD_FAILED' : 'URL_NOT_ALLOWED'
      await assert.rejects(nb.smartreceive(message(v), { connection: conn }), { code })
      return
    }
    const env = await nb.smartreceive(message(v))
    assert.equal(env.correlation_id, v.envelope.correlation_id ?? '')
    assert.equal(env.payloads.length, v.expect.payloads.length)
    v.expect.payloads.forEach((p, i) => {
      assert.equal(env.payloads[i][0], p.dataname)
      assert.equal(env.payloads[i][2], p.payload_type)
      assert.equal(env.transports[i], p.transport)
      expected(p, env.payloads[i][1])
    })
    if (v.expect.error_reply) {
      assert.deepEqual(env.error, v.envelope.error)
      const code = nb.ERROR_CODES.includes(env.error.code) ? env.error.code : 'INVALID_ENVELOPE'
      assert.equal(code, v.expect.error_reply)
    }
  })
}
