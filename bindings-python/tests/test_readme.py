"""Every ```python block of README.md runs as written against the test server (through NATS_URL)."""

import os
import re
import subprocess
import sys
import time
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



SEND_AND_WAIT = """
import sys
import natsbridge

natsbridge.smartsend_sync(sys.argv[1], [("m", "before exit", "text")])
natsbridge._natsbridge.before_exit()  # what the atexit hook runs
print("exit hook done", flush=True)
sys.stdin.readline()
"""


def test_one_call_connections_are_drained_by_the_exit_hook(tmp_path):
    """Core never drains the one-call style's shared connections; the atexit hook does, so a
    script that sends and exits loses nothing. Seen from the server: once the hook ran, the
    script's connection is gone while the script still runs, and its message arrived."""
    import json
    import urllib.request

    import natsbridge as nb
    from conftest import NatsServer, free_port

    monitor = free_port()
    server = NatsServer(f"http_port: {monitor}").start()

    def connections():
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/connz", timeout=5) as r:
            return json.load(r)["num_connections"]

    script = tmp_path / "send.py"
    script.write_text(SEND_AND_WAIT, encoding="utf-8")
    try:
        with nb.connect_sync(server.url) as nc:
            sub = nc.subscribe_sync(subject := "exit.drain")
            proc = subprocess.Popen([sys.executable, str(script), subject], env={**os.environ, "NATS_URL": server.url},
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                assert proc.stdout.readline().strip() == "exit hook done", proc.stderr.read()
                # Ours only: the script's shared connection was drained (the server notices a
                # closed socket a moment later).
                deadline = time.monotonic() + 5
                while connections() != 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert connections() == 1
                assert sub.next_sync(timeout=5)["payloads"] == [("m", "before exit", "text")]
            finally:
                proc.communicate("\n", timeout=30)
            assert proc.returncode == 0, proc.stderr
    finally:
        server.stop()


FORK_SCRIPT = """
import os, sys, threading, time
import natsbridge

url = sys.argv[1]
entered = threading.Event()

def slow_upload(fileserver_url, dataname, data):
    entered.set()
    time.sleep(3)
    return "mem://slow/x"

# A runtime thread is inside a Python section (the handler) when the process forks.
sender = threading.Thread(target=lambda: natsbridge.smartsend_sync(
    "fork.parent", [("b", b"x" * 100, "binary")], broker_url=url, fileserver_upload_handler=slow_upload,
    size_threshold=10))
sender.start()
assert entered.wait(10)
start = time.monotonic()
pid = os.fork()
if pid == 0:
    natsbridge.smartsend_sync("fork.child", [("m", "from the child", "text")], broker_url=url)
    sys.exit(0)  # the atexit hook runs: drain, then wait for sections
_, status = os.waitpid(pid, 0)
print(f"child {os.waitstatus_to_exitcode(status)} {time.monotonic() - start:.2f}", flush=True)
sender.join()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_has_its_own_runtime_and_sections(nats_url, tmp_path):
    """A forked child makes its own runtime and connections, and its exit hook does not wait for
    a Python section its parent's runtime thread was in at the fork (that thread does not exist
    in the child: waiting for it would stall every exit by 5 s)."""
    import natsbridge as nb

    script = tmp_path / "fork.py"
    script.write_text(FORK_SCRIPT, encoding="utf-8")
    with nb.connect_sync(nats_url) as nc:
        sub = nc.subscribe_sync("fork.child")
        done = subprocess.run([sys.executable, str(script), nats_url], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        _, code, seconds = done.stdout.split()
        assert code == "0", done.stderr
        assert float(seconds) < 2.5, done.stdout
        assert sub.next_sync(timeout=5)["payloads"] == [("m", "from the child", "text")]
