// Serves the example page and the bundle on http://127.0.0.1:PORT/ (PORT from argv, default 8000).
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const roots = { "/dist/": path.resolve(here, "../../bindings-wasm/dist"), "/": here };
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
const port = Number(process.argv[2] ?? 8000);

http.createServer((req, res) => {
  const p = decodeURIComponent(new URL(req.url, "http://x").pathname);
  for (const [prefix, dir] of Object.entries(roots)) {
    if (!p.startsWith(prefix)) continue;
    const file = path.join(dir, p === "/" ? "index.html" : p.slice(prefix.length));
    if (!file.startsWith(dir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) break;
    res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" });
    return res.end(fs.readFileSync(file));
  }
  res.writeHead(404).end();
}).listen(port, "127.0.0.1", () => console.log(`http://127.0.0.1:${port}/`));
