#!/usr/bin/env python3
"""natsbridge (Python binding) against a hand-written nats-py + json + base64 peer, in one run.

    /work/main/.tmp/bench-venv/bin/python bench/python/bench.py [--out FILE] [--only throughput,latency,codec,link]

Starts its own nats-server with servers/python (JetStream, free loopback port, max_payload 8 MiB
so a 1 MB payload can travel direct for both sides). Prints a markdown table on stdout (progress on stderr); --out also writes it to FILE.
See bench/python/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import timeit
import uuid
from pathlib import Path

# numpy's OpenBLAS threads spin after start-up and steal one of the two cores from the benchmark.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import nats
import natsbridge as nb
import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "servers" / "python"))
import peer  # noqa: E402
from natsbridge_servers import NatsServer, nats_server_binary  # noqa: E402  (the one Python server starter)

REPO = Path(__file__).resolve().parents[2]
MAX_PAYLOAD = 8 * 1024 * 1024
IDLE_LIMIT = 5.0      # a receiver gives up after this long without a message
TOTAL_LIMIT = 120.0   # ... or this long in all
DIRECT = 4_000_000    # size_threshold that keeps the 1 MB codec case direct (as the peer sends it)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def subject(tag: str) -> str:
    return f"bench.py.{tag}.{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------------------------
# helpers


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def cpu() -> float:
    """CPU seconds of this process (all threads: the event loop and the binding's tokio workers)."""
    return time.process_time()


async def nats_connect(url):
    return await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)


