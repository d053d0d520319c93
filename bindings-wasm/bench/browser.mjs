// Browser benchmark (not a test): natsbridge-wasm against a hand-written nats.js + JSON + base64
// peer of the seeds in the same page, and the raw-publish floor, through a real nats-server
// websocket listener on loopback. Prints one table.
//   node bench/browser.mjs [messages=5000]

import { startBrowser, startNats, startWeb } from "../tests/harness.mjs";

const count = Number(process.argv[2] ?? 5000);
const nats = await startNats();
const web = await startWeb();
const browser = await startBrowser(web.origin);
try {
  const result = await browser.page.evaluate(async ({ ws, count }) => {
    const conn = await nb.connect({ servers: ws });
    const nc = conn.nc;
    const text = "x".repeat(100);
    const big = new Uint8Array(600_000).map((_, i) => (i * 7) % 251);

    // The seeds' JavaScript, hand-written: envelope by hand, base64 via btoa, JSON.parse on receive.
    const b64 = (bytes) => {
      let s = "";
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return btoa(s);
    };
    const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const peerEnvelope = (subject, name, bytes, type) => JSON.stringify({
      correlation_id: crypto.randomUUID(), msg_id: crypto.randomUUID(), timestamp: new Date().toISOString(),
      send_to: subject, msg_purpose: "chat", sender_name: "", sender_id: crypto.randomUUID(), receiver_name: "",
      receiver_id: "", reply_to: "", reply_to_msg_id: "", broker_url: ws, metadata: {},
      payloads: [{ id: crypto.randomUUID(), dataname: name, payload_type: type, transport: "direct", encoding: "base64",
        size: bytes.length, data: b64(bytes), metadata: { payload_bytes: bytes.length } }],
    });
    const peerDecode = (data) => {
      const env = JSON.parse(dec.decode(data));
      env.payloads = env.payloads.map((p) => [p.dataname, unb64(p.data), p.payload_type]);
      return env;
    };

    const time = async (fn, n) => {
      const t0 = performance.now();
      await fn(n);
      return performance.now() - t0;
    };
    /** Publishes n messages with `send` while one subscription decodes them with `decode`. */
    const endToEnd = async (subject, send, decode, n) => {
      const sub = nc.subscribe(subject, { max: n });
      await nc.flush();
      const got = (async () => {
        for await (const m of sub) await decode(m);
      })();
      const ms = await time(async () => {
        for (let i = 0; i < n; i++) await send(i);
        await got;
      }, n);
      return Math.round((n / ms) * 1000);
    };

    const out = {};
    out["100 B text, end to end, msgs/s"] = {
      natsbridge: await endToEnd("b.nb", () => conn.smartsend("b.nb", [["t", text, "text"]]), (m) => conn.smartreceive(m), count),
      peer: await endToEnd("b.peer", () => nc.publish("b.peer", peerEnvelope("b.peer", "t", enc.encode(text), "text")),
        (m) => peerDecode(m.data), count),
      raw: await endToEnd("b.raw", () => nc.publish("b.raw", text), (m) => m.data, count),
    };
    const rounds = 20;
    const perOp = async (fn) => ((await time(async () => { for (let i = 0; i < rounds; i++) await fn(); })) / rounds).toFixed(1);
    const [, nbJson] = await conn.smartsend("b.void", [["b", big, "binary"]], { sizeThreshold: 2_000_000 });
    const peerJson = peerEnvelope("b.void", "b", big, "binary");
    out["600 KB binary direct, ms encode+decode"] = {
      natsbridge: await perOp(async () => {
        const [, json] = await conn.smartsend("b.void", [["b", big, "binary"]], { sizeThreshold: 2_000_000 });
        await conn.smartreceive(json);
      }),
      peer: await perOp(async () => peerDecode(enc.encode(peerEnvelope("b.void", "b", big, "binary")))),
    };
    out["envelope bytes for 600 KB"] = { natsbridge: nbJson.length, peer: peerJson.length };
    const t0 = performance.now();
    const [sent] = await conn.smartsend("b.void", [["b", new Uint8Array(20_000_000).fill(3), "binary"]], { sizeThreshold: 0 });
    const put = performance.now() - t0;
    const t1 = performance.now();
    await conn.smartreceive(JSON.stringify(sent));
    const get = performance.now() - t1;
    out["20 MB link via object store, MB/s"] = { put: Math.round(20 / (put / 1000)), get: Math.round(20 / (get / 1000)) };
    await conn.close();
    return out;
  }, { ws: nats.wsUrl, count });
  console.log(`chromium, nats-server websocket on loopback, ${count} messages`);
  for (const [what, row] of Object.entries(result)) {
    console.log(`${what.padEnd(38)} ${Object.entries(row).map(([k, v]) => `${k} ${v}`).join("   ")}`);
  }
} finally {
  await browser.close();
  await web.close();
  await nats.close();
}
