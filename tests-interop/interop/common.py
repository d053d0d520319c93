"""What every part of the interop runner shares: the matrix's vocabulary and the setup error."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
REPO = HERE.parent

PAYLOAD_TYPES = ["text", "dictionary", "jsontable", "arrowtable", "image", "audio", "video", "binary"]
BYTES_TYPES = {"image", "audio", "video", "binary"}
# "link" goes through the JetStream object store (the embedded default); "s3" through an
# S3-compatible server (s3s-fs) every process is pointed at by the environment.
TRANSPORTS = ["direct", "link", "s3"]
GROUPS = PAYLOAD_TYPES + ["multi"]  # matrix blocks: one per payload type, plus multi-payload cases

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")  # participant names and case ids become subject tokens
DATANAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
PLACEHOLDER_RE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

PASS, FAIL, NA, SKIP = "PASS", "FAIL", "n/a", "skip"


class SetupError(Exception):
    """A problem with the environment or the input files (exit status 2)."""
