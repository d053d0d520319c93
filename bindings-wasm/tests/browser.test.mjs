// Browser tests: the bundle in headless Chromium against a real nats-server (websocket listener,
// JetStream), exchanging messages with the natsbridge CLI (and the Python binding when
// NATSBRIDGE_PYTHON is there). Every test is bounded; the summary line says "N passed".
//
//   node tests/browser.test.mjs [name-filter]

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { repo, run, spawnReady, startBrowser, startNats, startWeb } from "./harness.mjs";

const require = createRequire(import.meta.url);
const CLI = process.env.NATSBRIDGE_CLI ?? path.join(repo, "target/debug/natsbridge");
const PYTHON = process.env.NATSBRIDGE_PYTHON ?? path.join(repo, ".tmp/py-venv/bin/python");
const TEST_TIMEOUT_MS = 60_000;

const affine = (size, mul, add, mod) => Buffer.from(Array.from({ length: size }, (_, i) => (i * mul + add) % mod));
const bytesOf = (f) => affine(f.gen.size, f.gen.mul, f.gen.add, f.gen.mod);
const sha256 = (bytes) => crypto.createHash("sha256").update(Buffer.from(bytes)).digest("hex");

/** One payload of every type. Byte payloads are generators (tests-interop's `affine`), so the
 * page makes its own copy instead of receiving megabytes through page.evaluate. */
const FIXTURES = [
  { name: "greeting", type: "text", value: "Héllo ✓ wörld — 日本\u0000\u0007 end" },
  { name: "config", type: "dictionary", value: { a: 1, nested: { list: [1, 2.5, null, "x"], ok: true }, "ü": "ß" } },
  { name: "people", type: "jsontable", value: [{ id: 1, name: "a" }, { id: 2, name: null, extra: [1] }] },
  { name: "scores", type: "arrowtable", rows: [{ id: 1, score: 0.5, name: "alice" }, { id: 2, score: -1.25, name: null }] },
  { name: "photo", type: "image", gen: { size: 3000, mul: 7, add: 0, mod: 251 } },
  { name: "clip", type: "audio", gen: { size: 1000, mul: 3, add: 1, mod: 256 } },
  { name: "movie", type: "video", gen: { size: 5000, mul: 13, add: 5, mod: 256 } },
  { name: "blob", type: "binary", gen: { size: 256, mul: 1, add: 0, mod: 256 } },
];

/** The value `natsbridge sub --json` (and the page's show()) prints for a fixture. */
function expected(f) {
  if (f.gen) return { size: f.gen.size, sha256: sha256(bytesOf(f)) };
  if (f.type === "arrowtable") return { rows: f.rows };
  return f.value;
}

function writeCliArgs(dir, fixtures) {
  const args = [];
  fixtures.forEach((f, i) => {
    const file = path.join(dir, `${i}_${f.name}`);
    if (f.gen) fs.writeFileSync(file, bytesOf(f));
    else if (f.type === "text") fs.writeFileSync(file, f.value);
    else fs.writeFileSync(file, JSON.stringify(f.type === "arrowtable" ? f.rows : f.value));
    args.push("-p", `${f.type}:${f.name}=@${file}`);
  });
  return args;
}

function checkPayloads(got, fixtures, transport) {
  assert.equal(got.payloads.length, fixtures.length);
  fixtures.forEach((f, i) => {
    const p = got.payloads[i];
    assert.equal(p.dataname, f.name);
    assert.equal(p.payload_type, f.type);
    assert.equal(p.transport, transport, `${f.name} transport`);
    assert.deepEqual(p.value, expected(f), `${f.name} value`);
  });
}

// ---------------------------------------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
let env; // {nats, web, browser, page, tmp}
let subjectSeq = 0;
const subject = (tag) => `wasmtest.${process.pid}.${++subjectSeq}.${tag}`;

/** Runs `fn` in the page with `args`; NATSBridgeErrors come back as {error: {code, ...}}. */
function inPage(fn, args = {}) {
  return env.page.evaluate(
    async ([src, a]) => {
      try {
        // eslint-disable-next-line no-new-func
        return { ok: await new Function("a", `return (${src})(a)`)(a) };
      } catch (e) {
        return { error: { code: e.code ?? null, name: e.name, message: e.message, correlation_id: e.correlation_id ?? null } };
      }
    },
    [fn.toString(), args],
  );
}

async function ok(fn, args) {
  const r = await inPage(fn, args);
  if (r.error) throw new Error(`page threw ${r.error.code}: ${r.error.message}`);
  return r.ok;
}

async function errorCode(fn, args) {
  const r = await inPage(fn, args);
  assert.ok(r.error, `expected an error, got ${JSON.stringify(r.ok)}`);
  assert.equal(r.error.name, "NATSBridgeError", r.error.message);
  return r.error;
}

/** The page sends FIXTURES (bytes rebuilt as Uint8Array; the arrowtable as rows or a Table). */
async function browserSend(subj, fixtures, opts = {}) {
  return ok(async ({ ws, subj, fixtures, opts }) => {
    const conn = await nb.connect({ servers: ws });
    try {
      const data = fixtures.map((f) => {
        if (f.gen) return [f.name, Uint8Array.from({ length: f.gen.size }, (_, i) => (i * f.gen.mul + f.gen.add) % f.gen.mod), f.type];
        if (f.type === "arrowtable" && opts.arrowAsTable) return [f.name, nb.arrow.tableFromJSON(f.rows), f.type];
        return [f.name, f.type === "arrowtable" ? f.rows : f.value, f.type];
      });
      const [sent, json] = await conn.smartsend(subj, data, { sizeThreshold: opts.threshold, senderName: "browser" });
      await conn.drain();
      return { sent, json };
    } finally {
      if (!conn.nc.isClosed()) await conn.close();
    }
  }, { ws: env.nats.wsUrl, subj, fixtures, opts });
}

/** The CLI subscribes, the page sends, the CLI's JSON line comes back parsed. */
async function browserToCli(fixtures, { threshold, cliArgs = [], arrowAsTable = false } = {}) {
  const subj = subject("b2c");
  const sub = await spawnReady(
    CLI, ["--servers", env.nats.url, ...cliArgs, "sub", subj, "--count", "1", "--json", "--ready", "--timeout", "20"],
    "", { timeoutMs: 30_000 },
  );
  const { sent } = await browserSend(subj, fixtures, { threshold, arrowAsTable });
  const out = await sub.done;
  assert.equal(out.code, 0, out.stderr);
  const got = JSON.parse(out.stdout.trim());
  assert.equal(got.correlation_id, sent.correlation_id);
  assert.equal(got.sender_name, "browser");
  return got;
}

/** The page subscribes, the CLI sends, the page's decoded envelope comes back in show() form. */
async function cliToBrowser(fixtures, { threshold, cliArgs = [], connectOpts = {}, receiveOpts = {} } = {}) {
  const subj = subject("c2b");
  await ok(async ({ ws, subj, connectOpts }) => {
    window.conn = await nb.connect({ servers: ws, ...connectOpts });
    window.sub = await window.conn.subscribe(subj);
  }, { ws: env.nats.wsUrl, subj, connectOpts });
  try {
    const args = writeCliArgs(env.tmp, fixtures);
    const sent = await run(CLI, ["--servers", env.nats.url, ...cliArgs, "send", subj, ...args, "--size-threshold", String(threshold), "--print"]);
    assert.equal(sent.code, 0, sent.stderr);
    return await inPage(async ({ receiveOpts }) => show(await window.sub.next({ timeout: 15000, ...receiveOpts })), { receiveOpts });
  } finally {
    await ok(async () => window.conn.close());
  }
}

// --- codec: the golden vectors, through the WASM core in the page -------------------------------

test("golden vectors decode and re-encode in the browser", async () => {
  const names = fs.readdirSync(path.join(repo, "spec/vectors")).filter((n) => n.endsWith(".json"));
  assert.ok(names.length > 50);
  const results = await ok(async ({ names }) => {
    const out = {};
    const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    for (const name of names) {
      const v = await (await fetch(`/vectors/${name}`)).json();
      const message = v.raw_base64 !== undefined ? b64(v.raw_base64) : v.raw !== undefined ? v.raw : JSON.stringify(v.envelope);
      const r = { expect: v.expect };
      try {
        const env = await nb.smartreceive(message, { arrow: "rows" });
        r.payloads = await Promise.all(env.payloads.map(async ([dataname, data, payload_type], i) => {
          let value = data;
          if (data instanceof Uint8Array) {
            value = v.expect.payloads?.[i]?.value?.sha256 !== undefined
              ? { sha256: await nb.sha256Hex(data), size: data.length }
              : { base64: btoa(String.fromCharCode(...data)) };
          } else if (payload_type === "arrowtable") value = { rows: data };
          return { dataname, payload_type, transport: env.transports[i], value };
        }));
        r.canonical = JSON.parse(await nb.canonicalEnvelope(message));
      } catch (e) {
        r.error = e.code ?? String(e);
        r.linkError = e.code;
      }
      out[name] = r;
    }
    return out;
  }, { names });
  let checked = 0;
  for (const [name, r] of Object.entries(results)) {
    const exp = r.expect;
    if (exp.error) {
      assert.equal(r.error, exp.error, name);
    } else if (exp.payloads.some((p) => p.transport === "link")) {
      // Without a connection or allowed origins, a link is refused before any request.
      assert.equal(r.error, "URL_NOT_ALLOWED", name);
    } else {
      assert.equal(r.error, undefined, `${name}: ${r.error}`);
      assert.equal(r.payloads.length, exp.payloads.length, name);
      exp.payloads.forEach((p, i) => {
        const got = r.payloads[i];
        assert.equal(got.dataname, p.dataname, name);
        assert.equal(got.payload_type, p.payload_type, name);
        assert.equal(got.transport, p.transport, name);
        const want = p.payload_type === "arrowtable" ? { rows: p.value.rows } : p.value;
        assert.deepEqual(got.value, want, `${name} payload ${i}`);
      });
      const v = JSON.parse(fs.readFileSync(path.join(repo, "spec/vectors", name), "utf8"));
      assert.deepEqual(r.canonical, exp.canonical ?? v.envelope, `${name} canonical`);
    }
    checked++;
  }
  assert.equal(checked, names.length);
});

test("constants match the core's", async () => {
  const r = await ok(async () => ({ core: await nb.coreConstants(), codes: nb.ERROR_CODES, purposes: Object.values(nb.MSG_PURPOSE) }));
  assert.deepEqual(r.codes, r.core.errorCodes);
  assert.ok(r.codes.includes("INVALID_ARGUMENT"));
  assert.deepEqual(r.purposes, r.core.msgPurposes);
  assert.equal(r.core.sizeThreshold, 500000);
});

// --- browser -> CLI ---------------------------------------------------------------------------

test("browser -> CLI, direct, every payload type in one message", async () => {
  const got = await browserToCli(FIXTURES, { threshold: 500000 });
  checkPayloads(got, FIXTURES, "direct");
});

test("browser -> CLI, direct, arrowtable from an apache-arrow Table", async () => {
  const f = FIXTURES.filter((x) => x.type === "arrowtable");
  const got = await browserToCli(f, { threshold: 500000, arrowAsTable: true });
  // tableFromJSON makes float64 columns for numbers and dictionary-encoded strings: the rows agree.
  assert.deepEqual(got.payloads[0].value.rows, f[0].rows);
});

test("browser -> CLI, link via the object store, every payload type", async () => {
  const got = await browserToCli(FIXTURES, { threshold: 0 });
  checkPayloads(got, FIXTURES, "link");
});

test("browser -> CLI, a 2 MB binary goes link by the default threshold", async () => {
  const big = [{ name: "big", type: "binary", gen: { size: 2_000_000, mul: 31, add: 7, mod: 256 } }];
  const got = await browserToCli(big, {});
  checkPayloads(got, big, "link");
});

// --- CLI -> browser ---------------------------------------------------------------------------

