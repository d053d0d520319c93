'use strict'
// README.md's examples run as written, against a real nats-server (NATS_URL), and print what
// the ```text block under each says.
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const REPO = process.env.NATSBRIDGE_REPO ?? path.join(__dirname, '../..')
const { startNats } = require(path.join(REPO, 'servers/js/servers.js'))

// The README that ships in the package under test.
const README = path.join(path.dirname(require.resolve('natsbridge')), 'README.md')
const blocks = [...fs.readFileSync(README, 'utf8').matchAll(/```(js|text)\n([\s\S]*?)```/g)].map((m) => [m[1], m[2]])
const examples = []
blocks.forEach(([lang, code], i) => {
  if (lang !== 'js') return
  const next = blocks[i + 1]
  examples.push({ code, expected: next && next[0] === 'text' ? next[1] : null })
})

let nats
test.before(async () => {
  nats = await startNats()
})
test.after(() => nats?.stop())

test('the README has examples', () => assert.ok(examples.length >= 3))

examples.forEach(({ code, expected }, i) => {
  test(`README example ${i + 1}`, async () => {
    // Inside the test folder, 'natsbridge' resolves to the package under test.
    const dir = fs.mkdtempSync(path.join(__dirname, '.readme-'))
    const file = path.join(dir, /^import /m.test(code) ? 'example.mjs' : 'example.js')
    fs.writeFileSync(file, code)
    try {
      const { code: rc, stdout, stderr } = await new Promise((resolve) => {
        execFile(process.execPath, [file], { timeout: 20000, env: { ...process.env, NATS_URL: nats.url } }, (err, stdout, stderr) =>
          resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr }))
      })
      assert.equal(rc, 0, stderr)
      if (expected !== null) assert.equal(stdout, expected)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