class Counter:
    """Messages received, and when the last one came (for the bounded wait)."""

    def __init__(self, n):
        self.n = n
        self.got = 0
        self.t_last = None
        self.done = asyncio.Event()
        self.errors = 0

    def hit(self):
        self.got += 1
        self.t_last = time.perf_counter()
        if self.got >= self.n:
            self.done.set()

    async def wait(self):
        """Until every message came, IDLE_LIMIT without one, or TOTAL_LIMIT in all."""
        start = time.monotonic()
        last_got, last_change = -1, time.monotonic()
        while not self.done.is_set():
            try:
                await asyncio.wait_for(self.done.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
            now = time.monotonic()
            if self.got != last_got:
                last_got, last_change = self.got, now
            if now - last_change > IDLE_LIMIT or now - start > TOTAL_LIMIT:
                break


# --------------------------------------------------------------------------------------------
# 1. 100-byte throughput


async def tp_run(url, n, payload, raw_bytes, sender, receiver):
    """One throughput rep: ``sender`` in natsbridge | natsbridge_sync | peer | raw, ``receiver`` in
    natsbridge | peer | raw, each on its own connection; returns the rep's figures."""
    c = Counter(n)
    first_ok = []
    closers = []
    subj = subject("tp")
    task = None
    if receiver == "natsbridge":
        rx_nc = await nb.connect(url)
        sub = await rx_nc.subscribe(subj)

        async def rx():
            async for env in sub:  # the Subscription decodes every message (payloads are bytes)
                if c.got == 0:
                    first_ok.append(env["payloads"][0][1] == payload)
                c.hit()
                if c.got >= n:
                    return

        task = asyncio.create_task(rx())
        await asyncio.sleep(0.05)
    else:
        rx_nc = await nats_connect(url)

        async def cb(msg):
            if receiver == "peer":
                env = peer.decode(msg.data)
                if c.got == 0:
                    first_ok.append(env["payloads"][0][1] == payload)
            c.hit()

        await rx_nc.subscribe(subj, cb=cb)
        await rx_nc.flush()
    closers.append(rx_nc)
    data = [("m", payload, "binary")]
    if sender.startswith("natsbridge"):
        tx = await nb.connect(url)
    else:
        tx = await nats_connect(url)
    closers.append(tx)
    c0, t0 = cpu(), time.perf_counter()
    if sender == "natsbridge":
        for _ in range(n):
            await tx.smartsend(subj, data)
    elif sender == "natsbridge_sync":
        for _ in range(n):
            tx.smartsend_sync(subj, data)
    elif sender == "peer":
        for _ in range(n):
            await tx.publish(subj, peer.encode(subj, data, broker_url=url))
    else:
        for _ in range(n):
            await tx.publish(subj, raw_bytes)
    t_sent = time.perf_counter()
    await c.wait()
    c1 = cpu()
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    for x in closers:
        await x.drain()
    assert not first_ok or first_ok[0], f"{sender} -> {receiver} delivered the wrong payload"
    return result(n, c, t0, t_sent, c1 - c0)


def result(n, c, t0, t_sent, cpu_s):
    elapsed = (c.t_last - t0) if c.t_last else float("nan")
    return {"rate": c.got / elapsed if c.got else 0.0, "got": c.got, "lost": n - c.got,
            "send_rate": n / (t_sent - t0), "cpu_us": cpu_s / max(c.got, 1) * 1e6}


TP_MAIN = {"natsbridge": ("natsbridge", "natsbridge"), "peer": ("peer", "peer"), "raw": ("raw", "raw")}
TP_DIAG = {  # splitting natsbridge's cost: which side, and the asyncio hop of each awaited send
    "diagnostic: `await smartsend` -> raw nats-py counter, msgs/s": ("natsbridge", "raw"),
    "diagnostic: raw nats-py publish -> natsbridge Subscription, msgs/s": ("raw", "natsbridge"),
    "diagnostic: `smartsend_sync` (no awaitable) -> natsbridge Subscription, msgs/s": ("natsbridge_sync", "natsbridge"),
}


async def bench_throughput(url, args, rows, notes):
    n = args.msgs
    payload = os.urandom(100)
    # The floor publishes bytes the bridge would send (one envelope, encoded once).
    probe = await nb.connect(url)
    _, msg_json = await probe.smartsend(subject("probe"), [("m", payload, "binary")])
    await probe.drain()
    raw_bytes = msg_json.encode()
    peer_len = len(peer.encode("bench.py.tp.000000000000", [("m", payload, "binary")], broker_url=url))
    variants = {k: v for k, v in TP_MAIN.items() if k in args.variants}
    if "natsbridge" in args.variants and args.diag:
        variants.update(TP_DIAG)
    for name, (s_, r_) in variants.items():  # warm-up
        await tp_run(url, min(2000, n), payload, raw_bytes, s_, r_)
    res = {k: [] for k in variants}
    for rep in range(args.reps):
        for name, (s_, r_) in variants.items():
            gc.collect()
            r = await tp_run(url, n, payload, raw_bytes, s_, r_)
            res[name].append(r)
            log(f"  throughput rep {rep + 1} {s_} -> {r_}: {r['rate']:.0f} msgs/s received, "
                f"sends {r['send_rate']:.0f}/s, lost {r['lost']}, CPU {r['cpu_us']:.1f} us/msg")
    med = {k: sorted(v, key=lambda r: r["rate"])[len(v) // 2] for k, v in res.items()}
    lost = {k: sum(r["lost"] for r in v) for k, v in res.items()}
    test = f"throughput 100 B x {n} (median of {args.reps})"

    def g(k, m):
        return med.get(k, {}).get(m)
    nbv, pv = g("natsbridge", "rate"), g("peer", "rate")
    rows.append([test, "msgs/s end to end", fmt(nbv), fmt(pv), fmt(g("raw", "rate")), ratio(nbv, pv), ">= 5x peer",
                 status(nbv and pv and nbv / pv, 5.0)])
    rows.append([test, "lost msgs (all reps)", *(str(lost.get(k, "")) for k in TP_MAIN), "", "0",
                 "ok" if not any(lost.values()) else "**lost**"])
    rows.append([test, "diagnostic: send loop only, msgs/s", *(fmt(g(k, "send_rate")) for k in TP_MAIN),
                 ratio(g("natsbridge", "send_rate"), g("peer", "send_rate")), "", ""])
    rows.append([test, "diagnostic: process CPU us per message (send + receive)",
                 *(fmt(g(k, "cpu_us"), 1) for k in TP_MAIN),
                 ratio_time(g("natsbridge", "cpu_us"), g("peer", "cpu_us")), "", ""])
    for k in TP_DIAG:
        if k in med:
            rows.append([test, k, fmt(g(k, "rate")), fmt(pv), fmt(g("raw", "rate")), ratio(g(k, "rate"), pv), "",
                         f"lost {lost[k]}, CPU {g(k, 'cpu_us'):.1f} us/msg"])
    notes.append(f"throughput: publisher and subscriber on separate connections in one process and one asyncio "
                 f"loop; each send awaited (natsbridge `await nc.smartsend`, peer `await nc.publish(encode())`); "
                 f"natsbridge receives with `async for env in sub` (decoded in the binding), the peer with a nats-py "
                 f"callback running its json + base64 decode; msgs/s = received / (last receive - first send); "
                 f"a receiver gives up after {IDLE_LIMIT:.0f} s without a message ({TOTAL_LIMIT:.0f} s in all). "
                 f"Envelope sizes: natsbridge {len(raw_bytes)} B, peer {peer_len} B; the raw floor publishes "
                 f"natsbridge's envelope bytes (encoded once) with nats-py and counts them in a callback. "
                 f"CPU = process CPU time (event loop + the binding's tokio threads; not nats-server) / messages. "
                 f"Ratio column for CPU: peer / natsbridge.")


# --------------------------------------------------------------------------------------------
# 2. ping-pong latency


async def lat_natsbridge(url, n, warmup, payload):
    req = await nb.connect(url)
    resp = await nb.connect(url)
    subj = subject("ping")
    sub = await resp.subscribe(subj)

    async def responder():
        async for env in sub:
            await resp.reply(env, [("m", env["payloads"][0][1], "binary")])

    task = asyncio.create_task(responder())
    data = [("m", payload, "binary")]
    for _ in range(warmup):
        await req.request(subj, data, timeout=5)
    times = []
    c0 = cpu()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        env = await req.request(subj, data, timeout=5)
        times.append(time.perf_counter_ns() - t0)
    c1 = cpu()
    assert env["payloads"][0][1] == payload
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await resp.drain()
    await req.drain()
    return times, (c1 - c0) / n


def lat_natsbridge_sync(url, n, warmup, payload):
    """The blocking API: requester `request_sync` on this thread, responder `next_sync` + `reply_sync`
    on another; no asyncio future per call (diagnostic)."""
    req = nb.connect_sync(url)
    resp = nb.connect_sync(url)
    subj = subject("ping")
    sub = resp.subscribe_sync(subj)
    stop = threading.Event()

    def responder():
        while not stop.is_set():
            try:
                env = sub.next_sync(timeout=0.2)
            except nb.TimeoutError:
                continue
            if env is None:
                return
            resp.reply_sync(env, [("m", env["payloads"][0][1], "binary")])

    th = threading.Thread(target=responder, daemon=True)
    th.start()
    data = [("m", payload, "binary")]
    for _ in range(warmup):
        req.request_sync(subj, data, timeout=5)
    times = []
    c0 = cpu()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        env = req.request_sync(subj, data, timeout=5)
        times.append(time.perf_counter_ns() - t0)
    c1 = cpu()
    assert env["payloads"][0][1] == payload
    stop.set()
    th.join(5)
    resp.drain_sync()
    req.drain_sync()
    return times, (c1 - c0) / n


async def lat_peer(url, n, warmup, payload):
    req = await nats_connect(url)
    resp = await nats_connect(url)
    subj = subject("ping")

    async def cb(msg):
        env = peer.decode(msg.data)
        (name, value, ptype), = env["payloads"]
        await msg.respond(peer.encode(env["reply_to"] or msg.reply, [(name, value, ptype)], broker_url=url,
                                      msg_purpose="ACK", correlation_id=env["correlation_id"],
                                      reply_to_msg_id=env["msg_id"]))

    await resp.subscribe(subj, cb=cb)
    await resp.flush()
    data = [("m", payload, "binary")]

    async def one():
        m = await req.request(subj, peer.encode(subj, data, broker_url=url, msg_purpose="command"), timeout=5)
        return peer.decode(m.data)

    for _ in range(warmup):
        await one()
    times = []
    c0 = cpu()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        env = await one()
        times.append(time.perf_counter_ns() - t0)
    c1 = cpu()
    assert env["payloads"][0][1] == payload
    await req.drain()
    await resp.drain()
    return times, (c1 - c0) / n


async def lat_natsbridge_pubsub(url, n, warmup, payload):
    """The style a new user writes first: the responder iterates a subscription and answers with
    `smartsend` to the envelope's `reply_to`; the requester publishes with `reply_to` set to its
    own subject and awaits the answer on its own subscription."""
    req = await nb.connect(url)
    resp = await nb.connect(url)
    subj, inbox = subject("ping"), subject("pong")
    sub = await resp.subscribe(subj)
    answers = await req.subscribe(inbox)

    async def responder():
        async for env in sub:
            await resp.smartsend(env["reply_to"], [("m", env["payloads"][0][1], "binary")],
                                 correlation_id=env["correlation_id"], reply_to_msg_id=env["msg_id"])

    task = asyncio.create_task(responder())
    data = [("m", payload, "binary")]

    async def one():
        await req.smartsend(subj, data, reply_to=inbox)
        return await answers.next(timeout=5)

    for _ in range(warmup):
        await one()
    times = []
    c0 = cpu()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        env = await one()
        times.append(time.perf_counter_ns() - t0)
    c1 = cpu()
    assert env["payloads"][0][1] == payload
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await resp.drain()
    await req.drain()
    return times, (c1 - c0) / n


async def lat_peer_pubsub(url, n, warmup, payload):
    """The same style by hand: nats-py + json + base64, the responder a callback publishing to the
    envelope's reply_to, the requester awaiting its own subscription's next message."""
    req = await nats_connect(url)
    resp = await nats_connect(url)
    subj, inbox = subject("ping"), subject("pong")

    async def cb(msg):
        env = peer.decode(msg.data)
        (name, value, ptype), = env["payloads"]
        await resp.publish(env["reply_to"], peer.encode(env["reply_to"], [(name, value, ptype)], broker_url=url,
                                                        correlation_id=env["correlation_id"],
                                                        reply_to_msg_id=env["msg_id"]))

    await resp.subscribe(subj, cb=cb)
    answers = await req.subscribe(inbox)
    await resp.flush()
    await req.flush()
    data = [("m", payload, "binary")]

    async def one():
        await req.publish(subj, peer.encode(subj, data, broker_url=url, reply_to=inbox))
        return peer.decode((await answers.next_msg(timeout=5)).data)

    for _ in range(warmup):
        await one()
    times = []
    c0 = cpu()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        env = await one()
        times.append(time.perf_counter_ns() - t0)
    c1 = cpu()
    assert env["payloads"][0][1] == payload
    await req.drain()
    await resp.drain()
    return times, (c1 - c0) / n


async def lat_raw(url, n, warmup, msg_bytes):
    req = await nats_connect(url)
    resp = await nats_connect(url)
    subj = subject("ping")

    async def cb(msg):
        await msg.respond(msg.data)

    await resp.subscribe(subj, cb=cb)
    await resp.flush()
    for _ in range(warmup):
        await req.request(subj, msg_bytes, timeout=5)
    times = []
    c0 = cpu()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await req.request(subj, msg_bytes, timeout=5)
        times.append(time.perf_counter_ns() - t0)
    c1 = cpu()
    await req.drain()
    await resp.drain()
    return times, (c1 - c0) / n


async def bench_latency(url, args, rows, notes):
    n, warmup = args.pings, args.warmup
    payload = os.urandom(100)
    probe = await nb.connect(url)
    _, msg_json = await probe.smartsend(subject("probe"), [("m", payload, "binary")])
    await probe.drain()
    variants = {"natsbridge": lambda: lat_natsbridge(url, n, warmup, payload),
                "peer": lambda: lat_peer(url, n, warmup, payload),
                "raw": lambda: lat_raw(url, n, warmup, msg_json.encode())}
    variants = {k: v for k, v in variants.items() if k in args.variants}
    if "natsbridge" in args.variants and "peer" in args.variants:
        variants["natsbridge_pubsub"] = lambda: lat_natsbridge_pubsub(url, n, warmup, payload)
        variants["peer_pubsub"] = lambda: lat_peer_pubsub(url, n, warmup, payload)
    if "natsbridge" in args.variants and args.diag:
        async def sync_variant():
            return lat_natsbridge_sync(url, n, warmup, payload)
        variants["natsbridge_sync"] = sync_variant
    st = {}
    for name, fn in variants.items():
        gc.collect()
        times, cpu_s = await fn()
        us = [t / 1000 for t in times]
        st[name] = {"p50": pct(us, 50), "p99": pct(us, 99), "max": max(us), "mean": statistics.fmean(us),
                    "cpu": cpu_s * 1e6}
        log(f"  latency {name}: p50 {st[name]['p50']:.0f} us, p99 {st[name]['p99']:.0f} us, "
            f"CPU {st[name]['cpu']:.0f} us/round trip")
    test = f"ping-pong 100 B x {n} (after {warmup} warm-up)"

    def g(k, m):
        return st.get(k, {}).get(m)
    for m, label in (("p50", "p50 us"), ("p99", "p99 us"), ("max", "max us"), ("mean", "mean us"),
                     ("cpu", "process CPU us per round trip")):
        target = status_half(g("natsbridge", m), g("peer", m)) if m in ("p50", "p99") else ""
        rows.append([test, f"`request`/`reply`, {label}", *(fmt(g(k, m), 1) for k in ("natsbridge", "peer", "raw")),
                     ratio_time(g("natsbridge", m), g("peer", m)), "<= 0.5x peer's" if m in ("p50", "p99") else "",
                     target])
    if "natsbridge_pubsub" in st:
        for m, label in (("p50", "p50 us"), ("p99", "p99 us"), ("cpu", "process CPU us per round trip")):
            target = status_half(g("natsbridge_pubsub", m), g("peer_pubsub", m)) if m != "cpu" else ""
            rows.append([test, f"subscription responder answering with `smartsend` to `reply_to`, {label}",
                         fmt(g("natsbridge_pubsub", m), 1), fmt(g("peer_pubsub", m), 1), fmt(g("raw", m), 1),
                         ratio_time(g("natsbridge_pubsub", m), g("peer_pubsub", m)),
                         "<= 0.5x peer's" if m != "cpu" else "", target])
    if "natsbridge_sync" in st:
        for m, label in (("p50", "p50 us"), ("p99", "p99 us"), ("cpu", "process CPU us per round trip")):
            rows.append([test, f"diagnostic: blocking API (`request_sync`; responder thread `next_sync` + "
                         f"`reply_sync`), {label}", fmt(g("natsbridge_sync", m), 1), fmt(g("peer", m), 1),
                         fmt(g("raw", m), 1), ratio_time(g("natsbridge_sync", m), g("peer", m)), "", ""])
    notes.append("latency: requester and responder on separate connections in one process; natsbridge = "
                 "`await nc.request(...)` against a Subscription whose loop calls `await nc.reply(env, ...)` (decode "
                 "+ encode on both sides); peer = nats-py `request` with its encode/decode, the responder a callback "
                 "that decodes and `msg.respond`s an encoded ACK envelope; raw = nats-py request/respond of "
                 "natsbridge's envelope bytes, no envelope work. Ratio column for times: peer / natsbridge "
                 "(> 1x = natsbridge faster).")


# --------------------------------------------------------------------------------------------
# 3. encode + decode


def dataframe(rows=10_000):
    rng = np.random.default_rng(42)
    return pd.DataFrame({
        "i": rng.integers(-2**40, 2**40, rows, dtype=np.int64),
        "f": rng.standard_normal(rows),
        "s": [f"name-{k:06d}-{'x' * (k % 17)}" for k in range(rows)],
        "b": rng.integers(0, 2, rows).astype(bool),
        "t": pd.to_datetime(1_700_000_000_000_000_000 + rng.integers(0, 10**15, rows), utc=True),
    })


def same(a, b):
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b) and list(a.dtypes) == list(b.dtypes)
    return bytes(a) == bytes(b)


async def codec_case(url, label, value, ptype, reps, variants):
    """Median encode, decode and encode+decode times (seconds) for each variant."""
    nb_nc = await nb.connect(url)
    pc = await nats_connect(url)
    subj = subject("nosub")
    data = [("p", value, ptype)]
    out = {}
    # natsbridge, async send (the API an asyncio program calls) and its blocking twin.
    kinds = ["natsbridge", "natsbridge_sync"] + (["natsbridge_nthreads1"] if isinstance(value, pd.DataFrame) else [])
    for kind in kinds:
        if "natsbridge" not in variants:
            continue
        enc, dec, both = [], [], []
        msg_bytes = None
        for r in range(reps + 2):
            t0 = time.perf_counter()
            # A sender that does not read the result pays for neither part of it (SendResult).
            if kind == "natsbridge":
                sent = await nb_nc.smartsend(subj, data, size_threshold=DIRECT)
            elif kind == "natsbridge_nthreads1":  # the caller converts single-threaded, passes a pyarrow Table
                table = pa.Table.from_pandas(value, preserve_index=False, nthreads=1)
                sent = await nb_nc.smartsend(subj, [("p", table, ptype)], size_threshold=DIRECT)
            else:
                sent = nb_nc.smartsend_sync(subj, data, size_threshold=DIRECT)
            t1 = time.perf_counter()
            if msg_bytes is None:
                msg_bytes = sent.msg_json.encode()
            t2 = time.perf_counter()
            env = nb.smartreceive_sync(msg_bytes)
            t3 = time.perf_counter()
            if r == 0:
                assert env["transports"] == ["direct"], env["transports"]
                assert same(value, env["payloads"][0][1]), f"natsbridge {label} did not round-trip"
            await nb_nc.flush()
            if r >= 2:  # two warm-up reps
                enc.append(t1 - t0)
                dec.append(t3 - t2)
                both.append(t1 - t0 + t3 - t2)
        out[kind] = {"enc": statistics.median(enc), "dec": statistics.median(dec), "both": statistics.median(both),
                     "bytes": len(msg_bytes)}
    if "peer" in variants:
        enc, dec, both = [], [], []
        for r in range(reps + 2):
            t0 = time.perf_counter()
            b = peer.encode(subj, data, broker_url=url)
            await pc.publish(subj, b)
            t1 = time.perf_counter()
            env = peer.decode(b)
            t2 = time.perf_counter()
            if r == 0:
                assert same(value, env["payloads"][0][1]), f"peer {label} did not round-trip"
            await pc.flush()
            if r >= 2:
                enc.append(t1 - t0)
                dec.append(t2 - t1)
                both.append(t2 - t0)
        out["peer"] = {"enc": statistics.median(enc), "dec": statistics.median(dec), "both": statistics.median(both),
                       "bytes": len(b)}
    if isinstance(value, pd.DataFrame):  # the pandas <-> Arrow work both sides share (no envelope, no I/O)
        enc, dec, both = [], [], []
        for r in range(reps + 2):
            t0 = time.perf_counter()
            ipc = peer.serialize(value, "arrowtable")
            t1 = time.perf_counter()
            pa.ipc.open_stream(ipc).read_all().to_pandas()
            t2 = time.perf_counter()
            if r >= 2:
                enc.append(t1 - t0)
                dec.append(t2 - t1)
                both.append(t2 - t0)
        out["shared"] = {"enc": statistics.median(enc), "dec": statistics.median(dec), "both": statistics.median(both),
                         "bytes": ipc.nbytes}
    await nb_nc.drain()
    await pc.drain()
    return out


async def decode_100b(url, rows, notes):
    """Decoding one 100-byte binary message in a hot loop: the call a subscriber makes per message."""
    async with nb.connect(url) as nc:
        sent = await nc.smartsend(subject("nosub"), [("p", os.urandom(100), "binary")])
        msg = sent.msg_json.encode()
    assert nb.smartreceive_sync(msg)["payloads"] == peer.decode(msg)["payloads"]
    calls = 20_000

    def per_call(f):  # best of 5 loops of `calls`, in us
        return min(timeit.repeat(f, number=calls, repeat=5)) / calls * 1e6
    nb_us = per_call(lambda: nb.smartreceive_sync(msg))
    peer_us = per_call(lambda: peer.decode(msg))
    floor_us = per_call(lambda: json.loads(msg))
    log(f"  decode 100 B: natsbridge {nb_us:.2f} us, peer {peer_us:.2f} us, json.loads alone {floor_us:.2f} us")
    rows.append([f"decode 100 B binary ({len(msg)} B envelope), best of 5 x {calls:,}", "us per message",
                 fmt(nb_us, 2), fmt(peer_us, 2), fmt(floor_us, 2), ratio_time(nb_us, peer_us), ">= 3x peer",
                 status(peer_us / nb_us, 3.0)])
    notes.append("decode 100 B: `natsbridge.smartreceive_sync(bytes)` against the peer's json.loads + base64 + "
                 "checks, and `json.loads(bytes)` alone as the floor (no envelope work), each called in a loop.")


async def bench_codec(url, args, rows, notes):
    df = dataframe()
    await decode_100b(url, rows, notes)
    cases = [("binary 10 KB", os.urandom(10_000), "binary", args.codec_reps[0], None),
             ("binary 1 MB (direct)", os.urandom(1_000_000), "binary", args.codec_reps[1], 20.0),
             ("DataFrame 10,000 x 5 arrowtable", df, "arrowtable", args.codec_reps[2], 5.0)]
    for label, value, ptype, reps, target in cases:
        gc.collect()
        r = await codec_case(url, label, value, ptype, reps, args.variants)
        for k, v in r.items():
            log(f"  codec {label} {k}: encode {v['enc'] * 1e6:.0f} us, decode {v['dec'] * 1e6:.0f} us, "
                f"both {v['both'] * 1e6:.0f} us ({v['bytes']} B envelope)")
        test = f"encode+decode {label} (median of {reps})"
        unit_ms = ptype != "binary" or "1 MB" in label

        def t(kind, m):
            v = r.get(kind, {}).get(m)
            return None if v is None else (v * 1e3 if unit_ms else v * 1e6)
        u = "ms" if unit_ms else "us"
        speedup = (r["peer"]["both"] / r["natsbridge"]["both"]) if "peer" in r and "natsbridge" in r else None
        rows.append([test, f"encode + decode {u}", fmt(t("natsbridge", "both"), 2), fmt(t("peer", "both"), 2), "",
                     ratio_time(t("natsbridge", "both"), t("peer", "both")), f">= {target:g}x peer" if target else "",
                     status(speedup, target) if target else ""])
        rows.append([test, f"encode (send, no subscriber) {u}", fmt(t("natsbridge", "enc"), 2),
                     fmt(t("peer", "enc"), 2), "", ratio_time(t("natsbridge", "enc"), t("peer", "enc")), "", ""])
        rows.append([test, f"decode {u}", fmt(t("natsbridge", "dec"), 2), fmt(t("peer", "dec"), 2), "",
                     ratio_time(t("natsbridge", "dec"), t("peer", "dec")), "", ""])
        if "natsbridge_sync" in r:
            rows.append([test, f"diagnostic: natsbridge with `smartsend_sync` (no awaitable), encode + decode {u}",
                         fmt(t("natsbridge_sync", "both"), 2), fmt(t("peer", "both"), 2), "",
                         ratio_time(t("natsbridge_sync", "both"), t("peer", "both")), "", ""])
        if "natsbridge_nthreads1" in r:
            rows.append([test, f"diagnostic: natsbridge, caller passes `pa.Table.from_pandas(df, nthreads=1)`, "
                         f"encode + decode {u}", fmt(t("natsbridge_nthreads1", "both"), 2), fmt(t("peer", "both"), 2),
                         "", ratio_time(t("natsbridge_nthreads1", "both"), t("peer", "both")), "", ""])
        if "shared" in r:
            rows.append([test, f"reference: pandas -> Arrow IPC -> pandas alone (what both sides do; "
                         f"`from_pandas` + IPC write / read + `to_pandas`), {u}", "", "",
                         f"{t('shared', 'both'):.2f} ({t('shared', 'enc'):.2f} + {t('shared', 'dec'):.2f})", "", "",
                         ""])
    notes.append(f"encode+decode: natsbridge encode = `await nc.smartsend(subject_without_subscriber, "
                 f"[(name, value, type)], size_threshold={DIRECT})` (the binding has no I/O-free encode; the "
                 f"threshold keeps 1 MB direct, as the peer sends it), decode = `natsbridge.smartreceive_sync(bytes)` "
                 f"of the published envelope (captured once, untimed, from the first send's `msg_json`; the timed sends "
                 f"do not read their SendResult, as a sender that ignores it); peer encode = its "
                 f"encode + `await nc.publish`, decode = json.loads + base64 + deserialize. A flush between reps "
                 f"(untimed), 2 warm-up reps. DataFrame: int64, float64, str, bool, datetime64[ns, UTC]; both sides "
                 f"go pandas -> pyarrow -> Arrow IPC stream and back to pandas. Ratio column: peer / natsbridge.")


# --------------------------------------------------------------------------------------------
# 4. link transfer


async def link_natsbridge(url, size, reps):
    tx = await nb.connect(url)
    rx = await nb.connect(url)
    payload = os.urandom(size)
    digest = hashlib.sha256(payload).hexdigest()
    res = []
    for r in range(reps + 1):
        t0 = time.perf_counter()
        env, msg_json = await tx.smartsend(subject("link"), [("blob", payload, "binary")])
        t1 = time.perf_counter()
        got = await rx.smartreceive(msg_json.encode())
        t2 = time.perf_counter()
        assert got["transports"] == ["link"], got["transports"]
        data = got["payloads"][0][1]
        if r == 0:
            assert len(data) == size and hashlib.sha256(data).hexdigest() == digest, "natsbridge link corrupted"
            url0 = env["payloads"][0]["data"]
        else:
            res.append((t1 - t0, t2 - t1))
        del got, data
    await rx.drain()
    await tx.drain()
    return res, url0


async def link_peer(url, size, reps, get_mode):
    """nats-py object store: put + envelope publish, then envelope decode + get."""
    tx = await nats_connect(url)
    rx = await nats_connect(url)
    bucket = f"peer_{uuid.uuid4().hex[:8]}"
    obs_tx = await tx.jetstream().create_object_store(bucket)
    obs_rx = await rx.jetstream().object_store(bucket)
    payload = os.urandom(size)
    subj = subject("link")
    res = []
    for r in range(reps + 1):
        name = uuid.uuid4().hex
        t0 = time.perf_counter()
        await obs_tx.put(name, payload)
        b = json.dumps(peer.envelope(subj, [peer.link_payload("blob", f"nats-obj://{bucket}/{name}", size, "binary")],
                                     broker_url=url)).encode()
        await tx.publish(subj, b)
        t1 = time.perf_counter()
        env = peer.decode(b)
        _, link, _ = env["payloads"][0]
        obj = link.split("/")[-1]
        if get_mode == "stock":
            data = (await obs_rx.get(obj)).data
        else:  # writeinto a BytesIO: avoids the quadratic bytes +=, one executor hop per chunk
            buf = io.BytesIO()
            await obs_rx.get(obj, writeinto=buf)
            data = buf.getbuffer()
        t2 = time.perf_counter()
        assert len(data) == size
        if r > 0:
            res.append((t1 - t0, t2 - t1))
        del data
    await tx.jetstream().delete_object_store(bucket)
    await rx.drain()
    await tx.drain()
    return res


def link_stats(res, size):
    up, down = sorted(res, key=lambda x: x[0] + x[1])[len(res) // 2]
    mb = size / 1e6
    return {"up": mb / up, "down": mb / down, "total": mb / (up + down), "secs": up + down}


async def bench_link(url, args, rows, notes):
    for mb in args.link_mb:
        size = mb * 1_000_000
        test = f"link {mb} MB via object store (median of {args.link_reps})"
        st = {}
        if "natsbridge" in args.variants:
            gc.collect()
            res, url0 = await link_natsbridge(url, size, args.link_reps)
            st["natsbridge"] = link_stats(res, size)
            log(f"  link {mb} MB natsbridge: up {st['natsbridge']['up']:.0f} MB/s, "
                f"down {st['natsbridge']['down']:.0f} MB/s, total {st['natsbridge']['total']:.0f} MB/s ({url0})")
        peer_mode = "stock" if mb <= args.peer_stock_max_mb else "writeinto"
        if "peer" in args.variants:
            gc.collect()
            try:
                res = await asyncio.wait_for(link_peer(url, size, args.link_reps, peer_mode), args.peer_link_limit)
                st["peer"] = link_stats(res, size)
                log(f"  link {mb} MB peer ({peer_mode} get): up {st['peer']['up']:.0f} MB/s, "
                    f"down {st['peer']['down']:.0f} MB/s, total {st['peer']['total']:.1f} MB/s")
            except asyncio.TimeoutError:
                st["peer"] = None
                log(f"  link {mb} MB peer: did not finish in {args.peer_link_limit:.0f} s")
        pl = "peer (nats-py put + get)" if peer_mode == "stock" else "peer (nats-py put + get(writeinto=BytesIO))"
        p = st.get("peer")
        n_ = st.get("natsbridge")
        for m, label in (("total", "total MB/s (send + receive)"), ("up", "upload MB/s (send)"),
                         ("down", "download MB/s (receive)")):
            pv = "not comparable (timed out)" if "peer" in st and p is None else fmt(p and p[m], 1)
            rows.append([test, f"{label}; peer column: {pl}" if m == "total" else label,
                         fmt(n_ and n_[m], 1), pv, "", ratio(n_ and n_[m], p and p[m]), "", ""])
    notes.append(f"link: natsbridge = `await nc.smartsend` of one binary payload over the 500,000-byte "
                 f"threshold (sha256 + chunks to the JetStream object store + the envelope) then `await "
                 f"nc2.smartreceive(msg)` on a second connection (download + size and sha256 checks; the bytes "
                 f"land in a Python bytes object); one untimed warm-up, median by total time; MB = 10^6 bytes. "
                 f"Peer = nats-py's object store `put` (128 KiB chunks, each ack awaited) + an envelope with the "
                 f"link, then `get`. nats-py's stock `get` appends every chunk to a bytes object (`result.data += "
                 f"msg.data`), quadratic in chunks, so the stock peer runs only up to {args.peer_stock_max_mb} MB; "
                 f"larger sizes use `get(writeinto=io.BytesIO())`, which a careful hand-written peer would use, "
                 f"bounded to {args.peer_link_limit:.0f} s (else not comparable).")


def rss_bytes() -> int:
    """This process's resident set size (Linux /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def connect_times(n, connect):
    """Seconds each of `n` sequential connects took until connected (each closed after, untimed)."""
    for _ in range(10):
        await (await connect()).close()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        c = await connect()
        times.append(time.perf_counter() - t0)
        await c.close()
    return times


async def bench_connections(url, args, rows, notes):
    """Connect latency beside nats-py's own connect, then `--clients` bridge connections in one
    process, each subscribed to its own subject and sending one message to the next."""
    n = args.connects
    st = {"natsbridge": await connect_times(n, lambda: nb.connect(url)),
          "peer": await connect_times(n, lambda: nats_connect(url))}
    test = f"connect x {n} (sequential, loopback)"
    for m, p in (("p50 ms", 50), ("p99 ms", 99)):
        nb_v, peer_v = (pct([t * 1000 for t in st[k]], p) for k in ("natsbridge", "peer"))
        rows.append([test, m, fmt(nb_v, 2), fmt(peer_v, 2), "", ratio_time(nb_v, peer_v),
                     "< 10 ms" if p == 99 else "", ("met" if nb_v < 10 else "**missed**") if p == 99 else ""])
        log(f"  connect {m}: natsbridge {nb_v:.2f}, nats-py {peer_v:.2f}")

    k = args.clients
    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    clients = []
    for i in range(0, k, 64):
        clients += await asyncio.gather(*(nb.connect(url) for _ in range(min(64, k - i))))
    connected = time.perf_counter() - t0
    subs = [await c.subscribe(f"ring.{i}") for i, c in enumerate(clients)]
    per_client = (rss_bytes() - before) / k
    t1 = time.perf_counter()
    await asyncio.gather(*(c.smartsend(f"ring.{(i + 1) % k}", [("from", str(i), "text")]) for i, c in enumerate(clients)))
    got = await asyncio.gather(*(s.next(timeout=30) for s in subs))
    everything = time.perf_counter() - t1
    delivered = sum(env["payloads"][0][1] == str((i - 1) % k) for i, env in enumerate(got))
    await asyncio.gather(*(c.close() for c in clients))
    test = f"{k} connections in one process"
    rows.append([test, "connect all (64 at a time), ms", fmt(connected * 1000, 0), "", "", "", "", ""])
    rows.append([test, "resident memory per connection (with its subscription), KiB", fmt(per_client / 1024, 1),
                 "", "", "", "", ""])
    rows.append([test, "delivered, checked", f"{delivered} of {k}", "", "", "", f"{k} of {k}",
                 "met" if delivered == k else "**missed**"])
    rows.append([test, "send all and receive all, ms", fmt(everything * 1000, 0), "", "", "", "", ""])
    log(f"  {k} connections: {delivered} delivered, {per_client / 1024:.1f} KiB each")
    notes.append("connections: connect times are `await nb.connect(url)` and nats-py's `await nats.connect(url)` "
                 "until they return, each closed before the next (untimed); memory is the process's RSS growth over "
                 "the connections and their subscriptions, divided by their number.")


# --------------------------------------------------------------------------------------------
# report


def fmt(v, digits=0):
    if v is None or v == "":
        return ""
    if isinstance(v, float) and v != v:
        return "nan"
    return f"{v:.{digits}f}" if digits else f"{v:.0f}"


def ratio(a, b):
    """a / b for rates (higher is better for natsbridge)."""
    return f"{a / b:.2f}x" if a and b else ""


def ratio_time(nb_t, peer_t):
    """peer / natsbridge for times: > 1x means natsbridge is faster."""
    return f"{peer_t / nb_t:.2f}x" if nb_t and peer_t else ""


def status(x, target):
    if x is None:
        return ""
    return f"met ({x:.2f}x)" if x >= target else f"**missed** ({x:.2f}x, needs {target / x:.2f}x more)"


def status_half(nb_v, peer_v):
    """Met when natsbridge takes at most half the peer's time."""
    if not nb_v or not peer_v:
        return ""
    x = nb_v / peer_v
    return f"met ({x:.2f}x of peer)" if x <= 0.5 else f"**missed** ({x:.2f}x of peer, needs {x / 0.5:.2f}x less)"


def versions():
    import importlib.metadata as md
    version = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    def v(p):
        try:
            return md.version(p)
        except md.PackageNotFoundError:
            return "?"
    load = os.getloadavg()
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        head = f"repo HEAD {head}{' + uncommitted changes' if dirty else ''} (the wheel is what was built from it); "
    except OSError:
        head = ""
    return (f"{head}Python {platform.python_version()}; natsbridge {nb.__version__} ({Path(nb._nb.__file__).name}); "
            f"nats-py {v('nats-py')}; pyarrow {v('pyarrow')}; pandas {v('pandas')}; numpy {v('numpy')}; "
            f"{version}; {os.cpu_count()} CPUs; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


async def main_async(args):
    server = NatsServer(f"max_payload: {MAX_PAYLOAD}").start()
    rows, notes = [], []
    t_start = time.monotonic()
    header = versions()
    log(header)
    try:
        for section, fn in (("throughput", bench_throughput), ("latency", bench_latency), ("codec", bench_codec),
                            ("link", bench_link), ("connections", bench_connections)):
            if section in args.only:
                log(f"{section} ...")
                await fn(server.url, args, rows, notes)
    finally:
        server.stop()
    load = os.getloadavg()
    out = ["## natsbridge (Python binding) vs hand-written nats-py peer", "",
           "| Test | Metric | natsbridge | peer (nats-py + json + base64) | raw nats-py floor / reference | Ratio | Target | Status |",
           "|---|---|---:|---:|---:|---:|---|---|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += ["", f"- {header}; at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; run took "
                f"{time.monotonic() - t_start:.0f} s",
            f"- nats-server with JetStream (file store in a temp dir) and max_payload {MAX_PAYLOAD} on a free "
            f"loopback port"]
    out += [f"- {n}" for n in notes]
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="also write the markdown table to this file")
    ap.add_argument("--only", default="throughput,latency,codec,link,connections",
                    help="comma-separated sections: throughput,latency,codec,link,connections")
    ap.add_argument("--variants", default="natsbridge,peer,raw", help="comma-separated: natsbridge,peer,raw")
    ap.add_argument("--no-diag", dest="diag", action="store_false", help="skip the diagnostic variants")
    ap.add_argument("--msgs", type=int, default=50_000, help="messages per throughput rep (50000)")
    ap.add_argument("--reps", type=int, default=3, help="throughput reps, median reported (3)")
    ap.add_argument("--pings", type=int, default=2000, help="ping-pong round trips (2000)")
    ap.add_argument("--connects", type=int, default=300, help="sequential connects timed (300)")
    ap.add_argument("--clients", type=int, default=1000, help="connections in one process (1000)")
    ap.add_argument("--warmup", type=int, default=200, help="ping-pong warm-up round trips (200)")
    ap.add_argument("--codec-reps", default="2000,100,40", help="reps for 10 KB, 1 MB, DataFrame (2000,100,40)")
    ap.add_argument("--link-mb", default="10,100", help="link sizes in MB (10,100)")
    ap.add_argument("--link-reps", type=int, default=3, help="link reps after one warm-up (3)")
    ap.add_argument("--peer-stock-max-mb", type=int, default=10,
                    help="largest size the peer gets with nats-py's stock (quadratic) get (10)")
    ap.add_argument("--peer-link-limit", type=float, default=120.0, help="seconds the peer's link transfers may take")
    args = ap.parse_args()
    args.only = set(args.only.split(","))
    args.variants = set(args.variants.split(","))
    args.codec_reps = [int(x) for x in args.codec_reps.split(",")]
    args.link_mb = [int(x) for x in args.link_mb.split(",")]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
