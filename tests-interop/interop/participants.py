"""Participants (participants/*.json): which executables send and receive, and their argv."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from .cases import Case
from .common import NAME_RE, PAYLOAD_TYPES, PLACEHOLDER_RE, TRANSPORTS, SetupError

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
        if self.send is not None and not isinstance(self.send.get("argv"), list):
            raise SetupError(f"{where}: send.argv must be a list of strings")
        # A batch sender takes every remaining spec of a group in one run (slow start-up, e.g. a browser).
        self.send_batch: bool = bool(self.send and self.send.get("batch"))
        if self.send_batch and "{specs}" not in self.send["argv"]:
            raise SetupError(f"{where}: a batch sender (send.batch) needs a whole \"{{specs}}\" element in send.argv")
        # A raw sender publishes a file's bytes exactly as they are (the error cells, errors.py).
        self.send_raw: dict | None = d.get("send_raw")
        if self.send_raw is not None and not isinstance(self.send_raw.get("argv"), list):
            raise SetupError(f"{where}: send_raw.argv must be a list of strings")
        if self.receive is not None and not isinstance(self.receive.get("argv"), list):
            raise SetupError(f"{where}: receive.argv must be a list of strings")
        if self.send is None and self.receive is None and self.send_raw is None:
            raise SetupError(f"{where}: a participant needs 'send', 'receive' or 'send_raw'")
        self.ready_timeout: float | None = d.get("ready_timeout")
        # Trace context (spec/PROTOCOL.md §13): "send" takes the spec's trace_headers (or the
        # {trace_headers} placeholder) into the message; "receive" prints what one carried.
        self.trace: set[str] = set(d.get("trace", []))
        if self.trace - {"send", "receive"}:
            raise SetupError(f"{where}: trace lists \"send\" and/or \"receive\", not {sorted(self.trace)}")
        # JetStream mode (run.py --jetstream): a durable sender and a durable consumer.
        self.jetstream: dict | None = d.get("jetstream")
        self.raw = d
        self.vars: dict[str, str] = {}
        self.unavailable: str | None = None

    def in_jetstream_mode(self) -> "Participant | None":
        """This participant with its `jetstream` send and receive templates (None without them)."""
        if not self.jetstream:
            return None
        d = dict(self.raw, send=self.jetstream.get("send"), receive=self.jetstream.get("receive"))
        return Participant(d, self.source)

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

    def can_send_raw(self):
        return self.send_raw is not None

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
