"""grpc.aio channels to one or more addresses, with failover and Query retries.

Retries go only where they cannot double-charge. Consume is not idempotent: if an attempt
reached a server, resending it takes the tokens twice. So Consume moves to the next address only
when C-core failed the call before any connection carried it ("failed to connect to all
addresses"); a deadline or a connection lost mid-call is not resent. Query takes no token: it is
retried on UNAVAILABLE (``query_attempts`` per address, short backoff) and fails over on any
UNAVAILABLE. All attempts of one call share one deadline.

Channels are made on first use, inside the running event loop: a grpc.aio channel belongs to the
loop it was made in, and a limiter is often built at import time, before the server's loop runs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, List, Optional, Protocol, Sequence, TypeVar

import grpc
import grpc.aio

from tokenmesh.v1 import rate_limiter_pb2 as pb
from tokenmesh.v1 import rate_limiter_pb2_grpc as stubs

from .errors import DeadlineSpent, TokenmeshError, never_sent

_QUERY_RETRY_DELAY_S = 0.01

Reply = TypeVar("Reply")


class _RateLimiterStub(Protocol):
    """The generated stub's methods as grpc.aio gives them (grpc_python_plugin writes no types)."""

    Consume: Callable[..., Awaitable[pb.ConsumeResponse]]
    Query: Callable[..., Awaitable[pb.QueryResponse]]


def _unavailable(err: grpc.RpcError) -> bool:
    return bool(err.code() == grpc.StatusCode.UNAVAILABLE)


class AioTransport:
    def __init__(self, addresses: Sequence[str], credentials: Optional[grpc.ChannelCredentials], query_attempts: int):
        self.addresses = list(addresses)
        self._credentials = credentials
        self._query_attempts = query_attempts
        self._channels: List[grpc.aio.Channel] = []
        self._stubs: List[_RateLimiterStub] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        #: Index of the address that answered last: calls start there (sticky, not load-balanced).
        self._preferred = 0
        self.rpcs = 0
        self.failovers = 0

    def _ready_stubs(self) -> List[_RateLimiterStub]:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            for a in self.addresses:
                channel = grpc.aio.secure_channel(a, self._credentials) if self._credentials is not None else grpc.aio.insecure_channel(a)
                self._channels.append(channel)
                self._stubs.append(stubs.RateLimiterStub(channel))
        elif self._loop is not loop:
            raise TokenmeshError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this AsyncLimiter's channels belong to another event loop; make one limiter per loop",
            )
        return self._stubs

    async def consume(self, request: pb.ConsumeRequest, deadline: float) -> pb.ConsumeResponse:
        return await self._with_failover(lambda s, t: s.Consume(request, timeout=t), never_sent, 1, deadline)

    async def query(self, request: pb.QueryRequest, deadline: float) -> pb.QueryResponse:
        return await self._with_failover(lambda s, t: s.Query(request, timeout=t), _unavailable, self._query_attempts, deadline)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._channels))

    async def _with_failover(
        self,
        call: Callable[[_RateLimiterStub, float], Awaitable[Reply]],
        may_retry: Callable[[grpc.RpcError], bool],
        attempts: int,
        deadline: float,
    ) -> Reply:
        targets = self._ready_stubs()
        n = len(targets)
        start = self._preferred
        last: Optional[grpc.RpcError] = None
        for step in range(n):
            index = (start + step) % n
            if step > 0:
                self.failovers += 1
            for attempt in range(attempts):
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise last if last is not None else DeadlineSpent()
                self.rpcs += 1
                try:
                    response = await call(targets[index], timeout)
                    self._preferred = index
                    return response
                except grpc.RpcError as err:
                    if not may_retry(err):
                        raise
                    last = err
                if attempt + 1 < attempts:
                    await asyncio.sleep(min(_QUERY_RETRY_DELAY_S * 2**attempt, max(0.0, deadline - time.monotonic())))
        raise last if last is not None else DeadlineSpent()
