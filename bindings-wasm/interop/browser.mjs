// tests-interop participant (tests-interop/README.md): the browser bundle in headless Chromium.
//   node browser.mjs send <spec.json>...   (a batch sender: one page sends every spec, in order)
//   node browser.mjs receive <ws_server> <subject> <count> <timeout_seconds> [<stream> <durable>]
//   (with a stream and a durable: JetStream mode, a durable consumer acking each message)
// A sender passes each spec's trace_headers; a receiver's line (the page's show()) has the
// envelope's trace_headers when the message carried a trace context.
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
          const conn = await nb.connect({ servers: spec.ws_server, senderName: "browser", jetstream: !!spec.jetstream });
          // The spec's trace context goes out as the message's W3C headers (tests-interop "Trace context").
          const opts = { sizeThreshold: spec.threshold, traceHeaders: spec.trace_headers };
          const [env] = await conn.smartsend(spec.subject, data, opts);
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
    const [ws, subject, count, timeout, stream, durable] = [args[0], args[1], Number(args[2]), Number(args[3]), args[4], args[5]];
    await page.evaluate(async ([ws, subject, stream, durable]) => {
      window.conn = await nb.connect({ servers: ws });
      window.sub = stream
        ? await window.conn.consume(stream, durable)
        : await window.conn.subscribe(subject); // resolves after the server confirmed it
    }, [ws, subject, stream, durable]);
    console.error(`ready: ${stream ? "consuming" : "subscribed to"} ${subject}`);
    for (let i = 0; i < count; i++) {
      const r = await page.evaluate(async (timeoutMs) => {
        try {
          const next = await window.sub.next({ timeout: timeoutMs });
          if (next?.envelope) {
            await next.ack(); // a durable delivery: acked once shown
            return { ok: await show(next.envelope) };
          }
          return { ok: await show(next) };
        } catch (e) {
          return { error: { code: e.code ?? e.name, message: e.message } };
        }
      }, timeout * 1000);
      if (r.error?.code === "TIMEOUT") {
        console.error(`error: no message within ${timeout} s`);
        status = 1;
        break;
      }
      if (r.error) {
        // `error: CODE: message` (tests-interop checks CODE); core's messages already start with it.
        const { code, message } = r.error;
        console.error(`error: ${String(message).startsWith(`${code}:`) ? message : `${code}: ${message}`}`);
      }
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
