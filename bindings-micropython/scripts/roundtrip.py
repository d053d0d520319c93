"""Round trips of a small message under the real MicroPython: send, the server echoes it back
through a subscription, receive and decode. Three ways in one run, on one connection:

- natsbridge: smartsend of a 16-byte text payload, next_msg, smartreceive;
- hand-written: the envelope a user would build with json and binascii, published with the same
  connection's publish, then json.loads and the base64 decoded;
- raw NATS floor: the same envelope's bytes published with no envelope work, and next_msg.

Run: python3 bindings-micropython/scripts/roundtrip.py  (needs nats-server; see bench/RESULTS-micropython.md)
"""

import os
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]
REPO = PKG.parent
MICROPYTHON = os.environ.get("MICROPYTHON", str(REPO / ".tmp/mpy-venv/bin/micropython"))
sys.path.insert(0, str(REPO / "servers/python"))
from natsbridge_servers import NatsServer  # noqa: E402  (the one Python server starter)

ROUNDS = 2000

PROGRAM = """
import sys, time, json, binascii
sys.path.insert(0, {pkg!r})
import natsbridge as nb
nc = nb.connect({url!r})
nc.subscribe("rt.x")
TEXT = "0123456789abcdef"

def natsbridge_way():
    nb.smartsend("rt.x", [("m", TEXT, "text")], connection=nc)
    env = nb.smartreceive(nc.next_msg(5))
    assert env["payloads"][0][1] == TEXT

def hand_written():
    env = {{"correlation_id": nb.new_id(), "msg_id": nb.new_id(), "timestamp": nb.timestamp_now(),
           "send_to": "rt.x", "msg_purpose": "chat", "sender_name": "hand", "sender_id": nb.new_id(),
           "receiver_name": "", "receiver_id": "", "reply_to": "", "reply_to_msg_id": "",
           "broker_url": "", "metadata": {{}},
           "payloads": [{{"id": nb.new_id(), "dataname": "m", "payload_type": "text", "transport": "direct",
                          "encoding": "base64", "size": 16, "data": binascii.b2a_base64(TEXT.encode()).decode().strip(),
                          "metadata": {{}}}}]}}
    nc.publish("rt.x", json.dumps(env))
    got = json.loads(nc.next_msg(5).data)
    assert binascii.a2b_base64(got["payloads"][0]["data"]).decode() == TEXT

FLOOR = nb.smartsend("rt.x", [("m", TEXT, "text")], connection=nc, return_json=True)[1]
nc.next_msg(5)

def raw_floor():
    nc.publish("rt.x", FLOOR)
    assert nc.next_msg(5) is not None

for name, way in (("raw NATS floor", raw_floor), ("hand-written json + binascii", hand_written),
                  ("natsbridge smartsend + smartreceive", natsbridge_way)):
    for _ in range(100):
        way()
    started = time.ticks_us()
    for _ in range({rounds}):
        way()
    us = time.ticks_diff(time.ticks_us(), started) / {rounds}
    print("%-38s %8.1f us per round trip, %7.0f round trips/s" % (name, us, 1e6 / us))
"""


def main():
    server = NatsServer(jetstream=False).start()
    try:
        program = PROGRAM.format(pkg=str(PKG), url=server.url, rounds=ROUNDS)
        out = subprocess.run([MICROPYTHON, "-c", program], capture_output=True, text=True, timeout=300)
        if out.returncode:
            sys.exit(f"micropython failed:\n{out.stdout}{out.stderr}")
        version = subprocess.run([MICROPYTHON, "-c", "import sys; print(sys.version)"], capture_output=True,
                                 text=True).stdout.strip()
        print(f"MicroPython {version}, {ROUNDS} round trips each, 100 first as warm-up, nats-server on loopback")
        print(out.stdout, end="")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
