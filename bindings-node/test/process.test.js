'use strict'
// The package as a program uses it: CommonJS and ESM imports, and processes that end on their
// own (nothing the addon holds keeps the event loop alive) without losing what they sent.
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const path = require('node:path')
const { connect: natsConnect } = require('@nats-io/transport-node')
const REPO = process.env.NATSBRIDGE_REPO ?? path.join(__dirname, '../..')
const { startNats } = require(path.join(REPO, 'servers/js/servers.js'))

// The package under test: this folder (self-reference), or the installed tarball's copy.
const PKG = path.dirname(require.resolve('natsbridge'))

function run(args, env = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 15000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr })
    })
  })
}

let nats
test.before(async () => {
  nats = await startNats()
})
test.after(() => nats?.stop())

const DIRECT = JSON.stringify({
  correlation_id: 'c', payloads: [{ dataname: 'm', payload_type: 'text', transport: 'direct', size: 2, data: 'aGk=' }],
})

test('CommonJS require', async () => {
  const js = `const nb = require(${JSON.stringify(PKG)});
    nb.smartreceive(Buffer.from(process.argv[1])).then((e) => console.log(e.payloads[0][1], nb.TEXT, typeof nb.connect))`
  const r = await run(['-e', js, DIRECT])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'hi text function')
})

test('ESM import, named and default', async () => {
  const url = require('node:url').pathToFileURL(path.join(PKG, 'index.mjs')).href
  const js = `import nb, { smartreceive, ERROR_CODES } from ${JSON.stringify(url)};
    const e = await smartreceive(new TextEncoder().encode(process.argv[1]));
    console.log(e.payloads[0][1], ERROR_CODES.length, nb.smartreceive === smartreceive)`
  const r = await run(['--input-type=module', '-e', js, DIRECT])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'hi 12 true')
})

async function expectDelivered(subject, script) {
  const raw = await natsConnect({ servers: nats.url })
  try {
    const sub = raw.subscribe(subject, { max: 1, timeout: 10000 })
    await raw.flush()
    const started = Date.now()
    const r = await run(['-e', script, nats.url, subject])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(Date.now() - started < 10000, 'the process ended on its own')
    const got = []
    for await (const m of sub) got.push(JSON.parse(m.string()).payloads[0].dataname)
    return got
  } finally {
    await raw.close()
  }
}

test('a script that connects, subscribes, sends and closes ends by itself', async () => {
  const js = `const nb = require(${JSON.stringify(PKG)});
    (async () => {
      const nc = await nb.connect({ servers: process.argv[1] });
      const sub = await nc.subscribe(process.argv[2]);
      await nc.smartsend(process.argv[2], [['closed', 'x', 'text']]);
      for await (const env of sub) { console.log(env.payloads[0][0]); break }
      await nc.close();
    })()`
  assert.deepEqual(await expectDelivered('proc.closed', js), ['closed'])
})

test('a script that never closes still delivers what it sent, and ends', async () => {
  const js = `const nb = require(${JSON.stringify(PKG)});
    nb.connect({ servers: process.argv[1] }).then((nc) => nc.smartsend(process.argv[2], [['open', 'x', 'text']]))`
  assert.deepEqual(await expectDelivered('proc.open', js), ['open'])
})

test('the one-call style delivers and ends without close()', async () => {
  const js = `const nb = require(${JSON.stringify(PKG)});
    nb.smartsend(process.argv[2], [['onecall', 'x', 'text']], { brokerUrl: process.argv[1] })`
  assert.deepEqual(await expectDelivered('proc.onecall', js), ['onecall'])
})

test('handlers given to connect() do not keep the process alive', async () => {
  const js = `const nb = require(${JSON.stringify(PKG)});
    (async () => {
      const nc = await nb.connect({ servers: process.argv[1], fileserverUploadHandler: async () => ({ url: 'x://y' }),
        fileserverDownloadHandler: async () => new Uint8Array(), allowedOrigins: ['x:'] });
      await nc.smartsend(process.argv[2], [['handlers', 'x', 'text']]);
    })()`
  assert.deepEqual(await expectDelivered('proc.handlers', js), ['handlers'])
})
