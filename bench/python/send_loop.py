"""Awaited 100-byte smartsends on a subject with no subscriber, for profiling the send path alone.
Prints, per send (best of 5 loops of N): wall time, the calling thread's CPU and the process's
CPU (the runtime threads' share is the difference).

    .tmp/bench-venv/bin/python bench/python/send_loop.py nats://127.0.0.1:4222 50000
    perf record -F 1000 --call-graph dwarf,16384 -- .tmp/bench-venv/bin/python bench/python/send_loop.py nats://127.0.0.1:4222 30000
"""

import asyncio
import resource
import sys
import time

import natsbridge as nb


def process_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main(url: str, n: int) -> None:
    data = [("p", "x" * 100, "text")]
    async with nb.connect(url) as nc:
        for _ in range(2000):  # warm-up
            await nc.smartsend("bench.send_loop.nosub", data)
        await nc.flush()
        best = [float("inf")] * 3
        for _ in range(5):
            w0, t0, p0 = time.perf_counter(), time.thread_time(), process_cpu()
            for _ in range(n):
                await nc.smartsend("bench.send_loop.nosub", data)
            await nc.flush()
            took = (time.perf_counter() - w0, time.thread_time() - t0, process_cpu() - p0)
            best = [min(b, t / n * 1e6) for b, t in zip(best, took)]
        print(f"per awaited smartsend: wall {best[0]:.2f} us, calling thread {best[1]:.2f} us, "
              f"process CPU {best[2]:.2f} us")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 50_000))
