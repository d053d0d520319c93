"""Running one (sender, receiver, transport) group of cases, and printing the matrix."""

from __future__ import annotations

import collections
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from .cases import Case, _short, check_message, traceparent_for
from .common import FAIL, GROUPS, NA, PASS, REPO, SKIP, TRANSPORTS
from .participants import Participant, expand, expand_argv, participant_env
from .processes import Receiver, SendRun

class Ctx:
    def __init__(self, args, server_url: str, ws_url: str, workdir: Path, base_vars: dict, s3=None):
        self.args = args
        self.s3 = s3  # natsbridge_servers.S3Server for the s3 column, else None
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

    def s3_env(self, prefix: str) -> dict[str, str]:
        """What points a participant's core at the S3 server, as a user's shell would: the seeds'
        FILESERVER_URL (an s3:// URL) and the standard AWS variables."""
        return {"FILESERVER_URL": self.s3.url(prefix), "AWS_ENDPOINT_URL": self.s3.endpoint,
                "AWS_ACCESS_KEY_ID": self.s3.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.s3.SECRET_KEY,
                "AWS_REGION": "us-east-1"}


def subject_for(ctx: Ctx, s: Participant, r: Participant, transport: str, case_id: str | None) -> str:
    base = f"interop.{ctx.run_id}.{s.name}.{r.name}.{transport}"
    return f"{base}.>" if case_id is None else f"{base}.{case_id}"


def make_stream(ctx: Ctx, s: Participant, r: Participant, transport: str) -> tuple[str | None, str | None]:
    """JetStream mode: the group's stream (capturing its subjects), made with the CLI's
    `stream add`. Returns (stream name, None) or (None, why it failed)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", f"IO_{ctx.run_id}_{s.name}_{r.name}_{transport}").upper()
    cli = os.environ.get("NATSBRIDGE_CLI") or next(
        (str(p) for p in (REPO / "target/debug/natsbridge", REPO / "target/release/natsbridge") if p.exists()), None)
    if cli is None:
        return None, "JetStream mode needs the CLI (cargo build -p natsbridge-cli) to make streams"
    argv = [cli, "--servers", ctx.server, "stream", "add", name, "--subjects",
            subject_for(ctx, s, r, transport, None), "--dead-letter", "false"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None, f"{' '.join(argv)} took over 30 s"
    if done.returncode != 0:
        return None, f"{' '.join(argv)} failed: {done.stderr.strip()}"
    return name, None


def tail(text_or_lines, n=15) -> str:
    lines = text_or_lines.splitlines() if isinstance(text_or_lines, str) else list(text_or_lines)
    lines = [ln for ln in lines if ln.strip()]
    return "\n".join(lines[-n:])


def run_group(ctx: Ctx, s: Participant, r: Participant, transport: str, cases: list[Case]) -> dict[str, dict]:
    args = ctx.args
    results: dict[str, dict] = {}
    common = dict(ctx.base_vars, server=ctx.server, ws_server=ctx.ws_server, transport=transport)
    rvars = dict(common, **r.vars)
    if args.jetstream:
        stream, why = make_stream(ctx, s, r, transport)
        if why:
            return {c.id: {"case": c.id, "status": FAIL, "errors": [why], "seconds": 0} for c in cases}
        rvars.update(stream=stream, durable=f"{r.name}_consumer")
    # The s3 column: each group's links under a prefix of its own, so they can be counted after.
    s3_prefix = f"interop/{s.name}-{r.name}"
    extra_env = ctx.s3_env(s3_prefix) if transport == "s3" else {}
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
            "jetstream": bool(args.jetstream),
            "payloads": [{"dataname": p.dataname, "payload_type": p.payload_type, "file": str(p.file),
                          "input": p.input} for p in case.payloads],
            "trace_headers": {"traceparent": traceparent_for(subject)},
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
                rx = Receiver(rx_argv, participant_env(r, rvars_now) | extra_env, r.cwd and expand(r.cwd, rvars_now))
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
                svars = dict(common, **s.vars, subject=subject, threshold=threshold, spec=spec_path,
                             trace_headers=json.dumps({"traceparent": traceparent_for(subject)}))
                s_argv = expand_argv(s.send["argv"], svars, s.send.get("payload_arg"), batch[0].payloads)
            if args.verbose:
                print(f"  [{s.name}->{r.name} {transport}] {', '.join(c.id for c in batch)}: {shlex.join(s_argv)}",
                      file=sys.stderr)
            sender = SendRun(s_argv, participant_env(s, svars) | extra_env, s.cwd and expand(s.cwd, svars),
                             s.send_batch)
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
                    # The trace a receiver must show: the one sent, or none when the sender sends none.
                    trace = None if "receive" not in r.trace else (
                        traceparent_for(subject) if "send" in s.trace else "")
                    if not wait_message(ctx, rx, case, transport, subject, trace, done_subjects, later_subjects,
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
    if transport == "s3":
        check_s3_objects(ctx, s3_prefix, cases, results)
    return results


def check_s3_objects(ctx: Ctx, prefix: str, cases: list[Case], results: dict[str, dict]):
    """A passed s3 cell must have gone through the S3 server: it holds an object named after
    each link payload of the passed cases under the group's prefix (a link through another
    store would decode the same)."""
    passed = [c for c in cases if results[c.id]["status"] == PASS]
    wanted = collections.Counter(p.dataname for c in passed for p in c.payloads if (p.transport or "link") == "link")
    held = collections.Counter(key.rsplit("/", 1)[-1] for key in ctx.s3.keys() if key.startswith(prefix + "/"))
    missing = {name: n - held[name] for name, n in wanted.items() if held[name] < n}
    if missing:
        why = (f"the S3 server holds too few objects under {prefix}/ (missing, by dataname: {missing}): "
               "the links went elsewhere")
        for c in passed:
            results[c.id].update(status=FAIL, errors=[why])


def wait_message(ctx: Ctx, rx: Receiver, case: Case, transport: str, subject: str, trace: str | None,
                 done_subjects: set[str], later_subjects: set[str], finish) -> bool:
    """Waits (--message-timeout) for the case's line from the receiver, or an error line, and
    calls finish(status, errors). Lines of later cases of the batch are kept for them. False
    when the receiver timed out or exited (it must be restarted)."""

    def judge(msg):
        if isinstance(msg, dict) and "error" in msg and "payloads" not in msg:
            finish(FAIL, [f"receiver reported: {_short(msg['error'], 400)}"])
        else:
            errors = check_message(case, transport, subject, msg, trace)
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
            where = f"{c['payload_type']}/{c['transport']}" if c["transport"] else c["payload_type"]
            print(f"- {where}  {c['sender']} -> {c['receiver']}  "
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
