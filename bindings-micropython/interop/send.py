# tests-interop sender (MicroPython): one message per run from a send spec (tests-interop/README.md).
# Run: MICROPYPATH=bindings-micropython micropython send.py SPEC
#  or: micropython send.py --raw SERVER SUBJECT FILE   (the error cells: FILE's bytes as they are)
import sys

import natsbridge as nb


def read(path):
    with open(path, "rb") as f:
        return f.read()


def send_raw(server, subject, path):
    """Publishes a file's bytes unchanged (a malformed message for the receivers to reject)."""
    nc = nb.connect(server)
    nc.publish(subject, read(path))
    nc.flush()
    nc.close()


def main():
    if sys.argv[1] == "--raw":
        send_raw(*sys.argv[2:5])
        return
    spec = nb.deserialize(nb.DICTIONARY, read(sys.argv[1]))
    payloads = []
    for p in spec["payloads"]:
        raw = read(p["file"])
        if p["payload_type"] == nb.TEXT:
            raw = str(raw, "utf-8")
        elif p["payload_type"] in (nb.DICTIONARY, nb.JSONTABLE):
            raw = nb.deserialize(nb.DICTIONARY, raw)
        payloads.append((p["dataname"], raw, p["payload_type"]))
    nc = nb.connect(spec["server"])
    nb.smartsend(spec["subject"], payloads, connection=nc, sender_name="micropython-interop")
    nc.flush()
    nc.close()


main()