test("CLI -> browser, direct, every payload type", async () => {
  const r = await cliToBrowser(FIXTURES, { threshold: 500000 });
  assert.ok(r.ok, JSON.stringify(r.error));
  checkPayloads(r.ok, FIXTURES, "direct");
  assert.match(r.ok.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test("CLI -> browser, link via the object store, every payload type", async () => {
  const r = await cliToBrowser(FIXTURES, { threshold: 0 });
  assert.ok(r.ok, JSON.stringify(r.error));
  checkPayloads(r.ok, FIXTURES, "link");
});

test("CLI -> browser, link via fetch from an allowed HTTP origin", async () => {
  const before = env.web.requests.length;
  const r = await cliToBrowser(FIXTURES, {
    threshold: 0,
    cliArgs: ["--fileserver-url", `${env.web.origin}/store`, "--fileserver-kind", "http"],
    connectOpts: { allowed_origins: [`${env.web.origin}/store`] },
  });
  assert.ok(r.ok, JSON.stringify(r.error));
  checkPayloads(r.ok, FIXTURES, "link");
  const gets = env.web.requests.slice(before).filter((x) => x.startsWith("GET /store/"));
  assert.equal(gets.length, FIXTURES.length, "one GET per link payload");
});

test("CLI -> browser, arrowtable as an apache-arrow Table and as IPC bytes", async () => {
  const f = FIXTURES.filter((x) => x.type === "arrowtable");
  const subj = subject("arrow");
  await ok(async ({ ws, subj }) => {
    window.conn = await nb.connect({ servers: ws });
    window.sub = await window.conn.subscribe(subj, { arrow: "table" });
  }, { ws: env.nats.wsUrl, subj });
  const sent = await run(CLI, ["--servers", env.nats.url, "send", subj, ...writeCliArgs(env.tmp, f)]);
  assert.equal(sent.code, 0, sent.stderr);
  const r = await ok(async () => {
    const got = await window.sub.next({ timeout: 15000 });
    const table = got.payloads[0][1];
    const ipc = await window.conn.smartreceive(
      nb.arrow.tableToIPC(table), { arrow: "ipc" }).catch((e) => e.code); // not an envelope
    await window.conn.close();
    return {
      rows: table.numRows, names: table.schema.fields.map((x) => x.name),
      ids: Array.from(table.getChild("id"), (v) => Number(v)), names0: table.getChild("name").get(0), ipc,
    };
  });
  assert.equal(r.rows, 2);
  assert.deepEqual(r.names, ["id", "score", "name"]);
  assert.deepEqual(r.ids, [1, 2]);
  assert.equal(r.names0, "alice");
  assert.equal(r.ipc, "INVALID_ENVELOPE");
});

// --- Python binding peer (when its venv is there) ---------------------------------------------

const havePython = fs.existsSync(PYTHON);

test("Python -> browser, pandas DataFrame arrowtable and bytes, direct and link", async () => {
  if (!havePython) return "skip";
  for (const threshold of [500000, 0]) {
    const subj = subject("py2b");
    await ok(async ({ ws, subj }) => {
      window.conn = await nb.connect({ servers: ws });
      window.sub = await window.conn.subscribe(subj);
    }, { ws: env.nats.wsUrl, subj });
    const script = `
import sys, natsbridge, pandas as pd
df = pd.DataFrame({"id": [1, 2, 3], "name": ["a", None, "c"], "x": [0.5, 1.5, -2.0]})
with natsbridge.connect_sync(sys.argv[1]) as nc:
    nc.smartsend_sync(sys.argv[2], [("df", df, "arrowtable"), ("raw", bytes(range(256)), "binary"), ("msg", "hi ✓", "text")], size_threshold=int(sys.argv[3]))
`;
    const py = await run(PYTHON, ["-c", script, env.nats.url, subj, String(threshold)]);
    assert.equal(py.code, 0, py.stderr);
    const r = await ok(async () => {
      const e = await show(await window.sub.next({ timeout: 15000 }));
      await window.conn.close();
      return e;
    });
    const transport = threshold === 0 ? "link" : "direct";
    assert.deepEqual(r.payloads.map((p) => p.transport), [transport, transport, transport]);
    assert.deepEqual(r.payloads[0].value.rows, [
      { id: 1, name: "a", x: 0.5 }, { id: 2, name: null, x: 1.5 }, { id: 3, name: "c", x: -2 },
    ]);
    assert.deepEqual(r.payloads[1].value, { size: 256, sha256: sha256(affine(256, 1, 0, 256)) });
    assert.equal(r.payloads[2].value, "hi ✓");
  }
});

test("browser -> Python, every payload type, direct and link", async () => {
  if (!havePython) return "skip";
  for (const threshold of [500000, 0]) {
    const subj = subject("b2py");
    const script = `
import sys, json, hashlib, natsbridge
with natsbridge.connect_sync(sys.argv[1], arrow="pyarrow") as nc:
    sub = nc.subscribe_sync(sys.argv[2])
    print("ready", file=sys.stderr, flush=True)
    env = sub.next_sync(timeout=20)
    out = []
    for (n, d, t), tr in zip(env["payloads"], env["transports"]):
        if t == "arrowtable": d = {"rows": d.to_pylist()}
        elif isinstance(d, bytes): d = {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
        out.append({"dataname": n, "payload_type": t, "transport": tr, "value": d})
    print(json.dumps({"payloads": out}), flush=True)
`;
    const sub = await spawnReady(PYTHON, ["-c", script, env.nats.url, subj], "ready", { timeoutMs: 40_000 });
    await browserSend(subj, FIXTURES, { threshold });
    const out = await sub.done;
    assert.equal(out.code, 0, out.stderr);
    checkPayloads(JSON.parse(out.stdout.trim()), FIXTURES, threshold === 0 ? "link" : "direct");
  }
});

// --- error codes for bad input ----------------------------------------------------------------

test("smartsend: bad input is refused with its code, nothing published", async () => {
  const cases = await ok(async ({ ws }) => {
    const conn = await nb.connect({ servers: ws });
    const sub = await conn.subscribe("wasmtest.nothing");
    const code = async (data, opts) => conn.smartsend("wasmtest.nothing", data, opts).then(() => "sent", (e) => e.code);
    const out = {
      unknownType: await code([["x", "hi", "spreadsheet"]]),
      typeCase: await code([["x", "hi", "Text"]]),
      bytesAsText: await code([["x", new Uint8Array([0xff]), "text"]]),
      textAsBinary: await code([["x", "hi", "binary"]]),
      nan: await code([["x", { a: NaN }, "dictionary"]]),
      infinity: await code([["x", [Infinity], "dictionary"]]),
      bigint: await code([["x", { a: 1n }, "dictionary"]]),
      undefinedMember: await code([["x", { a: undefined }, "dictionary"]]),
      notRows: await code([["x", [1, 2], "jsontable"]]),
      objectTable: await code([["x", { a: 1 }, "jsontable"]]),
      arrowGarbage: await code([["x", new Uint8Array([1, 2, 3]), "arrowtable"]]),
      notAnArray: await code("hello"),
      notATriple: await code([["x", "hi"]]),
      badThreshold: await code([["x", "hi", "text"]], { sizeThreshold: -1 }),
      unknownOption: await code([["x", "hi", "text"]], { correlation: "x" }),
      badMetadata: await code([["x", "hi", "text"]], { metadata: [1] }),
      badPurpose: await code([["x", "hi", "text"]], { msg_purpose: 5 }),
      // A malformed trace context is refused before anything is sent, never dropped.
      traceHeaders: await code([["x", "hi", "text"]], { traceHeaders: { traceparent: "00-zz" } }),
      emptySubject: await conn.smartsend("", [["x", "hi", "text"]]).then(() => "sent", (e) => e.code),
      secondBad: await code([["ok", "fine", "text"], ["bad", "x", "image"]]),
    };
    out.delivered = await sub.next({ timeout: 300 }).then(() => "delivered", (e) => e.code);
    await conn.close();
    return out;
  }, { ws: env.nats.wsUrl });
  assert.deepEqual(cases, {
    unknownType: "INVALID_PAYLOAD_TYPE", typeCase: "INVALID_PAYLOAD_TYPE", bytesAsText: "INVALID_PAYLOAD_TYPE",
    textAsBinary: "INVALID_PAYLOAD_TYPE", nan: "INVALID_PAYLOAD_TYPE", infinity: "INVALID_PAYLOAD_TYPE",
    bigint: "INVALID_PAYLOAD_TYPE", undefinedMember: "INVALID_PAYLOAD_TYPE", notRows: "INVALID_PAYLOAD_TYPE",
    objectTable: "INVALID_PAYLOAD_TYPE", arrowGarbage: "INVALID_PAYLOAD_TYPE", notAnArray: "INVALID_PAYLOAD_TYPE",
    notATriple: "INVALID_PAYLOAD_TYPE", badThreshold: "INVALID_ARGUMENT", unknownOption: "INVALID_ARGUMENT",
    badMetadata: "INVALID_ARGUMENT", badPurpose: "INVALID_ARGUMENT", traceHeaders: "INVALID_ARGUMENT",
    emptySubject: "INVALID_ARGUMENT", secondBad: "INVALID_PAYLOAD_TYPE", delivered: "TIMEOUT",
  });
});

test("smartsend errors carry the correlation id", async () => {
  const e = await errorCode(async ({ ws }) => {
    const conn = await nb.connect({ servers: ws });
    try {
      await conn.smartsend("wasmtest.x", [["x", "hi", "nope"]], { correlation_id: "5f0c7d54-1c1e-4c57-9d57-8e5f3a3f0a11" });
    } finally {
      await conn.close();
    }
  }, { ws: env.nats.wsUrl });
  assert.equal(e.code, "INVALID_PAYLOAD_TYPE");
  assert.equal(e.correlation_id, "5f0c7d54-1c1e-4c57-9d57-8e5f3a3f0a11");
});

test("max_payload: no link store -> PAYLOAD_TOO_LARGE; failed upload -> UPLOAD_FAILED; both publish nothing", async () => {
  const r = await ok(async ({ ws }) => {
    const conn = await nb.connect({ servers: ws, object_store: false });
    const sub = await conn.subscribe("wasmtest.big");
    const big = new Uint8Array(1_200_000);
    const code = (opts) => conn.smartsend("wasmtest.big", [["big", big, "binary"]], opts).then(() => "sent", (e) => e.code);
    const out = {
      maxPayload: conn.maxPayload,
      // Direct by threshold, over max_payload, nowhere to move it.
      tooLarge: await code({ sizeThreshold: 10_000_000 }),
      // Link by threshold, the upload fails (no store), direct does not fit.
      uploadFailed: await code({}),
    };
    // Link by threshold, upload fails, direct fits: sent direct (the seeds' fallback).
    const [env] = await conn.smartsend("wasmtest.big", [["small", new Uint8Array(10), "binary"]], { size_threshold: 0 });
    out.fallback = env.payloads[0].transport;
    out.received = (await sub.next({ timeout: 5000 })).payloads[0][0];
    out.afterwards = await sub.next({ timeout: 300 }).then(() => "delivered", (e) => e.code);
    await conn.close();
    return out;
  }, { ws: env.nats.wsUrl });
  assert.deepEqual(r, {
    maxPayload: 1048576, tooLarge: "PAYLOAD_TOO_LARGE", uploadFailed: "UPLOAD_FAILED", fallback: "direct",
    received: "small", afterwards: "TIMEOUT",
  });
});

test("max_payload: a direct-sized payload over max_payload moves to the object store", async () => {
  const r = await ok(async ({ ws }) => {
    const conn = await nb.connect({ servers: ws });
    const sub = await conn.subscribe("wasmtest.move");
    const big = new Uint8Array(900_000).map((_, i) => i % 251);
    const [sent] = await conn.smartsend("wasmtest.move", [["small", "hi", "text"], ["big", big, "binary"]], { sizeThreshold: 10_000_000 });
    const got = await sub.next({ timeout: 10000 });
    await conn.close();
    return { sent: sent.payloads.map((p) => p.transport), got: got.transports, same: got.payloads[1][1].every((b, i) => b === big[i]) };
  }, { ws: env.nats.wsUrl });
  assert.deepEqual(r, { sent: ["direct", "link"], got: ["direct", "link"], same: true });
});

test("smartreceive: bad envelopes and payloads get the core's codes", async () => {
  const r = await ok(async () => {
    const base = { correlation_id: "c0ffee00-0000-4000-8000-000000000000", payloads: [] };
    const p = (over) => ({ id: "", dataname: "x", payload_type: "text", transport: "direct", encoding: "base64", size: 2, data: "aGk=", metadata: {}, ...over });
    const code = (m) => nb.smartreceive(typeof m === "string" ? m : JSON.stringify(m)).then(() => "ok", (e) => [e.code, e.correlation_id]);
    return {
      notJson: await code("{"),
      notObject: await code("[1]"),
      unknownTransport: await code({ ...base, payloads: [p({ transport: "pigeon" })] }),
      unknownType: await code({ ...base, payloads: [p({ payload_type: "spreadsheet" })] }),
      badBase64: await code({ ...base, payloads: [p({ data: "***" })] }),
      sizeMismatch: await code({ ...base, payloads: [p({ size: 3 })] }),
      shaMismatch: await code({ ...base, payloads: [p({ metadata: { sha256: "00".repeat(32) } })] }),
      textNotUtf8: await code({ ...base, payloads: [p({ data: "//4=", size: 2 })] }),
      badJson: await code({ ...base, payloads: [p({ payload_type: "dictionary", data: btoa("{"), size: 1 })] }),
      linkNotAllowed: await code({ ...base, payloads: [p({ transport: "link", encoding: "none", data: "http://evil.example/x" })] }),
      objLinkNoConnection: await code({ ...base, payloads: [p({ transport: "link", encoding: "none", data: "nats-obj://natsbridge/x" })] }),
      notAMessage: await nb.smartreceive(42).then(() => "ok", (e) => [e.code, e.correlation_id]),
    };
  });
  const cid = "c0ffee00-0000-4000-8000-000000000000";
  assert.deepEqual(r, {
    notJson: ["INVALID_ENVELOPE", null], notObject: ["INVALID_ENVELOPE", null],
    unknownTransport: ["INVALID_TRANSPORT", cid], unknownType: ["INVALID_PAYLOAD_TYPE", cid],
    badBase64: ["DESERIALIZATION_ERROR", cid], sizeMismatch: ["CHECKSUM_MISMATCH", cid],
    shaMismatch: ["CHECKSUM_MISMATCH", cid], textNotUtf8: ["DESERIALIZATION_ERROR", cid],
    badJson: ["DESERIALIZATION_ERROR", cid], linkNotAllowed: ["URL_NOT_ALLOWED", cid],
    objLinkNoConnection: ["URL_NOT_ALLOWED", cid], notAMessage: ["INVALID_ENVELOPE", null],
  });
});

test("fetch links: backoff, fatal statuses, redirects, lies, caps, and no request for other origins", async () => {
  const bytes = Buffer.from(affine(1000, 5, 3, 256));
  env.web.store.set("blob.bin", bytes);
  const o = env.web.origin;
  const before = env.web.requests.length;
  const r = await ok(async ({ o, size, sha }) => {
    const link = (url, over = {}) => JSON.stringify({
      correlation_id: "c0ffee00-0000-4000-8000-000000000001",
      payloads: [{ dataname: "b", payload_type: "binary", transport: "link", encoding: "none", size, data: url, metadata: { sha256: sha }, ...over }],
    });
    const opts = { allowed_origins: [`${o}/store`, `${o}/flaky`, `${o}/redirect`, `${o}/lie`], maxRetries: 3, baseDelay: 50, max_delay: 5000 };
    const recv = async (url, over, extra = {}) => {
      const t0 = performance.now();
      try {
        const env = await nb.smartreceive(link(url, over), { ...opts, ...extra });
        return { ok: env.payloads[0][1].length, ms: performance.now() - t0 };
      } catch (e) {
        return { code: e.code, ms: performance.now() - t0 };
      }
    };
    return {
      plain: await recv(`${o}/store/blob.bin`),
      flakyTwice: await recv(`${o}/flaky/2/blob.bin`),
      flakyForever: await recv(`${o}/flaky/99/blob.bin`),
      missing: await recv(`${o}/store/nope.bin`),
      redirect: await recv(`${o}/redirect/blob.bin`),
      lie: await recv(`${o}/lie/blob.bin`),
      wrongSize: await recv(`${o}/store/blob.bin`, { size: size + 1 }),
      otherPort: await recv(`http://127.0.0.1:1/store/blob.bin`),
      pathOutside: await recv(`${o}/storeroom/blob.bin`),
      dotDot: await recv(`${o}/store/../tests/page.html`),
      overCap: await recv(`${o}/store/blob.bin`, {}, { max_download_bytes: 999 }),
      badRetries: await recv(`${o}/store/blob.bin`, {}, { maxRetries: "x" }),
      badOrigins: await recv(`${o}/store/blob.bin`, {}, { allowed_origins: ["not a url"] }),
      oldRetry: await recv(`${o}/store/blob.bin`, {}, { retry: { retries: 2 } }),
    };
  }, { o, size: bytes.length, sha: sha256(bytes) });
  assert.equal(r.plain.ok, 1000);
  assert.equal(r.flakyTwice.ok, 1000);
  assert.ok(r.flakyTwice.ms >= 50 + 100 - 5, `backoff slept 50 + 100 ms, took ${r.flakyTwice.ms}`);
  assert.equal(r.flakyForever.code, "DOWNLOAD_FAILED");
  assert.equal(r.missing.code, "DOWNLOAD_FAILED");
  assert.equal(r.redirect.code, "DOWNLOAD_FAILED");
  assert.equal(r.lie.code, "CHECKSUM_MISMATCH");
  assert.equal(r.wrongSize.code, "CHECKSUM_MISMATCH");
  assert.equal(r.otherPort.code, "URL_NOT_ALLOWED");
  assert.equal(r.pathOutside.code, "URL_NOT_ALLOWED");
  assert.equal(r.dotDot.code, "URL_NOT_ALLOWED");
  assert.equal(r.overCap.code, "PAYLOAD_TOO_LARGE");
  assert.equal(r.badRetries.code, "INVALID_ARGUMENT");
  assert.equal(r.badOrigins.code, "INVALID_ARGUMENT");
  assert.equal(r.oldRetry.code, "INVALID_ARGUMENT");
  const reqs = env.web.requests.slice(before);
  const count = (p) => reqs.filter((x) => x === `GET ${p}`).length;
  assert.equal(count("/flaky/2/blob.bin"), 3, "two 503s, then the bytes");
  assert.equal(count("/flaky/99/blob.bin"), 3, "retries: 3 attempts in all");
  assert.equal(count("/store/nope.bin"), 1, "404 is not retried");
  assert.equal(count("/redirect/blob.bin"), 1, "a redirect is not retried");
  assert.equal(count("/store/blob.bin"), 2, "plain and wrong-size; never for the cap");
  assert.ok(!reqs.some((x) => x.startsWith("GET /storeroom") || x.startsWith("GET /tests/page.html")), reqs.join("\n"));
});

test("object store links: a missing object is DOWNLOAD_FAILED, a wrong sha256 CHECKSUM_MISMATCH", async () => {
  const r = await ok(async ({ ws }) => {
    const conn = await nb.connect({ servers: ws });
    const [sent] = await conn.smartsend("wasmtest.obj", [["b", new Uint8Array([1, 2, 3]), "binary"]], { size_threshold: 0 });
    const p = sent.payloads[0];
    const msg = (over) => JSON.stringify({ ...sent, payloads: [{ ...p, ...over }] });
    const code = (m) => conn.smartreceive(m).then((e) => Array.from(e.payloads[0][1]), (e) => e.code);
    const out = {
      url: p.data.startsWith("nats-obj://natsbridge/"),
      good: await code(msg({})),
      missing: await code(msg({ data: "nats-obj://natsbridge/00000000-0000-4000-8000-000000000000" })),
      badSha: await code(msg({ metadata: { ...p.metadata, sha256: "ab".repeat(32) } })),
      badSize: await code(msg({ size: 4 })),
    };
    await conn.close();
    return out;
  }, { ws: env.nats.wsUrl });
  assert.deepEqual(r, { url: true, good: [1, 2, 3], missing: "DOWNLOAD_FAILED", badSha: "CHECKSUM_MISMATCH", badSize: "CHECKSUM_MISMATCH" });
});

test("receive limits (spec/PROTOCOL.md §9.4) hold as one-call options, on a connection and in a subscription's batches", async () => {
  const r = await ok(async ({ ws }) => {
    const code = (p) => p.then((env) => env.payloads.length, (e) => e.code);
    const conn = await nb.connect({ servers: ws });
    const [, three] = await conn.smartsend("wasmtest.limits", [["a", "x", "text"], ["b", "y", "text"], ["c", "z", "text"]]);
    const [, deep] = await conn.smartsend("wasmtest.limits", [["d", { a: [[[1]]] }, "dictionary"]]);
    await conn.close();
    const limited = await nb.connect({ servers: ws, maxPayloads: 2, max_json_depth: 3 });
    const sub = await limited.subscribe("wasmtest.limits.sub");
    const [two] = await nb.smartsend("wasmtest.limits.sub", [["a", "x", "text"], ["b", "y", "text"]], { connection: limited });
    await nb.smartsend("wasmtest.limits.sub", [["a", "x", "text"], ["b", "y", "text"], ["c", "z", "text"]], { connection: limited });
    await limited.nc.flush();
    const batch = [];
    for (let i = 0; i < 2; i++) batch.push(await code(sub.next({ timeout: 5000 })));
    const result = {
      oneCallOver: await code(nb.smartreceive(three, { maxPayloads: 2 })),
      oneCallWithin: await code(nb.smartreceive(three, { max_payloads: 3 })),
      oneCallBytes: await code(nb.smartreceive(three, { maxMessageBytes: 2 })),
      connectionDeep: await code(limited.smartreceive(deep)),
      connectionOver: await code(limited.smartreceive(three)),
      batch,
      sentTwo: two.payloads.length,
      tooDeep: await nb.connect({ servers: ws, maxJsonDepth: 129 }).then(() => "connected", (e) => e.code),
    };
    await limited.close();
    return result;
  }, { ws: env.nats.wsUrl });
  assert.deepEqual(r, {
    oneCallOver: "INVALID_ENVELOPE", oneCallWithin: 3, oneCallBytes: "PAYLOAD_TOO_LARGE",
    connectionDeep: "PAYLOAD_TOO_LARGE", connectionOver: "INVALID_ENVELOPE",
    batch: [2, "INVALID_ENVELOPE"], sentTwo: 2, tooDeep: "INVALID_ARGUMENT",
  });
});

test("subscribe: a bad message throws its code and the subscription goes on; TIMEOUT; connection failure", async () => {
  const r = await ok(async ({ ws }) => {
    const conn = await nb.connect({ servers: ws });
    const sub = await conn.subscribe("wasmtest.sub");
    conn.nc.publish("wasmtest.sub", "not json");
    await conn.smartsend("wasmtest.sub", [["t", "after", "text"]]);
    const first = await sub.next({ timeout: 5000 }).then(() => "ok", (e) => e.code);
    const seen = [];
    for await (const env of sub) {
      seen.push(env.payloads[0][1]);
      break; // return() unsubscribes
    }
    const timeout = await (await conn.subscribe("wasmtest.quiet")).next({ timeout: 100 }).then(() => "ok", (e) => e.code);
    await conn.close();
    const refused = await nb.connect({ servers: "ws://127.0.0.1:1" }).then(() => "connected", (e) => e.code);
    const noServer = await nb.connect({}).then(() => "connected", (e) => e.code);
    return { first, seen, timeout, refused, noServer };
  }, { ws: env.nats.wsUrl });
  assert.deepEqual(r, { first: "INVALID_ENVELOPE", seen: ["after"], timeout: "TIMEOUT", refused: "NATS_CONNECTION_FAILED", noServer: "INVALID_ARGUMENT" });
});

test("subscribe: messages already waiting are decoded together, in order and intact; a bad one throws its code, the others still arrive", async () => {
  const subj = subject("batch");
  const r = await ok(async ({ ws, subj }) => {
    const conn = await nb.connect({ servers: ws });
    const sub = await conn.subscribe(subj);
    const n = 600; // more than one core call's batch (256)
    const bytesOf = (i, len) => Uint8Array.from({ length: len }, (_, k) => (i * 7 + k * 13) % 256);
    const long = (i) => `${i}:${"é✓".repeat(1500)}`; // over the length that crosses inside the batch's JSON
    const payloadsOf = (i) => {
      if (i % 4 === 0) return [["t", `m${i} "quoted" \\ ✓`, "text"]];
      if (i % 4 === 1) return [["b", bytesOf(i, 300), "binary"]];
      if (i % 4 === 2) return [["d", { i, nested: [i, null, "x"], "ü": true }, "dictionary"], ["rows", [{ a: i }], "arrowtable"]];
      return [["long", long(i), "text"], ["img", bytesOf(i, 5), "image"], ["n", i, "dictionary"]];
    };
    // Every message is built first and published raw, in one go, so all of them wait together.
    const messages = [];
    const expected = [];
    for (let i = 0; i < n; i++) {
      if (i === 5) {
        messages.push("not json");
        expected.push({ error: "INVALID_ENVELOPE", cid: null });
        continue;
      }
      if (i === 300) {
        const [env, json] = await conn.smartsend("wasmtest.void", [["l", bytesOf(i, 2000), "binary"]], { sizeThreshold: 0 });
        messages.push(json);
        expected.push({ cid: env.correlation_id, i, link: true });
        continue;
      }
      const [env, json] = await conn.smartsend("wasmtest.void", payloadsOf(i));
      if (i === 77 || i === 401) {
        const bad = JSON.parse(json);
        bad.payloads[0].size += 1;
        messages.push(JSON.stringify(bad));
        expected.push({ error: "CHECKSUM_MISMATCH", cid: env.correlation_id });
        continue;
      }
      messages.push(json);
      expected.push({ cid: env.correlation_id, i });
    }
    await conn.flush();
    for (const m of messages) conn.nc.publish(subj, m);
    await conn.flush(); // the server answers after it delivered them: every one has arrived
    const same = (a, b) => a.length === b.length && a.every((x, k) => x === b[k]);
    const check = (env, want) => {
      if (want.error) return `expected ${want.error}, got an envelope`;
      if (env.correlation_id !== want.cid || env.subject !== subj) return `header of ${want.i}`;
      const i = want.i;
      const p = env.payloads;
      if (want.link) return env.transports[0] === "link" && same(p[0][1], bytesOf(i, 2000)) ? null : `link ${i}`;
      if (!env.transports.every((t) => t === "direct")) return `transports of ${i}`;
      if (i % 4 === 0) return p[0][1] === `m${i} "quoted" \\ ✓` ? null : `text ${i}`;
      if (i % 4 === 1) return p[0][1] instanceof Uint8Array && same(p[0][1], bytesOf(i, 300)) ? null : `bytes ${i}`;
      if (i % 4 === 2) {
        const ok = JSON.stringify(p[0][1]) === JSON.stringify({ i, nested: [i, null, "x"], "ü": true })
          && JSON.stringify(p[1]) === JSON.stringify(["rows", [{ a: i }], "arrowtable"]);
        return ok ? null : `dictionary and rows ${i}`;
      }
      const ok = p.length === 3 && p[0][1] === long(i) && same(p[1][1], bytesOf(i, 5)) && p[1][2] === "image" && p[2][1] === i;
      return ok ? null : `long text, image, number ${i}`;
    };
    const wrong = [];
    const failed = (e, k) => {
      const want = expected[k];
      if (e.code !== want.error || e.correlation_id !== want.cid) wrong.push(`${k}: ${e.code} ${e.correlation_id} ${e.message}`);
    };
    const got = (env, k) => {
      const bad = check(env, expected[k]);
      if (bad) wrong.push(bad);
    };
    // Half by next(), half by for await (a message that throws leaves the loop; a new loop goes on).
    let k = 0;
    for (; k < n / 2; k++) {
      try {
        got(await sub.next({ timeout: 5000 }), k);
      } catch (e) {
        failed(e, k);
      }
    }
    while (k < n) {
      try {
        for await (const env of sub) {
          got(env, k);
          if (++k === n) break; // leaving the loop unsubscribes
        }
        if (k < n) {
          wrong.push(`the subscription ended at ${k}`);
          break;
        }
      } catch (e) {
        failed(e, k++);
      }
    }
    const afterEnd = await sub.next({ timeout: 1000 }).then((v) => v, (e) => e.code);
    await conn.close();
    return { wrong: wrong.slice(0, 10), wrongCount: wrong.length, afterEnd };
  }, { ws: env.nats.wsUrl, subj });
  assert.deepEqual(r, { wrong: [], wrongCount: 0, afterEnd: null });
});

test("smartsend: awaited sends go to nats.js together and in order; a lone send goes without flush()", async () => {
  const subj = subject("outbox");
  const r = await ok(async ({ ws, subj }) => {
    const conn = await nb.connect({ servers: ws });
    const receiver = await nb.connect({ servers: ws });
    const sub = await receiver.subscribe(subj);
    // nats.js (3.4) writes each flush of its outbound buffer with one WebSocket send.
    const socket = conn.nc.protocol.transport.socket;
    const send = socket.send;
    let frames = 0;
    socket.send = function (data) {
      frames++;
      return send.call(this, data);
    };
    const n = 500;
    for (let i = 0; i < n; i++) await conn.smartsend(subj, [["i", `${i}`.padEnd(200), "text"]]);
    const burstFrames = frames;
    await conn.flush();
    conn.nc.publish(subj, "not json"); // after flush(): behind every queued smartsend
    const got = [];
    for (let i = 0; i <= n; i++) {
      got.push(await sub.next({ timeout: 5000 }).then((env) => env.payloads[0][1].trim(), (e) => e.code));
    }
    // One send, then only waiting: it is delivered with no flush().
    await conn.smartsend(subj, [["i", "lone", "text"]]);
    const lone = await sub.next({ timeout: 5000 }).then((env) => env.payloads[0][1], (e) => e.code);
    socket.send = send;
    await conn.close();
    await receiver.close();
    const inOrder = got.slice(0, n).every((v, i) => v === `${i}`);
    return { burstFrames, inOrder, last: got[n], lone };
  }, { ws: env.nats.wsUrl, subj });
  assert.ok(r.burstFrames < 50, `500 awaited smartsends took ${r.burstFrames} WebSocket sends (one each: the outbox is not batching)`);
  assert.deepEqual({ ...r, burstFrames: undefined }, { burstFrames: undefined, inOrder: true, last: "INVALID_ENVELOPE", lone: "lone" });
});

test("request/reply: CLI requests, the browser replies (ACK, then NACK); browser requests, TIMEOUT", async () => {
  const subj = subject("rpc");
  await ok(async ({ ws, subj }) => {
    window.conn = await nb.connect({ servers: ws, senderName: "responder" });
    const sub = await window.conn.subscribe(subj);
    window.served = (async () => {
      const req = await sub.next({ timeout: 15000 });
      await window.conn.reply(req, [["answer", `got ${req.payloads[0][1]}`, "text"]]);
      const req2 = await sub.next({ timeout: 15000 });
      await window.conn.replyError(req2, "DOWNLOAD_FAILED", "could not fetch it");
      return { subject: req.subject, hasReply: typeof req.reply === "string" };
    })();
  }, { ws: env.nats.wsUrl, subj });
  const ack = await run(CLI, ["--servers", env.nats.url, "request", subj, "-p", "text:q=ping", "--json", "--timeout", "10",
    "--correlation-id", "0b0e5c1e-6f5e-4c33-8a1f-2a64c3a3b001"]);
  assert.equal(ack.code, 0, ack.stderr);
  const reply = JSON.parse(ack.stdout.trim());
  assert.equal(reply.msg_purpose, "ACK");
  assert.equal(reply.correlation_id, "0b0e5c1e-6f5e-4c33-8a1f-2a64c3a3b001");
  assert.equal(reply.sender_name, "responder");
  assert.deepEqual(reply.payloads.map((p) => [p.dataname, p.value]), [["answer", "got ping"]]);
  const nack = await run(CLI, ["--servers", env.nats.url, "request", subj, "-p", "text:q=again", "--json", "--timeout", "10"]);
  assert.notEqual(nack.code, 0);
  assert.match(nack.stderr, /DOWNLOAD_FAILED/);
  const served = await ok(async () => window.served);
  assert.deepEqual(served, { subject: subj, hasReply: true });

  // The browser as requester, a browser connection as responder, over the server.
  const r = await ok(async ({ ws, subj }) => {
    const requester = await nb.connect({ servers: ws });
    const sub = await window.conn.subscribe(`${subj}.b`);
    const serving = (async () => {
      const req = await sub.next({ timeout: 5000 });
      await window.conn.reply(req, [["n", { echo: req.payloads[0][1] }, "dictionary"]], { metadata: { k: 1 } });
      const req2 = await sub.next({ timeout: 5000 });
      await window.conn.replyError(req2, "CHECKSUM_MISMATCH", "bad bytes");
      const req3 = await sub.next({ timeout: 5000 });
      await window.conn.replyError(req3, "NOT_A_CODE", "x").catch((e) => e.code).then((c) => { window.badCode = c; });
    })();
    const env = await requester.request(`${subj}.b`, [["q", "hi", "text"]], { correlation_id: "0b0e5c1e-6f5e-4c33-8a1f-2a64c3a3b002" });
    const nackErr = await requester.request(`${subj}.b`, [["q", "hi", "text"]], { correlation_id: "0b0e5c1e-6f5e-4c33-8a1f-2a64c3a3b003" })
      .then(() => null, (e) => [e.code, e.correlation_id]);
    const timedOut = await requester.request(`${subj}.b`, [["q", "hi", "text"]], { timeout: 300 }).then(() => "ok", (e) => e.code);
    await serving;
    const noResponders = await requester.request(`${subj}.nobody`, [["q", "hi", "text"]], { timeout: 2000 }).then(() => "ok", (e) => e.code);
    const noReplyTo = await window.conn.reply({ correlation_id: "c" }, []).then(() => "ok", (e) => e.code);
    await requester.close();
    await window.conn.close();
    return { purpose: env.msg_purpose, cid: env.correlation_id, value: env.payloads[0][1], meta: env.metadata,
      nackErr, timedOut, badCode: window.badCode, noResponders, noReplyTo };
  }, { ws: env.nats.wsUrl, subj });
  assert.deepEqual(r, {
    purpose: "ACK", cid: "0b0e5c1e-6f5e-4c33-8a1f-2a64c3a3b002", value: { echo: "hi" }, meta: { k: 1 },
    nackErr: ["CHECKSUM_MISMATCH", "0b0e5c1e-6f5e-4c33-8a1f-2a64c3a3b003"], timedOut: "TIMEOUT",
    badCode: "INVALID_ARGUMENT", noResponders: "TIMEOUT", noReplyTo: "INVALID_ENVELOPE",
  });
});

// --- trace context in message headers (spec/PROTOCOL.md §13) ------------------------------------

const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
const REPLY_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

test("trace context: traceHeaders go out as exactly core's W3C headers, in order with untraced sends; received ones are env.trace_headers, malformed ones dropped", async () => {
  const subj = subject("trace");
  const r = await ok(async ({ ws, subj, tp, ts, tp2 }) => {
    const conn = await nb.connect({ servers: ws });
    const text = (i) => [["i", `${i}`, "text"]];
    const code = (p) => p.then(() => "sent", (e) => e.code);
    try {
      // The wire, as a plain nats.js subscription sees it.
      const raw = conn.nc.subscribe(`${subj}.raw`)[Symbol.asyncIterator]();
      const sub = await conn.subscribe(`${subj}.env`);
      // One burst through the outbox: traced sends keep their places among the others. Core
      // decides the headers: a propagator's other headers are not published, a carrier without
      // a traceparent is no trace context.
      await conn.smartsend(`${subj}.raw`, text(0));
      await conn.smartsend(`${subj}.raw`, text(1), { traceHeaders: { traceparent: tp, tracestate: ts } });
      await conn.smartsend(`${subj}.raw`, text(2));
      await conn.smartsend(`${subj}.raw`, text(3), { trace_headers: { Traceparent: tp, "uber-trace-id": "a:b:0:1", baggage: "k=v" } });
      await conn.smartsend(`${subj}.raw`, text(4), { traceHeaders: { baggage: "k=v" } });
      const wire = [];
      let rawTraced;
      for (let i = 0; i < 5; i++) {
        const m = (await raw.next()).value;
        if (m.headers) rawTraced = m;
        // smartreceive of a nats Msg reads its headers too.
        const env = await nb.smartreceive(m);
        wire.push({ i: env.payloads[0][1], headers: m.headers ? [...m.headers] : null, trace: env.trace_headers ?? null });
      }

      // A subscription: batched decodes, and a link payload's receive machine.
      const [, json] = await conn.smartsend(`${subj}.env`, text("a"), { traceHeaders: { traceparent: tp, tracestate: ts } });
      await conn.smartsend(`${subj}.env`, text("b"));
      await conn.smartsend(`${subj}.env`, [["big", new Uint8Array(2000).fill(1), "binary"]], { sizeThreshold: 100, traceHeaders: { traceparent: tp } });
      // Received headers are advisory: malformed ones are dropped and the message still arrives.
      await conn.flush();
      const Headers = rawTraced.headers.constructor; // nats.js MsgHdrsImpl (the bundle exports no headers())
      const publishWith = (pairs) => {
        const h = new Headers();
        for (const [k, v] of pairs) h.set(k, v);
        conn.nc.publish(`${subj}.env`, json, { headers: h });
      };
      publishWith([["traceparent", "00-zz"], ["tracestate", ts]]);
      publishWith([["traceparent", tp.toUpperCase()]]);
      publishWith([["traceparent", tp], ["tracestate", `k=${"v".repeat(600)}`], ["baggage", "k=v"]]);
      publishWith([["other", "x"]]);
      const received = [];
      for (let i = 0; i < 7; i++) {
        const env = await sub.next({ timeout: 5000 });
        received.push({ first: env.payloads[0][0], transport: env.transports[0], trace: "trace_headers" in env ? env.trace_headers : "absent" });
      }

      // Request and reply carry their own trace contexts.
      const rpc = await conn.subscribe(`${subj}.rpc`);
      const serving = (async () => {
        const req = await rpc.next({ timeout: 5000 });
        await conn.reply(req, [["r", "pong", "text"]], { traceHeaders: { traceparent: tp2 } });
        return req.trace_headers ?? null;
      })();
      const reply = await conn.request(`${subj}.rpc`, [["q", "ping", "text"]], { traceHeaders: { traceparent: tp, tracestate: ts } });
      const requestTrace = await serving;

      // The one-call style passes the option on to the send.
      await nb.smartsend(`${subj}.env`, text("one-call"), { brokerUrl: ws, traceHeaders: { traceparent: tp } });
      const oneCall = (await sub.next({ timeout: 5000 })).trace_headers ?? null;
      await nb.close();

      // A malformed trace context is INVALID_ARGUMENT and nothing is sent.
      const bad = {
        traceparent: await code(conn.smartsend(`${subj}.env`, text("x"), { traceHeaders: { traceparent: "00-zz" } })),
        notAnObject: await code(conn.smartsend(`${subj}.env`, text("x"), { traceHeaders: tp })),
        tracestateNotText: await code(conn.smartsend(`${subj}.env`, text("x"), { trace_headers: { traceparent: tp, tracestate: 1 } })),
        tracestateTooLong: await code(conn.smartsend(`${subj}.env`, text("x"), { traceHeaders: { traceparent: tp, tracestate: `k=${"v".repeat(600)}` } })),
        baggageTwoLines: await code(conn.smartsend(`${subj}.env`, text("x"), { traceHeaders: { traceparent: tp, baggage: "a=1\r\nb: 2" } })),
        request: await code(conn.request(`${subj}.env`, text("x"), { traceHeaders: { traceparent: "00-zz" }, timeout: 300 })),
        reply: await code(conn.reply({ correlation_id: "c", reply_to: `${subj}.env` }, text("x"), { traceHeaders: { traceparent: "00-zz" } })),
      };
      bad.delivered = await sub.next({ timeout: 300 }).then(() => "delivered", (e) => e.code);
      return { wire, received, reply: reply.trace_headers ?? null, requestTrace, oneCall, bad };
    } finally {
      await conn.close();
    }
  }, { ws: env.nats.wsUrl, subj, tp: TRACEPARENT, ts: TRACESTATE, tp2: REPLY_TRACEPARENT });
  assert.deepEqual(r.wire, [
    { i: "0", headers: null, trace: null },
    { i: "1", headers: [["traceparent", [TRACEPARENT]], ["tracestate", [TRACESTATE]]], trace: { traceparent: TRACEPARENT, tracestate: TRACESTATE } },
    { i: "2", headers: null, trace: null },
    { i: "3", headers: [["traceparent", [TRACEPARENT]], ["baggage", ["k=v"]]], trace: { traceparent: TRACEPARENT, baggage: "k=v" } },
    { i: "4", headers: null, trace: null },
  ]);
  assert.deepEqual(r.received, [
    { first: "i", transport: "direct", trace: { traceparent: TRACEPARENT, tracestate: TRACESTATE } },
    { first: "i", transport: "direct", trace: "absent" },
    { first: "big", transport: "link", trace: { traceparent: TRACEPARENT } },
    { first: "i", transport: "direct", trace: "absent" },
    { first: "i", transport: "direct", trace: "absent" },
    { first: "i", transport: "direct", trace: { traceparent: TRACEPARENT, baggage: "k=v" } },
    { first: "i", transport: "direct", trace: "absent" },
  ]);
  assert.deepEqual(r.requestTrace, { traceparent: TRACEPARENT, tracestate: TRACESTATE });
  assert.deepEqual(r.reply, { traceparent: REPLY_TRACEPARENT });
  assert.deepEqual(r.oneCall, { traceparent: TRACEPARENT });
  assert.deepEqual(r.bad, {
    traceparent: "INVALID_ARGUMENT", notAnObject: "INVALID_ARGUMENT", tracestateNotText: "INVALID_ARGUMENT",
    tracestateTooLong: "INVALID_ARGUMENT", baggageTwoLines: "INVALID_ARGUMENT", request: "INVALID_ARGUMENT",
    reply: "INVALID_ARGUMENT", delivered: "TIMEOUT",
  });
});

test("trace context with the CLI: the browser's traceHeaders reach core's receiver, the CLI's --trace-headers reach env.trace_headers", async () => {
  const subj = subject("trace-cli");
  const sub = await spawnReady(
    CLI, ["--servers", env.nats.url, "sub", subj, "--count", "1", "--json", "--ready", "--timeout", "20"], "", { timeoutMs: 30_000 },
  );
  const carrier = { traceparent: TRACEPARENT, tracestate: TRACESTATE, baggage: "userId=alice,isProduction=false" };
  await ok(async ({ ws, subj, carrier }) => {
    const conn = await nb.connect({ servers: ws });
    await conn.smartsend(subj, [["m", "traced", "text"]], { traceHeaders: carrier });
    await conn.close();
  }, { ws: env.nats.wsUrl, subj, carrier });
  const out = await sub.done;
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(JSON.parse(out.stdout.trim()).trace_headers, carrier);

  const back = subject("trace-cli-back");
  await ok(async ({ ws, back }) => {
    window.conn = await nb.connect({ servers: ws });
    window.sub = await window.conn.subscribe(back);
  }, { ws: env.nats.wsUrl, back });
  try {
    for (const args of [["--trace-headers", JSON.stringify({ traceparent: TRACEPARENT, tracestate: TRACESTATE })], []]) {
      const sent = await run(CLI, ["--servers", env.nats.url, "send", back, "-p", "text:m=hi", ...args]);
      assert.equal(sent.code, 0, sent.stderr);
    }
    const got = await ok(async () => {
      const a = await window.sub.next({ timeout: 15000 });
      const b = await window.sub.next({ timeout: 15000 });
      return [a.trace_headers ?? null, "trace_headers" in b];
    });
    // The CLI may publish in a span of its own (with OpenTelemetry): the trace is the same.
    assert.equal(got[0].traceparent.slice(0, 35), TRACEPARENT.slice(0, 35));
    assert.equal(got[0].tracestate, TRACESTATE);
    assert.equal(got[1], false);
  } finally {
    await ok(async () => window.conn.close());
  }
});

test("seeds' one-call style: one shared connection per connection settings, keyed by the core", async () => {
  const r = await ok(async ({ ws }) => {
    const conn = await nb.connect({ servers: ws });
    const sub = await conn.subscribe("wasmtest.seed");
    const [a] = await nb.smartsend("wasmtest.seed", [["m", "one", "text"]], { broker_url: ws, msg_purpose: "event", metadata: { k: 1 } });
    // The same settings spelled in camelCase: the same connection.
    const [b] = await nb.smartsend("wasmtest.seed", [["m", "two", "text"]], { brokerUrl: ws, replyTo: "r.x" });
    // Other connection settings (maxRetries): another connection; senderName and sizeThreshold
    // are this message's.
    const [c] = await nb.smartsend("wasmtest.seed", [["m", "big", "text"]], { brokerUrl: ws, maxRetries: 2, senderName: "other", sizeThreshold: 0 });
    const x = await sub.next({ timeout: 5000 });
    const y = await sub.next({ timeout: 5000 });
    const z = await sub.next({ timeout: 5000 });
    // A link from the object store, read through the shared connection of brokerUrl; without one
    // nothing serves it.
    const [link] = await conn.smartsend("wasmtest.void", [["b", new Uint8Array([5, 6, 7]), "binary"]], { sizeThreshold: 0 });
    const viaBroker = await nb.smartreceive(JSON.stringify(link), { brokerUrl: ws }).then((e) => Array.from(e.payloads[0][1]));
    const alone = await nb.smartreceive(JSON.stringify(link)).then(() => "ok", (e) => e.code);
    await nb.close();
    await conn.close();
    return { same: a.sender_id === b.sender_id, other: a.sender_id !== c.sender_id, broker: a.broker_url, purpose: x.msg_purpose,
      meta: x.metadata, reply: y.reply_to, texts: [x.payloads[0][1], y.payloads[0][1], z.payloads[0][1]],
      senders: [x.sender_name, z.sender_name], transports: [x.transports[0], z.transports[0]], viaBroker, alone };
  }, { ws: env.nats.wsUrl });
  assert.deepEqual(r, { same: true, other: true, broker: env.nats.wsUrl, purpose: "event", meta: { k: 1 }, reply: "r.x",
    texts: ["one", "two", "big"], senders: ["", "other"], transports: ["direct", "link"], viaBroker: [5, 6, 7], alone: "URL_NOT_ALLOWED" });
});

test("malformed Arrow IPC never escapes as a crash: the core restarts, in-flight calls still finish", async () => {
  env.web.store.set("slow.bin", affine(5000, 9, 1, 256));
  const r = await ok(async ({ ws, o }) => {
    // The core's own mutation sweep (core/tests/arrow_mutations.rs), on an apache-arrow JS stream.
    const rows = Array.from({ length: 50 }, (_, i) => ({ id: i, name: `n${i}`, x: i * 0.5, ok: i % 2 === 0 }));
    const good = nb.arrow.tableToIPC(nb.arrow.tableFromJSON(rows));
    let seed = 0x9e3779b97f4a7c15n;
    const M = (1n << 64n) - 1n;
    const next = () => { seed ^= (seed << 13n) & M; seed ^= seed >> 7n; seed ^= (seed << 17n) & M; return seed; };
    const message = (bytes) => JSON.stringify({ payloads: [{ dataname: "t", payload_type: "arrowtable", transport: "direct",
      encoding: "base64", size: bytes.length, data: btoa(String.fromCharCode(...bytes)) }] });
    const outcomes = {};
    let aborting = null;
    for (let round = 0; round < 600; round++) {
      let bytes = good.slice();
      if (round % 3 === 0) bytes = bytes.slice(0, Number(next() % BigInt(good.length)));
      else for (let k = 0n, n = 1n + next() % 4n; k < n; k++) bytes[Number(next() % BigInt(bytes.length))] = Number(next() & 255n);
      let key;
      try {
        await nb.smartreceive(message(bytes));
        key = "ok";
      } catch (e) {
        key = e.name === "NATSBridgeError" ? e.code : `${e.name}: ${e.message}`;
        if (/restarted/.test(e.message)) aborting ??= bytes;
      }
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    if (!aborting) return { outcomes };
    // Sending such bytes as an arrowtable: refused with the sender's code.
    const conn = await nb.connect({ servers: ws });
    const sendCode = await conn.smartsend("wasmtest.arrow", [["t", aborting, "arrowtable"]]).then(() => "sent", (e) => e.code);
    // A receive waiting for its download and a send waiting for its upload while the core restarts.
    const link = JSON.stringify({ correlation_id: "c0ffee00-0000-4000-8000-000000000002", payloads: [{ dataname: "s",
      payload_type: "binary", transport: "link", encoding: "none", size: 5000, data: `${o}/flaky/1/slow.bin` }] });
    const receiving = conn.smartreceive(link, {});
    const slowConn = await nb.connect({ servers: ws, allowedOrigins: [`${o}/flaky`], baseDelay: 300 });
    const receiving2 = slowConn.smartreceive(link);
    const sending = conn.smartsend("wasmtest.arrow", [["big", new Uint8Array(3_000_000).fill(7), "binary"]], { sizeThreshold: 0 });
    const abortCode = await nb.smartreceive(message(aborting)).then(() => "ok", (e) => e.code);
    const received = await receiving2.then((e) => e.payloads[0][1].length, (e) => e.code);
    const sent = await sending.then(([e]) => e.payloads[0].transport, (e) => e.code);
    const notAllowed = await receiving.then(() => "ok", (e) => e.code);
    const after = await nb.smartreceive(message(good)).then((e) => e.payloads[0][1].length);
    await conn.close();
    await slowConn.close();
    return { outcomes, sendCode, abortCode, received, sent, notAllowed, after };
  }, { ws: env.nats.wsUrl, o: env.web.origin });
  const kinds = Object.keys(r.outcomes).sort();
  assert.deepEqual(kinds, ["DESERIALIZATION_ERROR", "ok"], JSON.stringify(r.outcomes));
  assert.ok(r.sendCode, `the sweep found no input that aborts the core; the restart path went untested: ${JSON.stringify(r.outcomes)}`);
  assert.deepEqual({ ...r, outcomes: undefined }, {
    outcomes: undefined, sendCode: "INVALID_PAYLOAD_TYPE", abortCode: "DESERIALIZATION_ERROR", received: 5000,
    sent: "link", notAllowed: "URL_NOT_ALLOWED", after: 50,
  });
});

// --- the core's rules, driven from the browser ----------------------------------------------

/** GET times (ms) of `path` in the web server's log since index `from`. */
function getTimes(from, path) {
  const { requests, requestTimes } = env.web;
  return requests.map((r, i) => [r, requestTimes[i]]).slice(from).filter(([r]) => r === `GET ${path}`).map(([, t]) => t);
}

test("fetch retries follow core's schedule: attempts, doubling delays up to the cap, then DOWNLOAD_FAILED", async () => {
  const bytes = Buffer.from(affine(700, 3, 1, 256));
  env.web.store.set("sched.bin", bytes);
  const o = env.web.origin;
  const before = env.web.requests.length;
  const r = await ok(async ({ o, size, sha }) => {
    const link = (url) => JSON.stringify({ correlation_id: "c0ffee00-0000-4000-8000-00000000000a",
      payloads: [{ dataname: "b", payload_type: "binary", transport: "link", encoding: "none", size, data: url, metadata: { sha256: sha } }] });
    // camelCase and snake_case spellings, durations in ms.
    const opts = { allowedOrigins: `${o}/flaky`, maxRetries: 5, base_delay: 80, maxDelay: 200 };
    const recv = (url) => nb.smartreceive(link(url), opts).then((e) => e.payloads[0][1].length, (e) => [e.code, e.reason]);
    return { recovered: await recv(`${o}/flaky/3/sched.bin`), exhausted: await recv(`${o}/flaky/99/sched.bin`) };
  }, { o, size: bytes.length, sha: sha256(bytes) });
  assert.equal(r.recovered, 700);
  assert.equal(r.exhausted[0], "DOWNLOAD_FAILED");
  assert.match(r.exhausted[1], /after 5 attempts: HTTP 503: try later$/);
  const gaps = (ts) => ts.slice(1).map((t, i) => t - ts[i]);
  // A timer never fires early, but under load it fires late (an 80 ms wait took 287 ms with the
  // CPUs saturated): each wait is at least core's, and at most 400 ms more, which still tells
  // the cap from none (the fourth wait would be 640 ms uncapped).
  for (const [path, attempts] of [["/flaky/3/sched.bin", 4], ["/flaky/99/sched.bin", 5]]) {
    const times = getTimes(before, path);
    assert.equal(times.length, attempts, `${path}: ${attempts} attempts (the 4th succeeds; maxRetries 5 in all)`);
    gaps(times).forEach((gap, i) => {
      const want = [80, 160, 200, 200][i];
      assert.ok(gap >= want - 5 && gap < want + 400, `${path}: wait ${i + 1} was ${gap} ms, core says ${want}`);
    });
  }
});

test("a link nobody serves is URL_NOT_ALLOWED before any request, even beside an allowed one", async () => {
  env.web.store.set("ok.bin", Buffer.from("fine"));
  const o = env.web.origin;
  const before = env.web.requests.length;
  const r = await ok(async ({ o, ws }) => {
    const payload = (dataname, data) => ({ dataname, payload_type: "binary", transport: "link", encoding: "none", size: 4, data });
    const msg = (...payloads) => JSON.stringify({ correlation_id: "c0ffee00-0000-4000-8000-00000000000b", payloads });
    const code = (p) => p.then(() => "ok", (e) => [e.code, e.correlation_id]);
    const mixed = msg(payload("a", `${o}/store/ok.bin`), payload("b", `${o}/private/x.bin`));
    const objectLink = msg(payload("a", "nats-obj://natsbridge/00000000-0000-4000-8000-000000000000"));
    const noStore = await nb.connect({ servers: ws, objectStore: false, allowedOrigins: [`${o}/store`] });
    const out = {
      mixed: await code(nb.smartreceive(mixed, { allowedOrigins: [`${o}/store`] })),
      userinfo: await code(nb.smartreceive(msg(payload("a", `${o.replace("//", "//u:p@")}/store/ok.bin`)), { allowedOrigins: [`${o}/store`] })),
      objectNoStore: await code(noStore.smartreceive(objectLink)),
      allowedAlone: await nb.smartreceive(msg(payload("a", `${o}/store/ok.bin`)), { allowedOrigins: [`${o}/store`] }).then((e) => e.payloads[0][1].length),
    };
    await noStore.close();
    return out;
  }, { o, ws: env.nats.wsUrl });
  const cid = "c0ffee00-0000-4000-8000-00000000000b";
  assert.deepEqual(r, { mixed: ["URL_NOT_ALLOWED", cid], userinfo: ["URL_NOT_ALLOWED", cid], objectNoStore: ["URL_NOT_ALLOWED", cid], allowedAlone: 4 });
  const reqs = env.web.requests.slice(before);
  assert.deepEqual(reqs.filter((x) => x.startsWith("GET /store/") || x.startsWith("GET /private/")), ["GET /store/ok.bin"],
    "only the message whose links are all allowed made a request");
});

// --- links received as streams (spec/PROTOCOL.md §8.3.2) ---------------------------------------

test("nextStreamed: a 1.5 MB object-store link arrives exact through its ReadableStream, its sha256 known at the end; direct payloads beside it decoded", async () => {
  const size = 1_500_000;
  const r = await ok(async ({ ws, subj, size }) => {
    const conn = await nb.connect({ servers: ws });
    try {
      const sub = await conn.subscribe(subj);
      const big = Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) % 251);
      const data = [["note", "hi ✓", "text"], ["cfg", { a: [1, 2] }, "dictionary"], ["big", big, "binary"], ["part", big.slice(0, 200_000), "binary"]];
      const [sent] = await conn.smartsend(subj, data, { sizeThreshold: 100_000 });
      await conn.smartsend(subj, [["only", "direct", "text"]]);
      const env = await sub.nextStreamed({ timeout: 15000 });
      const link = env.payloads[2][1];
      const before = {
        isLinkStream: link instanceof nb.LinkStream, isReadable: link.stream instanceof ReadableStream, sha256: link.sha256,
        dataname: link.dataname, payload_type: link.payload_type, payloadType: link.payloadType, size: link.size,
      };
      const read = await drainLink(link);
      // The other link by for await over the LinkStream itself, and one by bytes().
      const part = env.payloads[3][1];
      const got = [];
      for await (const chunk of part) got.push(...chunk.subarray(0, 3));
      const plain = await sub.nextStreamed({ timeout: 15000 });
      return {
        direct: env.payloads.slice(0, 2),
        names: env.payloads.map((p) => [p[0], p[2]]),
        transports: env.transports,
        sameCid: env.correlation_id === sent.correlation_id,
        subject: env.subject === subj,
        before,
        read,
        expected: sent.payloads[2].metadata.sha256,
        partSha: [part.sha256, sent.payloads[3].metadata.sha256],
        plain: [plain.payloads, plain.transports],
      };
    } finally {
      await conn.close();
    }
  }, { ws: env.nats.wsUrl, subj: subject("stream"), size });
  assert.deepEqual(r.direct, [["note", "hi ✓", "text"], ["cfg", { a: [1, 2] }, "dictionary"]]);
  assert.deepEqual(r.names, [["note", "text"], ["cfg", "dictionary"], ["big", "binary"], ["part", "binary"]]);
  assert.deepEqual(r.transports, ["direct", "direct", "link", "link"]);
  assert.ok(r.sameCid && r.subject);
  assert.deepEqual(r.before, {
    isLinkStream: true, isReadable: true, sha256: null, dataname: "big", payload_type: "binary", payloadType: "binary", size,
  });
  assert.equal(r.read.n, size);
  assert.ok(r.read.chunks > 1, `streamed in chunks, got ${r.read.chunks}`);
  assert.equal(r.read.sha256, r.expected);
  assert.equal(r.read.link, r.expected, "link.sha256 once the end was checked");
  assert.equal(r.partSha[0], r.partSha[1]);
  assert.deepEqual(r.plain, [[["only", "direct", "text"]], ["direct"]], "a message without links is as next() gives it");
});

test("nextStreamed: a forged sha256 is CHECKSUM_MISMATCH at the stream's end, after every byte; a forged size before any; bytes() of a stream already read is INVALID_ARGUMENT", async () => {
  const r = await ok(async ({ ws, subj }) => {
    const conn = await nb.connect({ servers: ws });
    try {
      const sub = await conn.subscribe(subj);
      const bytes = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256);
      const [sent] = await conn.smartsend(`${subj}.nobody`, [["b", bytes, "binary"]], { sizeThreshold: 0 });
      const p = sent.payloads[0];
      const forge = (over) => conn.nc.publish(subj, JSON.stringify({ ...sent, payloads: [{ ...p, ...over }] }));
      forge({ metadata: { ...p.metadata, sha256: "ab".repeat(32) } });
      forge({ size: p.size - 1 });
      forge({});
      forge({});
      forge({});
      const link = async () => (await sub.nextStreamed({ timeout: 15000 })).payloads[0][1];
      const badSha = await drainLink(await link());
      const badSize = await drainLink(await link());
      const partly = await link();
      const reader = partly.stream.getReader();
      const first = (await reader.read()).value.length;
      reader.releaseLock();
      const again = await partly.bytes().then(() => "ok", (e) => e.code);
      const rest = await drainLink(partly);
      const whole = await (await link()).bytes();
      // Leaving a for await loop cancels the stream (its body too); nothing more comes of it.
      const left = await link();
      let chunks = 0;
      for await (const chunk of left) if (chunk.length && ++chunks === 1) break;
      const cancelled = [chunks, left.sha256, await drainLink(left).then((d) => d.n)];
      return { cid: sent.correlation_id, size: p.size, badSha, badSize, again, first, rest: rest.n, whole: [whole.length, await nb.sha256Hex(whole) === p.metadata.sha256], cancelled };
    } finally {
      await conn.close();
    }
  }, { ws: env.nats.wsUrl, subj: subject("forged") });
  assert.deepEqual(r.badSha, { code: "CHECKSUM_MISMATCH", correlation_id: r.cid, n: r.size, link: null });
  assert.deepEqual(r.badSize, { code: "CHECKSUM_MISMATCH", correlation_id: r.cid, n: 0, link: null });
  assert.equal(r.again, "INVALID_ARGUMENT");
  assert.equal(r.first + r.rest, r.size, "the stream goes on after the refused bytes()");
  assert.deepEqual(r.whole, [r.size, true]);
  assert.deepEqual(r.cancelled, [1, null, 0]);
});

test("nextStreamed: a link outside the allowed origins is URL_NOT_ALLOWED with no request, even beside an allowed one; the subscription goes on", async () => {
  env.web.store.set("streamok.bin", Buffer.from("fine"));
  const o = env.web.origin;
  const before = env.web.requests.length;
  const r = await ok(async ({ ws, subj, o }) => {
    const conn = await nb.connect({ servers: ws, allowedOrigins: [`${o}/store`] });
    try {
      const sub = await conn.subscribe(subj);
      const payload = (dataname, data) => ({ dataname, payload_type: "binary", transport: "link", encoding: "none", size: 4, data });
      const msg = (...payloads) => JSON.stringify({ correlation_id: "c0ffee00-0000-4000-8000-0000000000c1", payloads });
      conn.nc.publish(subj, msg(payload("a", `${o}/store/streamok.bin`), payload("b", `${o}/private/x.bin`)));
      conn.nc.publish(subj, msg(payload("a", `http://127.0.0.1:1/store/streamok.bin`)));
      conn.nc.publish(subj, msg(payload("a", `${o}/store/streamok.bin`)));
      const code = (p) => p.then(() => "ok", (e) => [e.code, e.correlation_id]);
      const mixed = await code(sub.nextStreamed({ timeout: 15000 }));
      const otherPort = await code(sub.nextStreamed({ timeout: 15000 }));
      const env = await sub.nextStreamed({ timeout: 15000 });
      return { mixed, otherPort, allowed: new TextDecoder().decode(await env.payloads[0][1].bytes()) };
    } finally {
      await conn.close();
    }
  }, { ws: env.nats.wsUrl, subj: subject("notallowed"), o });
  const cid = "c0ffee00-0000-4000-8000-0000000000c1";
  assert.deepEqual(r, { mixed: ["URL_NOT_ALLOWED", cid], otherPort: ["URL_NOT_ALLOWED", cid], allowed: "fine" });
  const reqs = env.web.requests.slice(before).filter((x) => x.startsWith("GET /store/") || x.startsWith("GET /private/"));
  assert.deepEqual(reqs, ["GET /store/streamok.bin"], "only the message whose links are all allowed made a request");
});

test("nextStreamed: HTTP links stream from an allowed origin: fetched only when read, retried, resumed by a range request (or skipping what a 200 resends), checked", async () => {
  const bytes = affine(1_200_000, 13, 5, 251);
  env.web.store.set("stream.bin", bytes);
  const o = env.web.origin;
  const subj = subject("http");
  const size = bytes.length;
  const sha = sha256(bytes);
  const before = env.web.requests.length;
  const rangesBefore = env.web.ranges.length;
  await ok(async ({ ws, subj, o, size, sha }) => {
    const allowed = ["store", "cut", "flaky", "chunked", "lie"].map((p) => `${o}/${p}`);
    window.conn = await nb.connect({ servers: ws, allowedOrigins: allowed, maxRetries: 3, baseDelay: 50 });
    const sub = await conn.subscribe(subj);
    const link = (url, over = {}) => JSON.stringify({
      correlation_id: "c0ffee00-0000-4000-8000-0000000000c2",
      payloads: [{ dataname: "s", payload_type: "binary", transport: "link", encoding: "none", size, data: url, metadata: { sha256: sha }, ...over }],
    });
    for (const path of ["store", "cut/range", "cut/whole", "flaky/1"]) conn.nc.publish(subj, link(`${o}/${path}/stream.bin`));
    conn.nc.publish(subj, link(`${o}/chunked/stream.bin`, { size: size - 100_000 }));
    conn.nc.publish(subj, link(`${o}/lie/stream.bin`));
    window.streamed = [];
    for (let i = 0; i < 6; i++) streamed.push((await sub.nextStreamed({ timeout: 15000 })).payloads[0][1]);
  }, { ws: env.nats.wsUrl, subj, o, size, sha });
  const gets = () => env.web.requests.slice(before).filter((x) => x.startsWith("GET /") && x.endsWith("/stream.bin"));
  assert.deepEqual(gets(), [], "nothing is fetched before a stream is read");
  const r = await ok(async () => {
    const out = [];
    for (const link of streamed) out.push(await drainLink(link));
    await conn.close();
    return out;
  });
  const [plain, range, whole, flaky, chunked, lie] = r;
  for (const got of [plain, range, whole, flaky]) assert.deepEqual([got.n, got.sha256, got.link], [size, sha, sha]);
  assert.equal(chunked.code, "CHECKSUM_MISMATCH");
  assert.ok(chunked.n <= size - 100_000, `more bytes than the size fail as they arrive (${chunked.n} delivered)`);
  assert.deepEqual(lie, { code: "CHECKSUM_MISMATCH", correlation_id: "c0ffee00-0000-4000-8000-0000000000c2", n: size, link: null });
  const count = (p) => gets().filter((x) => x === `GET ${p}`).length;
  assert.deepEqual([count("/store/stream.bin"), count("/cut/range/stream.bin"), count("/cut/whole/stream.bin"), count("/flaky/1/stream.bin")], [1, 2, 2, 2]);
  const ranges = env.web.ranges.slice(rangesBefore);
  assert.equal(ranges.length, 4);
  assert.equal(ranges[0], null);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1])?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= size / 2, `resumed where the broken body stopped: ${ranges[1]}`);
  assert.equal(ranges[2], null);
  assert.match(ranges[3], /^bytes=\d+-$/, "the server ignored it and sent every byte; those already delivered were skipped");
});

