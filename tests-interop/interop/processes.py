"""Child processes (each in its own session, so a driver's own children die with it) and the
line protocol of senders and receivers."""

from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import threading
import time

class Children:
    """Every process the runner starts, so Ctrl-C or an error can stop them all."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen] = set()
        self.stopping = threading.Event()

    def popen(self, argv, **kw) -> subprocess.Popen:
        with self._lock:
            if self.stopping.is_set():
                raise KeyboardInterrupt
            p = subprocess.Popen(argv, start_new_session=True, **kw)
            self._procs.add(p)
            return p

    def forget(self, p: subprocess.Popen):
        with self._lock:
            self._procs.discard(p)

    def kill_all(self):
        self.stopping.set()
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            stop_process(p, grace=2.0)


CHILDREN = Children()


def stop_process(p: subprocess.Popen, grace: float = 3.0):
    """SIGTERM the process group, then SIGKILL it after `grace` seconds."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # the group may hold children even when the leader is gone
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    CHILDREN.forget(p)


class LineProcess:
    """A running command whose stdout and stderr lines are read by two threads into one queue."""

    def __init__(self, argv, env, cwd):
        self.argv = argv
        self.events: queue.Queue = queue.Queue()
        self.stderr_tail = collections.deque(maxlen=60)
        self.proc = CHILDREN.popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.open_streams = 2
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()

    def _pump(self, name, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if name == "err":
                self.stderr_tail.append(line)
            self.events.put((name, line))
        self.events.put((name + "-eof", None))

    def next_event(self, deadline: float):
        """("out", line) | ("err", line) | ("exit", code) | ("timeout", None)."""
        quiet_since_exit = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ("timeout", None)
            if CHILDREN.stopping.is_set():
                raise KeyboardInterrupt
            try:
                kind, line = self.events.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                # A grandchild can hold the pipes open after the command itself exited.
                if self.proc.poll() is not None:
                    quiet_since_exit += 1
                    if quiet_since_exit >= 3:
                        self.open_streams = 0
                        return ("exit", self.proc.returncode)
                continue
            if kind.endswith("-eof"):
                self.open_streams -= 1
                if self.open_streams == 0:
                    try:
                        code = self.proc.wait(max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        return ("timeout", None)
                    return ("exit", code)
                continue
            return (kind, line)

    def alive(self) -> bool:
        return self.proc.poll() is None and self.open_streams > 0

    def stop(self):
        stop_process(self.proc, grace=2.0)


class Receiver(LineProcess):
    """A running receive command: stdout lines are JSON messages, stderr lines `ready:`,
    `error:` or logs."""

    def __init__(self, argv, env, cwd):
        super().__init__(argv, env, cwd)
        self.early: collections.deque = collections.deque()  # stdout lines seen before `ready:`
        self.ahead: dict[str, dict] = {}  # messages of later cases (a batch sender runs ahead), by subject

    def next_event(self, deadline: float):
        if self.early:
            return self.early.popleft()
        return super().next_event(deadline)

    def wait_ready(self, timeout: float) -> str | None:
        """None once a stderr line starts with `ready`, else why not."""
        deadline = time.monotonic() + timeout
        stash = []
        try:
            while True:
                kind, line = self.next_event(deadline)
                if kind == "err" and line.startswith("ready"):
                    return None
                if kind == "out":
                    stash.append((kind, line))
                elif kind == "exit":
                    return f"receiver exited with status {line} before printing `ready:`"
                elif kind == "timeout":
                    return f"receiver printed no `ready:` line on stderr within {timeout:g} s"
        finally:
            self.early.extend(stash)


class SendRun(LineProcess):
    """One run of a send command. Single mode: one spec, sent once the command exits 0. Batch
    mode: several specs, each confirmed in order by a stdout line `sent <spec path>`."""

    def __init__(self, argv, env, cwd, batch: bool):
        super().__init__(argv, env, cwd)
        self.batch = batch

    def stderr_text(self) -> str:
        return "\n".join(self.stderr_tail)

    def wait_sent(self, spec_path: str, timeout: float) -> str | None:
        """None once the spec is sent, else why not."""
        deadline = time.monotonic() + timeout
        while True:
            kind, line = self.next_event(deadline)
            if kind == "timeout":
                return (f"sender printed no `sent` line for this spec within {timeout:g} s" if self.batch
                        else f"sender timed out after {timeout:g} s")
            if kind == "exit":
                if not self.batch and line == 0:
                    return None
                return f"sender exited with status {line}" + (" before confirming this spec" if self.batch else "")
            if self.batch and kind == "out" and line.startswith("sent "):
                confirmed = line[len("sent "):]
                return None if confirmed == spec_path else \
                    f"sender confirmed {confirmed} instead of this spec {spec_path} (specs must be sent in order)"

    def wait_exit(self, timeout: float) -> str | None:
        """Batch mode, after the last spec: None once the command exited 0, else why not."""
        deadline = time.monotonic() + timeout
        while True:
            kind, line = self.next_event(deadline)
            if kind == "timeout":
                return f"did not exit within {timeout:g} s after its last `sent` line; stopped it"
            if kind == "exit":
                return None if line == 0 else f"exited with status {line} after its last `sent` line"
