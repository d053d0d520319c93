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
  for (const n of names) assert.match(n, /^[a-z][a-zA-Z]*$/, `${n} is camelCase`)
  assert.deepEqual(names.map(snake).sort(), [...core].sort())
  assert.equal(new Set(names.map(snake)).size, names.length)
}

test('the addon exposes core option names', () => {
  assert.ok(nb.OPTION_NAMES.includes('connect_timeout') && nb.OPTION_NAMES.includes('credentials_file'))
  assert.ok(nb.SEND_OPTION_NAMES.includes('correlation_id'))
  for (const n of [...nb.OPTION_NAMES, ...nb.SEND_OPTION_NAMES]) assert.match(n, /^[a-z]+(_[a-z]+)*$/)
})

test('ConnectOptions in index.d.ts are core option names, one to one', () => {
  const names = declared('ConnectOptions')
  for (const host of HOST_ONLY) assert.ok(names.includes(host), host)
  assertOneToOne(names.filter((n) => !HOST_ONLY.includes(n)), nb.OPTION_NAMES)
})

test('SendOptions in index.d.ts are core per-message option names, one to one', () => {
  assertOneToOne(declared('SendOptions'), nb.SEND_OPTION_NAMES)
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

test("the README table's Node operations exist on the module, Connection and Subscription", () => {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## One vocabulary'))
  const rows = section.split('\n').filter((l) => l.startsWith('|'))
  const header = rows[0].split('|').map((c) => c.trim())
  const column = header.indexOf('Node / browser')
  assert.ok(column > 0, 'the table has a Node column')
  const owners = { nc: nb.Connection.prototype, sub: nb.Subscription.prototype }
  const seen = []
  for (const row of rows.slice(2)) {
    const cell = row.split('|')[column].trim()
    for (const [, owner, method] of cell.matchAll(/(?:\b(\w+)\.)?(\w+)\(/g)) {
      const target = owner === undefined ? nb : owners[owner]
      assert.ok(target, `${cell}: no object named ${owner}`)
      assert.equal(typeof target[method], 'function', `${cell}: ${owner ?? 'natsbridge'}.${method}`)
      seen.push(method)
    }
  }
  for (const op of ['connect', 'smartsend', 'smartreceive', 'subscribe', 'next', 'request', 'reply', 'replyError', 'flush', 'close']) {
    assert.ok(seen.includes(op), `the table names ${op}`)
  }
})
