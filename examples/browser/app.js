// The example page: subscribe and render each received envelope; send text (and an image).
import { connect } from "./dist/natsbridge.js";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};

/** An HTML table of row objects (jsontable, or an arrowtable's JSON-rows view). */
function rowsTable(rows) {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  return el("table", {},
    el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { textContent: c })))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...columns.map((c) => el("td", { textContent: cell(r[c]) }))))));
}

/** The image's MIME type from its first bytes (the envelope does not carry one). */
function imageType(b) {
  if (b[0] === 0x89 && b[1] === 0x50) return "image/png";
  if (b[0] === 0xff && b[1] === 0xd8) return "image/jpeg";
  if (b[0] === 0x47 && b[1] === 0x49) return "image/gif";
  if (b[0] === 0x52 && b[8] === 0x57) return "image/webp";
  if (b[0] === 0x3c) return "image/svg+xml";
  return "application/octet-stream";
}

function renderPayload([dataname, data, type], transport) {
  const head = el("div", {}, el("b", { textContent: dataname }), ` — ${type}, ${transport}`);
  let body;
  if (type === "text") body = el("pre", { textContent: data });
  else if (type === "dictionary") body = el("pre", { textContent: JSON.stringify(data, null, 2) });
  else if (type === "jsontable" || type === "arrowtable") body = rowsTable(data);
  else if (type === "image") body = el("img", { src: URL.createObjectURL(new Blob([data], { type: imageType(data) })), alt: dataname });
  else if (type === "audio") body = el("audio", { controls: true, src: URL.createObjectURL(new Blob([data])) });
  else if (type === "video") body = el("video", { controls: true, src: URL.createObjectURL(new Blob([data])) });
  else body = el("a", { href: URL.createObjectURL(new Blob([data])), download: dataname, textContent: `${data.length} bytes` });
  return el("div", { className: "payload" }, head, body);
}

function renderEnvelope(env) {
  const fields = ["send_to", "msg_purpose", "sender_name", "timestamp", "correlation_id", "msg_id"];
  return el("div", { className: "envelope" },
    el("table", {}, el("tbody", {}, ...fields.map((f) => el("tr", {}, el("th", { textContent: f }), el("td", { textContent: env[f] }))))),
    ...env.payloads.map((p, i) => renderPayload(p, env.transports[i])));
}

let conn;

$("connect").onclick = async () => {
  try {
    conn = await connect({ servers: $("server").value, senderName: "example-page" });
    const sub = await conn.subscribe($("subject").value);
    $("status").textContent = "subscribed";
    $("send").disabled = false;
    for (;;) {
      try {
        const env = await sub.next();
        if (env === null) break;
        $("messages").prepend(renderEnvelope(env));
      } catch (e) {
        $("messages").prepend(el("div", { className: "error", textContent: e.message }));
      }
    }
  } catch (e) {
    $("status").textContent = e.message;
  }
};

$("send").onclick = async () => {
  const data = [["message", $("text").value, "text"]];
  const file = $("file").files[0];
  if (file) data.push([file.name, new Uint8Array(await file.arrayBuffer()), "image"]);
  try {
    await conn.smartsend("demo.browser", data);
  } catch (e) {
    $("messages").prepend(el("div", { className: "error", textContent: e.message }));
  }
};