test("every caller mistake is INVALID_ARGUMENT", async () => {
  const r = await ok(async ({ ws }) => {
    const code = (p) => Promise.resolve().then(p).then(() => "ok", (e) => (e.name === "NATSBridgeError" ? e.code : `${e.name}: ${e.message}`));
    const connect = (opts) => code(() => nb.connect({ servers: ws, ...opts }));
    const conn = await nb.connect({ servers: ws });
    const sub = await conn.subscribe("wasmtest.args");
    const out = {
      unknown: await connect({ bogus: 1 }),
      badThreshold: await connect({ sizeThreshold: -1 }),
      fractionalThreshold: await connect({ size_threshold: 1.5 }),
      zeroRetries: await connect({ maxRetries: 0 }),
      negativeDelay: await connect({ baseDelay: -5 }),
      nanDelay: await connect({ maxDelay: NaN }),
      badTtl: await connect({ objectStoreTtl: "soon" }),
      badFlag: await connect({ objectStore: "maybe" }),
      badOrigin: await connect({ allowedOrigins: ["not a url"] }),
      twice: await connect({ maxRetries: 2, max_retries: 3 }),
      oldRetry: await connect({ retry: { retries: 2 } }),
      oldTtl: await connect({ object_store_ttl_ms: 1000 }),
      oldPass: await connect({ pass: "x" }),
      unavailable: await connect({ nkey: "SUAAAAAAAA" }),
      fileserver: await connect({ fileserverUrl: "http://127.0.0.1:1/plik" }),
      badArrow: await connect({ arrow: "columns" }),
      notAnObject: await code(() => nb.connect(`${ws}`)),
      noServer: await code(() => nb.connect({})),
      nextOldName: await code(() => sub.next({ timeout_ms: 10 })),
      nextNegative: await code(() => sub.next({ timeout: -1 })),
      subscribeQueue: await code(() => conn.subscribe("wasmtest.args", { queue: 5 })),
      subscribeUnknown: await code(() => conn.subscribe("wasmtest.args", { queue_group: "q" })),
      requestTimeout: await code(() => conn.request("wasmtest.args", [], { timeout: "5s" })),
      requestOldName: await code(() => conn.request("wasmtest.args", [], { timeout_ms: 100 })),
      sendOption: await code(() => conn.smartsend("wasmtest.args", [], { correlation: "c" })),
      sendSubject: await code(() => conn.smartsend(42, [])),
      replyCode: await code(() => conn.replyError({ correlation_id: "c", reply: "r" }, "NOPE", "x")),
      replyMessage: await code(() => conn.replyError({ correlation_id: "c", reply: "r" }, "TIMEOUT", 5)),
      replyRequest: await code(() => conn.reply("not an envelope", [])),
      receiveOption: await code(() => conn.smartreceive("{}", { allowedOrigins: ["http://x"] })),
      oneCallNoBroker: await code(() => nb.smartsend("wasmtest.args", [["t", "x", "text"]], {})),
      oneCallReceiveSendOption: await code(() => nb.smartreceive("{}", { msgPurpose: "event" })),
    };
    out.delivered = await sub.next({ timeout: 200 }).then(() => "delivered", (e) => e.code);
    await conn.close();
    return out;
  }, { ws: env.nats.wsUrl });
  const { delivered, ...mistakes } = r;
  for (const [name, code] of Object.entries(mistakes)) assert.equal(code, "INVALID_ARGUMENT", name);
  assert.equal(delivered, "TIMEOUT", "nothing was published");
});

