# tests-interop receiver (MicroPython): one JSON line per decoded message (tests-interop/README.md).
# Run: MICROPYPATH=bindings-micropython micropython receive.py SERVER SUBJECT COUNT TIMEOUT
import binascii
import hashlib
import json
import sys

import natsbridge as nb

HEADER = ("correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name", "sender_id",
          "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url", "metadata")


def shown(data):
    if isinstance(data, (bytes, bytearray)):
        return {"size": len(data), "sha256": binascii.hexlify(hashlib.sha256(data).digest()).decode()}
    return data


def main():
    server, subject, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    nc = nb.connect(server)
    nc.subscribe(subject)  # returns after the server's PONG: it has the subscription
    sys.stderr.write("ready: subscribed to %s\n" % subject)
    for _ in range(count):
        msg = nc.next_msg(timeout)
        if msg is None:
            sys.stderr.write("error: no message within %s s\n" % timeout)
            sys.exit(1)
        try:
            env = nb.smartreceive(msg)
        except nb.NATSBridgeError as e:
            print(json.dumps({"error": {"code": e.code, "message": e.message}, "subject": msg.subject}))
            continue
        out = {}
        for k in HEADER:
            out[k] = env[k]
        out["payloads"] = [{"dataname": n, "payload_type": t, "transport": tr, "value": shown(d)}
                           for (n, d, t), tr in zip(env["payloads"], env["transports"])]
        print(json.dumps(out))
    nc.close()


main()
