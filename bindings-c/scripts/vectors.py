"""Writes the raw message bytes of every spec/vectors/err-*.json and a manifest
"<expected status name>\t<path>" per line, for tests/test_api.c (C has no JSON parser to read
the vectors itself). Usage: vectors.py <vectors dir> <out dir>; prints the manifest path."""

import base64
import json
import pathlib
import sys


def raw_bytes(vector):
    if "raw_base64" in vector:
        return base64.b64decode(vector["raw_base64"])
    if "raw" in vector:
        return vector["raw"].encode("utf-8")
    return json.dumps(vector["envelope"]).encode("utf-8")


def main():
    vectors, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for path in sorted(vectors.glob("err-*.json")):
        vector = json.loads(path.read_text(encoding="utf-8"))
        target = out / (path.stem + ".msg")
        target.write_bytes(raw_bytes(vector))
        lines.append(f"{vector['expect']['error']}\t{target}\n")
    manifest = out / "manifest.tsv"
    manifest.write_text("".join(lines), encoding="utf-8")
    print(manifest)


if __name__ == "__main__":
    main()
