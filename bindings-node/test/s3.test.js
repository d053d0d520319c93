'use strict'
// The S3 link store from Node against the real s3s-fs: links with credentials from options, from
// an AWS profile and presigned, the TTL, wrong credentials, and a receiver without the store.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const nb = require('natsbridge')
const REPO = process.env.NATSBRIDGE_REPO ?? path.join(__dirname, '../..')
const { startNats, startS3, freePort } = require(path.join(REPO, 'servers/js/servers.js'))

let nats, s3
test.before(async () => {
  ;[nats, s3] = await Promise.all([startNats(), startS3()])
})
test.after(async () => {
  await nb.close()
  await Promise.all([nats?.stop(), s3?.stop()])
})

let n = 0
const subject = (what) => `node.test.s3.${what}.${++n}`
// Over the server's max_payload (1 MB) even as raw bytes: a link that may not fall back to direct.
const blob = Buffer.from(Array.from({ length: 1_100_000 }, (_, i) => (i * 13) % 251))
const credentials = (more) => ({
  servers: nats.url, objectStore: false, s3Endpoint: s3.endpoint, s3AccessKeyId: s3.accessKeyId,
  s3SecretAccessKey: s3.secretAccessKey, ...more,
})

/** The object key an s3:// link names, checked to be in the store's bucket and prefix. */
function keyOf(url, prefix) {
  assert.ok(url.startsWith(`s3://${s3.bucket}/${prefix}/`), url)
  return decodeURIComponent(url.slice(`s3://${s3.bucket}/`.length))
}

async function sendAndReceive(sender, receiver, payloads) {
  const subj = subject('x')
  const sub = await receiver.subscribe(subj)
  await receiver.flush()
  const [env] = await sender.smartsend(subj, payloads)
  return [env, await sub.next({ timeout: 20000 })]
}

async function using(connections, body) {
  try {
    return await body(...connections)
  } finally {
    await Promise.all(connections.map((c) => c.close()))
  }
}

test('an S3 link carries the exact bytes between two connections', async () => {
  const opts = credentials({ fileserverUrl: s3.url('node') })
  const [env, got] = await using([await nb.connect(opts), await nb.connect(opts)], (tx, rx) =>
    sendAndReceive(tx, rx, [['big file', blob, 'binary'], ['note', 'small', 'text']]))
  assert.deepEqual(env.payloads.map((p) => p.transport), ['link', 'direct'])
  const key = keyOf(env.payloads[0].data, 'node')
  assert.ok(key.endsWith('/big file'), key)
  // The server holds exactly the bytes sent, at the key the link names.
  assert.ok(fs.readFileSync(path.join(s3.bucketDir, key)).equals(blob))
  assert.deepEqual(got.transports, ['link', 'direct'])
  assert.ok(Buffer.from(got.payloads[0][1]).equals(blob))
  assert.equal(got.payloads[1][1], 'small')
})

test('credentials and endpoint come from an AWS profile', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natsbridge-aws-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'credentials'),
    `[nb-node]\naws_access_key_id = ${s3.accessKeyId}\naws_secret_access_key = ${s3.secretAccessKey}\n`)
  fs.writeFileSync(path.join(dir, 'config'), `[profile nb-node]\nregion = eu-west-3\nendpoint_url = ${s3.endpoint}\n`)
  // Set and unset through process.env, which changes the process environment core reads.
  const names = ['AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY',
    'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3']
  const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]))
  t.after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  })
  for (const name of names) delete process.env[name]
  process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(dir, 'credentials')
  process.env.AWS_CONFIG_FILE = path.join(dir, 'config')
  const conn = await nb.connect({ servers: nats.url, objectStore: false, fileserverUrl: s3.url('profile'), s3Profile: 'nb-node' })
  const [env, got] = await using([conn], async (c) => {
    const [sent, json] = await c.smartsend(subject('profile'), [['blob', blob, 'image']])
    return [sent, await c.smartreceive(json)]
  })
  assert.ok(fs.readFileSync(path.join(s3.bucketDir, keyOf(env.payloads[0].data, 'profile'))).equals(blob))
  assert.ok(Buffer.from(got.payloads[0][1]).equals(blob))
})

test('a presigned link is fetched by a receiver without credentials', async () => {
  const tx = await nb.connect(credentials({ fileserverUrl: s3.url('signed'), s3Presign: true, s3Ttl: 600_000 }))
  const rx = await nb.connect({ servers: nats.url, objectStore: false, allowedOrigins: [`${s3.endpoint}/${s3.bucket}/signed`] })
  const [env, got] = await using([tx, rx], (a, b) => sendAndReceive(a, b, [['blob', blob, 'binary']]))
  const link = env.payloads[0].data
  assert.ok(link.startsWith(`${s3.endpoint}/${s3.bucket}/signed/`), link)
  assert.match(link, /X-Amz-Signature=/)
  assert.match(link, /X-Amz-Expires=600(&|$)/)
  assert.ok(Buffer.from(got.payloads[0][1]).equals(blob))
})

test('a receiver without the store is refused the link', async () => {
  const tx = await nb.connect(credentials({ fileserverUrl: s3.url('node') }))
  const stranger = await nb.connect({ servers: nats.url, objectStore: false })
  await using([tx, stranger], async (a, b) => {
    const [, json] = await a.smartsend(subject('stranger'), [['blob', blob, 'binary']])
    await assert.rejects(b.smartreceive(json), { code: 'URL_NOT_ALLOWED' })
  })
})

test('a link past its TTL is DOWNLOAD_FAILED, with the correlation id', async () => {
  const conn = await nb.connect(credentials({ fileserverUrl: s3.url('ttl'), s3Ttl: 1000 }))
  await using([conn], async (c) => {
    const [env, json] = await c.smartsend(subject('ttl'), [['blob', blob, 'binary']])
    assert.ok(Buffer.from((await c.smartreceive(json)).payloads[0][1]).equals(blob))
    await new Promise((r) => setTimeout(r, 2200))
    await assert.rejects(c.smartreceive(json), (e) => {
      assert.equal(e.code, 'DOWNLOAD_FAILED')
      assert.match(e.message, /expired/)
      assert.equal(e.correlationId, env.correlation_id)
      return true
    })
  })
})

test('wrong credentials are UPLOAD_FAILED and nothing is published', async () => {
  const rx = await nb.connect(credentials({ fileserverUrl: s3.url('node') }))
  const tx = await nb.connect(credentials({ fileserverUrl: s3.url('node'), s3SecretAccessKey: 'not-the-secret' }))
  await using([rx, tx], async (r, t) => {
    const subj = subject('wrong')
    const sub = await r.subscribe(subj)
    await r.flush()
    await assert.rejects(t.smartsend(subj, [['blob', blob, 'binary']]), { code: 'UPLOAD_FAILED' })
    await assert.rejects(sub.next({ timeout: 500 }), { code: 'TIMEOUT' })
  })
})

test('bad S3 options are INVALID_ARGUMENT before connecting', async () => {
  const dead = `nats://127.0.0.1:${await freePort()}`
  for (const [opts, why] of [
    [{ s3AddressingStyle: 'sideways' }, /s3_addressing_style/],
    [{ s3Ttl: -1 }, /s3_ttl/],
    [{ fileserverUrl: 's3://' }, /bucket/],
  ]) {
    await assert.rejects(nb.connect({ servers: dead, ...opts }), (e) => {
      assert.equal(e.code, 'INVALID_ARGUMENT', `${JSON.stringify(opts)}: ${e.message}`)
      assert.match(e.message, why)
      return true
    })
  }
})
