// Compiled with `tsc --noEmit` by scripts/test.sh: index.d.ts describes the API as used here.
import { connect, smartsend, smartreceive, TEXT, OPTION_NAMES, type Envelope, type NATSBridgeError, type ErrorCode } from 'natsbridge'

async function main(): Promise<void> {
  const [env, msgJson]: [{ correlation_id: string }, string] = await smartsend('a.b', [['msg', 'hi', TEXT]], {
    sizeThreshold: 0,
    msgPurpose: 'event',
  })
  const nc = await connect({ servers: ['nats://127.0.0.1:4222'], tlsCaFile: 'ca.pem', connectTimeout: 2000, arrow: 'table' })
  // @ts-expect-error: the nested tls object is gone (tlsCaFile, tlsCertFile, tlsKeyFile)
  await connect({ tls: { caFile: 'ca.pem' } })
  const sub = await nc.subscribe('a.>', { queue: 'q' })
  const next: Envelope | null = await sub.next({ timeout: 100 })
  void next
  for await (const e of sub) {
    const first: unknown = e.payloads[0][1]
    const how: 'direct' | 'link' = e.transports[0]
    void first
    void how
  }
  const reply: Envelope = await nc.request('svc', [['q', { a: 1 }, 'dictionary']], { timeout: 100 })
  await nc.reply(reply, [['ok', true, 'dictionary']])
  await nc.replyError(reply, 'TIMEOUT', 'late')
  await nc.replyError(reply, 'INVALID_ARGUMENT', 'bad input')
  // @ts-expect-error: not an error code
  await nc.replyError(reply, 'NOPE', 'x')
  const decoded = await smartreceive(new Uint8Array(), { arrow: 'ipc' })
  try {
    await nc.close()
  } catch (e) {
    const code: ErrorCode = (e as NATSBridgeError).code
    void code
  }
  const names: readonly string[] = OPTION_NAMES
  void env, msgJson, decoded, names
}
void main

async function handlers(): Promise<void> {
  const store = new Map<string, Buffer>()
  const nc = await connect({
    fileserverUrl: 'mem://bucket',
    fileserverUploadHandler: async (server, dataname, data) => {
      store.set(dataname, data)
      return { url: `${server}/${dataname}`, status: 200 }
    },
    fileserverDownloadHandler: (url, maxRetries, baseDelayMs) =>
      store.get(url.split('/').pop() ?? '') ?? new Uint8Array(maxRetries + baseDelayMs),
  })
  await smartreceive('{}', { fileserverDownloadHandler: async () => new ArrayBuffer(0), allowedOrigins: ['mem:'], maxRetries: 2 })
  await nc.close()
}
void handlers