test("close() drains: messages already on their way are delivered before the connection closes", async () => {
  const r = await ok(async ({ ws }) => {
    const receiver = await nb.connect({ servers: ws });
    const sender = await nb.connect({ servers: ws });
    const sub = await receiver.subscribe("wasmtest.drain");
    const n = 3000;
    // Not awaited one by one: they are published as fast as the sender can, then flushed.
    const sends = Array.from({ length: n }, (_, i) => sender.smartsend("wasmtest.drain", [["i", `${i}`.padEnd(500), "text"]]));
    await Promise.all(sends);
    await sender.flush();
    const closing = receiver.close();
    let got = 0;
    for (;;) {
      const env = await sub.next({ timeout: 5000 });
      if (env === null) break;
      got++;
    }
    await closing;
    await sender.close();
    const afterClose = await sender.smartsend("wasmtest.drain", [["i", "late", "text"]]).then(() => "sent", (e) => e.code);
    return { got, closed: receiver.nc.isClosed(), afterClose };
  }, { ws: env.nats.wsUrl });
  assert.deepEqual(r, { got: 3000, closed: true, afterClose: "NATS_CONNECTION_FAILED" });
});

test("vocabulary: the browser takes core's option names, camelCase and snake_case, and its types list them", async () => {
  const r = await ok(async ({ ws }) => {
    const core = await nb.coreConstants();
    const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
    const message = (p) => p.then(() => "accepted", (e) => e.reason);
    const conn = await nb.connect({ servers: ws });
    const connect = {};
    for (const name of core.optionNames) {
      // A value of the wrong kind: core names the option it checked, or says a page cannot use it.
      for (const spelling of new Set([name, camel(name)])) connect[spelling] = await message(nb.connect({ servers: ws, [spelling]: {} }));
    }
    const send = {};
    for (const name of core.sendOptionNames) {
      for (const spelling of new Set([name, camel(name)])) send[spelling] = await message(conn.smartsend("wasmtest.vocab", [], { [spelling]: [] }));
    }
    const typo = await message(nb.connect({ servers: ws, sizeThresold: 1 }));
    await conn.close();
    return { core, connect, send, typo };
  }, { ws: env.nats.wsUrl });
  const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
  for (const name of r.core.optionNames) {
    for (const spelling of [name, camel(name)]) {
      const why = r.connect[spelling];
      if (r.core.unavailableOptions.includes(name)) assert.match(why, /not available in the browser/, spelling);
      else assert.ok(why.startsWith(`option "${name}" needs`), `${spelling}: ${why}`);
    }
  }
  for (const name of r.core.sendOptionNames) {
    for (const spelling of [name, camel(name)]) assert.ok(r.send[spelling].startsWith(`option "${name}" needs`), `${spelling}: ${r.send[spelling]}`);
  }
  assert.match(r.typo, /^unknown option "size_thresold"/);
  // The public types name exactly core's options a page can use, in camelCase.
  const dts = fs.readFileSync(path.join(repo, "bindings-wasm/js/natsbridge.d.ts"), "utf8");
  const keys = (iface) => [...dts.match(new RegExp(`interface ${iface}\\b[^{]*\\{([^}]*)\\}`))[1].matchAll(/(\w+)\?:/g)].map((m) => m[1]);
  const connectKeys = [...keys("ConnectOptions"), ...keys("DownloadOptions")].filter((k) => k !== "arrow" && k !== "wasm").sort();
  const available = r.core.optionNames.filter((n) => !r.core.unavailableOptions.includes(n)).map(camel).sort();
  assert.deepEqual(connectKeys, available);
  assert.deepEqual(keys("SendOptions").sort(), r.core.sendOptionNames.map(camel).sort());
  assert.deepEqual(keys("StreamOptions").sort(), r.core.streamOptionNames.map(camel).sort());
  assert.deepEqual(keys("ConsumeOptions").filter((k) => k !== "arrow").sort(), r.core.consumeOptionNames.map(camel).sort());
});

