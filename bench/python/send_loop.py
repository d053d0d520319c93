"""Awaited 100-byte smartsends on a subject with no subscriber, for profiling the send path alone.

    perf record -F 1000 --call-graph dwarf,16384 -- .tmp/bench-venv/bin/python bench/python/send_loop.py nats://127.0.0.1:4222 30000
"""

import asyncio
import sys
import time

import natsbridge as nb


async def main(url: str, n: int) -> None:
    data = [("p", "x" * 100, "text")]
    async with nb.connect(url) as nc:
        t = time.perf_counter()
        for _ in range(n):
            await nc.smartsend("bench.send_loop.nosub", data)
        print(f"{(time.perf_counter() - t) / n * 1e6:.2f} us per awaited smartsend")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100_000))
