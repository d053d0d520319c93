"""Receives one NATSBridge message with the Python binding and prints each payload.

    python examples/python/receive.py nats://127.0.0.1:4222 natsbridge.demo

The demo (scripts/demo.sh) runs it as the receiver of a message the Rust CLI sends. It prints
`ready:` on stderr once the server has its subscription, then one line per payload.
"""

import sys

import natsbridge


def describe(data, payload_type: str) -> str:
    if payload_type == natsbridge.ARROWTABLE:
        return f"{data.num_rows} rows x {data.num_columns} columns {data.column_names} (pyarrow.Table)"
    if payload_type == natsbridge.JSONTABLE:
        return f"{len(data)} rows, first {data[0]}"
    if isinstance(data, bytes):
        return f"{len(data):,} bytes"
    return repr(data)


def main(server: str, subject: str) -> None:
    with natsbridge.connect_sync(server, arrow="pyarrow") as nc:
        sub = nc.subscribe_sync(subject)
        print(f"ready: {subject}", file=sys.stderr, flush=True)
        env = sub.next_sync(timeout=30)
        print(f"python received {env['msg_id']} from {env['sender_name']!r} on {env['send_to']}")
        for (dataname, data, payload_type), transport in zip(env["payloads"], env["transports"]):
            print(f"  python: {dataname:<9} {payload_type:<10} {transport:<6} {describe(data, payload_type)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