// --- JetStream mode ----------------------------------------------------------------------------

const streamName = (tag) => `WT${process.pid}_${++subjectSeq}_${tag}`;

/** `natsbridge sweep STREAM --dry-run --min-age 0`: the object-store link objects tagged with the
 * stream (`checked`) and those whose msg_id is on no message in it (`orphans`). */
async function sweep(stream) {
  const r = await run(CLI, ["--servers", env.nats.url, "sweep", stream, "--dry-run", "--min-age", "0"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test("JetStream: durable smartsend gets PubAcks 1, 2 and the CLI consumes them; an uncaptured subject and bad streams are INVALID_ARGUMENT", async () => {
  const name = streamName("PUB");
  const r = await ok(async ({ ws, name }) => {
    const conn = await nb.connect({ servers: ws, jetstream: true });
    const code = async (f) => {
      try {
        await f();
        return "no error";
      } catch (e) {
        return { code: e.code, cid: e.correlation_id, reason: e.reason };
      }
    };
    try {
      const summary = await conn.addStream(name, { storage: "memory" });
      const again = await conn.addStream(name, { storage: "memory", duplicateWindow: 60_000 });
      const [a] = await conn.smartsend(`${name}.a`, [["n", 1, "dictionary"]], { senderName: "browser" });
      const [b] = await conn.smartsend(`${name}.b`, [["blob", new Uint8Array(3000).fill(7), "binary"]], { sizeThreshold: 100 });
      return {
        summary, again, a: a.pub_ack, b: b.pub_ack, transport: b.payloads[0].transport,
        uncaptured: await code(() => conn.smartsend(`nostream.${name}`, [["n", 3, "dictionary"]], { correlationId: "cid-uncaptured" })),
        uncapturedLink: await code(() => conn.smartsend(`nostream.${name}`, [["blob", new Uint8Array(3000), "binary"]], { sizeThreshold: 100 })),
        outlives: await code(() => conn.addStream(`${name}X`, { maxAge: 2 * 3600 * 1000 })),
        badRetention: await code(() => conn.addStream(`${name}Y`, { retention: "queue" })),
        badName: await code(() => conn.addStream("a.b")),
        unknown: await code(() => conn.addStream(`${name}Z`, { maxAgee: 1 })),
      };
    } finally {
      await conn.close();
    }
  }, { ws: env.nats.wsUrl, name });
  assert.deepEqual(r.summary, { name, subjects: [`${name}.>`], max_age_secs: 3600, replicas: 1, messages: 0, dead_letter_stream: `${name}_DEAD_LETTER` });
  assert.equal(r.again.messages, 0);
  assert.deepEqual(r.a, { stream: name, sequence: 1, duplicate: false });
  assert.deepEqual(r.b, { stream: name, sequence: 2, duplicate: false });
  assert.equal(r.transport, "link");
  assert.equal(r.uncaptured.code, "INVALID_ARGUMENT");
  assert.equal(r.uncaptured.cid, "cid-uncaptured");
  assert.match(r.uncaptured.reason, /no JetStream stream captures subject/);
  assert.equal(r.uncapturedLink.code, "INVALID_ARGUMENT");
  for (const k of ["outlives", "badRetention", "badName", "unknown"]) assert.equal(r[k].code, "INVALID_ARGUMENT", `${k}: ${JSON.stringify(r[k])}`);
  assert.match(r.outlives.reason, /outlives the link objects' TTL/);
  // The link object is tagged with the stream and its msg_id, and that msg_id is on a message in
  // the stream (Nats-Msg-Id): core's sweep finds it and no orphan.
  const swept = await sweep(name);
  assert.deepEqual([swept.checked, swept.orphans], [1, []]);
  // Core's consumer reads what the browser published durably.
  const cli = await run(CLI, ["--servers", env.nats.url, "consume", name, "cli", "--count", "2", "--json", "--timeout", "10"]);
  assert.equal(cli.code, 0, cli.stderr);
  const lines = cli.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => [l.delivery.stream_sequence, l.delivery.delivered, l.payloads[0].dataname]), [[1, 1, "n"], [2, 1, "blob"]]);
  assert.equal(lines[0].sender_name, "browser");
});

test("JetStream: a durable smartsend carries the trace headers beside Nats-Msg-Id; consumers read them", async () => {
  const name = streamName("TRC");
  const r = await ok(async ({ ws, name, tp, ts }) => {
    const conn = await nb.connect({ servers: ws, jetstream: true });
    try {
      await conn.addStream(name, { storage: "memory" });
      const raw = conn.nc.subscribe(`${name}.>`)[Symbol.asyncIterator]();
      await conn.nc.flush();
      const [a] = await conn.smartsend(`${name}.a`, [["n", 1, "dictionary"]], { traceHeaders: { traceparent: tp, tracestate: ts } });
      // With an upload first (the send machine's slow path).
      const [b] = await conn.smartsend(`${name}.b`, [["blob", new Uint8Array(3000).fill(7), "binary"]], { sizeThreshold: 100, traceHeaders: { traceparent: tp } });
      const [c] = await conn.smartsend(`${name}.c`, [["n", 3, "dictionary"]]);
      const wire = [];
      for (let i = 0; i < 3; i++) {
        const m = (await raw.next()).value;
        wire.push(Object.fromEntries([...m.headers].map(([k, v]) => [k, v[0]])));
      }
      const consumer = await conn.consume(name, "traced", { ackWait: 5000 });
      const delivered = [];
      for (let i = 0; i < 3; i++) {
        const d = await consumer.next({ timeout: 5000 });
        delivered.push("trace_headers" in d.envelope ? d.envelope.trace_headers : "absent");
        await d.ack();
      }
      consumer.stop();
      return { ids: [a.msg_id, b.msg_id, c.msg_id], acks: [a.pub_ack.sequence, b.pub_ack.sequence, c.pub_ack.sequence], transport: b.payloads[0].transport, wire, delivered };
    } finally {
      await conn.close();
    }
  }, { ws: env.nats.wsUrl, name, tp: TRACEPARENT, ts: TRACESTATE });
  assert.deepEqual(r.acks, [1, 2, 3]);
  assert.equal(r.transport, "link");
  assert.deepEqual(r.wire, [
    { traceparent: TRACEPARENT, tracestate: TRACESTATE, "Nats-Msg-Id": r.ids[0] },
    { traceparent: TRACEPARENT, "Nats-Msg-Id": r.ids[1] },
    { "Nats-Msg-Id": r.ids[2] },
  ]);
  assert.deepEqual(r.delivered, [{ traceparent: TRACEPARENT, tracestate: TRACESTATE }, { traceparent: TRACEPARENT }, "absent"]);
  // Core's consumer reads them too.
  const cli = await run(CLI, ["--servers", env.nats.url, "consume", name, "cli", "--count", "3", "--json", "--timeout", "10"]);
  assert.equal(cli.code, 0, cli.stderr);
  const lines = cli.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.trace_headers ?? null), [{ traceparent: TRACEPARENT, tracestate: TRACESTATE }, { traceparent: TRACEPARENT }, null]);
});

