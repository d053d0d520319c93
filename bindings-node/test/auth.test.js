'use strict'
// Authentication against real nats-servers: an nkey seed (the pair made here by @nats-io/nkeys,
// what nats.js signs with), a .creds file (decentralized JWT auth made by nsc) and TLS with a CA
// and a client certificate (made here with node:crypto keys and node-forge certificates). Each
// good, and bad with its error code.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { createUser } = require('@nats-io/nkeys')
const forge = require('node-forge')
const nb = require('natsbridge')
const REPO = process.env.NATSBRIDGE_REPO ?? path.join(__dirname, '../..')
const { startNats, jwtAuth } = require(path.join(REPO, 'servers/js/servers.js'))

// A refused connection gives up at once, within a bound.
const once = { connectTimeout: 3000, maxReconnectAttempts: 0 }
let n = 0

async function roundTrip(options) {
  const c = await nb.connect({ ...options, ...once })
  try {
    const subj = `node.auth.${process.pid}.${++n}`
    const sub = await c.subscribe(subj)
    await c.smartsend(subj, [['m', 'authenticated', 'text']])
    const env = await sub.next({ timeout: 10000 })
    assert.deepEqual(env.payloads, [['m', 'authenticated', 'text']])
  } finally {
    await c.close()
  }
}

async function refused(options, code, message) {
  await assert.rejects(nb.connect({ ...options, ...once }), (e) => {
    assert.equal(e.code, code, e.message)
    assert.match(e.message, message)
    return true
  })
}

const seed = (kp) => new TextDecoder().decode(kp.getSeed())

test('nkey: the seed of the user the server knows connects; another seed, or none, is refused', async () => {
  const user = createUser()
  const server = await startNats({ config: `authorization { users: [ { nkey: "${user.getPublicKey()}" } ] }` })
  try {
    await roundTrip({ servers: server.url, nkey: seed(user) })
    // A valid seed of another user: the server's nonce is signed, but not by the key it knows.
    await refused({ servers: server.url, nkey: seed(createUser()) }, 'NATS_CONNECTION_FAILED', /authorization violation/)
    await refused({ servers: server.url }, 'NATS_CONNECTION_FAILED', /authorization violation/)
    // Not a seed (a public key): refused before connecting.
    await refused({ servers: server.url, nkey: user.getPublicKey() }, 'INVALID_ARGUMENT', /not an nkey seed/)
  } finally {
    await server.stop()
  }
})

test('creds file: a user of the trusted operator connects; another operator\'s user, none, or a missing file is refused', async () => {
  const jwt = jwtAuth()
  const server = await startNats({ config: jwt.config })
  try {
    await roundTrip({ servers: server.url, credentialsFile: jwt.creds })
    await refused({ servers: server.url, credentials_file: jwt.creds.replace(/[^/]*$/, 'missing.creds') },
      'INVALID_ARGUMENT', /missing\.creds/) // a configuration mistake, found before connecting
    // Its JWT does not chain to the operator the server trusts.
    await refused({ servers: server.url, credentialsFile: jwt.foreignCreds }, 'NATS_CONNECTION_FAILED', /authorization violation/)
    await refused({ servers: server.url }, 'NATS_CONNECTION_FAILED', /authorization violation/)
  } finally {
    await server.stop()
    jwt.remove()
  }
})

/** A certificate for `publicKey` named `cn` (and `altNames`), signed by `issuer` (self-signed: a CA). */
function certificate(cn, keys, issuer, altNames) {
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKey)
  cert.serialNumber = crypto.randomBytes(8).toString('hex').replace(/^[89a-f]/, '1') // positive
  cert.validity.notBefore = new Date(Date.now() - 60_000)
  cert.validity.notAfter = new Date(Date.now() + 86_400_000)
  cert.setSubject([{ name: 'commonName', value: cn }])
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : cert.subject.attributes)
  cert.setExtensions(issuer
    ? [{ name: 'subjectAltName', altNames }, { name: 'extKeyUsage', serverAuth: true, clientAuth: true }]
    : [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }])
  cert.sign(forge.pki.privateKeyFromPem((issuer?.keys ?? keys).privateKey), forge.md.sha256.create())
  return { cert, keys }
}

/** PEM files in a temp dir: ca, server, server-key, cert + key (a client's), other-ca. */
function pki() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natsbridge-pki-'))
  const rsa = () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  const ca = certificate('natsbridge test CA', rsa())
  const server = certificate('127.0.0.1', rsa(), ca, [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }])
  const client = certificate('client', rsa(), ca, [{ type: 2, value: 'client.natsbridge.test' }])
  const other = certificate('another CA', rsa())
  const files = { ca: ca.cert, server: server.cert, cert: client.cert, 'other-ca': other.cert }
  const paths = { dir }
  for (const [name, cert] of Object.entries(files)) {
    paths[name] = path.join(dir, `${name}.pem`)
    fs.writeFileSync(paths[name], forge.pki.certificateToPem(cert))
  }
  paths['server-key'] = path.join(dir, 'server-key.pem')
  fs.writeFileSync(paths['server-key'], server.keys.privateKey)
  paths.key = path.join(dir, 'key.pem')
  fs.writeFileSync(paths.key, client.keys.privateKey)
  return paths
}

test('TLS: our CA and a client certificate connect; another CA, or no client certificate, is refused', async () => {
  const pem = pki()
  const server = await startNats({
    config: `tls { cert_file: "${pem.server}", key_file: "${pem['server-key']}", ca_file: "${pem.ca}", verify: true, timeout: 2 }`,
  })
  const url = server.url.replace('nats://', 'tls://')
  const client = { tlsCertFile: pem.cert, tlsKeyFile: pem.key, tlsRequired: true }
  try {
    await roundTrip({ servers: url, tlsCaFile: pem.ca, ...client })
    // snake_case spellings reach core too.
    await roundTrip({ servers: url, tls_ca_file: pem.ca, tls_cert_file: pem.cert, tls_key_file: pem.key, tls_required: true })
    // The server's certificate is signed by a CA we do not trust.
    await refused({ servers: url, tlsCaFile: pem['other-ca'], ...client }, 'NATS_CONNECTION_FAILED', /cannot connect/)
    // The server requires a client certificate.
    await refused({ servers: url, tlsCaFile: pem.ca, tlsRequired: true }, 'NATS_CONNECTION_FAILED', /cannot connect/)
  } finally {
    await server.stop()
    fs.rmSync(pem.dir, { recursive: true, force: true })
  }
})
