// Browser benchmark (not a test): natsbridge-wasm against a hand-written nats.js + JSON + base64
// peer of the seeds in the same page, and the raw-publish floor, through a real nats-server
// websocket listener on loopback. Prints one table. The 100-byte rows run after one warm-up round
// of each.
//   node bench/browser.mjs [messages=5000] [--plain]
// --plain: Chromium runs the page by itself, with no DevTools client attached. Under playwright
// (the default, as the tests run) DevTools reports every WebSocket frame with its payload to the
// driver, which costs the page, the browser process and node CPU per frame and per byte.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CHROMIUM_ARGS, startBrowser, startNats, startWeb } from "../tests/harness.mjs";

const args = process.argv.slice(2);
const plain = args.includes("--plain");
const count = Number(args.find((a) => !a.startsWith("--")) ?? 5000);

/** The benchmark, run in the page (`nb`: the bundle). */
const bench = async ({ ws, count }) => {
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
  /** Publishes n messages with `send` while one nats.js subscription decodes them with `decode`. */
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

  /** Awaited smartsends while the binding's own subscription yields the decoded envelopes. */
  const nbEndToEnd = async (subject, n) => {
    const sub = await conn.subscribe(subject);
    const got = (async () => {
      let k = 0;
      for await (const env of sub) {
        if (env.payloads[0][1].length !== 100) throw new Error("bad payload");
        if (++k === n) break;
      }
    })();
    const ms = await time(async () => {
      for (let i = 0; i < n; i++) await conn.smartsend(subject, [["t", text, "text"]]);
      await got;
    }, n);
    return Math.round((n / ms) * 1000);
  };

  const rows = {
    natsbridge: (n, tag) => nbEndToEnd(`b.nb${tag}`, n),
    peer: (n, tag) => endToEnd(`b.peer${tag}`, () => nc.publish(`b.peer${tag}`, peerEnvelope(`b.peer${tag}`, "t", enc.encode(text), "text")),
      (m) => peerDecode(m.data), n),
    raw: (n, tag) => endToEnd(`b.raw${tag}`, () => nc.publish(`b.raw${tag}`, text), (m) => m.data, n),
  };
  // A warm-up round of each first (JIT tiers, the WASM core's optimized tier), not counted.
  for (const run of Object.values(rows)) await run(Math.min(count, 2000), ".warm");
  const out = {};
  out["100 B text, end to end, msgs/s"] = {};
  for (const [name, run] of Object.entries(rows)) out["100 B text, end to end, msgs/s"][name] = await run(count, "");
  // The same sends, each message decoded by smartreceive from a nats.js subscription (the
  // natsbridge row measured before it went through the binding's own subscription).
  out["  same, smartreceive per nats.js msg"] = {
    natsbridge: await endToEnd("b.nb2", () => conn.smartsend("b.nb2", [["t", text, "text"]]), (m) => conn.smartreceive(m), count),
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
};

/** Runs `bench` in a page that Chromium loads by itself (no DevTools client); the page PUTs its
 * result into the web server's store. */
async function runPlain(web, dir, input) {
  const profile = path.join(dir, "profile");
  fs.writeFileSync(path.join(dir, "bench.html"), `<!doctype html>
<meta charset="utf-8">
<script type="module">
  let result;
  try {
    window.nb = await import("/dist/natsbridge.js");
    await nb.init();
    result = { ok: await (${bench.toString()})(${JSON.stringify(input)}) };
  } catch (e) {
    result = { error: String(e && e.stack || e) };
  }
  await fetch("/store/bench-result", { method: "PUT", body: JSON.stringify(result) });
</script>`);
  const chromium = spawn(process.env.CHROMIUM_BIN ?? "/usr/bin/chromium", [...CHROMIUM_ARGS, `--user-data-dir=${profile}`,
    `${web.origin}/bench/bench.html`], { stdio: "ignore" });
  const exited = new Promise((resolve) => chromium.on("exit", resolve));
  try {
    for (let waited = 0; !web.store.has("bench-result"); waited += 100) {
      if (waited > 300_000) throw new Error("the page gave no result within 5 minutes");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const result = JSON.parse(web.store.get("bench-result"));
    if (result.error) throw new Error(`the page failed: ${result.error}`);
    return result.ok;
  } finally {
    chromium.kill();
    await exited;
  }
}

const dir = plain ? fs.mkdtempSync(path.join(os.tmpdir(), "nb-wasm-bench-")) : null;
const nats = await startNats();
const web = await startWeb(plain ? { "/bench/": dir } : {});
const browser = plain ? null : await startBrowser(web.origin);
try {
  const input = { ws: nats.wsUrl, count };
  const result = plain ? await runPlain(web, dir, input) : await browser.page.evaluate(bench, input);
  console.log(`chromium${plain ? " (no DevTools client)" : " under playwright"}, nats-server websocket on loopback, ${count} messages`);
  for (const [what, row] of Object.entries(result)) {
    console.log(`${what.padEnd(38)} ${Object.entries(row).map(([k, v]) => `${k} ${v}`).join("   ")}`);
  }
} finally {
  await browser?.close();
  await web.close();
  await nats.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}
