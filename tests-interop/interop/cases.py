"""The cases of cases.json, their payloads, and the check of a received message against them."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from .common import BYTES_TYPES, DATANAME_RE, GROUPS, NAME_RE, PAYLOAD_TYPES, TIMESTAMP_RE, TRANSPORTS, UUID_RE, SetupError

def gen_bytes(spec: dict) -> bytes:
    if spec.get("gen") != "affine":
        raise SetupError(f"unknown byte generator {spec.get('gen')!r} (known: affine)")
    mul, add, mod, size = (int(spec[k]) for k in ("mul", "add", "mod", "size"))
    if not (1 <= mod <= 256) or size < 0:
        raise SetupError(f"bad affine generator {spec}")
    return bytes((i * mul + add) % mod for i in range(size))


def compact_json(v) -> bytes:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Payload:
    def __init__(self, case_id: str, index: int, d: dict):
        where = f"case {case_id!r} payload {index}"
        for k in ("dataname", "payload_type", "value"):
            if k not in d:
                raise SetupError(f"{where}: missing {k!r}")
        self.dataname: str = d["dataname"]
        self.payload_type: str = d["payload_type"]
        self.value = d["value"]
        self.transport: str | None = d.get("transport")  # explicit expectation, else the cell's
        if not DATANAME_RE.match(self.dataname):
            raise SetupError(f"{where}: dataname {self.dataname!r} must match {DATANAME_RE.pattern}")
        if self.payload_type not in PAYLOAD_TYPES:
            raise SetupError(f"{where}: unknown payload_type {self.payload_type!r}")
        if self.transport not in (None, "direct", "link"):
            raise SetupError(f"{where}: a payload's transport is 'direct' or 'link', not {self.transport!r}")
        self.raw: bytes | None = None
        if self.payload_type in BYTES_TYPES:
            if "bytes" not in d:
                raise SetupError(f"{where}: a {self.payload_type} payload needs a 'bytes' generator")
            self.gen = d["bytes"]
            self.raw = gen_bytes(self.gen)
            want = {"size": len(self.raw), "sha256": hashlib.sha256(self.raw).hexdigest()}
            if self.value != want:
                raise SetupError(f"{where}: value {self.value} does not match its generator ({want})")
            self.input = self.gen
            self.size = len(self.raw)
        else:
            self.input = d.get("input", self.value)
            if self.payload_type == "text":
                if not isinstance(self.input, str):
                    raise SetupError(f"{where}: text input must be a string")
                self.size = len(self.input.encode("utf-8"))
            elif self.payload_type == "arrowtable":
                if not (isinstance(self.input, dict) and isinstance(self.input.get("rows"), list)):
                    raise SetupError(f"{where}: arrowtable input must be {{\"rows\": [...]}}")
                self.size = None  # Arrow IPC size depends on the writer
            else:
                if self.payload_type == "jsontable" and not isinstance(self.input, list):
                    raise SetupError(f"{where}: jsontable input must be a list of row objects")
                self.size = len(compact_json(self.input))  # approximate: whitespace may differ

    def write_input(self, directory: Path, index: int) -> Path:
        """The sender's input file: text as UTF-8, dictionary/jsontable as JSON, arrowtable as
        JSON rows, bytes raw."""
        ext = {"text": "txt", "dictionary": "json", "jsontable": "json", "arrowtable": "rows.json"}.get(
            self.payload_type, "bin")
        path = directory / f"{index}_{self.dataname}.{ext}"
        if self.raw is not None:
            data = self.raw
        elif self.payload_type == "text":
            data = self.input.encode("utf-8")
        elif self.payload_type == "arrowtable":
            data = json.dumps(self.input["rows"], ensure_ascii=False).encode("utf-8")
        else:
            data = json.dumps(self.input, ensure_ascii=False).encode("utf-8")
        path.write_bytes(data)
        self.file = path
        return path


class Case:
    def __init__(self, d: dict):
        self.id: str = d.get("id", "")
        if not NAME_RE.match(self.id):
            raise SetupError(f"case id {self.id!r} must match {NAME_RE.pattern}")
        self.description: str = d.get("description", "")
        plist = d.get("payloads")
        if not isinstance(plist, list) or not plist:
            raise SetupError(f"case {self.id!r}: payloads must be a non-empty list")
        self.payloads = [Payload(self.id, i, p) for i, p in enumerate(plist)]
        types = {p.payload_type for p in self.payloads}
        self.group: str = d.get("group") or (self.payloads[0].payload_type if len(self.payloads) == 1 else "multi")
        if self.group not in GROUPS:
            raise SetupError(f"case {self.id!r}: unknown group {self.group!r} (one of {GROUPS})")
        self.types = types
        self.transports: list[str] = d.get("transports", TRANSPORTS)
        if not set(self.transports) <= set(TRANSPORTS):
            raise SetupError(f"case {self.id!r}: transports must be a subset of {TRANSPORTS}")
        self.threshold: int | None = d.get("threshold")
        if self.threshold is not None and any(p.transport is None for p in self.payloads):
            raise SetupError(f"case {self.id!r} sets a threshold, so every payload needs an expected 'transport'")


def load_cases(path: Path) -> list[Case]:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise SetupError(f"cannot read {path}: {e}") from e
    cases = [Case(c) for c in doc.get("cases", [])]
    ids = [c.id for c in cases]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise SetupError(f"duplicate case ids in {path}: {sorted(dup)}")
    return cases


def _short(v, limit=120) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= limit else s[:limit] + f"… ({len(s)} chars)"


def diff(expected, actual, path: str, ordered_keys: bool) -> str | None:
    """The first difference, or None. Numbers compare by value (1 == 1.0, as JSON does not
    distinguish them across languages); booleans never equal numbers."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        if type(expected) is not type(actual) or expected != actual:
            return f"{path}: expected {_short(expected)}, got {_short(actual)}"
        return None
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return None if expected == actual else f"{path}: expected {_short(expected)}, got {_short(actual)}"
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{path}: expected {len(expected)} items, got {len(actual)}: {_short(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            d = diff(e, a, f"{path}[{i}]", ordered_keys)
            if d:
                return d
        return None
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) != set(actual):
            missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
            return f"{path}: keys differ (missing {missing}, unexpected {extra})"
        if ordered_keys and list(expected) != list(actual):
            return f"{path}: key order {list(actual)}, expected {list(expected)}"
        for k in expected:
            d = diff(expected[k], actual[k], f"{path}.{k}", ordered_keys)
            if d:
                return d
        return None
    if isinstance(expected, str) and isinstance(actual, str) and expected != actual:
        i = next((k for k, (a, b) in enumerate(zip(expected, actual)) if a != b), min(len(expected), len(actual)))
        lo = max(0, i - 20)
        return (f"{path}: strings differ at character {i} (lengths {len(expected)} expected, {len(actual)} got): "
                f"expected …{_short(expected[lo:i + 20], 60)}…, got …{_short(actual[lo:i + 20], 60)}…")
    if type(expected) is not type(actual) or expected != actual:
        return f"{path}: expected {_short(expected)}, got {_short(actual)}"
    return None


def check_value(p: Payload, actual, path: str) -> str | None:
    if p.payload_type in BYTES_TYPES:
        if not isinstance(actual, dict):
            return f"{path}: expected {{size, sha256}}, got {_short(actual)}"
        got = dict(actual)
        if "base64" in got:  # spec/vectors' form for small byte payloads
            try:
                raw = base64.b64decode(got["base64"], validate=True)
            except (ValueError, TypeError):
                return f"{path}.base64: not valid base64"
            if raw != p.raw:
                return (f"{path}: bytes differ (got {len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}; "
                        f"expected {p.value['size']} bytes, sha256 {p.value['sha256']})")
            got.setdefault("size", len(raw))
            got.setdefault("sha256", hashlib.sha256(raw).hexdigest())
        if "size" not in got or "sha256" not in got:
            return f"{path}: expected {{size, sha256}} or {{base64}}, got {_short(actual)}"
        if got["size"] != p.value["size"] or str(got["sha256"]).lower() != p.value["sha256"]:
            return (f"{path}: bytes differ (got size {got['size']}, sha256 {got['sha256']}; "
                    f"expected size {p.value['size']}, sha256 {p.value['sha256']})")
        return None
    if p.payload_type == "arrowtable":
        if not isinstance(actual, dict) or "rows" not in actual:
            return f"{path}: expected {{\"rows\": [...]}}, got {_short(actual)}"
        # Extra keys (e.g. "schema", as in spec/vectors) are allowed; rows keep column order.
        return diff(p.value["rows"], actual["rows"], f"{path}.rows", ordered_keys=True)
    return diff(p.value, actual, path, ordered_keys=False)


def wire_transport(transport: str) -> str:
    """The envelope's transport of a matrix column: an S3 link is a link."""
    return "link" if transport == "s3" else transport


def traceparent_for(subject: str) -> str:
    """The W3C traceparent a sender is given for the message to `subject`: its trace id is the
    subject's, so a receiver's line shows whose trace it continued."""
    digest = hashlib.sha256(subject.encode()).hexdigest()
    return f"00-{digest[:32]}-{digest[32:48]}-01"


def check_trace(want: str | None, msg: dict) -> list[str]:
    """`want`: the traceparent sent (the receiver must print `trace_headers` in its trace; a
    sender's own span may be the parent), "" when the message carried none (it must print none),
    None when the pair does not take part."""
    if want is None:
        return []
    got = msg.get("trace_headers")
    if want == "":
        return [] if got is None else [f"trace_headers: the message carried none, got {_short(got)}"]
    parent = got.get("traceparent") if isinstance(got, dict) else None
    if not (isinstance(parent, str) and parent.split("-")[1:2] == want.split("-")[1:2]):
        return [f"trace_headers: expected a traceparent in trace {want.split('-')[1]}, got {_short(got)}"]
    return []


def check_message(case: Case, transport: str, subject: str, msg, trace: str | None = None) -> list[str]:
    errors = []
    if not isinstance(msg, dict):
        return [f"message is not a JSON object: {_short(msg)}"]
    errors += check_trace(trace, msg)
    for key in ("correlation_id", "msg_id"):
        v = msg.get(key)
        if not (isinstance(v, str) and UUID_RE.match(v)):
            errors.append(f"{key}: expected a UUID, got {_short(v)}")
    ts = msg.get("timestamp")
    if not (isinstance(ts, str) and TIMESTAMP_RE.match(ts)):
        errors.append(f"timestamp: expected UTC ISO 8601 with milliseconds and Z, got {_short(ts)}")
    if msg.get("send_to") != subject:
        errors.append(f"send_to: expected {subject!r}, got {_short(msg.get('send_to'))}")
    if not (isinstance(msg.get("msg_purpose"), str) and msg.get("msg_purpose")):
        errors.append(f"msg_purpose: expected a non-empty string, got {_short(msg.get('msg_purpose'))}")
    got = msg.get("payloads")
    if not isinstance(got, list):
        return errors + [f"payloads: expected a list, got {_short(got)}"]
    if len(got) != len(case.payloads):
        names = [g.get("dataname") if isinstance(g, dict) else g for g in got]
        return errors + [f"payloads: expected {len(case.payloads)} "
                         f"({[p.dataname for p in case.payloads]}), got {len(got)} ({names})"]
    for i, (p, g) in enumerate(zip(case.payloads, got)):
        path = f"payloads[{i}]"
        if not isinstance(g, dict):
            errors.append(f"{path}: expected an object, got {_short(g)}")
            continue
        if g.get("dataname") != p.dataname:
            errors.append(f"{path}.dataname: expected {p.dataname!r}, got {_short(g.get('dataname'))} (order kept?)")
        if g.get("payload_type") != p.payload_type:
            errors.append(f"{path}.payload_type: expected {p.payload_type!r}, got {_short(g.get('payload_type'))}")
        want_transport = p.transport or wire_transport(transport)
        if g.get("transport") != want_transport:
            errors.append(f"{path}.transport: expected {want_transport!r}, got {_short(g.get('transport'))}")
        if "value" not in g:
            errors.append(f"{path}: no value")
        else:
            d = check_value(p, g["value"], f"{path}.value")
            if d:
                errors.append(d)
    return errors