test("JetStream: consume yields decoded deliveries with their info; nak redelivers; settling twice is INVALID_ARGUMENT", async () => {
  const name = streamName("CON");
  const r = await ok(async ({ ws, name }) => {
    const conn = await nb.connect({ servers: ws, jetstream: true });
    const code = async (f) => {
      try {
        await f();
        return "no error";
      } catch (e) {
        return e.code;
      }
    };
    try {
      await conn.addStream(name, { storage: "memory" });
      const [sent] = await conn.smartsend(`${name}.x`, [["greeting", "hi", "text"], ["cfg", { a: 1 }, "dictionary"]], { msgPurpose: "chat" });
      const consumer = await conn.consume(name, "app", { ackWait: 5000 });
      const first = await consumer.next({ timeout: 5000 });
      await first.inProgress();
      await first.nak();
      const second = await consumer.next({ timeout: 5000 });
      await second.ack();
      const out = {
        sent,
        first: { info: first.info, envelope: first.envelope },
        second: second.info,
        twice: await code(() => second.ack()),
        nakAfterAck: await code(() => second.nak()),
        termAfterAck: await code(() => second.term()),
        progressAfterAck: await code(() => second.inProgress()),
        timeout: await code(() => consumer.next({ timeout: 300 })),
        noStream: await code(() => conn.consume(`${name}NONE`, "app")),
        badOption: await code(() => conn.consume(name, "app2", { ackWiat: 1000 })),
        badDurable: await code(() => conn.consume(name, "a.b")),
        outlives: await code(() => conn.consume(name, "app3", { ackWait: 3600_000, maxDeliver: 5 })),
      };
      // The same durable with other settings: updated.
      (await conn.consume(name, "app", { ackWait: 7000 })).stop();
      // One more through the async iterator.
      await conn.smartsend(`${name}.y`, [["greeting", "again", "text"]]);
      for await (const d of consumer) {
        out.iterated = [d.info.stream_sequence, d.envelope.payloads[0][1]];
        await d.term();
        break;
      }
      return out;
    } finally {
      await conn.close();
    }
  }, { ws: env.nats.wsUrl, name });
  const info = r.first.info;
  assert.deepEqual(info, { stream: name, consumer: "app", stream_sequence: 1, consumer_sequence: 1, delivered: 1, pending: 0, replayed: false, redelivered: false });
  assert.deepEqual(r.second, { stream: name, consumer: "app", stream_sequence: 1, consumer_sequence: 2, delivered: 2, pending: 0, replayed: false, redelivered: true });
  const envelope = r.first.envelope;
  assert.equal(envelope.correlation_id, r.sent.correlation_id);
  assert.equal(envelope.msg_id, r.sent.msg_id);
  assert.equal(envelope.msg_purpose, "chat");
  assert.equal(envelope.subject, `${name}.x`);
  assert.equal(envelope.reply, undefined);
  assert.deepEqual(envelope.payloads, [["greeting", "hi", "text"], ["cfg", { a: 1 }, "dictionary"]]);
  assert.deepEqual(envelope.transports, ["direct", "direct"]);
  for (const k of ["twice", "nakAfterAck", "termAfterAck", "progressAfterAck", "noStream", "badOption", "badDurable", "outlives"]) {
    assert.equal(r[k], "INVALID_ARGUMENT", k);
  }
  assert.equal(r.timeout, "TIMEOUT");
  assert.deepEqual(r.iterated, [2, "again"]);
});

