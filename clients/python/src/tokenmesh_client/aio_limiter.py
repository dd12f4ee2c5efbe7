"""AsyncLimiter: the asyncio client, with the TypeScript client's behaviour underneath.

A call is checked locally, answered from the deny cache if one of its buckets was just denied,
and otherwise joins a batch that goes out as one Consume (or Query) RPC. Deadlines, failover and
the fail mode are the synchronous client's (see aio_transport.py and outage.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Callable, Dict, Iterable, List, Literal, Optional, Sequence, Tuple, Union

import grpc

from tokenmesh.v1 import rate_limiter_pb2 as pb

from .aio_transport import AioTransport
from .batcher import Batcher, Settled
from .decision import Bucket, BucketLike, Decision, from_wire, to_wire
from .deny_cache import DenyCache
from .errors import TokenmeshError, refused, service_could_not_answer
from .options import addresses_of, fail_mode_of, integer, positive_deadline, seconds
from .outage import OutageReporter, log
from .validate import checked_decision

Method = Literal["consume", "query"]
Item = Tuple[Bucket, ...]

#: The service's default cap on decisions per request; above it the whole request is refused.
SERVER_BATCH_CAP = 1000

_BAD_DECISION = re.compile(r"^decisions\[(\d+)\]")
_SERVER_CAP = re.compile(r"^decisions: must hold 1\.\.(\d+) decisions")


class AsyncLimiter:
    """``await AsyncLimiter("127.0.0.1:50051").consume("api", "user-42")`` -> Decision.

    Use it from one event loop (its channels are made there on the first call); close it with
    ``await limiter.close()`` or ``async with``.
    """

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        addresses: Optional[Sequence[str]] = None,
        deadline_s: float = 0.25,
        fail_mode: str = "open",
        fail_closed_retry_after_ms: int = 1000,
        batch: bool = True,
        batch_window_s: float = 0.0,
        batch_max_size: int = SERVER_BATCH_CAP,
        deny_cache_entries: int = 10_000,
        query_attempts: int = 2,
        credentials: Optional[grpc.ChannelCredentials] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        who = "AsyncLimiter"
        self.addresses = addresses_of(who, address, addresses)
        self._deadline_s = positive_deadline(who, deadline_s)
        self._outage = OutageReporter(
            fail_mode_of(who, fail_mode),
            integer(who, "fail_closed_retry_after_ms", fail_closed_retry_after_ms, 0, 3_600_000),
            clock,
        )
        window = seconds(who, "batch_window_s", batch_window_s, 0, 1)
        max_size = integer(who, "batch_max_size", batch_max_size, 1, 100_000) if batch else 1
        entries = integer(who, "deny_cache_entries", deny_cache_entries, 0, 10_000_000)
        self._transport = AioTransport(self.addresses, credentials, integer(who, "query_attempts", query_attempts, 1, 10))
        self._deny_cache = DenyCache(entries, lambda: clock() * 1000)
        self._batchers: Dict[Method, Batcher[Item, Decision]] = {
            "consume": Batcher(window, max_size, lambda items: self._send("consume", items)),
            "query": Batcher(window, max_size, lambda items: self._send("query", items)),
        }
        self._calls = 0
        self._closed = False

    # -- public calls ---------------------------------------------------------------------------

    async def consume(self, policy: str, key: str, cost: int = 1) -> Decision:
        """Takes ``cost`` tokens from one bucket."""
        return await self.consume_many([Bucket(policy, key, cost)])

    async def consume_many(self, buckets: Iterable[BucketLike]) -> Decision:
        """Takes tokens from every bucket, or from none (1 to 16 distinct buckets)."""
        item = self._admit(buckets)
        cached = self._deny_cache.check(item)
        if cached is not None:
            return cached
        decision = await self._batchers["consume"].add(item)
        if not decision.allowed and decision.source == "server":
            self._deny_cache.remember(item, decision)
        return decision

    async def query(self, policy: str, key: str, cost: int = 1) -> Decision:
        """Answers as consume would, without taking any token (never from the deny cache)."""
        return await self.query_many([Bucket(policy, key, cost)])

    async def query_many(self, buckets: Iterable[BucketLike]) -> Decision:
        return await self._batchers["query"].add(self._admit(buckets))

    @property
    def stats(self) -> Dict[str, int]:
        """Counters for dashboards (the TypeScript client's ``stats()``, in snake_case)."""
        return {
            "calls": self._calls,
            "rpcs": self._transport.rpcs,
            "failovers": self._transport.failovers,
            "deny_cache_hits": self._deny_cache.hits,
            "deny_cache_size": self._deny_cache.size,
            "fail_open": self._outage.fail_open,
            "fail_closed": self._outage.fail_closed,
        }

    async def close(self) -> None:
        """Sends what is queued, waits for the answers, and closes the channels."""
        self._closed = True
        for b in self._batchers.values():
            await b.drain()
        await self._transport.close()

    async def __aenter__(self) -> AsyncLimiter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- internals ------------------------------------------------------------------------------

    def _admit(self, buckets: Iterable[BucketLike]) -> Item:
        if self._closed:
            raise TokenmeshError(grpc.StatusCode.FAILED_PRECONDITION, "the limiter is closed")
        self._calls += 1
        return checked_decision(buckets)

    async def _send(self, method: Method, items: Sequence[Item]) -> List[Settled[Decision]]:
        deadline = time.monotonic() + self._deadline_s
        decisions = [to_wire(item) for item in items]
        response: Union[pb.ConsumeResponse, pb.QueryResponse]
        try:
            if method == "consume":
                response = await self._transport.consume(pb.ConsumeRequest(decisions=decisions), deadline)
            else:
                response = await self._transport.query(pb.QueryRequest(decisions=decisions), deadline)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT and len(items) > 1:
                return await self._isolate_invalid(method, items, err)
            if service_could_not_answer(err):
                answer = self._outage.answer(err, len(items), self.addresses)
                return [answer] * len(items)
            return [refused(err) for _ in items]  # one exception per caller: each gets its own traceback
        self._outage.recovered()
        if len(response.results) != len(items):
            wrong = f"server answered {len(response.results)} of {len(items)} decisions"
            return [TokenmeshError(grpc.StatusCode.INTERNAL, wrong) for _ in items]
        return [from_wire(item, result) for item, result in zip(items, response.results)]

    async def _isolate_invalid(self, method: Method, items: Sequence[Item], err: grpc.RpcError) -> List[Settled[Decision]]:
        """The service validates a whole request before touching any bucket, so a refused batch
        took no token and resending its good decisions cannot double-charge. A batch above the
        server's cap is resent in chunks it accepts, and later batches are capped to fit.
        Otherwise the error names the first bad decision: fail that one, resend the rest; if it
        names none, resend each alone."""
        details = err.details() or ""
        cap_match = _SERVER_CAP.match(details)
        cap = int(cap_match.group(1)) if cap_match else 0
        if 1 <= cap < len(items):
            if self._batchers[method].max_size > cap:
                log.info("the server takes at most %d decisions per request; lowering batch_max_size", cap)
                for b in self._batchers.values():
                    b.lower_max_size(cap)
            chunks = [items[i : i + cap] for i in range(0, len(items), cap)]
            answers = await asyncio.gather(*(self._send(method, chunk) for chunk in chunks))
            return [s for answer in answers for s in answer]
        bad_match = _BAD_DECISION.match(details)
        bad = int(bad_match.group(1)) if bad_match else -1
        if not 0 <= bad < len(items):
            answers = await asyncio.gather(*(self._send(method, [item]) for item in items))
            return [s for answer in answers for s in answer]
        rest = await self._send(method, [*items[:bad], *items[bad + 1 :]])
        return [*rest[:bad], refused(err), *rest[bad:]]
