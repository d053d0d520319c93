// Compiled with `tsc --noEmit` by scripts/test.sh: index.d.ts describes the API as used here.
import {
  connect, smartsend, smartreceive, TEXT, OPTION_NAMES, CONSUME_OPTION_NAMES, LinkStream,
  type Envelope, type NATSBridgeError, type ErrorCode, type Delivery, type PubAck, type StreamSummary, type SizedStream,
} from 'natsbridge'

async function main(): Promise<void> {
  const [env, msgJson]: [{ correlation_id: string }, string] = await smartsend('a.b', [['msg', 'hi', TEXT]], {
    sizeThreshold: 0,
    msgPurpose: 'event',
  })
  const scan: SizedStream = { stream: process.stdin, size: 1024 }
  await smartsend('a.b', [['scan', scan, 'binary']])
  const nc = await connect({ servers: ['nats://127.0.0.1:4222'], tlsCaFile: 'ca.pem', connectTimeout: 2000, arrow: 'table' })
  // @ts-expect-error: the nested tls object is gone (tlsCaFile, tlsCertFile, tlsKeyFile)
  await connect({ tls: { caFile: 'ca.pem' } })
  const sub = await nc.subscribe('a.>', { queue: 'q' })
  const next: Envelope | null = await sub.next({ timeout: 100 })
  void next
  const streamed = await sub.nextStreamed({ timeout: 100 })
  const link = streamed?.payloads[0][1]
  if (link instanceof LinkStream) {
    const written: number = await link.save('/tmp/x.bin')
    const digest: string | null = link.sha256
    link.pipe(process.stdout)
    void [written, digest, link.dataname, link.size]
  }
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

async function durable(): Promise<void> {
  const nc = await connect({ jetstream: true, objectStoreReplicas: 1 })
  const summary: StreamSummary = await nc.addStream('ORDERS', { storage: 'memory', maxAge: 60_000, retention: 'workqueue' })
  // @ts-expect-error: not a retention policy
  await nc.addStream('ORDERS', { retention: 'queue' })
  const [env] = await nc.smartsend('ORDERS.new', [['order', { id: 7 }, 'dictionary']])
  const ack: PubAck | undefined = env.pub_ack
  const consumer = await nc.consume('ORDERS', 'billing', { ackWait: 30_000, maxDeliver: 5, backoff: [1000], deliverFrom: 'new' })
  const one: Delivery | null = await consumer.next({ timeout: 100 })
  const two: Delivery | null = await consumer.next(100)
  const maxAge: number = summary.max_age_ms
  for await (const msg of consumer) {
    const seq: number = msg.info.stream_sequence
    const again: boolean = msg.info.redelivered
    const data: unknown = msg.envelope.payloads[0][1]
    await msg.inProgress()
    if (again) await msg.nak(500)
    else await msg.ack()
    void seq, data
  }
  await consumer.close()
  const report = await nc.sweepLinks('ORDERS', { dryRun: false, minAge: 0 })
  const age: number | undefined = report.orphans[0]?.age_ms
  const names: readonly string[] = CONSUME_OPTION_NAMES
  void summary, ack, one, two, maxAge, age, names
}
void durable
