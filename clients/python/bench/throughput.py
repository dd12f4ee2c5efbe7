"""Measures the asyncio client against one tokenmesh replica running in its own process
(``node bin/tokenmesh.mjs serve``, started by tests/tokenmesh_server.py):

  1. burst: 10,000 concurrent single-decision consume() calls, and how many Consume RPCs they
     became (counted by the client and by the server's own request histogram);
  2. sustained: decisions per second with N concurrent callers in a closed loop for D seconds,
     batched (the default) and, as the baseline in the same run, unbatched (batch=False); and the
     synchronous Limiter from one thread, for scale.

Run from the repository root (a load run: nothing else heavy should share the machine):
  /usr/bin/python3 clients/python/bench/throughput.py [--callers 1000] [--seconds 5]
Prints a table and, last, one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Dict, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import tokenmesh_server  # noqa: E402  (also puts src/ and gen/ on sys.path)

from tokenmesh_client import AsyncLimiter, Limiter  # noqa: E402


async def burst(address: str, calls: int) -> Dict[str, float]:
    async with AsyncLimiter(address, deadline_s=10) as limiter:
        before = tokenmesh_server.server_rpcs("Consume")
        started = time.perf_counter()
        decisions = await asyncio.gather(*(limiter.consume("big", f"burst-{i}") for i in range(calls)))
        elapsed = time.perf_counter() - started
        return {
            "calls": calls,
            "allowed": sum(d.allowed for d in decisions),
            "client_rpcs": limiter.stats["rpcs"],
            "server_rpcs": tokenmesh_server.server_rpcs("Consume") - before,
            "ms": elapsed * 1000,
        }


async def sustained(address: str, callers: int, seconds: float, batch: bool) -> Tuple[float, int]:
    async with AsyncLimiter(address, deadline_s=10, batch=batch) as limiter:
        until = time.perf_counter() + seconds
        done = 0

        async def caller(c: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < until:
                await limiter.consume("big", f"caller-{c}-{i % 64}")
                done += 1
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller(c) for c in range(callers)))
        return done / (time.perf_counter() - started), limiter.stats["rpcs"]


def sync_loop(address: str, seconds: float) -> float:
    with Limiter(address, deadline_s=10) as limiter:
        until = time.perf_counter() + seconds
        started, done = time.perf_counter(), 0
        while time.perf_counter() < until:
            limiter.consume("big", f"sync-{done % 64}")
            done += 1
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    address = tokenmesh_server.address()

    b = asyncio.run(burst(address, 10_000))
    batched, batched_rpcs = asyncio.run(sustained(address, args.callers, args.seconds, True))
    unbatched, unbatched_rpcs = asyncio.run(sustained(address, args.callers, args.seconds, False))
    sync = sync_loop(address, args.seconds)

    print(
        f"burst: {b['calls']:,} concurrent consume() calls -> {b['client_rpcs']:.0f} RPCs sent by the client, "
        f"{b['server_rpcs']:.0f} Consume RPCs seen by the server, {b['allowed']:.0f} allowed, {b['ms']:.0f} ms"
    )
    print(f"sustained ({args.callers} concurrent callers, {args.seconds:g} s each, one replica):")
    print(f"  batched:   {batched:,.0f} decisions/s in {batched_rpcs} RPCs")
    print(f"  unbatched: {unbatched:,.0f} decisions/s in {unbatched_rpcs} RPCs (baseline)")
    print(f"  ratio batched/unbatched: {batched / unbatched:.1f}x")
    print(f"  sync Limiter, one thread: {sync:,.0f} decisions/s")
    result = {
        "burst": b,
        "callers": args.callers,
        "seconds": args.seconds,
        "batched_per_s": batched,
        "unbatched_per_s": unbatched,
        "ratio": batched / unbatched,
        "sync_per_s": sync,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