test("JetStream: what the application sends before it acks a delivery goes out before the ack", async () => {
  const name = streamName("ORD");
  const r = await ok(async ({ ws, name }) => {
    const durable = await nb.connect({ servers: ws, jetstream: true });
    const conn = await nb.connect({ servers: ws });
    const observer = await nb.connect({ servers: ws });
    try {
      await conn.addStream(name, { storage: "memory" });
      await durable.smartsend(`${name}.in`, [["job", "one", "text"]]);
      const seen = [];
      observer.nc.subscribe(`$JS.ACK.${name}.>`, { callback: () => seen.push("ack") });
      observer.nc.subscribe(`${name}_out`, { callback: () => seen.push("out") });
      await observer.flush();
      const consumer = await conn.consume(name, "worker", { ackWait: 5000 });
      const delivery = await consumer.next({ timeout: 5000 });
      await conn.smartsend(`${name}_out`, [["result", "done", "text"]]); // core NATS, queued
      await delivery.ack();
      await conn.flush();
      await observer.flush();
      consumer.stop();
      return seen;
    } finally {
      await durable.close();
      await conn.close();
      await observer.close();
    }
  }, { ws: env.nats.wsUrl, name });
  assert.deepEqual(r, ["out", "ack"]);
});

test("JetStream: what can never decode goes to <NAME>_DEAD_LETTER and is terminated; a failed download is nak'd, dead-lettered on the last delivery", async () => {
  const name = streamName("DL");
  const r = await ok(async ({ ws, name }) => {
    const conn = await nb.connect({ servers: ws, jetstream: true });
    try {
      await conn.addStream(name, { storage: "memory" });
      conn.nc.publish(`${name}.junk`, "not an envelope {");              // raw, captured by the stream: seq 1
      const [link, json] = await conn.smartsend(`${name}.link`, [["blob", new Uint8Array(2000).fill(1), "binary"]], { sizeThreshold: 100 });
      const missing = JSON.parse(json);                                   // seq 3: its object does not exist
      missing.payloads[0].data = "nats-obj://natsbridge/no-such-object";
      missing.correlation_id = "cid-missing";
      conn.nc.publish(`${name}.missing`, JSON.stringify(missing));
      await conn.smartsend(`${name}.ok`, [["n", "fine", "text"]]);          // seq 4
      const consumer = await conn.consume(name, "app", { maxDeliver: 2, nakDelay: 100 });
      const seen = [];
      for (let i = 0; i < 2; i++) {
        const d = await consumer.next({ timeout: 10000 });
        seen.push([d.info.stream_sequence, d.envelope.payloads[0][0]]);
        await d.ack();
      }
      let more;
      try {
        more = await consumer.next({ timeout: 800 });
      } catch (e) {
        more = e.code;
      }
      const dl = await conn.consume(`${name}_DEAD_LETTER`, "dl");
      const dead = [];
      for (let i = 0; i < 2; i++) {
        const d = await dl.next({ timeout: 10000 });
        const [dataname, bytes, type] = d.envelope.payloads[0];
        dead.push({
          msg_purpose: d.envelope.msg_purpose, msg_id: d.envelope.msg_id, correlation_id: d.envelope.correlation_id,
          error: d.envelope.error, subject: d.envelope.subject, payload: [dataname, type, new TextDecoder().decode(bytes)],
          sequence: d.info.stream_sequence,
        });
        await d.ack();
      }
      return { seen, more, dead, linkSeq: link.pub_ack.sequence };
    } finally {
      await conn.close();
    }
  }, { ws: env.nats.wsUrl, name });
  assert.deepEqual(r.seen, [[2, "blob"], [4, "n"]]);
  assert.equal(r.more, "TIMEOUT");
  const [junk, missing] = r.dead;
  assert.equal(junk.msg_purpose, "NACK");
  assert.equal(junk.msg_id, `dead-letter-${name}-1`);
  assert.equal(junk.subject, `natsbridge.dead_letter.${name}`);
  assert.equal(junk.error.code, "INVALID_ENVELOPE");
  assert.deepEqual(junk.error.details, { subject: `${name}.junk`, stream: name, stream_sequence: 1, consumer: "app", delivered: 1, correlation_id: null });
  assert.deepEqual(junk.payload, ["original_message", "binary", "not an envelope {"]);
  assert.equal(missing.error.code, "DOWNLOAD_FAILED");
  assert.equal(missing.msg_id, `dead-letter-${name}-3`);
  assert.equal(missing.correlation_id, "cid-missing");
  assert.deepEqual({ ...missing.error.details }, { subject: `${name}.missing`, stream: name, stream_sequence: 3, consumer: "app", delivered: 2, correlation_id: "cid-missing" });
  assert.equal(JSON.parse(missing.payload[2]).payloads[0].data, "nats-obj://natsbridge/no-such-object");
});

