"""Every ```python block of README.md runs as written against the test server (through NATS_URL)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4
    assert "natsbridge.connect()" in BLOCKS[0]


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i + 1}" for i in range(len(BLOCKS))])
def test_readme_block_runs(nats_url, code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("FILESERVER_URL", "SIZE_THRESHOLD")}
    env["NATS_URL"] = nats_url
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.stdout.strip(), "the example printed nothing"


EXIT_SCRIPT = """
import asyncio
import natsbridge

async def main():
    async with natsbridge.connect() as nc:
        sub = await nc.subscribe("exit.race")
        await nc.smartsend("exit.race", [("m", "bye", "text")])
        print((await sub.next(timeout=5))["payloads"])

asyncio.run(main())
"""


def test_async_scripts_exit_cleanly(nats_url, tmp_path):
    """An async script ends right after its last await: the runtime's threads must be out of
    Python before the interpreter finalizes (before the atexit hook, ~1 run in 10 segfaulted)."""
    script = tmp_path / "exit.py"
    script.write_text(EXIT_SCRIPT, encoding="utf-8")
    env = {**os.environ, "NATS_URL": nats_url}
    procs = [subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(40)]
    results = [(p.wait(60), *p.communicate()) for p in procs]
    failed = [(rc, err[-500:]) for rc, _, err in results if rc != 0]
    assert not failed, failed
