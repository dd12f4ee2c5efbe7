"""The asyncio client (grpc.aio) against a real tokenmesh server: batching counted by the server,
the deny cache, bad calls isolated from their batch, the server's per-request cap, failover and
the fail modes. Policies (tokenmesh_server.py): api = 5 tokens, 1/s; slow = 2, 1/min; big = 1e9."""

from __future__ import annotations

import asyncio
import time
import unittest

import grpc
from tokenmesh_server import CAPPED_MAX_DECISIONS, AsyncTestCase, SilentServer, address, capped_address, dead_address, server_rpcs, unique

from tokenmesh_client import AsyncLimiter, Bucket, Decision, InlineLimit, TokenmeshError


class Server:
    address = ""


def setUpModule() -> None:
    Server.address = address()


class FakeClock:
    """The deny cache's and outage log's clock (deadlines use the real one)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ConsumeTest(AsyncTestCase):
    async def test_counts_down_then_denies_then_answers_from_the_deny_cache(self) -> None:
        key, clock = unique("aio"), FakeClock()
        async with AsyncLimiter(Server.address, deadline_s=5, clock=clock) as limiter:
            self.assertEqual([(await limiter.consume("api", key)).remaining for _ in range(5)], [4, 3, 2, 1, 0])
            denied = await limiter.consume("api", key)
            self.assertEqual((denied.allowed, denied.source), (False, "server"))
            self.assertTrue(0 < denied.retry_after_ms <= 1000, denied)
            rpcs, seen_by_server = limiter.stats["rpcs"], server_rpcs("Consume")
            cached = await limiter.consume("api", key)
            self.assertEqual((cached.allowed, cached.source, cached.buckets[0].capacity), (False, "deny-cache", 5))
            self.assertEqual((limiter.stats["rpcs"], limiter.stats["deny_cache_hits"]), (rpcs, 1))
            self.assertEqual(server_rpcs("Consume"), seen_by_server)  # answered without any RPC
            query = await limiter.query("api", key)  # a query is never answered from the cache
            self.assertEqual(query.source, "server")
            clock.now += denied.retry_after_ms / 1000 + 0.001  # the retry-after has passed
            self.assertEqual((await limiter.consume("api", key)).source, "server")

    async def test_many_buckets_are_all_or_nothing_and_inline_limits_are_sent(self) -> None:
        user, tenant = unique("user"), unique("tenant")
        async with AsyncLimiter(Server.address, deadline_s=5) as limiter:
            self.assertTrue((await limiter.consume_many([("slow", tenant, 2), Bucket("api", user)])).allowed)
            both = await limiter.consume_many([Bucket("api", user), Bucket("slow", tenant)])
            self.assertFalse(both.allowed)
            self.assertEqual([b.remaining for b in both.buckets], [4, 0])
            self.assertEqual((await limiter.query("api", user)).remaining, 4)  # the denial took nothing
            inline = await limiter.consume_many([Bucket("custom", unique("inline"), 2, InlineLimit(3, 1, 60_000))])
            status = inline.buckets[0]
            self.assertEqual((status.remaining, status.capacity, status.refill_tokens, status.refill_period_ms), (1, 3, 1, 60_000))


class BatchingTest(AsyncTestCase):
    capped = ""

    @classmethod
    def setUpClass(cls) -> None:
        cls.capped = capped_address()  # started outside the event loop, which it would block

    async def test_concurrent_calls_share_rpcs_as_the_server_counts_them(self) -> None:
        key = unique("burst")
        async with AsyncLimiter(Server.address, deadline_s=10) as limiter:
            before = server_rpcs("Consume")
            decisions = await asyncio.gather(*(limiter.consume("big", f"{key}-{i % 100}") for i in range(2500)))
            self.assertTrue(all(d.allowed and d.source == "server" for d in decisions))
            self.assertEqual(server_rpcs("Consume") - before, 3)  # batches of at most 1000 decisions
            self.assertEqual((limiter.stats["calls"], limiter.stats["rpcs"]), (2500, 3))
            slow = await asyncio.gather(*(limiter.consume("slow", key) for _ in range(20)))
            self.assertEqual(sorted(d.allowed for d in slow), [False] * 18 + [True] * 2)

    async def test_without_batching_each_call_is_its_own_rpc(self) -> None:
        async with AsyncLimiter(Server.address, deadline_s=10, batch=False) as limiter:
            before = server_rpcs("Consume")
            await asyncio.gather(*(limiter.consume("big", unique("solo")) for _ in range(20)))
            self.assertEqual(server_rpcs("Consume") - before, 20)

    async def test_a_window_collects_calls_from_later_loop_turns(self) -> None:
        async def later(i: int) -> Decision:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return await limiter.consume("big", f"w-{i}")

        async with AsyncLimiter(Server.address, deadline_s=5, batch_window_s=0.2) as limiter:
            await asyncio.gather(limiter.consume("big", "w"), *(later(i) for i in range(10)))
            self.assertEqual(limiter.stats["rpcs"], 1)

    async def test_a_bad_call_fails_alone_and_its_batch_is_charged_once(self) -> None:
        key = unique("batch")
        async with AsyncLimiter(Server.address, deadline_s=5) as limiter:
            results = await asyncio.gather(
                limiter.consume("api", key),
                limiter.consume("no-such-policy", "k"),
                limiter.consume("api", key, cost=6),  # above the capacity of 5
                limiter.consume("api", key),
                return_exceptions=True,
            )
            good = [r for r in results if isinstance(r, Decision)]
            self.assertEqual(sorted(d.remaining for d in good), [3, 4])
            errors = [r for r in results if isinstance(r, TokenmeshError)]
            self.assertEqual([e.code for e in errors], [grpc.StatusCode.INVALID_ARGUMENT] * 2)
            self.assertIn('decision.buckets[0].policy: unknown policy "no-such-policy"', str(errors[0]))
            self.assertIn("decision.buckets[0].cost: 6 exceeds the bucket's capacity of 5", str(errors[1]))
            self.assertEqual((await limiter.query("api", key)).remaining, 3)  # nothing charged twice

    async def test_a_server_with_a_lower_cap_gets_chunks_and_later_batches_fit(self) -> None:
        key = unique("cap")
        async with AsyncLimiter(self.capped, deadline_s=10) as limiter:
            with self.assertLogs("tokenmesh_client", "INFO") as logs:
                first = await asyncio.gather(*(limiter.consume("big", f"{key}-{i}") for i in range(120)))
            self.assertTrue(all(d.allowed for d in first))
            self.assertEqual(limiter.stats["rpcs"], 1 + 3)  # refused whole (it took nothing), then 50+50+20
            self.assertIn(f"at most {CAPPED_MAX_DECISIONS} decisions", logs.output[0])
            await asyncio.gather(*(limiter.consume("big", f"{key}-{i}") for i in range(120)))
            self.assertEqual(limiter.stats["rpcs"], 4 + 3)  # capped from the start


class FailureTest(AsyncTestCase):
    async def test_a_dead_port_fails_open_fast_with_one_warning_for_the_batch(self) -> None:
        async with AsyncLimiter(dead_address(), deadline_s=0.5) as limiter:
            started = time.monotonic()
            with self.assertLogs("tokenmesh_client", "WARNING") as logs:
                decisions = await asyncio.gather(*(limiter.consume("api", f"k{i}") for i in range(10)))
            self.assertLess(time.monotonic() - started, 2)
            self.assertEqual({(d.allowed, d.source) for d in decisions}, {(True, "fail-open")})
            self.assertEqual((limiter.stats["fail_open"], limiter.stats["rpcs"]), (10, 1))
            self.assertEqual(len(logs.output), 1)
            self.assertIn("UNAVAILABLE", logs.output[0])
            self.assertIn("(10 calls)", logs.output[0])

    async def test_a_silent_server_fails_closed_at_the_deadline(self) -> None:
        with SilentServer() as silent:
            async with AsyncLimiter(silent, deadline_s=0.3, fail_mode="closed", fail_closed_retry_after_ms=1500) as limiter:
                started = time.monotonic()
                with self.assertLogs("tokenmesh_client", "WARNING"):
                    decision = await limiter.consume("api", "k")
                elapsed = time.monotonic() - started
                self.assertEqual((decision.allowed, decision.retry_after_ms, decision.source), (False, 1500, "fail-closed"))
                self.assertEqual(limiter.stats["fail_closed"], 1)
                self.assertTrue(0.25 <= elapsed < 2, elapsed)

    async def test_fails_over_from_a_dead_address_without_charging_twice(self) -> None:
        key = unique("failover")
        async with AsyncLimiter(addresses=[dead_address(), Server.address], deadline_s=5) as limiter:
            self.assertEqual((await limiter.consume("api", key)).remaining, 4)
            self.assertEqual((await limiter.consume("api", key)).remaining, 3)
            self.assertEqual((limiter.stats["failovers"], limiter.stats["rpcs"]), (1, 3))  # then it stuck to the live one
            self.assertEqual((await limiter.query("api", key)).remaining, 3)

    async def test_query_is_retried_on_unavailable_then_fails_over(self) -> None:
        async with AsyncLimiter(addresses=[dead_address(), Server.address], deadline_s=5, query_attempts=3) as limiter:
            self.assertEqual((await limiter.query("api", unique("q"))).remaining, 5)
            self.assertEqual((limiter.stats["rpcs"], limiter.stats["failovers"]), (4, 1))


class LifecycleTest(unittest.TestCase):
    def test_close_answers_queued_calls_then_refuses_new_ones(self) -> None:
        async def run() -> None:
            limiter = AsyncLimiter(Server.address, deadline_s=5, batch_window_s=1)  # the longest window
            pending = [asyncio.ensure_future(limiter.consume("big", unique("close"))) for _ in range(3)]
            await asyncio.sleep(0)  # the calls have joined the open batch
            self.assertFalse(any(p.done() for p in pending))
            await limiter.close()  # sends the open batch at once and waits for it, not for the window
            self.assertTrue(all(p.done() and p.result().allowed for p in pending))
            self.assertEqual(limiter.stats["rpcs"], 1)
            with self.assertRaisesRegex(TokenmeshError, "FAILED_PRECONDITION: the limiter is closed"):
                await limiter.consume("big", "k")

        asyncio.run(run())

    def test_a_limiter_made_outside_any_loop_works_in_the_loop_that_first_uses_it(self) -> None:
        limiter = AsyncLimiter(Server.address, deadline_s=5)  # e.g. at import time of an ASGI app
        self.assertTrue(asyncio.run(limiter.consume("big", unique("lazy"))).allowed)
        with self.assertRaisesRegex(TokenmeshError, "belong to another event loop"):
            asyncio.run(limiter.consume("big", "k"))

    def test_options_are_checked_with_the_option_named(self) -> None:
        cases = [
            ({}, "exactly one of address or addresses"),
            ({"address": "a:1", "batch_max_size": 0}, r"batch_max_size must be an integer in 1\.\.100000, got 0"),
            ({"address": "a:1", "batch_window_s": -1}, r"batch_window_s must be a number of seconds in 0\.\.1, got -1"),
            ({"address": "a:1", "deny_cache_entries": -1}, r"deny_cache_entries must be an integer"),
            ({"address": "a:1", "fail_mode": "maybe"}, "fail_mode must be 'open' or 'closed'"),
        ]
        for options, message in cases:
            with self.subTest(options=options), self.assertRaisesRegex(TypeError, message):
                AsyncLimiter(**options)  # type: ignore[arg-type]


if __name__ == "__main__":
    unittest.main()
