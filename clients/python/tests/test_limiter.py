"""The Python client (grpc C-core) against a real tokenmesh server (grpc-js).

The server comes from TOKENMESH_ADDRESS when the TypeScript test harness started one (that is how
`npm test` runs this file); otherwise the test starts `node bin/tokenmesh.mjs serve` itself, so
`python3 -m unittest discover -s clients/python/tests` also works alone.
The policies match clients/typescript/test/helpers/server.ts: api = 5 tokens, 1 per second;
slow = 2 tokens, 1 per minute.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "gen")]

import grpc  # noqa: E402  (a missing python3-grpcio must fail the run, never skip it)

from tokenmesh_client import Bucket, Limiter, TokenmeshError  # noqa: E402

REPO = HERE.parents[2]
CONFIG = """listen: 127.0.0.1:{port}
metricsListen: null
httpListen: null
logLevel: warn
policies:
  api: {{capacity: 5, refill: 1, per: 1s}}
  slow: {{capacity: 2, refill: 1, per: 1m}}
  big: {{capacity: 1000000000, refill: 1000000000, per: 1s}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Server:
    address = ""
    process = None
    tmp = None


def setUpModule() -> None:
    if os.environ.get("TOKENMESH_ADDRESS"):
        Server.address = os.environ["TOKENMESH_ADDRESS"]
        return
    port = free_port()
    Server.tmp = tempfile.TemporaryDirectory()
    config = Path(Server.tmp.name) / "config.yaml"
    config.write_text(CONFIG.format(port=port))
    Server.process = subprocess.Popen(["node", str(REPO / "bin/tokenmesh.mjs"), "serve", "--config", str(config)])
    Server.address = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(Server.address)
    grpc.channel_ready_future(channel).result(timeout=20)
    channel.close()


def tearDownModule() -> None:
    if Server.process is not None:
        Server.process.terminate()
        Server.process.wait(timeout=15)
    if Server.tmp is not None:
        Server.tmp.cleanup()


class SilentServer:
    """Accepts TCP connections and never answers: calls to it can only end by their deadline."""

    def __enter__(self) -> str:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def dead_address() -> str:
    return f"127.0.0.1:{free_port()}"


class ConsumeTest(unittest.TestCase):
    def test_consume_counts_down_then_denies_with_retry_after(self) -> None:
        key = unique("py")
        with Limiter(Server.address, deadline_s=5) as limiter:
            remaining = [limiter.consume("api", key).remaining for _ in range(5)]
            self.assertEqual(remaining, [4, 3, 2, 1, 0])
            denied = limiter.consume("api", key)
            self.assertFalse(denied.allowed)
            self.assertEqual(denied.source, "server")
            self.assertTrue(0 < denied.retry_after_ms <= 1000, denied)
            status = denied.buckets[0]
            self.assertEqual((status.policy, status.key, status.capacity, status.refill_tokens, status.refill_period_ms), ("api", key, 5, 1, 1000))

    def test_cost_and_query_do_not_overcharge(self) -> None:
        key = unique("py")
        with Limiter(Server.address, deadline_s=5) as limiter:
            self.assertEqual(limiter.consume("api", key, cost=3).remaining, 2)
            self.assertEqual(limiter.query("api", key, cost=2).allowed, True)
            self.assertEqual(limiter.query("api", key).remaining, 2)  # query took nothing
            self.assertFalse(limiter.query("api", key, cost=3).allowed)

    def test_many_buckets_are_all_or_nothing(self) -> None:
        user, tenant = unique("user"), unique("tenant")
        with Limiter(Server.address, deadline_s=5) as limiter:
            self.assertTrue(limiter.consume_many([("slow", tenant, 2), Bucket("api", user)]).allowed)
            both = limiter.consume_many([Bucket("api", user), Bucket("slow", tenant)])
            self.assertFalse(both.allowed)
            self.assertEqual([b.remaining for b in both.buckets], [4, 0])
            self.assertEqual(limiter.query("api", user).remaining, 4)  # the denied decision took nothing

    def test_refused_requests_raise_with_the_field_named(self) -> None:
        with Limiter(Server.address, deadline_s=5) as limiter:
            with self.assertRaises(TokenmeshError) as caught:
                limiter.consume("no-such-policy", "k")
            self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn('decision.buckets[0].policy: unknown policy "no-such-policy"', str(caught.exception))
            with self.assertRaises(TokenmeshError):
                limiter.consume("api", "k", cost=6)  # above capacity 5

    def test_concurrent_threads_share_one_limiter(self) -> None:
        key = unique("threads")
        allowed = []
        with Limiter(Server.address, deadline_s=5) as limiter:
            threads = [threading.Thread(target=lambda: allowed.append(limiter.consume("slow", key).allowed)) for _ in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=10)
        self.assertEqual(sorted(allowed), [False] * 18 + [True] * 2)


class FailureTest(unittest.TestCase):
    def test_dead_port_fails_open_fast(self) -> None:
        with Limiter(dead_address(), deadline_s=0.5) as limiter:
            started = time.monotonic()
            with self.assertLogs("tokenmesh_client", "WARNING") as logs:
                decision = limiter.consume("api", "k")
            self.assertLess(time.monotonic() - started, 2)
            self.assertEqual((decision.allowed, decision.source), (True, "fail-open"))
            self.assertEqual(limiter.stats["fail_open"], 1)
            self.assertIn("UNAVAILABLE", logs.output[0])

    def test_silent_server_fails_closed_at_the_deadline(self) -> None:
        with SilentServer() as address, Limiter(address, deadline_s=0.3, fail_mode="closed", fail_closed_retry_after_ms=1500) as limiter:
            started = time.monotonic()
            with self.assertLogs("tokenmesh_client", "WARNING"):
                decision = limiter.consume("api", "k")
            elapsed = time.monotonic() - started
            self.assertEqual((decision.allowed, decision.retry_after_ms, decision.source), (False, 1500, "fail-closed"))
            self.assertTrue(0.25 <= elapsed < 2, elapsed)

    def test_fails_over_from_a_dead_address_without_charging_twice(self) -> None:
        key = unique("failover")
        with Limiter(addresses=[dead_address(), Server.address], deadline_s=5) as limiter:
            self.assertEqual(limiter.consume("api", key).remaining, 4)
            self.assertEqual(limiter.consume("api", key).remaining, 3)
            self.assertEqual(limiter.stats["failovers"], 1)  # then it stuck to the live address

    def test_options_are_checked(self) -> None:
        with self.assertRaises(TypeError):
            Limiter()
        with self.assertRaises(TypeError):
            Limiter(Server.address, fail_mode="maybe")


if __name__ == "__main__":
    unittest.main()