test("JetStream: a link payload arrives equal through the consumer; on a work-queue stream the ack deletes its object", async () => {
  const name = streamName("WQ");
  const size = 700_000;
  const r = await ok(async ({ ws, name, size }) => {
    const conn = await nb.connect({ servers: ws, jetstream: true });
    try {
      await conn.addStream(name, { storage: "memory", retention: "workqueue" });
      const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) % 256);
      const [sent] = await conn.smartsend(`${name}.big`, [["blob", bytes, "binary"], ["note", "with a link", "text"]]);
      const consumer = await conn.consume(name, "app", { doubleAck: true });
      const d = await consumer.next({ timeout: 10000 });
      const got = d.envelope.payloads[0][1];
      const equal = got.length === bytes.length && got.every((b, i) => b === bytes[i]);
      window.pendingAck = d;
      window.wqConn = conn;
      return { equal, transports: d.envelope.transports, sha: await nb.sha256Hex(got), wire: sent.payloads.map((p) => p.transport) };
    } catch (e) {
      await conn.close();
      throw e;
    }
  }, { ws: env.nats.wsUrl, name, size });
  try {
    assert.equal(r.equal, true);
    assert.deepEqual(r.transports, ["link", "direct"]);
    assert.deepEqual(r.wire, ["link", "direct"]);
    assert.equal(r.sha, sha256(Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + 7) % 256))));
    assert.equal((await sweep(name)).checked, 1, "the link object, tagged with the stream, is there before the ack");
    await ok(async () => window.pendingAck.ack());
    assert.equal((await sweep(name)).checked, 0, "the final ack deleted the link object");
  } finally {
    await ok(async () => window.wqConn.close());
  }
});

test("JetStream: a failed publish is retried with the same msg_id after core's delays; once the connection closes, NATS_CONNECTION_FAILED", async () => {
  const name = streamName("RETRY");
  const r = await ok(async ({ ws, name }) => {
    const deleteStream = (conn) => conn.nc.request(`$JS.API.STREAM.DELETE.${name}`, "", { timeout: 5000 });
    const conn = await nb.connect({ servers: ws, jetstream: true, maxRetries: 5, baseDelay: 400 });
    const quick = await nb.connect({ servers: ws, jetstream: true, maxRetries: 2, baseDelay: 10 });
    try {
      await conn.addStream(name, { storage: "memory", deadLetter: false });
      const [first] = await conn.smartsend(`${name}.a`, [["n", 1, "dictionary"]]);   // the stream is known now
      await quick.smartsend(`${name}.a`, [["n", 2, "dictionary"]]);
      await deleteStream(conn);
      // The stream is gone: the publish fails (no responders), waits 400 ms, and publishes again.
      const t0 = Date.now();
      const sending = conn.smartsend(`${name}.a`, [["n", 3, "dictionary"]]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await conn.addStream(name, { storage: "memory", deadLetter: false });
      const [retried] = await sending;
      const waited = Date.now() - t0;
      await deleteStream(conn);
      // Past max_retries a publish still waits out a leader's election (15 s), unless the
      // connection closes meanwhile.
      let spent;
      const retrying = quick.smartsend(`${name}.a`, [["n", 4, "dictionary"]], { correlationId: "cid-spent" });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const closing = quick.close();
      try {
        await retrying;
      } catch (e) {
        spent = { code: e.code, reason: e.reason, cid: e.correlation_id };
      }
      await closing;
      return { first: first.pub_ack, retried: retried.pub_ack, waited, spent };
    } finally {
      await conn.close();
      await quick.close();
    }
  }, { ws: env.nats.wsUrl, name });
  assert.deepEqual(r.first, { stream: name, sequence: 1, duplicate: false });
  assert.deepEqual(r.retried, { stream: name, sequence: 1, duplicate: false }, "stored once in the new stream");
  assert.ok(r.waited >= 400, `waited ${r.waited} ms`);
  assert.equal(r.spent.code, "NATS_CONNECTION_FAILED");
  assert.equal(r.spent.cid, "cid-spent");
  assert.match(r.spent.reason, /failed after \d+ attempt\(s\)/);
});

// --- the example page ------------------------------------------------------------------------

/** A 2x2 RGB PNG, made here so the test needs no image file. */
function tinyPng() {
  const zlib = require("node:zlib");
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([Buffer.from(type), data])));
    return Buffer.concat([len, Buffer.from(type), data, crc]);
  };
  const ihdr = Buffer.from([0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
  const raw = Buffer.from([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255]);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

test("example page shows a received envelope: text, tables as HTML tables, the image as an image", async () => {
  const page = await env.browser.context.newPage();
  try {
    await page.goto(`${env.web.origin}/examples/browser/index.html`);
    await page.fill("#server", env.nats.wsUrl);
    await page.click("#connect");
    await page.waitForFunction(() => document.getElementById("status").textContent === "subscribed", null, { timeout: 15000 });
    const png = path.join(env.tmp, "dot.png");
    fs.writeFileSync(png, tinyPng());
    const rows = path.join(env.tmp, "rows.json");
    fs.writeFileSync(rows, JSON.stringify([{ city: "Oslo", temp: -3.5 }, { city: "Lima", temp: 19 }]));
    const sent = await run(CLI, ["--servers", env.nats.url, "send", "demo.cli", "-p", "text:msg=hello page",
      "-p", `jsontable:cities=@${rows}`, "-p", `arrowtable:table=@${rows}`, "-p", `image:dot=@${png}`]);
    assert.equal(sent.code, 0, sent.stderr);
    await page.waitForSelector(".envelope img", { timeout: 15000 });
    await page.waitForFunction(() => document.querySelector(".envelope img").complete, null, { timeout: 5000 });
    const shown = await page.evaluate(() => {
      const e = document.querySelector(".envelope");
      const tables = [...e.querySelectorAll(".payload table")].map((t) => [...t.querySelectorAll("tr")].map((r) => [...r.children].map((c) => c.textContent)));
      const img = e.querySelector("img");
      return { text: e.querySelector(".payload pre").textContent, tables, img: [img.naturalWidth, img.naturalHeight] };
    });
    const table = [["city", "temp"], ["Oslo", "-3.5"], ["Lima", "19"]];
    assert.deepEqual(shown, { text: "hello page", tables: [table, table], img: [2, 2] });
  } finally {
    await page.close();
  }
});

// ---------------------------------------------------------------------------------------------

async function main() {
  const filter = process.argv[2];
  const selected = tests.filter((t) => !filter || t.name.includes(filter));
  const started = Date.now();
  env = { tmp: fs.mkdtempSync(path.join(os.tmpdir(), "nb-wasm-test-")) };
  let passed = 0, failed = 0, skipped = 0;
  try {
    env.nats = await startNats();
    env.web = await startWeb();
    env.browser = await startBrowser(env.web.origin);
    env.page = env.browser.page;
    for (const t of selected) {
      const t0 = Date.now();
      let timer;
      try {
        const result = await Promise.race([
          t.fn(),
          new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS); }),
        ]);
        if (result === "skip") {
          skipped++;
          console.log(`skip  ${t.name} (no Python binding at ${PYTHON})`);
        } else {
          passed++;
          console.log(`ok    ${t.name} (${Date.now() - t0} ms)`);
        }
      } catch (e) {
        failed++;
        console.log(`FAIL  ${t.name}\n${e.stack ?? e}`);
        const tail = env.browser.consoleLines.slice(-10);
        if (tail.length) console.log(`  browser console:\n    ${tail.join("\n    ")}`);
      } finally {
        clearTimeout(timer);
      }
    }
  } finally {
    await env.browser?.close();
    await env.web?.close();
    await env.nats?.close();
    fs.rmSync(env.tmp, { recursive: true, force: true });
  }
  console.log(`browser (chromium): ${passed} passed, ${failed} failed, ${skipped} skipped in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
