#!/usr/bin/env python3
"""NATSBridge cross-language interop runner.

Pairs every registered sender with every registered receiver (participants/*.json) over a real
nats-server with JetStream, for every case in cases.json and three transports (direct; link
through the JetStream object store, forced with a small size threshold; s3, a link through a real
S3-compatible server, s3s-fs), then prints a pass/fail matrix per payload type x transport. Standard library only (Python 3.10+), so every
binding can be driven as a subprocess. See README.md for the participant contract.

Exit status: 0 when every applicable cell passes, 1 when a cell fails, 2 on a setup error
(no nats-server, participant unavailable, bad cases.json or participant file).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from interop.cases import load_cases
from interop.common import FAIL, GROUPS, HERE, NA, PASS, REPO, SKIP, TRANSPORTS, SetupError
from interop.errors import ERRORS_GROUP, VECTORS, RunnerRaw, build_error_cells, load_error_cases, \
    print_error_matrix, receiver_supports, run_error_group
from interop.matrix import Ctx, build_cells, print_failures, print_matrix, run_group
from interop.participants import load_participants
from interop.processes import CHILDREN

sys.path.insert(0, str(REPO / "servers" / "python"))
from natsbridge_servers import NatsServer, S3Server  # noqa: E402  (the one Python server starter)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    multi = dict(action="append", default=[], metavar="NAME")
    ap.add_argument("--only-sender", **multi, help="run only these senders (repeat or comma-separate)")
    ap.add_argument("--only-receiver", **multi, help="run only these receivers (repeat or comma-separate)")
    ap.add_argument("--only-type", **multi,
                    help="only these payload types / 'multi' / 'errors' (repeat or comma-separate)")
    ap.add_argument("--only-transport", **multi, help="direct, link and/or s3")
    ap.add_argument("--only-case", **multi, help="only these case ids (cases.json ids or err-* vector names)")
    ap.add_argument("--no-errors", action="store_true",
                    help="skip the error cells (malformed messages from spec/vectors/err-*.json)")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="write a JSON summary to FILE (or stdout; the matrix then goes to stderr)")
    ap.add_argument("--list", action="store_true", help="list participants and cases, then exit")
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                    help="(sender, receiver, transport) groups run in parallel (default %(default)s)")
    ap.add_argument("--nats-url", help="use this running server (JetStream enabled) instead of starting one")
    ap.add_argument("--nats-ws-url", help="with --nats-url: its websocket listener, for {ws_server}")
    ap.add_argument("--cases", type=Path, default=HERE / "cases.json")
    ap.add_argument("--participants", type=Path, default=HERE / "participants")
    ap.add_argument("--vectors", type=Path, default=VECTORS, help="where the err-*.json vectors are")
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
    ap.add_argument("--jetstream", action="store_true",
                    help="JetStream mode: durable senders to durable consumers, one stream per group "
                         "(made with the CLI's `stream add`); participants without a `jetstream` section sit out")
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
    if args.jetstream:
        participants = [j for j in (p.in_jetstream_mode() for p in participants) if j is not None]
    if not participants:
        raise SetupError(f"no participants in {args.participants}")
    # Error cells: core NATS only (a malformed message in a stream is another subject: not yet).
    error_cases = [] if args.no_errors or args.jetstream else load_error_cases(args.vectors)
    raw_senders = [RunnerRaw()] + [p for p in participants if p.can_send_raw()]
    if any(p.name == RunnerRaw.name for p in participants):
        raise SetupError(f"the participant name {RunnerRaw.name!r} is the runner's raw publisher's")

    if args.list:
        for p in participants:
            roles = "+".join(r for r, ok in (("send", p.can_send()), ("receive", p.can_receive())) if ok)
            print(f"participant {p.name:<12} {roles:<13} transports={','.join(p.transports)} "
                  f"types={','.join(p.payload_types)}  ({p.source.name})")
        for c in cases:
            print(f"case {c.id:<24} group={c.group:<11} payloads={[p.payload_type for p in c.payloads]}")
        for s in raw_senders:
            print(f"raw sender  {s.name:<12} {getattr(s, 'description', '')}")
        for c in error_cases:
            print(f"error case {c.id:<30} expect={c.code:<22} ({c.source.relative_to(REPO) if c.source.is_relative_to(REPO) else c.source})")
        return 0

    bad_t = set(args.only_transport) - set(TRANSPORTS)
    bad_g = set(args.only_type) - set(GROUPS) - {ERRORS_GROUP}
    if bad_t or bad_g:
        raise SetupError(f"unknown transport/type filter {sorted(bad_t | bad_g)}")
    # JetStream mode is about durable delivery: its links go through the object store only.
    transports = [t for t in TRANSPORTS if (not args.only_transport or t in args.only_transport)
                  and not (args.jetstream and t == "s3")]
    if args.only_case:
        known = {c.id for c in cases} | {c.id for c in error_cases}
        unknown = [n for n in args.only_case if n not in known]
        if unknown:
            raise SetupError(f"unknown case: {unknown}; known: {sorted(known)}")
        cases = [c for c in cases if c.id in args.only_case]
        error_cases = [c for c in error_cases if c.id in args.only_case]
    cases = [c for c in cases if not args.only_type or c.group in args.only_type]
    if args.only_type and ERRORS_GROUP not in args.only_type:
        error_cases = []
    if not cases and not error_cases:
        raise SetupError("no cases selected")
    for c in cases:  # a cell's threshold must put every payload on the cell's transport
        for t, th in (("direct", args.direct_threshold), ("link", args.link_threshold), ("s3", args.link_threshold)):
            if t not in c.transports or c.threshold is not None:
                continue
            for p in c.payloads:
                if p.size is not None and (p.size < th) != (t == "direct"):
                    raise SetupError(f"case {c.id}: {p.dataname} ({p.size} bytes) would not be {t} "
                                     f"with threshold {th}; give the case a threshold and per-payload transports")
    if args.only_sender:
        known = {p.name for p in participants if p.can_send()} | {s.name for s in raw_senders}
        unknown = [n for n in args.only_sender if n not in known]
        if unknown:
            raise SetupError(f"unknown sender: {unknown}; known: {sorted(known)}")
    senders = [p for p in participants if p.can_send() and (not args.only_sender or p.name in args.only_sender)]
    raw_senders = [s for s in raw_senders if not args.only_sender or s.name in args.only_sender]
    if not error_cases:
        raw_senders = []
    if not cases:
        senders = []
    receivers = select([p for p in participants if p.can_receive()], args.only_receiver, "receiver")

    workdir = Path(tempfile.mkdtemp(prefix="natsbridge-interop-"))
    base_vars = {"repo": str(REPO), "here": str(HERE), "python": sys.executable, "workdir": str(workdir)}
    raw_participants = {s for s in raw_senders if not isinstance(s, RunnerRaw)}
    for p in set(senders) | set(receivers) | raw_participants:
        p.resolve(base_vars)
    unavailable = [p for p in set(senders) | set(receivers) | raw_participants if p.unavailable]
    if unavailable and not args.skip_unavailable:
        shutil.rmtree(workdir, ignore_errors=True)
        raise SetupError("participants unavailable (use --skip-unavailable or --only-sender/--only-receiver):\n" +
                         "\n".join(f"  {p.name}: {p.unavailable}" for p in unavailable))

    (workdir / "send").mkdir()
    (workdir / "errors").mkdir()
    for c in error_cases:
        c.write_wire(workdir / "errors")
    for c in cases:
        d = workdir / "inputs" / c.id
        d.mkdir(parents=True)
        for i, p in enumerate(c.payloads):
            p.write_input(d, i)

    server = s3 = None
    text_out = sys.stderr if args.json == "-" else sys.stdout

    def on_term(signum, frame):
        raise KeyboardInterrupt
    old_term = signal.signal(signal.SIGTERM, on_term)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    try:
        if args.nats_url:
            url, ws_url, server_desc = args.nats_url, args.nats_ws_url or "", f"external server {args.nats_url}"
        else:
            try:
                server = NatsServer(websocket=True).start()
            except RuntimeError as e:
                raise SetupError(str(e)) from None
            url, ws_url = server.url, server.ws_url
            server_desc = (f"nats-server {server.info.get('version', '?')} at {url} "
                           f"(JetStream, store {server.dir / 'js'}, websocket {server.ws_url})")
        if "s3" in transports and any("s3" in p.transports for p in set(senders) | set(receivers)):
            try:
                s3 = S3Server().start()
            except RuntimeError as e:
                raise SetupError(f"{e}\n(or leave the s3 column out: --only-transport direct,link)") from None
            server_desc += f"; s3s-fs at {s3.endpoint}"
        ctx = Ctx(args, url, ws_url, workdir, base_vars, s3)
        print(f"NATSBridge interop: {server_desc}", file=text_out)
        print(f"senders: {', '.join(s.name for s in senders) or '-'}; receivers: {', '.join(r.name for r in receivers)}; "
              f"cases: {len(cases) if senders else 0}; transports: {', '.join(transports)}; jobs: {args.jobs}",
              file=text_out)
        print(f"error cases: {len(error_cases)} (spec/vectors/err-*.json); raw senders: "
              f"{', '.join(s.name for s in raw_senders) or '-'}"
              + (" (not in JetStream mode)" if args.jetstream else "") + "\n", file=text_out)

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

        # Error cases: one group per (raw sender, receiver), transport-less.
        error_groups, error_na = [], {}
        for s in raw_senders:
            for r in receivers:
                todo = []
                for c in error_cases:
                    why = receiver_supports(r, c)
                    if why:
                        error_na[((s.name, r.name), c.id)] = why
                    else:
                        todo.append(c)
                if todo and not (s.unavailable or r.unavailable):
                    error_groups.append((s, r, todo))

        results: dict = {}
        error_results: dict = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            # The error groups first: short ones, so they do not trail at the end.
            futures = {pool.submit(run_error_group, ctx, s, r, todo): (error_results, (s.name, r.name))
                       for s, r, todo in error_groups}
            futures.update({pool.submit(run_group, ctx, s, r, t, todo): (results, (s.name, r.name, t))
                            for s, r, t, todo in groups})
            try:
                for fut in concurrent.futures.as_completed(futures):
                    into, key = futures[fut]
                    into[key] = fut.result()
            except BaseException:
                CHILDREN.kill_all()
                for f in futures:
                    f.cancel()
                raise

        elapsed = time.monotonic() - t0
        cells = build_cells(cases, senders, receivers, results, na_reasons)
        cells = [c for c in cells if c["transport"] in transports]
        print_matrix(cells, senders, receivers, transports, text_out)
        error_cells = build_error_cells(error_cases, raw_senders, receivers, error_results, error_na)
        print_error_matrix(error_cells, error_cases, raw_senders, receivers, text_out)
        cells += error_cells
        print_failures(cells, text_out)
        for w in ctx.warnings:
            print(f"warning: {w}", file=text_out)
        counts = collections.Counter(c["status"] for c in cells)
        n_msgs = sum(len(v) for v in results.values()) + sum(len(v) for v in error_results.values())
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
                "error_cases": [{"case": c.id, "expected_error": c.code, "stage": c.stage,
                                 "vector": str(c.source)} for c in error_cases],
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
        for started in (server, s3):
            if started is not None:
                started.stop()
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
