"""Real tokenmesh servers for the Python tests, and addresses that fail in known ways.

`npm test` starts the servers in process (clients/typescript/test/python-client.test.ts) and
passes them in the environment:

  TOKENMESH_ADDRESS         the main server (policies below, default limits)
  TOKENMESH_METRICS_URL     its Prometheus /metrics, to count the RPCs the server saw
  TOKENMESH_CAPPED_ADDRESS  a server that takes at most CAPPED_MAX_DECISIONS decisions per request

Without them (``python3 -m unittest discover -s clients/python/tests``) each server is started
on first use as ``node bin/tokenmesh.mjs serve`` and stopped when the tests exit.
The policies match clients/typescript/test/helpers/server.ts, plus one that takes inline limits.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.request
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "gen")]

import grpc  # noqa: E402  (a missing python3-grpcio must fail the run, never skip it)

REPO = HERE.parents[2]
CAPPED_MAX_DECISIONS = 50
CONFIG = """listen: 127.0.0.1:{port}
metricsListen: {metrics}
httpListen: null
logLevel: warn
limits: {{maxDecisionsPerRequest: {cap}}}
policies:
  api: {{capacity: 5, refill: 1, per: 1s}}
  slow: {{capacity: 2, refill: 1, per: 1m}}
  big: {{capacity: 1000000000, refill: 1000000000, per: 1s}}
  custom: {{capacity: 10, refill: 10, per: 1s, inline: {{maxCapacity: 1000, maxRefillPerSecond: 1000}}}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def dead_address() -> str:
    """A port nothing listens on: connections are refused."""
    return f"127.0.0.1:{free_port()}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class SilentServer:
    """Accepts TCP connections and never answers: calls to it can only end by their deadline."""

    def __enter__(self) -> str:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


class AsyncTestCase(unittest.IsolatedAsyncioTestCase):
    """Runs with asyncio's debug mode (never-awaited coroutines are reported) but without its
    slow-callback warnings, which a busy 2-core machine triggers for nothing."""

    async def asyncSetUp(self) -> None:
        asyncio.get_running_loop().slow_callback_duration = 10.0


_started: Dict[str, Tuple[str, Optional[str]]] = {}
_processes: List[subprocess.Popen[bytes]] = []


def _start(name: str, cap: int) -> Tuple[str, Optional[str]]:
    if name not in _started:
        port, metrics_port = free_port(), free_port()
        tmp = tempfile.mkdtemp(prefix="tokenmesh-py-")
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG.format(port=port, metrics=f"127.0.0.1:{metrics_port}", cap=cap))
        process = subprocess.Popen(["node", str(REPO / "bin/tokenmesh.mjs"), "serve", "--config", str(config)])
        _processes.append(process)
        address = f"127.0.0.1:{port}"
        channel = grpc.insecure_channel(address)
        try:
            grpc.channel_ready_future(channel).result(timeout=30)  # waits for the listening port
        finally:
            channel.close()
        _started[name] = (address, f"http://127.0.0.1:{metrics_port}/metrics")
    return _started[name]


@atexit.register
def _stop_all() -> None:
    for process in _processes:
        process.terminate()
        process.wait(timeout=15)


def address() -> str:
    return os.environ.get("TOKENMESH_ADDRESS") or _start("main", 1000)[0]


def capped_address() -> str:
    return os.environ.get("TOKENMESH_CAPPED_ADDRESS") or _start("capped", CAPPED_MAX_DECISIONS)[0]


def server_rpcs(method: str) -> int:
    """RPCs of ``method`` ("Consume" or "Query") the main server has handled, any status, read
    from its request-duration histogram."""
    url = os.environ.get("TOKENMESH_METRICS_URL") if os.environ.get("TOKENMESH_ADDRESS") else _start("main", 1000)[1]
    if url is None:
        raise RuntimeError("TOKENMESH_ADDRESS is set but TOKENMESH_METRICS_URL is not")
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    with direct.open(url, timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("tokenmesh_request_duration_seconds_count{") and "RateLimiter" in line and f'{method}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)
