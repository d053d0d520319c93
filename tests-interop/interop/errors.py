"""Error cells: malformed messages (spec/vectors/err-*.json, read at run time) published as exact
bytes by a raw sender, and the error code every receiver reports for each, against the vector's
expected code."""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .common import FAIL, NA, NAME_RE, PASS, PAYLOAD_TYPES, REPO, SKIP, SetupError
from .matrix import tail
from .participants import Participant, expand, expand_argv, participant_env
from .processes import Receiver, SendRun
from .rawnats import NatsError, RawPublisher

VECTORS = REPO / "spec" / "vectors"
ERRORS_GROUP = "errors"  # the matrix block, and the --only-type name that selects it
# `error: CODE: message` (the receive contract's stderr form); codes are core's upper-case names.
ERROR_LINE_RE = re.compile(r"^error:\s*([A-Z][A-Z0-9_]*)(?=:|\s|$)")


class ErrorCase:
    """One err-* vector: the exact message bytes and the code every receiver must report."""

    def __init__(self, path: Path):
        self.id = path.stem
        self.source = path
        try:
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise SetupError(f"cannot read {path}: {e}") from e
        if not NAME_RE.match(self.id):
            raise SetupError(f"{path}: the name must match {NAME_RE.pattern} (it becomes a subject token)")
        expect = doc.get("expect") or {}
        self.code: str = expect.get("error", "")
        self.stage: str | None = expect.get("stage")
        if not re.match(r"^[A-Z][A-Z0-9_]*$", self.code):
            raise SetupError(f"{path}: expect.error must be an error code, got {self.code!r}")
        self.description: str = doc.get("description", "")
        # The wire bytes, as core/tests/vectors.rs sends them: compact JSON in UTF-8, or the raw body.
        if "envelope" in doc:
            self.wire = json.dumps(doc["envelope"], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        elif "raw" in doc:
            self.wire = doc["raw"].encode("utf-8")
        elif "raw_base64" in doc:
            self.wire = base64.b64decode(doc["raw_base64"], validate=True)
        else:
            raise SetupError(f"{path}: no envelope, raw or raw_base64")
        env = doc.get("envelope")
        payloads = env.get("payloads") if isinstance(env, dict) else None
        payloads = [p for p in payloads if isinstance(p, dict)] if isinstance(payloads, list) else []
        # Known payload types only (an unknown one is what some vectors test): a receiver without
        # arrowtable (MicroPython) cannot be asked for an Arrow decoding error.
        self.types = {p.get("payload_type") for p in payloads} & set(PAYLOAD_TYPES)
        # A link payload that gets past the payload checks would be downloaded: not for this matrix.
        self.needs_network = any(p.get("transport") == "link" for p in payloads) and self.stage not in ("parse", "payload")
        self.file: Path | None = None

    def write_wire(self, directory: Path) -> Path:
        self.file = directory / f"{self.id}.bin"
        self.file.write_bytes(self.wire)
        return self.file


def load_error_cases(directory: Path = VECTORS) -> list[ErrorCase]:
    """Every err-*.json vector that needs no network (no link download), by name."""
    paths = sorted(directory.glob("err-*.json"))
    if not paths:
        raise SetupError(f"no err-*.json vectors in {directory}")
    return [c for c in (ErrorCase(p) for p in paths) if not c.needs_network]


class RunnerRaw:
    """The runner itself as a raw sender (rawnats.RawPublisher): the row named `raw`."""
    name = "raw"
    unavailable = None
    description = "tests-interop's own minimal NATS client (Python stdlib): the exact bytes, one PUB each"


def receiver_supports(r: Participant, case: ErrorCase) -> str | None:
    missing = case.types - set(r.payload_types)
    if missing:
        return f"{r.name} does not support {', '.join(sorted(missing))}"
    return None


def error_subject(ctx, sender_name: str, r: Participant, case_id: str | None) -> str:
    base = f"interop.{ctx.run_id}.{sender_name}.{r.name}.{ERRORS_GROUP}"
    return f"{base}.>" if case_id is None else f"{base}.{case_id}"


def run_error_group(ctx, s, r: Participant, cases: list[ErrorCase]) -> dict[str, dict]:
    """One receiver process for all of the group's error cases (restarted only when it hangs or
    exits); the sender publishes them one at a time, each judged before the next is sent."""
    args = ctx.args
    results: dict[str, dict] = {}
    common = dict(ctx.base_vars, server=ctx.server, ws_server=ctx.ws_server, transport=ERRORS_GROUP)
    rvars = dict(common, **r.vars)
    recv_idle = args.send_timeout + args.message_timeout + 15
    pending = list(cases)
    done_subjects: set[str] = set()
    rx: Receiver | None = None
    rx_argv: list[str] = []
    publisher: RawPublisher | None = None
    all_sent = True

    def finish(case, status, errors, started, got=None, sender_argv=None, sender_stderr=""):
        res = {"case": case.id, "status": status, "expected_error": case.code, "reported_error": got,
               "errors": errors, "seconds": round(time.monotonic() - started, 3)}
        if status == FAIL:
            if sender_argv:
                res["sender_argv"] = sender_argv
                res["sender_stderr"] = sender_stderr
            res["receiver_argv"] = rx_argv
            res["receiver_stderr"] = tail(rx.stderr_tail) if rx else ""
        results[case.id] = res
        done_subjects.add(error_subject(ctx, s.name, r, case.id))

    try:
        while pending:
            started = time.monotonic()
            if rx is None or not rx.alive():
                if rx is not None:
                    rx.stop()
                rvars_now = dict(rvars, subject=error_subject(ctx, s.name, r, None), count=len(pending),
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
            case = pending[0]
            subject = error_subject(ctx, s.name, r, case.id)
            s_argv, s_stderr = None, ""
            if isinstance(s, Participant):
                svars = dict(common, **s.vars, subject=subject, file=str(case.file))
                s_argv = expand_argv(s.send_raw["argv"], svars)
                if args.verbose:
                    print(f"  [{s.name}->{r.name} errors] {case.id}: {shlex.join(s_argv)}", file=sys.stderr)
                sender = SendRun(s_argv, participant_env(s, svars), s.cwd and expand(s.cwd, svars), False)
                try:
                    why = sender.wait_sent(str(case.file), args.send_timeout)
                    s_stderr = tail(sender.stderr_text())
                finally:
                    sender.stop()
            else:
                try:
                    if publisher is None:
                        publisher = RawPublisher(ctx.server, timeout=args.send_timeout)
                    publisher.publish(subject, case.wire)
                    publisher.flush()
                    why = None
                except NatsError as e:
                    why = f"raw publish failed: {e}"
                    if publisher is not None:
                        publisher.close()
                        publisher = None
            if why:
                finish(case, FAIL, [why], started, sender_argv=s_argv or ["(runner raw publisher)"],
                       sender_stderr=s_stderr)
                pending.pop(0)
                all_sent = False
                continue
            ok = wait_error(ctx, rx, case, subject, done_subjects, len(pending) == 1,
                            lambda status, errors, got=None: finish(case, status, errors, started, got,
                                                                    s_argv, s_stderr))
            pending.pop(0)
            if not ok:
                rx.stop()
                rx = None
        if rx is not None and all_sent and rx.proc.poll() is None:
            try:
                rx.proc.wait(args.exit_grace)
            except subprocess.TimeoutExpired:
                ctx.warn(f"{r.name} (receiving errors from {s.name}) did not exit after its last message "
                         f"within {args.exit_grace:g} s; stopped it")
        # No warning for a non-zero exit here: every message of the group was undecodable, which a
        # receiver may well report in its status (`natsbridge sub` does).
    finally:
        if publisher is not None:
            publisher.close()
        if rx is not None:
            rx.stop()
    return results


def wait_error(ctx, rx: Receiver, case: ErrorCase, subject: str, done_subjects: set[str], last: bool,
               finish) -> bool:
    """Waits (--message-timeout) for the receiver's report of the case's message and calls
    finish(status, errors, got): PASS when it is an error with the expected code. False when the
    receiver timed out or exited (it must be restarted).

    `last`: the receiver's last message, after which it exits. A receiver may then print a closing
    `error:` line of its own on stderr (`natsbridge sub` exits 1 with "N of M messages could not
    be decoded"), which can overtake its stdout report, as the two pipes are read apart. So for
    the last message a stderr `error:` line is held until the receiver exits, and a stdout
    report that comes meanwhile is the one judged."""

    def judge(code, shown):
        if code is None:
            finish(FAIL, [f"receiver reported an error without a code (expected {case.code}): {shown}"])
        elif code != case.code:
            finish(FAIL, [f"expected {case.code}, receiver reported {code}: {shown}"], code)
        else:
            finish(PASS, [], code)

    deadline = time.monotonic() + ctx.args.message_timeout
    held = None  # the last message's stderr `error:` line, until the receiver exits
    while True:
        kind, line = rx.next_event(deadline)
        if held is not None and kind in ("timeout", "exit"):
            m = ERROR_LINE_RE.match(held)
            judge(m.group(1) if m else None, held[:300])
            return True
        if kind == "timeout":
            finish(FAIL, [f"no error reported within {ctx.args.message_timeout:g} s after the publish "
                          f"(expected {case.code})"])
            return False
        if kind == "exit":
            finish(FAIL, [f"receiver exited with status {line} before reporting this message (expected {case.code})"])
            return False
        if kind == "err":
            if line.startswith("error") and last:
                if held is None:
                    held = line
                    deadline = min(deadline, time.monotonic() + ctx.args.exit_grace)
            elif line.startswith("error"):
                m = ERROR_LINE_RE.match(line)
                judge(m.group(1) if m else None, line[:300])
                return True
        elif kind == "out":
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                finish(FAIL, [f"receiver printed a line that is not JSON on stdout: {line[:200]!r}"])
                return True
            if not isinstance(msg, dict):
                finish(FAIL, [f"receiver printed a JSON line that is not an object: {line[:200]!r}"])
                return True
            send_to = msg.get("send_to") or msg.get("subject")
            if send_to in done_subjects:
                continue  # a late line for a case already decided
            if "error" in msg and "payloads" not in msg:
                if send_to is not None and send_to != subject:
                    finish(FAIL, [f"receiver reported an error for subject {send_to!r}, expected {subject!r}: "
                                  f"{line[:300]}"])
                    return True
                err = msg["error"]
                code = err.get("code") if isinstance(err, dict) else None
                judge(code if isinstance(code, str) and code else None, line[:300])
                return True
            finish(FAIL, [f"receiver decoded the malformed message instead of reporting {case.code}: {line[:300]}"])
            return True


def build_error_cells(cases: list[ErrorCase], senders, receivers, results, na_reasons) -> list[dict]:
    """One cell per (raw sender, receiver, error case)."""
    cells = []
    for s in senders:
        for c in cases:
            for r in receivers:
                key = (s.name, r.name)
                if (key, c.id) in na_reasons:
                    status, rows = NA, []
                elif s.unavailable or r.unavailable:
                    status, rows = SKIP, []
                else:
                    row = results.get(key, {}).get(c.id)
                    rows = [row] if row else []
                    status = row["status"] if row else FAIL
                    if not row:
                        rows = [{"case": c.id, "status": FAIL, "errors": ["not run"]}]
                cell = {"payload_type": ERRORS_GROUP, "transport": None, "case": c.id, "expected_error": c.code,
                        "sender": s.name, "receiver": r.name, "status": status, "cases": rows}
                if (key, c.id) in na_reasons:
                    cell["not_applicable"] = [{"case": c.id, "reason": na_reasons[(key, c.id)]}]
                cells.append(cell)
    return cells


def print_error_matrix(cells, cases: list[ErrorCase], senders, receivers, out):
    """One block per raw sender: a row per error case (with its expected code), a column per receiver."""
    if not cells:
        return
    col = max([6] + [len(r.name) + 2 for r in receivers])
    first = max(len(c.id) for c in cases) + 4
    code_w = max(len(c.code) for c in cases) + 2
    by = {(c["sender"], c["case"], c["receiver"]): c["status"] for c in cells}
    for s in senders:
        print(f"{ERRORS_GROUP} (malformed messages from spec/vectors, published as exact bytes by {s.name}; "
              f"each receiver must report the expected code)", file=out)
        print((f"  {'case':<{first - 2}}{'expected':<{code_w}}" + "".join(f"{r.name:<{col}}" for r in receivers)).rstrip(),
              file=out)
        for c in cases:
            row = f"  {c.id:<{first - 2}}{c.code:<{code_w}}" + "".join(f"{by[(s.name, c.id, r.name)]:<{col}}"
                                                                      for r in receivers)
            print(row.rstrip(), file=out)
        print(file=out)
