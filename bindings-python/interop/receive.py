"""tests-interop receiver: prints one JSON line per decoded message (tests-interop/README.md)."""

import hashlib
import json
import sys

import natsbridge

HEADER = ("correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name", "sender_id",
          "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url", "metadata")


def shown(data, payload_type):
    if payload_type == "arrowtable":
        return {"rows": data.to_pylist()}
    if isinstance(data, bytes):
        return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return data


def main():
    server, subject, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    durable = sys.argv[5:7]  # JetStream mode: STREAM DURABLE, a durable consumer instead
    with natsbridge.connect_sync(server, arrow="pyarrow") as nc:
        if durable:
            sub = nc.consume_sync(*durable)
        else:
            sub = nc.subscribe_sync(subject)  # returns once the server has the subscription
        print(f"ready: {'consuming' if durable else 'subscribed to'} {subject}", file=sys.stderr, flush=True)
        for _ in range(count):
            try:
                env = sub.next_sync(timeout=timeout)
                if durable:
                    env.ack_sync()
                    env = env.envelope
            except natsbridge.TimeoutError:
                print(f"error: no message within {timeout} s", file=sys.stderr, flush=True)
                sys.exit(1)
            except natsbridge.NATSBridgeError as e:
                print(f"error: {e}", file=sys.stderr, flush=True)
                continue
            out = {k: env[k] for k in HEADER}
            out["payloads"] = [
                {"dataname": n, "payload_type": t, "transport": tr, "value": shown(d, t)}
                for (n, d, t), tr in zip(env["payloads"], env["transports"])
            ]
            if "trace_headers" in env:
                out["trace_headers"] = env["trace_headers"]
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
