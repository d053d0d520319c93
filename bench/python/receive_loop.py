"""100-byte binary messages already waiting on a subscription, taken with `async for env in sub`,
for profiling the receive path alone. Prints, per message (best of 5 loops of N): wall time, the
calling thread's CPU (decode and dict building happen there when messages are waiting) and the
process's CPU.

    .tmp/bench-venv/bin/python bench/python/receive_loop.py nats://127.0.0.1:4222 20000
"""

import asyncio
import os
import resource
import sys
import time

import natsbridge as nb


def process_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def take(sub, n: int) -> None:
    got = 0
    async for env in sub:
        assert len(env["payloads"][0][1]) == 100, env
        got += 1
        if got == n:
            return


async def main(url: str, n: int) -> None:
    data = [("m", os.urandom(100), "binary")]
    async with nb.connect(url) as tx, nb.connect(url) as rx:
        sub = await rx.subscribe("bench.receive_loop")
        best = [float("inf")] * 3
        for rep in range(6):
            for _ in range(n):
                await tx.smartsend("bench.receive_loop", data)
            await tx.flush()
            await rx.flush()  # every message sent before it is in rx's subscription now
            w0, t0, p0 = time.perf_counter(), time.thread_time(), process_cpu()
            await asyncio.wait_for(take(sub, n), 60)
            took = (time.perf_counter() - w0, time.thread_time() - t0, process_cpu() - p0)
            if rep > 0:  # the first loop warms up
                best = [min(b, t / n * 1e6) for b, t in zip(best, took)]
        print(f"per received message: wall {best[0]:.2f} us, calling thread {best[1]:.2f} us, "
              f"process CPU {best[2]:.2f} us")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20_000))
