"""The synchronous client: one RPC per call, with a deadline, failover and the fail mode.

It has no batching (a blocking call has nobody to share an RPC with) and no deny cache; use
AsyncLimiter for both. Retries go only where they cannot double-charge:

* Consume is not idempotent, so it moves to the next address only when gRPC could not connect
  at all ("failed to connect to all addresses"): the request was never sent, so resending it
  cannot take tokens twice. A deadline or a connection lost mid-call is not resent.
* Query takes no token: it is retried on UNAVAILABLE (``query_attempts`` per address) and fails
  over on any UNAVAILABLE.
* When the service cannot answer (unavailable, deadline, overload, internal error) the call is
  answered by ``fail_mode`` ("open" allows, "closed" denies), counted in ``stats`` and logged.
  Errors that say the request is wrong (INVALID_ARGUMENT and the like) raise TokenmeshError.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Iterable, Literal, Optional, Sequence, Union

import grpc

from tokenmesh.v1 import rate_limiter_pb2 as pb
from tokenmesh.v1 import rate_limiter_pb2_grpc as stubs

from .decision import Bucket, BucketLike, Decision, from_wire, to_wire
from .errors import DeadlineSpent, never_sent, refused, service_could_not_answer
from .options import addresses_of, fail_mode_of, integer, positive_deadline
from .outage import OutageReporter
from .validate import checked_decision

Method = Literal["Consume", "Query"]
Response = Union[pb.ConsumeResponse, pb.QueryResponse]

_QUERY_RETRY_DELAY_S = 0.01


class Limiter:
    """``Limiter("127.0.0.1:50051").consume("api", "user-42")`` -> Decision. Thread-safe."""

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        addresses: Optional[Sequence[str]] = None,
        deadline_s: float = 0.25,
        fail_mode: str = "open",
        fail_closed_retry_after_ms: int = 1000,
        query_attempts: int = 2,
        credentials: Optional[grpc.ChannelCredentials] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        who = "Limiter"
        self.addresses = addresses_of(who, address, addresses)
        self._deadline_s = positive_deadline(who, deadline_s)
        self._query_attempts = integer(who, "query_attempts", query_attempts, 1, 10)
        self._outage = OutageReporter(
            fail_mode_of(who, fail_mode),
            integer(who, "fail_closed_retry_after_ms", fail_closed_retry_after_ms, 0, 3_600_000),
            clock,
        )
        self._clock = clock
        self._channels = [
            grpc.secure_channel(a, credentials) if credentials is not None else grpc.insecure_channel(a) for a in self.addresses
        ]
        self._stubs = [stubs.RateLimiterStub(c) for c in self._channels]
        self._preferred = 0
        self._counts = {"calls": 0, "rpcs": 0, "failovers": 0}
        # Calls may come from many threads: the counters change under this lock.
        self._lock = threading.Lock()

    @property
    def stats(self) -> Dict[str, int]:
        """``calls``, ``rpcs`` (attempts sent), ``failovers``, ``fail_open``, ``fail_closed``."""
        with self._lock:
            counts = dict(self._counts)
        return {**counts, "fail_open": self._outage.fail_open, "fail_closed": self._outage.fail_closed}

    # -- public calls ---------------------------------------------------------------------------

    def consume(self, policy: str, key: str, cost: int = 1) -> Decision:
        """Takes ``cost`` tokens from one bucket."""
        return self.consume_many([Bucket(policy, key, cost)])

    def consume_many(self, buckets: Iterable[BucketLike]) -> Decision:
        """Takes tokens from every bucket, or from none (1 to 16 distinct buckets)."""
        return self._decide("Consume", buckets)

    def query(self, policy: str, key: str, cost: int = 1) -> Decision:
        """Answers as consume would, without taking any token."""
        return self.query_many([Bucket(policy, key, cost)])

    def query_many(self, buckets: Iterable[BucketLike]) -> Decision:
        return self._decide("Query", buckets)

    def close(self) -> None:
        for c in self._channels:
            c.close()

    def __enter__(self) -> Limiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _decide(self, method: Method, requested: Iterable[BucketLike]) -> Decision:
        self._count("calls")
        buckets = checked_decision(requested)
        deadline = self._clock() + self._deadline_s
        try:
            response = self._with_failover(method, [to_wire(buckets)], deadline)
        except grpc.RpcError as err:
            if not service_could_not_answer(err):
                raise refused(err) from None
            return self._outage.answer(err, 1, self.addresses)
        self._outage.recovered()
        return from_wire(buckets, response.results[0])

    def _send(self, method: Method, index: int, decisions: Sequence[pb.Decision], timeout: float) -> Response:
        self._count("rpcs")
        stub = self._stubs[index]
        if method == "Consume":
            return stub.Consume(pb.ConsumeRequest(decisions=decisions), timeout=timeout)  # type: ignore[no-any-return]
        return stub.Query(pb.QueryRequest(decisions=decisions), timeout=timeout)  # type: ignore[no-any-return]

    def _with_failover(self, method: Method, decisions: Sequence[pb.Decision], deadline: float) -> Response:
        n = len(self._stubs)
        start = self._preferred
        attempts = self._query_attempts if method == "Query" else 1
        last: Optional[grpc.RpcError] = None
        for step in range(n):
            index = (start + step) % n
            if step > 0:
                self._count("failovers")
            for attempt in range(attempts):
                timeout = deadline - self._clock()
                if timeout <= 0:
                    raise last if last is not None else DeadlineSpent()
                try:
                    response = self._send(method, index, decisions, timeout)
                    self._preferred = index
                    return response
                except grpc.RpcError as err:
                    if method == "Consume" and not never_sent(err):
                        raise
                    if method == "Query" and err.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    last = err
                if attempt + 1 < attempts:
                    time.sleep(min(_QUERY_RETRY_DELAY_S * 2**attempt, max(0.0, deadline - self._clock())))
        raise last if last is not None else DeadlineSpent()
