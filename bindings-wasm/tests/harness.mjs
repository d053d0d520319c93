// Real parts for the browser tests: a nats-server with JetStream and a websocket listener, a
// localhost HTTP server (the page, the bundle, spec vectors, and a PUT/GET link store with
// misbehaving routes), and headless Chromium through playwright-core. All on loopback, all
// stopped by the returned close functions.

import { spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import servers from "../../servers/js/servers.js";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const pkgDir = path.resolve(here, "..");
export const repo = path.resolve(pkgDir, "..");

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  srv.close();
  await once(srv, "close");
  return port;
}

/** nats-server with JetStream and a websocket listener (no TLS), by the one JS starter (servers/js). */
export async function startNats({ maxPayload } = {}) {
  const server = await servers.startNats({ websocket: true, config: maxPayload ? `max_payload: ${maxPayload}` : "" });
  return { url: server.url, wsUrl: server.wsUrl, close: server.stop };
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json", ".css": "text/css" };

/**
 * The page, the bundle and a link store:
 *   /dist/*, /vectors/*, /tests/*, /examples/*  files
 *   PUT/GET /store/<key>          the store (what `natsbridge --fileserver <base>/store --http-put` uses)
 *   GET /flaky/<n>/<key>          503 for the first n requests, then the stored bytes
 *   GET /redirect/<key>           302 to /store/<key>
 *   GET /lie/<key>                the stored bytes with the first byte changed
 *   GET /chunked/<key>            the stored bytes without a Content-Length (chunked)
 *   GET /cut/<mode>/<key>         the first request announces every byte, sends half and breaks
 *                                 the connection; later ones answer a Range with 206 (mode
 *                                 "range") or ignore it and send every byte (mode "whole")
 * `requests` lists every request as "METHOD /path", `requestTimes` when each came (ms, Date.now()),
 * `ranges` the Range header of each request to /cut/ (null without one).
 */
export async function startWeb(extraRoots = {}) {
  const roots = {
    "/dist/": path.join(pkgDir, "dist"),
    "/vectors/": path.join(repo, "spec/vectors"),
    "/tests/": here,
    // The example page, with the bundle where its app.js imports it from.
    "/examples/browser/dist/": path.join(pkgDir, "dist"),
    "/examples/browser/": path.join(repo, "examples/browser"),
    ...extraRoots,
  };
  const store = new Map();
  const counts = new Map();
  const requests = [];
  const requestTimes = [];
  const ranges = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    const p = decodeURIComponent(url.pathname);
    requests.push(`${req.method} ${p}`);
    requestTimes.push(Date.now());
    const send = (status, body = "", headers = {}) => {
      res.writeHead(status, headers);
      res.end(body);
    };
    const stored = (key) => store.get(key);
    if (req.method === "PUT" && p.startsWith("/store/")) {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      store.set(p.slice("/store/".length), Buffer.concat(chunks));
      return send(201);
    }
    if (req.method !== "GET") return send(405);
    let m;
    if (p.startsWith("/store/")) {
      const body = stored(p.slice("/store/".length));
      return body ? send(200, body, { "content-type": "application/octet-stream" }) : send(404, "no such file");
    }
    if ((m = p.match(/^\/flaky\/(\d+)\/(.+)$/))) {
      const n = (counts.get(p) ?? 0) + 1;
      counts.set(p, n);
      if (n <= Number(m[1])) return send(503, "try later");
      const body = stored(m[2]);
      return body ? send(200, body) : send(404);
    }
    if ((m = p.match(/^\/redirect\/(.+)$/))) return send(302, "", { location: `/store/${m[1]}` });
    if ((m = p.match(/^\/lie\/(.+)$/))) {
      const body = Buffer.from(stored(m[1]) ?? []);
      if (body.length) body[0] ^= 0xff;
      return send(200, body);
    }
    if ((m = p.match(/^\/chunked\/(.+)$/))) {
      const body = stored(m[1]) ?? Buffer.alloc(0);
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write(body.subarray(0, body.length >> 1));
      return res.end(body.subarray(body.length >> 1));
    }
    if ((m = p.match(/^\/cut\/(range|whole)\/(.+)$/))) {
      const body = stored(m[2]);
      if (!body) return send(404);
      ranges.push(req.headers.range ?? null);
      const n = (counts.get(p) ?? 0) + 1;
      counts.set(p, n);
      if (n === 1) {
        res.writeHead(200, { "content-length": body.length });
        res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 50));
        return undefined;
      }
      const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? "")?.[1] ?? 0);
      if (m[1] === "range" && from > 0) {
        return send(206, body.subarray(from), { "content-range": `bytes ${from}-${body.length - 1}/${body.length}` });
      }
      return send(200, body);
    }
    if (p === "/") return send(302, "", { location: "/tests/page.html" });
    for (const [prefix, dir] of Object.entries(roots)) {
      if (!p.startsWith(prefix)) continue;
      const file = path.join(dir, p.slice(prefix.length));
      if (!file.startsWith(dir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return send(404);
      return send(200, fs.readFileSync(file), { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
    }
    return send(404);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    store,
    requests,
    requestTimes,
    ranges,
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** Headless Debian Chromium with a fresh profile; `page` has the test page loaded. */
export async function startBrowser(origin, pagePath = "/tests/page.html") {
  const { chromium } = await import("playwright-core");
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "nb-wasm-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
    headless: true,
    timeout: 30_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.setDefaultTimeout(30_000);
  await page.goto(`${origin}${pagePath}`);
  await page.waitForFunction(() => window.nbReady === true || window.nbError, null, { timeout: 30_000 });
  const loadError = await page.evaluate(() => window.nbError ?? null);
  if (loadError) throw new Error(`page failed to load: ${loadError}\n${consoleLines.join("\n")}`);
  return {
    context,
    page,
    consoleLines,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Runs a program to completion with a time limit; resolves {code, stdout, stderr}. */
export function run(cmd, args, { timeoutMs = 30_000, env } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    proc.stdout.on("data", (d) => (stdout += d));
    proc.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    proc.on("error", (e) => { clearTimeout(timer); reject(e); });
    proc.on("close", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/**
 * Starts a long-running program and waits until `readyText` shows on its stderr.
 * `done` resolves {code, stdout, stderr} when it exits (killed after timeoutMs).
 */
export async function spawnReady(cmd, args, readyText, { timeoutMs = 30_000, env } = {}) {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  proc.stdout.on("data", (d) => (stdout += d));
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const done = new Promise((resolve) => proc.on("close", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); }));
  await new Promise((resolve, reject) => {
    proc.stderr.on("data", (d) => {
      stderr += d;
      if (stderr.includes(readyText)) resolve();
    });
    done.then(() => reject(new Error(`${cmd} exited before ready:\n${stderr}`)));
  });
  return { proc, done };
}
