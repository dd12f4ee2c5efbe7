"""The synchronous client (grpc C-core) against a real tokenmesh server (grpc-js).

The servers come from tokenmesh_server.py; the policies: api = 5 tokens, 1 per second;
slow = 2 tokens, 1 per minute.
"""

from __future__ import annotations

import threading
import time
import unittest
from typing import Callable, List, Tuple

import grpc
from tokenmesh_server import SilentServer, address, dead_address, unique

from tokenmesh_client import Bucket, Limiter, TokenmeshError


class Server:
    address = ""


def setUpModule() -> None:
    Server.address = address()


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
            self.assertEqual(
                (status.policy, status.key, status.capacity, status.refill_tokens, status.refill_period_ms), ("api", key, 5, 1, 1000)
            )

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
        allowed: List[bool] = []
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

    def test_query_fails_over_and_retries_only_where_it_is_safe(self) -> None:
        key = unique("query")
        with Limiter(addresses=[dead_address(), Server.address], deadline_s=5) as limiter:
            self.assertEqual(limiter.query("api", key).remaining, 5)
            self.assertEqual(limiter.stats["rpcs"], 3)  # two attempts at the dead address, then the live one
            self.assertEqual(limiter.stats["failovers"], 1)


class LocalChecksTest(unittest.TestCase):
    def test_options_are_checked_with_the_option_named(self) -> None:
        cases = [
            ({}, "exactly one of address or addresses"),
            ({"address": "a:1", "addresses": ["b:1"]}, "exactly one of address or addresses"),
            ({"addresses": []}, "addresses must not be empty"),
            ({"address": ""}, "non-empty 'host:port'"),
            ({"address": "a:1", "deadline_s": 0}, r"deadline_s must be a number in \(0, 3600\], got 0"),
            ({"address": "a:1", "fail_mode": "maybe"}, "fail_mode must be 'open' or 'closed', got 'maybe'"),
            ({"address": "a:1", "query_attempts": 0}, r"query_attempts must be an integer in 1\.\.10, got 0"),
        ]
        for options, message in cases:
            with self.subTest(options=options), self.assertRaisesRegex(TypeError, message):
                Limiter(**options)  # type: ignore[arg-type]

    def test_malformed_calls_are_refused_before_any_rpc(self) -> None:
        cases: List[Tuple[Callable[[Limiter], object], str]] = [
            (lambda limiter: limiter.consume("", "k"), "request.policy: must be a non-empty string"),
            (lambda limiter: limiter.consume("api", ""), "request.key: must be a non-empty string"),
            (lambda limiter: limiter.consume("api", "k", cost=0), r"request.cost: must be an integer in 1\.\.4294967295, got 0"),
            (lambda limiter: limiter.consume_many([]), r"buckets: must hold 1\.\.16 buckets, got 0"),
            (lambda limiter: limiter.consume_many([("api", "k"), ("api", "k")]), r"buckets\[1\]: names the same bucket twice"),
            (
                lambda limiter: limiter.consume_many([("api", "k"), 7]),  # type: ignore[list-item]
                r"buckets\[1\]: must be a Bucket or a \(policy, key\[, cost\]\) tuple",
            ),
        ]
        with Limiter(dead_address()) as limiter:
            for call, message in cases:
                with self.subTest(message=message):
                    with self.assertRaisesRegex(TokenmeshError, message) as caught:
                        call(limiter)
                    self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(limiter.stats["rpcs"], 0)


if __name__ == "__main__":
    unittest.main()
