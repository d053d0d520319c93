// tests-interop participant (tests-interop/README.md): the browser bundle in headless Chromium.
//   node browser.mjs send <spec.json>...   (a batch sender: one page sends every spec, in order)
//   node browser.mjs receive <ws_server> <subject> <count> <timeout_seconds>
// Needs the bundle (bindings-wasm/scripts/build.sh) and Debian chromium.

import fs from "node:fs";
import { startBrowser, startWeb } from "../tests/harness.mjs";

const [mode, ...args] = process.argv.slice(2);
const web = await startWeb();
const browser = await startBrowser(web.origin);
const { page } = browser;
let status = 0;

async function closeAll() {
  await browser.close();
  await web.close();
}

try {
  if (mode === "send") {
    // Chromium's start-up dominates a send, so one page sends all specs; each `sent` line tells
    // the runner that spec's message reached the server. The first failure ends the run.
    for (const specPath of args) {
      const spec = JSON.parse(fs.readFileSync(specPath, "utf8"));
      const result = await page.evaluate(async (spec) => {
        const bytesOf = (g) => Uint8Array.from({ length: g.size }, (_, i) => (i * g.mul + g.add) % g.mod);
        const data = spec.payloads.map((p) => {
          if (["image", "audio", "video", "binary"].includes(p.payload_type)) return [p.dataname, bytesOf(p.input), p.payload_type];
          if (p.payload_type === "arrowtable") return [p.dataname, p.input.rows, p.payload_type];
          return [p.dataname, p.input, p.payload_type];
        });
        try {
          const conn = await nb.connect({ servers: spec.ws_server, senderName: "browser" });
          const [env] = await conn.smartsend(spec.subject, data, { sizeThreshold: spec.threshold });
          await conn.close();
          return { ok: env.payloads.map((p) => `${p.dataname}:${p.transport}`) };
        } catch (e) {
          return { error: `${e.code ?? e.name}: ${e.message}` };
        }
      }, spec);
      if (result.error) {
        console.error(`error: ${spec.case}: ${result.error}`);
        status = 1;
        break;
      }
      console.error(`sent ${spec.case}: ${result.ok.join(" ")}`);
      console.log(`sent ${specPath}`);
    }
  } else if (mode === "receive") {
    const [ws, subject, count, timeout] = [args[0], args[1], Number(args[2]), Number(args[3])];
    await page.evaluate(async ([ws, subject]) => {
      window.conn = await nb.connect({ servers: ws });
      window.sub = await window.conn.subscribe(subject); // resolves after the server confirmed it
    }, [ws, subject]);
    console.error(`ready: subscribed to ${subject}`);
    for (let i = 0; i < count; i++) {
      const r = await page.evaluate(async (timeoutMs) => {
        try {
          return { ok: await show(await window.sub.next({ timeout: timeoutMs })) };
        } catch (e) {
          return { error: { code: e.code ?? e.name, message: e.message } };
        }
      }, timeout * 1000);
      if (r.error?.code === "TIMEOUT") {
        console.error(`error: no message within ${timeout} s`);
        status = 1;
        break;
      }
      if (r.error) console.error(`error: ${r.error.code}: ${r.error.message}`);
      else console.log(JSON.stringify(r.ok));
    }
    await page.evaluate(() => window.conn.close());
  } else {
    console.error("usage: browser.mjs send <spec>... | receive <ws_server> <subject> <count> <timeout>");
    status = 2;
  }
} catch (e) {
  console.error(`error: ${e.stack ?? e}`);
  status = 1;
} finally {
  await closeAll();
}
process.exit(status);
