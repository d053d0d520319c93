'use strict'
// The package's public names against the one vocabulary (README.md "One vocabulary"): the
// options index.d.ts declares are core's option names in camelCase, one to one, and each reaches
// core under its name; the README table's Node operations exist.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const nb = require('natsbridge')

const REPO = process.env.NATSBRIDGE_REPO ?? path.join(__dirname, '../..')
const DTS = fs.readFileSync(path.join(path.dirname(require.resolve('natsbridge')), 'index.d.ts'), 'utf8')
/** Options the host keeps (functions, the Arrow output choice): not core options. */
const HOST_ONLY = ['arrow', 'fileserverUploadHandler', 'fileserverDownloadHandler']

const snake = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

/** The property names of `export interface NAME { ... }` in index.d.ts. */
function declared(name) {
  const body = DTS.match(new RegExp(`export interface ${name} \\{\\n([\\s\\S]*?)\\n\\}`))
  assert.ok(body, `index.d.ts declares ${name}`)
  return [...body[1].matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1])
}

function assertOneToOne(names, core) {
  for (const n of names) assert.match(n, /^[a-z][a-zA-Z0-9]*$/, `${n} is camelCase`)
  assert.deepEqual(names.map(snake).sort(), [...core].sort())
  assert.equal(new Set(names.map(snake)).size, names.length)
}

test('the addon exposes core option names', () => {
  assert.ok(nb.OPTION_NAMES.includes('connect_timeout') && nb.OPTION_NAMES.includes('credentials_file'))
  assert.ok(nb.SEND_OPTION_NAMES.includes('correlation_id'))
  const all = [...nb.OPTION_NAMES, ...nb.SEND_OPTION_NAMES, ...nb.STREAM_OPTION_NAMES, ...nb.CONSUME_OPTION_NAMES]
  for (const n of all) assert.match(n, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/)
})

test('ConnectOptions in index.d.ts are core option names, one to one', () => {
  const names = declared('ConnectOptions')
  for (const host of HOST_ONLY) assert.ok(names.includes(host), host)
  assertOneToOne(names.filter((n) => !HOST_ONLY.includes(n)), nb.OPTION_NAMES)
})

test('SendOptions in index.d.ts are core per-message option names, one to one', () => {
  assertOneToOne(declared('SendOptions'), nb.SEND_OPTION_NAMES)
})

test('StreamOptions and ConsumeOptions in index.d.ts are core stream and consume option names, one to one', () => {
  assertOneToOne(declared('StreamOptions'), nb.STREAM_OPTION_NAMES)
  const consume = declared('ConsumeOptions')
  assert.ok(consume.includes('arrow'))
  assertOneToOne(consume.filter((n) => n !== 'arrow'), nb.CONSUME_OPTION_NAMES)
})

test('every declared option reaches core under its name (camelCase and snake_case)', async () => {
  // A value no option takes: core names the option it checked, so the name was not unknown.
  for (const name of declared('ConnectOptions').filter((n) => !HOST_ONLY.includes(n))) {
    for (const spelling of new Set([name, snake(name)])) {
      await assert.rejects(nb.connect({ [spelling]: {} }), (e) => {
        assert.equal(e.code, 'INVALID_ARGUMENT', `${spelling}: ${e.message}`)
        assert.match(e.message, new RegExp(`option "${snake(name)}" needs`), spelling)
        return true
      })
    }
  }
  for (const name of declared('SendOptions')) {
    await assert.rejects(nb.smartsend('vocabulary.x', [['a', 'b', 'text']], { [name]: [] }), (e) => {
      assert.equal(e.code, 'INVALID_ARGUMENT', `${name}: ${e.message}`)
      assert.match(e.message, new RegExp(`option "${snake(name)}" needs`), name)
      return true
    })
  }
})

test("the README table's Node operations exist on the module, Connection, Subscription, Consumer and Delivery", () => {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## One vocabulary'))
  const rows = section.split('\n').filter((l) => l.startsWith('|'))
  const header = rows[0].split('|').map((c) => c.trim())
  const column = header.indexOf('Node / browser')
  assert.ok(column > 0, 'the table has a Node column')
  const owners = {
    nc: nb.Connection.prototype,
    sub: nb.Subscription.prototype,
    consumer: nb.Consumer.prototype,
    msg: nb.Delivery.prototype,
  }
  const seen = []
  for (const row of rows.slice(2)) {
    const cell = row.split('|')[column].trim()
    // A method named without an object after one named with it, in the same cell, is that
    // object's (`await msg.ack()`, `nak(delayMs)`); else it is the module's.
    let last
    for (const [, named, method] of cell.matchAll(/(?:\b(\w+)\.)?(\w+)\(/g)) {
      const owner = named ?? last
      last = owner
      const target = owner === undefined ? nb : owners[owner]
      assert.ok(target, `${cell}: no object named ${owner}`)
      assert.equal(typeof target[method], 'function', `${cell}: ${owner ?? 'natsbridge'}.${method}`)
      seen.push(method)
    }
  }
  const ops = ['connect', 'smartsend', 'smartreceive', 'subscribe', 'next', 'request', 'reply', 'replyError', 'flush', 'close']
  const durable = ['addStream', 'consume', 'ack', 'nak', 'inProgress', 'term', 'sweepLinks']
  for (const op of [...ops, ...durable]) {
    assert.ok(seen.includes(op), `the table names ${op}`)
  }
})
